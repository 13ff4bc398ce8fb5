/**
 * GPT-2's byte-level alphabet: every byte value is spelled as one printable Unicode
 * character (printable Latin-1 bytes as themselves, the rest as U+0100 onwards), so a
 * byte-level BPE vocabulary can store arbitrary bytes as text.
 */

/** Spelling of each byte. */
export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();
/** Byte of each spelling character, by code point; -1 where a character spells no byte. */
const CHAR_TO_BYTE = buildCharToByte();
const utf8 = new TextEncoder();

function isSelfSpelled(b: number): boolean {
  return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

function buildByteToChar(): string[] {
  const chars = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) chars[b] = String.fromCharCode(isSelfSpelled(b) ? b : 0x100 + extra++);
  return chars;
}

function buildCharToByte(): Int16Array {
  const map = new Int16Array(0x200).fill(-1);
  for (let b = 0; b < 256; b++) map[BYTE_TO_CHAR[b].charCodeAt(0)] = b;
  return map;
}

/**
 * The bytes a byte-level token text stands for. A character outside the alphabet (only in
 * damaged or hand-edited vocabularies) stands for its own UTF-8 bytes.
 */
export function byteLevelDecode(text: string): Uint8Array {
  const out: number[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const b = cp < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[cp] : -1;
    if (b >= 0) out.push(b);
    else for (const x of utf8.encode(ch)) out.push(x);
  }
  return Uint8Array.from(out);
}
