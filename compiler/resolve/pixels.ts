// How an encoder's pixels become numbers: the `normalize` and `resize` settings that every
// encoder section takes (the vit and siglip presets and a hand-written encoder alike), their
// check against the image's channels, and their resolved form (mean and std written out, so
// that the IR says exactly what the data pipeline computes: (v / 255 - mean[c]) / std[c]).
import { diagnostic } from "../diagnostics/diagnostic.js";
import type { IrPixels } from "../ir/types.js";
import type { Span } from "../source.js";
import type { SectionReader, SettingSpec } from "./section.js";
import { float, oneOf, type CallSpec, type Type, type TypedCall } from "./types.js";

/** Per-channel statistics on the [0, 1] scale, of the named RGB normalisations. */
export const NORMALIZATIONS: Record<string, { mean: number[]; std: number[]; doc: string }> = {
  imagenet: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], doc: "ImageNet's statistics (torchvision, most CNNs and ViTs)" },
  clip: { mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711], doc: "CLIP's statistics (OpenAI CLIP and models built on its encoder)" },
};

export const RESIZE_POLICIES = ["stretch", "crop", "pad"] as const;

const callees: Record<string, CallSpec> = {
  unit: { doc: "v / 255: pixels in [0, 1], any number of channels", args: [] },
  ...Object.fromEntries(Object.entries(NORMALIZATIONS).map(([k, n]) => [k, { doc: n.doc, args: [] }])),
  stats: {
    doc: "your data's own statistics, one value per channel",
    args: [
      { name: "mean", type: { t: "list", of: float() }, doc: "per-channel mean on the [0, 1] scale" },
      { name: "std", type: { t: "list", of: float(0, undefined, { minExclusive: true }) }, doc: "per-channel standard deviation on the [0, 1] scale, > 0" },
    ],
  },
};

/** The settings an encoder section takes for its pixels. */
export const pixelSettings: Record<"normalize" | "resize", SettingSpec> = {
  normalize: {
    type: { t: "call", callees } as Type,
    default: { call: "unit", args: {} },
    defaultDoc: "`unit`: [0, 1]",
    doc: "how pixels become numbers, (v / 255 - mean) / std per channel: `unit` ([0, 1]), `imagenet`, `clip`, or `stats(mean: [...], std: [...])` with one value per channel",
  },
  resize: {
    type: oneOf(...RESIZE_POLICIES),
    default: "stretch",
    doc: "how an image of another size is brought to `image`: `stretch` each axis, `crop` (cover, then cut the centre) or `pad` (fit, then letterbox in black)",
  },
};

/**
 * The resolved pixel settings of an encoder whose image has `channels` channels, or null when a
 * setting failed (reported by the reader) or its values are not one per channel (E0406).
 */
export function readPixels(r: SectionReader, channels: number): IrPixels | null {
  const n = r.get("normalize") as TypedCall | null;
  const resize = r.get("resize") as IrPixels["resize"] | null;
  if (!n || !resize) return null;
  if (n.call === "unit") return { normalize: "unit", mean: Array<number>(channels).fill(0), std: Array<number>(channels).fill(1), resize };
  const named = NORMALIZATIONS[n.call];
  const mean = named ? named.mean : (n.args.mean as number[]);
  const std = named ? named.std : (n.args.std as number[]);
  const image = `the image has ${channels} channel${channels === 1 ? "" : "s"}`;
  if (named && channels !== named.mean.length) {
    r.diags.push(
      diagnostic("E0406", r.span("normalize"), `\`${n.call}\` normalises ${named.mean.length} channels, but ${image}`, {
        label: `${named.mean.length} channels (RGB)`,
        related: [{ span: r.span("image"), label: `${channels} channel${channels === 1 ? "" : "s"}` }],
        help: ["use `stats(mean: [...], std: [...])` with one value per channel, or `unit`"],
      }),
    );
    return null;
  }
  for (const [i, key, list] of [[0, "mean", mean], [1, "std", std]] as const) {
    if (list.length === channels) continue;
    r.diags.push(
      diagnostic("E0406", argSpan(r, key, i), `\`${key}\` of \`stats\` has ${list.length} value${list.length === 1 ? "" : "s"}, but ${image}`, {
        label: `expected ${channels} value${channels === 1 ? "" : "s"}, one per channel`,
        related: [{ span: r.span("image"), label: `${channels} channel${channels === 1 ? "" : "s"}` }],
      }),
    );
    return null;
  }
  return { normalize: n.call, mean: [...mean], std: [...std], resize };
}

/** Where argument `name` (or the `index`-th positional) of the written `normalize` call is, else the whole setting. */
function argSpan(r: SectionReader, name: string, index: number): Span {
  const e = r.syntax.settings.get("normalize")?.expr;
  if (e?.kind !== "Call") return r.span("normalize");
  const named = e.args.find((a) => a.name?.name === name);
  const positional = e.args.filter((a) => !a.name)[index];
  return (named ?? positional)?.value.span ?? r.span("normalize");
}
