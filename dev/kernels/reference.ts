/**
 * Float64 reference implementations of the CPU ops, for the kernel harness. They follow
 * the op definitions (native/cpu/ops.h) directly, without the kernels' tricks, and — for
 * quantized matmuls — can emulate the activation encoding so the comparison isolates the
 * kernel's arithmetic from the (intended) activation rounding.
 */
import { fromHalf, toHalf } from "../../lib/gguf/quantize.js";
import type { ActivationFormat } from "../../lib/native.js";

/** Round to nearest, ties to even (the kernels' rounding mode). */
function rne(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}

/**
 * Q8_1's second field per 32-value block: s = d * sum(q) in fp32 from the unrounded scale,
 * stored in fp16 (as llama.cpp's quantize_row_q8_1 and Tessera's quantize_act write it).
 * Returns, per block of x [rows][cols], how far that stored s is from the sum of the block's
 * encoded values (fp16 d times each q), which is what a Q4_1/Q5_1 weight's minimum m
 * multiplies: the kernel's product exceeds a reference fed encodedActivations by m times it.
 */
export function q8_1SumError(x: Float32Array): Float64Array {
  const f = Math.fround;
  const out = new Float64Array(x.length / 32);
  for (let b = 0; b < out.length; b++) {
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[b * 32 + i]));
    const id = amax ? f(127 / amax) : 0;
    let sum = 0;
    for (let i = 0; i < 32; i++) sum += rne(f(x[b * 32 + i] * id));
    const stored = fromHalf(toHalf(f(f(amax / 127) * sum)));
    out[b] = stored - fromHalf(toHalf(f(amax / 127))) * sum;
  }
  return out;
}

/**
 * The activation values a kernel multiplies when its dot product takes `format` (see
 * quantize_act.cpp; a weight type's format is its row of native/core/weight_types.h, through
 * weightTypeRow in ./harness.ts), so a new weight type needs no case here.
 */
export function encodedActivations(format: ActivationFormat, x: Float32Array, cols: number): Float64Array {
  const y = new Float64Array(x.length);
  const f = Math.fround;
  if (format === "F16") for (let i = 0; i < x.length; i++) y[i] = fromHalf(toHalf(x[i]));
  else if (format === "BF16") {
    const buf = new Float32Array(1);
    const bits = new Uint32Array(buf.buffer);
    for (let i = 0; i < x.length; i++) {
      buf[0] = x[i];
      const w = bits[0];
      bits[0] = ((w + 0x7fff + ((w >>> 16) & 1)) >>> 16) << 16;
      y[i] = buf[0];
    }
  } else if (format === "Q8_0" || format === "Q8_1") {
    // Q8_1 holds Q8_0's values; its extra fp16 d * sum(q) is not an activation value.
    for (let b = 0; b < x.length / 32; b++) {
      let amax = 0;
      for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[b * 32 + i]));
      const id = amax ? f(127 / amax) : 0;
      const d = fromHalf(toHalf(f(amax / 127)));
      for (let i = 0; i < 32; i++) y[b * 32 + i] = d * rne(f(x[b * 32 + i] * id));
    }
  } else if (format === "Q8_K") {
    for (let b = 0; b < x.length / 256; b++) {
      let amax = 0;
      let max = 0;
      for (let i = 0; i < 256; i++)
        if (Math.abs(x[b * 256 + i]) > amax) {
          amax = Math.abs(x[b * 256 + i]);
          max = x[b * 256 + i];
        }
      if (amax === 0) continue;
      const iscale = f(-127 / max);
      const d = f(1 / iscale);
      for (let i = 0; i < 256; i++) y[b * 256 + i] = d * Math.min(127, rne(f(iscale * x[b * 256 + i])));
    }
  } else if (format === "F32") for (let i = 0; i < x.length; i++) y[i] = x[i];
  else throw new Error(`no reference encoding for activation format ${String(format)}`);
  if (cols <= 0) throw new Error("cols must be positive");
  return y;
}

/** y[t][r] = Σ_c w[r][c] · x[t][c] */
export function matmulRef(w: Float64Array, rows: number, cols: number, x: ArrayLike<number>, nTokens: number): Float64Array {
  const y = new Float64Array(nTokens * rows);
  for (let t = 0; t < nTokens; t++)
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += w[r * cols + c] * x[t * cols + c];
      y[t * rows + r] = s;
    }
  return y;
}

export function rmsNormRef(x: Float32Array, weight: Float32Array | null, nRows: number, dim: number, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < nRows; r++) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[r * dim + i] ** 2;
    const scale = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) y[r * dim + i] = x[r * dim + i] * scale * (weight ? weight[i] : 1);
  }
  return y;
}

export function layerNormRef(x: Float32Array, weight: Float32Array | null, bias: Float32Array | null, nRows: number, dim: number, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < nRows; r++) {
    let mean = 0;
    for (let i = 0; i < dim; i++) mean += x[r * dim + i];
    mean /= dim;
    let variance = 0;
    for (let i = 0; i < dim; i++) variance += (x[r * dim + i] - mean) ** 2;
    const scale = 1 / Math.sqrt(variance / dim + eps);
    for (let i = 0; i < dim; i++) y[r * dim + i] = (x[r * dim + i] - mean) * scale * (weight ? weight[i] : 1) + (bias ? bias[i] : 0);
  }
  return y;
}

export interface RopeRefParams {
  neox: boolean;
  nDims: number;
  freqBase: number;
  /** 1 / context-extension factor (linear, YaRN and llama3 scaling) */
  freqScale: number;
  freqFactors?: Float32Array;
  scaling?: "none" | "linear" | "yarn" | "llama3";
  nCtxOrig?: number;
  /** YaRN: weight of the ramp between interpolated and original angles, and magnitude factor */
  extFactor?: number;
  attnFactor?: number;
  betaFast?: number;
  betaSlow?: number;
  /** llama3: wavelengths below nCtxOrig/high keep their frequency, above nCtxOrig/low are scaled fully */
  lowFreqFactor?: number;
  highFreqFactor?: number;
}

/**
 * Rotary embedding from the published formulas: pair i turns by pos * base^(-2i/nDims).
 * Linear scaling multiplies the angle by freqScale. YaRN (Peng et al. 2023, as in ggml)
 * blends the scaled and unscaled angle with a ramp over the pair index between the dims
 * that complete betaFast and betaSlow turns in nCtxOrig, and scales the magnitude by
 * attnFactor * (1 + 0.1 ln(1/freqScale)). Llama 3.1 divides each frequency by 1/freqScale,
 * 1, or a wavelength-smoothed blend of the two.
 */
export function ropeRef(x: Float32Array, pos: Int32Array, nTokens: number, nHeads: number, headDim: number, p: RopeRefParams): Float64Array {
  const y = Float64Array.from(x);
  const scaling = p.scaling ?? (p.freqScale === 1 ? "none" : "linear");
  const ext = scaling === "yarn" ? (p.extFactor ?? 0) : 0;
  const corrDim = (nRot: number) => (p.nDims * Math.log((p.nCtxOrig ?? 0) / (nRot * 2 * Math.PI))) / (2 * Math.log(p.freqBase));
  const lo = Math.max(0, Math.floor(corrDim(p.betaFast ?? 32)));
  const hi = Math.min(p.nDims - 1, Math.ceil(corrDim(p.betaSlow ?? 1)));
  const mscale = scaling === "yarn" ? (p.attnFactor ?? 1) * (ext ? 1 + 0.1 * Math.log(1 / p.freqScale) : 1) : 1;
  const llama3Divisor = (freq: number) => {
    const factor = 1 / p.freqScale, low = p.lowFreqFactor ?? 1, high = p.highFreqFactor ?? 4, nCtx = p.nCtxOrig ?? 0;
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < nCtx / high) return 1;
    if (wavelen > nCtx / low) return factor;
    const smooth = (nCtx / wavelen - low) / (high - low);
    return 1 / ((1 - smooth) / factor + smooth);
  };
  for (let t = 0; t < nTokens; t++)
    for (let h = 0; h < nHeads; h++) {
      const o = (t * nHeads + h) * headDim;
      for (let i = 0; i < p.nDims / 2; i++) {
        const freq = p.freqBase ** ((-2 * i) / p.nDims);
        let extrap = pos[t] * freq;
        if (p.freqFactors) extrap /= p.freqFactors[i];
        let theta: number;
        if (scaling === "llama3") theta = p.freqFactors ? extrap : extrap / llama3Divisor(freq);
        else if (scaling === "none") theta = extrap;
        else {
          theta = p.freqScale * extrap;
          if (ext) {
            const mix = (1 - Math.min(1, Math.max(0, (i - lo) / Math.max(0.001, hi - lo)))) * ext;
            theta = theta * (1 - mix) + extrap * mix;
          }
        }
        const a = p.neox ? i : 2 * i;
        const b = p.neox ? i + p.nDims / 2 : 2 * i + 1;
        const x0 = x[o + a], x1 = x[o + b];
        const c = Math.cos(theta) * mscale, s = Math.sin(theta) * mscale;
        y[o + a] = x0 * c - x1 * s;
        y[o + b] = x0 * s + x1 * c;
      }
    }
  return y;
}

export function swigluRef(gate: Float32Array, up: Float32Array, gelu: boolean | "oai"): Float64Array {
  const y = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i];
    if (gelu === "oai") {
      // gpt-oss: x = min(g, 7), y = clamp(u, -7, 7), x * sigmoid(1.702 x) * (y + 1).
      const x = Math.min(g, 7), u = Math.min(Math.max(up[i], -7), 7);
      y[i] = (x / (1 + Math.exp(-1.702 * x))) * (u + 1);
      continue;
    }
    const a = gelu ? 0.5 * g * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * g * (1 + 0.044715 * g * g))) : g / (1 + Math.exp(-g));
    y[i] = a * up[i];
  }
  return y;
}

export function softmaxRef(x: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) max = Math.max(max, x[i]);
  const y = new Float64Array(x.length);
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += y[i] = Math.exp(x[i] - max);
  for (let i = 0; i < x.length; i++) y[i] /= sum;
  return y;
}

/** x [nRows][width] with each run of n values multiplied by the orthonormal Sylvester-Hadamard matrix of size n. */
export function hadamardRef(x: ArrayLike<number>, nRows: number, width: number, n: number): Float64Array {
  const y = new Float64Array(nRows * width);
  const sign = (i: number, j: number) => {
    let b = i & j, parity = 0;
    while (b) {
      parity ^= b & 1;
      b >>= 1;
    }
    return parity ? -1 : 1;
  };
  for (let r = 0; r < nRows; r++)
    for (let c = 0; c < width; c += n)
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += sign(i, j) * x[r * width + c + j];
        y[r * width + c + i] = s / Math.sqrt(n);
      }
  return y;
}

export interface AttentionRefArgs {
  nTokens: number;
  nCtx: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  headDimV: number;
  slidingWindow: number;
  scale: number;
  softcap: number;
  /** Per head, a logit in the softmax denominator with no value (gpt-oss's sinks). */
  sinks?: ArrayLike<number>;
}

/** Queries are the last nTokens positions of the nCtx-long sequence. */
export function attentionRef(q: Float32Array, k: Float32Array, v: Float32Array, a: AttentionRefArgs): Float64Array {
  const out = new Float64Array(a.nTokens * a.nHead * a.headDimV);
  const group = a.nHead / a.nHeadKv;
  for (let t = 0; t < a.nTokens; t++) {
    const pos = a.nCtx - a.nTokens + t;
    const lo = a.slidingWindow > 0 ? Math.max(0, pos - a.slidingWindow + 1) : 0;
    for (let h = 0; h < a.nHead; h++) {
      const g = Math.floor(h / group);
      const scores: number[] = [];
      for (let j = lo; j <= pos; j++) {
        let s = 0;
        for (let i = 0; i < a.headDim; i++) s += q[(t * a.nHead + h) * a.headDim + i] * k[(j * a.nHeadKv + g) * a.headDim + i];
        s *= a.scale;
        if (a.softcap) s = a.softcap * Math.tanh(s / a.softcap);
        scores.push(s);
      }
      // A sink is one more score whose probability is dropped.
      const p = a.sinks ? softmaxRef([...scores, a.sinks[h]]) : softmaxRef(scores);
      for (let i = 0; i < a.headDimV; i++) {
        let acc = 0;
        for (let j = lo; j <= pos; j++) acc += p[j - lo] * v[(j * a.nHeadKv + g) * a.headDimV + i];
        out[(t * a.nHead + h) * a.headDimV + i] = acc;
      }
    }
  }
  return out;
}

/** Per-head matrices w [nHead][rows][cols], x head-major [nHead][nTokens][cols]: y[t][h][r] = Σ_c w[h][r][c] · x[h][t][c]. */
export function headMatmulRef(w: Float64Array, nHead: number, rows: number, cols: number, x: ArrayLike<number>, nTokens: number): Float64Array {
  const y = new Float64Array(nTokens * nHead * rows);
  for (let h = 0; h < nHead; h++)
    for (let t = 0; t < nTokens; t++)
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let c = 0; c < cols; c++) s += w[(h * rows + r) * cols + c] * x[(h * nTokens + t) * cols + c];
        y[(t * nHead + h) * rows + r] = s;
      }
  return y;
}

/**
 * Mamba's causal depthwise conv over one sequence's rows (native/cpu/ssm_conv.cpp):
 * y[t][c] = Σ_k win_t[k] · w[c][k] + bias[c] over the dConv - 1 inputs before row t (the first
 * from `state` [dConv - 1][channels], oldest first) and x[t][c]; also the window it leaves.
 */
export function ssmConvRef(state: Float32Array, x: Float32Array, nRows: number, w: Float32Array, bias: Float32Array, channels: number, dConv: number): { y: Float64Array; state: Float64Array } {
  const y = new Float64Array(nRows * channels);
  const out = new Float64Array((dConv - 1) * channels);
  // The whole input stream of a channel: the window, then the rows.
  const at = (i: number, c: number) => (i < dConv - 1 ? state[i * channels + c] : x[(i - dConv + 1) * channels + c]);
  for (let c = 0; c < channels; c++) {
    for (let t = 0; t < nRows; t++) {
      let s = 0;
      for (let k = 0; k < dConv; k++) s += at(t + k, c) * w[c * dConv + k];
      y[t * channels + c] = s + bias[c];
    }
    for (let k = 0; k < dConv - 1; k++) out[k * channels + c] = at(nRows + k, c);
  }
  return { y, state: out };
}

export interface SsmScanRefArgs {
  nRows: number;
  nHead: number;
  headDim: number;
  dState: number;
  nGroup: number;
}

/**
 * Mamba-2's selective scan over one sequence's rows (native/cpu/ssm_scan.cpp), in float64:
 * per head h (group g = h / (nHead / nGroup)) and row t, with dt' = softplus(dt[t][h] + dtBias[h]),
 * state[h] = state[h] · exp(dt' · A[h]) + (x[t][h] · dt') ⊗ B[t][g] and
 * y[t][h] = state[h] · C[t][g] + D[h] · x[t][h]. state is [nHead][headDim][dState].
 */
export function ssmScanRef(
  state0: Float32Array, x: Float32Array, B: Float32Array, C: Float32Array, dt: Float32Array,
  dtBias: Float32Array, A: Float32Array, D: Float32Array, a: SsmScanRefArgs,
): { y: Float64Array; state: Float64Array } {
  const { nRows, nHead, headDim, dState, nGroup } = a;
  const inner = nHead * headDim;
  const state = Float64Array.from(state0);
  const y = new Float64Array(nRows * inner);
  const softplus = (v: number) => (v > 20 ? v : Math.log1p(Math.exp(v)));
  for (let t = 0; t < nRows; t++)
    for (let h = 0; h < nHead; h++) {
      const sp = softplus(dt[t * nHead + h] + dtBias[h]);
      const dA = Math.exp(sp * A[h]);
      const g = Math.floor(h / (nHead / nGroup));
      const bc = (t * nGroup + g) * dState;
      for (let i = 0; i < headDim; i++) {
        const ii = h * headDim + i;
        const xv = x[t * inner + ii];
        let sum = 0;
        for (let k = 0; k < dState; k++) {
          const s = state[ii * dState + k] * dA + B[bc + k] * xv * sp;
          state[ii * dState + k] = s;
          sum += s * C[bc + k];
        }
        y[t * inner + ii] = sum + D[h] * xv;
      }
    }
  return { y, state };
}
