// Instruction data end to end on a tiny model: `vlmc train` on `instruct(...)` counts only the
// answers in its loss (the tokens a step reports are the answers' tokens, not the questions'),
// records the chat template in the run's IR, and `vlmc eval` answers the validation questions
// after their prompts and reports accuracy per question type, in text and as JSON.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runEval, type EvalCliOptions } from "../cli/commands/eval.js";
import type { Io } from "../cli/main.js";
import { train } from "../compiler/index.js";
import { Metrics } from "../runtime/train/metrics.js";

const SPEC = `vlm 0.1
model tinyqa {
  tokenizer chars { alphabet: "\\n :?abcdefghilmnopqrstuwyz", specials: [pad, bos, eos] }
  chat { user: "user: ", assistant: "assistant: " }
  encoder vit { image: 16 x 16 x 3, patch: 8, dim: 16, heads: 2, blocks: 0, cls: false, output: patches }
  projector { linear(decoder.dim) }
  decoder gpt { dim: 16, heads: 2, layers: 1, context: 72, position: rope }
}
train {
  data: instruct(images: 30, size: 16, seed: 1)
  batch: 4
  seed: 3
  split: 0.2
  stage align { train: [projector], steps: 2 }
  stage tune { train: [encoder, projector, decoder], optimizer: adam(lr: 3e-3), steps: 3 }
}
`;

function io(): Io & { out: string; err: string } {
  const o = { out: "", err: "", color: false, stdout: (s: string) => (o.out += s), stderr: (s: string) => (o.err += s) };
  return o;
}

const evalOpts = (extra: Partial<EvalCliOptions> = {}): EvalCliOptions => ({ batch: 16, mistakes: 3, format: "text", save: false, backend: "wasm", ...extra });

test("train on instruct: answer-only loss, the template in the run; eval: accuracy per question type", async () => {
  const dir = mkdtempSync(join(tmpdir(), "vlmc-instruct-"));
  try {
    writeFileSync(join(dir, "tinyqa.vlm"), SPEC);
    const out = join(dir, "run");
    const r = await train(join(dir, "tinyqa.vlm"), { out, backend: "wasm", log: () => {} });
    assert.equal(r.status, "finished", JSON.stringify(r));
    const ir = JSON.parse(readFileSync(join(out, "ir.json"), "utf8"));
    assert.equal(ir.chat.assistant, "assistant: ");
    const steps = Metrics.read(join(out, "metrics.jsonl")).filter((l) => "loss" in l) as { tokens: number }[];
    assert.equal(steps.length, 5);
    // An answer counts its characters, its separator and eos: 4 ("no") to 10 ("triangle") tokens,
    // so a step of 4 examples counts 16 to 40. Its whole text ("user: ... assistant: ...") is 35+
    // tokens an example: counting it would give 140 or more.
    for (const s of steps) assert.ok(s.tokens >= 16 && s.tokens <= 40, `${s.tokens} tokens in a step`);

    const text = io();
    assert.equal(await runEval(out, evalOpts(), text), 0, text.err);
    assert.match(text.out, /data: instruct\(images: 30, size: 16, seed: 1, held_out: "pairs"\), validation split: \d+ questions/);
    assert.match(text.out, /answer accuracy: \d+\/\d+ = [\d.]+% \(majority-answer baseline \d+\/\d+ = [\d.]+%\)/);
    for (const t of ["colour", "count", "shape", "size", "exists"]) assert.match(text.out, new RegExp(`^  ${t}: \\d+/\\d+ = [\\d.]+% \\(baseline`, "m"));

    const json = io();
    assert.equal(await runEval(out, evalOpts({ format: "json", split: "novel" }), json), 0, json.err);
    const doc = JSON.parse(json.out);
    assert.equal(doc.split, "novel");
    const types = Object.values(doc.answer_accuracy.types) as { correct: number; count: number }[];
    assert.equal(types.reduce((a, t) => a + t.count, 0), doc.questions);
    assert.equal(types.reduce((a, t) => a + t.correct, 0), doc.answer_accuracy.overall.correct);
    assert.deepEqual(Object.keys(doc.groups), ["novel"]);
    assert.equal(doc.groups.novel.count, doc.questions);
    assert.equal(doc.mistakes.length, doc.questions - doc.answer_accuracy.overall.correct);
    for (const m of doc.mistakes) assert.ok(typeof m.question === "string" && typeof m.reference === "string" && m.group === "novel");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
