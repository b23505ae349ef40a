// The registry of presets, by section.
import { gpt, llama } from "./gpt.js";
import type { Preset } from "./preset.js";
import { tfjs } from "./tfjs.js";
import { siglip, vit } from "./vit.js";

export const presets: readonly Preset[] = [vit, siglip, tfjs, gpt, llama];

export function presetsOf(section: string): Preset[] {
  return presets.filter((p) => p.section === section);
}

export type { Preset } from "./preset.js";
