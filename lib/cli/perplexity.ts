/**
 * `tessera perplexity MODEL FILE [--ctx N] [--chunks N] [--json] [--kl-divergence BASE]`:
 * llama-perplexity's method over a text file (lib/inspect/perplexity.ts). With
 * --kl-divergence, the mean KL(BASE || MODEL) and top-1 agreement instead.
 */
import fs from "node:fs";
import { parseArgs } from "node:util";
import { TesseraError } from "../errors.js";
import { klDivergence, perplexity } from "../inspect/perplexity.js";
import { loadModel, type BackendChoice } from "../model/model.js";

export const PERPLEXITY_USAGE = `usage: tessera perplexity <model.gguf> <text file> [options]
      --ctx N               tokens per chunk (default 512); the second half of each is scored
      --chunks N            score at most N chunks
      --kl-divergence BASE  mean KL(BASE || model) and top-1 agreement instead of perplexity
      --json                one JSON object on stdout
      --threads N  --backend B`;

export async function perplexityCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ctx: { type: "string" },
      chunks: { type: "string" },
      "kl-divergence": { type: "string" },
      json: { type: "boolean" },
      threads: { type: "string" },
      backend: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(PERPLEXITY_USAGE + "\n");
    return 0;
  }
  if (positionals.length !== 2) throw new TesseraError("ERR_INVALID_ARGUMENT", "perplexity needs a model path and a text file");
  const int = (v: string | undefined, name: string) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n)) throw new TesseraError("ERR_INVALID_ARGUMENT", `--${name} expects an integer, got "${v}"`);
    return n;
  };
  const ctx = int(values.ctx, "ctx") ?? 512;
  const text = fs.readFileSync(positionals[1], "utf8");
  const load = (file: string) =>
    loadModel(file, { backend: (values.backend ?? "auto") as BackendChoice, threads: int(values.threads, "threads"), contextSize: Math.max(ctx, 16) });
  const model = await load(positionals[0]);
  const progress = (done: number, of: number, v: number) => {
    if (!values.json) process.stderr.write(`\r[${done}/${of}] ${v.toFixed(4)}`);
  };
  try {
    if (values["kl-divergence"]) {
      const base = await load(values["kl-divergence"]);
      try {
        const r = await klDivergence(base, model, text, { ctx, chunks: int(values.chunks, "chunks"), onChunk: progress });
        if (values.json) process.stdout.write(JSON.stringify(r) + "\n");
        else process.stdout.write(`\nmean KL divergence ${r.meanKl.toFixed(6)}, same top-1 ${(r.top1Agreement * 100).toFixed(2)}% over ${r.tokens} tokens\n`);
      } finally {
        base.dispose();
      }
    } else {
      const r = await perplexity(model, text, { ctx, chunks: int(values.chunks, "chunks"), onChunk: progress });
      if (values.json) process.stdout.write(JSON.stringify(r) + "\n");
      else process.stdout.write(`\nperplexity ${r.perplexity.toFixed(4)} +/- ${r.error.toFixed(5)} over ${r.tokens} tokens in ${r.chunks} chunks of ${r.ctx}\n`);
    }
  } finally {
    model.dispose();
  }
  return 0;
}
