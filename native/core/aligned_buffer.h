// Owning, 64-byte aligned, uninitialized host allocation that reports failure as a Status
// (large KV caches and scratch areas must fail politely, not throw bad_alloc).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/status.h"

namespace tessera {

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  ~AlignedBuffer() { std::free(data_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  Status allocate(uint64_t bytes, const char* what) {
    std::free(data_);
    data_ = nullptr;
    size_ = 0;
    if (bytes == 0) return Status::ok();
    const uint64_t rounded = (bytes + 63) / 64 * 64;
    data_ = static_cast<uint8_t*>(std::aligned_alloc(64, rounded));
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
