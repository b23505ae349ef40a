// A diagnostic is a value: a stable code, a severity, a primary span with a label, related
// spans with labels, notes and help lines. Nothing here prints; see render-text.ts/render-json.ts.
import type { Span } from "../source.js";
import { catalogue, type Code } from "./codes.js";

export type Severity = "error" | "warning";

export interface Related {
  span: Span;
  label: string;
}

export interface Diagnostic {
  code: Code;
  severity: Severity;
  message: string;
  span: Span;
  /** Shown under the primary span's carets. */
  label?: string;
  related: Related[];
  notes: string[];
  help: string[];
}

export interface DiagnosticExtras {
  label?: string;
  related?: Related[];
  notes?: string[];
  help?: string[];
}

/** Makes a diagnostic; its severity comes from the catalogue, so a code always means one thing. */
export function diagnostic(code: Code, span: Span, message: string, extras: DiagnosticExtras = {}): Diagnostic {
  return {
    code,
    severity: catalogue[code].severity,
    message,
    span,
    ...(extras.label !== undefined ? { label: extras.label } : {}),
    related: extras.related ?? [],
    notes: extras.notes ?? [],
    help: extras.help ?? [],
  };
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === "error");
}

/** Sorted by file, then position, then code: the order every renderer uses. */
export function sortDiagnostics(diagnostics: Diagnostic[]): Diagnostic[] {
  return diagnostics.sort(
    (a, b) =>
      (a.span.file < b.span.file ? -1 : a.span.file > b.span.file ? 1 : 0) ||
      a.span.start - b.span.start ||
      (a.code < b.code ? -1 : a.code > b.code ? 1 : 0),
  );
}

/** A collector that caps how many diagnostics one file may produce. */
export class DiagnosticBag {
  readonly items: Diagnostic[] = [];
  add(d: Diagnostic): void {
    this.items.push(d);
  }
  addAll(ds: Iterable<Diagnostic>): void {
    for (const d of ds) this.items.push(d);
  }
  get hasErrors(): boolean {
    return hasErrors(this.items);
  }
}
