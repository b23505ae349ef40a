// `pretrained: "folder"`: a section's settings and weights taken from a model folder (a Hugging
// Face checkpoint: config.json, model.safetensors, tokenizer files) instead of restated by hand.
// The folder is one source of truth: a setting the spec leaves out takes the folder's value, a
// written one must agree with it (E0720), and the weights file is the folder's.
//
// How a preset (or tokenizer kind) plugs in: give its schema a `pretrained` setting made by
// `pretrainedSetting(kind)`, where `kind` says which files the folder must hold and turns them
// into the section's settings. Nothing else changes: SectionReader.get() asks `fromFolder` for
// a setting that is not written and `againstFolder` for one that is, and SectionReader.span()
// points a folder's setting at the `pretrained:` entry, so every later diagnostic (a shape, a
// weights header's E070x, ...) lands on the line that brought the value in. For a module, the
// folder's weights file is the `weights` setting's value (`kind.read` returns it, through
// `folder.file("model.safetensors")`), so the check-time header validation, the IR and the
// runtime read it exactly as a written `weights:`. For example, an encoder preset:
//
//   const clipFolder: PretrainedKind = {
//     what: "a Hugging Face CLIP vision checkpoint",
//     requires: ["config.json", "model.safetensors"],
//     exclusive: ["weights"],
//     read: (f) => { const c = f.json("config.json"); ...; return { settings: { dim: c.hidden_size, ..., weights: f.file("model.safetensors") }, problems: [] }; },
//   };
//   settings: { ..., pretrained: pretrainedSetting(clipFolder) }
//
// The gpt decoder's kind is `gptFolder` (compiler/presets/gpt.ts), the hf tokenizer's
// `hfTokenizerFolder` (tokenizer.ts); `implicitTokenizer` below concerns decoders only.
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, posix, resolve } from "node:path";
import { diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { Span } from "../source.js";
import type { Ident } from "../syntax/ast.js";
import type { SectionName, SectionSyntax } from "./program.js";
import type { SectionReader, SettingSpec } from "./section.js";
import { str, type Typed } from "./types.js";

/** The setting's name in every schema that has one. */
export const PRETRAINED = "pretrained";

/** A folder being read by a `PretrainedKind`. */
export interface PretrainedFolder {
  /** As written in the spec (relative to the spec's folder). */
  written: string;
  /** Absolute. */
  path: string;
  /** A file of the folder as a setting would write it, relative to the spec: `gpt2/model.safetensors`. */
  file(name: string): string;
  /** Whether the folder holds a (regular) file. */
  has(name: string): boolean;
  /** A JSON file of the folder, parsed; undefined when absent. Throws `FolderProblem` on invalid JSON. */
  json(name: string): unknown;
}

/** A problem with the folder's files that `read` throws (invalid JSON): reported as E0721. */
export class FolderProblem extends Error {}

export interface PretrainedKind {
  /** What the folder is, for messages: "a Hugging Face GPT-2 checkpoint". */
  what: string;
  /** Files the folder must hold (E0721 when one is missing). */
  requires: readonly string[];
  /**
   * The section's settings from the folder, by the schema's names; `problems` (one line each)
   * when the folder cannot be expressed (an unsupported `model_type`, ...): settings null then.
   */
  read(folder: PretrainedFolder): { settings: Record<string, Typed> | null; problems: string[] };
  /** Where a setting's value comes from, for messages: `n_embd` in config.json. */
  origin?(key: string): string | undefined;
  /** Settings whose folder value is only a default: a written value wins (dropout, specials). */
  soft?: readonly string[];
  /** Settings the spec may write smaller than the folder's (a decoder's `context`). */
  atMost?: readonly string[];
  /** Settings that cannot be written beside `pretrained:` (the weights file is the folder's): E0722. */
  exclusive?: readonly string[];
  /** Help for a folder that lacks a required file, after the generic one. */
  missingHelp?: string;
  /** Checks after a successful read, e.g. the vocabulary against the tokenizer. */
  verify?(r: SectionReader, settings: Readonly<Record<string, Typed>>, span: Span): void;
}

/** The `pretrained` setting of a schema whose sections can be read from a folder of `kind`. */
export function pretrainedSetting(kind: PretrainedKind): SettingSpec {
  return {
    type: str,
    default: "",
    defaultDoc: "none",
    doc: `a model folder (${kind.what}: ${kind.requires.join(", ")}), relative to the spec; the settings not written take its values`,
    folder: kind,
  };
}

interface Loaded {
  /** null: the folder failed (reported). */
  settings: Record<string, Typed> | null;
  span: Span;
  written: string;
  kind: PretrainedKind;
}

/** Per reader: its folder, read once (undefined: no `pretrained:` written). */
const loadedOf = new WeakMap<SectionReader, Loaded | undefined>();

/** Pushes a diagnostic unless the same one is there (the decoder and its implicit tokenizer share a folder). */
function report(r: SectionReader, d: Diagnostic): void {
  const same = (x: Diagnostic) => x.code === d.code && x.message === d.message && x.span.file === d.span.file && x.span.start === d.span.start;
  if (!r.diags.some(same)) r.diags.push(d);
}

function load(r: SectionReader): Loaded | undefined {
  if (loadedOf.has(r)) return loadedOf.get(r);
  loadedOf.set(r, undefined);
  const kind = r.schema[PRETRAINED]?.folder;
  if (!kind || !r.has(PRETRAINED)) return undefined;
  const written = r.get(PRETRAINED) as string | null;
  const span = r.span(PRETRAINED);
  if (written === "") return undefined;
  const loaded: Loaded = { settings: null, span, written: written ?? "", kind };
  loadedOf.set(r, loaded);
  if (written === null) return loaded;
  const fail = (message: string, extras: { label?: string; notes?: string[]; help?: string[] } = {}) => {
    report(r, diagnostic("E0721", span, message, { label: extras.label ?? `not ${kind.what}`, notes: extras.notes ?? [], help: extras.help ?? [] }));
    return loaded;
  };
  const path = resolve(dirname(span.file), written);
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    return fail(`model folder \`${written}\` not found`, { label: "no such folder (paths are relative to the spec file's folder)" });
  }
  if (!isDir) return fail(`\`${written}\` is a file, not a model folder`, { label: "not a folder", help: [`\`pretrained:\` names the folder that holds ${kind.requires.join(", ")}`] });
  const isFile = (name: string) => {
    try {
      return statSync(join(path, name)).isFile();
    } catch {
      return false;
    }
  };
  const missing = kind.requires.filter((f) => !isFile(f));
  if (missing.length) {
    return fail(`model folder \`${written}\` has no ${missing.map((m) => `\`${m}\``).join(" or ")}`, {
      label: `missing ${missing.join(", ")}`,
      notes: [`${kind.what} holds ${kind.requires.join(", ")}`],
      help: ["save the checkpoint with Hugging Face `save_pretrained` (weights as safetensors), or point `pretrained:` at the folder that holds these files", ...(kind.missingHelp ? [kind.missingHelp] : [])],
    });
  }
  const folder: PretrainedFolder = {
    written,
    path,
    file: (name) => posix.join(written.replace(/\\/g, "/"), name),
    has: isFile,
    json(name) {
      const p = join(path, name);
      if (!existsSync(p)) return undefined;
      let text: string;
      try {
        text = readFileSync(p, "utf8");
      } catch (err) {
        throw new FolderProblem(`\`${name}\` cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      }
      try {
        return JSON.parse(text) as unknown;
      } catch (err) {
        throw new FolderProblem(`\`${name}\` is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
      }
    },
  };
  let got: ReturnType<PretrainedKind["read"]>;
  try {
    got = kind.read(folder);
  } catch (err) {
    if (!(err instanceof FolderProblem)) throw err;
    return fail(`model folder \`${written}\` cannot be read: ${err.message}`, { label: "invalid file in this folder" });
  }
  if (!got.settings) {
    const [first, ...rest] = got.problems;
    return fail(`model folder \`${written}\` is not ${kind.what} vlmc can use: ${first ?? "unsupported"}`, { notes: rest });
  }
  loaded.settings = got.settings;
  kind.verify?.(r, got.settings, span);
  return loaded;
}

/**
 * The folder's value of an unwritten setting: undefined when there is no folder or it does not
 * give this setting (the schema's default applies), null when the folder failed (reported).
 */
export function fromFolder(r: SectionReader, key: string): Typed | null | undefined {
  if (key === PRETRAINED) return undefined;
  const l = load(r);
  if (!l) return undefined;
  if (!l.settings) return null;
  return l.settings[key];
}

/** Whether the setting's value (or default) comes from the folder: its span is then the `pretrained:` entry's. */
export function folderSpan(r: SectionReader, key: string): Span | undefined {
  if (key === PRETRAINED || !r.schema[PRETRAINED]?.folder || !r.has(PRETRAINED)) return undefined;
  const l = load(r);
  return l?.settings && key in l.settings ? l.span : undefined;
}

const show = (v: Typed): string => {
  if (Array.isArray(v)) return `[${v.map(show).join(", ")}]`;
  if (typeof v === "object") return `${v.call}(${Object.entries(v.args).map(([k, a]) => `${k}: ${show(a)}`).join(", ")})`;
  return typeof v === "string" ? JSON.stringify(v) : String(v);
};

function same(a: Typed, b: Typed): boolean {
  if (typeof a === "number" && typeof b === "number") return a === b || Math.abs(a - b) <= 1e-12 * Math.max(Math.abs(a), Math.abs(b));
  if (typeof a !== "object" || typeof b !== "object") return a === b;
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]!));
  const ka = Object.keys(a.args);
  return a.call === b.call && ka.length === Object.keys(b.args).length && ka.every((k) => k in b.args && same(a.args[k]!, b.args[k]!));
}

/**
 * A written setting against the folder: its value when it agrees (or the folder has no say),
 * null after E0720 (it disagrees) or E0722 (it cannot be written beside `pretrained:`).
 */
export function againstFolder(r: SectionReader, key: string, value: Typed): Typed | null {
  if (key === PRETRAINED || !r.schema[PRETRAINED]?.folder || !r.has(PRETRAINED)) return value;
  const l = load(r);
  if (!l) return value;
  const at = r.span(key);
  if (l.kind.exclusive?.includes(key)) {
    r.diags.push(
      diagnostic("E0722", at, `\`${key}\` cannot be written beside \`pretrained:\``, {
        label: `the folder gives the ${key}`,
        related: [{ span: l.span, label: `\`${l.written}\` is used as ${l.kind.what}` }],
        help: [`remove \`${key}\` to use the folder's, or remove \`pretrained\` and write the settings yourself`],
      }),
    );
    return null;
  }
  if (!l.settings) return null;
  const theirs = l.settings[key];
  if (theirs === undefined || l.kind.soft?.includes(key) || same(value, theirs)) return value;
  const origin = l.kind.origin?.(key);
  const from = origin ? `${origin} of \`${l.written}\`` : `\`${l.written}\``;
  if (l.kind.atMost?.includes(key) && typeof value === "number" && typeof theirs === "number") {
    if (value < theirs) return value;
    r.diags.push(
      diagnostic("E0720", at, `\`${key}\` is ${value} here, more than the pretrained model's ${theirs}`, {
        label: `at most ${theirs}`,
        related: [{ span: l.span, label: `${from} says ${theirs}` }],
        help: [`write at most \`${key}: ${theirs}\`, or remove it to take ${theirs}`],
      }),
    );
    return null;
  }
  r.diags.push(
    diagnostic("E0720", at, `\`${key}\` is ${show(value)} here, but the pretrained model's is ${show(theirs)}`, {
      label: `the folder says ${show(theirs)}`,
      related: [{ span: l.span, label: `${from} says ${show(theirs)}` }],
      help: [`remove \`${key}\` (it is taken from the folder), or write \`${key}: ${show(theirs)}\``],
    }),
  );
  return null;
}

/**
 * A decoder with `pretrained:` and no `tokenizer` section gets the folder's tokenizer: an
 * implicit `tokenizer hf { pretrained: <the decoder's folder> }`, spanning the decoder's
 * `pretrained:` entry (so its diagnostics point there). Marked `implicit`, so that a model that
 * `extends` one and overrides `decoder.pretrained` gets its own folder's tokenizer, and one that
 * writes a `tokenizer` section keeps it.
 */
export function implicitTokenizer(sections: Map<SectionName, SectionSyntax>): void {
  const tok = sections.get("tokenizer");
  if (tok && !tok.implicit) return;
  const p = sections.get("decoder")?.settings.get(PRETRAINED);
  if (!p) {
    if (tok) sections.delete("tokenizer");
    return;
  }
  const id = (name: string): Ident => ({ kind: "Ident", name, span: p.span });
  sections.set("tokenizer", {
    name: id("tokenizer"),
    label: id("hf"),
    settings: new Map([[PRETRAINED, { key: id(PRETRAINED), expr: p.expr, span: p.span }]]),
    lets: [],
    layers: [],
    children: new Map(),
    span: p.span,
    implicit: true,
  });
}
