// The runtime's entry contract for IR documents: a runtime builds tensors only from what
// `admitIr` (compiler/ir/validate.ts) admits, and `admitIr` rejects every corrupted document,
// with E0601 or E0602 diagnostics, before anything reaches tfjs.
//
// Random corruptions of valid IRs (of specs/seemore.vlm and of small generated specs), each of
// a kind that must be rejected: a shape number, a parameter's shape or initialiser, an
// attribute (wrong type, out of range, unknown, missing, a layer's `init` its parameters do not
// follow), a layer kind, a missing required field, a duplicated or dropped parameter, layers
// out of order, the tokenizer's size, the hash (E0601); the version, broken syntax, not a
// mapping (E0602). Each goes in as YAML text, JSON text or a value in memory, the way a runtime
// entry (`vlmc forward`, training) takes it: admit, and build a Model only from an admitted IR.
// For each: no IR admitted, no Model created, no tensor or variable created, errors only of
// those codes, at places inside the document. The valid documents themselves are admitted and
// built, so the rejections are the corruptions' doing. (test/ir.test.ts checks the messages and
// positions of hand-made corruptions, and that arbitrary mutations never throw.)
//
// Reproduce a failure: the message names the case's seed. VLMC_IR_REJECT_SEED=<n> runs
// another set, VLMC_IR_REJECT_CASES=<n> sets how many (default 196: 14 of each kind).
import { test } from "node:test";
import assert from "node:assert/strict";
import { compile } from "../compiler/compile.js";
import type { Diagnostic } from "../compiler/diagnostics/diagnostic.js";
import type { Ir, IrLayer, IrParam, IrValue } from "../compiler/ir/types.js";
import { admitIr } from "../compiler/ir/validate.js";
import { irToJson, irToYaml } from "../compiler/ir/yaml.js";
import { layerKinds } from "../compiler/layers/index.js";
import { initBackend, type Tf } from "../runtime/backend.js";
import { irParams, Model } from "../runtime/model.js";
import { envInt } from "../tools/random.js";
import { repoPath } from "./helpers/paths.js";
import { generateValidSpec, Rng } from "./helpers/spec-gen.js";

const SEED = envInt("VLMC_IR_REJECT_SEED", 0x1c0de);
const CASES = envInt("VLMC_IR_REJECT_CASES", 196);
const SHOW = 3;

// ---- the runtime's path: admit, then build ----

type Doc = { form: "yaml" | "json"; text: string } | { form: "value"; value: unknown };

let modelsCreated = 0;

/** What a runtime entry does with a document: admit it, and build a Model only from what is admitted. */
function enter(tf: Tf, doc: Doc): { model: Model | null; diagnostics: Diagnostic[]; text: string } {
  const r = doc.form === "value" ? admitIr(doc.value) : admitIr(doc.text, `doc.${doc.form}`);
  if (!r.ir) return { model: null, diagnostics: r.diagnostics, text: r.source.text };
  modelsCreated++;
  return { model: Model.create(tf, r.ir, 0), diagnostics: r.diagnostics, text: r.source.text };
}

/** Tensors and variables tfjs holds. */
function held(tf: Tf): { tensors: number; variables: number } {
  return { tensors: tf.memory().numTensors, variables: Object.keys(tf.engine().registeredVariables).length };
}

// ---- valid documents ----

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

interface Base {
  name: string;
  ir: Ir;
  /** YAML of a large IR takes ~0.1 s to parse: used for some of its cases only. */
  large: boolean;
}

function bases(): Base[] {
  const out: Base[] = [];
  const s = compile(repoPath("specs", "seemore.vlm"));
  assert.ok(s.ir, "specs/seemore.vlm compiles");
  out.push({ name: "specs/seemore.vlm", ir: clone(s.ir), large: true });
  for (let i = 0; out.length < 9; i++) {
    const seed = 9000 + i;
    const g = generateValidSpec(seed, { size: "small" });
    const r = compile("ir-reject/generated.vlm", { text: g.text });
    assert.ok(r.ir, `generated spec ${seed} compiles`);
    out.push({ name: `generated spec ${seed}`, ir: clone(r.ir), large: false });
  }
  return out;
}

// ---- corruptions ----

interface Located<T> {
  value: T;
  /** A readable path: `modules.decoder.layers[3].params[0]`. */
  where: string;
}

function layersOf(ir: Ir): Located<IrLayer>[] {
  const out: Located<IrLayer>[] = [];
  const walk = (ls: IrLayer[], where: string) =>
    ls.forEach((l, i) => {
      const w = `${where}[${i}]`;
      out.push({ value: l, where: w });
      if (l.children) walk(l.children, `${w}.children`);
    });
  for (const [m, mod] of Object.entries(ir.modules)) walk(mod.layers, `modules.${m}.layers`);
  return out;
}

/** Every array of layers (a module's chain, a layer's children), for reordering. */
function chainsOf(ir: Ir): Located<IrLayer[]>[] {
  const out: Located<IrLayer[]>[] = Object.entries(ir.modules).map(([m, mod]) => ({ value: mod.layers, where: `modules.${m}.layers` }));
  for (const l of layersOf(ir)) if (l.value.children) out.push({ value: l.value.children, where: `${l.where}.children` });
  return out;
}

/** The numbers of every recorded shape (modules' and layers' input and output). */
function shapeNumbers(ir: Ir): { shape: (number | string)[]; i: number; where: string }[] {
  const out: { shape: (number | string)[]; i: number; where: string }[] = [];
  const add = (shape: (number | string)[], where: string) => shape.forEach((d, i) => typeof d === "number" && out.push({ shape, i, where: `${where}[${i}]` }));
  for (const [m, mod] of Object.entries(ir.modules)) {
    add(mod.input, `modules.${m}.input`);
    add(mod.output, `modules.${m}.output`);
  }
  for (const l of layersOf(ir)) {
    add(l.value.input, `${l.where}.input`);
    add(l.value.output, `${l.where}.output`);
  }
  return out;
}

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));

type Code = "E0601" | "E0602";
/** A corruption: changes `ir` (a fresh copy) in place and says what it did; null when it does not apply to this IR. */
type Corrupt = (ir: Ir, rng: Rng) => { what: string; text?: (ir: Ir) => { form: "yaml" | "json"; text: string } } | null;

const CORRUPTIONS: Record<string, { code: Code; apply: Corrupt }> = {
  "shape number": {
    code: "E0601",
    apply(ir, rng) {
      const s = rng.pick(shapeNumbers(ir));
      const before = s.shape[s.i] as number;
      const next = rng.pick([before + 1, before * 2 + 1, 0, -before]);
      s.shape[s.i] = next;
      return { what: `${s.where}: ${before} -> ${next}` };
    },
  },
  "parameter shape": {
    code: "E0601",
    apply(ir, rng) {
      const ls = layersOf(ir).filter((l) => l.value.params.length > 0);
      const l = rng.pick(ls);
      const j = rng.int(0, l.value.params.length - 1);
      const p = l.value.params[j]!;
      const i = rng.int(0, p.shape.length - 1);
      const before = p.shape[i]!;
      p.shape[i] = rng.pick([before + 1, before * 3, 0]);
      return { what: `${l.where}.params[${j}].shape[${i}]: ${before} -> ${p.shape[i]}` };
    },
  },
  "parameter initialiser": {
    code: "E0601",
    apply(ir, rng) {
      const ls = layersOf(ir).filter((l) => l.value.params.length > 0);
      const l = rng.pick(ls);
      const j = rng.int(0, l.value.params.length - 1);
      const p = l.value.params[j]!;
      const before = JSON.stringify(p.init);
      p.init = p.init.kind === "normal" ? { kind: "normal", std: p.init.std * 2 } : p.init.kind === "zeros" ? { kind: "ones" } : { kind: "zeros" };
      return { what: `${l.where}.params[${j}].init: ${before} -> ${JSON.stringify(p.init)}` };
    },
  },
  "attribute value": {
    code: "E0601",
    apply(ir, rng) {
      const ls = layersOf(ir).filter((l) => Object.keys(l.value.attrs).length > 0);
      const l = rng.pick(ls);
      const key = rng.pick(Object.keys(l.value.attrs));
      const before = l.value.attrs[key]!;
      // A value of the wrong type, or out of every attribute's range (all are >= 0).
      const next = typeof before === "number" ? rng.pick([-1, -0.5]) : typeof before === "boolean" ? "maybe" : typeof before === "string" ? rng.pick(["bogus", 3]) : rng.pick([{ kind: "bogus" }, "zeros", []]);
      l.value.attrs[key] = next;
      return { what: `${l.where}.attrs.${key}: ${JSON.stringify(before)} -> ${JSON.stringify(next)}` };
    },
  },
  "unknown or missing attribute": {
    code: "E0601",
    apply(ir, rng) {
      const l = rng.pick(layersOf(ir));
      const keys = Object.keys(l.value.attrs);
      if (keys.length > 0 && rng.chance(0.5)) {
        const key = rng.pick(keys);
        delete l.value.attrs[key];
        return { what: `delete ${l.where}.attrs.${key}` };
      }
      l.value.attrs.bogus = 1;
      return { what: `${l.where}.attrs.bogus: 1` };
    },
  },
  "a layer's init its parameters do not follow": {
    code: "E0601",
    apply(ir, rng) {
      // Layers whose init makes a parameter (not a tied head's or sinusoidal positions').
      const ls = layersOf(ir).filter((l) => l.value.attrs.init !== undefined && l.value.params.some((p) => p.init.kind !== "zeros" && p.init.kind !== "ones"));
      if (ls.length === 0) return null;
      const l = rng.pick(ls);
      const before = JSON.stringify(l.value.attrs.init);
      l.value.attrs.init = rng.pick<IrValue>([{ kind: "normal", std: 0.37 }, { kind: "uniform", bound: 0.3 }, { kind: "zeros" }]);
      return { what: `${l.where}.attrs.init: ${before} -> ${JSON.stringify(l.value.attrs.init)}` };
    },
  },
  "layer kind": {
    code: "E0601",
    apply(ir, rng) {
      const l = rng.pick(layersOf(ir));
      const args = (k: string) => layerKinds.get(k)?.args.map((a) => a.name) ?? [];
      const others = [...layerKinds.keys()].filter((k) => !sameSet(args(k), args(l.value.kind)));
      const next = rng.chance(0.25) ? `${l.value.kind}x` : rng.pick(others);
      const before = l.value.kind;
      l.value.kind = next;
      return { what: `${l.where}.kind: ${before} -> ${next}` };
    },
  },
  "missing field": {
    code: "E0601",
    apply(ir, rng) {
      const r = ir as unknown as Record<string, Record<string, unknown>>;
      const options: [Record<string, unknown>, string, string][] = [];
      for (const k of ["model", "hash", "tokenizer", "modules", "train"]) options.push([r as unknown as Record<string, unknown>, k, k]);
      if (ir.tokenizer) for (const k of ["kind", "alphabet", "specials", "size"]) options.push([r.tokenizer!, k, `tokenizer.${k}`]);
      for (const [m, mod] of Object.entries(ir.modules)) for (const k of ["preset", "weights", "input", "output", "layers"]) options.push([mod as unknown as Record<string, unknown>, k, `modules.${m}.${k}`]);
      for (const l of layersOf(ir)) {
        for (const k of ["kind", "name", "path", "attrs", "input", "output", "params"]) options.push([l.value as unknown as Record<string, unknown>, k, `${l.where}.${k}`]);
        l.value.params.forEach((p, j) => {
          for (const k of ["name", "shape", "init", "decay"]) options.push([p as unknown as Record<string, unknown>, k, `${l.where}.params[${j}].${k}`]);
        });
      }
      const [obj, key, where] = rng.pick(options);
      delete obj[key];
      return { what: `delete ${where}` };
    },
  },
  "duplicated or dropped parameter": {
    code: "E0601",
    apply(ir, rng) {
      const l = rng.pick(layersOf(ir).filter((x) => x.value.params.length > 0));
      const j = rng.int(0, l.value.params.length - 1);
      if (rng.chance(0.5)) {
        l.value.params.push(clone(l.value.params[j]!) as IrParam);
        return { what: `${l.where}.params[${j}] given twice` };
      }
      l.value.params.splice(j, 1);
      return { what: `${l.where}.params[${j}] dropped` };
    },
  },
  "layers out of order": {
    code: "E0601",
    apply(ir, rng) {
      const chains = chainsOf(ir).filter((c) => c.value.length >= 2 && new Set(c.value.map((l) => JSON.stringify({ ...l, span: undefined }))).size === c.value.length);
      if (chains.length === 0) return null;
      const c = rng.pick(chains);
      const i = rng.int(0, c.value.length - 2);
      [c.value[i], c.value[i + 1]] = [c.value[i + 1]!, c.value[i]!];
      return { what: `${c.where}[${i}] and [${i + 1}] swapped` };
    },
  },
  "tokenizer size": {
    code: "E0601",
    apply(ir, rng) {
      if (!ir.tokenizer) return null;
      const before = ir.tokenizer.size;
      ir.tokenizer.size = rng.pick([before + 1, before - 1]);
      return { what: `tokenizer.size: ${before} -> ${ir.tokenizer.size}` };
    },
  },
  hash: {
    code: "E0601",
    apply(ir, rng) {
      const i = rng.int("sha256:".length, ir.hash.length - 1);
      const c = ir.hash[i] === "0" ? "1" : "0";
      ir.hash = ir.hash.slice(0, i) + c + ir.hash.slice(i + 1);
      return { what: `hash: one digit changed at ${i}` };
    },
  },
  version: {
    code: "E0602",
    apply(ir, rng) {
      const r = ir as unknown as Record<string, unknown>;
      const v = rng.pick([2, 0, "1", null, "delete"]);
      if (v === "delete") delete r.vlmc_ir;
      else r.vlmc_ir = v;
      return { what: `vlmc_ir: ${JSON.stringify(v)}` };
    },
  },
  "broken text": {
    code: "E0602",
    apply(_ir, rng) {
      const how = rng.pick(["truncated JSON", "a list", "a stray bracket", "empty"] as const);
      return {
        what: how,
        text: (ir) => {
          const json = irToJson(ir);
          switch (how) {
            case "truncated JSON":
              return { form: "json", text: json.slice(0, rng.int(1, json.length - 2)) };
            case "a list":
              return { form: "yaml", text: `- ${json.replace(/\n/g, " ")}\n` };
            case "a stray bracket": {
              const yaml = irToYaml(ir);
              const at = yaml.indexOf("\n", rng.int(0, yaml.length - 1));
              return { form: "yaml", text: `${yaml.slice(0, at < 0 ? yaml.length : at)}\n]]\n${yaml.slice(at < 0 ? yaml.length : at + 1)}` };
            }
            default:
              return { form: rng.pick(["yaml", "json"] as const), text: "" };
          }
        },
      };
    },
  },
};

// ---- the test ----

test("valid documents are admitted and built; the same documents corrupted are rejected before any tensor is made", async (t) => {
  const { tf } = await initBackend("wasm", { log: () => {} });
  const docs = bases();

  // Positive control: each valid document, in each form, is admitted and built.
  for (const b of docs) {
    const forms: Doc[] = [{ form: "json", text: irToJson(b.ir) }, { form: "value", value: clone(b.ir) }];
    if (!b.large) forms.push({ form: "yaml", text: irToYaml(b.ir) });
    for (const doc of forms) {
      const before = held(tf);
      const r = enter(tf, doc);
      assert.deepEqual(
        r.diagnostics.map((d) => `${d.code} ${d.message}`),
        [],
        `${b.name} as ${doc.form}`,
      );
      assert.ok(r.model, `${b.name} as ${doc.form} is built`);
      assert.equal(r.model.variables.size, irParams(b.ir).length);
      r.model.dispose();
      assert.deepEqual(held(tf), before, `${b.name}: building and disposing leaves nothing behind`);
    }
  }

  const names = Object.keys(CORRUPTIONS);
  const counts = new Map<string, number>(names.map((n) => [n, 0]));
  const failures: string[] = [];
  const start = held(tf);
  const builtBefore = modelsCreated;
  for (let i = 0; i < CASES; i++) {
    const seed = (Math.imul(SEED, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b)) >>> 0;
    const rng = new Rng(seed);
    const name = names[i % names.length]!;
    const { code, apply } = CORRUPTIONS[name]!;
    // Mostly small documents; the large one for some cases, not as YAML (slow to parse).
    const b = rng.chance(0.06) ? docs[0]! : rng.pick(docs.slice(1));
    const ir = clone(b.ir);
    const c = apply(ir, rng);
    if (!c) continue;
    counts.set(name, counts.get(name)! + 1);
    const form = rng.pick(b.large ? (["json", "value"] as const) : (["yaml", "json", "value"] as const));
    const doc: Doc = c.text ? c.text(ir) : form === "value" ? { form: "value", value: ir } : { form, text: form === "yaml" ? irToYaml(ir) : irToJson(ir) };
    const label = `case ${i} (seed ${seed}): ${name} in ${b.name} as ${doc.form}: ${c.what}`;
    const before = held(tf);
    try {
      const r = enter(tf, doc);
      r.model?.dispose();
      const errors = r.diagnostics.filter((d) => d.severity === "error");
      assert.equal(r.model, null, "a Model was created from a corrupted document");
      assert.ok(errors.length > 0, "no error reported");
      const codes = [...new Set(errors.map((d) => d.code))];
      assert.deepEqual(codes, [code], `expected ${code} only, found ${errors.map((d) => `${d.code} ${d.message}`).join("; ")}`);
      for (const d of r.diagnostics) assert.ok(d.span.start >= 0 && d.span.end <= r.text.length, `a diagnostic outside the document: ${d.message}`);
      assert.deepEqual(held(tf), before, "tensors or variables were created");
    } catch (e) {
      failures.push(`${label}\n  ${(e as Error).message.split("\n").join("\n  ")}`);
    }
  }
  t.diagnostic(`${CASES} corruptions: ${[...counts].map(([n, k]) => `${n} ${k}`).join(", ")}`);
  if (failures.length) assert.fail(`${failures.length} of ${CASES} corrupted documents were not rejected as they must be; the first ${Math.min(SHOW, failures.length)}:\n\n${failures.slice(0, SHOW).join("\n\n")}`);
  assert.equal(modelsCreated, builtBefore, "no Model was created from a corrupted document");
  assert.deepEqual(held(tf), start);
  for (const [n, k] of counts) assert.ok(k >= CASES / names.length / 2, `too few cases of ${n}: ${k}`);
});
