// Writes the diagnostic fixtures of the weights codes (E07xx, W0701): for each, a spec whose
// projector (`linear(decoder.dim)`, 8 -> 8: parameters `projector.0.weight` [8, 8] and
// `projector.0.bias` [8]) names a weights file, and that file, a few hundred bytes, in the
// fixture's companion folder. Run by hand after changing it, and commit what it writes:
//
//   npx tsc -p . && node dist/tools/gen-weights-fixtures.js
//
// The files are written by runtime/safetensors.ts, then (for E0701) damaged; every file is
// byte-deterministic, so re-running changes nothing.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodeSafetensors, type TensorToWrite } from "../runtime/safetensors.js";
import { repoPath } from "./repo.js";

const W = 8;
const values = (n: number, scale: number) => Float32Array.from({ length: n }, (_, i) => ((i % 7) - 3) * scale);
const weight = (name = "projector.0.weight", shape = [W, W]): TensorToWrite => ({ name, dtype: "F32", shape, data: values(shape[0]! * shape[1]!, 0.01) });
const bias = (name = "projector.0.bias"): TensorToWrite => ({ name, dtype: "F32", shape: [W], data: new Float32Array(W) });

interface WeightsFixture {
  /** What the spec's comment says about the file. */
  about: string;
  /** The file's bytes. */
  bytes: () => Uint8Array;
  /** The annotation on the `weights:` line. */
  annotation: string;
}

const fixtures: Record<string, WeightsFixture> = {
  "E0701-truncated-weights-file": {
    about: "the file was cut short: the header promises more data than the file holds",
    bytes: () => {
      const whole = encodeSafetensors([weight(), bias()]);
      return whole.subarray(0, whole.length - 12);
    },
    annotation: "error E0701",
  },
  "E0702-missing-tensor": {
    about: "the file holds the weight of `linear` but not its bias",
    bytes: () => encodeSafetensors([weight()]),
    annotation: "error E0702",
  },
  "E0703-tensor-shape-mismatch": {
    about: "the file's weight was trained for 16-wide visual tokens (its tensors are named without the `projector.` prefix, which a module's file may leave out)",
    bytes: () => encodeSafetensors([weight("0.weight", [16, W]), bias("0.bias")]),
    annotation: "error E0703",
  },
  "E0704-integer-tensor": {
    about: "the file's bias is stored as integers",
    bytes: () => encodeSafetensors([weight(), { name: "projector.0.bias", dtype: "I32", shape: [W], data: new Int32Array(W) }]),
    annotation: "error E0704",
  },
  "E0705-parameter-given-twice": {
    about: "the file holds the bias twice, with and without the module's prefix",
    bytes: () => encodeSafetensors([weight(), bias(), bias("0.bias")]),
    annotation: "error E0705",
  },
  "W0701-unexpected-tensor": {
    about: "the file holds a tensor the projector does not have",
    bytes: () => encodeSafetensors([weight(), bias(), { name: "projector.0.scale", dtype: "F32", shape: [W], data: new Float32Array(W).fill(1) }]),
    annotation: "warning W0701",
  },
};

function spec(name: string, f: WeightsFixture): string {
  const weightsLine = `    weights: "${name}/projector.safetensors"`;
  const column = weightsLine.indexOf('"') + 1;
  const lines = [
    "vlm 0.1",
    "",
    `# ${f.about}.`,
    "model tiny {",
    '  tokenizer chars { alphabet: "abcdefghijklmnopqrstuvwxyz .", specials: [pad] }',
    `  encoder vit { image: 16 x 16 x 3, patch: 8, dim: ${W}, heads: 2, blocks: 1 }`,
    "  projector {",
    "", // the weights line, below
    "    linear(decoder.dim)",
    "  }",
    `  decoder gpt { dim: ${W}, heads: 2, layers: 1, context: 16 }`,
    "}",
  ];
  const at = lines.indexOf("");
  const weightsAt = lines.indexOf("", at + 1);
  lines[weightsAt] = `${weightsLine}   # ${f.annotation} @${weightsAt + 1}:${column}`;
  return `${lines.join("\n")}\n`;
}

const dir = repoPath("test", "fixtures", "diagnostics");
for (const [name, f] of Object.entries(fixtures)) {
  mkdirSync(join(dir, name), { recursive: true });
  const bytes = f.bytes();
  writeFileSync(join(dir, name, "projector.safetensors"), bytes);
  writeFileSync(join(dir, `${name}.vlm`), spec(name, f));
  process.stdout.write(`wrote test/fixtures/diagnostics/${name}.vlm and ${name}/projector.safetensors (${bytes.length} bytes)\n`);
}
