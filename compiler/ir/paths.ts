// File paths inside an IR document. Every path in the IR is relative to the folder of the
// document itself (with `/` separators), so the document means the same wherever it is
// written: pretrained `weights` (a module's file, a `tfjs_model` layer's folder), data files
// (`file` of a data source) and the `file` of every `span`. Moving a document means re-basing
// them (`rebaseIr`).
import { isAbsolute, resolve } from "node:path";
import { relPath } from "./lower.js";
import type { Ir, IrCall, IrLayer } from "./types.js";

/** The absolute file a path of an IR document names; `baseDir` is the document's folder. */
export function resolveIrPath(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

/** Visits every path of the document, replacing each with what `f` returns. Mutates `ir`. */
export function mapIrPaths(ir: Ir, f: (p: string) => string): Ir {
  for (const m of Object.values(ir.modules)) if (m && typeof m.weights === "string") m.weights = f(m.weights);
  if (ir.tokenizer?.kind === "hf") ir.tokenizer.file = f(ir.tokenizer.file);
  // A pretrained tfjs encoder's folder: the `weights` of its `tfjs_model` layer.
  const layers = (ls: IrLayer[]): void => {
    for (const l of ls) {
      if (l.kind === "tfjs_model" && typeof l.attrs.weights === "string") l.attrs.weights = f(l.attrs.weights);
      if (l.children) layers(l.children);
    }
  };
  for (const m of Object.values(ir.modules)) if (m) layers(m.layers);
  const data = (c: IrCall | undefined): void => {
    if (c && typeof c.file === "string") c.file = f(c.file);
    else if (c && c.file && typeof c.file === "object" && !Array.isArray(c.file)) data(c.file as IrCall); // text(captions("..."))
  };
  if (ir.train) {
    data(ir.train.data);
    for (const s of ir.train.stages) data(s.data);
  }
  const spans = (v: unknown, key: string | undefined): void => {
    if (Array.isArray(v)) for (const x of v) spans(x, undefined);
    else if (v && typeof v === "object") {
      const o = v as Record<string, unknown>;
      if (key === "span" && typeof o.file === "string") {
        o.file = f(o.file);
        return;
      }
      for (const [k, x] of Object.entries(o)) spans(x, k);
    }
  };
  spans(ir, undefined);
  return ir;
}

/** A copy of `ir` whose paths, relative to `fromDir`, are made relative to `toDir`. */
export function rebaseIr(ir: Ir, fromDir: string, toDir: string): Ir {
  const copy = JSON.parse(JSON.stringify(ir)) as Ir;
  const from = resolve(fromDir);
  const to = resolve(toDir);
  if (from === to) return copy;
  return mapIrPaths(copy, (p) => relPath(to, resolveIrPath(from, p)));
}
