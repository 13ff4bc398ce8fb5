/**
 * `tessera serve [MODEL] [--host 127.0.0.1] [--port 8080] [--parallel N] [--queue N] [--ctx N]
 *  [--api-key KEY] [--kv-cache-type T] [--kv-cache-tokens N] [--threads N] [--backend B]
 *  [--chat-template-file F] [--max-tokens N] [--timeout S] [--idle-timeout S]`:
 * the OpenAI-compatible server (lib/server). It listens at once and answers 503 while the
 * model loads; SIGTERM or SIGINT stop it gracefully (in-flight requests get up to 10 s).
 * The API key can also come from TESSERA_API_KEY.
 */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_MODEL } from "../default-model.js";
import { TesseraError } from "../errors.js";
import { loadModel, type BackendChoice } from "../model/model.js";
import type { KvCacheType } from "../native.js";
import { createServer } from "../server/server.js";

export const SERVE_USAGE = `usage: tessera serve [model.gguf] [options]   (no model: the stories260K it ships)
      --host H            address to bind (default 127.0.0.1)
      --port P            (default 8080)
      --parallel N        requests generating at once (default 16)
      --queue N           requests waiting before 429 (default 64)
      --ctx N             context size per sequence
      --kv-cache-tokens N size of the shared KV block pool in tokens
      --kv-cache-type T   f16 | q8_0 | q4_0 (default f16)
      --api-key KEY       require Authorization: Bearer KEY (or TESSERA_API_KEY)
      --threads N         CPU threads (default: all cores)
      --backend B         auto | cpu | cuda (default auto)
      --name ID           the model id clients use (default: the file name)
      --draft MODEL       speculative decoding with this draft model (same vocabulary)
      --prompt-lookup     speculative decoding by prompt lookup
      --chat-template-file F  a Jinja chat template to use instead of the model's
      --max-tokens N      most tokens one request may generate (default: the context size)
      --timeout S         seconds one request may take, generation included (default 600)
      --idle-timeout S    seconds before an idle connection is closed (default 60)`;

function int(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new TesseraError("ERR_INVALID_ARGUMENT", `--${name} expects an integer, got "${value}"`);
  return n;
}

export async function serve(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      host: { type: "string" },
      port: { type: "string" },
      parallel: { type: "string" },
      queue: { type: "string" },
      ctx: { type: "string" },
      "kv-cache-tokens": { type: "string" },
      "kv-cache-type": { type: "string" },
      "api-key": { type: "string" },
      threads: { type: "string" },
      backend: { type: "string" },
      name: { type: "string" },
      draft: { type: "string" },
      "prompt-lookup": { type: "boolean" },
      "chat-template-file": { type: "string" },
      "max-tokens": { type: "string" },
      timeout: { type: "string" },
      "idle-timeout": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(SERVE_USAGE + "\n");
    return 0;
  }
  if (positionals.length > 1) throw new TesseraError("ERR_INVALID_ARGUMENT", "serve takes one model path (none: the model the package ships)");
  const file = positionals[0] ?? DEFAULT_MODEL;
  let chatTemplate: string | undefined;
  if (values["chat-template-file"] !== undefined) {
    try {
      chatTemplate = fs.readFileSync(values["chat-template-file"], "utf8");
    } catch (e) {
      throw new TesseraError("ERR_INVALID_ARGUMENT", `--chat-template-file: cannot read ${values["chat-template-file"]} (${(e as Error).message})`);
    }
  }
  const seconds = (name: "timeout" | "idle-timeout") => {
    const v = int(values[name], name);
    if (v !== undefined && v < 1) throw new TesseraError("ERR_INVALID_ARGUMENT", `--${name} expects a positive number of seconds, got ${v}`);
    return v === undefined ? undefined : v * 1000;
  };
  const model = loadModel(file, {
    backend: (values.backend ?? "auto") as BackendChoice,
    threads: int(values.threads, "threads"),
    contextSize: int(values.ctx, "ctx"),
    kvCacheTokens: int(values["kv-cache-tokens"], "kv-cache-tokens"),
    kvCacheType: values["kv-cache-type"] as KvCacheType | undefined,
  });
  const draft = values.draft
    ? model.then((m) => loadModel(values.draft!, { backend: (values.backend ?? "auto") as BackendChoice, threads: int(values.threads, "threads"), contextSize: m.info.contextSize }))
    : undefined;
  const speculative = draft
    ? draft.then((d) => ({ draft: d, promptLookup: values["prompt-lookup"] ?? false }))
    : values["prompt-lookup"]
      ? { promptLookup: true }
      : undefined;
  const server = createServer({
    model,
    speculative,
    modelName: values.name ?? path.basename(file, ".gguf"),
    apiKey: values["api-key"] ?? process.env.TESSERA_API_KEY,
    parallel: int(values.parallel, "parallel"),
    maxQueue: int(values.queue, "queue"),
    maxTokens: int(values["max-tokens"], "max-tokens"),
    requestTimeoutMs: seconds("timeout"),
    idleTimeoutMs: seconds("idle-timeout"),
    chatTemplate,
  });
  const address = await server.listen({ host: values.host ?? "127.0.0.1", port: int(values.port, "port") ?? 8080 });
  process.stderr.write(`tessera: serving ${path.basename(file)} at ${address} (loading)\n`);
  model.then(
    (m) => process.stderr.write(`tessera: ${m.info.architecture}, ${m.info.backend}, context ${m.info.contextSize}, KV pool ${m.info.kvCacheTokens} tokens: ready\n`),
    (e: unknown) => process.stderr.write(`tessera: loading failed: ${e instanceof Error ? e.message : String(e)}\n`),
  );
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.stderr.write("tessera: shutting down\n");
      server.close(10_000).then(async () => {
        const m = await model.catch(() => undefined);
        m?.dispose();
        (await draft?.catch(() => undefined))?.dispose();
        resolve();
      });
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  return 0;
}
