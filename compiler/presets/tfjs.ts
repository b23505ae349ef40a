// The `tfjs` encoder preset: a frozen pretrained image encoder from a tfjs LayersModel folder
// (model.json and its weight shards), cut at a named Keras layer, whose feature map becomes the
// visual tokens. The folder is read at check time without tfjs (runtime/pretrained/): the walk
// over its Keras graph gives the shapes, so the projector is checked against the real width
// (1280 for MobileNetV2 at `out_relu`), and the files' sha256 go into the IR. Its pixel settings
// default to the folder's preprocessor_config.json. It is always frozen: its weights are the
// folder's, and training it would need the gradient of a convolution's filter
// (Conv2DBackpropFilter), which tfjs's wasm backend does not have.
//
//   encoder tfjs { model: "nsfwjs-mobilenet_v2", layer: "out_relu", image: 96 x 96 x 3 }
import { resolve, dirname } from "node:path";
import { diagnostic } from "../diagnostics/diagnostic.js";
import type { LayerNode } from "../layers/kind.js";
import { pixelSettings } from "../resolve/pixels.js";
import type { SectionReader } from "../resolve/section.js";
import { closest, didYouMean } from "../resolve/suggest.js";
import { int, LIMITS, oneOf, str, type TypedCall } from "../resolve/types.js";
import { BUILTIN_MODELS, FolderProblem, readTfjsFolder, type TfjsFolder } from "../../runtime/pretrained/folder.js";
import { isProblem, RULES, walkTo } from "../../runtime/pretrained/keras.js";
import { node, type Preset } from "./preset.js";

/** The folder of each section, read once (null: it failed, reported). */
const folders = new WeakMap<SectionReader, TfjsFolder | null>();

function folderOf(r: SectionReader): TfjsFolder | null {
  if (folders.has(r)) return folders.get(r)!;
  folders.set(r, null);
  const written = r.get("model") as string | null;
  if (written === null) return null;
  // A builtin's name, or a path relative to the file that wrote it (a base model's file, for an inherited setting).
  const builtin = Object.hasOwn(BUILTIN_MODELS, written) ? BUILTIN_MODELS[written]! : null;
  const path = builtin ?? resolve(dirname(r.span("model").file), written);
  try {
    const f = readTfjsFolder(path);
    folders.set(r, f);
    return f;
  } catch (err) {
    // A FolderProblem, or the file system's own (a folder that cannot be read: EACCES, EISDIR, ...).
    if (!(err instanceof FolderProblem) && typeof (err as NodeJS.ErrnoException).code !== "string") throw err;
    const problem = err instanceof FolderProblem ? err : new FolderProblem((err as Error).message.replace(/^[A-Z]+: /, ""));
    r.diags.push(
      diagnostic("E0730", r.span("model"), `cannot read the tfjs model \`${written}\`: ${problem.message}`, {
        label: builtin ? "vlmc's own model (models/ in its package)" : "looked for it relative to the folder of this spec",
        help: [...(builtin ? [] : didYouMean(written, Object.keys(BUILTIN_MODELS)).map((h) => `${h} (vlmc's own MobileNetV2)`)), ...problem.help],
      }),
    );
    return null;
  }
}

/** The pixel settings preprocessor_config.json declares, when the folder has one. */
function preprocessor(r: SectionReader) {
  return r.has("model") ? (folderOf(r)?.preprocessor ?? null) : null;
}

export const tfjs: Preset = {
  section: "encoder",
  name: "tfjs",
  doc: "A frozen pretrained image encoder from a tfjs LayersModel folder (model.json and its weight shards), cut at a named layer: its feature map [h, w, C] becomes h*w visual tokens of width C. Never trained (its weights are the folder's, not vlmc parameters); the folder's files are checked by their sha256 whenever a model is made. `npm ci` extracts the MobileNetV2 of the nsfwjs package to models/nsfwjs-mobilenet_v2/.",
  settings: {
    model: {
      type: str,
      doc: 'the folder of a tfjs LayersModel (model.json and its weight shards), or its model.json, relative to the spec; or the name of one of vlmc\'s own: `"nsfwjs-mobilenet_v2"` (MobileNetV2 from the nsfwjs package, extracted by `npm ci` into models/)',
    },
    layer: { type: str, doc: "the Keras layer whose output the encoder hands on, e.g. `out_relu` (MobileNetV2's last feature map)" },
    image: {
      type: { t: "dims", rank: 3, max: LIMITS.image },
      default: (r) => folderOf(r)?.graph.input.shape ?? null,
      defaultDoc: "the model's input (model.json)",
      doc: "input image, height x width x channels; another size than the model's own works when every layer up to `layer` is convolutional (convolutions, pooling, batch norm, activations, padding, Add)",
    },
    output: {
      type: oneOf("patches", "pool"),
      default: "patches",
      doc: "`patches`: every position of the feature map as a token (h*w tokens), `pool`: their mean (1 token)",
    },
    tokens: { type: int(0), default: 0, defaultDoc: "derived", doc: "visual tokens out; derived, checked if written" },
    normalize: {
      ...pixelSettings.normalize,
      default: (r): TypedCall | null => {
        const p = preprocessor(r);
        if (!p || (p.mean.every((m) => m === 0) && p.std.every((s) => s === 1))) return { call: "unit", args: {} };
        return { call: "stats", args: { mean: p.mean, std: p.std } };
      },
      defaultDoc: "the folder's preprocessor_config.json, else `unit`",
    },
    resize: { ...pixelSettings.resize, default: (r) => preprocessor(r)?.resize ?? "stretch", defaultDoc: "the folder's preprocessor_config.json, else `stretch`" },
  },
  build(r) {
    const f = folderOf(r);
    const layer = r.get("layer") as string | null;
    const image = r.get("image") as number[] | null;
    const output = r.get("output") as string | null;
    if (!f || layer === null || !image || !output) return null;
    const g = f.graph;
    if (!g.layers.has(layer)) {
      const near = closest(layer, g.layers.keys());
      const maps = [...g.layers.values()].filter((l) => RULES[l.className] && !["Flatten", "Dense", "GlobalAveragePooling2D", "GlobalMaxPooling2D"].includes(l.className)).map((l) => l.name);
      r.diags.push(
        diagnostic("E0731", r.span("layer"), `the tfjs model has no layer \`${layer}\``, {
          label: near ? `did you mean \`${near}\`?` : "no such layer",
          notes: [`its last feature maps: ${maps.slice(-4).map((n) => `\`${n}\``).join(", ")} (${g.layers.size} layers in all, listed in model.json)`],
          help: near ? [`write \`layer: "${near}"\``] : ["name a layer of model.json's `layers`"],
        }),
      );
      return null;
    }
    const walk = walkTo(g, layer, image);
    if (isProblem(walk)) {
      const size = walk.kind === "size";
      r.diags.push(
        diagnostic(size ? "E0733" : "E0732", size && r.has("image") ? r.span("image") : r.span("layer"), size ? `the tfjs model cannot take a ${image.join(" x ")} image: ${walk.message}` : `the tfjs model cannot be run up to \`${layer}\`: ${walk.message}`, {
          label: size ? `the model's own input is ${g.input.shape.join(" x ")}` : `on the way to \`${layer}\``,
          help: walk.help ?? (size ? [] : ["cut the model at a layer before it"]),
        }),
      );
      return null;
    }
    const features = walk.shapes.get(layer)!;
    if (features.length !== 3 && features.length !== 1) {
      r.diags.push(diagnostic("E0732", r.span("layer"), `\`${layer}\` outputs [${features.join(", ")}]: neither a feature map [h, w, C] nor a vector [C]`, { help: ["cut the model at a layer that outputs a feature map"] }));
      return null;
    }
    const args = {
      weights: f.folder,
      files: f.files.map((x) => x.name),
      sha256: f.files.map((x) => x.sha256),
      layer,
      image,
      features,
      flops: walk.flops,
      frozen_params: walk.params,
    };
    const layers: LayerNode[] = [node(r, "tfjs_model", "backbone", args, { layer: "layer", image: "image", weights: "model" })];
    if (output === "pool") layers.push(node(r, "take", "take", { which: "pool" }, { which: "output" }));
    return layers;
  },
};

/** A module that is a frozen pretrained part (never trained, never given `weights`): why, or null. */
export function frozenPretrained(layers: readonly LayerNode[]): string | null {
  return layers.some((l) => l.kind === "tfjs_model") ? "a `tfjs` encoder's weights are its model folder's" : null;
}
