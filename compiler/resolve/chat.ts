// The `chat` section: the template that writes instruction data (LLaVA-style conversations) out
// for the decoder, `user` question `separator` `assistant` answer `separator` ... (runtime/chat.ts
// applies it; the IR records it so that a run, and generation after it, format text exactly as
// training did). Checked here: the markers are usable (a separator to end answers at, a
// placeholder to find), the tokenizer can encode them, and data that needs a template has one.
import { diagnostic } from "../diagnostics/diagnostic.js";
import type { Span } from "../source.js";
import type { ModelAnalysis } from "../shape/model.js";
import { CharTokenizer } from "../../runtime/tokenizer.js";
import { INSTRUCT_ALPHABET } from "../../runtime/data/instruct.js";
import type { Schema, SectionReader } from "./section.js";
import type { TokenizerInfo } from "./tokenizer.js";
import type { TrainInfo } from "./train.js";
import { str, type TypedCall } from "./types.js";

export const chatSettings: Schema = {
  user: { type: str, default: "user: ", doc: "the role marker written before each human turn (the question)" },
  assistant: { type: str, default: "assistant: ", doc: "the role marker written before each answer; a prompt at generation time ends with it" },
  separator: { type: str, default: "\n", doc: "ends every turn, questions and answers; a generated answer ends at its first separator" },
  image: { type: str, default: "<image>", doc: "the image placeholder of the data (LLaVA's `<image>`): allowed only at the start of the first question, and removed with the newline after it, since the image's tokens go in front of the whole text" },
};

export const chatSection = {
  doc: "How instruction data (`conversations(...)`, `instruct(...)`) is written out for the decoder: each exchange as `user` question `separator` `assistant` answer `separator`, then `eos`, after the image's tokens. The loss counts only the answers, with the separator (or `eos`) that ends each. `vlmc train` records the template in the run's IR, and prompts at generation time are the same text up to the `assistant` marker.",
  settings: chatSettings,
};

/** Data sources written out with the chat template. */
export const CHAT_SOURCES: readonly string[] = ["conversations", "instruct"];

/** The characters each generated chat source writes (for the tokenizer check). */
const GENERATED_TEXT: Record<string, string> = { instruct: INSTRUCT_ALPHABET };

export interface ChatInfo {
  user: string;
  assistant: string;
  separator: string;
  image: string;
  /** The whole section, as the tokenizer's. */
  span: Span;
}

/**
 * Reads and checks the model's `chat` section (null when it has none or it failed, reported),
 * and checks the training data against it.
 */
export function analyzeChat(a: ModelAnalysis, tokenizer: TokenizerInfo | null, train: TrainInfo | null): ChatInfo | null {
  const chat = a.hasSection("chat") ? readChat(a.reader("chat")!, tokenizer) : null;
  if (train) checkChatData(a, tokenizer, chat, train);
  return chat;
}

function readChat(r: SectionReader, tokenizer: TokenizerInfo | null): ChatInfo | null {
  const head = (r.syntax.label ?? r.syntax.name).span;
  if (r.syntax.label) {
    r.diags.push(diagnostic("E0213", r.syntax.label.span, "the `chat` section takes no kind", { label: "not a kind", help: ["write `chat { user: ..., assistant: ..., separator: ..., image: ... }`"] }));
  }
  for (const l of r.syntax.layers) {
    r.diags.push(diagnostic("E0213", l.span, "a layer chain cannot stand in `chat`", { label: "`chat` takes settings only", help: ["layers belong to the `encoder`, `projector` or `decoder`"] }));
  }
  r.readAll();
  const [user, assistant, separator, image] = ["user", "assistant", "separator", "image"].map((k) => r.get(k) as string | null);
  if (user == null || assistant == null || separator == null || image == null) return null;
  const v = { user, assistant, separator, image };
  let ok = true;
  for (const key of ["separator", "image"] as const) {
    if (v[key] !== "") continue;
    ok = false;
    r.diags.push(
      diagnostic("E0510", r.span(key), `the chat template's \`${key}\` is empty`, {
        label: "empty",
        help: [key === "separator" ? 'a generated answer ends at the separator: give one, e.g. `separator: "\\n"`' : 'the placeholder is how a row says where its image goes: give one, e.g. `image: "<image>"`'],
      }),
    );
  }
  if (v.user === v.assistant) {
    ok = false;
    r.diags.push(
      diagnostic("E0510", r.span("assistant"), `the chat template's \`user\` and \`assistant\` markers are the same (${JSON.stringify(v.user)})`, {
        label: "the same as `user`",
        related: [{ span: r.span("user"), label: "`user` marker" }],
        help: ["the model can only tell a question from an answer by its marker: make them differ"],
      }),
    );
  }
  if (tokenizer?.kind === "chars") {
    const tok = new CharTokenizer({ alphabet: tokenizer.alphabet, specials: tokenizer.specials });
    for (const key of ["user", "assistant", "separator"] as const) {
      const got = tok.encode(v[key], { bos: false, eos: false });
      if (got.ok || got.error.code !== "unknown-char") continue;
      ok = false;
      const { char, offset } = got.error;
      r.diags.push(
        diagnostic("E0508", charSpan(r, key, v[key], offset, char) ?? head, `the tokenizer cannot encode the chat template's \`${key}\`: ${JSON.stringify(char)} is not in its alphabet`, {
          label: r.has(key) ? "not in the alphabet" : `the default \`${key}\`, ${JSON.stringify(v[key])}`,
          help: [`add ${JSON.stringify(char)} to the tokenizer's \`alphabet\`, or write a \`${key}\` of characters it has`],
        }),
      );
    }
  }
  return ok ? { user: v.user, assistant: v.assistant, separator: v.separator, image: v.image, span: r.syntax.span } : null;
}

/** The span of `char` at UTF-16 `offset` in the written string of `key`, when the literal has no escapes. */
function charSpan(r: SectionReader, key: string, value: string, offset: number, char: string): Span | undefined {
  const expr = r.syntax.settings.get(key)?.expr;
  if (!expr) return undefined;
  if (expr.kind !== "String" || expr.span.end - expr.span.start !== value.length + 2) return expr.span;
  return { ...expr.span, start: expr.span.start + 1 + offset, end: expr.span.start + 1 + offset + char.length };
}

/** Chat data without a template (E0509), and generated chat data the tokenizer cannot encode (E0508). */
function checkChatData(a: ModelAnalysis, tokenizer: TokenizerInfo | null, chat: ChatInfo | null, train: TrainInfo): void {
  const syn = a.syntax.sections.get("train");
  if (!syn) return;
  // The data calls as written: `train`'s, and each stage's own.
  const written: { call: TypedCall; span: Span }[] = [];
  const trainData = syn.settings.get("data");
  if (trainData) written.push({ call: train.data, span: trainData.expr.span });
  for (const s of train.stages) {
    const own = syn.children.get(s.name)?.settings.get("data");
    if (own) written.push({ call: s.data, span: own.expr.span });
  }
  const chatSyn = a.syntax.sections.get("chat");
  for (const { call, span } of written) {
    if (!CHAT_SOURCES.includes(call.call)) continue;
    if (!chat && !chatSyn) {
      a.diags.push(
        diagnostic("E0509", span, `\`${call.call}(...)\` data needs the model's \`chat\` section`, {
          label: "conversations need a chat template",
          help: ['add `chat { user: "user: ", assistant: "assistant: ", separator: "\\n", image: "<image>" }` to the model: it says how questions and answers are written out for the decoder'],
        }),
      );
    }
    const text = GENERATED_TEXT[call.call];
    if (text && tokenizer?.kind === "chars") {
      const have = new Set(Array.from(tokenizer.alphabet));
      const missing = Array.from(text).filter((c) => !have.has(c));
      if (missing.length && !tokenizer.specials.includes("unk")) {
        a.diags.push(
          diagnostic("E0508", span, `the tokenizer cannot encode the \`${call.call}\` data: ${missing.map((c) => JSON.stringify(c)).join(", ")} ${missing.length === 1 ? "is" : "are"} not in its alphabet`, {
            label: "its questions and answers use them",
            help: [`add ${JSON.stringify(missing.join(""))} to the tokenizer's \`alphabet\` (the data's characters: ${JSON.stringify(text)})`],
          }),
        );
      }
    }
  }
}
