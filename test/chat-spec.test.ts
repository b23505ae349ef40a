// The `chat` section in the language: its settings and defaults, its diagnostics (E0508 a marker
// or generated data the tokenizer cannot encode, E0509 chat data without a template, E0510 an
// unusable template, and the section's own mistakes) at the right places, inheritance, and the
// template in the IR: lowered, left out of the hash, and round-tripped through JSON and YAML.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { checkSource } from "../compiler/check.js";
import { compile } from "../compiler/compile.js";
import { renderText } from "../compiler/diagnostics/render-text.js";
import { parseIr } from "../compiler/ir/validate.js";
import { irToJson, irToYaml } from "../compiler/ir/yaml.js";
import { repoPath } from "./helpers/paths.js";

const FILE = repoPath("test", "chat-spec.vlm"); // never written: the text is given

function spec(opts: { chat?: string; alphabet?: string; data?: string; stageData?: string } = {}): string {
  return `vlm 0.1

model tiny {
  tokenizer chars { alphabet: ${JSON.stringify(opts.alphabet ?? "abcdefghijklmnopqrstuvwxyz ?:\n")}, specials: [pad, bos, eos] }
${opts.chat ?? ""}
  encoder vit { image: 32 x 32 x 3, patch: 8, dim: 32, heads: 2, blocks: 1 }
  projector { linear(decoder.dim) }
  decoder gpt { dim: 32, heads: 2, layers: 1, context: 96 }
}

train {
  data: ${opts.data ?? "instruct(images: 100, size: 32, seed: 1)"}
  batch: 8

  stage tune {
    train: [encoder, projector, decoder]
    steps: 10
${opts.stageData ? `    data: ${opts.stageData}\n` : ""}  }
}
`;
}

/** `CODE@line:column` of every diagnostic, in order. */
function found(text: string): string[] {
  const r = checkSource(FILE, text);
  const src = r.sources.get(FILE)!;
  return r.diagnostics.map((d) => {
    const p = src.position(d.span.start);
    return `${d.code}@${p.line}:${p.column}`;
  });
}

function messages(text: string): string {
  const r = checkSource(FILE, text);
  return renderText(r.diagnostics, r.sources, { color: false });
}

const CHAT = `  chat {
    user: "user: "
    assistant: "assistant: "
    separator: "\\n"
    image: "<image>"
  }`;

test("a model with a chat section and instruct data checks clean; the IR records the template", () => {
  assert.deepEqual(found(spec({ chat: CHAT })), []);
  const r = compile(FILE, { text: spec({ chat: CHAT }), baseDir: repoPath("test") });
  assert.ok(r.ir, renderText(r.diagnostics, r.sources, { color: false }));
  const { span, ...chat } = r.ir.chat!;
  assert.deepEqual(chat, { user: "user: ", assistant: "assistant: ", separator: "\n", image: "<image>" });
  assert.deepEqual({ line: span!.line, column: span!.column }, { line: 5, column: 3 });
  assert.deepEqual(Object.keys(r.ir).slice(0, 5), ["vlmc_ir", "model", "hash", "tokenizer", "chat"]);
});

test("defaults, and the template is not part of the architecture's hash", () => {
  const a = compile(FILE, { text: spec({ chat: "  chat {}" }) });
  assert.ok(a.ir);
  const { span: _, ...chat } = a.ir.chat!;
  assert.deepEqual(chat, { user: "user: ", assistant: "assistant: ", separator: "\n", image: "<image>" });
  const b = compile(FILE, { text: spec({ chat: '  chat { user: "q: ", assistant: "a: " }' }) });
  assert.ok(b.ir);
  assert.equal(b.ir.chat!.user, "q: ");
  assert.equal(a.ir.hash, b.ir.hash);
  // A model without chat data may have no template: the IR has no `chat` then.
  const none = compile(FILE, { text: spec({ data: "shapes(images: 100, size: 32, seed: 1)" }) });
  assert.ok(none.ir);
  assert.equal("chat" in none.ir, false);
  assert.equal(none.ir.hash, a.ir.hash);
});

test("E0508: a marker character outside the alphabet, at the character; an escape: the whole string", () => {
  assert.deepEqual(found(spec({ chat: '  chat { user: "user: ", assistant: "Bot: " }' })), ["E0508@5:38"]);
  assert.match(messages(spec({ chat: '  chat { user: "user: ", assistant: "Bot: " }' })), /the tokenizer cannot encode the chat template's `assistant`: "B" is not in its alphabet/);
  // The default separator "\n" with an alphabet without a newline: reported at the section.
  const noNewline = spec({ chat: "  chat {}", alphabet: "abcdefghijklmnopqrstuvwxyz ?:" });
  assert.deepEqual(found(noNewline), ["E0508@5:3"]);
  assert.match(messages(noNewline), /the default `separator`, "\\n"/);
  // Written with an escape, the string's characters are not where its value's are: the whole string.
  assert.deepEqual(found(spec({ chat: '  chat { separator: "\\t" }' })), ["E0508@5:21"]);
  // The image placeholder is never encoded: its characters need not be in the alphabet.
  assert.deepEqual(found(spec({ chat: '  chat { image: "<IMG>" }' })), []);
});

test("E0508: generated instruct data the tokenizer cannot encode, at the data source", () => {
  const text = spec({ chat: '  chat { user: "u:", assistant: "a:" }', alphabet: "abcdefghijklmnopqrstuvwxyz:\n" });
  assert.deepEqual(found(text), ["E0508@12:9"]);
  assert.match(messages(text), /the tokenizer cannot encode the `instruct` data: " ", "\?" are not in its alphabet/);
  // With `unk`, every character encodes.
  assert.deepEqual(found(text.replace("specials: [pad, bos, eos]", "specials: [pad, bos, eos, unk]")), []);
});

test("E0509: chat data without a template, in train or in a stage; E0510: an unusable template", () => {
  assert.deepEqual(found(spec()), ["E0509@12:9"]);
  assert.deepEqual(found(spec({ data: "shapes(images: 100, size: 32, seed: 1)", stageData: "instruct(images: 100, size: 32, seed: 2)" })), ["E0509@18:11"]);
  assert.deepEqual(found(spec({ chat: '  chat { image: "" }' })), ["E0510@5:17"]);
  assert.deepEqual(found(spec({ chat: '  chat { user: "x: ", assistant: "x: ", separator: "" }' })), ["E0510@5:34", "E0510@5:52"]);
  // A failed template is reported once, not again as missing.
  assert.ok(!found(spec({ chat: '  chat { separator: "" }' })).includes("E0509@12:9"));
});

test("the section's own mistakes: unknown settings, a kind, layers, wrong types", () => {
  assert.deepEqual(found(spec({ chat: '  chat { seperator: "\\n" }' })), ["E0202@5:10"]);
  assert.match(messages(spec({ chat: '  chat { seperator: "\\n" }' })), /`chat` has no setting `seperator`[\s\S]*did you mean `separator`\?/);
  assert.deepEqual(found(spec({ chat: "  chat llava {}" })), ["E0213@5:8"]);
  assert.deepEqual(found(spec({ chat: "  chat { linear(4) }" })), ["E0213@5:10"]);
  assert.deepEqual(found(spec({ chat: "  chat { user: 3 }" })), ["E0401@5:16"]);
});

test("inheritance: a derived model overrides one marker", () => {
  const text = `${spec({ chat: CHAT })}
model tiny2 extends tiny {
  chat.assistant: "bot: "
}
`;
  const r = compile(FILE, { text });
  assert.ok(r.ir, renderText(r.diagnostics, r.sources, { color: false }));
  assert.equal(r.ir.model, "tiny2");
  assert.equal(r.ir.chat!.assistant, "bot: ");
  assert.equal(r.ir.chat!.user, "user: ");
});

test("IR round trip: JSON and YAML read back equal, the schema checks the template", () => {
  const r = compile(FILE, { text: spec({ chat: CHAT }), baseDir: repoPath("test") });
  assert.ok(r.ir);
  const path = join(repoPath("test"), "chat.ir");
  for (const [ext, text] of [
    ["json", irToJson(r.ir)],
    ["yaml", irToYaml(r.ir)],
  ] as const) {
    const back = parseIr(`${path}.${ext}`, text);
    assert.deepEqual(back.diagnostics, [], renderText(back.diagnostics, back.sources, { color: false }));
    assert.deepEqual(back.ir, JSON.parse(JSON.stringify(r.ir)), ext);
  }
  assert.match(irToYaml(r.ir), /separator: "\\n"/);
  const bad = JSON.parse(irToJson(r.ir));
  bad.chat.separator = "";
  const rejected = parseIr(`${path}.json`, JSON.stringify(bad, null, 2));
  assert.equal(rejected.ir, null);
  assert.deepEqual(
    rejected.diagnostics.map((d) => d.code),
    ["E0601"],
  );
  delete bad.chat;
  assert.ok(parseIr(`${path}.json`, JSON.stringify(bad, null, 2)).ir, "a document without `chat` is valid");
});
