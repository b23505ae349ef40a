// Runs every benchmark (`npm run bench`), each in a fresh process so that cold figures are
// cold. Arguments are passed through: `npm run bench -- --json` prints one JSON object per line.
//
// A benchmark is a script in bench/ that prints its own figures; add it to BENCHMARKS.
// (gen-spec.ts, torch.ts and train-*.ts are helpers; step.ts, one seed step in this process on
// the default backend, is run by hand: train.ts measures the same and more.)
// `npm run bench -- --cpu` adds tfjs's cpu backend to the training benchmark; set
// VLMC_TORCH_PYTHON to a Python with torch to compare with PyTorch (bench/train.ts).
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const BENCHMARKS = ["parse", "check", "train", "generate", "frozen"];

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const json = args.includes("--json");
let failed = 0;

for (const [i, name] of BENCHMARKS.entries()) {
  if (!json && i > 0) process.stdout.write("\n");
  const r = spawnSync(process.execPath, [join(here, `${name}.js`), ...args], { stdio: "inherit" });
  if (r.status !== 0) {
    failed++;
    process.stderr.write(`bench: ${name} ${r.error ? `could not run: ${r.error.message}` : `exited with ${r.status ?? r.signal}`}\n`);
  }
}
process.exitCode = failed > 0 ? 1 : 0;
