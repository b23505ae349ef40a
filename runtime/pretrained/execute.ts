// Running a tfjs LayersModel folder's Keras graph up to a named layer with tfjs ops, in the
// order and with the shapes of the check-time walk (keras.ts). Synchronous, like every other
// lowering: `Model.forward` is called synchronously everywhere, and `tf.loadLayersModel` is not.
// The weights come from the shards through tfjs's own `tf.io.decodeWeights` (which also
// dequantizes nsfwjs's uint8 weights), and each op is the one tfjs-layers itself calls for the
// layer (conv2d, depthwiseConv2d, batchNorm, ...), so the result is the LayersModel's: the
// test (test/tfjs-encoder.test.ts) checks it against tfjs-layers through `fileHandler` and
// against a PyTorch reading of the same files.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type * as tfjs from "@tensorflow/tfjs";
import type { Tensor, Tf } from "../../compiler/layers/ops.js";
import { isProblem, readKerasGraph, walkTo, type KerasGraph, type KerasLayer } from "./keras.js";

interface Loaded {
  graph: KerasGraph;
  manifest: tfjs.io.WeightsManifestConfig;
}

const graphs = new Map<string, Loaded>();

/** model.json of a folder, parsed once per process (the files were checked by their sha256 when the model was made). */
function loaded(folder: string): Loaded {
  let l = graphs.get(folder);
  if (!l) {
    const doc = JSON.parse(readFileSync(join(folder, "model.json"), "utf8")) as { weightsManifest: tfjs.io.WeightsManifestConfig };
    const graph = readKerasGraph(doc);
    if (isProblem(graph)) throw new Error(`${folder}/model.json: ${graph.message}`);
    l = { graph, manifest: doc.weightsManifest };
    graphs.set(folder, l);
  }
  return l;
}

/** Every weight of the folder, decoded (dequantized) to float32 tensors by tfjs. */
export function decodeFolderWeights(tf: Tf, folder: string): tfjs.NamedTensorMap {
  const { manifest } = loaded(folder);
  const out: tfjs.NamedTensorMap = {};
  for (const group of manifest) {
    const bytes = Buffer.concat(group.paths.map((p) => readFileSync(join(folder, p))));
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    Object.assign(out, tf.io.decodeWeights(buffer, group.weights));
  }
  return out;
}

/**
 * The output of layer `cut` for the images `x` [B, H, W, C]. `weight(name)` gives the tensor
 * of a weight of the manifest (`Conv1/kernel`); the caller owns and caches them.
 */
export function runKeras(tf: Tf, folder: string, cut: string, x: Tensor, weight: (name: string) => Tensor): Tensor {
  const { graph } = loaded(folder);
  const walk = walkTo(graph, cut, x.shape.slice(1));
  if (isProblem(walk)) throw new Error(`${folder}: ${walk.message}`);
  const values = new Map<string, Tensor>();
  for (const name of walk.order) {
    const l = graph.layers.get(name)!;
    const inputs = l.inputs.map((i) => values.get(i)!);
    values.set(name, l.className === "InputLayer" ? x : layer(tf, l, inputs, (w) => weight(`${name}/${w}`)));
  }
  return values.get(cut)!;
}

function pair(v: unknown, fallback: number): [number, number] {
  if (v === undefined || v === null) return [fallback, fallback];
  return typeof v === "number" ? [v, v] : (v as [number, number]);
}

function act(tf: Tf, x: Tensor, name: unknown): Tensor {
  switch (name ?? "linear") {
    case "linear":
      return x;
    case "relu":
      return tf.relu(x);
    case "relu6":
      return tf.relu6(x);
    case "sigmoid":
      return tf.sigmoid(x);
    case "tanh":
      return tf.tanh(x);
    case "elu":
      return tf.elu(x);
    case "selu":
      return tf.selu(x);
    case "softplus":
      return tf.softplus(x);
    case "swish":
      return tf.mul(x, tf.sigmoid(x));
    case "hard_sigmoid": // Keras: clip(0.2 x + 0.5, 0, 1)
      return tf.clipByValue(tf.add(tf.mul(x, 0.2), 0.5), 0, 1);
    default:
      throw new Error(`internal: activation ${String(name)} passed the check`);
  }
}

/** One Keras layer in inference mode (shape comments: B images, H x W, C channels). */
function layer(tf: Tf, l: KerasLayer, xs: Tensor[], w: (name: string) => Tensor): Tensor {
  const c = l.config;
  const x = xs[0]! as tfjs.Tensor4D;
  const padding = c.padding as "same" | "valid";
  switch (l.className) {
    case "ZeroPadding2D": {
      const p = c.padding;
      const [[t, b], [le, r]] = Array.isArray(p) && Array.isArray(p[0]) ? (p as [[number, number], [number, number]]) : (() => {
        const [a, bb] = pair(p, 1);
        return [[a, a], [bb, bb]];
      })();
      return tf.pad(x, [[0, 0], [t, b], [le, r], [0, 0]]); // [B, H+t+b, W+l+r, C]
    }
    case "Conv2D": {
      let y: Tensor = tf.conv2d(x, w("kernel") as tfjs.Tensor4D, pair(c.strides, 1), padding, "NHWC", pair(c.dilation_rate, 1)); // [B, H', W', filters]
      if (c.use_bias !== false) y = tf.add(y, w("bias"));
      return act(tf, y, c.activation);
    }
    case "DepthwiseConv2D": {
      let y: Tensor = tf.depthwiseConv2d(x, w("depthwise_kernel") as tfjs.Tensor4D, pair(c.strides, 1), padding, "NHWC", pair(c.dilation_rate, 1)); // [B, H', W', C * multiplier]
      if (c.use_bias !== false) y = tf.add(y, w("bias"));
      return act(tf, y, c.activation);
    }
    case "BatchNormalization": // inference: the moving statistics
      return tf.batchNorm(x, w("moving_mean"), w("moving_variance"), c.center === false ? undefined : w("beta"), c.scale === false ? undefined : w("gamma"), (c.epsilon as number | undefined) ?? 1e-3);
    case "ReLU": {
      // Keras: x >= threshold ? x : slope (x - threshold), then at most max_value.
      const max = c.max_value as number | null | undefined;
      const slope = (c.negative_slope as number | undefined) ?? 0;
      const threshold = (c.threshold as number | undefined) ?? 0;
      if (slope === 0 && threshold === 0) return max === 6 ? tf.relu6(x) : max == null ? tf.relu(x) : tf.clipByValue(x, 0, max);
      const below = tf.mul(tf.sub(x, threshold), slope);
      const y = tf.where(tf.greaterEqual(x, threshold), x, below);
      return max == null ? y : tf.minimum(y, max);
    }
    case "Activation":
      return act(tf, x, c.activation);
    case "Dropout":
      return x;
    case "Add":
      return tf.addN(xs);
    case "Concatenate":
      return tf.concat(xs, -1);
    case "MaxPooling2D":
      return tf.maxPool(x, pair(c.pool_size, 2), pair(c.strides ?? c.pool_size, 2), (c.padding as "same" | "valid" | undefined) ?? "valid");
    case "AveragePooling2D":
      return tf.avgPool(x, pair(c.pool_size, 2), pair(c.strides ?? c.pool_size, 2), (c.padding as "same" | "valid" | undefined) ?? "valid");
    case "GlobalAveragePooling2D":
      return tf.mean(x, [1, 2]); // [B, C]
    case "GlobalMaxPooling2D":
      return tf.max(x, [1, 2]); // [B, C]
    case "Flatten":
      return tf.reshape(x, [x.shape[0], -1]); // [B, H*W*C]
    case "Dense": {
      let y: Tensor = tf.matMul(x as unknown as tfjs.Tensor2D, w("kernel") as tfjs.Tensor2D); // [B, units]
      if (c.use_bias !== false) y = tf.add(y, w("bias"));
      return act(tf, y, c.activation);
    }
    default:
      throw new Error(`internal: Keras layer class ${l.className} passed the check`);
  }
}
