/**
 * GPT-2's reversible byte ↔ printable-character mapping: byte-level BPE vocabularies spell
 * every byte as one visible code point (space is "Ġ", newline "Ċ").
 */
const byteToChar: string[] = new Array(256);
const charToByte = new Map<string, number>();
{
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const ch = String.fromCodePoint(printable ? b : 256 + extra++);
    byteToChar[b] = ch;
    charToByte.set(ch, b);
  }
}

const encoder = new TextEncoder();

/** The byte-level spelling of a string's UTF-8 bytes. */
export function byteLevelEncode(text: string): string {
  const bytes = encoder.encode(text);
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += byteToChar[bytes[i]];
  return out;
}

/** Bytes of a byte-level spelled piece; characters outside the mapping keep their UTF-8. */
export function byteLevelDecode(piece: string): Uint8Array {
  const out: number[] = [];
  for (const ch of piece) {
    const b = charToByte.get(ch);
    if (b !== undefined) out.push(b);
    else out.push(...encoder.encode(ch));
  }
  return Uint8Array.from(out);
}

export function byteChar(b: number): string {
  return byteToChar[b];
}
