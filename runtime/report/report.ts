// RUN/report.html: one self-contained page about a training run, written at the end of
// `vlmc train` and by `vlmc report RUN`. It holds what a reader asks of a run, in order: how it
// ended and its final metrics per stage (and RUN/eval.json's scores when `vlmc eval` wrote
// them), the curves (curves.ts, the SVG inline), sample captions of validation images (the
// reference against the greedy caption, runtime/generate.ts), the stages' settings (from the
// IR) and the model's summary table (compiler/summary).
//
// Self-contained: images are data: URIs, the SVG is inline, there is no script, and a
// Content-Security-Policy forbids anything else, so the page opens from disk, as a mail
// attachment or in CI artifacts, with nothing fetched. Every piece of text from the run (names,
// captions, paths) is escaped. A part that cannot be made (no weights yet, data that is gone) is
// replaced by a line saying why; the rest of the page is still written.
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import sharp from "sharp";
import { estimate } from "../../compiler/cost/estimate.js";
import { hasErrors } from "../../compiler/diagnostics/diagnostic.js";
import { FileError, writeFileAtomic } from "../../compiler/files.js";
import type { Ir } from "../../compiler/ir/types.js";
import { readIr } from "../../compiler/ir/validate.js";
import { count, renderSummary, summaryJson } from "../../compiler/summary/summary.js";
import type { Tf } from "../backend.js";
import { readRun, RunError, type RunFiles } from "../eval/run.js";
import { greedyDecode, textBudget } from "../generate.js";
import { Model } from "../model.js";
import { DataError, describeCall, loadStageData, pixelPolicy } from "../train/data.js";
import { loadWeightsFile, WeightsFailure } from "../weights.js";
import { charts, DEFAULT_SMOOTHING, MetricsError, readRunCurves, smooth, toSvg, type RunCurves } from "./curves.js";

/** A run folder the report cannot be made for; `usage`: it could not be read at all (exit 2). */
export class ReportError extends Error {
  constructor(
    message: string,
    readonly usage: boolean,
  ) {
    super(message);
    this.name = "ReportError";
  }
}

export interface ReportOptions {
  /** Validation images captioned in the report (default 8; 0: none, and no backend is needed). */
  samples?: number;
  /** The TensorFlow.js backend to caption them with; without one there are no samples. */
  tf?: Tf | null;
  /**
   * The run's model with its final weights, already in memory (the trainer's): captions come
   * from it instead of a copy loaded from RUN/weights.safetensors, whose variables would clash
   * with its names.
   */
  model?: Model;
  /** Smoothing of the training loss (curves.ts). */
  smoothing?: number;
}

export const DEFAULT_SAMPLES = 8;

export interface Report {
  html: string;
  /** Parts left out, and why (also said in the page). */
  warnings: string[];
}

/** `&`, `<`, `>`, `"` and `'` as entities: text that is safe in HTML content and attributes. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}
const esc = (s: string | number) => escapeHtml(String(s));

/** Ids in an SVG prefixed, so several inlined in one page cannot refer to each other's. */
export function scopeSvgIds(svg: string, prefix: string): string {
  return svg.replace(/\bid="([^"]+)"/g, `id="${prefix}-$1"`).replace(/url\(#([^)]+)\)/g, `url(#${prefix}-$1)`).replace(/href="#([^"]+)"/g, `href="#${prefix}-$1"`);
}

const fixed = (x: number | undefined, digits = 4) => (x === undefined || !Number.isFinite(x) ? "" : x.toFixed(digits));

export interface Sample {
  id: string;
  /** Every caption of the image in the split (captions data may have several). */
  references: string[];
  generated: string;
  /** Where the image comes from: the validation split, or the training split of a run without one. */
  split: "validation" | "training";
  /** The image as the encoder sees it (resized), as a PNG. */
  png: Uint8Array;
  width: number;
  height: number;
}

/** The run folder's IR; a ReportError when DIR is not a run folder or its ir.json is not valid. */
export function readRunIr(runDir: string): Ir {
  const dir = resolve(runDir);
  if (!existsSync(dir)) throw new ReportError(`${runDir}: no such run folder`, true);
  const irFile = join(dir, "ir.json");
  if (!existsSync(irFile)) throw new ReportError(`${runDir}: not a run folder (no ir.json; \`vlmc train SPEC --out ${runDir}\` makes one)`, true);
  let ir: Ir;
  try {
    const got = readIr(irFile);
    if (!got.ir || hasErrors(got.diagnostics)) throw new ReportError(`${join(runDir, "ir.json")} is not a valid IR: ${got.diagnostics.find((d) => d.severity === "error")?.message ?? "unreadable"}`, false);
    ir = got.ir;
  } catch (err) {
    if (err instanceof FileError) throw new ReportError(err.message, true);
    throw err;
  }
  return ir;
}

/** Builds the page. Throws ReportError when DIR is not a run folder or its files are damaged. */
export async function buildReport(runDir: string, options: ReportOptions = {}): Promise<Report> {
  const dir = resolve(runDir);
  const ir = readRunIr(runDir);
  const warnings: string[] = [];
  const smoothing = options.smoothing ?? DEFAULT_SMOOTHING;

  let curves: RunCurves | null = null;
  try {
    curves = readRunCurves(dir);
    warnings.push(...curves.warnings);
  } catch (err) {
    if (!(err instanceof MetricsError)) throw err;
    // A malformed file is the run's damage: say where. A missing one is a run with no step yet.
    if (existsSync(join(dir, "metrics.jsonl"))) throw new ReportError(err.message, false);
    warnings.push(`no curves: ${err.message}`);
  }

  const svgs: { name: string; svg: string }[] = [];
  if (curves) for (const c of charts([curves], { smoothing })) svgs.push({ name: c.name, svg: scopeSvgIds(await toSvg(c), `chart-${c.name.replace(/[^A-Za-z0-9_-]/g, "_")}`) });

  let samples: Sample[] = [];
  const n = options.samples ?? DEFAULT_SAMPLES;
  if (n > 0) {
    if (!options.tf) warnings.push("no samples: no TensorFlow.js backend was given to caption them");
    else
      try {
        samples = await captionSamples(options.tf, dir, n, options.model);
      } catch (err) {
        if (err instanceof RunError || err instanceof DataError || err instanceof WeightsFailure) warnings.push(`no samples: ${err.message}`);
        else throw err;
      }
  }

  const evalJson = readEvalJson(dir, warnings);
  const html = page({ dir, ir, curves, smoothing, svgs, samples, evalJson, warnings });
  return { html, warnings };
}

/** Builds the page and writes it to RUN/report.html (atomically). */
export async function writeReport(runDir: string, options: ReportOptions = {}): Promise<{ path: string; warnings: string[] }> {
  const r = await buildReport(runDir, options);
  const path = join(resolve(runDir), "report.html");
  writeFileAtomic(path, r.html);
  return { path, warnings: r.warnings };
}

/**
 * For the trainer, at the end of a run that wrote its weights: writes the report and says where,
 * or why not, in a note. Never throws: a report must not turn a finished run into a failure.
 */
export async function reportAtEnd(runDir: string, tf: Tf, model: Model, note: (message: string) => void): Promise<void> {
  try {
    const r = await writeReport(runDir, { tf, model });
    for (const w of r.warnings) note(`report: ${w}`);
    note(`report: ${r.path}`);
  } catch (err) {
    note(`report: not written: ${(err as Error).message}`);
  }
}

/**
 * Greedy captions of the first `n` validation images of the last stage's data (the images
 * `vlmc eval` starts with), with the final weights, or the newest whole checkpoint's when the
 * run has not finished.
 */
export async function captionSamples(tf: Tf, dir: string, n: number, trained?: Model): Promise<Sample[]> {
  let run: RunFiles;
  try {
    run = readRun(dir);
  } catch (err) {
    if (!(err instanceof RunError) || !/has no weights\.safetensors/.test(err.message)) throw err;
    run = readRun(dir, "last");
  }
  const { ir, tokenizer } = run;
  const train = ir.train!;
  const call = train.stages.at(-1)?.data ?? train.data;
  const data = await loadStageData(call, ir, tokenizer, { baseDir: run.dir, split: train.split, seed: train.seed });
  if (!data.images) throw new DataError(`${data.describe} has no images: there is nothing to caption`);
  if (data.train.some((e) => e.qa)) throw new DataError(`${data.describe} is questions and answers, not captions: \`vlmc eval\` scores its answers per question type`);
  // The first n images, each with all its captions (as `vlmc eval` scores them); a run trained
  // without a validation split (a set to memorise) shows its training images.
  const split = data.validation.length > 0 ? "validation" : "training";
  const refs = new Map<string, string[]>();
  const chosen: typeof data.validation = [];
  for (const e of split === "validation" ? data.validation : data.train) {
    const r = refs.get(e.image!);
    if (r) r.push(e.text);
    else if (chosen.length < n) {
      refs.set(e.image!, [e.text]);
      chosen.push(e);
    }
  }
  if (chosen.length === 0) throw new DataError(`${data.describe} has no examples`);
  const size = data.imageSize!;
  const pixels = await data.pixels(chosen);
  const model = trained ?? Model.create(tf, ir, 0, { baseDir: run.dir });
  let generated: string[];
  try {
    if (!trained) loadWeightsFile(model, run.weights, null, () => {}, run.weightsLabel);
    // As `vlmc eval` does: without a context limit, up to twice the longest training caption.
    const longest = data.train.reduce((m, e) => Math.max(m, e.ids.length - 1), 1);
    const images = tf.tensor4d(pixels, [chosen.length, size.height, size.width, 3]);
    try {
      const g = await greedyDecode(model, images, { start: tokenizer.bos!, eos: tokenizer.eos, pad: tokenizer.pad ?? 0, maxTokens: textBudget(model) ?? 2 * longest });
      generated = g.ids.map((ids) => tokenizer.decode(ids));
    } finally {
      images.dispose();
    }
  } finally {
    if (!trained) model.dispose();
  }
  // The pixels back to bytes (the encoder's normalisation undone): the image as the model saw it.
  const policy = pixelPolicy(ir)!;
  const per = size.height * size.width * 3;
  const out: Sample[] = [];
  for (let k = 0; k < chosen.length; k++) {
    const bytes = new Uint8Array(per);
    for (let i = 0; i < per; i++) {
      const c = i % 3;
      bytes[i] = Math.max(0, Math.min(255, Math.round((pixels[k * per + i]! * policy.std[c]! + policy.mean[c]!) * 255)));
    }
    const png = await sharp(bytes, { raw: { width: size.width, height: size.height, channels: 3 } }).png().toBuffer();
    out.push({ id: chosen[k]!.image!, references: refs.get(chosen[k]!.image!)!, generated: generated[k]!, split, png, width: size.width, height: size.height });
  }
  return out;
}

/** RUN/eval.json, if it is there: `vlmc eval`'s evaluations (runtime/eval/results.ts). */
function readEvalJson(dir: string, warnings: string[]): Record<string, unknown> | null {
  const file = join(dir, "eval.json");
  if (!existsSync(file)) return null;
  try {
    const v = JSON.parse(readFileSync(file, "utf8")) as unknown;
    if (v && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
    warnings.push(`${file}: not a JSON object: left out`);
  } catch (err) {
    warnings.push(`${file}: ${(err as Error).message}: left out`);
  }
  return null;
}

const EVAL_HEAD = ["evaluation", "images / questions", "loss", "perplexity", "exact match / answer accuracy", "BLEU-4", "CIDEr-D", "baseline", "evaluated at"];

/**
 * eval.json's evaluations as rows of EVAL_HEAD: one per evaluation (`{"evaluations": {KEY:
 * DOC}}`), and one per group of it (`KEY / novel`). Read leniently, field by field: a field that
 * is missing or of another type is an empty cell, so a later version of the file still shows.
 */
export function evalRows(doc: Record<string, unknown>): string[][] {
  const evaluations = doc.evaluations && typeof doc.evaluations === "object" && !Array.isArray(doc.evaluations) ? (doc.evaluations as Record<string, unknown>) : { "eval.json": doc };
  const num = (x: unknown, digits = 4) => (typeof x === "number" && Number.isFinite(x) ? (Number.isInteger(x) ? String(x) : x.toFixed(digits)) : "");
  const rate = (x: unknown) => {
    const r = x as { correct?: unknown; count?: unknown; rate?: unknown } | null;
    return r && typeof r === "object" && typeof r.rate === "number" && typeof r.correct === "number" && typeof r.count === "number" ? `${r.correct}/${r.count} = ${(100 * r.rate).toFixed(1)}%` : "";
  };
  const field = (x: unknown, k: string): unknown => (x && typeof x === "object" ? (x as Record<string, unknown>)[k] : undefined);
  // Captions' documents carry `exact_match`; question/answer ones (runtime/eval/answers.ts)
  // `answer_accuracy` {overall, types} and `baseline` {overall, types}, one row per type.
  const row = (key: string, d: Record<string, unknown>, top: boolean) => [
    key,
    num(d.examples ?? d.questions),
    num(d.loss),
    num(d.perplexity, 3),
    rate(d.exact_match) || rate(field(d.answer_accuracy, "overall")) || rate(d.accuracy),
    num(d.bleu4),
    num(d.cider_d),
    top ? rate(d.baseline) || rate(field(d.baseline, "overall")) : "",
    top && typeof d.evaluated_at === "string" ? d.evaluated_at : "",
  ];
  const rows: string[][] = [];
  const sub = (x: unknown): [string, Record<string, unknown>][] => (x && typeof x === "object" && !Array.isArray(x) ? Object.entries(x as Record<string, unknown>).filter((e): e is [string, Record<string, unknown>] => !!e[1] && typeof e[1] === "object") : []);
  for (const [key, v] of Object.entries(evaluations)) {
    if (!v || typeof v !== "object" || Array.isArray(v)) continue;
    const d = v as Record<string, unknown>;
    rows.push(row(key, d, true));
    for (const [g, gv] of sub(d.groups)) rows.push(row(`${key} / ${g}`, "rate" in gv ? { accuracy: gv } : gv, false));
    for (const [t, tv] of sub(field(d.answer_accuracy, "types"))) rows.push(row(`${key} / ${t}`, { accuracy: tv }, false));
  }
  return rows;
}

// ---- the page ----

interface PageParts {
  dir: string;
  ir: Ir;
  curves: RunCurves | null;
  smoothing: number;
  svgs: { name: string; svg: string }[];
  samples: Sample[];
  evalJson: Record<string, unknown> | null;
  warnings: string[];
}

const table = (head: string[], rows: string[][], cls = "") => `<table${cls ? ` class="${cls}"` : ""}>
<thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead>
<tbody>
${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`).join("\n")}
</tbody>
</table>`;

function status(dir: string, curves: RunCurves | null): string {
  const last = curves ? Math.max(0, ...curves.train.map((p) => p.step)) : 0;
  if (existsSync(join(dir, "done.json"))) return `finished: ${last} steps`;
  if (existsSync(join(dir, "weights.safetensors"))) return `stopped at step ${last} (--max-steps; vlmc train --resume continues it)`;
  return last > 0 ? `not finished: the last step logged is ${last}` : "no step logged yet";
}

function finalRows(curves: RunCurves, smoothing: number): { head: string[]; rows: string[][] } {
  const metrics = curves.metrics;
  const head = ["stage", "steps", "last training loss (smoothed)", "validation loss", ...metrics.map((m) => `validation ${m}`), "best validation loss (step)"];
  const s = smooth(curves.train, smoothing);
  const rows = curves.stages.map((st) => {
    const idx = curves.train.map((p, i) => (p.stage === st.name ? i : -1)).filter((i) => i >= 0);
    const evals = curves.evals.filter((e) => e.stage === st.name);
    const last = evals.at(-1);
    const best = evals.filter((e) => e.values.loss !== undefined).reduce<(typeof evals)[number] | null>((b, e) => (b === null || e.values.loss! < b.values.loss! ? e : b), null);
    return [
      st.name,
      String(idx.length),
      idx.length ? fixed(s[idx.at(-1)!]) : "",
      fixed(last?.values.loss),
      ...metrics.map((m) => fixed(last?.values[m])),
      best ? `${fixed(best.values.loss)} (${best.step})` : "",
    ];
  });
  return { head, rows };
}

function stageRows(ir: Ir): string[][] {
  return (ir.train?.stages ?? []).map((s) => [
    s.name,
    s.train.join(", "),
    s.frozen.join(", "),
    s.steps > 0 ? `${s.steps} steps` : `${s.epochs} epochs`,
    s.accumulate > 1 ? `${s.batch} (${s.accumulate} x ${s.batch / s.accumulate})` : String(s.batch),
    describeCall(s.optimizer),
    describeCall(s.schedule),
    s.clip > 0 ? String(s.clip) : "off",
    s.eval_every > 0 ? `every ${s.eval_every}${s.patience ? `, patience ${s.patience}` : ""}` : "at the end",
    describeCall(s.data),
  ]);
}

const CSS = `body{font:15px/1.45 "DejaVu Sans","Liberation Sans",Arial,Helvetica,sans-serif;color:#222;margin:2em auto;max-width:1100px;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}.meta{color:#555}.note{color:#8a5a00}
figure{margin:1em 0}figure svg{max-width:100%;height:auto}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font:12px/1.35 "DejaVu Sans Mono","Liberation Mono",monospace}
.samples img{image-rendering:pixelated;border:1px solid #ccc}.ok{color:#1a7f37}.wrong{color:#b42318}
code{font-family:"DejaVu Sans Mono","Liberation Mono",monospace}td code{white-space:nowrap}`;

function page(p: PageParts): string {
  const { ir, curves } = p;
  const est = estimate(ir);
  const sj = summaryJson(est);
  const parts: string[] = [];
  parts.push(`<h1>${esc(ir.model)}</h1>`);
  parts.push(`<p class="meta">run <code>${esc(p.dir)}</code>: ${esc(status(p.dir, curves))}; ${esc(est.paramsTotal.toLocaleString("en-US"))} parameters (${esc(count(est.paramsTotal))})</p>`);
  if (p.warnings.length) parts.push(`<ul class="note">${p.warnings.map((w) => `<li>${esc(w)}</li>`).join("")}</ul>`);

  parts.push(`<h2 id="final">Final metrics</h2>`);
  if (curves) {
    const f = finalRows(curves, p.smoothing);
    parts.push(table(f.head, f.rows, "final"));
  } else parts.push(`<p class="note">No metrics logged yet.</p>`);
  if (p.evalJson) {
    parts.push(`<p>From <code>eval.json</code> (<code>vlmc eval</code>: greedy captions scored against the references):</p>`);
    parts.push(table(EVAL_HEAD, evalRows(p.evalJson), "eval"));
  }

  parts.push(`<h2 id="curves">Curves</h2>`);
  if (p.svgs.length) {
    parts.push(`<p class="meta">Training loss per step (faint: raw; solid: smoothed, weight ${esc(p.smoothing)}), validation metrics at each evaluation; dashed rules mark where a stage starts. The same charts are in <code>curves/</code> as SVG and PNG.</p>`);
    for (const s of p.svgs) parts.push(`<figure class="curve" data-chart="${esc(s.name)}">${s.svg}</figure>`);
  } else parts.push(`<p class="note">No curves: no step logged yet.</p>`);

  parts.push(`<h2 id="samples">Samples</h2>`);
  if (p.samples.length) {
    const exact = (s: Sample) => s.references.includes(s.generated);
    const right = p.samples.filter(exact).length;
    parts.push(`<p class="meta">The first ${p.samples.length} ${p.samples[0]!.split} images${p.samples[0]!.split === "training" ? " (the run has no validation split)" : ""} as the encoder sees them, their reference captions and the model's greedy caption (${right} of ${p.samples.length} exactly right).</p>`);
    const show = (s: Sample) => Math.max(1, Math.round(Math.max(128, s.width) / s.width));
    const rows = p.samples.map((s) => {
      const ok = exact(s);
      const src = `data:image/png;base64,${Buffer.from(s.png).toString("base64")}`;
      return `<tr><td><img src="${src}" width="${s.width * show(s)}" height="${s.height * show(s)}" alt="${esc(s.id)}"></td><td><code>${esc(s.id)}</code></td><td>${s.references.map(esc).join("<br>")}</td><td class="${ok ? "ok" : "wrong"}">${esc(s.generated)}</td><td class="${ok ? "ok" : "wrong"}">${ok ? "yes" : "no"}</td></tr>`;
    });
    parts.push(`<table class="samples">\n<thead><tr><th>image</th><th>id</th><th>reference</th><th>generated</th><th>exact</th></tr></thead>\n<tbody>\n${rows.join("\n")}\n</tbody>\n</table>`);
  } else parts.push(`<p class="note">No samples (see the notes above).</p>`);

  parts.push(`<h2 id="stages">Stages</h2>`);
  if (ir.train) {
    parts.push(`<p class="meta">seed ${esc(ir.train.seed)}, validation split ${esc(ir.train.split)}</p>`);
    parts.push(table(["stage", "trains", "frozen", "length", "batch", "optimizer", "schedule", "clip", "evaluation", "data"], stageRows(ir), "stages"));
  } else parts.push(`<p class="note">The model has no <code>train</code> section.</p>`);

  parts.push(`<h2 id="model">Model</h2>`);
  parts.push(
    table(
      ["module", "input", "output", "parameters", "trained in"],
      sj.modules.map((m) => [m.name, `[${m.input.join(", ")}]`, `[${m.output.join(", ")}]`, m.params.toLocaleString("en-US"), m.trained_in.join(", ")]),
      "modules",
    ),
  );
  parts.push(`<pre class="summary">${esc(renderSummary(est, { color: false, depth: 2 }))}</pre>`);

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(ir.model)}: training report</title>
<link rel="icon" href="data:,">
<style>${CSS}</style>
</head>
<body>
${parts.join("\n")}
</body>
</html>
`;
}
