// A stage's optimizer over parameter groups. Only the parameters of the modules the stage trains
// are in it (frozen ones get no gradient and no state); they are grouped by (module, decays?), so
// that each group has its learning rate (`module_lr`, else the optimizer's `lr`) and its weight
// decay (none on parameters the IR marks `decay: false`: biases and norm gains). Each group is
// one Adam (runtime/optim.ts, PyTorch's rule) or SGD (sgd.ts), all stepped together; the state
// saves to one safetensors file (`m.<param>`, `v.<param>`) with the step count in its metadata.
import type * as tfjs from "@tensorflow/tfjs";
import type { Tf } from "../../compiler/layers/ops.js";
import type { IrParam, IrStage } from "../../compiler/ir/types.js";
import { Adam } from "../optim.js";
import { encodeSafetensors, type TensorToWrite } from "../safetensors.js";
import { Sgd } from "./sgd.js";

interface Group {
  module: string;
  decay: boolean;
  lr: number;
  names: string[];
  opt: Adam | Sgd;
}

export class StageOptimizer {
  readonly groups: Group[] = [];
  /** Names of the trained parameters, in IR order. */
  readonly trainable: string[];
  readonly kind: string;
  private steps = 0;

  constructor(
    readonly tf: Tf,
    params: readonly IrParam[],
    readonly stage: IrStage,
  ) {
    const o = stage.optimizer;
    this.kind = o.kind;
    const trained = params.filter((p) => stage.train.includes(p.name.split(".")[0]!));
    this.trainable = trained.map((p) => p.name);
    for (const p of trained) {
      const module = p.name.split(".")[0]!;
      let g = this.groups.find((x) => x.module === module && x.decay === p.decay);
      if (!g) {
        const lr = stage.module_lr?.[module] ?? (o.lr as number);
        const wd = p.decay ? ((o.weight_decay as number | undefined) ?? 0) : 0;
        const opt =
          o.kind === "sgd"
            ? new Sgd(tf, { lr, momentum: (o.momentum as number) ?? 0, nesterov: o.nesterov === true, weightDecay: wd })
            : new Adam(tf, { lr, beta1: o.beta1 as number, beta2: o.beta2 as number, eps: o.eps as number, weightDecay: wd, decoupled: o.kind === "adamw" });
        g = { module, decay: p.decay, lr, names: [], opt };
        this.groups.push(g);
      }
      g.names.push(p.name);
    }
  }

  get step(): number {
    return this.steps;
  }

  /** One update of every group at `factor` x its learning rate (the schedule's factor). */
  apply(vars: ReadonlyMap<string, tfjs.Variable>, grads: Record<string, tfjs.Tensor>, factor: number): void {
    for (const g of this.groups) {
      const mine: Record<string, tfjs.Tensor> = {};
      for (const n of g.names) if (grads[n]) mine[n] = grads[n]!;
      g.opt.apply(vars, mine, g.lr * factor);
    }
    this.steps++;
  }

  /** The learning rate of the optimizer's own `lr` at this factor (for metrics). */
  baseLr(factor: number): number {
    return (this.stage.optimizer.lr as number) * factor;
  }

  /** The state as safetensors bytes (deterministic: sorted names). */
  encode(): Uint8Array {
    const tensors: TensorToWrite[] = [];
    for (const g of this.groups) {
      const st = g.opt.exportState();
      for (const [name, s] of st.moments) {
        tensors.push({ name: `m.${name}`, dtype: "F32", shape: s.m.shape, data: s.m.dataSync() as Float32Array });
        const v = (s as { v?: tfjs.Variable }).v;
        if (v) tensors.push({ name: `v.${name}`, dtype: "F32", shape: v.shape, data: v.dataSync() as Float32Array });
      }
    }
    return encodeSafetensors(tensors, { "vlmc.optimizer": this.kind, "vlmc.step": String(this.steps) });
  }

  /** Restores `encode()`'s state from its tensors (name -> data, shape). */
  load(step: number, tensors: ReadonlyMap<string, { data: Float32Array; shape: number[] }>): void {
    this.steps = step;
    for (const g of this.groups) {
      const moments = new Map<string, { m: Float32Array; v: Float32Array; shape: number[] }>();
      for (const n of g.names) {
        const m = tensors.get(`m.${n}`);
        if (!m) continue; // no state yet (no step taken, or SGD without momentum)
        moments.set(n, { m: m.data, v: tensors.get(`v.${n}`)?.data ?? new Float32Array(0), shape: m.shape });
      }
      g.opt.importState(step, moments);
    }
  }

  dispose(): void {
    for (const g of this.groups) g.opt.dispose();
  }
}
