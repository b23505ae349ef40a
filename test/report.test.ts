// RUN/report.html (runtime/report/report.ts), `vlmc report`, and the report written at the end of
// `train()`. The run folder is built by hand around a model whose weights make it write one fixed
// caption whatever the image (as test/eval.test.ts does), so the samples' generated captions are
// known in advance, and the images shown must be the validation pictures' own pixels. The page
// is opened in headless Chromium (Debian's `chromium`, through playwright-core): every image
// decodes, the tables and charts are there, nothing is fetched and nothing logs an error. Where
// Chromium is not installed that test reports itself skipped, not passed.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import sharp from "sharp";
import { compile } from "../compiler/compile.js";
import { train, type TrainEvent } from "../compiler/index.js";
import { irToJson } from "../compiler/ir/yaml.js";
import { generateShapes } from "../runtime/data/shapes.js";
import { escapeHtml, evalRows, scopeSvgIds } from "../runtime/report/report.js";
import { runVlmc } from "./helpers/cli.js";
import { fixedSpec, fixedTokenizer, fixedWeights } from "./helpers/fixed-caption.js";
import { repoPath } from "./helpers/paths.js";

const dir = mkdtempSync(join(tmpdir(), "vlmc-report-"));
after(() => rmSync(dir, { recursive: true, force: true }));

// 64 images of 16 x 16: 58 training, 6 validation.
const SPEC = fixedSpec(4);
const shapes = generateShapes({ images: 64, size: 16, seed: 3 });
const fixedCaption = shapes.validation[0]!.caption;
const tok = fixedTokenizer;

const HOSTILE = `<script>alert("x")</script>&amp;`;

function metricsLines(): string {
  const lines: string[] = [];
  for (let s = 1; s <= 4; s++) {
    lines.push(JSON.stringify({ stage: "all", step: s, stage_step: s, loss: 3 - s / 2, lr: 1e-3, grad_norm: 1, tokens: 50, tokens_per_s: 500 }));
    if (s % 2 === 0) lines.push(JSON.stringify({ stage: "all", step: s, eval: { loss: 3.2 - s / 2, perplexity: Math.exp(3.2 - s / 2), examples: 6 } }));
  }
  // A stage name no spec can have, as a hand-edited file might: it is text in the table and the charts.
  lines.push(JSON.stringify({ stage: HOSTILE, step: 5, stage_step: 1, loss: 0.9, lr: 1e-3, grad_norm: 1, tokens: 50, tokens_per_s: 500 }));
  return `${lines.join("\n")}\n`;
}

/** A finished run of the fixed-caption model, in a folder whose name needs escaping. */
function makeRun(name: string): string {
  const run = join(dir, name);
  mkdirSync(run, { recursive: true });
  const r = compile(join(run, "spec.vlm"), { text: new TextEncoder().encode(SPEC), baseDir: run });
  assert.ok(r.ir, r.diagnostics.map((d) => d.message).join("\n"));
  writeFileSync(join(run, "ir.json"), irToJson(r.ir));
  writeFileSync(join(run, "tokenizer.json"), JSON.stringify(tok.toJSON()));
  writeFileSync(join(run, "weights.safetensors"), fixedWeights(r.ir, fixedCaption));
  writeFileSync(join(run, "metrics.jsonl"), metricsLines());
  writeFileSync(join(run, "done.json"), "{}\n");
  // eval.json as `vlmc eval` keeps it (runtime/eval/results.ts), with text that must be escaped.
  const doc = { examples: 6, loss: 1.25, perplexity: Math.exp(1.25), exact_match: { correct: 2, count: 6, rate: 2 / 6 }, bleu4: 0.5, cider_d: 1.5, baseline: { caption: "x", correct: 1, count: 6, rate: 1 / 6 }, evaluated_at: "2026-01-02T03:04:05.000Z" };
  const groups = { novel: { ...doc, exact_match: { correct: 1, count: 3, rate: 1 / 3 } } };
  writeFileSync(join(run, "eval.json"), JSON.stringify({ version: 1, evaluations: { validation: { ...doc, groups }, [HOSTILE]: doc } }));
  return run;
}

const run = makeRun(`run <b>&"'`);

test("escapeHtml and scoped SVG ids", () => {
  assert.equal(escapeHtml(`<a href="x">Tom & 'Jerry'</a>`), "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;");
  assert.equal(scopeSvgIds(`<clipPath id="c1"/><g clip-path="url(#c1)"><use href="#c1"/></g>`, "p"), `<clipPath id="p-c1"/><g clip-path="url(#p-c1)"><use href="#p-c1"/></g>`);
});

test("evalRows: an evaluation per row and a row per group; fields it does not know are left empty", () => {
  const rows = evalRows({ evaluations: { validation: { examples: 6, loss: 1.5, exact_match: { correct: 2, count: 6, rate: 1 / 3 }, groups: { novel: { examples: 3, bleu4: 0.25 } } }, bad: 3 } });
  assert.deepEqual(rows, [
    ["validation", "6", "1.5000", "", "2/6 = 33.3%", "", "", "", ""],
    ["validation / novel", "3", "", "", "", "0.2500", "", "", ""],
  ]);
});

test("vlmc report: the page's sections, the fixed caption for every sample, the pictures' own pixels, escaped text", async () => {
  const r = runVlmc(["report", run, "--backend", "wasm"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim().split("\n").at(-1), join(run, "report.html"));
  const html = readFileSync(join(run, "report.html"), "utf8");
  for (const id of ["final", "curves", "samples", "stages", "model"]) assert.ok(html.includes(`<h2 id="${id}">`), id);

  // Escaping: the folder's name and eval.json's keys appear as text, never as markup.
  assert.ok(html.includes("run &lt;b&gt;&amp;&quot;&#39;"));
  assert.ok(!html.includes("<b>&") && !html.includes("<script"));
  assert.ok(html.includes(`<tr><td>${escapeHtml(HOSTILE)}</td><td>1</td>`), "the stage's row in the final metrics");
  assert.ok(html.includes(`<td>${escapeHtml(HOSTILE)}</td><td>6</td>`), "eval.json's key");
  assert.ok(html.includes(`stage: ${escapeHtml(HOSTILE)}" role="graphics-symbol" aria-roledescription="text mark"`), "the stage's name on the chart");

  // Samples: all 6 validation images, each with its caption and the model's (always the fixed one).
  const rows = [...html.matchAll(/<tr><td><img src="data:image\/png;base64,([^"]+)"[^>]*><\/td><td><code>([^<]*)<\/code><\/td><td>([^<]*)<\/td><td class="(ok|wrong)">([^<]*)<\/td><td class="(?:ok|wrong)">(yes|no)<\/td><\/tr>/g)];
  assert.equal(rows.length, shapes.validation.length);
  for (const [k, m] of rows.entries()) {
    const e = shapes.validation[k]!;
    assert.equal(m[2], e.id);
    assert.equal(m[3], escapeHtml(e.caption));
    assert.equal(m[5], escapeHtml(fixedCaption));
    assert.equal(m[6], e.caption === fixedCaption ? "yes" : "no");
    // The picture shown is the generator's, byte for byte (the encoder's normalisation undone).
    const { data, info } = await sharp(Buffer.from(m[1]!, "base64")).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height, info.channels], [16, 16, 3]);
    assert.deepEqual(new Uint8Array(data), e.image());
  }

  // Final metrics: the stage's last smoothed training loss, last and best validation loss.
  assert.match(html, /<tr><td>all<\/td><td>4<\/td><td>[\d.]+<\/td><td>1\.2000<\/td><td>3\.3201<\/td><td>1\.2000 \(4\)<\/td><\/tr>/);
  // eval.json: a row per evaluation and per group.
  assert.match(html, /<tr><td>validation<\/td><td>6<\/td><td>1\.2500<\/td><td>3\.490<\/td><td>2\/6 = 33\.3%<\/td><td>0\.5000<\/td><td>1\.5000<\/td><td>1\/6 = 16\.7%<\/td><td>2026-01-02T03:04:05\.000Z<\/td><\/tr>/);
  assert.match(html, /<tr><td>validation \/ novel<\/td><td>6<\/td><td>1\.2500<\/td><td>3\.490<\/td><td>1\/3 = 33\.3%<\/td>/);
  // Two charts inline (loss and perplexity), with the stage's name.
  assert.deepEqual([...html.matchAll(/<figure class="curve" data-chart="([^"]+)"><svg /g)].map((m) => m[1]), ["loss", "perplexity"]);
  // The stages from the IR, and the summary table.
  assert.match(html, /<tr><td>all<\/td><td>projector, decoder<\/td><td>encoder<\/td><td>4 steps<\/td>/);
  assert.match(html, /<pre class="summary">model fixed: [\d,]+ parameters/);
});

test("vlmc report: problems are one line with exit 2 or 1; --samples 0 needs no weights", () => {
  let r = runVlmc(["report", join(dir, "absent")]);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, `vlmc: error: ${join(dir, "absent")}: no such run folder\n`);
  r = runVlmc(["report", dir, "--samples", "0"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^vlmc: error: .*: not a run folder \(no ir\.json; `vlmc train SPEC --out .*` makes one\)\n$/);

  const broken = makeRun("broken");
  writeFileSync(join(broken, "metrics.jsonl"), `${metricsLines()}{"stage": "all", "step": 6, "loss": 1\n{}\n`);
  r = runVlmc(["report", broken, "--samples", "0"]);
  assert.equal(r.code, 1);
  assert.ok(r.stderr.startsWith(`vlmc: error: ${join(broken, "metrics.jsonl")}:8: not JSON (`), r.stderr);
  assert.equal(r.stderr.split("\n").length, 2, "one line");

  // No weights and no checkpoint: the page is written, without samples, saying why.
  const unfinished = makeRun("unfinished");
  rmSync(join(unfinished, "weights.safetensors"));
  rmSync(join(unfinished, "done.json"));
  r = runVlmc(["report", unfinished, "--backend", "wasm"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^vlmc: warning: no samples: .*has no whole checkpoint$/m);
  const html = readFileSync(join(unfinished, "report.html"), "utf8");
  assert.ok(html.includes("not finished: the last step logged is 5"));
  assert.ok(!html.includes("<img"));
});

/** CHROMIUM_PATH when set, else Debian's Chromium; null when it is not there. */
function chromiumPath(): string | null {
  const candidates = process.env.CHROMIUM_PATH ? [process.env.CHROMIUM_PATH] : ["/usr/bin/chromium", "/usr/bin/chromium-browser"];
  return candidates.find((p) => existsSync(p)) ?? null;
}

test("report.html in headless Chromium: every image decodes, tables and charts render, nothing fetched, no console error", async (t) => {
  const executablePath = chromiumPath();
  if (!executablePath) {
    t.skip(`Chromium is not installed${process.env.CHROMIUM_PATH ? ` at CHROMIUM_PATH=${process.env.CHROMIUM_PATH}` : ""} (Debian: apt-get install chromium)`);
    return;
  }
  const page = join(run, "report.html");
  if (!existsSync(page)) assert.equal(runVlmc(["report", run, "--backend", "wasm"]).code, 0);
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath });
  try {
    const tab = await browser.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    tab.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") errors.push(`console ${m.type()}: ${m.text()}`);
    });
    tab.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
    tab.on("requestfailed", (r) => errors.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
    tab.on("request", (r) => requests.push(r.url()));
    const url = pathToFileURL(page).href;
    await tab.goto(url, { waitUntil: "load" });
    const seen = await tab.evaluate(() => {
      // In the page (the tests compile without the DOM's types).
      const document = (globalThis as unknown as { document: any }).document;
      const all = (sel: string, root = document): any[] => [...root.querySelectorAll(sel)];
      return {
        images: all("img").map((i) => ({ complete: i.complete as boolean, width: i.naturalWidth as number, height: i.naturalHeight as number })),
        tables: all("table").map((tb) => ({ cls: tb.className as string, rows: all("tbody tr", tb).length })),
        charts: all("figure.curve svg").map((s) => {
          const b = s.getBoundingClientRect();
          return { width: b.width as number, height: b.height as number, paths: all("path[aria-roledescription='line mark']", s).length };
        }),
        scripts: all("script").length,
        title: document.title as string,
        evalKeys: all("table.eval tbody tr td:first-child").map((td) => td.textContent as string),
        heading: (document.querySelector("p.meta")?.textContent ?? "") as string,
        chartTexts: all("figure.curve svg text").map((t) => t.textContent as string),
      };
    });
    assert.deepEqual(errors, []);
    // Only the page itself: images and charts are inline.
    assert.deepEqual(requests.filter((u) => !u.startsWith("data:")), [url]);
    assert.equal(seen.images.length, shapes.validation.length);
    for (const img of seen.images) assert.deepEqual(img, { complete: true, width: 16, height: 16 });
    assert.deepEqual(
      seen.tables.map((tb) => [tb.cls, tb.rows]),
      [
        ["final", 2],
        ["eval", 3],
        ["samples", shapes.validation.length],
        ["stages", 1],
        ["modules", 3],
      ],
    );
    assert.equal(seen.charts.length, 2);
    for (const c of seen.charts) assert.ok(c.width > 100 && c.height > 100 && c.paths > 0, JSON.stringify(c));
    // Hostile text stayed text.
    assert.equal(seen.scripts, 0);
    assert.ok(seen.evalKeys.includes(HOSTILE), JSON.stringify(seen.evalKeys));
    assert.ok(seen.chartTexts.includes(HOSTILE), JSON.stringify(seen.chartTexts));
    assert.ok(seen.heading.includes(`run <b>&"'`), seen.heading);
    assert.equal(seen.title, "fixed: training report");
  } finally {
    await browser.close();
  }
});

test("train() draws the curves and writes the report at the end; --force clears them", async () => {
  const out = join(dir, "trained");
  const events: TrainEvent[] = [];
  const r = await train(repoPath("test/fixtures/train/tiny.vlm"), { out, backend: "wasm", log: () => {}, onEvent: (e) => events.push(e) });
  assert.equal(r.status, "finished", JSON.stringify(r));
  const notes = events.flatMap((e) => (e.type === "note" ? [e.message] : []));
  assert.ok(notes.includes(`report: ${join(out, "report.html")}`), notes.join("\n"));
  assert.ok(!notes.some((n) => /not (drawn|written)/.test(n)), notes.join("\n"));
  // The curves hold every step and evaluation of the run.
  const metrics = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { eval?: unknown });
  const svg = readFileSync(join(out, "curves", "loss.svg"), "utf8");
  const pointsIn = (name: string) => [...svg.slice(svg.indexOf(`${name}_marks"`)).matchAll(/\sd="([^"]*)"/g)][0]![1]!.match(/[ML]/g)!.length;
  assert.equal(pointsIn("raw"), metrics.filter((m) => !m.eval).length);
  assert.ok(existsSync(join(out, "curves", "loss.png")) && existsSync(join(out, "curves", "perplexity.svg")));
  const html = readFileSync(join(out, "report.html"), "utf8");
  assert.match(html, /finished: 8 steps/);
  assert.equal([...html.matchAll(/<img src="data:image\/png;base64,/g)].length, 8);

  const again = await train(repoPath("test/fixtures/train/tiny.vlm"), { out, backend: "wasm", log: () => {}, force: true, maxSteps: 1, report: false });
  assert.equal(again.status, "max-steps");
  assert.ok(!existsSync(join(out, "curves")) && !existsSync(join(out, "report.html")), "--force removed the old run's curves and report");
});
