/**
 * lib/gguf/quantize.ts: round-trip error per type on fresh random data, the byte layout of
 * each block format (hand-built blocks decoded against the format's definition), the
 * half-precision conversions, and coded errors for unsupported types and bad shapes.
 */
import { describe, expect, it } from "vitest";
import { dequantize, fromHalf, quantize, toHalf } from "../../lib/gguf/quantize.js";
import { GGMLType, GGML_TYPE_INFO } from "../../lib/gguf/types.js";
import { relativeError } from "../../dev/kernels/harness.js";
import { Gaussian } from "../helpers/random.js";

/**
 * Round-trip budgets, ||dequantize(quantize(x)) - x|| / ||x|| on Gaussian data. F16/BF16
 * keep 11/8 significant bits (RMS error ~ 2^-12 / 2^-9); the block types lose what their
 * bits per weight allow (ggml's reference quantizers reach about 0.0054, 0.088, 0.072 and
 * 0.018 on this data).
 */
const ROUND_TRIP_BUDGET: Array<[GGMLType, number]> = [
  [GGMLType.F32, 0],
  [GGMLType.F16, 4e-4],
  [GGMLType.BF16, 3e-3],
  [GGMLType.Q8_0, 7e-3],
  [GGMLType.Q4_0, 0.1],
  [GGMLType.Q4_K, 0.085],
  [GGMLType.Q6_K, 0.022],
  [GGMLType.Q5_0, 0.05],
  [GGMLType.Q4_1, 0.09],
  [GGMLType.Q5_1, 0.045],
  [GGMLType.IQ4_NL, 0.085],
  [GGMLType.MXFP4, 0.13],
  // Issue 28's K-quants.
  [GGMLType.Q5_K, 0.04], // ggml's reference reaches about 0.036
  [GGMLType.Q3_K, 0.16], // about 0.151
  [GGMLType.Q2_K, 0.31], // about 0.29
  [GGMLType.IQ4_XS, 0.08], // about 0.077
];

function halfBytes(values: number[]): number[] {
  return values.flatMap((v) => {
    const h = toHalf(v);
    return [h & 0xff, h >> 8];
  });
}

describe("quantize/dequantize round trip", () => {
  for (const [type, budget] of ROUND_TRIP_BUDGET) {
    const info = GGML_TYPE_INFO[type];
    it(`${info.name} within ${budget} relative error, exact byte count`, () => {
      const g = new Gaussian();
      const cols = Math.max(info.blockSize, 32) * 3;
      const rows = 37;
      const x = g.array(rows * cols, 0.7, 0.1);
      const bytes = quantize(type, x, cols);
      expect(bytes.length).toBe(((rows * cols) / info.blockSize) * info.typeSize);
      const err = relativeError(dequantize(type, bytes, rows * cols), x);
      expect(err, `seed ${g.seed}`).toBeLessThanOrEqual(budget);
      // Each block is coded on its own: scaling one row leaves the other rows' bytes alone.
      const y = x.slice();
      for (let i = 0; i < cols; i++) y[i] *= 5;
      const bytes2 = quantize(type, y, cols);
      const rowBytes = (cols / info.blockSize) * info.typeSize;
      expect(Buffer.compare(bytes.subarray(rowBytes), bytes2.subarray(rowBytes))).toBe(0);
    });
  }

  it("all-zero blocks decode to exact zeros", () => {
    for (const [type] of ROUND_TRIP_BUDGET) {
      const cols = Math.max(GGML_TYPE_INFO[type].blockSize, 32);
      const y = dequantize(type, quantize(type, new Float32Array(cols), cols), cols);
      expect(y.every((v) => v === 0), GGML_TYPE_INFO[type].name).toBe(true);
    }
  });

  it("quantized values land on the type's grid (Q8_0: d * q with |q| <= 127, max at ±127)", () => {
    const x = Float32Array.from({ length: 32 }, (_, i) => (i - 16) / 4); // amax 4 at i = 0
    const b = quantize(GGMLType.Q8_0, x, 32);
    const d = fromHalf(b[0] | (b[1] << 8));
    expect(d).toBe(fromHalf(toHalf(4 / 127)));
    const q = Int8Array.from(b.subarray(2));
    expect(q[0]).toBe(-127);
    for (let i = 0; i < 32; i++) expect(q[i]).toBe(Math.sign(x[i]) * Math.round(Math.abs((x[i] * 127) / 4)));
    const y = dequantize(GGMLType.Q8_0, b, 32);
    for (let i = 0; i < 32; i++) expect(y[i]).toBe(d * q[i]);
  });
});

describe("block layouts decode per the ggml format", () => {
  it("Q8_0: fp16 d then 32 int8", () => {
    const bytes = Uint8Array.from([...halfBytes([0.5]), ...Array.from({ length: 32 }, (_, i) => (i - 16) & 0xff)]);
    expect(Array.from(dequantize(GGMLType.Q8_0, bytes, 32))).toEqual(Array.from({ length: 32 }, (_, i) => 0.5 * (i - 16)));
  });

  it("Q4_0: fp16 d, low nibbles are elements 0..15, high nibbles 16..31, offset 8", () => {
    const q = Array.from({ length: 32 }, (_, i) => (i * 5 + 3) % 16);
    const bytes = Uint8Array.from([...halfBytes([0.25]), ...Array.from({ length: 16 }, (_, i) => q[i] | (q[i + 16] << 4))]);
    expect(Array.from(dequantize(GGMLType.Q4_0, bytes, 32))).toEqual(q.map((v) => 0.25 * (v - 8)));
  });

  it("Q4_K: d, dmin, 12 bytes of 6-bit scales/mins, nibbles paired across 64-value groups", () => {
    const sc = [1, 2, 3, 4, 45, 50, 63, 17];
    const mn = [0, 5, 9, 63, 33, 48, 2, 40];
    const scales = new Array<number>(12).fill(0);
    for (let j = 0; j < 4; j++) {
      scales[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
      scales[j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6);
      scales[j + 8] = (sc[j + 4] & 0xf) | ((mn[j + 4] & 0xf) << 4);
    }
    const q = Array.from({ length: 256 }, (_, e) => (e * 7 + (e >> 5)) % 16);
    // Byte l of 64-value group G holds element 64G + l (low nibble) and 64G + 32 + l (high).
    const qs = Array.from({ length: 128 }, (_, i) => q[64 * (i >> 5) + (i & 31)] | (q[64 * (i >> 5) + 32 + (i & 31)] << 4));
    const bytes = Uint8Array.from([...halfBytes([0.125, 0.0625]), ...scales, ...qs]);
    const expected = q.map((v, e) => 0.125 * sc[e >> 5] * v - 0.0625 * mn[e >> 5]);
    expect(Array.from(dequantize(GGMLType.Q4_K, bytes, 256))).toEqual(expected);
  });

  it("Q6_K: ql nibbles, qh 2-bit pairs, int8 scales per 16, fp16 d last, offset 32", () => {
    const q = Array.from({ length: 256 }, (_, e) => (e * 13 + 5) % 64);
    const sc = Array.from({ length: 16 }, (_, s) => s * 9 - 70);
    const ql = new Array<number>(128).fill(0);
    const qh = new Array<number>(64).fill(0);
    for (let e = 0; e < 256; e++) {
      // Element e: half n, quarter g of that half, lane l; low 4 bits in ql, high 2 in qh.
      const n = e >> 7, g = (e >> 5) & 3, l = e & 31;
      ql[64 * n + 32 * (g & 1) + l] |= (q[e] & 0xf) << (g >= 2 ? 4 : 0);
      qh[32 * n + l] |= (q[e] >> 4) << (2 * g);
    }
    const bytes = Uint8Array.from([...ql, ...qh, ...sc.map((s) => s & 0xff), ...halfBytes([0.125])]);
    expect(Array.from(dequantize(GGMLType.Q6_K, bytes, 256))).toEqual(q.map((v, e) => 0.125 * sc[e >> 4] * (v - 32)));
  });
});

describe("block layouts of the blocks-of-32 types (issue 28)", () => {
  it("Q5_0: fp16 d, 32 fifth bits (bit j for element j), nibbles as Q4_0, offset 16", () => {
    const q = Array.from({ length: 32 }, (_, i) => (i * 11 + 7) % 32);
    const qh = q.reduce((h, v, i) => h | ((v >> 4) << i), 0) >>> 0;
    const bytes = Uint8Array.from([...halfBytes([0.25]), qh & 0xff, (qh >>> 8) & 0xff, (qh >>> 16) & 0xff, qh >>> 24, ...Array.from({ length: 16 }, (_, i) => (q[i] & 0xf) | ((q[i + 16] & 0xf) << 4))]);
    expect(Array.from(dequantize(GGMLType.Q5_0, bytes, 32))).toEqual(q.map((v) => 0.25 * (v - 16)));
  });

  it("Q4_1: fp16 d, fp16 m, nibbles as Q4_0, w = d * q + m", () => {
    const q = Array.from({ length: 32 }, (_, i) => (i * 5 + 3) % 16);
    const bytes = Uint8Array.from([...halfBytes([0.25, -1.5]), ...Array.from({ length: 16 }, (_, i) => q[i] | (q[i + 16] << 4))]);
    expect(Array.from(dequantize(GGMLType.Q4_1, bytes, 32))).toEqual(q.map((v) => 0.25 * v - 1.5));
  });

  it("Q5_1: fp16 d, fp16 m, fifth bits and nibbles as Q5_0, w = d * q + m", () => {
    const q = Array.from({ length: 32 }, (_, i) => (i * 13 + 2) % 32);
    const qh = q.reduce((h, v, i) => h | ((v >> 4) << i), 0) >>> 0;
    const bytes = Uint8Array.from([...halfBytes([0.125, 0.75]), qh & 0xff, (qh >>> 8) & 0xff, (qh >>> 16) & 0xff, qh >>> 24, ...Array.from({ length: 16 }, (_, i) => (q[i] & 0xf) | ((q[i + 16] & 0xf) << 4))]);
    expect(Array.from(dequantize(GGMLType.Q5_1, bytes, 32))).toEqual(q.map((v) => 0.125 * v + 0.75));
  });

  it("IQ4_NL: fp16 d, nibbles as Q4_0 indexing the 16 non-uniform levels", () => {
    const levels = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];
    const q = Array.from({ length: 32 }, (_, i) => (i * 7 + 1) % 16);
    const bytes = Uint8Array.from([...halfBytes([0.5]), ...Array.from({ length: 16 }, (_, i) => q[i] | (q[i + 16] << 4))]);
    expect(Array.from(dequantize(GGMLType.IQ4_NL, bytes, 32))).toEqual(q.map((v) => 0.5 * levels[v]));
  });

  it("MXFP4: one E8M0 byte (half of 2^(e-127)), nibbles as Q4_0 indexing the doubled E2M1 values", () => {
    const levels = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];
    const q = Array.from({ length: 32 }, (_, i) => (i * 3 + 5) % 16);
    const bytes = Uint8Array.from([125, ...Array.from({ length: 16 }, (_, i) => q[i] | (q[i + 16] << 4))]);
    expect(Array.from(dequantize(GGMLType.MXFP4, bytes, 32))).toEqual(q.map((v) => 2 ** -3 * levels[v]));
    // e 0 and 1 are fp32 subnormals, exactly 2^-128 and 2^-127.
    expect(dequantize(GGMLType.MXFP4, Uint8Array.from([1, 7, ...new Array(15).fill(0)]), 32)[0]).toBe(12 * 2 ** -127);
  });
});

describe("block layouts of issue 28's K-quants", () => {
  it("Q5_K: d, dmin, Q4_K's scales, qh 5th bits (bit j of byte l: sub-block j), Q4_K's nibbles", () => {
    const sc = [1, 2, 3, 4, 45, 50, 63, 17];
    const mn = [0, 5, 9, 63, 33, 48, 2, 40];
    const scales = new Array<number>(12).fill(0);
    for (let j = 0; j < 4; j++) {
      scales[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
      scales[j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6);
      scales[j + 8] = (sc[j + 4] & 0xf) | ((mn[j + 4] & 0xf) << 4);
    }
    const q = Array.from({ length: 256 }, (_, e) => (e * 11 + (e >> 5)) % 32);
    const qh = Array.from({ length: 32 }, (_, l) => q.reduce((h, v, e) => ((e & 31) === l ? h | ((v >> 4) << (e >> 5)) : h), 0));
    const qs = Array.from({ length: 128 }, (_, i) => (q[64 * (i >> 5) + (i & 31)] & 0xf) | ((q[64 * (i >> 5) + 32 + (i & 31)] & 0xf) << 4));
    const bytes = Uint8Array.from([...halfBytes([0.125, 0.0625]), ...scales, ...qh, ...qs]);
    const expected = q.map((v, e) => 0.125 * sc[e >> 5] * v - 0.0625 * mn[e >> 5]);
    expect(Array.from(dequantize(GGMLType.Q5_K, bytes, 256))).toEqual(expected);
  });

  it("Q3_K: hmask high bits (bit g of byte l: element 32g + l), 2-bit qs, packed 6-bit scales - 32, fp16 d last, offset 4", () => {
    const q = Array.from({ length: 256 }, (_, e) => (e * 5 + (e >> 4)) % 8);
    const sc = Array.from({ length: 16 }, (_, j) => (j * 7 + 3) % 64); // stored 0..63, used as sc - 32
    const hmask = Array.from({ length: 32 }, (_, l) => q.reduce((h, v, e) => ((e & 31) === l ? h | ((v >> 2) << (e >> 5)) : h), 0));
    const qs = Array.from({ length: 64 }, (_, i) => [0, 1, 2, 3].reduce((b, s) => b | ((q[128 * (i >> 5) + 32 * s + (i & 31)] & 3) << (2 * s)), 0));
    const scales = new Array<number>(12).fill(0);
    for (let j = 0; j < 16; j++) {
      if (j < 8) scales[j] |= sc[j] & 0xf;
      else scales[j - 8] |= (sc[j] & 0xf) << 4;
      scales[8 + (j % 4)] |= (sc[j] >> 4) << (2 * (j >> 2));
    }
    const bytes = Uint8Array.from([...hmask, ...qs, ...scales, ...halfBytes([0.125])]);
    expect(Array.from(dequantize(GGMLType.Q3_K, bytes, 256))).toEqual(q.map((v, e) => 0.125 * (sc[e >> 4] - 32) * (v - 4)));
  });

  it("Q2_K: 4-bit scale | min << 4 per 16 values, 2-bit qs as Q3_K's, fp16 d and dmin last", () => {
    const q = Array.from({ length: 256 }, (_, e) => (e * 3 + (e >> 5)) % 4);
    const sm = Array.from({ length: 16 }, (_, j) => ((j * 5 + 1) % 16) | (((j * 3 + 2) % 16) << 4));
    const qs = Array.from({ length: 64 }, (_, i) => [0, 1, 2, 3].reduce((b, s) => b | (q[128 * (i >> 5) + 32 * s + (i & 31)] << (2 * s)), 0));
    const bytes = Uint8Array.from([...sm, ...qs, ...halfBytes([0.125, 0.0625])]);
    const expected = q.map((v, e) => 0.125 * (sm[e >> 4] & 0xf) * v - 0.0625 * (sm[e >> 4] >> 4));
    expect(Array.from(dequantize(GGMLType.Q2_K, bytes, 256))).toEqual(expected);
  });

  it("IQ4_XS: fp16 d, 2-bit scale highs, 4-bit scale lows, grid indexes per 32 as Q4_0", () => {
    const grid = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];
    const q = Array.from({ length: 256 }, (_, e) => (e * 7 + (e >> 5)) % 16);
    const ls = [0, 5, 17, 31, 32, 40, 63, 50];
    const scalesH = ls.reduce((h, l, j) => h | ((l >> 4) << (2 * j)), 0);
    const scalesL = [0, 1, 2, 3].map((k) => (ls[2 * k] & 0xf) | ((ls[2 * k + 1] & 0xf) << 4));
    const qs = Array.from({ length: 128 }, (_, i) => q[32 * (i >> 4) + (i & 15)] | (q[32 * (i >> 4) + 16 + (i & 15)] << 4));
    const bytes = Uint8Array.from([...halfBytes([0.125]), scalesH & 0xff, scalesH >> 8, ...scalesL, ...qs]);
    expect(Array.from(dequantize(GGMLType.IQ4_XS, bytes, 256))).toEqual(q.map((v, e) => 0.125 * (ls[e >> 5] - 32) * grid[v]));
  });
});

describe("half precision", () => {
  it("toHalf rounds to nearest even and handles range limits", () => {
    expect(toHalf(1)).toBe(0x3c00);
    expect(toHalf(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(toHalf(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(toHalf(65504)).toBe(0x7bff);
    expect(toHalf(70000)).toBe(0x7c00);
    expect(toHalf(-(2 ** -24))).toBe(0x8001); // smallest subnormal
    expect(toHalf(2 ** -26)).toBe(0); // below half the smallest subnormal
    expect(toHalf(NaN) & 0x7c00).toBe(0x7c00);
    expect(fromHalf(0x3555)).toBeCloseTo(1 / 3, 3);
    for (let h = 0; h < 0x7c00; h += 37) expect(toHalf(fromHalf(h))).toBe(h);
  });
});

describe("errors", () => {
  it("unsupported types throw ERR_UNSUPPORTED_QUANT_TYPE", () => {
    for (const type of [GGMLType.IQ2_XXS, GGMLType.IQ3_S, 999 as GGMLType])
      expect(() => quantize(type, new Float32Array(256), 256)).toThrow(expect.objectContaining({ code: "ERR_UNSUPPORTED_QUANT_TYPE" }));
  });

  it("rows that are not whole blocks throw ERR_INVALID_ARGUMENT", () => {
    const cases: Array<[GGMLType, number, number]> = [
      [GGMLType.Q8_0, 48, 48],
      [GGMLType.Q4_K, 256, 128],
      [GGMLType.Q4_0, 96, 64], // 96 values are not whole rows of 64
      [GGMLType.F16, 10, 0],
    ];
    for (const [type, n, cols] of cases)
      expect(() => quantize(type, new Float32Array(n).fill(1), cols)).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARGUMENT" }));
    expect(() => dequantize(GGMLType.Q8_0, new Uint8Array(33), 32)).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARGUMENT" }));
  });
});
