// Host-side helpers of the CUDA backend: CUDA errors as Status, and owning device / pinned
// host allocations whose failures say how much was asked and how much is free.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "core/status.h"

namespace tessera::cuda {

inline Status cuda_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::ok();
  cudaGetLastError();  // clear a non-sticky error so later calls start clean
  const StatusCode code = err == cudaErrorMemoryAllocation ? StatusCode::OutOfMemory : StatusCode::Cuda;
  return Status::error(code, std::string(what) + ": " + cudaGetErrorString(err) + " (" + cudaGetErrorName(err) + ")");
}

#define TESSERA_CUDA_TRY(expr, what) TESSERA_RETURN_IF_ERROR(::tessera::cuda::cuda_status((expr), (what)))

inline std::string mib(size_t bytes) { return std::to_string((bytes + (1u << 20) - 1) >> 20) + " MiB"; }

inline Status out_of_device_memory(size_t bytes, const char* what) {
  size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  cudaGetLastError();
  return Status::error(StatusCode::OutOfMemory, std::string("cannot allocate ") + mib(bytes) + " of GPU memory for the " +
                                                    what + " (" + mib(free_b) + " free of " + mib(total_b) +
                                                    "); use a smaller model, a smaller contextSize or backend \"cpu\"");
}

// An owning device allocation.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  Status allocate(size_t bytes, const char* what) {
    reset();
    if (bytes == 0) return Status::ok();
    if (cudaMalloc(&ptr_, bytes) != cudaSuccess) {
      ptr_ = nullptr;
      cudaGetLastError();
      return out_of_device_memory(bytes, what);
    }
    size_ = bytes;
    return Status::ok();
  }
  void reset() {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    size_ = 0;
  }
  uint8_t* data() const { return static_cast<uint8_t*>(ptr_); }
  size_t size() const { return size_; }

 private:
  void* ptr_ = nullptr;
  size_t size_ = 0;
};

// An owning page-locked host allocation (fast, asynchronous copies).
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() {
    if (ptr_) cudaFreeHost(ptr_);
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  Status allocate(size_t bytes, const char* what) {
    if (ptr_) cudaFreeHost(ptr_);
    ptr_ = nullptr;
    if (cudaMallocHost(&ptr_, bytes) != cudaSuccess) {
      ptr_ = nullptr;
      cudaGetLastError();
      return Status::error(StatusCode::OutOfMemory, std::string("cannot allocate ") + mib(bytes) +
                                                        " of page-locked host memory for the " + what);
    }
    return Status::ok();
  }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
};

// Every weight and scratch buffer starts 256-byte aligned, as a fresh cudaMalloc would:
// the kernels' 16-byte vector loads rely on it.
constexpr uint64_t kDeviceAlignment = 256;

}  // namespace tessera::cuda
