#!/usr/bin/env node
/**
 * tessera CLI:
 *   tessera run [model.gguf] --prompt TEXT [generation options] [--grammar FILE.gbnf | --json-schema FILE.json]
 *   tessera chat [model.gguf] [--system TEXT] [generation options]
 *   tessera serve [model.gguf] [--host --port --parallel --ctx --api-key ...] (see serve.ts)
 *   tessera perplexity <model.gguf> <text file> [--ctx N] [--json] [--kl-divergence BASE]
 *   tessera explore [model.gguf] [--port N --host H] (see explore.ts)
 *   tessera pull <owner>/<repo>/<file.gguf> [--cache-dir DIR ...] (see pull.ts)
 *   tessera inspect [model.gguf]
 *   tessera info
 * Every command takes --help.
 */
import fs from "node:fs";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { TesseraError, isTesseraError } from "../errors.js";
import { loadModel, type BackendChoice, type Model } from "../model/model.js";
import type { GenerateOptions } from "../generate/generate.js";
import { INFO_USAGE, info } from "./info.js";
import { INSPECT_USAGE, inspectCommand } from "./inspect.js";
import { runChat } from "./chat.js";
import { EXPLORE_USAGE, exploreCommand } from "./explore.js";
import { perplexityCommand } from "./perplexity.js";
import { embedCommand } from "./embed.js";
import { pull } from "./pull.js";
import { serve } from "./serve.js";

const GENERATION_HELP = `      --max-tokens N             tokens to generate (default 256)
      --temperature T            0 = greedy (default 0.8)
      --top-k K                  (default 40)      --top-p P   (default 0.95)
      --min-p P                  (default 0.05)    --seed S    (default random)
      --repeat-penalty R         (default 1, off)  --repeat-last-n N  (default 64)
      --frequency-penalty F      (default 0)       --presence-penalty P (default 0)
      --stop TEXT                end before TEXT (repeatable)
      --ignore-eos               keep going past end-of-generation tokens`;
const MODEL_HELP = `      --threads N                CPU threads (default: all cores)
      --backend B                auto | cpu | cuda (default auto)
      --context N                context size in tokens
      --stats                    print timings to stderr`;

export const USAGE: Record<string, string> = {
  run: `usage: tessera run [model.gguf] --prompt TEXT [options]
  Generates a continuation of TEXT (no model: the stories260K the package ships).
      -p, --prompt TEXT          the prompt
      --parse-special            read special-token text in the prompt (e.g. "<|im_start|>") as those tokens
${GENERATION_HELP}
${MODEL_HELP}`,
  chat: `usage: tessera chat [model.gguf] [options]
  Talks with the model through its chat template (ChatML when the file has none).
  Type a message and press Enter; the reply streams. Lines from a pipe are messages too.
  Commands: /reset (forget the conversation), /exit.
      --system TEXT              the system message
      --json-schema FILE         make replies JSON matching the schema in FILE
      --think / --no-think       reasoning models: turn thinking on or off (the template's enable_thinking)
      --template FILE            a Jinja chat template to use instead of the model's
${GENERATION_HELP}
${MODEL_HELP}`,
  inspect: INSPECT_USAGE,
  explore: EXPLORE_USAGE,
  info: INFO_USAGE,
};

const USAGE_ALL = `usage:
  tessera run [model.gguf] --prompt TEXT [options]   generate text (no model: stories260K, shipped)
  tessera chat [model.gguf] [options]                interactive chat
  tessera serve [model.gguf] [options]               an OpenAI-compatible HTTP server
  tessera perplexity <model.gguf> <text file>        perplexity, KL divergence (--kl-divergence BASE)
  tessera explore [model.gguf] [--port N]            a web page showing inside the model
  tessera embed <model.gguf> [--file F] [--json]     embeddings of texts (embed --help)
  tessera pull <owner>/<repo>/<file.gguf>            download a GGUF from Hugging Face (pull --help)
  tessera inspect [model.gguf]                       metadata and tensor table
  tessera info                                       CPU features, CUDA availability
Run "tessera <command> --help" for a command's options.`;

/** A command-line mistake: reported with the command's usage hint. */
class UsageError extends TesseraError {
  constructor(
    readonly command: string,
    message: string,
  ) {
    super("ERR_INVALID_ARGUMENT", message);
  }
}

const GENERATION_OPTIONS = {
  "max-tokens": { type: "string", short: "n" },
  temperature: { type: "string", short: "t" },
  "top-k": { type: "string" },
  "top-p": { type: "string" },
  "min-p": { type: "string" },
  "repeat-penalty": { type: "string" },
  "repeat-last-n": { type: "string" },
  "frequency-penalty": { type: "string" },
  "presence-penalty": { type: "string" },
  seed: { type: "string", short: "s" },
  stop: { type: "string", multiple: true },
  "ignore-eos": { type: "boolean" },
  threads: { type: "string" },
  backend: { type: "string" },
  context: { type: "string" },
  stats: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

type Values = Record<string, string | boolean | string[] | undefined>;

function parse(command: string, args: string[], extra: NonNullable<ParseArgsConfig["options"]>): { values: Values; positionals: string[] } {
  try {
    return parseArgs({ args, allowPositionals: true, strict: true, options: { ...GENERATION_OPTIONS, ...extra } }) as { values: Values; positionals: string[] };
  } catch (e) {
    throw new UsageError(command, (e as Error).message);
  }
}

function numberOption(command: string, values: Values, name: string, integer: boolean): number | undefined {
  const value = values[name];
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== "string" || value.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n)))
    throw new UsageError(command, `--${name} expects ${integer ? "an integer" : "a number"}, got "${String(value)}"`);
  return n;
}

export function generationOptions(command: string, values: Values): GenerateOptions {
  const num = (name: string, integer = false) => numberOption(command, values, name, integer);
  const options: GenerateOptions = {
    maxTokens: num("max-tokens", true),
    temperature: num("temperature"),
    topK: num("top-k", true),
    topP: num("top-p"),
    minP: num("min-p"),
    repeatPenalty: num("repeat-penalty"),
    repeatLastN: num("repeat-last-n", true),
    frequencyPenalty: num("frequency-penalty"),
    presencePenalty: num("presence-penalty"),
    seed: num("seed", true),
    stop: values.stop as string[] | undefined,
    ignoreEos: values["ignore-eos"] as boolean | undefined,
  };
  for (const k of Object.keys(options) as Array<keyof GenerateOptions>) if (options[k] === undefined) delete options[k];
  return options;
}

export async function openModel(command: string, values: Values, positionals: string[]): Promise<Model> {
  if (positionals.length > 1) throw new UsageError(command, `${command} takes one model path (none: the model the package ships)`);
  return loadModel(positionals[0], {
    backend: (values.backend ?? "auto") as BackendChoice,
    threads: numberOption(command, values, "threads", true),
    contextSize: numberOption(command, values, "context", true),
  });
}

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse("run", args, {
    prompt: { type: "string", short: "p" },
    "parse-special": { type: "boolean" },
    grammar: { type: "string" },
    "json-schema": { type: "string" },
    draft: { type: "string" },
    "prompt-lookup": { type: "boolean" },
    "draft-max": { type: "string" },
  });
  if (values.help) {
    process.stdout.write(USAGE.run + "\n");
    return 0;
  }
  const options = generationOptions("run", values);
  const controller = new AbortController();
  process.once("SIGINT", () => controller.abort());
  const draftMax = numberOption("run", values, "draft-max", true);
  const grammar = readTextOption(values.grammar, "grammar");
  const schemaText = readTextOption(values["json-schema"], "json-schema");
  let jsonSchema: Record<string, unknown> | undefined;
  if (schemaText !== undefined) {
    try {
      jsonSchema = JSON.parse(schemaText) as Record<string, unknown>;
    } catch (e) {
      throw new UsageError("run", `--json-schema: ${String(values["json-schema"])} is not JSON: ${(e as Error).message}`);
    }
  }
  const model = await openModel("run", values, positionals);
  let draft: Model | undefined;
  try {
    if (typeof values.draft === "string")
      draft = await loadModel(values.draft, {
        backend: (values.backend ?? "auto") as BackendChoice,
        threads: numberOption("run", values, "threads", true),
        contextSize: model.info.contextSize,
      });
    const speculative =
      draft || values["prompt-lookup"] ? { draft, promptLookup: values["prompt-lookup"] === true, maxDraftTokens: draftMax } : undefined;
    const generation = model.generate((values.prompt as string | undefined) ?? "", {
      ...options,
      ...(grammar !== undefined && { grammar }),
      ...(jsonSchema !== undefined && { jsonSchema }),
      speculative,
      parseSpecial: values["parse-special"] as boolean | undefined,
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
          (s.speculative
            ? `, speculative: ${s.speculative.accepted}/${s.speculative.proposed} guesses accepted, ${s.speculative.tokensPerPass.toFixed(2)} tokens per pass`
            : "") +
          "\n",
      );
    }
  } finally {
    model.dispose();
    draft?.dispose();
  }
  return 0;
}

/** The text of the file an option names (--grammar, --json-schema), or undefined. */
function readTextOption(file: unknown, name: string): string | undefined {
  if (file === undefined) return undefined;
  try {
    return fs.readFileSync(String(file), "utf8");
  } catch (e) {
    throw new TesseraError("ERR_IO", `--${name}: cannot read ${String(file)}: ${(e as Error).message}`);
  }
}

async function chatCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse("chat", args, {
    system: { type: "string" },
    "json-schema": { type: "string" },
    think: { type: "boolean" },
    "no-think": { type: "boolean" },
    template: { type: "string" },
  });
  if (values.help) {
    process.stdout.write(USAGE.chat + "\n");
    return 0;
  }
  if (values.think && values["no-think"]) throw new UsageError("chat", "--think and --no-think contradict each other; pass one");
  return runChat(values, positionals, {
    generationOptions: (v) => generationOptions("chat", v),
    openModel: (v, p) => openModel("chat", v, p),
    usageError: (message) => new UsageError("chat", message),
  });
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "run":
      return run(rest);
    case "chat":
      return chatCommand(rest);
    case "serve":
      return serve(rest);
    case "perplexity":
      return perplexityCommand(rest);
    case "explore":
      return exploreCommand(rest);
    case "embed":
      return embedCommand(rest);
    case "pull":
      return pull(rest);
    case "inspect":
      return inspectCommand(rest);
    case "info":
      return info(rest);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE_ALL + "\n");
      return command === undefined ? 1 : 0;
    default:
      throw new UsageError("", `unknown command "${command}"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`tessera: ${isTesseraError(e) ? `${e.code}: ` : ""}${message}\n`);
    if (e instanceof UsageError) process.stderr.write(e.command ? `Run "tessera ${e.command} --help" for its options.\n` : USAGE_ALL + "\n");
    else if (!isTesseraError(e)) process.stderr.write(USAGE_ALL + "\n");
    process.exitCode = 2;
  },
);
