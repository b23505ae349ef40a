// Values of the language after evaluation, each remembering where it was written.
import type { Span } from "../source.js";

export type Value =
  | { kind: "number"; value: number; integer: boolean; span: Span }
  | { kind: "string"; value: string; span: Span }
  | { kind: "bool"; value: boolean; span: Span }
  | { kind: "list"; items: Value[]; span: Span }
  | { kind: "dims"; dims: number[]; span: Span }
  /** A bare name that names nothing in scope: an enum member (`cls`, `learned`, `pad`). */
  | { kind: "symbol"; name: string; span: Span }
  /** A reference to a module of the model (`projector`), as in `train: [projector]`. */
  | { kind: "module"; name: string; span: Span }
  /** `adam(lr: 1e-3)`, `cosine(warmup: 100)`, `captions("a.jsonl")` */
  | { kind: "call"; name: string; positional: Value[]; named: Map<string, { value: Value; nameSpan: Span }>; span: Span };

export function describeValue(v: Value): string {
  switch (v.kind) {
    case "number":
      return `${v.integer ? "integer" : "number"} ${formatNumber(v.value)}`;
    case "string":
      return `string "${v.value.length > 30 ? `${v.value.slice(0, 27)}...` : v.value}"`;
    case "bool":
      return `\`${v.value}\``;
    case "list":
      return `a list of ${v.items.length}`;
    case "dims":
      return `dims ${v.dims.join(" x ")}`;
    case "symbol":
      return `name \`${v.name}\``;
    case "module":
      return `module \`${v.name}\``;
    case "call":
      return `\`${v.name}(...)\``;
  }
}

export function formatNumber(n: number): string {
  if (Number.isInteger(n)) return String(n);
  const s = String(n);
  return s.length > 12 ? n.toPrecision(6) : s;
}

/** A plain JSON rendering of a value (for the IR). */
export type Plain = number | string | boolean | Plain[] | { [k: string]: Plain };

export function toPlain(v: Value): Plain {
  switch (v.kind) {
    case "number":
    case "string":
    case "bool":
      return v.value;
    case "list":
      return v.items.map(toPlain);
    case "dims":
      return v.dims;
    case "symbol":
    case "module":
      return v.name;
    case "call": {
      const out: { [k: string]: Plain } = { kind: v.name };
      if (v.positional.length) out.args = v.positional.map(toPlain);
      for (const [k, a] of v.named) out[k] = toPlain(a.value);
      return out;
    }
  }
}
