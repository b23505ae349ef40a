// Keeps a training run's RUN/curves/ up to date: redrawn after every evaluation and once more at
// the end of the run, from metrics.jsonl (curves.ts). It listens to the trainer's events
// (runtime/train/events.ts) and never stands in training's way: a drawing runs while training
// goes on (between steps, the PNG on libuv's thread pool), evaluations that come while one is
// drawn make a single redraw after it, and a failure becomes one warning line, never an error.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import type { TrainEvent } from "../train/events.js";
import { drawRunCurves } from "./curves.js";

export class CurvesWatcher {
  private running: Promise<void> | null = null;
  private again = false;
  /** The size of metrics.jsonl the last drawing read: unchanged, there is nothing new to draw. */
  private drawnSize = -1;
  private readonly warned = new Set<string>();

  constructor(
    private readonly runDir: string,
    /** Where a problem is reported (a `note` event); each message once. */
    private readonly warn: (message: string) => void,
  ) {}

  /** For the trainer's `emit`: an evaluation (its line already appended) starts a redraw. */
  handle(e: TrainEvent): void {
    if (e.type === "eval") this.request();
  }

  private request(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.draw().finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        this.request();
      }
    });
  }

  /** The end of the run: waits for a drawing under way, then draws what it has not drawn yet. */
  async finish(): Promise<void> {
    while (this.running) await this.running;
    await this.draw();
  }

  private async draw(): Promise<void> {
    const metrics = join(this.runDir, "metrics.jsonl");
    try {
      if (!existsSync(metrics)) return;
      const size = statSync(metrics).size;
      if (size === this.drawnSize || size === 0) return;
      const drawn = await drawRunCurves(this.runDir);
      this.drawnSize = size;
      for (const w of drawn.warnings) this.once(`curves: ${w}`);
    } catch (err) {
      this.once(`curves: not drawn: ${(err as Error).message}`);
    }
  }

  private once(message: string): void {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.warn(message);
  }
}
