// The chat template at run time: how a conversation (LLaVA's `{"from": "human"|"gpt", "value"}`
// turns) becomes the decoder's text and token ids, and which of those tokens the loss counts.
// Training (runtime/data/sources/conversations.ts, instruct.ts), evaluation (runtime/eval/) and
// generation (`vlmc generate --prompt`) all format text here and nowhere else, so that a prompt at
// generation time is token for token the prefix the model was trained on. Pure functions, no tfjs.
//
// The layout, for a template { user, assistant, separator }:
//
//   [bos] user question separator assistant ANSWER SEPARATOR user question ... ANSWER SEPARATOR [EOS]
//
// Only the capitalised parts count in the loss: each answer, the separator that ends it, and eos.
// The visual tokens are not in the text at all: the model's `join` puts them in front of the whole
// sequence, so the image placeholder (`<image>`, and the newline LLaVA writes after it) is taken
// out of the text, and is only accepted at the start of the first question (one image a row).
//
// Ids are made segment by segment (marker, question, separator, ...), each encoded on its own and
// concatenated, never by encoding the rendered string at once: with a subword tokenizer a marker
// and the word after it could otherwise merge into one token, and the answer's first token would
// then depend on the question. For a `chars` tokenizer both ways give the same ids.

/** The `chat` section of a spec (the IR's `chat`): role markers, separator, image placeholder. */
export interface ChatTemplate {
  /** Written before each human turn (the question). */
  user: string;
  /** Written before each answer; a prompt ends with it. */
  assistant: string;
  /** Ends every turn; a generated answer ends at its first separator. */
  separator: string;
  /** The placeholder for the image in the data, removed from the text. */
  image: string;
}

/** One turn of a conversation as LLaVA writes it. */
export interface Turn {
  from: string;
  value: string;
}

/** A question and its answer, placeholder removed. */
export interface Exchange {
  question: string;
  answer: string;
}

/** A piece of rendered text, and whether its tokens count in the loss. */
export interface Segment {
  text: string;
  loss: boolean;
  /** What it is, for messages: "question 1", "the `user` marker", ... */
  what: string;
}

/** What the encoding needs of a tokenizer (the `chars` tokenizer and any other kind). */
export interface ChatTokenizer {
  encode(text: string, options?: { bos?: boolean; eos?: boolean }): { ok: true; ids: Int32Array } | { ok: false; error: { message: string } };
  readonly bos: number | null;
  readonly eos: number | null;
}

export type Checked<T> = ({ ok: true } & T) | { ok: false; message: string };

const HUMAN = "human";
const GPT = "gpt";

/**
 * LLaVA turns as exchanges: turns alternate human, gpt, human, gpt, ..., starting with a human turn
 * and ending with an answer; no answer is empty. The image placeholder may only start the first
 * question (it and one newline after it are removed) and appear once; `hasImage` says whether the
 * row has an image (a placeholder without one is a mistake).
 */
export function toExchanges(turns: readonly Turn[], chat: ChatTemplate, hasImage: boolean): Checked<{ exchanges: Exchange[]; placeholder: boolean }> {
  if (turns.length === 0) return { ok: false, message: "the conversation has no turns" };
  for (let i = 0; i < turns.length; i++) {
    const want = i % 2 === 0 ? HUMAN : GPT;
    if (turns[i]!.from !== want) {
      return { ok: false, message: `turn ${i + 1} is from ${JSON.stringify(turns[i]!.from)}, expected ${JSON.stringify(want)} (turns alternate "human", "gpt", starting with "human")` };
    }
  }
  if (turns.length % 2 === 1) return { ok: false, message: turns.length === 1 ? 'no "gpt" turn: there is no answer to learn' : `the last turn (${turns.length}) is a question with no answer` };
  let placeholders = 0;
  for (const t of turns) placeholders += count(t.value, chat.image);
  const first = turns[0]!.value;
  if (placeholders > 1) return { ok: false, message: `${JSON.stringify(chat.image)} appears ${placeholders} times; a row has one image, placed once at the start of the first question` };
  if (placeholders === 1 && !first.startsWith(chat.image)) {
    const turn = turns.findIndex((t) => t.value.includes(chat.image)) + 1;
    return { ok: false, message: `${JSON.stringify(chat.image)} must start the first question (found it in turn ${turn}${turn === 1 ? ` at character ${first.indexOf(chat.image) + 1}` : ""}): the image goes in front of the whole conversation` };
  }
  if (placeholders === 1 && !hasImage) return { ok: false, message: `the first question holds ${JSON.stringify(chat.image)}, but the row names no image` };
  const exchanges: Exchange[] = [];
  for (let i = 0; i < turns.length; i += 2) {
    let question = turns[i]!.value;
    if (i === 0 && placeholders === 1) {
      question = question.slice(chat.image.length);
      if (question.startsWith("\r\n")) question = question.slice(2);
      else if (question.startsWith("\n")) question = question.slice(1);
    }
    const answer = turns[i + 1]!.value;
    if (answer.trim() === "") return { ok: false, message: `turn ${i + 2} (an answer) is empty` };
    exchanges.push({ question, answer });
  }
  return { ok: true, exchanges, placeholder: placeholders === 1 };
}

function count(s: string, sub: string): number {
  if (sub === "") return 0;
  let n = 0;
  for (let at = s.indexOf(sub); at >= 0; at = s.indexOf(sub, at + sub.length)) n++;
  return n;
}

/** The question part of an exchange: marker, question, separator, assistant marker (no loss). */
function promptPart(question: string, chat: ChatTemplate, k: number): Segment[] {
  return [
    { text: chat.user, loss: false, what: "the chat template's `user` marker" },
    { text: question, loss: false, what: `question ${k}` },
    { text: chat.separator, loss: false, what: "the chat template's `separator`" },
    { text: chat.assistant, loss: false, what: "the chat template's `assistant` marker" },
  ];
}

/** A whole conversation as segments: every question part, then its answer and separator (in the loss). */
export function conversationSegments(exchanges: readonly Exchange[], chat: ChatTemplate): Segment[] {
  return exchanges.flatMap((e, i) => [
    ...promptPart(e.question, chat, i + 1),
    { text: e.answer, loss: true, what: `answer ${i + 1}` },
    { text: chat.separator, loss: true, what: "the chat template's `separator`" },
  ]);
}

/** The segments of a prompt: earlier exchanges (`history`), then the question, up to and including the assistant marker. */
export function promptSegments(question: string, chat: ChatTemplate, history: readonly Exchange[] = []): Segment[] {
  return [...conversationSegments(history, chat), ...promptPart(question, chat, history.length + 1)];
}

/** A conversation as text, as training renders it (without bos and eos, which are tokens, not text). */
export function renderConversation(exchanges: readonly Exchange[], chat: ChatTemplate): string {
  return conversationSegments(exchanges, chat)
    .map((s) => s.text)
    .join("");
}

/**
 * The text a model is prompted with to answer `question` (after `history`): everything training
 * put before an answer, up to and including the assistant marker. What follows it is the answer.
 */
export function renderPrompt(question: string, chat: ChatTemplate, history: readonly Exchange[] = []): string {
  return promptSegments(question, chat, history)
    .map((s) => s.text)
    .join("");
}

function encodeSegments(segments: readonly Segment[], tokenizer: ChatTokenizer, end: boolean): Checked<{ ids: Int32Array; lossMask: Uint8Array }> {
  const ids: number[] = [];
  const mask: number[] = [];
  if (tokenizer.bos !== null) {
    ids.push(tokenizer.bos);
    mask.push(0); // the first input, never a target
  }
  for (const s of segments) {
    if (s.text === "") continue;
    const r = tokenizer.encode(s.text, { bos: false, eos: false });
    if (!r.ok) return { ok: false, message: `${s.what}: ${r.error.message}` };
    for (const id of r.ids) {
      ids.push(id);
      mask.push(s.loss ? 1 : 0);
    }
  }
  if (end && tokenizer.eos !== null) {
    ids.push(tokenizer.eos);
    mask.push(1); // ending the last answer is learnt with it
  }
  return { ok: true, ids: Int32Array.from(ids), lossMask: Uint8Array.from(mask) };
}

/**
 * A conversation's token ids (bos, the segments, eos; bos and eos when the tokenizer has them) and
 * its loss mask: `lossMask[j]` is 1 when token j is a target the loss counts (an answer's tokens,
 * the separator after each answer, eos), 0 otherwise (bos, markers, questions).
 */
export function encodeConversation(exchanges: readonly Exchange[], chat: ChatTemplate, tokenizer: ChatTokenizer): Checked<{ ids: Int32Array; lossMask: Uint8Array }> {
  return encodeSegments(conversationSegments(exchanges, chat), tokenizer, true);
}

/** A prompt's token ids: exactly the ids `encodeConversation` puts before the answer to `question`. */
export function encodePrompt(question: string, chat: ChatTemplate, tokenizer: ChatTokenizer, history: readonly Exchange[] = []): Checked<{ ids: Int32Array }> {
  const r = encodeSegments(promptSegments(question, chat, history), tokenizer, false);
  return r.ok ? { ok: true, ids: r.ids } : r;
}

/** A generated continuation of a prompt cut to its answer: up to the first separator, trimmed. */
export function answerOf(generated: string, chat: ChatTemplate): string {
  const end = chat.separator === "" ? -1 : generated.indexOf(chat.separator);
  return (end >= 0 ? generated.slice(0, end) : generated).trim();
}
