// Stage 1: source text -> tokens. The token vocabulary of the .vlm language, and nothing else.
// Keywords that may also be used as setting names (`model: "m.json"`) belong to the
// Identifier category, so the grammar accepts them wherever a name is expected.
import type { ILexingError, IToken, TokenType } from "chevrotain";
import { createToken, Lexer } from "./chevrotain.js";

export const Identifier = createToken({ name: "Identifier", pattern: /[A-Za-z_][A-Za-z0-9_]*/, label: "a name" });

function keyword(word: string, contextual: boolean): TokenType {
  return createToken({
    name: word[0]!.toUpperCase() + word.slice(1),
    pattern: new RegExp(word),
    longer_alt: Identifier,
    label: `\`${word}\``,
    ...(contextual ? { categories: [Identifier] } : {}),
  });
}

// Contextual keywords: special only where the grammar asks for them.
export const Vlm = keyword("vlm", true);
export const Use = keyword("use", true);
export const Model = keyword("model", true);
export const Extends = keyword("extends", true);
export const Block = keyword("block", true);
// Reserved words: never names.
export const Let = keyword("let", false);
export const Repeat = keyword("repeat", false);
export const True = keyword("true", false);
export const False = keyword("false", false);
/** The dims operator of `96 x 96 x 3` (also `×`). */
export const Cross = createToken({ name: "Cross", pattern: /x|×/, longer_alt: Identifier, label: "`x`" });

/**
 * Anything that starts with a digit, taken greedily so that `1e-3`, `96x96x3` and a malformed
 * `1.2.3` or `3.` are each one token; the AST step classifies it (number, dims, or error).
 */
export const NumberLike = createToken({
  name: "Number",
  pattern: /[0-9](?:[eE][+-][0-9]|[0-9A-Za-z_]|\.(?=[0-9]))*(?:\.(?![0-9A-Za-z_]))?/,
  label: "a number",
});
export const StringLit = createToken({ name: "String", pattern: /"(?:[^"\\\n\r]|\\[^\n\r])*"/, label: "a string" });
/** A string missing its closing quote on the same line; reported, then parsed as a string. */
export const UnterminatedString = createToken({ name: "UnterminatedString", pattern: /"(?:[^"\\\n\r]|\\[^\n\r])*\\?/, label: "a string" });

export const Arrow = createToken({ name: "Arrow", pattern: /->|→/, label: "`->`" });
export const LCurly = createToken({ name: "LCurly", pattern: /\{/, label: "`{`" });
export const RCurly = createToken({ name: "RCurly", pattern: /\}/, label: "`}`" });
export const LParen = createToken({ name: "LParen", pattern: /\(/, label: "`(`" });
export const RParen = createToken({ name: "RParen", pattern: /\)/, label: "`)`" });
export const LBracket = createToken({ name: "LBracket", pattern: /\[/, label: "`[`" });
export const RBracket = createToken({ name: "RBracket", pattern: /\]/, label: "`]`" });
export const Comma = createToken({ name: "Comma", pattern: /,/, label: "`,`" });
export const Semicolon = createToken({ name: "Semicolon", pattern: /;/, label: "`;`" });
export const Colon = createToken({ name: "Colon", pattern: /:/, label: "`:`" });
export const Dot = createToken({ name: "Dot", pattern: /\./, label: "`.`" });
export const Equals = createToken({ name: "Equals", pattern: /=/, label: "`=`" });
export const Plus = createToken({ name: "Plus", pattern: /\+/, label: "`+`" });
export const Minus = createToken({ name: "Minus", pattern: /-/, label: "`-`" });
export const Star = createToken({ name: "Star", pattern: /\*/, label: "`*`" });
export const Slash = createToken({ name: "Slash", pattern: /\//, label: "`/`" });
export const Percent = createToken({ name: "Percent", pattern: /%/, label: "`%`" });

export const WhiteSpace = createToken({ name: "WhiteSpace", pattern: /[ \t\r\n\f\v]+/, group: Lexer.SKIPPED });
export const Comment = createToken({ name: "Comment", pattern: /#[^\n\r]*/, group: Lexer.SKIPPED });

export const allTokens: TokenType[] = [
  WhiteSpace,
  Comment,
  Arrow,
  StringLit,
  UnterminatedString,
  NumberLike,
  Vlm,
  Use,
  Model,
  Extends,
  Block,
  Let,
  Repeat,
  True,
  False,
  Cross,
  Identifier,
  LCurly,
  RCurly,
  LParen,
  RParen,
  LBracket,
  RBracket,
  Comma,
  Semicolon,
  Colon,
  Dot,
  Equals,
  Plus,
  Minus,
  Star,
  Slash,
  Percent,
];

const lexer = new Lexer(allTokens, {
  positionTracking: "onlyOffset",
  ensureOptimizations: true,
  errorMessageProvider: {
    buildUnexpectedCharactersMessage: () => "unknown character",
    buildUnableToPopLexerModeMessage: () => "lexer mode error",
  },
});

export interface LexResult {
  tokens: IToken[];
  /** Runs of characters no token matches: offset and length. */
  unknown: { offset: number; length: number }[];
}

export function tokenize(text: string): LexResult {
  const result = lexer.tokenize(text);
  return { tokens: result.tokens, unknown: result.errors.map((e: ILexingError) => ({ offset: e.offset, length: e.length })) };
}
