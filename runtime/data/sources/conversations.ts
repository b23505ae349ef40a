// The `conversations(file)` source: LLaVA-style instruction data (runtime/data/conversations.ts
// reads it), rendered with the spec's chat template (runtime/chat.ts) into token ids and a loss
// mask that counts only the answers. A row whose text the tokenizer cannot encode, that does not
// fit the decoder's context, or whose image does not decode is a bad row, skipped or fatal as
// `bad_rows` says; every image is decoded once before the first step (see common.ts for why).
import { resolve } from "node:path";
import { encodeConversation, renderConversation, type ChatTemplate, type Exchange } from "../../chat.js";
import { readConversations } from "../conversations.js";
import { DataError, imageRowsStage, type Example, type RowProblem, type SourceContext, type SourceLoader } from "./common.js";

/** The model's chat template, which a conversation source cannot do without. */
export function chatOf(ctx: SourceContext): ChatTemplate {
  const chat = ctx.ir.chat;
  if (!chat) throw new DataError(`${ctx.describe} needs the model's \`chat\` section (how a conversation is written out for the decoder); add \`chat { user: "user: ", assistant: "assistant: ", separator: "\\n", image: "<image>" }\` to the model`);
  return chat;
}

/**
 * A conversation as an example: its ids and answer-only loss mask, and for scoring its last
 * exchange as the question to answer (with the earlier ones as history), under its type or
 * UNTYPED. The error message says
 * why it cannot be one (unencodable text, too long for the context).
 */
export function conversationExample(ctx: SourceContext, chat: ChatTemplate, image: string, exchanges: readonly Exchange[], type: string | null): { ok: true; example: Example } | { ok: false; message: string } {
  const enc = encodeConversation(exchanges, chat, ctx.tokenizer);
  if (!enc.ok) return { ok: false, message: `${enc.message}; the spec's tokenizer must cover the data (add the character to \`alphabet\`, or add \`unk\` to \`specials\`)` };
  // Inputs are ids[:-1]: a row longer than the budget would lose its last answer to truncation.
  const positions = enc.ids.length - 1;
  if (positions > ctx.maxText) return { ok: false, message: `the conversation takes ${positions} text positions, more than the ${ctx.maxText} the decoder's context leaves after the visual tokens` };
  const last = exchanges[exchanges.length - 1]!;
  return {
    ok: true,
    example: {
      image,
      text: renderConversation(exchanges, chat),
      ids: enc.ids,
      lossMask: enc.lossMask,
      qa: { question: last.question, answer: last.answer, type: type ?? UNTYPED, history: exchanges.slice(0, -1) },
    },
  };
}

/** The question type of a row that names none. */
export const UNTYPED = "untyped";

export const loadConversations: SourceLoader = async (ctx) => {
  const chat = chatOf(ctx);
  const file = resolve(ctx.baseDir, ctx.call.file as string);
  const read = readConversations(file, chat);
  const unreadable = read.problems.find((p) => p.unreadable);
  if (unreadable) throw new DataError(/no such file$/.test(unreadable.message) ? `${unreadable.message}: the data file is needed to train (paths are relative to the spec)` : unreadable.message);
  const problems: RowProblem[] = read.problems.map((p) => ({ file: p.file, line: p.line, message: p.message }));
  const rows = read.rows.map((r) => ({ key: r.image, image: r.image, file, line: r.line, exchanges: r.exchanges, type: r.type }));
  return imageRowsStage(ctx, rows, problems, (row) => conversationExample(ctx, chat, row.key, row.exchanges, row.type));
};
