// The parser's error messages: what the user typed, and what was expected there, named as the
// user would name it (token labels), never as grammar rule names.
import type { IParserErrorMessageProvider, IToken, TokenType } from "chevrotain";
import { EOF } from "./chevrotain.js";

export function describeToken(token: IToken): string {
  if (token.tokenType === EOF) return "end of file";
  const image = token.image.length > 24 ? `${token.image.slice(0, 21)}...` : token.image;
  switch (token.tokenType.name) {
    case "Number":
      return `number \`${image}\``;
    case "String":
    case "UnterminatedString":
      return `string ${image}`;
    case "Identifier":
      return `\`${image}\``;
    default:
      return `\`${image}\``;
  }
}

function label(t: TokenType): string {
  return t.LABEL ?? t.name;
}

/** "`a`, `b` or `c`", deduplicated, in first-seen order. */
export function oneOf(items: string[]): string {
  const unique = [...new Set(items)];
  if (unique.length <= 1) return unique[0] ?? "nothing";
  return `${unique.slice(0, -1).join(", ")} or ${unique[unique.length - 1]}`;
}

const whatRuleExpects: Record<string, string> = {
  topItem: "`model`, `use`, `let`, `block` or a section such as `train { ... }`",
  entry: "a setting (`name: value`), a section (`name { ... }`) or a layer",
  primary: "a value (a number, string, name, list or `(`)",
  expr: "a value (a number, string, name, list or `(`)",
  item: "a layer name or `repeat`",
  separator: "`,` or `;`",
};

// Each message says only what was expected; the front end adds what preceded and what was
// found, from the token stream itself (chevrotain's `previous` is unreliable after recovery).
export const messages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage({ expected }) {
    return `expected ${label(expected)}`;
  },
  buildNotAllInputParsedMessage() {
    return `expected ${whatRuleExpects.topItem}`;
  },
  buildNoViableAltMessage({ expectedPathsPerAlt, ruleName }) {
    return `expected ${whatRuleExpects[ruleName] ?? oneOf(expectedPathsPerAlt.flatMap((alt) => alt.map((path) => label(path[0]!))))}`;
  },
  buildEarlyExitMessage({ expectedIterationPaths }) {
    return `expected ${oneOf(expectedIterationPaths.map((path) => label(path[0]!)))}`;
  },
};
