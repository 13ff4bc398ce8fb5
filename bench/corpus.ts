/**
 * A deterministic mixed text for tokenizer benchmarks and round-trip tests: English prose,
 * source code, many scripts, emoji sequences and, on request, rare Unicode (astral planes,
 * private use, noncharacters, unassigned and control code points) and lone surrogates.
 * Everything comes from a seeded PRNG, so every run sees the same text.
 */

/** mulberry32: small, fast, good enough for choosing text. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ENGLISH_WORDS = (
  "the of and to in is was that for it with as his on be at by had are but from or have an they which one you were her all she there would their we him been has " +
  "when who will more no if out so said what up its about into than them can only other new some could time these two may then do first any my now such like our " +
  "over man me even most made after also did many before must through back years where much your way well down should because each just those people how too little " +
  "state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off " +
  "come since against go came right used take three tokenizer merges vocabulary inference latency throughput gradient embedding attention transformer benchmark"
).split(" ");
const CONTRACTIONS = ["don't", "it's", "they'll", "we're", "I'm", "you've", "she'd", "can't", "IT'S", "We'Re"];
const CODE = [
  "function encode(text: string): number[] {\n  const out: number[] = [];\n  for (const ch of text) out.push(ch.codePointAt(0)!);\n  return out;\n}\n",
  "def merge(pairs, ranks):\n    best = min(pairs, key=lambda p: ranks.get(p, float('inf')))\n    return best if best in ranks else None\n",
  "#include <stdio.h>\nint main(int argc, char **argv) {\n\tfor (int i = 0; i < argc; ++i) printf(\"%d: %s\\n\", i, argv[i]);\n\treturn 0;\n}\n",
  "SELECT id, name FROM users WHERE created_at >= '2024-01-01' AND score > 0.75 ORDER BY score DESC LIMIT 10;\r\n",
  "const re = /^(?:[a-z0-9._%+-]+)@(?:[a-z0-9-]+\\.)+[a-z]{2,}$/i;  // e-mail\n",
  "if (x != null && y <= 3.14159) { z = x ?? y; } else { z = [1, 2, 3].map((v) => v ** 2); }\n",
  "    }\n  }\n}\n\n",
  "<div class=\"token\" data-id=\"42\">&lt;s&gt; &amp; &#x1F999;</div>\n",
  "{\"model\": \"llama\", \"n_ctx\": 4096, \"rope_theta\": 500000.0, \"eos\": \"<|endoftext|>\"}\n",
];
const MULTILINGUAL = [
  "Äpfel und Birnen schmecken süß; die Straße ist naß.",
  "Le cœur a ses raisons que la raison ne connaît point — à bientôt, garçon!",
  "El niño pidió una piña y un café con leche, ¿verdad?",
  "Съешь же ещё этих мягких французских булок, да выпей чаю.",
  "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
  "نص حكيم له سر قاطع وذو شأن عظيم مكتوب على ثوب أخضر",
  "דג סקרן שט בים מאוכזב ולפתע מצא חברה",
  "ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले",
  "我能吞下玻璃而不伤身体。自然语言处理很有趣！",
  "いろはにほへと ちりぬるを わかよたれそ つねならむ、カタカナも。",
  "다람쥐 헌 쳇바퀴에 타고파. 한국어 토큰화 테스트입니다.",
  "เป็นมนุษย์สุดประเสริฐเลิศคุณค่า กว่าบรรดาฝูงสัตว์เดรัจฉาน",
  "កាន់តែពិសេសអាចខលចេញ",
  "Tiếng Việt có dấu: Trăm năm trong cõi người ta.",
  "İstanbul'da ılık bir akşam; ĞÜŞİÖÇ ğüşıöç.",
  "Ελληνικά και English mixed 混合 text ١٢٣ ٤٥٦ ൧൨൩",
];
const EMOJI = ["🦙", "👩‍👩‍👧‍👦", "🇺🇳", "👍🏽", "❤️", "🚀", "😶‍🌫️", "🏳️‍🌈", "✅", "🧑🏿‍💻", "1️⃣", "🤖"];
const WHITESPACE = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\u00a0", "\u2003", "\u3000", "\u2028", "\u200b", "\u202f"];

/** Code point ranges for rare characters: [first, last]. */
const RARE_RANGES: [number, number][] = [
  [0x00, 0x1f], // C0 controls, NUL included
  [0x7f, 0x9f], // DEL, C1 controls
  [0x0300, 0x036f], // combining marks (may stand alone)
  [0x0378, 0x0379], // unassigned
  [0x2581, 0x2581], // the SentencePiece space symbol itself
  [0xe000, 0xf8ff], // private use
  [0xfdd0, 0xfdef], // noncharacters
  [0xfeff, 0xfeff], // byte order mark
  [0xfffe, 0xffff], // noncharacters
  [0x10000, 0x1007f], // Linear B
  [0x1d400, 0x1d7ff], // mathematical alphanumerics
  [0x1f000, 0x1faff], // symbols and emoji blocks
  [0x20000, 0x2a6df], // CJK extension B
  [0x30000, 0x3134f], // CJK extension G
  [0xe0000, 0xe007f], // tags
  [0xf0000, 0xffffd], // supplementary private use A
  [0x100000, 0x10fffd], // supplementary private use B
];

export interface CorpusOptions {
  seed?: number;
  /** Add rare code points. Default false. */
  rare?: boolean;
  /** Add lone (unpaired) surrogates, which are not well-formed UTF-16. Default false. */
  loneSurrogates?: boolean;
}

/** At least `minChars` UTF-16 units of mixed text. */
export function generateCorpus(minChars: number, options: CorpusOptions = {}): string {
  const rnd = seededRandom(options.seed ?? 1);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const parts: string[] = [];
  let length = 0;
  const add = (s: string): void => {
    parts.push(s);
    length += s.length;
  };
  while (length < minChars) {
    const r = rnd();
    if (r < 0.55) add(englishSentence(rnd, pick));
    else if (r < 0.75) add(pick(CODE));
    else if (r < 0.9) add(pick(MULTILINGUAL));
    else if (r < 0.95) add(pick(EMOJI) + pick(EMOJI));
    else if (options.rare) add(rareRun(rnd, pick));
    else add(englishSentence(rnd, pick));
    if (options.loneSurrogates && rnd() < 0.01) add(rnd() < 0.5 ? "\ud83d" : "\udc4d");
    add(pick(WHITESPACE));
  }
  return parts.join("");
}

/**
 * At least `minChars` UTF-16 units of English prose: paragraphs of sentences (words,
 * contractions, numbers, quotes, punctuation) separated by blank lines. The kind of text
 * SentencePiece vocabularies meet most, with no other whitespace than spaces and newlines.
 */
export function generateProse(minChars: number, options: { seed?: number } = {}): string {
  const rnd = seededRandom(options.seed ?? 1);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const parts: string[] = [];
  let length = 0;
  while (length < minChars) {
    const sentences = 2 + Math.floor(rnd() * 7);
    let paragraph = englishSentence(rnd, pick);
    for (let i = 1; i < sentences; i++) paragraph += " " + englishSentence(rnd, pick);
    paragraph += "\n\n";
    parts.push(paragraph);
    length += paragraph.length;
  }
  return parts.join("");
}

function englishSentence(rnd: () => number, pick: <T>(xs: readonly T[]) => T): string {
  const n = 4 + Math.floor(rnd() * 14);
  const words: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = rnd();
    if (r < 0.06) words.push(pick(CONTRACTIONS));
    else if (r < 0.1) words.push(String(Math.floor(rnd() * 10 ** (1 + Math.floor(rnd() * 7)))));
    else if (r < 0.12) words.push(`${(rnd() * 100).toFixed(2)}%`);
    else words.push(pick(ENGLISH_WORDS));
  }
  words[0] = words[0][0].toUpperCase() + words[0].slice(1);
  let s = words.join(" ");
  if (rnd() < 0.2) s = `"${s}"`;
  return s + pick([".", ".", ".", "!", "?", ";", ":", "...", ","]);
}

function rareRun(rnd: () => number, pick: <T>(xs: readonly T[]) => T): string {
  let s = "";
  const n = 1 + Math.floor(rnd() * 6);
  for (let i = 0; i < n; i++) {
    const [lo, hi] = pick(RARE_RANGES);
    s += String.fromCodePoint(lo + Math.floor(rnd() * (hi - lo + 1)));
  }
  return s;
}
