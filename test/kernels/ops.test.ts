/**
 * Every CPU op against its float64 reference (dev/kernels/reference.ts) through the shared
 * harness, on both ISAs and 1 and 2 threads, with fresh random inputs and odd sizes.
 * Budgets are on ||got - ref|| / ||ref||.
 */
import { afterAll, describe, expect, it } from "vitest";
import { dequantize, fromHalf, quantize, toHalf } from "../../lib/gguf/quantize.js";
import { GGMLType, GGML_TYPE_INFO } from "../../lib/gguf/types.js";
import { checkAccumulation, checkOp, checkSummary, kernels, relativeError, sharedMatmulCases, weightTypeRow, weightTypeTable, withIsa, type Isa, type OpCheck } from "../../dev/kernels/harness.js";
import {
  attentionRef,
  encodedActivations,
  hadamardRef,
  headMatmulRef,
  layerNormRef,
  matmulRef,
  q8_1SumError,
  rmsNormRef,
  ropeRef,
  softmaxRef,
  ssmConvRef,
  ssmScanRef,
  swigluRef,
  type RopeRefParams,
} from "../../dev/kernels/reference.js";
import type { ActivationFormat, RopeKernelParams } from "../../lib/native.js";
import { native } from "../../lib/native.js";
import { Gaussian } from "../helpers/random.js";

const ISAS: Isa[] = native().systemInfo().cpu.avx2 ? ["scalar", "avx2"] : ["scalar"];
// The AVX-512 VNNI level replaces only matmul kernels (Q8_0); the other types fall back to AVX2.
const MATMUL_ONLY_ISAS: Isa[] = native().systemInfo().cpu.avx512vnni ? ["avx512vnni"] : [];
const THREADS = [1, 2];

/**
 * Matmul budgets, by the activation format a weight type's dot product takes (its row of
 * native/core/weight_types.h). `emulated`: reference fed the same encoded activations as the
 * kernel, so only fp32 accumulation order remains, measured against the magnitude of the
 * summed terms. `exact`: reference fed the raw fp32 activations; the budget then also covers
 * the activation encoding (fp16/bf16 rounding, int8 quantization).
 */
const ACTIVATION_BUDGET: Record<ActivationFormat, { emulated: number; exact: number }> = {
  F32: { emulated: 2e-6, exact: 1e-5 },
  F16: { emulated: 2e-6, exact: 2e-3 },
  BF16: { emulated: 2e-6, exact: 1.5e-2 },
  Q8_0: { emulated: 2e-6, exact: 1.5e-2 },
  Q8_K: { emulated: 2e-6, exact: 1.5e-2 },
  // Q4_1/Q5_1: the weights' minimum m multiplies the block sum s = d * sum(q) as stored, in
  // fp16 (as llama.cpp), not the sum of the values the reference sees; the emulated
  // reference adds m times that difference (q8_1SumError). A bound of 1e-3 on the difference
  // instead failed now and then (1.06e-3 on a 1x32 product, one block: seed 3376146956).
  Q8_1: { emulated: 2e-6, exact: 1.5e-2 },
};
const activation = (type: GGMLType) => weightTypeRow(type).activation;
/**
 * For weights with Q8_1 activations (Q4_1, Q5_1): the terms by which the kernel's product
 * differs from a reference fed encodedActivations, as a product the same reference can take:
 * mins [count] holds each weight's block minimum m (fp16 at byte 2 of every block), errors
 * each activation block's q8_1SumError spread over its 32 entries, so that summed over a
 * block they give m times the stored s's difference. Null for other types.
 */
function q8_1Terms(type: GGMLType, bytes: Uint8Array, count: number, x: Float32Array): { mins: Float64Array; errors: Float64Array } | null {
  if (activation(type) !== "Q8_1") return null;
  const { typeSize } = GGML_TYPE_INFO[type];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const mins = new Float64Array(count);
  for (let i = 0; i < count; i++) mins[i] = fromHalf(view.getUint16(Math.floor(i / 32) * typeSize + 2, true));
  const sumError = q8_1SumError(x);
  const errors = Float64Array.from({ length: x.length }, (_, i) => sumError[Math.floor(i / 32)] / 32);
  return { mins, errors };
}
function addInto(a: Float64Array, b: ArrayLike<number>): void {
  for (let i = 0; i < a.length; i++) a[i] += b[i];
}
const matmulBudget = (type: GGMLType) => ACTIVATION_BUDGET[activation(type)];
/** One weight type per encoded activation format (the first in the table), for quantize_act. */
const ENCODED_FORMAT_TYPES = weightTypeTable()
  .filter((r, i, all) => r.activation !== "F32" && all.findIndex((o) => o.activation === r.activation) === i)
  .map((r) => r.type as GGMLType);
/** Elementwise and row ops: fp32 kernels against float64 math, so only fp32 rounding remains. */
const FP32_OP_BUDGET = 1e-6;
/** RoPE: angles up to 4000 rad in fp32 carry ~1e-4 absolute phase error (llama.cpp's too). */
const ROPE_BUDGET = 2e-4;
/** Attention: q, K and V are held in fp16 (as in llama.cpp), ~2^-11 relative per element. */
const ATTENTION_BUDGET = 2e-3;
/** Against the dequantized cache and Q8_0 queries it reads: fp32 softmax and sums only. */
const QUANT_ATTENTION_BUDGET = 1e-5;

function expectWithin(c: OpCheck, tag = ""): void {
  expect(c.error, `${c.op} ${tag}`).toBeLessThanOrEqual(c.budget);
}

afterAll(() => {
  const rows = checkSummary().map((c) => `${c.op.padEnd(44)} ${c.error.toExponential(2).padStart(9)}  (budget ${c.budget.toPrecision(2)})`);
  console.log(`worst relative error per op:\n${rows.join("\n")}`);
});

// Types pack_weight gives a kernel-private layout (the table's layout column).
const REPACKABLE = new Set(weightTypeTable().filter((r) => r.repacked).map((r) => r.type));
// Layouts whose kernels sum in the same order (llama.cpp's repacked Q4_K orders), so both
// layouts give the same bits, in each order.
const SAME_ORDER_LAYOUTS = new Set([GGMLType.Q4_K]);
// Types with two summation orders, those of llama.cpp's batch and one-row kernels.
const TWO_ORDERS = new Set([GGMLType.Q4_K, GGMLType.F32, GGMLType.F16, GGMLType.BF16]);
// Every type the kernels compute with (native/core/weight_types.h, as systemInfo().weightTypes).
const TYPES = weightTypeTable().map((r) => r.type as GGMLType);

function checkMatmul(isa: Isa, type: GGMLType): void {
  const name = GGML_TYPE_INFO[type].name;
  const block = GGML_TYPE_INFO[type].blockSize;
  const g = new Gaussian();
  const unit = Math.max(block, 32);
  // The shapes the CUDA harness checks too (dev/kernels/matmul_cases.def).
  const shapes = sharedMatmulCases().map((c) => [c.rows, c.units * unit, c.tokens]);
  // Float rows need not be whole blocks: 40 columns are whole groups of 8 but not of 32,
  // 172 neither (the tails of the two orders).
  if (block === 1) shapes.push([8, 40, 3], [12, 172, 6]);
  for (const [rows, cols, nTokens] of shapes) {
    const w = g.array(rows * cols, 1 / Math.sqrt(cols));
    const bytes = quantize(type, w, cols);
    const wq = dequantize(type, bytes, rows * cols);
    const x = g.array(nTokens * cols);
    const refExact = matmulRef(wq, rows, cols, x, nTokens);
    const xEncoded = encodedActivations(activation(type), x, cols);
    const refEmulated = matmulRef(wq, rows, cols, xEncoded, nTokens);
    const sumTerms = q8_1Terms(type, bytes, rows * cols, x);
    if (sumTerms) addInto(refEmulated, matmulRef(sumTerms.mins, rows, cols, sumTerms.errors, nTokens));
    const magnitude = matmulRef(wq.map(Math.abs), rows, cols, Float64Array.from(xEncoded, Math.abs), nTokens);
    for (const threads of THREADS)
      for (const order of TWO_ORDERS.has(type) ? (["gemm", "gemv"] as const) : (["gemm"] as const)) {
        // repack: the layout pack_weight picks at load (8-row interleaved Q4_0 on AVX2
        // machines); GGUF: the file layout.
        const byLayout: Float32Array[] = [];
        for (const repack of REPACKABLE.has(type) ? [true, false] : [true]) {
          const y = withIsa(isa, () => kernels().matmul(type, bytes, rows, cols, x, nTokens, threads, repack, order));
          byLayout.push(y);
          const tag = `seed ${g.seed} ${rows}x${cols} n=${nTokens} t=${threads}`;
          const op = `matmul ${name}${REPACKABLE.has(type) ? (repack ? " repacked" : " GGUF") : ""}${TWO_ORDERS.has(type) ? ` ${order}` : ""} ${isa}`;
          expectWithin(checkAccumulation(`${op} (emulated activations)`, y, refEmulated, magnitude, matmulBudget(type).emulated), tag);
          // A handful of outputs can sit near zero, where a relative error says little.
          if (rows * nTokens >= 64) expectWithin(checkOp(`${op} (exact activations)`, y, refExact, matmulBudget(type).exact), tag);
        }
        if (SAME_ORDER_LAYOUTS.has(type)) expect(byLayout[0], `repacked vs GGUF layout, ${name} ${order} ${isa}`).toEqual(byLayout[1]);
      }
  }
}

function checkAloneInBatch(isa: Isa, type: GGMLType): void {
  const name = GGML_TYPE_INFO[type].name;
  const block = GGML_TYPE_INFO[type].blockSize;
  // Decode (m = 1) has its own kernels for speed; the logits of a token must not depend
  // on whether it was evaluated alone or in a prompt (llama.cpp's orders are the same).
  const g = new Gaussian();
  // 69 rows: 8 repacked groups of 8 and a tail, so decode's side-by-side stretches (4 of
  // rows or of groups) and the rows left over all run.
  const rows = 69;
  const cols = Math.max(block, 32) * 7;
  const nTokens = 5;
  const bytes = quantize(type, g.array(rows * cols, 1 / Math.sqrt(cols)), cols);
  const x = g.array(nTokens * cols);
  for (const threads of THREADS)
    for (const order of TWO_ORDERS.has(type) ? (["gemm", "gemv"] as const) : (["gemm"] as const)) {
      const batch = withIsa(isa, () => kernels().matmul(type, bytes, rows, cols, x, nTokens, threads, true, order));
      for (let t = 0; t < nTokens; t++) {
        const token = x.subarray(t * cols, (t + 1) * cols);
        const alone = withIsa(isa, () => kernels().matmul(type, bytes, rows, cols, token, 1, threads, true, order));
        expect(alone, `${name} ${order} ${isa} token ${t} t=${threads} seed ${g.seed}`).toEqual(batch.subarray(t * rows, (t + 1) * rows));
      }
    }
}

// The 16-row layouts cover whole groups of rows; the rows after the last whole group run
// one at a time in the file's layout, taking a group lane's steps (x16_common.h,
// groups_and_rows), so a row's bits do not depend on where the matrix end put it. (Q4_0x8's
// tail rows take the AVX2 kernel's llama.cpp order instead, as its groups do not.)
const X16_TYPES = new Set(weightTypeTable().filter((r) => r.layouts.avx512vnni.endsWith("x16")).map((r) => r.type));

function checkTailRows(isa: Isa, type: GGMLType): void {
  const name = GGML_TYPE_INFO[type].name;
  const g = new Gaussian();
  const cols = Math.max(GGML_TYPE_INFO[type].blockSize, 32) * 9;
  // 37 rows: two whole 16-row groups (four of 8) and a tail of 5, which repeats rows 3..7.
  const rows = 37;
  const w = g.array(rows * cols, 1 / Math.sqrt(cols));
  w.copyWithin(32 * cols, 3 * cols, 8 * cols);
  const bytes = quantize(type, w, cols);
  for (const nTokens of [1, 5]) {
    const x = g.array(nTokens * cols);
    for (const threads of THREADS) {
      const y = withIsa(isa, () => kernels().matmul(type, bytes, rows, cols, x, nTokens, threads, true));
      for (let t = 0; t < nTokens; t++)
        expect(y.subarray(t * rows + 32, t * rows + 37), `${name} ${isa} n=${nTokens} t=${threads} token ${t} seed ${g.seed}`).toEqual(
          y.subarray(t * rows + 3, t * rows + 8),
        );
    }
  }
}

describe.each(MATMUL_ONLY_ISAS)("matmul on %s", (isa) => {
  for (const type of TYPES) {
    const name = GGML_TYPE_INFO[type].name;
    it(`matmul ${name}: m=1 and batched, odd row counts`, () => checkMatmul(isa, type));
    it(`matmul ${name}: one token alone gives the bits it gets in a batch`, () => checkAloneInBatch(isa, type));
    if (isa === "avx512vnni" && X16_TYPES.has(type))
      it(`matmul ${name}: rows after the last whole group give a group's bits`, () => checkTailRows(isa, type));
  }

  it("matmul splits rows over any thread count, each row computed once (work taken from the back of other parts)", () => {
    // matmul_shared gives each thread a contiguous part and lets a thread done with its own
    // take units from the back of the others': a unit skipped would leave its rows at 0 (one
    // taken twice would add twice into a fused residual, which the models' logit checks
    // catch). More threads than units leave parts empty.
    const g = new Gaussian();
    for (const type of [GGMLType.Q8_0, GGMLType.Q4_K, GGMLType.Q4_0]) {
      const cols = 256 * 3;
      for (const rows of [5, 40, 16 * 37 + 5]) {
        const bytes = quantize(type, g.array(rows * cols, 1 / Math.sqrt(cols)), cols);
        for (const nTokens of [1, 3]) {
          const x = g.array(nTokens * cols);
          const one = withIsa(isa, () => kernels().matmul(type, bytes, rows, cols, x, nTokens, 1, true));
          expect(one.every((v) => v !== 0)).toBe(true);
          for (const threads of [2, 3, 5, 6])
            for (let rep = 0; rep < 3; rep++)
              expect(withIsa(isa, () => kernels().matmul(type, bytes, rows, cols, x, nTokens, threads, true)), `${GGML_TYPE_INFO[type].name} ${rows} rows n=${nTokens} t=${threads} seed ${g.seed}`).toEqual(one);
        }
      }
    }
  });

  it("repacked Q4_0 gives the AVX2 kernel's bits (same integer sums, same fp32 steps)", () => {
    const g = new Gaussian();
    // Odd token counts (a half-empty token pair), row counts with a tail outside whole
    // 8-row groups, one block and many.
    for (const [rows, cols, nTokens] of [[69, 224, 5], [64, 896, 8], [37, 32, 3], [16, 64, 2], [200, 96, 17]]) {
      const bytes = quantize(GGMLType.Q4_0, g.array(rows * cols, 1 / Math.sqrt(cols)), cols);
      const x = g.array(nTokens * cols);
      const wide = withIsa(isa, () => kernels().matmul(GGMLType.Q4_0, bytes, rows, cols, x, nTokens, 2, true));
      const avx2 = withIsa("avx2", () => kernels().matmul(GGMLType.Q4_0, bytes, rows, cols, x, nTokens, 2, true));
      expect(wide, `${rows}x${cols} n=${nTokens} seed ${g.seed}`).toEqual(avx2);
    }
  });
});

describe.each(ISAS)("CPU ops on %s", (isa) => {
  for (const type of TYPES) {
    const name = GGML_TYPE_INFO[type].name;
    const block = GGML_TYPE_INFO[type].blockSize;
    it(`matmul ${name}: m=1 and batched, odd row counts`, () => checkMatmul(isa, type));

    it(`matmul ${name}: one token alone gives the bits it gets in a batch`, () => checkAloneInBatch(isa, type));

    it(`get_rows ${name} returns the dequantized rows`, () => {
      const g = new Gaussian();
      const cols = Math.max(block, 32) * 2;
      const rows = 9;
      const bytes = quantize(type, g.array(rows * cols), cols);
      const table = dequantize(type, bytes, rows * cols);
      const tokens = Int32Array.from([8, 0, 3, 3]);
      const out = withIsa(isa, () => kernels().getRows(type, bytes, rows, cols, tokens));
      const ref = new Float64Array(tokens.length * cols);
      tokens.forEach((t, i) => ref.set(table.subarray(t * cols, (t + 1) * cols), i * cols));
      expectWithin(checkOp(`get_rows ${name} ${isa}`, out, ref, 1e-7));
    });
  }

  it("rms_norm with and without weight", () => {
    const g = new Gaussian();
    for (const [rows, dim] of [
      [1, 64],
      [5, 77],
      [17, 896],
    ]) {
      const x = g.array(rows * dim, 3, 0.5);
      const w = g.array(dim, 0.2, 1);
      for (const threads of THREADS) {
        const op = `rms_norm ${isa}`;
        expectWithin(checkOp(op, withIsa(isa, () => kernels().rmsNorm(x, w, rows, dim, 1e-5, threads)), rmsNormRef(x, w, rows, dim, 1e-5), FP32_OP_BUDGET));
        expectWithin(checkOp(op, withIsa(isa, () => kernels().rmsNorm(x, null, rows, dim, 1e-6, threads)), rmsNormRef(x, null, rows, dim, 1e-6), FP32_OP_BUDGET));
      }
    }
  });

  it("rms_norm gives every thread count the same bits when rows are fewer than threads", () => {
    // Such steps split each row's columns over the threads (a decode step's one token).
    const g = new Gaussian();
    for (const [rows, dim] of [
      [1, 77],
      [1, 2053],
      [2, 2048],
    ]) {
      const x = g.array(rows * dim, 3, 0.5);
      const w = g.array(dim, 0.2, 1);
      for (const weight of [w, null]) {
        const one = withIsa(isa, () => kernels().rmsNorm(x, weight, rows, dim, 1e-5, 1));
        for (const threads of [2, 3, 4]) expect(withIsa(isa, () => kernels().rmsNorm(x, weight, rows, dim, 1e-5, threads))).toEqual(one);
      }
    }
  });

  it("rope normal and neox, partial rotary dims, freq factors, linear scaling", () => {
    const g = new Gaussian();
    for (const neox of [false, true])
      for (const [nTokens, nHeads, headDim, nDims] of [
        [1, 1, 64, 64],
        [3, 5, 64, 32],
        [17, 4, 128, 128],
        [5, 3, 26, 22], // 11 pairs: vector runs plus a tail
      ]) {
        const x = g.array(nTokens * nHeads * headDim);
        const pos = Int32Array.from({ length: nTokens }, () => g.int(4000));
        const freqFactors = Float32Array.from({ length: nDims / 2 }, () => 1 + 3 * Math.abs(g.next()));
        for (const [ff, freqScale] of [
          [null, 1],
          [freqFactors, 0.25],
        ] as const) {
          const params = { kind: (neox ? 2 : 1) as 1 | 2, nDims, freqBase: 10000, freqScale, scaling: freqScale === 1 ? 0 : 1 };
          const ref = ropeRef(x, pos, nTokens, nHeads, headDim, { neox, nDims, freqBase: 10000, freqScale, freqFactors: ff ?? undefined });
          for (const threads of THREADS) {
            const y = withIsa(isa, () => kernels().rope(x, pos, nTokens, nHeads, headDim, params, ff, threads));
            expectWithin(checkOp(`rope ${isa}`, y, ref, ROPE_BUDGET));
          }
        }
      }
  });

  it("rope: one thread's tables follow every change of position, parameter and frequency factor", () => {
    // rope keeps the last token's sines and cosines per thread (the layers of a decode step
    // reuse them): each call below shares the position with the one before and differs in
    // one thing only, down to factor values in a fresh array of the same length.
    const g = new Gaussian();
    const [nHeads, headDim, nDims] = [3, 64, 64];
    const x = g.array(nHeads * headDim);
    const pos = Int32Array.of(g.int(4000));
    const ff = Float32Array.from({ length: nDims / 2 }, () => 1 + 3 * Math.abs(g.next()));
    const ff2 = ff.map((v, i) => (i === 7 ? v * 1.5 : v));
    const steps: Array<{ kernel: RopeKernelParams; ff: Float32Array | null; ref: RopeRefParams; pos?: Int32Array }> = [
      { kernel: { kind: 1, nDims, freqBase: 1e4, freqScale: 1, scaling: 0 }, ff: null, ref: { neox: false, nDims, freqBase: 1e4, freqScale: 1 } },
      { kernel: { kind: 1, nDims, freqBase: 1e4, freqScale: 1, scaling: 0 }, ff: null, ref: { neox: false, nDims, freqBase: 1e4, freqScale: 1 } },
      { kernel: { kind: 1, nDims, freqBase: 5e5, freqScale: 1, scaling: 0 }, ff: null, ref: { neox: false, nDims, freqBase: 5e5, freqScale: 1 } },
      { kernel: { kind: 1, nDims, freqBase: 5e5, freqScale: 0.5, scaling: 1 }, ff: null, ref: { neox: false, nDims, freqBase: 5e5, freqScale: 0.5 } },
      { kernel: { kind: 1, nDims: 32, freqBase: 5e5, freqScale: 0.5, scaling: 1 }, ff: null, ref: { neox: false, nDims: 32, freqBase: 5e5, freqScale: 0.5 } },
      { kernel: { kind: 1, nDims, freqBase: 5e5, freqScale: 0.5, scaling: 1 }, ff, ref: { neox: false, nDims, freqBase: 5e5, freqScale: 0.5, freqFactors: ff } },
      { kernel: { kind: 1, nDims, freqBase: 5e5, freqScale: 0.5, scaling: 1 }, ff: ff2, ref: { neox: false, nDims, freqBase: 5e5, freqScale: 0.5, freqFactors: ff2 } },
      { kernel: { kind: 1, nDims, freqBase: 5e5, freqScale: 0.5, scaling: 1 }, ff: Float32Array.from(ff), ref: { neox: false, nDims, freqBase: 5e5, freqScale: 0.5, freqFactors: ff } },
      { kernel: { kind: 2, nDims, freqBase: 5e5, freqScale: 0.5, scaling: 1 }, ff: null, ref: { neox: true, nDims, freqBase: 5e5, freqScale: 0.5 } },
      { kernel: { kind: 2, nDims, freqBase: 5e5, freqScale: 0.5, scaling: 1 }, ff: null, ref: { neox: true, nDims, freqBase: 5e5, freqScale: 0.5 }, pos: Int32Array.of(pos[0] + 1) },
      { kernel: { kind: 1, nDims, freqBase: 5e5, freqScale: 0.125, scaling: 3, nCtxOrig: 8192, lowFreqFactor: 1, highFreqFactor: 4 }, ff: null, ref: { neox: false, nDims, freqBase: 5e5, freqScale: 0.125, scaling: "llama3", nCtxOrig: 8192, lowFreqFactor: 1, highFreqFactor: 4 } },
      { kernel: { kind: 1, nDims, freqBase: 5e5, freqScale: 0.125, scaling: 3, nCtxOrig: 8192, lowFreqFactor: 2, highFreqFactor: 4 }, ff: null, ref: { neox: false, nDims, freqBase: 5e5, freqScale: 0.125, scaling: "llama3", nCtxOrig: 8192, lowFreqFactor: 2, highFreqFactor: 4 } },
    ];
    for (const [i, s] of steps.entries()) {
      const p = s.pos ?? pos;
      const y = withIsa(isa, () => kernels().rope(x, p, 1, nHeads, headDim, s.kernel, s.ff, 1));
      expectWithin(checkOp(`rope step ${i} ${isa}`, y, ropeRef(x, p, 1, nHeads, headDim, s.ref), ROPE_BUDGET), JSON.stringify(s.kernel));
    }
  });

  it("swiglu (SiLU) and GELU gate", () => {
    const g = new Gaussian();
    for (const [rows, dim, scale] of [
      [1, 33, 2],
      [7, 172, 2],
      [3, 61, 40], // far into both tails of the gate, past the exp clamp
    ]) {
      const gate = g.array(rows * dim, scale);
      const up = g.array(rows * dim);
      for (const threads of THREADS) {
        expectWithin(checkOp(`swiglu silu ${isa}`, withIsa(isa, () => kernels().swiglu(gate, up, rows, dim, 0, threads)), swigluRef(gate, up, false), FP32_OP_BUDGET));
        expectWithin(checkOp(`swiglu gelu ${isa}`, withIsa(isa, () => kernels().swiglu(gate, up, rows, dim, 1, threads)), swigluRef(gate, up, true), FP32_OP_BUDGET));
        // gpt-oss's clamp at 7: gates and ups scaled past it.
        const big = gate.map((x) => 4 * x), bigUp = up.map((x) => 4 * x);
        expectWithin(checkOp(`swiglu oai ${isa}`, withIsa(isa, () => kernels().swiglu(big, bigUp, rows, dim, 2, threads)), swigluRef(big, bigUp, "oai"), FP32_OP_BUDGET));
      }
    }
  });

  it("softmax, including large logits", () => {
    const g = new Gaussian();
    for (const n of [1, 7, 513]) {
      const x = g.array(n, 30, 50);
      expectWithin(checkOp(`softmax ${isa}`, withIsa(isa, () => kernels().softmax(x)), softmaxRef(x), FP32_OP_BUDGET));
    }
  });

  it("attention: GQA/MQA/MHA, decode and prefill, sliding window, softcap", () => {
    const g = new Gaussian();
    const cases = [
      { nTokens: 1, nCtx: 1, nHead: 4, nHeadKv: 4, headDim: 64, headDimV: 64, slidingWindow: 0, softcap: 0 },
      { nTokens: 1, nCtx: 37, nHead: 8, nHeadKv: 2, headDim: 64, headDimV: 64, slidingWindow: 0, softcap: 0 },
      { nTokens: 13, nCtx: 13, nHead: 6, nHeadKv: 1, headDim: 128, headDimV: 128, slidingWindow: 0, softcap: 0 },
      { nTokens: 5, nCtx: 40, nHead: 4, nHeadKv: 2, headDim: 32, headDimV: 48, slidingWindow: 8, softcap: 0 },
      { nTokens: 3, nCtx: 9, nHead: 2, nHeadKv: 1, headDim: 64, headDimV: 64, slidingWindow: 0, softcap: 20 },
      // Across many 32-position blocks of the (scrambled) paged cache: a prefill whose score
      // tiles span block ends, and decode steps that prefetch block by block.
      { nTokens: 70, nCtx: 100, nHead: 4, nHeadKv: 1, headDim: 64, headDimV: 64, slidingWindow: 0, softcap: 0 },
      { nTokens: 1, nCtx: 300, nHead: 8, nHeadKv: 8, headDim: 64, headDimV: 64, slidingWindow: 0, softcap: 0 },
      { nTokens: 1, nCtx: 291, nHead: 6, nHeadKv: 2, headDim: 128, headDimV: 128, slidingWindow: 40, softcap: 0 },
      // gpt-oss's attention sinks: one sink above every score (most weight dropped), the
      // others around the scores; decode and prefill, with a window.
      { nTokens: 1, nCtx: 57, nHead: 8, nHeadKv: 2, headDim: 64, headDimV: 64, slidingWindow: 0, softcap: 0, sinks: true },
      { nTokens: 7, nCtx: 40, nHead: 3, nHeadKv: 1, headDim: 64, headDimV: 64, slidingWindow: 9, softcap: 0, sinks: true },
    ];
    for (const c of cases) {
      const q = g.array(c.nTokens * c.nHead * c.headDim);
      const k = g.array(c.nCtx * c.nHeadKv * c.headDim);
      const v = g.array(c.nCtx * c.nHeadKv * c.headDimV);
      const sinks = "sinks" in c ? Float32Array.from({ length: c.nHead }, (_, h) => (h === 0 ? 12 : g.next() * 2)) : null;
      const args = { ...c, scale: 1 / Math.sqrt(c.headDim), sinks: sinks ?? undefined };
      const ref = attentionRef(q, k, v, args);
      for (const threads of THREADS) {
        const y = withIsa(isa, () =>
          kernels().attention(q, k, v, c.nTokens, c.nCtx, c.nHead, c.nHeadKv, c.headDim, c.headDimV, c.slidingWindow, args.scale, c.softcap, threads, false, undefined, sinks),
        );
        expectWithin(checkOp(`attention ${isa}`, y, ref, ATTENTION_BUDGET), JSON.stringify(c));
      }
    }
  });

  it("hadamard rotation: runs of 64 and 128, against the Sylvester matrix", () => {
    const g = new Gaussian();
    for (const [rows, width, n] of [[1, 64, 64], [5, 128, 128], [3, 192, 64], [7, 256, 64]]) {
      const x = g.array(rows * width);
      for (const threads of THREADS)
        expectWithin(checkOp(`hadamard ${isa}`, withIsa(isa, () => kernels().hadamard(x, rows, width, n, threads)), hadamardRef(x, rows, width, n), FP32_OP_BUDGET));
    }
  });

  it("attention over a quantized cache (q8_0, q4_0): GQA, decode and prefill, across blocks", () => {
    const g = new Gaussian();
    const cases = [
      { nTokens: 1, nCtx: 1, nHead: 4, nHeadKv: 2, headDim: 64, headDimV: 64, slidingWindow: 0, softcap: 0 },
      { nTokens: 1, nCtx: 77, nHead: 8, nHeadKv: 2, headDim: 128, headDimV: 128, slidingWindow: 0, softcap: 0 },
      { nTokens: 9, nCtx: 45, nHead: 4, nHeadKv: 4, headDim: 32, headDimV: 64, slidingWindow: 10, softcap: 0 },
      { nTokens: 5, nCtx: 40, nHead: 2, nHeadKv: 1, headDim: 64, headDimV: 64, slidingWindow: 0, softcap: 30 },
      { nTokens: 3, nCtx: 33, nHead: 4, nHeadKv: 2, headDim: 64, headDimV: 64, slidingWindow: 0, softcap: 0, sinks: true },
    ];
    // The kernel's inputs as it sees them: q as Q8_0 (what the cache types' dot products take;
    // a Q8_0 cache stores its rows in the same encoding), Q4_0 rows by ggml's reference
    // quantizer. Against those the only error left is fp32 rounding.
    const as = (type: GGMLType, x: Float32Array, cols: number) =>
      Float32Array.from(type === GGMLType.Q8_0 ? encodedActivations(activation(type), x, cols) : dequantize(type, quantize(type, x, cols), x.length));
    for (const [kvType, type] of [[1, GGMLType.Q8_0], [2, GGMLType.Q4_0]] as const) {
      for (const c of cases) {
        const q = g.array(c.nTokens * c.nHead * c.headDim);
        const k = g.array(c.nCtx * c.nHeadKv * c.headDim);
        const v = g.array(c.nCtx * c.nHeadKv * c.headDimV);
        const sinks = "sinks" in c ? Float32Array.from({ length: c.nHead }, () => g.next() * 2) : null;
        const args = { ...c, scale: 1 / Math.sqrt(c.headDim), sinks: sinks ?? undefined };
        const ref = attentionRef(as(GGMLType.Q8_0, q, c.headDim), as(type, k, c.headDim), as(type, v, c.headDimV), args);
        for (const threads of THREADS) {
          const y = withIsa(isa, () =>
            kernels().attention(q, k, v, c.nTokens, c.nCtx, c.nHead, c.nHeadKv, c.headDim, c.headDimV, c.slidingWindow, args.scale, c.softcap, threads, false, kvType, sinks),
          );
          expectWithin(checkOp(`attention ${GGML_TYPE_INFO[type].name} cache ${isa}`, y, ref, QUANT_ATTENTION_BUDGET), JSON.stringify(c));
        }
      }
    }
  });

  it("rope with YaRN and llama3 context extension", () => {
    const g = new Gaussian();
    const cases: Array<{ kernel: RopeKernelParams; ref: Omit<RopeRefParams, "neox" | "nDims" | "freqBase"> }> = [
      {
        kernel: { kind: 2, nDims: 64, freqBase: 1e6, freqScale: 0.25, scaling: 2, nCtxOrig: 4096, extFactor: 1, attnFactor: 1, betaFast: 32, betaSlow: 1 },
        ref: { freqScale: 0.25, scaling: "yarn", nCtxOrig: 4096, extFactor: 1, attnFactor: 1, betaFast: 32, betaSlow: 1 },
      },
      {
        kernel: { kind: 1, nDims: 64, freqBase: 1e4, freqScale: 0.5, scaling: 2, nCtxOrig: 2048, extFactor: 0.5, attnFactor: 0.9, betaFast: 16, betaSlow: 2 },
        ref: { freqScale: 0.5, scaling: "yarn", nCtxOrig: 2048, extFactor: 0.5, attnFactor: 0.9, betaFast: 16, betaSlow: 2 },
      },
      {
        kernel: { kind: 1, nDims: 64, freqBase: 5e5, freqScale: 0.125, scaling: 3, nCtxOrig: 8192, lowFreqFactor: 1, highFreqFactor: 4 },
        ref: { freqScale: 0.125, scaling: "llama3", nCtxOrig: 8192, lowFreqFactor: 1, highFreqFactor: 4 },
      },
    ];
    for (const c of cases) {
      const [nTokens, nHeads, headDim] = [5, 3, 80];
      const x = g.array(nTokens * nHeads * headDim);
      const pos = Int32Array.from({ length: nTokens }, () => g.int(4000));
      const ref = ropeRef(x, pos, nTokens, nHeads, headDim, { neox: c.kernel.kind === 2, nDims: c.kernel.nDims, freqBase: c.kernel.freqBase, ...c.ref });
      // Sanity of the case itself: the scaling changes the result.
      const plain = ropeRef(x, pos, nTokens, nHeads, headDim, { neox: c.kernel.kind === 2, nDims: c.kernel.nDims, freqBase: c.kernel.freqBase, freqScale: 1 });
      expect(relativeError(plain, ref)).toBeGreaterThan(1e-2);
      for (const threads of THREADS) {
        const y = withIsa(isa, () => kernels().rope(x, pos, nTokens, nHeads, headDim, c.kernel, null, threads));
        expectWithin(checkOp(`rope ${c.ref.scaling} ${isa}`, y, ref, ROPE_BUDGET), JSON.stringify(c.kernel));
      }
    }
  });

  it("layer_norm with and without weight and bias", () => {
    const g = new Gaussian();
    for (const [rows, dim] of [
      [1, 64],
      [5, 77],
      [17, 896],
    ]) {
      const x = g.array(rows * dim, 2, 1.5);
      const w = g.array(dim, 0.2, 1);
      const b = g.array(dim, 0.5);
      for (const threads of THREADS) {
        const op = `layer_norm ${isa}`;
        expectWithin(checkOp(op, withIsa(isa, () => kernels().layerNorm(x, w, b, rows, dim, 1e-5, threads)), layerNormRef(x, w, b, rows, dim, 1e-5), FP32_OP_BUDGET));
        expectWithin(checkOp(op, withIsa(isa, () => kernels().layerNorm(x, null, null, rows, dim, 1e-6, threads)), layerNormRef(x, null, null, rows, dim, 1e-6), FP32_OP_BUDGET));
      }
    }
  });

  it("add and add_bias (strided rows)", () => {
    const g = new Gaussian();
    for (const n of [1, 7, 1001]) {
      const x = g.array(n);
      const y = g.array(n);
      for (const threads of THREADS)
        expectWithin(checkOp(`add ${isa}`, withIsa(isa, () => kernels().add(x, y, threads)), Float64Array.from(x, (v, i) => v + y[i]), FP32_OP_BUDGET));
    }
    const [rows, dim, ldx] = [5, 13, 20];
    const x = g.array(rows * ldx);
    const bias = g.array(dim);
    const ref = Float64Array.from(x, (v, i) => (i % ldx < dim ? v + bias[i % ldx] : v));
    for (const threads of THREADS) expectWithin(checkOp(`add_bias ${isa}`, withIsa(isa, () => kernels().addBias(x, bias, rows, dim, ldx, threads)), ref, FP32_OP_BUDGET));
  });

  it("quantize_act encodes exactly what the reference encoding predicts (Q8_0, Q8_K with bsums, F16, BF16)", () => {
    const g = new Gaussian();
    for (const type of ENCODED_FORMAT_TYPES) {
      const cols = 512;
      for (const nTokens of [1, 3]) {
        const x = g.array(nTokens * cols, 2);
        // A rounding tie (x * 127 / amax = 0.5 when x[0] is the block maximum), and in every
        // 256-value block two values of equal largest magnitude and opposite sign: Q8_K's
        // scale takes the sign of the first.
        x[0] = 9;
        x[1] = 9 / 254;
        for (let b = 0; b < x.length / 256; b++) {
          x[b * 256 + 40 + b] = b % 2 ? 21 : -21;
          x[b * 256 + 200] = b % 2 ? -21 : 21;
        }
        const ref = encodedActivations(activation(type), x, cols);
        for (const threads of THREADS) {
          const bytes = withIsa(isa, () => kernels().quantizeAct(type, x, nTokens, cols, threads));
          const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
          const got = new Float64Array(x.length);
          const format = activation(type);
          if (format === "Q8_0") got.set(dequantize(GGMLType.Q8_0, bytes, x.length));
          else if (format === "Q8_1") {
            // BlockQ8_1: fp16 d, fp16 s = d * sum(q) from the fp32 d = amax / 127, 32 int8.
            for (let b = 0; b < x.length / 32; b++) {
              const o = b * 36;
              const d = fromHalf(v.getUint16(o, true));
              let sum = 0;
              let amax = 0;
              for (let i = 0; i < 32; i++) {
                const q = v.getInt8(o + 4 + i);
                sum += q;
                got[b * 32 + i] = d * q;
                amax = Math.max(amax, Math.abs(x[b * 32 + i]));
              }
              expect(v.getUint16(o + 2, true)).toBe(toHalf(Math.fround(Math.fround(amax / 127) * sum)));
            }
          }
          else if (format === "F16") got.set(dequantize(GGMLType.F16, bytes, x.length));
          else if (format === "BF16") got.set(dequantize(GGMLType.BF16, bytes, x.length));
          else {
            // BlockQ8_K: f32 d, 256 int8, 16 int16 sums of each 16 values.
            for (let b = 0; b < x.length / 256; b++) {
              const o = b * 292;
              const d = v.getFloat32(o, true);
              for (let s = 0; s < 16; s++) {
                let sum = 0;
                for (let i = 0; i < 16; i++) {
                  const q = v.getInt8(o + 4 + 16 * s + i);
                  sum += q;
                  got[b * 256 + 16 * s + i] = d * q;
                }
                expect(v.getInt16(o + 260 + 2 * s, true)).toBe(sum);
              }
            }
          }
          expectWithin(checkOp(`quantize_act ${GGML_TYPE_INFO[type].name} ${isa}`, got, ref, 0), `n=${nTokens} t=${threads} seed ${g.seed}`);
        }
      }
    }
  });

  it("attention over a latent cache (MLA): MQA, values are the key rows' prefix", () => {
    const g = new Gaussian();
    // head_dim = kv_lora + rope, head_dim_v = kv_lora, one KV head.
    const cases = [
      { nTokens: 1, nCtx: 1, nHead: 4, nHeadKv: 1, headDim: 80, headDimV: 64, slidingWindow: 0, softcap: 0 },
      { nTokens: 1, nCtx: 29, nHead: 3, nHeadKv: 1, headDim: 72, headDimV: 64, slidingWindow: 0, softcap: 0 },
      { nTokens: 11, nCtx: 11, nHead: 5, nHeadKv: 1, headDim: 576, headDimV: 512, slidingWindow: 0, softcap: 0 },
      { nTokens: 6, nCtx: 20, nHead: 2, nHeadKv: 1, headDim: 37, headDimV: 29, slidingWindow: 0, softcap: 0 },
    ];
    for (const c of cases) {
      const q = g.array(c.nTokens * c.nHead * c.headDim);
      const k = g.array(c.nCtx * c.headDim);
      const v = new Float32Array(c.nCtx * c.headDimV);
      for (let j = 0; j < c.nCtx; j++) v.set(k.subarray(j * c.headDim, j * c.headDim + c.headDimV), j * c.headDimV);
      const args = { ...c, scale: 1 / Math.sqrt(c.headDim) };
      const ref = attentionRef(q, k, v, args);
      for (const threads of THREADS) {
        const y = withIsa(isa, () =>
          kernels().attention(q, k, new Float32Array(0), c.nTokens, c.nCtx, c.nHead, 1, c.headDim, c.headDimV, 0, args.scale, 0, threads, true),
        );
        expect(relativeError(y, ref), JSON.stringify(c)).toBeLessThan(2e-3);
      }
    }
  });

  for (const type of TYPES) {
    const name = GGML_TYPE_INFO[type].name;
    it(`head_matmul ${name}: per-head matrices, head-major activations, odd head and row counts`, () => {
      const g = new Gaussian();
      const block = Math.max(GGML_TYPE_INFO[type].blockSize, 32);
      for (const [nHead, rows, blocks, nTokens] of [
        [1, 1, 1, 1],
        [3, 7, 2, 1],
        [4, 16, 2, 5],
        [5, 24, 1, 13],
      ]) {
        const cols = block * blocks;
        const w = g.array(nHead * rows * cols, 1 / Math.sqrt(cols));
        const bytes = quantize(type, w, cols);
        const wq = dequantize(type, bytes, nHead * rows * cols);
        const x = g.array(nHead * nTokens * cols);
        const refExact = headMatmulRef(wq, nHead, rows, cols, x, nTokens);
        const xEncoded = encodedActivations(activation(type), x, cols);
        const refEmulated = headMatmulRef(wq, nHead, rows, cols, xEncoded, nTokens);
        const sumTerms = q8_1Terms(type, bytes, nHead * rows * cols, x);
        if (sumTerms) addInto(refEmulated, headMatmulRef(sumTerms.mins, nHead, rows, cols, sumTerms.errors, nTokens));
        const magnitude = headMatmulRef(wq.map(Math.abs), nHead, rows, cols, Float64Array.from(xEncoded, Math.abs), nTokens);
        for (const threads of THREADS) {
          const y = withIsa(isa, () => kernels().headMatmul(type, bytes, nHead, rows, cols, x, nTokens, threads));
          const tag = `seed ${g.seed} ${nHead}x${rows}x${cols} n=${nTokens} t=${threads}`;
          expectWithin(checkAccumulation(`head_matmul ${name} ${isa} (emulated activations)`, y, refEmulated, magnitude, matmulBudget(type).emulated), tag);
          if (nHead * rows * nTokens >= 64) expect(relativeError(y, refExact), tag).toBeLessThan(matmulBudget(type).exact);
        }
      }
    });
  }

  it("copy_heads regroups per-head slices (token-major <-> head-major, into wider rows)", () => {
    const g = new Gaussian();
    for (const [nTokens, nHead, headW, width, yHeadW] of [
      [1, 1, 8, 8, 8],
      [5, 3, 12, 7, 9],
      [9, 4, 24, 16, 20],
    ]) {
      const x = g.array(nTokens * nHead * headW);
      const offset = headW - width;  // the tail of each head, like q_pe
      const src = x.subarray(offset);
      for (const threads of THREADS) {
        // Token-major [t][h][headW] tail -> head-major [h][t][width].
        const hm = withIsa(isa, () => kernels().copyHeads(src, nHead * headW, headW, nHead * nTokens * width, width, nTokens * width, nTokens, nHead, width, threads));
        // -> rows of yHeadW per head, at offset yHeadW - width.
        const wide = withIsa(isa, () => kernels().copyHeads(src, nHead * headW, headW, nTokens * nHead * yHeadW, nHead * yHeadW, yHeadW, nTokens, nHead, width, threads));
        for (let t = 0; t < nTokens; t++)
          for (let h = 0; h < nHead; h++)
            for (let c = 0; c < width; c++) {
              const want = x[(t * nHead + h) * headW + offset + c];
              expect(hm[(h * nTokens + t) * width + c]).toBe(want);
              expect(wide[(t * nHead + h) * yHeadW + c]).toBe(want);
            }
        // Nothing outside the copied slices is written.
        let outside = 0;
        for (let i = 0; i < wide.length; i++) if (i % yHeadW >= width) outside += Math.abs(wide[i]);
        expect(outside).toBe(0);
      }
    }
  });

  it("read-bandwidth probe returns a plausible figure", () => {
    const { medianGBps, bestGBps } = withIsa(isa, () => kernels().readBandwidth(64, 2, 2));
    // A floor on the units, not on the machine: test files run side by side on 2 cores and
    // a starved scalar probe has measured 0.2 GB/s.
    expect(medianGBps).toBeGreaterThan(0.02);
    expect(bestGBps).toBeGreaterThanOrEqual(medianGBps);
    expect(bestGBps).toBeLessThan(2000);
  });
});

/** The Mamba-2 ops (scalar on every ISA): fp32 sums of a few taps, and a scan whose decay < 1 keeps rounding from growing. */
const SSM_BUDGET = 1e-5;

describe("Mamba-2 ops against float64", () => {
  it("ssm_conv: odd channel counts, 3 and 4 taps, 1 to 33 rows, from a nonzero window", () => {
    const g = new Gaussian();
    for (const [channels, dConv, rows] of [
      [37, 4, 1],
      [37, 4, 33],
      [5, 3, 7],
      [130, 4, 2],
    ]) {
      const state = g.array((dConv - 1) * channels);
      const x = g.array(rows * channels);
      const w = g.array(channels * dConv, 0.5);
      const bias = g.array(channels, 0.1);
      const ref = ssmConvRef(state, x, rows, w, bias, channels, dConv);
      for (const threads of [1, 2, 3]) {
        const got = kernels().ssmConv(state, x, rows, w, bias, channels, dConv, threads);
        expectWithin(checkOp("ssm_conv", got.y, ref.y, SSM_BUDGET), `${channels}x${dConv} rows ${rows} threads ${threads}`);
        expect(Array.from(got.state)).toEqual(Array.from(ref.state, Math.fround));  // the window is copied, not computed
      }
    }
  });

  it("ssm_scan: odd head, state and group sizes, from a nonzero state", () => {
    const g = new Gaussian();
    for (const [nHead, headDim, dState, nGroup, rows] of [
      [6, 5, 13, 3, 7],
      [1, 3, 1, 1, 1],
      [8, 16, 16, 2, 40],
      [3, 7, 5, 1, 3],
    ]) {
      const inner = nHead * headDim;
      const state = g.array(inner * dState, 0.5);
      const x = g.array(rows * inner);
      const B = g.array(rows * nGroup * dState);
      const C = g.array(rows * nGroup * dState);
      const dt = g.array(rows * nHead, 2);  // softplus both sides of 20 is not reached; both branches of its sign are
      const dtBias = g.array(nHead, 0.5, -1);
      const A = Float32Array.from(g.array(nHead, 0.5, 1), (v) => -Math.exp(v));
      const D = g.array(nHead, 0.1, 1);
      const ref = ssmScanRef(state, x, B, C, dt, dtBias, A, D, { nRows: rows, nHead, headDim, dState, nGroup });
      for (const threads of [1, 2, 3]) {
        const got = kernels().ssmScan(state, x, B, C, dt, dtBias, A, D, rows, nHead, headDim, dState, nGroup, threads);
        const tag = `${nHead}x${headDim}x${dState}/${nGroup} rows ${rows} threads ${threads}`;
        expectWithin(checkOp("ssm_scan", got.y, ref.y, SSM_BUDGET), tag);
        expectWithin(checkOp("ssm_scan state", got.state, ref.state, SSM_BUDGET), tag);
      }
    }
  });

  it("ssm_scan: a time step past softplus's linear threshold (20) and a bad group count", () => {
    // Two heads of one value, one group of a one-value state: dt 25 takes softplus's x branch.
    const x = Float32Array.of(1, 2), B = Float32Array.of(0.5), C = Float32Array.of(2);
    const dt = Float32Array.of(25, -30), zero = new Float32Array(2), A = Float32Array.of(-1, -1), D = Float32Array.of(1, 1);
    const got = kernels().ssmScan(Float32Array.of(3, 4), x, B, C, dt, zero, A, D, 1, 2, 1, 1, 1, 1);
    const ref = ssmScanRef(Float32Array.of(3, 4), x, B, C, dt, zero, A, D, { nRows: 1, nHead: 2, headDim: 1, dState: 1, nGroup: 1 });
    expectWithin(checkOp("ssm_scan", got.y, ref.y, SSM_BUDGET));
    expect(() => kernels().ssmScan(Float32Array.of(3, 4), x, Float32Array.of(0, 0, 0), Float32Array.of(0, 0, 0), dt, zero, A, D, 1, 2, 1, 1, 3, 1)).toThrow(/multiple of nGroup/);
  });
});

describe.runIf(ISAS.includes("avx2"))("AVX2 activation encoding is byte-identical to scalar", () => {
  it("Q8_0, Q8_K (incl. the sign of a tied maximum), F16, BF16 (incl. NaN, inf, subnormals)", () => {
    const g = new Gaussian();
    const cols = 768;
    const x = g.array(2 * cols, 3);
    for (let b = 0; b < x.length / 256; b++) {
      x[b * 256 + 17 + b] = b % 2 ? 40 : -40;
      x[b * 256 + 100] = b % 2 ? -40 : 40;
    }
    x[5] = NaN;
    x[6] = Infinity;
    x[7] = -1e-41;
    x[8] = 65520; // rounds to fp16 infinity
    for (const type of ENCODED_FORMAT_TYPES) {
      // NaN/inf would poison the scale of an integer block: keep them to the float formats.
      const input = activation(type) === "F16" || activation(type) === "BF16" ? x : x.map((v) => (Number.isFinite(v) ? v : 1));
      for (const threads of THREADS) {
        const scalar = withIsa("scalar", () => kernels().quantizeAct(type, input, 2, cols, threads));
        const avx2 = withIsa("avx2", () => kernels().quantizeAct(type, input, 2, cols, threads));
        expect(Buffer.compare(scalar, avx2), `${GGML_TYPE_INFO[type].name} t=${threads} seed ${g.seed}`).toBe(0);
      }
    }
  });
});

describe.runIf(ISAS.includes("avx2"))("AVX2 RoPE rotation rounds as the scalar one", () => {
  it("bit for bit: normal and neox, whole and partial rotary dims, tails of odd pair counts", () => {
    const g = new Gaussian();
    for (const neox of [false, true])
      for (const [nTokens, nHeads, headDim, nDims] of [
        [7, 3, 64, 64],
        [4, 5, 80, 40],
        [3, 2, 30, 18],
        [2, 2, 6, 6],
      ]) {
        const x = g.array(nTokens * nHeads * headDim);
        const pos = Int32Array.from({ length: nTokens }, () => g.int(8000));
        const params = { kind: (neox ? 2 : 1) as 1 | 2, nDims, freqBase: 10000, freqScale: 1, scaling: 0 };
        const scalar = withIsa("scalar", () => kernels().rope(x, pos, nTokens, nHeads, headDim, params, null, 1));
        const avx2 = withIsa("avx2", () => kernels().rope(x, pos, nTokens, nHeads, headDim, params, null, 2));
        expect(Buffer.compare(Buffer.from(scalar.buffer), Buffer.from(avx2.buffer)), `neox ${neox} ${nDims}/${headDim} seed ${g.seed}`).toBe(0);
      }
  });
});

describe("native attention timer", () => {
  it("times prefill and decode (rotating cache copies) with positive medians", () => {
    const g = new Gaussian();
    for (const [nTokens, nCtx] of [
      [33, 40],
      [1, 600],
    ]) {
      const t = kernels().benchAttention(g.array(nTokens * 6 * 16), g.array(nCtx * 2 * 16), g.array(nCtx * 2 * 16), nTokens, nCtx, 6, 2, 16, 16, 0, 0.25, 0, 2, 0.02);
      expect(t.runs).toBeGreaterThanOrEqual(5);
      expect(t.minMs).toBeGreaterThan(0);
      expect(t.medianMs).toBeGreaterThanOrEqual(t.minMs);
      expect(t.copies, `${nTokens} tokens`).toBe(nTokens === 1 ? 256 : 1);
    }
  });
});

describe("harness argument validation", () => {
  it("rejects wrong lengths and types with coded errors instead of crashing", () => {
    const k = kernels();
    const bad: Array<() => unknown> = [
      () => k.matmul(GGMLType.F32, new Uint8Array(10), 2, 4, new Float32Array(4), 1, 1),
      () => k.matmul(GGMLType.Q4_0, new Uint8Array(18), 1, 16, new Float32Array(16), 1, 1),
      () => k.matmul(GGMLType.IQ2_XXS, new Uint8Array(66), 1, 256, new Float32Array(256), 1, 1),
      () => k.rmsNorm(new Float32Array(3), null, 2, 2, 1e-5, 1),
      () => k.getRows(GGMLType.F32, new Uint8Array(16), 2, 2, Int32Array.from([2])),
      () => k.attention(new Float32Array(1), new Float32Array(1), new Float32Array(1), 2, 1, 1, 1, 1, 1, 0, 1, 0, 1),
      () => k.softmax(new Float32Array(0)),
      () => k.headMatmul(GGMLType.F32, new Uint8Array(32), 2, 2, 4, new Float32Array(16), 2, 1),
      () => k.copyHeads(new Float32Array(8), 4, 2, 8, 4, 2, 2, 2, 3, 1),
      () => k.attention(new Float32Array(8), new Float32Array(4), new Float32Array(0), 1, 1, 2, 1, 4, 8, 0, 1, 0, 1, true),
      () => k.benchAttention(new Float32Array(8), new Float32Array(8), new Float32Array(8), 1, 1, 1, 1, 8, 8, 0, 1, 0, 1, 0),
      () => k.benchAttention(new Float32Array(8), new Float32Array(4), new Float32Array(8), 1, 1, 1, 1, 8, 8, 0, 1, 0, 1, 0.01),
    ];
    for (const f of bad) {
      let code: string | undefined;
      try {
        f();
      } catch (e) {
        code = (e as { code?: string }).code;
      }
      expect(code === "ERR_INVALID_ARGUMENT" || code === "ERR_UNSUPPORTED_QUANT_TYPE", String(f)).toBe(true);
    }
  });
});
