// docs/layers.md is generated from the compiler's registries (tools/gen-layers-doc.ts): it must
// be exactly what the generator writes now, and it must cover every layer kind, preset,
// tokenizer kind, optimizer, schedule and data source the compiler knows.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { layerKinds } from "../compiler/layers/index.js";
import { presets } from "../compiler/presets/index.js";
import { tokenizerKinds } from "../compiler/resolve/tokenizer.js";
import { dataSources, optimizers, schedules, stageSchema, trainSchema } from "../compiler/resolve/train.js";
import { LIMITS } from "../compiler/resolve/types.js";
import { LAYERS_DOC_PATH, layersDoc } from "../tools/gen-layers-doc.js";
import { repoPath } from "./helpers/paths.js";

const written = () => readFileSync(repoPath(LAYERS_DOC_PATH), "utf8").replace(/\r\n/g, "\n");

test("docs/layers.md is up to date with the compiler's registries", () => {
  const fresh = layersDoc();
  if (written() === fresh) return;
  const a = written().split("\n");
  const b = fresh.split("\n");
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  assert.fail(`docs/layers.md is out of date: run \`npm run docs\` (first difference at line ${i + 1}:\n  written:   ${a[i] ?? "<end of file>"}\n  generated: ${b[i] ?? "<end of file>"})`);
});

test("docs/layers.md documents every registry entry", () => {
  const doc = layersDoc();
  const headings = new Set([...doc.matchAll(/^#{2,4} (.+)$/gm)].map((m) => m[1]!));
  for (const k of layerKinds.keys()) assert.ok(headings.has(`\`${k}\``), `layer kind \`${k}\` has no section`);
  for (const p of presets) assert.ok(headings.has(`\`${p.section} ${p.name}\``), `preset \`${p.section} ${p.name}\` has no section`);
  for (const t of Object.keys(tokenizerKinds)) assert.ok(headings.has(`\`tokenizer ${t}\``), `tokenizer kind \`${t}\` has no section`);
  for (const name of [...Object.keys(optimizers), ...Object.keys(schedules), ...Object.keys(dataSources)]) {
    assert.ok(headings.has(`\`${name}\``), `\`${name}\` has no section`);
  }
  for (const key of [...Object.keys(trainSchema), ...Object.keys(stageSchema)]) assert.match(doc, new RegExp(`^\\| \`${key}\` \\|`, "m"), `setting \`${key}\` is not in a table`);
  for (const key of Object.keys(LIMITS)) assert.match(doc, new RegExp(`^\\| \`${key}\` \\| `, "m"), `limit \`${key}\` is not in the table`);
});

test("every layer tree of docs/layers.md comes from an example that checks cleanly", () => {
  // The generator throws when an example has a diagnostic; this makes the failure a test's.
  assert.doesNotThrow(() => layersDoc());
  assert.match(layersDoc(), /^ +encoder\.blocks\.0\.attn +attention +\[B, /m, "the vit tree names its attention layer `encoder.blocks.0.attn`");
});

test("the links inside docs/layers.md lead to headings that exist", () => {
  const doc = layersDoc();
  const anchors = new Set(
    [...doc.matchAll(/^#{1,6} (.+)$/gm)].map((m) =>
      m[1]!
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N}_\- ]/gu, "")
        .replace(/ /g, "-"),
    ),
  );
  const links = [...doc.matchAll(/\]\(#([^)\s]+)\)/g)].map((m) => m[1]!);
  assert.ok(links.length > 10, "the contents of docs/layers.md were not found");
  const missing = links.filter((l) => !anchors.has(l));
  assert.deepEqual(missing, [], `docs/layers.md links to headings that do not exist: ${missing.join(", ")}`);
});
