// pack_weight: validates a matmul weight and prepares the layout its kernel streams.
// The GGUF row-major block layout is always available. The table in core/weight_types.h
// names a repacked layout per type for AVX2 and for AVX-512 VNNI, and the ISA active at
// load picks: Q4_0 (and IQ4_NL, whose blocks have Q4_0's bytes) into groups of 8 interleaved
// rows (cpu/packed_q4_0x8.h) on both; Q4_K into groups of 8 (packed_q4_kx8.h) on AVX2 and
// of 16 (packed_q4_kx16.h) on AVX-512; Q8_0, Q5_K, Q3_K and Q6_K into groups of 16
// (packed_q8_0x16.h, packed_q5_kx16.h, packed_q3_kx16.h, packed_q6_kx16.h) on AVX-512 only. From a group the kernels compute 8 or 16 rows per activation load; the
// scalar path and rows past the last whole group read the GGUF rows in place from the
// mmapped file. Other weights are copied into huge pages too (unless allow_repack is false):
// decode streams every weight byte once per token, and through the mapping's 4 KiB pages
// that costs a page walk per 4 KiB (1B Q8_0 decode ~6% slower, matvec ~8%). With the
// backend's HugePageArena every copy, repacked or not, goes side by side into its chunks, so
// no weight ends in 4 KiB pages; without one (the kernel tests' packing) weights of 4 MiB and
// more get mappings of their own. A file read into memory (mmap: false) is in huge pages
// already and is read in place.
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/aligned_buffer.h"
#include "core/cpu_features.h"
#include "cpu/dot_kernels.h"
#include "cpu/ops.h"
#include "cpu/packed_q3_kx16.h"
#include "cpu/packed_q4_0x8.h"
#include "cpu/packed_q4_kx16.h"
#include "cpu/packed_q4_kx8.h"
#include "cpu/packed_q5_kx16.h"
#include "cpu/packed_q6_kx16.h"
#include "cpu/packed_q8_0x16.h"

namespace tessera::cpu {

static_assert(q4_0x8::kRows == 8 && q4_kx8::kRows == 8 && q8_0x16::kRows == 16 && q4_kx16::kRows == 16 &&
                  q5_kx16::kRows == 16 && q3_kx16::kRows == 16 && q6_kx16::kRows == 16,
              "the group sizes layout_group_rows gives (matmul_shared's 16-row units hold whole groups)");

// The layout this machine's kernels read: the table's AVX-512 VNNI column where that is the
// active ISA at load (with a lower one later the GGUF rows serve), its AVX2 column on AVX2,
// none on the scalar path.
static WeightLayout layout_for(GgmlType type) {
  const CpuIsa isa = active_cpu_isa();
  if (isa < CpuIsa::Avx2) return WeightLayout::Gguf;
  return repacked_layout(type, isa >= CpuIsa::Avx512Vnni);
}

Status pack_weight(const TensorRef& t, PackedWeight* out, bool allow_repack, bool resident, HugePageArena* arena) {
  if (!is_matmul_type(t.type))
    return Status::error(StatusCode::UnsupportedQuantType, "tensor " + t.name + " has type " + ggml_type_traits(t.type).name +
                                                               ", which the CPU kernels cannot multiply; use a file quantized as " +
                                                               weight_type_list());
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
  const WeightLayout layout = layout_for(t.type);
  const int64_t group_rows = layout_group_rows(layout);
  if (allow_repack && layout != WeightLayout::Gguf && out->rows >= group_rows) {
    // Every layout gives a group exactly the bytes of its GGUF rows.
    const int64_t groups = out->rows / group_rows;
    const size_t group_bytes = group_rows * row_bytes, bytes = size_t(groups) * group_bytes;
    std::shared_ptr<uint8_t> block = arena ? arena->allocate(bytes) : nullptr;
    uint8_t* dst = arena ? block.get() : allocate_populated(bytes);
    if (!dst)
      return Status::error(StatusCode::OutOfMemory, "cannot allocate " + std::to_string(bytes >> 20) + " MiB to repack " + t.name);
    for (int64_t g = 0; g < groups; ++g) {
      const uint8_t* rows = t.data + g * group_bytes;
      if (layout == WeightLayout::Q4_0x8)
        q4_0x8::pack_group(rows, row_bytes, out->cols / QK4_0, dst + g * group_bytes);
      else if (layout == WeightLayout::Q8_0x16)
#ifdef TESSERA_HAVE_AVX512VNNI
        avx512vnni::pack_q8_0x16_group(rows, row_bytes, out->cols / QK8_0, dst + g * group_bytes);
#else
        q8_0x16::pack_group(rows, row_bytes, out->cols / QK8_0, dst + g * group_bytes);
#endif
      else if (layout == WeightLayout::Q4_Kx16)
        q4_kx16::pack_group(rows, row_bytes, out->cols / QK_K, dst + g * group_bytes);
      else if (layout == WeightLayout::Q5_Kx16)
        q5_kx16::pack_group(rows, row_bytes, out->cols / QK_K, dst + g * group_bytes);
      else if (layout == WeightLayout::Q3_Kx16)
        q3_kx16::pack_group(rows, row_bytes, out->cols / QK_K, dst + g * group_bytes);
      else if (layout == WeightLayout::Q6_Kx16)
        q6_kx16::pack_group(rows, row_bytes, out->cols / QK_K, dst + g * group_bytes);
      else
        q4_kx8::pack_group(rows, row_bytes, out->cols / QK_K, dst + g * group_bytes);
    }
    if (block)
      out->owned = std::move(block);
    else
      out->owned.reset(dst, [bytes](uint8_t* p) { bytes >= kStreamedHugePageBytes ? free_allocation(p, bytes) : free_populated(p, bytes); });
    out->packed = dst;
    out->layout = layout;
  } else if (allow_repack && !resident && (t.nbytes >= kStreamedHugePageBytes || arena)) {
    // The GGUF rows themselves, copied out of the file mapping's 4 KiB pages into huge pages.
    const uint64_t bytes = t.nbytes;
    if (arena) {
      out->owned = arena->allocate(bytes);
      if (!out->owned)
        return Status::error(StatusCode::OutOfMemory, "cannot allocate " + std::to_string(bytes >> 20) + " MiB to hold " + t.name);
    } else {
      uint8_t* dst = allocate_streamed(bytes);
      if (!dst)
        return Status::error(StatusCode::OutOfMemory, "cannot allocate " + std::to_string(bytes >> 20) + " MiB to hold " + t.name);
      out->owned.reset(dst, [bytes](uint8_t* p) { free_allocation(p, bytes); });
    }
    std::memcpy(out->owned.get(), t.data, bytes);
    out->data = out->owned.get();
  }
  return Status::ok();
}

}  // namespace tessera::cpu
