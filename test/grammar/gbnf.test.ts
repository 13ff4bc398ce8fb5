/**
 * GBNF: llama.cpp's own grammars (test/fixtures/grammars) parse, and the byte automaton they
 * compile to accepts and rejects known strings exactly as an independent code-point
 * recognizer (test/helpers/grammar-matcher.ts) does; syntax errors and unsupported features
 * are coded errors with a line and column; printing a grammar back as GBNF keeps its language.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { isTesseraError } from "../../lib/errors.js";
import { Automaton, DEAD } from "../../lib/grammar/automaton.js";
import { compileGrammar } from "../../lib/grammar/compile.js";
import { parseGbnf } from "../../lib/grammar/gbnf.js";
import { toGbnf } from "../../lib/grammar/ir.js";
import { automatonAccepts, matchesGrammar } from "../helpers/grammar-matcher.js";
import { repoRoot } from "../helpers/paths.js";

const fixture = (name: string) => fs.readFileSync(path.join(repoRoot, "test/fixtures/grammars", `${name}.gbnf`), "utf8");

const CASES: Record<string, { good: string[]; bad: string[] }> = {
  arithmetic: {
    good: ["1+2=3\n", "a*(b+c)= 4\n", "x_1 /y2=z\n(1)=2\n", "( 12 +3 )  =\t4\n"],
    bad: ["", "1+2=3", "1+=3\n", "A=1\n", "1=2\n3\n", "(1=2\n"],
  },
  json: {
    good: ['{}', '{"a": 1}', '{"a": [1, 2.5e12, {"b": null}], "c": "x\\n\\u00e9"}', '{"é": "日本"}', '{\n  "k": true\n}', '{"a":-0.5}'],
    bad: ['{', '[1]', '{"a": 01}', '{"a": tru}', '{"a" 1}', '{"a": "\u0001"}', '{"a": 1,}', '{"a": "x\\q"}'],
  },
  list: {
    good: ["- a\n", "- milk\n- eggs and ham\n", "- 日本語\n"],
    bad: ["", "- \n", "-a\n", "- a", "- a\rb\n", "- a\u2028\n"],
  },
  c: {
    good: [
      "int main(){return 0;}",
      "int f(int a){int b = a*2+1;while(b>0){b = b-1;}return b;}",
      "float g(){if(x<=1){y = 2;}else{y = 3;}// note\n/* block * comment */}",
      "",
    ],
    bad: ["int main(){return 0}", "main(){}", "int f(){x=;}", "int f(){/* open }"],
  },
  chess: {
    good: ["1. e4 e5\n2. Nf3 Nc6\n", "1. d4 d5\n12. O-O O-O-O+\n", "1. exd5 Qxd5#\n2. a8=Q Rb1\n"],
    bad: ["1. e4 e5\n", "1. e9 e5\n2. a3 a4\n", "2. e4 e5\n2. a3 a4\n", "1. e4 e5 \n2. a3 a4\n"],
  },
};

describe("GBNF grammars from llama.cpp", () => {
  for (const [name, { good, bad }] of Object.entries(CASES)) {
    it(`${name}.gbnf parses, compiles and recognizes known good and bad strings`, () => {
      const g = parseGbnf(fixture(name));
      compileGrammar(g);
      for (const text of good) {
        expect(matchesGrammar(g, text), `reference: ${JSON.stringify(text)}`).toBe(true);
        expect(automatonAccepts(g, text), `automaton: ${JSON.stringify(text)}`).toBe(true);
      }
      for (const text of bad) {
        expect(matchesGrammar(g, text), `reference: ${JSON.stringify(text)}`).toBe(false);
        expect(automatonAccepts(g, text), `automaton: ${JSON.stringify(text)}`).toBe(false);
      }
    });
  }

  it("the automaton agrees with the reference recognizer on random mutations of good strings", () => {
    let seed = 12345;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const alphabet = ' \n\t{}[]":,.-+*/=()01239aezEé日\\#xOQ';
    let checked = 0;
    for (const [name, { good }] of Object.entries(CASES)) {
      const g = parseGbnf(fixture(name));
      for (const base of good) {
        for (let k = 0; k < 40; k++) {
          const chars = [...base];
          const edits = 1 + rand(2);
          for (let e = 0; e < edits; e++) {
            const at = rand(chars.length + 1);
            const c = [...alphabet][rand([...alphabet].length)];
            const op = rand(3);
            if (op === 0) chars.splice(at, 0, c);
            else if (op === 1) chars.splice(at, 1);
            else chars.splice(at, 1, c);
          }
          const text = chars.join("");
          expect(automatonAccepts(g, text), `${name}: ${JSON.stringify(text)}`).toBe(matchesGrammar(g, text));
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(500);
  });

  it("printing a grammar as GBNF and parsing it again keeps its language", () => {
    for (const name of Object.keys(CASES)) {
      const g = parseGbnf(fixture(name));
      const again = parseGbnf(toGbnf(g));
      for (const text of [...CASES[name].good, ...CASES[name].bad]) expect(matchesGrammar(again, text)).toBe(matchesGrammar(g, text));
    }
  });

  it("features: escapes, classes, any char, repetition counts, comments, nested groups", () => {
    const g = parseGbnf(String.raw`
root ::= greeting ("," ws name){1,3} tail?   # comment
greeting ::= "h\x69" | "\u00e9t\U0001F600"
name ::= [A-Z] [a-z\-]{0,4}
ws ::= [ \t]*
tail ::= "!" .
`);
    for (const [text, ok] of [
      ["hi,Al", true],
      ["ét😀,A, Bo,Cy", true],
      ["hi,A,B,C,D", false],
      ["hi,Al-x!z", true],
      ["hi,Al!", false],
      ["hi,Abcdef", false],
      ["hi,Al!日", true],
    ] as const) {
      expect(matchesGrammar(g, text), text).toBe(ok);
      expect(automatonAccepts(g, text), text).toBe(ok);
    }
  });

  it("errors are coded, with line and column", () => {
    const bad: Array<[string, RegExp]> = [
      ["root ::= foo", /undefined rule "foo"/],
      ["root ::= \"a", /end of grammar/],
      ["root ::= [a-", /end of grammar/],
      ["root = \"a\"", /line 1, column 6.*expecting ::=/],
      ['root ::= "a"\nroot ::= "b"', /line 2.*defined twice/],
      ['root ::= "a" <[12]>', /token references .* not supported/],
      ['root ::= "\\q"', /unknown escape/],
      ['root ::= "a"{3,1}', /max below min/],
      ['root ::= "a"{5000}', /above 2000/],
      ['other ::= "a"', /no "root" rule/],
      ["root ::= root \"a\" | \"b\"", /left-recursive/],
      ['root ::= "a" root', /can never finish/],
      ['root ::= [^\\x00-\\U0010FFFF]', /matches no character/],
    ];
    for (const [text, message] of bad) {
      let err: unknown;
      try {
        compileGrammar(parseGbnf(text));
      } catch (e) {
        err = e;
      }
      expect(isTesseraError(err, "ERR_INVALID_ARGUMENT"), `${text}: ${String(err)}`).toBe(true);
      expect((err as Error).message).toMatch(message);
    }
  });

  it("right recursion and nullable loops run in constant stack", () => {
    const g = parseGbnf('root ::= item*\nitem ::= ws "x"\nws ::= " "?');
    const a = new Automaton(compileGrammar(g));
    const s = a.walk(a.startState(), new TextEncoder().encode(" x".repeat(5000) + "x"));
    expect(s).not.toBe(DEAD);
    expect(a.isAccepting(s)).toBe(true);
    expect(a.t.nodeCount).toBeLessThan(50);
  });
});
