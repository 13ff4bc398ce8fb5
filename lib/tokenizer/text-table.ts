/**
 * Token text -> id lookup that works on ranges of a larger string, so merge lists and the
 * SentencePiece merger can look up "left", "right" and "left+right" without building any
 * substring. Open addressing over an Int32Array of ids, keyed by an FNV-1a hash of the UTF-16
 * code units; a hit is confirmed by comparing the characters.
 */
export class TokenTextTable {
  private readonly slots: Int32Array;
  private readonly mask: number;

  constructor(private readonly texts: readonly string[]) {
    let cap = 16;
    while (cap < texts.length * 2) cap *= 2;
    this.mask = cap - 1;
    this.slots = new Int32Array(cap).fill(-1);
    for (let id = 0; id < texts.length; id++) {
      const t = texts[id];
      let slot = finish(fnv(t, 0, t.length, FNV_BASIS)) & this.mask;
      for (;;) {
        const other = this.slots[slot];
        // A later duplicate replaces the earlier one, as in llama.cpp's text-to-id map.
        if (other === -1 || texts[other] === t) {
          this.slots[slot] = id;
          break;
        }
        slot = (slot + 1) & this.mask;
      }
    }
  }

  /** Id of the token whose text is `s`, or -1. */
  get(s: string): number {
    return this.getRange(s, 0, s.length);
  }

  /** Id of the token whose text is s[start, end), or -1. */
  getRange(s: string, start: number, end: number): number {
    const len = end - start;
    for (let slot = finish(fnv(s, start, end, FNV_BASIS)) & this.mask; ; slot = (slot + 1) & this.mask) {
      const id = this.slots[slot];
      if (id === -1) return -1;
      const t = this.texts[id];
      if (t.length !== len) continue;
      let i = 0;
      while (i < len && t.charCodeAt(i) === s.charCodeAt(start + i)) i++;
      if (i === len) return id;
    }
  }

  /** Id of the token whose text is a[aStart, aEnd) followed by b[bStart, bEnd), or -1. */
  getJoined(a: string, aStart: number, aEnd: number, b: string, bStart: number, bEnd: number): number {
    const aLen = aEnd - aStart;
    const len = aLen + bEnd - bStart;
    const h = finish(fnv(b, bStart, bEnd, fnv(a, aStart, aEnd, FNV_BASIS)));
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const id = this.slots[slot];
      if (id === -1) return -1;
      const t = this.texts[id];
      if (t.length !== len) continue;
      let i = 0;
      while (i < aLen && t.charCodeAt(i) === a.charCodeAt(aStart + i)) i++;
      if (i < aLen) continue;
      while (i < len && t.charCodeAt(i) === b.charCodeAt(bStart + i - aLen)) i++;
      if (i === len) return id;
    }
  }
}

const FNV_BASIS = 0x811c9dc5;

/** FNV-1a over UTF-16 code units, continuing from `h`. */
function fnv(s: string, start: number, end: number, h: number): number {
  for (let i = start; i < end; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}

function finish(h: number): number {
  return (h ^ (h >>> 15)) >>> 0;
}
