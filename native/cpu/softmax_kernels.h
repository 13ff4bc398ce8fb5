// The AVX2 twin of softmax's exponentiation pass (softmax_avx2.cpp), shared with the AVX2
// attention. Internal to native/cpu.
#pragma once

namespace tessera::cpu::avx2 {

// y[i] = e^(x[i] - max) for i < n; returns the sum of the y[i] in llama.cpp's order: 8-lane
// blocks from i = 0 through exp8, each block summed in fp32 (hsum8) and added in fp64, the
// n % 8 tail through libm's expf added in fp64. y may alias x.
double exp_sum_row(const float* x, float max, float* y, int n);

}  // namespace tessera::cpu::avx2
