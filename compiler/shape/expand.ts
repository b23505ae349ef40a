// Expansion of written layer chains into layer trees: built-in kinds with their arguments
// checked, user `block`s with their parameters bound, `repeat N { ... }` unrolled. Every node
// keeps the span it was written at; the total number of layers is bounded.
import { diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import { layerKinds, userKinds } from "../layers/index.js";
import type { LayerNode } from "../layers/kind.js";
import { Env, type Evaluator } from "../resolve/evaluate.js";
import type { BlockInfo } from "../resolve/program.js";
import { didYouMean } from "../resolve/suggest.js";
import { bareNameOf, bindArgs, hintFor, LIMITS, type ArgSpec, type Coercer } from "../resolve/types.js";
import type { Value } from "../resolve/values.js";
import type { Span } from "../source.js";
import type * as A from "../syntax/ast.js";

export interface ExpandContext {
  ev: Evaluator;
  coercer: Coercer;
  blocks: ReadonlyMap<string, BlockInfo>;
  /** Layers made so far in this model (bounded by LIMITS.layers). */
  count: { n: number; reported: boolean };
  /** Blocks being expanded, to catch a block that uses itself. */
  stack: string[];
  /** The `repeat`s being expanded, outermost first: E0311 points at them, not at a layer. */
  repeats?: { span: Span; n: number }[];
}

const diagsOf = (c: ExpandContext): Diagnostic[] => c.ev.diags;

/** Expands the layer entries of a section or body. Null when something failed (reported). */
export function expandEntries(entries: readonly (A.Chain | A.Section | A.Entry)[], env: Env, c: ExpandContext): LayerNode[] | null {
  const out: LayerNode[] = [];
  let ok = true;
  for (const e of entries) {
    const items: A.ChainItem[] =
      e.kind === "Chain" ? e.items : e.kind === "Section" ? [{ kind: "Layer", name: e.name, body: e.body, span: e.span }] : [];
    if (e.kind === "Setting") {
      diagsOf(c).push(
        diagnostic("E0213", e.span, `a setting cannot stand in a layer body`, {
          label: "settings belong to a section",
          help: ["pass values to blocks as parameters: `block name(dim) { ... }`"],
        }),
      );
      ok = false;
      continue;
    }
    if (e.kind === "Let") continue; // bound by the caller
    if (e.kind === "Section" && e.label) {
      diagsOf(c).push(diagnostic("E0213", e.span, `\`${e.name.name} ${e.label.name} { ... }\` cannot stand in a layer chain`, { label: "a section, not a layer" }));
      ok = false;
      continue;
    }
    for (const item of items) {
      const n = expandItem(item, env, c, String(out.length));
      if (n === null) ok = false;
      else out.push(n);
      if (c.count.reported) return null;
    }
  }
  return ok ? out : null;
}

function bump(c: ExpandContext, span: Span, by = 1): boolean {
  c.count.n += by;
  if (c.count.n > LIMITS.layers) {
    if (!c.count.reported) {
      const [outer, ...inner] = c.repeats ?? [];
      diagsOf(c).push(
        diagnostic("E0311", outer?.span ?? span, `the model expands to more than ${LIMITS.layers.toLocaleString("en-US")} layers`, {
          label: outer ? `repeats its body ${outer.n.toLocaleString("en-US")} times` : "expansion passes the limit here",
          related: inner.map((r) => ({ span: r.span, label: `and this, ${r.n.toLocaleString("en-US")} times each` })),
          help: [inner.length ? "lower the repeat counts: nested repeats multiply" : "lower the repeat count"],
        }),
      );
    }
    c.count.reported = true;
    return false;
  }
  return true;
}

function expandItem(item: A.ChainItem, env: Env, c: ExpandContext, name: string): LayerNode | null {
  if (!bump(c, item.span)) return null;
  if (item.kind === "Repeat") return expandRepeat(item, env, c, name);
  const kindName = item.name.name;
  const kind = layerKinds.get(kindName);
  if (kind && !kind.internal) {
    const bound = evalArgs(item.args ?? [], kind.args, env, c, `\`${kindName}\``, item.span);
    if (!bound) return null;
    const node: LayerNode = { kind: kindName, name, args: bound.args, argSpans: bound.spans, span: item.span };
    if (kind.body) {
      if (!item.body) {
        diagsOf(c).push(diagnostic("E0210", item.span, `\`${kindName}\` needs a body`, { help: [`write \`${kindName} { layernorm -> attention(heads: 8) }\``] }));
        return null;
      }
      const children = expandBody(item.body, env, c);
      if (!children) return null;
      node.children = children;
    } else if (item.body) {
      diagsOf(c).push(diagnostic("E0213", item.body.span, `\`${kindName}\` takes no body`, { label: "unexpected `{ ... }`", help: ["only `residual` takes a body; blocks are defined with `block name(...) { ... }`"] }));
      return null;
    }
    return node;
  }
  const block = c.blocks.get(kindName);
  if (block) return expandBlock(item, block, env, c, name);
  diagsOf(c).push(
    diagnostic("E0203", item.name.span, `unknown layer \`${kindName}\``, {
      label: "not a layer kind or a block",
      help: [...didYouMean(kindName, [...userKinds(), ...c.blocks.keys()]), `layer kinds: ${userKinds().join(", ")}`],
    }),
  );
  return null;
}

function expandBody(body: A.Body, env: Env, c: ExpandContext): LayerNode[] | null {
  const inner = env.child();
  for (const e of body.entries) if (e.kind === "Let") addLet(inner, e, c);
  return expandEntries(body.entries, inner, c);
}

function addLet(env: Env, e: A.Let, c: ExpandContext): void {
  if (env.names.has(e.name.name)) {
    diagsOf(c).push(diagnostic("E0205", e.name.span, `\`${e.name.name}\` is defined twice`, { related: [{ span: env.names.get(e.name.name)!.span, label: "first defined here" }] }));
    return;
  }
  env.names.set(e.name.name, { expr: e.value, env, span: e.name.span });
}

function expandRepeat(item: A.Repeat, env: Env, c: ExpandContext, name: string): LayerNode | null {
  const v = c.ev.eval(item.count, env);
  if (!v) return null;
  const n = c.coercer.coerce(v, { t: "int", min: 0, max: LIMITS.repeat }, "the `repeat` count", env);
  if (n === null) return null;
  const children: LayerNode[] = [];
  (c.repeats ??= []).push({ span: item.count.span, n: n as number });
  try {
    // `repeat 0` adds nothing, but its body is still checked for names and arguments.
    if (n === 0 && !expandBody(item.body, env, c)) return null;
    for (let i = 0; i < (n as number); i++) {
      const body = expandBody(item.body, env, c);
      if (!body) return null;
      children.push({ kind: "sequence", name: String(i), args: {}, argSpans: {}, span: item.span, children: body });
    }
  } finally {
    c.repeats.pop();
  }
  return { kind: "sequence", name, args: {}, argSpans: {}, span: item.span, children };
}

function expandBlock(item: A.Layer, block: BlockInfo, env: Env, c: ExpandContext, name: string): LayerNode | null {
  const blockName = block.decl.name.name;
  if (c.stack.includes(blockName)) {
    diagsOf(c).push(
      diagnostic("E0204", item.name.span, `block \`${blockName}\` uses itself`, {
        label: [...c.stack.slice(c.stack.indexOf(blockName)), blockName].join(" -> "),
        related: [{ span: block.decl.name.span, label: "defined here" }],
        help: ["a block cannot contain itself; use `repeat N { ... }` to repeat layers"],
      }),
    );
    return null;
  }
  if (item.body) {
    diagsOf(c).push(diagnostic("E0213", item.body.span, `block \`${blockName}\` takes no body`, { label: "unexpected `{ ... }`" }));
    return null;
  }
  // Parameters: evaluated where the block is used; defaults where it is defined.
  const specs: ArgSpec[] = block.decl.params.map((p) => ({ name: p.name.name, type: { t: "either", of: [], describe: "any value" }, doc: `parameter of \`${blockName}\`` }));
  const positional: Value[] = [];
  const named = new Map<string, { value: Value; nameSpan: Span }>();
  for (const a of item.args ?? []) {
    const v = c.ev.eval(a.value, env);
    if (!v) return null;
    if (a.name) named.set(a.name.name, { value: v, nameSpan: a.name.span });
    else positional.push(v);
  }
  const bodyEnv = new Env(block.env, env.model);
  const given = new Map<string, Value>();
  const diags = diagsOf(c);
  let ok = true;
  if (positional.length > specs.length) {
    diags.push(
      diagnostic("E0211", positional[specs.length]!.span, `block \`${blockName}\` takes ${specs.length} parameter${specs.length === 1 ? "" : "s"}, found ${positional.length}`, {
        label: "extra argument",
        notes: [`block ${blockName}(${specs.map((s) => s.name).join(", ")})`],
        related: [{ span: block.decl.name.span, label: "defined here" }],
      }),
    );
    return null;
  }
  positional.forEach((v, i) => given.set(specs[i]!.name, v));
  for (const [k, { value, nameSpan }] of named) {
    if (!specs.some((s) => s.name === k)) {
      diags.push(diagnostic("E0211", nameSpan, `block \`${blockName}\` has no parameter \`${k}\``, { label: "unknown parameter", help: didYouMean(k, specs.map((s) => s.name)), related: [{ span: block.decl.name.span, label: "defined here" }] }));
      ok = false;
    } else if (given.has(k)) {
      diags.push(diagnostic("E0205", nameSpan, `parameter \`${k}\` is given twice`, {}));
      ok = false;
    } else given.set(k, value);
  }
  for (const p of block.decl.params) {
    const v = given.get(p.name.name);
    if (v) bodyEnv.names.set(p.name.name, { expr: { kind: "Missing", span: v.span }, env: bodyEnv, span: p.name.span, value: v });
    else if (p.default) bodyEnv.names.set(p.name.name, { expr: p.default, env: bodyEnv, span: p.name.span });
    else {
      diags.push(
        diagnostic("E0210", item.span, `block \`${blockName}\` needs parameter \`${p.name.name}\``, {
          label: `missing \`${p.name.name}\``,
          related: [{ span: p.name.span, label: "declared here without a default" }],
        }),
      );
      ok = false;
    }
  }
  if (!ok) return null;
  for (const e of block.decl.body.entries) if (e.kind === "Let") addLet(bodyEnv, e, c);
  c.stack.push(blockName);
  const children = expandEntries(block.decl.body.entries, bodyEnv, c);
  c.stack.pop();
  if (!children) return null;
  return { kind: "sequence", name, args: {}, argSpans: {}, span: item.span, children };
}

/** Evaluates a layer's arguments, each with the hint its type asks for, then binds them. */
function evalArgs(args: readonly A.Arg[], specs: readonly ArgSpec[], env: Env, c: ExpandContext, what: string, at: Span) {
  const positional: Value[] = [];
  const named = new Map<string, { value: Value; nameSpan: Span }>();
  const spans: Record<string, Span> = {};
  let ok = true;
  args.forEach((a, i) => {
    const spec = a.name ? specs.find((s) => s.name === a.name!.name) : specs[i];
    const v = c.ev.eval(a.value, env, spec ? hintFor(spec.type, bareNameOf(a.value)) : "value");
    if (!v) {
      ok = false;
      return;
    }
    if (spec) spans[spec.name] = a.value.span;
    if (a.name) {
      if (named.has(a.name.name)) {
        diagsOf(c).push(diagnostic("E0205", a.name.span, `argument \`${a.name.name}\` is given twice`, { related: [{ span: named.get(a.name.name)!.nameSpan, label: "first given here" }] }));
        ok = false;
      } else named.set(a.name.name, { value: v, nameSpan: a.name.span });
    } else positional.push(v);
  });
  if (!ok) return null;
  const bound = bindArgs(c.coercer, specs, positional, named, what, at, env);
  return bound ? { args: bound, spans } : null;
}
