/**
 * encodeAsync: the tokens of encode(), worked out in slices with the event loop running in
 * between, and abortable. It runs encode's own steps, so the checks are that pausing changes
 * nothing (every vocabulary; several encodes interleaved on one tokenizer, since the paused
 * steps must not share buffers with others), that timers do fire during a 20 MB encode and
 * during one long unspaced word, and that an AbortSignal stops it with ERR_ABORTED.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { generateCorpus, generateProse } from "../../bench/corpus.js";
import { isTesseraError, type TesseraErrorCode } from "../../lib/errors.js";
import type { Tokenizer } from "../../lib/tokenizer/index.js";
import { STEP_UNITS } from "../../lib/tokenizer/steps.js";
import type { TokenizerCore } from "../../lib/tokenizer/tokenizer.js";
import { sharedDir } from "../helpers/paths.js";
import { allVocabs, ggufVocab, hasTokenizerData, hfVocab, vocabDir } from "./vocabs.js";

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  return undefined;
}

async function expectRejects(p: Promise<unknown>, code: TesseraErrorCode): Promise<void> {
  const e = await rejection(p);
  expect(isTesseraError(e, code), `expected ${code}, got ${String(e)}`).toBe(true);
}

/** "" when the token lists are equal, else where they part (cheaper than toEqual on millions). */
function difference(got: number[], want: number[]): string {
  if (got.length === want.length && got.every((t, i) => t === want[i])) return "";
  let at = 0;
  while (got[at] === want[at]) at++;
  return `lengths ${got.length} / ${want.length}, first difference at token ${at}`;
}

/** How many steps encode() takes on `text`: the points where encodeAsync may pause. */
function countSteps(tok: Tokenizer, text: string): number {
  const run = (tok as unknown as { run: TokenizerCore["run"] })["run"].call(tok, text, { addSpecial: false });
  let steps = 0;
  while (!run.next().done) steps++;
  return steps;
}

/** Runs `f` while counting the ticks of a 1 ms interval. */
async function countingTicks<T>(f: () => Promise<T>): Promise<{ value: T; ticks: number }> {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  try {
    const value = await f();
    return { value, ticks };
  } finally {
    clearInterval(timer);
  }
}

const SPECIAL_LOOKING = " <s> </s> <|endoftext|> <|im_start|> <|eot_id|> [CLS] <unk> [INST] ";
// Large enough that encodeAsync pauses (it encodes texts up to 32K code units at once).
const corpus = generateCorpus(150_000, { seed: 11, rare: true, loneSurrogates: true }) + SPECIAL_LOOKING + generateProse(50_000, { seed: 12 });

describe.runIf(hasTokenizerData)("encodeAsync", () => {
  const spm = ggufVocab(path.join(sharedDir, "models/llama-2-tiny-random.gguf"));

  for (const v of allVocabs()) {
    it(`${v.name}: the tokens of encode(), also with other encodes running between its slices`, async () => {
      const tok = v.load();
      const texts = [corpus, corpus.slice(1000) + corpus.slice(0, 1000), corpus.toUpperCase()];
      for (const parseSpecial of [false, true]) {
        const options = { parseSpecial, addSpecial: !parseSpecial };
        const want = texts.map((t) => tok.encode(t, options));
        // Two async encodes at once, and synchronous ones whenever the event loop gets a turn:
        // each must get exactly its own tokens.
        let syncRuns = 0;
        let syncBad = 0;
        const timer = setInterval(() => {
          if (syncRuns === 3) return;
          syncRuns++;
          if (JSON.stringify(tok.encode(texts[2], options)) !== JSON.stringify(want[2])) syncBad++;
        }, 1);
        const got = await Promise.all([tok.encodeAsync(texts[0], options), tok.encodeAsync(texts[1], options)]);
        clearInterval(timer);
        expect(got[0]).toEqual(want[0]);
        expect(got[1]).toEqual(want[1]);
        expect(syncBad).toBe(0);
        expect(await tok.encodeAsync("Hello world", options)).toEqual(tok.encode("Hello world", options));
        expect(await tok.encodeAsync("", options)).toEqual(tok.encode("", options));
        if (parseSpecial) expect(syncRuns).toBeGreaterThan(0);
      }
    });
  }

  it("SentencePiece, 20 MB of prose: timers fire while it runs, and the tokens are encode()'s", async () => {
    const tok = spm();
    const text = generateProse(20e6, { seed: 13 });
    const { value, ticks } = await countingTicks(() => tok.encodeAsync(text));
    expect(ticks).toBeGreaterThan(0);
    expect(difference(value, tok.encode(text))).toBe("");
  });

  it("long words with no place to cut are merged in steps too", async () => {
    const cases: [string, Tokenizer, string][] = [
      ["SentencePiece, one letter repeated", spm(), "a".repeat(1 << 20)],
      ["SentencePiece, CJK without spaces", spm(), "我能吞下玻璃而不伤身体".repeat(1 << 15)],
      ["byte-level BPE, one 1M-letter word", ggufVocab(path.join(vocabDir, "ggml-vocab-gpt-2.gguf"))(), "ab".repeat(1 << 19)],
      ["tokenizer.json Metaspace, all one word", hfVocab("mistral-v0.3")(), "a".repeat(1 << 18) + generateProse(1 << 18, { seed: 14 })],
      ["WordPiece, one 512K-letter word", ggufVocab(path.join(vocabDir, "ggml-vocab-bert-bge.gguf"))(), "ab".repeat(1 << 18)],
    ];
    for (const [name, tok, text] of cases) {
      // A step is about STEP_UNITS code units or merges: a long word is many steps, not one.
      expect(countSteps(tok, text), name).toBeGreaterThan(text.length / STEP_UNITS / 2);
      const got = await tok.encodeAsync(text, { addSpecial: false });
      expect(difference(got, tok.encode(text, { addSpecial: false })), name).toBe("");
    }
  });

  it("an AbortSignal stops it with ERR_ABORTED; the tokenizer works on afterwards", async () => {
    const tok = spm();
    const text = generateProse(4e6, { seed: 15 });
    await expectRejects(tok.encodeAsync("short text", { signal: AbortSignal.abort() }), "ERR_ABORTED");
    await expectRejects(tok.encodeAsync(text, { signal: AbortSignal.abort() }), "ERR_ABORTED");

    const controller = new AbortController();
    const reason = new Error("user cancelled");
    setImmediate(() => controller.abort(reason));
    const e = await rejection(tok.encodeAsync(text, { signal: controller.signal }));
    expect(isTesseraError(e, "ERR_ABORTED"), String(e)).toBe(true);
    expect((e as Error).cause).toBe(reason);

    // A signal that is never aborted changes nothing.
    expect(await tok.encodeAsync(text, { signal: new AbortController().signal })).toEqual(tok.encode(text));
  });

  it("rejects bad arguments with ERR_INVALID_ARGUMENT", async () => {
    const tok = spm();
    const bad = tok.encodeAsync as (...args: unknown[]) => Promise<number[]>;
    await expectRejects(bad.call(tok, 123), "ERR_INVALID_ARGUMENT");
    await expectRejects(bad.call(tok, null), "ERR_INVALID_ARGUMENT");
    await expectRejects(bad.call(tok, "x", "not options"), "ERR_INVALID_ARGUMENT");
    await expectRejects(bad.call(tok, "x", { addSpecial: "yes" }), "ERR_INVALID_ARGUMENT");
    await expectRejects(bad.call(tok, "x", { signal: "abort" }), "ERR_INVALID_ARGUMENT");
    await expectRejects(bad.call(tok, "x", { signal: {} }), "ERR_INVALID_ARGUMENT");
  });
});
