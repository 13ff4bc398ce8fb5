// Host launchers of the CUDA ops, one file each (native/cuda/<op>.cu). Every launcher
// enqueues on `stream` and returns immediately; shapes are validated by the backend before
// a launch. Activations are fp32 row-major [tokens][width]; the KV cache is fp16
// [n_head_kv][capacity][head_dim] per layer, like the CPU cache.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/ggml_types.h"
#include "core/model_plan.h"

namespace tessera::cuda {

// A weight matrix on the device in its GGUF layout: rows of `cols` values.
struct DeviceWeight {
  GgmlType type = GgmlType::F32;
  int64_t rows = 0, cols = 0;
  const uint8_t* data = nullptr;
  size_t row_bytes = 0;
};

void launch_get_rows(const DeviceWeight& table, const int32_t* tokens, int n, float* out, cudaStream_t s);
void launch_rms_norm(const float* x, const float* w, float* y, int rows, int dim, float eps, cudaStream_t s);
// pos: device array [n_tokens] (read on the device, so a captured graph stays valid).
void launch_rope(float* x, const int32_t* pos, int n_tokens, int n_heads, int head_dim, const RopeParams& p,
                 const float* freq_factors, cudaStream_t s);
// y[t][r] = W[r] . x[t]: GEMV for up to 8 tokens, tensor-core GEMM above.
void launch_matmul(const DeviceWeight& w, const float* x, int n_tokens, float* y, int64_t ldy, cudaStream_t s);
void launch_swiglu(const float* gate, const float* up, float* out, int64_t n, GateActivation act, cudaStream_t s);
void launch_add(float* x, const float* y, int64_t n, cudaStream_t s);
void launch_add_bias(float* x, const float* bias, int rows, int dim, cudaStream_t s);
void launch_kv_store(uint16_t* k_cache, uint16_t* v_cache, int capacity, const float* k, const float* v, const int32_t* pos,
                     int n_tokens, int n_head_kv, int head_dim, int head_dim_v, cudaStream_t s);

struct AttentionLaunch {
  const float* q;          // [n_tokens][n_head][head_dim]
  const uint16_t* k_cache;
  const uint16_t* v_cache;
  int capacity;
  const int32_t* pos;      // device [n_tokens]
  int n_tokens, n_head, n_head_kv, head_dim, head_dim_v;
  int sliding_window;
  float scale, softcap;
  float* out;              // [n_tokens][n_head][head_dim_v]
  float* partials;         // split-KV scratch: attention_partial_floats() floats
  int splits;              // KV splits per query (1: no split)
};
size_t attention_partial_floats(int n_tokens, int n_head, int head_dim_v, int splits);
void launch_attention(const AttentionLaunch& a, cudaStream_t s);

}  // namespace tessera::cuda
