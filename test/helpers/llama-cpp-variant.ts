/**
 * Whether llama.cpp (node-llama-cpp's prebuilt CPU backend) loads its AVX2 ("haswell")
 * variant on this CPU: AVX2 with FMA and F16C, but neither AVX-512 nor AVX-VNNI, which select
 * other variants. Tessera's AVX2 kernels sum and round in that variant's orders, so there the
 * conformance tests hold the logits to the bit, not just to a budget.
 */
import { readFileSync } from "node:fs";
import { expect } from "vitest";
import type { Comparison } from "./compare-llama-cpp.js";

export const llamaCppRunsAvx2Variant: boolean = (() => {
  let flags: Set<string>;
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8").split("\n").find((l) => l.startsWith("flags"));
    flags = new Set(line?.split(":")[1]?.trim().split(/\s+/) ?? []);
  } catch {
    return false;
  }
  return ["avx2", "fma", "f16c"].every((f) => flags.has(f)) && !flags.has("avx512f") && !flags.has("avx_vnni");
})();

/** The comparison agrees to the bit: rel 0 token by token and batched, top-1 at every position. */
export function expectBitIdentical(r: Comparison): void {
  expect(r.top1).toBe(r.positions.length);
  expect(r.maxRel).toBe(0);
  expect(r.maxBatchRel).toBe(0);
}
