/** The machine's read bandwidth (STREAM-like sum over a buffer far larger than the caches). */
import { kernels } from "../lib/kernels/harness.js";

export function measureReadBandwidth(o: { threads: number; quick: boolean }): number {
  return kernels().readBandwidth(o.quick ? 128 : 512, o.quick ? 3 : 10, o.threads);
}
