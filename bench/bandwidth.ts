/**
 * The machine's read bandwidth: a STREAM-like sum over a buffer far larger than the caches,
 * timed per 8 MiB chunk (median GB/s), the best of several read methods (one stream per
 * thread, the kernels' prefetched stretches, non-temporal loads, blocks dealt out to the
 * threads in turn) on all threads and on one fewer, as the engine picks its thread count per
 * step: a probe that missed the pattern or width the machine serves best would put kernels
 * over 100% of it. On a shared machine it moves by up to 2x within minutes (neighbours on
 * the memory bus), so every bandwidth share in the suite divides by a probe taken right next
 * to the run it judges, not by one figure from the start.
 */
import { kernels } from "../dev/kernels/harness.js";
import type { ReadBandwidth } from "../lib/native.js";

export function measureReadBandwidth(o: { threads: number; quick: boolean }): number {
  return readBandwidth(o).medianGBps;
}

/** The probe with every method's figures (bench/run.ts reports which won). */
export function readBandwidth(o: { threads: number; quick: boolean }): ReadBandwidth {
  // Two passes (64 timed chunks) per combination, one with --quick: eight combinations on two
  // or more threads cost ~0.3 s per pass here. One pass read Q4_K's matvec at 102% of its
  // ceiling (a probe of 54 GB/s beside a kernel reading 57); the second pass gives each
  // method's median twice the chunks.
  return kernels().readBandwidth(o.quick ? 128 : 256, o.quick ? 1 : 2, o.threads);
}
