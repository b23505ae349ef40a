// `compile`: a spec -> the IR of its entry model (the last model the file declares, or the one
// named), with every diagnostic of the way.
import { resolve } from "node:path";
import { analyze } from "./analyze.js";
import { hasErrors, diagnostic, type Diagnostic } from "./diagnostics/diagnostic.js";
import { lower } from "./ir/lower.js";
import type { Ir } from "./ir/types.js";
import type { SourceFile } from "./source.js";

export interface CompileOptions {
  /** Which model of the file; default: the last one declared. */
  model?: string;
  /** The folder the IR will be written to (paths in it are relative to it); default: cwd. */
  baseDir?: string;
  /** Source text instead of reading `path`. */
  text?: string | Uint8Array;
}

export interface CompileResult {
  ir: Ir | null;
  diagnostics: Diagnostic[];
  sources: Map<string, SourceFile>;
}

export function compile(path: string, options: CompileOptions = {}): CompileResult {
  const a = analyze(path, options.text);
  const sources = new Map<string, SourceFile>();
  for (const [p, parsed] of a.program.files) sources.set(p, parsed.source);
  const diagnostics = [...a.diagnostics];
  if (hasErrors(diagnostics)) return { ir: null, diagnostics, sources };
  const model = options.model ? a.models.find((m) => m.name === options.model) : a.models[a.models.length - 1];
  if (!model) {
    const src = sources.get(path);
    diagnostics.push(
      diagnostic("E0212", src ? src.span(0, 0) : { file: path, start: 0, end: 0 }, options.model ? `no model named \`${options.model}\` in this file` : "this file declares no model", {
        help: options.model ? [`models here: ${a.models.map((m) => m.name).join(", ") || "none"}`] : ["declare `model NAME { ... }`"],
      }),
    );
    return { ir: null, diagnostics, sources };
  }
  const ir = lower(model, { baseDir: resolve(options.baseDir ?? process.cwd()), sources });
  return { ir, diagnostics, sources };
}
