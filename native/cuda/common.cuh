// Shared device helpers of the CUDA backend: error mapping to Status, owning device
// buffers, and per-type dequantization of 32-value chunks (the unit every matmul and
// embedding kernel works in; K-quant super-blocks are 8 chunks).
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "core/ggml_types.h"
#include "core/status.h"

namespace tessera::cuda {

inline Status cuda_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::ok();
  const StatusCode code = err == cudaErrorMemoryAllocation ? StatusCode::OutOfMemory : StatusCode::Cuda;
  return Status::error(code, std::string(what) + ": " + cudaGetErrorString(err));
}

#define TESSERA_CUDA_TRY(expr, what) TESSERA_RETURN_IF_ERROR(::tessera::cuda::cuda_status((expr), (what)))

// An owning device allocation; failures report the size asked and what is free.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), size_(o.size_) {
    o.ptr_ = nullptr;
    o.size_ = 0;
  }

  Status allocate(size_t bytes, const char* what) {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    size_ = 0;
    if (bytes == 0) return Status::ok();
    cudaError_t err = cudaMalloc(&ptr_, bytes);
    if (err != cudaSuccess) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      return Status::error(StatusCode::OutOfMemory,
                           std::string("cannot allocate ") + std::to_string(bytes >> 20) + " MiB of GPU memory for the " +
                               what + " (" + std::to_string(free_b >> 20) + " MiB free of " +
                               std::to_string(total_b >> 20) + " MiB); use a smaller model or contextSize");
    }
    size_ = bytes;
    return Status::ok();
  }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t size() const { return size_; }

 private:
  void* ptr_ = nullptr;
  size_t size_ = 0;
};

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ float half_bits(uint16_t h) { return __half2float(__ushort_as_half(h)); }
__device__ __forceinline__ float bf16_bits(uint16_t h) { return __uint_as_float(uint32_t(h) << 16); }

// The 6-bit scale and min of sub-block j of a Q4_K super-block (device twin of q4k_scale_min).
__device__ __forceinline__ void q4k_scale_min_dev(int j, const uint8_t* q, int* scale, int* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Values [32c, 32c + 32) of a row of `type` (row points at the row's first byte).
__device__ __forceinline__ void dequant_chunk(GgmlType type, const uint8_t* row, int64_t c, float out[32]) {
  switch (type) {
    case GgmlType::F32: {
      const float4* p = reinterpret_cast<const float4*>(row) + c * 8;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const float4 v = p[i];
        out[4 * i] = v.x;
        out[4 * i + 1] = v.y;
        out[4 * i + 2] = v.z;
        out[4 * i + 3] = v.w;
      }
      return;
    }
    case GgmlType::F16:
    case GgmlType::BF16: {
      const uint16_t* p = reinterpret_cast<const uint16_t*>(row) + c * 32;
#pragma unroll
      for (int i = 0; i < 32; ++i) out[i] = type == GgmlType::F16 ? half_bits(p[i]) : bf16_bits(p[i]);
      return;
    }
    case GgmlType::Q8_0: {
      const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(row) + c;
      const float d = half_bits(b->d);
#pragma unroll
      for (int i = 0; i < 32; ++i) out[i] = d * b->qs[i];
      return;
    }
    case GgmlType::Q4_0: {
      const BlockQ4_0* b = reinterpret_cast<const BlockQ4_0*>(row) + c;
      const float d = half_bits(b->d);
#pragma unroll
      for (int i = 0; i < 16; ++i) {
        out[i] = d * float((b->qs[i] & 0xF) - 8);
        out[i + 16] = d * float((b->qs[i] >> 4) - 8);
      }
      return;
    }
    case GgmlType::Q4_K: {
      const BlockQ4_K* b = reinterpret_cast<const BlockQ4_K*>(row) + c / 8;
      const int j = int(c % 8);
      int sc, m;
      q4k_scale_min_dev(j, b->scales, &sc, &m);
      const float d = half_bits(b->d) * sc, dm = half_bits(b->dmin) * m;
      const uint8_t* q = b->qs + 32 * (j / 2);
      const int shift = (j & 1) * 4;
#pragma unroll
      for (int i = 0; i < 32; ++i) out[i] = d * float((q[i] >> shift) & 0xF) - dm;
      return;
    }
    case GgmlType::Q6_K: {
      const BlockQ6_K* b = reinterpret_cast<const BlockQ6_K*>(row) + c / 8;
      const int g = int(c % 8), half = g / 4, q = g % 4;
      const uint8_t* ql = b->ql + 64 * half + (q & 1) * 32;
      const uint8_t* qh = b->qh + 32 * half;
      const float d = half_bits(b->d);
#pragma unroll
      for (int i = 0; i < 32; ++i) {
        const int lo = q < 2 ? (ql[i] & 0xF) : (ql[i] >> 4);
        const int hi = (qh[i] >> (2 * q)) & 3;
        out[i] = d * b->scales[2 * g + i / 16] * float((lo | (hi << 4)) - 32);
      }
      return;
    }
    default:
#pragma unroll
      for (int i = 0; i < 32; ++i) out[i] = 0.f;
  }
}

}  // namespace tessera::cuda
