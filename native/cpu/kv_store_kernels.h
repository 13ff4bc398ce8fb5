// The AVX2 (F16C) twin of kv_store's fp16 row writes (kv_store_avx2.cpp). Internal to native/cpu.
#pragma once
#include <cstdint>

namespace tessera::cpu::avx2 {

// dst[i * stride] = fp16(x[i]) for i in [0, n), rounded to nearest even as fp32_to_fp16.
void store_f16_strided(const float* x, int n, uint16_t* dst, int64_t stride);

}  // namespace tessera::cpu::avx2
