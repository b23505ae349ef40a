// Writing an IR document: JSON (`--emit ir`) or YAML (`--emit yaml`). Keys keep the order of
// the object; lists of plain values (shapes, module lists) and the small `span` and `init`
// mappings are written on one line, everything else in block style. Either text reads back
// (readIr/parseIr) to a document deep-equal to the one written.
import { createRequire } from "node:module";
import type { Ir } from "./types.js";

const require = createRequire(import.meta.url);
let yamlModule: typeof import("yaml") | undefined;

/** The `yaml` package, loaded on first use (so that `vlmc check` of a .vlm file never loads it). */
export function yamlLib(): typeof import("yaml") {
  return (yamlModule ??= require("yaml") as typeof import("yaml"));
}

/** Keys whose (flat) mappings are written on one line. */
const INLINE_MAPS = new Set(["span", "init"]);

const isScalar = (v: unknown): boolean => v === null || typeof v !== "object";

function inline(v: unknown, key: string | number | null): boolean {
  if (Array.isArray(v)) return v.every(isScalar);
  if (v && typeof v === "object" && typeof key === "string" && INLINE_MAPS.has(key)) return Object.values(v).every(isScalar);
  return false;
}

/** The IR as YAML 1.2 text (core schema), ending with a newline. */
export function irToYaml(ir: Ir): string {
  const Y = yamlLib();
  // Shape arrays may be shared between layers in memory: never write anchors and aliases.
  const doc = new Y.Document(ir, { aliasDuplicateObjects: false, version: "1.2" });
  const plain = (n: unknown) => Y.isScalar(n);
  Y.visit(doc, {
    Pair(_, pair) {
      const v = pair.value;
      if (Y.isSeq(v) && v.items.every(plain)) v.flow = true;
      else if (Y.isMap(v) && Y.isScalar(pair.key) && INLINE_MAPS.has(pair.key.value as string) && v.items.every((p) => plain(p.value))) v.flow = true;
    },
    Scalar(_, node) {
      // Control characters (the newline of an alphabet) read best escaped in double quotes.
      if (typeof node.value === "string" && /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(node.value)) node.type = Y.Scalar.QUOTE_DOUBLE;
    },
  });
  return doc.toString({ lineWidth: 0, minContentWidth: 0, flowCollectionPadding: false, indentSeq: true, doubleQuotedAsJSON: true });
}

/** The IR as JSON: two-space indentation, plain lists and `span`/`init` on one line, a final newline. */
export function irToJson(ir: Ir): string {
  return `${json(ir, "", null)}\n`;
}

function json(v: unknown, indent: string, key: string | number | null): string {
  if (isScalar(v)) return JSON.stringify(v) ?? "null";
  if (inline(v, key)) {
    if (Array.isArray(v)) return `[${v.map((x) => JSON.stringify(x) ?? "null").join(", ")}]`;
    return `{ ${Object.entries(v as object)
      .map(([k, x]) => `${JSON.stringify(k)}: ${JSON.stringify(x)}`)
      .join(", ")} }`;
  }
  const inner = `${indent}  `;
  if (Array.isArray(v)) {
    if (v.length === 0) return "[]";
    return `[\n${v.map((x, i) => `${inner}${json(x, inner, i)}`).join(",\n")}\n${indent}]`;
  }
  const entries = Object.entries(v as object).filter(([, x]) => x !== undefined);
  if (entries.length === 0) return "{}";
  return `{\n${entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${json(x, inner, k)}`).join(",\n")}\n${indent}}`;
}
