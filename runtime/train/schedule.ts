// Learning-rate schedules: the factor of the optimizer's rate at each step of a stage, a pure
// function of (schedule, step, stage length), so a resumed run needs no schedule state beyond
// the step. The rules are those of Hugging Face's schedulers (`get_*_schedule_with_warmup`), so
// curves can be compared: during warm-up the factor is step / warmup (the first step runs at 0),
// then it decays over the rest of the stage, linearly or along a half cosine, towards `final`.
import type { IrCall } from "../../compiler/ir/types.js";

/** The warm-up in steps: a count, or a fraction (< 1) of the stage, rounded. */
export function warmupSteps(schedule: IrCall, total: number): number {
  const w = typeof schedule.warmup === "number" ? schedule.warmup : 0;
  return Number.isInteger(w) ? w : Math.round(w * total);
}

/** The factor at 0-based `step` of a stage of `total` steps. */
export function lrFactor(schedule: IrCall, step: number, total: number): number {
  const warm = warmupSteps(schedule, total);
  if (step < warm) return step / warm;
  if (schedule.kind === "constant") return 1;
  const final = typeof schedule.final === "number" ? schedule.final : 0;
  const progress = Math.min(1, (step - warm) / Math.max(1, total - warm));
  if (schedule.kind === "linear") return 1 - (1 - final) * progress;
  if (schedule.kind === "cosine") return final + (1 - final) * 0.5 * (1 + Math.cos(Math.PI * progress));
  throw new Error(`internal: unknown schedule ${schedule.kind}`);
}
