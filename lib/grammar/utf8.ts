/**
 * Code point ranges as UTF-8 byte-range sequences: [U+0080, U+07FF] is [C2-DF][80-BF], and so
 * on. Each sequence is a list of inclusive byte ranges, one per byte of the encoding; a range
 * of code points splits where its encodings stop sharing a shape (length, then each
 * continuation byte's full 80-BF span), as regex engines that match UTF-8 bytes do it.
 */

export type ByteRange = [number, number];

const LENGTH_LIMITS: Array<[number, number]> = [
  [0, 0x7f],
  [0x80, 0x7ff],
  [0x800, 0xffff],
  [0x10000, 0x10ffff],
];

function encode(cp: number): number[] {
  if (cp < 0x80) return [cp];
  if (cp < 0x800) return [0xc0 | (cp >> 6), 0x80 | (cp & 0x3f)];
  if (cp < 0x10000) return [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
  return [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
}

/** Both ends encode to the same length. */
function split(lo: number, hi: number, n: number, out: ByteRange[][]): void {
  for (let i = 1; i < n; i++) {
    const m = (1 << (6 * i)) - 1;
    if ((lo & ~m) !== (hi & ~m)) {
      if ((lo & m) !== 0) {
        split(lo, lo | m, n, out);
        split((lo | m) + 1, hi, n, out);
        return;
      }
      if ((hi & m) !== m) {
        split(lo, (hi & ~m) - 1, n, out);
        split(hi & ~m, hi, n, out);
        return;
      }
    }
  }
  const a = encode(lo);
  const b = encode(hi);
  out.push(a.map((x, i) => [x, b[i]]));
}

/** The byte sequences of the code points in [lo, hi] (surrogates must already be excluded). */
export function utf8Sequences(lo: number, hi: number, out: ByteRange[][] = []): ByteRange[][] {
  for (let n = 0; n < LENGTH_LIMITS.length; n++) {
    const a = Math.max(lo, LENGTH_LIMITS[n][0]);
    const b = Math.min(hi, LENGTH_LIMITS[n][1]);
    if (a <= b) split(a, b, n + 1, out);
  }
  return out;
}

const encoder = new TextEncoder();
export function utf8Bytes(text: string): Uint8Array {
  return encoder.encode(text);
}
