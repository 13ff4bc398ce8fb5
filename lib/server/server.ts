/**
 * An OpenAI-compatible HTTP server on one model's continuous-batching engine, on Fastify
 * (JSON-schema validation of every body, no hand-rolled HTTP parsing):
 *
 *   POST /v1/completions, GET /v1/models[/:id], GET /health, GET /metrics,
 *   POST /tokenize, POST /detokenize, POST /v1/chat/completions (chat-completions.ts)
 *
 * Every request is a generation on the shared engine, so concurrent clients are batched
 * together. A client that disconnects aborts its request, which frees its KV blocks at
 * once. At most `parallel` requests generate and `maxQueue` wait; beyond that 429 with
 * Retry-After; while the model loads, 503. `close()` stops accepting, lets in-flight
 * requests finish until a deadline, then aborts them. A request that runs past
 * `requestTimeoutMs` is aborted (504); a connection idle for `idleTimeoutMs` with no request
 * in flight, or whose client stopped reading a stream, is closed. Binds 127.0.0.1 unless told
 * otherwise; with an API key every /v1 route (and tokenize/detokenize) needs
 * `Authorization: Bearer <key>`, compared in constant time. One JSON log line per request.
 */
import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { compileChatTemplate } from "../chat/template.js";
import { TesseraError } from "../errors.js";
import type { Completion, GenerateOptions, Generation, GenerationChunk } from "../generate/generate.js";
import type { SpeculativeOptions } from "../generate/speculative.js";
import type { Model } from "../model/model.js";
import { Admission } from "./admission.js";
import { registerChatCompletions } from "./chat-completions.js";
import {
  completionBodySchema,
  completionLogprobs,
  completionPrompt,
  finishReason,
  generateOptions,
  usageOf,
  type CompletionBody,
  type Usage,
} from "./completions.js";
import { ApiError, badRequest, toApiError } from "./errors.js";
import { ServerMetrics } from "./metrics.js";
import { registerEmbeddings } from "./embeddings.js";

export interface ServerOptions {
  /** The model, or its loading promise (requests get 503 until it resolves). */
  model: Model | Promise<Model>;
  /** The id clients name in `model` and see in /v1/models. Default: the model's name, or "tessera". */
  modelName?: string;
  /** Require `Authorization: Bearer <apiKey>` on /v1 routes and tokenize/detokenize. */
  apiKey?: string;
  /** Requests generating at once. Default 16. */
  parallel?: number;
  /** Requests waiting for a slot before 429. Default 64. */
  maxQueue?: number;
  /** Largest request body in bytes. Default 1 MiB. */
  bodyLimit?: number;
  /** Largest max_tokens a request may ask for. Default: the model's context size. */
  maxTokens?: number;
  /** Whole-request limit in milliseconds (receiving it and generating): past it, 504. Default 10 minutes. */
  requestTimeoutMs?: number;
  /**
   * A connection with no request in flight that sends nothing for this long, or whose client
   * stops reading a stream for this long, is closed (its generation aborted). Default 60 s.
   */
  idleTimeoutMs?: number;
  /** Receives one object per request; default: a JSON line on stderr. Pass `() => {}` to silence. */
  log?: (line: Record<string, unknown>) => void;
  /** A chat template (Jinja text) for /v1/chat/completions instead of the model's own. */
  chatTemplate?: string;
  /** Speculative decoding for every request (a draft model or prompt lookup). */
  speculative?: SpeculativeOptions | Promise<SpeculativeOptions | undefined>;
}

export interface TesseraServer {
  readonly app: FastifyInstance;
  readonly metrics: ServerMetrics;
  /** Starts listening; resolves to the address (e.g. http://127.0.0.1:8080). */
  listen(options?: { host?: string; port?: number }): Promise<string>;
  /** Stops accepting, waits for in-flight requests up to `deadlineMs`, aborts the rest, closes. */
  close(deadlineMs?: number): Promise<void>;
}

interface InFlight {
  abort: AbortController;
  done: Promise<void>;
}

/** Timing and token accounting of one generation request (metrics and its log line). */
export interface RequestMeter {
  /** `n` tokens of choice `index` arrived now. */
  tokens(index: number, n: number): void;
  /** The request's usage and each choice's finish reason. */
  finish(usage: Usage, finishReasons: string[]): void;
}

/** The route handlers' view of the server (chat and embeddings register through it). */
export interface ServerContext {
  readonly app: FastifyInstance;
  readonly metrics: ServerMetrics;
  readonly admission: Admission;
  readonly modelName: string;
  readonly maxTokens: () => number;
  /** The model, or 503 while it loads. */
  model(): Model;
  /** The model the request names must be the served one. */
  checkModel(name: string | undefined): void;
  /**
   * Runs a generation request: an abort signal tied to the client's connection, a slot from
   * admission (released after) and the in-flight bookkeeping for shutdown.
   */
  run<T>(reply: FastifyReply, fn: (signal: AbortSignal) => Promise<T>): Promise<T>;
  /**
   * A server-sent-events response written by `body` through send(); it ends with
   * `data: [DONE]`, or with an error event when body throws.
   */
  stream(req: FastifyRequest, reply: FastifyReply, body: () => Promise<void>): Promise<FastifyReply>;
  /** One SSE event with a JSON payload; false once the client is gone. */
  send(reply: FastifyReply, payload: unknown): boolean;
  /** Collects n generations concurrently, calling onChunk as chunks arrive, with timing metrics. */
  collect(req: FastifyRequest, gens: Generation[], onChunk?: (index: number, chunk: GenerationChunk) => void): Promise<Completion[]>;
  /** A meter for a generation request (started when the request arrived). */
  meter(req: FastifyRequest): RequestMeter;
  /** Adds fields to the request's log line. */
  note(req: FastifyRequest, fields: Record<string, unknown>): void;
  /** Options every generation of the server gets (speculative decoding). */
  readonly serverOptions: () => GenerateOptions;
  /** The chat template the server was started with, if any. */
  readonly chatTemplate: string | undefined;
}

const OPEN_ROUTES = new Set(["/health", "/metrics"]);

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

export function createServer(options: ServerOptions): TesseraServer {
  let model: Model | undefined;
  let loadError: unknown;
  let speculative: SpeculativeOptions | undefined;
  void Promise.resolve(options.speculative).then(
    (o) => {
      speculative = o;
    },
    (e: unknown) => {
      loadError = e;
    },
  );
  const loading = Promise.resolve(options.model).then(
    (m) => {
      model = m;
    },
    (e: unknown) => {
      loadError = e;
    },
  );
  const parallel = options.parallel ?? 16;
  const maxQueue = options.maxQueue ?? 64;
  for (const [name, v] of [["parallel", parallel], ["maxQueue", maxQueue]] as const)
    if (!Number.isInteger(v) || v < (name === "parallel" ? 1 : 0))
      throw new TesseraError("ERR_INVALID_ARGUMENT", `${name} must be a non-negative integer (parallel at least 1), got ${String(v)}`);
  if (options.maxTokens !== undefined && (!Number.isInteger(options.maxTokens) || options.maxTokens < 1))
    throw new TesseraError("ERR_INVALID_ARGUMENT", `maxTokens must be a positive integer, got ${String(options.maxTokens)}`);
  // A template that does not parse is refused at start, not on every request.
  if (options.chatTemplate !== undefined) compileChatTemplate(options.chatTemplate);
  const admission = new Admission(parallel, maxQueue);
  const log = options.log ?? ((line) => process.stderr.write(JSON.stringify(line) + "\n"));
  const keyDigest = options.apiKey !== undefined ? digest(options.apiKey) : undefined;
  const inFlight = new Set<InFlight>();
  const notes = new WeakMap<FastifyRequest, Record<string, unknown>>();
  /** Why the server aborted a reply's generation (the request timeout), to report instead of "aborted". */
  const abortReasons = new WeakMap<FastifyReply, ApiError>();
  const requestTimeoutMs = options.requestTimeoutMs ?? 600_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  for (const [name, v] of [["requestTimeoutMs", requestTimeoutMs], ["idleTimeoutMs", idleTimeoutMs]] as const)
    if (!Number.isInteger(v) || v < 1) throw new TesseraError("ERR_INVALID_ARGUMENT", `${name} must be a positive integer of milliseconds, got ${String(v)}`);
  const started = Math.floor(Date.now() / 1000);
  let closing = false;

  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimit ?? 1 << 20,
    // Receiving the request counts against the same limit as the whole of it.
    requestTimeout: requestTimeoutMs,
    keepAliveTimeout: Math.min(10_000, idleTimeoutMs),
    connectionTimeout: idleTimeoutMs,
    genReqId: () => randomUUID(),
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  });
  const metrics = new ServerMetrics({
    running: () => admission.running,
    waiting: () => admission.waiting,
    kvUsage: () => (model && !model.disposed ? model.stats().inUse / model.stats().total : 0),
    blocksInUse: () => (model && !model.disposed ? model.stats().inUse : 0),
    blocksTotal: () => (model && !model.disposed ? model.stats().total : 0),
  });

  const modelName = (): string => options.modelName ?? model?.info.name ?? "tessera";

  const ctx: ServerContext = {
    app,
    metrics,
    admission,
    get modelName() {
      return modelName();
    },
    maxTokens: () => options.maxTokens ?? model?.info.contextSize ?? 4096,
    model() {
      if (closing) throw new ApiError(503, "the server is shutting down", "server_error", null, "shutting_down", 1);
      if (loadError) throw new ApiError(503, "the model failed to load", "server_error", null, "model_load_failed");
      if (!model) throw new ApiError(503, "the model is still loading; retry shortly", "server_error", null, "model_loading", 1);
      return model;
    },
    checkModel(name) {
      if (name !== undefined && name !== modelName())
        throw new ApiError(404, `the model '${name}' does not exist; this server serves '${modelName()}'`, "invalid_request_error", "model", "model_not_found");
    },
    async run(reply, fn) {
      const abort = new AbortController();
      // The response closing before it finished means the client went away.
      const onClose = () => {
        if (!reply.raw.writableFinished) abort.abort();
      };
      reply.raw.on("close", onClose);
      const timer = setTimeout(() => {
        abortReasons.set(reply, new ApiError(504, `the request ran past this server's limit of ${requestTimeoutMs} ms; ask for fewer tokens`, "server_error", null, "request_timeout"));
        abort.abort();
      }, requestTimeoutMs);
      timer.unref();
      let finish!: () => void;
      const entry: InFlight = { abort, done: new Promise<void>((r) => (finish = r)) };
      inFlight.add(entry);
      try {
        await admission.acquire(abort.signal);
        try {
          return await fn(abort.signal);
        } finally {
          admission.release();
        }
      } catch (e) {
        throw abortReasons.get(reply) ?? e;
      } finally {
        clearTimeout(timer);
        reply.raw.off("close", onClose);
        inFlight.delete(entry);
        finish();
      }
    },
    async stream(req, reply, body) {
      reply.hijack();
      reply.raw.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" });
      try {
        await body();
      } catch (e) {
        // The status line is sent: the error goes into the stream (and the log line).
        const api = abortReasons.get(reply) ?? toApiError(e);
        ctx.note(req, { error: api.code ?? api.type, errorStatus: api.status });
        ctx.send(reply, api.body());
      }
      if (!reply.raw.destroyed && !reply.raw.writableEnded) reply.raw.end("data: [DONE]\n\n");
      return reply;
    },
    send(reply, payload) {
      if (reply.raw.destroyed || reply.raw.writableEnded) return false;
      reply.raw.write(`data: ${JSON.stringify(payload)}\n\n`);
      return true;
    },
    async collect(req, gens, onChunk) {
      const meter = ctx.meter(req);
      const out = await Promise.all(
        gens.map(async (gen, index) => {
          let text = "";
          const tokens: number[] = [];
          const logprobs = [];
          for await (const chunk of gen) {
            meter.tokens(index, chunk.tokens.length);
            text += chunk.text;
            tokens.push(...chunk.tokens);
            if (chunk.logprobs) logprobs.push(...chunk.logprobs);
            onChunk?.(index, chunk);
          }
          const c: Completion = { text, tokens, stopReason: gen.stopReason ?? "length", stats: gen.stats };
          if (gen.confidence) {
            c.logprobs = logprobs;
            c.confidence = gen.confidence;
          }
          return c;
        }),
      );
      meter.finish(
        usageOf(out),
        out.map((c) => finishReason(c.stopReason)),
      );
      return out;
    },
    meter(req) {
      const t0 = (req as unknown as { startedAt: number }).startedAt;
      let first: number | undefined;
      const last: number[] = [];
      return {
        tokens(index, n) {
          if (n === 0) return;
          const now = performance.now();
          if (first === undefined) {
            first = now;
            metrics.ttft.observe((now - t0) / 1000);
          }
          if (last[index] !== undefined) for (let i = 0; i < n; i++) metrics.itl.observe((now - last[index]) / 1000 / n);
          last[index] = now;
        },
        finish(usage, reasons) {
          metrics.promptTokens.inc({}, usage.prompt_tokens);
          metrics.cachedTokens.inc({}, usage.prompt_tokens_details.cached_tokens);
          metrics.generationTokens.inc({}, usage.completion_tokens);
          metrics.e2e.observe((performance.now() - t0) / 1000);
          for (const r of reasons) metrics.success.inc({ finished_reason: r });
          ctx.note(req, {
            promptTokens: usage.prompt_tokens,
            cachedTokens: usage.prompt_tokens_details.cached_tokens,
            completionTokens: usage.completion_tokens,
            ttftMs: first === undefined ? null : Math.round(first - t0),
          });
        },
      };
    },
    note(req, fields) {
      notes.set(req, { ...(notes.get(req) ?? {}), ...fields });
    },
    serverOptions: () => (speculative ? { speculative } : {}),
    chatTemplate: options.chatTemplate,
  };

  function logLine(req: FastifyRequest, status: number): void {
    const t0 = (req as unknown as { startedAt: number }).startedAt;
    const route = req.routeOptions?.url ?? req.url;
    metrics.requests.inc({ route, status: String(status) });
    log({ id: req.id, method: req.method, route, status, ms: Math.round(performance.now() - t0), ...(notes.get(req) ?? {}) });
  }

  app.addHook("onRequest", async (req) => {
    (req as unknown as { startedAt: number }).startedAt = performance.now();
    if (keyDigest && !OPEN_ROUTES.has(req.url.split("?")[0])) {
      const header = req.headers.authorization ?? "";
      const given = header.startsWith("Bearer ") ? header.slice(7) : "";
      if (!timingSafeEqual(digest(given), keyDigest))
        throw new ApiError(401, "a valid API key is required: send Authorization: Bearer <key>", "authentication_error", null, "invalid_api_key");
    }
  });
  app.addHook("onResponse", async (req, reply) => logLine(req, reply.statusCode));

  // Idle connections: with a 'timeout' listener Node leaves timed-out sockets to us. Close
  // one that has no request in flight, or whose client stopped reading (writes pending);
  // a request still generating its non-streamed answer is silent, not idle.
  const active = new WeakMap<object, number>();
  app.addHook("onRequest", async (req, reply) => {
    const socket = req.raw.socket;
    active.set(socket, (active.get(socket) ?? 0) + 1);
    reply.raw.once("close", () => active.set(socket, (active.get(socket) ?? 1) - 1));
  });
  app.server.on("timeout", (socket: import("node:net").Socket) => {
    if ((active.get(socket) ?? 0) === 0 || socket.writableLength > 0) socket.destroy();
  });

  app.setErrorHandler((error, _req, reply) => {
    let api: ApiError;
    const e = error as { validation?: Array<{ instancePath?: string; params?: Record<string, unknown>; message?: string }>; statusCode?: number; code?: string; message: string };
    if (e.validation) {
      const v = e.validation[0];
      const extra = v?.params?.additionalProperty;
      const path = (v?.instancePath ?? "").replace(/^\//, "").replace(/\//g, ".");
      const param = typeof extra === "string" ? (path ? `${path}.${extra}` : extra) : path || null;
      api = badRequest(
        typeof extra === "string" ? `unrecognized request argument supplied: ${param}` : `invalid request: ${param ?? "body"} ${v?.message ?? "is invalid"}`,
        param,
        typeof extra === "string" ? "unrecognized_argument" : "invalid_value",
      );
    } else if (e.statusCode === 413) api = new ApiError(413, `the request body is larger than this server's limit of ${options.bodyLimit ?? 1 << 20} bytes`, "invalid_request_error", null, "request_too_large");
    else if (e.statusCode === 400 || e.statusCode === 415) api = badRequest(`malformed request: ${e.message}`, null, "invalid_body");
    else if (e.statusCode === 404) api = new ApiError(404, e.message, "invalid_request_error", null, "not_found");
    else api = toApiError(error);
    if (api.retryAfter !== undefined) reply.header("retry-after", String(api.retryAfter));
    reply.code(api.status === 499 ? 400 : api.status).send(api.body());
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(new ApiError(404, `no route ${req.method} ${req.url}`, "invalid_request_error", null, "not_found").body());
  });

  app.get("/health", async (_req, reply) => {
    if (loadError) return reply.code(503).send({ status: "error", error: "the model failed to load" });
    if (!model) return reply.code(503).send({ status: "loading" });
    if (closing) return reply.code(503).send({ status: "shutting_down" });
    return { status: "ok" };
  });

  app.get("/metrics", async (_req, reply) => {
    reply.header("content-type", "text/plain; version=0.0.4; charset=utf-8");
    return metrics.text();
  });

  const modelObject = () => ({ id: modelName(), object: "model", created: started, owned_by: "tessera" });
  app.get("/v1/models", async () => {
    ctx.model();
    return { object: "list", data: [modelObject()] };
  });
  app.get<{ Params: { id: string } }>("/v1/models/:id", async (req) => {
    ctx.model();
    ctx.checkModel(req.params.id);
    return modelObject();
  });

  app.post<{ Body: { content: string; add_special?: boolean; parse_special?: boolean } }>(
    "/tokenize",
    {
      schema: {
        body: {
          type: "object",
          required: ["content"],
          additionalProperties: false,
          properties: { content: { type: "string" }, add_special: { type: "boolean" }, parse_special: { type: "boolean" } },
        },
      },
    },
    async (req) => {
      const m = ctx.model();
      return { tokens: m.tokenizer.encode(req.body.content, { addSpecial: req.body.add_special ?? false, parseSpecial: req.body.parse_special ?? false }) };
    },
  );
  app.post<{ Body: { tokens: number[] } }>(
    "/detokenize",
    {
      schema: {
        body: { type: "object", required: ["tokens"], additionalProperties: false, properties: { tokens: { type: "array", items: { type: "integer", minimum: 0 } } } },
      },
    },
    async (req) => {
      const m = ctx.model();
      const bad = req.body.tokens.findIndex((t) => t >= m.info.nVocab);
      if (bad >= 0) throw badRequest(`token ${req.body.tokens[bad]} at index ${bad} is not in the vocabulary (0..${m.info.nVocab - 1})`, `tokens.${bad}`);
      return { content: m.tokenizer.decode(req.body.tokens) };
    },
  );

  app.post<{ Body: CompletionBody }>("/v1/completions", { schema: { body: completionBodySchema } }, async (req, reply) => {
    const m = ctx.model();
    const b = req.body;
    ctx.checkModel(b.model);
    const opts = { ...ctx.serverOptions(), ...generateOptions(b, 16, ctx.maxTokens()) };
    if (b.logprobs != null) opts.logprobs = b.logprobs;
    const prompt = completionPrompt(b);
    const n = b.n ?? 1;
    const id = `cmpl-${req.id}`;
    const created = Math.floor(Date.now() / 1000);
    return ctx.run(reply, async (signal) => {
      const gens = n > 1 ? m.generateMany(prompt, { ...opts, n, signal }) : [m.generate(prompt, { ...opts, signal })];
      const base = { id, object: "text_completion", created, model: modelName() };
      if (!b.stream) {
        const out = await ctx.collect(req, gens);
        return {
          ...base,
          choices: out.map((c, index) => ({
            index,
            text: c.text,
            logprobs: c.logprobs ? completionLogprobs(m.tokenizer, c.logprobs, 0) : null,
            finish_reason: finishReason(c.stopReason),
          })),
          usage: usageOf(out),
        };
      }
      return ctx.stream(req, reply, async () => {
        const offsets = new Array<number>(n).fill(0);
        const out = await ctx.collect(req, gens, (index, chunk) => {
          const lp = chunk.logprobs ? completionLogprobs(m.tokenizer, chunk.logprobs, offsets[index]) : null;
          offsets[index] += chunk.text.length;
          ctx.send(reply, { ...base, choices: [{ index, text: chunk.text, logprobs: lp, finish_reason: null }] });
        });
        for (const [index, c] of out.entries()) ctx.send(reply, { ...base, choices: [{ index, text: "", logprobs: null, finish_reason: finishReason(c.stopReason) }] });
        if (b.stream_options?.include_usage) ctx.send(reply, { ...base, choices: [], usage: usageOf(out) });
      });
    });
  });

  registerChatCompletions(ctx);
  registerEmbeddings(ctx);

  return {
    app,
    metrics,
    async listen(o = {}) {
      return app.listen({ host: o.host ?? "127.0.0.1", port: o.port ?? 8080 });
    },
    async close(deadlineMs = 10_000) {
      closing = true;
      admission.rejectWaiting(new ApiError(503, "the server is shutting down", "server_error", null, "shutting_down"));
      const all = Promise.all([...inFlight].map((f) => f.done));
      const timer = new Promise<void>((r) => setTimeout(r, deadlineMs).unref());
      await Promise.race([all, timer]);
      for (const f of inFlight) f.abort.abort();
      await all;
      await app.close();
      await loading;
    },
  };
}

/** The context the route modules (chat, embeddings) register with. @internal */
export type { ServerContext as RouteContext };
