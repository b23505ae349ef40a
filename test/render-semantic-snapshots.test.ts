// What users read for the checks of meaning (names, shapes, settings, training): the text
// rendering of representative semantic diagnostics, compared with reviewed snapshots in
// test/snapshots/semantic-*.txt. Each case is a small, otherwise clean model with one mistake,
// so that the snapshot shows exactly the diagnostic it is about: its primary span (on the
// setting to change), the related spans (where the other value comes from) and the help.
// After an intended change to a message, run `UPDATE_SNAPSHOTS=1 npm test` and review the diff.
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkSource } from "../compiler/check.js";
import { renderText } from "../compiler/diagnostics/render-text.js";
import { matchSnapshot, sourceThenRendering } from "./helpers/snapshot.js";

const PATH = "specs/tiny.vlm";

const TOKENIZER = `  tokenizer chars { alphabet: "abcdefghijklmnopqrstuvwxyz .", specials: [pad] }`;
const ENCODER = `  encoder vit { image: 32 x 32 x 3, patch: 8, dim: 64, heads: 4, blocks: 2 }`;
const PROJECTOR = `  projector { linear(256) -> gelu -> linear(decoder.dim) }`;
const DECODER = `  decoder gpt { dim: 64, heads: 4, layers: 2, context: 64 }`;

/** A stage that trains every module (so that W0501 stays quiet unless a case wants it). */
const TRAIN = `train {
  data: shapes(images: 500, size: 32, seed: 1)
  batch: 8

  stage all {
    train: [encoder, projector, decoder]
    optimizer: adam(lr: 3e-4)
    steps: 200
  }
}
`;

/** A model of the four sections, each replaceable, and a train section. */
function spec(parts: { tokenizer?: string; encoder?: string; projector?: string; decoder?: string; train?: string }): string {
  return `vlm 0.1

model tiny {
${parts.tokenizer ?? TOKENIZER}
${parts.encoder ?? ENCODER}
${parts.projector ?? PROJECTOR}
${parts.decoder ?? DECODER}
}

${parts.train ?? TRAIN}`;
}

/** The source, then what `vlmc check` prints for it (colourless), as one reviewable text. */
function renderCase(source: string, codes: string[]): string {
  const result = checkSource(PATH, source);
  assert.deepEqual(
    result.diagnostics.map((d) => d.code),
    codes,
    `the case should report exactly ${codes.join(", ")}:\n${renderText(result.diagnostics, result.sources, { color: false })}`,
  );
  return sourceThenRendering(PATH, source, renderText(result.diagnostics, result.sources, { color: false }));
}

const cases: Record<string, { source: string; codes: string[] }> = {
  // The projector's last layer against the decoder's width: both spans, and both fixes.
  "semantic-projector-decoder-width": {
    source: spec({
      projector: `  projector {
    linear(256) -> gelu -> linear(128)
  }`,
      decoder: `  decoder gpt {
    dim: 64
    heads: 4
    layers: 2
    context: 64
  }`,
    }),
    codes: ["E0305"],
  },
  // Heads that do not divide the width: the head count marked, the width as related span.
  "semantic-heads-not-dividing-width": {
    source: spec({
      decoder: `  decoder gpt {
    dim: 64
    heads: 6
    layers: 2
    context: 64
  }`,
    }),
    codes: ["E0302"],
  },
  // An image the patch size does not divide: the patch sizes that fit.
  "semantic-image-not-divisible-by-patch": {
    source: spec({
      encoder: `  encoder vit {
    image: 30 x 30 x 3
    patch: 8
    dim: 64
    heads: 4
    blocks: 2
  }`,
    }),
    codes: ["E0301"],
  },
  // A misspelt setting: the closest name is suggested.
  "semantic-unknown-setting": {
    source: spec({
      decoder: `  decoder gpt {
    dim: 64
    heads: 4
    layers: 2
    context: 64
    dropuot: 0.1
  }`,
    }),
    codes: ["E0202"],
  },
  // A misspelt required setting: the missing one and the unknown one point at each other.
  "semantic-misspelt-required-setting": {
    source: spec({
      decoder: `  decoder gpt {
    dim: 64
    heads: 4
    layer: 2
    context: 64
  }`,
    }),
    codes: ["E0210", "E0202"],
  },
  // 64 patch tokens in front of the text, in a context of 64: the related span is the setting
  // the token count comes from.
  "semantic-context-too-small": {
    source: spec({
      encoder: `  encoder vit {
    image: 32 x 32 x 3
    patch: 4
    dim: 64
    heads: 4
    blocks: 2
    output: patches
  }`,
      decoder: `  decoder gpt {
    dim: 64
    heads: 4
    layers: 2
    context: 64
  }`,
    }),
    codes: ["E0306"],
  },
  // A restated vocabulary that disagrees with the tokenizer: the tokenizer's count, explained.
  "semantic-vocab-mismatch": {
    source: spec({
      tokenizer: `  tokenizer chars {
    alphabet: "abcdefghijklmnopqrstuvwxyz ."
    specials: [pad, bos, eos]
  }`,
      decoder: `  decoder gpt {
    vocab: 29
    dim: 64
    heads: 4
    layers: 2
    context: 64
  }`,
    }),
    codes: ["E0307"],
  },
  // The encoder is frozen in both stages and has no weights: a warning on the encoder.
  "semantic-module-never-trained": {
    source: spec({
      train: `train {
  data: shapes(images: 500, size: 32, seed: 1)
  batch: 8

  stage align {
    train: [projector]
    steps: 100
  }
  stage tune {
    train: [projector, decoder]
    steps: 200
  }
}
`,
    }),
    codes: ["W0501"],
  },
};

for (const [name, { source, codes }] of Object.entries(cases)) {
  test(`semantic text rendering: ${name}`, () => {
    matchSnapshot(name, renderCase(source, codes));
  });
}

test("three independent semantic mistakes in three sections are all reported", () => {
  const source = spec({
    encoder: `  encoder vit { image: 30 x 30 x 3, patch: 8, dim: 64, heads: 4, blocks: 2 }`,
    decoder: `  decoder gpt { dim: 64, heads: 6, layers: 2, context: 64 }`,
    train: TRAIN.replace("[encoder, projector, decoder]", "[encoder, projecter, decoder]"),
  });
  const result = checkSource(PATH, source);
  assert.deepEqual(
    result.diagnostics.map((d) => d.code),
    ["E0301", "E0302", "E0501"],
  );
});

test("absurd sizes are reported at once, without building anything of that size", () => {
  const sizes: [string, string, string[]][] = [
    // `1e9` is out of range for a repeat count before anything is repeated.
    ["repeat 1e9", spec({ projector: `  projector { repeat 1e9 { linear(256) -> gelu } -> linear(decoder.dim) }` }), ["E0402"]],
    // 2^53: the largest exact number, far past any width.
    ["dim 2^53", spec({ decoder: `  decoder gpt { dim: 9007199254740992, heads: 4, layers: 2, context: 64 }` }), ["E0402"]],
    // A million layers by nested repeats: expansion stops at the limit.
    ["nested repeats", spec({ projector: `  projector { repeat 1000 { repeat 1000 { linear(64) } } -> linear(decoder.dim) }` }), ["E0311"]],
  ];
  for (const [what, source, codes] of sizes) {
    const start = performance.now();
    const result = checkSource(PATH, source);
    const ms = performance.now() - start;
    assert.deepEqual(
      result.diagnostics.map((d) => d.code),
      codes,
      what,
    );
    assert.ok(ms < 5000, `${what}: took ${Math.round(ms)} ms`);
  }
});
