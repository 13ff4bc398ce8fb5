/**
 * loadModel and the Model it returns: reads and checks the GGUF header in TypeScript, builds
 * the native plan from the architecture description, maps the weights natively, and owns
 * the tokenizer and the sessions created from it.
 */
import os from "node:os";
import { TesseraError, fromNativeError } from "../errors.js";
import { architecture } from "../arch/registry.js";
import { Generation, complete, type Completion, type GenerateOptions } from "../generate/generate.js";
import { readGGUF } from "../gguf/reader.js";
import { GGML_TYPE_INFO, type GGUFFile } from "../gguf/types.js";
import { native, type NativeModel } from "../native.js";
import { tokenizerFromGGUF, type Tokenizer } from "../tokenizer/index.js";
import type { Hyperparameters } from "./hparams.js";
import { buildPlan } from "./plan.js";
import { Session, type SessionOptions } from "./session.js";

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
  /** Default KV cache size of sessions. Default: the training context, at most 4096. */
  contextSize?: number;
  signal?: AbortSignal;
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
}

/** Models below this many weight bytes evaluate on the calling thread: the hop costs more. */
const SYNCHRONOUS_EVAL_MAX_BYTES = 32 << 20;

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

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1)
    throw new TesseraError("ERR_INVALID_ARGUMENT", `${name} must be a positive integer, got ${String(value)}`);
  return v;
}

export class Model {
  readonly info: ModelInfo;
  readonly tokenizer: Tokenizer;
  private nativeModel: NativeModel | undefined;
  private readonly sessions = new Set<Session>();
  private defaultSession: Session | undefined;

  /** @internal Use loadModel(). */
  constructor(nativeModel: NativeModel, info: ModelInfo, tokenizer: Tokenizer, private readonly contextSize: number) {
    this.nativeModel = nativeModel;
    this.info = info;
    this.tokenizer = tokenizer;
  }

  /** A new KV cache for one conversation. */
  createSession(options: SessionOptions = {}): Session {
    const m = this.live();
    const contextSize = positiveInteger(options.contextSize, this.contextSize, "contextSize");
    const batchSize = positiveInteger(options.batchSize, 512, "batchSize");
    let context;
    try {
      context = m.createContext({ contextSize, batchSize });
    } catch (e) {
      throw fromNativeError(e);
    }
    const synchronous = m.weightBytes < SYNCHRONOUS_EVAL_MAX_BYTES;
    const session = new Session(context, contextSize, this.info.nVocab, synchronous, (s) => this.sessions.delete(s));
    this.sessions.add(session);
    return session;
  }

  /** Streams generated text; see GenerateOptions. */
  generate(prompt: string | ArrayLike<number>, options: GenerateOptions = {}): Generation {
    this.live();
    return new Generation(this.tokenizer, options.session ?? this.ownSession(), prompt, options);
  }

  /** Generates to the end and returns the whole text, tokens and why it stopped. */
  complete(prompt: string | ArrayLike<number>, options: GenerateOptions = {}): Promise<Completion> {
    return complete(this.generate(prompt, options));
  }

  /** Frees the weights and every session of this model. */
  dispose(): void {
    if (!this.nativeModel) return;
    for (const s of [...this.sessions]) s.dispose();
    this.nativeModel.dispose();
    this.nativeModel = undefined;
  }

  get disposed(): boolean {
    return this.nativeModel === undefined;
  }

  private ownSession(): Session {
    if (!this.defaultSession || this.defaultSession.disposed) this.defaultSession = this.createSession();
    return this.defaultSession;
  }

  private live(): NativeModel {
    if (!this.nativeModel) throw new TesseraError("ERR_DISPOSED", "the model was disposed; load it again");
    return this.nativeModel;
  }
}

export async function loadModel(path: string, options: LoadOptions = {}): Promise<Model> {
  if (typeof path !== "string" || path.length === 0)
    throw new TesseraError("ERR_INVALID_ARGUMENT", "loadModel needs the path of a GGUF file");
  const signal = options.signal;
  const abortCheck = () => {
    if (signal?.aborted) throw new TesseraError("ERR_ABORTED", "model loading aborted");
  };
  abortCheck();
  const threads = positiveInteger(options.threads, Math.max(1, os.availableParallelism()), "threads");
  const { backend, note } = chooseBackend(options.backend ?? "auto");
  options.onProgress?.({ phase: "metadata", progress: 0 });

  const file = readGGUF(path);
  const archName = file.metadata.get("general.architecture")?.value;
  if (typeof archName !== "string")
    throw new TesseraError("ERR_MODEL_INCOMPATIBLE", "the file has no general.architecture; it is not a model GGUF");
  const arch = architecture(archName);
  const { plan, hparams, nVocab } = buildPlan(file, arch);
  const tokenizer = tokenizerFromGGUF(file);
  if (tokenizer.vocabSize > nVocab)
    throw new TesseraError("ERR_MODEL_INCOMPATIBLE", `the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${nVocab} embeddings`);
  const contextSize = positiveInteger(options.contextSize, Math.min(hparams.nCtxTrain || 4096, 4096), "contextSize");
  abortCheck();
  options.onProgress?.({ phase: "weights", progress: 0 });

  let nativeModel: NativeModel;
  try {
    nativeModel = await native().loadModel(path, plan, { backend, threads });
  } catch (e) {
    throw fromNativeError(e);
  }
  if (signal?.aborted) {
    nativeModel.dispose();
    abortCheck();
  }
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
  };
  options.onProgress?.({ phase: "ready", progress: 1 });
  return new Model(nativeModel, info, tokenizer, contextSize);
}
