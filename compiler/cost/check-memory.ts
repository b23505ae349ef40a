// W0502 for `vlmc check`: each analysed model with a `train` section is lowered to its IR and
// estimated at its stages' own batches; a stage whose step would not fit the wasm heap gets the
// warning at its name. Runs only on a file without errors (shapes must be known), and costs a
// walk over the layers per stage: nothing is allocated for real.
import { resolve } from "node:path";
import type { Analysis } from "../analyze.js";
import { hasErrors, type Diagnostic } from "../diagnostics/diagnostic.js";
import { lower } from "../ir/lower.js";
import type { SourceFile } from "../source.js";
import { estimate, memoryWarnings } from "./estimate.js";

export function memoryDiagnostics(a: Analysis): Diagnostic[] {
  if (hasErrors(a.diagnostics)) return [];
  const sources = new Map<string, SourceFile>();
  for (const [p, parsed] of a.program.files) sources.set(p, parsed.source);
  const out: Diagnostic[] = [];
  for (const m of a.models) {
    if (!m.train || m.train.stages.length === 0) continue;
    try {
      const est = estimate(lower(m, { baseDir: resolve("."), sources }));
      out.push(...memoryWarnings(est, (_, i) => m.train!.stages[i]?.span ?? null));
    } catch {
      // An estimate that cannot be made (a shape it cannot evaluate) is no reason to fail `check`.
    }
  }
  return out;
}
