// pack_weight: validates a matmul weight and prepares the layout its kernel streams.
// Layout 0 is the GGUF row-major block layout, read in place from the mmapped file.
#include <string>

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
  out->layout = 0;
  out->owned.reset();
  return Status::ok();
}

}  // namespace tessera::cpu
