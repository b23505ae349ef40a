// The vlmc package API. The CLI is a thin layer over these functions.
export { check, checkSource, type CheckResult } from "./check.js";
export { parseSource, LANGUAGE_VERSION, type Parsed } from "./syntax/index.js";
export type * as ast from "./syntax/ast.js";
export { diagnostic, hasErrors, type Diagnostic, type Severity, type Related } from "./diagnostics/diagnostic.js";
export { catalogue, type Code, type CodeInfo } from "./diagnostics/codes.js";
export { renderText, type TextOptions } from "./diagnostics/render-text.js";
export { renderJson, toJson, type JsonDiagnostic } from "./diagnostics/render-json.js";
export { SourceFile, type Span, type Position } from "./source.js";
export { FileError } from "./files.js";
export { compile, type CompileOptions, type CompileResult } from "./compile.js";
export { analyze, type Analysis } from "./analyze.js";
export type * from "./ir/types.js";
export { IR_VERSION } from "./ir/types.js";
export {
  estimate,
  evalDim,
  memoryWarnings,
  WASM_HEAP_BYTES,
  WASM_ACTIVATION_OVERHEAD,
  DEFAULT_TEXT_CAP,
  type Estimate,
  type EstimateOptions,
  type LayerCost,
  type ModuleCost,
  type StageCost,
  type StageModuleCost,
  type MemoryBreakdown,
  type Role,
} from "./cost/estimate.js";
export { summaryJson, renderSummary, type SummaryJson, type SummaryLayer, type SummaryModule, type SummaryStage, type TextSummaryOptions } from "./summary/summary.js";
export { admitIr, readIr, parseIr, validateIr, validateIrSchema, isIrPath, irSchema, type IrInput } from "./ir/validate.js";
export { verifyIr } from "./ir/verify.js";
export { irToJson, irToYaml } from "./ir/yaml.js";
export { rebaseIr, resolveIrPath } from "./ir/paths.js";
export type { IrLocator, IrPath } from "./ir/locate.js";
export { train, type TrainOptions, type TrainResult, type TrainEvent } from "../runtime/train/index.js";
