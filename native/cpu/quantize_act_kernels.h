// The AVX2 twins of quantize_act's per-format encoders (quantize_act_avx2.cpp): same
// inputs, byte-identical outputs. Internal to native/cpu.
#pragma once
#include <cstdint>

#include "core/ggml_types.h"

namespace tessera::cpu::avx2 {

void q8_0_blocks(const float* x, BlockQ8_0* y, int64_t n_blocks);
void q8_k_blocks(const float* x, BlockQ8_K* y, int64_t n_blocks);
void q8_1_blocks(const float* x, BlockQ8_1* y, int64_t n_blocks);
void f16_values(const float* x, uint16_t* y, int64_t n);
void bf16_values(const float* x, uint16_t* y, int64_t n);

}  // namespace tessera::cpu::avx2
