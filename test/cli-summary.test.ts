// `vlmc summary`, run as a user runs it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { compile } from "../compiler/compile.js";
import { runVlmc } from "./helpers/cli.js";
import { repoPath } from "./helpers/paths.js";

test("vlmc summary reports the seed model: shapes, 12,907,970 parameters, stages", () => {
  const r = runVlmc(["summary", "specs/seemore.vlm"]);
  assert.equal(r.stderr, "");
  assert.equal(r.code, 0);
  assert.match(r.stdout, /12,907,970 parameters/);
  assert.match(r.stdout, /encoder +patch_embed +patch_embed +\[B, 37, 512\]/);
  assert.match(r.stdout, /decoder +embed +token_embed +\[B, T, 128\]/);
  assert.match(r.stdout, /lm_head +lm_head +\[B, 1\+T, 66\]/);
  assert.match(r.stdout, /^joint +encoder, projector, decoder +16 /m);
  assert.doesNotMatch(r.stdout, /\u001b\[/);
});

test("vlmc summary --format json prints one document with the figures", () => {
  const r = runVlmc(["summary", "--format", "json", "--batch", "8", "--text", "32", "specs/seemore.vlm"]);
  assert.equal(r.code, 0);
  assert.equal(r.stderr, "");
  const j = JSON.parse(r.stdout);
  assert.equal(j.model, "seemore");
  assert.equal(j.batch, 8);
  assert.equal(j.text, 32);
  assert.equal(j.params.total, 12_907_970);
  assert.deepEqual(j.params.by_module, { encoder: 9_866_752, projector: 1_312_896, decoder: 1_728_322 });
  assert.equal(j.stages.length, 1);
  assert.equal(j.stages[0].batch, 8);
  assert.equal(j.stages[0].fits_wasm, true);
  assert.equal(typeof j.stages[0].flops_per_step, "number");
});

test("vlmc summary --depth shows more or fewer levels", () => {
  const deep = runVlmc(["summary", "--depth", "4", "specs/seemore.vlm"]);
  assert.equal(deep.code, 0);
  assert.match(deep.stdout, /blocks\.7\.mlp +mlp/);
  const shallow = runVlmc(["summary", "--depth", "1", "specs/seemore.vlm"]);
  assert.doesNotMatch(shallow.stdout, /blocks\.0/);
});

test("vlmc summary reads an IR document (JSON or YAML) as well as a spec", () => {
  const dir = mkdtempSync(join(tmpdir(), "vlmc-summary-"));
  try {
    const { ir } = compile(repoPath("specs", "seemore.vlm"), { baseDir: dir });
    assert.ok(ir);
    writeFileSync(join(dir, "seemore.json"), JSON.stringify(ir));
    writeFileSync(join(dir, "seemore.yaml"), stringify(ir, { aliasDuplicateObjects: false }));
    const fromSpec = JSON.parse(runVlmc(["summary", "--format", "json", "specs/seemore.vlm"]).stdout);
    for (const f of ["seemore.json", "seemore.yaml"]) {
      const r = runVlmc(["summary", "--format", "json", join(dir, f)]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), fromSpec);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("vlmc summary renders a spec's errors like check, and exits 1", () => {
  const dir = mkdtempSync(join(tmpdir(), "vlmc-summary-"));
  try {
    const bad = join(dir, "bad.vlm");
    writeFileSync(bad, readFileSync(repoPath("specs", "seemore.vlm"), "utf8").replace("heads: 8\n    blocks: 3", "heads: 7\n    blocks: 3"));
    const r = runVlmc(["summary", bad]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /error\[E0302\]: width 512 is not divisible by 7 heads/);
    assert.match(r.stderr, /1 error/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("vlmc summary warns (W0502) about a step too big for the wasm heap, on stderr", () => {
  const r = runVlmc(["summary", "--format", "json", "test/fixtures/diagnostics/W0502-step-too-large-for-wasm.vlm"]);
  assert.equal(r.code, 0);
  assert.match(r.stderr, /warning\[W0502\]/);
  const j = JSON.parse(r.stdout);
  assert.equal(j.stages[0].fits_wasm, false);
  assert.equal(typeof j.stages[0].suggested_accumulate, "number");

  // From an IR document whose spec is not at hand, the warning points into the document.
  const dir = mkdtempSync(join(tmpdir(), "vlmc-summary-"));
  try {
    const { ir } = compile(repoPath("test", "fixtures", "diagnostics", "W0502-step-too-large-for-wasm.vlm"), { baseDir: dir });
    assert.ok(ir?.train?.stages[0]?.span);
    ir.train.stages[0].span.file = "elsewhere/spec.vlm";
    writeFileSync(join(dir, "big.json"), JSON.stringify(ir, null, 2));
    const fromIr = runVlmc(["summary", join(dir, "big.json")]);
    assert.equal(fromIr.code, 0);
    assert.match(fromIr.stderr, /warning\[W0502\][^\n]*\n *--> [^\n]*big\.json:\d+:\d+/);
    assert.match(fromIr.stderr, /"name": "joint"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("vlmc summary: a bad command line or an unreadable file exits 2", () => {
  for (const args of [
    ["summary", "--batch", "0", "specs/seemore.vlm"],
    ["summary", "--batch", "x", "specs/seemore.vlm"],
    ["summary", "--format", "xml", "specs/seemore.vlm"],
    ["summary", "--text", "5000", "specs/seemore.vlm"],
    ["summary", "specs/does-not-exist.vlm"],
    ["summary", "specs/does-not-exist.json"],
    ["summary"],
  ]) {
    const r = runVlmc(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stdout, "", args.join(" "));
    assert.notEqual(r.stderr, "", args.join(" "));
  }
  assert.match(runVlmc(["summary", "--text", "5000", "specs/seemore.vlm"]).stderr, /text budget of 999 tokens/);
});
