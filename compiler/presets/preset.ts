// A preset is a named expansion of a section's settings into layers (`encoder vit { ... }`),
// documented by its schema. Its layers carry the spans of the settings they come from, so a
// shape error inside a preset points at the setting to change.
import { layerKinds } from "../layers/index.js";
import type { LayerNode } from "../layers/kind.js";
import type { SectionReader, Schema } from "../resolve/section.js";
import type { Typed } from "../resolve/types.js";
import type { Span } from "../source.js";

export interface Preset {
  section: "encoder" | "decoder" | "projector";
  name: string;
  doc: string;
  settings: Schema;
  /** The layers, or null when a setting it needs failed (already reported). */
  build(r: SectionReader): LayerNode[] | null;
}

/**
 * A layer node with the kind's defaults filled in. `from` maps argument names to the settings
 * they come from, so that errors about an argument point at that setting.
 */
export function node(r: SectionReader, kind: string, name: string, args: Record<string, Typed>, from: Record<string, string> = {}, children?: LayerNode[]): LayerNode {
  const k = layerKinds.get(kind);
  if (!k) throw new Error(`internal: unknown layer kind ${kind}`);
  const full: Record<string, Typed> = {};
  for (const spec of k.args) {
    const v = args[spec.name];
    if (v !== undefined) full[spec.name] = v;
    else if (spec.default !== undefined) full[spec.name] = typeof spec.default === "function" ? spec.default(full) : spec.default;
  }
  const header = (r.syntax.label ?? r.syntax.name).span;
  const argSpans: Record<string, Span> = {};
  for (const [arg, setting] of Object.entries(from)) argSpans[arg] = r.span(setting);
  const firstSetting = Object.values(from)[0];
  return { kind, name, args: full, argSpans, span: firstSetting ? r.span(firstSetting) : header, ...(children ? { children } : {}) };
}

/** Reads the named settings, or null if any failed (the failure is already reported). */
export function read<K extends string>(r: SectionReader, keys: readonly K[]): Record<K, Typed> | null {
  const out = {} as Record<K, Typed>;
  let ok = true;
  for (const k of keys) {
    const v = r.get(k);
    if (v === null) ok = false;
    else out[k] = v;
  }
  return ok ? out : null;
}
