/**
 * Constrained decoding's cost per token, for a nested object schema on the 128k Llama 3
 * vocabulary, beside node-llama-cpp's grammar for the same schema.
 *
 * Tessera, directly: generations of up to 300 tokens driven by synthetic LLM-like logits (as
 * bench/sampling.ts draws them) through the constraint and the sampler with default options.
 * Per token it times the constraint's work (allowed() + accept(): the mask, cached or built,
 * and advancing the parse), the masked draw, and the unmasked draw of the same logits. The
 * first generations compute the context masks (reported as the cold start); the medians
 * come from the generations after them.
 *
 * Both engines, end to end: on one tiny random-weight model with the Llama 3 vocabulary
 * (1 layer, width 64, Q8_0: a step is mostly the 128k-row LM head and the sampler), sampled
 * decoding of up to 100 tokens with the schema and without it, same options, alternating;
 * the grammar's cost per token is the median step with it minus the median step without.
 * node-llama-cpp applies llama.cpp's grammar sampler (which checks the sampled token and,
 * when the grammar rejects it, filters the whole vocabulary and samples again).
 *
 * The schema keeps to what node-llama-cpp's converter supports (it makes every property
 * required and has no number bounds), so both engines constrain to the same language.
 */
import fs from "node:fs";
import path from "node:path";
import { tokenAutomaton, grammarSource } from "../lib/grammar/constraint.js";
import { vocabIndex } from "../lib/grammar/token-masks.js";
import { loadModel } from "../lib/model/model.js";
import { Sampler } from "../lib/sampling/sampler.js";
import { tokenizerFromHuggingFace } from "../lib/tokenizer/index.js";
import { LlamaCppPeer } from "../dev/llama-cpp-peer.js";
import { writeSyntheticModel } from "../dev/synthetic-model.js";
import { repoRoot, sharedDir } from "./paths.js";
import { median } from "./stats.js";

export const BENCH_SCHEMA = {
  type: "object",
  properties: {
    id: { type: "integer" },
    name: { type: "string", minLength: 1, maxLength: 40 },
    email: { type: "string" },
    active: { type: "boolean" },
    role: { enum: ["admin", "user", "guest"] },
    address: {
      type: "object",
      properties: {
        street: { type: "string" },
        city: { type: "string" },
        zip: { type: "string", minLength: 5, maxLength: 10 },
        geo: { type: "object", properties: { lat: { type: "number" }, lon: { type: "number" } }, required: ["lat", "lon"] },
      },
      required: ["street", "city", "zip", "geo"],
    },
    tags: { type: "array", items: { type: "string", maxLength: 20 }, maxItems: 5 },
  },
  required: ["id", "name", "email", "active", "role", "address", "tags"],
};

export interface GrammarBenchResult {
  vocabulary: string;
  vocabSize: number;
  /** Sorting the vocabulary into the mask walker's order (once per tokenizer). */
  vocabIndexMs: number;
  /** Parsing and compiling the schema. */
  compileMs: number;
  /** The first generation's constraint time (context masks computed as it goes), and its tokens. */
  coldMs: number;
  coldTokens: number;
  contexts: number;
  contextMs: number;
  tokens: number;
  /** Medians per token, microseconds. */
  maskUs: number;
  maskMeanUs: number;
  maskP90Us: number;
  maskedSampleUs: number;
  plainSampleUs: number;
  /** allowed + masked draw + accept, against the unmasked draw of the same logits. */
  stepUs: number;
  e2e: {
    model: string;
    tokens: number;
    tessera: { plainUs: number; grammarUs: number; overheadUs: number };
    llamaCpp: { plainUs: number; grammarUs: number; overheadUs: number };
  } | null;
}

function llmLikeLogits(vocab: number, next: () => number): Float32Array {
  const logits = new Float32Array(vocab);
  for (let i = 0; i < vocab; i++) {
    const u = 1 - next();
    logits[i] = 2.5 * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
  }
  for (let j = 0; j < 40; j++) logits[Math.floor(next() * vocab)] = 8 + 6 * next();
  return logits;
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))];

export async function runGrammarBench(opts: { quick: boolean; threads: number; onStep: (l: string) => void }): Promise<GrammarBenchResult> {
  const dir = path.join(sharedDir, "tokenizers/llama3");
  if (!fs.existsSync(dir)) throw new Error(`${dir} is missing; the grammar benchmark needs ../shared/tokenizers/llama3`);
  opts.onStep("grammar: loading the Llama 3 vocabulary");
  const tokenizer = tokenizerFromHuggingFace(dir, { preTokenizer: "llama-bpe" });
  let t0 = performance.now();
  vocabIndex(tokenizer);
  const vocabIndexMs = performance.now() - t0;
  t0 = performance.now();
  const ta = tokenAutomaton(tokenizer, grammarSource({ jsonSchema: BENCH_SCHEMA })!);
  const compileMs = performance.now() - t0;

  let seed = 12345;
  const next = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const V = tokenizer.vocabSize;
  const pool = Array.from({ length: 16 }, () => llmLikeLogits(V, next));
  const scratch = new Float32Array(V);
  const plainScratch = new Float32Array(V);
  const maxTokens = 300;
  const warm = opts.quick ? 1 : 3;
  const measured = opts.quick ? 3 : 12;
  const mask: number[] = [];
  const masked: number[] = [];
  const plain: number[] = [];
  const step: number[] = [];
  let coldMs = 0;
  let coldTokens = 0;
  for (let run = 0; run < warm + measured; run++) {
    opts.onStep(`grammar: Tessera generation ${run + 1}/${warm + measured}`);
    const matcher = ta.matcher();
    const sampler = new Sampler({ seed: run });
    const plainSampler = new Sampler({ seed: run });
    for (let i = 0; i < maxTokens; i++) {
      const logits = pool[(i + run) % pool.length];
      scratch.set(logits);
      plainScratch.set(logits);
      const a = performance.now();
      const m = matcher.allowed(maxTokens - i);
      const b = performance.now();
      const id = sampler.sample(scratch, [], m);
      const c = performance.now();
      const eos = tokenizer.isEndOfGeneration(id);
      if (!eos) matcher.accept(id);
      const d = performance.now();
      plainSampler.sample(plainScratch, []);
      const e = performance.now();
      if (run < warm) {
        if (run === 0) {
          coldMs += b - a + (d - c);
          coldTokens++;
        }
      } else {
        mask.push((b - a + (d - c)) * 1000);
        masked.push((c - b) * 1000);
        step.push((d - a) * 1000);
        plain.push((e - d) * 1000);
      }
      if (eos || matcher.isFinished) break;
    }
  }

  let e2e: GrammarBenchResult["e2e"] = null;
  const file = path.join(repoRoot, ".bench-models", "grammar-tiny-llama3-Q8_0.gguf");
  if (!fs.existsSync(file)) {
    opts.onStep("grammar: writing the tiny Llama 3 vocabulary model");
    writeSyntheticModel(`${file}.partial`, { architecture: "llama", nLayer: 1, nEmbd: 64, nHead: 2, nHeadKv: 1, nFf: 128, contextLength: 2048 }, { weights: "Q8_0", vocab: "llama3", seed: 5 });
    fs.renameSync(`${file}.partial`, file);
  }
  const n = opts.quick ? 40 : 100;
  const reps = opts.quick ? 1 : 3;
  const sampling = { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05 };
  const model = await loadModel(file, { backend: "cpu", threads: 1, contextSize: 512 });
  const peer = await LlamaCppPeer.open(file, { threads: 1, contextSize: 512 });
  try {
    const prompt = model.tokenizer.encode("Output JSON:");
    const steps = { tp: [] as number[], tg: [] as number[], lp: [] as number[], lg: [] as number[] };
    const tesseraSteps = async (grammar: boolean, s: number) => {
      const out: number[] = [];
      let t = performance.now();
      let first = true;
      for await (const chunk of model.generate(prompt, { ...sampling, seed: s, maxTokens: n, ...(grammar ? { jsonSchema: BENCH_SCHEMA } : {}) })) {
        const now = performance.now();
        if (!first && chunk.tokens.length > 0) for (let k = 0; k < chunk.tokens.length; k++) out.push((now - t) / chunk.tokens.length);
        first = false;
        t = now;
      }
      return out;
    };
    // Warm both (and Tessera's masks for this schema: the cold start is reported above).
    await tesseraSteps(true, 999);
    await peer.sampledSteps(prompt, 5, { ...sampling, seed: 999, jsonSchema: BENCH_SCHEMA });
    for (let r = 0; r < reps; r++) {
      opts.onStep(`grammar: end to end, round ${r + 1}/${reps}`);
      steps.tp.push(...(await tesseraSteps(false, r)));
      steps.tg.push(...(await tesseraSteps(true, r)));
      steps.lp.push(...(await peer.sampledSteps(prompt, n, { ...sampling, seed: r })).stepMs);
      steps.lg.push(...(await peer.sampledSteps(prompt, n, { ...sampling, seed: r, jsonSchema: BENCH_SCHEMA })).stepMs);
    }
    const us = (xs: number[]) => median(xs) * 1000;
    e2e = {
      model: "tiny random-weight llama (1 layer, width 64, Q8_0, Llama 3 vocabulary)",
      tokens: steps.tg.length,
      tessera: { plainUs: us(steps.tp), grammarUs: us(steps.tg), overheadUs: us(steps.tg) - us(steps.tp) },
      llamaCpp: { plainUs: us(steps.lp), grammarUs: us(steps.lg), overheadUs: us(steps.lg) - us(steps.lp) },
    };
  } finally {
    model.dispose();
    await peer.dispose();
  }

  return {
    vocabulary: "Llama 3 (../shared/tokenizers/llama3)",
    vocabSize: V,
    vocabIndexMs,
    compileMs,
    coldMs,
    coldTokens,
    contexts: ta.stats.contexts,
    contextMs: ta.stats.contextMs,
    tokens: mask.length,
    maskUs: median(mask),
    maskMeanUs: mask.reduce((a, b) => a + b, 0) / mask.length,
    maskP90Us: quantile(mask, 0.9),
    maskedSampleUs: median(masked),
    plainSampleUs: median(plain),
    stepUs: median(step),
    e2e,
  };
}

/** The Markdown section of a grammar run. */
export function grammarMarkdown(g: GrammarBenchResult): string[] {
  const f = (x: number, d = 1) => x.toFixed(d);
  const lines = [
    `## Constrained decoding (nested object schema, ${g.vocabulary}, ${g.vocabSize} tokens)`,
    "",
    "Tessera alone: generations driven by synthetic LLM-like logits through the constraint and the default sampler; per token the constraint's work (mask + accept), the masked draw, and the unmasked draw of the same logits. Medians over the generations after the first ones (which build the context masks: the cold start).",
    "",
    "| tokens | mask + accept (median) | mean | p90 | masked draw | unmasked draw | mask + masked draw + accept |",
    "|---|---|---|---|---|---|---|",
    `| ${g.tokens} | ${f(g.maskUs)} µs | ${f(g.maskMeanUs)} µs | ${f(g.maskP90Us)} µs | ${f(g.maskedSampleUs)} µs | ${f(g.plainSampleUs)} µs | ${f(g.stepUs)} µs |`,
    "",
    `Once per tokenizer: vocabulary index ${f(g.vocabIndexMs, 0)} ms. Once per schema: compile ${f(g.compileMs, 0)} ms; ${g.contexts} context masks built in ${f(g.contextMs, 0)} ms over the run (the first generation's constraint time: ${f(g.coldMs, 0)} ms for ${g.coldTokens} tokens).`,
    "",
  ];
  if (g.e2e) {
    const e = g.e2e;
    lines.push(
      `End to end on one ${e.model}, sampled decoding (T 0.8, top-k 40, top-p 0.95, min-p 0.05) with the schema and without, median step; the grammar's cost per token is the difference. node-llama-cpp uses llama.cpp's grammar sampler on createGrammarForJsonSchema of the same schema.`,
      "",
      "| engine | step without grammar | step with grammar | grammar cost per token |",
      "|---|---|---|---|",
      `| tessera | ${f(e.tessera.plainUs, 0)} µs | ${f(e.tessera.grammarUs, 0)} µs | ${f(e.tessera.overheadUs, 0)} µs |`,
      `| node-llama-cpp | ${f(e.llamaCpp.plainUs, 0)} µs | ${f(e.llamaCpp.grammarUs, 0)} µs | ${f(e.llamaCpp.overheadUs, 0)} µs |`,
      "",
      "A negative cost: sampling among the few allowed tokens is cheaper than over the whole vocabulary.",
      "",
    );
  }
  return lines;
}

/** The targets of a grammar run. */
export function grammarTargets(g: GrammarBenchResult): Array<{ target: string; measured: string; met: boolean }> {
  const t = [{ target: "grammar mask + accept, nested schema, Llama 3 vocabulary ≤ 50 µs/token (median)", measured: `${g.maskUs.toFixed(1)} µs`, met: g.maskUs <= 50 }];
  if (g.e2e) {
    // Tessera's cost per token: the constraint's own work, plus what masked sampling costs beyond
    // unmasked sampling (never credited below zero).
    const ours = g.maskUs + Math.max(0, g.maskedSampleUs - g.plainSampleUs);
    const x = g.e2e.llamaCpp.overheadUs / ours;
    t.push({ target: "node-llama-cpp grammar cost per token ≥ 5× Tessera's", measured: `${x.toFixed(0)}× (${g.e2e.llamaCpp.overheadUs.toFixed(0)} vs ${ours.toFixed(1)} µs)`, met: x >= 5 });
  }
  return t;
}

// `node dist/bench/grammar.js`: this section alone.
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  runGrammarBench({ quick: process.argv.includes("--quick"), threads: 1, onStep: (l) => process.stderr.write(l + "\n") })
    .then((g) => {
      process.stdout.write(grammarMarkdown(g).join("\n") + "\n");
      for (const t of grammarTargets(g)) process.stdout.write(`${t.met ? "met" : "NOT MET"}: ${t.target}: ${t.measured}\n`);
    })
    .catch((e: unknown) => {
      console.error(e);
      process.exit(1);
    });
}
