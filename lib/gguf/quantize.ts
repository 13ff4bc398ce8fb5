/**
 * Quantization of fp32 data into GGUF tensor types (for synthetic models and kernel tests)
 * and dequantization back to float64 (the reference side of numerical checks). Block
 * layouts are those of the ggml file format; the quantizers are ggml's published reference
 * algorithms (quantize_row_*_ref: absmax for Q8_0/Q4_0, the searched scale/min fits of
 * make_qkx2_quants for Q4_K and make_qx_quants for Q6_K), with fp32 arithmetic emulated
 * through Math.fround so the bytes match ggml's up to its compiler's FMA contraction.
 */
import { TesseraError } from "../errors.js";
import { GGMLType, GGML_TYPE_INFO } from "./types.js";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** fp32 → IEEE half, round to nearest even. */
export function toHalf(x: number): number {
  f32[0] = x;
  const w = u32[0];
  const sign = (w >>> 16) & 0x8000;
  const exp = (w >>> 23) & 0xff;
  let mant = w & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

export function fromHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

function toBf16(x: number): number {
  f32[0] = x;
  const w = u32[0];
  if ((w & 0x7fffffff) > 0x7f800000) return (w >>> 16) | 64;
  return ((w + 0x7fff + ((w >>> 16) & 1)) >>> 16) & 0xffff;
}

function fromBf16(h: number): number {
  u32[0] = h << 16;
  return f32[0];
}

const f = Math.fround;
/** C's roundf: to nearest, ties away from zero. */
const round = (x: number) => Math.sign(x) * Math.round(Math.abs(x));
const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

function quantizeQ8_0(x: Float32Array, out: DataView, blocks: number): void {
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[b * 32 + i]));
    const d = f(amax / 127);
    const id = d ? f(1 / d) : 0;
    out.setUint16(b * 34, toHalf(d), true);
    for (let i = 0; i < 32; i++) out.setInt8(b * 34 + 2 + i, round(f(x[b * 32 + i] * id)));
  }
}

function quantizeQ4_0(x: Float32Array, out: DataView, blocks: number): void {
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    let max = 0;
    for (let i = 0; i < 32; i++) {
      const v = x[b * 32 + i];
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = f(max / -8);
    const id = d ? f(1 / d) : 0;
    out.setUint16(b * 18, toHalf(d), true);
    for (let i = 0; i < 16; i++) {
      const lo = Math.min(15, Math.trunc(f(f(x[b * 32 + i] * id) + 8.5)));
      const hi = Math.min(15, Math.trunc(f(f(x[b * 32 + 16 + i] * id) + 8.5)));
      out.setUint8(b * 18 + 2 + i, lo | (hi << 4));
    }
  }
}

/** ggml's nearest_int (|x| < 2^22): adding 1.5 * 2^23 in fp32 rounds to an integer, ties to even. */
const nearestInt = (x: number) => f(f(x) + 12582912) - 12582912;

/**
 * ggml's make_qkx2_quants: an asymmetric nmax-level quantization of x (scale, min) found by
 * trying nstep+1 candidate scales around the min/max one and keeping the one with the lowest
 * weighted squared error (the least-squares scale and min for each candidate's levels).
 * Writes levels to L; returns [scale, -min].
 */
function makeQkx2Quants(x: Float32Array, weights: Float32Array, nmax: number, L: Uint8Array, rmin: number, rdelta: number, nstep: number, useMad = false): [number, number] {
  // useMad (Q2_K): weighted absolute instead of squared errors.
  const err2 = (diff: number) => (useMad ? Math.abs(diff) : f(diff * diff));
  const n = x.length;
  let min = x[0];
  let max = x[0];
  let sumW = weights[0];
  let sumX = f(sumW * x[0]);
  for (let i = 1; i < n; i++) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sumW = f(sumW + weights[i]);
    sumX = f(sumX + f(weights[i] * x[i]));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0);
    return [0, -min];
  }
  let range = f(max - min);
  let iscale = f(nmax / range);
  let scale = f(1 / iscale);
  let bestError = 0;
  // x - min, refreshed whenever a better candidate moves min.
  const shifted = new Float32Array(n);
  for (let i = 0; i < n; i++) shifted[i] = x[i] - min;
  for (let i = 0; i < n; i++) {
    L[i] = clamp(nearestInt(f(iscale * shifted[i])), 0, nmax);
    const diff = f(f(f(scale * L[i]) + min) - x[i]);
    bestError = f(bestError + f(weights[i] * err2(diff)));
  }
  const aux = new Uint8Array(n);
  for (let step = 0; step <= nstep; step++) {
    iscale = f(f(f(rmin + f(rdelta * step)) + nmax) / range);
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = clamp(nearestInt(f(iscale * shifted[i])), 0, nmax);
      aux[i] = l;
      const wl = f(weights[i] * l);
      sumL = f(sumL + wl);
      sumL2 = f(sumL2 + f(wl * l));
      sumXL = f(sumXL + f(wl * x[i]));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (D > 0) {
      let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
      let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f(sumXL / sumL2);
      }
      let err = 0;
      for (let i = 0; i < n; i++) {
        const diff = f(f(f(thisScale * aux[i]) + thisMin) - x[i]);
        err = f(err + f(weights[i] * err2(diff)));
      }
      if (err < bestError) {
        L.set(aux);
        bestError = err;
        scale = thisScale;
        min = thisMin;
        range = f(max - min);
        for (let i = 0; i < n; i++) shifted[i] = x[i] - min;
      }
    }
  }
  return [scale, -min];
}

/**
 * ggml's make_qx_quants with rmse_type 1: symmetric levels in [-nmax, nmax) for a scale
 * searched over 19 candidates, weighting each value by x² (the least-squares scale for each
 * candidate's levels). Writes levels + nmax to L; returns the scale.
 */
function makeQxQuants(x: Float32Array, nmax: number, L: Uint8Array): number {
  const n = x.length;
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0);
    return 0;
  }
  const levels = (iscale: number) => {
    let sumLX = 0;
    let sumL2 = 0;
    for (let i = 0; i < n; i++) {
      const l = clamp(nearestInt(f(iscale * x[i])), -nmax, nmax - 1);
      const w = f(x[i] * x[i]);
      sumLX = f(sumLX + f(f(w * x[i]) * l));
      sumL2 = f(sumL2 + f(f(w * l) * l));
    }
    return [sumLX, sumL2];
  };
  const take = (iscale: number) => {
    for (let i = 0; i < n; i++) L[i] = nmax + clamp(nearestInt(f(iscale * x[i])), -nmax, nmax - 1);
  };
  let iscale = f(-nmax / max);
  let [sumLX, sumL2] = levels(iscale);
  take(iscale);
  let scale = sumL2 ? f(sumLX / sumL2) : 0;
  let best = f(scale * sumLX);
  for (let step = -9; step <= 9; step++) {
    if (step === 0) continue;
    iscale = f(-f(nmax + f(f(0.1) * step)) / max);
    [sumLX, sumL2] = levels(iscale);
    if (sumL2 > 0 && f(sumLX * sumLX) > f(best * sumL2)) {
      take(iscale);
      scale = f(sumLX / sumL2);
      best = f(scale * sumLX);
    }
  }
  return scale;
}

const GROUP_MAX_EPS = 1e-15;

/** ggml's quantize_row_q4_K_ref: per 32-value sub-block an importance-weighted (scale, min) search, then 6-bit scales/mins. */
function quantizeQ4_K(x: Float32Array, out: DataView, blocks: number): void {
  const L = new Uint8Array(256);
  const weights = new Float32Array(32);
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  for (let b = 0; b < blocks; b++) {
    const base = b * 256;
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 8; j++) {
      const xs = x.subarray(base + 32 * j, base + 32 * j + 32);
      let sumX2 = 0;
      for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(xs[l] * xs[l]));
      const avX = f(Math.sqrt(f(sumX2 / 32)));
      for (let l = 0; l < 32; l++) weights[l] = f(avX + Math.abs(xs[l]));
      [scales[j], mins[j]] = makeQkx2Quants(xs, weights, 15, L.subarray(32 * j, 32 * j + 32), -1, f(0.1), 20);
      maxScale = Math.max(maxScale, scales[j]);
      maxMin = Math.max(maxMin, mins[j]);
    }
    const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
    const o = b * 144;
    const packed = new Uint8Array(12);
    for (let j = 0; j < 8; j++) {
      const ls = Math.min(63, nearestInt(f(invScale * scales[j])));
      const lm = Math.min(63, nearestInt(f(invMin * mins[j])));
      if (j < 4) {
        packed[j] = ls;
        packed[j + 4] = lm;
      } else {
        packed[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
        packed[j - 4] |= (ls >> 4) << 6;
        packed[j] |= (lm >> 4) << 6;
      }
    }
    const dh = toHalf(f(maxScale / 63));
    const dminh = toHalf(f(maxMin / 63));
    out.setUint16(o, dh, true);
    out.setUint16(o + 2, dminh, true);
    for (let k = 0; k < 12; k++) out.setUint8(o + 4 + k, packed[k]);
    for (let j = 0; j < 8; j++) {
      const sc = j < 4 ? packed[j] & 63 : (packed[j + 4] & 0xf) | ((packed[j - 4] >> 6) << 4);
      const m = j < 4 ? packed[j + 4] & 63 : (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
      const d = f(fromHalf(dh) * sc);
      if (!d) continue;
      const dm = f(fromHalf(dminh) * m);
      for (let i = 0; i < 32; i++) L[32 * j + i] = clamp(nearestInt(f(f(x[base + 32 * j + i] + dm) / d)), 0, 15);
    }
    for (let j = 0; j < 4; j++) for (let l = 0; l < 32; l++) out.setUint8(o + 16 + j * 32 + l, L[64 * j + l] | (L[64 * j + 32 + l] << 4));
  }
}

/** ggml's quantize_row_q6_K_ref: per 16-value sub-block a searched symmetric scale, then int8 scales under one fp16 d. */
function quantizeQ6_K(x: Float32Array, out: DataView, blocks: number): void {
  const L = new Uint8Array(256);
  const scales = new Float32Array(16);
  for (let b = 0; b < blocks; b++) {
    const base = b * 256;
    const o = b * 210;
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let s = 0; s < 16; s++) {
      scales[s] = makeQxQuants(x.subarray(base + 16 * s, base + 16 * s + 16), 32, L.subarray(16 * s, 16 * s + 16));
      if (Math.abs(scales[s]) > maxAbsScale) {
        maxAbsScale = Math.abs(scales[s]);
        maxScale = scales[s];
      }
    }
    if (maxAbsScale < GROUP_MAX_EPS) {
      for (let k = 0; k < 210; k++) out.setUint8(o + k, 0);
      continue;
    }
    const iscale = f(-128 / maxScale);
    const dh = toHalf(f(1 / iscale));
    const sc = new Int8Array(16);
    for (let s = 0; s < 16; s++) sc[s] = Math.min(127, nearestInt(f(iscale * scales[s])));
    for (let s = 0; s < 16; s++) {
      const d = f(fromHalf(dh) * sc[s]);
      if (!d) continue;
      for (let i = 0; i < 16; i++) L[16 * s + i] = clamp(nearestInt(f(x[base + 16 * s + i] / d)), -32, 31) + 32;
    }
    for (let n = 0; n < 2; n++)
      for (let l = 0; l < 32; l++) {
        const q1 = L[128 * n + l], q2 = L[128 * n + l + 32], q3 = L[128 * n + l + 64], q4 = L[128 * n + l + 96];
        out.setUint8(o + 64 * n + l, (q1 & 0xf) | ((q3 & 0xf) << 4));
        out.setUint8(o + 64 * n + l + 32, (q2 & 0xf) | ((q4 & 0xf) << 4));
        out.setUint8(o + 128 + 32 * n + l, (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
    for (let s = 0; s < 16; s++) out.setInt8(o + 192 + s, sc[s]);
    out.setUint16(o + 208, dh, true);
  }
}

// ---- Blocks of 32 (issue 28): Q5_0, Q4_1, Q5_1, IQ4_NL, MXFP4.

/** ggml's quantize_row_q5_0_ref: d = max / -16 (max the value of largest magnitude), levels 0..31. */
function quantizeQ5_0(x: Float32Array, out: DataView, blocks: number): void {
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    let max = 0;
    for (let i = 0; i < 32; i++) {
      const v = x[b * 32 + i];
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = f(max / -16);
    const id = d ? f(1 / d) : 0;
    const o = b * 22;
    out.setUint16(o, toHalf(d), true);
    let qh = 0;
    for (let i = 0; i < 16; i++) {
      const lo = Math.min(31, Math.trunc(f(f(x[b * 32 + i] * id) + 16.5)));
      const hi = Math.min(31, Math.trunc(f(f(x[b * 32 + 16 + i] * id) + 16.5)));
      out.setUint8(o + 6 + i, (lo & 0xf) | ((hi & 0xf) << 4));
      qh |= ((lo >> 4) << i) | ((hi >> 4) << (i + 16));
    }
    out.setUint32(o + 2, qh >>> 0, true);
  }
}

/**
 * ggml's quantize_row_q4_1_ref (bits 4) and quantize_row_q5_1_ref (bits 5): d = (max - min) /
 * (2^bits - 1), m = min, levels round(x - min) / d; Q4_1 clamps at 15, Q5_1 needs no clamp.
 */
function quantizeMinBlocks(bits: 4 | 5, x: Float32Array, out: DataView, blocks: number): void {
  const size = bits === 4 ? 20 : 24;
  const qs = bits === 4 ? 4 : 8;
  for (let b = 0; b < blocks; b++) {
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < 32; i++) {
      min = Math.min(min, x[b * 32 + i]);
      max = Math.max(max, x[b * 32 + i]);
    }
    const d = f(f(max - min) / ((1 << bits) - 1));
    const id = d ? f(1 / d) : 0;
    const o = b * size;
    out.setUint16(o, toHalf(d), true);
    out.setUint16(o + 2, toHalf(min), true);
    let qh = 0;
    for (let i = 0; i < 16; i++) {
      let lo = Math.trunc(f(f(f(x[b * 32 + i] - min) * id) + 0.5));
      let hi = Math.trunc(f(f(f(x[b * 32 + 16 + i] - min) * id) + 0.5));
      if (bits === 4) {
        lo = Math.min(15, lo);
        hi = Math.min(15, hi);
      }
      out.setUint8(o + qs + i, (lo & 0xf) | ((hi & 0xf) << 4));
      qh |= ((lo >> 4) << i) | ((hi >> 4) << (i + 16));
    }
    if (bits === 5) out.setUint32(o + 4, qh >>> 0, true);
  }
}

const IQ4_NL_VALUES = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/** ggml's best_index_int8: the index of the level nearest x (levels ascending). */
function bestIndexInt8(values: readonly number[], x: number): number {
  if (x <= values[0]) return 0;
  const n = values.length;
  if (x >= values[n - 1]) return n - 1;
  let ml = 0;
  let mu = n - 1;
  while (mu - ml > 1) {
    const mav = (ml + mu) >> 1;
    if (x < values[mav]) mu = mav;
    else ml = mav;
  }
  return f(x - values[mu - 1]) < f(values[mu] - x) ? mu - 1 : mu;
}

/**
 * ggml's quantize_iq4_nl without an importance matrix (what llama-quantize writes for
 * IQ4_NL): per block of 32, weights x², the least-squares scale for the levels of
 * d = max / -127 and then of 15 candidate scales around it (ntry 7), the levels then
 * re-picked for the fp32 scale kept.
 */
function quantizeIQ4_NL(x: Float32Array, out: DataView, blocks: number): void {
  const values = IQ4_NL_VALUES;
  const L = new Uint8Array(32);
  const weight = new Float32Array(32);
  const ntry = 7;
  for (let b = 0; b < blocks; b++) {
    const xb = x.subarray(b * 32, b * 32 + 32);
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      weight[j] = f(xb[j] * xb[j]);
      if (Math.abs(xb[j]) > amax) {
        amax = Math.abs(xb[j]);
        max = xb[j];
      }
    }
    let scale = 0;
    if (amax >= GROUP_MAX_EPS) {
      const sums = (id: number): [number, number] => {
        let sumqx = 0;
        let sumq2 = 0;
        for (let j = 0; j < 32; j++) {
          const q = values[bestIndexInt8(values, f(id * xb[j]))];
          const wq = f(weight[j] * q);
          sumqx = f(sumqx + f(wq * xb[j]));
          sumq2 = f(sumq2 + f(wq * q));
        }
        return [sumqx, sumq2];
      };
      let [sumqx, sumq2] = sums(f(1 / f(-max / values[0])));
      let d = sumq2 > 0 ? f(sumqx / sumq2) : 0;
      let best = f(d * sumqx);
      for (let itry = -ntry; itry <= ntry; itry++) {
        [sumqx, sumq2] = sums(f((itry + values[0]) / max));
        if (sumq2 > 0 && f(sumqx * sumqx) > f(best * sumq2)) {
          d = f(sumqx / sumq2);
          best = f(d * sumqx);
        }
      }
      scale = d;
    }
    const o = b * 18;
    out.setUint16(o, toHalf(scale), true);
    const id = scale ? f(1 / scale) : 0;
    for (let j = 0; j < 32; j++) L[j] = bestIndexInt8(values, f(id * xb[j]));
    for (let j = 0; j < 16; j++) out.setUint8(o + 2 + j, L[j] | (L[j + 16] << 4));
  }
}

const MXFP4_VALUES = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/** ggml's GGML_E8M0_TO_FP32_HALF: 2^(e - 128) (e 0 and 1 the fp32 subnormals, exactly so). */
const e8m0Half = (e: number): number => 2 ** (e - 128);

/**
 * ggml's quantize_row_mxfp4_ref: the shared exponent e = floor(log2(amax)) - 2 + 127 (amax
 * then lands in the top level's binade), each value the level of least fp32 error (the first
 * on ties).
 */
function quantizeMXFP4(x: Float32Array, out: DataView, blocks: number): void {
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[b * 32 + i]));
    // log2f rounds to fp32 before the floor (amax just below a power of two can round up).
    const e = amax > 0 ? (Math.floor(f(Math.log2(amax))) - 2 + 127) & 0xff : 0;
    const d = f(e8m0Half(e));
    const best = (v: number) => {
      let index = 0;
      let err = Math.abs(f(f(MXFP4_VALUES[0] * d) - v));
      for (let i = 1; i < 16; i++) {
        const e2 = Math.abs(f(f(MXFP4_VALUES[i] * d) - v));
        if (e2 < err) {
          index = i;
          err = e2;
        }
      }
      return index;
    };
    const o = b * 17;
    out.setUint8(o, e);
    for (let i = 0; i < 16; i++) out.setUint8(o + 1 + i, best(x[b * 32 + i]) | (best(x[b * 32 + 16 + i]) << 4));
  }
}

// ---- issue 28 K-quants (Q5_K, Q3_K, Q2_K, IQ4_XS).

/** Packs 6-bit sub-block scales and mins into a Q4_K/Q5_K block's 12 bytes. */
function packScaleMin(ls: number[], lm: number[]): Uint8Array {
  const packed = new Uint8Array(12);
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      packed[j] = ls[j];
      packed[j + 4] = lm[j];
    } else {
      packed[j + 4] = (ls[j] & 0xf) | ((lm[j] & 0xf) << 4);
      packed[j - 4] |= (ls[j] >> 4) << 6;
      packed[j] |= (lm[j] >> 4) << 6;
    }
  }
  return packed;
}

/** The 6-bit scale and min of sub-block j of a Q4_K/Q5_K scale field (get_scale_min_k4). */
function scaleMinK4(j: number, s: (k: number) => number): [number, number] {
  if (j < 4) return [s(j) & 63, s(j + 4) & 63];
  return [(s(j + 4) & 0xf) | ((s(j - 4) >> 6) << 4), (s(j + 4) >> 4) | ((s(j) >> 6) << 4)];
}

/** ggml's quantize_row_q5_K_ref: Q4_K's search with 32 levels (rmin -0.5, 16 steps), 5th bits in qh. */
function quantizeQ5_K(x: Float32Array, out: DataView, blocks: number): void {
  const L = new Uint8Array(256);
  const weights = new Float32Array(32);
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  for (let b = 0; b < blocks; b++) {
    const base = b * 256;
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 8; j++) {
      const xs = x.subarray(base + 32 * j, base + 32 * j + 32);
      let sumX2 = 0;
      for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(xs[l] * xs[l]));
      const avX = f(Math.sqrt(f(sumX2 / 32)));
      for (let l = 0; l < 32; l++) weights[l] = f(avX + Math.abs(xs[l]));
      [scales[j], mins[j]] = makeQkx2Quants(xs, weights, 31, L.subarray(32 * j, 32 * j + 32), -0.5, f(0.1), 15);
      if (scales[j] > maxScale) maxScale = scales[j];
      if (mins[j] > maxMin) maxMin = mins[j];
    }
    const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
    const ls: number[] = [];
    const lm: number[] = [];
    for (let j = 0; j < 8; j++) {
      ls.push(Math.min(63, nearestInt(f(invScale * scales[j])) & 0xff));
      lm.push(Math.min(63, nearestInt(f(invMin * mins[j])) & 0xff));
    }
    const packed = packScaleMin(ls, lm);
    const o = b * 176;
    const dh = toHalf(f(maxScale / 63));
    const dminh = toHalf(f(maxMin / 63));
    out.setUint16(o, dh, true);
    out.setUint16(o + 2, dminh, true);
    for (let k = 0; k < 12; k++) out.setUint8(o + 4 + k, packed[k]);
    for (let j = 0; j < 8; j++) {
      const [sc, m] = scaleMinK4(j, (k) => packed[k]);
      const d = f(fromHalf(dh) * sc);
      if (!d) continue;
      const dm = f(fromHalf(dminh) * m);
      for (let i = 0; i < 32; i++) L[32 * j + i] = clamp(nearestInt(f(f(x[base + 32 * j + i] + dm) / d)), 0, 31);
    }
    // qh[l] bit 2j / 2j+1: the 5th bit of element 64j + l / 64j + 32 + l; qs as Q4_K.
    for (let l = 0; l < 32; l++) {
      let h = 0;
      for (let j = 0; j < 4; j++) h |= ((L[64 * j + l] >> 4) << (2 * j)) | ((L[64 * j + 32 + l] >> 4) << (2 * j + 1));
      out.setUint8(o + 16 + l, h);
    }
    for (let j = 0; j < 4; j++) for (let l = 0; l < 32; l++) out.setUint8(o + 48 + j * 32 + l, (L[64 * j + l] & 0xf) | ((L[64 * j + 32 + l] & 0xf) << 4));
  }
}

function dequantizeQ5_K(v: DataView, y: Float64Array, blocks: number): void {
  for (let b = 0; b < blocks; b++) {
    const o = b * 176;
    const d = fromHalf(v.getUint16(o, true));
    const dmin = fromHalf(v.getUint16(o + 2, true));
    for (let j = 0; j < 8; j++) {
      const [sc, m] = scaleMinK4(j, (k) => v.getUint8(o + 4 + k));
      for (let l = 0; l < 32; l++) {
        const byte = v.getUint8(o + 48 + (j >> 1) * 32 + l);
        const q = (j & 1 ? byte >> 4 : byte & 0xf) | (((v.getUint8(o + 16 + l) >> j) & 1) << 4);
        y[b * 256 + j * 32 + l] = d * sc * q - dmin * m;
      }
    }
  }
}

/**
 * ggml's make_q3_quants with do_rmse: symmetric levels in [-nmax, nmax) from the absmax
 * scale, then up to 5 passes moving single levels while the x²-weighted fit improves.
 * Writes levels + nmax to L; returns the least-squares scale.
 */
function makeQ3Quants(x: Float32Array, nmax: number, L: Int8Array): number {
  const n = x.length;
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0);
    return 0;
  }
  const iscale = f(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const l = clamp(nearestInt(f(iscale * x[i])), -nmax, nmax - 1);
    L[i] = l;
    const w = f(x[i] * x[i]);
    sumlx = f(sumlx + f(f(w * x[i]) * l));
    suml2 = f(suml2 + f(f(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const w = f(x[i] * x[i]);
      let slx = f(sumlx - f(f(w * x[i]) * L[i]));
      if (slx > 0) {
        let sl2 = f(suml2 - f(f(w * L[i]) * L[i]));
        const newL = clamp(nearestInt(f(f(x[i] * sl2) / slx)), -nmax, nmax - 1);
        if (newL !== L[i]) {
          slx = f(slx + f(f(w * x[i]) * newL));
          sl2 = f(sl2 + f(f(w * newL) * newL));
          if (sl2 > 0 && f(f(slx * slx) * suml2) > f(f(sumlx * sumlx) * sl2)) {
            L[i] = newL;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (let i = 0; i < n; i++) L[i] += nmax;
  return suml2 > 0 ? f(sumlx / suml2) : 0;
}

/** The 16 scales of a Q3_K block (sc - 32), from its 12 packed bytes. */
function q3kScales(s: (k: number) => number): number[] {
  return Array.from({ length: 16 }, (_, j) => ((j < 8 ? s(j) & 0xf : s(j - 8) >> 4) | (((s(8 + (j % 4)) >> (2 * (j >> 2))) & 3) << 4)) - 32);
}

/** ggml's quantize_row_q3_K_ref: per 16 values a make_q3_quants scale, 6-bit scales under one fp16 d, 3-bit values split into qs and hmask. */
function quantizeQ3_K(x: Float32Array, out: DataView, blocks: number): void {
  const L = new Int8Array(256);
  const scales = new Float32Array(16);
  for (let b = 0; b < blocks; b++) {
    const base = b * 256;
    const o = b * 110;
    let maxScale = 0;
    let amax = 0;
    for (let j = 0; j < 16; j++) {
      scales[j] = makeQ3Quants(x.subarray(base + 16 * j, base + 16 * j + 16), 4, L.subarray(16 * j, 16 * j + 16));
      const sc = Math.abs(scales[j]);
      if (sc > amax) {
        amax = sc;
        maxScale = scales[j];
      }
    }
    const packed = new Uint8Array(12);
    let dh = 0;
    if (maxScale) {
      const iscale = f(-32 / maxScale);
      for (let j = 0; j < 16; j++) {
        let l = clamp(nearestInt(f(iscale * scales[j])), -32, 31) + 32;
        if (j < 8) packed[j] = l & 0xf;
        else packed[j - 8] |= (l & 0xf) << 4;
        l >>= 4;
        packed[(j % 4) + 8] |= l << (2 * (j >> 2));
      }
      dh = toHalf(f(1 / iscale));
    }
    const sc = q3kScales((k) => packed[k]);
    for (let j = 0; j < 16; j++) {
      const d = f(fromHalf(dh) * sc[j]);
      if (!d) continue;
      for (let i = 0; i < 16; i++) L[16 * j + i] = clamp(nearestInt(f(x[base + 16 * j + i] / d)), -4, 3) + 4;
    }
    // Element 32g + l: high bit at bit g of hmask[l], low 2 bits at 2 (g % 4) of qs[32 (g / 4) + l].
    for (let l = 0; l < 32; l++) {
      let h = 0;
      for (let g = 0; g < 8; g++) if (L[32 * g + l] > 3) h |= 1 << g;
      out.setUint8(o + l, h);
    }
    for (let half = 0; half < 2; half++)
      for (let l = 0; l < 32; l++) {
        let q = 0;
        for (let s = 0; s < 4; s++) q |= (L[128 * half + 32 * s + l] & 3) << (2 * s);
        out.setUint8(o + 32 + 32 * half + l, q);
      }
    for (let k = 0; k < 12; k++) out.setUint8(o + 96 + k, packed[k]);
    out.setUint16(o + 108, dh, true);
  }
}

function dequantizeQ3_K(v: DataView, y: Float64Array, blocks: number): void {
  for (let b = 0; b < blocks; b++) {
    const o = b * 110;
    const d = fromHalf(v.getUint16(o + 108, true));
    const sc = q3kScales((k) => v.getUint8(o + 96 + k));
    for (let e = 0; e < 256; e++) {
      const g = e >> 5, l = e & 31;
      const low = (v.getUint8(o + 32 + 32 * (g >> 2) + l) >> (2 * (g & 3))) & 3;
      const high = (v.getUint8(o + l) >> g) & 1;
      y[b * 256 + e] = d * sc[e >> 4] * (low + 4 * high - 4);
    }
  }
}

/** ggml's quantize_row_q2_K_ref: per 16 values a |x|-weighted absolute-error (scale, min) search, then 4-bit scales and mins. */
function quantizeQ2_K(x: Float32Array, out: DataView, blocks: number): void {
  const L = new Uint8Array(256);
  const weights = new Float32Array(16);
  const scales = new Float32Array(16);
  const mins = new Float32Array(16);
  for (let b = 0; b < blocks; b++) {
    const base = b * 256;
    const o = b * 84;
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 16; j++) {
      const xs = x.subarray(base + 16 * j, base + 16 * j + 16);
      for (let l = 0; l < 16; l++) weights[l] = Math.abs(xs[l]);
      [scales[j], mins[j]] = makeQkx2Quants(xs, weights, 3, L.subarray(16 * j, 16 * j + 16), -0.5, f(0.1), 15, true);
      if (scales[j] > maxScale) maxScale = scales[j];
      if (mins[j] > maxMin) maxMin = mins[j];
    }
    const packed = new Uint8Array(16);
    let dh = 0;
    let dminh = 0;
    if (maxScale > 0) {
      const iscale = f(15 / maxScale);
      for (let j = 0; j < 16; j++) packed[j] = nearestInt(f(iscale * scales[j]));
      dh = toHalf(f(maxScale / 15));
    }
    if (maxMin > 0) {
      const iscale = f(15 / maxMin);
      for (let j = 0; j < 16; j++) packed[j] |= nearestInt(f(iscale * mins[j])) << 4;
      dminh = toHalf(f(maxMin / 15));
    }
    for (let j = 0; j < 16; j++) {
      const d = f(fromHalf(dh) * (packed[j] & 0xf));
      if (!d) continue;
      const dm = f(fromHalf(dminh) * (packed[j] >> 4));
      for (let i = 0; i < 16; i++) L[16 * j + i] = clamp(nearestInt(f(f(x[base + 16 * j + i] + dm) / d)), 0, 3);
    }
    for (let k = 0; k < 16; k++) out.setUint8(o + k, packed[k]);
    for (let half = 0; half < 2; half++)
      for (let l = 0; l < 32; l++) {
        let q = 0;
        for (let s = 0; s < 4; s++) q |= L[128 * half + 32 * s + l] << (2 * s);
        out.setUint8(o + 16 + 32 * half + l, q);
      }
    out.setUint16(o + 80, dh, true);
    out.setUint16(o + 82, dminh, true);
  }
}

function dequantizeQ2_K(v: DataView, y: Float64Array, blocks: number): void {
  for (let b = 0; b < blocks; b++) {
    const o = b * 84;
    const d = fromHalf(v.getUint16(o + 80, true));
    const dmin = fromHalf(v.getUint16(o + 82, true));
    for (let e = 0; e < 256; e++) {
      const g = e >> 5, l = e & 31;
      const sc = v.getUint8(o + (e >> 4));
      const q = (v.getUint8(o + 16 + 32 * (g >> 2) + l) >> (2 * (g & 3))) & 3;
      y[b * 256 + e] = d * (sc & 0xf) * q - dmin * (sc >> 4);
    }
  }
}

/**
 * ggml's quantize_row_iq4_xs_ref (quantize_row_iq4_nl_impl for 256-value super-blocks of
 * 32, no importance matrix, 7 tries): per sub-block an x²-weighted scale search over the
 * grid, then 6-bit scales under one fp16 d and the indexes re-picked for the rounded scale.
 */
function quantizeIQ4_XS(x: Float32Array, out: DataView, blocks: number): void {
  const L = new Uint8Array(256);
  const scales = new Float32Array(8);
  const ntry = 7;
  for (let b = 0; b < blocks; b++) {
    const base = b * 256;
    const o = b * 136;
    let maxScale = 0;
    let amaxScale = 0;
    for (let ib = 0; ib < 8; ib++) {
      const xb = x.subarray(base + 32 * ib, base + 32 * ib + 32);
      let amax = 0;
      let max = 0;
      for (let j = 0; j < 32; j++) {
        const ax = Math.abs(xb[j]);
        if (ax > amax) {
          amax = ax;
          max = xb[j];
        }
      }
      if (amax < GROUP_MAX_EPS) {
        scales[ib] = 0;
        continue;
      }
      let d = f(-max / IQ4_NL_VALUES[0]);
      let id = f(1 / d);
      const fit = (idv: number, keep: boolean): [number, number] => {
        let sumqx = 0;
        let sumq2 = 0;
        for (let j = 0; j < 32; j++) {
          const l = bestIndexInt8(IQ4_NL_VALUES, f(idv * xb[j]));
          if (keep) L[32 * ib + j] = l;
          const q = IQ4_NL_VALUES[l];
          const w = f(xb[j] * xb[j]);
          sumqx = f(sumqx + f(f(w * q) * xb[j]));
          sumq2 = f(sumq2 + f(f(w * q) * q));
        }
        return [sumqx, sumq2];
      };
      let [sumqx, sumq2] = fit(id, true);
      d = sumq2 > 0 ? f(sumqx / sumq2) : 0;
      let best = f(d * sumqx);
      for (let itry = -ntry; itry <= ntry; itry++) {
        id = f((itry + IQ4_NL_VALUES[0]) / max);
        [sumqx, sumq2] = fit(id, false);
        if (sumq2 > 0 && f(sumqx * sumqx) > f(best * sumq2)) {
          d = f(sumqx / sumq2);
          best = f(d * sumqx);
        }
      }
      scales[ib] = d;
      if (Math.abs(d) > amaxScale) {
        amaxScale = Math.abs(d);
        maxScale = d;
      }
    }
    const d = f(-maxScale / 32);
    const dh = toHalf(d);
    const id = d ? f(1 / d) : 0;
    let scalesH = 0;
    const scalesL = new Uint8Array(4);
    for (let ib = 0; ib < 8; ib++) {
      let l = clamp(nearestInt(f(id * scales[ib])), -32, 31);
      const dl = f(d * l);
      const idl = dl ? f(1 / dl) : 0;
      for (let j = 0; j < 32; j++) L[32 * ib + j] = bestIndexInt8(IQ4_NL_VALUES, f(idl * x[base + 32 * ib + j]));
      l += 32;
      if (ib % 2 === 0) scalesL[ib >> 1] = l & 0xf;
      else scalesL[ib >> 1] |= (l & 0xf) << 4;
      scalesH |= (l >> 4) << (2 * ib);
    }
    out.setUint16(o, dh, true);
    out.setUint16(o + 2, scalesH, true);
    for (let k = 0; k < 4; k++) out.setUint8(o + 4 + k, scalesL[k]);
    for (let i = 0; i < 8; i++) for (let j = 0; j < 16; j++) out.setUint8(o + 8 + 16 * i + j, L[32 * i + j] | (L[32 * i + 16 + j] << 4));
  }
}

function dequantizeIQ4_XS(v: DataView, y: Float64Array, blocks: number): void {
  for (let b = 0; b < blocks; b++) {
    const o = b * 136;
    const d = fromHalf(v.getUint16(o, true));
    const sh = v.getUint16(o + 2, true);
    for (let ib = 0; ib < 8; ib++) {
      const ls = ((v.getUint8(o + 4 + (ib >> 1)) >> (4 * (ib & 1))) & 0xf) | (((sh >> (2 * ib)) & 3) << 4);
      for (let j = 0; j < 16; j++) {
        const q = v.getUint8(o + 8 + 16 * ib + j);
        y[b * 256 + 32 * ib + j] = d * (ls - 32) * IQ4_NL_VALUES[q & 0xf];
        y[b * 256 + 32 * ib + 16 + j] = d * (ls - 32) * IQ4_NL_VALUES[q >> 4];
      }
    }
  }
}

/** Dequantizers of the issue-28 types, float64 as the others. */
const DEQUANTIZERS_K: Partial<Record<GGMLType, (v: DataView, y: Float64Array, blocks: number) => void>> = {
  [GGMLType.Q5_K]: dequantizeQ5_K,
  [GGMLType.Q3_K]: dequantizeQ3_K,
  [GGMLType.Q2_K]: dequantizeQ2_K,
  [GGMLType.IQ4_XS]: dequantizeIQ4_XS,
};

const QUANTIZERS: Partial<Record<GGMLType, (x: Float32Array, out: DataView, blocks: number) => void>> = {
  [GGMLType.Q8_0]: quantizeQ8_0,
  [GGMLType.Q4_0]: quantizeQ4_0,
  [GGMLType.Q4_K]: quantizeQ4_K,
  [GGMLType.Q6_K]: quantizeQ6_K,
  [GGMLType.Q5_0]: quantizeQ5_0,
  [GGMLType.Q4_1]: (x, out, blocks) => quantizeMinBlocks(4, x, out, blocks),
  [GGMLType.Q5_1]: (x, out, blocks) => quantizeMinBlocks(5, x, out, blocks),
  [GGMLType.IQ4_NL]: quantizeIQ4_NL,
  [GGMLType.MXFP4]: quantizeMXFP4,
  [GGMLType.Q5_K]: quantizeQ5_K,
  [GGMLType.Q3_K]: quantizeQ3_K,
  [GGMLType.Q2_K]: quantizeQ2_K,
  [GGMLType.IQ4_XS]: quantizeIQ4_XS,
};

function checkShape(type: GGMLType, count: number, cols: number): { blockSize: number; typeSize: number } {
  const info = GGML_TYPE_INFO[type];
  const supported = type === GGMLType.F32 || type === GGMLType.F16 || type === GGMLType.BF16 || QUANTIZERS[type] !== undefined;
  if (!info || !supported) {
    const names = ["F32", "F16", "BF16", ...Object.keys(QUANTIZERS).map((t) => GGML_TYPE_INFO[Number(t)].name)];
    throw new TesseraError("ERR_UNSUPPORTED_QUANT_TYPE", `cannot quantize to ${info?.name ?? type}; supported: ${names.join(", ")}`);
  }
  if (!Number.isInteger(cols) || cols < 1 || cols % info.blockSize !== 0 || count % cols !== 0)
    throw new TesseraError("ERR_INVALID_ARGUMENT", `${info.name} needs rows that are whole ${info.blockSize}-element blocks (cols=${cols}, count=${count})`);
  return info;
}

/** Encodes rows of `cols` values (row-major) as `type`. */
export function quantize(type: GGMLType, data: Float32Array, cols: number): Uint8Array {
  const info = checkShape(type, data.length, cols);
  const blocks = data.length / info.blockSize;
  const out = new Uint8Array(blocks * info.typeSize);
  const view = new DataView(out.buffer);
  if (type === GGMLType.F32) out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  else if (type === GGMLType.F16) for (let i = 0; i < data.length; i++) view.setUint16(2 * i, toHalf(data[i]), true);
  else if (type === GGMLType.BF16) for (let i = 0; i < data.length; i++) view.setUint16(2 * i, toBf16(data[i]), true);
  else QUANTIZERS[type]!(data, view, blocks);
  return out;
}

/** Decodes `count` values of `type` from `bytes`, exactly (float64). */
export function dequantize(type: GGMLType, bytes: Uint8Array, count: number): Float64Array {
  const info = checkShape(type, count, GGML_TYPE_INFO[type]?.blockSize ?? 1);
  if (bytes.length < (count / info.blockSize) * info.typeSize) throw new TesseraError("ERR_INVALID_ARGUMENT", "dequantize: not enough bytes");
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const y = new Float64Array(count);
  const blocks = count / info.blockSize;
  switch (type) {
    case GGMLType.F32:
      for (let i = 0; i < count; i++) y[i] = v.getFloat32(4 * i, true);
      break;
    case GGMLType.F16:
      for (let i = 0; i < count; i++) y[i] = fromHalf(v.getUint16(2 * i, true));
      break;
    case GGMLType.BF16:
      for (let i = 0; i < count; i++) y[i] = fromBf16(v.getUint16(2 * i, true));
      break;
    case GGMLType.Q8_0:
      for (let b = 0; b < blocks; b++) {
        const d = fromHalf(v.getUint16(b * 34, true));
        for (let i = 0; i < 32; i++) y[b * 32 + i] = d * v.getInt8(b * 34 + 2 + i);
      }
      break;
    case GGMLType.Q4_0:
      for (let b = 0; b < blocks; b++) {
        const d = fromHalf(v.getUint16(b * 18, true));
        for (let i = 0; i < 16; i++) {
          const q = v.getUint8(b * 18 + 2 + i);
          y[b * 32 + i] = d * ((q & 0xf) - 8);
          y[b * 32 + 16 + i] = d * ((q >> 4) - 8);
        }
      }
      break;
    case GGMLType.Q4_K:
      for (let b = 0; b < blocks; b++) {
        const o = b * 144;
        const d = fromHalf(v.getUint16(o, true));
        const dmin = fromHalf(v.getUint16(o + 2, true));
        const s = (k: number) => v.getUint8(o + 4 + k);
        for (let j = 0; j < 8; j++) {
          const sc = j < 4 ? s(j) & 63 : (s(j + 4) & 0xf) | ((s(j - 4) >> 6) << 4);
          const m = j < 4 ? s(j + 4) & 63 : (s(j + 4) >> 4) | ((s(j) >> 6) << 4);
          for (let l = 0; l < 32; l++) {
            const byte = v.getUint8(o + 16 + (j >> 1) * 32 + l);
            const q = j & 1 ? byte >> 4 : byte & 0xf;
            y[b * 256 + j * 32 + l] = d * sc * q - dmin * m;
          }
        }
      }
      break;
    case GGMLType.Q6_K:
      for (let b = 0; b < blocks; b++) {
        const o = b * 210;
        const d = fromHalf(v.getUint16(o + 208, true));
        for (let e = 0; e < 256; e++) {
          const n = e >> 7, g = (e >> 5) & 3, l = e & 31;
          const ql = v.getUint8(o + 64 * n + l + (g & 1 ? 32 : 0));
          const lo = g < 2 ? ql & 0xf : ql >> 4;
          const hi = (v.getUint8(o + 128 + 32 * n + l) >> (2 * g)) & 3;
          y[b * 256 + e] = d * v.getInt8(o + 192 + (e >> 4)) * ((lo | (hi << 4)) - 32);
        }
      }
      break;
    case GGMLType.Q5_0:
      for (let b = 0; b < blocks; b++) {
        const o = b * 22;
        const d = fromHalf(v.getUint16(o, true));
        const qh = v.getUint32(o + 2, true);
        for (let i = 0; i < 16; i++) {
          const q = v.getUint8(o + 6 + i);
          y[b * 32 + i] = d * (((q & 0xf) | (((qh >>> i) & 1) << 4)) - 16);
          y[b * 32 + 16 + i] = d * (((q >> 4) | (((qh >>> (i + 16)) & 1) << 4)) - 16);
        }
      }
      break;
    case GGMLType.Q4_1:
      for (let b = 0; b < blocks; b++) {
        const o = b * 20;
        const d = fromHalf(v.getUint16(o, true));
        const m = fromHalf(v.getUint16(o + 2, true));
        for (let i = 0; i < 16; i++) {
          const q = v.getUint8(o + 4 + i);
          y[b * 32 + i] = d * (q & 0xf) + m;
          y[b * 32 + 16 + i] = d * (q >> 4) + m;
        }
      }
      break;
    case GGMLType.Q5_1:
      for (let b = 0; b < blocks; b++) {
        const o = b * 24;
        const d = fromHalf(v.getUint16(o, true));
        const m = fromHalf(v.getUint16(o + 2, true));
        const qh = v.getUint32(o + 4, true);
        for (let i = 0; i < 16; i++) {
          const q = v.getUint8(o + 8 + i);
          y[b * 32 + i] = d * ((q & 0xf) | (((qh >>> i) & 1) << 4)) + m;
          y[b * 32 + 16 + i] = d * ((q >> 4) | (((qh >>> (i + 16)) & 1) << 4)) + m;
        }
      }
      break;
    case GGMLType.IQ4_NL:
      for (let b = 0; b < blocks; b++) {
        const o = b * 18;
        const d = fromHalf(v.getUint16(o, true));
        for (let i = 0; i < 16; i++) {
          const q = v.getUint8(o + 2 + i);
          y[b * 32 + i] = d * IQ4_NL_VALUES[q & 0xf];
          y[b * 32 + 16 + i] = d * IQ4_NL_VALUES[q >> 4];
        }
      }
      break;
    case GGMLType.MXFP4:
      for (let b = 0; b < blocks; b++) {
        const o = b * 17;
        const d = e8m0Half(v.getUint8(o));
        for (let i = 0; i < 16; i++) {
          const q = v.getUint8(o + 1 + i);
          y[b * 32 + i] = d * MXFP4_VALUES[q & 0xf];
          y[b * 32 + 16 + i] = d * MXFP4_VALUES[q >> 4];
        }
      }
      break;
    default:
      DEQUANTIZERS_K[type]?.(v, y, blocks);
  }
  return y;
}
