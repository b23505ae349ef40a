// Optimizers with PyTorch's update rules, written out in tfjs ops (tfjs's own Adam differs in
// defaults and in where epsilon goes). State lives in tensors named after their variables.
import type * as tfjs from "@tensorflow/tfjs";
import type { Tf } from "../compiler/layers/ops.js";
import { nativeAdam } from "./native/fused.js";

export interface AdamOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** L2 added to the gradient (PyTorch Adam); with `decoupled`, AdamW's decay of the weights. */
  weightDecay: number;
  decoupled: boolean;
}

export class Adam {
  private step = 0;
  private readonly m = new Map<string, tfjs.Variable>();
  private readonly v = new Map<string, tfjs.Variable>();

  constructor(
    readonly tf: Tf,
    readonly opts: AdamOptions,
  ) {}

  /** p <- p - lr * m_hat / (sqrt(v_hat) + eps), with m_hat, v_hat bias-corrected. */
  apply(vars: ReadonlyMap<string, tfjs.Variable>, grads: Record<string, tfjs.Tensor>, lr = this.opts.lr): void {
    const { tf, opts } = this;
    this.step++;
    const c1 = 1 - opts.beta1 ** this.step;
    const c2 = 1 - opts.beta2 ** this.step;
    // The native update (one in-place call per parameter) when the accelerator runs.
    const native = nativeAdam(tf);
    for (const [name, g0] of Object.entries(grads)) {
      const p = vars.get(name);
      if (!p) continue;
      if (native && native(p, g0, this.state(this.m, name, p), this.state(this.v, name, p), { ...opts, lr }, this.step)) continue;
      tf.tidy(() => {
        let g = g0;
        if (opts.weightDecay > 0 && !opts.decoupled) g = tf.add(g, tf.mul(p, opts.weightDecay));
        const m = this.state(this.m, name, p);
        const v = this.state(this.v, name, p);
        m.assign(tf.add(tf.mul(m, opts.beta1), tf.mul(g, 1 - opts.beta1)));
        v.assign(tf.add(tf.mul(v, opts.beta2), tf.mul(tf.square(g), 1 - opts.beta2)));
        const denom = tf.add(tf.sqrt(tf.div(v, c2)), opts.eps);
        let next = tf.sub(p, tf.mul(tf.div(m, denom), lr / c1));
        if (opts.weightDecay > 0 && opts.decoupled) next = tf.sub(next, tf.mul(p, lr * opts.weightDecay));
        p.assign(next);
      });
    }
  }

  private state(map: Map<string, tfjs.Variable>, name: string, like: tfjs.Variable): tfjs.Variable {
    let s = map.get(name);
    if (!s) {
      const zeros = this.tf.zerosLike(like);
      s = this.tf.variable(zeros, false);
      zeros.dispose(); // the variable keeps its own reference to the data
      map.set(name, s);
    }
    return s;
  }

  /** For checkpoints: the steps taken and each parameter's moments (the live variables; read, do not keep). */
  exportState(): { step: number; moments: Map<string, { m: tfjs.Variable; v: tfjs.Variable }> } {
    const moments = new Map<string, { m: tfjs.Variable; v: tfjs.Variable }>();
    for (const [name, m] of this.m) moments.set(name, { m, v: this.v.get(name)! });
    return { step: this.step, moments };
  }

  /** Restores what exportState saved (a resumed run continues bit-identically). */
  importState(step: number, moments: ReadonlyMap<string, { m: Float32Array; v: Float32Array; shape: number[] }>): void {
    this.dispose();
    this.step = step;
    for (const [name, s] of moments) {
      for (const [map, data] of [[this.m, s.m], [this.v, s.v]] as const) {
        const t = this.tf.tensor(data, s.shape);
        map.set(name, this.tf.variable(t, false));
        t.dispose();
      }
    }
  }

  dispose(): void {
    for (const s of [...this.m.values(), ...this.v.values()]) s.dispose();
    this.m.clear();
    this.v.clear();
  }
}
