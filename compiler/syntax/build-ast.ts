// Stage 3: concrete syntax tree -> typed AST with spans. Numbers and strings are decoded here
// (malformed numbers and bad escapes become diagnostics). Works on trees the parser recovered,
// filling holes with `Missing` nodes, so that the caller can still report on a broken file.
import type { CstNode, IToken } from "chevrotain";
import { diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { SourceFile, Span } from "../source.js";
import type * as A from "./ast.js";
import { parser } from "./parser.js";

type Children = Record<string, (CstNode | IToken)[] | undefined>;

const BaseVisitor = parser.getBaseCstVisitorConstructor();

class AstBuilder extends BaseVisitor {
  readonly diagnostics: Diagnostic[] = [];

  constructor(readonly src: SourceFile) {
    super();
    this.validateVisitor();
  }

  // ---- helpers ----
  private tokSpan(t: IToken): Span {
    return this.src.span(t.startOffset, t.startOffset + t.image.length);
  }
  /** From the first to the last of the given tokens that exist (recovery may drop some). */
  private between(first: IToken | undefined, last: IToken | undefined, fallback: Span): Span {
    if (!first && !last) return fallback;
    const a = first ?? last!;
    const b = last ?? first!;
    return this.src.span(a.startOffset, b.startOffset + b.image.length);
  }
  private get eofSpan(): Span {
    return this.src.span(this.src.text.length, this.src.text.length);
  }
  private tokens(c: Children, key: string): IToken[] {
    return (c[key] ?? []).filter((t): t is IToken => "image" in t && !Number.isNaN(t.startOffset) && t.isInsertedInRecovery !== true);
  }
  private nodes(c: Children, key: string): CstNode[] {
    return (c[key] ?? []).filter((n): n is CstNode => "children" in n);
  }
  private ident(t: IToken | undefined, fallback: Span): A.Ident {
    return t ? { kind: "Ident", name: t.image, span: this.tokSpan(t) } : { kind: "Ident", name: "", span: fallback };
  }
  private exprOf(c: Children, key: string, fallback: Span): A.Expr {
    const n = this.nodes(c, key)[0];
    return n ? (this.visit(n) as A.Expr) : { kind: "Missing", span: fallback };
  }

  // ---- top level ----
  file(c: Children): A.File {
    const versionNode = this.nodes(c, "versionDecl")[0];
    const items = this.nodes(c, "topItem")
      .map((n) => this.visit(n) as A.TopItem | null)
      .filter((x): x is A.TopItem => x !== null);
    return {
      kind: "File",
      path: this.src.path,
      ...(versionNode ? { version: this.visit(versionNode) as A.Version } : {}),
      items,
      span: this.src.span(0, this.src.text.length),
    };
  }
  versionDecl(c: Children): A.Version {
    const kw = this.tokens(c, "Vlm")[0];
    const num = this.tokens(c, "Number")[0];
    const span = num ? this.tokSpan(num) : kw ? this.tokSpan(kw) : this.src.span(0, 0);
    return { kind: "Version", text: num?.image ?? "", span };
  }
  topItem(c: Children): A.TopItem | null {
    for (const key of ["useDecl", "letDecl", "blockDef", "modelDecl", "section"]) {
      const n = this.nodes(c, key)[0];
      if (n) return this.visit(n) as A.TopItem;
    }
    return null; // a separator
  }
  separator(): null {
    return null;
  }
  useDecl(c: Children): A.Use {
    const s = this.tokens(c, "String")[0];
    const kw = this.tokens(c, "Use")[0]!;
    const fallback = this.tokSpan(kw);
    const path: A.StringLit = s ? this.stringLit(s) : { kind: "String", value: "", span: fallback };
    return { kind: "Use", path, span: this.between(kw, s, fallback) };
  }
  letDecl(c: Children): A.Let {
    const kw = this.tokens(c, "Let")[0]!;
    const name = this.ident(this.tokens(c, "Identifier")[0], this.tokSpan(kw));
    const value = this.exprOf(c, "expr", name.span);
    return { kind: "Let", name, value, span: { ...name.span, start: this.tokSpan(kw).start, end: Math.max(name.span.end, value.span.end) } };
  }
  blockDef(c: Children): A.BlockDef {
    const kw = this.tokSpan(this.tokens(c, "Block")[0]!);
    const name = this.ident(this.tokens(c, "Identifier")[0], kw);
    const params = this.nodes(c, "param").map((n) => this.visit(n) as A.Param);
    const body = this.bodyOf(c, kw);
    return { kind: "BlockDef", name, params, body, span: { ...kw, end: body.span.end } };
  }
  param(c: Children): A.Param {
    const tok = this.tokens(c, "Identifier")[0];
    const name = this.ident(tok, this.src.span(0, 0));
    const def = this.nodes(c, "expr")[0];
    return { name, ...(def ? { default: this.visit(def) as A.Expr } : {}), span: def ? { ...name.span, end: (this.visit(def) as A.Expr).span.end } : name.span };
  }
  modelDecl(c: Children): A.ModelDecl {
    const kw = this.tokSpan(this.tokens(c, "Model")[0]!);
    const ids = this.tokens(c, "Identifier");
    const name = this.ident(ids[0], kw);
    const body = this.bodyOf(c, kw);
    return { kind: "Model", name, ...(ids[1] ? { base: this.ident(ids[1], kw) } : {}), body, span: { ...kw, end: body.span.end } };
  }
  section(c: Children): A.Section {
    const ids = this.tokens(c, "Identifier");
    const first = ids[0] ? this.tokSpan(ids[0]) : this.src.span(0, 0);
    const body = this.bodyOf(c, first);
    return {
      kind: "Section",
      name: this.ident(ids[0], first),
      ...(ids[1] ? { label: this.ident(ids[1], first) } : {}),
      body,
      span: { ...first, end: Math.max(first.end, body.span.end) },
    };
  }
  private bodyOf(c: Children, fallback: Span): A.Body {
    const n = this.nodes(c, "body")[0];
    return n ? (this.visit(n) as A.Body) : { entries: [], span: fallback };
  }
  body(c: Children): A.Body {
    const entries = this.nodes(c, "entry")
      .map((n) => this.visit(n) as A.Entry | null)
      .filter((e): e is A.Entry => e !== null);
    const open = this.tokens(c, "LCurly")[0];
    const close = this.tokens(c, "RCurly")[0];
    const start = open ? open.startOffset : entries.length ? entries[0]!.span.start : this.src.text.length;
    const end = close ? close.startOffset + 1 : entries.length ? entries[entries.length - 1]!.span.end : start;
    return { entries, span: this.src.span(start, end) };
  }
  entry(c: Children): A.Entry | null {
    for (const key of ["letDecl", "setting", "section", "chain"]) {
      const n = this.nodes(c, key)[0];
      if (n) return this.visit(n) as A.Entry;
    }
    return null;
  }
  setting(c: Children): A.Setting {
    const ids = this.tokens(c, "Identifier");
    const first = ids[0] ? this.tokSpan(ids[0]) : this.src.span(0, 0);
    const path = ids.map((t) => this.ident(t, first));
    const value = this.exprOf(c, "expr", first);
    return { kind: "Setting", path, value, span: { ...first, end: Math.max(first.end, value.span.end) } };
  }
  chain(c: Children): A.Entry {
    const items = this.nodes(c, "item").map((n) => this.visit(n) as A.ChainItem);
    const span = items.length ? { ...items[0]!.span, end: items[items.length - 1]!.span.end } : this.src.span(0, 0);
    // A lone `name { ... }` is a section (`projector { ... }`, `residual { ... }`).
    const only = items[0];
    if (items.length === 1 && only!.kind === "Layer" && only.body && !only.args) {
      return { kind: "Section", name: only.name, body: only.body, span: only.span };
    }
    return { kind: "Chain", items, span };
  }
  item(c: Children): A.ChainItem {
    const rep = this.tokens(c, "Repeat")[0];
    if (rep) {
      const rs = this.tokSpan(rep);
      const body = this.bodyOf(c, rs);
      return { kind: "Repeat", count: this.exprOf(c, "expr", rs), body, span: { ...rs, end: body.span.end } };
    }
    const idTok = this.tokens(c, "Identifier")[0];
    const fallback = this.src.span(this.src.text.length, this.src.text.length);
    const name = this.ident(idTok, fallback);
    const argsNode = this.nodes(c, "args")[0];
    const args = argsNode ? (this.visit(argsNode) as { args: A.Arg[]; span: Span }) : undefined;
    const bodyNode = this.nodes(c, "body")[0];
    const body = bodyNode ? (this.visit(bodyNode) as A.Body) : undefined;
    const end = body ? body.span.end : args ? args.span.end : name.span.end;
    return { kind: "Layer", name, ...(args ? { args: args.args } : {}), ...(body ? { body } : {}), span: { ...name.span, end } };
  }
  args(c: Children): { args: A.Arg[]; span: Span } {
    const args = this.nodes(c, "arg").map((n) => this.visit(n) as A.Arg);
    const fallback = args.length ? { ...args[0]!.span, end: args[args.length - 1]!.span.end } : this.eofSpan;
    return { args, span: this.between(this.tokens(c, "LParen")[0], this.tokens(c, "RParen")[0], fallback) };
  }
  arg(c: Children): A.Arg {
    const id = this.tokens(c, "Identifier")[0];
    const value = this.exprOf(c, "expr", id ? this.tokSpan(id) : this.src.span(0, 0));
    const name = id ? this.ident(id, value.span) : undefined;
    return { ...(name ? { name } : {}), value, span: name ? { ...name.span, end: Math.max(name.span.end, value.span.end) } : value.span };
  }

  // ---- expressions ----
  /** Operators in source order, then precedence climbing: `x` < `+ -` < `* / %`. */
  expr(c: Children): A.Expr {
    const operands = this.nodes(c, "unary").map((n) => this.visit(n) as A.Expr);
    if (operands.length === 0) return { kind: "Missing", span: this.src.span(0, 0) };
    const ops = (["Cross", "Plus", "Minus", "Star", "Slash", "Percent"] as const)
      .flatMap((k) => this.tokens(c, k))
      .sort((a, b) => a.startOffset - b.startOffset)
      .map((t) => (t.tokenType.name === "Cross" ? "x" : t.image));
    if (operands.length === 1) return operands[0]!;
    // Split on `x` first (loosest), then fold each part by precedence.
    const dims: A.Expr[] = [];
    let part: A.Expr[] = [operands[0]!];
    let partOps: string[] = [];
    for (let i = 0; i < ops.length && i + 1 < operands.length; i++) {
      if (ops[i] === "x") {
        dims.push(foldArithmetic(part, partOps));
        part = [operands[i + 1]!];
        partOps = [];
      } else {
        part.push(operands[i + 1]!);
        partOps.push(ops[i]!);
      }
    }
    dims.push(foldArithmetic(part, partOps));
    if (dims.length === 1) return dims[0]!;
    return { kind: "Dims", dims, span: { ...dims[0]!.span, end: dims[dims.length - 1]!.span.end } };
  }
  unary(c: Children): A.Expr {
    const operand = this.exprOf(c, "primary", this.src.span(0, 0));
    const minuses = this.tokens(c, "Minus");
    let e = operand;
    for (let i = minuses.length - 1; i >= 0; i--) {
      e = { kind: "Negate", operand: e, span: { ...e.span, start: minuses[i]!.startOffset } };
    }
    return e;
  }
  primary(c: Children): A.Expr {
    const fallback = this.eofSpan;
    const num = this.tokens(c, "Number")[0];
    if (num) return this.numberLit(num);
    const str = this.tokens(c, "String")[0];
    if (str) return this.stringLit(str);
    const t = this.tokens(c, "True")[0] ?? this.tokens(c, "False")[0];
    if (t) return { kind: "Bool", value: t.image === "true", span: this.tokSpan(t) };
    const ids = this.tokens(c, "Identifier");
    if (ids.length > 0) {
      const path = ids.map((t) => this.ident(t, fallback));
      const ref: A.Ref = { kind: "Ref", path, span: { ...path[0]!.span, end: path[path.length - 1]!.span.end } };
      const argsNode = this.nodes(c, "args")[0];
      if (!argsNode) return ref;
      const args = this.visit(argsNode) as { args: A.Arg[]; span: Span };
      return { kind: "Call", callee: ref, args: args.args, span: { ...ref.span, end: Math.max(ref.span.end, args.span.end) } };
    }
    const list = this.nodes(c, "list")[0];
    if (list) return this.visit(list) as A.Expr;
    const inner = this.nodes(c, "expr")[0];
    if (inner) {
      // A group: its span takes in the parentheses, so that `(a + b) / 2` starts at `(`.
      const e = this.visit(inner) as A.Expr;
      return { ...e, span: this.between(this.tokens(c, "LParen")[0], this.tokens(c, "RParen")[0], e.span) };
    }
    return { kind: "Missing", span: fallback };
  }
  list(c: Children): A.List {
    const items = this.nodes(c, "expr").map((n) => this.visit(n) as A.Expr);
    const fallback = items.length ? { ...items[0]!.span, end: items[items.length - 1]!.span.end } : this.eofSpan;
    return { kind: "List", items, span: this.between(this.tokens(c, "LBracket")[0], this.tokens(c, "RBracket")[0], fallback) };
  }

  // ---- literals ----
  numberLit(t: IToken): A.Expr {
    const span = this.tokSpan(t);
    const text = t.image;
    if (INTEGER.test(text)) return { kind: "Number", value: Number(text.replace(/_/g, "")), text, integer: true, span };
    if (DECIMAL.test(text)) {
      return { kind: "Number", value: Number(text.replace(/_/g, "")), text, integer: false, span };
    }
    if (/^[0-9]+(?:x[0-9]+)+$/.test(text) && !/^0x/.test(text)) {
      let at = span.start;
      const dims: A.Expr[] = text.split("x").map((part) => {
        const s = this.src.span(at, at + part.length);
        at += part.length + 1;
        return { kind: "Number", value: Number(part), text: part, integer: true, span: s };
      });
      return { kind: "Dims", dims, span };
    }
    this.diagnostics.push(
      diagnostic("E0008", span, `malformed number \`${text}\``, {
        label: "not a number",
        help: [malformedHelp(text)],
      }),
    );
    return { kind: "Missing", span };
  }
  stringLit(t: IToken): A.StringLit {
    const span = this.tokSpan(t);
    const raw = t.image;
    const closed = STRING.test(raw);
    const inner = raw.slice(1, closed ? -1 : undefined);
    let value = "";
    for (let i = 0; i < inner.length; i++) {
      const ch = inner[i]!;
      if (ch !== "\\") {
        value += ch;
        continue;
      }
      const next = inner[i + 1];
      const escStart = span.start + 1 + i;
      const simple: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\", '"': '"', "0": "\0" };
      if (next !== undefined && simple[next] !== undefined) {
        value += simple[next];
        i++;
        continue;
      }
      const m = next === "u" ? /^u\{([0-9A-Fa-f]{1,6})\}/.exec(inner.slice(i + 1)) : null;
      if (m && parseInt(m[1]!, 16) <= 0x10ffff) {
        value += String.fromCodePoint(parseInt(m[1]!, 16));
        i += m[0].length;
        continue;
      }
      // The escaped character may be astral (two UTF-16 units): `next` holds only the first.
      const len = next === undefined ? 1 : 1 + String.fromCodePoint(inner.codePointAt(i + 1)!).length;
      this.diagnostics.push(
        diagnostic("E0007", this.src.span(escStart, escStart + len), `invalid escape \`${inner.slice(i, i + len)}\` in a string`, {
          label: "unknown escape",
          help: ["valid escapes are \\n, \\t, \\r, \\\\, \\\", \\0 and \\u{hex}; write \\\\ for a backslash"],
        }),
      );
      i += len - 1;
    }
    return { kind: "String", value, span };
  }
}

const INTEGER = /^[0-9](?:_?[0-9])*$/;
const DECIMAL = /^[0-9](?:_?[0-9])*(?:\.[0-9](?:_?[0-9])*)?(?:[eE][+-]?[0-9]+)?$/;
const STRING = /^"(?:[^"\\\n\r]|\\[^\n\r])*"$/;
const PRECEDENCE: Record<string, number> = { "+": 1, "-": 1, "*": 2, "/": 2, "%": 2 };

/** Folds `a op b op c ...` with `* / %` binding tighter than `+ -`, all left-associative. */
function foldArithmetic(operands: A.Expr[], ops: string[]): A.Expr {
  const out: A.Expr[] = [];
  const stack: string[] = [];
  const reduce = () => {
    const op = stack.pop()!;
    const right = out.pop()!;
    const left = out.pop()!;
    out.push({ kind: "Binary", op: op as A.BinaryOp, left, right, span: { ...left.span, end: right.span.end } });
  };
  out.push(operands[0]!);
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    while (stack.length && PRECEDENCE[stack[stack.length - 1]!]! >= PRECEDENCE[op]!) reduce();
    stack.push(op);
    out.push(operands[i + 1]!);
  }
  while (stack.length) reduce();
  return out[0]!;
}

function malformedHelp(text: string): string {
  if (/^[0-9]+\.$/.test(text)) return `write \`${text}0\` or \`${text.slice(0, -1)}\``;
  if (/^0[xX]/.test(text)) return "hexadecimal numbers are not supported; write the decimal value";
  if (/^[0-9]+[A-Za-z_]/.test(text)) {
    const m = /^([0-9]+)([A-Za-z_][A-Za-z0-9_]*)$/.exec(text);
    return m ? `names cannot start with a digit; if you meant a product, write \`${m[1]} * ${m[2]}\`` : "names cannot start with a digit";
  }
  return "numbers look like `128`, `0.1`, `1e-3` or `1_000`";
}

export function buildAst(cst: CstNode, src: SourceFile): { file: A.File; diagnostics: Diagnostic[] } {
  const builder = new AstBuilder(src);
  const file = builder.visit(cst) as A.File;
  return { file, diagnostics: builder.diagnostics };
}
