// The forward pass of `vlmc compile --emit ts`, as lines of TypeScript: the IR's modules walked as
// runtime/model.ts walks them (encoder, projector, then the decoder with the visual tokens
// joined in front), each layer written by its kind's `emitTs` (compiler/layers/*.ts) through a
// TsEmitContext. One `const` per tensor, each with its shape comment; a comment line names each
// layer. A kind without `emitTs`, or a configuration one cannot write, is a diagnostic (E0801),
// never an exception. No ts-morph here: compiler/emit/ts.ts puts the lines into the module.
import { diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { IrPath } from "../ir/locate.js";
import type { Ir, IrDim, IrLayer, IrShape } from "../ir/types.js";
import type { LayerKind } from "../layers/kind.js";
import type { Span } from "../source.js";
import type { TsEmitContext, TsHelperName } from "./ts-context.js";
import { TS_HELPERS } from "./ts-helpers.js";

/** A line of the forward pass: a statement with its shape, or a comment. */
export type ForwardLine = { kind: "const"; name: string; expr: string; shape: IrShape } | { kind: "comment"; text: string };

export interface ForwardCode {
  lines: ForwardLine[];
  /** The name holding the result: the logits, or the encoder's (projector's) output without a decoder. */
  result: string;
  helpers: Set<TsHelperName>;
  diagnostics: Diagnostic[];
}

/** Names the forward pass already uses (its parameters, the helpers) and JavaScript's reserved words. */
const RESERVED = new Set([
  ...["tf", "w", "B", "T", "images", "tokens", "Math", "Number", "Array", "Float32Array", "undefined", "NaN", "Infinity"],
  ...Object.keys(TS_HELPERS),
  ...("break case catch class const continue debugger default delete do else enum export extends false finally for function if import in " +
    "instanceof new null return super switch this throw true try typeof var void while with yield let static implements interface package " +
    "private protected public await arguments eval").split(" "),
]);

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A dim as code: `64` -> `64`, `9+T` -> `9 + T`. */
export function dimCode(d: IrDim): string {
  return typeof d === "number" ? String(d) : d.split("+").join(" + ");
}

export function shapeComment(s: IrShape): string {
  return `[${s.join(", ")}]`;
}

/** `attention(heads: 4, causal: true)`: a layer as its header comment shows it (no initialiser). */
function describe(layer: IrLayer): string {
  const args = Object.entries(layer.attrs)
    .filter(([k]) => k !== "init")
    .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : String(v)}`);
  return `${layer.kind}(${args.join(", ")})`;
}

/**
 * The forward pass of `ir`. `where` gives the span of a value of the IR (for diagnostics);
 * `kinds` is the registry of layer kinds.
 */
export function emitForward(ir: Ir, kinds: ReadonlyMap<string, LayerKind>, where: (path: IrPath) => Span): ForwardCode {
  const lines: ForwardLine[] = [];
  const helpers = new Set<TsHelperName>();
  const diagnostics: Diagnostic[] = [];
  const used = new Map<string, number>();
  const constants = new Map<string, string>();
  const missing = new Map<string, Diagnostic>();

  const given = new Set<string>();
  const fresh = (hint: string): string => {
    const stem = IDENTIFIER.test(hint) && !RESERVED.has(hint) ? hint : "x";
    // `ln_1` again is `ln_1_2`, `q` again `q2`: a digit never runs into the counter. A name a
    // layer was literally given (`norm2`) is never handed out again as a counted one.
    let name = stem;
    for (let n = used.get(stem) ?? 0; given.has(name) || n === 0; ) {
      n++;
      used.set(stem, n);
      name = n === 1 ? stem : /\d$/.test(stem) ? `${stem}_${n}` : `${stem}${n}`;
    }
    given.add(name);
    return name;
  };
  const declare = (hint: string, expr: string, shape: IrShape): string => {
    const name = fresh(hint);
    lines.push({ kind: "const", name, expr, shape });
    return name;
  };
  const param = (name: string) => `w[${JSON.stringify(name)}]`;
  const hasParam = (name: string) => irHasParam(ir, name);

  interface State {
    cls: boolean;
    visual?: string;
  }
  const run = (layers: IrLayer[], path: IrPath, x: string, state: State, depth: number): string => {
    layers.forEach((layer, i) => {
      const at = [...path, i];
      const kind = kinds.get(layer.kind);
      if (!kind?.emitTs) {
        // Once per kind: a preset's blocks would repeat it at one place.
        const earlier = missing.get(layer.kind);
        if (earlier) earlier.notes.push(`also ${layer.path}`);
        else {
          const d = diagnostic("E0801", where(at), `\`vlmc compile --emit ts\` cannot write layer kind \`${layer.kind}\` yet`, {
            label: `${layer.path}: a \`${layer.kind}\` layer`,
            help: ["compile to the IR instead (`--emit ir`), or give the kind an `emitTs` beside its `lower` in compiler/layers/"],
          });
          missing.set(layer.kind, d);
          diagnostics.push(d);
        }
        return;
      }
      const grouping = layer.kind === "sequence" || layer.kind === "residual";
      // Blocks (`decoder.blocks.0`) get a header; a residual inside one is already named by it.
      if (!grouping) lines.push({ kind: "comment", text: `${layer.path}: ${describe(layer)}` });
      else if (layer.kind === "sequence" && layer.children?.length && depth > 0) lines.push({ kind: "comment", text: `${layer.path}` });
      const ctx: TsEmitContext = {
        attrs: layer.attrs,
        input: layer.input,
        output: layer.output,
        name: IDENTIFIER.test(layer.name) ? layer.name : grouping ? "x" : "h",
        p: (name) => {
          const full = `${layer.path}.${name}`;
          if (!layer.params.some((p) => p.name === full)) throw new Error(`internal: ${layer.path} has no parameter ${name}`);
          return param(full);
        },
        has: (name) => layer.params.some((p) => p.name === `${layer.path}.${name}`),
        dim: dimCode,
        shape: (s) => `[${s.map(dimCode).join(", ")}]`,
        let: declare,
        note: (text) => lines.push({ kind: "comment", text }),
        helper: (name) => {
          helpers.add(name);
          return name;
        },
        constant: (key, hint, expr, shape) => {
          let name = constants.get(key);
          if (!name) {
            name = declare(hint, expr, shape);
            constants.set(key, name);
          }
          return name;
        },
        body: (t) => run(layer.children ?? [], [...at, "children"], t, state, depth + 1),
        ...(state.visual ? { visual: state.visual } : {}),
        tokenEmbedding: () => {
          if (!hasParam("decoder.embed.weight")) throw new Error("internal: a tied LM head without decoder.embed.weight");
          return param("decoder.embed.weight");
        },
        inputCls: state.cls,
        unsupported: (why, same) => {
          diagnostics.push(diagnostic("E0801", where(at), `\`vlmc compile --emit ts\` cannot write this \`${layer.kind}\` layer yet: ${why}`, { label: layer.path }));
          return same;
        },
      };
      x = kind.emitTs(ctx, x);
      if (layer.kind === "patch_embed") state.cls = layer.attrs.cls === true;
      if (layer.kind === "take") state.cls = false;
    });
    return x;
  };

  let x = "images";
  const { encoder, projector, decoder } = ir.modules;
  if (encoder) {
    lines.push({ kind: "comment", text: `---- encoder${encoder.preset ? ` (${encoder.preset})` : ""}: ${shapeComment(encoder.input)} -> ${shapeComment(encoder.output)}` });
    x = run(encoder.layers, ["modules", "encoder", "layers"], x, { cls: false }, 0);
    if (projector) {
      lines.push({ kind: "comment", text: `---- projector: ${shapeComment(projector.input)} -> ${shapeComment(projector.output)}` });
      x = run(projector.layers, ["modules", "projector", "layers"], x, { cls: false }, 0);
    }
  }
  if (decoder) {
    lines.push({ kind: "comment", text: `---- decoder${decoder.preset ? ` (${decoder.preset})` : ""}: ${shapeComment(decoder.input)} -> ${shapeComment(decoder.output)}` });
    x = run(decoder.layers, ["modules", "decoder", "layers"], "tokens", { cls: false, ...(encoder ? { visual: x } : {}) }, 0);
  }
  return { lines, result: x, helpers, diagnostics };
}

function irHasParam(ir: Ir, name: string): boolean {
  const walk = (ls: IrLayer[]): boolean => ls.some((l) => l.params.some((p) => p.name === name) || (l.children ? walk(l.children) : false));
  return Object.values(ir.modules).some((m) => m !== undefined && walk(m.layers));
}
