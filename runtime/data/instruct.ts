// The `instruct(images, size, seed)` data source's generator: questions with short answers about
// the pictures of the shapes set ("what colour is the circle?" "red"), each one a single-turn
// conversation in LLaVA's shape, tagged with its question type so that answers can be scored per
// type (runtime/eval/qa.ts). The pictures, their scenes and the train/validation split are the
// shapes generator's (runtime/data/shapes.ts, used through its exported API only): every question
// about an image lands on that image's side, and the validation side keeps its novel images (held-
// out shape-colour pairings), so "what colour is the circle?" about a green circle asks for a
// pairing training never showed.
//
// A question is asked only when its answer is unambiguous: "what colour is the circle?" only when
// there is one circle, "what size is the red shape?" only when one shape is red. Which of the two
// shapes a left-of question names first, and what an "is there ...?" question asks about, are
// seeded draws per image, balancing yes and no. "No" questions never name a held-out pairing: in
// training they would teach that such a shape never exists, which is the opposite of the test.
import { streamSeed, uniform01 } from "../random.js";
import { alphabetOf } from "../tokenizer.js";
import type { Turn } from "../chat.js";
import { COLOURS, generateShapes, isHeldOut, POSITIONS, SHAPES, SIZES, type Example as ShapesExample, type HeldOutKind, type Position, type Scene } from "./shapes.js";

export const QUESTION_TYPES = ["colour", "count", "relation", "shape", "size", "exists"] as const;
export type QuestionType = (typeof QUESTION_TYPES)[number];

export interface Question {
  type: QuestionType;
  question: string;
  answer: string;
}

export interface InstructExample extends Question {
  /** `<shapes id>/q<k>`: the k-th question about the image. */
  id: string;
  /** The picture: its shapes id, index, split side, novelty and pixels. */
  picture: ShapesExample;
  /** The exchange as LLaVA writes it (no image placeholder: the image is implied). */
  turns: Turn[];
}

export interface InstructSplit {
  train: InstructExample[];
  validation: InstructExample[];
}

export interface InstructOptions {
  images: number;
  size: number;
  seed: number;
  /** Fraction of the images in validation (the spec's `train.split`). */
  split?: number;
  /** What only validation shows (shapes' `heldOut`, default "pairs"). */
  heldOut?: HeldOutKind;
}

/** A picture holds one or two shapes. */
const COUNT_WORDS = ["one", "two"] as const;
const where = (p: Position) => (p === "center" ? "in the center" : `on the ${p}`);

/**
 * The questions about a scene, in a fixed order of types. `u` draws the seeded choices (which
 * shape a left-of question names first, what an "is there" question asks about).
 */
export function questionsFor(scene: Scene, u: () => number, heldOut: HeldOutKind = "pairs"): Question[] {
  const objs = scene.objects;
  const out: Question[] = [];
  const only = <K extends "shape" | "colour">(key: K, v: string) => objs.filter((o) => o[key] === v).length === 1;
  for (const o of objs) if (only("shape", o.shape)) out.push({ type: "colour", question: `what colour is the ${o.shape}?`, answer: o.colour });
  out.push({ type: "count", question: "how many shapes are there?", answer: COUNT_WORDS[objs.length - 1]! });
  if (objs.length === 2 && objs[0]!.shape !== objs[1]!.shape) {
    // Objects are ordered left to right: objs[0] is left of objs[1].
    const swap = u() < 0.5;
    const [a, b] = swap ? [objs[1]!, objs[0]!] : [objs[0]!, objs[1]!];
    out.push({ type: "relation", question: `is the ${a.shape} left of the ${b.shape}?`, answer: swap ? "no" : "yes" });
  }
  for (const o of objs) out.push({ type: "shape", question: `what shape is ${where(o.position)}?`, answer: o.shape });
  for (const o of objs) if (only("colour", o.colour)) out.push({ type: "size", question: `what size is the ${o.colour} shape?`, answer: o.size });
  const yes = u() < 0.5;
  if (yes) {
    const o = objs[Math.min(objs.length - 1, Math.floor(u() * objs.length))]!;
    out.push({ type: "exists", question: `is there a ${o.colour} ${o.shape}?`, answer: "yes" });
  } else {
    const absent = SHAPES.flatMap((shape) => COLOURS.map((colour) => ({ shape, colour }))).filter((c) => !(heldOut === "pairs" && isHeldOut(c)) && !objs.some((o) => o.shape === c.shape && o.colour === c.colour));
    const c = absent[Math.min(absent.length - 1, Math.floor(u() * absent.length))]!;
    out.push({ type: "exists", question: `is there a ${c.colour} ${c.shape}?`, answer: "no" });
  }
  return out;
}

/** The data set of `instruct(images, size, seed)`: the shapes pictures, a few questions each. */
export function generateInstruct(opts: InstructOptions): InstructSplit {
  const pictures = generateShapes({ images: opts.images, size: opts.size, seed: opts.seed, ...(opts.split !== undefined ? { split: opts.split } : {}), ...(opts.heldOut ? { heldOut: opts.heldOut } : {}) });
  const expand = (p: ShapesExample): InstructExample[] => {
    const u = uniform01(streamSeed(opts.seed, `instruct/questions/${p.index}`));
    return questionsFor(p.scene, u, opts.heldOut).map((q, k) => ({
      ...q,
      id: `${p.id}/q${k}`,
      picture: p,
      turns: [
        { from: "human", value: q.question },
        { from: "gpt", value: q.answer },
      ],
    }));
  };
  return { train: pictures.train.flatMap(expand), validation: pictures.validation.flatMap(expand) };
}

/** Every question and answer the generator can write, for the alphabet below. */
function everyText(): string[] {
  const texts: string[] = ["how many shapes are there?", ...COUNT_WORDS, "yes", "no", ...SIZES];
  for (const s of SHAPES) {
    texts.push(`what colour is the ${s}?`, s);
    for (const t of SHAPES) texts.push(`is the ${s} left of the ${t}?`);
    for (const c of COLOURS) texts.push(`is there a ${c} ${s}?`);
  }
  for (const c of COLOURS) texts.push(`what size is the ${c} shape?`, c);
  for (const p of POSITIONS) texts.push(`what shape is ${where(p)}?`);
  return texts;
}

/** The characters of every question and answer, sorted: what a `chars` tokenizer must cover (with the chat template's). */
export const INSTRUCT_ALPHABET: string = alphabetOf(everyText());
