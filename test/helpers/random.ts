import { Rng } from "../../lib/sampling/rng.js";

/** Fresh Gaussian data each run (the seed is printed on failure through the test name). */
export class Gaussian {
  private readonly rng: Rng;
  constructor(readonly seed: number = (Math.random() * 2 ** 32) >>> 0) {
    this.rng = new Rng(seed);
  }
  next(): number {
    const u = 1 - this.rng.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.rng.next());
  }
  array(n: number, scale = 1, mean = 0): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = mean + scale * this.next();
    return a;
  }
  int(n: number): number {
    return Math.floor(this.rng.next() * n);
  }
}
