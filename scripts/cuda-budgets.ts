/**
 * Relative error budgets of CUDA vs CPU logits (||gpu - cpu|| / ||cpu|| per position), one
 * table for the emulated test (test/cuda/emulated-backend.test.ts) and the GPU check
 * (scripts/cuda-check.ts), validated on an H100 and in the emulator.
 *
 * Both backends round activations, differently: the CPU to q8 per 32 values (Q8_0, Q4_0) or
 * Q8_K per 256 (K-quants) like llama.cpp, and to bf16 for BF16 weights; the GPU to q8 per 32
 * for its dp4a GEMV and fp16 for its tensor-core GEMM. Against a float64 forward
 * (test/helpers/reference-forward.ts, llama 2x256 synthetic, 24 positions) the GPU is the
 * closer one for every type, so what the budget bounds is mostly the CPU's rounding:
 *   BF16 cpu 5.0e-3, gpu 7.1e-4 | Q6_K cpu 3.0e-2, gpu 1.5e-2 | Q4_K cpu 3.2e-2, gpu 1.3e-2
 *   Q4_0 cpu 1.5e-2, gpu 1.3e-2 | Q8_0 cpu 1.7e-2, gpu 1.3e-2 | F16  cpu 7.5e-4, gpu 6.0e-4
 */
import type { WeightScheme } from "./synthetic-model.js";

export const CUDA_VS_CPU_BUDGET: Readonly<Record<WeightScheme | "stories", number>> = {
  stories: 2e-3,
  F32: 3e-3,
  F16: 3e-3,
  BF16: 1e-2,
  Q8_0: 4e-2,
  Q4_0: 4e-2,
  Q4_K: 6e-2,
  Q6_K: 6e-2,
  Q4_K_M: 6e-2,
};
