// What a run reports as it goes: `train(spec, { onEvent })` receives these, the CLI renders them
// (cli/progress.ts), `vlmc train --json` prints them one a line. Plain data: no tensors.
export type TrainEvent =
  | { type: "start"; model: string; runDir: string; backend: string; params: number; stages: string[]; resumedFrom: { checkpoint: string; globalStep: number; stage: string; stageStep: number } | null }
  | { type: "note"; message: string }
  | {
      type: "stage";
      stage: string;
      index: number;
      stages: number;
      steps: number;
      /** Steps already done (a resumed stage). */
      startStep: number;
      batch: number;
      accumulate: number;
      microBatch: number;
      train: string[];
      frozen: string[];
      examples: { train: number; validation: number };
      data: string;
    }
  /** A stage's frozen encoder outputs: all its images cached (`complete`), or the budget met. */
  | { type: "encoder-cache"; stage: string; complete: boolean; images: number; stageImages: number; bytes: number; budgetBytes: number }
  | { type: "step"; stage: string; stageStep: number; steps: number; globalStep: number; loss: number; lr: number; gradNorm: number; tokens: number; seconds: number }
  | { type: "eval"; stage: string; stageStep: number; globalStep: number; loss: number; perplexity: number; examples: number; best: boolean }
  | { type: "early-stop"; stage: string; stageStep: number; globalStep: number; patience: number; bestLoss: number; bestStep: number }
  | { type: "checkpoint"; stage: string; name: string; path: string; globalStep: number }
  | { type: "stage-end"; stage: string; globalStep: number; reason: "done" | "early-stop" };
