// How `vlmc train` shows a run's events (runtime/train/events.ts): on a terminal, one bar per
// stage redrawn in place (steps, loss, tokens/s, ETA); elsewhere (CI logs, pipes), plain lines
// at most every `every` steps and at every evaluation, checkpoint and stage boundary, so a log
// stays readable and short. Rendering only: the numbers come from the events.
import type { TrainEvent } from "../runtime/train/events.js";

export interface ProgressOptions {
  /** Redraw a bar in place (a terminal) instead of printing lines. */
  tty: boolean;
  /** Terminal width for the bar (default 80). */
  columns?: number;
  /** Plain mode: a step line every this many steps (default: about 20 lines a stage). */
  every?: number;
}

const BAR = 24;

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

const rate = (tokens: number, seconds: number) => {
  const r = seconds > 0 ? tokens / seconds : 0;
  return r >= 10_000 ? `${(r / 1000).toFixed(0)}k` : r >= 1000 ? `${(r / 1000).toFixed(1)}k` : r.toFixed(0);
};

export class Progress {
  private steps = 0;
  private startStep = 0;
  private recent: { tokens: number; seconds: number }[] = [];
  private spent = 0;
  private done = 0;
  private barShown = false;

  constructor(
    private readonly write: (s: string) => void,
    private readonly opts: ProgressOptions,
  ) {}

  handle(e: TrainEvent): void {
    switch (e.type) {
      case "note":
        return this.line(e.message);
      case "start":
        return this.line(`training \`${e.model}\` (${e.params.toLocaleString("en-US")} parameters) into ${e.runDir}${e.resumedFrom ? `, resuming from ${e.resumedFrom.checkpoint} (step ${e.resumedFrom.globalStep}: stage \`${e.resumedFrom.stage}\` step ${e.resumedFrom.stageStep})` : ""}`);
      case "stage":
        this.steps = e.steps;
        this.startStep = e.startStep;
        this.recent = [];
        this.spent = 0;
        this.done = 0;
        return this.line(
          `stage ${e.index + 1}/${e.stages} \`${e.stage}\`: ${e.steps} steps${e.startStep ? ` (from step ${e.startStep})` : ""}, batch ${e.batch}${e.accumulate > 1 ? ` as ${e.accumulate} micro-batches of ${e.microBatch}` : ""}; trains ${e.train.join(", ")}${e.frozen.length ? `, frozen ${e.frozen.join(", ")}` : ""}; ${e.data}: ${e.examples.train} training, ${e.examples.validation} validation examples`,
        );
      case "step": {
        this.recent.push({ tokens: e.tokens, seconds: e.seconds });
        if (this.recent.length > 20) this.recent.shift();
        this.spent += e.seconds;
        this.done++;
        const tokens = this.recent.reduce((a, r) => a + r.tokens, 0);
        const seconds = this.recent.reduce((a, r) => a + r.seconds, 0);
        const eta = (this.spent / this.done) * (e.steps - e.stageStep);
        const stats = `loss ${e.loss.toFixed(4)}  lr ${e.lr === 0 ? "0" : e.lr.toExponential(2)}  ${rate(tokens, seconds)} tok/s  ETA ${formatDuration(eta)}`;
        if (this.opts.tty) {
          // The bar gives way to the figures on a narrow terminal (they matter more).
          const columns = this.opts.columns ?? 80;
          const rest = ` ${e.stageStep}/${e.steps}  ${stats}`;
          const width = Math.max(5, Math.min(BAR, columns - 1 - rest.length - e.stage.length - 3));
          const filled = Math.round((width * e.stageStep) / Math.max(1, e.steps));
          const text = `${e.stage} [${"#".repeat(filled)}${".".repeat(width - filled)}]${rest}`;
          this.write(`\r${text.slice(0, columns - 1)}\x1b[K`);
          this.barShown = true;
          return;
        }
        const every = this.opts.every ?? Math.max(1, Math.ceil((this.steps - this.startStep) / 20));
        if (e.stageStep === e.steps || (e.stageStep - this.startStep) % every === 0 || e.stageStep === this.startStep + 1) this.line(`${e.stage} step ${e.stageStep}/${e.steps}  ${stats}`);
        return;
      }
      case "eval":
        return this.line(`${e.stage} step ${e.stageStep}: validation loss ${e.loss.toFixed(4)}, perplexity ${e.perplexity.toFixed(2)} (${e.examples} examples)${e.best ? ", best so far" : ""}`);
      case "early-stop":
        return this.line(`${e.stage}: stopping early at step ${e.stageStep}: no better validation loss in ${e.patience} evaluations (best ${e.bestLoss.toFixed(4)} at step ${e.bestStep})`);
      case "checkpoint":
        return this.line(`checkpoint ${e.name}`);
      case "stage-end":
        return this.line(`stage \`${e.stage}\` done (${e.reason === "early-stop" ? "stopped early" : "all steps"}; step ${e.globalStep} of the run)`);
    }
  }

  /** A line of its own (ending any bar being drawn). */
  line(text: string): void {
    if (this.barShown) this.write("\n");
    this.barShown = false;
    this.write(`${text}\n`);
  }

  /** Ends a bar left on screen. */
  finish(): void {
    if (this.barShown) this.write("\n");
    this.barShown = false;
  }
}
