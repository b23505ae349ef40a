// `vlmc compile --emit ts`: the IR as a standalone TypeScript module whose only import is
// `@tensorflow/tfjs`, to run a trained model in a browser or any JavaScript program without
// vlmc: its parameters (PARAMS, createWeights), a safetensors loader for the run's
// weights.safetensors (no fs), the image preprocessing, the tokenizer's vocabulary, the forward
// pass layer by layer with a shape comment on each line (compiler/emit/ts-forward.ts, from each
// layer kind's `emitTs`), and greedy generation. The module is built with ts-morph as
// declarations (functions, interfaces, variable statements); only bodies are written as text.
//
// ts-morph loads the TypeScript compiler (seconds), so it is required here lazily: importing this
// file costs nothing until a module is emitted.
import { createRequire } from "node:module";
import type * as TsMorph from "ts-morph";
import { diagnostic, hasErrors, type Diagnostic } from "../diagnostics/diagnostic.js";
import type { IrPath } from "../ir/locate.js";
import type { Ir, IrLayer, IrParam } from "../ir/types.js";
import { layerKinds } from "../layers/index.js";
import type { LayerKind } from "../layers/kind.js";
import type { Span } from "../source.js";
import { emitForward, shapeComment, type ForwardCode } from "./ts-forward.js";
import { TS_HELPERS } from "./ts-helpers.js";
import { addGeneration, addPreprocessing, addTokenizer, addWeights } from "./ts-parts.js";

export interface EmitTsOptions {
  /** Where a value of the IR is written (for diagnostics). */
  where: (path: IrPath) => Span;
  /** The file the model came from, as the module's header names it. */
  source: string;
  /** The layer kinds (default: the registry); tests pass a kind without `emitTs`. */
  kinds?: ReadonlyMap<string, LayerKind>;
}

export interface EmitTsResult {
  /** The module's source, or null when a diagnostic is an error. */
  text: string | null;
  diagnostics: Diagnostic[];
}

const require = createRequire(import.meta.url);
let tsMorph: typeof TsMorph | undefined;
function loadTsMorph(): typeof TsMorph {
  tsMorph ??= require("ts-morph") as typeof TsMorph;
  return tsMorph;
}

/** What the module needs to know about the model, beyond the forward pass. */
export interface ModelFacts {
  ir: Ir;
  params: IrParam[];
  /** The decoder's context (visual tokens + text), or null. */
  context: number | null;
  visualTokens: number;
}

export function emitTs(ir: Ir, options: EmitTsOptions): EmitTsResult {
  const diagnostics: Diagnostic[] = [];
  const tok = ir.tokenizer as { kind: string } | null;
  if (tok && tok.kind !== "chars") {
    diagnostics.push(
      diagnostic("E0802", options.where(["tokenizer"]), `\`vlmc compile --emit ts\` cannot write the \`${tok.kind}\` tokenizer yet`, {
        label: `a \`${tok.kind}\` tokenizer`,
        help: ["only the `chars` tokenizer is written into the module for now; compile to the IR instead (`--emit ir`)"],
      }),
    );
  }
  const forward = emitForward(ir, options.kinds ?? layerKinds, options.where);
  diagnostics.push(...forward.diagnostics);
  if (hasErrors(diagnostics)) return { text: null, diagnostics };
  return { text: writeModule(facts(ir), forward, options.source), diagnostics };
}

function facts(ir: Ir): ModelFacts {
  const params: IrParam[] = [];
  const walk = (ls: IrLayer[]) => {
    for (const l of ls) {
      params.push(...l.params);
      if (l.children) walk(l.children);
    }
  };
  for (const m of [ir.modules.encoder, ir.modules.projector, ir.modules.decoder]) if (m) walk(m.layers);
  const dec = ir.modules.decoder as ({ context?: unknown } & Ir["modules"]["decoder"]) | undefined;
  let context: number | null = null;
  if (dec) {
    if (typeof dec.context === "number") context = dec.context;
    else for (const l of dec.layers) if (l.kind === "positions" && typeof l.attrs.length === "number") context = l.attrs.length;
  }
  const vis = ir.modules.projector ?? ir.modules.encoder;
  const visualTokens = vis && dec && typeof vis.output[1] === "number" ? vis.output[1] : 0;
  return { ir, params, context, visualTokens };
}

/**
 * The declarations of the module, in order. They go into the source file in one call: ts-morph
 * re-parses the file after each manipulation, so adding them one by one is quadratic.
 */
export interface ModuleBuilder {
  addFunction(s: TsMorph.OptionalKind<TsMorph.FunctionDeclarationStructure>): void;
  addInterface(s: TsMorph.OptionalKind<TsMorph.InterfaceDeclarationStructure>): void;
  addTypeAlias(s: TsMorph.OptionalKind<TsMorph.TypeAliasDeclarationStructure>): void;
  addVariableStatement(s: TsMorph.OptionalKind<TsMorph.VariableStatementStructure>): void;
}

function writeModule(model: ModelFacts, forward: ForwardCode, source: string): string {
  const { Project, IndentationText, QuoteKind, VariableDeclarationKind, StructureKind } = loadTsMorph();
  const statements: (TsMorph.StatementStructures | TsMorph.WriterFunction)[] = [];
  const sf: ModuleBuilder = {
    addFunction: (s) => statements.push({ ...s, kind: StructureKind.Function }),
    addInterface: (s) => statements.push({ ...s, kind: StructureKind.Interface }),
    addTypeAlias: (s) => statements.push({ ...s, kind: StructureKind.TypeAlias }),
    addVariableStatement: (s) => statements.push({ ...s, kind: StructureKind.VariableStatement }),
  };
  const { ir } = model;
  const { encoder, decoder } = ir.modules;

  statements.push((w) => {
    w.writeLine(`// ${ir.model}: the model as a standalone TensorFlow.js module, written by \`vlmc compile --emit ts\``);
    w.writeLine(`// from ${source}. Regenerate it rather than editing it.`);
    w.writeLine("//");
    w.writeLine('//   const w = loadWeights(await (await fetch("weights.safetensors")).arrayBuffer());');
    if (encoder && decoder) {
      w.writeLine("//   const images = preprocess([imageData]);          // RGB(A) pixels -> [1, H, W, 3]");
      w.writeLine("//   const [caption] = await generate(w, images, 40); // greedy");
    }
    w.writeLine("//");
    w.writeLine("// Its only import is @tensorflow/tfjs: it runs on any backend (cpu, wasm, webgl, webgpu).");
    w.blankLine();
  });
  statements.push({ kind: StructureKind.ImportDeclaration, namespaceImport: "tf", moduleSpecifier: "@tensorflow/tfjs" });

  const constant = (name: string, docs: string, initializer: string, type?: string) =>
    sf.addVariableStatement({
      isExported: true,
      declarationKind: VariableDeclarationKind.Const,
      docs: [docs],
      declarations: [{ name, initializer, ...(type ? { type } : {}) }],
    });
  constant("MODEL", "The model's name in its spec.", JSON.stringify(ir.model));
  constant("HASH", "The architecture's hash: weights files vlmc writes record it (`vlmc.hash`).", JSON.stringify(ir.hash));
  if (decoder) {
    constant("CONTEXT", "The most positions (visual tokens + text) the decoder takes; null: no limit.", String(model.context), "number | null");
    constant("VISUAL_TOKENS", "The visual tokens the decoder sees in front of the text.", String(model.visualTokens));
  }

  addWeights(sf, model, { VariableDeclarationKind });
  if (encoder) addPreprocessing(sf, ir, { VariableDeclarationKind });
  if (ir.tokenizer) addTokenizer(sf, ir, { VariableDeclarationKind });

  // The tensor helpers the layers asked for, in a fixed order.
  for (const [name, h] of Object.entries(TS_HELPERS)) {
    if (!forward.helpers.has(name as keyof typeof TS_HELPERS)) continue;
    sf.addFunction({
      name,
      docs: [h.docs],
      parameters: h.parameters,
      returnType: h.returnType,
      statements: (w) => {
        for (const line of h.body) w.writeLine(line);
      },
    });
  }

  addForward(sf, model, forward);
  if (decoder) addGeneration(sf, model);

  const project = new Project({
    useInMemoryFileSystem: true,
    manipulationSettings: { indentationText: IndentationText.TwoSpaces, quoteKind: QuoteKind.Double },
  });
  const file = project.createSourceFile("model.ts", "");
  file.addStatements(statements);
  // ts-morph indents the lines of a multi-line initializer (PARAMS, VOCAB) one level too deep;
  // TypeScript's own formatter puts them where an editor would.
  file.formatText({ indentSize: 2, tabSize: 2, convertTabsToSpaces: true });
  return file.getFullText();
}

function addForward(sf: ModuleBuilder, model: ModelFacts, forward: ForwardCode): void {
  const { encoder, decoder } = model.ir.modules;
  const params = [{ name: "w", type: "Weights" }];
  if (encoder) params.push({ name: "images", type: "tf.Tensor4D" });
  if (decoder) params.push({ name: "tokens", type: "tf.Tensor2D" });
  const out = decoder ? decoder.output : (model.ir.modules.projector ?? encoder)!.output;
  const docs = decoder
    ? `Logits ${shapeComment(out)}: ${encoder ? `images [B, H, W, 3] (from \`preprocess\`) and ` : ""}token ids [B, T] (int32). Position i's logits predict token i + 1 of the text${encoder ? `; the first ${model.visualTokens} positions are the visual tokens'` : ""}.`
    : `The encoder's output ${shapeComment(out)} for images [B, H, W, 3] (from \`preprocess\`).`;
  sf.addFunction({
    name: "forward",
    isExported: true,
    docs: [docs],
    parameters: params,
    returnType: "tf.Tensor3D",
    statements: (w) => {
      w.write("return tf.tidy(() => ").inlineBlock(() => {
        w.writeLine(`const B = ${decoder ? "tokens" : "images"}.shape[0];`);
        if (decoder) w.writeLine("const T = tokens.shape[1];");
        for (const line of forward.lines) {
          if (line.kind === "comment") {
            if (line.text.startsWith("----")) w.blankLineIfLastNot();
            w.writeLine(`// ${line.text}`);
          } else w.writeLine(`const ${line.name} = ${line.expr}; // ${shapeComment(line.shape)}`);
        }
        w.writeLine(`return ${forward.result} as tf.Tensor3D;`);
      });
      w.write(");");
    },
  });
}
