// pack_weight: validates a matmul weight and prepares the layout its kernel streams.
// The GGUF row-major block layout is always available, read in place from the mmapped file.
// Q4_0 weights are also repacked (on CPUs with AVX2) into groups of 8 rows: per 32-column
// block, the 8 rows' fp16 scales, then their 8 x 16 quant bytes. The AVX2 kernel then
// produces 8 rows per pass with one vector of scales, and the mmapped pages of the original
// are not touched again after loading.
#include <cstring>
#include <string>

#include "core/cpu_features.h"

#include "cpu/ops.h"

namespace tessera::cpu {

namespace {

bool computable(GgmlType t) {
  switch (t) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
    case GgmlType::Q8_0:
    case GgmlType::Q4_0:
    case GgmlType::Q4_K:
    case GgmlType::Q6_K: return true;
    default: return false;
  }
}

}  // namespace

Status pack_weight(const TensorRef& t, PackedWeight* out) {
  if (!computable(t.type))
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
  if (t.type == GgmlType::Q4_0 && cpu_features().avx2 && out->rows >= 8) {
    const int64_t nb = out->cols / QK4_0, groups = out->rows / 8;
    const size_t bytes = size_t(groups) * nb * 8 * sizeof(BlockQ4_0);
    uint8_t* dst = static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
    if (!dst)
      return Status::error(StatusCode::OutOfMemory, "cannot allocate " + std::to_string(bytes >> 20) + " MiB to repack " + t.name);
    const BlockQ4_0* src = reinterpret_cast<const BlockQ4_0*>(t.data);
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t b = 0; b < nb; ++b) {
        uint8_t* o = dst + (size_t(g) * nb + b) * 8 * sizeof(BlockQ4_0);
        for (int r = 0; r < 8; ++r) {
          const BlockQ4_0& blk = src[(g * 8 + r) * nb + b];
          std::memcpy(o + 2 * r, &blk.d, 2);
          std::memcpy(o + 16 + 16 * r, blk.qs, 16);
        }
      }
    out->owned.reset(dst, [](uint8_t* p) { std::free(p); });
    out->packed = dst;
    out->layout = WeightLayout::Q4_0x8;
  }
  return Status::ok();
}

}  // namespace tessera::cpu
