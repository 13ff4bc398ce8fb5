/**
 * A pre-pass that gives template text jinja2's lexing, for @huggingface/jinja to parse.
 *
 * transformers renders chat templates with trim_blocks and lstrip_blocks. The library
 * emulates both with two regular expressions over the whole source, which differs from
 * jinja2 where it matters (lstrip_blocks only applies at a line start *as jinja2's lexer
 * tracks it*, `{%+` and `+%}` turn stripping off, `%}` inside a string literal is not a
 * tag end). So this pass lexes the source the way jinja2's lexer does (its root rule, tag
 * ends with bracket balancing, comments, raw blocks), applies the whitespace control
 * itself, and hands the library a source whose tags carry no modifiers and whose text is
 * already stripped: the library's lexer then only has to cut it into the same tokens.
 *
 * String literals are rewritten too: jinja2 decodes them with Python's unicode-escape
 * (unknown escapes such as `\d` stay as written, `\U0001F600` and octal escapes exist);
 * the library rejects unknown escapes. The literal's value is decoded here and written
 * back with only `\\` and `\"` escaped.
 */
import { TesseraError } from "../../errors.js";

// Python's str.isspace() characters (\s of a str regex).
const PY_SPACE = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const TRAILING_SPACE = new RegExp(`[${PY_SPACE}]+$`);
const LEADING_SPACE = new RegExp(`^[${PY_SPACE}]+`);
const IS_SPACE = new RegExp(`[${PY_SPACE}]`);

export class TemplateSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
  }
}

function lineOf(src: string, pos: number): number {
  let n = 1;
  for (let i = 0; i < pos && i < src.length; i++) if (src.charCodeAt(i) === 10) n++;
  return n;
}

const SIMPLE_ESCAPES: Record<string, string> = {
  "\\": "\\",
  "'": "'",
  '"': '"',
  a: "\x07",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
  "\n": "",
};

/** Decodes a string literal's body as Python's unicode-escape codec does. */
export function decodePythonEscapes(body: string): string {
  let out = "";
  for (let i = 0; i < body.length; i++) {
    const ch = body[i];
    if (ch !== "\\" || i + 1 >= body.length) {
      out += ch;
      continue;
    }
    const next = body[i + 1];
    if (Object.hasOwn(SIMPLE_ESCAPES, next)) {
      out += SIMPLE_ESCAPES[next];
      i++;
      continue;
    }
    if (next >= "0" && next <= "7") {
      let j = i + 1;
      while (j < body.length && j < i + 4 && body[j] >= "0" && body[j] <= "7") j++;
      out += String.fromCodePoint(parseInt(body.slice(i + 1, j), 8));
      i = j - 1;
      continue;
    }
    if (next === "N") {
      const named = /^\{[^}]*\}/.exec(body.slice(i + 2));
      throw new Error(named ? `\\N${named[0]} escapes (characters by Unicode name) are not supported; write the character itself` : "malformed \\N character escape");
    }
    const hexLength = next === "x" ? 2 : next === "u" ? 4 : next === "U" ? 8 : 0;
    if (hexLength > 0) {
      const hex = body.slice(i + 2, i + 2 + hexLength);
      if (hex.length !== hexLength || !/^[0-9a-fA-F]+$/.test(hex))
        throw new Error(`truncated \\${next} escape in a string literal`);
      const cp = parseInt(hex, 16);
      if (cp > 0x10ffff) throw new Error(`\\${next}${hex} is not a Unicode code point`);
      out += String.fromCodePoint(cp);
      i += 1 + hexLength;
      continue;
    }
    // Unknown escapes are kept as written (a Python DeprecationWarning, not an error).
    out += ch;
  }
  return out;
}

/** A string literal the library's lexer reads back as `value`. */
export function stringLiteral(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

// jinja2's float and integer literals (underscores allowed, `1e16` is a float).
const NUMBER_RE = /(?:\d+_)*\d+(?:(?:\.(?:\d+_)*\d+)?e[+-]?(?:\d+_)*\d+|\.(?:\d+_)*\d+)?/iy;

/**
 * A number literal the library reads the same: it knows neither exponents nor underscores,
 * and tells floats from integers by a "." in the text.
 */
export function numberLiteral(text: string): string {
  const plain = text.replace(/_/g, "");
  if (!/[.e]/i.test(plain)) return plain;
  const value = Number(plain);
  const [mantissa, exp] = value.toExponential().split("e");
  const digits = mantissa.replace(".", "");
  const point = Number(exp) + 1; // digits before the decimal point
  let out: string;
  if (point <= 0) out = "0." + "0".repeat(-point) + digits;
  else if (point >= digits.length) out = digits + "0".repeat(point - digits.length) + ".0";
  else out = digits.slice(0, point) + "." + digits.slice(point);
  return out;
}

const STRING_RE = /'([^'\\]*(?:\\.[^'\\]*)*)'|"([^"\\]*(?:\\.[^"\\]*)*)"/y;
const RAW_BEGIN_RE = /\{%([-+]?)\s*raw\s*(-%\}[\s]*|%\})/y;
const ENDRAW_RE = /\{%([-+]?)\s*endraw\s*(\+%\}|-%\}\s*|%\}\n?)/g;

interface LexState {
  out: string;
  lineStarting: boolean;
}

/**
 * Applies jinja2's lexer whitespace control (trim_blocks and lstrip_blocks as transformers
 * sets them) and returns the equivalent source for @huggingface/jinja.
 */
export function toLibrarySource(template: string): string {
  // jinja2 normalizes newlines and drops one trailing newline (keep_trailing_newline=False).
  let src = template.replace(/\r\n|\r/g, "\n");
  if (src.endsWith("\n")) src = src.slice(0, -1);
  const state: LexState = { out: "", lineStarting: true };
  let pos = 0;
  const emitText = (text: string, sign: string, isVariable: boolean) => {
    if (sign === "-") text = text.replace(TRAILING_SPACE, "");
    else if (sign !== "+" && !isVariable) {
      // lstrip_blocks: spaces and tabs between the line start and the tag go.
      const lineStart = text.lastIndexOf("\n") + 1;
      if ((lineStart > 0 || state.lineStarting) && /^[ \t]*$/.test(text.slice(lineStart))) text = text.slice(0, lineStart);
    }
    // Text ending in "{" right before a tag would read as "{{" or "{%" once stripping made
    // them adjacent ("{{ key }}:{\n {%- if" is ":{" then a block): write that brace as an
    // expression instead.
    if (text.endsWith("{")) text = text.slice(0, -1) + '{{ "{" }}';
    state.out += text;
  };

  while (pos < src.length) {
    const next = findTagStart(src, pos);
    if (next < 0) {
      state.out += src.slice(pos);
      break;
    }
    const text = src.slice(pos, next);
    const opener = src.slice(next, next + 2);
    const signChar = src[next + 2];
    const sign = signChar === "-" || signChar === "+" ? signChar : "";

    if (opener === "{%") {
      RAW_BEGIN_RE.lastIndex = next;
      const raw = RAW_BEGIN_RE.exec(src);
      if (raw) {
        emitText(text, raw[1], false);
        pos = rawBlock(src, next, RAW_BEGIN_RE.lastIndex, raw[2].startsWith("-"), state);
        continue;
      }
    }
    emitText(text, sign, opener === "{{");
    const bodyStart = next + 2 + sign.length;
    if (opener === "{#") {
      pos = comment(src, bodyStart, state);
      continue;
    }
    pos = tag(src, bodyStart, opener === "{%" ? "%}" : "}}", state);
  }
  // The library drops one trailing newline itself; keep ours (an empty comment is inert).
  if (state.out.endsWith("\n")) state.out += "{##}";
  return state.out;
}

function findTagStart(src: string, from: number): number {
  for (let i = src.indexOf("{", from); i >= 0; i = src.indexOf("{", i + 1)) {
    const c = src[i + 1];
    if (c === "%" || c === "{" || c === "#") return i;
  }
  return -1;
}

/** A comment: dropped, with its end's whitespace control applied. Returns the position after it. */
function comment(src: string, start: number, state: LexState): number {
  const end = src.indexOf("#}", start);
  if (end < 0) throw new TemplateSyntaxError("a comment ({# ... #}) is not closed", lineOf(src, start));
  const sign = end > start && (src[end - 1] === "-" || src[end - 1] === "+") ? src[end - 1] : "";
  return afterTagEnd(src, end + 2, sign, true, state);
}

/** Where the text after a tag end begins: `-` eats all whitespace, trim_blocks one newline. */
function afterTagEnd(src: string, pos: number, sign: string, trimBlocks: boolean, state: LexState): number {
  if (sign === "-") {
    const m = LEADING_SPACE.exec(src.slice(pos, pos + 4096));
    let n = m ? m[0].length : 0;
    // Whitespace runs longer than the window are rare; finish them without a huge slice.
    if (n === 4096) while (pos + n < src.length && IS_SPACE.test(src[pos + n])) n++;
    state.lineStarting = n > 0 && src[pos + n - 1] === "\n";
    return pos + n;
  }
  if (sign === "" && trimBlocks && src[pos] === "\n") {
    state.lineStarting = true;
    return pos + 1;
  }
  state.lineStarting = false;
  return pos;
}

/**
 * A block or variable tag from `start` (after its opener and sign) to its end, which only
 * counts where brackets are balanced (jinja2's balancing stack). Writes the tag out
 * without modifiers and with its string literals rewritten.
 */
function tag(src: string, start: number, close: "%}" | "}}", state: LexState): number {
  const isBlock = close === "%}";
  // Open brackets: the character and where it is in `body` (a grouping "(" may become a tuple call).
  const stack: Array<{ c: string; at: number }> = [];
  let body = "";
  let i = start;
  while (i < src.length) {
    const c = src[i];
    if (stack.length === 0) {
      if ((c === "-" || c === "+") && src.startsWith(close, i + 1) && (c === "-" || isBlock)) {
        state.out += (isBlock ? "{%" : "{{") + body + close;
        return afterTagEnd(src, i + 1 + close.length, c, isBlock, state);
      }
      if (src.startsWith(close, i)) {
        state.out += (isBlock ? "{%" : "{{") + body + close;
        return afterTagEnd(src, i + close.length, "", isBlock, state);
      }
    }
    if (c === "'" || c === '"') {
      STRING_RE.lastIndex = i;
      const m = STRING_RE.exec(src);
      if (!m) throw new TemplateSyntaxError("a string literal is not closed", lineOf(src, i));
      let value: string;
      try {
        value = decodePythonEscapes(m[1] ?? m[2]);
      } catch (e) {
        throw new TemplateSyntaxError((e as Error).message, lineOf(src, i));
      }
      body += stringLiteral(value);
      i = STRING_RE.lastIndex;
      continue;
    }
    if (c >= "0" && c <= "9" && !/[\w.]/.test(src[i - 1] ?? "")) {
      NUMBER_RE.lastIndex = i;
      const m = NUMBER_RE.exec(src)!;
      body += numberLiteral(m[0]);
      i = NUMBER_RE.lastIndex;
      continue;
    }
    if (c === "(" || c === "[" || c === "{") stack.push({ c, at: body.length });
    else if (c === ")" || c === "]" || c === "}") {
      const open = stack.pop();
      if (open === undefined || "([{"[")]}".indexOf(c)] !== open.c)
        throw new TemplateSyntaxError(`unexpected '${c}'`, lineOf(src, i));
      // `(a,)` is a one-item tuple (and `(a, b,)` a tuple): the library's parser takes
      // neither, but reads a call's trailing comma, so such a tuple becomes a call of the
      // tuple builtin the interpreter installs.
      if (c === ")" && /,\s*$/.test(body) && isGroupingParen(body.slice(0, open.at)))
        body = body.slice(0, open.at) + TUPLE_BUILTIN + body.slice(open.at);
    }
    body += c;
    i++;
  }
  throw new TemplateSyntaxError(`a tag is not closed: expected '${close}'`, lineOf(src, start));
}

/** The name of the builtin that makes one-item tuples (see tag()). */
export const TUPLE_BUILTIN = "__tessera_tuple__";

/** Whether a "(" after `before` groups (or makes a tuple) rather than calls. */
function isGroupingParen(before: string): boolean {
  const m = /([\w)\]'"]+)\s*$/.exec(before);
  if (!m) return true;
  const word = /\w+$/.exec(m[1])?.[0];
  return word !== undefined && m[1] === word && ["in", "not", "and", "or", "if", "else", "is"].includes(word) && /\W|^/.test(before[before.length - m[0].length - 1] ?? "");
}

/** {% raw %}...{% endraw %}: its text, verbatim, as a string expression. */
function rawBlock(src: string, tagStart: number, bodyStart: number, stripAfterBegin: boolean, state: LexState): number {
  let from = bodyStart;
  // (jinja2 applies trim_blocks after {% endraw %} but not after {% raw %}.)
  if (stripAfterBegin) while (from < src.length && IS_SPACE.test(src[from])) from++;
  ENDRAW_RE.lastIndex = from;
  const m = ENDRAW_RE.exec(src);
  if (!m) throw new TemplateSyntaxError("{% raw %} is not closed by {% endraw %}", lineOf(src, tagStart));
  let body = src.slice(from, m.index);
  if (m[1] === "-") body = body.replace(TRAILING_SPACE, "");
  else if (m[1] !== "+") {
    const lineStart = body.lastIndexOf("\n") + 1;
    if (lineStart > 0 && /^[ \t]*$/.test(body.slice(lineStart))) body = body.slice(0, lineStart);
  }
  if (body.length > 0) state.out += `{{ ${stringLiteral(body)} }}`;
  state.lineStarting = m[0].endsWith("\n");
  return m.index + m[0].length;
}

/** For error messages: a TesseraError for a template the lexer pass refused. */
export function syntaxErrorToTessera(e: TemplateSyntaxError): TesseraError {
  return new TesseraError("ERR_CHAT_TEMPLATE", `chat template syntax error on line ${e.line}: ${e.message}`, { cause: e });
}
