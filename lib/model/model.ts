/**
 * loadModel and the Model it returns: reads and checks the GGUF header in TypeScript, builds
 * the native plan from the architecture description, maps the weights natively, and owns
 * the tokenizer and the sessions created from it.
 */
import os from "node:os";
import { optionalBoolean, optionalFunction, optionalSignal, optionsObject, rejectUnknownOptions } from "../arguments.js";
import { TesseraError, fromNativeError } from "../errors.js";
import { architecture } from "../arch/registry.js";
import { DEFAULT_MODEL } from "../default-model.js";
import { KV_BLOCK_SIZE } from "../engine/blocks.js";
import { Engine, type EngineStats } from "../engine/engine.js";
import { Generation, checkGenerateOptions, complete, type Completion, type GenerateOptions, type GenerationTarget } from "../generate/generate.js";
import { readGGUF } from "../gguf/reader.js";
import { TokenEmbeddings, type EmbeddingQuery, type NearToken } from "../inspect/embeddings.js";
import { GGML_TYPE_INFO, type GGUFFile } from "../gguf/types.js";
import { KV_TYPES, native, type KvCacheType, type NativeModel, type NativePlan } from "../native.js";
import { tokenizerFromGGUF, type Tokenizer } from "../tokenizer/index.js";
import type { Hyperparameters } from "./hparams.js";
import { buildPlan, chooseRopeFactors } from "./plan.js";
import { Chat, chat, type ChatGeneration, type ChatOptions, type CreateChatOptions } from "../chat/chat.js";
import { readChatTemplates } from "../chat/gguf.js";
import type { ChatMessage } from "../chat/types.js";
import { Session, type SessionOptions } from "./session.js";
import { embed, type EmbedInput, type EmbedOptions } from "../embeddings/embed.js";

export type BackendChoice = "auto" | "cpu" | "cuda";

export interface LoadProgress {
  phase: "metadata" | "weights" | "ready";
  /** 0..1 */
  progress: number;
}

export interface LoadOptions {
  /** "auto" uses CUDA when a device is available, else the CPU. Default "auto". */
  backend?: BackendChoice;
  /** CPU threads. Default: the number of cores. */
  threads?: number;
  /** Most tokens one sequence (a session or a generation) may hold. Default: the training context, at most 4096. */
  contextSize?: number;
  /**
   * Size of the KV block pool every sequence of the model shares, in tokens (rounded up to
   * whole blocks of 32). Memory is committed as blocks are first used, so this is a bound,
   * not an allocation. Default: 4 x contextSize.
   */
  kvCacheTokens?: number;
  /** The same bound in bytes (the smaller of the two applies when both are given). */
  kvCacheBytes?: number;
  /** How keys and values are stored: "f16" (default), "q8_0" (about half the bytes) or "q4_0". */
  kvCacheType?: KvCacheType;
  /** Most rows (prompt tokens and decode steps of all sequences) per forward pass. Default 512. */
  batchSize?: number;
  /**
   * Map the file (default true): weights are read in place, and pages the kernels do not
   * copy stay reclaimable page cache. A mapped file must not be truncated or rewritten
   * while the model is loaded: touching a page past its new end raises SIGBUS, which ends
   * the process. false reads the whole file into memory at load instead (more resident
   * memory, nothing touches the file afterwards).
   */
  mmap?: boolean;
  /**
   * Scan every weight for NaN and Infinity before preparing it (llama.cpp's
   * --check-tensors): float tensors value by value, quantized ones by their block scales.
   * A bad tensor fails the load with ERR_NON_FINITE naming it. Costs one read of the file.
   */
  checkTensors?: boolean;
  /** Cancels the load, checked between tensors: what was built is freed and the promise rejects with ERR_ABORTED. */
  signal?: AbortSignal;
  /**
   * "metadata" (0) once the options are checked, then "weights" as tensors are read, checked
   * and prepared (0..1 by bytes, never decreasing, polled every 10 ms while the native load
   * runs, 1 at its end), then "ready" (1).
   */
  onProgress?: (progress: LoadProgress) => void;
}

export interface ModelInfo extends Hyperparameters {
  name: string | undefined;
  nVocab: number;
  /** Tensor count by storage type, e.g. { Q4_0: 155, F32: 65 }. */
  tensorTypes: Record<string, number>;
  parameterCount: number;
  fileBytes: number;
  /** The backend running the model and, for "auto" that fell back to the CPU, why. */
  backend: "cpu" | "cuda";
  backendNote: string | undefined;
  threads: number;
  /** Most tokens one sequence may hold. */
  contextSize: number;
  kvCacheType: KvCacheType;
  /** Tokens the KV block pool holds (every sequence together). */
  kvCacheTokens: number;
}

/** Models below this many weight bytes evaluate on the calling thread: the hop costs more. */
const SYNCHRONOUS_EVAL_MAX_BYTES = 32 << 20;

/** How often onProgress polls the native load's counter. */
const PROGRESS_POLL_MS = 10;

function chooseBackend(choice: BackendChoice): { backend: "cpu" | "cuda"; note: string | undefined } {
  if (choice !== "auto" && choice !== "cpu" && choice !== "cuda")
    throw new TesseraError("ERR_INVALID_ARGUMENT", `backend must be "auto", "cpu" or "cuda", got ${JSON.stringify(choice)}`);
  const cuda = native().systemInfo().cuda;
  if (choice === "cpu") return { backend: "cpu", note: undefined };
  if (cuda.available) return { backend: "cuda", note: cuda.deviceName };
  if (choice === "cuda")
    throw new TesseraError("ERR_BACKEND_UNAVAILABLE", `backend "cuda" was requested but ${cuda.reason}; use backend "cpu" or "auto"`);
  return { backend: "cpu", note: `CUDA unavailable: ${cuda.reason}` };
}

function describeTypes(file: GGUFFile): { tensorTypes: Record<string, number>; parameterCount: number } {
  const tensorTypes: Record<string, number> = {};
  let parameterCount = 0;
  for (const t of file.tensors) {
    const name = GGML_TYPE_INFO[t.type]?.name ?? String(t.type);
    tensorTypes[name] = (tensorTypes[name] ?? 0) + 1;
    parameterCount += t.elementCount;
  }
  return { tensorTypes, parameterCount };
}

/** The largest count the native side takes for a size (positions, rows, blocks). */
const MAX_COUNT = 1 << 24;

function positiveInteger(value: number | undefined, fallback: number, name: string, max = MAX_COUNT): number {
  const v = value ?? fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > max)
    throw new TesseraError("ERR_INVALID_ARGUMENT", `${name} must be an integer in 1..${max}, got ${String(value)}`);
  return v;
}

export class Model {
  readonly info: ModelInfo;
  readonly tokenizer: Tokenizer;
  private nativeModel: NativeModel | undefined;
  private readonly engine: Engine;
  private readonly sessions = new Set<Session>();
  /** Identifies this model's sessions (a session of another model is refused). */
  private readonly id = {};

  /**
   * The file's chat templates: `tokenizer.chat_template` as "default", and named variants
   * (`tokenizer.chat_template.<name>`) by name. Empty for a model without one; chat then
   * uses ChatML.
   */
  readonly chatTemplates: Readonly<Record<string, string>>;

  /** @internal Use loadModel(). */
  constructor(
    nativeModel: NativeModel,
    engine: Engine,
    info: ModelInfo,
    tokenizer: Tokenizer,
    private readonly contextSize: number,
    private readonly embeddings: TokenEmbeddings,
    chatTemplates: Record<string, string> = {},
  ) {
    this.nativeModel = nativeModel;
    this.engine = engine;
    this.info = info;
    this.tokenizer = tokenizer;
    this.chatTemplates = Object.freeze({ ...chatTemplates });
  }

  /**
   * One chat turn over `messages` with the model's chat template: iterate it for chunks
   * ({ text, reasoning?, toolCalls? }) or await it for the completion. Generation options
   * (temperature, maxTokens, stop, signal, ...) pass through. See lib/chat/chat.ts.
   */
  chat(messages: ChatMessage[], options: ChatOptions = {}): ChatGeneration {
    this.live();
    this.decoderOnly();
    return chat(this, messages, options);
  }

  /** A conversation whose KV cache carries over between turns (only new tokens are evaluated). */
  createChat(options: CreateChatOptions = {}): Chat {
    this.live();
    this.decoderOnly();
    return new Chat(this, options);
  }

  /** A conversation: its tokens' keys and values stay cached between calls. */
  createSession(options?: SessionOptions): Session {
    this.live();
    this.decoderOnly();
    options = optionsObject(options, "createSession");
    rejectUnknownOptions(options, SESSION_OPTION_KEYS, "createSession");
    const contextSize = positiveInteger(options.contextSize, this.contextSize, "contextSize");
    if (contextSize > this.contextSize)
      throw new TesseraError(
        "ERR_INVALID_ARGUMENT",
        `contextSize ${contextSize} exceeds the model's ${this.contextSize}; load the model with contextSize: ${contextSize}`,
      );
    const batchSize = positiveInteger(options.batchSize, 512, "batchSize");
    const session = new Session(
      this.engine,
      this.id,
      this.engine.createSequence(),
      contextSize,
      this.info.nVocab,
      batchSize,
      (s) => this.sessions.delete(s),
      { nLayer: this.info.nLayer, nHead: this.info.nHead, nExpertUsed: this.info.moe?.nExpertUsed ?? 0 },
    );
    this.sessions.add(session);
    return session;
  }

  /**
   * Streams generated text; see GenerateOptions. Any number of generations may run at once:
   * the engine batches them, and each gives exactly what it gives alone.
   */
  generate(prompt: string | ArrayLike<number>, options?: GenerateOptions): Generation {
    this.live();
    this.decoderOnly();
    options = optionsObject(options, "generate");
    checkGenerateOptions(options);
    const session = options.session;
    if (session !== undefined && !(session instanceof Session))
      throw new TesseraError("ERR_INVALID_ARGUMENT", "options.session must be a Session created by model.createSession()");
    if (session && session.modelId !== this.id)
      throw new TesseraError("ERR_INVALID_ARGUMENT", "options.session belongs to another model; create it with this model's createSession()");
    return new Generation(this.tokenizer, (owner) => (session ? sessionTarget(session, owner) : this.ownTarget()), prompt, options);
  }

  /** Generates to the end and returns the whole text, tokens and why it stopped. Bad options reject. */
  complete(prompt: string | ArrayLike<number>, options?: GenerateOptions): Promise<Completion> {
    try {
      return complete(this.generate(prompt, options));
    } catch (e) {
      return Promise.reject(e); // a promise API reports bad arguments through the promise too
    }
  }

  /**
   * n continuations of one prompt (the branches of a reasoning tree, best-of-n sampling):
   * the prompt's keys and values are computed once and its blocks shared by every branch
   * (copy-on-write); each branch then runs as its own sequence. Branch i samples with seed
   * `seed + i` when a seed is given, so branch i gives exactly what
   * `generate(prompt, { ...options, seed: seed + i })` gives alone.
   */
  generateMany(prompt: string | ArrayLike<number>, options: GenerateOptions & { n: number }): Generation[] {
    this.live();
    this.decoderOnly();
    if (options === null || typeof options !== "object") throw new TesseraError("ERR_INVALID_ARGUMENT", "generateMany options must be an object");
    checkGenerateOptions(options, ["n"], "generateMany");
    const { n, session, ...rest } = options;
    if (!Number.isInteger(n) || n < 1 || n > 1024) throw new TesseraError("ERR_INVALID_ARGUMENT", `n must be an integer in 1..1024, got ${String(n)}`);
    if (session !== undefined) throw new TesseraError("ERR_INVALID_ARGUMENT", "generateMany runs on sequences of its own; it takes no session");
    if (rest.seed !== undefined && !Number.isInteger(rest.seed)) throw new TesseraError("ERR_INVALID_ARGUMENT", `seed must be an integer, got ${rest.seed}`);
    const root = new SharedPrompt(this, n, rest);
    return Array.from({ length: n }, (_, i) => {
      const branchOptions = { ...rest, seed: rest.seed === undefined ? undefined : rest.seed + i };
      return new Generation(this.tokenizer, (owner) => root.branch(owner), prompt, branchOptions);
    });
  }

  /** generateMany, each branch run to the end. Bad options reject. */
  completeMany(prompt: string | ArrayLike<number>, options: GenerateOptions & { n: number }): Promise<Completion[]> {
    try {
      return Promise.all(this.generateMany(prompt, options).map((g) => complete(g)));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Embeddings of texts (or token arrays): one Float32Array(nEmbd) per input, L2-normalized
   * by default, pooled as the file's `<arch>.pooling_type` says ("last" without one); with
   * pooling "none" one Float32Array of nTokens * nEmbd per input, token-major. Many inputs
   * run per forward pass. See lib/embeddings/embed.ts.
   */
  embed(inputs: EmbedInput | readonly EmbedInput[], options?: EmbedOptions): Promise<Float32Array[]> {
    try {
      this.live();
      return embed(
        {
          engine: this.engine,
          tokenizer: this.tokenizer,
          contextSize: this.contextSize,
          nEmbd: this.info.nEmbd,
          nVocab: this.info.nVocab,
          poolingType: this.info.poolingType,
        },
        inputs,
        options,
      );
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Token id's input embedding (its row of the token embedding table). */
  tokenEmbedding(id: number): Float32Array {
    this.live();
    return this.embeddings.get(id);
  }

  /**
   * The k tokens whose input embeddings are nearest the query by cosine similarity: a
   * vector, a token id, or arithmetic over token embeddings ({ plus: [ids], minus: [ids] },
   * e.g. king - man + woman). The query's own tokens are left out.
   */
  nearestTokens(query: EmbeddingQuery, k = 10): NearToken[] {
    this.live();
    return this.embeddings.nearest(query, k);
  }

  /** The KV block pool and scheduler: blocks in use and cached, bytes, steps, preemptions. */
  stats(): EngineStats {
    this.live();
    return this.engine.stats();
  }

  /** Frees the weights, the KV pool and every session of this model. */
  dispose(): void {
    if (!this.nativeModel) return;
    for (const s of [...this.sessions]) s.dispose();
    this.engine.dispose();
    this.nativeModel.dispose();
    this.nativeModel = undefined;
  }

  get disposed(): boolean {
    return this.nativeModel === undefined;
  }

  /** A generation without a session: a sequence of its own, freed when it ends. */
  private ownTarget(): GenerationTarget {
    const session = this.createSession();
    const target = sessionTarget(session, {});
    target.release = () => session.dispose();
    return target;
  }

  private live(): NativeModel {
    if (!this.nativeModel) throw new TesseraError("ERR_DISPOSED", "the model was disposed; load it again");
    return this.nativeModel;
  }

  /** Text generation, sessions and chat need an LM head: an encoder refuses them (ERR_UNSUPPORTED). */
  private decoderOnly(): void {
    if (this.engine.encoder) throw this.engine.encoderRefusal();
  }
}

/**
 * The prompt of generateMany, computed once: a root session evaluates every prompt token but
 * the last, and each branch forks it (sharing those blocks) and evaluates the last token
 * itself, as a generation on a session holding the rest of its prompt does. The branches'
 * last rows run together in one step. The root is freed once every branch has forked (a
 * branch that is never iterated keeps it until the model is disposed).
 */
class SharedPrompt {
  private root: Promise<Session> | undefined;
  private forked = 0;

  constructor(
    private readonly model: Model,
    private readonly branches: number,
    private readonly options: GenerateOptions,
  ) {}

  async branch(owner: object): Promise<GenerationTarget> {
    const g = owner as Generation;
    const prompt = g.promptTokensForBranch();
    this.root ??= (async () => {
      const s = this.model.createSession();
      try {
        if (prompt.length > 1) await s.evaluate(prompt.slice(0, prompt.length - 1), { signal: this.options.signal });
      } catch (e) {
        s.dispose();
        throw e;
      }
      return s;
    })();
    const root = await this.root;
    const s = root.fork();
    if (++this.forked === this.branches) root.dispose();
    const target = sessionTarget(s, owner);
    target.release = () => s.dispose();
    return target;
  }
}

/** Runs a generation on `session`, which it owns until release. */
function sessionTarget(session: Session, owner: object): GenerationTarget {
  session.acquire(owner);
  return {
    get tokens() {
      return session.tokens;
    },
    contextSize: session.contextSize,
    truncate: (n) => session.truncateAs(owner, n),
    evaluate: (tokens, signal) => session.run(owner, tokens, false, signal),
    evaluateAll: (tokens, signal, out, greedyRows) => session.run(owner, tokens, true, signal, out, greedyRows),
    release: () => session.release(owner),
  };
}

const LOAD_OPTION_KEYS = {
  backend: true,
  threads: true,
  contextSize: true,
  kvCacheTokens: true,
  kvCacheBytes: true,
  kvCacheType: true,
  batchSize: true,
  signal: true,
  onProgress: true,
  mmap: true,
  checkTensors: true,
} satisfies Record<keyof LoadOptions, true>;

const SESSION_OPTION_KEYS = { contextSize: true, batchSize: true } satisfies Record<keyof SessionOptions, true>;

/**
 * Loads a GGUF model. Without a path it loads the model the package ships (DEFAULT_MODEL,
 * stories260K: tiny children's stories), so a fresh install runs with no download.
 */
export async function loadModel(path?: string, options?: LoadOptions): Promise<Model>;
export async function loadModel(options?: LoadOptions): Promise<Model>;
export async function loadModel(pathOrOptions?: string | LoadOptions, maybeOptions?: LoadOptions): Promise<Model> {
  const optionsFirst = pathOrOptions !== null && typeof pathOrOptions === "object";
  const path = optionsFirst || pathOrOptions === undefined ? DEFAULT_MODEL : pathOrOptions;
  const options = optionsFirst ? (pathOrOptions as LoadOptions) : maybeOptions;
  if (typeof path !== "string" || path.length === 0)
    throw new TesseraError("ERR_INVALID_ARGUMENT", "loadModel needs the path of a GGUF file (or none, for the model the package ships)");
  if (options !== undefined) rejectUnknownOptions(options, LOAD_OPTION_KEYS, "loadModel");
  const o = optionsObject(options, "loadModel");
  const signal = optionalSignal(o.signal, "loadModel");
  const onProgress = optionalFunction<(p: LoadProgress) => void>(o.onProgress, "loadModel", "onProgress");
  const mmap = optionalBoolean(o.mmap, "loadModel", "mmap") ?? true;
  const checkTensors = optionalBoolean(o.checkTensors, "loadModel", "checkTensors") ?? false;
  const abortCheck = () => {
    if (signal?.aborted) throw new TesseraError("ERR_ABORTED", "model loading aborted");
  };
  abortCheck();
  const threads = positiveInteger(o.threads, Math.max(1, os.availableParallelism()), "threads");
  const chosen = chooseBackend(o.backend ?? "auto");
  let { backend, note } = chosen;
  onProgress?.({ phase: "metadata", progress: 0 });

  const file = readGGUF(path);
  const archName = file.metadata.get("general.architecture")?.value;
  if (typeof archName !== "string")
    throw new TesseraError("ERR_MODEL_INCOMPATIBLE", "the file has no general.architecture; it is not a model GGUF");
  const arch = architecture(archName);
  const built = buildPlan(file, arch);
  const { plan, hparams, nVocab } = built;
  if ((arch.encoder || arch.ssm) && backend === "cuda" && (o.backend ?? "auto") === "auto") {
    // The CUDA backend runs no encoder or state-space model yet (an explicit backend: "cuda"
    // is refused natively).
    backend = "cpu";
    note = arch.encoder ? "encoder models run on the CPU" : "state-space models run on the CPU";
  }
  const tokenizer = tokenizerFromGGUF(file);
  const chatTemplates = readChatTemplates(file);
  // Exactly as many as llama.cpp requires (it sizes token_embd and the LM head by the token
  // count): with more embedding rows than tokens, generation could sample an id that has no
  // text, and fail mid-stream.
  if (tokenizer.vocabSize !== nVocab)
    throw new TesseraError(
      "ERR_MODEL_INCOMPATIBLE",
      `the tokenizer has ${tokenizer.vocabSize} tokens but token_embd.weight has ${nVocab} rows; they must match, re-convert the file`,
    );
  const contextSize = positiveInteger(o.contextSize, Math.min(hparams.nCtxTrain || 4096, 4096), "contextSize");
  chooseRopeFactors(built, contextSize);
  const kvTokens = positiveInteger(o.kvCacheTokens, 4 * contextSize, "kvCacheTokens", 1 << 30);
  const kvType = o.kvCacheType ?? "f16";
  if (typeof kvType !== "string" || !Object.hasOwn(KV_TYPES, kvType))
    throw new TesseraError("ERR_INVALID_ARGUMENT", `kvCacheType must be one of ${Object.keys(KV_TYPES).join(", ")}, got ${String(kvType)}`);
  if (o.kvCacheBytes !== undefined && (typeof o.kvCacheBytes !== "number" || !(o.kvCacheBytes > 0)))
    throw new TesseraError("ERR_INVALID_ARGUMENT", `kvCacheBytes must be a positive number, got ${String(o.kvCacheBytes)}`);
  // An encoder's input runs in one step, so by default a step holds a whole context.
  const batchSize = positiveInteger(o.batchSize, arch.encoder ? Math.max(512, contextSize) : 512, "batchSize", 1 << 16);
  abortCheck();
  onProgress?.({ phase: "weights", progress: 0 });

  const nativeModel = await loadWeights(path, plan, { backend, threads, mmap, checkTensors }, signal, onProgress);
  if (signal?.aborted) {
    nativeModel.dispose();
    abortCheck();
  }
  let nativeEngine;
  try {
    const blockBytes = nativeModel.kvBlockBytes(KV_TYPES[kvType]);
    let blocks = Math.ceil(kvTokens / KV_BLOCK_SIZE);
    if (o.kvCacheBytes !== undefined) blocks = Math.min(blocks, Math.floor(o.kvCacheBytes / blockBytes));
    if (blocks < 1)
      throw new TesseraError("ERR_INVALID_ARGUMENT", `kvCacheBytes ${o.kvCacheBytes} is less than one KV block (${blockBytes} bytes)`);
    if (blocks > MAX_COUNT) throw new TesseraError("ERR_INVALID_ARGUMENT", `the KV pool of ${blocks} blocks is too large; lower kvCacheTokens`);
    nativeEngine = nativeModel.createEngine({ maxContext: contextSize, blocks, batchSize, kvType: KV_TYPES[kvType] });
  } catch (e) {
    nativeModel.dispose();
    throw fromNativeError(e);
  }
  const engine = new Engine(nativeEngine, {
    nVocab,
    maxContext: contextSize,
    stepTokens: batchSize,
    synchronous: nativeModel.weightBytes < SYNCHRONOUS_EVAL_MAX_BYTES,
    nLayer: hparams.nLayer,
    nHead: hparams.nHead,
    nExpertUsed: hparams.moe?.nExpertUsed ?? 0,
    nEmbd: hparams.nEmbd,
    causal: plan.causal !== false,
    architecture: arch.name,
    recurrent: plan.ssm !== undefined,
  });
  const nameValue = file.metadata.get("general.name")?.value;
  const info: ModelInfo = {
    ...hparams,
    name: typeof nameValue === "string" ? nameValue : undefined,
    nVocab,
    ...describeTypes(file),
    fileBytes: file.fileSize,
    backend,
    backendNote: note,
    threads,
    contextSize,
    kvCacheType: kvType,
    kvCacheTokens: nativeEngine.blocks * KV_BLOCK_SIZE,
  };
  onProgress?.({ phase: "ready", progress: 1 });
  return new Model(nativeModel, engine, info, tokenizer, contextSize, new TokenEmbeddings(path, file.tensors[plan.tokEmbd], tokenizer), chatTemplates);
}

/**
 * The native load, with its progress polled into onProgress while it runs and the signal
 * wired to its cancel switch. A throwing onProgress cancels the load and is rethrown.
 */
async function loadWeights(
  path: string,
  plan: NativePlan,
  options: { backend: "cpu" | "cuda"; threads: number; mmap: boolean; checkTensors: boolean },
  signal: AbortSignal | undefined,
  onProgress: ((p: LoadProgress) => void) | undefined,
): Promise<NativeModel> {
  const control = native().createLoadControl();
  let last = 0;
  let callbackError: { error: unknown } | undefined;
  const report = () => {
    const progress = control.progress;
    if (progress <= last || callbackError) return;
    last = progress;
    try {
      onProgress?.({ phase: "weights", progress });
    } catch (error) {
      callbackError = { error };
      control.abort();
    }
  };
  const onAbort = () => control.abort();
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) control.abort(); // aborted by an onProgress call before the listener was added
  const timer = onProgress ? setInterval(report, PROGRESS_POLL_MS) : undefined;
  try {
    const model = await native().loadModel(path, plan, { ...options, control });
    report();
    if (callbackError) {
      model.dispose();
      throw callbackError.error;
    }
    return model;
  } catch (e) {
    if (callbackError) throw callbackError.error;
    throw fromNativeError(e);
  } finally {
    clearInterval(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}
