// Reading an IR document (JSON or YAML) back: parse it with positions, check its version,
// validate it against schemas/ir.schema.json with ajv, then verify its meaning (verify.ts).
// Every problem is a diagnostic at a file:line:column of the document: E0602 when the file is
// not a readable IR at all (syntax, version), E0601 when it is one but is wrong.
//
// ajv and yaml are loaded on first use, never on import: `vlmc check model.vlm` stays fast.
import { existsSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, extname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { ErrorObject, Options as AjvOptions, ValidateFunction } from "ajv";
import type { Document } from "yaml";
import { catalogue } from "../diagnostics/codes.js";
import { diagnostic, hasErrors, type Diagnostic } from "../diagnostics/diagnostic.js";
import { FileError, reason } from "../files.js";
import { didYouMean } from "../resolve/suggest.js";
import { SourceFile, type Span } from "../source.js";
import { documentLocator, nowhere, type IrLocator, type IrPath } from "./locate.js";
import { IR_VERSION, type Ir } from "./types.js";
import { show, verifyIr } from "./verify.js";
import { yamlLib } from "./yaml.js";

export type { IrLocator, IrPath } from "./locate.js";

/** The largest IR file read (a 20,000-layer model is a few MB). */
export const MAX_IR_BYTES = 64 * 1024 * 1024;
/** Schema findings past this many are summed up in a note. */
const MAX_SCHEMA_FINDINGS = 20;

export interface IrInput {
  /** The document, when it is a valid IR; null when any error was reported. */
  ir: Ir | null;
  diagnostics: Diagnostic[];
  /** The document's text, for rendering diagnostics. */
  source: SourceFile;
  sources: Map<string, SourceFile>;
  /** The absolute folder that paths in the IR are relative to (the document's folder). */
  baseDir: string;
  /** Positions of the document's values. */
  locator: IrLocator;
}

/** `.json`, `.yaml` and `.yml` files are IR documents; everything else is a spec. */
export function isIrPath(path: string): boolean {
  return [".json", ".yaml", ".yml"].includes(extname(path).toLowerCase());
}

/** Reads, validates and verifies an IR file. Throws FileError when it cannot be read at all. */
export function readIr(path: string): IrInput {
  let bytes: Buffer;
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new FileError(path, `${path}: is a directory, not a file`);
    if (st.size > MAX_IR_BYTES) throw new FileError(path, `${path}: larger than ${MAX_IR_BYTES / 1024 / 1024} MiB, too large for an IR document`);
    bytes = readFileSync(path);
  } catch (err) {
    if (err instanceof FileError) throw err;
    throw new FileError(path, `${path}: ${reason(err)}`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const source = new SourceFile(path, "");
    return failed(path, source, [diagnostic("E0602", source.span(0, 0), "the IR file is not UTF-8 text", { help: [catalogue.E0602.fix] })]);
  }
  return parseIr(path, text);
}

/** Parses, validates and verifies IR text (JSON or YAML); `path` names it in diagnostics. */
export function parseIr(path: string, text: string): IrInput {
  const source = new SourceFile(path, text);
  const json = extname(path).toLowerCase() === ".json";
  // Positions come from the yaml package's nodes (JSON is YAML). A .json file is read with
  // JSON.parse, many times faster on large documents; its nodes are parsed only when a
  // diagnostic needs a position.
  let doc: Document | undefined;
  const parseDoc = (): Document =>
    (doc ??= yamlLib().parseDocument(text, { prettyErrors: false, uniqueKeys: true, stringKeys: true, version: "1.2", schema: "core" }));
  let loc: IrLocator | undefined;
  const locator: IrLocator = {
    at: (p) => (loc ??= documentLocator(parseDoc(), path, text)).at(p),
    key: (p) => (loc ??= documentLocator(parseDoc(), path, text)).key(p),
  };
  const unreadable = (span: Span, message: string, help: string[] = [catalogue.E0602.fix]) => failed(path, source, [diagnostic("E0602", span, message, { help })], locator);
  // The parsers and the validator recurse: a document nested absurdly deep could exhaust the
  // stack (or crash the process) instead of giving a diagnostic. No IR comes near the limit.
  const deep = tooDeep(text);
  if (deep >= 0) return unreadable(source.span(deep, deep + 1), `the IR file is nested more than ${MAX_DEPTH} levels deep`, ["no IR nests this deep: the file is probably not one written by vlmc", catalogue.E0602.fix]);
  let data: unknown;
  let parsed = false;
  if (json) {
    try {
      data = JSON.parse(text);
      parsed = true;
    } catch (e) {
      // Not JSON; YAML (a superset) is still read, as from a .yaml file.
      const d = parseDoc();
      if (d.errors.length > 0 || d.contents === null) {
        const message = firstLine((e as Error).message);
        const at = /position (\d+)/.exec(message);
        // (JSON.parse names the end of the text when it ends too soon: the span stays inside.)
        const offset = Math.min(at ? Number(at[1]) : (d.errors[0]?.pos[0] ?? text.length), text.length);
        return unreadable(source.span(offset, Math.min(offset + 1, text.length)), `the IR file is not valid JSON: ${message.replace(/ (in JSON )?at position \d+.*$/, "")}`);
      }
    }
  }
  if (!parsed) {
    const d = parseDoc();
    if (d.errors.length > 0) {
      const diags = d.errors.slice(0, 5).map((e) => diagnostic("E0602", source.span(e.pos[0], e.pos[1]), `the IR file is not valid YAML: ${firstLine(e.message)}`, { label: "here", help: [catalogue.E0602.fix] }));
      return failed(path, source, diags, locator);
    }
    if (d.contents === null) return unreadable(source.span(0, 0), "the IR file is empty");
    try {
      data = d.toJS({ maxAliasCount: 100 });
    } catch (e) {
      return unreadable(source.span(0, 0), `the IR file cannot be read: ${firstLine((e as Error).message)}`);
    }
  }
  if (!data || typeof data !== "object" || Array.isArray(data)) {
    return unreadable(locator.at([]), `an IR document is a mapping that starts with \`vlmc_ir: ${IR_VERSION}\`, found ${Array.isArray(data) ? "a list" : show(data)}`);
  }
  const version = (data as Record<string, unknown>).vlmc_ir;
  if (version === undefined) {
    return unreadable(locator.at([]), "not a vlmc IR document: it has no `vlmc_ir` version", [`an IR document starts with \`vlmc_ir: ${IR_VERSION}\``, catalogue.E0602.fix]);
  }
  if (version !== IR_VERSION) {
    return unreadable(locator.at(["vlmc_ir"]), `IR version ${show(version)} is not one this vlmc reads (it reads version ${IR_VERSION})`, [
      typeof version === "number" && version > IR_VERSION ? "upgrade vlmc, or regenerate the IR with this vlmc's `vlmc compile`" : catalogue.E0602.fix,
    ]);
  }
  const schemaDiags = validateIrSchema(data, locator);
  if (schemaDiags.length > 0) return failed(path, source, schemaDiags, locator);
  const verified = verifyIr(data as Ir, locator);
  return { ir: hasErrors(verified) ? null : (data as Ir), diagnostics: verified, source, sources: new Map([[path, source]]), baseDir: dirname(resolve(path)), locator };
}

/**
 * The runtime's way in. An IR document, as text (JSON or YAML, named by `path`) or as a value in
 * memory (what `compile` returns, or JSON parsed elsewhere) -> the IR once it has passed the
 * version check, the schema and the verifier, or the diagnostics that reject it: E0602 when it
 * is not a readable IR, E0601 when it is one but is wrong. It creates nothing: a runtime builds
 * tensors (`Model.create`) only from the `ir` it returns, so a corrupted document never reaches
 * tfjs. A value in memory goes through its JSON text, so it is checked exactly as a file would
 * be (a value JSON cannot hold is rejected), its diagnostics point into that text, and the `ir`
 * returned is a copy that later changes to the value cannot alter.
 */
export function admitIr(doc: unknown, path = "<ir>.json"): IrInput {
  if (typeof doc === "string") return parseIr(path, doc);
  let text: string | undefined;
  let why = `found ${typeof doc}`;
  try {
    text = JSON.stringify(doc, null, 2) as string | undefined;
  } catch (e) {
    why = firstLine((e as Error).message);
  }
  if (text === undefined) {
    const source = new SourceFile(path, "");
    return failed(path, source, [diagnostic("E0602", source.span(0, 0), `the IR cannot be written as JSON: ${why}`, { help: [catalogue.E0602.fix] })]);
  }
  return parseIr(extname(path).toLowerCase() === ".json" ? path : `${path}.json`, text);
}

/** An IR held in memory, validated and verified (diagnostics then point nowhere in particular). */
export function validateIr(ir: unknown, file = "<ir>"): Diagnostic[] {
  const loc = nowhere(file);
  const d = validateIrSchema(ir, loc);
  return d.length ? d : verifyIr(ir as Ir, loc);
}

/** Nesting past this is refused before parsing (an IR nests ~2 levels per layer level). */
export const MAX_DEPTH = 256;

/**
 * The offset where `text` nests deeper than MAX_DEPTH flow collections (`[`, `{`) or indents
 * more than 4 x MAX_DEPTH columns, else -1. Quoted strings and comments are skipped; plain
 * scalars are scanned as they are, which can only count too much, never too little, for brackets
 * inside them.
 */
export function tooDeep(text: string): number {
  let depth = 0;
  let lineStart = true;
  let indent = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "\n" || c === "\r") {
      lineStart = true;
      indent = 0;
      continue;
    }
    if (lineStart) {
      if (c === " " || c === "-" || c === "\t") {
        if (++indent > 4 * MAX_DEPTH) return i;
        continue;
      }
      lineStart = false;
    }
    const prev = i > 0 ? text[i - 1]! : "\n";
    const tokenStart = /[\s[{,:]/.test(prev);
    if (c === '"' || (c === "'" && tokenStart)) {
      // A quoted scalar: `"` escapes with a backslash, `'` with a doubled quote.
      for (i++; i < text.length; i++) {
        const d = text[i]!;
        if (c === '"' && d === "\\") i++;
        else if (d === c) {
          if (c === "'" && text[i + 1] === "'") i++;
          else break;
        }
      }
    } else if (c === "#" && tokenStart) {
      while (i + 1 < text.length && text[i + 1] !== "\n" && text[i + 1] !== "\r") i++;
    } else if (c === "[" || c === "{") {
      if (++depth > MAX_DEPTH) return i;
    } else if (c === "]" || c === "}") depth = Math.max(0, depth - 1);
  }
  return -1;
}

function failed(path: string, source: SourceFile, diagnostics: Diagnostic[], locator: IrLocator = nowhere(path)): IrInput {
  return { ir: null, diagnostics, source, sources: new Map([[path, source]]), baseDir: dirname(resolve(path)), locator };
}

function firstLine(s: string): string {
  return s.split("\n")[0]!.trim();
}

// ---- the schema ----

let schemaJson: object | undefined;
let validator: ValidateFunction | undefined;

/** schemas/ir.schema.json, found above this module (dist/compiler/ir/ or compiler/ir/). */
export function irSchema(): object {
  if (schemaJson) return schemaJson;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, "schemas", "ir.schema.json");
    if (existsSync(p)) return (schemaJson = JSON.parse(readFileSync(p, "utf8")) as object);
    dir = dirname(dir);
  }
  throw new Error("internal: schemas/ir.schema.json not found");
}

function schemaValidator(): ValidateFunction {
  if (validator) return validator;
  const require = createRequire(import.meta.url);
  const mod = require("ajv") as { default: new (o: AjvOptions) => { compile(s: object): ValidateFunction } };
  const ajv = new mod.default({ allErrors: true, strict: true, strictNumbers: true, allowUnionTypes: true, discriminator: true, verbose: true });
  return (validator = ajv.compile(irSchema()));
}

/** Validates against the JSON Schema; one E0601 per distinct place, at most 20. */
export function validateIrSchema(data: unknown, locator: IrLocator): Diagnostic[] {
  const validate = schemaValidator();
  if (validate(data)) return [];
  const findings = schemaFindings(validate.errors ?? [], data);
  const diags = findings.slice(0, MAX_SCHEMA_FINDINGS).map((f) =>
    diagnostic("E0601", f.key ? locator.key(f.path) : locator.at(f.path), f.message, { ...(f.label ? { label: f.label } : {}), notes: f.notes, help: f.help }),
  );
  if (findings.length > MAX_SCHEMA_FINDINGS) diags[diags.length - 1]!.notes.push(`${findings.length - MAX_SCHEMA_FINDINGS} more schema errors not shown`);
  return diags;
}

interface Finding {
  path: IrPath;
  key: boolean;
  message: string;
  label?: string;
  notes: string[];
  help: string[];
}

interface Err extends ErrorObject {
  hint?: string;
}

const pointer = (p: string): string[] =>
  p === ""
    ? []
    : p
        .slice(1)
        .split("/")
        .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));

function valueAt(data: unknown, path: readonly string[]): unknown {
  let v = data;
  for (const seg of path) {
    if (v && typeof v === "object" && Object.hasOwn(v, seg)) v = (v as Record<string, unknown>)[seg];
    else return undefined;
  }
  return v;
}

/** `modules.encoder.layers[0].output[1]`. */
function describePath(data: unknown, path: readonly string[]): string {
  if (path.length === 0) return "";
  let out = "";
  let v = data;
  for (const seg of path) {
    out += Array.isArray(v) ? `[${seg}]` : out ? `.${seg}` : seg;
    v = v && typeof v === "object" ? (v as Record<string, unknown>)[seg] : undefined;
  }
  return out;
}

const q = (where: string): string => (where ? `\`${where}\`` : "the document");

/** The layer a path is inside of, for a note: "in layer `encoder.blocks.0.attn` (attention)". */
function layerNote(data: unknown, path: readonly string[]): string[] {
  for (let i = path.length; i >= 2; i--) {
    if (path[i - 2] !== "layers" && path[i - 2] !== "children") continue;
    const l = valueAt(data, path.slice(0, i)) as { path?: unknown; kind?: unknown } | undefined;
    if (l && typeof l === "object" && typeof l.path === "string") return [`in layer \`${l.path}\`${typeof l.kind === "string" ? ` (${l.kind})` : ""}`];
  }
  return [];
}

const schemaDescription = (e: ErrorObject): string | undefined => {
  const d = (e.parentSchema as { description?: unknown } | undefined)?.description;
  return typeof d === "string" ? d : undefined;
};

/** Drops the noise of `anyOf`: branches that failed on their type, or the `anyOf` itself. */
function prune(errors: readonly ErrorObject[]): Err[] {
  const list: (Err | null)[] = errors.map((e) => ({ ...e }));
  list.forEach((a, ai) => {
    if (!a || (a.keyword !== "anyOf" && a.keyword !== "oneOf")) return;
    const under = (e: Err) => (e.instancePath === a.instancePath || e.instancePath.startsWith(`${a.instancePath}/`)) && e.schemaPath.startsWith(`${a.schemaPath}/`);
    const branch: number[] = [];
    list.forEach((e, i) => {
      if (e && i !== ai && under(e)) branch.push(i);
    });
    const typeMiss = branch.filter((i) => list[i]!.keyword === "type" && list[i]!.instancePath === a.instancePath);
    const others = branch.filter((i) => !typeMiss.includes(i));
    const hint = schemaDescription(a);
    if (others.length === 0) {
      for (const i of branch) list[i] = null;
      return;
    }
    for (const i of typeMiss) list[i] = null;
    list[ai] = null;
    for (const i of others) if (hint && list[i]!.instancePath === a.instancePath && !list[i]!.hint) list[i]!.hint = hint;
  });
  return list.filter((e): e is Err => e !== null);
}

function schemaFindings(errors: readonly ErrorObject[], data: unknown): Finding[] {
  const out = new Map<string, Finding>();
  for (const e of prune(errors)) {
    const path = pointer(e.instancePath);
    const where = describePath(data, path);
    const found = valueAt(data, path);
    const desc = e.hint ?? schemaDescription(e);
    const notes = layerNote(data, path);
    let f: Finding;
    const p = e.params as Record<string, unknown>;
    switch (e.keyword) {
      case "required": {
        const missing = String(p.missingProperty);
        f = { path, key: true, message: `${q(where)} lacks the required field \`${missing}\``, label: `no \`${missing}\``, notes, help: [] };
        out.set(`${e.instancePath}/${missing}`, out.get(`${e.instancePath}/${missing}`) ?? f);
        continue;
      }
      case "additionalProperties": {
        const extra = String(p.additionalProperty);
        const allowed = Object.keys(((e.parentSchema as { properties?: object } | undefined)?.properties ?? {}) as object);
        f = {
          path: [...path, extra],
          key: true,
          message: `${q(where)} has an unknown field \`${extra}\``,
          label: "unknown field",
          notes,
          help: [...didYouMean(extra, allowed), allowed.length ? `its fields: ${allowed.join(", ")}` : "it has no fields"],
        };
        out.set(`${e.instancePath}/${extra}`, out.get(`${e.instancePath}/${extra}`) ?? f);
        continue;
      }
      case "propertyNames": {
        const name = String(p.propertyName);
        f = { path: [...path, name], key: true, message: `${q(where)} has a field named ${show(name)}, which is not a name`, label: "not a name", notes, help: ["names are letters, digits and `_`, not starting with a digit"] };
        out.set(`${e.instancePath}/${name}`, out.get(`${e.instancePath}/${name}`) ?? f);
        continue;
      }
      case "enum": {
        const allowed = (p.allowedValues as unknown[]).map((v) => String(v));
        f = {
          path,
          key: false,
          message: `${q(where)} must be ${allowed.length === 1 ? `\`${allowed[0]}\`` : `one of ${allowed.map((v) => `\`${v}\``).join(", ")}`}, found ${show(found)}`,
          label: desc ? `not ${desc.replace(/^(a|an) /, "a known ")}` : "not allowed",
          notes,
          help: typeof found === "string" ? didYouMean(found, allowed) : [],
        };
        break;
      }
      case "const":
        f = { path, key: false, message: `${q(where)} must be ${show(p.allowedValue)}, found ${show(found)}`, notes, help: [] };
        break;
      case "discriminator": {
        const tag = String(p.tag);
        const branches = ((e.parentSchema as { oneOf?: { properties?: Record<string, { const?: unknown }> }[] } | undefined)?.oneOf ?? []).map((b) => String(b.properties?.[tag]?.const));
        const tagValue = valueAt(found, [tag]);
        f = {
          path: tagValue === undefined ? path : [...path, tag],
          key: tagValue === undefined,
          message:
            tagValue === undefined
              ? `${q(where)} lacks the required field \`${tag}\``
              : `\`${where}.${tag}\` must be one of ${branches.map((b) => `\`${b}\``).join(", ")}, found ${show(tagValue)}`,
          notes,
          help: typeof tagValue === "string" ? didYouMean(tagValue, branches) : [],
        };
        out.set(`${e.instancePath}/${tag}`, out.get(`${e.instancePath}/${tag}`) ?? f);
        continue;
      }
      case "uniqueItems": {
        const items = found as unknown[];
        f = { path: [...path, Number(p.i)], key: false, message: `${q(where)} lists ${show(items?.[Number(p.i)])} twice`, notes, help: ["list each item once"] };
        break;
      }
      case "minItems":
      case "maxItems":
        f = { path, key: false, message: `${q(where)} must be ${desc ?? `a list of ${e.keyword === "minItems" ? "at least" : "at most"} ${String(p.limit)} items`}, found ${Array.isArray(found) ? `${found.length} item${found.length === 1 ? "" : "s"}` : show(found)}`, notes, help: [] };
        break;
      case "minLength":
        f = { path, key: false, message: `${q(where)} must not be empty`, notes, help: desc ? [`it is ${desc}`] : [] };
        break;
      default: {
        const what = desc ?? keywordText(e);
        f = { path, key: false, message: `${q(where)} must be ${what}, found ${show(found)}`, notes, help: [] };
      }
    }
    if (!out.has(e.instancePath)) out.set(e.instancePath, f);
  }
  return [...out.values()];
}

function keywordText(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case "type":
      return Array.isArray(p.type) ? (p.type as string[]).join(" or ") : `${/^[aeiou]/.test(String(p.type)) ? "an" : "a"} ${String(p.type)}`;
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum":
      return `${String(p.comparison)} ${String(p.limit)}`;
    case "pattern":
      return `a string matching /${String(p.pattern)}/`;
    default:
      return (e.message ?? "valid").replace(/^must (be )?/, "");
  }
}
