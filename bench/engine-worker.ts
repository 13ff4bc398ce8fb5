/**
 * A benchmark engine in its own process: loads one model in Tessera or llama.cpp and
 * answers timing requests over IPC. Keeping each engine in a separate process stops one
 * engine's idle threads and event loop from perturbing the other's measurements.
 *
 *   request  { op: "prefill", tokens } | { op: "decode", bos, n } | { op: "probe" } | { op: "exit" }
 *          | { op: "streams", prompts, n }  n greedy tokens after each prompt, all at once
 *          | { op: "ttft", prompt }         milliseconds to the first generated token (Tessera)
 *          | { op: "memory", sequences, tokens }  KV bytes held by that many sessions (Tessera)
 *          | { op: "speculate", prompt, n, mode }  greedy decode of n tokens after prompt, plainly, with
 *            the draft model of init.draftFile, or by prompt lookup; returns ms after the first
 *            token, the tokens after it, and proposed/accepted guess counts
 *   response { ms, overheadMs?, stepMs?, tokens? } | { gbps } (probe, Tessera only) | { bytes, blockBytes } | { error }
 */
import { loadModel, type Model } from "../lib/index.js";
import { argmax } from "../lib/sampling/sampler.js";
import { LlamaCppPeer } from "../dev/llama-cpp-peer.js";
import { measureReadBandwidth } from "./bandwidth.js";

interface Init {
  engine: "tessera" | "llama.cpp";
  file: string;
  threads: number;
  contextSize: number;
  batchSize: number;
  /** llama.cpp: sequences in its context (for "streams"); Tessera: the KV pool in tokens. */
  sequences?: number;
  kvCacheTokens?: number;
  kvCacheType?: "f16" | "q8_0" | "q4_0";
  /** A draft model for the "speculate" op's draft mode (same vocabulary). */
  draftFile?: string;
}

type SpeculateMode = "plain" | "draft" | "lookup";

type Request =
  | { op: "prefill"; tokens: number[] }
  | { op: "decode"; bos: number; n: number }
  | { op: "streams"; prompts: number[][]; n: number }
  | { op: "ttft"; prompt: number[] }
  | { op: "memory"; sequences: number; tokens: number }
  | { op: "speculate"; prompt: number[]; n: number; mode: SpeculateMode; maxDraftTokens: number }
  | { op: "probe" }
  | { op: "exit" };

async function tessera(init: Init) {
  const model: Model = await loadModel(init.file, {
    backend: "cpu",
    threads: init.threads,
    contextSize: init.contextSize,
    kvCacheTokens: init.kvCacheTokens,
    kvCacheType: init.kvCacheType,
    batchSize: init.batchSize,
  });
  const draft = init.draftFile ? await loadModel(init.draftFile, { backend: "cpu", threads: init.threads, contextSize: init.contextSize }) : undefined;
  return {
    info: { nVocab: model.info.nVocab, bos: model.tokenizer.bos ?? 1 },
    async streams(prompts: number[][], n: number) {
      const t0 = performance.now();
      const done = await Promise.all(prompts.map((p) => model.complete(p, { maxTokens: n, temperature: 0, ignoreEos: true })));
      return { ms: performance.now() - t0, tokens: done.reduce((a, c) => a + c.tokens.length, 0) };
    },
    async ttft(prompt: number[]) {
      const t0 = performance.now();
      for await (const _ of model.generate(prompt, { maxTokens: 1, temperature: 0, ignoreEos: true })) break;
      return { ms: performance.now() - t0 };
    },
    async memory(sequences: number, tokens: number) {
      const sessions = Array.from({ length: sequences }, () => model.createSession());
      await Promise.all(sessions.map((s, i) => s.evaluate(Array.from({ length: tokens }, (_, k) => 10 + ((i * 7919 + k * 104729) % (model.info.nVocab - 10))))));
      const st = model.stats();
      for (const s of sessions) s.dispose();
      return { bytes: st.kvBytesInUse, blockBytes: st.blockBytes };
    },
    async prefill(tokens: number[]) {
      const s = model.createSession({ contextSize: tokens.length + 8, batchSize: init.batchSize });
      const t0 = performance.now();
      await s.evaluate(tokens);
      const ms = performance.now() - t0;
      s.dispose();
      return { ms };
    },
    async decode(bos: number, n: number) {
      const s = model.createSession({ contextSize: n + 8 });
      // Greedy as model.generate samples at temperature 0: the argmax the engine computes with
      // each step (EvaluateResult.argmax; Sampler.sample takes it unless something changed
      // the logits), the JS scan only where the engine gave none. Scanning 128k logits in JS
      // took ~0.12 ms a step that no generation pays.
      let r = await s.run(undefined, [bos], false);
      const overheadMs: number[] = [];
      const stepMs: number[] = [];
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const tok = r.argmax ?? argmax(r.logits);
        const a = performance.now();
        r = await s.run(undefined, [tok], false);
        const wall = performance.now() - a;
        stepMs.push(wall);
        overheadMs.push(wall - s.lastNativeMs);
      }
      const ms = performance.now() - t0;
      s.dispose();
      return { ms, overheadMs, stepMs };
    },
    async speculate(prompt: number[], n: number, mode: SpeculateMode, maxDraftTokens: number) {
      const speculative = mode === "draft" ? { draft: draft!, maxDraftTokens } : mode === "lookup" ? { promptLookup: true, maxDraftTokens } : undefined;
      const gen = model.generate(prompt, { maxTokens: n + 1, temperature: 0, ignoreEos: true, ...(speculative && { speculative }) });
      // The clock starts at the first chunk, so the prompt's evaluation is left out as for
      // the peer; a first chunk may already hold accepted guesses, which are not counted.
      let t0 = 0;
      let tokens = 0;
      let first = true;
      for await (const chunk of gen) {
        if (first) {
          t0 = performance.now();
          first = false;
        } else tokens += chunk.tokens.length;
      }
      const ms = performance.now() - t0;
      const s = gen.stats.speculative;
      return { ms, tokens, proposed: s?.proposed ?? 0, accepted: s?.accepted ?? 0 };
    },
    close: async () => {
      draft?.dispose();
      model.dispose();
    },
  };
}

async function llamaCpp(init: Init) {
  const peer = await LlamaCppPeer.open(init.file, {
    threads: init.threads,
    contextSize: init.contextSize,
    batchSize: init.batchSize,
    sequences: init.sequences,
    draftFile: init.draftFile,
  });
  const unsupported = () => Promise.reject(new Error("not measured for llama.cpp"));
  return {
    info: {},
    streams: (prompts: number[][], n: number) => peer.decodeMany(prompts, n),
    ttft: unsupported,
    memory: unsupported,
    prefill: async (tokens: number[]) => ({ ms: await peer.prefill(tokens) }),
    decode: async (bos: number, n: number) => ({ ms: (await peer.decode([bos], n)).ms }),
    speculate: (prompt: number[], n: number, mode: SpeculateMode, maxDraftTokens: number) => peer.speculate(prompt, n, mode, maxDraftTokens),
    close: () => peer.dispose(),
  };
}

async function main(): Promise<void> {
  const init = JSON.parse(process.argv[2]) as Init;
  const engine = init.engine === "tessera" ? await tessera(init) : await llamaCpp(init);
  process.send!({ ready: true, info: engine.info });
  process.on("message", async (req: Request) => {
    try {
      if (req.op === "exit") {
        await engine.close();
        process.exit(0);
      }
      // The read-bandwidth probe runs in this process, just before the decode run it is paired with.
      const r =
        req.op === "probe"
          ? { gbps: measureReadBandwidth({ threads: init.threads, quick: false }) }
          : req.op === "prefill"
            ? await engine.prefill(req.tokens)
            : req.op === "streams"
              ? await engine.streams(req.prompts, req.n)
              : req.op === "ttft"
                ? await engine.ttft(req.prompt)
                : req.op === "memory"
                  ? await engine.memory(req.sequences, req.tokens)
                  : req.op === "speculate"
                  ? await engine.speculate(req.prompt, req.n, req.mode, req.maxDraftTokens)
                  : await engine.decode(req.bos, req.n);
      process.send!(r);
    } catch (e) {
      process.send!({ error: e instanceof Error ? e.message : String(e) });
    }
  });
}

main().catch((e) => {
  process.send?.({ error: e instanceof Error ? e.message : String(e) });
  process.exit(1);
});
