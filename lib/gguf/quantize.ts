/**
 * Quantization of fp32 data into GGUF tensor types (for synthetic models and kernel tests)
 * and dequantization back to float64 (the reference side of numerical checks). Block
 * layouts are those of the ggml file format; the quantizers are simple round-to-nearest
 * schemes (absmax for Q8_0/Q4_0/Q6_K, min/max per sub-block for Q4_K) — valid files, not
 * an attempt to minimize error like llama.cpp's importance-weighted quantizer.
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

const round = (x: number) => Math.sign(x) * Math.round(Math.abs(x));
const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

function quantizeQ8_0(x: Float32Array, out: DataView, blocks: number): void {
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[b * 32 + i]));
    const d = amax / 127;
    const id = d ? 1 / d : 0;
    out.setUint16(b * 34, toHalf(d), true);
    for (let i = 0; i < 32; i++) out.setInt8(b * 34 + 2 + i, round(x[b * 32 + i] * id));
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
    const d = max / -8;
    const id = d ? 1 / d : 0;
    out.setUint16(b * 18, toHalf(d), true);
    for (let i = 0; i < 16; i++) {
      const lo = Math.min(15, Math.trunc(x[b * 32 + i] * id + 8.5));
      const hi = Math.min(15, Math.trunc(x[b * 32 + 16 + i] * id + 8.5));
      out.setUint8(b * 18 + 2 + i, lo | (hi << 4));
    }
  }
}

function quantizeQ4_K(x: Float32Array, out: DataView, blocks: number): void {
  for (let b = 0; b < blocks; b++) {
    const base = b * 256;
    const scales = new Float64Array(8);
    const mins = new Float64Array(8);
    for (let j = 0; j < 8; j++) {
      let lo = 0;
      let hi = -Infinity;
      for (let i = 0; i < 32; i++) {
        const v = x[base + j * 32 + i];
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      scales[j] = (hi - lo) / 15;
      mins[j] = -lo;
    }
    const d = fromHalf(toHalf(Math.max(...scales) / 63));
    const dmin = fromHalf(toHalf(Math.max(...mins) / 63));
    const sc = scales.map((s) => (d ? clamp(Math.round(s / d), 0, 63) : 0));
    const m = mins.map((v) => (dmin ? clamp(Math.round(v / dmin), 0, 63) : 0));
    const o = b * 144;
    out.setUint16(o, toHalf(d), true);
    out.setUint16(o + 2, toHalf(dmin), true);
    for (let j = 0; j < 4; j++) {
      out.setUint8(o + 4 + j, sc[j] | ((sc[j + 4] >> 4) << 6));
      out.setUint8(o + 8 + j, m[j] | ((m[j + 4] >> 4) << 6));
      out.setUint8(o + 12 + j, (sc[j + 4] & 0xf) | ((m[j + 4] & 0xf) << 4));
    }
    const q = new Uint8Array(256);
    for (let j = 0; j < 8; j++) {
      const step = d * sc[j];
      for (let i = 0; i < 32; i++) {
        const v = x[base + j * 32 + i] + dmin * m[j];
        q[j * 32 + i] = step ? clamp(Math.round(v / step), 0, 15) : 0;
      }
    }
    for (let j = 0; j < 4; j++) for (let l = 0; l < 32; l++) out.setUint8(o + 16 + j * 32 + l, q[64 * j + l] | (q[64 * j + 32 + l] << 4));
  }
}

function quantizeQ6_K(x: Float32Array, out: DataView, blocks: number): void {
  for (let b = 0; b < blocks; b++) {
    const base = b * 256;
    const scales = new Float64Array(16);
    for (let s = 0; s < 16; s++) {
      let amax = 0;
      for (let i = 0; i < 16; i++) amax = Math.max(amax, Math.abs(x[base + s * 16 + i]));
      scales[s] = amax / 31;
    }
    const d = fromHalf(toHalf(Math.max(...scales) / 127));
    const sc = scales.map((s) => (d ? clamp(Math.round(s / d), 0, 127) : 0));
    const q = new Uint8Array(256);
    for (let e = 0; e < 256; e++) {
      const step = d * sc[e >> 4];
      q[e] = (step ? clamp(Math.round(x[base + e] / step), -32, 31) : 0) + 32;
    }
    const o = b * 210;
    for (let n = 0; n < 2; n++)
      for (let l = 0; l < 32; l++) {
        const q1 = q[128 * n + l], q2 = q[128 * n + l + 32], q3 = q[128 * n + l + 64], q4 = q[128 * n + l + 96];
        out.setUint8(o + 64 * n + l, (q1 & 0xf) | ((q3 & 0xf) << 4));
        out.setUint8(o + 64 * n + l + 32, (q2 & 0xf) | ((q4 & 0xf) << 4));
        out.setUint8(o + 128 + 32 * n + l, (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
    for (let s = 0; s < 16; s++) out.setInt8(o + 192 + s, sc[s]);
    out.setUint16(o + 208, toHalf(d), true);
  }
}

const QUANTIZERS: Partial<Record<GGMLType, (x: Float32Array, out: DataView, blocks: number) => void>> = {
  [GGMLType.Q8_0]: quantizeQ8_0,
  [GGMLType.Q4_0]: quantizeQ4_0,
  [GGMLType.Q4_K]: quantizeQ4_K,
  [GGMLType.Q6_K]: quantizeQ6_K,
};

function checkShape(type: GGMLType, count: number, cols: number): { blockSize: number; typeSize: number } {
  const info = GGML_TYPE_INFO[type];
  const supported = type === GGMLType.F32 || type === GGMLType.F16 || type === GGMLType.BF16 || QUANTIZERS[type] !== undefined;
  if (!info || !supported)
    throw new TesseraError("ERR_UNSUPPORTED_QUANT_TYPE", `cannot quantize to ${info?.name ?? type}; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K`);
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
  }
  return y;
}
