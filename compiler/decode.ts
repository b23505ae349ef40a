// Stage 0: bytes -> text. A .vlm file is UTF-8 without BOM. Whatever else a readable file
// holds (binary data, invalid UTF-8, NUL bytes, a BOM, bidi controls) becomes a diagnostic,
// never an exception. The text handed to the lexer has the offending characters blanked to
// spaces (same length), so positions stay true and nothing is reported twice.
import { diagnostic, type Diagnostic } from "./diagnostics/diagnostic.js";
import { isBidiControl } from "./diagnostics/render-text.js";
import { SourceFile } from "./source.js";

export interface Decoded {
  source: SourceFile;
  /** The text for the lexer: `source.text` with reported characters blanked. */
  lexText: string;
  diagnostics: Diagnostic[];
  /** The file is not text at all; do not parse it. */
  binary: boolean;
}

const fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lossy = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

export function decode(path: string, input: Uint8Array | string): Decoded {
  let text: string;
  let lossyDecoded = false;
  if (typeof input === "string") text = input;
  else {
    try {
      text = fatal.decode(input);
    } catch {
      // WHATWG decoding replaces each invalid sequence by one U+FFFD; those mark the errors.
      text = lossy.decode(input);
      lossyDecoded = true;
    }
  }
  const invalid = lossyDecoded ? findAll(text, "\uFFFD") : { first: -1, count: 0, positions: [] };
  const source = new SourceFile(path, text);
  const diagnostics: Diagnostic[] = [];
  const blank = new Set<number>(invalid.positions);

  const nuls = findAll(text, "\0");
  const bad = invalid.count + nuls.count;
  const binary = bad >= 8 && bad * 100 >= text.length;
  const atLeast = (n: number) => (n >= FIND_LIMIT ? `at least ${n}` : String(n));

  if (invalid.count > 0) {
    const at = invalid.first;
    diagnostics.push(
      diagnostic("E0001", source.span(at, at + 1), binary ? "this file is not text (invalid UTF-8)" : "invalid UTF-8 in the file", {
        label: "this byte sequence is not UTF-8",
        ...(invalid.count > 1 ? { notes: [`${atLeast(invalid.count)} invalid sequences in all`] } : {}),
        help: [binary ? "check that you passed a .vlm file" : "save the file as UTF-8"],
      }),
    );
  }
  if (nuls.count > 0) {
    const at = nuls.first;
    diagnostics.push(
      diagnostic("E0002", source.span(at, at + 1), binary ? "this file is not text (it contains NUL bytes)" : "NUL byte in the file", {
        label: "NUL (0x00)",
        ...(nuls.count > 1 ? { notes: [`${atLeast(nuls.count)} NUL bytes in all`] } : {}),
        help: ["check that you passed a .vlm file"],
      }),
    );
    for (const n of nuls.positions) blank.add(n);
  }
  if (binary) return { source, lexText: "", diagnostics, binary };

  if (text.charCodeAt(0) === 0xfeff) {
    diagnostics.push(
      diagnostic("E0003", source.span(0, 1), "the file starts with a byte-order mark", {
        label: "U+FEFF",
        help: ["save the file as UTF-8 without BOM"],
      }),
    );
    blank.add(0);
  }
  let bidiCount = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x0600 && isBidiControl(c)) {
      blank.add(i);
      if (++bidiCount <= 10) {
        diagnostics.push(
          diagnostic("E0004", source.span(i, i + 1), `bidirectional control character U+${c.toString(16).toUpperCase().padStart(4, "0")}`, {
            label: "invisible; may reorder how this line is displayed",
            help: ["delete it"],
          }),
        );
      }
    }
  }
  let lexText = text;
  if (blank.size > 0) {
    const chars = text.split("");
    for (const i of blank) chars[i] = " ";
    lexText = chars.join("");
  }
  return { source, lexText, diagnostics, binary };
}

const FIND_LIMIT = 100_000;

/** Offsets of `ch` in `text`, counting at most FIND_LIMIT. */
function findAll(text: string, ch: string): { first: number; count: number; positions: number[] } {
  const positions: number[] = [];
  for (let i = text.indexOf(ch); i !== -1 && positions.length < FIND_LIMIT; i = text.indexOf(ch, i + 1)) positions.push(i);
  return { first: positions[0] ?? -1, count: positions.length, positions };
}
