// The AVX2 twins of rms_norm's row loops (rms_norm_avx2.cpp). Internal to native/cpu.
#pragma once

namespace tessera::cpu::avx2 {

// sum of x[i]^2 in double precision.
double sum_squares(const float* x, int dim);
// y = x * scale (* weight when non-null); y may alias x.
void scale_row(const float* x, const float* weight, float scale, float* y, int dim);

}  // namespace tessera::cpu::avx2
