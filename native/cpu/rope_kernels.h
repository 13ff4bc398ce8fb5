// The AVX2 twin of rope's per-row rotation (rope_avx2.cpp). Internal to native/cpu.
#pragma once

namespace tessera::cpu::avx2 {

// Rotates the first n_dims values of one head row v in place: pair i (i < n_dims / 2) by
// (cos_i, sin_i), pairs (2i, 2i+1) or with neox (i, i + n_dims / 2), each value one fused
// multiply-add as rope.cpp computes it.
void rope_rotate(float* v, const float* cos_i, const float* sin_i, int n_dims, bool neox);

}  // namespace tessera::cpu::avx2
