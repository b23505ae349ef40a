// One model, analysed: its sections read against their schemas (preset or custom), its
// modules expanded into layers and shaped, the values other sections ask for (`encoder.dim`,
// `tokenizer.size`) answered on demand, and the checks between modules run. Everything is
// computed lazily, once, so that references may point anywhere without ordering rules.
import { diagnostic, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { LayerNode, TensorType } from "../layers/kind.js";
import { layerKinds } from "../layers/index.js";
import { initSetting, SECTION_DEFAULT, takesInit } from "../layers/init.js";
import { decoderCommon } from "../presets/gpt.js";
import { presetsOf, type Preset } from "../presets/index.js";
import { frozenPretrained } from "../presets/tfjs.js";
import { node } from "../presets/preset.js";
import { Env, Evaluator, type ModelScope } from "../resolve/evaluate.js";
import { addBinding, MODULES, type ModelSyntax, type ModuleName, type Program, type SectionName, type SectionSyntax } from "../resolve/program.js";
import { SectionReader, type Schema } from "../resolve/section.js";
import { didYouMean } from "../resolve/suggest.js";
import { readTokenizer, tokenizerKinds, tokenizerSizeLabel, type TokenizerInfo } from "../resolve/tokenizer.js";
import { analyzeChat, chatSection, type ChatInfo } from "../resolve/chat.js";
import { readStage, stageSchema, trainSchema, checkDataFiles, trainElsewhere, type TrainInfo, type StageInfo } from "../resolve/train.js";
import { pixelSettings, readPixels } from "../resolve/pixels.js";
import { Coercer, int, LIMITS, oneOf, str, type Typed, type TypedCall } from "../resolve/types.js";
import type { Value } from "../resolve/values.js";
import type { IrPixels } from "../ir/types.js";
import type { Span } from "../source.js";
import type * as A from "../syntax/ast.js";
import { expandEntries, type ExpandContext } from "./expand.js";
import { inferLayers, type Param } from "./infer.js";
import { moduleWeightsDiagnostics } from "../../runtime/weights-check.js";

export interface ModuleResult {
  name: ModuleName;
  preset: string | null;
  layers: LayerNode[];
  input: TensorType;
  output: TensorType;
  weights: string;
  /** The encoder's pixel settings (null when they failed, reported). */
  pixels?: IrPixels | null;
}

/** What a custom (preset-less) section accepts besides its layer chain. */
const customSchemas: Record<ModuleName, Schema> = {
  encoder: {
    image: { type: { t: "dims", rank: 3, max: LIMITS.image }, doc: "input image, height x width x channels" },
    output: { type: oneOf("cls", "patches", "pool", "all", "last"), default: "last", defaultDoc: "the chain's output", doc: "what the encoder hands on (appends a `take` layer)" },
    tokens: { type: int(0), default: 0, defaultDoc: "derived", doc: "visual tokens out; derived, checked if written" },
    ...pixelSettings,
    weights: { type: str, default: "", defaultDoc: "none", doc: "pretrained weights (.safetensors), relative to the spec" },
    init: initSetting,
  },
  projector: {
    weights: { type: str, default: "", defaultDoc: "none", doc: "pretrained weights (.safetensors), relative to the spec" },
    init: initSetting,
  },
  decoder: decoderCommon({ position: "learned", tie: false }),
};

export { customSchemas };

export class ModelAnalysis implements ModelScope {
  readonly ev: Evaluator;
  readonly coercer: Coercer;
  readonly params: Param[] = [];
  private readonly readers = new Map<string, SectionReader | null>();
  private readonly modules = new Map<ModuleName, ModuleResult | null>();
  private readonly building = new Set<string>();
  private tokenizerInfo: TokenizerInfo | null | undefined;
  private trainInfo: TrainInfo | null | undefined;
  private readonly expandCount = { n: 0, reported: false };
  readonly env: Env;

  constructor(
    readonly prog: Program,
    readonly syntax: Omit<ModelSyntax, "env">,
    readonly diags: Diagnostic[],
  ) {
    this.ev = new Evaluator(diags);
    this.coercer = new Coercer(this.ev, MODULES.filter((m) => syntax.sections.has(m)));
    const fileEnv = prog.fileEnvs.get(syntax.file)!;
    this.env = new Env(fileEnv, this);
    for (const l of syntax.lets) addBinding(diags, this.env, l.name, l.value);
    // Constants of the base model's file stay visible to inherited settings.
    for (const f of prog.fileEnvs.values()) if (f !== fileEnv) this.env.imports.push(f);
  }

  get name(): string {
    return this.syntax.name.name;
  }

  // ---- ModelScope ----
  hasSection(name: string): boolean {
    return this.syntax.sections.has(name as SectionName);
  }

  member(section: A.Ident, member: A.Ident, at: Span, ev: Evaluator): Value | null {
    const s = section.name as SectionName;
    const key = member.name;
    const derived = this.derived(s, key, at);
    if (derived !== undefined) return derived;
    const r = this.reader(s);
    if (!r) return null;
    if (r.schema[key]) {
      const v = r.get(key);
      return v === null ? null : toValue(v, at);
    }
    ev.diags.push(
      diagnostic("E0201", member.span, `\`${s}\` has no setting or value \`${key}\``, {
        label: "unknown member",
        help: [...didYouMean(key, [...Object.keys(r.schema), ...derivedNames(s)]), `known: ${[...derivedNames(s), ...Object.keys(r.schema)].join(", ")}`],
      }),
    );
    return null;
  }

  /** Values vlmc derives: `tokenizer.size`, `encoder.tokens`, `encoder.width`, ... */
  private derived(s: SectionName, key: string, at: Span): Value | null | undefined {
    if (s === "tokenizer" && key === "size") {
      const t = this.tokenizer();
      return t ? toValue(t.size, at) : null;
    }
    if ((s === "encoder" || s === "projector") && (key === "tokens" || key === "width" || (key === "dim" && !this.reader(s)?.schema.dim))) {
      const m = this.module(s);
      if (!m) return null;
      const shape = m.output.shape;
      return toValue(key === "tokens" ? (shape[1] as number) : (shape[2] as number), at);
    }
    return undefined;
  }

  // ---- sections ----
  reader(name: SectionName | string): SectionReader | null {
    if (this.readers.has(name)) return this.readers.get(name)!;
    const syn = this.syntax.sections.get(name as SectionName);
    let r: SectionReader | null = null;
    if (syn) {
      const schema = this.schemaFor(name, syn);
      if (schema) r = this.makeReader(syn, schema.schema, schema.what);
    }
    this.readers.set(name, r);
    return r;
  }

  private makeReader(syn: SectionSyntax, schema: Schema, what: string, parent: Env = this.env): SectionReader {
    const env = new Env(parent, this);
    for (const l of syn.lets) addBinding(this.diags, env, l.name, l.value);
    for (const [k, s] of syn.settings) if (!env.names.has(k)) env.names.set(k, { expr: s.expr, env, span: s.key.span });
    return new SectionReader(syn, schema, env, this.ev, this.coercer, what, {
      tokenizerSize: () => {
        if (!this.hasSection("tokenizer")) {
          this.diags.push(
            diagnostic("E0210", (syn.label ?? syn.name).span, "the decoder needs `vocab`: the model has no tokenizer to take it from", {
              help: ["add a `tokenizer` section, or write `vocab: N`"],
            }),
          );
          return null;
        }
        return this.tokenizer()?.size ?? null;
      },
      trainBatch: () => this.reader("train")?.num("batch") ?? null,
      trainData: () => this.reader("train")?.get("data") ?? null,
    });
  }

  private presetOf(name: string, syn: SectionSyntax): Preset | null | undefined {
    if (!syn.label) return null;
    const p = presetsOf(name).find((x) => x.name === syn.label!.name);
    if (p) return p;
    const names = presetsOf(name).map((x) => x.name);
    this.diags.push(
      diagnostic("E0206", syn.label.span, `unknown ${name} preset \`${syn.label.name}\``, {
        label: "no such preset",
        help: [...didYouMean(syn.label.name, names), names.length ? `${name} presets: ${names.join(", ")}` : `a ${name} has no presets: write its layers`],
      }),
    );
    return undefined;
  }

  private schemaFor(name: string, syn: SectionSyntax): { schema: Schema; what: string } | null {
    if (name === "tokenizer") {
      const kind = syn.label?.name;
      const k = kind ? tokenizerKinds[kind] : undefined;
      if (!k) {
        this.diags.push(
          diagnostic("E0206", (syn.label ?? syn.name).span, kind ? `unknown tokenizer kind \`${kind}\`` : "the tokenizer needs a kind: `tokenizer chars { ... }`", {
            help: [...(kind ? didYouMean(kind, Object.keys(tokenizerKinds)) : []), `tokenizer kinds: ${Object.keys(tokenizerKinds).join(", ")}`],
          }),
        );
        return null;
      }
      return { schema: k.settings, what: `the \`${kind}\` tokenizer` };
    }
    if (name === "train") return { schema: trainSchema, what: "`train`" };
    if (name === "chat") return { schema: chatSection.settings, what: "`chat`" };
    const preset = this.presetOf(name, syn);
    if (preset === undefined) return null;
    if (preset) return { schema: preset.settings, what: `the \`${preset.name}\` ${name}` };
    return { schema: customSchemas[name as ModuleName], what: `the ${name}` };
  }

  tokenizer(): TokenizerInfo | null {
    if (this.tokenizerInfo !== undefined) return this.tokenizerInfo;
    this.tokenizerInfo = null;
    const r = this.reader("tokenizer");
    if (!r) return null;
    // The tokenizer takes settings only: a layer written in it would otherwise be ignored.
    for (const l of r.syntax.layers) {
      this.diags.push(
        diagnostic("E0213", l.span, "a layer chain cannot stand in the tokenizer", {
          label: "the tokenizer takes settings only",
          help: ["layers belong to the `encoder`, `projector` or `decoder`"],
        }),
      );
    }
    this.tokenizerInfo = readTokenizer(r, this.syntax.file);
    return this.tokenizerInfo;
  }

  // ---- modules ----
  module(name: ModuleName): ModuleResult | null {
    if (this.modules.has(name)) return this.modules.get(name)!;
    const syn = this.syntax.sections.get(name);
    if (!syn) return null;
    if (this.building.has(name)) {
      this.diags.push(
        diagnostic("E0204", syn.name.span, `the ${name}'s shape depends on itself`, {
          help: ["a module's settings cannot refer to its own derived values (`encoder.tokens` inside the encoder)"],
        }),
      );
      return null;
    }
    this.building.add(name);
    let result: ModuleResult | null = null;
    try {
      result = this.buildModule(name, syn);
    } finally {
      this.building.delete(name);
    }
    this.modules.set(name, result);
    return result;
  }

  private expandContext(): ExpandContext {
    return { ev: this.ev, coercer: this.coercer, blocks: this.prog.blocks, count: this.expandCount, stack: [] };
  }

  private buildModule(name: ModuleName, syn: SectionSyntax): ModuleResult | null {
    const r = this.reader(name);
    if (!r) return null;
    const preset = syn.label ? presetsOf(name).find((p) => p.name === syn.label!.name) ?? null : null;
    r.checkUnknown();
    // Layers: from the preset, or written.
    let trunk: LayerNode[] | null;
    if (preset) {
      if (syn.layers.length > 0) {
        this.diags.push(
          diagnostic("E0213", syn.layers[0]!.span, `the \`${preset.name}\` preset defines its own layers`, {
            label: "layers cannot be added to a preset",
            help: [`remove \`${preset.name}\` to write the ${name}'s layers yourself, or remove the layers`],
          }),
        );
        return null;
      }
      this.expandCount.n += 1;
      trunk = preset.build(r);
    } else {
      if (syn.layers.length === 0 && name !== "decoder") {
        this.diags.push(
          diagnostic("E0210", syn.name.span, `the ${name} has no layers`, {
            label: "empty",
            help: name === "encoder" ? ["use a preset (`encoder vit { ... }`) or write its layers"] : ["write its layers, e.g. `linear(2048) -> gelu -> linear(decoder.dim)`"],
          }),
        );
        return null;
      }
      trunk = expandEntries(syn.layers, r.env, this.expandContext());
    }
    r.readAll();
    if (!trunk) return null;
    const weights = r.schema.weights ? ((r.get("weights") as string | null) ?? "") : ""; // (a `tfjs` encoder has none)
    if (weights) checkDataFiles(r, "weights", { call: "weights", args: { file: weights } }, this.syntax.file, "weights file");
    const ctx = { diags: this.diags, params: this.params, module: name };
    if (name === "encoder") {
      const image = r.get("image") as number[] | null;
      if (!image) return null;
      const input: TensorType = { shape: ["B", ...image], origin: r.span("image") };
      // Checked before the layers, and apart from them: pixels do not change a shape.
      const pixels = readPixels(r, image[2]!);
      const layers = preset ? trunk : this.withOutput(r, trunk);
      applySectionInit(r, layers);
      const reported = this.diags.length;
      const output = inferLayers(layers, input, "encoder", ctx);
      if (!output) return null;
      // A layer may go on after an error (a patch that does not divide the image is read as if
      // the edges were cropped) so that the layers after it are checked too; but the token
      // count it leaves is a guess, and checking `tokens`, the context or the projector against
      // it would only report consequences of the one mistake.
      if (this.diags.slice(reported).some((d) => d.severity === "error")) return null;
      return this.checkEncoder(r, { name, preset: preset?.name ?? null, layers, input, output, weights, pixels });
    }
    if (name === "projector") {
      if (!this.hasSection("encoder")) {
        this.diags.push(
          diagnostic("E0210", syn.name.span, "the projector has no encoder to take its input from", {
            label: "no `encoder` section in this model",
            help: ["add an `encoder`, or remove the projector for a text-only model"],
          }),
        );
        return null;
      }
      const enc = this.module("encoder");
      if (!enc) return null;
      const input: TensorType = { ...enc.output };
      applySectionInit(r, trunk);
      const output = inferLayers(trunk, input, "projector", { ...ctx, first: trunk[0] });
      if (!output) return null;
      return { name, preset: null, layers: trunk, input, output, weights };
    }
    return this.buildDecoder(r, trunk, preset, weights);
  }

  private withOutput(r: SectionReader, trunk: LayerNode[]): LayerNode[] {
    const output = r.get("output");
    if (!output || output === "last") return trunk;
    return [...trunk, node(r, "take", "take", { which: output }, { which: "output" })];
  }

  private checkEncoder(r: SectionReader, m: ModuleResult): ModuleResult | null {
    const tokens = m.output.shape[1] as number;
    const restated = r.num("tokens");
    if (restated && restated !== tokens) {
      this.diags.push(
        diagnostic("E0309", r.span("tokens"), `the encoder outputs ${tokens} visual tokens, not ${restated}`, {
          label: `derived: ${tokens}`,
          related: [{ span: m.output.tokens ?? m.output.origin, label: `${tokens} tokens come from here` }],
          help: ["remove `tokens` (it is derived), or change the settings it derives from"],
        }),
      );
      return null;
    }
    return m;
  }

  private buildDecoder(r: SectionReader, trunk: LayerNode[], preset: Preset | null, weights: string): ModuleResult | null {
    const s = ["vocab", "dim", "context", "position", "dropout", "tie_embeddings", "head_bias"].map((k) => r.get(k));
    if (s.some((v) => v === null)) return null;
    const [vocab, dim, context, position, dropout, tied, headBias] = s as [number, number, number, string, number, boolean, boolean];
    // The visual tokens joined in front of the text.
    let visual: TensorType | undefined;
    // When the encoder or projector failed (reported), the decoder is still checked on its own,
    // without the visual tokens, so that its own mistakes are reported in the same run.
    let visualFailed = false;
    if (this.hasSection("projector")) {
      const p = this.module("projector");
      if (!p) visualFailed = true;
      else {
        visual = p.output;
        if (p.output.shape[2] !== dim) {
          this.diags.push(
            diagnostic("E0305", p.output.origin, `projector output width ${String(p.output.shape[2])} does not match decoder width ${dim}`, {
              label: `found [B, ${String(p.output.shape[1])}, ${String(p.output.shape[2])}] because this layer outputs ${String(p.output.shape[2])}`,
              related: [{ span: r.span("dim"), label: `expected [B, ${String(p.output.shape[1])}, ${dim}]: image tokens are joined to text embeddings [B, T, ${dim}]` }],
              help: [`write \`linear(decoder.dim)\` as the projector's last layer, or set the decoder's \`dim: ${String(p.output.shape[2])}\``],
            }),
          );
          visual = { ...p.output, shape: [p.output.shape[0]!, p.output.shape[1]!, dim] }; // go on checking the decoder
        }
      }
    } else if (this.hasSection("encoder")) {
      const e = this.module("encoder");
      if (!e) visualFailed = true;
      else {
        visual = e.output;
        if (e.output.shape[2] !== dim) {
          this.diags.push(
            diagnostic("E0305", e.output.origin, `encoder output width ${String(e.output.shape[2])} does not match decoder width ${dim}`, {
              related: [{ span: r.span("dim"), label: `decoder width ${dim}` }],
              help: ["add a `projector { linear(decoder.dim) }` between them"],
            }),
          );
          visual = { ...e.output, shape: [e.output.shape[0]!, e.output.shape[1]!, dim] };
        }
      }
    }
    const nv = visual ? (visual.shape[1] as number) : 0;
    if (!visualFailed && nv + 1 > context) {
      this.diags.push(
        diagnostic("E0306", r.span("context"), `the decoder's context of ${context} cannot hold ${nv} visual tokens and any text`, {
          label: `${context} positions`,
          related: visual ? [{ span: visual.tokens ?? visual.origin, label: `${nv} visual tokens come from here` }] : [],
          help: [`raise \`context\` to at least ${nv + 1} (the text budget is context - ${nv})`, "or have the encoder output fewer tokens (`output: cls` or `pool`)"],
        }),
      );
    }
    // Vocabulary against the tokenizer, when both are known and the vocabulary was written.
    const tok = this.hasSection("tokenizer") ? this.tokenizer() : null;
    if (tok && r.has("vocab") && vocab !== tok.size) {
      const tr = this.reader("tokenizer")!;
      this.diags.push(
        diagnostic("E0307", r.span("vocab"), `decoder vocabulary ${vocab} does not match the tokenizer's ${tok.size} tokens`, {
          label: `should be ${tok.size}`,
          related: [{ span: (tr.syntax.label ?? tr.syntax.name).span, label: tokenizerSizeLabel(tok) }],
          help: ["remove `vocab` (it defaults to `tokenizer.size`) or write `vocab: tokenizer.size`"],
        }),
      );
    }
    const layers: LayerNode[] = [node(r, "token_embed", "embed", { vocab, dim }, { vocab: "vocab", dim: "dim" }), node(r, "join", "join", {})];
    // (Too short a context is reported above; the table is then sized to fit, to go on checking.)
    if (position === "learned" || position === "sinusoidal") layers.push(node(r, "positions", "pos_embed", { kind: position, length: Math.max(context, nv + 1) }, { kind: "position", length: "context" }));
    if (dropout > 0) layers.push(node(r, "dropout", "drop", { p: dropout }, { p: "dropout" }));
    layers.push(...trunk);
    layers.push(node(r, "lm_head", "lm_head", { vocab, tied, bias: headBias }, { vocab: "vocab", tied: "tie_embeddings" }));
    applySectionInit(r, layers);
    const input: TensorType = { shape: ["B", "T"], origin: r.span("vocab") };
    const output = inferLayers(layers, input, "decoder", { diags: this.diags, params: this.params, module: "decoder", ...(visual ? { visual } : {}) });
    if (!output || visualFailed) return null;
    if (output.shape[2] !== vocab) return null;
    return { name: "decoder", preset: preset?.name ?? null, layers, input, output, weights };
  }

  // ---- training ----
  train(): TrainInfo | null {
    if (this.trainInfo !== undefined) return this.trainInfo;
    this.trainInfo = null;
    const r = this.reader("train");
    if (!r) return null;
    r.checkUnknown(["stage"], trainElsewhere);
    r.readAll();
    const data = r.get("data") as TypedCall | null;
    if (data) checkDataFiles(r, "data", data, this.syntax.file);
    const syn = this.syntax.sections.get("train")!;
    const stages: StageInfo[] = [];
    let ok = true;
    for (const l of syn.layers) {
      const label = l.kind === "Section" ? l.name : l.kind === "Chain" && l.items[0]?.kind === "Layer" ? l.items[0].name : null;
      this.diags.push(
        diagnostic("E0213", label?.span ?? l.span, label?.name === "stage" ? "a stage needs a name: `stage NAME { ... }`" : "`train` holds settings and `stage NAME { ... }` sections", {
          help: label && label.name !== "stage" ? didYouMean(label.name, ["stage"]) : [],
        }),
      );
      ok = false;
    }
    for (const [stageName, st] of syn.children) {
      if (st.name.name !== "stage") {
        this.diags.push(diagnostic("E0206", st.name.span, `unknown section \`${st.name.name}\` in \`train\``, { help: [...didYouMean(st.name.name, ["stage"]), "write `stage NAME { ... }`"] }));
        ok = false;
        continue;
      }
      const sr = this.makeReader(st, stageSchema, `stage \`${stageName}\``, r.env);
      const info = readStage(sr, stageName, st.label!.span, this.syntax.file, r);
      if (info) {
        const missing = info.train.filter((m) => !this.hasSection(m) || !(MODULES as readonly string[]).includes(m));
        for (const m of missing) {
          this.diags.push(
            diagnostic("E0501", sr.span("train"), `stage \`${stageName}\` trains \`${m}\`, which ${(MODULES as readonly string[]).includes(m) ? "this model does not have" : "is not a module"}`, {
              help: [`the model's modules: ${MODULES.filter((x) => this.hasSection(x)).join(", ")}`],
            }),
          );
        }
        // A frozen pretrained module (a `tfjs` encoder) has no vlmc parameters to train.
        const frozen = info.train.filter((m) => !missing.includes(m) && this.frozenReason(m as ModuleName));
        for (const m of frozen) {
          this.diags.push(
            diagnostic("E0734", sr.span("train"), `stage \`${stageName}\` trains the ${m}, which is frozen: ${this.frozenReason(m as ModuleName)}`, {
              label: `\`${m}\` cannot be trained`,
              notes: ["training a convolutional encoder needs the gradient of its filters (Conv2DBackpropFilter), which tfjs's wasm backend does not have"],
              help: [`remove \`${m}\` from \`train\`: the stages train the modules after it`],
            }),
          );
        }
        if (missing.length || frozen.length) ok = false;
        else stages.push(info);
      } else ok = false;
    }
    if (syn.children.size === 0) {
      this.diags.push(
        diagnostic("E0506", syn.name.span, "`train` has no stages", {
          label: "no `stage NAME { ... }` in it",
          help: ["add `stage NAME { train: [projector], steps: 100 }`"],
        }),
      );
      return null;
    }
    if (!ok || !data) return null;
    this.trainInfo = { data, batch: r.num("batch")!, seed: r.num("seed")!, split: r.get("split") as number, stages };
    return this.trainInfo;
  }

  /** Reads every section and module, so every error of the model is reported. */
  analyze(): AnalyzedModel {
    for (const s of this.syntax.sections.keys()) this.reader(s)?.checkUnknown(s === "train" ? ["stage"] : [], s === "train" ? trainElsewhere : undefined);
    const tokenizer = this.hasSection("tokenizer") ? this.tokenizer() : null;
    if (tokenizer) this.reader("tokenizer")?.readAll();
    const modules: Partial<Record<ModuleName, ModuleResult>> = {};
    for (const m of MODULES) {
      if (!this.hasSection(m)) continue;
      const res = this.module(m);
      if (!res) continue;
      modules[m] = res;
      // A pretrained weights file's header against the module's parameters (E07xx).
      if (res.weights) this.diags.push(...moduleWeightsDiagnostics(res, res.weights, this.syntax.file, this.reader(m)!.span("weights")));
    }
    const train = this.hasSection("train") ? this.train() : null;
    if (train) this.checkNeverTrained(train, modules);
    const chat = analyzeChat(this, tokenizer, train);
    return { name: this.name, file: this.syntax.file, span: this.syntax.name.span, tokenizer, chat, modules, train, params: this.params, analysis: this };
  }

  private frozenReason(m: ModuleName): string | null {
    // (Never while the module is being built: that is not a question a stage's check may cause.)
    const mod = this.hasSection(m) && !this.building.has(m) ? this.module(m) : null;
    return mod ? frozenPretrained(mod.layers) : null;
  }

  private checkNeverTrained(train: TrainInfo, modules: Partial<Record<ModuleName, ModuleResult>>): void {
    for (const m of MODULES) {
      const mod = modules[m];
      if (!mod || mod.weights || frozenPretrained(mod.layers)) continue;
      if (train.stages.some((s) => s.train.includes(m))) continue;
      const syn = this.syntax.sections.get(m)!;
      this.diags.push(
        diagnostic("W0501", (syn.label ?? syn.name).span, `the ${m} is frozen in every stage and has no pretrained weights`, {
          label: "its random weights never change",
          help: [`train it in a stage (\`train: [${m}, ...]\`), or give it \`weights: "file.safetensors"\``],
        }),
      );
    }
  }
}

export interface AnalyzedModel {
  name: string;
  file: string;
  span: Span;
  tokenizer: TokenizerInfo | null;
  /** The `chat` section (null: none, or it failed). */
  chat: ChatInfo | null;
  modules: Partial<Record<ModuleName, ModuleResult>>;
  train: TrainInfo | null;
  params: Param[];
  analysis: ModelAnalysis;
}

function derivedNames(s: SectionName): string[] {
  switch (s) {
    case "tokenizer":
      return ["size"];
    case "encoder":
    case "projector":
      return ["tokens", "width"];
    default:
      return [];
  }
}

/**
 * A section's `init` (unless `default`) on every layer of the module that takes one and does
 * not set its own (see compiler/layers/init.ts).
 */
function applySectionInit(r: SectionReader, layers: readonly LayerNode[]): void {
  if (!r.schema.init) return;
  const init = r.get("init") as TypedCall | null;
  if (!init || init.call === SECTION_DEFAULT) return;
  const walk = (nodes: readonly LayerNode[]) => {
    for (const n of nodes) {
      const kind = layerKinds.get(n.kind);
      if (kind && takesInit(kind.args) && !n.argSpans.init) {
        n.args.init = init;
        n.argSpans.init = r.span("init");
      }
      if (n.children) walk(n.children);
    }
  };
  walk(layers);
}

function toValue(v: Typed, span: Span): Value {
  if (typeof v === "number") return { kind: "number", value: v, integer: Number.isInteger(v), span };
  if (typeof v === "string") return { kind: "string", value: v, span };
  if (typeof v === "boolean") return { kind: "bool", value: v, span };
  if (Array.isArray(v)) {
    if (v.length === 3 && v.every((x) => typeof x === "number")) return { kind: "dims", dims: v as number[], span };
    return { kind: "list", items: v.map((x) => toValue(x, span)), span };
  }
  return { kind: "call", name: v.call, positional: [], named: new Map(Object.entries(v.args).map(([k, a]) => [k, { value: toValue(a, span), nameSpan: span }])), span };
}
