/** Runs Tessera and llama.cpp on the same GGUF and compares per-position logits. */
import { loadModel } from "../../lib/index.js";
import { Rng } from "../../lib/sampling/rng.js";
import { LlamaCppPeer } from "../../dev/llama-cpp-peer.js";
import { relativeError } from "../../dev/kernels/harness.js";
import { argmax } from "../../lib/sampling/sampler.js";
import { rms } from "./logits.js";

const THREADS = 2;
/**
 * A different top-1 is a near-tie when llama.cpp's own margin between the two picks, as a
 * fraction of its logits' rms, is within what the relative-error budget lets the two engines
 * disagree by: a budget b allows per-logit deviations of ~3.5 b rms at the extremes of 512
 * logits if the error spreads evenly, so two candidates can trade places up to a margin of
 * twice that (7 b). With quantized weights it does not spread evenly: one int8 activation
 * quantum that flips moves the logits through one block of each weight row, and a CI run saw
 * Q6_K trade two candidates 0.305 rms apart at a relative error of 1.9e-2 (under its 4e-2
 * budget; 7 b = 0.28). 12 b leaves room for that, and is still far below the margins a wrong
 * kernel gives (whole-rms differences, with the relative error far over budget).
 */
const NEAR_TIE_PER_BUDGET = 12;

export interface PositionComparison {
  rel: number;
  batchRel: number;
  top1: boolean;
  /** Top-1 differs, but llama.cpp's own margin between the two picks is a near-tie. */
  nearTie: boolean;
}

export interface Comparison {
  maxRel: number;
  maxBatchRel: number;
  top1: number;
  nearTies: number;
  positions: PositionComparison[];
}

export interface CompareOptions {
  /**
   * Both engines store keys and values in this type. llama.cpp runs a quantized cache only
   * with flash attention (its standard path refuses a quantized V), so those compare against
   * its flash-attention path; f16 against its standard one.
   */
  kvCacheType?: "f16" | "q8_0" | "q4_0";
}

/** `budget`: the relative-error budget the caller holds the positions to (sets the near-tie margin). */
export async function compareWithLlamaCpp(file: string, tokens: number[], nVocab: number, budget: number, options: CompareOptions = {}): Promise<Comparison> {
  const kvCacheType = options.kvCacheType ?? "f16";
  const peer = await LlamaCppPeer.open(file, { threads: THREADS, contextSize: 128, flashAttention: kvCacheType !== "f16", kvCacheType });
  const ref = await peer.logitsPerPosition(tokens, nVocab);
  await peer.dispose();
  const model = await loadModel(file, { backend: "cpu", threads: THREADS, contextSize: 128, kvCacheType });
  const session = model.createSession();
  const ours: Float32Array[] = [];
  for (const t of tokens) ours.push(Float32Array.from(await session.evaluate([t])));
  // The batched prefill path must agree with token-by-token decoding.
  session.reset();
  const all = await session.evaluateAll(tokens);
  model.dispose();
  let maxRel = 0;
  let maxBatchRel = 0;
  let top1 = 0;
  let nearTies = 0;
  const positions: PositionComparison[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const rel = relativeError(ours[i], ref[i]);
    const batchRel = relativeError(all.subarray(i * nVocab, (i + 1) * nVocab), ref[i]);
    maxRel = Math.max(maxRel, rel);
    maxBatchRel = Math.max(maxBatchRel, batchRel);
    const mine = argmax(ours[i]);
    const theirs = argmax(ref[i]);
    let nearTie = false;
    // Our pick agrees when llama.cpp scores it as high as its own (an exact tie there).
    const agrees = ref[i][mine] === ref[i][theirs];
    if (agrees) top1++;
    // A different pick counts as a near-tie only if llama.cpp's own logits put the two
    // candidates within the budget's reach of each other.
    else {
      const margin = (ref[i][theirs] - ref[i][mine]) / rms(ref[i]);
      console.log(`top-1 differs at position ${i}: llama.cpp margin ${margin.toFixed(4)} of its logit rms`);
      nearTie = margin <= NEAR_TIE_PER_BUDGET * budget;
      if (nearTie) nearTies++;
    }
    positions.push({ rel, batchRel, top1: agrees, nearTie });
  }
  return { maxRel, maxBatchRel, top1, nearTies, positions };
}

export function randomTokens(n: number, nVocab: number, seed: number): number[] {
  const rng = new Rng(seed);
  return [1, ...Array.from({ length: n - 1 }, () => 3 + Math.floor(rng.next() * (nVocab - 3)))];
}

