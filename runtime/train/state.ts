// What a checkpoint records besides weights and optimizer moments (state.json): where the run is
// (stage, steps), where it is in its data, how its randomness is seeded, the schedule's place and
// the best validation loss so far. Every random choice of a run is drawn from streams seeded by
// (train.seed, stage, step), so this is all a resumed run needs to continue bit-identically; the
// seeds are written out anyway, so a reader of a checkpoint sees them.
import type { DataPosition } from "../data/batches.js";
import { streamSeed } from "../random.js";

export const STATE_VERSION = 1;

export interface RunState {
  version: typeof STATE_VERSION;
  model: string;
  hash: string;
  /** The stage being run, and its index among the IR's stages. */
  stage: string;
  stageIndex: number;
  /** Optimizer steps done in this stage, and in the run. */
  stageStep: number;
  globalStep: number;
  /** The stage ran to its end (its final evaluation done): a resumed run starts the next. */
  stageDone: boolean;
  /** The next batch of the stage's training data starts here. */
  data: DataPosition;
  rng: {
    /** train.seed. */
    seed: number;
    /** Seed of the stage's data order (epoch e's order: streamSeed(dataSeed, `data/epoch/e`)). */
    dataSeed: number;
    /** How each step's dropout is seeded. */
    dropout: string;
  };
  schedule: { kind: string; stageSteps: number; warmup: number; factor: number; lr: number };
  /** The best validation loss of this stage (early stopping, which checkpoint to keep). */
  best: { loss: number; globalStep: number; checkpoint: string | null } | null;
  /** Evaluations since the best (early stopping). */
  evalsSinceBest: number;
  optimizer: { kind: string; step: number };
}

/** The seed of a stage's data order. */
export const dataSeed = (seed: number, stage: string) => streamSeed(seed, `train/data/${stage}`);

/** The dropout seed of one micro-batch of one step. */
export const dropoutSeed = (seed: number, stage: string, stageStep: number, micro: number) => streamSeed(seed, `train/dropout/${stage}/${stageStep}/${micro}`);
export const DROPOUT_RULE = "streamSeed(seed, `train/dropout/${stage}/${stageStep}/${micro}`)";

export function encodeState(s: RunState): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(s, null, 2)}\n`);
}

/** Throws with a one-line message when the bytes are not a state this vlmc wrote. */
export function decodeState(bytes: Uint8Array): RunState {
  const s = JSON.parse(new TextDecoder().decode(bytes)) as RunState;
  if (s?.version !== STATE_VERSION) throw new Error(`state.json has version ${String(s?.version)}, expected ${STATE_VERSION}`);
  for (const k of ["stage", "model", "hash"] as const) if (typeof s[k] !== "string") throw new Error(`state.json: \`${k}\` is not a string`);
  for (const k of ["stageIndex", "stageStep", "globalStep"] as const) if (!Number.isInteger(s[k]) || s[k] < 0) throw new Error(`state.json: \`${k}\` is not a count`);
  if (!s.data || !Number.isInteger(s.data.epoch) || !Number.isInteger(s.data.offset)) throw new Error("state.json: bad data position");
  return s;
}
