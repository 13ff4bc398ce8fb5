/**
 * Loads the native addon (a prebuild or build/Release, through node-gyp-build) and types
 * its surface. Everything that crosses into C++ goes through here; arguments are validated
 * by the callers in TypeScript before they get this far.
 */
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { BlockTensorRole } from "./arch/tensor-names.js";
import { TesseraError } from "./errors.js";

export interface SystemInfo {
  /** isa: the level the CPU kernels use (avx512vnni: AVX2 kernels, Q8_0 dot products on AVX-512 VNNI). */
  cpu: { avx2: boolean; fma: boolean; f16c: boolean; avx512vnni: boolean; isa: CpuIsa };
  cuda: { available: boolean; deviceCount: number; deviceName?: string; reason?: string };
  /** Weight types the kernels compute with, by ggml name (native/core/weight_types.h). */
  weightTypes: string[];
}

/** The activation encodings the CPU dot products take (cpu::ActFormat). */
export type ActivationFormat = "F32" | "F16" | "BF16" | "Q8_0" | "Q8_K" | "Q8_1";

export interface WeightTypeRow {
  name: string;
  /** The GGMLType id. */
  type: number;
  activation: ActivationFormat;
  /** pack_weight gives it a kernel-private layout besides the GGUF one. */
  repacked: boolean;
  /** The layout pack_weight picks per active ISA (cpu::WeightLayout's name; "Gguf": none). */
  layouts: { avx2: string; avx512vnni: string };
}

export interface NativeKernels {
  /**
   * repack (default true): let pack_weight choose a kernel-private layout, as at model load.
   * order (default "gemm"): which of llama.cpp's two summation orders to follow for Q4_K and
   * float weights; "gemv" is that of its one-row kernels, which the MoE expert products use
   * (cpu::DotOrder).
   */
  matmul(type: number, weight: Uint8Array, rows: number, cols: number, x: Float32Array, nTokens: number, threads: number, repack?: boolean, order?: MatmulOrder): Float32Array;
  getRows(type: number, table: Uint8Array, rows: number, cols: number, tokens: Int32Array): Float32Array;
  rmsNorm(x: Float32Array, weight: Float32Array | null, nRows: number, dim: number, eps: number, threads: number): Float32Array;
  rope(x: Float32Array, pos: Int32Array, nTokens: number, nHeads: number, headDim: number, params: RopeKernelParams, freqFactors: Float32Array | null, threads: number): Float32Array;
  swiglu(gate: Float32Array, up: Float32Array, nRows: number, dim: number, activation: 0 | 1 | 2, threads: number): Float32Array;
  /**
   * The cache is paged in scrambled block order. With vInK (multi-head latent attention) `v`
   * is ignored: values are the first headDimV entries of the key rows. kvType: the cache's
   * storage (KV_TYPES; default f16).
   */
  attention(q: Float32Array, k: Float32Array, v: Float32Array, nTokens: number, nCtx: number, nHead: number, nHeadKv: number, headDim: number, headDimV: number, slidingWindow: number, scale: number, softcap: number, threads: number, vInK?: boolean, kvType?: number, sinks?: Float32Array | null): Float32Array;
  /** Each run of n values of each row [nRows][width] rotated by the orthonormal Walsh-Hadamard matrix. */
  hadamard(x: Float32Array, nRows: number, width: number, n: number, threads: number): Float32Array;
  /** Per-head matrices [nHead][rows][cols]; x head-major [nHead][nTokens][cols] -> y [nTokens][nHead][rows]. */
  headMatmul(type: number, weight: Uint8Array, nHead: number, rows: number, cols: number, x: Float32Array, nTokens: number, threads: number): Float32Array;
  /** y (yLength zeros) with y[t*yLdToken + h*yLdHead + c] = x[t*xLdToken + h*xLdHead + c] for c < width. */
  copyHeads(x: Float32Array, xLdToken: number, xLdHead: number, yLength: number, yLdToken: number, yLdHead: number, nTokens: number, nHead: number, width: number, threads: number): Float32Array;
  softmax(x: Float32Array): Float32Array;
  argmax(x: Float32Array): number;
  /**
   * Exact top-k over the first n rows of data [>= n][dim]: the best min(k, n) rows for query,
   * best first (ties: the lower row). metric 0: dot product (cosine over normalized rows);
   * 1: L2, scored as minus the squared distance. NaN scores never rank.
   */
  vectorTopK(data: Float32Array, n: number, dim: number, query: Float32Array, metric: 0 | 1, k: number, threads: number): { rows: Int32Array; scores: Float32Array };
  layerNorm(x: Float32Array, weight: Float32Array | null, bias: Float32Array | null, nRows: number, dim: number, eps: number, threads: number): Float32Array;
  add(x: Float32Array, y: Float32Array, threads: number): Float32Array;
  addBias(x: Float32Array, bias: Float32Array, nRows: number, dim: number, ldx: number, threads: number): Float32Array;
  /**
   * Mamba's causal conv over one sequence's nRows rows of `channels`, the dConv - 1 inputs
   * before them in state [dConv - 1][channels] (cpu::ssm_conv); returns y and the window left.
   */
  ssmConv(state: Float32Array, x: Float32Array, nRows: number, w: Float32Array, bias: Float32Array, channels: number, dConv: number, threads: number): { y: Float32Array; state: Float32Array };
  /** Mamba-2's selective scan over one sequence's rows from state [nHead][headDim][dState] (cpu::ssm_scan); returns y and the state left. */
  ssmScan(state: Float32Array, x: Float32Array, B: Float32Array, C: Float32Array, dt: Float32Array, dtBias: Float32Array, A: Float32Array, D: Float32Array, nRows: number, nHead: number, headDim: number, dState: number, nGroup: number, threads: number): { y: Float32Array; state: Float32Array };
  /** x encoded in the activation format weights of `weightType` consume (F32: a copy). */
  quantizeAct(weightType: number, x: Float32Array, nTokens: number, cols: number, threads: number): Uint8Array;
  /** The executor's per-step thread chooser over scripted step costs (ns on all threads, on one fewer): its pick per step. */
  chooseThreads(threads: number, nsAll: Float64Array, nsFewer: Float64Array): Int32Array;
  /** The rows of native/core/weight_types.h: each type's activation format and whether pack_weight repacks it. */
  weightTypeTable(): WeightTypeRow[];
  /** Times matmul natively (pool, packing and buffers prepared; weights rotated through DRAM-sized copies). */
  benchMatmul(type: number, weight: Uint8Array, rows: number, cols: number, x: Float32Array, nTokens: number, threads: number, seconds: number, repack?: boolean, copies?: number, order?: MatmulOrder): KernelTiming;
  /** Times attention natively (pool and cache prepared; a single query token rotates through DRAM-sized cache copies). */
  benchAttention(q: Float32Array, k: Float32Array, v: Float32Array, nTokens: number, nCtx: number, nHead: number, nHeadKv: number, headDim: number, headDimV: number, slidingWindow: number, scale: number, softcap: number, threads: number, seconds: number, vInK?: boolean, kvType?: number): KernelTiming;
  /**
   * STREAM-like read probe over a `megabytes` buffer, timed per 8 MiB chunk, by every read
   * method on `threads` threads and on one fewer; the top level is the combination with the
   * highest median (see ReadBandwidth in native/addon/kernel_binding.cpp).
   */
  readBandwidth(megabytes: number, reps: number, threads: number): ReadBandwidth;
}

export type CpuIsa = "avx512vnni" | "avx2" | "scalar";

export interface ReadBandwidth {
  medianGBps: number;
  bestGBps: number;
  /** The read method and thread count of the highest median. */
  method: ReadMethod;
  threads: number;
  methods: Array<{ method: ReadMethod; threads: number; medianGBps: number; bestGBps: number }>;
}

/** How the probe reads (cpu::ReadMethod): one stream per thread, the kernels' prefetched stretches, non-temporal loads, or 64 KiB blocks dealt out in turn. */
export type ReadMethod = "plain" | "prefetched" | "non-temporal" | "interleaved";

/** The fp32 summation order of a matmul where a weight type has two (Q4_K, F32, F16, BF16; see cpu::DotOrder). */
export type MatmulOrder = "gemm" | "gemv";

export interface KernelTiming {
  medianMs: number;
  minMs: number;
  runs: number;
  copies: number;
}

export interface RopeKernelParams {
  /** 1: normal (adjacent pairs), 2: neox (halves) */
  kind: 1 | 2;
  nDims: number;
  freqBase: number;
  freqScale?: number;
  /** 0 none, 1 linear, 2 YaRN, 3 llama3 */
  scaling?: number;
  nCtxOrig?: number;
  extFactor?: number;
  attnFactor?: number;
  betaFast?: number;
  betaSlow?: number;
  /** llama3 scaling: wavelength band edges as fractions of nCtxOrig */
  lowFreqFactor?: number;
  highFreqFactor?: number;
}

/**
 * One model's engine: the paged KV pool (blocks of KV_BLOCK_SIZE positions, lib/engine/blocks.ts)
 * and the batched forward pass. A step runs rows of many sequences: row r is token
 * tokens[r] at position positions[r] of sequence rowSeq[r], whose block ids are
 * tables[tableStart[s] .. tableStart[s + 1]); copies (source, destination block pairs) run
 * first; the logits of the rows in logitRows (ascending) go to logits [n][nVocab].
 */
export interface NativeEngine {
  /**
   * A logit row holding NaN or Infinity fails the step with ERR_NON_FINITE (the other rows'
   * logits are written all the same); nonFinite, one entry per logit row, then says which.
   * trace (session.trace) asks the step to record its layers' internals. hiddenRows
   * (ascending) with hidden [n][nEmbd]: those rows' final-norm hidden states (embeddings).
   */
  step(tokens: Int32Array, positions: Int32Array, rowSeq: Int32Array, tableStart: Int32Array, tables: Int32Array, logitRows: Int32Array, copies: Int32Array, logits: Float32Array, nonFinite?: Uint8Array, trace?: object, hiddenRows?: Int32Array, hidden?: Float32Array, argmax?: Int32Array): Promise<void>;
  /** The same on the calling thread (for models small enough that the thread hop dominates). */
  stepSync(tokens: Int32Array, positions: Int32Array, rowSeq: Int32Array, tableStart: Int32Array, tables: Int32Array, logitRows: Int32Array, copies: Int32Array, logits: Float32Array, nonFinite?: Uint8Array, trace?: object, hiddenRows?: Int32Array, hidden?: Float32Array, argmax?: Int32Array): void;
  abort(): void;
  dispose(): void;
  readonly maxContext: number;
  readonly blocks: number;
  /** Bytes of one block (keys and values of every layer). */
  readonly blockBytes: number;
  readonly scratchBytes: number;
  /** Nanoseconds the executor spent in the last step, excluding the N-API crossing. */
  readonly lastStepNs: number;
}

/** KV cache storage types, as the native KvType. */
export type KvCacheType = "f16" | "q8_0" | "q4_0";
// Spelt out rather than `keyof typeof KV_TYPES`, so the public declarations do not reference
// this internal table.
export const KV_TYPES: Readonly<Record<KvCacheType, number>> = { f16: 0, q8_0: 1, q4_0: 2 };

export interface NativeModel {
  createEngine(options: { maxContext: number; blocks: number; batchSize?: number; kvType?: number }): NativeEngine;
  /** Bytes of one KV block of this model in the given cache type. */
  kvBlockBytes(kvType: number): number;
  dispose(): void;
  readonly backend: "cpu" | "cuda";
  readonly weightBytes: number;
}

/**
 * One load's progress and cancel switch (createLoadControl): the load advances it per
 * tensor read, checked or prepared and stops at the next tensor once aborted.
 */
export interface NativeLoadControl {
  /** 0..1, never decreasing. */
  readonly progress: number;
  readonly done: number;
  readonly total: number;
  abort(): void;
}

export interface NativeTensor {
  name: string;
  /** GGMLType id */
  type: number;
  dims: number[];
  offset: number;
  byteLength: number;
}

/** One block: a tensor index per role present (native/core/layer_roles.h), -1 or absent otherwise. */
export type NativeLayer = Partial<Record<BlockTensorRole, number>> & {
  ffnKind: "dense" | "moe";
  slidingWindow: number;
  /** The block's own RoPE base and scale, unscaled (Gemma 3's local blocks); absent: the plan's. */
  ropeFreqBase?: number;
  ropeFreqScale?: number;
};

/**
 * The plan lib/model/plan.ts builds and native/addon/plan_from_js.cpp converts into a
 * ModelPlan (native/core/model_plan.h). Enums cross as these strings; plan_from_js.cpp maps
 * them to the C++ enums in one table.
 */
export interface NativePlan {
  architecture: string;
  nLayer: number;
  nEmbd: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  headDimV: number;
  nFf: number;
  nFfExp: number;
  nVocab: number;
  nCtxTrain: number;
  normEps: number;
  norm: "rms" | "layer";
  activation: "silu" | "gelu" | "swiglu-oai";
  attnScale: number;
  /** Multiplies q after RoPE, before attention (0: none; Gemma, with attnScale 1). */
  queryScale: number;
  /** q at position p times 1 + attnTempScale * ln(floor(p / attnTempFloor) + 1) (0: none; Mistral 3). */
  attnTempScale: number;
  attnTempFloor: number;
  /** cap * tanh(v / cap) on attention scores and on logits (0: none; Gemma 2). */
  attnLogitSoftcap: number;
  finalLogitSoftcap: number;
  embeddingScale: number;
  /** Multiplies each attention and FFN output before its residual add (0: none; Granite). */
  residualScale: number;
  /** The logits are multiplied by 1 / logitScale (0: none; Granite). */
  logitScale: number;
  rope: {
    kind: "none" | "normal" | "neox";
    nDims: number;
    freqBase: number;
    freqScale: number;
    scaling: "none" | "linear" | "yarn" | "llama3";
    nCtxOrig: number;
    yarnExtFactor: number;
    yarnAttnFactor: number;
    yarnBetaFast: number;
    yarnBetaSlow: number;
    freqFactors: number;
  };
  /** Mamba-2 sizes (core/model_plan.h SsmParams): set when blocks carry ssm tensors. */
  ssm?: {
    dConv: number;
    dInner: number;
    dState: number;
    nGroup: number;
    nHead: number;
  };
  mla?: {
    qLoraRank: number;
    kvLoraRank: number;
    headDimNope: number;
    headDimRope: number;
    headDimV: number;
  };
  moe?: {
    nExpert: number;
    nExpertUsed: number;
    nExpertShared: number;
    gating: "softmax" | "sigmoid" | "softmax-weight";
    normTopK: boolean;
    weightsScale: number;
    nGroup: number;
    nGroupUsed: number;
  };
  /**
   * Encoders (lib/arch/types.ts EncoderRecipe); absent means a decoder's default. causal:
   * false attends over the whole input; postNorm: LayerNorm after each residual add (the
   * layers' attnOutNorm/layerOutNorm) instead of attnNorm/ffnNorm before; ffnGated: false runs
   * up -> activation -> down; lmHead: false has no output norm or LM head (hidden states only).
   */
  causal?: boolean;
  postNorm?: boolean;
  ffnGated?: boolean;
  /** ffn_up holds [gate | up] (2 x nFf rows) and there is no ffn_gate (Phi-3). */
  ffnFusedGateUp?: boolean;
  lmHead?: boolean;
  /** Input embeddings added to the token's (-1: none): position_embd [n_embd, positions], token_types row 0. */
  posEmbd?: number;
  tokenTypes?: number;
  /** LayerNorm of the input embeddings (token_embd_norm weight and bias), -1: none. */
  tokEmbdNorm?: number;
  tokEmbdNormB?: number;
  tokEmbd: number;
  /** -1 with lmHead: false. */
  outputNorm: number;
  outputNormB: number;
  output: number;
  outputB: number;
  layers: NativeLayer[];
  tensors: NativeTensor[];
}

/** A row of native/core/layer_roles.h. */
export interface NativeLayerRole {
  /** the NativeLayer key (BlockTensorRole) */
  name: string;
  /** GGUF name after `blk.N.` */
  suffix: string;
  kind: "matmul" | "norm" | "bias" | "param";
  /** every block whose recipe uses it has it (else the architecture decides) */
  required: boolean;
  label: string;
}

export interface NativeAddon {
  /**
   * mmap false reads the file into memory; checkTensors scans every weight for NaN/Inf
   * (ERR_NON_FINITE naming the tensor); an aborted control rejects with ERR_ABORTED.
   */
  loadModel(
    path: string,
    plan: NativePlan,
    options: { backend: "cpu" | "cuda"; threads: number; device?: number; mmap?: boolean; checkTensors?: boolean; control?: NativeLoadControl },
  ): Promise<NativeModel>;
  createLoadControl(): NativeLoadControl;
  systemInfo(): SystemInfo;
  /** The per-block tensor roles native code knows (for the test that keeps the lists in step). */
  layerRoles(): NativeLayerRole[];
  /** The error code of every native failure status (native/addon/status_napi.cpp). */
  errorCodes(): string[];
  /** Single-op entry points of the kernel harness (see dev/kernels/harness.ts). */
  kernels: NativeKernels;
  /** Lowers (or restores) the CPU kernel ISA; returns the ISA now active. */
  /** Lowers (or restores) the kernels' ISA, clamped to the machine's best; returns the one in use. */
  setCpuIsa(isa: CpuIsa): CpuIsa;
}

function packageRoot(): string {
  // dist/lib/native.js and lib/native.ts both sit two levels below the package root.
  const here = path.dirname(fileURLToPath(import.meta.url));
  const up = path.basename(path.dirname(here)) === "dist" ? 2 : 1;
  return path.resolve(here, ...Array(up).fill(".."));
}

let cached: NativeAddon | undefined;

export function native(): NativeAddon {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  try {
    const explicit = process.env.TESSERA_ADDON_PATH;
    cached = (explicit ? require(path.resolve(explicit)) : require("node-gyp-build")(packageRoot())) as NativeAddon;
  } catch (e) {
    throw new TesseraError(
      "ERR_ADDON_LOAD",
      `the Tessera native addon could not be loaded (${(e as Error).message}); run \`npm rebuild tessera\` ` +
        "(needs cmake and a C++17 compiler) or install a package with a prebuild for this platform",
      { cause: e },
    );
  }
  return cached;
}
