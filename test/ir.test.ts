// The IR document: its JSON Schema against the compiler's registries, every spec's IR valid,
// JSON and YAML round trips, hand-corrupted documents rejected at the right line, and a seeded
// random corruption loop that must never throw.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { analyze } from "../compiler/analyze.js";
import { compile } from "../compiler/compile.js";
import type { Diagnostic } from "../compiler/diagnostics/diagnostic.js";
import { renderText } from "../compiler/diagnostics/render-text.js";
import { architectureHash, lower } from "../compiler/ir/lower.js";
import { rebaseIr } from "../compiler/ir/paths.js";
import type { Ir } from "../compiler/ir/types.js";
import { irSchema, parseIr, validateIr, type IrInput } from "../compiler/ir/validate.js";
import { irToJson, irToYaml } from "../compiler/ir/yaml.js";
import { layerKinds } from "../compiler/layers/index.js";
import { SPECIALS } from "../compiler/resolve/tokenizer.js";
import { dataSources, optimizers, schedules } from "../compiler/resolve/train.js";
import { mulberry32 } from "../tools/random.js";
import { repoPath, repoRoot } from "./helpers/paths.js";
import { generateValidSpec } from "./helpers/spec-gen.js";

const SEEMORE = repoPath("specs", "seemore.vlm");
const specs = readdirSync(repoPath("specs"))
  .filter((f) => f.endsWith(".vlm"))
  .map((f) => repoPath("specs", f));

/** A fresh, unshared copy (lower() shares shape arrays between layers). */
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

let cached: Ir | undefined;
function seemore(): Ir {
  if (!cached) {
    const r = compile(SEEMORE, { baseDir: repoRoot });
    assert.ok(r.ir, renderText(r.diagnostics, r.sources, { color: false }));
    cached = clone(r.ir);
  }
  return clone(cached);
}

const errors = (ds: readonly Diagnostic[]) => ds.filter((d) => d.severity === "error");

function render(r: IrInput): string {
  return renderText(r.diagnostics, r.sources, { color: false });
}

/** 1-based line of the `nth` line of `text` that contains `needle`. */
function lineOf(text: string, needle: string, nth = 1): number {
  const lines = text.split("\n");
  let seen = 0;
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.includes(needle) && ++seen === nth) return i + 1;
  }
  throw new Error(`no line ${nth} containing ${JSON.stringify(needle)}`);
}

function linesOf(r: IrInput): { code: string; line: number; message: string }[] {
  return r.diagnostics.map((d) => ({ code: d.code, line: r.source.position(d.span.start).line, message: d.message }));
}

/** Asserts a diagnostic with `code` at `line` whose message matches `message`. */
function expectAt(r: IrInput, code: string, line: number, message: RegExp): void {
  assert.equal(r.ir, null, "the document should have been rejected");
  const found = linesOf(r).some((d) => d.code === code && d.line === line && message.test(d.message));
  assert.ok(found, `expected ${code} at line ${line} matching ${message}; got:\n${render(r)}`);
}

// ---- the schema ----

interface SchemaNode {
  enum?: string[];
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  definitions?: Record<string, SchemaNode>;
}

test("the schema's layer kinds are the registry's", () => {
  const schema = irSchema() as SchemaNode;
  const kinds = schema.definitions!.layer!.properties!.kind!.enum!;
  assert.deepEqual([...kinds].sort(), [...layerKinds.keys()].sort());
});

test("the schema's optimizers, schedules, data sources and special tokens are the compiler's", () => {
  const d = (irSchema() as SchemaNode).definitions!;
  assert.deepEqual([...d.optimizer!.properties!.kind!.enum!].sort(), Object.keys(optimizers).sort());
  assert.deepEqual([...d.schedule!.properties!.kind!.enum!].sort(), Object.keys(schedules).sort());
  assert.deepEqual([...d.data!.properties!.kind!.enum!].sort(), Object.keys(dataSources).sort());
  assert.deepEqual(d.tokenizer!.properties!.specials!.items!.enum, [...SPECIALS]);
});

test("the IR of every model of every spec in specs/ is valid", () => {
  assert.ok(specs.length > 0);
  for (const spec of specs) {
    const a = analyze(spec);
    assert.deepEqual(errors(a.diagnostics).map((d) => d.message), [], `${spec} has errors`);
    const sources = new Map([...a.program.files].map(([p, f]) => [p, f.source]));
    for (const m of a.models) {
      const ir = clone(lower(m, { baseDir: repoRoot, sources }));
      const diags = validateIr(ir, `${spec}#${m.name}`);
      assert.deepEqual(diags.map((d) => d.message), [], `the IR of ${m.name} in ${spec}`);
    }
  }
});

test("the IR of generated specs (every preset, custom chains, extends) is valid and round-trips", () => {
  let models = 0;
  for (let seed = 1; seed <= 30; seed++) {
    const g = generateValidSpec(seed);
    const path = repoPath(`generated-${seed}.vlm`);
    const a = analyze(path, g.text);
    assert.deepEqual(errors(a.diagnostics).map((d) => d.message), [], `seed ${seed}`);
    const sources = new Map([...a.program.files].map(([p, f]) => [p, f.source]));
    for (const m of a.models) {
      models++;
      const ir = clone(lower(m, { baseDir: repoRoot, sources }));
      assert.deepEqual(validateIr(ir).map((d) => d.message), [], `seed ${seed}, model ${m.name}`);
      if (seed % 5 === 0) assert.deepEqual(parseIr(repoPath("g.yaml"), irToYaml(ir)).ir, ir, `seed ${seed}, model ${m.name}`);
    }
  }
  assert.ok(models >= 30);
});

test("checking a .vlm file loads neither ajv nor yaml", () => {
  const script = [
    'import { createRequire } from "node:module";',
    `const { check } = await import(${JSON.stringify(repoPath("dist", "compiler", "check.js"))});`,
    `const r = check([${JSON.stringify(SEEMORE)}]);`,
    "const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => /node_modules[\\\\/](ajv|yaml)[\\\\/]/.test(k));",
    "process.stdout.write(JSON.stringify({ ok: r.ok, loaded }));",
  ].join("\n");
  const out = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  assert.equal(out.status, 0, out.stderr);
  assert.deepEqual(JSON.parse(out.stdout), { ok: true, loaded: [] });
});

// ---- round trips ----

for (const spec of specs) {
  test(`round trip through YAML and JSON: ${spec.slice(repoRoot.length + 1)}`, () => {
    const r = compile(spec, { baseDir: repoRoot });
    assert.ok(r.ir);
    const ir = clone(r.ir);
    const y = parseIr(join(repoRoot, "m.yaml"), irToYaml(r.ir));
    assert.deepEqual(y.diagnostics, [], render(y));
    assert.deepEqual(y.ir, ir);
    const j = parseIr(join(repoRoot, "m.json"), irToJson(r.ir));
    assert.deepEqual(j.diagnostics, [], render(j));
    assert.deepEqual(j.ir, ir);
    // Plain JSON.stringify output reads the same.
    assert.deepEqual(parseIr(join(repoRoot, "plain.json"), JSON.stringify(r.ir)).ir, ir);
    // spec -> YAML -> IR -> YAML is a fixed point.
    assert.equal(irToYaml(y.ir!), irToYaml(r.ir));
  });
}

test("the YAML keeps shapes on one line and quotes what needs quoting", () => {
  const ir = seemore();
  const y = irToYaml(ir);
  assert.match(y, /^ {8}output: \[B, 37, 512\]$/m);
  assert.match(y, /^ {2}alphabet: "\\n !\$&',-\.3:;\?ABC/m);
  assert.match(y, /^ {12}name: "0"$/m, "a name that looks like a number is quoted");
  assert.match(y, /^ {16}name: ""$/m);
  assert.doesNotMatch(y, /[&*]a\d/, "no anchors or aliases");
  const special = clone(ir);
  special.tokenizer!.alphabet = "#: -?[]{},&*!|>'\"%@`\t\\é😀\u2028";
  special.tokenizer!.size = Array.from(special.tokenizer!.alphabet).length + special.tokenizer!.specials.length;
  // (A decoder would no longer match the tokenizer's size: keep the encoder and projector.)
  delete special.modules.decoder;
  special.train = null;
  special.hash = architectureHash(special);
  const back = parseIr("s.yaml", irToYaml(special));
  assert.deepEqual(back.diagnostics, [], render(back));
  assert.deepEqual(back.ir, special);
});

test("JSON output is two-space indented with a final newline", () => {
  const j = irToJson(seemore());
  assert.ok(j.startsWith('{\n  "vlmc_ir": 1,\n'));
  assert.ok(j.endsWith("}\n"));
  assert.deepEqual(JSON.parse(j), seemore());
});

test("re-basing a document keeps its paths pointing at the same files", () => {
  const ir = seemore();
  const moved = rebaseIr(ir, repoRoot, join(repoRoot, "a", "b"));
  assert.equal(moved.span!.file, "../../specs/seemore.vlm");
  assert.deepEqual(rebaseIr(moved, join(repoRoot, "a", "b"), repoRoot), ir);
});

// ---- hand-corrupted documents ----

function corrupt(edit: (ir: Ir) => void, format: "yaml" | "json" = "yaml"): { text: string; r: IrInput } {
  const ir = seemore();
  edit(ir);
  const text = format === "yaml" ? irToYaml(ir) : irToJson(ir);
  return { text, r: parseIr(join(repoRoot, `corrupt.${format}`), text) };
}

test("a wrong version is E0602 at the version", () => {
  const text = irToYaml(seemore()).replace("vlmc_ir: 1", "vlmc_ir: 2");
  const r = parseIr("v.yaml", text);
  expectAt(r, "E0602", 1, /IR version 2/);
  assert.equal(r.diagnostics.length, 1);
  const none = parseIr("v.yaml", text.replace("vlmc_ir: 2\n", ""));
  expectAt(none, "E0602", 1, /no `vlmc_ir`/);
  const json = parseIr("v.json", irToJson(seemore()).replace('"vlmc_ir": 1', '"vlmc_ir": "1"'));
  expectAt(json, "E0602", 2, /IR version "1"/);
});

test("unreadable text is E0602 at the syntax error", () => {
  const text = irToYaml(seemore());
  const at = lineOf(text, "output: [B, 37, 512]");
  const broken = text.replace("output: [B, 37, 512]", "output: [B, 37, 512");
  const r = parseIr("s.yaml", broken);
  assert.ok(r.diagnostics.length > 0 && r.diagnostics.every((d) => d.code === "E0602"), render(r));
  assert.ok(linesOf(r)[0]!.line >= at, render(r));
  const json = parseIr("s.json", '{\n  "vlmc_ir": 1,\n  "model": "m",,\n}\n');
  expectAt(json, "E0602", 3, /not valid JSON/);
  expectAt(parseIr("s.yaml", ""), "E0602", 1, /empty/);
  expectAt(parseIr("s.yaml", "- 1\n- 2\n"), "E0602", 1, /a mapping/);
  expectAt(parseIr("s.yaml", "vlmc_ir: 1\nvlmc_ir: 1\n"), "E0602", 2, /not valid YAML/);
});

test("a missing field is E0601 at its mapping", () => {
  const { text, r } = corrupt((ir) => delete (ir.tokenizer as Partial<Ir["tokenizer"]> & object).size);
  expectAt(r, "E0601", lineOf(text, "tokenizer:"), /`tokenizer` lacks the required field `size`/);
  const layer = corrupt((ir) => delete (ir.modules.projector!.layers[2] as { params?: unknown }).params);
  expectAt(layer.r, "E0601", lineOf(layer.text, "path: projector.2") - 2, /`modules\.projector\.layers\[2\]` lacks the required field `params`/);
});

test("an unknown field is E0601 at its key", () => {
  const { text, r } = corrupt((ir) => Object.assign(ir.train!.stages[0]!, { warmup_steps: 7 }));
  expectAt(r, "E0601", lineOf(text, "warmup_steps: 7"), /unknown field `warmup_steps`/);
  const json = corrupt((ir) => Object.assign(ir.modules.encoder!.layers[0]!.params[0]!, { frozen: true }), "json");
  expectAt(json.r, "E0601", lineOf(json.text, '"frozen": true'), /unknown field `frozen`/);
});

test("a negative dim is E0601 at the dim", () => {
  const { text, r } = corrupt((ir) => (ir.modules.encoder!.layers[0]!.output[1] = -37));
  expectAt(r, "E0601", lineOf(text, "output: [B, -37, 512]"), /must be a positive integer or a symbol.*found -37/);
  assert.equal(r.diagnostics.length, 1, render(r));
  const zero = corrupt((ir) => (ir.modules.projector!.layers[0]!.params[0]!.shape = [512, 0]), "json");
  expectAt(zero.r, "E0601", lineOf(zero.text, '"shape": [512, 0]'), /must be a whole number >= 1, found 0/);
  const symbol = corrupt((ir) => (ir.modules.decoder!.output[1] = "1+t"));
  expectAt(symbol.r, "E0601", lineOf(symbol.text, "output: [B, 1+t, 66]"), /symbol/);
});

test("an unknown layer kind is E0601 at the kind, with a suggestion", () => {
  const { text, r } = corrupt((ir) => (ir.modules.projector!.layers[1]!.kind = "gleu"));
  expectAt(r, "E0601", lineOf(text, "kind: gleu"), /must be one of .*`gelu`.*found "gleu"/);
  assert.ok(r.diagnostics[0]!.help.includes("did you mean `gelu`?"));
});

test("an output shape that does not follow from the attrs is E0601 at the output", () => {
  const { text, r } = corrupt((ir) => (ir.modules.projector!.layers[0]!.output = ["B", 1, 2049]));
  expectAt(r, "E0601", lineOf(text, "output: [B, 1, 2049]"), /records output \[B, 1, 2049\], but a `linear` with these attrs turns \[B, 1, 512\] into \[B, 1, 2048\]/);
  const attrs = corrupt((ir) => (ir.modules.encoder!.layers[0]!.attrs.patch = 12));
  expectAt(attrs.r, "E0601", lineOf(attrs.text, "output: [B, 37, 512]"), /turns \[B, 96, 96, 3\] into \[B, 65, 512\]/);
  const heads = corrupt((ir) => (ir.modules.decoder!.layers[4]!.children![0]!.children![0]!.children![1]!.attrs.heads = 7));
  // At the layer's kind: `- kind: attention`, then name, path and `attrs:`, then `heads: 7`.
  expectAt(heads.r, "E0601", lineOf(heads.text, "heads: 7") - 4, /`decoder\.blocks\.0\.attn` does not follow from its attrs .*width 128 is not divisible by 7 heads/);
});

test("a changed parameter shape is E0601 at the shape", () => {
  const { text, r } = corrupt((ir) => (ir.modules.projector!.layers[2]!.params[0]!.shape = [2048, 129]));
  expectAt(r, "E0601", lineOf(text, "shape: [2048, 129]"), /parameter `projector\.2\.weight` is recorded as \[2048, 129\], but a `linear` .* makes it \[2048, 128\]/);
  assert.equal(r.diagnostics.length, 1, render(r));
});

test("a duplicate parameter name is E0601 at the second one", () => {
  const { text, r } = corrupt((ir) => (ir.modules.projector!.layers[2]!.params[1]!.name = "projector.2.weight"));
  expectAt(r, "E0601", lineOf(text, "- name: projector.2.weight", 2), /parameter name `projector\.2\.weight` is used twice/);
});

test("a decoder vocabulary that is not the tokenizer's size is E0601 at the vocab", () => {
  const { text, r } = corrupt((ir) => {
    ir.tokenizer!.specials.push("bos");
    ir.tokenizer!.size = 67;
  });
  expectAt(r, "E0601", lineOf(text, "vocab: 66"), /decoder vocabulary 66 does not match the tokenizer's 67 tokens/);
  const size = corrupt((ir) => (ir.tokenizer!.size = 65));
  expectAt(size.r, "E0601", lineOf(size.text, "size: 65"), /the tokenizer's size is 66, not 65/);
});

test("a stage that trains a module the model does not have is E0601 at the stage's list", () => {
  const { text, r } = corrupt((ir) => delete ir.modules.projector);
  expectAt(r, "E0601", lineOf(text, "train: [encoder, projector, decoder]"), /trains `projector`, which this model does not have/);
  const frozen = corrupt((ir) => (ir.train!.stages[0]!.train = ["encoder", "decoder"]));
  expectAt(frozen.r, "E0601", lineOf(frozen.text, "frozen: []"), /neither trains nor freezes `projector`/);
});

test("module boundaries, paths and arguments are verified", () => {
  const proj = corrupt((ir) => (ir.modules.projector!.input = ["B", 1, 256]));
  expectAt(proj.r, "E0601", lineOf(proj.text, "input: [B, 1, 256]"), /the projector's input \[B, 1, 256\] is not the encoder's output \[B, 1, 512\]/);
  const path = corrupt((ir) => (ir.modules.projector!.layers[1]!.path = "projector.9"));
  expectAt(path.r, "E0601", lineOf(path.text, "path: projector.9"), /does not match its place: `projector\.1`/);
  const arg = corrupt((ir) => (ir.modules.projector!.layers[3]!.attrs.p = 1.5));
  expectAt(arg.r, "E0601", lineOf(arg.text, "p: 1.5"), /`p` of `dropout` must be a number >= 0 and < 1, found 1\.5/);
  const unresolved = corrupt((ir) => (ir.modules.encoder!.layers[3]!.children![0]!.children![0]!.children![1]!.attrs.kv_heads = 0));
  expectAt(unresolved.r, "E0601", lineOf(unresolved.text, "kv_heads: 0"), /recorded as 0, but it resolves to 8/);
  const init = corrupt((ir) => (ir.modules.projector!.layers[0]!.params[1]!.init = { kind: "ones" }));
  expectAt(init.r, "E0601", lineOf(init.text, "- name: projector.0.bias") + 2, /`projector\.0\.bias` is initialised with \{"kind":"ones"\}, but a `linear` initialises it with \{"kind":"zeros"\}/);
});

test("a stale hash is E0601 at the hash, and only once all else is right", () => {
  const { text, r } = corrupt((ir) => (ir.modules.projector!.layers[3]!.attrs.p = 0.2));
  expectAt(r, "E0601", lineOf(text, "hash: sha256:"), /`hash` is not the hash of this architecture/);
  assert.equal(r.diagnostics.length, 1);
});

test("schema findings are capped, one per place", () => {
  const ir = seemore() as unknown as { modules: { encoder: { layers: { attrs: Record<string, unknown> }[] } } };
  for (let i = 0; i < 40; i++) ir.modules.encoder.layers[0]!.attrs[`x${i}`] = null;
  const r = parseIr("c.yaml", irToYaml(ir as unknown as Ir));
  assert.equal(r.diagnostics.length, 20);
  assert.ok(r.diagnostics[19]!.notes.some((n) => /20 more/.test(n)));
});

// ---- random corruption ----

type Slot = { path: (string | number)[]; parent: Record<string | number, unknown>; key: string | number; value: unknown };

function slots(v: unknown, path: (string | number)[] = [], out: Slot[] = []): Slot[] {
  if (Array.isArray(v)) v.forEach((x, i) => (out.push({ path: [...path, i], parent: v as unknown as Record<number, unknown>, key: i, value: x }), slots(x, [...path, i], out)));
  else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) (out.push({ path: [...path, k], parent: v as Record<string, unknown>, key: k, value: x }), slots(x, [...path, k], out));
  return out;
}

test("random corruptions are rejected or still verify, and never throw", () => {
  const random = mulberry32(20240611); // seeded, so that a failure reproduces
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const base = seemore();
  const kinds = { number: 0, delete: 0, string: 0, swap: 0 };
  let rejected = 0;
  for (let i = 0; i < 300; i++) {
    const ir = clone(base);
    const all = slots(ir);
    const op = pick(["number", "number", "delete", "string", "swap"] as const);
    let what = "";
    let structural = false;
    if (op === "number") {
      const s = pick(all.filter((x) => typeof x.value === "number"));
      const v = s.value as number;
      const next = pick([v + 1, v - 1, v * 2, 0, -v, v + 0.5, 1e9].filter((x) => x !== v));
      s.parent[s.key] = next;
      what = `${s.path.join(".")}: ${v} -> ${next}`;
      // Shapes, attributes and parameter shapes of layers and modules.
      structural = s.path[0] === "modules" && !s.path.includes("span") && (s.path.includes("input") || s.path.includes("output") || s.path.includes("shape") || s.path.includes("attrs"));
    } else if (op === "delete") {
      const s = pick(all.filter((x) => !Array.isArray(x.parent)));
      delete s.parent[s.key];
      what = `delete ${s.path.join(".")}`;
    } else if (op === "string") {
      const s = pick(all.filter((x) => typeof x.value === "string"));
      const next = pick([`${s.value as string}x`, "", "B", "T", "linear", "encoder", "1+T", "null"].filter((x) => x !== s.value));
      s.parent[s.key] = next;
      what = `${s.path.join(".")}: ${JSON.stringify(s.value)} -> ${JSON.stringify(next)}`;
    } else {
      const arrays = all.filter((x) => Array.isArray(x.value) && (x.value as unknown[]).length >= 2);
      const s = pick(arrays);
      const xs = s.value as unknown[];
      const a = Math.floor(random() * xs.length);
      let b = Math.floor(random() * (xs.length - 1));
      if (b >= a) b++;
      [xs[a], xs[b]] = [xs[b], xs[a]];
      what = `swap ${s.path.join(".")}[${a}] and [${b}]`;
    }
    kinds[op]++;
    let diags: Diagnostic[];
    try {
      diags = validateIr(ir);
      // Every tenth also through text, positions and all.
      if (i % 10 === 0) {
        const r = parseIr("fuzz.yaml", irToYaml(ir));
        assert.equal(r.ir === null, errors(r.diagnostics).length > 0, what);
        assert.equal(errors(r.diagnostics).length > 0, errors(diags).length > 0, `${what}: text and memory disagree`);
        for (const d of r.diagnostics) assert.ok(d.span.start >= 0 && d.span.end <= r.source.text.length, what);
      }
    } catch (e) {
      assert.fail(`mutation ${i} (${what}) threw: ${(e as Error).stack}`);
    }
    if (errors(diags).length > 0) rejected++;
    if (structural) {
      assert.ok(errors(diags).length > 0, `mutation ${i} (${what}) was not rejected`);
      // Attribute changes that keep every shape (a dropout rate) are caught by the hash alone.
      const beyondHash = diags.some((d) => !/`hash`/.test(d.message));
      if (!/\.attrs\./.test(what)) assert.ok(beyondHash, `mutation ${i} (${what}) was only caught by the hash`);
    }
  }
  assert.ok(rejected > 150, `only ${rejected} of 300 mutations were rejected`);
  assert.ok(Object.values(kinds).every((n) => n > 20), JSON.stringify(kinds));
});
