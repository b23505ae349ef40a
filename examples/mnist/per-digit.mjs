#!/usr/bin/env node
// Digit accuracy per digit for a run of the mnist example, from `vlmc eval --json`:
//
//   npx vlmc eval runs/mnist --json | node examples/mnist/per-digit.mjs runs/mnist
//   node examples/mnist/per-digit.mjs runs/mnist eval.json
//
// `vlmc eval` reports the exact match overall and lists every wrong prediction by example id
// (`mnist-7-123`: digit 7); the examples it scored are the first N of the run's validation split,
// which this rebuilds from the run's ir.json exactly as training made it (runtime/data/mnist.ts,
// whose perDigit/perDigitTable make the table in README.md). Prints that Markdown table.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { mnistSplit, perDigit, perDigitTable } from "../../dist/runtime/data/mnist.js";

function fail(message) {
  process.stderr.write(`per-digit: error: ${message}\n`);
  process.exit(2);
}

const [dir, evalFile] = process.argv.slice(2);
if (!dir) fail("usage: node examples/mnist/per-digit.mjs RUN_DIR [EVAL_JSON] (default: the JSON on stdin)");
let ir;
try {
  ir = JSON.parse(readFileSync(join(dir, "ir.json"), "utf8"));
} catch (err) {
  fail(`${join(dir, "ir.json")}: ${err.message}`);
}
const call = ir.train?.stages?.at(-1)?.data ?? ir.train?.data;
if (call?.kind !== "mnist") fail(`${dir} was not trained on mnist(...) data`);
let doc;
try {
  doc = JSON.parse(readFileSync(evalFile ?? 0, "utf8"));
} catch (err) {
  fail(`${evalFile ?? "stdin"}: not the JSON of \`vlmc eval --json\` (${err.message})`);
}
if (doc.split !== "validation" || !Number.isInteger(doc.examples) || !Array.isArray(doc.mistakes)) fail("expected `vlmc eval --json` of the validation split");
const split = mnistSplit({ train: call.train, validation: call.validation, seed: call.seed });
const ids = split.validation.slice(0, doc.examples).map((e) => e.id);
process.stdout.write(perDigitTable(perDigit(ids, doc.mistakes)));
