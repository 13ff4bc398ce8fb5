/**
 * Token-stream rewrites before @huggingface/jinja parses a template.
 *
 * jinja2 tests take arguments — `x is divisibleby(3)`, `x is sameas false`,
 * `v is equalto 'a'` — which the library's parser does not accept (a test is a bare name
 * there). Each such test becomes a test of a generated name, and its arguments become a
 * separate expression the interpreter evaluates when it meets that name.
 */
import { parse } from "./library.js";
import { TUPLE_BUILTIN } from "./source.js";

interface Token {
  value: string;
  type: string;
}

export interface TestWithArguments {
  /** The test's own name (divisibleby, sameas, ...). */
  name: string;
  /** An expression evaluating to the tuple of its arguments. */
  args: unknown;
}

export const TEST_PREFIX = "__tessera_test_";

const OPEN = new Set(["OpenParen", "OpenSquareBracket", "OpenCurlyBracket"]);
const CLOSE = new Set(["CloseParen", "CloseSquareBracket", "CloseCurlyBracket"]);
// jinja2 reads one bare argument after a test when one of these follows (not and/or/else).
const BARE_ARGUMENT = new Set(["Identifier", "StringLiteral", "NumericLiteral"]);
const NOT_AN_ARGUMENT = new Set(["and", "or", "else", "if", "is", "in", "not"]);

/** Rewrites tests with arguments; returns the tokens and what each generated test name stands for. */
export function rewriteTestArguments(tokens: Token[]): { tokens: Token[]; tests: Map<string, TestWithArguments> } {
  const tests = new Map<string, TestWithArguments>();
  const out: Token[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    out.push(t);
    if (!(t.type === "Identifier" && t.value === "is")) continue;
    let j = i + 1;
    if (tokens[j]?.type === "Identifier" && tokens[j].value === "not") out.push(tokens[j++]);
    const name = tokens[j];
    if (name?.type !== "Identifier") continue;
    let args: Token[] | undefined;
    let end = j;
    const next = tokens[j + 1];
    if (next?.type === "OpenParen") {
      let depth = 0;
      for (end = j + 1; end < tokens.length; end++) {
        if (OPEN.has(tokens[end].type)) depth++;
        else if (CLOSE.has(tokens[end].type) && --depth === 0) break;
      }
      if (end >= tokens.length) continue; // unbalanced: let the parser report it
      args = tokens.slice(j + 2, end);
    } else if (next && BARE_ARGUMENT.has(next.type) && !(next.type === "Identifier" && NOT_AN_ARGUMENT.has(next.value))) {
      args = [next];
      end = j + 1;
    }
    if (!args) {
      out.push(name);
      i = j;
      continue;
    }
    const generated = `${TEST_PREFIX}${tests.size}`;
    const program = parse([
      { type: "OpenExpression", value: "{{" },
      { type: "Identifier", value: TUPLE_BUILTIN },
      { type: "OpenParen", value: "(" },
      ...args,
      { type: "CloseParen", value: ")" },
      { type: "CloseExpression", value: "}}" },
    ]);
    tests.set(generated, { name: name.value, args: program.body[0] });
    out.push({ type: "Identifier", value: generated });
    i = end;
  }
  return { tokens: out, tests };
}
