// Resolution, part 1: the files of a program (the entry file and every file it `use`s), their
// top-level declarations, and each model's sections after `extends` and overrides, with the
// environments their expressions are evaluated in. Nothing is evaluated here.
import { dirname, resolve as resolvePath } from "node:path";
import { diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import { FileError, readSpecBytes } from "../files.js";
import type { Span } from "../source.js";
import type * as A from "../syntax/ast.js";
import { parseSource, type Parsed } from "../syntax/index.js";
import { Env } from "./evaluate.js";
import { implicitTokenizer } from "./pretrained.js";
import { didYouMean } from "./suggest.js";

export const MODULES = ["encoder", "projector", "decoder"] as const;
export type ModuleName = (typeof MODULES)[number];
export const SECTIONS = ["tokenizer", "chat", ...MODULES, "train"] as const;
export type SectionName = (typeof SECTIONS)[number];

export interface SettingSyntax {
  key: A.Ident;
  expr: A.Expr;
  /** The whole entry, `key: value`. */
  span: Span;
}

/** One section of a model after inheritance: what was written, not yet evaluated. */
export interface SectionSyntax {
  name: A.Ident;
  /** The preset or kind: `vit` in `encoder vit { ... }`. */
  label?: A.Ident;
  settings: Map<string, SettingSyntax>;
  lets: A.Let[];
  /** Layer entries: chains and layer sections such as `residual { ... }`. */
  layers: (A.Chain | A.Section)[];
  /** Nested sections other than layers: stages of `train`. */
  children: Map<string, SectionSyntax>;
  /** The env the section's own expressions are evaluated in (built per model). */
  span: Span;
  /** Not written: the tokenizer a `pretrained:` decoder's folder implies (pretrained.ts). */
  implicit?: true;
}

export interface ModelSyntax {
  name: A.Ident;
  decl: A.ModelDecl;
  file: string;
  sections: Map<SectionName, SectionSyntax>;
  lets: A.Let[];
  /** Lets of the base chain, evaluated in this model (late binding). */
  env: Env;
}

export interface BlockInfo {
  decl: A.BlockDef;
  env: Env;
}

export interface Program {
  entry: string;
  files: Map<string, Parsed>;
  fileEnvs: Map<string, Env>;
  models: Map<string, { decl: A.ModelDecl; file: string }>;
  blocks: Map<string, BlockInfo>;
  /** The top-level `train` section of each file, which belongs to the file's last model. */
  topTrain: Map<string, A.Section>;
  diagnostics: Diagnostic[];
  /** True when some file failed to parse: semantic stages do not run. */
  syntaxFailed: boolean;
  /** modelSyntax() results, so that a long `extends` chain is resolved once, not once per model. */
  syntaxCache: Map<string, Omit<ModelSyntax, "env"> | null>;
}

export type ReadFile = (path: string) => { bytes: Uint8Array; tooLarge?: number };

export function loadProgram(entry: string, input?: Uint8Array | string, read: ReadFile = readSpecBytes): Program {
  const prog: Program = {
    entry,
    files: new Map(),
    fileEnvs: new Map(),
    models: new Map(),
    blocks: new Map(),
    topTrain: new Map(),
    diagnostics: [],
    syntaxFailed: false,
    syntaxCache: new Map(),
  };
  const stack: string[] = [];
  /** uses[i]: the `use` in stack[i] that is loading stack[i + 1]. */
  const uses: Span[] = [];
  const load = (path: string, parsed: Parsed) => {
    prog.files.set(path, parsed);
    prog.diagnostics.push(...parsed.diagnostics);
    if (parsed.failed || !parsed.ast) {
      prog.syntaxFailed = true;
      return;
    }
    const env = new Env(null, null);
    prog.fileEnvs.set(path, env);
    stack.push(path);
    for (const item of parsed.ast.items) {
      if (item.kind !== "Use") continue;
      const target = resolvePath(dirname(path), item.path.value);
      if (stack.includes(target)) {
        const from = stack.indexOf(target);
        prog.diagnostics.push(
          diagnostic("E0208", item.path.span, `\`use\` cycle: ${[...stack.slice(from), target].map((p) => shortName(p)).join(" -> ")}`, {
            label: `${shortName(target)} is already being loaded`,
            related: uses.slice(from).map((span, i) => ({ span, label: `${shortName(stack[from + i]!)} uses ${shortName(stack[from + i + 1]!)} here` })),
            help: ["move what both files need into a third file"],
          }),
        );
        continue;
      }
      if (!prog.files.has(target)) {
        let got: { bytes: Uint8Array; tooLarge?: number };
        try {
          got = read(target);
        } catch (err) {
          prog.diagnostics.push(
            diagnostic("E0207", item.path.span, `cannot read \`${visible(item.path.value)}\`: ${err instanceof FileError ? err.message.replace(`${target}: `, "") : String(err)}`, {
              // Not the absolute path: messages stay the same on every machine (docs/errors.md shows them).
              label: `looked for it relative to the folder of ${shortName(path)}`,
            }),
          );
          continue;
        }
        uses.push(item.path.span);
        load(target, parseSource(target, got.bytes, got.tooLarge));
        uses.pop();
      }
      const imported = prog.fileEnvs.get(target);
      if (imported) env.imports.push(imported);
    }
    stack.pop();
    declare(prog, path, parsed.ast, env);
  };
  const first = input !== undefined ? parseSource(entry, input) : (() => {
    const got = read(entry);
    return parseSource(entry, got.bytes, got.tooLarge);
  })();
  load(entry, first);
  return prog;
}

/** A path as a message may show it: control and bidi characters (a `\0` in a string) escaped. */
function visible(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
}

function shortName(p: string): string {
  return p.split("/").pop() ?? p;
}

function declare(prog: Program, path: string, ast: A.File, env: Env): void {
  let lastModel: A.ModelDecl | undefined;
  let train: A.Section | undefined;
  for (const item of ast.items) {
    switch (item.kind) {
      case "Let":
        addBinding(prog.diagnostics, env, item.name, item.value);
        break;
      case "BlockDef": {
        const prev = prog.blocks.get(item.name.name);
        if (prev) dup(prog.diagnostics, item.name, prev.decl.name.span, "block");
        else prog.blocks.set(item.name.name, { decl: item, env });
        break;
      }
      case "Model": {
        const prev = prog.models.get(item.name.name);
        if (prev) dup(prog.diagnostics, item.name, prev.decl.name.span, "model");
        else prog.models.set(item.name.name, { decl: item, file: path });
        lastModel = item;
        break;
      }
      case "Section":
        if (item.name.name === "train") {
          if (train) dup(prog.diagnostics, item.name, train.name.span, "`train` section");
          else train = item;
        } else {
          prog.diagnostics.push(
            diagnostic("E0206", item.name.span, `\`${item.name.name}\` cannot stand at the top level`, {
              label: "not a top-level declaration",
              help: [
                ...didYouMean(item.name.name, ["train", "model"]),
                SECTIONS.includes(item.name.name as SectionName) ? `put it inside a \`model NAME { ... }\`` : "the top level holds `use`, `let`, `block`, `model` and `train`",
              ],
            }),
          );
        }
        break;
      case "Use":
        break;
    }
  }
  if (train) {
    if (!lastModel) {
      // A model imported with `use` is not trained by this file's `train`: say how to train it.
      const imported = [...prog.models].filter(([, m]) => m.file !== path).map(([n, m]) => ({ name: n, file: m.file }));
      const last = imported[imported.length - 1];
      prog.diagnostics.push(
        diagnostic("E0212", train.name.span, "a `train` section needs a model to train", {
          label: "no model in this file",
          help: [
            last
              ? `\`train\` trains the last model of its own file, not one it \`use\`s: to train \`${last.name}\` (from ${shortName(last.file)}), declare \`model ${last.name}_run extends ${last.name} {}\` here`
              : "declare `model NAME { ... }` in this file (the last model of a file is the one its `train` section trains)",
          ],
        }),
      );
    } else prog.topTrain.set(path, train);
  }
}

export function addBinding(diags: Diagnostic[], env: Env, name: A.Ident, expr: A.Expr): void {
  const prev = env.names.get(name.name);
  if (prev) {
    dup(diags, name, prev.span, `\`${name.name}\``);
    return;
  }
  env.names.set(name.name, { expr, env, span: name.span });
}

export function dup(diags: Diagnostic[], name: A.Ident, first: Span, what: string): void {
  diags.push(
    diagnostic("E0205", name.span, `${what.includes("`") ? what : `${what} \`${name.name}\``} is defined twice`, {
      label: "defined again here",
      related: [{ span: first, label: "first defined here" }],
      help: ["remove one of the definitions, or rename one"],
    }),
  );
}

/** The models declared in a file, in order; the last is the file's entry model. */
export function modelsOf(prog: Program, path: string): A.ModelDecl[] {
  const ast = prog.files.get(path)?.ast;
  return ast ? ast.items.filter((i): i is A.ModelDecl => i.kind === "Model") : [];
}

// ---- sections of a model after inheritance ----

export function sectionFromAst(diags: Diagnostic[], s: A.Section, allowChildren: boolean): SectionSyntax {
  const out: SectionSyntax = { name: s.name, ...(s.label ? { label: s.label } : {}), settings: new Map(), lets: [], layers: [], children: new Map(), span: s.span };
  for (const e of s.body.entries) addEntry(diags, out, e, allowChildren);
  return out;
}

function addEntry(diags: Diagnostic[], out: SectionSyntax, e: A.Entry, allowChildren: boolean): void {
  switch (e.kind) {
    case "Setting": {
      const key = e.path.map((p) => p.name).join(".");
      if (e.path.length > 1) {
        diags.push(
          diagnostic("E0213", e.path[0]!.span, `a dotted setting \`${key}\` can only override a base model`, {
            label: "not allowed inside a section",
            help: [`write \`${e.path[e.path.length - 1]!.name}: ...\` in the section it belongs to; dotted overrides stand directly in a model body`],
          }),
        );
        return;
      }
      const prev = out.settings.get(key);
      if (prev) return dup(diags, e.path[0]!, prev.key.span, `setting \`${key}\``);
      if (out.lets.some((l) => l.name.name === key)) {
        return dup(diags, e.path[0]!, out.lets.find((l) => l.name.name === key)!.name.span, `\`${key}\``);
      }
      out.settings.set(key, { key: e.path[0]!, expr: e.value, span: e.span });
      return;
    }
    case "Let":
      if (out.settings.has(e.name.name) || out.lets.some((l) => l.name.name === e.name.name)) {
        const first = out.settings.get(e.name.name)?.key.span ?? out.lets.find((l) => l.name.name === e.name.name)!.name.span;
        return dup(diags, e.name, first, `\`${e.name.name}\``);
      }
      out.lets.push(e);
      return;
    case "Chain":
      out.layers.push(e);
      return;
    case "Section":
      if (allowChildren && e.label) {
        const prev = out.children.get(e.label.name);
        if (prev) return dup(diags, e.label, prev.label!.span, `${e.name.name} \`${e.label.name}\``);
        out.children.set(e.label.name, sectionFromAst(diags, e, false));
        return;
      }
      out.layers.push(e);
      return;
  }
}

/**
 * The sections of `decl` after `extends` and overrides. `seen` guards `extends` cycles.
 * Inherited sections are shallow copies: an override replaces one setting of the copy.
 */
export function modelSyntax(prog: Program, name: string, diags: Diagnostic[], seen: string[] = []): Omit<ModelSyntax, "env"> | null {
  if (prog.syntaxCache.has(name)) return prog.syntaxCache.get(name)!;
  const result = modelSyntaxUncached(prog, name, diags, seen);
  prog.syntaxCache.set(name, result);
  return result;
}

function modelSyntaxUncached(prog: Program, name: string, diags: Diagnostic[], seen: string[]): Omit<ModelSyntax, "env"> | null {
  const def = prog.models.get(name);
  if (!def) return null;
  const { decl } = def;
  let sections = new Map<SectionName, SectionSyntax>();
  let lets: A.Let[] = [];
  if (decl.base) {
    if (seen.includes(decl.base.name) || decl.base.name === name) {
      diags.push(
        diagnostic("E0209", decl.base.span, `model \`${name}\` extends itself through ${[...seen, name, decl.base.name].join(" -> ")}`, {
          label: "cycle",
          help: ["a model can only extend a model that does not extend it back"],
        }),
      );
      return null; // without its base, every section and override would be reported again
    } else if (!prog.models.has(decl.base.name)) {
      diags.push(
        diagnostic("E0209", decl.base.span, `unknown base model \`${decl.base.name}\``, {
          label: "no model with this name",
          help: [...didYouMean(decl.base.name, prog.models.keys()), "`use` the file that defines it"],
        }),
      );
      return null; // without its base, every section and override would be reported again
    } else {
      const base = modelSyntax(prog, decl.base.name, diags, [...seen, name]);
      if (!base) return null; // the base's own `extends` failed (reported)
      sections = new Map([...base.sections].map(([k, v]) => [k, copySection(v)]));
      lets = [...base.lets];
    }
  }
  const overrides: A.Setting[] = [];
  for (const e of decl.body.entries) {
    if (e.kind === "Let") {
      const prevIdx = lets.findIndex((l) => l.name.name === e.name.name);
      const own = decl.body.entries.filter((x): x is A.Let => x.kind === "Let" && x.name.name === e.name.name);
      if (own.length > 1 && own[0] !== e) dup(diags, e.name, own[0]!.name.span, `\`${e.name.name}\``);
      else if (prevIdx >= 0) lets[prevIdx] = e; // a derived model may redefine a base constant
      else lets.push(e);
    } else if (e.kind === "Section") {
      const sname = e.name.name;
      if (!(SECTIONS as readonly string[]).includes(sname)) {
        diags.push(
          diagnostic("E0206", e.name.span, `unknown section \`${sname}\``, {
            label: "not a section of a model",
            help: [...didYouMean(sname, SECTIONS), `a model has the sections ${SECTIONS.map((s) => `\`${s}\``).join(", ")}`],
          }),
        );
        continue;
      }
      const own = decl.body.entries.filter((x): x is A.Section => x.kind === "Section" && x.name.name === sname);
      if (own.length > 1 && own[0] !== e) {
        dup(diags, e.name, own[0]!.name.span, `section \`${sname}\``);
        continue;
      }
      sections.set(sname as SectionName, sectionFromAst(diags, e, sname === "train"));
    } else if (e.kind === "Setting") {
      if (e.path.length < 2) {
        diags.push(
          diagnostic("E0213", e.span, `a setting \`${e.path[0]!.name}\` cannot stand directly in a model`, {
            label: "settings belong to a section",
            help: ["put it inside `encoder { ... }`, `decoder { ... }`, ..., or write an override such as `decoder.layers: 4` in a model that `extends` another"],
          }),
        );
      } else overrides.push(e);
    } else {
      diags.push(
        diagnostic("E0213", e.span, "a layer chain cannot stand directly in a model", {
          label: "layers belong to a module",
          help: ["put it inside `projector { ... }`, `encoder { ... }` or `decoder { ... }`"],
        }),
      );
    }
  }
  // The file's top-level `train` belongs to the file's last model.
  const fileModels = modelsOf(prog, def.file);
  const top = prog.topTrain.get(def.file);
  if (top && fileModels[fileModels.length - 1] === decl) {
    if (decl.body.entries.some((e) => e.kind === "Section" && e.name.name === "train")) {
      dup(diags, top.name, (decl.body.entries.find((e) => e.kind === "Section" && e.name.name === "train") as A.Section).name.span, "`train` section");
    } else sections.set("train", sectionFromAst(diags, top, true));
  }
  for (const o of overrides) applyOverride(diags, sections, o, name);
  implicitTokenizer(sections);
  return { name: decl.name, decl, file: def.file, sections, lets };
}

function copySection(s: SectionSyntax): SectionSyntax {
  return { ...s, settings: new Map(s.settings), lets: [...s.lets], layers: [...s.layers], children: new Map([...s.children].map(([k, v]) => [k, copySection(v)])) };
}

function applyOverride(diags: Diagnostic[], sections: Map<SectionName, SectionSyntax>, o: A.Setting, model: string): void {
  const [head, ...rest] = o.path;
  const sname = head!.name as SectionName;
  let target = sections.get(sname);
  if (!target) {
    diags.push(
      diagnostic("E0209", head!.span, `model \`${model}\` has no section \`${head!.name}\` to override`, {
        label: "unknown section",
        help: didYouMean(head!.name, [...sections.keys()]),
      }),
    );
    return;
  }
  let keyIdent = rest[rest.length - 1]!;
  if (rest.length === 2 && sname !== "train") {
    diags.push(
      diagnostic("E0209", rest[1]!.span, `an override of \`${head!.name}\` has two parts: \`${head!.name}.${rest[0]!.name}\``, {
        label: "one part too many",
        help: ["only stages take three parts: `train.STAGE.key`"],
      }),
    );
    return;
  }
  if (rest.length === 2) {
    const child = target.children.get(rest[0]!.name);
    if (!child) {
      diags.push(
        diagnostic("E0209", rest[0]!.span, `\`${head!.name}\` has no stage \`${rest[0]!.name}\``, {
          label: "unknown stage",
          help: didYouMean(rest[0]!.name, target.children.keys()),
        }),
      );
      return;
    }
    target = child;
  } else if (rest.length > 2) {
    diags.push(diagnostic("E0209", o.path[3]!.span, "an override path has at most three parts (`train.STAGE.key`)", {}));
    return;
  }
  keyIdent = rest[rest.length - 1]!;
  target.settings.set(keyIdent.name, { key: keyIdent, expr: o.value, span: o.span });
}
