// The semantic check of an IR document that passed the schema: everything it records must
// follow from what it says. Each layer's attributes are checked against its kind's arguments
// and its kind's shape and parameter rules are run again on its recorded input, so an output
// shape or a parameter that does not follow from the attributes is caught; module boundaries,
// the tokenizer, the vocabulary, parameter names and the stages are checked too. A document
// that passes can be built into tensors without surprises. Every finding is E0601 at the place
// in the document (see locate.ts) that holds the wrong value.
import { diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import { layerKinds } from "../layers/index.js";
import type { LayerKind, LayerNode, ParamSpec, TensorType } from "../layers/kind.js";
import { presetsOf } from "../presets/index.js";
import { NORMALIZATIONS } from "../resolve/pixels.js";
import { MODULES } from "../resolve/program.js";
import { didYouMean } from "../resolve/suggest.js";
import { dataSources, optimizers, schedules } from "../resolve/train.js";
import { describeType, type ArgSpec, type CallSpec, type Type, type Typed } from "../resolve/types.js";
import { joinName } from "../shape/infer.js";
import type { Span } from "../source.js";
import type { IrLocator, IrPath } from "./locate.js";
import { architectureHash } from "./lower.js";
import type { Ir, IrBpeTokenizer, IrCall, IrHfTokenizer, IrLayer, IrModule, IrShape, IrValue } from "./types.js";

/** Findings past this many are summed up in a note on the last one. */
const MAX_FINDINGS = 50;

interface Extras {
  label?: string;
  related?: { path: IrPath; label: string; key?: boolean }[];
  notes?: string[];
  help?: string[];
  /** Point at the key of the path's last step rather than its value. */
  key?: boolean;
}

/** What flows between layers: a recorded shape, and whether it starts with a CLS token. */
interface Flow {
  shape: IrShape;
  cls: boolean;
  /** Where the shape is recorded, and what records it (for messages). */
  at: IrPath;
  what: string;
}

interface ModuleContext {
  module: string;
  visual?: TensorType;
  first?: IrLayer;
  joins: IrPath[];
  embeds: { layer: IrLayer; at: IrPath }[];
  heads: { layer: IrLayer; at: IrPath }[];
}

const NOWHERE: Span = { file: "", start: 0, end: 0 };

export function verifyIr(ir: Ir, locator: IrLocator): Diagnostic[] {
  return new Verifier(ir, locator).run();
}

export const formatShape = (s: readonly unknown[]): string => `[${s.map((d) => String(d)).join(", ")}]`;

function sameShape(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return false;
}

const article = (word: string): string => (/^[aeiou]/.test(word) ? "an" : "a");

export function show(v: unknown): string {
  if (v === undefined) return "nothing";
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** What a value of type `t` must be, with its range: "an integer in [1, 4096]". */
export function expectation(t: Type): string {
  if (t.t === "int") {
    if (t.min !== undefined && t.max !== undefined) return `an integer in [${t.min}, ${t.max}]`;
    if (t.min !== undefined) return `an integer >= ${t.min}`;
    return "an integer";
  }
  if (t.t === "float") {
    const lo = t.min !== undefined ? `${t.minExclusive ? ">" : ">="} ${t.min}` : "";
    const hi = t.max !== undefined ? `${t.maxExclusive ? "<" : "<="} ${t.max}` : "";
    return lo || hi ? `a number ${[lo, hi].filter(Boolean).join(" and ")}` : "a number";
  }
  if (t.t === "either" && t.of.length > 0) return t.of.map(expectation).join(" or ");
  return describeType(t);
}

/** Null when `v` is a value of type `t`, else what is wrong. */
export function typeProblem(v: IrValue | undefined, t: Type): string | null {
  const bad = () => `must be ${expectation(t)}, found ${show(v)}`;
  switch (t.t) {
    case "int":
      return typeof v === "number" && Number.isInteger(v) && (t.min === undefined || v >= t.min) && (t.max === undefined || v <= t.max) ? null : bad();
    case "float": {
      if (typeof v !== "number" || !Number.isFinite(v)) return bad();
      if (t.min !== undefined && (t.minExclusive ? v <= t.min : v < t.min)) return bad();
      if (t.max !== undefined && (t.maxExclusive ? v >= t.max : v > t.max)) return bad();
      return null;
    }
    case "bool":
      return typeof v === "boolean" ? null : bad();
    case "string":
      return typeof v === "string" ? null : bad();
    case "enum":
      return typeof v === "string" && t.values.includes(v) ? null : bad();
    case "dims":
      return Array.isArray(v) && v.length === t.rank && v.every((d) => typeof d === "number" && Number.isInteger(d) && d >= 1 && d <= t.max) ? null : bad();
    case "list":
      if (!Array.isArray(v)) return bad();
      for (const x of v) {
        const p = typeProblem(x, t.of);
        if (p) return `each item ${p}`;
      }
      return null;
    case "module":
      return typeof v === "string" && (MODULES as readonly string[]).includes(v) ? null : bad();
    case "call": {
      if (!v || typeof v !== "object" || Array.isArray(v)) return bad();
      const kind = v.kind;
      const spec = typeof kind === "string" && Object.hasOwn(t.callees, kind) ? t.callees[kind] : undefined;
      if (!spec) return bad();
      for (const [k, x] of Object.entries(v)) {
        if (k === "kind") continue;
        const a = spec.args.find((s) => s.name === k);
        if (!a) return `\`${String(kind)}\` has no argument \`${k}\``;
        const p = typeProblem(x, a.type);
        if (p) return `\`${k}\` ${p}`;
      }
      // An IR records every argument, defaults included.
      const missing = spec.args.find((a) => !Object.hasOwn(v, a.name));
      if (missing) return `\`${String(kind)}\` lacks argument \`${missing.name}\` (${missing.doc})`;
      return null;
    }
    case "either":
      return t.of.length === 0 || t.of.some((x) => typeProblem(v, x) === null) ? null : bad();
  }
}

class Verifier {
  readonly diags: Diagnostic[] = [];
  private dropped = 0;
  private readonly params = new Map<string, IrPath>();
  /** The encoder's output starts with a CLS token (`output: all` with `cls: true`). */
  private encoderCls = false;

  constructor(
    readonly ir: Ir,
    readonly loc: IrLocator,
  ) {}

  run(): Diagnostic[] {
    const ir = this.ir;
    this.tokenizer();
    const present = MODULES.filter((m) => ir.modules[m]);
    for (const m of present) this.module(m, ir.modules[m]!);
    this.stages(present);
    this.spans(ir, []);
    if (this.diags.length === 0) {
      const hash = architectureHash(ir);
      if (hash !== ir.hash) {
        this.err(["hash"], "`hash` is not the hash of this architecture", {
          label: "stale",
          notes: ["the hash names pretrained weights and checkpoints, so it must change with the architecture"],
          help: [`this document's tokenizer and modules hash to \`${hash}\`; regenerate the IR with \`vlmc compile\`, or write that value`],
        });
      }
    }
    if (this.dropped > 0) this.diags[this.diags.length - 1]!.notes.push(`${this.dropped} more problem${this.dropped === 1 ? "" : "s"} not shown`);
    return this.diags;
  }

  private span(path: IrPath, key = false): Span {
    return key ? this.loc.key(path) : this.loc.at(path);
  }

  private err(path: IrPath, message: string, extras: Extras = {}): void {
    if (this.diags.length >= MAX_FINDINGS) {
      this.dropped++;
      return;
    }
    this.diags.push(
      diagnostic("E0601", this.span(path, extras.key), message, {
        ...(extras.label !== undefined ? { label: extras.label } : {}),
        related: (extras.related ?? []).map((r) => ({ span: this.span(r.path, r.key), label: r.label })),
        notes: extras.notes ?? [],
        help: extras.help ?? [],
      }),
    );
  }

  // ---- tokenizer ----
  private tokenizer(): void {
    const t = this.ir.tokenizer;
    if (!t) return;
    if (t.kind !== "chars") return this.fileTokenizer(t);
    const chars = Array.from(t.alphabet);
    const seen = new Set<string>();
    for (const c of chars) {
      if (seen.has(c)) {
        this.err(["tokenizer", "alphabet"], `the tokenizer's alphabet lists ${JSON.stringify(c)} more than once`, { label: "repeated character", help: ["each character is one token: list it once"] });
        return;
      }
      seen.add(c);
    }
    const size = chars.length + t.specials.length;
    if (t.size !== size) {
      this.err(["tokenizer", "size"], `the tokenizer's size is ${size}, not ${t.size}`, {
        label: `${chars.length} characters + ${t.specials.length} special token${t.specials.length === 1 ? "" : "s"} = ${size}`,
        related: [{ path: ["tokenizer", "alphabet"], label: `${chars.length} characters` }],
      });
    }
  }

  /** An `hf` or `bpe` tokenizer: what can be checked without its file (hf) or its training (bpe). */
  private fileTokenizer(t: IrHfTokenizer | IrBpeTokenizer): void {
    if (t.kind === "bpe") {
      const least = 256 + t.specials.length + 1;
      if (t.size < least) this.err(["tokenizer", "size"], `a byte-level BPE with ${t.specials.length} special tokens needs a size of at least ${least}, not ${t.size}`, { label: "the specials, 256 bytes and a merge" });
      return;
    }
    const roles = Object.keys(t.special_tokens);
    if (roles.length !== t.specials.length || !t.specials.every((s) => roles.includes(s))) {
      this.err(["tokenizer", "special_tokens"], `the tokenizer's \`special_tokens\` (${roles.join(", ") || "none"}) are not its \`specials\` (${t.specials.join(", ") || "none"})`, { key: true });
    }
    for (const [role, { id }] of Object.entries(t.special_tokens)) {
      if (id >= t.size) this.err(["tokenizer", "special_tokens", role, "id"], `the \`${role}\` token's id ${id} is not below the tokenizer's size ${t.size}`);
    }
  }

  // ---- modules ----
  private module(name: string, m: IrModule): void {
    const at: IrPath = ["modules", name];
    if (m.preset !== null && !presetsOf(name).some((p) => p.name === m.preset)) {
      const known = presetsOf(name).map((p) => p.name);
      this.err([...at, "preset"], `unknown ${name} preset \`${m.preset}\``, { help: [...didYouMean(m.preset, known), `${name} presets: ${known.join(", ") || "none"}; or null`] });
    }
    if (m.pixels !== undefined) this.pixels(name, m);
    const ctx: ModuleContext = { module: name, joins: [], embeds: [], heads: [] };
    let input: Flow = { shape: m.input, cls: false, at: [...at, "input"], what: `the ${name}'s input` };
    if (name === "encoder") {
      const [b, ...rest] = m.input;
      if (m.input.length !== 4 || b !== "B" || !rest.every((d) => typeof d === "number")) {
        this.err([...at, "input"], `the encoder's input must be an image [B, height, width, channels], found ${formatShape(m.input)}`, { label: "not an image" });
      }
    } else if (name === "projector") {
      const enc = this.ir.modules.encoder;
      if (!enc) {
        this.err(at, "a projector needs an encoder: it projects the encoder's output", { key: true, help: ["add the encoder, or remove the projector"] });
      } else if (!sameShape(enc.output, m.input)) {
        this.err([...at, "input"], `the projector's input ${formatShape(m.input)} is not the encoder's output ${formatShape(enc.output)}`, {
          related: [{ path: ["modules", "encoder", "output"], label: `the encoder outputs ${formatShape(enc.output)}` }],
        });
      }
      input = { ...input, cls: this.encoderCls };
      ctx.first = m.layers[0];
    } else if (name === "decoder") {
      if (!sameShape(m.input, ["B", "T"])) this.err([...at, "input"], `the decoder's input must be token ids [B, T], found ${formatShape(m.input)}`);
      const source = this.ir.modules.projector ? "projector" : this.ir.modules.encoder ? "encoder" : null;
      if (source) ctx.visual = { shape: this.ir.modules[source]!.output, origin: NOWHERE };
    }
    if (m.layers.length === 0) {
      this.err([...at, "layers"], `the ${name} has no layers`, { key: true });
      if (!sameShape(m.input, m.output)) this.err([...at, "output"], `the ${name} has no layers, so its output must be its input ${formatShape(m.input)}`);
      return;
    }
    const out = this.chain(m.layers, [...at, "layers"], input, name, ctx);
    if (name === "encoder") this.encoderCls = out.cls;
    if (!sameShape(out.shape, m.output)) {
      this.err([...at, "output"], `the ${name} records output ${formatShape(m.output)}, but its last layer outputs ${formatShape(out.shape)}`, {
        related: [{ path: out.at, label: `${formatShape(out.shape)} here` }],
      });
    }
    if (name === "decoder") this.decoder(m, ctx);
  }

  /** The encoder's pixels: one mean and std per channel of its input, a named normalisation's own values. */
  private pixels(name: string, m: IrModule): void {
    const at: IrPath = ["modules", name, "pixels"];
    const p = m.pixels!;
    if (name !== "encoder") {
      this.err(at, `the ${name} has \`pixels\`: only the encoder takes images`, { key: true, help: ["remove it"] });
      return;
    }
    const channels = m.input[3];
    if (typeof channels !== "number") return; // reported with the input
    for (const key of ["mean", "std"] as const) {
      if (p[key].length !== channels) {
        this.err([...at, key], `\`pixels.${key}\` has ${p[key].length} values for an image of ${channels} channels`, {
          label: `expected ${channels}, one per channel`,
          related: [{ path: ["modules", name, "input"], label: `${channels} channels` }],
        });
      }
    }
    const named = p.normalize === "unit" ? { mean: Array<number>(channels).fill(0), std: Array<number>(channels).fill(1) } : NORMALIZATIONS[p.normalize];
    if (named && (named.mean.join() !== p.mean.join() || named.std.join() !== p.std.join())) {
      this.err([...at, "normalize"], `\`pixels\` says \`${p.normalize}\`, but its mean and std are not ${p.normalize}'s`, {
        notes: [`${p.normalize}: mean [${named.mean.join(", ")}], std [${named.std.join(", ")}]`],
        help: ["write `stats` for other values"],
      });
    }
  }

  private decoder(m: IrModule, ctx: ModuleContext): void {
    const at: IrPath = ["modules", "decoder"];
    if (ctx.visual && ctx.joins.length !== 1) {
      this.err(ctx.joins.length ? ctx.joins[1]! : [...at, "layers"], ctx.joins.length ? "the decoder joins the visual tokens more than once" : "the decoder has no `join` layer: the visual tokens would never reach it", { key: ctx.joins.length === 0 });
    }
    const tok = this.ir.tokenizer;
    const vocabOf = (l: IrLayer) => l.attrs.vocab;
    if (ctx.embeds.length === 0) this.err([...at, "layers"], "the decoder has no `token_embed` layer", { key: true });
    if (ctx.heads.length === 0) this.err([...at, "layers"], "the decoder has no `lm_head` layer", { key: true });
    if (tok) {
      for (const { layer, at: lp } of [...ctx.embeds, ...ctx.heads]) {
        const v = vocabOf(layer);
        if (typeof v === "number" && v !== tok.size) {
          this.err([...lp, "attrs", "vocab"], `decoder vocabulary ${v} does not match the tokenizer's ${tok.size} tokens`, {
            label: `${layer.kind} of ${v} tokens`,
            related: [{ path: ["tokenizer", "size"], label: `the tokenizer has ${tok.size} tokens` }],
          });
        }
      }
    }
    for (const { layer, at: lp } of ctx.heads) {
      if (layer.attrs.tied !== true) continue;
      const e = ctx.embeds[0];
      const width = layer.input[layer.input.length - 1];
      if (!e) continue;
      if (e.layer.attrs.vocab !== layer.attrs.vocab || e.layer.attrs.dim !== width) {
        this.err([...lp, "attrs", "tied"], `a tied \`lm_head\` reuses the token embedding [${show(e.layer.attrs.vocab)}, ${show(e.layer.attrs.dim)}], which does not fit [${show(layer.attrs.vocab)}, ${String(width)}]`, {
          related: [{ path: [...e.at, "attrs"], label: "the token embedding", key: true }],
        });
      }
    }
    if (m.output.length !== 3 || (tok && m.output[2] !== tok.size)) {
      if (tok) this.err([...at, "output"], `the decoder must output logits [B, N, ${tok.size}], found ${formatShape(m.output)}`);
    }
  }

  /** Checks a chain of layers fed with `input`; returns what flows out of it. */
  private chain(layers: readonly IrLayer[], at: IrPath, input: Flow, parentPath: string, ctx: ModuleContext): Flow {
    let x = input;
    layers.forEach((layer, i) => {
      const lp = [...at, i];
      if (!sameShape(layer.input, x.shape)) {
        this.err([...lp, "input"], `layer \`${layer.path}\` records input ${formatShape(layer.input)}, but ${x.what} is ${formatShape(x.shape)}`, {
          related: [{ path: x.at, label: `${formatShape(x.shape)} here` }],
        });
      }
      x = this.layer(layer, lp, { ...x, shape: layer.input }, parentPath, ctx);
    });
    return x;
  }

  private layer(layer: IrLayer, at: IrPath, input: Flow, parentPath: string, ctx: ModuleContext): Flow {
    const recorded: Flow = { shape: layer.output, cls: input.cls, at: [...at, "output"], what: `the output of \`${layer.path}\`` };
    const kind = layerKinds.get(layer.kind);
    if (!kind) {
      this.err([...at, "kind"], `unknown layer kind \`${layer.kind}\``);
      return recorded;
    }
    const path = joinName(parentPath, layer.name);
    if (layer.path !== path) {
      this.err([...at, "path"], `layer path \`${layer.path}\` does not match its place: \`${path}\``, { label: `expected \`${path}\``, notes: ["a layer's path is its parent's path and its name, joined with `.`"] });
    }
    if (["token_embed", "join", "lm_head"].includes(layer.kind)) {
      if (ctx.module !== "decoder") this.err([...at, "kind"], `a \`${layer.kind}\` layer belongs in the decoder, not the ${ctx.module}`);
      else if (layer.kind === "join") ctx.joins.push([...at, "kind"]);
      else (layer.kind === "token_embed" ? ctx.embeds : ctx.heads).push({ layer, at });
    }
    const argsOk = this.args(layer.attrs, kind.args, [...at, "attrs"], `\`${layer.kind}\``);
    // The body first: its output is what `residual` and `sequence` compute from.
    let body: TensorType | undefined;
    if (kind.body) {
      if (!layer.children) this.err([...at, "kind"], `a \`${layer.kind}\` layer needs \`children\``, { label: "no children" });
      const out = this.chain(layer.children ?? [], [...at, "children"], { ...input, at: [...at, "input"], what: `the input of \`${layer.path}\`` }, layer.path, ctx);
      body = { shape: out.shape, ...(out.cls ? { cls: true } : {}), origin: NOWHERE };
    } else if (layer.children) {
      this.err([...at, "children"], `a \`${layer.kind}\` layer has no children`, { key: true, help: ["only `residual` and `sequence` have children"] });
    }
    if (!argsOk) return recorded;
    if (layer.kind === "join" && ctx.visual) {
      const vw = ctx.visual.shape[2];
      const tw = layer.input[2];
      if (vw !== tw) {
        const from = this.ir.modules.projector ? "projector" : "encoder";
        this.err([...at, "input"], `the visual tokens ${formatShape(ctx.visual.shape)} cannot be joined to text embeddings ${formatShape(layer.input)}: their widths differ`, {
          related: [{ path: ["modules", from, "output"], label: `the ${from} outputs width ${String(vw)}` }],
        });
        return recorded;
      }
    }
    // Run the kind's shape rule again on the recorded input.
    const node: LayerNode = { kind: layer.kind, name: layer.name, args: structuredClone(layer.attrs) as Record<string, Typed>, argSpans: {}, span: NOWHERE };
    const reports: string[] = [];
    let out: TensorType | null = null;
    try {
      out = kind.shape({
        node,
        args: node.args,
        input: { shape: [...layer.input], ...(input.cls ? { cls: true } : {}), origin: NOWHERE },
        ...(body ? { body } : {}),
        ...(ctx.visual ? { visual: ctx.visual } : {}),
        ...(ctx.first === layer ? { first: true } : {}),
        report: (_code, message) => {
          reports.push(message);
          return null;
        },
        argSpan: () => NOWHERE,
      });
    } catch (e) {
      reports.push(`its shape rule failed: ${(e as Error).message}`);
    }
    if (!out || reports.length > 0) {
      // (A kind may report and still return a shape, so that the checker goes on.)
      this.err([...at, "kind"], `layer \`${layer.path}\` does not follow from its attrs and input ${formatShape(layer.input)}: ${reports[0] ?? "its shape rule rejects them"}`, {
        label: `\`${layer.kind}\``,
        notes: reports.slice(1),
      });
      return recorded;
    }
    // Attributes the rule resolves (`kv_heads: 0` -> heads) must be recorded resolved.
    for (const [k, v] of Object.entries(node.args)) {
      if (!deepEqual(v, layer.attrs[k])) {
        this.err([...at, "attrs", k], `\`${k}\` of layer \`${layer.path}\` is recorded as ${show(layer.attrs[k])}, but it resolves to ${show(v)}`, { label: `expected ${show(v)}` });
      }
    }
    if (!sameShape(out.shape, layer.output)) {
      this.err([...at, "output"], `layer \`${layer.path}\` records output ${formatShape(layer.output)}, but ${article(layer.kind)} \`${layer.kind}\` with these attrs turns ${formatShape(layer.input)} into ${formatShape(out.shape)}`, {
        label: `expected ${formatShape(out.shape)}`,
        related: [{ path: [...at, "attrs"], label: "these attrs", key: true }],
      });
    }
    this.layerParams(layer, at, kind, node.args, out, path);
    return { ...recorded, cls: out.cls === true };
  }

  private layerParams(layer: IrLayer, at: IrPath, kind: LayerKind, args: Record<string, Typed>, out: TensorType, path: string): void {
    const dims = (s: readonly (number | string)[]) => s.map((d) => (typeof d === "number" ? d : -1));
    let expected: ParamSpec[] = [];
    try {
      expected = kind.params ? kind.params(args, dims(layer.input), dims(out.shape)) : [];
    } catch (e) {
      this.err([...at, "params"], `the parameters of layer \`${layer.path}\` cannot be derived: ${(e as Error).message}`, { key: true });
      return;
    }
    const byName = new Map(expected.map((p) => [joinName(path, p.name), p]));
    const what = `${article(layer.kind)} \`${layer.kind}\` with these attrs and input ${formatShape(layer.input)}`;
    layer.params.forEach((p, j) => {
      const pp = [...at, "params", j];
      const first = this.params.get(p.name);
      if (first) this.err([...pp, "name"], `parameter name \`${p.name}\` is used twice`, { related: [{ path: first, label: "first used here" }], help: ["parameter names must be unique: they name the tensors of weights files"] });
      else this.params.set(p.name, [...pp, "name"]);
      const e = byName.get(p.name);
      if (!e) {
        this.err([...pp, "name"], `layer \`${layer.path}\` has no parameter \`${p.name}\``, {
          label: "unexpected",
          notes: [`${what} has ${expected.length ? expected.map((x) => `\`${joinName(path, x.name)}\``).join(", ") : "no parameters"}`],
        });
        return;
      }
      byName.delete(p.name);
      if (!sameShape(e.shape, p.shape)) {
        this.err([...pp, "shape"], `parameter \`${p.name}\` is recorded as ${formatShape(p.shape)}, but ${what} makes it ${formatShape(e.shape)}`, { label: `expected ${formatShape(e.shape)}` });
      }
      if (!deepEqual(e.init, p.init)) this.err([...pp, "init"], `parameter \`${p.name}\` is initialised with ${show(p.init)}, but ${article(layer.kind)} \`${layer.kind}\` initialises it with ${show(e.init)}`);
      if (e.decay !== p.decay) this.err([...pp, "decay"], `parameter \`${p.name}\` has \`decay: ${p.decay}\`, but ${article(layer.kind)} \`${layer.kind}\` gives it \`decay: ${e.decay}\``);
    });
    for (const [name, e] of byName) {
      this.err([...at, "params"], `layer \`${layer.path}\` lacks parameter \`${name}\` ${formatShape(e.shape)}`, { key: true, notes: [`${what} has it`] });
    }
  }

  /** Arguments (of a layer or a call) against their specs: all present, none unknown, each of its type. */
  private args(values: Record<string, IrValue>, specs: readonly ArgSpec[], at: IrPath, what: string, skip: readonly string[] = []): boolean {
    let ok = true;
    const names = specs.map((s) => s.name);
    for (const [k, v] of Object.entries(values)) {
      if (skip.includes(k)) continue;
      const spec = specs.find((s) => s.name === k);
      if (!spec) {
        ok = false;
        this.err([...at, k], `${what} has no argument \`${k}\``, { key: true, help: [...didYouMean(k, names), names.length ? `its arguments: ${names.join(", ")}` : `${what} takes no arguments`] });
        continue;
      }
      const p = typeProblem(v, spec.type);
      if (p) {
        ok = false;
        this.err([...at, k], `\`${k}\` of ${what} ${p}`, { label: spec.doc });
      }
    }
    for (const spec of specs) {
      if (!Object.hasOwn(values, spec.name)) {
        ok = false;
        this.err(at, `${what} lacks argument \`${spec.name}\` (${spec.doc})`, { key: true, notes: ["an IR records every argument, defaults included"] });
      }
    }
    return ok;
  }

  private call(c: IrCall, registry: Record<string, CallSpec>, at: IrPath, what: string): void {
    const spec = Object.hasOwn(registry, c.kind) ? registry[c.kind] : undefined;
    if (!spec) {
      this.err([...at, "kind"], `unknown ${what} \`${c.kind}\``, { help: [...didYouMean(c.kind, Object.keys(registry)), `known: ${Object.keys(registry).join(", ")}`] });
      return;
    }
    this.args(c as Record<string, IrValue>, spec.args, at, `\`${c.kind}\``, ["kind"]);
  }

  // ---- training ----
  private stages(present: readonly string[]): void {
    const t = this.ir.train;
    if (!t) return;
    this.call(t.data, dataSources, ["train", "data"], "data source");
    const names = new Map<string, number>();
    t.stages.forEach((s, i) => {
      const at: IrPath = ["train", "stages", i];
      const prev = names.get(s.name);
      if (prev !== undefined) this.err([...at, "name"], `stage \`${s.name}\` is defined twice`, { related: [{ path: ["train", "stages", prev, "name"], label: "first defined here" }] });
      else names.set(s.name, i);
      s.train.forEach((m, j) => {
        if (!present.includes(m)) {
          this.err([...at, "train", j], `stage \`${s.name}\` trains \`${m}\`, which this model does not have`, { help: [`the model's modules: ${present.join(", ") || "none"}`] });
        }
      });
      s.frozen.forEach((m, j) => {
        if (!present.includes(m)) this.err([...at, "frozen", j], `stage \`${s.name}\` freezes \`${m}\`, which this model does not have`, { help: [`the model's modules: ${present.join(", ") || "none"}`] });
        else if (s.train.includes(m)) this.err([...at, "frozen", j], `stage \`${s.name}\` both trains and freezes \`${m}\``, { related: [{ path: [...at, "train", s.train.indexOf(m)], label: "trained here" }] });
      });
      const neither = present.filter((m) => !s.train.includes(m) && !s.frozen.includes(m));
      if (neither.length) {
        this.err([...at, "frozen"], `stage \`${s.name}\` neither trains nor freezes ${neither.map((m) => `\`${m}\``).join(", ")}`, {
          notes: ["each module of the model is either trained or frozen in a stage"],
          help: [`add ${neither.join(", ")} to \`frozen\` (or to \`train\`)`],
        });
      }
      if ((s.steps > 0) === (s.epochs > 0)) {
        this.err([...at, s.steps > 0 ? "epochs" : "steps"], s.steps > 0 ? `stage \`${s.name}\` gives both \`steps\` and \`epochs\`` : `stage \`${s.name}\` does not say how long it runs`, {
          help: ["give exactly one of `steps` and `epochs` a value above 0"],
        });
      }
      if (s.batch % s.accumulate !== 0) this.err([...at, "accumulate"], `\`accumulate: ${s.accumulate}\` does not divide the stage's batch of ${s.batch}`);
      for (const m of Object.keys(s.module_lr ?? {})) {
        if (!s.train.includes(m)) this.err([...at, "module_lr", m], `stage \`${s.name}\` sets a learning rate for \`${m}\`, which it does not train`, { key: true });
      }
      this.call(s.optimizer, optimizers, [...at, "optimizer"], "optimizer");
      this.call(s.schedule, schedules, [...at, "schedule"], "schedule");
      this.call(s.data, dataSources, [...at, "data"], "data source");
    });
  }

  // ---- spans ----
  private spans(v: unknown, at: IrPath): void {
    if (Array.isArray(v)) v.forEach((x, i) => this.spans(x, [...at, i]));
    else if (v && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) {
        if (k === "span" && x && typeof x === "object" && !Array.isArray(x)) {
          const s = x as Record<string, unknown>;
          if (typeof s.line === "number" && typeof s.column === "number" && typeof s.endLine === "number" && typeof s.endColumn === "number") {
            if (s.endLine < s.line || (s.endLine === s.line && s.endColumn < s.column)) this.err([...at, k], "a span ends before it starts", { key: true });
          }
        } else this.spans(x, [...at, k]);
      }
    }
  }
}
