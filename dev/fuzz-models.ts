/**
 * Structure-aware fuzzing of model loading and evaluation (issue 25). Each case is a
 * synthetic model of one registered architecture (every entry of FUZZ_RECIPES: decoders, the
 * bert/nomic-bert encoders and the Mamba-2 state-space models alike) and weight type (every
 * computable type, or a per-tensor mix), at small shapes or realistic widths (n_embd / n_ff in
 * the thousands), with 0 to 3 mutations of its structure: metadata values, types, missing and
 * extra keys, per-block arrays; tensor shapes, types, names, presence, offsets and data (NaN,
 * Inf, random bytes); the file's alignment and length; the vocabulary; Mamba-2's ssm.* sizes,
 * mixer tensors and a hybrid's per-block layout (ssmMutation). The case is loaded and, when
 * that works, evaluated (a prefill, a decode step, sometimes a short generation; an encoder
 * embeds two inputs). Every outcome must be "ok" or a TesseraError with a code; anything else
 * (an uncoded exception, a crash, a sanitizer report, a case running past its timeout) is a
 * finding.
 *
 * A case is a pure function of (seed, index, --archs, --big-share), so any one replays alone:
 *   node dist/dev/fuzz-models.js case --seed S --index I [--archs a,b] [--keep model.gguf]
 *   scripts/sanitized.sh run node dist/dev/fuzz-models.js case --seed S --index I [--archs a,b]
 * Runs of many cases go through worker processes, restarted after a crash or a hang:
 *   node dist/dev/fuzz-models.js run --count 100000 [--seed S] [--from I] [--archs a,b] [--sanitized] [--jobs 2]
 * (--sanitized: workers run against build-san/ under ASan and UBSan, see scripts/sanitized.sh;
 * --from: the first case index, to resume a run after case I - 1).
 * --archs a,b,c: cases only of those architectures (registry names, each with a recipe), case
 * I being of archs[I % archs.length]; default: every fuzzed architecture (ARCHITECTURES). A
 * case's seed depends on (seed, index) alone, but which architecture case I is depends on the
 * list, so replay a case of such a run with the same --archs (in the same order).
 *
 * Tensor data is cheap on purpose: the first WRITE_CAP bytes of each tensor come from a
 * pool of real encodings (or the poison a mutation picked), the rest is a hole in a sparse
 * file that reads as zeros. Values do not decide whether native code stays in bounds;
 * shapes, types and metadata do, and those are what the cases vary.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { architecture, supportedArchitectures } from "../lib/arch/registry.js";
import { isTesseraError } from "../lib/errors.js";
import { quantize } from "../lib/gguf/quantize.js";
import { GGMLType, GGML_TYPE_INFO, GGUF_MAGIC, GGUFValueType, type GGUFArray, type GGUFKV } from "../lib/gguf/types.js";
import { kv } from "../lib/gguf/writer.js";
import { loadModel, type LoadOptions } from "../lib/index.js";
import { computeTypes } from "../lib/model/weight-types.js";
import { native as loadNative } from "../lib/native.js";
import { Rng } from "../lib/sampling/rng.js";
import { multiplierMetadata } from "./synthetic-model.js";

/** An architecture's name as the registry (lib/arch/registry.ts) knows it. */
export type Arch = string;
/** The computable weight types, in the order of the native table (native/core/weight_types.h). */
let weightTypesCache: readonly GGMLType[] | undefined;
const weightTypes = (): readonly GGMLType[] => (weightTypesCache ??= [...computeTypes()]);

/** Bytes of real data written at the start of each tensor; the rest of it is a hole (zeros). */
const WRITE_CAP = 128 << 10;
/** Largest file a case writes (sparse); a layout claiming more is cut there, which the reader must refuse. */
const FILE_CAP = 256 << 20;
/** Weight bytes of a realistic-width case (n_embd or n_ff in the thousands), and of a small one. */
const BIG_BUDGET = 48 << 20;
const SMALL_BUDGET = 8 << 20;

// ---------------------------------------------------------------- randomness

class CaseRng {
  private readonly rng: Rng;
  constructor(seed: number) {
    this.rng = new Rng(seed);
  }
  float(): number {
    return this.rng.next();
  }
  /** Uniform in lo..hi inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.rng.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.rng.next() * items.length)];
  }
  chance(p: number): boolean {
    return this.rng.next() < p;
  }
  /** An index into `weights`, chosen in proportion to them. */
  weighted(weights: readonly number[]): number {
    let r = this.rng.next() * weights.reduce((a, b) => a + b, 0);
    for (let i = 0; i < weights.length; i++) if ((r -= weights[i]) < 0) return i;
    return weights.length - 1;
  }
}

/** The seed of case `index` of a run seeded `seed`: cases replay one by one. */
export function caseSeed(seed: number, index: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (index + 0x632be5ab), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 15)) >>> 0;
}

// ---------------------------------------------------------------- shapes

interface MoeSpec {
  nExpert: number;
  nExpertUsed: number;
  nFfExp: number;
  /** Shared expert width, 0: none. */
  nFfShexp: number;
  nShared: number;
  sharedGate: boolean;
  selectionBias: boolean;
  /** expert_gating_func: 0 leaves the key out. */
  gating: 0 | 1 | 2;
  normTopK?: boolean;
  leadingDense: number;
  nGroup: number;
  nGroupUsed: number;
  weightsScale?: number;
}

interface MlaSpec {
  qLoraRank: number;
  kvLoraRank: number;
  nope: number;
  rope: number;
  v: number;
  yarnLogMul?: number;
}

export interface Shape {
  arch: Arch;
  big: boolean;
  /** The matmul weights' type; per tensor when `mixed`. */
  type: GGMLType;
  mixed: boolean;
  nLayer: number;
  nEmbd: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  /** Value head size where it differs from the key's (needs keyLength); standard attention only. */
  headDimV?: number;
  /** Write attention.key_length/value_length (else the head size is n_embd / n_head). */
  keyLength: boolean;
  ropeDims: number;
  nFf: number;
  writeFfLength: boolean;
  nVocab: number;
  nTokens: number;
  ctxTrain: number;
  normEps: number;
  freqBase: number;
  ropeScaling?: { type?: string; factor: number; orig?: number };
  qkvBias: boolean;
  qkNorm: boolean;
  ffnBias: boolean;
  outBias: boolean;
  lmHeadBias: boolean;
  tied: boolean;
  ropeFreqs: boolean;
  slidingWindow: number;
  pattern?: number | boolean[];
  moe?: MoeSpec;
  mla?: MlaSpec;
  /** Granite's multiplier keys (embedding_scale, residual_scale, attention.scale, logit_scale). */
  multipliers?: { embedding?: number; residual?: number; attention?: number; logit?: number };
  /** rope.scaling.finetuned (Granite: false turns RoPE off). */
  ropeFinetuned?: boolean;
  /**
   * An encoder (bert, nomic-bert): LayerNorm post-norm blocks, token types, position
   * embeddings (bert) or RoPE (nomic-bert), fused or separate q/k/v, GELU (up/down) or SwiGLU
   * FFN, no LM head; the case embeds its prompt instead of generating.
   */
  encoder?: { positionEmbeddings: boolean; fusedQkv: boolean; gelu: boolean; biases: boolean; ffnBiases: boolean };
  poolingType?: number;
  /** gpt-oss: attn_sinks, attn_output.bias, router and expert biases, post_attention_norm as the FFN norm. */
  gptOss?: boolean;
  /** Mistral 3's attention.temperature_scale and rope.scaling.yarn_log_multiplier. */
  attnTemperature?: number;
  yarnLogMul?: number;
  /** Phi-3's fused attn_qkv and ffn_up [n_embd, 2 * nFf]. */
  fusedQkv?: boolean;
  fusedGateUp?: boolean;
  /** Phi-3's rope_factors_long/short.weight (each when set). */
  longRope?: { long: boolean; short: boolean };
  /** Gemma's post_attention_norm / post_ffw_norm in every block. */
  postNorms?: boolean;
  /** Gemma's attn_logit_softcapping / final_logit_softcapping keys, those given. */
  softcaps?: { attention?: number; final?: number };
  /** rope.freq_base_swa (Gemma 3's local blocks). */
  freqBaseSwa?: number;
  /**
   * A Mamba-2 mixer (ssm.* keys, ssm_* tensors): in every block, with no attention or FFN
   * (mamba2: head_count and feed_forward_length written as 0), or with `ssmLayers` in those
   * blocks only, in place of attention (granitehybrid).
   */
  ssm?: SsmSpec;
  /** A hybrid's blocks: true runs the Mamba-2 mixer (head_count_kv entry 0), false attends. */
  ssmLayers?: boolean[];
}

/** Mamba-2's sizes (`${arch}.ssm.*`, as llama.cpp's converter writes them). */
export interface SsmSpec {
  /** ssm.conv_kernel: conv taps. */
  dConv: number;
  /** ssm.inner_size: heads x head size. */
  dInner: number;
  /** ssm.state_size. */
  dState: number;
  /** ssm.group_count: B and C shared by the heads of a group. */
  nGroup: number;
  /** ssm.time_step_rank: the head count. */
  nHead: number;
  /** ssm_conv1d.bias written (mamba2 requires it, granitehybrid's is optional). */
  convBias: boolean;
}

/** A model whose every block is a Mamba-2 block (mamba2): no attention keys or tensors at all. */
const pureSsm = (s: Shape): boolean => s.ssm !== undefined && !s.ssmLayers;
/** Whether block `b` runs the Mamba-2 mixer. */
const ssmBlock = (s: Shape, b: number): boolean => s.ssm !== undefined && (!s.ssmLayers || s.ssmLayers[b] === true);

/**
 * A hybrid's layout fitted to nLayer blocks, keeping an attention block (a file with none
 * is refused: head_count_kv all 0) and, from two blocks on, a Mamba-2 block (else it is
 * granitemoe by another name).
 */
function fixHybridLayout(s: Shape): void {
  if (!s.ssmLayers) return;
  s.ssmLayers = Array.from({ length: s.nLayer }, (_, i) => s.ssmLayers![i % s.ssmLayers!.length]);
  if (s.ssmLayers.every(Boolean)) s.ssmLayers[s.nLayer - 1] = false;
  if (s.nLayer > 1 && !s.ssmLayers.some(Boolean)) s.ssmLayers[0] = true;
}

const SMALL_HEAD_DIMS = [2, 4, 6, 8, 12, 16, 20, 32, 40, 48, 64, 80, 96, 128, 160, 256];
const SMALL_WIDTHS = [7, 8, 16, 24, 32, 33, 40, 48, 64, 96, 100, 128, 160, 192, 256, 320, 384, 512];
const SMALL_FF = [1, 2, 3, 8, 16, 24, 32, 48, 64, 96, 100, 128, 200, 256, 384, 512, 768];
const BIG_EMBD = [1024, 1536, 2048, 2560, 3072, 4096];
const BIG_FF = [1024, 1408, 2048, 2816, 4096, 5632, 8192, 11008, 14336];

function divisors(n: number): number[] {
  const out: number[] = [];
  for (let d = 1; d <= n; d++) if (n % d === 0) out.push(d);
  return out;
}

// ---------------------------------------------------------------- architectures

interface RecipeContext {
  rng: CaseRng;
  /** A realistic-width case. */
  big: boolean;
  /** Random experts; with shared experts when `shared`. */
  moe: (shared: boolean) => MoeSpec;
}

/** How a random case of one architecture departs from the plain dense block randomShape draws. */
interface FuzzRecipe {
  /** Share of small cases that write attention.key_length (a head size apart from n_embd / n_head); default 0.2. */
  keyLengthShare?: number;
  /** Draws the architecture's features onto the shape: biases, q/k norms, experts, windows, MLA. */
  randomize(shape: Shape, c: RecipeContext): void;
}

/**
 * One entry per architecture of the registry (lib/arch/registry.ts), under its name: a recipe,
 * or `notFuzzed` with the reason an architecture is left out. test/model/fuzz-models.test.ts
 * fails while a registered architecture has no entry, so a new architecture is fuzzed (or
 * its absence explained) rather than silently skipped. Each recipe's draws are part of the
 * replay contract: changing them changes which case a seed and index name.
 */
const FUZZ_RECIPES: Record<string, FuzzRecipe | { notFuzzed: string }> = {
  llama: {
    randomize(shape, { rng, moe }) {
      shape.qkvBias = rng.chance(0.2);
      shape.outBias = rng.chance(0.15);
      shape.ropeFreqs = rng.chance(0.15);
      if (rng.chance(0.35)) shape.moe = moe(false);
      else shape.ffnBias = rng.chance(0.2);
    },
  },
  qwen2: {
    randomize(shape, { rng }) {
      shape.qkvBias = true;
      shape.lmHeadBias = rng.chance(0.2);
    },
  },
  qwen3: {
    keyLengthShare: 0.6,
    randomize(shape, { rng }) {
      shape.qkNorm = true;
      shape.qkvBias = rng.chance(0.15);
    },
  },
  qwen2moe: {
    randomize(shape, { rng, moe }) {
      shape.qkvBias = true;
      if (rng.chance(0.85)) {
        shape.moe = moe(true);
        shape.moe.sharedGate = rng.chance(0.7);
      }
    },
  },
  qwen3moe: {
    keyLengthShare: 0.6,
    randomize(shape, { rng, moe }) {
      shape.qkNorm = true;
      shape.qkvBias = rng.chance(0.1);
      if (rng.chance(0.85)) shape.moe = moe(false);
    },
  },
  mellum: {
    randomize(shape, { rng, moe }) {
      shape.qkNorm = true;
      shape.qkvBias = rng.chance(0.1);
      if (rng.chance(0.6)) shape.moe = moe(false);
      if (rng.chance(0.8)) {
        shape.slidingWindow = rng.pick([1, 2, 3, 8, 64, 4096]);
        const p = rng.int(0, 2);
        if (p === 1) shape.pattern = rng.pick([0, 1, 2, 4]);
        else if (p === 2) shape.pattern = Array.from({ length: shape.nLayer }, () => rng.chance(0.5));
        // Windowed blocks rotate without the file's RoPE scaling, which the plan cannot express.
        shape.ropeScaling = undefined;
      }
    },
  },
  granite: {
    randomize(shape, { rng }) {
      shape.qkvBias = rng.chance(0.1);
      shape.outBias = rng.chance(0.15);
      shape.ffnBias = rng.chance(0.15);
      shape.ropeFreqs = rng.chance(0.1);
      // Granite 3.x's magnitudes; logit_scale is required, the others optional.
      shape.multipliers = {
        embedding: rng.chance(0.8) ? rng.pick([1, 12]) : undefined,
        residual: rng.chance(0.8) ? rng.pick([0.22, 1]) : undefined,
        attention: rng.chance(0.7) ? rng.pick([0.0078125, 0.015625]) : undefined,
        logit: rng.pick([1, 6, 8, 16]),
      };
      if (rng.chance(0.2)) shape.ropeFinetuned = rng.chance(0.5);
    },
  },
  granitemoe: {
    randomize(shape, c) {
      (FUZZ_RECIPES.granite as FuzzRecipe).randomize(shape, c);
      if (c.rng.chance(0.85)) shape.moe = c.moe(c.rng.chance(0.3));
    },
  },
  gemma2: {
    randomize(shape, { rng }) {
      shape.postNorms = true;
      shape.tied = true;  // gemma2 has no output.weight (llama.cpp loads none; Tessera refuses one)
      gemmaWindowAndCaps(shape, rng, true);
    },
  },
  gemma3: {
    keyLengthShare: 0.6,
    randomize(shape, { rng }) {
      shape.postNorms = true;
      shape.qkNorm = true;
      gemmaWindowAndCaps(shape, rng, false);
      // Local blocks rotate unscaled, which YaRN's attention factor can't follow (refused).
      if (shape.ropeScaling?.type === "yarn") shape.ropeScaling = undefined;
      if (rng.chance(0.5)) shape.freqBaseSwa = rng.pick([10000, 1, 1e6]);
    },
  },
  mistral3: {
    randomize(shape, c) {
      (FUZZ_RECIPES.llama as FuzzRecipe).randomize(shape, c);
      if (c.rng.chance(0.4)) {
        shape.ropeScaling = { type: "yarn", factor: c.rng.pick([2, 16]), orig: c.rng.pick([0, 16, 4096]) };
        shape.yarnLogMul = c.rng.pick([0, 1, 0.1]);
      }
      // The temperature steps by the original context, which the file must then give.
      if (c.rng.chance(0.5) && (shape.ctxTrain > 0 || shape.ropeScaling?.orig)) shape.attnTemperature = c.rng.pick([0, 0.1, 0.5, -0.5]);
    },
  },
  "gpt-oss": {
    randomize(shape, { rng, moe }) {
      shape.gptOss = true;
      shape.tied = false;  // gpt-oss requires its own output.weight
      shape.qkvBias = rng.chance(0.9);
      shape.slidingWindow = rng.pick([1, 2, 3, 8, 128]);
      if (rng.chance(0.3)) shape.pattern = rng.pick([0, 1, 2]);
      shape.moe = moe(false);
      shape.moe.normTopK = undefined;
    },
  },
  phi3: {
    randomize(shape, { rng }) {
      shape.fusedQkv = rng.chance(0.8);
      shape.fusedGateUp = true;  // phi3 has no separate ffn_gate (a file with one is refused)
      shape.qkvBias = rng.chance(0.1);
      if (rng.chance(0.3)) shape.longRope = { long: rng.chance(0.9), short: rng.chance(0.9) };
      if (rng.chance(0.3)) shape.slidingWindow = rng.pick([2, 2047, 262144]);  // read and ignored, as llama.cpp does
    },
  },
  // Encoders: their own tensors (tensorsFor's encoder branch); the case embeds its prompt.
  bert: {
    randomize(shape, { rng }) {
      const biases = rng.chance(0.9);
      shape.encoder = { positionEmbeddings: true, fusedQkv: rng.chance(0.2), gelu: true, biases, ffnBiases: biases };
      shape.ctxTrain = rng.pick([16, 64, 512]);  // position_embd rows: the longest input
      shape.poolingType = rng.pick([undefined, 0, 1, 2, 3]);
      shape.ropeScaling = undefined;
    },
  },
  "nomic-bert": {
    randomize(shape, { rng }) {
      shape.encoder = { positionEmbeddings: false, fusedQkv: rng.chance(0.8), gelu: false, biases: rng.chance(0.3), ffnBiases: false };
      shape.poolingType = rng.pick([undefined, 1, 2]);
    },
  },
  // Mamba-2: every block is RMSNorm -> mixer -> residual, no attention or FFN keys or tensors.
  mamba2: {
    randomize(shape, { rng, big }) {
      // llama.cpp's converter writes head_count and feed_forward_length 0 ("unused"); no RoPE.
      shape.nHead = shape.nHeadKv = shape.headDim = shape.ropeDims = shape.nFf = 0;
      shape.keyLength = false;
      shape.ropeScaling = undefined;
      shape.ssm = randomSsm(shape, rng, big, true);
    },
  },
  // Granite 4.0-H: Granite(-MoE) blocks where head_count_kv's entry is 0 run the mixer instead of attention.
  granitehybrid: {
    randomize(shape, c) {
      (FUZZ_RECIPES.granitemoe as FuzzRecipe).randomize(shape, c);
      const { rng, big } = c;
      shape.nLayer = big ? rng.int(2, 3) : rng.int(2, 5);
      shape.ssmLayers = Array.from({ length: shape.nLayer }, () => rng.chance(0.6));
      fixHybridLayout(shape);
      shape.ssm = randomSsm(shape, rng, big, rng.chance(0.7));
    },
  },
  deepseek2: {
    randomize(shape, { rng, big, moe }) {
      const kvLoraRank = big ? 512 : rng.pick([8, 16, 32, 64, 128]);
      const rope = big ? 64 : rng.pick([2, 4, 8, 16, 32]);
      shape.mla = {
        qLoraRank: rng.chance(0.5) ? 0 : big ? 1536 : rng.pick([8, 16, 32, 96]),
        kvLoraRank,
        nope: big ? 128 : rng.pick([2, 8, 16, 32, 64]),
        rope,
        v: big ? 128 : rng.pick([4, 8, 16, 32, 64]),
        yarnLogMul: rng.pick([undefined, 0.0707, 0.1]),
      };
      shape.nHeadKv = 1;
      shape.headDim = kvLoraRank + rope;
      shape.ropeDims = rope;
      shape.keyLength = true;
      if (big) shape.nHead = rng.pick([8, 16]);
      if (rng.chance(0.9)) {
        const m = (shape.moe = moe(true));
        m.leadingDense = rng.int(0, shape.nLayer);
        if (rng.chance(0.5)) {
          m.gating = 2;
          m.selectionBias = rng.chance(0.8);
          const groups = divisors(m.nExpert).filter((g) => g <= 8);
          if (rng.chance(0.6)) {
            m.nGroup = rng.pick(groups);
            m.nGroupUsed = rng.int(1, m.nGroup);
          }
        } else if (rng.chance(0.5)) m.gating = 1;
      }
    },
  },
};

/** A Mamba-2 mixer for a model of width shape.nEmbd: a checkpoint's proportions at realistic widths, anything valid when small. */
function randomSsm(shape: Shape, rng: CaseRng, big: boolean, convBias: boolean): SsmSpec {
  if (big) {
    // Mamba-2 and Granite 4.0-H: d_inner = 2 n_embd in heads of 64, d_state 128, 1 or 8 groups.
    const dInner = 2 * shape.nEmbd;
    return { dConv: 4, dInner, dState: rng.pick([64, 128]), nGroup: rng.pick([1, 1, 8]), nHead: dInner / 64, convBias };
  }
  let dInner: number, nHead: number;
  if (rng.chance(0.6)) {
    dInner = 2 * shape.nEmbd;  // llama.cpp's expansion factor
    nHead = rng.pick(divisors(dInner).filter((d) => d <= 32));
  } else {
    nHead = rng.pick([1, 2, 3, 4, 8, 12, 16]);
    dInner = nHead * rng.pick([1, 2, 4, 8, 16, 32, 64]);
  }
  return { dConv: rng.pick([2, 3, 4, 4, 4, 8, 16]), dInner, dState: rng.pick([1, 2, 4, 8, 16, 32, 64, 128]), nGroup: rng.pick(divisors(nHead)), nHead, convBias };
}

/** Halves a mixer's heads (keeping their size), else its state; false when it is as small as it gets. */
function shrinkSsm(m: SsmSpec): boolean {
  if (m.nHead % 2 === 0 && m.dInner > 64) {
    m.dInner >>= 1;
    m.nHead >>= 1;
    while (m.nHead % m.nGroup) m.nGroup--;
    return true;
  }
  if (m.dState > 8) {
    m.dState >>= 1;
    return true;
  }
  return false;
}

/** Gemma's window (absent: gemma2's default 4096, gemma3 none), pattern and soft-cap keys. */
function gemmaWindowAndCaps(shape: Shape, rng: CaseRng, attentionCap: boolean): void {
  if (rng.chance(0.7)) shape.slidingWindow = rng.pick([1, 2, 3, 8, 64, 4096]);
  if (rng.chance(0.3)) shape.pattern = rng.pick([0, 1, 2, 6]);
  if (rng.chance(0.5)) shape.softcaps = { attention: attentionCap ? rng.pick([undefined, 0, 5, 50]) : undefined, final: rng.pick([undefined, 0, 3, 30]) };
  // Local blocks rotate unscaled, which YaRN's attention factor can't follow (refused).
  if (shape.ropeScaling?.type === "yarn" && rng.chance(0.8)) shape.ropeScaling = undefined;
}

/** The registered architectures the fuzzer draws cases from, in the registry's order. */
export const ARCHITECTURES: readonly Arch[] = supportedArchitectures().filter((a) => FUZZ_RECIPES[a] && "randomize" in FUZZ_RECIPES[a]);

/**
 * How the recipe table and the registry line up. `missing`: registered, no entry (the fuzzer
 * leaves them out until one is added); `notFuzzed`: left out on purpose, with the reason;
 * `unknown`: entries the registry does not have.
 */
export function fuzzCoverage(): { missing: string[]; notFuzzed: Record<string, string>; unknown: string[] } {
  const registered = supportedArchitectures();
  const notFuzzed: Record<string, string> = {};
  for (const [name, r] of Object.entries(FUZZ_RECIPES)) if ("notFuzzed" in r) notFuzzed[name] = r.notFuzzed;
  return {
    missing: registered.filter((a) => !FUZZ_RECIPES[a]),
    notFuzzed,
    unknown: Object.keys(FUZZ_RECIPES).filter((a) => !registered.includes(a)),
  };
}

function fuzzRecipe(arch: Arch): FuzzRecipe {
  const r = FUZZ_RECIPES[arch];
  if (!r || !("randomize" in r))
    throw new Error(`the fuzzer has no recipe for architecture "${arch}": add one to FUZZ_RECIPES in dev/fuzz-models.ts`);
  return r;
}

function randomShape(rng: CaseRng, arch: Arch, big: boolean): Shape {
  const type = rng.pick(weightTypes());
  const nLayer = big ? rng.int(1, 2) : rng.int(1, 3);
  let headDim: number, nHead: number, nEmbd: number, keyLength: boolean;
  if (big) {
    headDim = rng.pick([64, 128]);
    nEmbd = rng.pick(BIG_EMBD);
    nHead = nEmbd / headDim;
    keyLength = rng.chance(0.2);
  } else {
    headDim = rng.pick(SMALL_HEAD_DIMS);
    nHead = rng.pick([1, 1, 2, 3, 4, 6, 8, 12]);
    keyLength = rng.chance(fuzzRecipe(arch).keyLengthShare ?? 0.2);
    nEmbd = keyLength ? rng.pick(SMALL_WIDTHS) : nHead * headDim;
  }
  const nHeadKv = rng.pick(divisors(nHead));
  const ropeDims = rng.chance(0.7) || headDim < 4 ? headDim : 2 * rng.int(1, headDim / 2 - 1);
  const nTokens = 259 + rng.int(1, big ? 300 : 200);
  const shape: Shape = {
    arch,
    big,
    type,
    mixed: rng.chance(0.2),
    nLayer,
    nEmbd,
    nHead,
    nHeadKv,
    headDim,
    keyLength,
    ropeDims,
    nFf: big ? rng.pick(BIG_FF) : rng.pick(SMALL_FF),
    writeFfLength: rng.chance(0.8),
    nVocab: nTokens,
    nTokens,
    ctxTrain: rng.pick([0, 64, 512, 2048, 4096, 131072]),
    normEps: rng.pick([1e-5, 1e-6, 1e-12, 0.1]),
    freqBase: rng.pick([10000, 500000, 1e6, 1]),
    qkvBias: false,
    qkNorm: false,
    ffnBias: false,
    outBias: false,
    lmHeadBias: false,
    tied: rng.chance(0.3),
    ropeFreqs: false,
    slidingWindow: 0,
  };
  if (rng.chance(0.2))
    shape.ropeScaling = rng.chance(0.5)
      ? { type: "yarn", factor: rng.pick([2, 4, 40]), orig: rng.pick([256, 4096]) }
      : { type: rng.pick([undefined, "linear"]), factor: rng.pick([0.5, 2, 8]) };

  const moe = (shared: boolean): MoeSpec => {
    const nExpert = big ? rng.pick([4, 8, 16]) : rng.pick([1, 2, 3, 4, 8, 16, 32, 60]);
    const nFfExp = big ? rng.pick([512, 768, 1024, 1408]) : rng.pick(SMALL_FF);
    const spec: MoeSpec = {
      nExpert,
      nExpertUsed: rng.int(1, Math.min(nExpert, 8)),
      nFfExp,
      nFfShexp: shared ? (big ? rng.pick([512, 1408, 2048]) : rng.pick(SMALL_FF)) : 0,
      nShared: shared ? rng.int(1, 2) : 0,
      sharedGate: false,
      selectionBias: false,
      gating: 0,
      normTopK: rng.pick([undefined, true, false]),
      leadingDense: 0,
      nGroup: 0,
      nGroupUsed: 0,
      weightsScale: rng.pick([undefined, 1, 2.5, 16]),
    };
    return spec;
  };

  fuzzRecipe(arch).randomize(shape, { rng, big, moe });
  fitBudget(shape, rng, big ? BIG_BUDGET : SMALL_BUDGET);
  return shape;
}

/** Narrows a case until its weights fit `budget`, keeping realistic widths in the thousands where possible. */
function fitBudget(shape: Shape, rng: CaseRng, budget: number): void {
  for (let i = 0; i < 60 && weightBytes(shape) > budget; i++) {
    const m = shape.moe;
    const r = rng.int(0, 3);
    if (m && r === 0 && m.nExpert > 2) {
      m.nExpert = Math.max(2, m.nExpert >> 1);
      m.nExpertUsed = Math.min(m.nExpertUsed, m.nExpert);
      m.nGroup = m.nGroup && m.nExpert % m.nGroup === 0 ? m.nGroup : 0;
      m.nGroupUsed = Math.min(m.nGroupUsed, m.nGroup);
    } else if (m && r === 1 && m.nFfExp > 256) m.nFfExp = Math.max(256, m.nFfExp >> 1);
    else if (m && r === 1 && m.nFfShexp > 256) m.nFfShexp = Math.max(256, m.nFfShexp >> 1);
    else if (r === 2 && shape.nFf > 512) shape.nFf = Math.max(512, Math.floor(shape.nFf / 2 / 256) * 256);
    else if (shape.ssm && r === 3 && shrinkSsm(shape.ssm)) continue;
    else if (shape.nLayer > (shape.ssmLayers ? 2 : 1)) {
      shape.nLayer--;
      if (m) m.leadingDense = Math.min(m.leadingDense, shape.nLayer);
      if (Array.isArray(shape.pattern)) shape.pattern = shape.pattern.slice(0, shape.nLayer);
      fixHybridLayout(shape);
    } else if (shape.nHead > 1 && !shape.mla) {
      shape.nHead >>= 1;
      shape.nHeadKv = Math.min(shape.nHeadKv, shape.nHead);
      while (shape.nHead % shape.nHeadKv) shape.nHeadKv--;
      if (!shape.keyLength) shape.nEmbd = shape.nHead * shape.headDim;
    } else if (shape.nFf > 256) shape.nFf = Math.max(256, Math.floor(shape.nFf / 2 / 256) * 256);
    else if (m && m.nFfExp > 64) m.nFfExp >>= 1;
    else if (m && m.nExpert > 1) {
      m.nExpert >>= 1;
      m.nExpertUsed = Math.min(m.nExpertUsed, m.nExpert);
      m.nGroup = m.nGroupUsed = 0;
    } else if (shape.ssm) shrinkSsm(shape.ssm);
  }
}

function weightBytes(shape: Shape): number {
  return tensorsFor(shape, new CaseRng(0)).reduce((s, t) => s + tensorBytes(t.type, t.dims), 0);
}

// ---------------------------------------------------------------- the model as data

export interface TensorIR {
  name: string;
  type: number;
  dims: number[];
  /** A data offset a mutation set (relative to the data section); default: packed in order. */
  offset?: bigint;
  fill: Fill;
}

type Fill = "pool" | "nan" | "inf" | "huge" | "random" | "zero";

export interface ModelIR {
  metadata: Array<[string, GGUFKV]>;
  tensors: TensorIR[];
  alignment: number;
  /** Bytes cut off the end of the file. */
  truncate: number;
  version: number;
}

function blockInfo(type: number): { blockSize: number; typeSize: number } | undefined {
  return GGML_TYPE_INFO[type];
}

/** Bytes of a tensor as the GGUF layout sizes it (BigInt: mutated dims can be huge). */
function tensorBytesBig(type: number, dims: number[]): bigint {
  const info = blockInfo(type);
  if (!info) return 0n;
  const count = dims.reduce((a, d) => a * BigInt(Math.max(0, Math.floor(d))), 1n);
  const bs = BigInt(info.blockSize);
  return ((count + bs - 1n) / bs) * BigInt(info.typeSize);
}

function tensorBytes(type: number, dims: number[]): number {
  return Number(tensorBytesBig(type, dims));
}

/** The type a weight with rows of `cols` gets: the case's (or a random one if mixed), falling back like llama.cpp's quantizer. */
function weightType(shape: Shape, rng: CaseRng, cols: number): GGMLType {
  let t: GGMLType = shape.mixed ? rng.pick(weightTypes()) : shape.type;
  if (cols % GGML_TYPE_INFO[t].blockSize !== 0) t = cols % 32 === 0 ? GGMLType.Q8_0 : GGMLType.F16;
  return t;
}

function tensorsFor(shape: Shape, rng: CaseRng): TensorIR[] {
  const e = shape.nEmbd;
  const hd = shape.headDim;
  const hdv = shape.headDimV ?? hd;
  const out: TensorIR[] = [];
  const matmul = (name: string, dims: number[]) => out.push({ name, type: weightType(shape, rng, dims[0]), dims, fill: "pool" });
  const vector = (name: string, n: number) => out.push({ name, type: GGMLType.F32, dims: [n], fill: "pool" });
  matmul("token_embd.weight", [e, shape.nVocab]);
  if (shape.encoder) {
    encoderTensors(shape, shape.encoder, matmul, vector, out);
    return out;
  }
  // A Mamba-2 mixer as llama.cpp's converter writes it (dev/synthetic-model.ts ssmMixer).
  const ssmMixer = (p: string, s: SsmSpec) => {
    const ch = s.dInner + 2 * s.nGroup * s.dState;
    const param = (name: string, dims: number[]) => out.push({ name, type: GGMLType.F32, dims, fill: "pool" });
    matmul(`${p}ssm_in.weight`, [e, s.dInner + ch + s.nHead]);
    param(`${p}ssm_conv1d.weight`, [s.dConv, ch]);
    if (s.convBias) vector(`${p}ssm_conv1d.bias`, ch);
    vector(`${p}ssm_dt.bias`, s.nHead);
    param(`${p}ssm_a`, [1, s.nHead]);
    param(`${p}ssm_d`, [1, s.nHead]);
    param(`${p}ssm_norm.weight`, [s.dInner / s.nGroup, s.nGroup]);
    matmul(`${p}ssm_out.weight`, [s.dInner, e]);
  };
  for (let b = 0; b < shape.nLayer; b++) {
    const p = `blk.${b}.`;
    vector(`${p}attn_norm.weight`, e);
    const m = shape.mla;
    const ssm = ssmBlock(shape, b);
    if (ssm) {
      ssmMixer(p, shape.ssm!);
      if (pureSsm(shape)) continue;  // mamba2: no FFN either
    } else if (m) {
      const qWidth = shape.nHead * (m.nope + m.rope);
      if (m.qLoraRank > 0) {
        matmul(`${p}attn_q_a.weight`, [e, m.qLoraRank]);
        vector(`${p}attn_q_a_norm.weight`, m.qLoraRank);
        matmul(`${p}attn_q_b.weight`, [m.qLoraRank, qWidth]);
      } else matmul(`${p}attn_q.weight`, [e, qWidth]);
      matmul(`${p}attn_kv_a_mqa.weight`, [e, m.kvLoraRank + m.rope]);
      vector(`${p}attn_kv_a_norm.weight`, m.kvLoraRank);
      matmul(`${p}attn_k_b.weight`, [m.nope, m.kvLoraRank, shape.nHead]);
      matmul(`${p}attn_v_b.weight`, [m.kvLoraRank, m.v, shape.nHead]);
      matmul(`${p}attn_output.weight`, [shape.nHead * m.v, e]);
    } else {
      if (shape.fusedQkv) matmul(`${p}attn_qkv.weight`, [e, shape.nHead * hd + shape.nHeadKv * (hd + hdv)]);
      else {
        matmul(`${p}attn_q.weight`, [e, shape.nHead * hd]);
        matmul(`${p}attn_k.weight`, [e, shape.nHeadKv * hd]);
        matmul(`${p}attn_v.weight`, [e, shape.nHeadKv * hdv]);
      }
      matmul(`${p}attn_output.weight`, [shape.nHead * hdv, e]);
    }
    if (shape.qkvBias && !ssm) {
      vector(`${p}attn_q.bias`, shape.nHead * hd);
      vector(`${p}attn_k.bias`, shape.nHeadKv * hd);
      vector(`${p}attn_v.bias`, shape.nHeadKv * hdv);
    }
    if ((shape.outBias || shape.gptOss) && !ssm) vector(`${p}attn_output.bias`, e);
    if (shape.gptOss) vector(`${p}attn_sinks.weight`, shape.nHead);
    if (shape.postNorms) vector(`${p}post_attention_norm.weight`, e);
    if (shape.qkNorm) {
      vector(`${p}attn_q_norm.weight`, hd);
      vector(`${p}attn_k_norm.weight`, hd);
    }
    vector(`${p}${shape.gptOss ? "post_attention_norm" : "ffn_norm"}.weight`, e);
    const moe = shape.moe;
    if (moe && b >= moe.leadingDense) {
      matmul(`${p}ffn_gate_inp.weight`, [e, moe.nExpert]);
      matmul(`${p}ffn_gate_exps.weight`, [e, moe.nFfExp, moe.nExpert]);
      matmul(`${p}ffn_up_exps.weight`, [e, moe.nFfExp, moe.nExpert]);
      matmul(`${p}ffn_down_exps.weight`, [moe.nFfExp, e, moe.nExpert]);
      if (moe.selectionBias) vector(`${p}exp_probs_b.bias`, moe.nExpert);
      if (shape.gptOss) {
        vector(`${p}ffn_gate_inp.bias`, moe.nExpert);
        out.push({ name: `${p}ffn_gate_exps.bias`, type: GGMLType.F32, dims: [moe.nFfExp, moe.nExpert], fill: "pool" });
        out.push({ name: `${p}ffn_up_exps.bias`, type: GGMLType.F32, dims: [moe.nFfExp, moe.nExpert], fill: "pool" });
        out.push({ name: `${p}ffn_down_exps.bias`, type: GGMLType.F32, dims: [e, moe.nExpert], fill: "pool" });
      }
      if (moe.nFfShexp) {
        matmul(`${p}ffn_gate_shexp.weight`, [e, moe.nFfShexp]);
        matmul(`${p}ffn_up_shexp.weight`, [e, moe.nFfShexp]);
        matmul(`${p}ffn_down_shexp.weight`, [moe.nFfShexp, e]);
        if (moe.sharedGate) matmul(`${p}ffn_gate_inp_shexp.weight`, [e, 1]);
      }
    } else if (shape.fusedGateUp) {
      matmul(`${p}ffn_up.weight`, [e, 2 * shape.nFf]);
      matmul(`${p}ffn_down.weight`, [shape.nFf, e]);
    } else {
      matmul(`${p}ffn_gate.weight`, [e, shape.nFf]);
      matmul(`${p}ffn_up.weight`, [e, shape.nFf]);
      matmul(`${p}ffn_down.weight`, [shape.nFf, e]);
      if (shape.postNorms) vector(`${p}post_ffw_norm.weight`, e);
      if (shape.ffnBias) {
        vector(`${p}ffn_gate.bias`, shape.nFf);
        vector(`${p}ffn_up.bias`, shape.nFf);
        vector(`${p}ffn_down.bias`, e);
      }
    }
  }
  vector("output_norm.weight", e);
  if (shape.ropeFreqs) vector("rope_freqs.weight", shape.ropeDims / 2);
  if (shape.longRope?.long) vector("rope_factors_long.weight", shape.ropeDims / 2);
  if (shape.longRope?.short) vector("rope_factors_short.weight", shape.ropeDims / 2);
  if (!shape.tied) matmul("output.weight", [e, shape.nVocab]);
  if (shape.lmHeadBias) vector("output.bias", shape.nVocab);
  return out;
}

/** An encoder's tensors as llama.cpp's converter writes BERT-family files (dev/synthetic-model.ts encoderTensors). */
function encoderTensors(
  shape: Shape,
  enc: NonNullable<Shape["encoder"]>,
  matmul: (name: string, dims: number[]) => void,
  vector: (name: string, n: number) => void,
  out: TensorIR[],
): void {
  const e = shape.nEmbd, hd = shape.headDim, q = shape.nHead * hd, kv = shape.nHeadKv * hd;
  const table = (name: string, rows: number) => out.push({ name, type: GGMLType.F32, dims: [e, rows], fill: "pool" });
  table("token_types.weight", 2);
  if (enc.positionEmbeddings) table("position_embd.weight", Math.max(1, shape.ctxTrain));
  vector("token_embd_norm.weight", e);
  vector("token_embd_norm.bias", e);
  for (let b = 0; b < shape.nLayer; b++) {
    const p = `blk.${b}.`;
    if (enc.fusedQkv) {
      matmul(`${p}attn_qkv.weight`, [e, q + 2 * kv]);
      if (enc.biases) vector(`${p}attn_qkv.bias`, q + 2 * kv);
    } else {
      matmul(`${p}attn_q.weight`, [e, q]);
      matmul(`${p}attn_k.weight`, [e, kv]);
      matmul(`${p}attn_v.weight`, [e, kv]);
      if (enc.biases) {
        vector(`${p}attn_q.bias`, q);
        vector(`${p}attn_k.bias`, kv);
        vector(`${p}attn_v.bias`, kv);
      }
    }
    matmul(`${p}attn_output.weight`, [q, e]);
    if (enc.biases) vector(`${p}attn_output.bias`, e);
    vector(`${p}attn_output_norm.weight`, e);
    vector(`${p}attn_output_norm.bias`, e);
    if (!enc.gelu) matmul(`${p}ffn_gate.weight`, [e, shape.nFf]);
    matmul(`${p}ffn_up.weight`, [e, shape.nFf]);
    matmul(`${p}ffn_down.weight`, [shape.nFf, e]);
    if (enc.ffnBiases) {
      vector(`${p}ffn_up.bias`, shape.nFf);
      vector(`${p}ffn_down.bias`, e);
    }
    vector(`${p}layer_output_norm.weight`, e);
    vector(`${p}layer_output_norm.bias`, e);
  }
}

/** `${arch}.ssm.*`, as llama.cpp's converter writes them. */
function ssmMetadata(a: string, s: SsmSpec): Array<[string, GGUFKV]> {
  return [
    [`${a}.ssm.conv_kernel`, kv.u32(s.dConv)],
    [`${a}.ssm.inner_size`, kv.u32(s.dInner)],
    [`${a}.ssm.state_size`, kv.u32(s.dState)],
    [`${a}.ssm.time_step_rank`, kv.u32(s.nHead)],
    [`${a}.ssm.group_count`, kv.u32(s.nGroup)],
  ];
}

function metadataFor(shape: Shape): Array<[string, GGUFKV]> {
  const a = shape.arch;
  if (shape.ssm && pureSsm(shape))
    // mamba2: no attention, RoPE or FFN keys; head count and FFN width 0 ("unused").
    return [
      ["general.architecture", kv.str(a)],
      ["general.name", kv.str(`fuzz-${a}`)],
      [`${a}.context_length`, kv.u32(shape.ctxTrain)],
      [`${a}.embedding_length`, kv.u32(shape.nEmbd)],
      [`${a}.feed_forward_length`, kv.u32(0)],
      [`${a}.attention.head_count`, kv.u32(0)],
      [`${a}.block_count`, kv.u32(shape.nLayer)],
      ...ssmMetadata(a, shape.ssm),
      [`${a}.attention.layer_norm_rms_epsilon`, kv.f32(shape.normEps)],
      ...vocabMetadata(shape.nTokens),
    ];
  // A hybrid's head_count_kv: one entry per block, 0 for a Mamba-2 block (llama.cpp's converter).
  const kvHeads = shape.ssmLayers ? kv.i32Array(Int32Array.from(shape.ssmLayers, (x) => (x ? 0 : shape.nHeadKv))) : kv.u32(shape.nHeadKv);
  const m: Array<[string, GGUFKV]> = [
    ["general.architecture", kv.str(a)],
    ["general.name", kv.str(`fuzz-${a}`)],
    [`${a}.context_length`, kv.u32(shape.ctxTrain)],
    [`${a}.embedding_length`, kv.u32(shape.nEmbd)],
    [`${a}.block_count`, kv.u32(shape.nLayer)],
    [`${a}.attention.head_count`, kv.u32(shape.nHead)],
    [`${a}.attention.head_count_kv`, kvHeads],
    [`${a}.attention.${shape.encoder ? "layer_norm_epsilon" : "layer_norm_rms_epsilon"}`, kv.f32(shape.normEps)],
  ];
  // bert has absolute position embeddings and no RoPE keys; nomic-bert rotates.
  if (!shape.encoder?.positionEmbeddings)
    m.push([`${a}.rope.freq_base`, kv.f32(shape.freqBase)], [`${a}.rope.dimension_count`, kv.u32(shape.ropeDims)]);
  if (shape.encoder) m.push([`${a}.attention.causal`, kv.bool(false)]);
  if (shape.poolingType !== undefined) m.push([`${a}.pooling_type`, kv.u32(shape.poolingType)]);
  if (shape.writeFfLength) m.push([`${a}.feed_forward_length`, kv.u32(shape.nFf)]);
  m.push(...multiplierMetadata(a, shape.multipliers, shape.ropeFinetuned));
  if (shape.ssm) m.push(...ssmMetadata(a, shape.ssm));
  const mla = shape.mla;
  if (mla) {
    m.push(
      [`${a}.attention.q_lora_rank`, kv.u32(mla.qLoraRank)],
      [`${a}.attention.kv_lora_rank`, kv.u32(mla.kvLoraRank)],
      [`${a}.attention.key_length`, kv.u32(mla.kvLoraRank + mla.rope)],
      [`${a}.attention.value_length`, kv.u32(mla.kvLoraRank)],
      [`${a}.attention.key_length_mla`, kv.u32(mla.nope + mla.rope)],
      [`${a}.attention.value_length_mla`, kv.u32(mla.v)],
    );
    if (mla.yarnLogMul !== undefined) m.push([`${a}.rope.scaling.yarn_log_multiplier`, kv.f32(mla.yarnLogMul)]);
  } else if (shape.keyLength)
    m.push([`${a}.attention.key_length`, kv.u32(shape.headDim)], [`${a}.attention.value_length`, kv.u32(shape.headDimV ?? shape.headDim)]);
  if (shape.slidingWindow) m.push([`${a}.attention.sliding_window`, kv.u32(shape.slidingWindow)]);
  if (shape.softcaps?.attention !== undefined) m.push([`${a}.attn_logit_softcapping`, kv.f32(shape.softcaps.attention)]);
  if (shape.softcaps?.final !== undefined) m.push([`${a}.final_logit_softcapping`, kv.f32(shape.softcaps.final)]);
  if (shape.attnTemperature !== undefined) m.push([`${a}.attention.temperature_scale`, kv.f32(shape.attnTemperature)]);
  if (shape.yarnLogMul !== undefined) m.push([`${a}.rope.scaling.yarn_log_multiplier`, kv.f32(shape.yarnLogMul)]);
  if (shape.freqBaseSwa !== undefined) m.push([`${a}.rope.freq_base_swa`, kv.f32(shape.freqBaseSwa)]);
  if (typeof shape.pattern === "number") m.push([`${a}.attention.sliding_window_pattern`, kv.u32(shape.pattern)]);
  else if (shape.pattern) m.push([`${a}.attention.sliding_window_pattern`, kv.array(GGUFValueType.BOOL, shape.pattern)]);
  const rs = shape.ropeScaling;
  if (rs) {
    if (rs.type) m.push([`${a}.rope.scaling.type`, kv.str(rs.type)]);
    m.push([`${a}.rope.scaling.factor`, kv.f32(rs.factor)]);
    if (rs.orig) m.push([`${a}.rope.scaling.original_context_length`, kv.u32(rs.orig)]);
  }
  const moe = shape.moe;
  if (moe) {
    m.push([`${a}.expert_count`, kv.u32(moe.nExpert)], [`${a}.expert_used_count`, kv.u32(moe.nExpertUsed)]);
    m.push([`${a}.expert_feed_forward_length`, kv.u32(moe.nFfExp)]);
    if (moe.nFfShexp) m.push([`${a}.expert_shared_feed_forward_length`, kv.u32(moe.nFfShexp)]);
    if (moe.nShared) m.push([`${a}.expert_shared_count`, kv.u32(moe.nShared)]);
    if (moe.leadingDense) m.push([`${a}.leading_dense_block_count`, kv.u32(moe.leadingDense)]);
    if (moe.weightsScale !== undefined) m.push([`${a}.expert_weights_scale`, kv.f32(moe.weightsScale)]);
    if (moe.normTopK !== undefined) m.push([`${a}.expert_weights_norm`, kv.bool(moe.normTopK)]);
    if (moe.gating) m.push([`${a}.expert_gating_func`, kv.u32(moe.gating)]);
    if (moe.nGroup) m.push([`${a}.expert_group_count`, kv.u32(moe.nGroup)], [`${a}.expert_group_used_count`, kv.u32(moe.nGroupUsed)]);
  }
  return [...m, ...vocabMetadata(shape.nTokens)];
}

// ---------------------------------------------------------------- vocabulary

let vocabCache: string[] | undefined;

/** SentencePiece-style pieces: <unk>, <s>, </s>, the 256 byte tokens, then "▁a", "▁b", ... */
function vocabPieces(): string[] {
  if (vocabCache) return vocabCache;
  const pieces = ["<unk>", "<s>", "</s>"];
  for (let i = 0; i < 256; i++) pieces.push(`<0x${i.toString(16).toUpperCase().padStart(2, "0")}>`);
  const letters = "abcdefghijklmnopqrstuvwxyz";
  for (let i = 0; pieces.length < 1024; i++) {
    let s = "";
    for (let n = i; ; n = Math.floor(n / 26) - 1) {
      s = letters[n % 26] + s;
      if (n < 26) break;
    }
    pieces.push(`▁${s}`, s);
  }
  return (vocabCache = pieces);
}

function vocabMetadata(n: number): Array<[string, GGUFKV]> {
  const tokens = vocabPieces().slice(0, n);
  return [
    ["tokenizer.ggml.model", kv.str("llama")],
    ["tokenizer.ggml.tokens", kv.strArray(tokens)],
    ["tokenizer.ggml.scores", kv.f32Array(Float32Array.from(tokens, (_, i) => -i))],
    ["tokenizer.ggml.token_type", kv.i32Array(Int32Array.from(tokens, (_, i) => (i === 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1)))],
    ["tokenizer.ggml.bos_token_id", kv.u32(1)],
    ["tokenizer.ggml.eos_token_id", kv.u32(2)],
    ["tokenizer.ggml.unknown_token_id", kv.u32(0)],
  ];
}

// ---------------------------------------------------------------- coherent shape changes

/** Mamba-2 mixers at the edges of what is valid, tensors and keys agreeing. */
const reshapeSsm = (s: Shape, rng: CaseRng): string | undefined => {
  const m = s.ssm;
  if (!m) return undefined;
  const r = rng.int(0, 5);
  // States up to 16 MiB a block and sequence (4096 x 1024 at most).
  if (r === 0) m.dState = rng.pick([1, 2, 3, 5, 7, 100, 256, 1024].filter((d) => m.nGroup * d <= 4096 && m.dInner * d <= 1 << 22));
  else if (r === 1) m.nGroup = rng.chance(0.5) ? m.nHead : 1;
  else if (r === 2) {
    // Head size 1 (a head per channel), or one head over everything.
    if (rng.chance(0.5) && m.dInner <= 512) m.nHead = m.dInner;
    else m.nHead = 1;
    if (m.nHead % m.nGroup) m.nGroup = 1;
  } else if (r === 3) m.dConv = rng.pick([2, 3, 7, 16]);
  else if (r === 4) {
    // An inner size apart from llama.cpp's 2 n_embd: narrower or wider than the model.
    m.dInner = m.nHead * rng.pick([1, 3, 5, 17]);
  } else if (s.ssmLayers) {
    const n = s.nLayer;
    const layout = rng.int(0, 2);
    s.ssmLayers = Array.from({ length: n }, (_, i) => (layout === 0 ? i !== n - 1 : layout === 1 ? i % 2 === 0 : i !== 0));
    fixHybridLayout(s);
  } else {
    // The longest state the loader takes (4096), or as long as 16 MiB a block and sequence allow.
    m.dState = Math.min(4096, 2 ** Math.floor(Math.log2((1 << 22) / m.dInner)));
    m.nGroup = 1;
  }
  return `ssm conv ${m.dConv} inner ${m.dInner} state ${m.dState} groups ${m.nGroup} heads ${m.nHead}` + (s.ssmLayers ? ` layout ${hybridLayout(s)}` : "");
};

/**
 * A change to the model's shape carried through its metadata and every tensor, so the file
 * stays consistent: unusual but well-formed models, which load and reach the kernels (or
 * meet a coded refusal of a shape Tessera does not run).
 */
const RESHAPES: Array<(s: Shape, rng: CaseRng) => string | undefined> = [
  (s, rng) => {
    if (s.mla || pureSsm(s)) return undefined;
    s.keyLength = true;
    s.headDimV = rng.pick([1, 2, 8, 16, 40, 64, 128, s.headDim * 2, Math.max(1, s.headDim >> 1)]);
    return `value head size ${s.headDimV} (key ${s.headDim})`;
  },
  (s, rng) => {
    if (s.mla || pureSsm(s)) return undefined;
    s.keyLength = true;
    s.headDim = rng.pick([1, 3, 5, 9, 10, 18, 34, 66, 130, 512]);
    s.ropeDims = rng.chance(0.5) ? s.headDim : Math.max(2, (s.headDim >> 1) & ~1);
    return `head size ${s.headDim}, rope dims ${s.ropeDims}`;
  },
  (s, rng) => {
    if (pureSsm(s)) return undefined;
    s.ropeDims = rng.pick([0, 1, 2, 3, s.headDim - 1, s.headDim + 2]);
    return `rope dims ${s.ropeDims} of head size ${s.headDim}`;
  },
  (s, rng) => {
    if (s.mla || pureSsm(s)) return undefined;
    s.nHeadKv = rng.pick([1, s.nHead]);
    s.nHead = rng.chance(0.3) ? s.nHeadKv * rng.pick([5, 7, 16]) : s.nHead;
    if (!s.keyLength) s.nEmbd = s.nHead * s.headDim;
    return `heads ${s.nHead}/${s.nHeadKv}`;
  },
  (s, rng) => {
    const m = s.moe;
    if (!m) return undefined;
    const r = rng.int(0, 3);
    if (r === 0) m.nExpertUsed = m.nExpert;
    else if (r === 1) {
      m.nExpert = m.nExpertUsed = 1;
      m.nGroup = m.nGroupUsed = 0;
    } else if (r === 2) {
      m.nGroup = m.nExpert;
      m.nGroupUsed = 1;
      m.gating = 2;
    } else m.leadingDense = s.nLayer;
    return `experts ${m.nExpertUsed}/${m.nExpert}, groups ${m.nGroupUsed}/${m.nGroup}, leading dense ${m.leadingDense}`;
  },
  (s, rng) => {
    if (pureSsm(s)) return undefined;
    s.slidingWindow = rng.pick([1, 2, 5, 1 << 24]);
    return `sliding window ${s.slidingWindow}`;
  },
  (s, rng) => {
    s.ctxTrain = rng.pick([1, 2, 0x7fffffff]);
    return `context length ${s.ctxTrain}`;
  },
  (s, rng) => {
    if (s.big) return undefined;
    s.nLayer = rng.pick([4, 8]);
    const p = s.pattern;
    if (Array.isArray(p)) s.pattern = Array.from({ length: s.nLayer }, (_, i) => p[i % p.length]);
    fixHybridLayout(s);
    return `${s.nLayer} blocks`;
  },
  (s, rng) => {
    s.normEps = rng.pick([1e-30, 1, 0.999]);
    s.freqBase = rng.pick([1e-6, 1e30, 2]);
    return `norm epsilon ${s.normEps}, rope base ${s.freqBase}`;
  },
  reshapeSsm,
];

/** A hybrid's layout as one letter per block: M for Mamba-2, A for attention. */
function hybridLayout(s: Shape): string {
  return s.ssmLayers ? s.ssmLayers.map((x) => (x ? "M" : "A")).join("") : "";
}

// ---------------------------------------------------------------- mutations

interface MutationContext {
  ir: ModelIR;
  shape: Shape;
  rng: CaseRng;
}

/** Applies one mutation; returns what it did, or undefined when it does not apply to this model. */
type Mutation = (c: MutationContext) => string | undefined;

const INTERESTING_INTS = [0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 33, 63, 64, 65, 127, 128, 255, 256, 257, 511, 512, 1023, 1024, 4095, 4096, 4097, 65535, 65536, 1 << 20, (1 << 20) + 1, 1 << 24, 0x7fffffff, 0x80000000, 0xffffffff];
const INTERESTING_REALS = [0, -0, -1, 1e-45, 1e-38, 1e-12, 1e-6, 0.5, 1, 2, 1e6, 1e30, 3.4e38, Infinity, -Infinity, NaN];

/** Keys (without the architecture prefix) that hold hyperparameters, present or not. */
const ARCH_KEYS = [
  "context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count",
  "attention.head_count_kv", "attention.key_length", "attention.value_length", "attention.layer_norm_rms_epsilon",
  "attention.layer_norm_epsilon", "rope.freq_base", "rope.dimension_count", "rope.scaling.type", "rope.scaling.factor",
  "rope.scaling.original_context_length", "rope.scaling.attn_factor", "rope.scaling.yarn_beta_fast",
  "rope.scaling.yarn_beta_slow", "rope.scale_linear", "rope.scaling.yarn_log_multiplier", "expert_count",
  "expert_used_count", "expert_feed_forward_length", "expert_shared_feed_forward_length", "expert_shared_count",
  "leading_dense_block_count", "expert_weights_scale", "expert_weights_norm", "expert_gating_func",
  "expert_group_count", "expert_group_used_count", "attention.sliding_window", "attention.sliding_window_pattern",
  "attention.q_lora_rank", "attention.kv_lora_rank", "attention.key_length_mla", "attention.value_length_mla",
  // Granite's multipliers and RoPE switch.
  "embedding_scale", "residual_scale", "attention.scale", "logit_scale", "rope.scaling.finetuned",
  // Gemma's soft-caps and local RoPE base.
  "attn_logit_softcapping", "final_logit_softcapping", "rope.freq_base_swa",
  // Mistral 3's attention temperature.
  "attention.temperature_scale",
  // Mamba-2's sizes.
  "ssm.conv_kernel", "ssm.inner_size", "ssm.state_size", "ssm.group_count", "ssm.time_step_rank",
];
const TOKENIZER_KEYS = ["tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id"];
const INTEGER_VALUE_TYPES = [GGUFValueType.UINT8, GGUFValueType.INT8, GGUFValueType.UINT16, GGUFValueType.INT16, GGUFValueType.UINT32, GGUFValueType.INT32, GGUFValueType.UINT64, GGUFValueType.INT64];

function fmt(v: GGUFKV): string {
  if (v.type === GGUFValueType.ARRAY) {
    const a = v.value as GGUFArray;
    const items = Array.from(a.items as ArrayLike<unknown>).slice(0, 6).map((x) => (typeof x === "object" ? "[..]" : String(x)));
    return `${GGUFValueType[a.itemType]}[${a.items.length}](${items.join(",")}${a.items.length > 6 ? ",..." : ""})`;
  }
  const s = typeof v.value === "string" ? JSON.stringify(v.value.slice(0, 40)) : String(v.value);
  return `${GGUFValueType[v.type]} ${s}`;
}

function numericValue(v: GGUFKV): number | undefined {
  if (typeof v.value === "number") return v.value;
  if (typeof v.value === "bigint") return Number(v.value);
  if (typeof v.value === "boolean") return v.value ? 1 : 0;
  return undefined;
}

/** `n` stored as `type`, wrapped the way a C cast would (a u32 field written as u8 keeps its low byte). */
function valueOfType(type: GGUFValueType, n: number, nLayer: number, rng: CaseRng): GGUFKV {
  const int = Number.isFinite(n) ? Math.trunc(n) : 0;
  switch (type) {
    case GGUFValueType.UINT8:
      return kv.u8(int & 0xff);
    case GGUFValueType.INT8:
      return kv.i8(((int & 0xff) << 24) >> 24);
    case GGUFValueType.UINT16:
      return kv.u16(int & 0xffff);
    case GGUFValueType.INT16:
      return kv.i16(((int & 0xffff) << 16) >> 16);
    case GGUFValueType.UINT32:
      return kv.u32(int >>> 0);
    case GGUFValueType.INT32:
      return kv.i32(int | 0);
    case GGUFValueType.UINT64:
      return kv.u64(BigInt.asUintN(64, BigInt(int)));
    case GGUFValueType.INT64:
      return kv.i64(BigInt.asIntN(64, BigInt(int)));
    case GGUFValueType.FLOAT32:
      return kv.f32(n);
    case GGUFValueType.FLOAT64:
      return kv.f64(n);
    case GGUFValueType.BOOL:
      return kv.bool(n !== 0);
    case GGUFValueType.STRING:
      return kv.str(String(n));
    default: {
      // Arrays: one entry, one per block (equal or not), or the wrong count.
      const count = rng.pick([1, nLayer, nLayer + 1, Math.max(0, nLayer - 1), 0]);
      const items = Array.from({ length: count }, (_, i) => (rng.chance(0.8) || i === 0 ? int : int + 1) | 0);
      const itemType = rng.pick([GGUFValueType.INT32, GGUFValueType.UINT32, GGUFValueType.FLOAT32, GGUFValueType.INT64, GGUFValueType.STRING, GGUFValueType.BOOL]);
      if (itemType === GGUFValueType.INT32) return kv.i32Array(Int32Array.from(items));
      if (itemType === GGUFValueType.UINT32) return kv.u32Array(Uint32Array.from(items, (x) => x >>> 0));
      if (itemType === GGUFValueType.FLOAT32) return kv.f32Array(Float32Array.from(items));
      if (itemType === GGUFValueType.INT64) return kv.array(GGUFValueType.INT64, BigInt64Array.from(items, (x) => BigInt(x)));
      if (itemType === GGUFValueType.BOOL) return kv.array(GGUFValueType.BOOL, items.map((x) => x !== 0));
      return kv.strArray(items.map(String));
    }
  }
}

function archKey(c: MutationContext, rng: CaseRng, present: boolean): string | undefined {
  const prefix = `${c.shape.arch}.`;
  const keys = c.ir.metadata.map(([k]) => k).filter((k) => k.startsWith(prefix) || TOKENIZER_KEYS.includes(k));
  if (present) return keys.length ? rng.pick(keys) : undefined;
  const absent = ARCH_KEYS.map((k) => prefix + k).filter((k) => !keys.includes(k));
  return absent.length ? rng.pick(absent) : undefined;
}

function setKey(ir: ModelIR, key: string, value: GGUFKV): void {
  const i = ir.metadata.findIndex(([k]) => k === key);
  if (i >= 0) ir.metadata[i] = [key, value];
  else ir.metadata.push([key, value]);
}

function getKey(ir: ModelIR, key: string): GGUFKV | undefined {
  return ir.metadata.find(([k]) => k === key)?.[1];
}

/** A new value for a key, of its own type: edge values, off by one, doubled, halved. */
const metaValue: Mutation = ({ ir, shape, rng }) => {
  const key = archKey({ ir, shape, rng }, rng, true);
  if (!key) return undefined;
  const old = getKey(ir, key)!;
  let value: GGUFKV;
  const n = numericValue(old);
  if (old.type === GGUFValueType.FLOAT32 || old.type === GGUFValueType.FLOAT64) {
    value = { type: old.type, value: rng.chance(0.6) ? rng.pick(INTERESTING_REALS) : (n ?? 1) * rng.pick([0.5, 2, 10, -1]) };
  } else if (old.type === GGUFValueType.BOOL) value = kv.bool(!old.value);
  else if (old.type === GGUFValueType.STRING) value = kv.str(rng.pick(["", "yarn", "linear", "none", "longrope", "\u0000", "llama3"]));
  else if (old.type === GGUFValueType.ARRAY) value = valueOfType(GGUFValueType.ARRAY, rng.pick(INTERESTING_INTS), shape.nLayer, rng);
  else {
    const v = n ?? 0;
    const next = rng.pick([() => rng.pick(INTERESTING_INTS), () => v + 1, () => v - 1, () => v * 2, () => Math.floor(v / 2), () => rng.int(0, 9)])();
    value = valueOfType(old.type, next, shape.nLayer, rng);
  }
  setKey(ir, key, value);
  return `meta ${key}: ${fmt(old)} -> ${fmt(value)}`;
};

/** The same value under another GGUF type: a count as i8/u64/f32/bool/string/array. */
const metaRetype: Mutation = ({ ir, shape, rng }) => {
  const key = archKey({ ir, shape, rng }, rng, true);
  if (!key) return undefined;
  const old = getKey(ir, key)!;
  const n = numericValue(old) ?? rng.pick(INTERESTING_INTS);
  const type = rng.pick([...INTEGER_VALUE_TYPES, GGUFValueType.FLOAT32, GGUFValueType.FLOAT64, GGUFValueType.BOOL, GGUFValueType.STRING, GGUFValueType.ARRAY]);
  const value = valueOfType(type, n, shape.nLayer, rng);
  setKey(ir, key, value);
  return `meta ${key}: ${fmt(old)} -> ${fmt(value)}`;
};

const metaDelete: Mutation = ({ ir, rng }) => {
  const i = rng.int(0, ir.metadata.length - 1);
  const [key, old] = ir.metadata[i];
  ir.metadata.splice(i, 1);
  return `meta ${key}: ${fmt(old)} deleted`;
};

/** A key the base lacks: sliding windows on any architecture, expert keys on dense models, ... */
const metaAdd: Mutation = (c) => {
  const key = archKey(c, c.rng, false);
  if (!key) return undefined;
  const { rng, shape } = c;
  let value: GGUFKV;
  if (key.endsWith("scaling.type")) value = kv.str(rng.pick(["yarn", "linear", "none", "longrope"]));
  else if (/epsilon|factor|freq_base|beta|scale|multiplier/.test(key)) value = kv.f32(rng.chance(0.5) ? rng.pick([0.5, 1, 2, 4, 32]) : rng.pick(INTERESTING_REALS));
  else if (key.endsWith("expert_weights_norm") || key.endsWith("scaling.finetuned")) value = kv.bool(rng.chance(0.5));
  else if (key.endsWith("sliding_window_pattern") && rng.chance(0.5))
    value = kv.array(GGUFValueType.BOOL, Array.from({ length: rng.pick([shape.nLayer, shape.nLayer + 1]) }, () => rng.chance(0.5)));
  else value = kv.u32(rng.chance(0.6) ? rng.int(0, 8) : rng.pick(INTERESTING_INTS));
  setKey(c.ir, key, value);
  return `meta ${key}: added ${fmt(value)}`;
};

/** A per-block key written as one entry per block, equal or varying, or of the wrong length. */
const metaPerBlock: Mutation = ({ ir, shape, rng }) => {
  const a = shape.arch;
  const keys = ["attention.head_count", "attention.head_count_kv", "feed_forward_length", "expert_used_count", "expert_feed_forward_length"].map((k) => `${a}.${k}`).filter((k) => getKey(ir, k));
  if (!keys.length) return undefined;
  const key = rng.pick(keys);
  const v = numericValue(getKey(ir, key)!) ?? 1;
  const count = rng.chance(0.7) ? shape.nLayer : rng.pick([1, shape.nLayer + 1, 0]);
  const items = Int32Array.from({ length: count }, (_, i) => (i > 0 && rng.chance(0.2) ? v + rng.pick([-1, 1, v]) : v));
  const value = rng.chance(0.5) ? kv.i32Array(items) : kv.u32Array(Uint32Array.from(items, (x) => x >>> 0));
  setKey(ir, key, value);
  return `meta ${key}: per block ${fmt(value)}`;
};

const metaDuplicate: Mutation = ({ ir, rng }) => {
  const [key, v] = rng.pick(ir.metadata);
  ir.metadata.push([key, v]);
  return `meta ${key}: duplicated`;
};

/** The file read as another architecture (qwen3 as qwen3moe without experts, llama as mellum, ...). */
const archSwap: Mutation = ({ ir, shape, rng }) => {
  const to = rng.pick(ARCHITECTURES.filter((a) => a !== shape.arch));
  const prefix = `${shape.arch}.`;
  if (rng.chance(0.8)) ir.metadata = ir.metadata.map(([k, v]) => [k.startsWith(prefix) ? `${to}.${k.slice(prefix.length)}` : k, v]);
  setKey(ir, "general.architecture", kv.str(to));
  return `meta general.architecture: ${shape.arch} -> ${to}`;
};

function pickTensor(ir: ModelIR, rng: CaseRng): TensorIR | undefined {
  return ir.tensors.length ? rng.pick(ir.tensors) : undefined;
}

const HUGE_DIMS = [1 << 20, 0x7fffffff, 0x80000000, 0xffffffff, 2 ** 40, 2 ** 53 - 1];

/** One tensor's dims: off by one, doubled, halved, 1, swapped, a dim more or less, huge. */
const tensorDims: Mutation = ({ ir, rng }) => {
  const t = pickTensor(ir, rng);
  if (!t) return undefined;
  const before = `[${t.dims}]`;
  const d = rng.int(0, t.dims.length - 1);
  const op = rng.int(0, 9);
  if (op === 0) t.dims[d] += 1;
  else if (op === 1) t.dims[d] = Math.max(1, t.dims[d] - 1);
  else if (op === 2) t.dims[d] *= 2;
  else if (op === 3) t.dims[d] = Math.max(1, t.dims[d] >> 1);
  else if (op === 4) t.dims[d] = 1;
  else if (op === 5 && t.dims.length > 1) [t.dims[0], t.dims[1]] = [t.dims[1], t.dims[0]];
  else if (op === 6 && t.dims.length < 4) t.dims.push(rng.pick([1, 1, 2, 3]));
  else if (op === 7 && t.dims.length > 1) t.dims.pop();
  else if (op === 8) t.dims[d] = rng.pick(HUGE_DIMS);
  else t.dims[d] = rng.pick([0, 32, 64, 256, 1024]);
  return `tensor ${t.name}: dims ${before} -> [${t.dims}]`;
};

const OTHER_TYPES = [GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1, GGMLType.Q2_K, GGMLType.Q3_K, GGMLType.Q5_K, GGMLType.Q8_K, GGMLType.IQ4_NL, GGMLType.IQ4_XS, GGMLType.I8, GGMLType.I32, GGMLType.F64, GGMLType.MXFP4];

const tensorType: Mutation = ({ ir, rng }) => {
  const t = pickTensor(ir, rng);
  if (!t) return undefined;
  const before = GGML_TYPE_INFO[t.type]?.name ?? t.type;
  const r = rng.float();
  t.type = r < 0.7 ? rng.pick(weightTypes()) : r < 0.93 ? rng.pick(OTHER_TYPES) : rng.pick([4, 5, 31, 40, 255, 0x7fffffff]);
  return `tensor ${t.name}: type ${before} -> ${GGML_TYPE_INFO[t.type]?.name ?? t.type}`;
};

const tensorDrop: Mutation = ({ ir, rng }) => {
  const t = pickTensor(ir, rng);
  if (!t) return undefined;
  ir.tensors.splice(ir.tensors.indexOf(t), 1);
  return `tensor ${t.name}: dropped`;
};

const tensorDuplicate: Mutation = ({ ir, rng }) => {
  const t = pickTensor(ir, rng);
  if (!t) return undefined;
  ir.tensors.splice(rng.int(0, ir.tensors.length), 0, { ...t, dims: [...t.dims] });
  return `tensor ${t.name}: duplicated`;
};

/** A Mamba-2 mixer's tensors, as a block names them. */
const SSM_ROLE_NAMES = ["ssm_in.weight", "ssm_conv1d.weight", "ssm_conv1d.bias", "ssm_dt.bias", "ssm_a", "ssm_d", "ssm_norm.weight", "ssm_out.weight"];
const ROLE_NAMES = [
  "attn_norm.weight", "attn_norm.bias", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
  "attn_q.bias", "attn_k.bias", "attn_v.bias", "attn_output.bias", "attn_q_norm.weight", "attn_k_norm.weight",
  "attn_q_a.weight", "attn_q_a_norm.weight", "attn_q_b.weight", "attn_kv_a_mqa.weight", "attn_kv_a_norm.weight",
  "attn_k_b.weight", "attn_v_b.weight", "attn_kv_b.weight", "ffn_norm.weight", "ffn_norm.bias", "ffn_gate.weight",
  "ffn_up.weight", "ffn_down.weight", "ffn_gate.bias", "ffn_up.bias", "ffn_down.bias", "ffn_gate_inp.weight",
  "ffn_gate_exps.weight", "ffn_up_exps.weight", "ffn_down_exps.weight", "exp_probs_b.bias", "ffn_gate_shexp.weight",
  "ffn_up_shexp.weight", "ffn_down_shexp.weight", "ffn_gate_inp_shexp.weight",
  ...SSM_ROLE_NAMES,
];
const GLOBAL_NAMES = ["token_embd.weight", "output_norm.weight", "output_norm.bias", "output.weight", "output.bias", "rope_freqs.weight"];

function randomTensorName(shape: Shape, rng: CaseRng): string {
  const r = rng.float();
  if (r < 0.15) return rng.pick(GLOBAL_NAMES);
  if (r < 0.2) return rng.pick(["", "blk.-1.attn_q.weight", "blk.999999999999.ffn_up.weight", "blk.0x0.attn_q.weight", "blk..attn_k.weight", "blk.0", "token_embd", "\u00ff\u00fe"]);
  const block = rng.chance(0.85) ? rng.int(0, shape.nLayer - 1) : rng.pick([shape.nLayer, shape.nLayer + 1, 4096]);
  return `blk.${block}.${rng.pick(ROLE_NAMES)}`;
}

const tensorRename: Mutation = ({ ir, shape, rng }) => {
  const t = pickTensor(ir, rng);
  if (!t) return undefined;
  const before = t.name;
  t.name = randomTensorName(shape, rng);
  return `tensor ${before}: renamed ${JSON.stringify(t.name)}`;
};

/** Two tensors trade names (gate and up, q and k, a block's with another block's). */
const tensorSwapNames: Mutation = ({ ir, rng }) => {
  if (ir.tensors.length < 2) return undefined;
  const a = pickTensor(ir, rng)!;
  const peers = ir.tensors.filter((t) => t !== a && (rng.chance(0.3) || t.name.split(".")[1] === a.name.split(".")[1]));
  if (!peers.length) return undefined;
  const b = rng.pick(peers);
  [a.name, b.name] = [b.name, a.name];
  return `tensors ${b.name} and ${a.name}: names swapped`;
};

/** A tensor the base lacks, with the shape its role would have or a wrong one. */
const tensorExtra: Mutation = ({ ir, shape, rng }) => {
  const name = randomTensorName(shape, rng);
  const e = shape.nEmbd;
  const dims = rng.pick([[e], [e, e], [shape.headDim], [shape.nHead * shape.headDim], [shape.nVocab], [e, shape.nFf], [shape.ropeDims / 2 || 1], [e, 1], [e, shape.moe?.nExpert ?? 2], [rng.int(1, 64)]]);
  const type = name.endsWith(".bias") || name.includes("norm") || rng.chance(0.3) ? GGMLType.F32 : weightType(shape, rng, dims[0]);
  ir.tensors.splice(rng.int(0, ir.tensors.length), 0, { name, type, dims: [...dims], fill: "pool" });
  return `tensor ${name}: added ${GGML_TYPE_INFO[type].name} [${dims}]`;
};

/**
 * One layer's tensors of a family resized together (an FFN width, an expert count, a head
 * count in one block only): consistent per tensor, inconsistent across blocks or metadata.
 */
const familyResize: Mutation = ({ ir, shape, rng }) => {
  const families: Array<[RegExp, number, string]> = [
    [/ffn_(gate|up)\.weight$/, 1, "ffn width"],
    [/ffn_down\.weight$/, 0, "ffn width"],
    [/ffn_(gate|up)_exps\.weight$/, 1, "expert width"],
    [/ffn_down_exps\.weight$/, 0, "expert width"],
    [/ffn_(gate|up|down)_exps\.weight$|ffn_gate_inp\.weight$/, -1, "expert count"],
    [/attn_(q|k|v)\.weight$/, 1, "attention width"],
    [/ffn_(gate|up)_shexp\.weight$/, 1, "shared expert width"],
    [/attn_(k|v)_b\.weight$/, 2, "MLA heads"],
    [/ssm_in\.weight$/, 1, "ssm_in width"],
    [/ssm_conv1d\.weight$/, 1, "conv channels"],
    [/ssm_(a|d)$|ssm_dt\.bias$/, -1, "ssm heads"],
    [/ssm_out\.weight$|ssm_norm\.weight$/, 0, "ssm inner width"],
  ];
  const [re, dim, what] = rng.pick(families);
  const block = rng.chance(0.5) ? rng.int(0, shape.nLayer - 1) : -1;
  const hits = ir.tensors.filter((t) => re.test(t.name) && (block < 0 || t.name.startsWith(`blk.${block}.`)));
  if (!hits.length) return undefined;
  const at = (t: TensorIR) => (dim >= 0 ? dim : t.dims.length - 1);
  const old = hits[0].dims[at(hits[0])] ?? 1;
  const next = rng.pick([1, 2, old - 1, old + 1, old * 2, old + 32, old + 256].filter((x) => x >= 1));
  for (const t of hits) if (at(t) < t.dims.length) t.dims[at(t)] = next;
  return `${what} ${old} -> ${next} in ${block < 0 ? "every block" : `block ${block}`} (${hits.length} tensors)`;
};

/** The vocabulary sizes: embeddings fewer than tokens, LM head rows other than the embeddings'. */
const vocabResize: Mutation = ({ ir, shape, rng }) => {
  const targets = ir.tensors.filter((t) => /^(token_embd|output)\.(weight|bias)$/.test(t.name));
  if (!targets.length) return undefined;
  const next = rng.pick([1, 2, 3, shape.nTokens - 1, shape.nTokens + 1, shape.nVocab * 2, 65536]);
  const which = rng.chance(0.5) ? targets : [rng.pick(targets)];
  for (const t of which) t.dims[t.dims.length - 1] = next;
  return `vocab rows -> ${next} in ${which.map((t) => t.name).join(", ")}`;
};

/** The tokenizer's arrays against each other and the embeddings. */
const tokenizerMutation: Mutation = ({ ir, shape, rng }) => {
  const r = rng.int(0, 4);
  if (r === 0) {
    const n = rng.pick([shape.nVocab + 1, shape.nVocab + 100, 1, 3]);
    const tokens = vocabPieces().slice(0, Math.min(n, 1024));
    while (tokens.length < n) tokens.push(`x${tokens.length}`);
    setKey(ir, "tokenizer.ggml.tokens", kv.strArray(tokens));
    return `tokenizer: ${n} tokens for ${shape.nVocab} embeddings`;
  }
  if (r === 1) {
    setKey(ir, "tokenizer.ggml.scores", kv.f32Array(new Float32Array(rng.int(0, shape.nTokens + 5))));
    return "tokenizer: scores of another length";
  }
  if (r === 2) {
    setKey(ir, "tokenizer.ggml.token_type", kv.i32Array(Int32Array.from({ length: shape.nTokens }, () => rng.pick([-1, 0, 1, 2, 3, 4, 5, 6, 7, 99]))));
    return "tokenizer: random token types";
  }
  const key = rng.pick(TOKENIZER_KEYS);
  const value = kv.u32(rng.pick([shape.nTokens - 1, shape.nTokens, shape.nVocab, 0xffffffff, 3]));
  setKey(ir, key, value);
  return `tokenizer: ${key} = ${value.value}`;
};

/** Offsets: misaligned, on another tensor, past the end, huge. */
const tensorOffset: Mutation = ({ ir, rng }) => {
  const t = pickTensor(ir, rng);
  if (!t) return undefined;
  const other = pickTensor(ir, rng)!;
  const choice = rng.int(0, 4);
  const layout = layoutOf(ir);
  const own = layout.offsets[ir.tensors.indexOf(t)];
  const offset =
    choice === 0 ? own + 1n
    : choice === 1 ? layout.offsets[ir.tensors.indexOf(other)]
    : choice === 2 ? layout.end
    : choice === 3 ? BigInt(rng.pick(HUGE_DIMS)) * 32n
    : own + BigInt(ir.alignment);
  t.offset = offset;
  return `tensor ${t.name}: offset ${own} -> ${offset}`;
};

const tensorPoison: Mutation = ({ ir, rng }) => {
  const fill = rng.pick(["nan", "inf", "huge", "random", "zero"] as const);
  if (rng.chance(0.2)) {
    for (const t of ir.tensors) t.fill = fill;
    return `data: every tensor ${fill}`;
  }
  const t = pickTensor(ir, rng);
  if (!t) return undefined;
  t.fill = fill;
  return `tensor ${t.name}: data ${fill}`;
};

const fileTruncate: Mutation = ({ ir, rng }) => {
  ir.truncate = rng.pick([1, 31, 32, 4096, 1 << 20]);
  return `file: ${ir.truncate} bytes cut off the end`;
};

const fileAlignment: Mutation = ({ ir, rng }) => {
  const a = rng.pick([1, 8, 64, 4096, 0, 3, 48, 0x80000000]);
  setKey(ir, "general.alignment", kv.u32(a));
  // A power of two lays the data out for it; anything else the reader must refuse.
  if (a > 0 && (a & (a - 1)) === 0 && a <= 4096) ir.alignment = a;
  return `file: general.alignment ${a}`;
};

const fileVersion: Mutation = ({ ir, rng }) => {
  ir.version = rng.pick([1, 2, 4]);
  return `file: GGUF version ${ir.version}`;
};

/**
 * Mamba-2's own structure: an ssm.* size against its tensors (a wrong conv kernel, an inner
 * size ssm_in does not have, groups that do not divide the heads, a state of 0 or 2^32 - 1),
 * a mixer tensor missing, extra, of another layout or type, non-finite decays (A), skips (D),
 * time-step biases and conv weights; and a hybrid's per-block head_count_kv: a block's kind
 * flipped against its tensors, no attention block, KV heads varying, negative, too many or too
 * few entries, another item type.
 */
const ssmMutation: Mutation = ({ ir, shape, rng }) => {
  const s = shape.ssm;
  if (!s) return undefined;
  const a = shape.arch;
  const ssmTensors = ir.tensors.filter((t) => /\.ssm_/.test(t.name));
  const sizeKey = (key: string, values: number[]) => {
    const v = rng.pick(values);
    setKey(ir, `${a}.ssm.${key}`, kv.u32(v >>> 0));
    return `ssm: ${a}.ssm.${key} -> ${v >>> 0}`;
  };
  // Non-finite values and weight types weigh more: those files load, so they reach the scan.
  const r = rng.weighted([1, 1, 1, 1, 1, 1, 1, 3, 1, 2, 1, 2]);
  if (r === 0) return sizeKey("conv_kernel", [0, 1, s.dConv - 1, s.dConv + 1, 16, 17, 1 << 20]);
  if (r === 1) return sizeKey("inner_size", [s.dInner + s.nHead, Math.max(s.nHead, s.dInner - s.nHead), 2 * s.dInner, s.dInner >> 1, s.dInner + 1, 0, 1 << 20, (1 << 20) + 1]);
  if (r === 2) return sizeKey("group_count", [0, s.nHead + 1, 3, 2 * s.nGroup, s.dInner, s.dInner + 1, 0xffffffff]);
  if (r === 3) return sizeKey("state_size", [0, 1, s.dState + 1, 4096, 4097, 1 << 20, 0xffffffff]);
  if (r === 4) return sizeKey("time_step_rank", [0, 1, 2 * s.nHead, s.nHead + 1, s.dInner, s.dInner + 1]);
  if (r === 5 && ssmTensors.length) {
    // One block's tensor, or that role in every block.
    const t = rng.pick(ssmTensors);
    const role = t.name.slice(t.name.indexOf(".ssm_") + 1);
    const gone = rng.chance(0.6) ? [t] : ssmTensors.filter((x) => x.name.endsWith(`.${role}`));
    ir.tensors = ir.tensors.filter((x) => !gone.includes(x));
    return `ssm: ${gone.length > 1 ? `${role} of every block` : t.name} dropped`;
  }
  if (r === 6) {
    // A mixer tensor where none belongs: an attention block's, a block past the end, a second conv bias.
    const attention = Array.from({ length: shape.nLayer }, (_, b) => b).filter((b) => !ssmBlock(shape, b));
    const block = attention.length && rng.chance(0.6) ? rng.pick(attention) : rng.pick([shape.nLayer, shape.nLayer + 1, 0]);
    const role = rng.pick(SSM_ROLE_NAMES);
    const ch = s.dInner + 2 * s.nGroup * s.dState;
    const dims: Record<string, number[]> = {
      "ssm_in.weight": [shape.nEmbd, s.dInner + ch + s.nHead], "ssm_conv1d.weight": [s.dConv, ch], "ssm_conv1d.bias": [ch], "ssm_dt.bias": [s.nHead],
      ssm_a: [1, s.nHead], ssm_d: [1, s.nHead], "ssm_norm.weight": [s.dInner / s.nGroup, s.nGroup], "ssm_out.weight": [s.dInner, shape.nEmbd],
    };
    const name = `blk.${block}.${role}`;
    const type = role.endsWith("_in.weight") || role.endsWith("_out.weight") ? weightType(shape, rng, dims[role][0]) : GGMLType.F32;
    ir.tensors.splice(rng.int(0, ir.tensors.length), 0, { name, type, dims: [...dims[role]], fill: "pool" });
    return `ssm: ${name} added [${dims[role]}]`;
  }
  if (r === 7 && ssmTensors.length) {
    const fill = rng.pick(["nan", "inf", "huge"] as const);
    const role = rng.pick(["ssm_a", "ssm_d", "ssm_dt.bias", "ssm_conv1d.weight", "ssm_conv1d.bias", "ssm_norm.weight"]);
    const hits = ssmTensors.filter((t) => t.name.endsWith(`.${role}`));
    const which = rng.chance(0.5) ? hits : hits.slice(0, 1);
    for (const t of which) t.fill = fill;
    return which.length ? `ssm: ${role} ${fill} in ${which.length} block(s)` : undefined;
  }
  if (r === 8 && ssmTensors.length) {
    // Layouts a converter might write: 1-D decays, a flat norm, a transposed or 3-D conv.
    const t = rng.pick(ssmTensors);
    const before = `[${t.dims}]`;
    const n = t.dims.reduce((x, y) => x * y, 1);
    const layouts = [[n], [n, 1], [1, 1, n], [...t.dims].reverse(), [t.dims[0], 1, ...t.dims.slice(1)], [n + 1], [Math.max(1, n - 1)]];
    t.dims = rng.pick(layouts);
    return `ssm: ${t.name} dims ${before} -> [${t.dims}]`;
  }
  if (r === 9 && ssmTensors.length) {
    // Mostly a projection's (any weight type computes); the F32 parameters' others are refused.
    const projections = ssmTensors.filter((x) => /ssm_(in|out)\.weight$/.test(x.name));
    const t = rng.pick(projections.length && rng.chance(0.6) ? projections : ssmTensors);
    const before = GGML_TYPE_INFO[t.type]?.name ?? t.type;
    t.type = rng.chance(0.7) ? rng.pick(weightTypes()) : rng.pick(OTHER_TYPES);
    return `ssm: ${t.name} type ${before} -> ${GGML_TYPE_INFO[t.type]?.name ?? t.type}`;
  }
  if (r === 10) {
    // Sizes coherent with each other but not with the tensors: another state, groups or heads.
    const next = { ...s };
    const k = rng.int(0, 2);
    if (k === 0) next.dState = s.dState === 1 ? 2 : s.dState >> 1;
    else if (k === 1) next.nGroup = s.nGroup === 1 ? (s.nHead % 2 === 0 ? 2 : s.nHead) : 1;
    else next.nHead = s.nHead === 1 ? (s.dInner % 2 === 0 ? 2 : s.dInner) : 1;
    if (next.nHead % next.nGroup) next.nGroup = 1;
    for (const [key, value] of ssmMetadata(a, next)) setKey(ir, key, value);
    return `ssm: keys say state ${next.dState} groups ${next.nGroup} heads ${next.nHead} (tensors ${s.dState}, ${s.nGroup}, ${s.nHead})`;
  }
  if (r === 11 && shape.ssmLayers) {
    const key = `${a}.attention.head_count_kv`;
    const layout = shape.ssmLayers;
    const entries = layout.map((x) => (x ? 0 : shape.nHeadKv));
    const k = rng.int(0, 7);
    let value: GGUFKV;
    if (k === 0) {
      // One block's kind flipped, its tensors left as they were.
      const b = rng.int(0, entries.length - 1);
      entries[b] = entries[b] ? 0 : shape.nHeadKv;
      value = kv.i32Array(Int32Array.from(entries));
    } else if (k === 1) value = kv.i32Array(new Int32Array(entries.length));
    else if (k === 2) value = rng.chance(0.5) ? kv.u32(shape.nHeadKv) : kv.u32(0);
    else if (k === 3) {
      // KV heads varying between attention blocks (with one, a count the heads may not divide).
      const attention = entries.flatMap((x, i) => (x ? [i] : []));
      entries[attention[attention.length - 1]] = rng.chance(0.5) ? shape.nHeadKv + 1 : 2 * shape.nHeadKv;
      value = kv.i32Array(Int32Array.from(entries));
    }
    else if (k === 4) value = kv.i32Array(Int32Array.from(entries, (x) => (x ? x : rng.pick([-1, -2147483648, 0]))));
    else if (k === 5) value = kv.u32Array(Uint32Array.from(entries, (x) => (x ? rng.pick([x, 4097, 0xffffffff]) : 0)));
    else if (k === 6) value = kv.i32Array(Int32Array.from(rng.chance(0.5) ? [...entries, 0] : entries.slice(1)));
    else value = rng.chance(0.5) ? kv.f32Array(Float32Array.from(entries)) : kv.array(GGUFValueType.INT64, BigInt64Array.from(entries, (x) => BigInt(x)));
    const before = getKey(ir, key);
    setKey(ir, key, value);
    return `ssm: ${key} ${before ? fmt(before) : "absent"} -> ${fmt(value)}`;
  }
  return undefined;
};

/** Mutations and their weights: structure that passes the reader is where native code is reached. */
const MUTATIONS: Array<[Mutation, number, string]> = [
  [metaValue, 14, "metaValue"],
  [metaRetype, 6, "metaRetype"],
  [metaDelete, 5, "metaDelete"],
  [metaAdd, 8, "metaAdd"],
  [metaPerBlock, 4, "metaPerBlock"],
  [metaDuplicate, 1, "metaDuplicate"],
  [archSwap, 4, "archSwap"],
  [tensorDims, 10, "tensorDims"],
  [tensorType, 8, "tensorType"],
  [tensorDrop, 4, "tensorDrop"],
  [tensorDuplicate, 1, "tensorDuplicate"],
  [tensorRename, 4, "tensorRename"],
  [tensorSwapNames, 4, "tensorSwapNames"],
  [tensorExtra, 4, "tensorExtra"],
  [familyResize, 7, "familyResize"],
  [vocabResize, 3, "vocabResize"],
  [tokenizerMutation, 3, "tokenizer"],
  [tensorOffset, 2, "tensorOffset"],
  [tensorPoison, 10, "tensorPoison"],
  [fileTruncate, 1, "fileTruncate"],
  [fileAlignment, 2, "fileAlignment"],
  [fileVersion, 1, "fileVersion"],
  // Applies to Mamba-2 models only (else drawn again): about one mutation in four of theirs.
  [ssmMutation, 40, "ssm"],
];

/** A small model of `arch` (F32, two blocks, dense), for tests that build one file by hand. */
export function smallShape(arch: Arch, overrides: Partial<Shape> = {}): Shape {
  return {
    arch, big: false, type: GGMLType.F32, mixed: false, nLayer: 2, nEmbd: 64, nHead: 4, nHeadKv: 2, headDim: 16,
    keyLength: false, ropeDims: 16, nFf: 96, writeFfLength: true, nVocab: 300, nTokens: 300, ctxTrain: 512,
    normEps: 1e-5, freqBase: 10000, qkvBias: architecture(arch).qkvBias === "required", qkNorm: architecture(arch).qkNorm === "required",
    ffnBias: false, outBias: false, lmHeadBias: false, tied: false, ropeFreqs: false, slidingWindow: 0, ...overrides,
  };
}

/** The GGUF of a shape, unmutated (writeCase writes it). */
export function modelIR(shape: Shape, seed = 1): ModelIR {
  return { metadata: metadataFor(shape), tensors: tensorsFor(shape, new CaseRng(seed)), alignment: 32, truncate: 0, version: 3 };
}

// ---------------------------------------------------------------- cases

export interface FuzzCase {
  seed: number;
  index: number;
  shape: Shape;
  ir: ModelIR;
  mutations: string[];
  /** The kind of each mutation (its function's name, "reshape" for a coherent shape change). */
  kinds: string[];
  load: LoadOptions & { threads: number; contextSize: number };
  /** Tokens of the first evaluation; then one decode step; then `generate` tokens of greedy or sampled text (0: none). */
  prompt: number[];
  generate: number;
  temperature: number;
  /** Generations at once (the engine batches them; a small KV pool preempts and recomputes). */
  parallel: number;
}

export interface CaseOptions {
  /** Share of cases at realistic widths (default 0.25). */
  bigShare?: number;
  /** The architectures cases are drawn from, case I of archs[I % archs.length] (default: ARCHITECTURES). */
  archs?: readonly Arch[];
}

/** `--archs a,b,c` as a list of fuzzed architectures; throws naming any that is not one. */
export function parseArchs(list: string): Arch[] {
  const archs = list.split(",").map((a) => a.trim()).filter(Boolean);
  const unknown = archs.filter((a) => !ARCHITECTURES.includes(a));
  if (!archs.length || unknown.length)
    throw new Error(`--archs: ${unknown.length ? `not fuzzed: ${unknown.join(", ")}` : "empty"}; the fuzzed architectures are ${ARCHITECTURES.join(", ")}`);
  return archs;
}

export function makeCase(seed: number, index: number, options: CaseOptions = {}): FuzzCase {
  const rng = new CaseRng(caseSeed(seed, index));
  const archs = options.archs?.length ? options.archs : ARCHITECTURES;
  const arch = archs[index % archs.length];
  const shape = randomShape(rng, arch, rng.chance(options.bigShare ?? 0.25));
  const mutations: string[] = [];
  const kinds: string[] = [];
  // About one case in seven stays clean: those must all load and evaluate. Of the others, a
  // fifth change the shape coherently first (file stays consistent), before any other mutation.
  const clean = rng.chance(0.14);
  if (!clean && rng.chance(0.2)) {
    // Mamba-2 models take the mixer's own reshape half the time (most others touch attention).
    const what = (shape.ssm && rng.chance(0.5) ? reshapeSsm : rng.pick(RESHAPES))(shape, rng);
    if (what) {
      mutations.push(`shape: ${what}`);
      kinds.push("reshape");
    }
  }
  const ir: ModelIR = { metadata: metadataFor(shape), tensors: tensorsFor(shape, rng), alignment: 32, truncate: 0, version: 3 };
  const count = clean ? 0 : Math.max(mutations.length ? 0 : 1, rng.weighted([0, 6, 3, 1]) - mutations.length);
  for (let tries = 0; mutations.length < count && tries < 20; tries++) {
    const [mutate, , kind] = MUTATIONS[rng.weighted(MUTATIONS.map(([, w]) => w))];
    const what = mutate({ ir, shape, rng });
    if (what) {
      mutations.push(what);
      kinds.push(kind);
    }
  }
  // bert's contexts end at its position embeddings (a longer one is a coded refusal of the
  // load options, not of the file).
  const contextSize = Math.min(rng.pick([1, 2, 5, 16, 33, 64]), shape.encoder?.positionEmbeddings ? shape.ctxTrain : Infinity);
  // Quantized caches take head sizes in whole blocks of 32 (else a coded refusal, wasted on a clean case).
  const quantizableCache = shape.headDim % 32 === 0 && (shape.mla ? shape.mla.kvLoraRank : shape.headDimV ?? shape.headDim) % 32 === 0;
  const load = {
    backend: "cpu" as const,
    threads: rng.int(1, 2),
    contextSize,
    kvCacheType: quantizableCache ? rng.pick(["f16", "f16", "q8_0", "q4_0"] as const) : ("f16" as const),
    // An encoder runs an input in one step: a batch as large as the context (as its default).
    batchSize: shape.encoder ? rng.pick([contextSize, 512]) : rng.pick([1, 2, 3, 8, 512]),
    kvCacheTokens: rng.chance(0.3) ? rng.int(contextSize, 4 * contextSize) : undefined,
  };
  // Room for the decode step after the prompt, unless the context holds a single token.
  const promptLength = rng.int(1, Math.max(1, Math.min(contextSize - 1, 12)));
  const prompt = Array.from({ length: promptLength }, () => rng.int(3, shape.nTokens - 1));
  // Generation needs room for its tokens after the prompt (else a coded refusal up front).
  const generate = rng.chance(0.3) ? Math.min(rng.int(1, 4), contextSize - promptLength - 1) : 0;
  return {
    seed, index, shape, ir, mutations, kinds, load, prompt, generate: Math.max(0, generate), temperature: rng.pick([0, 0.8]),
    parallel: rng.chance(0.25) ? rng.int(2, 3) : 1,
  };
}

export function describeCase(c: FuzzCase): string {
  const s = c.shape;
  const type = s.mixed ? "mixed" : GGML_TYPE_INFO[s.type].name;
  const dims = `L${s.nLayer} e${s.nEmbd} h${s.nHead}/${s.nHeadKv}x${s.headDim}${s.headDimV !== undefined ? `/${s.headDimV}` : ""} ff${s.nFf} v${s.nVocab}` +
    (s.moe ? ` moe ${s.moe.nExpertUsed}/${s.moe.nExpert}x${s.moe.nFfExp}${s.moe.nFfShexp ? `+sh${s.moe.nFfShexp}` : ""}` : "") +
    (s.mla ? ` mla q${s.mla.qLoraRank} kv${s.mla.kvLoraRank} ${s.mla.nope}+${s.mla.rope} v${s.mla.v}` : "") +
    (s.ssm ? ` ssm c${s.ssm.dConv} i${s.ssm.dInner} s${s.ssm.dState} g${s.ssm.nGroup} h${s.ssm.nHead}${s.ssm.convBias ? "" : " nobias"}${s.ssmLayers ? ` ${hybridLayout(s)}` : ""}` : "");
  const opts = `ctx ${c.load.contextSize} batch ${c.load.batchSize} kv ${c.load.kvCacheType}${c.load.kvCacheTokens ? `x${c.load.kvCacheTokens}` : ""} threads ${c.load.threads}` +
    `; prompt ${c.prompt.length}${c.generate ? `, generate ${c.generate} x${c.parallel} at t=${c.temperature}` : ""}`;
  const mutations = c.mutations.length ? c.mutations.join("; ") : "none";
  return `TESSERA_FUZZ_SEED=${c.seed} case ${c.index}: ${s.arch} ${type} ${dims}${s.big ? " (realistic)" : ""}; ${opts}; mutations: ${mutations}`;
}

// ---------------------------------------------------------------- writing

interface Layout {
  offsets: bigint[];
  sizes: bigint[];
  end: bigint;
}

function layoutOf(ir: ModelIR): Layout {
  const offsets: bigint[] = [];
  const sizes: bigint[] = [];
  let at = 0n;
  const align = BigInt(ir.alignment);
  for (const t of ir.tensors) {
    const size = tensorBytesBig(t.type, t.dims);
    offsets.push(t.offset ?? at);
    sizes.push(size);
    at += ((size + align - 1n) / align) * align;
  }
  return { offsets, sizes, end: at };
}

class Sink {
  buf = Buffer.alloc(1 << 16);
  length = 0;
  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u8(v: number) {
    this.reserve(1);
    this.buf.writeUInt8(v & 0xff, this.length++);
  }
  u32(v: number) {
    this.reserve(4);
    this.length = this.buf.writeUInt32LE(v >>> 0, this.length);
  }
  u64(v: bigint) {
    this.reserve(8);
    this.length = this.buf.writeBigUInt64LE(BigInt.asUintN(64, v), this.length);
  }
  string(s: string) {
    const b = Buffer.from(s, "utf8");
    this.u64(BigInt(b.length));
    this.reserve(b.length);
    this.length += b.copy(this.buf, this.length);
  }
  scalar(type: GGUFValueType, v: unknown) {
    this.reserve(8);
    const b = this.buf;
    switch (type) {
      case GGUFValueType.UINT8: case GGUFValueType.INT8: case GGUFValueType.BOOL:
        return this.u8(Number(v));
      case GGUFValueType.UINT16: case GGUFValueType.INT16:
        this.length = b.writeUInt16LE(Number(v) & 0xffff, this.length);
        return;
      case GGUFValueType.UINT32: case GGUFValueType.INT32:
        return this.u32(Number(v));
      case GGUFValueType.FLOAT32:
        this.length = b.writeFloatLE(Number(v), this.length);
        return;
      case GGUFValueType.FLOAT64:
        this.length = b.writeDoubleLE(Number(v), this.length);
        return;
      case GGUFValueType.UINT64: case GGUFValueType.INT64:
        return this.u64(BigInt(v as bigint));
      case GGUFValueType.STRING:
        return this.string(String(v));
    }
  }
  value(type: GGUFValueType, v: GGUFKV["value"]) {
    if (type !== GGUFValueType.ARRAY) return this.scalar(type, v);
    const a = v as GGUFArray;
    this.u32(a.itemType);
    this.u64(BigInt(a.items.length));
    for (const item of Array.from(a.items as ArrayLike<unknown>)) {
      if (a.itemType === GGUFValueType.ARRAY) this.value(GGUFValueType.ARRAY, item as GGUFArray);
      else this.scalar(a.itemType, typeof item === "boolean" ? Number(item) : item);
    }
  }
}

const pools = new Map<string, Uint8Array>();

/** WRITE_CAP bytes of data for a tensor: real encodings of small Gaussian values, or poison. */
function poolBytes(type: number, fill: Fill): Uint8Array {
  const key = `${type}:${fill}`;
  let pool = pools.get(key);
  if (pool) return pool;
  pool = new Uint8Array(WRITE_CAP);
  if (fill === "pool" && computeTypes().has(type)) {
    const info = GGML_TYPE_INFO[type];
    const count = Math.floor(WRITE_CAP / info.typeSize / 8) * 8 * info.blockSize;
    const values = new Float32Array(count);
    const rng = new Rng(type + 1);
    for (let i = 0; i < count; i++) values[i] = (rng.next() + rng.next() + rng.next() - 1.5) * 0.1;
    pool.set(quantize(type, values, info.blockSize));
  } else if (fill === "nan" || fill === "inf" || fill === "huge") {
    // One pattern for every type: F32 words and the F16/BF16 halves (and quant block scales) read as NaN, +Inf or near-max values.
    const word = fill === "nan" ? 0x7fc07e00 : fill === "inf" ? 0x7f807c00 : 0x7f7f7bff;
    new DataView(pool.buffer).setUint32(0, word, true);
    for (let i = 4; i < pool.length; i += 4) pool.copyWithin(i, 0, 4);
  } else if (fill === "random" || fill === "pool") {
    const rng = new Rng(type * 7 + 3);
    for (let i = 0; i < pool.length; i++) pool[i] = Math.floor(rng.next() * 256);
  }
  pools.set(key, pool);
  return pool;
}

/** Writes the case's GGUF (sparse: tensor data past WRITE_CAP is a hole); returns its size. */
export function writeCase(file: string, ir: ModelIR): number {
  const h = new Sink();
  h.u32(GGUF_MAGIC);
  h.u32(ir.version);
  h.u64(BigInt(ir.tensors.length));
  h.u64(BigInt(ir.metadata.length));
  for (const [key, value] of ir.metadata) {
    h.string(key);
    h.u32(value.type);
    h.value(value.type, value.value);
  }
  const layout = layoutOf(ir);
  ir.tensors.forEach((t, i) => {
    h.string(t.name);
    h.u32(t.dims.length);
    for (const d of t.dims) h.u64(BigInt(Math.max(0, Math.floor(d))));
    h.u32(t.type);
    h.u64(layout.offsets[i]);
  });
  while (h.length % ir.alignment) h.u8(0);
  const dataStart = BigInt(h.length);
  let size = dataStart + layout.end;
  if (size > BigInt(FILE_CAP)) size = BigInt(FILE_CAP);
  size -= BigInt(Math.min(ir.truncate, Number(size)));
  const fd = fs.openSync(file, "w");
  try {
    fs.writeSync(fd, h.buf, 0, Math.min(h.length, Number(size)), 0);
    ir.tensors.forEach((t, i) => {
      const at = dataStart + layout.offsets[i];
      if (t.fill === "zero" || at >= size) return;
      const n = Number([layout.sizes[i], BigInt(WRITE_CAP), size - at].reduce((a, b) => (a < b ? a : b)));
      if (n > 0) fs.writeSync(fd, poolBytes(t.type, t.fill), 0, n, Number(at));
    });
    fs.ftruncateSync(fd, Number(size));
  } finally {
    fs.closeSync(fd);
  }
  return Number(size);
}

// ---------------------------------------------------------------- running

export type Stage = "load" | "evaluate" | "decode" | "generate";

export interface CaseResult {
  /** "ok", or the TesseraError's code. */
  outcome: string;
  /** How far the case got: the stage that failed, or "generate"/"decode" when it all worked. */
  stage: Stage;
  message?: string;
}

/** A failure that is neither "ok" nor a coded TesseraError with one of FILE_CODES. */
export class UncodedError extends Error {}

/**
 * The codes a damaged or unsupported file may get. The cases' own arguments (options, tokens,
 * context) are always valid, so any other code (ERR_INVALID_ARGUMENT from C++ refusing a plan
 * TypeScript let through, ERR_OUT_OF_CONTEXT, ERR_INTERNAL) is a finding too: a bad file
 * reported as something else.
 */
export const FILE_CODES: ReadonlySet<string> = new Set([
  "ERR_GGUF_MALFORMED", "ERR_GGUF_UNSUPPORTED", "ERR_UNKNOWN_ARCHITECTURE", "ERR_UNSUPPORTED_QUANT_TYPE",
  "ERR_MODEL_INCOMPATIBLE", "ERR_TOKENIZER", "ERR_NON_FINITE", "ERR_OUT_OF_MEMORY",
]);

/** Loads and evaluates one case. Throws UncodedError for anything but success or a coded TesseraError of FILE_CODES. */
export async function runCase(c: FuzzCase, dir: string, keep?: string): Promise<CaseResult> {
  const file = keep ?? path.join(dir, `case-${c.index}.gguf`);
  writeCase(file, c.ir);
  let stage: Stage = "load";
  let model: Awaited<ReturnType<typeof loadModel>> | undefined;
  try {
    model = await loadModel(file, c.load);
    stage = "evaluate";
    if (c.shape.encoder) {
      // An encoder embeds (whole inputs, pooled as the file says or by mean) and has no LM head.
      const vectors = await model.embed([c.prompt, c.prompt.slice(0, Math.max(1, c.prompt.length >> 1))], { pooling: c.temperature > 0 ? "mean" : undefined });
      // One vector per input (pooling "none": one per token).
      if (vectors.length !== 2 || vectors.some((v) => v.length === 0 || v.length % model!.info.nEmbd !== 0))
        throw new UncodedError(`embeddings of lengths ${vectors.map((v) => v.length)} for n_embd ${model.info.nEmbd}`);
      return { outcome: "ok", stage };
    }
    const session = model.createSession();
    const logits = await session.evaluate(c.prompt);
    if (logits.length !== model.info.nVocab) throw new UncodedError(`logits of length ${logits.length} for ${model.info.nVocab} tokens`);
    stage = "decode";
    if (c.prompt.length < c.load.contextSize) await session.evaluate([c.prompt[0]]);
    session.dispose();
    if (c.generate > 0) {
      stage = "generate";
      const m = model;
      await Promise.all(
        Array.from({ length: c.parallel }, (_, k) =>
          m.complete([...c.prompt.slice(k), ...c.prompt.slice(0, k)], { maxTokens: c.generate, temperature: c.temperature, seed: c.index + k }),
        ),
      );
    }
    return { outcome: "ok", stage };
  } catch (e) {
    if (e instanceof UncodedError) throw e;
    // An encoder whose file names a pooling Tessera lacks (llama.cpp's reranking head, 4) loads,
    // and embed() without an explicit pooling refuses it with ERR_UNSUPPORTED, saying which to pass.
    const embedRefusal = c.shape.encoder && stage === "evaluate" && isTesseraError(e) && e.code === "ERR_UNSUPPORTED";
    if (!isTesseraError(e) || !(FILE_CODES.has(e.code) || embedRefusal))
      throw new UncodedError(`${stage}: ${isTesseraError(e) ? `${e.code}: ` : ""}${String((e as Error)?.stack ?? e)}`);
    return { outcome: e.code, stage, message: e.message };
  } finally {
    model?.dispose();
    if (!keep) fs.rmSync(file, { force: true });
  }
}

// ---------------------------------------------------------------- workers and the driver

/** One line per event on a worker's stdout, written synchronously so a crash cannot lose the last. */
function emit(line: object): void {
  const bytes = Buffer.from(JSON.stringify(line) + "\n");
  for (let at = 0; at < bytes.length; ) {
    try {
      at += fs.writeSync(1, bytes, at);
    } catch (e) {
      // A non-blocking pipe the driver has not drained yet: try again.
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
    }
  }
}

async function worker(seed: number, from: number, to: number, options: CaseOptions): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tessera-fuzz-"));
  // Which ASan runtime and addon this process really runs with, so a sanitized run can prove it was one.
  loadNative();
  const maps = fs.existsSync("/proc/self/maps") ? fs.readFileSync("/proc/self/maps", "utf8") : "";
  const addon = maps.split("\n").find((l) => l.endsWith("tessera.node"))?.split(/\s+/).pop() ?? "";
  emit({ hello: { asan: /libasan\.so/.test(maps), addon } });
  // TESSERA_FUZZ_INJECT="1:crash,3:hang,4:report,5:pause": faults at given cases, to test the
  // driver ("pause": the worker stops itself with SIGSTOP and is continued 9 s later).
  const inject = new Map((process.env.TESSERA_FUZZ_INJECT ?? "").split(",").filter(Boolean).map((x) => [Number(x.split(":")[0]), x.split(":")[1]]));
  try {
    for (let i = from; i < to; i++) {
      const c = makeCase(seed, i, options);
      const type = c.shape.mixed ? "mixed" : GGML_TYPE_INFO[c.shape.type].name;
      emit({ start: i, desc: describeCase(c), clean: c.mutations.length === 0, big: c.shape.big, arch: c.shape.arch, type, kinds: c.kinds });
      const fault = inject.get(i);
      if (fault === "crash") process.abort();
      if (fault === "report") {
        fs.writeSync(2, "==0==ERROR: AddressSanitizer: injected by TESSERA_FUZZ_INJECT\n");
        process.abort();
      }
      if (fault === "hang") for (;;);
      if (fault === "pause") {
        spawn("sh", ["-c", `sleep 9; kill -CONT ${process.pid}`], { detached: true, stdio: "ignore" }).unref();
        process.kill(process.pid, "SIGSTOP");
      }
      const t0 = performance.now();
      try {
        const r = await runCase(c, dir);
        emit({ done: i, outcome: r.outcome, stage: r.stage, ms: Math.round(performance.now() - t0), message: r.outcome === "ok" ? undefined : r.message?.slice(0, 300) });
      } catch (e) {
        emit({ done: i, outcome: "UNCODED", stage: "?", ms: Math.round(performance.now() - t0), message: String((e as Error).message ?? e).slice(0, 2000) });
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export interface Finding {
  kind: "uncoded" | "crash" | "hang" | "sanitizer";
  index: number;
  desc: string;
  detail: string;
}

export interface RunSummary {
  seed: number;
  /** The run's --archs (absent: every fuzzed architecture) and first case index. */
  archs?: string[];
  from: number;
  cases: number;
  /** Outcome ("ok" or an error code) -> count. */
  outcomes: Record<string, number>;
  /** Stage reached by cases that loaded: evaluate/decode/generate. */
  evaluated: number;
  generated: number;
  clean: { total: number; ok: number; failures: string[] };
  big: { total: number; evaluated: number };
  /** Cases and cases that loaded, by architecture and by weight type ("mixed": per tensor). */
  byArch: Record<string, { cases: number; evaluated: number }>;
  byType: Record<string, { cases: number; evaluated: number }>;
  /** Cases with a mutation of each kind, and how many of those still loaded. */
  byMutation: Record<string, { cases: number; evaluated: number }>;
  findings: Finding[];
  seconds: number;
  /** Slowest case: its milliseconds and description. */
  slowest: { ms: number; desc: string };
  /** The first case of each "outcome@stage", with its message: what each refusal looks like. */
  examples: Record<string, string>;
  /** Whether every worker ran with the ASan runtime and build-san's addon mapped (checked in the worker). */
  sanitized: boolean;
}

export interface RunOptions extends CaseOptions {
  seed: number;
  count: number;
  /** First case index (default 0). */
  from?: number;
  /** Worker processes at once (default 1). */
  jobs?: number;
  /** A case running longer is a hang: the worker is killed (default 120 s). */
  caseTimeoutMs?: number;
  /** Cases per worker process before it is replaced (bounds memory growth; default 400, less when count / jobs is). */
  casesPerWorker?: number;
  /** Environment of the workers (e.g. the sanitizer's, from sanitizedEnv()). */
  env?: NodeJS.ProcessEnv;
  /** Stop at the first finding (default false: keep going, restarting the worker). */
  stopOnFinding?: boolean;
  onProgress?: (s: RunSummary) => void;
}

/** How often a worker's case timeout is checked (see runWorker). */
const TIMEOUT_TICK_MS = 250;

const SANITIZER_REPORT = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: (Address|UndefinedBehavior)Sanitizer/;

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), path.basename(path.dirname(path.dirname(fileURLToPath(import.meta.url)))) === "dist" ? "../.." : "..");
/** The compiled worker (tsc's output), which the driver runs in child processes. */
export const workerScript = path.join(repoRoot, "dist/dev/fuzz-models.js");

/** The environment scripts/sanitized.sh sets up for build-san, or why there is none. */
export function sanitizedEnv(): { env?: NodeJS.ProcessEnv; reason?: string } {
  const addon = path.join(repoRoot, "build-san/Release/tessera.node");
  if (!fs.existsSync(addon)) return { reason: `no sanitizer build at ${addon} (scripts/sanitized.sh build)` };
  const r = spawnSync("bash", [path.join(repoRoot, "scripts/sanitized.sh"), "env"], { encoding: "utf8" });
  if (r.status !== 0) return { reason: `scripts/sanitized.sh env failed: ${r.stderr.trim()}` };
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const line of r.stdout.trim().split("\n")) {
    const eq = line.indexOf("=");
    env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return { env };
}

/** Runs cases [from, from + count) in worker processes; every crash, hang, sanitizer report and uncoded error is a finding. */
export async function runFuzz(o: RunOptions): Promise<RunSummary> {
  const t0 = performance.now();
  const from = o.from ?? 0;
  const end = from + o.count;
  // Blocks of at most 400, and small enough that every lane gets one.
  const perWorker = o.casesPerWorker ?? Math.min(400, Math.ceil(o.count / Math.max(1, o.jobs ?? 1)));
  const timeout = o.caseTimeoutMs ?? 120_000;
  const s: RunSummary = {
    seed: o.seed, archs: o.archs?.length ? [...o.archs] : undefined, from, cases: 0, outcomes: {}, evaluated: 0, generated: 0,
    clean: { total: 0, ok: 0, failures: [] }, big: { total: 0, evaluated: 0 }, findings: [], seconds: 0, slowest: { ms: 0, desc: "" },
    examples: {}, sanitized: true, byArch: {}, byType: {}, byMutation: {},
  };
  let next = from;
  let stop = false;
  const count = (outcome: string) => (s.outcomes[outcome] = (s.outcomes[outcome] ?? 0) + 1);

  /** Runs [start, stop) in one worker; resolves with the index to resume from (after a crash, the next case). */
  const runWorker = (start: number, limit: number): Promise<number> =>
    new Promise((resolve) => {
      const archArgs = o.archs?.length ? ["--archs", o.archs.join(",")] : [];
      const child: ChildProcess = spawn(process.execPath, [workerScript, "worker", "--seed", String(o.seed), "--from", String(start), "--to", String(limit), "--big-share", String(o.bigShare ?? 0.25), ...archArgs], {
        env: o.env ?? process.env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let current: { index: number; desc: string; clean: boolean; big: boolean; arch: string; type: string; kinds: string[] } | undefined;
      let resumeAt = start;
      let stderr = "";
      let buffered = "";
      let hung = false;
      // The timeout counts running time only: a long run may be paused (SIGSTOP to its process
      // group, e.g. during a benchmark), and on SIGCONT a wall-clock timer would fire at once
      // and report the case then running as a hang. Each tick counts the time since the last
      // one, at most two ticks' worth (a larger gap is this process stopped, the worker with
      // it), and nothing while the worker itself is stopped (/proc state T).
      let left = 0;
      let last = performance.now();
      const arm = (ms: number) => {
        left = ms;
        last = performance.now();
      };
      const stopped = () => {
        try {
          // "pid (comm) STATE ppid ...": the state follows the last ")".
          const stat = fs.readFileSync(`/proc/${child.pid}/stat`, "utf8");
          const state = stat.charAt(stat.lastIndexOf(")") + 2);
          return state === "T" || state === "t";
        } catch {
          return false;  // no /proc (not Linux) or the worker is gone
        }
      };
      const timer = setInterval(() => {
        const now = performance.now();
        if (!stopped()) left -= Math.min(now - last, 2 * TIMEOUT_TICK_MS);
        last = now;
        if (left <= 0 && !hung) {
          hung = true;
          child.kill("SIGKILL");
        }
      }, TIMEOUT_TICK_MS);
      // Start-up (Node, the compiled modules, the addon; slow on a loaded machine) gets its own
      // allowance, so a short case timeout measures the case alone.
      arm(Math.max(timeout, 60_000));
      child.stderr!.on("data", (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-20000);
      });
      child.stdout!.on("data", (d: Buffer) => {
        buffered += d.toString();
        let nl: number;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (!line.startsWith("{")) continue;
          let m;
          try {
            m = JSON.parse(line);
          } catch {
            continue; // not one of the worker's lines
          }
          if (m.hello !== undefined) {
            if (!m.hello.asan || !m.hello.addon.includes("build-san")) s.sanitized = false;
          } else if (m.start !== undefined) {
            current = { index: m.start, desc: m.desc, clean: m.clean, big: m.big, arch: m.arch, type: m.type, kinds: m.kinds };
            arm(timeout);
          } else if (m.done !== undefined && current) {
            s.cases++;
            resumeAt = m.done + 1;
            if (m.ms > s.slowest.ms) s.slowest = { ms: m.ms, desc: current.desc };
            if (current.big) s.big.total++;
            const arch = (s.byArch[current.arch] ??= { cases: 0, evaluated: 0 });
            const type = (s.byType[current.type] ??= { cases: 0, evaluated: 0 });
            const kinds = [...new Set(current.kinds)].map((k) => (s.byMutation[k] ??= { cases: 0, evaluated: 0 }));
            arch.cases++;
            type.cases++;
            for (const k of kinds) k.cases++;
            if (current.clean) s.clean.total++;
            if (m.outcome === "UNCODED") {
              count("UNCODED");
              s.findings.push({ kind: "uncoded", index: m.done, desc: current.desc, detail: m.message });
              if (o.stopOnFinding) stop = true;
            } else {
              count(m.outcome);
              const key = `${m.outcome}@${m.stage}`;
              if (!s.examples[key]) s.examples[key] = `${current.desc}: ${m.message ?? ""}`;
              const loaded = m.outcome === "ok" || m.stage !== "load";
              if (loaded) {
                s.evaluated++;
                arch.evaluated++;
                type.evaluated++;
                for (const k of kinds) k.evaluated++;
              }
              if (loaded && current.big) s.big.evaluated++;
              if (m.outcome === "ok" && m.stage === "generate") s.generated++;
              if (current.clean) {
                if (m.outcome === "ok") s.clean.ok++;
                else if (s.clean.failures.length < 20) s.clean.failures.push(`${current.desc}: ${m.outcome} ${m.message}`);
              }
            }
            current = undefined;
            if (stop) child.kill("SIGKILL");
          }
        }
      });
      child.on("close", (code, signal) => {
        clearInterval(timer);
        if (current) {
          s.cases++;
          const report = SANITIZER_REPORT.test(stderr);
          const kind = hung ? "hang" : report ? "sanitizer" : "crash";
          count(kind.toUpperCase());
          s.findings.push({ kind, index: current.index, desc: current.desc, detail: `exit ${code}, signal ${signal}: ${stderr.slice(-6000)}` });
          if (o.stopOnFinding) stop = true;
          resumeAt = current.index + 1;
        } else if (SANITIZER_REPORT.test(stderr)) {
          s.findings.push({ kind: "sanitizer", index: resumeAt - 1, desc: "after the last case", detail: stderr.slice(-6000) });
          if (o.stopOnFinding) stop = true;
        } else if ((code !== 0 || signal) && !stop) {
          s.findings.push({ kind: "crash", index: resumeAt, desc: "worker failed between cases", detail: `exit ${code}, signal ${signal}: ${stderr.slice(-3000)}` });
          if (o.stopOnFinding || resumeAt === start) stop = true;
        }
        resolve(resumeAt);
      });
    });

  const lane = async () => {
    while (!stop && next < end) {
      const start = next;
      const limit = Math.min(end, start + perWorker);
      next = limit;
      let at = start;
      // Reported after each worker (a crash or hang ends one), not only at the end.
      while (!stop && at < limit) {
        at = await runWorker(at, limit);
        o.onProgress?.({ ...s, seconds: (performance.now() - t0) / 1000 });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.jobs ?? 1) }, lane));
  s.seconds = (performance.now() - t0) / 1000;
  return s;
}

// ---------------------------------------------------------------- command line

function args(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++)
    if (argv[i].startsWith("--")) out.set(argv[i].slice(2), argv[i + 1] !== undefined && !argv[i + 1].startsWith("--") ? argv[++i] : "true");
  return out;
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  const a = args(rest);
  const seed = Number(a.get("seed") ?? process.env.TESSERA_FUZZ_SEED ?? Date.now() >>> 0);
  const bigShare = Number(a.get("big-share") ?? 0.25);
  // The same option in run, its workers and case: which architecture case I is depends on it.
  const archs = a.has("archs") ? parseArchs(a.get("archs")!) : undefined;
  if (command === "worker") {
    await worker(seed, Number(a.get("from")), Number(a.get("to")), { bigShare, archs });
  } else if (command === "case") {
    const c = makeCase(seed, Number(a.get("index") ?? 0), { bigShare, archs });
    console.log(describeCase(c));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tessera-fuzz-"));
    try {
      console.log(JSON.stringify(await runCase(c, dir, a.get("keep"))));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  } else if (command === "run") {
    let env: NodeJS.ProcessEnv | undefined;
    if (a.has("sanitized")) {
      const r = sanitizedEnv();
      if (!r.env) throw new Error(r.reason);
      env = r.env;
    }
    const count = Number(a.get("count") ?? 1000);
    const from = Number(a.get("from") ?? 0);
    console.log(`fuzzing ${count} cases from ${from}, TESSERA_FUZZ_SEED=${seed}${env ? " under ASan+UBSan" : ""}${archs ? ` of ${archs.join(", ")}` : ""}`);
    const replay = `node dist/dev/fuzz-models.js case --seed ${seed} --index I${archs ? ` --archs ${archs.join(",")}` : ""}${a.has("big-share") ? ` --big-share ${bigShare}` : ""}`;
    console.log(`replay case I: ${env ? "scripts/sanitized.sh run " : ""}${replay}`);
    const coverage = fuzzCoverage();
    if (coverage.missing.length)
      console.warn(`NOT FUZZED: ${coverage.missing.join(", ")} (registered, no entry in FUZZ_RECIPES of dev/fuzz-models.ts)`);
    let last = 0;
    let reported = 0;
    // A long run may be stopped before its end: findings print as they come, and the summary
    // file is rewritten at every progress report.
    const report = (p: RunSummary, final: boolean) => {
      for (const f of p.findings.slice(reported)) console.log(`FINDING ${f.kind} ${f.desc}\n${f.detail}\n`);
      reported = p.findings.length;
      if (final || p.cases - last >= 1000) {
        last = p.cases;
        console.log(`${p.cases} cases, ${p.evaluated} evaluated, ${p.findings.length} findings, ${p.seconds.toFixed(0)} s`);
        if (a.has("summary")) fs.writeFileSync(a.get("summary")!, JSON.stringify(p, null, 2));
      }
    };
    const summary = await runFuzz({
      seed, count, from, jobs: Number(a.get("jobs") ?? 1), bigShare, archs, env,
      caseTimeoutMs: Number(a.get("timeout-s") ?? 120) * 1000,
      onProgress: (p) => report(p, false),
    });
    report(summary, true);
    console.log(JSON.stringify(summary, null, 2));
    process.exitCode = summary.findings.length ? 1 : 0;
  } else {
    console.error("usage: fuzz-models.js run --count N [--seed S] [--from I] [--archs a,b] [--sanitized] [--jobs J] [--timeout-s T] [--summary file.json]\n" +
      "       fuzz-models.js case --seed S --index I [--archs a,b] [--keep model.gguf]");
    process.exitCode = 2;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
