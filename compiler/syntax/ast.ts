// The typed syntax tree. Every node carries its source span. The tree is faithful to what was
// written: names are not resolved and nothing is evaluated (that is resolve/).
import type { Span } from "../source.js";

export interface Ident {
  kind: "Ident";
  name: string;
  span: Span;
}

// ---- expressions ----
export interface NumberLit {
  kind: "Number";
  value: number;
  /** As written, e.g. `1e-3`. */
  text: string;
  /** Written without a fraction or exponent. */
  integer: boolean;
  span: Span;
}
export interface StringLit {
  kind: "String";
  value: string;
  span: Span;
}
export interface BoolLit {
  kind: "Bool";
  value: boolean;
  span: Span;
}
/** `dim`, `encoder.dim`, `tokenizer.size` */
export interface Ref {
  kind: "Ref";
  path: Ident[];
  span: Span;
}
/** `adam(lr: 1e-3)`, `captions("a.jsonl")` */
export interface Call {
  kind: "Call";
  callee: Ref;
  args: Arg[];
  span: Span;
}
export interface List {
  kind: "List";
  items: Expr[];
  span: Span;
}
export type BinaryOp = "+" | "-" | "*" | "/" | "%";
export interface Binary {
  kind: "Binary";
  op: BinaryOp;
  left: Expr;
  right: Expr;
  span: Span;
}
export interface Negate {
  kind: "Negate";
  operand: Expr;
  span: Span;
}
/** `96 x 96 x 3` */
export interface Dims {
  kind: "Dims";
  dims: Expr[];
  span: Span;
}
/** Stands where the parser recovered from an error; never reaches semantic analysis. */
export interface Missing {
  kind: "Missing";
  span: Span;
}
export type Expr = NumberLit | StringLit | BoolLit | Ref | Call | List | Binary | Negate | Dims | Missing;

export interface Arg {
  name?: Ident;
  value: Expr;
  span: Span;
}

// ---- entries of a `{ ... }` body ----
export interface Let {
  kind: "Let";
  name: Ident;
  value: Expr;
  span: Span;
}
/** `heads: 8`, or an override `decoder.layers: 4` */
export interface Setting {
  kind: "Setting";
  path: Ident[];
  value: Expr;
  span: Span;
}
/** `encoder vit { ... }`, `projector { ... }`, `stage align { ... }`, `residual { ... }` */
export interface Section {
  kind: "Section";
  name: Ident;
  label?: Ident;
  body: Body;
  span: Span;
}
/** `linear(2048) -> gelu -> linear(128)`: layers applied in order. */
export interface Chain {
  kind: "Chain";
  items: ChainItem[];
  span: Span;
}
/** One layer of a chain: `gelu`, `linear(128)`, `residual { ... }`. */
export interface Layer {
  kind: "Layer";
  name: Ident;
  args?: Arg[];
  body?: Body;
  span: Span;
}
/** `repeat 3 { ... }` */
export interface Repeat {
  kind: "Repeat";
  count: Expr;
  body: Body;
  span: Span;
}
export type ChainItem = Layer | Repeat;
export type Entry = Let | Setting | Section | Chain;

export interface Body {
  entries: Entry[];
  span: Span;
}

// ---- top level ----
export interface Version {
  kind: "Version";
  text: string;
  span: Span;
}
export interface Use {
  kind: "Use";
  path: StringLit;
  span: Span;
}
export interface Param {
  name: Ident;
  default?: Expr;
  span: Span;
}
/** `block name(params) { ... }` */
export interface BlockDef {
  kind: "BlockDef";
  name: Ident;
  params: Param[];
  body: Body;
  span: Span;
}
/** `model name extends base { ... }` */
export interface ModelDecl {
  kind: "Model";
  name: Ident;
  base?: Ident;
  body: Body;
  span: Span;
}
export type TopItem = Use | Let | BlockDef | ModelDecl | Section;

export interface File {
  kind: "File";
  path: string;
  version?: Version;
  items: TopItem[];
  span: Span;
}
