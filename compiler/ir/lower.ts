// Lowering: an analysed model -> the IR document. Paths become relative to `baseDir` (the
// folder the document will be written to), spans become file:line:column.
import { createHash } from "node:crypto";
import { dirname, isAbsolute, relative, resolve } from "node:path";
import type { LayerNode } from "../layers/kind.js";
import { MODULES } from "../resolve/program.js";
import type { Typed, TypedCall } from "../resolve/types.js";
import type { ModuleResult, AnalyzedModel } from "../shape/model.js";
import { joinName } from "../shape/infer.js";
import type { SourceFile, Span } from "../source.js";
import { IR_VERSION, type Ir, type IrCall, type IrLayer, type IrModule, type IrSpan, type IrTokenizer, type IrValue } from "./types.js";

export interface LowerOptions {
  /** The folder the IR document is written to; paths in it are made relative to it. */
  baseDir: string;
  sources: ReadonlyMap<string, SourceFile>;
}

export function lower(m: AnalyzedModel, opts: LowerOptions): Ir {
  const span = (s: Span): IrSpan => {
    const src = opts.sources.get(s.file);
    const a = src ? src.position(s.start) : { line: 1, column: 1 };
    const b = src ? src.position(s.end) : a;
    return { file: relPath(opts.baseDir, s.file), line: a.line, column: a.column, endLine: b.line, endColumn: b.column };
  };
  const specDir = dirname(resolve(m.file));
  const path = (p: string) => relPath(opts.baseDir, resolve(specDir, p));

  const layer = (n: LayerNode, prefix: string): IrLayer => {
    const full = joinName(prefix, n.name);
    const attrs = plain(n.args) as Record<string, IrValue>;
    // A pretrained tfjs model's folder: relative to the document, like a module's `weights`.
    if (n.kind === "tfjs_model" && typeof attrs.weights === "string") attrs.weights = path(attrs.weights);
    return {
      kind: n.kind,
      name: n.name,
      path: full,
      attrs,
      input: [...n.input!.shape],
      output: [...n.output!.shape],
      params: (n.params ?? []).map((p) => ({ name: joinName(full, p.name), shape: p.shape, init: p.init, decay: p.decay })),
      ...(n.children ? { children: n.children.map((c) => layer(c, full)) } : {}),
      span: span(n.span),
    };
  };
  const module = (name: string, r: ModuleResult): IrModule => {
    const syn = m.analysis.syntax.sections.get(r.name)!;
    return {
      preset: r.preset,
      weights: r.weights ? path(r.weights) : null,
      input: [...r.input.shape],
      output: [...r.output.shape],
      ...(r.pixels ? { pixels: { ...r.pixels, mean: [...r.pixels.mean], std: [...r.pixels.std] } } : {}),
      layers: r.layers.map((l) => layer(l, name)),
      span: span((syn.label ?? syn.name).span),
    };
  };
  const modules: Ir["modules"] = {};
  for (const name of MODULES) {
    const r = m.modules[name];
    if (r) modules[name] = module(name, r);
  }
  const tokenizerSyn = m.analysis.syntax.sections.get("tokenizer");
  const t = m.tokenizer;
  const tokenizerSpan = tokenizerSyn ? { span: span(tokenizerSyn.span) } : {};
  const tokenizer: IrTokenizer | null = !t
    ? null
    : t.kind === "chars"
      ? { kind: t.kind, alphabet: t.alphabet, specials: t.specials, size: t.size, ...tokenizerSpan }
      : t.kind === "hf"
        ? { kind: t.kind, file: path(t.file), sha256: t.sha256, specials: t.specials, special_tokens: t.specialTokens, size: t.size, ...tokenizerSpan }
        : { kind: t.kind, specials: t.specials, min_frequency: t.minFrequency, trained_on: "train.data", size: t.size, ...tokenizerSpan };
  const dataCall = (c: TypedCall): IrCall => {
    const out = call(c);
    // `text(captions("pairs.jsonl"))`: the path is the inner source's.
    const inner = out.file && typeof out.file === "object" && !Array.isArray(out.file) ? (out.file as IrCall) : out;
    if (typeof inner.file === "string") inner.file = path(inner.file);
    return out;
  };
  const trainSyn = m.analysis.syntax.sections.get("train");
  const present = MODULES.filter((x) => m.modules[x]);
  const train = m.train
    ? {
        data: dataCall(m.train.data),
        batch: m.train.batch,
        seed: m.train.seed,
        split: m.train.split,
        stages: m.train.stages.map((s) => ({
          name: s.name,
          train: s.train,
          frozen: present.filter((x) => !s.train.includes(x)),
          optimizer: call(s.optimizer),
          schedule: call(s.schedule),
          steps: s.steps,
          epochs: s.epochs,
          batch: s.batch,
          accumulate: s.accumulate,
          clip: s.clip,
          eval_every: s.eval_every,
          checkpoint_every: s.checkpoint_every,
          keep: s.keep,
          module_lr: s.module_lr,
          patience: s.patience,
          data: dataCall(s.data),
          span: span(s.span),
        })),
        ...(trainSyn ? { span: span(trainSyn.name.span) } : {}),
      }
    : null;
  // The chat template is data formatting, not architecture: recorded (a run formats text by it), not hashed.
  const chat = m.chat ? { user: m.chat.user, assistant: m.chat.assistant, separator: m.chat.separator, image: m.chat.image, span: span(m.chat.span) } : null;
  const ir: Ir = { vlmc_ir: IR_VERSION, model: m.name, hash: "", tokenizer, ...(chat ? { chat } : {}), modules, train, span: span(m.span) };
  ir.hash = architectureHash(ir);
  return ir;
}

/** A path relative to `baseDir`, with `/` separators, so the document is portable. */
export function relPath(baseDir: string, p: string): string {
  const abs = isAbsolute(p) ? p : resolve(p);
  const r = relative(baseDir, abs).split("\\").join("/");
  return r === "" ? "." : r;
}

function plain(v: Typed | Record<string, Typed>): IrValue {
  if (Array.isArray(v)) return v.map((x) => plain(x));
  if (typeof v === "object" && v !== null) {
    if ("call" in v && "args" in v && typeof v.call === "string") return call(v as TypedCall);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x as Typed)]));
  }
  return v;
}

function call(c: TypedCall): IrCall {
  const out: IrCall = { kind: c.call };
  for (const [k, v] of Object.entries(c.args)) out[k] = plain(v);
  return out;
}

/**
 * Canonical JSON (sorted keys) of the architecture, without spans and paths. A layer's `init`
 * attribute is left out too: what it makes is each parameter's `init`, which is hashed (so a
 * model whose layers spell out their default initialisers hashes as one that does not). The
 * encoder's `pixels` are left out: they prepare the input and shape no weight, so the same
 * weights file (and documents from before `pixels` existed) keep their hash.
 */
export function architectureHash(ir: Ir): string {
  const strip = (v: unknown, inAttrs = false): unknown => {
    if (Array.isArray(v)) return v.map((x) => strip(x));
    if (v && typeof v === "object") {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) {
        if (k === "span" || k === "weights" || (inAttrs && k === "init")) continue;
        out[k] = strip((v as Record<string, unknown>)[k], k === "attrs");
      }
      return out;
    }
    return v;
  };
  const modules = Object.fromEntries(Object.entries(ir.modules).map(([k, m]) => [k, { ...m, pixels: undefined }]));
  // A tokenizer file is hashed by its contents (`sha256`), not by where it lies.
  const tokenizer = ir.tokenizer?.kind === "hf" ? { ...ir.tokenizer, file: undefined } : ir.tokenizer;
  const canonical = JSON.stringify(strip({ tokenizer, modules }));
  return `sha256:${createHash("sha256").update(canonical).digest("hex")}`;
}
