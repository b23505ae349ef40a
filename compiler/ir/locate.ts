// Where a value of an IR document is written: a path of keys and indices (`["modules",
// "encoder", "layers", 0, "output"]`) -> a span of the document's text, from the nodes of the
// `yaml` package (JSON is YAML, so one parser gives positions for both).
import type { Document, Node as YamlNode, Pair } from "yaml";
import type { Span } from "../source.js";
import { yamlLib } from "./yaml.js";

/** A path into an IR document: mapping keys and list indices. */
export type IrPath = readonly (string | number)[];

export interface IrLocator {
  /** The value at `path` (or, where it is missing, the closest enclosing value). */
  at(path: IrPath): Span;
  /** The key of the last step of `path` (`span` of `foo: 1` is `foo`), else `at(path)`. */
  key(path: IrPath): Span;
}

/** For an IR held in memory, with no text to point into. */
export function nowhere(file: string): IrLocator {
  const span: Span = { file, start: 0, end: 0 };
  return { at: () => span, key: () => span };
}

export function documentLocator(doc: Document, file: string, text: string): IrLocator {
  const Y = yamlLib();
  const deref = (n: unknown): unknown => (Y.isAlias(n) ? n.resolve(doc) : n);
  const span = (start: number, end: number): Span => ({ file, start: Math.max(0, Math.min(start, text.length)), end: Math.max(0, Math.min(Math.max(start, end), text.length)) });
  /** From `start` to the end of its line (a block collection: its first line). */
  const firstLine = (start: number, end: number): Span => {
    const nl = text.indexOf("\n", start);
    let stop = Math.min(end, nl < 0 ? text.length : nl);
    while (stop > start && /\s/.test(text[stop - 1]!)) stop--;
    return span(start, stop);
  };
  const walk = (path: IrPath): { node: unknown; pair: Pair | null; complete: boolean } => {
    let node: unknown = doc.contents;
    let pair: Pair | null = null;
    let depth = 0;
    for (const seg of path) {
      node = deref(node);
      if (Y.isMap(node)) {
        const p = node.items.find((it) => (Y.isScalar(it.key) ? String(it.key.value) : String(it.key)) === String(seg));
        if (!p) break;
        pair = p;
        node = p.value;
      } else if (Y.isSeq(node)) {
        const i = typeof seg === "number" ? seg : /^\d+$/.test(seg) ? Number(seg) : -1;
        if (i < 0 || i >= node.items.length) break;
        pair = null;
        node = node.items[i];
      } else break;
      depth++;
    }
    return { node: deref(node), pair, complete: depth === path.length };
  };
  const keySpan = (pair: Pair): Span | null => {
    const k = pair.key as YamlNode | null;
    return k && Y.isNode(k) && k.range ? span(k.range[0], k.range[1]) : null;
  };
  const at = (path: IrPath): Span => {
    const { node, pair, complete } = walk(path);
    const owner = complete ? pair : null;
    if (!node || !Y.isNode(node) || !node.range) return (owner && keySpan(owner)) ?? firstLine(0, text.length);
    const [start, end] = node.range;
    if (Y.isScalar(node)) return span(start, end);
    const oneLine = !text.slice(start, end).includes("\n");
    if (oneLine) return span(start, end);
    if (pair) return keySpan(pair) ?? firstLine(start, end);
    return firstLine(start, end);
  };
  return {
    at,
    key(path) {
      const { pair, complete } = walk(path);
      return (complete && pair && keySpan(pair)) || at(path);
    },
  };
}
