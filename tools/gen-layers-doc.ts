// Writes docs/layers.md: the reference of everything a spec can name, generated from the
// compiler's registries: the layer kinds (compiler/layers/), the presets (compiler/presets/)
// with the layer tree each expands to for a small example, the settings of preset-less
// sections (compiler/shape/model.ts), the tokenizer kinds, the `train` and `stage` settings
// with the optimizers, schedules and data sources (compiler/resolve/), and the LIMITS.
//
//   npm run docs          (or: npx tsc -p . && node dist/tools/gen-layers-doc.js)
//
// test/docs-layers.test.ts checks that docs/layers.md is what this script writes now.
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { analyze } from "../compiler/analyze.js";
import { initialisers } from "../compiler/layers/init.js";
import { layerKinds } from "../compiler/layers/index.js";
import type { LayerKind, LayerNode } from "../compiler/layers/kind.js";
import { presets, type Preset } from "../compiler/presets/index.js";
import { MODULES, type ModuleName } from "../compiler/resolve/program.js";
import type { Schema } from "../compiler/resolve/section.js";
import { chatSection } from "../compiler/resolve/chat.js";
import { tokenizerKinds } from "../compiler/resolve/tokenizer.js";
import { dataSources, optimizers, schedules, stageSchema, trainSchema } from "../compiler/resolve/train.js";
import { describeType, LIMITS, type ArgSpec, type CallSpec, type Type, type Typed } from "../compiler/resolve/types.js";
import { customSchemas } from "../compiler/shape/model.js";
import { repoPath } from "./repo.js";

/** The repository-relative path of the generated page. */
export const LAYERS_DOC_PATH = join("docs", "layers.md");

// ---------------------------------------------------------------------------------------------
// Formatting values and types

/** A number as a spec would write it: `1e-5`, `0.1`, `1_000_000`. */
function num(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (n !== 0 && Math.abs(n) < 1e-3) return n.toExponential();
  if (Number.isInteger(n) && Math.abs(n) >= 100_000) return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, "_");
  return String(n);
}

/** Does this type read a bare name (an enum member) rather than a string? */
function takesNames(t: Type | undefined): boolean {
  if (!t) return false;
  if (t.t === "enum") return true;
  if (t.t === "either" || t.t === "list") return t.t === "list" ? takesNames(t.of) : t.of.some(takesNames);
  return false;
}

/** A typed value in `.vlm` syntax. */
function value(v: Typed, t?: Type): string {
  if (typeof v === "number") return num(v);
  if (typeof v === "boolean") return String(v);
  if (typeof v === "string") return takesNames(t) ? v : JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => value(x, t?.t === "list" ? t.of : undefined)).join(", ")}]`;
  const args = Object.entries(v.args).map(([k, a]) => `${k}: ${value(a)}`);
  return args.length ? `${v.call}(${args.join(", ")})` : v.call;
}

function range(lo: string | null, hi: string | null, loOpen = false, hiOpen = false): string {
  if (lo !== null && hi !== null) return `in ${loOpen ? "(" : "["}${lo}, ${hi}${hiOpen ? ")" : "]"}`;
  if (lo !== null) return `${loOpen ? ">" : "≥"} ${lo}`;
  if (hi !== null) return `${hiOpen ? "<" : "≤"} ${hi}`;
  return "";
}

/** describeType, with the bounds of numbers and the items of lists spelt out. */
function typeText(t: Type): string {
  switch (t.t) {
    case "int": {
      const hi = t.max === undefined || t.max === LIMITS.dim ? null : num(t.max);
      const r = range(t.min === undefined ? null : num(t.min), hi);
      return r ? `${describeType(t)} ${r}` : describeType(t);
    }
    case "float": {
      const r = range(t.min === undefined ? null : num(t.min), t.max === undefined ? null : num(t.max), t.minExclusive, t.maxExclusive);
      return r ? `${describeType(t)} ${r}` : describeType(t);
    }
    case "list":
      return `a list, each ${typeText(t.of)}`;
    case "either": {
      // The description names the alternatives; the bounds of the numeric ones are added.
      const numeric = t.of.filter((x) => x.t === "int" || x.t === "float");
      return numeric.length ? `${describeType(t)} (${numeric.map(typeText).join(" or ")})` : describeType(t);
    }
    default:
      return describeType(t);
  }
}

/** A defaultDoc is prose ("4 x dim", "none") or a name or call written in a spec (`heads`). */
function defaultDocText(doc: string): string {
  if (doc.includes("`")) return doc;
  if (/^[a-z_]+(\.[a-z_]+)?$/.test(doc) && !["none", "derived", "off"].includes(doc)) return `\`${doc}\``;
  if (/^[a-z_]+\(.*\)$/.test(doc)) return `\`${doc}\``;
  return doc;
}

function cell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

function table(head: string[], rows: string[][]): string {
  const out = [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`];
  for (const r of rows) out.push(`| ${r.map(cell).join(" | ")} |`);
  return out.join("\n");
}

function argDefault(a: ArgSpec): string {
  if (a.default === undefined) return "required";
  if (typeof a.default === "function") return "derived";
  return `\`${value(a.default, a.type)}\``;
}

function argsTable(args: readonly ArgSpec[]): string {
  return table(
    ["argument", "type", "default", "meaning"],
    args.map((a) => [`\`${a.name}\``, typeText(a.type), argDefault(a), a.doc]),
  );
}

function signature(name: string, args: readonly ArgSpec[], body = false): string {
  const params = args.map((a) => (a.default === undefined || typeof a.default === "function" ? a.name : `${a.name} = ${value(a.default, a.type)}`));
  return `${name}${params.length ? `(${params.join(", ")})` : ""}${body ? " { ... }" : ""}`;
}

function settingsTable(schema: Schema): string {
  return table(
    ["setting", "type", "default", "meaning"],
    Object.entries(schema).map(([k, s]) => {
      const def =
        s.defaultDoc !== undefined
          ? defaultDocText(s.defaultDoc)
          : s.default === undefined
            ? "required"
            : typeof s.default === "function"
              ? "derived"
              : `\`${value(s.default, s.type)}\``;
      return [`\`${k}\``, typeText(s.type), def, s.doc];
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Layer trees of small examples

const TOKENIZER = 'tokenizer chars { alphabet: "abcdefghijklmnopqrstuvwxyz .", specials: [pad] }';

/** The example settings of each preset: small, so that the tree stays short. */
const PRESET_EXAMPLES: Record<string, string> = {
  vit: "image: 32 x 32 x 3, patch: 16, dim: 64, heads: 4, blocks: 1",
  siglip: "image: 32 x 32 x 3, patch: 16, dim: 64, heads: 4, blocks: 1",
  tfjs: 'model: "nsfwjs-mobilenet_v2", layer: "out_relu", image: 96 x 96 x 3',
  gpt: "dim: 64, heads: 4, layers: 1, context: 32",
  llama: "dim: 64, heads: 4, kv_heads: 2, layers: 1, context: 32",
};

/** The other sections of the example model, around the section that is shown. */
const DEFAULT_SECTIONS: Record<ModuleName, string> = {
  encoder: `encoder vit { ${PRESET_EXAMPLES.vit} }`,
  projector: "projector { linear(decoder.dim) }",
  decoder: `decoder gpt { ${PRESET_EXAMPLES.gpt} }`,
};

/** A model without a single preset: what custom chains are named. */
const CUSTOM_EXAMPLE: Record<ModuleName, string> = {
  encoder: `encoder {
    image: 32 x 32 x 3
    output: pool
    patch_embed(patch: 16, dim: 64) -> positions
      -> repeat 1 { residual { layernorm -> attention(heads: 4) } }
  }`,
  projector: "projector { linear(128) -> gelu -> linear(decoder.dim) }",
  decoder: `decoder {
    dim: 64
    context: 32
    repeat 1 {
      residual { layernorm -> attention(heads: 4, causal: true) }
      residual { layernorm -> mlp(256) }
    }
    -> layernorm
  }`,
};

function exampleSpec(sections: Record<ModuleName, string>): string {
  return ["vlm 0.1", "", "model example {", `  ${TOKENIZER}`, ...MODULES.map((m) => `  ${sections[m]}`), "}", ""].join("\n");
}

function shapeText(s: readonly (number | string)[] | undefined): string {
  return s ? `[${s.join(", ")}]` : "?";
}

interface Row {
  path: string;
  kind: string;
  input: string;
  output: string;
  params: string;
}

function treeRows(nodes: readonly LayerNode[], prefix: string, depth: number, rows: Row[]): void {
  for (const n of nodes) {
    const path = [prefix, n.name].filter((p) => p !== "").join(".");
    rows.push({
      path: `${"  ".repeat(depth)}${path}`,
      kind: n.kind,
      input: shapeText(n.input?.shape),
      output: shapeText(n.output?.shape),
      params: (n.params ?? []).map((p) => `${p.name} [${p.shape.join(", ")}]`).join(", "),
    });
    if (n.children) treeRows(n.children, path, depth + 1, rows);
  }
}

/** Compiles a model and renders the layer tree of some of its modules. */
function layerTree(spec: string, show: readonly ModuleName[]): { text: string; vocab: number; visual: number } {
  const a = analyze("example.vlm", spec);
  if (a.diagnostics.length > 0) {
    throw new Error(`the example of docs/layers.md does not check cleanly:\n${spec}\n${a.diagnostics.map((d) => `${d.code} ${d.message}`).join("\n")}`);
  }
  const m = a.models[a.models.length - 1]!;
  const rows: Row[] = [];
  for (const name of show) {
    const mod = m.modules[name];
    if (!mod) throw new Error(`the example has no ${name}`);
    rows.push({ path: name, kind: mod.preset ?? "", input: shapeText(mod.input.shape), output: shapeText(mod.output.shape), params: "" });
    treeRows(mod.layers, name, 1, rows);
  }
  const head: Row = { path: "path", kind: "kind", input: "input", output: "output", params: "parameters" };
  const all = [head, ...rows];
  const w = (k: keyof Row) => Math.max(...all.map((r) => r[k].length));
  const lines = all.map((r) => `${r.path.padEnd(w("path"))}  ${r.kind.padEnd(w("kind"))}  ${r.input.padEnd(w("input"))}  ${r.output.padEnd(w("output"))}  ${r.params}`.trimEnd());
  const count = m.params.filter((p) => show.includes(p.module as ModuleName)).reduce((s, p) => s + p.shape.reduce((x, y) => x * y, 1), 0);
  return {
    text: `${["```text", ...lines, "```"].join("\n")}\n\n${count.toLocaleString("en-US")} parameters in all.`,
    vocab: m.tokenizer?.size ?? 0,
    visual: Number((m.modules.projector ?? m.modules.encoder)?.output.shape[1] ?? 0),
  };
}

// ---------------------------------------------------------------------------------------------
// The page

const LIMIT_DOCS: Record<keyof typeof LIMITS, string> = {
  dim: "any width, sequence length, count of tokens or vocabulary size",
  repeat: "a `repeat N` count, and a preset's `blocks` or `layers`",
  layers: "layers in one model after every preset, block and `repeat` is expanded (E0311)",
  image: "image height and width, in pixels; also the largest `patch`",
};

function kindSection(k: LayerKind): string {
  const out = [`### \`${k.name}\``, "", `\`${signature(k.name, k.args, k.body)}\``, "", k.doc];
  if (k.body) out.push("", "It takes a body: the layers written between its braces, applied in order.");
  if (k.args.length) out.push("", argsTable(k.args));
  else out.push("", "No arguments.");
  return out.join("\n");
}

function callSection(name: string, spec: CallSpec): string {
  return [`#### \`${name}\``, "", `\`${signature(name, spec.args)}\``, "", spec.doc, "", spec.args.length ? argsTable(spec.args) : "No arguments."].join("\n");
}

function presetSection(p: Preset): string {
  const example = PRESET_EXAMPLES[p.name];
  if (example === undefined) throw new Error(`tools/gen-layers-doc.ts: add an example for the ${p.section} preset \`${p.name}\` to PRESET_EXAMPLES`);
  const written = `${p.section} ${p.name} { ${example} }`;
  const spec = exampleSpec({ ...DEFAULT_SECTIONS, [p.section]: written });
  const tree = layerTree(spec, [p.section as ModuleName]);
  const visual = `${tree.visual} visual token${tree.visual === 1 ? "" : "s"}`;
  return [
    `### \`${p.section} ${p.name}\``,
    "",
    p.doc,
    "",
    settingsTable(p.settings),
    "",
    `**Expands to.** \`${written}\`, in a model with a \`chars\` tokenizer of ${tree.vocab} tokens${p.section === "decoder" ? ` and the \`vit\` encoder of the example above (${visual})` : ""}:`,
    "",
    tree.text,
  ].join("\n");
}

const CUSTOM_NOTES: Record<ModuleName, string> = {
  encoder:
    "The layers are written as a chain after the settings; the image `[B, H, W, C]` goes into the first of them, which is usually `patch_embed`. With `output` other than `last`, a `take` layer is appended to the chain.",
  projector: "The layers are written as a chain. Its input is the encoder's output; its output width must be the decoder's `dim`.",
  decoder:
    "The chain written in the section is the trunk. `vlmc` puts the plumbing around it, as for a preset: `embed` (`token_embed`), `join` (the visual tokens in front of the text), `pos_embed` (`positions`, for a `learned` or `sinusoidal` `position`), `drop` (`dropout`, when `dropout` > 0), the trunk, then `lm_head`. With `position: rope`, write `attention(..., rope: true)` in the trunk yourself.",
};

export function layersDoc(): string {
  const user = [...layerKinds.values()].filter((k) => !k.internal);
  const internal = [...layerKinds.values()].filter((k) => k.internal);
  const sections = MODULES.filter((m) => presets.some((p) => p.section === m));
  const parts: string[] = [];
  parts.push(`# Layers, presets and settings

<!-- Generated by tools/gen-layers-doc.ts from the compiler's registries (compiler/layers/, compiler/presets/, compiler/resolve/, compiler/shape/model.ts). Do not edit: change those and run \`npm run docs\`. -->

Everything a \`.vlm\` spec can name, with every argument, setting and default: the layer kinds of a chain, the presets of each section and the layers they expand to, the settings of sections written without a preset, the tokenizers, and the settings of training. The language itself (syntax, name lookup, inheritance, the checks) is described in [language.md](language.md).

Nothing is implicit: a setting or argument that is not written takes the default listed here, and "required" means that leaving it out is an error (E0210). A default written as a formula (\`4 x dim\`, \`tokenizer.size\`) is computed from the model's own values. Shapes are written \`[B, N, D]\`: \`B\` is the batch, \`T\` the number of text tokens, \`1+T\` one visual token followed by the text; an image is \`[B, H, W, C]\`.`);

  const toc = [
    "- [Layer kinds](#layer-kinds)",
    ...user.map((k) => `  - [\`${k.name}\`](#${k.name})`),
    "- [Internal layer kinds](#internal-layer-kinds)",
    "- [Presets](#presets)",
    ...presets.map((p) => `  - [\`${p.section} ${p.name}\`](#${p.section}-${p.name})`),
    "- [Sections without a preset](#sections-without-a-preset)",
    "- [Initialisation](#initialisation)",
    "- [Tokenizers](#tokenizers)",
    "- [Chat template](#chat-template)",
    "- [Training](#training)",
    "  - [`train`](#train)",
    "  - [`stage`](#stage)",
    "  - [Optimizers](#optimizers)",
    "  - [Schedules](#schedules)",
    "  - [Data sources](#data-sources)",
    "- [Limits](#limits)",
  ];
  parts.push(`## Contents\n\n${toc.join("\n")}`);

  parts.push(`## Layer kinds

The layers a chain can name: \`linear(128) -> gelu -> dropout(0.1)\`. Arguments are given in the order of the signature, by name (\`attention(heads: 8, causal: true)\`), or both; a layer without arguments is written without parentheses. Every layer takes its input width from the layer before it, so only output widths are written. Parameter names are the layer's path followed by the names in its description (\`weight\`, \`bias\`, \`q.weight\`, ...): see the trees under [Presets](#presets).`);
  for (const k of user) parts.push(kindSection(k));

  parts.push(`## Internal layer kinds

Used inside presets and module plumbing; a chain cannot name them (E0203).`);
  for (const k of internal) parts.push(kindSection(k));

  parts.push(`## Presets

A preset is a standard architecture, written as the section's label (\`encoder vit { ... }\`) and configured by settings; it builds its own layers, so a preset section cannot also have a layer chain (E0213). Presets by section: ${sections.map((s) => `${s}: ${presets.filter((p) => p.section === s).map((p) => `\`${p.name}\``).join(", ")}`).join("; ")}.

Each preset below comes with the layer tree it expands to for a small example: the path of each layer (the prefix of its parameters' names), its kind, its input and output shapes, and its parameters. A \`residual\` inside a preset has an empty name: it adds no segment to the path. Other sections can read any setting of a preset section (\`encoder.dim\`, \`decoder.mlp\`), defaults included.`);
  for (const p of presets) parts.push(presetSection(p));

  const custom = MODULES.map((m) => [`### \`${m} { ... }\``, "", CUSTOM_NOTES[m], "", settingsTable(customSchemas[m])].join("\n"));
  parts.push(`## Sections without a preset

A section without a label spells out its layers as a chain (see [Layer kinds](#layer-kinds)). Besides the chain it takes these settings. Layers of a written chain are named by their index in it, counting from 0 (\`projector.0\`, \`projector.2\`), inside a \`repeat\` by the repetition's index (\`decoder.0.1\`), and inside a \`residual\`, a block or a repetition by the index in that body.

${custom.join("\n\n")}

**Expands to.** A model written without a preset:

\`\`\`text
${CUSTOM_EXAMPLE.encoder.replace(/^ {2}/gm, "")}
${CUSTOM_EXAMPLE.projector}
${CUSTOM_EXAMPLE.decoder.replace(/^ {2}/gm, "")}
\`\`\`

${layerTree(exampleSpec(CUSTOM_EXAMPLE), MODULES).text}

Other sections can read their settings (\`decoder.dim\`) and the derived members \`encoder.tokens\`, \`encoder.width\`, \`projector.tokens\` and \`projector.width\`; \`encoder.dim\` and \`projector.dim\` are the output width when the section has no \`dim\` setting.`);

  const initKinds = [...layerKinds.values()].filter((k) => k.args.some((a) => a.name === "init"));
  const initRows = initKinds.map((k) => {
    const a = k.args.find((x) => x.name === "init")!;
    return [`\`${k.name}\``, argDefault(a)];
  });
  parts.push(`## Initialisation

Every parameter is initialised from the \`train\` section's \`seed\`: the same seed and spec always give the same weights, and each parameter draws from its own stream, named by the parameter's name, so its values do not depend on the order parameters are created in. What it is drawn from is set at two levels:

- a layer's \`init\` argument sets the weight matrices of that layer: \`linear(256, init: normal(std: 0.02))\`;
- a module section's \`init\` setting, in a preset or a section without one, sets the weight matrices of every layer of the module that does not set its own, the module's plumbing included (the token embedding, the position table and the LM head of a decoder): \`decoder gpt { ..., init: normal(std: 0.02) }\` is GPT-2's initialisation, but for the residual projections, which GPT-2 also scales by 1/sqrt(2 x layers). \`init: default\` (the default) leaves each layer its kind's default.

An initialiser applies to weight matrices only: projections, the token embedding table, a learned position table. Biases and the CLS token are always zeros, norm gains ones. The IR records each layer's \`init\` among its attrs and the initialiser of each parameter beside its shape.

The default of each layer kind that has weight matrices:

${table(["kind", "default `init`"], initRows)}

\`xavier_uniform\` draws from ±sqrt(6 / (fan_in + fan_out)) with the fans of the matrix [in, out]; for \`patch_embed\` the fans are those of the equivalent Conv2d, C·p·p and D·p·p, as PyTorch computes them (the seed model's initialisation). The initialisers:

${Object.entries(initialisers)
  .map(([n, s]) => callSection(n, s))
  .join("\n\n")}`);

  const toks = Object.entries(tokenizerKinds).map(([name, k]) => [`### \`tokenizer ${name}\``, "", k.doc, "", settingsTable(k.settings)].join("\n"));
  parts.push(`## Tokenizers

A tokenizer is written \`tokenizer KIND { ... }\`. Its derived member \`tokenizer.size\` is the vocabulary: the number of distinct characters plus the number of special tokens. The decoder's \`vocab\` defaults to it.

${toks.join("\n\n")}`);

  parts.push(`## Chat template\n\nWritten \`chat { ... }\` in the model. ${chatSection.doc}\n\n${settingsTable(chatSection.settings)}`);

  parts.push(`## Training

### \`train\`

The section \`train { ... }\` holds the settings shared by the stages and one \`stage NAME { ... }\` section per stage.

${settingsTable(trainSchema)}

### \`stage\`

A stage of training: \`stage NAME { ... }\` inside \`train\`. Stages run in the order written.

${settingsTable(stageSchema)}

### Optimizers

The value of a stage's \`optimizer\`, e.g. \`adamw(lr: 2e-4, weight_decay: 0.01)\`.

${Object.entries(optimizers)
  .map(([n, s]) => callSection(n, s))
  .join("\n\n")}

### Schedules

The value of a stage's \`schedule\`, e.g. \`cosine(warmup: 100)\`; a schedule without arguments may be written without parentheses (\`constant\`).

${Object.entries(schedules)
  .map(([n, s]) => callSection(n, s))
  .join("\n\n")}

### Data sources

The value of \`data\`, in \`train\` or in a stage, e.g. \`shapes(images: 2000, size: 96, seed: 1)\`. File paths are relative to the spec file.

${Object.entries(dataSources)
  .map(([n, s]) => callSection(n, s))
  .join("\n\n")}`);

  const limitRows = (Object.keys(LIMITS) as (keyof typeof LIMITS)[]).map((k) => {
    const doc = LIMIT_DOCS[k];
    if (!doc) throw new Error(`tools/gen-layers-doc.ts: describe LIMITS.${k} in LIMIT_DOCS`);
    return [`\`${k}\``, num(LIMITS[k]), doc];
  });
  parts.push(`## Limits

Every size is bounded, so that a typo cannot ask for the machine's memory: a value beyond a limit is an error (E0402, or E0311 for the number of layers), not an allocation.

${table(["limit", "value", "bounds"], limitRows)}`);

  return `${parts.join("\n\n")}\n`;
}

// ---------------------------------------------------------------------------------------------

function main(): void {
  writeFileSync(repoPath(LAYERS_DOC_PATH), layersDoc());
  process.stdout.write(`wrote ${LAYERS_DOC_PATH}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) main();
