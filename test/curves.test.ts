// Loss curves (runtime/report/curves.ts, watch.ts) and `vlmc plot`: metrics.jsonl read with
// file:line errors, TensorBoard's smoothing against hand-computed values, and the drawn SVG read
// back: one path per series with a point per logged step, points placed in the order of their
// values, stage rules at the steps where stages start, the PNG the size the SVG declares (x2).
// The metrics are synthetic (two stages of known length), so every expected count and position
// follows from the file, not from a run.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { charts, lossChart, metricChart, MetricsError, parseMetrics, pngHasFont, PNG_SCALE, readRunCurves, SERIES, smooth, svgSize, toSvg, writeCharts, NO_FONT_WARNING } from "../runtime/report/curves.js";
import { CurvesWatcher } from "../runtime/report/watch.js";
import { runVlmc } from "./helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "vlmc-curves-"));
after(() => rmSync(dir, { recursive: true, force: true }));

// Stage `warm`: steps 1..30, evaluated at 30. Stage `tune`: steps 31..70, evaluated every 10.
// The loss falls steadily with a spike at step 10, so the spike's point must be the highest.
const lossAt = (s: number) => (s === 10 ? 4.5 : 3 - 0.02 * s + 0.05 * Math.sin(s));
function metricsText(opts: { exact?: boolean } = {}): string {
  const lines: string[] = [];
  for (let s = 1; s <= 70; s++) {
    const stage = s <= 30 ? "warm" : "tune";
    lines.push(JSON.stringify({ stage, step: s, stage_step: s <= 30 ? s : s - 30, loss: lossAt(s), lr: 1e-3, grad_norm: 1, tokens: 100, tokens_per_s: 1000 }));
    if (s === 30 || (s > 30 && s % 10 === 0)) {
      const ev: Record<string, unknown> = { loss: lossAt(s) + 0.1, perplexity: Math.exp(lossAt(s) + 0.1), examples: 12 };
      if (opts.exact && s > 30) ev.exact_match = { correct: s / 10, count: 10, rate: s / 100 };
      lines.push(JSON.stringify({ stage, step: s, eval: ev }));
    }
  }
  return `${lines.join("\n")}\n`;
}

function makeRun(name: string, text: string): string {
  const run = join(dir, name);
  mkdirSync(run, { recursive: true });
  writeFileSync(join(run, "metrics.jsonl"), text);
  return run;
}

/** The items of the mark groups named NAME (`NAME_marks`: a line's series each have one) in a vega SVG. */
function group(svg: string, name: string): string {
  const parts: string[] = [];
  for (let start = svg.indexOf(`role-mark ${name}_marks"`); start >= 0; start = svg.indexOf(`role-mark ${name}_marks"`, start + 1)) {
    const next = svg.indexOf('<g class="mark-', start);
    parts.push(svg.slice(start, next < 0 ? undefined : next));
  }
  assert.ok(parts.length > 0, `no mark group ${name}`);
  return parts.join("");
}
interface Line {
  label: string;
  points: [number, number][];
}
function lines(svg: string, name: string): Line[] {
  return [...group(svg, name).matchAll(/<path aria-label="([^"]*)"[^>]*?\sd="([^"]*)"/g)].map((m) => ({
    label: m[1]!,
    points: [...m[2]!.matchAll(/[ML](-?[\d.]+),(-?[\d.]+)/g)].map((p) => [Number(p[1]), Number(p[2])] as [number, number]),
  }));
}
const rules = (svg: string) => [...group(svg, "stage_rules").matchAll(/<line aria-label="step: (\d+)"[^>]*transform="translate\(([-\d.]+),/g)].map((m) => ({ step: Number(m[1]), x: Number(m[2]) }));
const labels = (svg: string) => [...group(svg, "stage_labels").matchAll(/<text aria-label="step: (\d+); stage: ([^"]*)"[^>]*>([^<]*)<\/text>/g)].map((m) => ({ step: Number(m[1]), stage: m[2]!, text: m[3]! }));

/** Whether ys are in the reverse order of values (SVG y grows downward), pair by pair. */
function inverseOrder(values: readonly number[], ys: readonly number[]): boolean {
  for (let i = 0; i < values.length; i++)
    for (let j = 0; j < values.length; j++) if (values[i]! > values[j]! + 1e-9 && !(ys[i]! < ys[j]!)) return false;
  return true;
}

test("parseMetrics: steps, evaluations and stages where they start", () => {
  const r = parseMetrics(metricsText(), "m.jsonl", "run");
  assert.equal(r.train.length, 70);
  assert.deepEqual(r.evals.map((e) => e.step), [30, 40, 50, 60, 70]);
  assert.deepEqual(r.stages, [
    { name: "warm", start: 0, last: 30 },
    { name: "tune", start: 30, last: 70 },
  ]);
  assert.deepEqual(r.metrics, ["perplexity"]);
  assert.equal(r.evals[0]!.values.examples, undefined, "a count of examples is not a metric");
  // {correct, count, rate}, as `vlmc eval` writes a rate, is plotted as its rate.
  assert.deepEqual(parseMetrics(metricsText({ exact: true }), "m.jsonl", "run").metrics, ["perplexity", "exact_match"]);
});

test("parseMetrics: damage is reported as file:line, a last line cut by a crash is left out", () => {
  const good = metricsText().split("\n");
  const bad = (lines: string[], message: RegExp) => assert.throws(() => parseMetrics(lines.join("\n"), "runs/x/metrics.jsonl", "x"), (e: Error) => e instanceof MetricsError && message.test(e.message));
  bad([good[0]!, "{not json", good[1]!, ""], /^runs\/x\/metrics\.jsonl:2: not JSON \(/);
  bad([good[0]!, good[1]!, "[1, 2]", ""], /^runs\/x\/metrics\.jsonl:3: expected a JSON object, found an array$/);
  bad([JSON.stringify({ step: 1, loss: 2 }), ""], /^runs\/x\/metrics\.jsonl:1: no `stage` name$/);
  bad([JSON.stringify({ stage: "a", step: 1.5, loss: 2 }), ""], /:1: `step` must be a whole number, found 1.5$/);
  bad([good[0]!, JSON.stringify({ stage: "a", step: 2, lr: 1 }), ""], /:2: neither a step \(a `loss`\) nor an evaluation \(an `eval` object\)$/);
  bad(["", "  ", ""], /^runs\/x\/metrics\.jsonl: empty: the run has not logged a step yet$/);
  // No newline at the end and unreadable: a torn write, not damage.
  const torn = parseMetrics(`${good[0]}\n${good[1]}\n{"stage":"warm","st`, "m.jsonl", "x");
  assert.equal(torn.train.length, 2);
  assert.deepEqual(torn.warnings, ["m.jsonl:3: an incomplete last line (cut short by a crash?) left out"]);
});

test("smooth: TensorBoard's debiased moving average, restarted at each stage", () => {
  const pts = [4, 2, 1, 8, 4].map((loss, i) => ({ stage: i < 3 ? "a" : "b", step: i + 1, loss }));
  // w = 0.5 by hand: a: 4; (1 + 1) / 0.75; (1 + 0.5) / 0.875. b starts over: 8; (2 + 2) / 0.75.
  const want = [4, 2 / 0.75, 1.5 / 0.875, 8, 4 / 0.75];
  smooth(pts, 0.5).forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-12, `${i}: ${v} vs ${want[i]}`));
  assert.deepEqual(smooth(pts, 0), [4, 2, 1, 8, 4]);
});

test("the loss chart: a path per series with a point per step, stage rules and names where stages start", async () => {
  const run = parseMetrics(metricsText(), "m.jsonl", "run-a");
  const svg = await toSvg(lossChart([run], { smoothing: 0.6, width: 700 }));
  const [raw, ...moreRaw] = lines(svg, "raw");
  const [train, ...moreTrain] = lines(svg, "train");
  const [val, ...moreVal] = lines(svg, "validation");
  assert.deepEqual([moreRaw, moreTrain, moreVal], [[], [], []], "one path per series");
  assert.match(raw!.label, new RegExp(`series: ${SERIES.raw.replace(/[()]/g, "\\$&")}`));
  assert.match(train!.label, /series: train;/);
  assert.match(val!.label, /series: validation;/);
  assert.equal(raw!.points.length, 70);
  assert.equal(train!.points.length, 70);
  assert.equal(val!.points.length, 5);

  // x: step s at s / 70 of the 700-pixel width (the axis runs from 0 to the last step).
  raw!.points.forEach(([x], i) => assert.ok(Math.abs(x - ((i + 1) / 70) * 700) < 0.01, `step ${i + 1} at x ${x}`));
  // y: the higher the value, the higher the point (the spike at step 10 is the top of the raw line).
  assert.ok(inverseOrder(run.train.map((p) => p.loss), raw!.points.map((p) => p[1])));
  assert.ok(inverseOrder(smooth(run.train, 0.6), train!.points.map((p) => p[1])));
  assert.ok(inverseOrder(run.evals.map((e) => e.values.loss!), val!.points.map((p) => p[1])));
  assert.deepEqual(val!.points.map(([x]) => Math.round((x / 700) * 70)), [30, 40, 50, 60, 70]);

  // One rule, where `tune` starts: after step 30, on the x of the raw line's step 30.
  const r = rules(svg);
  assert.deepEqual(r.map((x) => x.step), [30]);
  assert.ok(Math.abs(r[0]!.x - raw!.points[29]![0]) < 0.01);
  assert.deepEqual(labels(svg).map((l) => [l.step, l.text]), [
    [0, "warm"],
    [30, "tune"],
  ]);
  // No ids: several charts inlined in one page cannot clash.
  assert.doesNotMatch(svg, /\sid="/);
});

test("without smoothing there is no faint raw line; the smoothing weight is checked", async () => {
  const run = parseMetrics(metricsText(), "m.jsonl", "run-a");
  const svg = await toSvg(lossChart([run], { smoothing: 0 }));
  assert.ok(!svg.includes("raw_marks"));
  assert.equal(lines(svg, "train")[0]!.points.length, 70);
  assert.throws(() => lossChart([run], { smoothing: 1 }), RangeError);
});

test("several runs: a path per run and curve, the runs in the legend", async () => {
  const a = parseMetrics(metricsText(), "a.jsonl", "first-run");
  // The second run: 50 steps only, no evaluation after step 30.
  const b = parseMetrics(metricsText().split("\n").filter((l) => l && JSON.parse(l).step <= 50 && !(JSON.parse(l).eval && JSON.parse(l).step > 30)).join("\n"), "b.jsonl", "second-run");
  const svg = await toSvg(lossChart([a, b]));
  const train = lines(svg, "train");
  assert.deepEqual(train.map((l) => [/run: ([^;]*)/.exec(l.label)![1], l.points.length]), [
    ["first-run", 70],
    ["second-run", 50],
  ]);
  const val = lines(svg, "validation");
  assert.deepEqual(val.map((l) => [/run: ([^;]*)/.exec(l.label)![1], l.points.length]), [
    ["first-run", 5],
    ["second-run", 1],
  ]);
  assert.ok(!svg.includes("raw_marks"), "raw lines are left out of a comparison");
  const legend = [...svg.matchAll(/role-legend-label[^>]*><text[^>]*>([^<]*)</g)].map((m) => m[1]);
  assert.deepEqual(legend, ["first-run", "second-run", "train", "validation"]);
  // Both runs start `tune` at step 30: one rule.
  assert.deepEqual(rules(svg).map((r) => r.step), [30]);
});

test("a chart per other evaluation metric, with its points", async () => {
  const run = parseMetrics(metricsText({ exact: true }), "m.jsonl", "run-a");
  assert.deepEqual(charts([run]).map((c) => c.name), ["loss", "perplexity", "exact_match"]);
  const svg = await toSvg(metricChart([run], "exact_match")!);
  const [line] = lines(svg, "validation");
  assert.equal(line!.points.length, 4);
  assert.ok(inverseOrder([0.4, 0.5, 0.6, 0.7], line!.points.map((p) => p[1])));
  assert.equal(metricChart([run], "bleu"), null);
});

test("writeCharts: SVG and PNG files, the PNG decoding to twice the SVG's declared size", async () => {
  const run = makeRun("written", metricsText());
  const drawn = await writeCharts([readRunCurves(run)], join(run, "curves"));
  assert.deepEqual(drawn.files.map((f) => f.slice(run.length + 1)), ["curves/loss.svg", "curves/loss.png", "curves/perplexity.svg", "curves/perplexity.png"]);
  for (const name of ["loss", "perplexity"]) {
    const svg = readFileSync(join(run, "curves", `${name}.svg`), "utf8");
    const size = svgSize(svg);
    const meta = await sharp(join(run, "curves", `${name}.png`)).metadata();
    assert.equal(meta.format, "png");
    assert.equal(meta.width, size.width * PNG_SCALE);
    assert.equal(meta.height, size.height * PNG_SCALE);
  }
  // Labels: drawn when resvg finds a font, else a warning says the PNG has none.
  assert.equal(drawn.warnings.includes(NO_FONT_WARNING), !(await pngHasFont()));
});

test("the watcher redraws after evaluations and at the end; a failure is one warning, never a throw", async () => {
  const run = makeRun("watched", metricsText().split("\n").slice(0, 31).join("\n") + "\n"); // up to warm's evaluation
  const warnings: string[] = [];
  const w = new CurvesWatcher(run, (m) => warnings.push(m));
  w.handle({ type: "eval", stage: "warm", stageStep: 30, globalStep: 30, loss: 1, perplexity: 1, examples: 12, best: true });
  await w.finish();
  const first = lines(readFileSync(join(run, "curves", "loss.svg"), "utf8"), "train")[0]!;
  assert.equal(first.points.length, 30);
  // More steps: the end of the run draws them.
  writeFileSync(join(run, "metrics.jsonl"), metricsText());
  await w.finish();
  assert.equal(lines(readFileSync(join(run, "curves", "loss.svg"), "utf8"), "train")[0]!.points.length, 70);
  assert.deepEqual(warnings, []);
  // Damage: a warning (once), the previous drawing left as it was.
  writeFileSync(join(run, "metrics.jsonl"), `${metricsText()}oops\n{}\n`);
  w.handle({ type: "eval", stage: "tune", stageStep: 40, globalStep: 70, loss: 1, perplexity: 1, examples: 12, best: false });
  await w.finish();
  await w.finish();
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /^curves: not drawn: .*metrics\.jsonl:76: not JSON/);
  assert.equal(lines(readFileSync(join(run, "curves", "loss.svg"), "utf8"), "train")[0]!.points.length, 70);
});

test("vlmc plot: a run's curves, several runs compared, and clear errors", () => {
  const a = makeRun("plot-a", metricsText());
  const b = makeRun("plot-b", metricsText({ exact: true }));
  let r = runVlmc(["plot", a]);
  assert.equal(r.code, 0, r.stderr);
  for (const f of ["loss.svg", "loss.png", "perplexity.svg", "perplexity.png"]) assert.ok(existsSync(join(a, "curves", f)), f);

  r = runVlmc(["plot", a, b]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split("\n").map((l) => l.slice(l.lastIndexOf("/") + 1)), ["compare.svg", "compare.png", "compare-perplexity.svg", "compare-perplexity.png", "compare-exact_match.svg", "compare-exact_match.png"]);
  const svg = readFileSync(join(a, "curves", "compare.svg"), "utf8");
  assert.deepEqual(lines(svg, "train").map((l) => /run: ([^;]*)/.exec(l.label)![1]), ["plot-a", "plot-b"]);

  const out = join(dir, "elsewhere", "cmp.svg");
  r = runVlmc(["plot", a, b, "--out", out, "--no-png", "--smooth", "0.5"]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(out) && !existsSync(join(dir, "elsewhere", "cmp.png")));

  // Errors: one line each, no stack trace.
  const errors: [string[], number, RegExp][] = [
    [[join(dir, "nope")], 2, /nope: no such run folder$/],
    [[dir], 2, /: not a run folder \(no metrics\.jsonl or ir\.json; `vlmc train SPEC --out .*` makes one\)$/],
    [[makeRun("empty", "")], 1, /empty\/metrics\.jsonl: empty: the run has not logged a step yet$/],
    [[a, makeRun("broken", `${metricsText()}{"stage": "tune", "step": 71, "loss": }\n`)], 1, /broken\/metrics\.jsonl:76: not JSON \(/],
    [[a, "--smooth", "1"], 2, /--smooth.*expected a number from 0/],
  ];
  for (const [args, code, message] of errors) {
    r = runVlmc(["plot", ...args]);
    assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr.trim(), message);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
});
