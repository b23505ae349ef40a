import { test } from "node:test";
import assert from "node:assert/strict";
import { runVlmc } from "./helpers/cli.js";

test("vlmc check accepts the seed spec", () => {
  const r = runVlmc(["check", "specs/seemore.vlm"]);
  assert.equal(r.stderr, "");
  assert.equal(r.code, 0);
});
