// The `shapes(images:, size:, seed:)` source: generated pictures (runtime/data/shapes.ts), which
// keeps the generator's own split, whose validation side holds (shape, colour) combinations never
// seen in training. Its captions come from the generator, so one the tokenizer cannot encode is a
// spec mismatch and always fatal, whatever `bad_rows` would say for a file.
import { generateShapes, type HeldOutKind } from "../shapes.js";
import { DataError, generatedStage, type Example, type SourceLoader } from "./common.js";

export const loadShapes: SourceLoader = async (ctx) => {
  const { call } = ctx;
  const data = generateShapes({ images: call.images as number, size: call.size as number, seed: call.seed as number, split: ctx.split, heldOut: (call.held_out as HeldOutKind | undefined) ?? "pairs" });
  const byId = new Map([...data.train, ...data.validation].map((e) => [e.id, e]));
  const toExample = (e: (typeof data.train)[number]): Example => {
    const r = ctx.tokenizer.encode(e.caption);
    if (!r.ok) throw new DataError(`shapes image ${e.index}: ${r.error.message}; the spec's tokenizer must cover the data (add the character to \`alphabet\`, or add \`unk\` to \`specials\`)`);
    return { image: e.id, text: e.caption, ids: r.ids };
  };
  return generatedStage(ctx, data.train.map(toExample), data.validation.map(toExample), (id) => {
    const e = byId.get(id)!;
    return { width: e.size, height: e.size, channels: 3, data: e.image() };
  });
};
