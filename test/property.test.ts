// Property tests of the checker over random specs (test/helpers/spec-gen.ts).
//
// (a) Random VALID specs: `checkSource` reports nothing (not even a warning), and `compile`
//     gives an IR whose shapes are what the generator meant: the encoder's visual tokens and
//     width, the projector's output width, the decoder's vocabulary, the number of attention
//     layers and their heads, the position table, the stages.
// (b) Random single corruptions of valid specs, each breaking exactly one constraint: the
//     checker reports exactly one error (errors repeated by a base model and the model that
//     extends it count once), of the right code, at the line and column of the value (or key,
//     or layer name) that was changed, with a "did you mean" where one is due.
//
// Reproduce a failure: every message names the seed; the spec is printed with line numbers.
//   VLMC_PROP_SEED=<n>         another run of random specs (default: fixed)
//   VLMC_PROP_CASES=<n>        valid specs (default 300)
//   VLMC_PROP_CORRUPTIONS=<n>  cases per kind of corruption (default 24)
//   VLMC_PROP_ONLY=<seed>      only the spec of this seed (valid and every corruption)
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkSource } from "../compiler/check.js";
import { compile } from "../compiler/compile.js";
import type { Diagnostic } from "../compiler/diagnostics/diagnostic.js";
import type { Ir, IrLayer } from "../compiler/ir/types.js";
import { userKinds } from "../compiler/layers/index.js";
import { presets } from "../compiler/presets/index.js";
import { stageSchema, trainSchema } from "../compiler/resolve/train.js";
import { tokenizerKinds } from "../compiler/resolve/tokenizer.js";
import { customSchemas } from "../compiler/shape/model.js";
import type { SourceFile } from "../compiler/source.js";
import { envInt } from "../tools/random.js";
import { generateValidSpec, MODULE_NAMES, numbered, replaceAt, Rng, typosOf, type GeneratedSpec, type Site } from "./helpers/spec-gen.js";

const SEED = envInt("VLMC_PROP_SEED", 0x0c0ffee);
const VALID_CASES = envInt("VLMC_PROP_CASES", 300);
const PER_KIND = envInt("VLMC_PROP_CORRUPTIONS", 24);
const ONLY = process.env.VLMC_PROP_ONLY === undefined ? undefined : Number(process.env.VLMC_PROP_ONLY);
/** Failures shown in full per test; the rest are counted. */
const SHOW = 3;

/** The spec seed of case `i` of stream `stream` (valid specs, or one kind of corruption). */
function specSeed(stream: number, i: number): number {
  if (ONLY !== undefined) return ONLY;
  return (Math.imul(SEED ^ Math.imul(stream + 1, 0x27d4eb2f), 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b)) >>> 0;
}

const PATH = "property/generated.vlm";

// ---- diagnostics, as a reader sees them ----

interface Seen {
  code: string;
  severity: string;
  line: number;
  col: number;
  message: string;
  help: string[];
}

function seen(diags: readonly Diagnostic[], sources: ReadonlyMap<string, SourceFile>): Seen[] {
  return diags.map((d) => {
    const src = sources.get(d.span.file);
    const p = src ? src.position(d.span.start) : { line: 0, column: 0 };
    return { code: d.code, severity: d.severity, line: p.line, col: p.column, message: d.message, help: d.help };
  });
}

const show = (ds: readonly Seen[]) => (ds.length ? ds.map((d) => `  ${d.code} ${d.line}:${d.col} ${d.message}${d.help.length ? ` (help: ${d.help.join(" | ")})` : ""}`).join("\n") : "  (none)");

function failure(title: string, seed: number, text: string, body: string): string {
  return `${title} (seed ${seed}; rerun with VLMC_PROP_ONLY=${seed})\n${body}\n--- spec ---\n${numbered(text)}`;
}

function report(failures: string[], total: number, what: string): void {
  if (failures.length === 0) return;
  assert.fail(`${failures.length} of ${total} ${what} failed; the first ${Math.min(SHOW, failures.length)}:\n\n${failures.slice(0, SHOW).join("\n\n")}`);
}

// ---- (a) valid specs ----

function walk(layers: readonly IrLayer[], f: (l: IrLayer) => void): void {
  for (const l of layers) {
    f(l);
    if (l.children) walk(l.children, f);
  }
}

function layersOf(layers: readonly IrLayer[], kind: string): IrLayer[] {
  const out: IrLayer[] = [];
  walk(layers, (l) => {
    if (l.kind === kind) out.push(l);
  });
  return out;
}

/** What differs between the IR and the intent, one line each. */
function irMismatches(ir: Ir, g: GeneratedSpec): string[] {
  const t = g.intent;
  const bad: string[] = [];
  const eq = (what: string, got: unknown, want: unknown) => {
    if (JSON.stringify(got) !== JSON.stringify(want)) bad.push(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  };
  eq("model", ir.model, t.model);
  eq("tokenizer.size", ir.tokenizer?.size, t.tokenizer.size);
  eq("tokenizer.alphabet", ir.tokenizer?.alphabet, t.tokenizer.alphabet);
  eq("tokenizer.specials", ir.tokenizer?.specials, t.tokenizer.specials);

  const enc = ir.modules.encoder;
  const proj = ir.modules.projector;
  const dec = ir.modules.decoder;
  if (!enc || !proj || !dec) return [...bad, `modules: got ${Object.keys(ir.modules).join(", ")}`];
  const e = t.encoder;
  eq("encoder.preset", enc.preset, e.preset);
  eq("encoder.input", enc.input, ["B", ...e.image]);
  eq("encoder.output (visual tokens, width)", enc.output, ["B", e.tokens, e.dim]);
  const pe = layersOf(enc.layers, "patch_embed");
  eq("encoder patch_embed (patch, dim, cls)", pe.map((l) => [l.attrs.patch, l.attrs.dim, l.attrs.cls]), [[e.patch, e.dim, e.cls]]);
  eq("encoder patch_embed weight", pe[0]?.params.find((p) => p.name.endsWith(".weight"))?.shape, [e.patch * e.patch * e.image[2], e.dim]);
  const encAttn = layersOf(enc.layers, "attention");
  eq("encoder attention layers", encAttn.length, e.blocks);
  eq("encoder attention heads", [...new Set(encAttn.map((l) => l.attrs.heads))], e.blocks ? [e.heads] : []);
  eq("encoder attention scale", [...new Set(encAttn.map((l) => l.attrs.scale))], e.blocks ? [e.scaleDim ? "dim" : "head"] : []);
  if (e.preset === null && e.output === "last") eq("encoder take layers", layersOf(enc.layers, "take").length, 0);
  else eq("encoder take", layersOf(enc.layers, "take").map((l) => l.attrs.which), [e.output]);

  eq("projector.input", proj.input, ["B", e.tokens, e.dim]);
  eq("projector.output", proj.output, ["B", e.tokens, t.projector.out]);
  const lin = layersOf(proj.layers, "linear");
  eq("projector first linear in", lin[0]?.attrs.in, e.dim);
  eq("projector last linear out", lin[lin.length - 1]?.attrs.out, t.decoder.dim);

  const d = t.decoder;
  eq("decoder.preset", dec.preset, d.preset);
  eq("decoder.input", dec.input, ["B", "T"]);
  eq("decoder.output (logits over the vocabulary)", dec.output, ["B", `${e.tokens}+T`, t.tokenizer.size]);
  eq("decoder token_embed (vocab, dim)", layersOf(dec.layers, "token_embed").map((l) => [l.attrs.vocab, l.attrs.dim]), [[t.tokenizer.size, d.dim]]);
  eq("decoder lm_head vocab", layersOf(dec.layers, "lm_head").map((l) => l.attrs.vocab), [t.tokenizer.size]);
  const pos = layersOf(dec.layers, "positions");
  const table = d.position === "learned" || d.position === "sinusoidal";
  eq("decoder positions (kind, length)", pos.map((l) => [l.attrs.kind, l.attrs.length]), table ? [[d.position, d.context]] : []);
  if (d.position === "learned") eq("decoder position table", pos[0]?.params.map((p) => p.shape), [[d.context, d.dim]]);
  const decAttn = layersOf(dec.layers, "attention");
  eq("decoder attention layers", decAttn.length, d.layers);
  eq("decoder attention (heads, kv_heads, causal)", [...new Set(decAttn.map((l) => JSON.stringify([l.attrs.heads, l.attrs.kv_heads, l.attrs.causal])))], d.layers ? [JSON.stringify([d.heads, d.kvHeads, true])] : []);
  eq("decoder attention rope", [...new Set(decAttn.map((l) => l.attrs.rope))], d.layers ? [d.position === "rope"] : []);
  if (d.scaleDim) eq("decoder attention scale", [...new Set(decAttn.map((l) => l.attrs.scale))], d.layers ? ["dim"] : []);
  // The visual tokens and the text share the context: the sequence the blocks see.
  for (const a of decAttn) eq(`decoder ${a.path} input`, a.input, ["B", `${e.tokens}+T`, d.dim]);

  eq(
    "train stages",
    ir.train?.stages.map((s) => ({ name: s.name, train: s.train, steps: s.steps, epochs: s.epochs })),
    t.stages,
  );
  for (const s of ir.train?.stages ?? []) eq(`stage ${s.name} frozen`, s.frozen, MODULE_NAMES.filter((m) => !s.train.includes(m)));
  return bad;
}

test(`${VALID_CASES} random valid specs: no diagnostics, and the IR the generator meant`, () => {
  const failures: string[] = [];
  const n = ONLY !== undefined ? 1 : VALID_CASES;
  for (let i = 0; i < n; i++) {
    const seed = specSeed(0, i);
    const g = generateValidSpec(seed);
    const r = checkSource(PATH, g.text);
    if (r.diagnostics.length > 0) {
      failures.push(failure("a valid spec got diagnostics", seed, g.text, show(seen(r.diagnostics, r.sources))));
      continue;
    }
    const c = compile(PATH, { text: g.text });
    if (!c.ir) {
      failures.push(failure("checkSource was clean but compile gave no IR", seed, g.text, show(seen(c.diagnostics, c.sources))));
      continue;
    }
    const bad = irMismatches(c.ir, g);
    if (bad.length) failures.push(failure("the IR is not what the generator meant", seed, g.text, bad.map((b) => `  ${b}`).join("\n")));
  }
  report(failures, n, "valid specs");
});

// ---- (b) corruptions ----

interface Mutation {
  /** What was done, for messages. */
  what: string;
  text: string;
  code: string;
  line: number;
  col: number;
  /** A help line that must be present, e.g. "did you mean `dropout`?". */
  help?: string;
  /** Warnings that may come with the error (consequences of it). */
  allowWarnings?: string[];
}

type Maker = (g: GeneratedSpec, rng: Rng) => Mutation | null;

const intentOf = (g: GeneratedSpec) => g.intent;

function replaceSite(g: GeneratedSpec, s: Site, replacement: string): string {
  return replaceAt(g.text, s.line, s.col, s.text.length, replacement);
}

function sitesWhere(g: GeneratedSpec, f: (s: Site) => boolean): Site[] {
  return g.sites.filter(f);
}

/** A value in [lo, hi] for which `bad` holds, or null. */
function pickWhere(rng: Rng, lo: number, hi: number, bad: (x: number) => boolean): number | null {
  const xs: number[] = [];
  for (let x = lo; x <= hi; x++) if (bad(x)) xs.push(x);
  return xs.length ? rng.pick(xs) : null;
}

/** Replace the value of a site of the given constraint with a bad value. */
function constraintMaker(constraint: Site["constraint"], code: string, badValue: (g: GeneratedSpec, s: Site, rng: Rng) => number | null): Maker {
  return (g, rng) => {
    const sites = sitesWhere(g, (s) => s.kind === "value" && s.constraint === constraint);
    if (!sites.length) return null;
    const s = rng.pick(sites);
    const v = badValue(g, s, rng);
    if (v === null) return null;
    return { what: `${s.where}: \`${s.text}\` -> \`${v}\``, text: replaceSite(g, s, String(v)), code, line: s.line, col: s.col };
  };
}

const schemaKeys: Record<string, string[]> = {
  "tokenizer:chars": Object.keys(tokenizerKinds.chars!.settings),
  "encoder:custom": Object.keys(customSchemas.encoder),
  "decoder:custom": Object.keys(customSchemas.decoder),
  train: Object.keys(trainSchema),
  stage: Object.keys(stageSchema),
};
for (const p of presets) schemaKeys[`${p.section}:${p.name}`] = Object.keys(p.settings);

/** Values of the wrong type or range at integer sites that nothing else evaluates. */
function intSiteMaker(code: string, make: (s: Site, rng: Rng) => string): Maker {
  return (g, rng) => {
    const sites = sitesWhere(g, (s) => s.kind === "value" && s.type === "int" && !s.referenced);
    if (!sites.length) return null;
    const s = rng.pick(sites);
    const v = make(s, rng);
    return { what: `${s.where}: \`${s.text}\` -> \`${v}\``, text: replaceSite(g, s, v), code, line: s.line, col: s.col };
  };
}

const corruptions: { name: string; make: Maker }[] = [
  {
    name: "E0301: a patch size that does not divide the image",
    make: constraintMaker("patch", "E0301", (g, _s, rng) => {
      const [h, w] = intentOf(g).encoder.image;
      return pickWhere(rng, 2, Math.max(h, w) + 5, (p) => h % p !== 0 || w % p !== 0);
    }),
  },
  {
    name: "E0302: encoder heads that do not divide the width",
    make: constraintMaker("encoderHeads", "E0302", (g, _s, rng) => pickWhere(rng, 2, 64, (h) => intentOf(g).encoder.dim % h !== 0)),
  },
  {
    name: "E0302: decoder heads that do not divide the width",
    make: constraintMaker("decoderHeads", "E0302", (g, _s, rng) => pickWhere(rng, 2, 64, (h) => intentOf(g).decoder.dim % h !== 0)),
  },
  {
    name: "E0302: key/value heads that do not divide the heads",
    make: constraintMaker("kvHeads", "E0302", (g, _s, rng) => pickWhere(rng, 2, intentOf(g).decoder.heads + 4, (k) => intentOf(g).decoder.heads % k !== 0)),
  },
  {
    name: "E0305: a projector output width that is not the decoder's",
    make: constraintMaker("projectorOut", "E0305", (g, _s, rng) => {
      const d = intentOf(g).decoder.dim;
      return pickWhere(rng, Math.max(1, d - 16), d + 16, (x) => x !== d);
    }),
  },
  {
    name: "E0306: a context that cannot hold the visual tokens and one text token",
    make: constraintMaker("context", "E0306", (g, _s, rng) => rng.int(1, intentOf(g).encoder.tokens)),
  },
  {
    name: "E0307: a written vocabulary that is not the tokenizer's size",
    make: (g, rng) => {
      const size = intentOf(g).tokenizer.size;
      const v = pickWhere(rng, Math.max(1, size - 8), size + 8, (x) => x !== size)!;
      const written = sitesWhere(g, (s) => s.constraint === "vocab");
      if (written.length) {
        const s = written[0]!;
        return { what: `${s.where}: \`${s.text}\` -> \`${v}\``, text: replaceSite(g, s, String(v)), code: "E0307", line: s.line, col: s.col };
      }
      const ins = sitesWhere(g, (s) => s.kind === "insert")[0];
      if (!ins) return null;
      const added = ` vocab: ${v},`;
      return { what: `added \`vocab: ${v}\` to the decoder`, text: replaceAt(g.text, ins.line, ins.col, 0, added), code: "E0307", line: ins.line, col: ins.col + " vocab: ".length };
    },
  },
  {
    name: "E0202: a misspelt setting, with a did-you-mean",
    make: (g, rng) => {
      const sites = rng.shuffle(sitesWhere(g, (s) => s.kind === "key" && s.removable === true && s.schema !== undefined && schemaKeys[s.schema] !== undefined));
      for (const s of sites) {
        const typo = typosOf(s.text, schemaKeys[s.schema!]!, rng)[0];
        if (!typo) continue;
        return { what: `${s.where}: \`${s.text}\` -> \`${typo}\``, text: replaceSite(g, s, typo), code: "E0202", line: s.line, col: s.col, help: `did you mean \`${s.text}\`?` };
      }
      return null;
    },
  },
  {
    name: "E0203: a misspelt layer kind, with a did-you-mean",
    make: (g, rng) => {
      const known = [...userKinds(), "mix", "xf"];
      const sites = rng.shuffle(sitesWhere(g, (s) => s.kind === "layer"));
      for (const s of sites) {
        const typo = typosOf(s.text, known, rng)[0];
        if (!typo) continue;
        return { what: `${s.where}: \`${s.text}\` -> \`${typo}\``, text: replaceSite(g, s, typo), code: "E0203", line: s.line, col: s.col, help: `did you mean \`${s.text}\`?` };
      }
      return null;
    },
  },
  {
    name: "E0401: a string where an integer goes",
    make: intSiteMaker("E0401", (_s, rng) => `"${rng.pick([1, 2, 8, 64])}"`),
  },
  {
    name: "E0402: a zero or negative size or count",
    make: intSiteMaker("E0402", (s, rng) => ((s.min ?? 1) >= 1 && rng.chance(0.5) ? "0" : `-${rng.pick([1, 2, 8, 64])}`)),
  },
  {
    name: "E0403: a size or count that is not an integer",
    make: intSiteMaker("E0403", (_s, rng) => rng.pick([`${2 * rng.int(1, 40) + 1} / 2`, `${4 * rng.int(1, 20) + 2} / 4`, "10 / 4", "(3 + 4) / 2"])),
  },
  {
    name: "E0402: a dropout of 1.5",
    make: (g, rng) => {
      const sites = sitesWhere(g, (s) => s.kind === "value" && s.type === "dropout");
      if (!sites.length) return null;
      const s = rng.pick(sites);
      return { what: `${s.where}: \`${s.text}\` -> \`1.5\``, text: replaceSite(g, s, "1.5"), code: "E0402", line: s.line, col: s.col };
    },
  },
  {
    name: "E0501: a stage that trains a misspelt module, with a did-you-mean",
    make: (g, rng) => {
      const s = rng.pick(sitesWhere(g, (x) => x.kind === "trainList"));
      const item = rng.pick(s.items!);
      const typo = typosOf(item.text, [...MODULE_NAMES, "tokenizer", "train"], rng)[0];
      if (!typo) return null;
      return { what: `${s.where}: \`${item.text}\` -> \`${typo}\``, text: replaceAt(g.text, s.line, item.col, item.text.length, typo), code: "E0501", line: s.line, col: item.col, help: `did you mean \`${item.text}\`?` };
    },
  },
  {
    name: "E0501: a stage that trains the tokenizer (a section, not a module)",
    make: (g, rng) => {
      const s = rng.pick(sitesWhere(g, (x) => x.kind === "trainList"));
      const item = rng.pick(s.items!);
      // Reported against the whole list: the module names are checked once they are read.
      return { what: `${s.where}: \`${item.text}\` -> \`tokenizer\``, text: replaceAt(g.text, s.line, item.col, item.text.length, "tokenizer"), code: "E0501", line: s.line, col: s.col };
    },
  },
  {
    name: "E0502: a stage that trains nothing",
    make: (g, rng) => {
      const s = rng.pick(sitesWhere(g, (x) => x.kind === "trainList"));
      // The stage's modules may now be frozen everywhere: W0501 is a consequence, allowed.
      return { what: `${s.where}: \`${s.text}\` -> \`[]\``, text: replaceSite(g, s, "[]"), code: "E0502", line: s.line, col: s.col, allowWarnings: ["W0501"] };
    },
  },
];

corruptions.forEach(({ name, make }, k) => {
  test(`corruption ${name}`, () => {
    const failures: string[] = [];
    const want = ONLY !== undefined ? 1 : PER_KIND;
    let done = 0;
    for (let i = 0; done < want && i < want * 20; i++) {
      const seed = specSeed(k + 1, i);
      const g = generateValidSpec(seed);
      const m = make(g, new Rng(seed ^ 0x5bd1e995));
      if (!m) continue;
      done++;
      const r = checkSource(PATH, m.text);
      const all = seen(r.diagnostics, r.sources);
      // Distinct errors: a base model and a model extending it report a shared mistake twice.
      const errors = [...new Map(all.filter((d) => d.severity === "error").map((d) => [`${d.code} ${d.line}:${d.col}`, d])).values()];
      const warnings = all.filter((d) => d.severity === "warning" && !(m.allowWarnings ?? []).includes(d.code));
      const e = errors[0];
      const problems: string[] = [];
      if (errors.length !== 1) problems.push(`want exactly one error, got ${errors.length}`);
      if (e && (e.code !== m.code || e.line !== m.line || e.col !== m.col)) problems.push(`want ${m.code} at ${m.line}:${m.col}, got ${e.code} at ${e.line}:${e.col}`);
      if (e && m.help && !e.help.includes(m.help)) problems.push(`want the help line ${JSON.stringify(m.help)}`);
      if (warnings.length) problems.push(`unexpected warnings: ${warnings.map((w) => w.code).join(", ")}`);
      if (problems.length) {
        const original = checkSource(PATH, g.text);
        const note = original.diagnostics.length ? `\nNOTE: the spec before the corruption was not clean either:\n${show(seen(original.diagnostics, original.sources))}` : "";
        failures.push(failure(`${m.what}: ${problems.join("; ")}`, seed, m.text, `diagnostics:\n${show(all)}${note}`));
      }
    }
    if (ONLY === undefined) assert.ok(done >= Math.min(want, 5), `only ${done} specs had a site for this corruption (wanted ${want})`);
    report(failures, done, `\`${name}\` cases`);
  });
});
