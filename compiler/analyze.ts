// The semantic pipeline over one entry file: load the program (the file and what it `use`s),
// then analyse every model the entry file declares. Runs only on files that parsed cleanly.
import { sortDiagnostics, type Diagnostic } from "./diagnostics/diagnostic.js";
import { loadProgram, modelsOf, modelSyntax, type Program, type ReadFile } from "./resolve/program.js";
import { ModelAnalysis, type AnalyzedModel } from "./shape/model.js";

export interface Analysis {
  program: Program;
  /** Every model of the entry file, in order; the last is the entry model. */
  models: AnalyzedModel[];
  diagnostics: Diagnostic[];
}

export function analyze(entry: string, input?: Uint8Array | string, read?: ReadFile): Analysis {
  const program = loadProgram(entry, input, read);
  const diags: Diagnostic[] = [...program.diagnostics];
  const models: AnalyzedModel[] = [];
  if (!program.syntaxFailed) {
    for (const decl of modelsOf(program, entry)) {
      const syntax = modelSyntax(program, decl.name.name, diags);
      if (!syntax) continue;
      models.push(new ModelAnalysis(program, syntax, diags).analyze());
    }
  }
  return { program, models, diagnostics: dedupe(diags) };
}

/** A base model's mistake is found again in each model that extends it: report it once. */
function dedupe(diags: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  for (const d of sortDiagnostics(diags)) {
    const key = `${d.code}\0${d.span.file}\0${d.span.start}\0${d.span.end}\0${d.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(d);
  }
  return out;
}
