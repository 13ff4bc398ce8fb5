/**
 * The reference implementation, llama.cpp through node-llama-cpp's prebuilt CPU binary,
 * wrapped for conformance tests (per-position logits) and side-by-side benchmarks
 * (prefill and greedy decode timings). Always set `threads`: its default oversubscribes
 * small machines by orders of magnitude.
 */
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel } from "node-llama-cpp";

let llamaPromise: Promise<Llama> | undefined;

async function llama(): Promise<Llama> {
  llamaPromise ??= import("node-llama-cpp").then((m) =>
    m.getLlama({ gpu: false, build: "never", skipDownload: true, logLevel: m.LlamaLogLevel.error, progressLogs: false }),
  );
  return llamaPromise;
}

export interface PeerOptions {
  threads: number;
  contextSize: number;
  batchSize?: number;
  /**
   * llama.cpp's default ("auto") uses flash attention on the CPU, which accumulates V in
   * fp16; conformance tests turn it off to compare against the standard attention path.
   */
  flashAttention?: boolean | "auto";
  /** Storage type of keys and values (llama.cpp's -ctk/-ctv). Default f16. */
  kvCacheType?: "f16" | "q8_0" | "q4_0";
  /** Sequences the context holds (llama.cpp's unified multi-sequence KV cache). Default 1. */
  sequences?: number;
  /** A draft model (same vocabulary) for `speculate`'s draft mode. */
  draftFile?: string;
}

export class LlamaCppPeer {
  private constructor(
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private sequence: LlamaContextSequence,
    private readonly draft?: { model: LlamaModel; context: LlamaContext },
  ) {}

  static async open(modelPath: string, options: PeerOptions): Promise<LlamaCppPeer> {
    const l = await llama();
    const model = await l.loadModel({ modelPath, gpuLayers: 0, useMmap: true });
    const context = await model.createContext({
      contextSize: options.contextSize,
      batchSize: options.batchSize ?? Math.min(512, options.contextSize),
      threads: options.threads,
      sequences: options.sequences ?? 1,
      flashAttention: options.flashAttention ?? "auto",
      ...(options.kvCacheType && {
        experimentalKvCacheKeyType: options.kvCacheType.toUpperCase() as "F16",
        experimentalKvCacheValueType: options.kvCacheType.toUpperCase() as "F16",
      }),
    });
    let draft: { model: LlamaModel; context: LlamaContext } | undefined;
    if (options.draftFile) {
      const dm = await l.loadModel({ modelPath: options.draftFile, gpuLayers: 0, useMmap: true });
      // Two sequences: a predictor's sequence is released a moment after its generation ends
      // (node-llama-cpp closes the evaluation asynchronously), and the next run's may come first.
      const dc = await dm.createContext({ contextSize: options.contextSize, batchSize: options.batchSize ?? Math.min(512, options.contextSize), threads: options.threads, flashAttention: options.flashAttention ?? "auto", sequences: 2 });
      draft = { model: dm, context: dc };
    }
    return new LlamaCppPeer(model, context, context.getSequence(), draft);
  }

  /**
   * Greedy decode of n tokens after `prompt` plainly, with node-llama-cpp's
   * DraftSequenceTokenPredictor over the draft model, or with its InputLookupTokenPredictor
   * (on a fresh sequence each call); the milliseconds after the first token, and the
   * predictor's validated and refuted guesses.
   */
  async speculate(prompt: number[], n: number, mode: "plain" | "draft" | "lookup", maxDraftTokens: number) {
    const m = await import("node-llama-cpp");
    await this.sequence.clearHistory();
    let draftSequence: LlamaContextSequence | undefined;
    let tokenPredictor;
    if (mode === "draft") {
      if (!this.draft) throw new Error("speculate: no draft model");
      draftSequence = this.draft.context.getSequence();
      tokenPredictor = new m.DraftSequenceTokenPredictor(draftSequence, { maxTokens: maxDraftTokens });
    } else if (mode === "lookup") tokenPredictor = new m.InputLookupTokenPredictor({ predictionLength: { max: maxDraftTokens } });
    // The first sequence has no predictor; a predictor needs a sequence of its own.
    const seq = tokenPredictor ? this.context.getSequence({ tokenPredictor }) : this.sequence;
    try {
      let count = 0;
      let t0 = 0;
      for await (const _ of seq.evaluate(prompt as never[], { temperature: 0, yieldEogToken: true })) {
        if (count === 0) t0 = performance.now();
        if (++count > n) break;
      }
      const ms = performance.now() - t0;
      const p = seq.tokenPredictions;
      return { ms, tokens: count - 1, proposed: p.validated + p.refuted, accepted: p.validated };
    } finally {
      if (seq !== this.sequence) seq.dispose();
      draftSequence?.dispose();
    }
  }

  tokenize(text: string, special = false): number[] {
    return this.model.tokenize(text, special).map(Number);
  }

  /** Logits of every position of `tokens` (evaluated from an empty cache). */
  async logitsPerPosition(tokens: number[], nVocab: number): Promise<Float32Array[]> {
    await this.sequence.clearHistory();
    const res = await this.sequence.controlledEvaluate(tokens.map((t) => [t as never, { generateNext: { logits: true } }]));
    return res.map((r, i) => {
      const map = r?.next?.logits;
      if (!map) throw new Error(`llama.cpp returned no logits for position ${i}`);
      const out = new Float32Array(nVocab);
      for (const [tok, v] of map) out[Number(tok)] = v;
      return out;
    });
  }

  /** Evaluates `tokens` from an empty cache; returns milliseconds. */
  async prefill(tokens: number[]): Promise<number> {
    await this.sequence.clearHistory();
    const t0 = performance.now();
    await this.sequence.evaluateWithoutGeneratingNewTokens(tokens as never[]);
    return performance.now() - t0;
  }

  /** Greedy decode of n tokens after `prompt`; returns the tokens and the decode milliseconds
   *  (the first token, which also evaluates the prompt, is not counted). End-of-generation
   *  tokens do not stop it: a random-weight model emits them at any step (a synthetic Qwen2
   *  one's first greedy token is <|endoftext|>), and a benchmark must time all n steps. */
  async decode(prompt: number[], n: number): Promise<{ tokens: number[]; ms: number }> {
    await this.sequence.clearHistory();
    const tokens: number[] = [];
    let t0 = 0;
    for await (const tok of this.sequence.evaluate(prompt as never[], { temperature: 0, yieldEogToken: true })) {
      if (tokens.length === 0) t0 = performance.now();
      tokens.push(Number(tok));
      if (tokens.length > n) break;
    }
    if (tokens.length <= n) throw new Error(`llama.cpp stopped after ${tokens.length} of ${n + 1} tokens`);
    return { tokens: tokens.slice(0, n), ms: performance.now() - t0 };
  }

  /**
   * Greedy decode of n tokens after each prompt, all at once, one sequence of the context
   * each (open the peer with `sequences` >= prompts.length): node-llama-cpp evaluates the
   * sequences' pending tokens together in one batch per step. Returns the milliseconds from
   * the start until every sequence has its n tokens (their prompts included).
   */
  async decodeMany(prompts: number[][], n: number): Promise<{ ms: number; tokens: number }> {
    const sequences = prompts.map((_, i) => (i === 0 ? this.sequence : this.context.getSequence()));
    try {
      const t0 = performance.now();
      const counts = await Promise.all(
        sequences.map(async (seq, i) => {
          let count = 0;
          for await (const _ of seq.evaluate(prompts[i] as never[], { temperature: 0, yieldEogToken: true })) if (++count >= n) break;
          return count;
        }),
      );
      return { ms: performance.now() - t0, tokens: counts.reduce((a, b) => a + b, 0) };
    } finally {
      for (const seq of sequences) await seq.clearHistory();
      for (const seq of sequences.slice(1)) seq.dispose();
    }
  }

  /**
   * Sampled decoding after `prompt` for up to n tokens, optionally constrained by a JSON
   * Schema grammar (node-llama-cpp's createGrammarForJsonSchema, applied by llama.cpp's
   * sampler); returns the milliseconds of each step after the first (which also evaluates the
   * prompt) and the tokens. Stops at an end-of-generation token.
   */
  async sampledSteps(
    prompt: number[],
    n: number,
    options: { temperature: number; topK: number; topP: number; minP: number; seed: number; jsonSchema?: object },
  ): Promise<{ stepMs: number[]; tokens: number[] }> {
    const l = await llama();
    await this.sequence.clearHistory();
    let grammarEvaluationState: unknown;
    if (options.jsonSchema) {
      const m = await import("node-llama-cpp");
      const grammar = await l.createGrammarForJsonSchema(options.jsonSchema as never);
      grammarEvaluationState = new m.LlamaGrammarEvaluationState({ model: this.model, grammar });
    }
    const stepMs: number[] = [];
    const tokens: number[] = [];
    let t = performance.now();
    for await (const tok of this.sequence.evaluate(prompt as never[], {
      temperature: options.temperature,
      topK: options.topK,
      topP: options.topP,
      minP: options.minP,
      seed: options.seed,
      grammarEvaluationState: grammarEvaluationState as never,
      yieldEogToken: true,
    })) {
      const now = performance.now();
      if (tokens.length > 0) stepMs.push(now - t);
      t = now;
      tokens.push(Number(tok));
      if (tokens.length >= n || this.model.isEogToken(tok)) break;
    }
    return { stepMs, tokens };
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
    await this.draft?.context.dispose();
    await this.draft?.model.dispose();
  }
}
