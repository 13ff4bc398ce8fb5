/**
 * The shared kernel harness: runs one native op (on a chosen ISA and thread count) and
 * either checks it against a float64 reference by relative error, or times it. Tests use
 * checkOp, benchmarks timeOp (or the native benchMatmul for matmul, which keeps the thread
 * pool and packed weights across calls as the executor does), all through the same native
 * entry points.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { native, type NativeKernels, type WeightTypeRow } from "../../lib/native.js";

export type Isa = "avx512vnni" | "avx2" | "scalar";

export function kernels(): NativeKernels {
  return native().kernels;
}

/**
 * The matmul shapes both backends check for every weight type (dev/kernels/matmul_cases.def,
 * which the CUDA harness #includes): cols = units * max(block size, 32).
 */
export function sharedMatmulCases(): Array<{ rows: number; units: number; tokens: number }> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // dev/kernels/ or, compiled, dist/dev/kernels/: the .def file stays in the source tree.
  const repoRoot = path.resolve(here, path.basename(path.resolve(here, "../..")) === "dist" ? "../../.." : "../..");
  const text = fs.readFileSync(path.join(repoRoot, "dev/kernels/matmul_cases.def"), "utf8");
  const cases = [...text.matchAll(/^TESSERA_MATMUL_CASE\((\d+), (\d+), (\d+)\)$/gm)].map((m) => ({ rows: +m[1], units: +m[2], tokens: +m[3] }));
  if (!cases.length) throw new Error("dev/kernels/matmul_cases.def lists no TESSERA_MATMUL_CASE");
  return cases;
}

let table: WeightTypeRow[] | undefined;

/** The native weight-type table (native/core/weight_types.h), in its order. */
export function weightTypeTable(): WeightTypeRow[] {
  return (table ??= kernels().weightTypeTable());
}

/** The row of a computable weight type; throws for any other. */
export function weightTypeRow(type: number): WeightTypeRow {
  const row = weightTypeTable().find((r) => r.type === type);
  if (!row) throw new Error(`type ${type} is not in the native weight-type table`);
  return row;
}

/** ||got - ref||₂ / ||scale||₂, scale = ref unless given */
export function relativeError(got: ArrayLike<number>, ref: ArrayLike<number>, scale: ArrayLike<number> = ref): number {
  if (got.length !== ref.length) throw new Error(`length mismatch: ${got.length} vs ${ref.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (got[i] - ref[i]) ** 2;
    den += scale[i] ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

export interface OpCheck {
  /** What was checked, e.g. "matmul Q4_K avx2 (exact activations)". */
  op: string;
  error: number;
  budget: number;
}

const worstChecks = new Map<string, OpCheck>();

/**
 * The relative error of a kernel's output against its float64 reference, next to the
 * budget it must stay within; the worst result per `op` is kept for checkSummary().
 */
export function checkOp(op: string, got: ArrayLike<number>, ref: ArrayLike<number>, budget: number): OpCheck {
  return recordCheck({ op, error: relativeError(got, ref), budget });
}

/**
 * Like checkOp for a sum of products computed in fp32: the error is measured against the
 * magnitude of the summed terms (`magnitude`: the same sums over |terms|), the scale fp32
 * accumulation error is bounded by, so an output that cancels to near zero cannot inflate it.
 */
export function checkAccumulation(op: string, got: ArrayLike<number>, ref: ArrayLike<number>, magnitude: ArrayLike<number>, budget: number): OpCheck {
  return recordCheck({ op, error: relativeError(got, ref, magnitude), budget });
}

/** Keeps the worst result per op for checkSummary(). */
function recordCheck(check: OpCheck): OpCheck {
  const worst = worstChecks.get(check.op);
  if (!worst || !(check.error <= worst.error)) worstChecks.set(check.op, check);
  return check;
}

/** The worst check per op so far, as table rows (for a test's closing summary). */
export function checkSummary(): OpCheck[] {
  return [...worstChecks.values()].sort((a, b) => a.op.localeCompare(b.op));
}

let best: Isa | undefined;
/** The machine's best ISA (what the kernels use unless lowered). */
function bestIsa(): Isa {
  const cpu = native().systemInfo().cpu;
  best ??= cpu.avx512vnni ? "avx512vnni" : cpu.avx2 ? "avx2" : "scalar";
  return best;
}

/** Runs `fn` with the kernels lowered to `isa` (restoring the machine's best afterwards). */
export function withIsa<T>(isa: Isa, fn: () => T): T {
  const addon = native();
  const best = bestIsa();
  addon.setCpuIsa(isa);
  try {
    return fn();
  } finally {
    addon.setCpuIsa(best);
  }
}

export interface Timing {
  medianMs: number;
  minMs: number;
  runs: number;
}

/** Median wall time of `fn` over enough runs to fill ~`budgetMs` (at least `minRuns`). */
export function timeOp(fn: () => unknown, budgetMs = 300, minRuns = 5): Timing {
  fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minRuns || performance.now() - start < budgetMs) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
    if (times.length >= 10_000) break;
  }
  times.sort((a, b) => a - b);
  return { medianMs: times[times.length >> 1], minMs: times[0], runs: times.length };
}
