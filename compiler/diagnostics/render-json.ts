// Renders diagnostics as one JSON document: {"diagnostics": [...]}. Lines and columns are
// 1-based; columns count Unicode characters; the end position is exclusive (LSP-style).
import type { SourceFile, Span } from "../source.js";
import type { Diagnostic } from "./diagnostic.js";

export interface JsonRange {
  file: string;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
}

export interface JsonDiagnostic extends JsonRange {
  code: string;
  severity: string;
  message: string;
  label?: string;
  related: (JsonRange & { label: string })[];
  notes: string[];
  help: string[];
}

export function jsonRange(span: Span, sources: ReadonlyMap<string, SourceFile>, displayPath: (f: string) => string = (f) => f): JsonRange {
  const src = sources.get(span.file);
  const start = src ? src.position(span.start) : { line: 1, column: 1 };
  const end = src ? src.position(span.end) : start;
  return { file: displayPath(span.file), line: start.line, column: start.column, endLine: end.line, endColumn: end.column };
}

export function toJson(diagnostics: readonly Diagnostic[], sources: ReadonlyMap<string, SourceFile>, displayPath?: (f: string) => string): { diagnostics: JsonDiagnostic[] } {
  return {
    diagnostics: diagnostics.map((d) => ({
      code: d.code,
      severity: d.severity,
      ...jsonRange(d.span, sources, displayPath),
      message: d.message,
      ...(d.label ? { label: d.label } : {}),
      related: d.related.map((r) => ({ ...jsonRange(r.span, sources, displayPath), label: r.label })),
      notes: d.notes,
      help: d.help,
    })),
  };
}

export function renderJson(diagnostics: readonly Diagnostic[], sources: ReadonlyMap<string, SourceFile>, displayPath?: (f: string) => string): string {
  return `${JSON.stringify(toJson(diagnostics, sources, displayPath), null, 2)}\n`;
}
