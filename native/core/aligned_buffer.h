// Owning, 64-byte aligned, uninitialized host allocation that reports failure as a Status
// (large KV caches and scratch areas must fail politely, not throw bad_alloc).
#pragma once
#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/status.h"

namespace tessera {

// Blocks from allocate_streamed of this size and more get huge pages.
constexpr uint64_t kStreamedHugePageBytes = uint64_t(4) << 20;

// Memory a kernel streams through once per pass (weights, the bandwidth probe's buffer), from
// std::aligned_alloc (free with std::free), or null. Blocks of kStreamedHugePageBytes and
// more start on a huge-page boundary and ask for huge pages: the kernel then backs each whole
// aligned 2 MiB of them with one, and a pass walks the page tables once per 2 MiB instead of
// once per 4 KiB.
inline uint8_t* allocate_streamed(uint64_t bytes) {
  constexpr uint64_t kHugePage = uint64_t(2) << 20;
  const uint64_t rounded = (bytes + 63) / 64 * 64;
  if (bytes < kStreamedHugePageBytes) return static_cast<uint8_t*>(std::aligned_alloc(64, rounded));
  uint8_t* p = static_cast<uint8_t*>(std::aligned_alloc(kHugePage, (rounded + kHugePage - 1) / kHugePage * kHugePage));
  if (p) madvise(p, bytes, MADV_HUGEPAGE);
  return p;
}

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  ~AlignedBuffer() { std::free(data_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  // streamed: memory from allocate_streamed.
  Status allocate(uint64_t bytes, const char* what, bool streamed = false) {
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
    if (bytes == 0) return Status::ok();
    const uint64_t rounded = (bytes + 63) / 64 * 64;
    data_ = streamed ? allocate_streamed(bytes) : static_cast<uint8_t*>(std::aligned_alloc(64, rounded));
    if (!data_)
      return Status::error(StatusCode::OutOfMemory, std::string("cannot allocate ") + std::to_string(rounded >> 20) +
                                                        " MiB for the " + what +
                                                        "; use a smaller contextSize or free memory");
    size_ = rounded;
    return Status::ok();
  }

  uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

// Hands out consecutive aligned slices of one buffer (64 bytes: a cache line; the CUDA
// scratch uses 256, the device allocation granule). With base null it only measures.
class BumpAllocator {
 public:
  explicit BumpAllocator(uint8_t* base, uint64_t alignment = 64) : base_(base), alignment_(alignment) {}
  template <typename T>
  T* take(uint64_t count) {
    T* p = base_ ? reinterpret_cast<T*>(base_ + used_) : nullptr;
    used_ += (count * sizeof(T) + alignment_ - 1) / alignment_ * alignment_;
    return p;
  }
  uint64_t used() const { return used_; }

 private:
  uint8_t* base_;
  uint64_t alignment_;
  uint64_t used_ = 0;
};

}  // namespace tessera
