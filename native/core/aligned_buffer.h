// Owning, 64-byte aligned, uninitialized host allocation that reports failure as a Status
// (large KV caches and scratch areas must fail politely, not throw bad_alloc).
#pragma once
#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "core/status.h"

namespace tessera {

// Blocks from allocate_streamed of this size and more get huge pages.
constexpr uint64_t kStreamedHugePageBytes = uint64_t(4) << 20;
// A transparent huge page of x86-64 Linux.
constexpr uint64_t kHugePageBytes = uint64_t(2) << 20;
// Blocks of this size and more come straight from mmap and go back to the system with
// munmap when freed. Through malloc they would not: after the first large free glibc raises
// its mmap threshold (up to 32 MiB) and serves later blocks of that size from arenas that
// rarely shrink, so each load/dispose cycle of a model kept its packed weights resident
// (+75 MB RSS per cycle of a 100 MB F32 model, without end).
constexpr uint64_t kMappedAllocationBytes = uint64_t(1) << 20;

namespace detail {

// Anonymous pages (committed when first touched), the block starting on an `alignment`
// boundary (a power of two of at least a page); null on failure.
inline uint8_t* map_aligned(uint64_t bytes, uint64_t alignment, bool populate = false) {
  const uint64_t page = 4096, length = (bytes + page - 1) / page * page;
  const uint64_t extra = alignment > page ? alignment : 0;
  void* p = mmap(nullptr, length + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0), -1, 0);
  if (p == MAP_FAILED) return nullptr;
  uint8_t* base = static_cast<uint8_t*>(p);
  if (!extra) return base;
  uint8_t* aligned = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(base) + alignment - 1) & ~uintptr_t(alignment - 1));
  if (aligned > base) munmap(base, size_t(aligned - base));
  const uint64_t tail = uint64_t(base + length + extra - (aligned + length));
  if (tail) munmap(aligned + length, size_t(tail));
  return aligned;
}

}  // namespace detail

// Frees a block of `bytes` from allocate_streamed or allocate_aligned (the same size).
inline void free_allocation(void* p, uint64_t bytes) {
  if (!p) return;
  if (bytes >= kMappedAllocationBytes)
    munmap(p, size_t((bytes + 4095) / 4096 * 4096));
  else
    std::free(p);
}

// 64-byte aligned memory, or null (free with free_allocation and the same size).
inline uint8_t* allocate_aligned(uint64_t bytes) {
  if (bytes >= kMappedAllocationBytes) return detail::map_aligned(bytes, 4096);
  return static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
}

// Memory a kernel streams through once per pass (weights, the bandwidth probe's buffer), or
// null; free with free_allocation and the same size. Blocks of kStreamedHugePageBytes and
// more start on a huge-page boundary and ask for huge pages: the kernel then backs each whole
// aligned 2 MiB of them with one, and a pass walks the page tables once per 2 MiB instead of
// once per 4 KiB.
inline uint8_t* allocate_streamed(uint64_t bytes) {
  if (bytes < kStreamedHugePageBytes) return allocate_aligned(bytes);
  uint8_t* p = detail::map_aligned(bytes, kHugePageBytes);
  if (p) madvise(p, bytes, MADV_HUGEPAGE);
  return p;
}

// Memory written whole right away (a repacked weight), in pages committed by the mmap call
// itself; free with free_populated and the same size. Faulting each 4 KiB page in on first
// write cost a trap apiece, ~3 us on the dev VM: repacking a 145 MB Q8_0 model's small
// tensors (malloc'd or mapped page by page) added ~450 ms to its load.
inline uint8_t* allocate_populated(uint64_t bytes) {
  if (bytes >= kStreamedHugePageBytes) return allocate_streamed(bytes);
  return detail::map_aligned(bytes, 4096, true);
}
inline void free_populated(void* p, uint64_t bytes) {
  if (p) munmap(p, size_t((bytes + 4095) / 4096 * 4096));
}

// Weights side by side in huge-page chunks. Packed weights under kStreamedHugePageBytes, each
// in its own 4 KiB pages, cost decode a page walk per 4 KiB: on the dev VM a 1B model's
// q/k/v and output projections (0.7-2.9 MB each) streamed at ~52 GB/s against ~65 for its
// 11 MB FFN matrices. And a larger weight in a mapping of its own keeps the part past its
// last whole 2 MiB in 4 KiB pages: 1 MiB of each 11 MiB FFN matrix of a 1B Q5_K_M file
// (its matvec 0-6% slower than with that tail in a huge page, paired runs). A block
// keeps its chunk alive (shared_ptr aliasing), so the chunk goes back to the system with the
// last weight in it. Chunks are not populated up front: each 2 MiB page is committed on its
// first write, once, so the room a chunk never hands out costs address space, not memory.
class HugePageArena {
 public:
  static constexpr uint64_t kChunkBytes = uint64_t(32) << 20;

  // A 64-byte aligned block of `bytes` (a block of more than kChunkBytes opens a chunk of
  // its own size, rounded up to whole huge pages), or null when memory runs out.
  std::shared_ptr<uint8_t> allocate(uint64_t bytes) {
    bytes = (bytes + 63) / 64 * 64;
    if (bytes == 0) return nullptr;
    if (chunk_ && used_ + bytes <= size_) {
      std::shared_ptr<uint8_t> block(chunk_, chunk_.get() + used_);
      used_ += bytes;
      return block;
    }
    const uint64_t size = bytes > kChunkBytes ? (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes : kChunkBytes;
    uint8_t* p = allocate_streamed(size);
    if (!p) return nullptr;
    std::shared_ptr<uint8_t> chunk(p, [size](uint8_t* q) { free_allocation(q, size); });
    std::shared_ptr<uint8_t> block(chunk, p);
    // The next blocks go where more room is left: the new chunk, or the current one when
    // a large block took most of the new one.
    if (!chunk_ || size - bytes >= size_ - used_) {
      chunk_ = std::move(chunk);
      size_ = size;
      used_ = bytes;
    }
    return block;
  }

 private:
  std::shared_ptr<uint8_t> chunk_;
  uint64_t size_ = 0, used_ = 0;
};

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  ~AlignedBuffer() { free_allocation(data_, size_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  // streamed: memory from allocate_streamed.
  Status allocate(uint64_t bytes, const char* what, bool streamed = false) {
    free_allocation(data_, size_);
    data_ = nullptr;
    size_ = 0;
    if (bytes == 0) return Status::ok();
    const uint64_t rounded = (bytes + 63) / 64 * 64;
    data_ = streamed ? allocate_streamed(rounded) : allocate_aligned(rounded);
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
