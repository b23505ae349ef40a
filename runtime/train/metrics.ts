// RUN/metrics.jsonl: one JSON object a line, per optimizer step
// ({"stage","step","stage_step","loss","lr","grad_norm","tokens","tokens_per_s"}) and per
// evaluation ({"stage","step","eval":{"loss","perplexity","examples"}}), `step` counting optimizer
// steps across the run. A stage with a frozen encoder adds `"encoder": {"encoded", "cached",
// "cache_mb"}` to its step lines: images the encoder ran on, examples whose encoder output came
// from the cache, and the cache's size (runtime/train/encoder-cache.ts). Appended as the run
// goes; a resumed run first cuts the lines after its checkpoint's step, so the file reads as one
// uninterrupted run.
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { writeFileAtomic } from "../../compiler/files.js";

export type MetricsLine =
  | { stage: string; step: number; stage_step: number; loss: number; lr: number; grad_norm: number; tokens: number; tokens_per_s: number; encoder?: { encoded: number; cached: number; cache_mb: number } }
  | { stage: string; step: number; eval: { loss: number; perplexity: number; examples: number } };

export class Metrics {
  constructor(readonly path: string) {}

  append(line: MetricsLine): void {
    appendFileSync(this.path, `${JSON.stringify(line)}\n`);
  }

  /** Keeps the lines of steps up to `step` (all of them when a line cannot be read). */
  truncateAfter(step: number): void {
    if (!existsSync(this.path)) return;
    const kept = readFileSync(this.path, "utf8")
      .split("\n")
      .filter((l) => {
        if (l.trim() === "") return false;
        try {
          return (JSON.parse(l) as { step: number }).step <= step;
        } catch {
          return false; // a line cut by a crash
        }
      });
    writeFileAtomic(this.path, kept.length ? `${kept.join("\n")}\n` : "");
  }

  /** All lines (for tests and reports). */
  static read(path: string): MetricsLine[] {
    if (!existsSync(path)) return [];
    return readFileSync(path, "utf8")
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as MetricsLine);
  }
}
