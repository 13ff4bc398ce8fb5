/**
 * Kernel micro-benchmarks through the shared harness's native timer (benchMatmul): matvec
 * (m = 1, the decode case, bandwidth-bound) and prefill-size matmul (m = 128, compute-bound)
 * at real layer shapes, reported as GB/s of weights streamed and GFLOP/s. The timer keeps one
 * thread pool, packs the weights once (as model loading does) and rotates through copies
 * totalling well over the last-level cache, so matvec streams from DRAM as in decode; a JS
 * loop around kernels().matmul would time pool start-up and repacking on every call. Each
 * matvec's bandwidth share divides by a read-bandwidth probe taken right before it.
 */
import { quantize } from "../lib/gguf/quantize.js";
import { GGMLType, GGML_TYPE_INFO } from "../lib/gguf/types.js";
import { kernels } from "../lib/kernels/harness.js";
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
  const types = o.quick ? [GGMLType.Q4_0, GGMLType.Q8_0] : [GGMLType.Q4_0, GGMLType.Q8_0, GGMLType.Q4_K, GGMLType.Q6_K, GGMLType.F16, GGMLType.BF16];
  const batches = o.quick ? [1] : [1, 128];
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
        const readBandwidthGBps = m === 1 ? measureReadBandwidth(o) : null;
        const ms = k.benchMatmul(type, w, r, c, x, m, o.threads, o.quick ? 0.1 : 0.4).medianMs;
        const gbps = w.length / (ms / 1000) / 1e9;
        rows.push({
          kernel: label,
          shape: `${r}x${c}`,
          ms,
          gbps,
          gflops: (2 * r * c * m) / (ms / 1000) / 1e9,
          readBandwidthGBps,
          bandwidthShare: readBandwidthGBps ? gbps / readBandwidthGBps : null,
        });
      }
    }
  return rows;
}
