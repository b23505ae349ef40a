// Spans for the diagnostics of `vlmc compile --emit ts` when the model came from a spec: the IR
// only keeps each layer's `span` as line and column in its file (relative to the IR's folder),
// so a path into the IR is turned back into an offset range of the spec's SourceFile. (An IR
// document read from disk has its own locator, compiler/ir/locate.ts.)
import { resolve } from "node:path";
import type { IrPath } from "../ir/locate.js";
import type { Ir, IrSpan } from "../ir/types.js";
import type { SourceFile, Span } from "../source.js";

/** The span of the innermost value on `path` that has one (the layer, its module, the model). */
export function specLocator(ir: Ir, sources: ReadonlyMap<string, SourceFile>, baseDir: string, fallback: string): (path: IrPath) => Span {
  const byAbsolute = new Map([...sources].map(([p, src]) => [resolve(p), src]));
  const toSpan = (s: IrSpan): Span | null => {
    const src = byAbsolute.get(resolve(baseDir, s.file));
    if (!src) return null;
    const at = (line: number, column: number) => {
      const start = src.lineStarts[line - 1] ?? src.text.length;
      // Columns count code points; offsets count UTF-16 units.
      let offset = start;
      for (let c = 1; c < column && offset < src.text.length; c++) offset += src.text.codePointAt(offset)! > 0xffff ? 2 : 1;
      return offset;
    };
    return src.span(at(s.line, s.column), at(s.endLine, s.endColumn));
  };
  return (path) => {
    let node: unknown = ir;
    let best: IrSpan | undefined = ir.span;
    for (const seg of path) {
      node = node && typeof node === "object" ? (node as Record<string | number, unknown>)[seg] : undefined;
      const span = node && typeof node === "object" ? (node as { span?: IrSpan }).span : undefined;
      if (span) best = span;
    }
    return (best && toSpan(best)) ?? { file: fallback, start: 0, end: 0 };
  };
}
