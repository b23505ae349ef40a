// What users read: the text (and JSON) rendering of representative diagnostics, compared with
// reviewed snapshots in test/snapshots/. After an intended change to a message or the layout,
// run `UPDATE_SNAPSHOTS=1 npm test` and review the diff of the snapshot files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkSource } from "../compiler/check.js";
import { renderJson } from "../compiler/diagnostics/render-json.js";
import { renderText } from "../compiler/diagnostics/render-text.js";
import { matchSnapshot, sourceThenRendering } from "./helpers/snapshot.js";

const PATH = "specs/tiny.vlm";

/** The source, then what `vlmc check` prints for it (colourless), as one reviewable text. */
function renderCase(source: string): string {
  const result = checkSource(PATH, source);
  assert.ok(result.diagnostics.length > 0, "the case reports nothing");
  return sourceThenRendering(PATH, source, renderText(result.diagnostics, result.sources, { color: false }));
}

const cases: Record<string, string> = {
  "missing-colon": `vlm 0.1

model tiny {
  decoder gpt {
    heads 8
    dim: 128
  }
}
`,
  // The `{` of the model is never closed: the related span marks where the file ends.
  "unclosed-brace": `vlm 0.1

model tiny {
  encoder vit {
    image: 32 x 32 x 3
    patch: 8
  }

  decoder gpt {
    dim: 64
    heads: 4
  }
`,
  "mismatched-delimiter": `vlm 0.1

model tiny {
  projector {
    linear(256) -> gelu -> linear(64
  }
}
`,
  "malformed-number": `vlm 0.1

model tiny {
  decoder gpt {
    dropout: 0.1.5
    mlp: 4dim
    lr: 3.
  }
}
`,
  "unterminated-string": `vlm 0.1

model tiny {
  tokenizer chars {
    alphabet: "abcdefghijklmnopqrstuvwxyz
  }
}
`,
  // A line far wider than the window shown: elided with `...` on both sides.
  "long-line": `vlm 0.1

model tiny {
  tokenizer chars {
    specials: [${Array.from({ length: 20 }, (_, i) => `tok_${i}`).join(", ")}, 2nd_pad, ${Array.from({ length: 20 }, (_, i) => `tok_${i + 20}`).join(", ")}]
  }
}
`,
  // A stray `)` whose innermost open bracket is a `{` several lines up: `...` between them.
  "related-span-distant-line": `vlm 0.1

model tiny {
  decoder gpt {
    dim: 64
    heads: 4
    layers: 2
    context: 256
    position: learned
    dropout: 0.1)
  }
}
`,
  // The same with a single line between the two: that line is shown instead of `...`.
  "related-span-one-line-apart": `vlm 0.1

model tiny {
  decoder gpt {
    dim: 64
    heads: 4)
  }
}
`,
  // Two independent mistakes: each reported once, in order, blank line between.
  "two-errors": `vlm 0.1

model tiny {
  decoder gpt {
    heads 8
    position: 'learned'
  }
}
`,
};

for (const [name, source] of Object.entries(cases)) {
  test(`text rendering: ${name}`, () => {
    matchSnapshot(name, renderCase(source));
  });
}

test("text rendering has no colour when colour is off", () => {
  const result = checkSource(PATH, cases["unclosed-brace"]!);
  assert.doesNotMatch(renderText(result.diagnostics, result.sources, { color: false }), /\u001b\[/);
});

test("JSON rendering: unclosed-brace", () => {
  const result = checkSource(PATH, cases["unclosed-brace"]!);
  const json = renderJson(result.diagnostics, result.sources);
  JSON.parse(json);
  matchSnapshot("unclosed-brace.json", json);
});
