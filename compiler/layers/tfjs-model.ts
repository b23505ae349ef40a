// tfjs_model: a frozen pretrained image encoder from a tfjs LayersModel folder, cut at a named
// layer; its feature map [B, h, w, C] becomes h*w visual tokens [B, h*w, C]. Made by the `tfjs`
// encoder preset (compiler/presets/tfjs.ts), which reads model.json at check time and records
// here everything the shape rule needs (the image it takes, the cut's feature map), so that an
// IR document is checked without the folder. Its weights are the folder's, not vlmc parameters:
// never trained, never in a checkpoint; the files' sha256 are recorded and checked when a model
// is made (runtime/pretrained/index.ts).
import { float, int, LIMITS, str } from "../resolve/types.js";
import { decodeFolderWeights, runKeras } from "../../runtime/pretrained/execute.js";
import { formatShape, type LayerKind } from "./kind.js";

export const tfjsModel: LayerKind = {
  name: "tfjs_model",
  doc: "A frozen pretrained tfjs LayersModel cut at a layer: image [B, H, W, C] -> its feature map [B, h, w, C'] as tokens [B, h*w, C'] (a vector [B, C'] as one token).",
  internal: true,
  args: [
    { name: "weights", type: str, doc: "the model's folder (model.json and its shards), relative to the IR document like a module's `weights`; not hashed (its files' `sha256` are)" },
    { name: "files", type: { t: "list", of: str }, doc: "the folder's files: model.json, then the weight shards" },
    { name: "sha256", type: { t: "list", of: str }, doc: "each file's sha256, checked when a model is made" },
    { name: "layer", type: str, doc: "the Keras layer whose output is the encoder's output" },
    { name: "image", type: { t: "dims", rank: 3, max: LIMITS.image }, doc: "the input it takes, height x width x channels (the model's input, rewritten)" },
    { name: "features", type: { t: "list", of: int(1) }, doc: "the cut layer's output per image, [h, w, C'] or [C']" },
    { name: "flops", type: float(0), default: 0, doc: "forward FLOPs per image up to the cut (from model.json)" },
    { name: "frozen_params", type: int(0, 1e12), default: 0, doc: "the model's weights up to the cut (frozen: not vlmc parameters)" },
  ],
  shape(ctx) {
    const s = ctx.input.shape;
    const image = ctx.args.image as number[];
    if (s.length !== 4 || s.slice(1).join() !== image.join()) {
      return ctx.report("E0308", `\`tfjs_model\` takes images [B, ${image.join(", ")}], found ${formatShape(s)}`, { label: `receives ${formatShape(s)}` });
    }
    const f = ctx.args.features as number[];
    const tokens = f.length === 3 ? f[0]! * f[1]! : 1;
    return { shape: [s[0]!, tokens, f[f.length - 1]!], origin: ctx.argSpan("layer"), tokens: ctx.argSpan("image") };
  },
  flops: (args, input) => (args.flops as number) * input[0]!,
  lower(ctx, x) {
    const { tf } = ctx;
    const folder = ctx.attrs.weights as string;
    const [b] = x.shape as [number];
    // The folder's weights, decoded once per model and kept as its constants (freed with it).
    let decoded: ReturnType<typeof decodeFolderWeights> | null = null;
    const taken = new Set<string>();
    const weight = (name: string) =>
      ctx.constant(`tfjs_model:${folder}:${name}`, () => {
        decoded ??= decodeFolderWeights(tf, folder);
        const t = decoded[name];
        if (!t) throw new Error(`${folder}: model.json's manifest has no weight ${name}`);
        taken.add(name);
        return t;
      });
    const y = runKeras(tf, folder, ctx.attrs.layer as string, x, weight); // [B, h, w, C'] or [B, C']
    if (decoded) for (const [name, t] of Object.entries(decoded as Record<string, { dispose(): void }>)) if (!taken.has(name)) t.dispose();
    return tf.reshape(y, [b, -1, y.shape[y.shape.length - 1]!]); // [B, h*w, C']
  },
};
