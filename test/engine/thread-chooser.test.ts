/**
 * The executor's per-step thread count (ThreadChooser, native/cpu/cpu_executor.h), driven
 * through scripted step costs: it runs the faster of all threads and one fewer, tries the
 * other now and then, spaces its tries out while the other stays far slower (a try of a
 * memory-bound decode step costs most of a step), and comes back to frequent tries, then
 * switches, when a busy neighbour slows the running count down.
 */
import { describe, expect, it } from "vitest";
import { kernels } from "../../dev/kernels/harness.js";

const MS = 1e6;

/** Picks of a 2-thread chooser over `n` steps costing all(i) / fewer(i) ns. */
function run(n: number, all: (i: number) => number, fewer: (i: number) => number): Int32Array {
  const a = new Float64Array(n), f = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    a[i] = all(i);
    f[i] = fewer(i);
  }
  return kernels().chooseThreads(2, a, f);
}

function stepsOn(picks: Int32Array, threads: number, from = 0, to = picks.length): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i++) if (picks[i] === threads) out.push(i);
  return out;
}

const gaps = (xs: number[]) => xs.slice(1).map((x, i) => x - xs[i]);

describe("thread chooser", () => {
  it("spaces out its tries while one thread fewer stays far slower", () => {
    const picks = run(4000, () => 11 * MS, () => 21 * MS);
    const tries = stepsOn(picks, 1);
    // The first try once the cold steps are averaged out, then ever longer waits, capped.
    expect(tries[0]).toBeLessThan(16);
    const g = gaps(tries);
    for (let i = 1; i < g.length; i++) expect(g[i]).toBeGreaterThanOrEqual(g[i - 1]);
    expect(g[0]).toBeGreaterThanOrEqual(64);
    expect(Math.max(...g)).toBe(1024);
    // Every step but the tries on all threads; a try every 64 steps would be ~62 here.
    expect(tries.length).toBeLessThan(10);
    expect(stepsOn(picks, 2).length).toBe(4000 - tries.length);
  });

  it("keeps trying every 64 steps when the counts are close", () => {
    const picks = run(1000, () => 10 * MS, () => 10.6 * MS);
    const g = gaps(stepsOn(picks, 1));
    expect(g.length).toBeGreaterThan(10);
    for (const x of g) expect(x).toBe(64);
  });

  it("switches to one thread fewer soon after a neighbour slows the running count", () => {
    // Quiet for 3000 steps (the waits have grown to their cap), then each 2-thread step
    // costs 3x: one thread fewer is faster from step 3000 on.
    const busy = 3000;
    const picks = run(4000, (i) => (i < busy ? 10 : 30) * MS, () => 20 * MS);
    const after = stepsOn(picks, 1, busy);
    // Within kExplore (64) steps of the slowdown being seen, not after a 1024-step wait.
    expect(after[0] - busy).toBeLessThan(80);
    // And it stays there: one fewer on nearly every later step.
    expect(stepsOn(picks, 1, busy + 100).length).toBeGreaterThan(0.95 * (4000 - busy - 100));
  });

  it("switches back when the machine is quiet again", () => {
    const picks = run(3000, (i) => (i >= 500 && i < 1500 ? 30 : 10) * MS, () => 20 * MS);
    expect(stepsOn(picks, 1, 700, 1500).length).toBeGreaterThan(0.95 * 800);
    // Back on all threads within a try's wait (64 steps at first) of the neighbour leaving.
    const back = stepsOn(picks, 2, 1500);
    expect(back[0] - 1500).toBeLessThan(80);
    expect(stepsOn(picks, 2, 1700).length).toBeGreaterThan(0.95 * 1300);
  });

  it("tries every 64 steps again once a try finds the counts close", () => {
    // One fewer far slower until step 3000 (waits at their cap), then within 5% of all
    // threads: the first try after that may come a whole wait later, the next ones 64 apart.
    const picks = run(6000, () => 10 * MS, (i) => (i < 3000 ? 25 : 10.5) * MS);
    const tries = stepsOn(picks, 1, 3000);
    expect(tries[0] - 3000).toBeLessThanOrEqual(1024);
    const g = gaps(tries);
    expect(g.length).toBeGreaterThan(5);
    for (const x of g) expect(x).toBe(64);
  });

  it("refuses arrays of the wrong type or length", () => {
    const k = kernels();
    expect(() => k.chooseThreads(2, new Float64Array(4), new Float64Array(3))).toThrow(/4/);
    expect(() => k.chooseThreads(2, new Float32Array(4) as unknown as Float64Array, new Float64Array(4))).toThrow(/type/);
  });
});
