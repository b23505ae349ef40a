// Stochastic gradient descent with PyTorch's update rule (torch.optim.SGD, dampening 0):
//   g <- g + weight_decay * p;  b <- g on the first step, else momentum * b + g;
//   g <- g + momentum * b with Nesterov, else b;  p <- p - lr * g.
// The same public shape as runtime/optim.ts's Adam (apply, exportState, importState, dispose),
// so the trainer's parameter groups drive either.
import type * as tfjs from "@tensorflow/tfjs";
import type { Tf } from "../../compiler/layers/ops.js";

export interface SgdOptions {
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
}

export class Sgd {
  private step = 0;
  private readonly buf = new Map<string, tfjs.Variable>();

  constructor(
    readonly tf: Tf,
    readonly opts: SgdOptions,
  ) {}

  apply(vars: ReadonlyMap<string, tfjs.Variable>, grads: Record<string, tfjs.Tensor>, lr = this.opts.lr): void {
    const { tf, opts } = this;
    this.step++;
    for (const [name, g0] of Object.entries(grads)) {
      const p = vars.get(name);
      if (!p) continue;
      tf.tidy(() => {
        let g = g0;
        if (opts.weightDecay > 0) g = tf.add(g, tf.mul(p, opts.weightDecay));
        if (opts.momentum > 0) {
          let b = this.buf.get(name);
          if (!b) {
            b = tf.variable(g, false);
            this.buf.set(name, tf.keep(b));
          } else b.assign(tf.add(tf.mul(b, opts.momentum), g));
          g = opts.nesterov ? tf.add(g, tf.mul(b, opts.momentum)) : b;
        }
        p.assign(tf.sub(p, tf.mul(g, lr)));
      });
    }
  }

  /** The momentum buffers, under the names Adam uses for its first moment (`m`); no `v`. */
  exportState(): { step: number; moments: Map<string, { m: tfjs.Variable }> } {
    return { step: this.step, moments: new Map([...this.buf].map(([k, b]) => [k, { m: b }])) };
  }

  importState(step: number, moments: ReadonlyMap<string, { m: Float32Array; shape: number[] }>): void {
    this.dispose();
    this.step = step;
    for (const [name, s] of moments) {
      const t = this.tf.tensor(s.m, s.shape);
      this.buf.set(name, this.tf.variable(t, false));
      t.dispose();
    }
  }

  dispose(): void {
    for (const b of this.buf.values()) b.dispose();
    this.buf.clear();
  }
}
