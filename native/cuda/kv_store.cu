// kv_store: writes the new tokens' k/v rows (fp32) into one layer's fp16 cache at their
// positions (read from device memory). Launch: grid n_tokens * n_head_kv, block 128.
#include "cuda/common.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

__global__ void kv_store_kernel(uint16_t* kc, uint16_t* vc, int capacity, const float* k, const float* v, const int32_t* pos,
                                int n_head_kv, int hd, int hdv) {
  const int t = blockIdx.x / n_head_kv, h = blockIdx.x % n_head_kv;
  const int64_t slot = int64_t(h) * capacity + pos[t];
  const float* ks = k + (int64_t(t) * n_head_kv + h) * hd;
  const float* vs = v + (int64_t(t) * n_head_kv + h) * hdv;
  for (int i = threadIdx.x; i < hd; i += blockDim.x) kc[slot * hd + i] = __half_as_ushort(__float2half_rn(ks[i]));
  for (int i = threadIdx.x; i < hdv; i += blockDim.x) vc[slot * hdv + i] = __half_as_ushort(__float2half_rn(vs[i]));
}

}  // namespace

void launch_kv_store(uint16_t* k_cache, uint16_t* v_cache, int capacity, const float* k, const float* v, const int32_t* pos,
                     int n_tokens, int n_head_kv, int head_dim, int head_dim_v, cudaStream_t s) {
  kv_store_kernel<<<n_tokens * n_head_kv, 128, 0, s>>>(k_cache, v_cache, capacity, k, v, pos, n_head_kv, head_dim, head_dim_v);
}

}  // namespace tessera::cuda
