// A seeded generator of random VALID .vlm specs, for property tests (test/property.test.ts).
//
// Each spec comes with what it was generated to mean (`intent`: the image, the patch, widths,
// heads, the visual token count, the vocabulary, the stages, ...) and with `sites`: the exact
// line and column of every value, setting key, layer name and `train:` list that a test may
// corrupt, each tagged with the constraint it takes part in (the patch that divides the image,
// the heads that divide a width, the projector's last linear that must give the decoder's
// width, the context that must hold the visual tokens, ...). A test replaces the text of one
// site and knows which diagnostic to expect, and where.
//
// What a generated spec contains, at random: the `vit` or `siglip` encoder preset or a custom
// encoder chain (`patch_embed -> positions -> repeat n { ... } -> layernorm` with `output:`);
// a projector chain (`linear(...) -> gelu -> linear(decoder.dim)`, sometimes with dropout,
// layernorm or a user `block`); a `gpt`, `llama` or custom decoder; a `chars` tokenizer with a
// random alphabet; top-level and model-level `let`s and arithmetic (`4 * encoder.dim`,
// `96 / 2`); sometimes a base model and a derived one (`extends`) with overrides; and a train
// section of 1 to 3 stages whose `train:` lists together cover every module.
//
// Sizes come from SIZES.default, or with `{ size: "small" }` from ranges small enough to build
// and run every generated model in a test (test/runtime-property.test.ts).
//
// Deterministic: the same seed always gives the same text. Source text is ASCII only, so a
// column is a string index + 1. No import from the compiler: the generator states what a
// valid spec is independently of the code under test (the PRNG is tools/random.ts's).
import { Rng } from "../../tools/random.js";

export { Rng };

// ---- what a spec means ----

export type ModuleName = "encoder" | "projector" | "decoder";
export const MODULE_NAMES: readonly ModuleName[] = ["encoder", "projector", "decoder"];

export interface EncoderIntent {
  preset: "vit" | "siglip" | null;
  /** height, width, channels */
  image: [number, number, number];
  patch: number;
  dim: number;
  heads: number;
  /** Transformer blocks (attention layers in the encoder). */
  blocks: number;
  cls: boolean;
  /** What the encoder hands on; `last` is a custom encoder without `output:` (every token). */
  output: "cls" | "patches" | "pool" | "all" | "last";
  /** Visual tokens out. */
  tokens: number;
  /** `attention_scale: dim` was written. */
  scaleDim: boolean;
}

export interface DecoderIntent {
  preset: "gpt" | "llama" | null;
  dim: number;
  heads: number;
  kvHeads: number;
  layers: number;
  context: number;
  position: "learned" | "sinusoidal" | "rope" | "none";
  /** How `vocab` is written: not at all, `tokenizer.size`, or the number. */
  vocabWritten: "none" | "ref" | "literal";
  scaleDim: boolean;
}

export interface Intent {
  /** The entry model (the last of the file). */
  model: string;
  /** Its base, when it `extends` one. */
  base: string | null;
  tokenizer: { alphabet: string; specials: string[]; size: number };
  encoder: EncoderIntent;
  projector: { out: number };
  decoder: DecoderIntent;
  stages: { name: string; train: ModuleName[]; steps: number; epochs: number }[];
}

/** The constraint a value site takes part in. */
export type Constraint =
  | "patch" // divides the image height and width
  | "encoderHeads" // divides the encoder width
  | "decoderHeads" // divides the decoder width
  | "kvHeads" // divides the decoder's heads
  | "projectorOut" // the projector's last linear: equals decoder.dim
  | "context" // >= visual tokens + 1
  | "vocab"; // a written vocab: equals tokenizer.size

export type SiteKind = "value" | "key" | "layer" | "trainList" | "insert";

export interface Site {
  kind: SiteKind;
  /** 1-based line and column of `text` in the spec. */
  line: number;
  col: number;
  text: string;
  /** For messages: `encoder vit: heads`, `projector: layer 2`, ... */
  where: string;
  /** value sites: the type the value must have (`int` with `min`, or a dropout in [0, 1)). */
  type?: "int" | "dropout";
  min?: number;
  /**
   * value sites: another setting of the same section evaluates this one (`mlp: 4 * dim`), so a
   * value of the wrong type there would be reported twice. Such sites are not corrupted.
   */
  referenced?: boolean;
  constraint?: Constraint;
  /** key sites: the schema the key belongs to (`encoder:vit`, `decoder:custom`, `stage`, ...). */
  schema?: string;
  /** key sites: the spec stays valid, with the same meaning for the checks, without it. */
  removable?: boolean;
  /** trainList sites: the stage, and each item with its column. */
  stage?: string;
  items?: { text: string; col: number }[];
}

export interface GeneratedSpec {
  seed: number;
  text: string;
  intent: Intent;
  sites: Site[];
}

// ---- text with positions ----

type SiteInit = Omit<Site, "line" | "col" | "text">;
/** A piece of a line: plain text, or text that is a site. */
type Seg = string | { text: string; slot: string; site: SiteInit };
/** An entry of a section body: one or more lines. */
type Entry = Seg[][];

class Writer {
  readonly lines: string[] = [];
  /** Sites by slot: a later site of the same slot (an override) replaces the earlier one. */
  readonly sites = new Map<string, Site>();
  /** Slots an override has set: the overridden text, written later, is not the site. */
  readonly pinned = new Set<string>();

  /** Appends one line made of segments, recording the position of each site. */
  line(segs: readonly Seg[], indent = ""): void {
    let cur = indent;
    for (const s of segs) {
      if (typeof s === "string") cur += s;
      else {
        if (!this.pinned.has(s.slot)) this.sites.set(s.slot, { ...s.site, line: this.lines.length + 1, col: cur.length + 1, text: s.text });
        cur += s.text;
      }
    }
    this.lines.push(cur);
  }

  blank(): void {
    this.lines.push("");
  }

  /** Drops every site whose slot starts with `prefix` (a section replaced by a derived model). */
  drop(prefix: string): void {
    for (const k of [...this.sites.keys()]) if (k.startsWith(prefix)) this.sites.delete(k);
  }

  /**
   * A section: `head {` entries `}`. One line (entries separated by `, `) or one entry per
   * line. Returns nothing; sites inside are recorded.
   */
  section(head: Seg[], entries: Entry[], indent: string, oneLine: boolean, insertSlot?: { slot: string; site: SiteInit }): void {
    if (oneLine) {
      const segs: Seg[] = [...head, " {"];
      if (insertSlot) segs.push({ text: "", slot: insertSlot.slot, site: insertSlot.site });
      entries.forEach((e, i) => {
        segs.push(i === 0 ? " " : ", ");
        e.forEach((l, j) => {
          if (j > 0) segs.push(" ");
          segs.push(...l);
        });
      });
      segs.push(entries.length ? " }" : "}");
      this.line(segs, indent);
      return;
    }
    this.line([...head, " {", ...(insertSlot ? [{ text: "", slot: insertSlot.slot, site: insertSlot.site }] : [])], indent);
    for (const e of entries) e.forEach((l, j) => this.line(l, indent + "  " + (j > 0 ? "  " : "")));
    this.line(["}"], indent);
  }

  get text(): string {
    return `${this.lines.join("\n")}\n`;
  }
}

// ---- helpers for values ----

const seg = (text: string, slot: string, site: SiteInit): Seg => ({ text, slot, site });

/** Constants visible where an expression is written: name -> value. */
type Lets = Map<string, number>;

/** An expression that evaluates to the integer `v`: a literal, a `let`, or arithmetic. */
function intExpr(rng: Rng, v: number, lets?: Lets, literalBias = 0.55): string {
  if (rng.chance(literalBias)) return String(v);
  const named = lets ? [...lets].filter(([, x]) => x === v).map(([k]) => k) : [];
  if (named.length && rng.chance(0.6)) return rng.pick(named);
  const forms: (() => string | null)[] = [
    () => (v % 2 === 0 && v > 0 ? `2 * ${v / 2}` : null),
    () => `${v * 2} / 2`,
    () => (v > 1 ? `${v - 1} + 1` : null),
    () => (v % 4 === 0 && v > 0 ? `(${v / 4 - 1} + 1) * 4` : null),
    () => `${v + 3} - 3`,
    () => (v > 0 && v % 3 === 0 ? `3 * ${v / 3}` : null),
  ];
  for (let tries = 0; tries < 6; tries++) {
    const e = rng.pick(forms)();
    if (e !== null) return e;
  }
  return String(v);
}

const DROPOUTS = ["0.1", "0.0", "0.05", "0.2", "0.5", "1e-1"];

function divisorsOf(n: number): number[] {
  const out: number[] = [];
  for (let d = 1; d <= n; d++) if (n % d === 0) out.push(d);
  return out;
}

/** Characters an alphabet may contain: printable ASCII, plus line feed and tab (escaped). */
const ALPHABET_POOL: string[] = [...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)), "\n", "\t"];

function escapeChar(c: string): string {
  if (c === "\n") return "\\n";
  if (c === "\t") return "\\t";
  if (c === '"') return '\\"';
  if (c === "\\") return "\\\\";
  return c;
}

// ---- the parameters of one model ----

interface EncP {
  preset: "vit" | "siglip" | null;
  H: number;
  W: number;
  C: number;
  patch: number;
  dim: number;
  heads: number;
  blocks: number;
  cls: boolean;
  output: EncoderIntent["output"];
  tokens: number;
  scaleDim: boolean;
  dropout: string | null;
  mlpMult: number | null;
  writeCls: boolean;
  writeOutput: boolean;
  writeTokens: boolean;
  extra: string[]; // other optional settings written: norm_eps, activation, qkv_bias
}

interface DecP {
  preset: "gpt" | "llama" | null;
  dim: number;
  heads: number;
  kvHeads: number;
  writeKv: boolean;
  layers: number;
  context: number;
  position: DecoderIntent["position"];
  writePosition: boolean;
  vocabWritten: DecoderIntent["vocabWritten"];
  scaleDim: boolean;
  dropout: string | null;
  /** custom decoder: the transformer written with a user block. */
  useBlock: boolean;
  extra: string[];
}

interface ProjP {
  form: "mlp" | "single" | "block" | "deep";
  hidden: number;
  /** How the hidden width is written. */
  hiddenExpr: string;
  outExpr: string;
  outNamed: boolean;
  tailDropout: string | null;
  norm: boolean;
}

function tokensOf(e: { H: number; W: number; patch: number; cls: boolean; output: EncoderIntent["output"] }): number {
  const n = (e.H / e.patch) * (e.W / e.patch);
  switch (e.output) {
    case "cls":
    case "pool":
      return 1;
    case "patches":
      return n;
    case "all":
    case "last":
      return n + (e.cls ? 1 : 0);
  }
}

// ---- sizes ----

/**
 * The ranges sizes are drawn from. `default` exercises the checker over realistic sizes;
 * `small` keeps every model tiny (images of at most 16 x 16 pixels in at most 16 patches,
 * widths of at most 32, at most 2 blocks, contexts of at most ~50 positions beyond the visual
 * tokens) so that a test can also build and run it: the same structures, drawn with the same
 * sequence of random numbers.
 */
export interface Sizes {
  patches: readonly number[];
  /** Patches along each side: 1 to this many, and at most `tokens` patches in all. */
  grid: number;
  tokens: number;
  encoderHeads: readonly number[];
  decoderHeads: readonly number[];
  /** Head widths: the model width is heads x one of these. */
  headWidths: readonly number[];
  /** The most encoder blocks and decoder layers. */
  depth: number;
  /** Context beyond the visual tokens + 1: up to this many more, or one of `contexts`. */
  contextExtra: number;
  contexts: readonly number[];
  /** A derived model's context: the visual tokens + 1 + up to this many. */
  contextOverride: number;
}

export const SIZES: Record<"default" | "small", Sizes> = {
  default: {
    patches: [2, 4, 7, 8, 14, 16, 32],
    grid: 8,
    tokens: 64,
    encoderHeads: [1, 2, 3, 4, 6, 8],
    decoderHeads: [1, 2, 4, 6, 8],
    headWidths: [2, 4, 8, 16, 32],
    depth: 3,
    contextExtra: 200,
    contexts: [256, 512, 1000, 1024],
    contextOverride: 300,
  },
  small: {
    patches: [2, 4],
    grid: 4,
    tokens: 16,
    encoderHeads: [1, 2, 3, 4],
    decoderHeads: [1, 2, 4],
    headWidths: [2, 4, 8],
    depth: 2,
    contextExtra: 16,
    contexts: [32, 48],
    contextOverride: 16,
  },
};

export interface GenerateOptions {
  /** Which ranges sizes come from (default: `default`). */
  size?: keyof typeof SIZES;
}

function genEncoder(rng: Rng, z: Sizes): EncP {
  const preset = rng.pick(["vit", "vit", "siglip", null, null] as const);
  const patch = rng.pick(z.patches);
  let kH = rng.int(1, z.grid);
  let kW = rng.int(1, z.grid);
  while (kH * kW > z.tokens) {
    kH = Math.max(1, kH - 1);
    kW = Math.max(1, kW - 1);
  }
  const heads = rng.pick(z.encoderHeads);
  const dim = heads * rng.pick(z.headWidths);
  let cls: boolean;
  let writeCls = false;
  if (preset === null) cls = rng.chance(0.85);
  else {
    const dflt = preset === "vit";
    cls = rng.chance(0.2) ? !dflt : dflt;
    writeCls = cls !== dflt || rng.chance(0.3);
  }
  const outputs: EncoderIntent["output"][] = preset === null ? ["patches", "pool", "last", ...(cls ? (["cls", "cls"] as const) : [])] : ["patches", "pool", "all", ...(cls ? (["cls", "cls"] as const) : [])];
  const output = rng.pick(outputs);
  const defaultOutput = preset === null ? "last" : cls ? "cls" : "patches";
  const e: EncP = {
    preset,
    H: patch * kH,
    W: patch * kW,
    C: rng.pick([1, 3, 3, 3, 4]),
    patch,
    dim,
    heads,
    blocks: rng.int(0, z.depth),
    cls,
    output,
    tokens: 0,
    scaleDim: preset !== null && rng.chance(0.25),
    dropout: preset !== null && rng.chance(0.4) ? rng.pick(DROPOUTS) : null,
    mlpMult: preset !== null && rng.chance(0.5) ? rng.pick([1, 2, 4]) : null,
    writeCls,
    writeOutput: output !== defaultOutput || rng.chance(0.4),
    writeTokens: rng.chance(0.2),
    extra: preset === null ? [] : rng.shuffle(["norm_eps: 1e-6", "activation: gelu_tanh", "qkv_bias: true", "final_norm: true"]).slice(0, rng.int(0, 2)),
  };
  e.tokens = tokensOf(e);
  return e;
}

function genDecoder(rng: Rng, tokens: number, z: Sizes): DecP {
  const preset = rng.pick(["gpt", "gpt", "llama", "llama", null] as const);
  const heads = rng.pick(z.decoderHeads);
  const dim = heads * rng.pick(z.headWidths);
  const kvHeads = preset === "llama" ? rng.pick(divisorsOf(heads)) : heads;
  let position: DecoderIntent["position"];
  let writePosition = false;
  if (preset === "gpt") {
    position = rng.pick(["learned", "learned", "learned", "sinusoidal", "none", "rope"] as const);
    writePosition = position !== "learned" || rng.chance(0.3);
  } else if (preset === "llama") {
    position = rng.pick(["rope", "rope", "rope", "learned", "none"] as const);
    writePosition = position !== "rope" || rng.chance(0.3);
  } else {
    position = rng.pick(["learned", "learned", "sinusoidal", "none"] as const);
    writePosition = position !== "learned" || rng.chance(0.3);
  }
  const r = rng.next();
  const context = r < 0.25 ? tokens + 1 : r < 0.7 ? tokens + 1 + rng.int(1, z.contextExtra) : Math.max(tokens + 1, rng.pick(z.contexts));
  return {
    preset,
    dim,
    heads,
    kvHeads,
    writeKv: preset === "llama" && (kvHeads !== heads || rng.chance(0.6)),
    layers: rng.int(0, z.depth),
    context,
    position,
    writePosition,
    vocabWritten: rng.pick(["none", "none", "ref", "literal"] as const),
    scaleDim: preset === "gpt" && rng.chance(0.3),
    dropout: rng.chance(0.4) ? rng.pick(DROPOUTS) : null,
    useBlock: preset === null && rng.chance(0.3),
    extra:
      preset === "gpt"
        ? rng.shuffle(["tie_embeddings: false", "head_bias: true", "activation: gelu", "bias: false", "norm_eps: 1e-5"]).slice(0, rng.int(0, 2))
        : preset === "llama"
          ? rng.shuffle(["rope_base: 500000", "norm_eps: 1e-5", "head_bias: false"]).slice(0, rng.int(0, 2))
          : rng.shuffle(["tie_embeddings: true", "head_bias: true"]).slice(0, rng.int(0, 1)),
  };
}

function genProjector(rng: Rng, enc: EncP, dec: DecP, topLets: Lets): ProjP {
  const form = rng.pick(["mlp", "mlp", "mlp", "single", "block", "deep"] as const);
  const mult = rng.pick([1, 2, 4]);
  const hidden = mult * enc.dim;
  const hiddenForms = [`${mult} * encoder.dim`, String(hidden), `encoder.dim * ${mult}`];
  if (mult === 1) hiddenForms.push("encoder.dim", "encoder.width");
  const namedHidden = [...topLets].filter(([, v]) => v === hidden).map(([k]) => k);
  if (namedHidden.length) hiddenForms.push(namedHidden[0]!);
  const namedOut = [...topLets].filter(([, v]) => v === dec.dim).map(([k]) => k);
  const outForms = ["decoder.dim", "decoder.dim", String(dec.dim), ...namedOut];
  return {
    form,
    hidden,
    hiddenExpr: rng.pick(hiddenForms),
    outExpr: rng.pick(outForms),
    outNamed: rng.chance(0.25),
    tailDropout: rng.chance(0.35) ? rng.pick(DROPOUTS) : null,
    norm: rng.chance(0.3),
  };
}

// ---- rendering ----

interface Ctx {
  rng: Rng;
  w: Writer;
  /** Top-level constants. */
  topLets: Lets;
}

/** A setting `key: value` as segments, with a key site and a value site. */
function setting(
  section: string,
  schema: string,
  key: string,
  value: string,
  opts: { type?: "int" | "dropout"; min?: number; referenced?: boolean; constraint?: Constraint; removable?: boolean; where?: string } = {},
): Seg[] {
  const where = opts.where ?? `${schema === "stage" ? section.replace(".", " ") : schema}: ${key}`;
  return [
    seg(key, `key:${section}.${key}`, { kind: "key", where: `${where} (key)`, schema, removable: opts.removable ?? false }),
    ": ",
    seg(value, `val:${section}.${key}`, {
      kind: "value",
      where,
      ...(opts.type ? { type: opts.type } : {}),
      ...(opts.min !== undefined ? { min: opts.min } : {}),
      referenced: opts.referenced ?? false,
      ...(opts.constraint ? { constraint: opts.constraint } : {}),
    }),
  ];
}

/** A layer name as a site. */
function layerName(section: string, n: number, name: string): Seg {
  return seg(name, `layer:${section}.${n}`, { kind: "layer", where: `${section}: layer \`${name}\`` });
}

/** A layer argument value as a site. */
function argVal(slot: string, value: string, where: string, opts: { type?: "int" | "dropout"; min?: number; constraint?: Constraint } = {}): Seg {
  return seg(value, slot, { kind: "value", where, ...opts, referenced: false });
}

function renderTokenizer(c: Ctx, alphabet: string[], specials: string[] | null, indent: string): void {
  const entries: Entry[] = [[[...setting("tokenizer", "tokenizer:chars", "alphabet", `"${alphabet.map(escapeChar).join("")}"`)]]];
  if (specials) entries.push([[...setting("tokenizer", "tokenizer:chars", "specials", `[${specials.join(", ")}]`)]]);
  c.w.section(["tokenizer chars"], c.rng.shuffle(entries), indent, c.rng.chance(0.5));
}

function renderEncoder(c: Ctx, e: EncP, indent: string): void {
  const { rng } = c;
  const imageExpr = rng.chance(0.3) && e.H < 100 && e.W < 100 ? `${e.H}x${e.W}x${e.C}` : `${intExpr(rng, e.H, c.topLets, 0.8)} x ${intExpr(rng, e.W, c.topLets, 0.8)} x ${e.C}`;
  if (e.preset) {
    const schema = `encoder:${e.preset}`;
    const S = (key: string, value: string, opts: Parameters<typeof setting>[4] = {}) => [setting("encoder", schema, key, value, opts)];
    const referencesDim = e.mlpMult !== null && rng.chance(0.5);
    const entries: Entry[] = [
      S("image", imageExpr),
      S("patch", intExpr(rng, e.patch, c.topLets), { type: "int", min: 1, constraint: "patch" }),
      S("dim", intExpr(rng, e.dim, c.topLets), { type: "int", min: 1, referenced: referencesDim }),
      S("heads", intExpr(rng, e.heads, c.topLets), e.blocks > 0 ? { type: "int", min: 1, constraint: "encoderHeads" } : { type: "int", min: 1 }),
      S("blocks", intExpr(rng, e.blocks, c.topLets, 0.8), { type: "int", min: 0 }),
    ];
    if (e.mlpMult !== null) entries.push(S("mlp", referencesDim ? `${e.mlpMult} * dim` : intExpr(rng, e.mlpMult * e.dim, c.topLets), { type: "int", min: 1, removable: true }));
    if (e.dropout !== null) entries.push(S("dropout", e.dropout, { type: "dropout", removable: true }));
    if (e.writeCls) entries.push(S("cls", String(e.cls), { removable: e.cls === (e.preset === "vit") }));
    if (e.writeOutput) entries.push(S("output", e.output, { removable: e.output === (e.cls ? "cls" : "patches") }));
    if (e.writeTokens) entries.push(S("tokens", intExpr(rng, e.tokens, c.topLets), { removable: true }));
    if (e.scaleDim) entries.push(S("attention_scale", "dim", { removable: true }));
    for (const x of e.extra) {
      const [k, v] = x.split(": ") as [string, string];
      entries.push(S(k, v, { removable: true }));
    }
    c.w.section([`encoder ${e.preset}`], rng.shuffle(entries), indent, rng.chance(0.3));
    return;
  }
  // A custom encoder: settings, a section-level `let` for the width, and the chain.
  const entries: Entry[] = [];
  const lets: Entry[] = [[[`let d = ${intExpr(rng, e.dim, c.topLets)}`]]];
  const settings: Entry[] = [[setting("encoder", "encoder:custom", "image", imageExpr)]];
  if (e.output !== "last") settings.push([setting("encoder", "encoder:custom", "output", e.output)]);
  if (e.writeTokens) settings.push([setting("encoder", "encoder:custom", "tokens", intExpr(rng, e.tokens, c.topLets), { removable: true })]);
  entries.push(...lets, ...rng.shuffle(settings));
  const p = (n: number, name: string) => layerName("encoder", n, name);
  const oneLine = rng.chance(0.3);
  const chain: Seg[][] = [
    [p(0, "patch_embed"), "(patch: ", argVal("val:encoder.patch_embed.patch", intExpr(rng, e.patch, c.topLets), "encoder: patch_embed patch", { type: "int", min: 1, constraint: "patch" }), ", dim: ", argVal("val:encoder.patch_embed.dim", "d", "encoder: patch_embed dim", { type: "int", min: 1 }), `, cls: ${e.cls})`],
    ["-> ", p(1, "positions"), rng.pick(["(learned)", "(kind: learned)", "", "(sinusoidal)"])],
    [
      "-> repeat ",
      argVal("val:encoder.repeat", intExpr(rng, e.blocks, c.topLets, 0.8), "encoder: repeat count", { type: "int", min: 0 }),
      " {",
    ],
    [
      "  ",
      p(2, "residual"),
      " { ",
      p(3, "layernorm"),
      " -> ",
      p(4, "attention"),
      "(heads: ",
      argVal("val:encoder.attention.heads", intExpr(rng, e.heads, c.topLets), "encoder: attention heads", e.blocks > 0 ? { type: "int", min: 1, constraint: "encoderHeads" } : {}),
      ") }",
    ],
    ["  residual { layernorm -> ", p(5, "mlp"), `(hidden: ${rng.pick(["2 * d", "d * 2", String(2 * e.dim)])}) }`],
    ["}"],
    ["-> ", p(6, "layernorm")],
  ];
  if (e.blocks === 0) {
    // Layers inside `repeat 0` are never expanded: they take part in no check.
    for (const l of chain.slice(3, 5)) for (let i = 0; i < l.length; i++) if (typeof l[i] !== "string") l[i] = (l[i] as { text: string }).text;
  }
  entries.push(oneLine ? [chain.flat()] : chain);
  c.w.section(["encoder"], entries, indent, false);
}

function renderProjector(c: Ctx, pp: ProjP, indent: string): void {
  const { rng } = c;
  const L = (n: number, name: string) => layerName("projector", n, name);
  const segs: Seg[] = [];
  let n = 0;
  const hidden = argVal("val:projector.hidden", pp.hiddenExpr, "projector: first linear", { type: "int", min: 1 });
  switch (pp.form) {
    case "mlp":
      segs.push(L(n++, "linear"), "(", hidden, ") -> ", L(n++, "gelu"), " -> ");
      break;
    case "block":
      segs.push(L(n++, "mix"), "(", pp.hiddenExpr, ") -> ");
      break;
    case "deep":
      segs.push(L(n++, "linear"), "(", hidden, ") -> ", L(n++, rng.pick(["gelu", "relu", "silu"])), " -> ", L(n++, "layernorm"), " -> ", L(n++, "linear"), `(${pp.hidden}) -> `, L(n++, "gelu"), " -> ");
      break;
    case "single":
      break;
  }
  if (pp.norm && pp.form !== "single") segs.push(L(n++, "layernorm"), " -> ");
  segs.push(L(n++, "linear"), "(", pp.outNamed ? "out: " : "", argVal("val:projector.out", pp.outExpr, "projector: last linear", { type: "int", min: 1, constraint: "projectorOut" }), ")");
  if (pp.tailDropout !== null) segs.push(" -> ", L(n++, "dropout"), "(", argVal("val:projector.dropout", pp.tailDropout, "projector: dropout", { type: "dropout" }), ")");
  if (rng.chance(0.5)) c.w.section(["projector"], [[segs]], indent, true);
  else c.w.section(["projector"], [[segs]], indent, false);
}

function renderDecoder(c: Ctx, d: DecP, vocab: number, indent: string): void {
  const { rng } = c;
  const schema = `decoder:${d.preset ?? "custom"}`;
  const S = (key: string, value: string, opts: Parameters<typeof setting>[4] = {}) => [setting("decoder", schema, key, value, opts)];
  const usesDim = d.preset === null && d.layers > 0; // the custom chain's `4 * dim`
  const mlpRef = d.preset === "gpt" && rng.chance(0.3);
  const entries: Entry[] = [
    S("dim", intExpr(rng, d.dim, c.topLets), { type: "int", min: 1, referenced: usesDim || mlpRef }),
    S("context", intExpr(rng, d.context, c.topLets), { type: "int", min: 1, constraint: "context" }),
  ];
  if (d.preset) {
    entries.push(S("heads", intExpr(rng, d.heads, c.topLets), d.layers > 0 ? { type: "int", min: 1, constraint: "decoderHeads" } : { type: "int", min: 1 }));
    entries.push(S("layers", intExpr(rng, d.layers, c.topLets, 0.8), { type: "int", min: 0 }));
  }
  if (d.writeKv) entries.push(S("kv_heads", intExpr(rng, d.kvHeads, c.topLets), d.layers > 0 ? { type: "int", min: 1, constraint: "kvHeads", removable: true } : { type: "int", min: 1, removable: true }));
  if (d.writePosition) {
    const dflt = d.preset === "llama" ? "rope" : "learned";
    entries.push(S("position", d.position, { removable: d.position === dflt }));
  }
  if (d.vocabWritten !== "none") entries.push(S("vocab", d.vocabWritten === "ref" ? "tokenizer.size" : String(vocab), { type: "int", min: 1, constraint: "vocab", removable: true }));
  if (d.dropout !== null) entries.push(S("dropout", d.dropout, { type: "dropout", removable: true }));
  if (d.scaleDim) entries.push(S("attention_scale", "dim", { removable: true }));
  if (mlpRef) entries.push(S("mlp", `${rng.pick([2, 4])} * dim`, { removable: true }));
  for (const x of d.extra) {
    const [k, v] = x.split(": ") as [string, string];
    entries.push(S(k, v, { removable: true }));
  }
  const body = rng.shuffle(entries);
  if (d.preset === null && (d.layers > 0 || rng.chance(0.5))) {
    const L = (n: number, name: string) => layerName("decoder", n, name);
    const live = d.layers > 0;
    const headsSeg: Seg = live
      ? argVal("val:decoder.attention.heads", intExpr(rng, d.heads, c.topLets), "decoder: attention heads", { type: "int", min: 1, constraint: "decoderHeads" })
      : String(d.heads);
    const count = argVal("val:decoder.repeat", intExpr(rng, d.layers, c.topLets, 0.8), "decoder: repeat count", { type: "int", min: 0 });
    if (d.useBlock) {
      // The transformer as a user block (defined at the top level, see `blockDefs`): the heads
      // are a block argument, checked inside the block's body, so no site here.
      body.push([["repeat ", count, " { ", live ? L(0, "xf") : "xf", `(dim, heads: ${d.heads}) }`], ["-> ", L(1, "layernorm")]]);
    } else {
      const inner = (s: Seg) => (live ? s : (s as { text: string }).text);
      body.push([
        ["repeat ", count, " {"],
        ["  residual { ", inner(L(0, "layernorm")), " -> ", inner(L(1, "attention")), "(heads: ", headsSeg, ", causal: true) }"],
        ["  residual { layernorm -> ", inner(L(2, "mlp")), `(hidden: ${rng.pick(["4 * dim", "dim * 4", "2 * dim"])}) }`],
        ["}"],
        ["-> ", L(3, "layernorm")],
      ]);
    }
  }
  c.w.section([`decoder${d.preset ? ` ${d.preset}` : ""}`], body, indent, d.preset !== null && rng.chance(0.25), {
    slot: "ins:decoder",
    site: { kind: "insert", where: "decoder: after `{`" },
  });
}

interface StageP {
  name: string;
  train: ModuleName[];
  steps: number;
  epochs: number;
}

function genStages(rng: Rng): StageP[] {
  const n = rng.int(1, 3);
  const names = rng.shuffle(["align", "tune", "joint", "warm", "s0", "s1", "s2", "pretrain", "finetune"]).slice(0, n);
  const stages: StageP[] = names.map((name) => {
    const train = MODULE_NAMES.filter(() => rng.chance(0.5));
    const steps = rng.chance(0.75) ? rng.int(1, 2000) : 0;
    return { name, train, steps, epochs: steps ? 0 : rng.int(1, 5) };
  });
  // Every module is trained by some stage (else W0501), and no stage is empty (else E0502).
  for (const m of MODULE_NAMES) if (!stages.some((s) => s.train.includes(m))) rng.pick(stages).train.push(m);
  for (const s of stages) if (s.train.length === 0) s.train.push(rng.pick(MODULE_NAMES));
  for (const s of stages) s.train = rng.shuffle(s.train);
  return stages;
}

function renderTrain(c: Ctx, stages: StageP[], indent: string): void {
  const { rng, w } = c;
  const head: Entry[] = [
    [["data: shapes(images: ", argVal("val:train.images", intExpr(rng, rng.int(10, 5000), c.topLets), "train: shapes images", { type: "int", min: 1 }), `, size: ${rng.pick([32, 64, 96])}, seed: ${rng.int(0, 9)})`]],
  ];
  if (rng.chance(0.7)) head.push([setting("train", "train", "batch", intExpr(rng, rng.pick([1, 4, 8, 16, 32]), c.topLets), { type: "int", min: 1, removable: true })]);
  if (rng.chance(0.5)) head.push([setting("train", "train", "seed", String(rng.int(0, 9999)), { removable: true })]);
  w.line(["train {"], indent);
  for (const e of rng.shuffle(head)) for (const l of e) w.line(l, indent + "  ");
  for (const s of stages) {
    const entries: Entry[] = [];
    const items: { text: string; col: number }[] = [];
    let list = "[";
    s.train.forEach((m, i) => {
      if (i > 0) list += ", ";
      items.push({ text: m, col: list.length });
      list += m;
    });
    list += "]";
    const trainSeg = seg(list, `list:${s.name}`, { kind: "trainList", where: `stage ${s.name}: train`, stage: s.name, items });
    entries.push([["train: ", trainSeg]]);
    const sec = `stage.${s.name}`;
    if (rng.chance(0.6)) entries.push([setting(sec, "stage", "optimizer", rng.pick(["adam(lr: 1e-3)", "adamw(lr: 2e-4, weight_decay: 0.01)", "sgd(lr: 0.1, momentum: 0.9)", "adam(lr: 3e-4)"]), { removable: true })]);
    if (rng.chance(0.3)) entries.push([setting(sec, "stage", "schedule", s.steps > 1 ? `cosine(warmup: ${rng.int(0, s.steps - 1)})` : rng.pick(["cosine(warmup: 0.05)", "constant", "linear(final: 0.1)"]), { removable: true })]);
    if (s.steps) entries.push([setting(sec, "stage", "steps", intExpr(rng, s.steps, c.topLets, 0.8), { type: "int", min: 0 })]);
    else entries.push([setting(sec, "stage", "epochs", intExpr(rng, s.epochs, c.topLets, 0.8), { type: "int", min: 0 })]);
    const shuffled = [entries[0]!, ...rng.shuffle(entries.slice(1))];
    w.section([`stage ${s.name}`], rng.shuffle(shuffled), indent + "  ", rng.chance(0.4));
  }
  w.line(["}"], indent);
  // Fix the item columns: they were relative to the list.
  for (const s of stages) {
    const site = w.sites.get(`list:${s.name}`);
    if (site && site.items) site.items = site.items.map((it) => ({ text: it.text, col: site.col + it.col }));
  }
}

// ---- the generator ----

export function generateValidSpec(seed: number, options: GenerateOptions = {}): GeneratedSpec {
  const z = SIZES[options.size ?? "default"];
  const rng = new Rng(seed);
  const w = new Writer();
  const topLets: Lets = new Map();
  const c: Ctx = { rng, w, topLets };

  const enc = genEncoder(rng, z);
  const dec = genDecoder(rng, enc.tokens, z);

  // Tokenizer.
  const alphabet = rng.shuffle(ALPHABET_POOL).slice(0, rng.int(1, 48));
  const specials = rng.chance(0.8) ? rng.shuffle(["pad", "bos", "eos", "unk"]).slice(0, rng.int(0, 4)) : null;
  const vocab = alphabet.length + (specials ?? ["pad", "bos", "eos"]).length;

  if (rng.chance(0.15)) w.line([`# generated by test/helpers/spec-gen.ts, seed ${seed}`]);
  w.line(["vlm 0.1"]);
  w.blank();

  // Top-level constants: some of the widths, sometimes derived from each other.
  if (rng.chance(0.6)) {
    topLets.set("d_enc", enc.dim);
    w.line([`let d_enc = ${intExpr(rng, enc.dim)}`]);
  }
  if (rng.chance(0.5)) {
    const name = rng.pick(["d_model", "width", "d_dec"]);
    topLets.set(name, dec.dim);
    w.line([topLets.has("d_enc") && dec.dim % 2 === 0 && enc.dim === dec.dim * 2 ? `let ${name} = d_enc / 2` : `let ${name} = ${intExpr(rng, dec.dim)}`]);
  }
  if (rng.chance(0.3)) {
    topLets.set("n_heads", dec.heads);
    w.line([`let n_heads = ${dec.heads}`]);
  }
  if (topLets.size) w.blank();

  const proj = genProjector(rng, enc, dec, topLets);
  // A model-level constant for the projector's hidden width (which a derived model may redefine).
  const modelLet = proj.form !== "single" && rng.chance(0.35) ? `let hidden = ${intExpr(rng, proj.hidden, topLets)}` : null;
  if (modelLet) proj.hiddenExpr = "hidden";
  // Blocks the spec may use.
  if (proj.form === "block") {
    w.line([`block mix(w, p = ${rng.pick(["0.1", "0.0"])}) { linear(w) -> gelu -> dropout(p) }`]);
    w.blank();
  }
  if (dec.useBlock) {
    w.line(["block xf(dim, heads) {"]);
    w.line(["  residual { layernorm -> attention(heads: heads, causal: true) }"]);
    w.line(["  residual { layernorm -> linear(4 * dim) -> gelu -> linear(dim) }"]);
    w.line(["}"]);
    w.blank();
  }

  const extend = rng.chance(0.3);
  const trainInside = !extend && rng.chance(0.25);
  const stages = genStages(rng);
  const modelName = rng.pick(["m", "tiny", "seemore", "vlm_small", "captioner", "model2"]);
  const baseName = `${modelName}_base`;

  // The model (or its base).
  let effEnc = enc;
  let effDec = dec;
  {
    w.line([`model ${extend ? baseName : modelName} {`]);
    if (modelLet) w.line([modelLet], "  ");
    const sections = rng.shuffle(["tokenizer", "encoder", "projector", "decoder"] as const);
    for (const s of sections) {
      if (s === "tokenizer") renderTokenizer(c, alphabet, specials, "  ");
      else if (s === "encoder") renderEncoder(c, enc, "  ");
      else if (s === "projector") renderProjector(c, proj, "  ");
      else renderDecoder(c, dec, vocab, "  ");
    }
    if (trainInside) renderTrain(c, stages, "  ");
    w.line(["}"]);
    w.blank();
  }

  if (extend) {
    // The derived model: overrides that keep it valid, recomputed from the base.
    w.line([`model ${modelName} extends ${baseName} {`]);
    const ovr: Entry[] = [];
    const pinAfter: string[] = [];
    effEnc = { ...enc };
    effDec = { ...dec };
    const override = (section: "encoder" | "decoder", key: string, value: string, opts: Parameters<typeof setting>[4]) => {
      const schema = section === "encoder" ? `encoder:${enc.preset ?? "custom"}` : `decoder:${dec.preset ?? "custom"}`;
      // A misspelt override key leaves the base's value, which is valid too: removable.
      const s = setting(section, schema, key, value, { ...opts, removable: true, where: `override ${section}.${key}` });
      // The key site of an override is its last part: `decoder.layers` -> `layers`.
      return [[`${section}.`, ...s]] as Entry;
    };
    // A heads constraint holds where either model has attention: the base and the derived
    // model report the same mistake at the same place, once.
    if (dec.preset && rng.chance(0.5)) {
      effDec.layers = rng.int(0, z.depth);
      ovr.push(override("decoder", "layers", String(effDec.layers), { type: "int", min: 0 }));
      if (effDec.layers > 0) {
        const site = w.sites.get("val:decoder.heads");
        if (site) site.constraint = "decoderHeads";
        const kv = w.sites.get("val:decoder.kv_heads");
        if (kv) kv.constraint = "kvHeads";
      }
    }
    if (enc.preset && rng.chance(0.5)) {
      effEnc.blocks = rng.int(0, z.depth);
      ovr.push(override("encoder", "blocks", String(effEnc.blocks), { type: "int", min: 0 }));
      if (effEnc.blocks > 0) {
        const site = w.sites.get("val:encoder.heads");
        if (site) site.constraint = "encoderHeads";
      }
    }
    if (rng.chance(0.4)) {
      effDec.context = enc.tokens + 1 + rng.int(0, z.contextOverride);
      ovr.push(override("decoder", "context", String(effDec.context), { type: "int", min: 1, constraint: "context" }));
    }
    if (enc.preset && rng.chance(0.3)) {
      const p = rng.pick(DROPOUTS);
      ovr.push(override("encoder", "dropout", p, { type: "dropout" }));
    }
    if (rng.chance(0.3)) {
      const st = stages.find((s) => s.steps > 0);
      if (st) {
        // Never shorter: a stage's warm-up must stay shorter than the stage.
        st.steps += rng.int(0, 1000);
        ovr.push([[`train.${st.name}.`, ...setting(`stage.${st.name}`, "stage", "steps", String(st.steps), { type: "int", min: 0, removable: true, where: `override train.${st.name}.steps` })]]);
        // The stage itself is written after this model (the top-level `train`).
        pinAfter.push(`key:stage.${st.name}.steps`, `val:stage.${st.name}.steps`);
      }
    }
    if (modelLet && rng.chance(0.5)) ovr.push([[`let hidden = ${rng.pick([1, 2, 4, 8]) * enc.dim}`]]);
    let newProj: ProjP | null = null;
    if (rng.chance(0.3)) newProj = genProjector(rng, enc, dec, topLets);
    const body = rng.shuffle(ovr);
    for (const e of body) for (const l of e) w.line(l, "  ");
    for (const slot of pinAfter) w.pinned.add(slot);
    if (newProj) {
      if (newProj.form === "block" && proj.form !== "block") newProj.form = "mlp";
      w.drop("val:projector.");
      w.drop("layer:projector.");
      renderProjector(c, newProj, "  ");
    }
    w.line(["}"]);
    w.blank();
  }

  if (!trainInside) renderTrain(c, stages, "");

  const intent: Intent = {
    model: modelName,
    base: extend ? baseName : null,
    tokenizer: { alphabet: alphabet.join(""), specials: specials ?? ["pad", "bos", "eos"], size: vocab },
    encoder: {
      preset: effEnc.preset,
      image: [effEnc.H, effEnc.W, effEnc.C],
      patch: effEnc.patch,
      dim: effEnc.dim,
      heads: effEnc.heads,
      blocks: effEnc.blocks,
      cls: effEnc.cls,
      output: effEnc.output,
      tokens: effEnc.tokens,
      scaleDim: effEnc.scaleDim,
    },
    projector: { out: effDec.dim },
    decoder: {
      preset: effDec.preset,
      dim: effDec.dim,
      heads: effDec.heads,
      kvHeads: effDec.kvHeads,
      layers: effDec.layers,
      context: effDec.context,
      position: effDec.position,
      vocabWritten: effDec.vocabWritten,
      scaleDim: effDec.scaleDim,
    },
    stages: stages.map((s) => ({ name: s.name, train: s.train, steps: s.steps, epochs: s.epochs })),
  };
  return { seed, text: w.text, intent, sites: [...w.sites.values()].sort((a, b) => a.line - b.line || a.col - b.col) };
}

// ---- corruption helpers ----

/** Replaces the text of `site` (or `length` characters at its position) with `replacement`. */
export function replaceAt(text: string, line: number, col: number, length: number, replacement: string): string {
  const lines = text.split("\n");
  const l = lines[line - 1];
  if (l === undefined) throw new Error(`no line ${line}`);
  lines[line - 1] = l.slice(0, col - 1) + replacement + l.slice(col - 1 + length);
  return lines.join("\n");
}

/** Optimal string alignment distance (edit distance with adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * Misspellings of `word` at edit distance 1 (a doubled letter, two letters swapped, a letter
 * dropped) whose closest word among `known` is `word` alone: a "did you mean" must name it.
 */
export function typosOf(word: string, known: readonly string[], rng: Rng): string[] {
  const out = new Set<string>();
  for (let i = 0; i < word.length; i++) out.add(word.slice(0, i + 1) + word[i] + word.slice(i + 1));
  for (let i = 0; i + 1 < word.length; i++) if (word[i] !== word[i + 1]) out.add(word.slice(0, i) + word[i + 1] + word[i] + word.slice(i + 2));
  if (word.length >= 5) for (let i = 1; i < word.length; i++) out.add(word.slice(0, i) + word.slice(i + 1));
  const others = known.filter((k) => k !== word);
  return rng.shuffle(
    [...out].filter((t) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(t) && !known.includes(t) && !["x", "let", "repeat", "true", "false"].includes(t) && others.every((o) => editDistance(t.toLowerCase(), o.toLowerCase()) > 1)),
  );
}

/** The spec with line numbers, for failure messages. */
export function numbered(text: string): string {
  return text
    .split("\n")
    .map((l, i) => `${String(i + 1).padStart(4)} | ${l}`)
    .join("\n");
}
