// pack_weight: validates a matmul weight and prepares the layout its kernel streams.
// The GGUF row-major block layout is always available, read in place from the mmapped file.
// Q4_0 weights are also repacked (on CPUs with AVX2, unless allow_repack is false) into
// groups of 8 interleaved rows (cpu/packed_layout.h), from which the AVX2 kernel computes 8
// rows per activation load; the scalar path and rows past the last whole group read the
// GGUF rows.
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/cpu_features.h"
#include "cpu/ops.h"
#include "cpu/packed_layout.h"

namespace tessera::cpu {

Status pack_weight(const TensorRef& t, PackedWeight* out, bool allow_repack) {
  if (!is_matmul_type(t.type))
    return Status::error(StatusCode::UnsupportedQuantType, "tensor " + t.name + " has type " + ggml_type_traits(t.type).name +
                                                               ", which the CPU kernels cannot multiply; use a F32, F16, BF16, "
                                                               "Q8_0, Q4_0, Q4_K or Q6_K file");
  const size_t row_bytes = ggml_row_bytes(t.type, t.ne[0]);
  if (row_bytes == 0 || t.data == nullptr || row_bytes * uint64_t(t.rows()) != t.nbytes)
    return Status::error(StatusCode::ModelIncompatible, "tensor " + t.name + " has an inconsistent size");
  out->type = t.type;
  out->rows = t.rows();
  out->cols = t.ne[0];
  out->data = t.data;
  out->layout = WeightLayout::Gguf;
  out->packed = nullptr;
  out->owned.reset();
  if (allow_repack && t.type == GgmlType::Q4_0 && cpu_features().avx2 && out->rows >= packed::kRows) {
    const int64_t nb = out->cols / QK4_0, groups = out->rows / packed::kRows;
    const size_t group_bytes = packed::kRows * row_bytes, bytes = size_t(groups) * group_bytes;
    uint8_t* dst = static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
    if (!dst)
      return Status::error(StatusCode::OutOfMemory, "cannot allocate " + std::to_string(bytes >> 20) + " MiB to repack " + t.name);
    for (int64_t g = 0; g < groups; ++g) packed::pack_group(t.data + g * group_bytes, row_bytes, nb, dst + g * group_bytes);
    out->owned.reset(dst, [](uint8_t* p) { std::free(p); });
    out->packed = dst;
    out->layout = WeightLayout::Q4_0x8;
  }
  return Status::ok();
}

}  // namespace tessera::cpu
