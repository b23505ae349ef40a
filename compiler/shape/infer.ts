// Shape inference: runs each layer's shape rule over a module's tree, recording every layer's
// input and output shape and its parameters (with their full, stable names). Stops a chain at
// the first layer that fails, so one mistake gives one error.
import type { Diagnostic } from "../diagnostics/diagnostic.js";
import { layerKinds } from "../layers/index.js";
import { makeReporter, type LayerNode, type ParamSpec, type TensorType } from "../layers/kind.js";

export interface Param extends ParamSpec {
  /** Full name, e.g. `encoder.blocks.0.attn.q.weight`. */
  fullName: string;
  module: string;
}

export interface InferContext {
  diags: Diagnostic[];
  params: Param[];
  module: string;
  /** The visual tokens, for the decoder's `join`. */
  visual?: TensorType;
  /** The first layer of a module: `linear(in: ...)` there reports E0304 (projector). */
  first?: LayerNode;
}

export function joinName(...parts: string[]): string {
  return parts.filter((p) => p !== "").join(".");
}

export function inferLayers(nodes: readonly LayerNode[], input: TensorType, prefix: string, ctx: InferContext): TensorType | null {
  let x = input;
  for (const node of nodes) {
    const out = inferNode(node, x, prefix, ctx);
    if (!out) return null;
    x = out;
  }
  return x;
}

function inferNode(node: LayerNode, input: TensorType, prefix: string, ctx: InferContext): TensorType | null {
  const kind = layerKinds.get(node.kind);
  if (!kind) throw new Error(`internal: layer kind ${node.kind}`);
  const path = joinName(prefix, node.name);
  let body: TensorType | undefined;
  if (kind.body) {
    const out = inferLayers(node.children ?? [], input, path, { ...ctx, first: undefined });
    if (!out) return null;
    body = out;
  }
  const output = kind.shape({
    node,
    args: node.args,
    input,
    ...(body ? { body } : {}),
    ...(ctx.visual ? { visual: ctx.visual } : {}),
    ...(ctx.first === node ? { first: true } : {}),
    report: makeReporter(ctx.diags, node),
    argSpan: (name) => node.argSpans[name] ?? node.span,
  });
  if (!output) return null;
  node.input = input;
  node.output = output;
  if (kind.params) {
    const dims = (t: TensorType) => t.shape.map((d) => (typeof d === "number" ? d : -1));
    node.params = kind.params(node.args, dims(input), dims(output));
    for (const p of node.params) ctx.params.push({ ...p, fullName: joinName(path, p.name), module: ctx.module });
  }
  return output;
}
