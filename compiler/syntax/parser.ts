// Stage 2: tokens -> concrete syntax tree. Grammar rules only; no actions. One parser instance
// is built once and reused for every file (chevrotain's recommended use).
import type { CstNode, IRecognitionException, IToken, TokenType } from "chevrotain";
import { CstParser, EOF } from "./chevrotain.js";
import * as T from "./lexer.js";
import { messages } from "./messages.js";

/**
 * Parsing stops after this many syntax errors. Recovery costs chevrotain a few tens of
 * microseconds per error (and may scan ahead), so a 1 MiB file of stray tokens, one error
 * each, would otherwise take tens of seconds and a gigabyte; far more than are ever shown.
 */
export const MAX_PARSE_ERRORS = 1000;

class TooManyParseErrors extends Error {}

type SavesErrors = { SAVE_ERROR(error: IRecognitionException): IRecognitionException };
const chevrotainSaveError = (CstParser.prototype as unknown as SavesErrors).SAVE_ERROR;

class VlmParser extends CstParser {
  /** Errors saved in the current parse; see MAX_PARSE_ERRORS. */
  savedErrors = 0;
  gaveUp = false;

  constructor() {
    super(T.allTokens, {
      recoveryEnabled: true,
      maxLookahead: 3,
      errorMessageProvider: messages,
      // Grammar validation costs ~30 ms at every start; test/grammar.test.ts runs it instead.
      skipValidations: process.env.VLMC_GRAMMAR_CHECK !== "1",
    });
    this.performSelfAnalysis();
  }

  /** chevrotain's hook for every syntax error: aborts the parse once there are too many. */
  SAVE_ERROR(error: IRecognitionException): IRecognitionException {
    if (this.gaveUp) return error; // chevrotain's end-of-parse check, after the abort
    if (++this.savedErrors > MAX_PARSE_ERRORS) {
      this.gaveUp = true;
      throw new TooManyParseErrors();
    }
    return chevrotainSaveError.call(this, error);
  }

  // file := versionDecl? topItem*
  file = this.RULE("file", () => {
    this.OPTION(() => this.SUBRULE(this.versionDecl));
    this.MANY(() => this.SUBRULE(this.topItem));
  });

  // versionDecl := 'vlm' NUMBER
  versionDecl = this.RULE("versionDecl", () => {
    this.CONSUME(T.Vlm);
    this.CONSUME(T.NumberLike);
  });

  topItem = this.RULE("topItem", () => {
    this.OR({
      IGNORE_AMBIGUITIES: true,
      DEF: [
        { ALT: () => this.SUBRULE(this.useDecl) },
        { ALT: () => this.SUBRULE(this.letDecl) },
        { ALT: () => this.SUBRULE(this.blockDef) },
        { ALT: () => this.SUBRULE(this.modelDecl) },
        { ALT: () => this.SUBRULE(this.section) },
        { ALT: () => this.SUBRULE(this.separator) },
      ],
    });
  });

  separator = this.RULE("separator", () => {
    this.OR([{ ALT: () => this.CONSUME(T.Comma) }, { ALT: () => this.CONSUME(T.Semicolon) }]);
  });

  // useDecl := 'use' STRING
  useDecl = this.RULE("useDecl", () => {
    this.CONSUME(T.Use);
    this.CONSUME(T.StringLit);
  });

  // letDecl := 'let' NAME '=' expr
  letDecl = this.RULE("letDecl", () => {
    this.CONSUME(T.Let);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  // blockDef := 'block' NAME '(' params? ')' body
  blockDef = this.RULE("blockDef", () => {
    this.CONSUME(T.Block);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.LParen);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.param) });
    this.CONSUME(T.RParen);
    this.SUBRULE(this.body);
  });

  // param := NAME ('=' expr)?
  param = this.RULE("param", () => {
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.Equals);
      this.SUBRULE(this.expr);
    });
  });

  // modelDecl := 'model' NAME ('extends' NAME)? body
  modelDecl = this.RULE("modelDecl", () => {
    this.CONSUME(T.Model);
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.Extends);
      this.CONSUME2(T.Identifier);
    });
    this.SUBRULE(this.body);
  });

  // section := NAME NAME? body          e.g. `encoder vit { ... }`, `train { ... }`
  section = this.RULE("section", () => {
    this.CONSUME(T.Identifier);
    this.OPTION(() => this.CONSUME2(T.Identifier));
    this.SUBRULE(this.body);
  });

  // body := '{' (entry separator?)* '}'
  body = this.RULE("body", () => {
    this.CONSUME(T.LCurly);
    this.MANY(() => {
      this.SUBRULE(this.entry);
      this.OPTION(() => this.SUBRULE(this.separator));
    });
    this.CONSUME(T.RCurly);
  });

  // entry := letDecl | setting | section | chain
  entry = this.RULE("entry", () => {
    this.OR({
      // `a b {` could be a chain `a` followed by a section `b { }`; a labelled section wins.
      IGNORE_AMBIGUITIES: true,
      DEF: [
      { ALT: () => this.SUBRULE(this.letDecl) },
      {
        GATE: () => this.LA(2).tokenType === T.Colon || this.LA(2).tokenType === T.Dot,
        ALT: () => this.SUBRULE(this.setting),
      },
      {
        GATE: () => isName(this.LA(2).tokenType) && this.LA(3).tokenType === T.LCurly,
        ALT: () => this.SUBRULE(this.section),
      },
      { ALT: () => this.SUBRULE(this.chain) },
    ],
    });
  });

  // setting := NAME ('.' NAME)* ':' expr
  setting = this.RULE("setting", () => {
    this.CONSUME(T.Identifier);
    this.MANY(() => {
      this.CONSUME(T.Dot);
      this.CONSUME2(T.Identifier);
    });
    this.CONSUME(T.Colon);
    this.SUBRULE(this.expr);
  });

  // chain := item ('->' item)*
  chain = this.RULE("chain", () => {
    this.SUBRULE(this.item);
    this.MANY(() => {
      this.CONSUME(T.Arrow);
      this.SUBRULE2(this.item);
    });
  });

  // item := 'repeat' expr body | NAME args? body?
  item = this.RULE("item", () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Repeat);
          this.SUBRULE(this.expr);
          this.SUBRULE(this.body);
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Identifier);
          this.OPTION(() => this.SUBRULE(this.args));
          this.OPTION2(() => this.SUBRULE2(this.body));
        },
      },
    ]);
  });

  // args := '(' (arg (',' arg)* ','?)? ')'
  args = this.RULE("args", () => {
    this.CONSUME(T.LParen);
    this.OPTION(() => {
      this.SUBRULE(this.arg);
      this.MANY({
        GATE: () => this.LA(2).tokenType !== T.RParen,
        DEF: () => {
          this.CONSUME(T.Comma);
          this.SUBRULE2(this.arg);
        },
      });
      this.OPTION2(() => this.CONSUME2(T.Comma));
    });
    this.CONSUME(T.RParen);
  });

  // arg := (NAME ':')? expr
  arg = this.RULE("arg", () => {
    this.OPTION({
      GATE: () => this.LA(2).tokenType === T.Colon,
      DEF: () => {
        this.CONSUME(T.Identifier);
        this.CONSUME(T.Colon);
      },
    });
    this.SUBRULE(this.expr);
  });

  // expr := unary (op unary)*        op: x × + - * / %
  // One flat rule: operator precedence is applied when the AST is built (build-ast.ts), which
  // keeps the parser shallow and fast.
  expr = this.RULE("expr", () => {
    this.SUBRULE(this.unary);
    this.MANY(() => {
      this.OR([
        { ALT: () => this.CONSUME(T.Cross) },
        { ALT: () => this.CONSUME(T.Plus) },
        { ALT: () => this.CONSUME(T.Minus) },
        { ALT: () => this.CONSUME(T.Star) },
        { ALT: () => this.CONSUME(T.Slash) },
        { ALT: () => this.CONSUME(T.Percent) },
      ]);
      this.SUBRULE2(this.unary);
    });
  });

  // unary := '-'* primary        (iterative: no recursion however many signs)
  unary = this.RULE("unary", () => {
    this.MANY(() => this.CONSUME(T.Minus));
    this.SUBRULE(this.primary);
  });

  // primary := NUMBER | STRING | 'true' | 'false' | NAME ('.' NAME)* args? | list | '(' expr ')'
  primary = this.RULE("primary", () => {
    this.OR([
      { ALT: () => this.CONSUME(T.NumberLike) },
      { ALT: () => this.CONSUME(T.StringLit) },
      { ALT: () => this.CONSUME(T.True) },
      { ALT: () => this.CONSUME(T.False) },
      {
        ALT: () => {
          this.CONSUME(T.Identifier);
          this.MANY(() => {
            this.CONSUME(T.Dot);
            this.CONSUME2(T.Identifier);
          });
          this.OPTION(() => this.SUBRULE(this.args));
        },
      },
      { ALT: () => this.SUBRULE(this.list) },
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          this.SUBRULE(this.expr);
          this.CONSUME(T.RParen);
        },
      },
    ]);
  });

  // list := '[' (expr (',' expr)* ','?)? ']'
  list = this.RULE("list", () => {
    this.CONSUME(T.LBracket);
    this.OPTION(() => {
      this.SUBRULE(this.expr);
      this.MANY({
        GATE: () => this.LA(2).tokenType !== T.RBracket,
        DEF: () => {
          this.CONSUME(T.Comma);
          this.SUBRULE2(this.expr);
        },
      });
      this.OPTION2(() => this.CONSUME2(T.Comma));
    });
    this.CONSUME(T.RBracket);
  });
}

function isName(t: TokenType): boolean {
  return t === T.Identifier || t.CATEGORIES?.includes(T.Identifier) === true;
}

/** The parser, built once. */
export const parser = new VlmParser();

export interface ParseResult {
  /** Null when parsing stopped after MAX_PARSE_ERRORS errors. */
  cst: CstNode | null;
  errors: IRecognitionException[];
}

export function parseTokens(tokens: IToken[]): ParseResult {
  parser.input = tokens;
  parser.savedErrors = 0;
  parser.gaveUp = false;
  try {
    const cst = parser.file();
    return { cst, errors: parser.errors };
  } catch (err) {
    if (err instanceof TooManyParseErrors) return { cst: null, errors: parser.errors };
    throw err;
  }
}

export { EOF };
