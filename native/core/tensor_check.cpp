#include "core/tensor_check.h"

#include <cstddef>
#include <string>

#include "core/finite.h"

namespace tessera {

namespace {

constexpr uint16_t kF16Exp = 0x7c00, kBf16Exp = 0x7f80;

Status non_finite(const TensorRef& t, const char* what, uint64_t index) {
  return Status::error(StatusCode::NonFinite,
                       "tensor " + t.name + " (" + ggml_type_traits(t.type).name + ") holds NaN or Infinity at " + what +
                           " " + std::to_string(index) +
                           "; the file is damaged or was converted from a diverged checkpoint: re-download it, or use "
                           "another quantization of the model");
}

// First index whose half is non-finite (called only once a scan found one).
uint64_t first_bad_half(const uint8_t* base, uint64_t n, size_t stride, uint16_t mask) {
  for (uint64_t i = 0; i < n; ++i)
    if (!all_finite_half(base + i * stride, 1, stride, mask)) return i;
  return n;
}

}  // namespace

Status check_tensor_finite(const TensorRef& t) {
  const uint64_t n = uint64_t(t.elements());
  switch (t.type) {
    case GgmlType::F32: {
      const float* p = reinterpret_cast<const float*>(t.data);
      if (all_finite_f32(p, n)) return Status::ok();
      for (uint64_t i = 0; i < n; ++i)
        if (!all_finite_f32(p + i, 1)) return non_finite(t, "element", i);
      return Status::ok();
    }
    case GgmlType::F16:
    case GgmlType::BF16: {
      const uint16_t mask = t.type == GgmlType::F16 ? kF16Exp : kBf16Exp;
      if (all_finite_half(t.data, n, 2, mask)) return Status::ok();
      return non_finite(t, "element", first_bad_half(t.data, n, 2, mask));
    }
    default: {
      const BlockScales s = ggml_block_scales(t.type);
      const GgmlTypeTraits tr = ggml_type_traits(t.type);
      if (s.count == 0 || tr.block_size <= 0) return Status::ok();
      const uint64_t blocks = n / uint64_t(tr.block_size);
      if (s.e8m0) {
        for (uint64_t b = 0; b < blocks; ++b)
          if (t.data[b * uint64_t(tr.type_size) + s.offset[0]] == 0xFF) return non_finite(t, "block", b);
        return Status::ok();
      }
      for (int k = 0; k < s.count; ++k) {
        const uint8_t* base = t.data + s.offset[k];
        if (!all_finite_half(base, blocks, size_t(tr.type_size), kF16Exp))
          return non_finite(t, "block", first_bad_half(base, blocks, size_t(tr.type_size), kF16Exp));
      }
      return Status::ok();
    }
  }
}

}  // namespace tessera
