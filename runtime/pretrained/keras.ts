// A Keras functional model as model.json describes it (the `modelTopology` of a tfjs
// LayersModel folder), read without tfjs: its layers and their wiring, and a walk from the input
// to a named layer that gives every layer's output shape for a given image size, the FLOPs and
// the weights on the way. `vlmc check` shapes a pretrained encoder with it (compiler/presets/
// tfjs.ts) and the runtime runs the same walk with tfjs ops (execute.ts), so the layers the
// checker accepts are exactly the layers that run.
//
// Only what a convolutional image encoder needs is known, channels last: the classes in
// `RULES`. A class the walk meets on the way to the cut and does not know is a problem (E0732),
// as is one that only takes the model's own input size (Flatten, Dense) when the image is
// resized (E0733). Layers after the cut are never looked at: MobileNetV2's classification head
// (pooling, Flatten, Dense) does not matter when it is cut at `out_relu`.

/** One layer of model.json's `model_config.config.layers`. */
export interface KerasLayer {
  name: string;
  className: string;
  config: Record<string, unknown>;
  /** The layers whose outputs it takes, in order. */
  inputs: string[];
}

export interface KerasGraph {
  layers: Map<string, KerasLayer>;
  /** The input layer's name and its [H, W, C] (batch_input_shape without the batch). */
  input: { name: string; shape: number[] };
  /** Weight names of the manifest -> shape, e.g. `Conv1/kernel` -> [3, 3, 3, 32]. */
  weights: Map<string, number[]>;
}

export interface KerasProblem {
  kind: "invalid" | "unknown-layer" | "unsupported" | "size";
  message: string;
  /** The Keras layer it is about. */
  layer?: string;
  help?: string[];
}

export interface KerasWalk {
  /** The layers from the input to the cut, in an order where each comes after its inputs. */
  order: string[];
  /** Each layer's output shape without the batch: [h, w, c] or [n]. */
  shapes: Map<string, number[]>;
  /** Forward FLOPs per image (a multiply-add counts 2). */
  flops: number;
  /** Weights the walked layers use (frozen, not vlmc parameters). */
  params: number;
}

type Rule = {
  /** The output shape, or a problem. `native`: the image is the model's own input size. */
  shape(l: KerasLayer, inputs: number[][], native: boolean): number[] | KerasProblem;
  flops(l: KerasLayer, inputs: number[][], out: number[]): number;
};

const numel = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

/** `x` or `[x, y]` as [x, y]. */
function pair(v: unknown, what: string, l: KerasLayer): [number, number] {
  if (typeof v === "number" && Number.isInteger(v)) return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === "number" && Number.isInteger(x))) return [v[0] as number, v[1] as number];
  throw new BadConfig(`\`${l.name}\` (${l.className}) has a malformed \`${what}\`: ${JSON.stringify(v)}`);
}

class BadConfig extends Error {}

/** Activations a Conv2D or Dense may end with, all elementwise. */
export const ACTIVATIONS = ["linear", "relu", "relu6", "sigmoid", "tanh", "elu", "selu", "softplus", "swish", "hard_sigmoid"] as const;

function featureMap(l: KerasLayer, s: number[] | undefined): [number, number, number] {
  if (!s || s.length !== 3) throw new BadConfig(`\`${l.name}\` (${l.className}) needs a feature map [h, w, c], its input is [${(s ?? []).join(", ")}]`);
  return s as [number, number, number];
}

function channelsLast(l: KerasLayer): void {
  const f = l.config.data_format;
  if (f !== undefined && f !== "channels_last") throw new Unsupported(`\`${l.name}\` (${l.className}) is \`${String(f)}\`: only channels_last models are read`);
}

class Unsupported extends Error {}

function activationOf(l: KerasLayer): string {
  const a = l.config.activation ?? "linear";
  if (typeof a !== "string" || !(ACTIVATIONS as readonly string[]).includes(a)) throw new Unsupported(`\`${l.name}\` (${l.className}) ends with the activation \`${String(a)}\`, which vlmc does not run`);
  return a;
}

/** Keras' output length of a window of `k` (dilation `d`) at stride `s`. */
function windowOut(n: number, k: number, s: number, d: number, padding: unknown, l: KerasLayer): number {
  if (padding === "same") return Math.ceil(n / s);
  if (padding === "valid") return Math.floor((n - (k - 1) * d - 1) / s) + 1;
  throw new Unsupported(`\`${l.name}\` (${l.className}) has padding \`${String(padding)}\`; only \`same\` and \`valid\` are read`);
}

function conv(l: KerasLayer, inp: number[], channels: (c: number) => number): number[] {
  channelsLast(l);
  activationOf(l);
  const [h, w, c] = featureMap(l, inp);
  const [kh, kw] = pair(l.config.kernel_size, "kernel_size", l);
  const [sh, sw] = pair(l.config.strides ?? 1, "strides", l);
  const [dh, dw] = pair(l.config.dilation_rate ?? 1, "dilation_rate", l);
  if ((dh > 1 || dw > 1) && (sh > 1 || sw > 1)) throw new Unsupported(`\`${l.name}\` (${l.className}) has both strides and a dilation, which tfjs does not run`);
  return [windowOut(h, kh, sh, dh, l.config.padding, l), windowOut(w, kw, sw, dw, l.config.padding, l), channels(c)];
}

function pool(l: KerasLayer, inp: number[]): number[] {
  channelsLast(l);
  const [h, w, c] = featureMap(l, inp);
  const [kh, kw] = pair(l.config.pool_size ?? 2, "pool_size", l);
  const [sh, sw] = pair(l.config.strides ?? l.config.pool_size ?? 2, "strides", l);
  return [windowOut(h, kh, sh, 1, l.config.padding ?? "valid", l), windowOut(w, kw, sw, 1, l.config.padding ?? "valid", l), c];
}

const same = (inputs: number[][]): number[] => inputs[0]!;
const elementwise = (k: number) => (_: KerasLayer, __: number[][], out: number[]) => k * numel(out);
const kernelArea = (l: KerasLayer) => pair(l.config.kernel_size, "kernel_size", l).reduce((a, b) => a * b, 1);

/** What the walk knows, by Keras class name. */
export const RULES: Record<string, Rule> = {
  ZeroPadding2D: {
    shape(l, [x]) {
      channelsLast(l);
      const [h, w, c] = featureMap(l, x);
      const p = l.config.padding;
      const [[t, b], [le, r]] = Array.isArray(p) && Array.isArray(p[0]) ? [pair(p[0], "padding", l), pair(p[1], "padding", l)] : (() => {
        const [a, bb] = pair(p ?? 1, "padding", l);
        return [[a, a], [bb, bb]];
      })();
      return [h + t + b, w + le + r, c];
    },
    flops: () => 0,
  },
  Conv2D: {
    shape: (l, [x]) => conv(l, x!, () => l.config.filters as number),
    flops: (l, [x], out) => 2 * numel(out) * kernelArea(l) * x![2]! + (l.config.use_bias === false ? 0 : numel(out)),
  },
  DepthwiseConv2D: {
    shape: (l, [x]) => conv(l, x!, (c) => c * ((l.config.depth_multiplier as number | undefined) ?? 1)),
    flops: (l, _, out) => 2 * numel(out) * kernelArea(l) + (l.config.use_bias === false ? 0 : numel(out)),
  },
  BatchNormalization: {
    shape(l, [x]) {
      const axis = l.config.axis ?? -1;
      if (axis !== -1 && axis !== x!.length) throw new Unsupported(`\`${l.name}\` (BatchNormalization) normalises axis ${JSON.stringify(axis)}; only the channels (the last axis) are read`);
      return x!;
    },
    // Inference: a scale and a shift per value.
    flops: elementwise(2),
  },
  ReLU: { shape: (_, xs) => same(xs), flops: elementwise(1) },
  Activation: {
    shape(l, xs) {
      activationOf(l);
      return same(xs);
    },
    flops: elementwise(1),
  },
  Dropout: { shape: (_, xs) => same(xs), flops: () => 0 },
  Add: {
    shape(l, xs) {
      if (xs.some((s) => s.join() !== xs[0]!.join())) throw new BadConfig(`\`${l.name}\` (Add) adds tensors of different shapes: ${xs.map((s) => `[${s.join(", ")}]`).join(", ")}`);
      return xs[0]!;
    },
    flops: (_, xs, out) => (xs.length - 1) * numel(out),
  },
  Concatenate: {
    shape(l, xs) {
      const axis = l.config.axis ?? -1;
      const rank = xs[0]!.length;
      if (axis !== -1 && axis !== rank) throw new Unsupported(`\`${l.name}\` (Concatenate) joins along axis ${JSON.stringify(axis)}; only the channels (the last axis) are read`);
      if (xs.some((s) => s.slice(0, -1).join() !== xs[0]!.slice(0, -1).join())) throw new BadConfig(`\`${l.name}\` (Concatenate) joins feature maps of different sizes`);
      return [...xs[0]!.slice(0, -1), xs.reduce((a, s) => a + s[rank - 1]!, 0)];
    },
    flops: () => 0,
  },
  MaxPooling2D: { shape: (l, [x]) => pool(l, x!), flops: (l, _, out) => numel(out) * pair(l.config.pool_size ?? 2, "pool_size", l).reduce((a, b) => a * b, 1) },
  AveragePooling2D: { shape: (l, [x]) => pool(l, x!), flops: (l, _, out) => numel(out) * pair(l.config.pool_size ?? 2, "pool_size", l).reduce((a, b) => a * b, 1) },
  GlobalAveragePooling2D: {
    shape(l, [x]) {
      channelsLast(l);
      return [featureMap(l, x)[2]];
    },
    flops: (_, [x]) => numel(x!),
  },
  GlobalMaxPooling2D: {
    shape(l, [x]) {
      channelsLast(l);
      return [featureMap(l, x)[2]];
    },
    flops: (_, [x]) => numel(x!),
  },
  // These two fix the feature map's size (a Dense layer's weights are sized for it): they take
  // the model's own input size only.
  Flatten: {
    shape: (l, [x], native) => (native ? [numel(x!)] : sizeBound(l)),
    flops: () => 0,
  },
  Dense: {
    shape(l, [x], native) {
      if (!native) return sizeBound(l);
      activationOf(l);
      if (x!.length !== 1) throw new Unsupported(`\`${l.name}\` (Dense) on a [${x!.join(", ")}] input: only vectors are read`);
      return [l.config.units as number];
    },
    flops: (l, [x]) => 2 * x![0]! * (l.config.units as number),
  },
};

function sizeBound(l: KerasLayer): KerasProblem {
  return {
    kind: "size",
    layer: l.name,
    message: `\`${l.name}\` (${l.className}) only takes the model's own input size`,
    help: ["cut the model at a convolutional layer before it, or give `image` the model's own size"],
  };
}

/** model.json's text as a graph, or what is wrong with it. `json`: the parsed document. */
export function readKerasGraph(json: unknown): KerasGraph | KerasProblem {
  const bad = (message: string): KerasProblem => ({ kind: "invalid", message });
  const doc = json as { format?: unknown; modelTopology?: { model_config?: { class_name?: unknown; config?: unknown } }; weightsManifest?: unknown };
  if (!doc || typeof doc !== "object") return bad("it is not a JSON object");
  if (doc.format === "graph-model") return bad("it is a tfjs graph model (a TensorFlow graph, not Keras layers); convert the Keras model with `tensorflowjs_converter --output_format tfjs_layers_model`");
  if (!doc.modelTopology || typeof doc.modelTopology !== "object") return bad("it has no `modelTopology`");
  const mc = doc.modelTopology.model_config ?? (doc.modelTopology as { class_name?: unknown; config?: unknown });
  if (mc.class_name !== "Model" && mc.class_name !== "Functional") return bad(`its model is a Keras \`${String(mc.class_name)}\`; only functional models (\`Model\`) are read`);
  const cfg = mc.config as { layers?: unknown; input_layers?: unknown } | undefined;
  if (!cfg || !Array.isArray(cfg.layers)) return bad("its model has no `layers`");
  const layers = new Map<string, KerasLayer>();
  for (const raw of cfg.layers as { name?: unknown; class_name?: unknown; config?: unknown; inbound_nodes?: unknown }[]) {
    if (typeof raw?.name !== "string" || typeof raw.class_name !== "string" || !raw.config || typeof raw.config !== "object") return bad("a layer lacks its `name`, `class_name` or `config`");
    const nodes = raw.inbound_nodes;
    if (!Array.isArray(nodes) || nodes.length > 1) {
      if (Array.isArray(nodes)) return { kind: "unsupported", layer: raw.name, message: `\`${raw.name}\` is called ${nodes.length} times (a shared layer); vlmc reads layers called once` };
      return bad(`\`${raw.name}\` has no \`inbound_nodes\``);
    }
    const inputs: string[] = [];
    for (const ref of (nodes[0] ?? []) as unknown[]) {
      if (!Array.isArray(ref) || typeof ref[0] !== "string") return bad(`\`${raw.name}\` has a malformed inbound node`);
      inputs.push(ref[0]);
    }
    layers.set(raw.name, { name: raw.name, className: raw.class_name, config: raw.config as Record<string, unknown>, inputs });
  }
  const inputLayers = [...layers.values()].filter((l) => l.className === "InputLayer");
  if (inputLayers.length !== 1) return { kind: "unsupported", message: `the model has ${inputLayers.length} inputs; an image encoder has one` };
  const inp = inputLayers[0]!;
  const shape = inp.config.batch_input_shape;
  if (!Array.isArray(shape) || shape.length !== 4 || !shape.slice(1).every((d) => typeof d === "number" && Number.isInteger(d) && d > 0)) {
    return { kind: "unsupported", layer: inp.name, message: `its input \`${inp.name}\` is not an image of a fixed size: batch_input_shape ${JSON.stringify(shape)}` };
  }
  const weights = new Map<string, number[]>();
  if (!Array.isArray(doc.weightsManifest)) return bad("it has no `weightsManifest`");
  for (const group of doc.weightsManifest as { weights?: { name?: unknown; shape?: unknown }[] }[]) {
    for (const w of group?.weights ?? []) {
      if (typeof w.name !== "string" || !Array.isArray(w.shape)) return bad("a weight of its `weightsManifest` lacks its `name` or `shape`");
      weights.set(w.name.replace(/:0$/, ""), w.shape as number[]);
    }
  }
  return { layers, input: { name: inp.name, shape: shape.slice(1) as number[] }, weights };
}

/**
 * The walk from the input to `cut` with the input rewritten to `image` ([H, W, C]), or the first
 * problem on the way (a layer name that is not the model's is reported by the caller).
 */
export function walkTo(g: KerasGraph, cut: string, image: readonly number[]): KerasWalk | KerasProblem {
  const native = image.join() === g.input.shape.join();
  if (image[2] !== g.input.shape[2]) {
    return { kind: "size", layer: g.input.name, message: `the model takes ${g.input.shape[2]} channels, the image has ${image[2]}`, help: [`give \`image\` ${g.input.shape[2]} channels: \`image: ${image[0]} x ${image[1]} x ${g.input.shape[2]}\``] };
  }
  const order: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  // Depth first from the cut back to the input; iterative, so a deep model cannot overflow the stack.
  const stack: { name: string; next: number }[] = [{ name: cut, next: 0 }];
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const l = g.layers.get(top.name);
    if (!l) return { kind: "invalid", message: `a layer's input \`${top.name}\` is not a layer of the model` };
    if (top.next === 0) state.set(top.name, "visiting");
    if (top.next < l.inputs.length) {
      const child = l.inputs[top.next++]!;
      const s = state.get(child);
      if (s === "visiting") return { kind: "invalid", message: `the layers form a cycle through \`${child}\`` };
      if (!s) stack.push({ name: child, next: 0 });
      continue;
    }
    state.set(top.name, "done");
    order.push(top.name);
    stack.pop();
  }
  const shapes = new Map<string, number[]>();
  let flops = 0;
  let params = 0;
  for (const name of order) {
    const l = g.layers.get(name)!;
    if (l.className === "InputLayer") {
      if (name !== g.input.name) return { kind: "invalid", message: `\`${name}\` is a second input` };
      shapes.set(name, [...image]);
      continue;
    }
    const rule = RULES[l.className];
    if (!rule) {
      return {
        kind: "unsupported",
        layer: name,
        message: `\`${name}\` is a Keras \`${l.className}\`, which vlmc does not read`,
        help: [`the layer classes vlmc reads: ${Object.keys(RULES).join(", ")}`],
      };
    }
    if (l.inputs.length === 0) return { kind: "invalid", message: `\`${name}\` takes no input` };
    const inputs = l.inputs.map((i) => shapes.get(i)!);
    let out: number[] | KerasProblem;
    try {
      out = rule.shape(l, inputs, native);
      if (Array.isArray(out)) flops += rule.flops(l, inputs, out);
    } catch (err) {
      if (err instanceof Unsupported) return { kind: "unsupported", layer: name, message: err.message };
      if (err instanceof BadConfig) return { kind: "invalid", layer: name, message: err.message };
      throw err;
    }
    if (!Array.isArray(out)) return out;
    if (out.some((d) => !Number.isInteger(d) || d < 1)) {
      return { kind: "size", layer: name, message: `the image is too small: \`${name}\` (${l.className}) would output [${out.join(", ")}]`, help: [`give \`image\` at least the model's own size, ${g.input.shape.join(" x ")}`] };
    }
    shapes.set(name, out);
    for (const [w, s] of g.weights) if (w.startsWith(`${name}/`)) params += numel(s);
  }
  return { order, shapes, flops, params };
}

export function isProblem(x: unknown): x is KerasProblem {
  return !!x && typeof x === "object" && "kind" in x && "message" in x;
}
