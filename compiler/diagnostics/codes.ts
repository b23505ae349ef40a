// The one catalogue of diagnostic codes. A code never changes meaning; docs/errors.md is
// generated from this table and the fixture of each code under test/fixtures/diagnostics/.
//
//   E00xx  the file itself and its characters      E03xx  shapes
//   E01xx  syntax                                   E04xx  values and settings
//   E02xx  names and references                     E05xx  training stages and data
//   W....  warnings, numbered like errors           E06xx  the IR
//                                                   E07xx  weights and tokenizer files
//                                                   E08xx  code generation (compile --emit ts)
import type { Severity } from "./diagnostic.js";

export interface CodeInfo {
  severity: Severity;
  /** A short name for the docs' table of contents. */
  title: string;
  /** What it means, in a sentence or two. */
  explanation: string;
  /** How to fix it. */
  fix: string;
}

function e(title: string, explanation: string, fix: string): CodeInfo {
  return { severity: "error", title, explanation, fix };
}
function w(title: string, explanation: string, fix: string): CodeInfo {
  return { severity: "warning", title, explanation, fix };
}

export const catalogue = {
  // ---- the file and its characters ----
  E0001: e(
    "invalid UTF-8",
    "A .vlm file must be UTF-8 text. The byte at the reported position does not start or continue a valid UTF-8 sequence; the file is probably binary or in another encoding.",
    "Re-save the file as UTF-8, or check that you passed the right file.",
  ),
  E0002: e(
    "NUL byte",
    "The file contains a NUL (0x00) byte, which never appears in text: it is probably binary.",
    "Check that you passed the right file; remove the NUL bytes.",
  ),
  E0003: e(
    "byte-order mark",
    "The file starts with a UTF-8 byte-order mark (U+FEFF). vlmc reads UTF-8 without a BOM so that files hash and diff the same on every platform.",
    "Save the file as UTF-8 without BOM (most editors call it plain 'UTF-8').",
  ),
  E0004: e(
    "bidirectional control character",
    "The file contains a Unicode bidirectional control character (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C). These can make the text look different from what the compiler reads ('Trojan Source').",
    "Delete the character; if you need right-to-left text inside a string, write it without control characters.",
  ),
  E0005: e(
    "unknown character",
    "A character that no token of the language starts with.",
    "Delete it; comments start with `#`, strings are written in double quotes.",
  ),
  E0006: e(
    "unterminated string",
    "A string literal has no closing `\"` on its line. Strings cannot span lines; write `\\n` for a newline.",
    "Add the closing quote.",
  ),
  E0007: e(
    "invalid escape",
    "A string contains a backslash escape the language does not define. Valid escapes: `\\n`, `\\t`, `\\r`, `\\0`, `\\\\`, `\\\"`, `\\u{...}`.",
    "Write a valid escape, or `\\\\` for a literal backslash.",
  ),
  E0008: e(
    "malformed number",
    "Something that starts with a digit but is not a number: numbers are `128`, `0.1`, `1e-3`, `1_000`; dims are written `96 x 96 x 3` (or `96x96x3`).",
    "Fix the number; names cannot start with a digit.",
  ),
  E0009: e(
    "file too large",
    "The file is larger than any spec needs to be (the limits are 1 MiB and 300,000 tokens, about 25,000 lines). vlmc refuses to parse it rather than spend memory and time on what is almost certainly the wrong file.",
    "Check that you passed the right file; split a generated spec into several files joined with `use`.",
  ),
  // ---- syntax ----
  E0101: e(
    "unexpected token",
    "The parser found a token where the grammar does not allow it. The message names what it found and what it expected there.",
    "Write one of the expected tokens; see docs/language.md for the grammar.",
  ),
  E0102: e(
    "unclosed delimiter",
    "A `{`, `(` or `[` is never closed before the end of the file.",
    "Add the matching closing delimiter.",
  ),
  E0103: e(
    "unexpected closing delimiter",
    "A `}`, `)` or `]` that closes nothing, or closes a different kind of bracket than the one open.",
    "Delete it, or fix the bracket it should match.",
  ),
  E0104: e(
    "nesting too deep",
    "Brackets are nested more deeply than the compiler allows (64 levels). No real spec comes close; the file is probably generated or corrupt.",
    "Flatten the expression, e.g. with `let` constants.",
  ),
  E0105: e(
    "too many errors",
    "The file has more errors than are worth reading; the compiler stopped reporting after the first 100.",
    "Fix the errors reported so far (the first ones usually cause the rest) and check again.",
  ),
  E0106: e(
    "unsupported language version",
    "The `vlm` declaration names a language version this compiler does not implement.",
    "Write `vlm 0.1`, the version this compiler implements, or upgrade vlmc.",
  ),
  W0101: w(
    "missing language version",
    "The file does not start with a language version declaration. vlmc assumes the current version, but a future vlmc may read the file differently.",
    "Add `vlm 0.1` as the file's first line.",
  ),
  // ---- names and references ----
  E0201: e(
    "unknown name",
    "A name that is not a `let` constant, a block parameter, a setting of the enclosing section, or a section of the model.",
    "Fix the spelling (the message suggests the closest name), or define it with `let`.",
  ),
  E0202: e(
    "unknown setting",
    "A setting that the section (or the preset it uses) does not have. Misspelt settings are never ignored silently.",
    "Fix the spelling, or see docs/layers.md for the settings each section and preset accepts.",
  ),
  E0203: e(
    "unknown layer kind",
    "A layer in a chain that is neither a built-in layer kind nor a `block` defined in this file or a file it `use`s.",
    "Fix the spelling, or define the block with `block name(params) { ... }`.",
  ),
  E0204: e(
    "reference cycle",
    "A value depends on itself, directly or through other values.",
    "Give one of the values in the cycle a literal value.",
  ),
  E0205: e(
    "defined twice",
    "The same setting, argument, constant, block, model, section or stage is defined twice where one definition is allowed.",
    "Remove one of them (for a deliberate change of a base model, use `extends` and an override).",
  ),
  E0206: e(
    "unknown section or preset",
    "A section the language does not know (a model has `tokenizer`, `encoder`, `projector`, `decoder` and `train`), or a preset or tokenizer kind that does not exist.",
    "Fix the spelling; see docs/layers.md for the presets.",
  ),
  E0207: e(
    "cannot read used file",
    "A `use \"file.vlm\"` names a file that cannot be read. Paths are relative to the file that contains the `use`.",
    "Fix the path.",
  ),
  E0208: e(
    "use cycle",
    "Files `use` each other in a cycle.",
    "Move what both files need into a third file that both `use`.",
  ),
  E0209: e(
    "unknown base model or override",
    "`extends` names a model that is not defined, or an override `section.key: value` names a section or stage the model does not have.",
    "Fix the name; `use` the file that defines the base model.",
  ),
  E0210: e(
    "missing setting",
    "A required setting or argument is not given, and it has no default.",
    "Add it; the message says what it means.",
  ),
  E0211: e(
    "wrong arguments",
    "A layer, block or call gets more positional arguments than it takes, or a named argument it does not have.",
    "Check the arguments against the layer's signature in docs/layers.md.",
  ),
  E0212: e(
    "no model",
    "The file has a `train` section but no model to train, or a model was asked for by a name the file does not define.",
    "Declare `model NAME { ... }` in the file, or fix the name.",
  ),
  E0213: e(
    "misplaced entry",
    "An entry that cannot stand where it is: a layer chain in a section that takes only settings (such as `tokenizer`), a preset section that also has a layer chain, or a section nested where none is allowed.",
    "Move the entry to the section it belongs to.",
  ),
  // ---- shapes ----
  E0301: e(
    "image not divisible by patch",
    "The image height and width must be multiples of the patch size, so that the image splits into whole patches.",
    "Change `image` or `patch` (the message lists the patch sizes that fit).",
  ),
  E0302: e(
    "width not divisible by heads",
    "Multi-head attention splits the width into `heads` equal parts (and grouped key/value heads must divide the heads).",
    "Change `heads` or the width (the message lists the head counts that divide it).",
  ),
  E0303: e(
    "residual changes shape",
    "The body of a `residual { ... }` must output the shape it receives, since its output is added to its input.",
    "End the body with a layer that restores the width, e.g. `linear(dim)`.",
  ),
  E0304: e(
    "projector input width mismatch",
    "The projector's first layer must take the encoder's output width.",
    "Write the width as `encoder.dim`, or change the encoder.",
  ),
  E0305: e(
    "projector output width mismatch",
    "The projector's output is joined to the decoder's token embeddings, so it must have the decoder's width.",
    "Write `linear(decoder.dim)` as the projector's last linear layer, or change the decoder's `dim`.",
  ),
  E0306: e(
    "context too small",
    "The decoder's context (its position table) must hold the visual tokens and at least one text token.",
    "Raise the decoder's `context`, or give the encoder fewer output tokens (`output: cls` or a bigger `patch`).",
  ),
  E0307: e(
    "vocabulary mismatch",
    "The decoder's vocabulary must equal the tokenizer's size, or tokens would index past the embedding table (or never use part of it).",
    "Leave `vocab` out (it defaults to `tokenizer.size`) or write `vocab: tokenizer.size`.",
  ),
  E0308: e(
    "layer cannot take this input",
    "A layer received a tensor of a rank or width it cannot take: for example a `linear` on an image before the patch embedding, or a patch embedding on a sequence.",
    "Reorder the chain; the message shows the shape the layer received.",
  ),
  E0309: e(
    "restated value differs",
    "A setting restates a value vlmc derives (such as the encoder's visual token count), and the two differ.",
    "Remove the setting (the derived value is used), or fix the values it derives from.",
  ),
  E0310: e(
    "no visual tokens",
    "The encoder outputs no tokens (the seed model raises at run time in this case; vlmc catches it here).",
    "Check `output`, `cls` and the image and patch sizes.",
  ),
  E0311: e(
    "model too large",
    "The model expands (presets, blocks, repeats) into more layers than vlmc accepts (20,000). Nothing real is this deep; a nested `repeat` probably multiplies more than intended.",
    "Lower the repeat counts.",
  ),
  // ---- values and settings ----
  E0401: e(
    "wrong type",
    "A value of the wrong type: a string where a number is needed, a number where dims are needed, and so on.",
    "Write a value of the type the message names.",
  ),
  E0402: e(
    "value out of range",
    "A number outside the range its setting accepts: a width of 0, a dropout of 1.5, a learning rate of -1, or a size so large that no machine could allocate it.",
    "Use a value inside the range the message gives.",
  ),
  E0403: e(
    "not an integer",
    "A dimension or count that evaluates to a fraction, e.g. `dim / 3` when `dim` is 128.",
    "Change the arithmetic so it divides exactly.",
  ),
  E0404: e(
    "division by zero",
    "A constant expression divides by zero.",
    "Check the values the expression uses.",
  ),
  E0405: e(
    "unknown value",
    "A setting that takes one of a few names (such as `output: cls | patches | pool`) got another.",
    "Use one of the names the message lists.",
  ),
  E0406: e(
    "one value per channel",
    "A per-channel setting does not have one value per channel of the encoder's image: `normalize: stats(mean: [...], std: [...])` with lists of another length, or `imagenet` or `clip` (RGB statistics) for an image that is not 3 channels.",
    "Give as many values as the image has channels (`image: H x W x C`), or use `unit`.",
  ),
  // ---- training ----
  E0501: e(
    "unknown module in stage",
    "A stage's `train: [...]` names something that is not a module of the model.",
    "Use `encoder`, `projector` and/or `decoder`.",
  ),
  E0502: e(
    "stage trains nothing",
    "A stage whose `train` list is empty would run the model without changing any weight.",
    "List the modules the stage trains, or remove the stage.",
  ),
  E0503: e(
    "stage length",
    "A stage must say how long it runs with exactly one of `steps` or `epochs`.",
    "Give exactly one of them.",
  ),
  E0504: e(
    "file not found",
    "A weights file, a tokenizer's corpus or an `hf` tokenizer's file names a file that does not exist: checking the spec needs it (the weights' header, the corpus's characters, the tokenizer's vocabulary). Paths are relative to the spec file's folder. (A missing data file is the warning W0504.)",
    "Fix the path.",
  ),
  E0505: e(
    "bad optimizer or schedule",
    "An optimizer or schedule setting that cannot work: warm-up longer than the stage, betas outside [0, 1), a non-positive learning rate.",
    "Use a value inside the range the message gives.",
  ),
  E0506: e(
    "no stages",
    "A `train` section without any `stage NAME { ... }`.",
    "Add a stage.",
  ),
  E0507: e(
    "stage setting without effect",
    "A stage setting that cannot act in this stage: a learning rate in `module_lr` for a module the stage does not train, or early stopping (`patience`) in a stage that evaluates only at its end.",
    "Remove the setting, or make it act: train the module, or add `eval_every: N`.",
  ),
  E0508: e(
    "text the tokenizer cannot encode",
    "A `chars` tokenizer lacks a character that the model's text needs: a marker or the separator of the `chat` template (the image placeholder is never encoded: it is taken out of the text), or the questions and answers of generated instruction data (`instruct(...)`). Every conversation would be a bad row.",
    "Add the characters the message names to the tokenizer's `alphabet`, or change the template.",
  ),
  E0509: e(
    "data needs a chat template",
    "Instruction data (`conversations(...)`, `instruct(...)`) is written out for the decoder with the model's `chat` template (role markers, a separator), and the model has no `chat` section.",
    'Add `chat { user: "user: ", assistant: "assistant: ", separator: "\\n", image: "<image>" }` to the model (each setting has that default).',
  ),
  E0510: e(
    "unusable chat template",
    "A `chat` template that cannot work: an empty `separator` (a generated answer ends at the separator), an empty `image` placeholder, or the same marker for `user` and `assistant` (questions and answers could not be told apart).",
    "Give a non-empty separator and placeholder, and two different markers.",
  ),
  W0501: w(
    "module never trained",
    "A module is frozen in every stage and is given no pretrained weights: its random initial weights stay random, which is rarely intended.",
    "Train it in some stage, or give it pretrained `weights`.",
  ),
  W0502: w(
    "step may not fit in memory",
    "The estimated peak memory of a training step of this stage exceeds what the default (wasm) backend can address (4 GiB).",
    "Use gradient accumulation with the micro-batch the message suggests (`accumulate: N`), or a smaller batch.",
  ),
  W0504: w(
    "data file not found",
    "A data source names a file (or, for `folder`, a folder) that does not exist. The spec still checks, since its data may live outside the repository and arrive later, but `vlmc train` stops on it before any step. Paths are relative to the spec file's folder.",
    "Fix the path, put the data there before training, or train with `--set train.data=...` pointing at it.",
  ),
  W0401: w(
    "repeated character",
    "A character appears more than once in a tokenizer's alphabet; the duplicate is ignored.",
    "Remove the duplicate.",
  ),
  // ---- IR ----
  E0601: e(
    "invalid IR",
    "An IR document (JSON or YAML) does not match the IR schema (schemas/ir.schema.json).",
    "Fix the field the message names; an IR written by `vlmc compile --emit ir|yaml` is always valid.",
  ),
  E0602: e(
    "unreadable IR",
    "An IR file is not valid JSON or YAML, or declares an IR version this vlmc does not read.",
    "Regenerate it with `vlmc compile --emit ir|yaml`.",
  ),
  // ---- weights ----
  E0701: e(
    "invalid weights file",
    "A module's `weights` file is not a valid safetensors file: its header cannot be read (too short, not JSON, an unknown dtype, a malformed shape) or lies about its tensors (offsets past the end of the file, overlapping or leaving gaps, or spanning a different number of bytes than the shape and dtype need). `vlmc check` reads only the header, never the data.",
    "Re-export the weights (in Python: `safetensors.torch.save_file(state_dict, path)`), or check that the path names the right file.",
  ),
  E0702: e(
    "missing tensor",
    "A module's weights file has no tensor for one of the module's parameters. Tensors are matched to parameters by name, as `vlmc compile` lists them (`decoder.blocks.0.attn.q.weight`); a module's file may leave out the module's prefix (`blocks.0.attn.q.weight`).",
    "Export the file with the spec's parameter names, or change the spec so that its layers match the file's (a renamed layer renames its parameters).",
  ),
  E0703: e(
    "tensor shape mismatch",
    "A tensor of a module's weights file has a different shape from the parameter it is loaded into: the spec and the file describe different models (another width, vocabulary or context, say).",
    "Change the setting the message points to so that the spec makes the file's shape, or use weights exported for this spec.",
  ),
  E0704: e(
    "tensor dtype",
    "A tensor of a module's weights file holds integers or booleans; parameters are floating point and load from F32, F16, BF16, F64 or F8 tensors.",
    "Save the tensor as floating point.",
  ),
  E0705: e(
    "parameter given twice",
    "Two tensors of a module's weights file hold the same parameter: one named with the module's prefix (`decoder.ln_f.weight`) and one without (`ln_f.weight`).",
    "Remove one of the two tensors.",
  ),
  E0710: e(
    "invalid tokenizer file",
    "An `hf` tokenizer's `file` is not a tokenizer.json vlmc can use: not UTF-8 JSON, not a BPE model, not byte-level (its pre-tokenizer is not `ByteLevel`, or its vocabulary lacks some of the 256 byte tokens, so some text could not be encoded), or with a merge or an id that does not fit its vocabulary. The file is read at check time for its vocabulary size.",
    "Give the tokenizer.json of a byte-level BPE as Hugging Face `tokenizers` saves it (GPT-2's, or one `tokenizer bpe` trained: it is in the run folder).",
  ),
  E0711: e(
    "special token not in vocabulary",
    "A special role of an `hf` tokenizer (`specials: tokens(bos: \"...\")`) names a token that is neither in the file's vocabulary nor among its added tokens.",
    "Write the token exactly as the file has it (GPT-2's is `<|endoftext|>`); the message lists the file's added tokens.",
  ),
  E0720: e(
    "setting disagrees with the pretrained model",
    "A section with `pretrained: \"folder\"` takes its settings from the folder (a Hugging Face checkpoint's config.json: `n_embd` is the `gpt` decoder's `dim`, ...); a setting written beside it must say the same, or the weights would not fit the spec. The message shows both values and the field of the folder's file the value comes from. A few settings may differ: a decoder's `context` may be smaller than the checkpoint's (the first rows of its position table are loaded), and `dropout`, `tie_embeddings` and a tokenizer's `specials` are only defaulted from the folder.",
    "Remove the setting (the folder gives it), or write the folder's value.",
  ),
  E0721: e(
    "unusable pretrained folder",
    "A `pretrained:` folder cannot be read as the model it should be: it does not exist or is a file, it lacks a file the section needs (config.json and model.safetensors for a decoder, tokenizer.json for its tokenizer), a JSON file in it is invalid, or its config describes a model vlmc cannot express (another `model_type` or architecture, an activation without a counterpart, ...). Paths are relative to the spec's folder.",
    "Point `pretrained:` at a folder saved by Hugging Face `save_pretrained` (with safetensors weights) for a supported model, or write the section's settings and `weights:` yourself.",
  ),
  E0722: e(
    "setting written beside `pretrained:`",
    "A setting that the `pretrained:` folder alone gives is written too: a module's `weights` (the folder's model.safetensors is the module's weights) or an `hf` tokenizer's `file` (the folder's tokenizer.json).",
    "Remove the setting; to load other weights into the same architecture, remove `pretrained:` and write the settings and `weights:` yourself.",
  ),
  E0730: e(
    "unreadable tfjs model",
    "A `tfjs` encoder's `model` is not a tfjs LayersModel folder vlmc can read: the folder or its model.json is missing, model.json is not JSON or describes no Keras functional model with one fixed-size image input, or a weight shard it names is missing. The folder models/nsfwjs-mobilenet_v2 is extracted from the nsfwjs package by `npm ci` (or on first use, when nsfwjs is installed).",
    "Name the folder (or its model.json) relative to the spec; run `npm ci` for the nsfwjs MobileNetV2; convert a Keras model with `tensorflowjs_converter --output_format tfjs_layers_model`.",
  ),
  E0731: e(
    "no such layer in the tfjs model",
    "A `tfjs` encoder is cut at its `layer`, a Keras layer name of model.json, and the model has no layer of that name.",
    "Write the name as model.json spells it (the message suggests the closest); MobileNetV2's last feature map is `out_relu`.",
  ),
  E0732: e(
    "tfjs model layer vlmc cannot run",
    "On the way from its input to the cut, the tfjs model has a layer vlmc does not read: a Keras class it does not know (it reads ZeroPadding2D, Conv2D, DepthwiseConv2D, BatchNormalization, ReLU, Activation, Dropout, Add, Concatenate, pooling, Flatten and Dense, channels last), a setting of one it does not run (channels first, another padding, an unknown activation), a shared layer, or a cut whose output is neither a feature map nor a vector. Layers after the cut are never read.",
    "Cut the model at a layer before the one the message names.",
  ),
  E0733: e(
    "image size the tfjs model cannot take",
    "A `tfjs` encoder's `image` differs from its model's own input: that works when every layer up to the cut is convolutional (the input's size is rewritten), but not through a layer sized for the model's input (Flatten, Dense), with other channels than the model's, or when the image is so small that a layer would output nothing.",
    "Leave `image` out (it defaults to the model's input), cut the model before the Flatten or Dense layer, or give a larger image.",
  ),
  E0734: e(
    "training a frozen pretrained encoder",
    "A stage lists a frozen pretrained module in `train`: a `tfjs` encoder's weights are its model folder's, not vlmc parameters. Training a convolutional encoder would also need the gradient of its filters (Conv2DBackpropFilter), which tfjs's wasm backend does not have.",
    "Remove the encoder from the stage's `train`; train the projector (and the decoder) on its features.",
  ),
  W0701: w(
    "unexpected tensors",
    "A module's weights file holds tensors that name no parameter of the module; they are not loaded. Tensors named for another module (`encoder.`, `projector.`, `decoder.`) are not counted: one file may hold the weights of every module.",
    "Look for a layer renamed in the spec; remove the extra tensors from the file to silence the warning.",
  ),
  // ---- code generation (`vlmc compile --emit ts`) ----
  E0801: e(
    "layer without TypeScript form",
    "`vlmc compile --emit ts` writes each layer from its kind's TypeScript form (`emitTs`, beside its tfjs lowering in compiler/layers/); this layer's kind has none yet, or this configuration of it cannot be written. The spec itself is fine: `vlmc check`, `train` and `compile --emit ir` take it.",
    "Compile to the IR instead (`--emit ir`), or add the kind's `emitTs` (a few lines, mirroring its `lower`).",
  ),
  E0802: e(
    "tokenizer without TypeScript form",
    "`vlmc compile --emit ts` writes the tokenizer's vocabulary into the module, which it can do for the `chars` tokenizer only so far: a Hugging Face tokenizer's vocabulary lives in its tokenizer.json, and a `bpe` tokenizer's is learned when a run starts.",
    "Use a `chars` tokenizer for a model you mean to emit, or compile to the IR (`--emit ir`) and tokenize with the run's tokenizer.json.",
  ),
} as const satisfies Record<string, CodeInfo>;

export type Code = keyof typeof catalogue;

export function isCode(s: string): s is Code {
  return Object.prototype.hasOwnProperty.call(catalogue, s);
}
