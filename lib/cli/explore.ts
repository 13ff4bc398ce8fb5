/**
 * `tessera explore [MODEL] [--host 127.0.0.1] [--port 8090] [--threads N] [--backend B] [--ctx N]`:
 * the model explorer (lib/server/explore.ts): a local web page showing the tokens, the
 * embeddings, the logit lens, attention, the sampler's stages and step-by-step generation.
 * It listens at once (the API answers 503 while the model loads); SIGTERM or SIGINT stop it.
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_MODEL } from "../default-model.js";
import { TesseraError } from "../errors.js";
import { loadModel, type BackendChoice } from "../model/model.js";
import { createExploreServer } from "../server/explore.js";

export const EXPLORE_USAGE = `usage: tessera explore [model.gguf] [options]   (no model: the stories260K it ships)
  Serves a page that shows what the model does with a prompt: tokens, embeddings,
  logit lens, attention, the sampler's stages and generation one step at a time.
      --host H            address to bind (default 127.0.0.1: this machine only)
      --port P            (default 8090; 0 picks a free port)
      --ctx N             context size
      --threads N         CPU threads (default: all cores)
      --backend B         auto | cpu | cuda (default auto)`;

function int(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n)) throw new TesseraError("ERR_INVALID_ARGUMENT", `--${name} expects an integer, got "${value}"`);
  return n;
}

export async function exploreCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        host: { type: "string" },
        port: { type: "string" },
        ctx: { type: "string" },
        threads: { type: "string" },
        backend: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    throw new TesseraError("ERR_INVALID_ARGUMENT", `${(e as Error).message}\n${EXPLORE_USAGE}`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(EXPLORE_USAGE + "\n");
    return 0;
  }
  if (positionals.length > 1) throw new TesseraError("ERR_INVALID_ARGUMENT", "explore takes one model path (none: the model the package ships)");
  const port = int(values.port, "port") ?? 8090;
  if (port < 0 || port > 65535) throw new TesseraError("ERR_INVALID_ARGUMENT", `--port must be in 0..65535, got ${port}`);
  const file = positionals[0] ?? DEFAULT_MODEL;
  const model = loadModel(file, {
    backend: (values.backend ?? "auto") as BackendChoice,
    threads: int(values.threads, "threads"),
    contextSize: int(values.ctx, "ctx"),
  });
  const server = createExploreServer({ model, modelName: path.basename(file, ".gguf"), parallel: 4, log: () => {} });
  const address = await server.listen({ host: values.host ?? "127.0.0.1", port });
  process.stderr.write(`tessera: exploring ${path.basename(file)}: open ${address}/ in a browser (loading)\n`);
  model.then(
    (m) => process.stderr.write(`tessera: ${m.info.architecture}, ${m.info.nLayer} layers, ${m.info.backend}: ready\n`),
    (e: unknown) => process.stderr.write(`tessera: loading failed: ${e instanceof Error ? e.message : String(e)}\n`),
  );
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.stderr.write("tessera: shutting down\n");
      void server.close(2_000).then(async () => {
        (await model.catch(() => undefined))?.dispose();
        resolve();
      });
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  return 0;
}
