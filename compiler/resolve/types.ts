// Setting types and coercion: a `Value` (what was written) checked against a `Type` (what a
// setting or layer argument accepts) becomes a `Typed` plain value, or a diagnostic naming
// both what was expected and what was found.
import { diagnostic } from "../diagnostics/diagnostic.js";
import type { Span } from "../source.js";
import type { Env, Evaluator } from "./evaluate.js";
import { didYouMean } from "./suggest.js";
import { describeValue, formatNumber, type Value } from "./values.js";

/** Limits that keep every model finite: absurd values are diagnostics, not allocations. */
export const LIMITS = {
  /** Any width, length, count of tokens or vocabulary entries. */
  dim: 1 << 22,
  /** `repeat N`, `blocks`, `layers`. */
  repeat: 1024,
  /** Layers in one model after every preset, block and repeat is expanded. */
  layers: 20_000,
  /** Image height and width. */
  image: 8192,
};

export type Type =
  | { t: "int"; min?: number; max?: number }
  | { t: "float"; min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean }
  | { t: "bool" }
  | { t: "string" }
  | { t: "enum"; values: readonly string[] }
  | { t: "dims"; rank: number; max: number }
  | { t: "list"; of: Type }
  | { t: "module" }
  | { t: "call"; callees: Record<string, CallSpec> }
  | { t: "either"; of: Type[]; describe: string };

export interface ArgSpec {
  name: string;
  type: Type;
  doc: string;
  /** Absent means required. A function computes it from the other arguments. */
  default?: Typed | ((args: Record<string, Typed>) => Typed);
}

export interface CallSpec {
  doc: string;
  args: ArgSpec[];
}

export type Typed = number | string | boolean | Typed[] | TypedCall;
export interface TypedCall {
  call: string;
  args: Record<string, Typed>;
}

export const int = (min = 1, max: number = LIMITS.dim): Type => ({ t: "int", min, max });
export const float = (min?: number, max?: number, opts: { minExclusive?: boolean; maxExclusive?: boolean } = {}): Type => ({
  t: "float",
  ...(min !== undefined ? { min } : {}),
  ...(max !== undefined ? { max } : {}),
  ...opts,
});
export const bool: Type = { t: "bool" };
export const str: Type = { t: "string" };
export const oneOf = (...values: string[]): Type => ({ t: "enum", values });

export function describeType(t: Type): string {
  switch (t.t) {
    case "int":
      return "an integer";
    case "float":
      return "a number";
    case "bool":
      return "`true` or `false`";
    case "string":
      return "a string";
    case "enum":
      return `one of ${t.values.map((v) => `\`${v}\``).join(", ")}`;
    case "dims":
      return `dims (${Array.from({ length: t.rank }, (_, i) => "HWC"[i] ?? "N").join(" x ")})`;
    case "list":
      return `a list of ${describeType(t.of).replace(/^an? /, "")}s`;
    case "module":
      return "a module (`encoder`, `projector` or `decoder`)";
    case "call":
      // A callee without arguments is written as a bare name (`xavier_uniform`).
      return Object.entries(t.callees)
        .map(([k, c]) => (c.args.length ? `\`${k}(...)\`` : `\`${k}\``))
        .join(" or ");
    case "either":
      return t.describe;
  }
}

/**
 * The hint for evaluating an expression of this type (see Evaluator). `bareName` is the
 * expression when it is a single name: for a type that takes a word or a number
 * (`attention_scale: dim`), one of its words is that word, not a reference to a setting or
 * constant of the same name (which would make `attention_scale: dim` the number `dim`).
 */
export function hintFor(t: Type, bareName?: string): "value" | "symbol" | "module" {
  if (t.t === "enum") return "symbol";
  if (t.t === "module" || (t.t === "list" && t.of.t === "module")) return "module";
  if (t.t === "list" && t.of.t === "enum") return "symbol";
  if (t.t === "either" && bareName !== undefined && t.of.some((x) => x.t === "enum" && x.values.includes(bareName))) return "symbol";
  return "value";
}

/** The name an expression consists of, if it is a single bare name (`dim`, not `a.b` or `2 * d`). */
export function bareNameOf(e: { kind: string; path?: readonly { name: string }[] }): string | undefined {
  return e.kind === "Ref" && e.path?.length === 1 ? e.path[0]!.name : undefined;
}

export class Coercer {
  constructor(
    readonly ev: Evaluator,
    readonly modules: readonly string[],
  ) {}

  private get diags() {
    return this.ev.diags;
  }

  /** `what` names the setting or argument in messages, e.g. "`heads`". */
  coerce(v: Value, t: Type, what: string, env?: Env): Typed | null {
    switch (t.t) {
      case "int": {
        if (v.kind !== "number") return this.ev.typeError(v, `an integer for ${what}`, undefined, env);
        if (!v.integer) {
          if (Number.isInteger(v.value)) {
            // Whole, but written `1e9` or `64.0`: when it is out of range anyway, say that instead.
            if (!this.range(v.value, v.span, what, t.min, t.max)) return null;
            this.diags.push(
              diagnostic("E0403", v.span, `${what} must be an integer, found ${formatNumber(v.value)} written as a decimal`, {
                label: "written with `.` or an exponent",
                help: [`write \`${formatNumber(v.value)}\`: a number written with \`.\` or \`e\` is not an integer, even when it is whole`],
              }),
            );
            return null;
          }
          this.diags.push(
            diagnostic("E0403", v.span, `${what} must be an integer, found ${formatNumber(v.value)}`, {
              label: "not an integer",
              help: ["check the arithmetic: `/` gives fractions when the division is not exact"],
            }),
          );
          return null;
        }
        return this.range(v.value, v.span, what, t.min, t.max) ? v.value : null;
      }
      case "float": {
        if (v.kind !== "number") return this.ev.typeError(v, `a number for ${what}`, undefined, env);
        const x = v.value;
        const low = t.min !== undefined && (t.minExclusive ? x <= t.min : x < t.min);
        const high = t.max !== undefined && (t.maxExclusive ? x >= t.max : x > t.max);
        if (low || high) {
          const lo = t.min === undefined ? "" : `${t.minExclusive ? "greater than" : "at least"} ${formatNumber(t.min)}`;
          const hi = t.max === undefined ? "" : `${t.maxExclusive ? "less than" : "at most"} ${formatNumber(t.max)}`;
          this.diags.push(
            diagnostic("E0402", v.span, `${what} is ${formatNumber(x)}, out of range`, {
              label: `must be ${[lo, hi].filter(Boolean).join(" and ")}`,
            }),
          );
          return null;
        }
        return x;
      }
      case "bool":
        if (v.kind !== "bool") return this.ev.typeError(v, `\`true\` or \`false\` for ${what}`, undefined, env);
        return v.value;
      case "string":
        if (v.kind !== "string") return this.ev.typeError(v, `a string for ${what}`, undefined, env);
        return v.value;
      case "enum": {
        const name = v.kind === "symbol" || v.kind === "module" ? v.name : v.kind === "bool" ? String(v.value) : v.kind === "string" ? v.value : undefined;
        if (name !== undefined && t.values.includes(name)) return name;
        this.diags.push(
          diagnostic("E0405", v.span, `${what} cannot be ${name !== undefined ? `\`${name}\`` : describeValue(v)}`, {
            label: `expected ${describeType(t)}`,
            help: name !== undefined ? didYouMean(name, t.values) : [],
          }),
        );
        return null;
      }
      case "dims": {
        if (v.kind !== "dims" || v.dims.length !== t.rank) {
          this.diags.push(
            diagnostic("E0401", v.span, `expected ${describeType(t)} for ${what}, found ${describeValue(v)}`, {
              label: `expected ${t.rank} dims`,
              help: ["write dims as `96 x 96 x 3` (height x width x channels)"],
            }),
          );
          return null;
        }
        for (const d of v.dims) if (!this.range(d, v.span, `each dim of ${what}`, 1, t.max)) return null;
        return v.dims;
      }
      case "list": {
        const items = v.kind === "list" ? v.items : [v];
        const out: Typed[] = [];
        for (const it of items) {
          const c = this.coerce(it, t.of, what, env);
          if (c === null) return null;
          out.push(c);
        }
        return out;
      }
      case "module": {
        if (v.kind === "module") return v.name;
        const name = v.kind === "symbol" ? v.name : undefined;
        this.diags.push(
          diagnostic("E0501", v.span, name ? `\`${name}\` is not a module of this model` : `expected a module, found ${describeValue(v)}`, {
            label: this.modules.length ? `expected one of ${this.modules.map((m) => `\`${m}\``).join(", ")}` : "the model has no `encoder`, `projector` or `decoder`",
            help: name ? didYouMean(name, this.modules) : [],
          }),
        );
        return null;
      }
      case "call":
        return this.call(v, t.callees, what, env);
      case "either": {
        // Try each alternative silently; report once against the whole.
        for (const alt of t.of) {
          const saved = this.diags.length;
          const r = this.coerce(v, alt, what, env);
          if (r !== null) return r;
          this.diags.length = saved;
        }
        this.diags.push(
          diagnostic("E0401", v.span, `expected ${t.describe} for ${what}, found ${describeValue(v)}`, {
            label: `expected ${t.describe}`,
            ...(v.kind === "symbol" ? { help: didYouMean(v.name, t.of.flatMap((x) => (x.t === "enum" ? [...x.values] : []))) } : {}),
          }),
        );
        return null;
      }
    }
  }

  private range(x: number, span: Span, what: string, min?: number, max?: number): boolean {
    if ((min !== undefined && x < min) || (max !== undefined && x > max)) {
      this.diags.push(
        diagnostic("E0402", span, `${what} is ${formatNumber(x)}, out of range`, {
          label: `must be ${min !== undefined ? `at least ${min}` : ""}${min !== undefined && max !== undefined ? " and " : ""}${max !== undefined ? `at most ${max}` : ""}`,
          ...(max !== undefined && x > max ? { notes: [`vlmc bounds every size so that a typo cannot allocate the machine's memory`] } : {}),
        }),
      );
      return false;
    }
    return true;
  }

  /** A call value (`adam(lr: 1e-3)`) or a bare name (`constant`) against a set of callees. */
  call(v: Value, callees: Record<string, CallSpec>, what: string, env?: Env): TypedCall | null {
    const name = v.kind === "call" ? v.name : v.kind === "symbol" ? v.name : undefined;
    const spec = name !== undefined ? callees[name] : undefined;
    if (!spec || name === undefined) {
      this.diags.push(
        diagnostic("E0405", v.span, `${what} cannot be ${name !== undefined ? `\`${name}\`` : describeValue(v)}`, {
          label: `expected ${Object.keys(callees)
            .map((k) => `\`${k}\``)
            .join(", ")}`,
          help: name !== undefined ? didYouMean(name, Object.keys(callees)) : [],
        }),
      );
      return null;
    }
    const positional = v.kind === "call" ? v.positional : [];
    const named = v.kind === "call" ? v.named : new Map<string, { value: Value; nameSpan: Span }>();
    const args = bindArgs(this, spec.args, positional, named, `\`${name}\``, v.span, env);
    return args ? { call: name, args } : null;
  }
}

/**
 * Binds positional and named arguments to their specs, coerces them, fills defaults, and
 * reports unknown, duplicate and missing arguments (E0211).
 */
export function bindArgs(
  c: Coercer,
  specs: readonly ArgSpec[],
  positional: readonly Value[],
  named: ReadonlyMap<string, { value: Value; nameSpan: Span }>,
  what: string,
  at: Span,
  env?: Env,
): Record<string, Typed> | null {
  const diags = c.ev.diags;
  const out: Record<string, Typed> = {};
  let ok = true;
  if (positional.length > specs.length) {
    const extra = positional[specs.length]!;
    diags.push(
      diagnostic("E0211", extra.span, `${what} takes ${specs.length === 0 ? "no arguments" : `at most ${specs.length} argument${specs.length === 1 ? "" : "s"}`}, found ${positional.length}`, {
        label: "extra argument",
        ...(specs.length ? { notes: [`${what}(${specs.map((s) => s.name).join(", ")})`] } : {}),
      }),
    );
    ok = false;
  }
  const given = new Map<string, Value>();
  positional.slice(0, specs.length).forEach((v, i) => given.set(specs[i]!.name, v));
  for (const [name, { value, nameSpan }] of named) {
    const spec = specs.find((s) => s.name === name);
    if (!spec) {
      diags.push(
        diagnostic("E0211", nameSpan, `${what} has no argument \`${name}\``, {
          label: "unknown argument",
          help: [...didYouMean(name, specs.map((s) => s.name)), ...(specs.length ? [`its arguments: ${specs.map((s) => s.name).join(", ")}`] : [])],
        }),
      );
      ok = false;
      continue;
    }
    if (given.has(name)) {
      diags.push(
        diagnostic("E0205", nameSpan, `argument \`${name}\` of ${what} is given twice`, {
          related: [{ span: given.get(name)!.span, label: "given here by position" }],
        }),
      );
      ok = false;
      continue;
    }
    given.set(name, value);
  }
  for (const spec of specs) {
    const v = given.get(spec.name);
    if (v) {
      const typed = c.coerce(v, spec.type, `\`${spec.name}\` of ${what}`, env);
      if (typed === null) ok = false;
      else out[spec.name] = typed;
    }
  }
  for (const spec of specs) {
    if (out[spec.name] !== undefined || given.has(spec.name)) continue;
    if (spec.default === undefined) {
      diags.push(
        diagnostic("E0210", at, `${what} needs \`${spec.name}\``, {
          label: `missing \`${spec.name}\``,
          notes: [`\`${spec.name}\`: ${spec.doc}`],
        }),
      );
      ok = false;
    } else if (ok) out[spec.name] = typeof spec.default === "function" ? spec.default(out) : spec.default;
  }
  return ok ? out : null;
}
