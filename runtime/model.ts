// The IR as a tfjs model: named variables for every parameter (seeded initialisation), and a
// forward pass that walks each module's layer tree calling the layer kinds' lowerings.
// Images are [B, H, W, C] float32 (channels last), tokens [B, T] int32.
import type * as tfjs from "@tensorflow/tfjs";
import { layerKinds } from "../compiler/layers/index.js";
import type { KvSlot, LowerContext } from "../compiler/layers/kind.js";
import { crossEntropy, dropout, type Tf, type Tensor } from "../compiler/layers/ops.js";
import type { Ir, IrInit, IrLayer, IrParam } from "../compiler/ir/types.js";
import { normal, streamSeed, uniform01 } from "./random.js";
import { resolvePretrained } from "./pretrained/index.js";

export interface ForwardOptions {
  training: boolean;
  /** Seeds dropout; vary it per step. */
  dropoutSeed?: number;
  /** Assert every layer's runtime shape against the IR's (debug mode; on in tests). */
  checkShapes?: boolean;
  /**
   * Decode with this key/value cache: an empty cache takes the whole first input (images and
   * prompt, the prefill); after that, only new tokens (images null), which see the cached
   * positions. The logits are those of the new positions.
   */
  cache?: KvCache;
  /** Gets every attention layer's weights [B, H, N, L] by its path (inside the caller's tidy). */
  onAttention?: (path: string, weights: Tensor) => void;
  /** Modules run in inference mode (no dropout) whatever `training` says: a stage's frozen ones. */
  frozen?: readonly string[];
  /**
   * The encoder's output for this batch, made beforehand (`encode`: the trainer runs a frozen
   * encoder outside the gradient tape, or takes it from its cache): the encoder is not run and
   * `images` may be null.
   */
  encoded?: Tensor;
  /** Stop after the encoder and return its output (what `encode` runs). */
  encoderOnly?: boolean;
}

export class ShapeMismatch extends Error {}

/**
 * Keys and values of the positions decoded so far (visual tokens and text), per decoder
 * attention layer, for generation one token at a time (runtime/generate.ts): each step then
 * costs one position instead of the whole sequence. Holds kept tensors: dispose() it.
 */
export class KvCache {
  /** Positions held, visual tokens included. */
  length = 0;
  private readonly entries = new Map<string, { k: Tensor; v: Tensor }>();

  /** `capacity`: the most positions it will hold (at most the decoder's context). */
  constructor(
    private readonly tf: Tf,
    readonly capacity: number,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`KvCache: capacity must be a positive integer, got ${capacity}`);
  }

  slot(path: string): KvSlot {
    return {
      past: this.entries.get(path) ?? null,
      store: (k, v) => {
        // Kept out of the step's tidy; the previous step's tensors were only inputs of these.
        const old = this.entries.get(path);
        this.entries.set(path, { k: this.tf.keep(k), v: this.tf.keep(v) });
        if (old) this.tf.dispose([old.k, old.v]);
      },
    };
  }

  dispose(): void {
    for (const e of this.entries.values()) this.tf.dispose([e.k, e.v]);
    this.entries.clear();
  }
}

/** Every parameter of the IR, in a stable order (module order, then depth-first). */
export function irParams(ir: Ir): IrParam[] {
  const out: IrParam[] = [];
  const walk = (ls: IrLayer[]) => {
    for (const l of ls) {
      out.push(...l.params);
      if (l.children) walk(l.children);
    }
  };
  for (const m of ["encoder", "projector", "decoder"] as const) {
    const mod = ir.modules[m];
    if (mod) walk(mod.layers);
  }
  return out;
}

export function initValues(p: IrParam, seed: number): Float32Array {
  const n = p.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const init: IrInit = p.init;
  const s = streamSeed(seed, p.name);
  switch (init.kind) {
    case "zeros":
      break;
    case "ones":
      out.fill(1);
      break;
    case "normal": {
      const g = normal(s);
      for (let i = 0; i < n; i++) out[i] = g() * init.std;
      break;
    }
    case "uniform":
    case "xavier_uniform": {
      const bound = init.kind === "uniform" ? init.bound : Math.sqrt(6 / (p.shape[0]! + (p.shape[1] ?? p.shape[0]!)));
      const u = uniform01(s);
      for (let i = 0; i < n; i++) out[i] = (2 * u() - 1) * bound;
      break;
    }
  }
  return out;
}

export class Model {
  /** Constant tensors the lowerings ask for (masks, tables), made once and kept. */
  private readonly constants = new Map<string, Tensor>();

  private constructor(
    readonly tf: Tf,
    readonly ir: Ir,
    readonly variables: Map<string, tfjs.Variable>,
  ) {}

  /**
   * Creates the variables with the IR's seeded initialisers. `baseDir`: the IR document's
   * folder (default: the working directory, where an IR compiled in memory is based), against
   * which a pretrained encoder's folder is found and its files checked (runtime/pretrained/).
   */
  static create(tf: Tf, ir: Ir, seed = 0, options: { baseDir?: string } = {}): Model {
    const local = resolvePretrained(ir, options.baseDir ?? process.cwd()); // before any tensor: it may throw
    const vars = new Map<string, tfjs.Variable>();
    for (const p of irParams(ir)) {
      // The variable shares the initial tensor's data; the tensor itself must go, or it
      // outlives the model (and keeps the data alive after dispose()).
      const initial = tf.tensor(initValues(p, seed), p.shape);
      vars.set(p.name, tf.variable(initial, true, p.name));
      initial.dispose();
    }
    return new Model(tf, local, vars);
  }

  dispose(): void {
    for (const v of this.variables.values()) v.dispose();
    for (const c of this.constants.values()) c.dispose();
    this.constants.clear();
  }

  private constant(key: string, make: () => Tensor): Tensor {
    let c = this.constants.get(key);
    if (!c) {
      c = this.tf.keep(make()); // kept out of any enclosing tidy: it outlives this step
      this.constants.set(key, c);
    }
    return c;
  }

  /** Logits [B, Nv + T, V]. `images` may be null for a model without an encoder. */
  forward(images: Tensor | null, tokens: Tensor | null, opts: ForwardOptions): Tensor {
    const { tf, ir } = this;
    let dropoutCalls = 0;
    const B = (tokens ?? images)!.shape[0]!;
    const T = tokens?.shape[1] ?? 0;
    const training = (module: string) => opts.training && !opts.frozen?.includes(module);
    const cache = opts.cache;
    // The decoder's run with a cache: where its input starts, and the attention layers' slots.
    let cached: { offset: number; capacity: number } | undefined;
    const run = (layers: IrLayer[], x: Tensor, state: { cls: boolean; training: boolean; visual?: Tensor }): Tensor => {
      for (const layer of layers) {
        const kind = layerKinds.get(layer.kind);
        if (!kind?.lower) throw new Error(`internal: layer kind ${layer.kind} has no lowering`);
        const prefix = layer.path;
        const ctx: LowerContext = {
          tf,
          attrs: layer.attrs,
          p: (name) => {
            const v = this.variables.get(`${prefix}.${name}`);
            if (!v) throw new Error(`internal: no variable ${prefix}.${name}`);
            return v;
          },
          has: (name) => this.variables.has(`${prefix}.${name}`),
          training: state.training,
          dropout: (t, p) => (state.training && p > 0 ? dropout(tf, t, p, (opts.dropoutSeed ?? 0) * 7919 + dropoutCalls++) : t),
          body: (t) => run(layer.children ?? [], t, state),
          ...(state.visual ? { visual: state.visual } : {}),
          tokenEmbedding: () => this.variables.get("decoder.embed.weight")!,
          inputCls: state.cls,
          constant: (key, make) => this.constant(key, make),
          ...(cached ? { cached } : {}),
          ...(cached && layer.kind === "attention" ? { kv: cache!.slot(layer.path) } : {}),
          ...(opts.onAttention && layer.kind === "attention" ? { observe: (w: Tensor) => opts.onAttention!(layer.path, w) } : {}),
        };
        x = kind.lower(ctx, x);
        if (layer.kind === "patch_embed") state.cls = layer.attrs.cls === true;
        if (layer.kind === "take") state.cls = false;
        if (opts.checkShapes && !cached) assertShape(layer, x, { B, T });
      }
      return x;
    };
    let visual: Tensor | undefined;
    const enc = ir.modules.encoder;
    if (cache && cache.length > 0) {
      // After the prefill the visual tokens are in the cache: only new tokens come in.
      if (images) throw new RangeError("Model.forward: images go with the first call of a cache only");
    } else if (enc) {
      if (opts.encoded) visual = opts.encoded;
      else {
        if (!images) throw new Error("this model has an encoder: images are required");
        visual = run(enc.layers, images, { cls: false, training: training("encoder") });
      }
      if (opts.encoderOnly) return visual;
      const proj = ir.modules.projector;
      if (proj) visual = run(proj.layers, visual, { cls: false, training: training("projector") });
    }
    const dec = ir.modules.decoder;
    if (!dec) throw new Error("the model has no decoder");
    if (!tokens) throw new Error("Model.forward: the decoder needs tokens");
    const decoding = { cls: false, training: training("decoder"), ...(visual ? { visual } : {}) };
    if (!cache) return run(dec.layers, tokens, decoding);
    const added = T + (visual ? visual.shape[1]! : 0);
    if (cache.length + added > cache.capacity) throw new RangeError(`Model.forward: ${cache.length} cached + ${added} new positions are more than the cache's capacity of ${cache.capacity}`);
    cached = { offset: cache.length, capacity: cache.capacity };
    const logits = run(dec.layers, tokens, decoding);
    cache.length += added;
    return logits;
  }

  /**
   * The encoder's output alone ([B, N, D], before the projector), in inference mode: a frozen
   * encoder's, which the trainer computes outside the gradient tape and caches.
   */
  encode(images: Tensor): Tensor {
    if (!this.ir.modules.encoder) throw new Error("the model has no encoder");
    return this.forward(images, null, { training: false, encoderOnly: true });
  }

  /**
   * Mean cross-entropy of the text positions: the logit at text position i predicts
   * targets[i]; positions where mask is 0 (padding) do not count. Visual positions never count.
   */
  loss(logits: Tensor, targets: Tensor, mask: Tensor): tfjs.Scalar {
    // One fused kernel with the native accelerator (log-softmax, pick, mask), else tfjs ops.
    return crossEntropy(this.tf, logits, targets, mask);
  }
}

/** Symbolic IR dims (`B`, `T`, `1+T`) evaluated for this batch. */
export function concreteDim(d: number | string, sizes: { B: number; T: number }): number {
  if (typeof d === "number") return d;
  return d.split("+").reduce((acc, part) => acc + (part === "B" ? sizes.B : part === "T" ? sizes.T : Number(part)), 0);
}

function assertShape(layer: IrLayer, x: Tensor, sizes: { B: number; T: number }): void {
  const want = layer.output.map((d) => concreteDim(d, sizes));
  const got = x.shape;
  if (want.length !== got.length || want.some((d, i) => d !== got[i])) {
    throw new ShapeMismatch(`${layer.path} (${layer.kind}): the checker inferred [${layer.output.join(", ")}] = [${want.join(", ")}], the runtime made [${got.join(", ")}]`);
  }
}
