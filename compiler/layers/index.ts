// The registry of layer kinds. Adding a kind: write its unit beside these and list it here.
import { gelu, quickGelu, relu, silu } from "./activations.js";
import { attention } from "./attention.js";
import { dropout } from "./dropout.js";
import { join } from "./join.js";
import type { LayerKind } from "./kind.js";
import { layernorm } from "./layernorm.js";
import { linear } from "./linear.js";
import { lmHead } from "./lm-head.js";
import { mlp } from "./mlp.js";
import { patchEmbed } from "./patch-embed.js";
import { positions } from "./positions.js";
import { residual, sequence } from "./residual.js";
import { rmsnorm } from "./rmsnorm.js";
import { swiglu } from "./swiglu.js";
import { take } from "./take.js";
import { tfjsModel } from "./tfjs-model.js";
import { tokenEmbed } from "./token-embed.js";

export const layerKinds: ReadonlyMap<string, LayerKind> = new Map(
  [patchEmbed, positions, layernorm, rmsnorm, linear, gelu, quickGelu, silu, relu, dropout, attention, mlp, swiglu, residual, take, tokenEmbed, join, lmHead, sequence, tfjsModel].map((k) => [k.name, k]),
);

/** Kinds a user may write in a chain. */
export const userKinds = (): string[] => [...layerKinds.values()].filter((k) => !k.internal).map((k) => k.name);

export type { LayerKind, LayerNode, Shape, Dim, TensorType, ParamSpec } from "./kind.js";
