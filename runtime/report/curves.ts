// Loss curves of a run, or of several side by side, drawn from RUN/metrics.jsonl
// (runtime/train/metrics.ts): the training loss per step (raw, faint, and smoothed), the
// validation loss at each evaluation, and one chart per other evaluation metric found there
// (perplexity, and whatever another evaluation writes, e.g. exact match), with each stage's
// start marked by a vertical rule and its name. Written to RUN/curves/NAME.svg and NAME.png.
//
// Charts are vega-lite specs compiled to vega and rendered headless (`vega.View` with renderer
// none, `toSVG()`): a declarative chart library gets axes, ticks, legends and log scales right,
// where hand-written SVG would not. The PNG is the SVG rasterised by resvg at 2x, so its labels
// are as sharp as a screenshot's. resvg draws text with system fonts (DejaVu on Debian); where
// there are none, the PNG's labels are missing (the SVG keeps them) and a warning says so.
// vega, vega-lite and resvg are loaded on first use: importing vlmc, or training without
// drawing, does not pay for them.
//
// Errors in the file are MetricsError values with one-line `file:line:` messages.
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import type { TopLevelSpec } from "vega-lite";
import { writeFileAtomic } from "../../compiler/files.js";

export class MetricsError extends Error {
  constructor(
    message: string,
    /** The folder is not a run (exit 2), rather than a run whose metrics are damaged or empty (exit 1). */
    readonly usage = false,
  ) {
    super(message);
    this.name = "MetricsError";
  }
}

export interface TrainPoint {
  stage: string;
  step: number;
  loss: number;
}

export interface EvalPoint {
  stage: string;
  step: number;
  /** Every metric of the evaluation (`loss`, `perplexity`, ...), `examples` left out. */
  values: Record<string, number>;
}

export interface StageSpan {
  name: string;
  /** The run's step the stage starts after (0 for the first): where its rule is drawn. */
  start: number;
  /** Its last step with a line. */
  last: number;
}

export interface RunCurves {
  /** What the run is called in legends and titles. */
  label: string;
  train: TrainPoint[];
  evals: EvalPoint[];
  stages: StageSpan[];
  /** Evaluation metrics other than `loss`, in order of first appearance. */
  metrics: string[];
  /** A problem that did not stop the reading (a last line cut short by a crash). */
  warnings: string[];
}

/** Reads a run's metrics.jsonl. `label` names the run in charts (default: the folder's name). */
export function readRunCurves(runDir: string, label = basename(runDir)): RunCurves {
  const file = join(runDir, "metrics.jsonl");
  if (!existsSync(runDir) || !statSync(runDir).isDirectory()) throw new MetricsError(`${runDir}: no such run folder`, true);
  if (!existsSync(file)) {
    if (existsSync(join(runDir, "ir.json"))) throw new MetricsError(`${runDir}: no metrics.jsonl yet (the run has not logged a step)`);
    throw new MetricsError(`${runDir}: not a run folder (no metrics.jsonl or ir.json; \`vlmc train SPEC --out ${runDir}\` makes one)`, true);
  }
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new MetricsError(`${file}: ${(err as Error).message}`);
  }
  return parseMetrics(text, file, label);
}

/** Parses metrics.jsonl text; `file` is for messages. */
export function parseMetrics(text: string, file: string, label: string): RunCurves {
  const train: TrainPoint[] = [];
  const evals: EvalPoint[] = [];
  const warnings: string[] = [];
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    const where = `${file}:${i + 1}`;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (err) {
      // The trainer appends whole lines; a last line without its newline was cut by a crash,
      // and `vlmc train --resume` drops it. Anything else is damage to report.
      if (i === lines.length - 1) {
        warnings.push(`${where}: an incomplete last line (cut short by a crash?) left out`);
        return;
      }
      throw new MetricsError(`${where}: not JSON (${(err as Error).message})`);
    }
    if (!v || typeof v !== "object" || Array.isArray(v)) throw new MetricsError(`${where}: expected a JSON object, found ${Array.isArray(v) ? "an array" : JSON.stringify(v)}`);
    const o = v as Record<string, unknown>;
    if (typeof o.stage !== "string" || o.stage === "") throw new MetricsError(`${where}: no \`stage\` name`);
    if (typeof o.step !== "number" || !Number.isInteger(o.step) || o.step < 0) throw new MetricsError(`${where}: \`step\` must be a whole number, found ${JSON.stringify(o.step)}`);
    if (o.eval !== undefined) {
      if (!o.eval || typeof o.eval !== "object" || Array.isArray(o.eval)) throw new MetricsError(`${where}: \`eval\` must be an object of metrics`);
      const values: Record<string, number> = {};
      for (const [k, x] of Object.entries(o.eval as Record<string, unknown>)) {
        if (k === "examples") continue;
        // A rate as `vlmc eval` writes one ({correct, count, rate}) is plotted as its rate.
        const n = typeof x === "number" ? x : x && typeof x === "object" && typeof (x as { rate?: unknown }).rate === "number" ? (x as { rate: number }).rate : null;
        if (n !== null && Number.isFinite(n)) values[k] = n;
      }
      evals.push({ stage: o.stage, step: o.step, values });
    } else if (typeof o.loss === "number") {
      train.push({ stage: o.stage, step: o.step, loss: o.loss });
    } else throw new MetricsError(`${where}: neither a step (a \`loss\`) nor an evaluation (an \`eval\` object)`);
  });
  if (train.length === 0 && evals.length === 0) throw new MetricsError(`${file}: empty: the run has not logged a step yet`);

  const stages: StageSpan[] = [];
  const byName = new Map<string, StageSpan>();
  const see = (stage: string, step: number, isTrain: boolean) => {
    let s = byName.get(stage);
    if (!s) {
      // A stage starts after the step before its first one (a step line counts from 1).
      s = { name: stage, start: Math.max(0, isTrain ? step - 1 : step), last: step };
      byName.set(stage, s);
      stages.push(s);
    }
    s.last = Math.max(s.last, step);
  };
  // By step, a step's own line before its evaluation: a stage starts where its first step is.
  const all = [...train.map((p) => ({ p, t: true })), ...evals.map((p) => ({ p, t: false }))];
  all.sort((a, b) => a.p.step - b.p.step || Number(b.t) - Number(a.t));
  for (const { p, t } of all) see(p.stage, p.step, t);
  const metrics = [...new Set(evals.flatMap((e) => Object.keys(e.values)))].filter((k) => k !== "loss");
  return { label, train, evals, stages, metrics, warnings };
}

/**
 * TensorBoard's smoothing: an exponential moving average with weight `w`, debiased (divided by
 * 1 - w^n) so the first points are not pulled toward 0, restarted at each stage.
 */
export function smooth(points: readonly TrainPoint[], w: number): number[] {
  const out: number[] = [];
  let avg = 0;
  let n = 0;
  let stage: string | null = null;
  for (const p of points) {
    if (p.stage !== stage) {
      stage = p.stage;
      avg = 0;
      n = 0;
    }
    avg = avg * w + (1 - w) * p.loss;
    n++;
    out.push(w === 0 ? p.loss : avg / (1 - w ** n));
  }
  return out;
}

export interface ChartOptions {
  /** Smoothing weight of the training loss in [0, 1): 0 draws the raw loss alone. Default 0.9. */
  smoothing?: number;
  /** The plot area's size in CSS pixels (default 640 x 300). */
  width?: number;
  height?: number;
}

export const DEFAULT_SMOOTHING = 0.9;
/** The PNG is drawn at this multiple of the SVG's size. */
export const PNG_SCALE = 2;
/**
 * Fonts for labels, the first installed one used: by resvg for the PNG, by a browser for the
 * SVG. DejaVu Sans is Debian's default (fonts-dejavu-core), Liberation Sans comes with Chromium.
 */
export const FONT_FAMILY = "DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif";

/** Names of the series in legends and in the SVG's aria labels. */
export const SERIES = { raw: "train (raw)", train: "train", validation: "validation" } as const;

export interface Chart {
  /** `loss`, or the metric's name: the file's name. */
  name: string;
  spec: TopLevelSpec;
}

/** Stage rules (every stage after the first) and labels (every stage), one set across runs. */
function stageMarks(runs: readonly RunCurves[]): { rules: { step: number; stage: string }[]; labels: { step: number; stage: string }[] } {
  const seen = new Set<string>();
  const labels: { step: number; stage: string }[] = [];
  for (const r of runs)
    for (const s of r.stages) {
      const key = `${s.start}\u0000${s.name}`;
      if (seen.has(key)) continue;
      seen.add(key);
      labels.push({ step: s.start, stage: s.name });
    }
  return { rules: labels.filter((l) => l.step > 0), labels };
}

/** A log scale when the values span more than a factor of 20 (a loss that fell far), else linear. */
function yScale(values: readonly number[]): { type: "log" | "linear"; zero?: boolean } {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return lo > 0 && hi / lo > 20 ? { type: "log" } : { type: "linear", zero: false };
}

function frame(title: string, opts: ChartOptions, layers: object[]): TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: { text: title, anchor: "start", offset: 18 },
    width: opts.width ?? 640,
    height: opts.height ?? 300,
    background: "white",
    padding: 8,
    config: { font: FONT_FAMILY, view: { stroke: "#ccc" }, axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 320 } },
    layer: layers,
  } as TopLevelSpec;
}

function stageLayers(runs: readonly RunCurves[]): object[] {
  const { rules, labels } = stageMarks(runs);
  const x = { field: "step", type: "quantitative" };
  return [
    { name: "stage_rules", data: { values: rules }, mark: { type: "rule", color: "#777", strokeDash: [4, 3] }, encoding: { x } },
    // Above the plot area, so a name never sits on a curve.
    { name: "stage_labels", data: { values: labels }, mark: { type: "text", align: "left", baseline: "bottom", dx: 3, dy: -3, y: 0, fontSize: 11, color: "#444" }, encoding: { x, text: { field: "stage" } } },
  ];
}

/** Legend entries drawn as line samples (dashes show), not the points' circles. */
const LINE_LEGEND = { symbolType: "stroke", symbolStrokeWidth: 2, symbolSize: 300 };
/** The same for the dash legend, whose samples would otherwise have no colour at all. */
const DASH_LEGEND = { ...LINE_LEGEND, encode: { symbols: { update: { stroke: { value: "#333" } } } } };

/** The loss chart: training loss (raw and smoothed) and validation loss, per run. */
export function lossChart(runs: readonly RunCurves[], opts: ChartOptions = {}): Chart {
  const w = opts.smoothing ?? DEFAULT_SMOOTHING;
  if (!(w >= 0 && w < 1)) throw new RangeError(`smoothing must be in [0, 1), got ${w}`);
  const several = runs.length > 1;
  const rows: { run: string; series: string; step: number; value: number; stage: string }[] = [];
  for (const r of runs) {
    const s = smooth(r.train, w);
    r.train.forEach((p, i) => {
      if (!several && w > 0) rows.push({ run: r.label, series: SERIES.raw, step: p.step, value: p.loss, stage: p.stage });
      rows.push({ run: r.label, series: SERIES.train, step: p.step, value: s[i]!, stage: p.stage });
    });
    for (const e of r.evals) if (e.values.loss !== undefined) rows.push({ run: r.label, series: SERIES.validation, step: e.step, value: e.values.loss, stage: e.stage });
  }
  const last = Math.max(1, ...rows.map((r) => r.step));
  const scale = yScale(rows.map((r) => r.value));
  const x = { field: "step", type: "quantitative", title: "step", scale: { domain: [0, last], nice: false, zero: false } };
  const y = { field: "value", type: "quantitative", title: scale.type === "log" ? "loss (log scale)" : "loss", scale };
  const tooltip = [{ field: "run" }, { field: "series" }, { field: "stage" }, { field: "step" }, { field: "value", format: ".4f" }];
  const layers: object[] = [];
  if (several) {
    // A colour per run; the curve (training or validation) by its dash.
    const color = { field: "run", type: "nominal", title: "run", sort: runs.map((r) => r.label), legend: LINE_LEGEND };
    const strokeDash = { field: "series", type: "nominal", title: "curve", sort: [SERIES.train, SERIES.validation], legend: DASH_LEGEND };
    layers.push({ name: "train", transform: [{ filter: { field: "series", equal: SERIES.train } }], mark: { type: "line", strokeWidth: 1.6 }, encoding: { x, y, color, strokeDash, detail: { field: "run" }, tooltip } });
    layers.push({ name: "validation", transform: [{ filter: { field: "series", equal: SERIES.validation } }], mark: { type: "line", strokeWidth: 1.6, point: { size: 24 } }, encoding: { x, y, color, strokeDash, tooltip } });
  } else {
    const color = { field: "series", type: "nominal", title: null, scale: { domain: [SERIES.train, SERIES.validation], range: ["#4c78a8", "#e45756"] }, legend: LINE_LEGEND };
    if (w > 0) layers.push({ name: "raw", transform: [{ filter: { field: "series", equal: SERIES.raw } }], mark: { type: "line", strokeWidth: 1, opacity: 0.3, color: "#4c78a8" }, encoding: { x, y, tooltip } });
    layers.push({ name: "train", transform: [{ filter: { field: "series", equal: SERIES.train } }], mark: { type: "line", strokeWidth: 1.8 }, encoding: { x, y, color, tooltip } });
    layers.push({ name: "validation", transform: [{ filter: { field: "series", equal: SERIES.validation } }], mark: { type: "line", strokeWidth: 1.8, point: { size: 30 } }, encoding: { x, y, color, tooltip } });
  }
  const title = several ? `loss: ${runs.map((r) => r.label).join(", ")}` : `loss: ${runs[0]!.label}${w > 0 ? ` (training loss smoothed, ${w})` : ""}`;
  return { name: "loss", spec: { ...frame(title, opts, [{ data: { values: rows }, layer: layers }, ...stageLayers(runs)]) } as TopLevelSpec };
}

/** A chart of one evaluation metric (perplexity, ...) at each evaluation, per run; null when no run has it. */
export function metricChart(runs: readonly RunCurves[], metric: string, opts: ChartOptions = {}): Chart | null {
  const rows = runs.flatMap((r) => r.evals.filter((e) => e.values[metric] !== undefined).map((e) => ({ run: r.label, step: e.step, value: e.values[metric]!, stage: e.stage })));
  if (rows.length === 0) return null;
  const several = runs.length > 1;
  const last = Math.max(1, ...runs.flatMap((r) => [...r.train.map((p) => p.step), ...r.evals.map((e) => e.step)]));
  const scale = yScale(rows.map((r) => r.value));
  const x = { field: "step", type: "quantitative", title: "step", scale: { domain: [0, last], nice: false, zero: false } };
  const y = { field: "value", type: "quantitative", title: `validation ${metric}${scale.type === "log" ? " (log scale)" : ""}`, scale };
  const color = several ? { field: "run", type: "nominal", title: "run", sort: runs.map((r) => r.label), legend: LINE_LEGEND } : { value: "#e45756" };
  const tooltip = [{ field: "run" }, { field: "stage" }, { field: "step" }, { field: "value", format: ".4f" }];
  const line = { name: "validation", data: { values: rows }, mark: { type: "line", strokeWidth: 1.8, point: { size: 30 } }, encoding: { x, y, color, tooltip } };
  const title = `validation ${metric}: ${runs.map((r) => r.label).join(", ")}`;
  return { name: metric, spec: frame(title, opts, [line, ...stageLayers(runs)]) };
}

/** Every chart of these runs: the loss, then one per other evaluation metric. */
export function charts(runs: readonly RunCurves[], opts: ChartOptions = {}): Chart[] {
  const metrics = [...new Set(runs.flatMap((r) => r.metrics))];
  return [lossChart(runs, opts), ...metrics.map((m) => metricChart(runs, m, opts)).filter((c): c is Chart => c !== null)];
}

// ---- rendering ----

type Vega = typeof import("vega");
type VegaLite = typeof import("vega-lite");
type ResvgModule = typeof import("@resvg/resvg-js");
let libs: Promise<{ vega: Vega; vl: VegaLite; resvg: ResvgModule }> | null = null;
const load = () => (libs ??= Promise.all([import("vega"), import("vega-lite"), import("@resvg/resvg-js")]).then(([vega, vl, resvg]) => ({ vega, vl, resvg })));

/** A chart as SVG text (vega-lite -> vega -> SVG, headless). */
export async function toSvg(chart: Chart): Promise<string> {
  const { vega, vl } = await load();
  const compiled = vl.compile(chart.spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The SVG's declared size. */
export function svgSize(svg: string): { width: number; height: number } {
  const m = /<svg\b[^>]*?\swidth="([\d.]+)"[^>]*?\sheight="([\d.]+)"/.exec(svg);
  if (!m) throw new Error("an SVG without a width and height");
  return { width: Number(m[1]), height: Number(m[2]) };
}

const resvgOptions = { fitTo: { mode: "zoom" as const, value: PNG_SCALE }, font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" }, background: "white", logLevel: "off" as const };

/** The SVG as PNG bytes at PNG_SCALE times its size. */
export async function toPng(svg: string): Promise<Uint8Array> {
  const { resvg } = await load();
  // On libuv's thread pool: a training run drawing its curves keeps stepping meanwhile.
  return (await resvg.renderAsync(svg, resvgOptions)).asPng();
}

let fontFound: Promise<boolean> | null = null;
/** Whether resvg finds a font to draw labels with (it draws no text at all without one). */
export function pngHasFont(): Promise<boolean> {
  return (fontFound ??= load().then(({ resvg }) => {
    const probe = `<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><text x="2" y="16" font-size="16" font-family="${FONT_FAMILY}" fill="black">Hg</text></svg>`;
    const px = new resvg.Resvg(probe, { font: resvgOptions.font, logLevel: "off" }).render().pixels;
    for (let i = 3; i < px.length; i += 4) if (px[i]! > 0) return true;
    return false;
  }));
}

export const NO_FONT_WARNING = "no font found for the PNG curves' labels, so they have none (the SVGs do); install one, e.g. Debian's fonts-dejavu-core";

export interface Drawn {
  /** The charts drawn, with their SVG. */
  charts: (Chart & { svg: string })[];
  /** The files written. */
  files: string[];
  warnings: string[];
}

/**
 * Draws the charts of `runs` and writes each as NAME.svg and NAME.png in `dir` (atomically: a
 * reader sees the old file or the new one). NAME is the chart's (`loss`, `perplexity`, ...), or
 * with a `stem`, the stem for the loss and STEM-METRIC for the others (compare.svg,
 * compare-perplexity.svg).
 */
export async function writeCharts(runs: readonly RunCurves[], dir: string, opts: ChartOptions & { stem?: string; png?: boolean } = {}): Promise<Drawn> {
  const warnings = runs.flatMap((r) => r.warnings);
  const drawn: Drawn["charts"] = [];
  const files: string[] = [];
  mkdirSync(dir, { recursive: true });
  for (const c of charts(runs, opts)) {
    const svg = await toSvg(c);
    drawn.push({ ...c, svg });
    const base = join(dir, opts.stem === undefined ? c.name : c.name === "loss" ? opts.stem : `${opts.stem}-${c.name}`);
    writeFileAtomic(`${base}.svg`, svg);
    files.push(`${base}.svg`);
    if (opts.png !== false) {
      writeFileAtomic(`${base}.png`, await toPng(svg));
      files.push(`${base}.png`);
    }
  }
  if (opts.png !== false && !(await pngHasFont())) warnings.push(NO_FONT_WARNING);
  return { charts: drawn, files, warnings };
}

/** Redraws RUN/curves/ from RUN/metrics.jsonl. */
export async function drawRunCurves(runDir: string, opts: ChartOptions = {}): Promise<Drawn> {
  return writeCharts([readRunCurves(runDir)], join(runDir, "curves"), opts);
}
