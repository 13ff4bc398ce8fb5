/**
 * The explorer's routes (`tessera explore`), mounted on a Fastify app of lib/server/server.ts
 * so they share its error shape, logging, body limit and 503-while-loading behaviour:
 *
 *   GET  /                      the page (web/index.html)
 *   GET  /explore/<file>        its assets: web/*.css and the compiled front end in dist/web
 *   GET  /explore/api/model     shape and limits
 *   POST /explore/api/tokenize      { text }                        -> tokens with ids, pieces, bytes
 *   POST /explore/api/trace         { tokens }                      -> logit-lens grid, norms, MoE routing
 *   POST /explore/api/attention     { tokens, layer }               -> per-head attention of one layer
 *   POST /explore/api/embeddings    { tokens, selected? }           -> 2-D PCA of token embeddings
 *   POST /explore/api/distribution  { tokens, sampling }            -> the sampler's stages
 *   POST /explore/api/step          { session, tokens, sampling, seed } -> one generated token, KV length
 *
 * Every body is checked by a JSON schema (lengths bounded), then by lib/inspect/explore.ts
 * (vocabulary, context). Assets are a fixed list read from disk at start: no path from a
 * request reaches the file system.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";
import { Explorer, MAX_PROMPT_CHARS, MAX_TOKENS, type SamplingControls } from "../inspect/explore.js";
import type { Model } from "../model/model.js";
import { ApiError } from "./errors.js";
import { createServer, type ServerOptions, type TesseraServer } from "./server.js";

export interface ExploreOptions {
  /** Folder of the page's HTML and CSS. Default: the package's web/. */
  pageDir?: string;
  /** Folder of the compiled front end (web/src compiled by web/tsconfig.json). Default: the package's dist/web. */
  scriptDir?: string;
}

function packageRoot(): string {
  // dist/lib/server/explore.js and lib/server/explore.ts sit three and two levels below the root.
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.basename(path.dirname(path.dirname(here))) === "dist" ? path.resolve(here, "../../..") : path.resolve(here, "../..");
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};

/** name -> [content type, bytes] of every servable file in the two folders. */
function readAssets(dirs: string[]): Map<string, [string, Buffer]> {
  const assets = new Map<string, [string, Buffer]>();
  for (const dir of dirs) {
    if (!fs.existsSync(dir)) continue;
    for (const name of fs.readdirSync(dir)) {
      const type = TYPES[path.extname(name)];
      const file = path.join(dir, name);
      if (type && fs.statSync(file).isFile()) assets.set(name, [type, fs.readFileSync(file)]);
    }
  }
  return assets;
}

const tokens = { type: "array", minItems: 1, maxItems: MAX_TOKENS, items: { type: "integer", minimum: 0 } } as const;
const sampling = {
  type: "object",
  additionalProperties: false,
  required: ["temperature", "topK", "topP", "minP"],
  properties: {
    temperature: { type: "number", minimum: 0, maximum: 100 },
    topK: { type: "integer", minimum: 0, maximum: 1_000_000 },
    topP: { type: "number", minimum: 0, maximum: 1 },
    minP: { type: "number", minimum: 0, maximum: 1 },
  },
} as const;
const body = (properties: Record<string, unknown>, required: string[]) => ({ body: { type: "object", additionalProperties: false, required, properties } });

/**
 * Mounts the explorer on `app` (before it listens). `model` may still be loading: the API
 * answers 503 until it is ready, the page loads at once.
 */
export function registerExplore(app: FastifyInstance, model: Model | Promise<Model>, options: ExploreOptions = {}): { dispose(): void } {
  const root = packageRoot();
  const pageDir = options.pageDir ?? path.join(root, "web");
  const scriptDir = options.scriptDir ?? path.join(root, "dist", "web");
  const assets = readAssets([pageDir, scriptDir]);
  if (!assets.has("index.html") || !assets.has("main.js"))
    throw new ApiError(500, `the explorer's page is missing (${pageDir}/index.html, ${scriptDir}/main.js): run "npm run build:ts"`, "server_error");

  let explorer: Explorer | undefined;
  let failed = false;
  Promise.resolve(model).then(
    (m) => (explorer = new Explorer(m)),
    () => (failed = true),
  );
  // One explorer computation at a time: the page asks for four views at once, and each holds
  // a session's KV blocks while it runs; in turn they stay within the model's pool.
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => T | Promise<T>): Promise<T> => {
    const run = chain.then(fn);
    chain = run.catch(() => undefined);
    return run;
  };
  const ready = (): Explorer => {
    if (failed) throw new ApiError(503, "the model failed to load", "server_error", null, "model_load_failed");
    if (!explorer || explorer.model.disposed) throw new ApiError(503, "the model is still loading; retry shortly", "server_error", null, "model_loading", 1);
    return explorer;
  };

  const send = (name: string) => async (_req: unknown, reply: import("fastify").FastifyReply) => {
    const [type, bytes] = assets.get(name)!;
    return reply.header("content-type", type).header("cache-control", "no-cache").send(bytes);
  };
  app.get("/", send("index.html"));
  app.get<{ Params: { file: string } }>("/explore/:file", async (req, reply) => {
    if (!assets.has(req.params.file)) throw new ApiError(404, `no explorer asset ${req.params.file}`, "invalid_request_error", null, "not_found");
    return send(req.params.file)(req, reply);
  });

  app.get("/explore/api/model", async () => ready().info());
  app.post<{ Body: { text: string; addSpecial?: boolean } }>(
    "/explore/api/tokenize",
    { schema: body({ text: { type: "string", maxLength: MAX_PROMPT_CHARS }, addSpecial: { type: "boolean" } }, ["text"]) },
    async (req) => ({ tokens: ready().tokenize(req.body.text, req.body.addSpecial ?? true) }),
  );
  app.post<{ Body: { tokens: number[]; topK?: number } }>(
    "/explore/api/trace",
    { schema: body({ tokens, topK: { type: "integer", minimum: 1, maximum: 10 } }, ["tokens"]) },
    async (req) => serial(() => ready().trace(req.body.tokens, req.body.topK ?? 3)),
  );
  app.post<{ Body: { tokens: number[]; layer: number } }>(
    "/explore/api/attention",
    { schema: body({ tokens, layer: { type: "integer", minimum: 0 } }, ["tokens", "layer"]) },
    async (req) => serial(() => ready().attention(req.body.tokens, req.body.layer)),
  );
  app.post<{ Body: { tokens: number[]; selected?: number; k?: number } }>(
    "/explore/api/embeddings",
    { schema: body({ tokens: { ...tokens, minItems: 0 }, selected: { type: "integer", minimum: 0 }, k: { type: "integer", minimum: 1, maximum: 50 } }, ["tokens"]) },
    async (req) => serial(() => ready().embeddings(req.body.tokens, req.body.selected, req.body.k)),
  );
  app.post<{ Body: { tokens: number[]; sampling: SamplingControls; show?: number } }>(
    "/explore/api/distribution",
    { schema: body({ tokens, sampling, show: { type: "integer", minimum: 1, maximum: 200 } }, ["tokens", "sampling"]) },
    async (req) => serial(() => ready().distribution(req.body.tokens, req.body.sampling, req.body.show ?? 40)),
  );
  app.post<{ Body: { session: string; tokens: number[]; sampling: SamplingControls; seed: number } }>(
    "/explore/api/step",
    {
      schema: body(
        { session: { type: "string", pattern: "^[A-Za-z0-9_-]{1,64}$" }, tokens, sampling, seed: { type: "integer", minimum: 0, maximum: 0xffffffff } },
        ["session", "tokens", "sampling", "seed"],
      ),
    },
    async (req) => serial(() => ready().step(req.body.session, req.body.tokens, req.body.sampling, req.body.seed)),
  );
  return { dispose: () => explorer?.dispose() };
}

/** The serve stack (lib/server/server.ts) with the explorer mounted: what `tessera explore` runs. */
export function createExploreServer(options: ServerOptions & ExploreOptions): TesseraServer {
  const server = createServer(options);
  const explore = registerExplore(server.app, options.model, options);
  const close = server.close.bind(server);
  return Object.assign(server, {
    async close(deadlineMs?: number) {
      await close(deadlineMs);
      explore.dispose();
    },
  });
}
