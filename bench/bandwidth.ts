/**
 * The machine's read bandwidth: a STREAM-like sum over a buffer far larger than the caches,
 * timed per 8 MiB chunk (median GB/s, the figure kernel medians are compared with).
 */
import { kernels } from "../lib/kernels/harness.js";

export function measureReadBandwidth(o: { threads: number; quick: boolean }): number {
  return kernels().readBandwidth(o.quick ? 128 : 512, o.quick ? 2 : 4, o.threads).medianGBps;
}
