/**
 * A benchmark engine in its own process: loads one model in Tessera or llama.cpp and
 * answers timing requests over IPC. Keeping each engine in a separate process stops one
 * engine's idle threads and event loop from perturbing the other's measurements.
 *
 *   request  { op: "prefill", tokens } | { op: "decode", bos, n } | { op: "probe" } | { op: "exit" }
 *   response { ms, overheadMs?, stepMs? } | { gbps } (probe, Tessera only) | { error }
 */
import { loadModel, type Model } from "../lib/index.js";
import { argmax } from "../lib/sampling/sampler.js";
import { LlamaCppPeer } from "../scripts/llama-cpp-peer.js";
import { measureReadBandwidth } from "./bandwidth.js";

interface Init {
  engine: "tessera" | "llama.cpp";
  file: string;
  threads: number;
  contextSize: number;
  batchSize: number;
}

type Request = { op: "prefill"; tokens: number[] } | { op: "decode"; bos: number; n: number } | { op: "probe" } | { op: "exit" };

async function tessera(init: Init) {
  const model: Model = await loadModel(init.file, { backend: "cpu", threads: init.threads, contextSize: init.contextSize });
  return {
    info: { nVocab: model.info.nVocab, bos: model.tokenizer.bos ?? 1 },
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
      let logits = await s.evaluate([bos]);
      const overheadMs: number[] = [];
      const stepMs: number[] = [];
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const tok = argmax(logits);
        const a = performance.now();
        logits = await s.evaluateShared([tok]);
        const wall = performance.now() - a;
        stepMs.push(wall);
        overheadMs.push(wall - s.lastNativeMs);
      }
      const ms = performance.now() - t0;
      s.dispose();
      return { ms, overheadMs, stepMs };
    },
    close: async () => model.dispose(),
  };
}

async function llamaCpp(init: Init) {
  const peer = await LlamaCppPeer.open(init.file, { threads: init.threads, contextSize: init.contextSize, batchSize: init.batchSize });
  return {
    info: {},
    prefill: async (tokens: number[]) => ({ ms: await peer.prefill(tokens) }),
    decode: async (bos: number, n: number) => ({ ms: (await peer.decode([bos], n)).ms }),
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
