// The trainer end to end on a tiny spec (test/fixtures/train/tiny.vlm: 16x16 pictures, width 16,
// two stages of 4 steps): freezing, stage hand-over, bit-identical resume after a clean stop, after
// `kill -9` in the middle of writing a checkpoint and past a corrupt checkpoint, a NaN loss, the
// checking of `--set`, and the run folder's contents. All on the wasm backend.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { train, type TrainEvent, type TrainResult } from "../compiler/index.js";
import { decodeSafetensors } from "../runtime/safetensors.js";
import { initValues, irParams } from "../runtime/model.js";
import { compileRunSpec } from "../runtime/train/compile-spec.js";
import { listCheckpoints, verifyCheckpoint } from "../runtime/train/checkpoint.js";
import { Metrics } from "../runtime/train/metrics.js";
import { runVlmc } from "./helpers/cli.js";
import { repoPath, vlmcBin } from "./helpers/paths.js";

const SPEC = repoPath("test/fixtures/train/tiny.vlm");
const tmp = () => mkdtempSync(join(tmpdir(), "vlmc-train-"));
const bytes = (p: string) => readFileSync(p);

async function run(out: string, options: Parameters<typeof train>[1] = {}): Promise<TrainResult & { events: TrainEvent[] }> {
  const events: TrainEvent[] = [];
  const r = await train(SPEC, { out, backend: "wasm", log: () => {}, onEvent: (e) => events.push(e), ...options });
  return { ...r, events };
}

function tensors(path: string): Map<string, Float32Array> {
  const r = decodeSafetensors(new Uint8Array(readFileSync(path)));
  assert.ok(r.ok);
  return new Map([...r.tensors].map(([k, t]) => [k, t.data as Float32Array]));
}

// One uninterrupted run, the reference of every resume test.
let reference: { dir: string; weights: Buffer } | null = null;
async function uninterrupted(): Promise<{ dir: string; weights: Buffer }> {
  if (reference) return reference;
  const dir = tmp();
  const r = await run(dir);
  assert.equal(r.status, "finished");
  reference = { dir, weights: bytes(join(dir, "weights.safetensors")) };
  return reference;
}

test("a run goes through both stages and fills its folder", async () => {
  const { dir } = await uninterrupted();
  for (const f of ["ir.json", "tokenizer.json", "metrics.jsonl", "weights.safetensors", "done.json"]) assert.ok(existsSync(join(dir, f)), f);
  const lines = Metrics.read(join(dir, "metrics.jsonl"));
  const steps = lines.filter((l) => "loss" in l);
  assert.deepEqual(steps.map((l) => l.step), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual([...new Set(steps.map((l) => l.stage))], ["align", "joint"]);
  const evals = lines.filter((l) => "eval" in l);
  // align evaluates every 2 steps (at 2, and at its end); joint at its end.
  assert.deepEqual(evals.map((l) => l.step), [2, 4, 8]);
  for (const e of evals) if ("eval" in e) assert.ok(Math.abs(e.eval.perplexity - Math.exp(e.eval.loss)) < 1e-9);
  const tok = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
  assert.equal(tok.specials.join(","), "pad,bos,eos");
  // The run's IR says what ran, including the stage's accumulate.
  const ir = JSON.parse(readFileSync(join(dir, "ir.json"), "utf8"));
  assert.equal(ir.train.stages[1].accumulate, 2);
  assert.deepEqual(ir.train.stages[1].module_lr, { decoder: 1e-3 });
});

test("the same spec and seed give the same final weights, byte for byte", async () => {
  const { weights } = await uninterrupted();
  const dir = tmp();
  await run(dir);
  assert.ok(bytes(join(dir, "weights.safetensors")).equals(weights));
});

test("frozen modules keep their weights bit for bit and get no optimizer state; stage 2 starts from stage 1's weights", async () => {
  const dir = tmp();
  const r = await run(dir, { maxSteps: 4 });
  assert.equal(r.status, "max-steps");
  const cps = listCheckpoints(dir).map((c) => c.name);
  assert.ok(cps.includes("align-00000004") && cps.includes("joint-00000004"), cps.join(", "));
  const after = tensors(join(dir, "checkpoints/align-00000004/weights.safetensors"));
  const ir = compileRunSpec(SPEC).ir!;
  let frozenChecked = 0;
  let projectorMoved = false;
  for (const p of irParams(ir)) {
    const init = initValues(p, ir.train!.seed);
    const now = after.get(p.name)!;
    const same = Buffer.from(init.buffer).equals(Buffer.from(now.buffer, now.byteOffset, now.byteLength));
    if (p.name.startsWith("projector.")) projectorMoved ||= !same;
    else {
      assert.ok(same, `${p.name} changed while frozen`);
      frozenChecked++;
    }
  }
  assert.ok(frozenChecked > 5 && projectorMoved);
  const opt = tensors(join(dir, "checkpoints/align-00000004/optimizer.safetensors"));
  assert.ok(opt.size > 0);
  for (const name of opt.keys()) assert.match(name, /^[mv]\.projector\./, `optimizer state for ${name}`);
  // The next stage's first checkpoint (written before its first step) holds align's final weights.
  assert.ok(bytes(join(dir, "checkpoints/joint-00000004/weights.safetensors")).equals(bytes(join(dir, "checkpoints/align-00000004/weights.safetensors"))));
  assert.equal(existsSync(join(dir, "done.json")), false);
});

test("resuming after a clean stop ends with the uninterrupted run's weights", async () => {
  const { weights } = await uninterrupted();
  const dir = tmp();
  assert.equal((await run(dir, { maxSteps: 3 })).status, "max-steps");
  const r = await run(dir, { resume: true });
  assert.equal(r.status, "finished");
  const start = r.events.find((e) => e.type === "start");
  assert.ok(start && start.type === "start" && start.resumedFrom?.globalStep === 3 && start.resumedFrom.checkpoint === "align-00000003");
  assert.ok(bytes(join(dir, "weights.safetensors")).equals(weights));
  // metrics.jsonl reads as one run: each step once.
  const steps = Metrics.read(join(dir, "metrics.jsonl")).filter((l) => "loss" in l).map((l) => l.step);
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7, 8]);
  // A finished run, resumed again, says so.
  assert.equal((await run(dir, { resume: true })).status, "already-finished");
});

test("kill -9 in the middle of writing a checkpoint, then --resume: the uninterrupted run's weights", async () => {
  const { weights } = await uninterrupted();
  const dir = tmp();
  const killed = spawnSync(process.execPath, [vlmcBin, "train", SPEC, "--out", dir, "--backend", "wasm", "--quiet"], {
    env: { ...process.env, VLMC_TEST_CRASH_AT: "checkpoint-write:2" },
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(killed.signal, "SIGKILL", killed.stderr);
  // The half-written checkpoint is not a checkpoint: only the first one is listed.
  assert.deepEqual(listCheckpoints(dir).map((c) => c.name), ["align-00000002"]);
  assert.ok(readdirSync(join(dir, "checkpoints")).some((n) => n.startsWith(".tmp-")));
  const r = runVlmc(["train", SPEC, "--out", dir, "--backend", "wasm", "--resume"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /resuming from align-00000002 \(step 2: stage `align` step 2\)/);
  assert.ok(bytes(join(dir, "weights.safetensors")).equals(weights));
  assert.ok(!readdirSync(join(dir, "checkpoints")).some((n) => n.startsWith(".tmp-")), "the crash's leftovers are cleared");
});

test("Ctrl-C (a real SIGINT) stops after the step with a checkpoint and exit 130; --resume ends with the uninterrupted run's weights", async () => {
  const { weights } = await uninterrupted();
  const dir = tmp();
  const child = spawn(process.execPath, [vlmcBin, "train", SPEC, "--out", dir, "--backend", "wasm", "--json"], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let signalled = false;
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString();
    // Interrupt at the first step event, in the middle of the first stage.
    if (!signalled && /"type":"step"/.test(stdout)) {
      signalled = true;
      child.kill("SIGINT");
    }
  });
  const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
  assert.equal(code, 130, stderr);
  assert.match(stderr, /interrupted at step (\d+); checkpoint (\S+) written/);
  assert.ok(!existsSync(join(dir, "done.json")));
  assert.ok(listCheckpoints(dir).length > 0);
  const r = runVlmc(["train", SPEC, "--out", dir, "--backend", "wasm", "--resume"]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(bytes(join(dir, "weights.safetensors")).equals(weights));
});

test("a corrupt checkpoint is reported and skipped for the previous one", async () => {
  const { weights } = await uninterrupted();
  const dir = tmp();
  await run(dir, { maxSteps: 3 });
  const newest = join(dir, "checkpoints/align-00000003/weights.safetensors");
  const b = readFileSync(newest);
  b[b.length - 5] ^= 0xff;
  writeFileSync(newest, b);
  assert.match(verifyCheckpoint(join(dir, "checkpoints/align-00000003")) ?? "", /weights\.safetensors does not match its SHA-256 checksum/);
  const r = await run(dir, { resume: true });
  assert.equal(r.status, "finished");
  const notes = r.events.filter((e) => e.type === "note").map((e) => (e as { message: string }).message);
  assert.ok(notes.some((m) => /checkpoint align-00000003 is damaged \(weights\.safetensors does not match its SHA-256 checksum\): skipped/.test(m)), notes.join("\n"));
  const start = r.events.find((e) => e.type === "start");
  assert.ok(start?.type === "start" && start.resumedFrom?.checkpoint === "align-00000002");
  assert.ok(bytes(join(dir, "weights.safetensors")).equals(weights));
});

test("--resume with no checkpoint starts from scratch and says so; a run folder in the way is refused", async () => {
  const dir = tmp();
  const r = await run(dir, { resume: true, maxSteps: 1 });
  assert.ok(r.events.some((e) => e.type === "note" && /no usable checkpoint in .*: starting from scratch/.test(e.message)));
  const again = runVlmc(["train", SPEC, "--out", dir, "--backend", "wasm"]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already holds a run of `tiny`: add --resume to continue it, --force to start it over/);
});

test("a NaN loss stops the run with a clear message, exit 1, the last good checkpoint intact", async () => {
  const dir = tmp();
  const r = runVlmc(["train", SPEC, "--out", dir, "--backend", "wasm", "--quiet"], { env: { VLMC_TEST_NAN_AT: "3" } });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /vlmc: error: the loss became NaN at step 3 of stage `align` \(step 3 of the run\); the weights were not updated/);
  assert.match(r.stderr, /help: lower the learning rate, or clip gradients/);
  assert.match(r.stderr, /the last good checkpoint is align-00000002/);
  assert.doesNotMatch(r.stderr, /\n\s+at /); // no stack trace
  assert.deepEqual(listCheckpoints(dir).map((c) => c.name), ["align-00000002"]);
  assert.equal(verifyCheckpoint(join(dir, "checkpoints/align-00000002")), null);
  assert.equal(existsSync(join(dir, "weights.safetensors")), false);
});

test("--set overrides are applied and checked like the spec, pointing into the --set text", () => {
  const ok = compileRunSpec(SPEC, ["train.batch=4", "train.joint.steps=2", "decoder.layers=2"]);
  assert.deepEqual(ok.diagnostics.filter((d) => d.severity === "error"), []);
  assert.equal(ok.ir!.train!.stages[0]!.batch, 4);
  assert.equal(ok.ir!.train!.stages[1]!.steps, 2);
  assert.equal(ok.ir!.model, "tiny");

  const bad = runVlmc(["train", SPEC, "--out", tmp(), "--set", "train.align.steps=0", "--set", "decoder.layerz=2"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /error\[E0503\]: stage `align` does not say how long it runs/);
  assert.match(bad.stderr, /error\[E0202\]: the `gpt` decoder has no setting `layerz`\n --> --set:2:9\n  \|\n2 \| decoder\.layerz=2\n  \|         \^\^\^\^\^\^ unknown setting/);
  assert.match(bad.stderr, /did you mean `layers`\?/);

  const range = runVlmc(["train", SPEC, "--out", tmp(), "--set", "train.joint.optimizer=adam(lr: 0)"]);
  assert.equal(range.code, 1);
  assert.match(range.stderr, /error\[E0402\]: `lr` of `adam` is 0, out of range\n --> --set:1:32/);

  const form = runVlmc(["train", SPEC, "--out", tmp(), "--set", "batch"]);
  assert.equal(form.code, 2);
  assert.match(form.stderr, /vlmc: error: --set batch: expected path\.key=value/);
});
