/**
 * The server of the serving benchmarks in its own process (the clients' JSON parsing and
 * event loop stay out of its measurements): loads one model, serves it on 127.0.0.1 and a
 * free port, and answers over IPC.
 *
 *   argv[2]  { file, threads, contextSize, parallel, kvCacheTokens? }
 *   sends    { url } once listening
 *   request  { op: "stats" }  ->  { stats: EngineStats, rss }  (after a garbage collection
 *            when run with --expose-gc)
 *          | { op: "exit" }   ->  closes the server and exits
 */
import { loadModel } from "../lib/index.js";
import { createServer } from "../lib/server/server.js";

interface Init {
  file: string;
  threads: number;
  contextSize: number;
  parallel: number;
  kvCacheTokens?: number;
}

async function main(): Promise<void> {
  const init = JSON.parse(process.argv[2]) as Init;
  const model = await loadModel(init.file, { backend: "cpu", threads: init.threads, contextSize: init.contextSize, kvCacheTokens: init.kvCacheTokens });
  const server = createServer({ model, modelName: "bench", parallel: init.parallel, maxQueue: 1024, log: () => {} });
  const url = await server.listen({ port: 0 });
  process.on("message", (m: { op: string }) => {
    if (m.op === "stats") {
      (globalThis as { gc?: () => void }).gc?.();
      process.send!({ stats: model.stats(), rss: process.memoryUsage().rss });
    } else if (m.op === "exit") {
      void server.close(1000).then(() => {
        model.dispose();
        process.exit(0);
      });
    }
  });
  // The parent gone (killed, timed out): no orphan server holding the port and the terminal.
  process.on("disconnect", () => process.exit(0));
  process.send!({ url });
}

main().catch((e: unknown) => {
  process.stderr.write(`serve-worker: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
