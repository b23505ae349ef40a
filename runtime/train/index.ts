// The package API's `train`: loads the trainer (tfjs, sharp) only when called, so that importing
// vlmc for `check` or `compile` never loads them.
import type { TrainOptions, TrainResult } from "./run.js";

export type { TrainOptions, TrainResult } from "./run.js";
export type { TrainEvent } from "./events.js";

/** Trains the spec's model through its stages; see runtime/train/run.ts and docs/training.md. */
export async function train(specPath: string, options: TrainOptions = {}): Promise<TrainResult> {
  const { train: run } = await import("./run.js");
  return run(specPath, options);
}
