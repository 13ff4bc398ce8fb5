// The AVX2 twin of swiglu's inner loop (swiglu_avx2.cpp). Internal to native/cpu.
#pragma once
#include <cstdint>

#include "core/model_plan.h"

namespace tessera::cpu::avx2 {

// out[i] = act(gate[i]) * up[i] for i < n (out may alias gate).
void swiglu_run(const float* gate, const float* up, float* out, int64_t n, GateActivation act);

}  // namespace tessera::cpu::avx2
