// Constant evaluation of expressions: arithmetic, references, lists, dims, calls. Names are
// looked up through a chain of environments (block parameters, `let`s, the settings of the
// enclosing section, the model); `a.b` asks the model for member `b` of section `a`. A bare
// name found nowhere is a symbol (an enum member such as `cls`); a consumer that needed a
// number reports it as an unknown name, with a suggestion.
import { diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { Span } from "../source.js";
import type * as A from "../syntax/ast.js";
import { didYouMean } from "./suggest.js";
import { describeValue, formatNumber, type Value } from "./values.js";

export interface Binding {
  expr: A.Expr;
  env: Env;
  /** Where the name was defined (for "defined here" notes). */
  span: Span;
  value?: Value | null;
  evaluating?: boolean;
}

export class Env {
  readonly names = new Map<string, Binding>();
  /** Searched after the parent chain: the constants of files this one `use`s. */
  readonly imports: Env[] = [];
  constructor(
    readonly parent: Env | null,
    /** Resolves `section.member` references and module names; shared by a model's envs. */
    readonly model: ModelScope | null,
  ) {}

  lookup(name: string): Binding | undefined {
    for (let e: Env | null = this; e; e = e.parent) {
      const b = e.names.get(name);
      if (b) return b;
    }
    for (let e: Env | null = this; e; e = e.parent) {
      for (const imp of e.imports) {
        const b = imp.names.get(name);
        if (b) return b;
      }
    }
    return undefined;
  }

  visibleNames(): string[] {
    const out = new Set<string>();
    for (let e: Env | null = this; e; e = e.parent) {
      for (const k of e.names.keys()) out.add(k);
      for (const imp of e.imports) for (const k of imp.names.keys()) out.add(k);
    }
    return [...out];
  }

  child(): Env {
    return new Env(this, this.model);
  }
}

export interface ModelScope {
  /** Is `name` a module (section) of the model? */
  hasSection(name: string): boolean;
  /** The value of `section.member`, or null after reporting why not. */
  member(section: A.Ident, member: A.Ident, at: Span, ev: Evaluator): Value | null;
}

/** How a bare name should be read where the consumer knows what it wants. */
export type Hint = "value" | "symbol" | "module";

const MAX_DEPTH = 200;
const MAX_MAGNITUDE = 2 ** 53;

export class Evaluator {
  private depth = 0;
  constructor(readonly diags: Diagnostic[]) {}

  /** Evaluates a binding once (memoised), reporting reference cycles. */
  binding(name: A.Ident, b: Binding): Value | null {
    if (b.value !== undefined) return b.value;
    if (b.evaluating) {
      this.diags.push(
        diagnostic("E0204", name.span, `\`${name.name}\` depends on itself`, {
          label: "this reference is part of a cycle",
          related: [{ span: b.span, label: `\`${name.name}\` is defined here` }],
          help: ["give one of the values in the cycle a literal value"],
        }),
      );
      return null;
    }
    b.evaluating = true;
    const v = this.eval(b.expr, b.env);
    b.evaluating = false;
    b.value = v;
    return v;
  }

  eval(e: A.Expr, env: Env, hint: Hint = "value"): Value | null {
    if (++this.depth > MAX_DEPTH) {
      this.depth--;
      this.diags.push(diagnostic("E0402", e.span, "expression is too deeply nested", { help: ["split it with `let` constants"] }));
      return null;
    }
    try {
      return this.evalInner(e, env, hint);
    } finally {
      this.depth--;
    }
  }

  private evalInner(e: A.Expr, env: Env, hint: Hint): Value | null {
    switch (e.kind) {
      case "Number":
        return this.checkMagnitude({ kind: "number", value: e.value, integer: e.integer && Number.isInteger(e.value), span: e.span });
      case "String":
        return { kind: "string", value: e.value, span: e.span };
      case "Bool":
        return { kind: "bool", value: e.value, span: e.span };
      case "Missing":
        return null;
      case "List": {
        const items: Value[] = [];
        let ok = true;
        for (const it of e.items) {
          const v = this.eval(it, env, hint);
          if (v) items.push(v);
          else ok = false;
        }
        return ok ? { kind: "list", items, span: e.span } : null;
      }
      case "Dims": {
        const dims: number[] = [];
        for (const d of e.dims) {
          const v = this.eval(d, env);
          if (!v) return null;
          const n = this.expectInteger(v, "a dimension", env);
          if (n === null) return null;
          dims.push(n);
        }
        return { kind: "dims", dims, span: e.span };
      }
      case "Negate": {
        const v = this.eval(e.operand, env);
        if (!v) return null;
        if (v.kind !== "number") return this.typeError(v, "a number", "`-` applies to numbers", env);
        return { kind: "number", value: -v.value, integer: v.integer, span: e.span };
      }
      case "Binary":
        return this.binary(e, env);
      case "Ref":
        return this.ref(e, env, hint);
      case "Call": {
        const name = e.callee.path.map((p) => p.name).join(".");
        const positional: Value[] = [];
        const named = new Map<string, { value: Value; nameSpan: Span }>();
        let ok = true;
        for (const a of e.args) {
          const v = this.eval(a.value, env, "value");
          if (!v) {
            ok = false;
            continue;
          }
          if (a.name) {
            if (named.has(a.name.name)) {
              this.diags.push(
                diagnostic("E0205", a.name.span, `argument \`${a.name.name}\` is given twice`, {
                  related: [{ span: named.get(a.name.name)!.nameSpan, label: "first given here" }],
                  help: ["remove one of them"],
                }),
              );
              ok = false;
            } else named.set(a.name.name, { value: v, nameSpan: a.name.span });
          } else positional.push(v);
        }
        return ok ? { kind: "call", name, positional, named, span: e.span } : null;
      }
    }
  }

  private ref(e: A.Ref, env: Env, hint: Hint): Value | null {
    const [first, ...rest] = e.path;
    if (!first) return null;
    if (rest.length === 0) {
      if (hint === "symbol") return { kind: "symbol", name: first.name, span: e.span };
      const b = env.lookup(first.name);
      if (b) {
        const v = this.binding(first, b);
        return v ? { ...v, span: e.span } as Value : null;
      }
      if (env.model?.hasSection(first.name)) return { kind: "module", name: first.name, span: e.span };
      return { kind: "symbol", name: first.name, span: e.span };
    }
    if (rest.length === 1 && env.model?.hasSection(first.name)) {
      const v = env.model.member(first, rest[0]!, e.span, this);
      return v ? ({ ...v, span: e.span } as Value) : null;
    }
    if (env.model && !env.model.hasSection(first.name)) {
      this.diags.push(
        diagnostic("E0201", first.span, `unknown name \`${first.name}\``, {
          label: "not a section of this model",
          help: [...didYouMean(first.name, ["tokenizer", "encoder", "projector", "decoder", "chat", "train"]), "references look like `encoder.dim` or `tokenizer.size`"],
        }),
      );
      return null;
    }
    this.diags.push(diagnostic("E0201", e.span, `cannot resolve \`${e.path.map((p) => p.name).join(".")}\``, { help: ["references look like `encoder.dim` or `tokenizer.size`"] }));
    return null;
  }

  private binary(e: A.Binary, env: Env): Value | null {
    const l = this.eval(e.left, env);
    const r = this.eval(e.right, env);
    if (!l || !r) return null;
    if (e.op === "+" && l.kind === "string" && r.kind === "string") return { kind: "string", value: l.value + r.value, span: e.span };
    if (l.kind !== "number") return this.typeError(l, "a number", `\`${e.op}\` applies to numbers`, env);
    if (r.kind !== "number") return this.typeError(r, "a number", `\`${e.op}\` applies to numbers`, env);
    let value: number;
    switch (e.op) {
      case "+":
        value = l.value + r.value;
        break;
      case "-":
        value = l.value - r.value;
        break;
      case "*":
        value = l.value * r.value;
        break;
      case "/":
      case "%":
        if (r.value === 0) {
          this.diags.push(
            diagnostic("E0404", e.right.span, "division by zero", {
              label: "this is 0",
              help: ["check the values this expression uses"],
            }),
          );
          return null;
        }
        value = e.op === "/" ? l.value / r.value : l.value % r.value;
        break;
    }
    const integer = l.integer && r.integer && Number.isInteger(value);
    return this.checkMagnitude({ kind: "number", value, integer, span: e.span });
  }

  private checkMagnitude(v: Extract<Value, { kind: "number" }>): Value | null {
    if (!Number.isFinite(v.value) || Math.abs(v.value) > MAX_MAGNITUDE) {
      this.diags.push(
        diagnostic("E0402", v.span, "number is too large", {
          label: `larger than 2^53`,
          help: ["no setting of a model needs a number this large"],
        }),
      );
      return null;
    }
    return v;
  }

  /** Reports a symbol where a value was needed as an unknown name, or a wrong type. */
  typeError(v: Value, expected: string, why?: string, env?: Env): null {
    if (v.kind === "symbol") {
      const wantsString = expected.startsWith("a string");
      this.diags.push(
        diagnostic("E0201", v.span, `unknown name \`${v.name}\``, {
          label: `expected ${expected}`,
          help: [...(env ? didYouMean(v.name, env.visibleNames()) : []), ...(wantsString ? [`strings are written in double quotes: \`"${v.name}"\``] : [])],
        }),
      );
      return null;
    }
    // A number in quotes where a number is wanted: say how to write it.
    const unquoted = v.kind === "string" && /^(an integer|a number)/.test(expected) && /^\s*-?\d[\d_]*(\.\d+)?([eE][-+]?\d+)?\s*$/.test(v.value);
    this.diags.push(
      diagnostic("E0401", v.span, `expected ${expected}, found ${describeValue(v)}`, {
        label: `this is ${describeValue(v)}`,
        ...(why ? { notes: [why] } : {}),
        ...(unquoted ? { help: [`write the number without quotes: \`${(v as { value: string }).value.trim()}\``] } : {}),
      }),
    );
    return null;
  }

  expectInteger(v: Value, what: string, env?: Env): number | null {
    if (v.kind !== "number") return this.typeError(v, `an integer for ${what}`, undefined, env);
    if (!v.integer) {
      const whole = Number.isInteger(v.value);
      this.diags.push(
        diagnostic("E0403", v.span, `${what} must be an integer, found ${formatNumber(v.value)}${whole ? " written as a decimal" : ""}`, {
          label: whole ? "written with `.` or an exponent" : "not an integer",
          help: [whole ? `write \`${formatNumber(v.value)}\`: a number written with \`.\` or \`e\` is not an integer, even when it is whole` : "dimensions and counts are whole numbers; check the arithmetic"],
        }),
      );
      return null;
    }
    return v.value;
  }
}
