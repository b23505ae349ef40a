// Bracket structure, checked on the token stream before parsing: an unclosed `{` is reported
// at the `{` (with the place the file ended), a stray or mismatched closer at itself, and
// nesting beyond MAX_DEPTH stops the file before a deep parse could exhaust the stack.
import type { IToken } from "chevrotain";
import { diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { SourceFile } from "../source.js";

export const MAX_DEPTH = 64;
/** More than the front end shows per file anyway (it caps at 100 errors). */
const MAX_REPORTED = 101;

const closerOf: Record<string, string> = { "{": "}", "(": ")", "[": "]" };

export interface BracketResult {
  diagnostics: Diagnostic[];
  /** Offset of the first bracket error, where parser errors stop being trustworthy. */
  firstErrorOffset: number;
  /** True when nesting exceeded MAX_DEPTH: the file must not be parsed. */
  tooDeep: boolean;
}

export function checkBrackets(tokens: IToken[], src: SourceFile): BracketResult {
  const stack: IToken[] = [];
  const diagnostics: Diagnostic[] = [];
  const report = (d: Diagnostic) => {
    if (diagnostics.length <= MAX_REPORTED) diagnostics.push(d);
  };
  let firstErrorOffset = Infinity;
  const span = (t: IToken) => src.span(t.startOffset, t.startOffset + t.image.length);
  for (const t of tokens) {
    const img = t.image;
    if (img === "{" || img === "(" || img === "[") {
      if (t.tokenType.name === "String") continue;
      stack.push(t);
      if (stack.length > MAX_DEPTH) {
        diagnostics.push(
          diagnostic("E0104", span(t), `brackets nested more than ${MAX_DEPTH} deep`, {
            label: `nesting level ${MAX_DEPTH + 1} starts here`,
            help: ["no spec needs this much nesting; name intermediate values with `let`"],
          }),
        );
        return { diagnostics, firstErrorOffset: Math.min(firstErrorOffset, t.startOffset), tooDeep: true };
      }
    } else if (img === "}" || img === ")" || img === "]") {
      const open = stack[stack.length - 1];
      if (open && closerOf[open.image] === img) {
        stack.pop();
        continue;
      }
      firstErrorOffset = Math.min(firstErrorOffset, t.startOffset);
      if (open && stack.some((o) => closerOf[o.image] === img)) {
        // A closer for an outer bracket: the inner one was never closed.
        report(
          diagnostic("E0103", span(t), `mismatched closing delimiter \`${img}\``, {
            label: `expected \`${closerOf[open.image]}\` first`,
            related: [{ span: span(open), label: `this \`${open.image}\` is not closed` }],
            help: [`add \`${closerOf[open.image]}\` before this \`${img}\``],
          }),
        );
        while (stack.length && closerOf[stack[stack.length - 1]!.image] !== img) stack.pop();
        stack.pop();
      } else {
        report(
          diagnostic("E0103", span(t), `unexpected closing delimiter \`${img}\``, {
            label: open ? `the innermost open bracket is \`${open.image}\`` : "nothing is open here",
            ...(open ? { related: [{ span: span(open), label: `this \`${open.image}\` is still open` }] } : {}),
            help: ["delete it, or add the bracket it was meant to close"],
          }),
        );
      }
    }
  }
  if (stack.length > 0) {
    const end = src.span(src.text.length, src.text.length);
    // Report the outermost unclosed bracket: closing it usually closes the inner ones too.
    const open = stack[0]!;
    firstErrorOffset = Math.min(firstErrorOffset, src.text.length);
    diagnostics.push(
      diagnostic("E0102", span(open), `this \`${open.image}\` is never closed`, {
        label: `unclosed \`${open.image}\``,
        related: [{ span: end, label: `the file ends here; expected \`${closerOf[open.image]}\`` }],
        help: [`add \`${closerOf[open.image]}\` where the ${open.image === "{" ? "block" : "bracket"} should end`],
        ...(stack.length > 1 ? { notes: [`${stack.length - 1} more bracket(s) inside it are also unclosed`] } : {}),
      }),
    );
  }
  return { diagnostics, firstErrorOffset, tooDeep: false };
}
