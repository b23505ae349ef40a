// The parser skips chevrotain's grammar validations at start-up (they cost ~30 ms per run);
// this test runs them, so an ambiguous or left-recursive rule still fails the build.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { repoPath } from "./helpers/paths.js";

test("the grammar passes chevrotain's self-analysis validations", () => {
  const parser = repoPath("dist", "compiler", "syntax", "parser.js");
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", `await import(${JSON.stringify(parser)});`], {
    env: { ...process.env, VLMC_GRAMMAR_CHECK: "1" },
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
});
