// Reading a section's settings against a schema: each setting evaluated once, coerced to its
// type, defaulted when absent (defaults may depend on other settings), and unknown settings
// reported with the closest known name.
import { diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { Span } from "../source.js";
import type { Env, Evaluator } from "./evaluate.js";
import { againstFolder, folderSpan, fromFolder, type PretrainedKind } from "./pretrained.js";
import type { SectionSyntax } from "./program.js";
import { closest, didYouMean } from "./suggest.js";
import { bareNameOf, hintFor, type Coercer, type Type, type Typed } from "./types.js";

export interface SettingSpec {
  type: Type;
  doc: string;
  /** Absent: required. A function computes it from the other settings (null if they failed). */
  default?: Typed | ((r: SectionReader) => Typed | null);
  /** Shown in docs instead of the function's code, e.g. "4 x dim". */
  defaultDoc?: string;
  /** The `pretrained` setting only: how a folder gives the section's settings (pretrained.ts). */
  folder?: PretrainedKind;
}

export type Schema = Record<string, SettingSpec>;

export class SectionReader {
  private readonly cache = new Map<string, Typed | null>();

  constructor(
    readonly syntax: SectionSyntax,
    readonly schema: Schema,
    readonly env: Env,
    readonly ev: Evaluator,
    readonly coercer: Coercer,
    /** How messages name the section: "the `vit` encoder". */
    readonly what: string,
    /** Values from other sections that defaults may use (`tokenizer.size` for `vocab`). */
    readonly external: { tokenizerSize?: () => number | null; trainBatch?: () => number | null; trainData?: () => Typed | null } = {},
  ) {}

  get diags(): Diagnostic[] {
    return this.ev.diags;
  }

  has(key: string): boolean {
    return this.syntax.settings.has(key);
  }

  /** The value's span when the setting was written, else the `pretrained:` folder's when it gave it, else the section's header. */
  span(key: string): Span {
    const s = this.syntax.settings.get(key);
    return s ? s.expr.span : (folderSpan(this, key) ?? (this.syntax.label ?? this.syntax.name).span);
  }

  /** The span of the whole `key: value` entry when written. */
  entrySpan(key: string): Span | undefined {
    return this.syntax.settings.get(key)?.span;
  }

  get(key: string): Typed | null {
    if (this.cache.has(key)) return this.cache.get(key)!;
    this.cache.set(key, null); // a cycle through defaults reads null, reported below if real
    const spec = this.schema[key];
    if (!spec) throw new Error(`internal: ${this.what} has no setting ${key} in its schema`);
    const written = this.syntax.settings.get(key);
    let value: Typed | null;
    if (written) {
      const binding = this.env.names.get(key);
      const hint = hintFor(spec.type, bareNameOf(written.expr));
      let raw;
      if (hint !== "value" || !binding) {
        raw = this.ev.eval(written.expr, this.env, hint);
        if (binding) binding.value = raw;
      } else raw = this.ev.binding(written.key, binding);
      value = raw ? this.coercer.coerce(raw, spec.type, `\`${key}\``, this.env) : null;
      if (value !== null) value = againstFolder(this, key, value);
    } else if (fromFolder(this, key) !== undefined) {
      value = fromFolder(this, key)!;
    } else if (spec.default === undefined) {
      // A written setting the schema does not know may be this one, misspelt (`layer: 2`).
      const misspelt = [...this.syntax.settings.values()].find((s) => !this.schema[s.key.name] && closest(s.key.name, Object.keys(this.schema)) === key);
      this.diags.push(
        diagnostic("E0210", (this.syntax.label ?? this.syntax.name).span, `${this.what} needs \`${key}\``, {
          label: `missing \`${key}\``,
          ...(misspelt ? { related: [{ span: misspelt.key.span, label: `did you mean \`${key}\`?` }] } : {}),
          notes: [`\`${key}\`: ${spec.doc}`],
          help: [misspelt ? `rename \`${misspelt.key.name}\` to \`${key}\`` : `add \`${key}: ...\` to this section`],
        }),
      );
      value = null;
    } else value = typeof spec.default === "function" ? spec.default(this) : spec.default;
    this.cache.set(key, value);
    return value;
  }

  num(key: string): number | null {
    const v = this.get(key);
    return typeof v === "number" ? v : null;
  }

  /**
   * Reports settings the schema does not know. `elsewhere` may say where a known setting of
   * another section belongs (`steps` written in `train` instead of in a stage).
   */
  checkUnknown(extra: string[] = [], elsewhere?: (key: string) => string | undefined): void {
    for (const [key, s] of this.syntax.settings) {
      if (this.schema[key] || extra.includes(key)) continue;
      const there = elsewhere?.(key);
      this.diags.push(
        diagnostic("E0202", s.key.span, `${this.what} has no setting \`${key}\``, {
          label: "unknown setting",
          help: there ? [there] : [...didYouMean(key, Object.keys(this.schema)), `its settings: ${Object.keys(this.schema).join(", ")}`],
        }),
      );
    }
  }

  /** Evaluates every setting (so that every error is reported, used or not). */
  readAll(): void {
    for (const key of Object.keys(this.schema)) this.get(key);
  }
}
