/**
 * Speculative decoding (issue 24), side by side with node-llama-cpp's token predictors on the
 * same files, each engine in its own process (engine-worker.ts), runs alternating, medians.
 * Greedy decode of n tokens after a prompt, timed from the first token:
 *
 *   draft    a synthetic SmolLM2-135M-shaped Q8_0 target whose blocks after the first two
 *            write a small fraction of their output into the residual stream, so its first
 *            two blocks (a truncated copy, the draft) agree with it most of the time; Tessera's
 *            `speculative: { draft }` against DraftSequenceTokenPredictor. The draft is
 *            requantized to Q4_0, as drafts usually are quantized harder than their targets:
 *            its LM head (49k x 576, tied) is as large as the target's and dominates its
 *            every step, 28 MB in Q8_0 against 16 MB in Q4_0.
 *   lookup   a quoting task: the model is shown a passage and starts it again;
 *            `speculative: { promptLookup }` against InputLookupTokenPredictor. Twice: on a
 *            SmolLM2-135M-shaped Q8_0 model built to quote (writeCycleModel: its greedy
 *            output follows a fixed cycle through the vocabulary, so it continues the passage
 *            word for word; decode bound by memory bandwidth, as on real models), and on
 *            stories260K, a trained model too small to be bandwidth-bound that quotes only
 *            the passage's first few tokens
 *
 * Each row: plain tokens/s, speculative tokens/s, the speedup and the share of proposed
 * tokens accepted.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { writeSyntheticModel, SHAPES, sharedDir } from "../dev/synthetic-model.js";
import { cycleNext, writeCycleModel, writeQuietTailModel, writeTruncatedModel } from "../dev/truncate-model.js";
import { GGMLType } from "../lib/gguf/types.js";
import { EngineProcess } from "./e2e.js";
import { median } from "./stats.js";

/** SmolLM2's vocabulary size (the synthetic models' "smollm2" vocabulary). */
const SMOLLM2_VOCAB = 49152;

type Mode = "plain" | "draft" | "lookup";

export interface SpeculativeRow {
  task: "draft" | "lookup";
  model: string;
  engine: "tessera" | "llama.cpp";
  plainTps: number;
  specTps: number;
  speedup: number;
  acceptance: number;
  runs: Array<{ plain: number; spec: number }>;
}

export interface SpeculativeBenchResult {
  threads: number;
  decodeTokens: number;
  maxDraftTokens: number;
  rows: SpeculativeRow[];
}

export interface SpeculativeBenchOptions {
  threads: number;
  quick: boolean;
  onStep?: (label: string) => void;
}

interface Task {
  task: "draft" | "lookup";
  model: string;
  file: string;
  draftFile?: string;
  /** The prompt, given the engine's BOS and a greedy continuation function (for lookup). */
  prompt: number[];
}

async function pairRows(t: Task, o: SpeculativeBenchOptions, n: number, maxDraftTokens: number, reps: number): Promise<SpeculativeRow[]> {
  const contextSize = t.prompt.length + n + 64;
  const mode: Mode = t.task;
  const engines = await Promise.all(
    (["tessera", "llama.cpp"] as const).map((engine) =>
      // The peer needs a second sequence in its context for the predictor's own sequence, and
      // node-llama-cpp divides the context's positions among its sequences.
      // (A third: a predictor's sequence is released a moment after its run, see the peer.)
      EngineProcess.start({ engine, file: t.file, draftFile: t.draftFile, threads: o.threads, contextSize: engine === "tessera" ? contextSize : 3 * contextSize, batchSize: 512, sequences: 3 }),
    ),
  );
  const runs = engines.map(() => ({ plain: [] as number[], spec: [] as number[], proposed: 0, accepted: 0 }));
  try {
    for (const e of engines) await e.request({ op: "speculate", prompt: t.prompt, n: 8, mode, maxDraftTokens });
    for (let r = 0; r < reps; r++) {
      for (let i = 0; i < engines.length; i++) {
        const who = r % 2 === 0 ? i : engines.length - 1 - i;
        for (const m of r % 2 === 0 ? (["plain", mode] as const) : ([mode, "plain"] as const)) {
          o.onStep?.(`speculative ${t.task} ${who === 0 ? "tessera" : "llama.cpp"} ${m} ${r + 1}/${reps}`);
          const rep = await engines[who].request({ op: "speculate", prompt: t.prompt, n, mode: m, maxDraftTokens });
          const tps = (rep.tokens! / rep.ms) * 1000;
          if (m === "plain") runs[who].plain.push(tps);
          else {
            runs[who].spec.push(tps);
            runs[who].proposed += rep.proposed!;
            runs[who].accepted += rep.accepted!;
          }
        }
      }
    }
  } finally {
    await Promise.all(engines.map((e) => e.stop()));
  }
  return (["tessera", "llama.cpp"] as const).map((engine, i) => {
    const plainTps = median(runs[i].plain);
    const specTps = median(runs[i].spec);
    return {
      task: t.task,
      model: t.model,
      engine,
      plainTps,
      specTps,
      speedup: specTps / plainTps,
      acceptance: runs[i].proposed > 0 ? runs[i].accepted / runs[i].proposed : 0,
      runs: runs[i].plain.map((p, k) => ({ plain: p, spec: runs[i].spec[k] })),
    };
  });
}

export async function runSpeculativeBench(o: SpeculativeBenchOptions): Promise<SpeculativeBenchResult> {
  const n = o.quick ? 32 : 128;
  const reps = o.quick ? 1 : 3;
  const maxDraftTokens = 8;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tessera-bench-spec-"));
  process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  const rows: SpeculativeRow[] = [];

  // (a) A target/draft pair that agrees often.
  const shape = o.quick ? { ...SHAPES["smollm2-135m"], nLayer: 8 } : SHAPES["smollm2-135m"];
  const base = path.join(dir, "base.gguf");
  const target = path.join(dir, "target.gguf");
  const draft = path.join(dir, "draft.gguf");
  o.onStep?.("speculative: writing the target/draft pair");
  writeSyntheticModel(base, shape, { weights: "Q8_0", vocab: "smollm2", seed: 11 });
  writeQuietTailModel(base, target, 2, 0.03);
  const quoting = path.join(dir, "quoting.gguf");
  writeCycleModel(base, quoting, 0.03);
  fs.rmSync(base);
  writeTruncatedModel(target, draft, 2, GGMLType.Q4_0);
  // Distinct plain tokens after BOS (SmolLM2's vocabulary has no BOS in use: token 1 starts it).
  const prompt = [1, ...Array.from({ length: 15 }, (_, i) => 1000 + 37 * i)];
  rows.push(...(await pairRows({ task: "draft", model: `smollm2-135m-Q8_0 (${shape.nLayer} blocks; draft: 2 blocks, Q4_0)`, file: target, draftFile: draft, prompt }, o, n, maxDraftTokens, reps)));

  // (b) Prompt lookup where decode is bound by memory bandwidth: the SmolLM2-shaped quoting
  // model, shown a passage of its cycle and then the passage's first tokens again, quotes the
  // rest of it (greedy decoding checked to do so in test/generate/speculative.test.ts).
  {
    const passage = [5000];
    while (passage.length < n + 40) passage.push(cycleNext(passage[passage.length - 1], SMOLLM2_VOCAB));
    const tokens = [1, ...passage, ...passage.slice(0, 4)];
    rows.push(...(await pairRows({ task: "lookup", model: `smollm2-135m-Q8_0 quoting a passage (${shape.nLayer} blocks)`, file: quoting, prompt: tokens }, o, n, maxDraftTokens, reps)));
  }
  fs.rmSync(quoting);

  // (c) Prompt lookup on stories260K, a trained model: a passage, then its first words again.
  const stories = path.join(sharedDir, "models/stories260K.gguf");
  if (fs.existsSync(stories)) {
    const { loadModel } = await import("../lib/index.js");
    const m = await loadModel(stories, { backend: "cpu", threads: 1 });
    try {
      const passage = (await m.complete("Once upon a time, there was a little girl named Lily.", { maxTokens: 160, temperature: 0, ignoreEos: true })).tokens;
      const opening = m.tokenizer.encode("Once upon a time, there was a little girl named Lily.", { addSpecial: true });
      const again = m.tokenizer.encode(" Once upon a time, there was a little girl named Lily.", { addSpecial: false });
      const tokens = [...opening, ...passage, ...again];
      // A run takes ~20 ms here (stories260K decodes at ~6k tok/s): more of them, so the
      // medians are not one scheduler hiccup's.
      rows.push(...(await pairRows({ task: "lookup", model: "stories260K", file: stories, prompt: tokens }, o, o.quick ? 32 : 120, maxDraftTokens, o.quick ? 1 : 9)));
    } finally {
      m.dispose();
    }
  }
  return { threads: o.threads, decodeTokens: n, maxDraftTokens, rows };
}
