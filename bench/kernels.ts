/**
 * Kernel micro-benchmarks through the shared harness's native timers (benchMatmul,
 * benchAttention): matvec (m = 1, the decode case, bandwidth-bound) and prefill-size matmul
 * (m = 128, compute-bound) at real layer shapes, reported as GB/s of weights streamed and
 * GFLOP/s; attention of one layer for a causal 512-token prefill and for a decode step at
 * 4096 positions (GB/s of the fp16 keys and values read). The timer keeps one
 * thread pool, packs the weights once (as model loading does) and rotates through copies
 * totalling well over the last-level cache, so matvec streams from DRAM as in decode; a JS
 * loop around kernels().matmul would time pool start-up and repacking on every call. Each
 * matvec's bandwidth share divides by read-bandwidth probes taken in turns with it.
 */
import { quantize } from "../lib/gguf/quantize.js";
import { GGMLType, GGML_TYPE_INFO } from "../lib/gguf/types.js";
import { computeTypes } from "../lib/model/weight-types.js";
import { kernels } from "../dev/kernels/harness.js";
import { measureReadBandwidth } from "./bandwidth.js";
import type { KernelRow } from "./report.js";

interface KernelBenchOptions {
  threads: number;
  quick: boolean;
  onStep?: (label: string) => void;
}

function randomMatrix(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    a[i] = ((x >>> 0) / 2 ** 32 - 0.5) * 0.1;
  }
  return a;
}

export async function runKernelBench(o: KernelBenchOptions): Promise<KernelRow[]> {
  // Qwen2.5-0.5B FFN up (896 -> 4864) and Llama-3.2-1B FFN up (2048 -> 8192).
  const shapes: Array<[number, number]> = o.quick ? [[4864, 896]] : [
    [4864, 896],
    [8192, 2048],
  ];
  // Every computable type but F32 (native/core/weight_types.h), the quick run two of them.
  const types = o.quick ? [GGMLType.Q4_0, GGMLType.Q8_0] : [...computeTypes()].filter((t) => t !== GGMLType.F32);
  // m=8: the rows of a batched decode step of 8 sequences or a draft verification.
  const batches = o.quick ? [1] : [1, 8, 128];
  const k = kernels();
  const rows: KernelRow[] = [];
  for (const [r, c] of shapes)
    for (const type of types) {
      const info = GGML_TYPE_INFO[type];
      if (c % info.blockSize !== 0) continue; // K-quants need whole 256-value rows
      const w = quantize(type, randomMatrix(r * c, r ^ c), c);
      for (const m of batches) {
        const x = randomMatrix(m * c, 7);
        const label = `${m === 1 ? "matvec" : `matmul m=${m}`} ${info.name}`;
        o.onStep?.(`kernel ${label} ${r}x${c}`);
        if (m === 1) {
          // Decode is judged against the read probe, taken in turns with the kernel so the
          // two see the same memory bus (see interleaved).
          const { ms, readBandwidthGBps, bandwidthShare } = interleaved(o, () => k.benchMatmul(type, w, r, c, x, m, o.threads, o.quick ? 0.1 : 0.2).medianMs, w.length);
          rows.push({ kernel: label, shape: `${r}x${c}`, ms, gbps: w.length / (ms / 1000) / 1e9, gflops: (2 * r * c * m) / (ms / 1000) / 1e9, readBandwidthGBps, bandwidthShare });
          continue;
        }
        const ms = k.benchMatmul(type, w, r, c, x, m, o.threads, o.quick ? 0.1 : 0.4).medianMs;
        const gbps = w.length / (ms / 1000) / 1e9;
        rows.push({
          kernel: label,
          shape: `${r}x${c}`,
          ms,
          gbps,
          gflops: (2 * r * c * m) / (ms / 1000) / 1e9,
          readBandwidthGBps: null,
          bandwidthShare: null,
        });
      }
    }
  rows.push(...attentionRows(o));
  return rows;
}

interface AttentionShape {
  name: string;
  nHead: number;
  nHeadKv: number;
  headDim: number;
}

const SMOLLM2: AttentionShape = { name: "SmolLM2-135M", nHead: 9, nHeadKv: 3, headDim: 64 };
const LLAMA_1B: AttentionShape = { name: "Llama-3.2-1B", nHead: 32, nHeadKv: 8, headDim: 64 };

function attentionRows(o: KernelBenchOptions): KernelRow[] {
  const k = kernels();
  const cases: Array<[AttentionShape, number, number]> = o.quick ? [[SMOLLM2, 128, 128]] : [
    [SMOLLM2, 512, 512],
    [LLAMA_1B, 512, 512],
    [LLAMA_1B, 1, 4096],
  ];
  return cases.map(([shape, nTokens, nCtx]) => {
    const { nHead, nHeadKv, headDim } = shape;
    const decode = nTokens === 1;
    const label = `attention ${decode ? "decode" : `prefill ${nTokens}`}`;
    o.onStep?.(`kernel ${label} ${shape.name}`);
    const q = randomMatrix(nTokens * nHead * headDim, 11);
    const keys = randomMatrix(nCtx * nHeadKv * headDim, 13);
    const values = randomMatrix(nCtx * nHeadKv * headDim, 17);
    const cacheBytes = nHeadKv * nCtx * 2 * headDim * 2;
    const run = (seconds: number) =>
      k.benchAttention(q, keys, values, nTokens, nCtx, nHead, nHeadKv, headDim, headDim, 0, 1 / Math.sqrt(headDim), 0, o.threads, seconds).medianMs;
    const judged = decode ? interleaved(o, () => run(o.quick ? 0.1 : 0.2), cacheBytes) : undefined;
    const readBandwidthGBps = judged?.readBandwidthGBps ?? null;
    const ms = judged?.ms ?? run(o.quick ? 0.1 : 0.4);
    // Token t of the batch attends positions [0, nCtx - nTokens + t]: a score and a value
    // multiply-add per (head, attended position, dimension).
    const attended = nTokens * (nCtx - nTokens) + (nTokens * (nTokens + 1)) / 2;
    const gbps = cacheBytes / (ms / 1000) / 1e9;
    return {
      kernel: label,
      shape: `${shape.name} ${nHead}/${nHeadKv}x${headDim} @${nCtx}`,
      ms,
      gbps,
      gflops: (4 * nHead * headDim * attended) / (ms / 1000) / 1e9,
      readBandwidthGBps,
      bandwidthShare: judged?.bandwidthShare ?? null,
    };
  });
}

/**
 * A bandwidth-bound kernel against the read probe, measured in turns (probe, kernel, ...,
 * probe; ROUNDS kernel runs): the bus a VM shares moves by up to 2x within minutes, and even
 * a probe taken right before a 0.4 s run put some kernels at 105-111% of it. The share is the
 * median over the runs of the kernel's GB/s over the higher of the probes beside it; ms and
 * the probe are medians.
 */
function interleaved(o: KernelBenchOptions, kernelMs: () => number, bytes: number): { ms: number; readBandwidthGBps: number; bandwidthShare: number } {
  // Probe, kernel, probe, kernel, ..., probe: each run's share divides by the higher of the
  // probes right before and after it, as the decode rows do. One probe alone swung from 82 to
  // 60 GB/s within a minute on the dev VM and put Q6_K's matvec at 111% of it.
  const ROUNDS = o.quick ? 2 : 3;
  const ms: number[] = [], probe: number[] = [measureReadBandwidth(o)], share: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t = kernelMs();
    probe.push(measureReadBandwidth(o));
    const p = Math.max(probe[i], probe[i + 1]);
    ms.push(t);
    share.push(bytes / (t / 1000) / 1e9 / p);
  }
  return { ms: median(ms), readBandwidthGBps: median(probe), bandwidthShare: median(share) };
}

function median(a: number[]): number {
  const s = [...a].sort((x, y) => x - y);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}
