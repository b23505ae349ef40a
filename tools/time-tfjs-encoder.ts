// The forward time of a `tfjs` encoder (default: the nsfwjs MobileNetV2 cut at `out_relu`) per
// image, at several image sizes and batches, on the backend vlmc picks (wasm here), as
// docs/language.md quotes it. Each size and batch: one warm-up pass (kernels, weights decoded),
// then the median of `--repeat` passes, the output read back.
//
//   nice -n 5 node dist/tools/time-tfjs-encoder.js [--sizes 96,224] [--batches 1,8] [--repeat 5] [--layer out_relu] [--folder DIR]
import { parseArgs } from "node:util";
import { initBackend } from "../runtime/backend.js";
import { decodeFolderWeights, runKeras } from "../runtime/pretrained/execute.js";
import { ensureExtracted, NSFWJS_FOLDER } from "../runtime/pretrained/folder.js";

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "96,224" },
    batches: { type: "string", default: "1,8" },
    repeat: { type: "string", default: "5" },
    layer: { type: "string", default: "out_relu" },
    folder: { type: "string", default: NSFWJS_FOLDER },
  },
});
const problem = ensureExtracted(values.folder!);
if (problem) {
  process.stderr.write(`time-tfjs-encoder: ${values.folder}: ${problem.message}\n`);
  process.exit(1);
}
const { tf } = await initBackend("auto", { log: (line) => void process.stdout.write(`${line}\n`) });
const weights = decodeFolderWeights(tf, values.folder!);
const repeat = Math.max(1, Number(values.repeat));
for (const size of values.sizes!.split(",").map(Number)) {
  for (const batch of values.batches!.split(",").map(Number)) {
    const x = tf.randomUniform([batch, size, size, 3], 0, 1, "float32", 1);
    const pass = () => {
      const t0 = performance.now();
      const y = tf.tidy(() => runKeras(tf, values.folder!, values.layer!, x, (n) => weights[n]!));
      y.dataSync();
      const shape = y.shape;
      y.dispose();
      return { ms: performance.now() - t0, shape };
    };
    const { shape } = pass();
    const times = Array.from({ length: repeat }, () => pass().ms).sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)]!;
    process.stdout.write(`${size} x ${size}, batch ${batch}: [${shape.join(", ")}] in ${median.toFixed(1)} ms (median of ${repeat}), ${(median / batch).toFixed(1)} ms per image\n`);
    x.dispose();
  }
}
tf.dispose(Object.values(weights));
