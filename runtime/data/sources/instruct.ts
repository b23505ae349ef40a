// The `instruct(images:, size:, seed:)` source: questions and short answers about the generated
// shapes pictures (runtime/data/instruct.ts), rendered with the spec's chat template like any
// conversation (sources/conversations.ts), with the shapes generator's split. Its text comes from
// the generator, so one the tokenizer cannot encode or the context cannot hold is a spec mismatch
// and always fatal (`vlmc check` reports the first already: E0508), whatever `bad_rows` would say.
import { generateInstruct, type InstructExample } from "../instruct.js";
import type { HeldOutKind } from "../shapes.js";
import { DataError, generatedStage, type Example, type SourceLoader } from "./common.js";
import { chatOf, conversationExample } from "./conversations.js";

export const loadInstruct: SourceLoader = async (ctx) => {
  const { call } = ctx;
  const chat = chatOf(ctx);
  const data = generateInstruct({ images: call.images as number, size: call.size as number, seed: call.seed as number, split: ctx.split, heldOut: (call.held_out as HeldOutKind | undefined) ?? "pairs" });
  const pictures = new Map([...data.train, ...data.validation].map((e) => [e.picture.id, e.picture]));
  const toExample = (e: InstructExample): Example => {
    const r = conversationExample(ctx, chat, e.picture.id, [{ question: e.question, answer: e.answer }], e.type);
    if (!r.ok) throw new DataError(`instruct question ${e.id} (${JSON.stringify(e.question)}): ${r.message}`);
    return r.example;
  };
  return generatedStage(ctx, data.train.map(toExample), data.validation.map(toExample), (id) => {
    const p = pictures.get(id)!;
    return { width: p.size, height: p.size, channels: 3, data: p.image() };
  });
};
