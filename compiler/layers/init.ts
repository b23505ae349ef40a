// Initialisation, as a spec may set it. Every layer kind with weight matrices takes an `init`
// argument (its documented default below), and every module section takes an `init` setting
// that applies to the weight matrices of all its layers that do not set their own:
//
//   linear(256, init: normal(std: 0.02))          one layer
//   decoder gpt { ..., init: normal(std: 0.02) }  every weight matrix of the decoder (GPT-2's)
//
// An initialiser applies to weight matrices only (projections, embedding and position tables);
// biases and CLS tokens stay zeros, norm gains ones. The kinds' defaults: `xavier_uniform` for
// projections (for `patch_embed` with the fans of the equivalent Conv2d, fan_in = C p p and
// fan_out = D p p, as PyTorch computes them: the seed model's initialisation), `normal(std:
// 0.02)` for token embeddings, learned positions and the LM head. Values are drawn from the
// `train` seed, one stream per parameter name (runtime/model.ts).
//
// A layer's `init` is recorded in the IR's attrs (as `{kind: normal, std: 0.02}`), and the
// initialiser it makes for each parameter in the parameter's `init`; the IR verifier derives
// the second from the first (compiler/ir/verify.ts).
import type { ArgSpec, CallSpec, Type, Typed } from "../resolve/types.js";
import { float } from "../resolve/types.js";
import type { Init } from "./kind.js";

/** The initialisers a spec may name. */
export const initialisers: Record<string, CallSpec> = {
  normal: { doc: "Normal with mean 0 and standard deviation `std`.", args: [{ name: "std", type: float(0, undefined, { minExclusive: true }), doc: "standard deviation, > 0" }] },
  uniform: { doc: "Uniform in [-bound, bound].", args: [{ name: "bound", type: float(0, undefined, { minExclusive: true }), doc: "half-width of the interval, > 0" }] },
  xavier_uniform: {
    doc: "Xavier/Glorot uniform: uniform in ±sqrt(6 / (fan_in + fan_out)); for `patch_embed` the fans of the equivalent Conv2d (C p p and D p p), as PyTorch computes them.",
    args: [],
  },
  zeros: { doc: "All zeros.", args: [] },
};

/** The type of a layer's `init` argument. */
export const initType: Type = { t: "call", callees: initialisers };

/** The kinds' defaults. */
export const XAVIER: Typed = { call: "xavier_uniform", args: {} };
export const NORMAL_002: Typed = { call: "normal", args: { std: 0.02 } };

/** The `init` argument of a kind whose weight matrices default to `dflt`; `what` names them. */
export function initArg(dflt: Typed, what: string): ArgSpec {
  return { name: "init", type: initType, default: dflt, doc: `initialiser of ${what}` };
}

/** The value of a section's `init` setting that leaves each layer its own. */
export const SECTION_DEFAULT = "default";

/** A module section's `init` setting (presets and custom sections alike). */
export const initSetting = {
  type: { t: "call", callees: { [SECTION_DEFAULT]: { doc: "each layer kind's own default", args: [] }, ...initialisers } } as Type,
  default: { call: SECTION_DEFAULT, args: {} } as Typed,
  defaultDoc: "`default`: each layer kind's own",
  doc: "initialiser of every weight matrix of the module whose layer does not set `init`: `normal(std: 0.02)`, `uniform(bound: 0.1)`, `xavier_uniform` or `zeros` (biases stay zero, norm gains one)",
};

/** A written initialiser, in the compiler's form (`{call, args}`) or the IR's (`{kind, ...}`). */
function nameAndArgs(v: unknown): { name: string; args: Record<string, unknown> } | null {
  if (!v || typeof v !== "object" || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (typeof o.call === "string" && o.args && typeof o.args === "object") return { name: o.call, args: o.args as Record<string, unknown> };
  if (typeof o.kind === "string") {
    const { kind, ...args } = o;
    return { name: kind as string, args };
  }
  return null;
}

/**
 * The initialiser a layer's `init` argument gives a weight matrix. `fans` overrides the fans
 * of `xavier_uniform` (patch_embed's conv fans); otherwise the runtime takes them from the
 * matrix's shape [in, out].
 */
export function weightInit(init: unknown, fans?: { in: number; out: number }): Init {
  const c = nameAndArgs(init);
  if (!c) throw new Error(`\`init\` must be an initialiser, found ${JSON.stringify(init)}`);
  switch (c.name) {
    case "normal":
      return { kind: "normal", std: c.args.std as number };
    case "uniform":
      return { kind: "uniform", bound: c.args.bound as number };
    case "zeros":
      return { kind: "zeros" };
    case "xavier_uniform":
      return fans ? { kind: "uniform", bound: Math.sqrt(6 / (fans.in + fans.out)) } : { kind: "xavier_uniform" };
    default:
      throw new Error(`unknown initialiser \`${c.name}\``);
  }
}

/** Does this kind take `init`? */
export function takesInit(args: readonly ArgSpec[]): boolean {
  return args.some((a) => a.name === "init");
}
