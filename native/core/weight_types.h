// The weight types Tessera computes with: one row per type, as ggml's type_traits. Block
// size and bytes come from ggml_type_traits (the file format, ggml_types.h); the columns
// here are what the kernels do with the type. Derived from this list: is_matmul_type, the
// "use a file quantized as ..." error texts (weight_type_list), the CPU activation format
// (cpu/quantize_act.cpp act_format_for) and repacked layout (cpu/pack_weight.cpp), the CUDA
// dispatch (cuda/matrix.cuh with_weight_type), the harness's type list, and
// systemInfo().weightTypes, from which TypeScript takes its list (lib/model/weight-types.ts
// computeTypes; test/gguf/weight-types.test.ts). The kernel tests read the columns through
// kernels.weightTypeTable() (addon/kernel_binding.cpp).
//
// A new type: a row here, then its own code — the block struct and its scales
// (ggml_types.h), cpu/dequantize_row.cpp, cpu/matmul_scalar.cpp (dot product),
// cpu/matmul_avx2.cpp (tile), cuda/repack.cpp (device streams) + cuda/matrix.cuh (their
// reads: decoder and GEMV chunk dot product), and lib/gguf/quantize.ts
// (docs/ARCHITECTURE.md, "Add a quantization type").
//
// X(type, activation format its dot product takes (cpu::ActFormat), CPU repacked layout on
//   AVX2 and on AVX-512 VNNI (cpu::WeightLayout, Gguf: none; the ISA active at load picks))
#pragma once
#include <string>

#include "core/ggml_types.h"

#define TESSERA_WEIGHT_TYPES(X)          \
  X(F32, F32, Gguf, Gguf)                \
  X(F16, F16, Gguf, Gguf)                \
  X(BF16, BF16, Gguf, Gguf)              \
  X(Q8_0, Q8_0, Gguf, Q8_0x16)           \
  X(Q4_0, Q8_0, Q4_0x8, Q4_0x8)          \
  X(Q4_K, Q8_K, Q4_Kx8, Q4_Kx16)         \
  X(Q6_K, Q8_K, Gguf, Q6_Kx16)           \
  X(Q5_0, Q8_0, Gguf, Gguf)              \
  X(Q4_1, Q8_1, Gguf, Gguf)              \
  X(Q5_1, Q8_1, Gguf, Gguf)              \
  X(IQ4_NL, Q8_0, Q4_0x8, Q4_0x8)        \
  X(MXFP4, Q8_0, Gguf, Gguf)             \
  X(Q5_K, Q8_K, Gguf, Q5_Kx16)           \
  X(Q3_K, Q8_K, Gguf, Q3_Kx16)           \
  X(Q2_K, Q8_K, Gguf, Gguf)              \
  X(IQ4_XS, Q8_K, Gguf, Gguf)

namespace tessera {

inline constexpr GgmlType kWeightTypes[] = {
#define TESSERA_WEIGHT_TYPE_ID(type, act, layout, layout512) GgmlType::type,
    TESSERA_WEIGHT_TYPES(TESSERA_WEIGHT_TYPE_ID)
#undef TESSERA_WEIGHT_TYPE_ID
};

// Weight types the matmul kernels implement, on the CPU and on CUDA alike.
static inline bool is_matmul_type(GgmlType type) {
  for (GgmlType t : kWeightTypes)
    if (t == type) return true;
  return false;
}

// Every quantized weight type says where its block's fp16 scales sit (ggml_types.h), so the
// load-time non-finite check covers it.
static constexpr bool weight_type_scales_known() {
  for (GgmlType t : kWeightTypes)
    if (ggml_type_traits(t).block_size > 1 && ggml_block_scales(t).count == 0) return false;
  return true;
}
static_assert(weight_type_scales_known(), "a quantized weight type has no ggml_block_scales entry (core/ggml_types.h)");

// "F32, F16, ... or Q6_K": the list the "use a file quantized as" errors name.
static inline std::string weight_type_list() {
  std::string s;
  constexpr size_t n = sizeof kWeightTypes / sizeof kWeightTypes[0];
  for (size_t i = 0; i < n; ++i) s += std::string(i == 0 ? "" : i + 1 == n ? " or " : ", ") + ggml_type_traits(kWeightTypes[i]).name;
  return s;
}

}  // namespace tessera
