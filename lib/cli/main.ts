#!/usr/bin/env node
/**
 * tessera CLI:
 *   tessera run <model.gguf> --prompt TEXT [--max-tokens N --temperature T --top-k K --top-p P
 *                                           --min-p P --seed S --threads N --backend B --context N]
 *   tessera serve <model.gguf> [--host --port --parallel --ctx --api-key ...] (see serve.ts)
 *   tessera inspect <model.gguf>
 *   tessera info
 */
import { parseArgs } from "node:util";
import { isTesseraError } from "../errors.js";
import { readGGUF } from "../gguf/reader.js";
import { loadModel, type BackendChoice } from "../model/model.js";
import { native } from "../native.js";
import { inspectGGUF } from "./inspect.js";
import { perplexityCommand } from "./perplexity.js";
import { serve } from "./serve.js";

const USAGE = `usage:
  tessera run <model.gguf> --prompt TEXT [options]
      --max-tokens N      tokens to generate (default 256)
      --temperature T     0 = greedy (default 0.8)
      --top-k K           (default 40)      --top-p P   (default 0.95)
      --min-p P           (default 0.05)    --seed S    (default random)
      --repeat-penalty R  (default 1)
      --threads N         CPU threads (default: all cores)
      --backend B         auto | cpu | cuda (default auto)
      --context N         context size in tokens
      --stats             print timings to stderr at the end
      --draft MODEL       speculative decoding with this draft model (same vocabulary)
      --prompt-lookup     speculative decoding by prompt lookup (no draft model)
      --draft-max N       most tokens proposed per pass (default 8)
  tessera serve <model.gguf> [options]   an OpenAI-compatible HTTP server (serve --help)
  tessera perplexity <model.gguf> <text file> [--ctx N] [--json] [--kl-divergence BASE]
  tessera inspect <model.gguf>   print metadata and the tensor table
  tessera info                   print CPU features and CUDA availability`;

function numberOption(value: string | undefined, name: string, integer: boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new Error(`--${name} expects a number, got "${value}"`);
  return n;
}

async function run(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      prompt: { type: "string", short: "p" },
      "max-tokens": { type: "string", short: "n" },
      temperature: { type: "string", short: "t" },
      "top-k": { type: "string" },
      "top-p": { type: "string" },
      "min-p": { type: "string" },
      "repeat-penalty": { type: "string" },
      seed: { type: "string", short: "s" },
      threads: { type: "string" },
      backend: { type: "string" },
      context: { type: "string" },
      stats: { type: "boolean" },
      draft: { type: "string" },
      "prompt-lookup": { type: "boolean" },
      "draft-max": { type: "string" },
    },
  });
  if (positionals.length !== 1) throw new Error("run needs exactly one model path");
  const controller = new AbortController();
  process.once("SIGINT", () => controller.abort());
  const model = await loadModel(positionals[0], {
    backend: (values.backend ?? "auto") as BackendChoice,
    threads: numberOption(values.threads, "threads", true),
    contextSize: numberOption(values.context, "context", true),
  });
  const draft = values.draft ? await loadModel(values.draft, { backend: (values.backend ?? "auto") as BackendChoice, threads: numberOption(values.threads, "threads", true), contextSize: model.info.contextSize }) : undefined;
  const speculative =
    draft || values["prompt-lookup"]
      ? { draft, promptLookup: values["prompt-lookup"] ?? false, maxDraftTokens: numberOption(values["draft-max"], "draft-max", true) }
      : undefined;
  try {
    const generation = model.generate(values.prompt ?? "", {
      speculative,
      maxTokens: numberOption(values["max-tokens"], "max-tokens", true),
      temperature: numberOption(values.temperature, "temperature", false),
      topK: numberOption(values["top-k"], "top-k", true),
      topP: numberOption(values["top-p"], "top-p", false),
      minP: numberOption(values["min-p"], "min-p", false),
      repeatPenalty: numberOption(values["repeat-penalty"], "repeat-penalty", false),
      seed: numberOption(values.seed, "seed", true),
      signal: controller.signal,
    });
    for await (const chunk of generation) process.stdout.write(chunk.text);
    process.stdout.write("\n");
    if (values.stats) {
      const s = generation.stats;
      process.stderr.write(
        `[${model.info.backend}, ${model.info.threads} threads] prompt ${s.promptTokens} tokens in ${s.promptMs.toFixed(1)} ms, ` +
          `generated ${s.generatedTokens} tokens in ${s.generateMs.toFixed(1)} ms ` +
          `(${((s.generatedTokens * 1000) / Math.max(s.generateMs, 1e-9)).toFixed(1)} tok/s), stop: ${generation.stopReason}` +
          (s.speculative ? `, speculative: ${s.speculative.accepted}/${s.speculative.proposed} guesses accepted, ${s.speculative.tokensPerPass.toFixed(2)} tokens per pass` : "") +
          "\n",
      );
    }
  } finally {
    model.dispose();
    draft?.dispose();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "run":
      await run(rest);
      return 0;
    case "serve":
      return serve(rest);
    case "perplexity":
      return perplexityCommand(rest);
    case "inspect":
      if (rest.length !== 1) throw new Error("inspect needs exactly one model path");
      process.stdout.write(inspectGGUF(readGGUF(rest[0])) + "\n");
      return 0;
    case "info":
      process.stdout.write(JSON.stringify(native().systemInfo(), null, 2) + "\n");
      return 0;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE + "\n");
      return command === undefined ? 1 : 0;
    default:
      throw new Error(`unknown command "${command}"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`tessera: ${isTesseraError(e) ? `${e.code}: ` : ""}${message}\n`);
    if (!isTesseraError(e)) process.stderr.write(USAGE + "\n");
    process.exitCode = 2;
  },
);
