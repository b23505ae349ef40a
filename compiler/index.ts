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
