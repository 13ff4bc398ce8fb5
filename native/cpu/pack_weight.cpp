// pack_weight: validates a matmul weight and prepares the layout its kernel streams.
// Layout 0 is the GGUF row-major block layout, read in place from the mmapped file.
// Layout 1 (cpu/packed_layout.h) interleaves 8 rows of Q4_0 so one activation load serves
// 8 rows; it is built on CPUs with AVX2 (whose kernels gain from it) for 2-D weights
// (stacked expert tensors keep layout 0: the MoE path addresses experts by row offset).
#include <cstdlib>
#include <string>

#include "core/cpu_features.h"
#include "cpu/ops.h"
#include "cpu/packed_layout.h"

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

Status pack_weight(const TensorRef& t, PackedWeight* out, bool allow_repack) {
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
  out->layout = 0;
  out->owned.reset();
  const bool two_d = t.ne[2] == 1 && t.ne[3] == 1;
  if (!allow_repack || !two_d || !packed::packable(t.type) || out->rows < packed::kRows || !cpu_features().avx2)
    return Status::ok();

  const size_t bytes = (t.nbytes + 63) / 64 * 64;
  std::shared_ptr<uint8_t> owned(static_cast<uint8_t*>(std::aligned_alloc(64, bytes)), std::free);
  if (!owned)
    return Status::error(StatusCode::OutOfMemory, "cannot allocate " + std::to_string(bytes >> 20) + " MiB to repack tensor " +
                                                      t.name + "; free memory or use a smaller model");
  const int64_t nb = out->cols / QK4_0;
  const int64_t groups = out->rows / packed::kRows;
  const size_t group_bytes = packed::kRows * row_bytes;
  for (int64_t g = 0; g < groups; ++g)
    packed::pack_group(t.data + g * group_bytes, row_bytes, nb, owned.get() + g * group_bytes);
  // Rows past the last whole group keep the GGUF layout at the same offset.
  std::memcpy(owned.get() + groups * group_bytes, t.data + groups * group_bytes, t.nbytes - groups * group_bytes);
  out->owned = std::move(owned);
  out->data = out->owned.get();
  out->layout = 1;
  return Status::ok();
}

}  // namespace tessera::cpu
