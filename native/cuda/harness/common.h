// CUDA kernel harness, in the manner of llama.cpp's test-backend-ops: every CUDA op on
// fresh random inputs against a reference, by relative error (||got - ref|| / ||ref||) with
// a budget per op and type, then timed with CUDA events (median of many runs, inputs rotated
// through copies larger than the L2 cache so weights and KV rows stream from device memory).
//  - Matmuls are checked twice: against a float64 product of exactly what the kernel
//    consumed (the staged activations it read, weights rounded to fp16 where the GEMM does),
//    which isolates the kernel's own arithmetic (tight budgets), and against the float64
//    product of the original fp32 activations (the end-to-end error of q8 / fp16 staging).
//  - Weight decoding and staging are checked exactly; RoPE, norms and the KV store against
//    the CPU engine's ops (the behaviour the CUDA backend must reproduce); attention against
//    a float64 softmax.
// Files: common.h (device buffers, random inputs, error reports, the case parameters),
// one file of checks per op family (staging.cu, matmul.cu, moe.cu, attention.cu), timing.cu,
// and main.cu, which walks one table of cases with -o op / -t type filters. Budgets live with
// each family's check (as test-backend-ops's max_nmse_err does).
// Built by scripts/cuda-harness.sh (GPU) or scripts/cuda-emulated.sh (CPU emulator: smaller
// shapes, no timing).
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/weight_types.h"
#include "cpu/ops.h"
#include "cuda/matrix_layout.h"
#include "cuda/ops.cuh"

namespace tessera::harness {

using namespace tessera::cuda;

#ifdef TESSERA_CUDA_EMULATOR
constexpr bool kEmulated = true;
#else
constexpr bool kEmulated = false;
#endif

inline int g_failures = 0;
// Fresh inputs every run; the seed is printed so a failure can be replayed (TESSERA_SEED).
inline std::mt19937 g_rng;

inline bool cuda_ok(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return true;
  std::printf("CUDA error in %s: %s\n", what, cudaGetErrorString(e));
  ++g_failures;
  return false;
}

inline float gauss() { return std::normal_distribution<float>(0.f, 1.f)(g_rng); }
inline int uniform_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(g_rng); }

inline std::vector<float> gauss_vector(size_t n, float scale = 1.f) {
  std::vector<float> v(n);
  for (float& e : v) e = gauss() * scale;
  return v;
}

template <typename T>
class Dev {
 public:
  explicit Dev(size_t n) : n_(n) { cuda_ok(cudaMalloc(&p_, std::max<size_t>(n, 1) * sizeof(T)), "cudaMalloc"); }
  explicit Dev(const std::vector<T>& v) : Dev(v.size()) { upload(v); }
  ~Dev() { cudaFree(p_); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  void upload(const std::vector<T>& v) { cuda_ok(cudaMemcpy(p_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), "upload"); }
  std::vector<T> download() const {
    std::vector<T> v(n_);
    cuda_ok(cudaDeviceSynchronize(), "kernel");
    cuda_ok(cudaGetLastError(), "launch");
    cuda_ok(cudaMemcpy(v.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), "download");
    return v;
  }
  T* get() const { return p_; }
  size_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  size_t n_;
};

inline double rel_error(const std::vector<float>& got, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = double(got[i]) - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  if (!std::isfinite(num)) return INFINITY;
  return std::sqrt(num / std::max(den, 1e-300));
}

inline void report(const std::string& name, double err, double budget) {
  const bool ok = err <= budget;
  if (!ok) ++g_failures;
  std::printf("  %-66s rel err %9.2e (budget %.0e) %s\n", name.c_str(), err, budget, ok ? "ok" : "FAIL");
}

inline void report_exact(const std::string& name, size_t mismatches, size_t total) {
  if (mismatches) ++g_failures;
  std::printf("  %-66s %zu/%zu differ %s\n", name.c_str(), mismatches, total, mismatches ? "FAIL" : "ok");
}

inline const char* type_name(GgmlType t) { return ggml_type_traits(t).name; }

// Random well-formed GGUF rows: values ~ N(0, 1/cols) for float types. Block types get
// random bytes (quants, sub-block scales and mins) with every fp16 block scale
// (ggml_block_scales) first at 1, then, once the row is dequantized at those scales, at
// sigma / (the row's RMS) times a per-block jitter of 0.5..1.5: weights of about the size
// the kernels see, from the block layout alone, so a new weight type needs no case here.
inline std::vector<uint8_t> random_gguf_rows(GgmlType type, int64_t rows, int64_t cols) {
  const size_t rb = ggml_row_bytes(type, cols);
  std::vector<uint8_t> out(rb * rows);
  for (uint8_t& b : out) b = uint8_t(g_rng());
  const float sigma = 1.f / std::sqrt(float(cols));
  auto put16 = [&](size_t at, uint16_t v) { std::memcpy(out.data() + at, &v, 2); };
  const GgmlTypeTraits tr = ggml_type_traits(type);
  const BlockScales scales = ggml_block_scales(type);
  std::vector<float> w(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    const size_t base = size_t(r) * rb;
    if (type == GgmlType::F32) {
      for (int64_t i = 0; i < cols; ++i) {
        const float v = gauss() * sigma;
        std::memcpy(out.data() + base + 4 * i, &v, 4);
      }
    } else if (type == GgmlType::F16 || type == GgmlType::BF16) {
      for (int64_t i = 0; i < cols; ++i)
        put16(base + 2 * i, type == GgmlType::F16 ? fp32_to_fp16(gauss() * sigma) : fp32_to_bf16(gauss() * sigma));
    } else {
      const int64_t blocks = cols / tr.block_size;
      auto set_scales = [&](int64_t b, float v) {
        for (int s = 0; s < scales.count; ++s) {
          const size_t at = base + size_t(b) * tr.type_size + scales.offset[s];
          if (scales.e8m0)  // the E8M0 byte nearest v: half its scale is 2^(e - 128)
            out[at] = uint8_t(std::min(254L, std::max(1L, 128L + std::lround(std::log2(double(v))))));
          else
            put16(at, fp32_to_fp16(v));
        }
      };
      for (int64_t b = 0; b < blocks; ++b) set_scales(b, 1.f);
      cpu::dequantize_row(type, out.data() + base, w.data(), cols);
      double ss = 0;
      for (float v : w) ss += double(v) * v;
      const float rms = ss > 0 ? float(std::sqrt(ss / double(cols))) : 1.f;
      for (int64_t b = 0; b < blocks; ++b) set_scales(b, sigma / rms * (0.5f + 0.01f * float(uniform_int(0, 100))));
    }
  }
  return out;
}

inline std::vector<float> dequantize(GgmlType type, const std::vector<uint8_t>& bytes, int64_t rows, int64_t cols) {
  std::vector<float> w(size_t(rows) * cols);
  const size_t rb = ggml_row_bytes(type, cols);
  for (int64_t r = 0; r < rows; ++r) cpu::dequantize_row(type, bytes.data() + r * rb, w.data() + r * cols, cols);
  return w;
}

// A repacked matrix on the device.
struct DevMatrix {
  explicit DevMatrix(GgmlType type, const std::vector<uint8_t>& gguf, int64_t rows, int64_t cols)
      : layout(matrix_layout(type, rows, cols)), buf(layout.total) {
    std::vector<uint8_t> host(layout.total, 0);
    repack_rows(type, cols, gguf.data(), rows, layout, 0, host.data());
    buf.upload(host);
    m = matrix_view(type, rows, cols, layout, buf.get());
  }
  MatrixLayout layout;
  Dev<uint8_t> buf;
  DeviceMatrix m;
};

// Device buffers for `rows` staged rows of width `cols`.
struct DevStage {
  DevStage(int rows, int64_t cols)
      : cols32(round_up(cols, kChunk)), q8(rows * cols32), ds(rows * cols32 / 32), f32(rows * cols32), f16(rows * cols32) {
    act.q8 = q8.get();
    act.ds = ds.get();
    act.f32 = f32.get();
    act.f16 = f16.get();
  }
  int64_t cols32;
  Dev<int8_t> q8;
  Dev<float2> ds;
  Dev<float> f32;
  Dev<uint16_t> f16;
  StagedAct act;
};

inline float half_value(uint16_t h) { return fp16_to_fp32(h); }
inline uint16_t half_sat(float v) { return fp32_to_fp16(std::fmin(std::fmax(v, -65504.f), 65504.f)); }


constexpr unsigned kAllFormats = kStageQ8 | kStageF32 | kStageF16;

// ---------------------------------------------------------------- paged KV cache

// One sequence's blocks in a paged cache of `positions` positions, in scrambled pool order
// (block b at (7b + 3) mod n, or reversed when 7 divides n), as an engine's blocks are once
// reused, so every kernel is checked across block boundaries. Element i of kv head g's row
// of `width` values at position j is at at(g, j, i, width); kv() is the device view.
struct PagedKv {
  int n_head_kv, n_blocks, n_rows;
  std::vector<int32_t> table;
  Dev<int32_t> dtable, drow_table;
  PagedKv(int n_head_kv_, int positions, int rows)
      : n_head_kv(n_head_kv_), n_blocks((positions + kKvBlock - 1) / kKvBlock), n_rows(rows), table(scrambled(n_blocks)),
        dtable(table), drow_table(std::vector<int32_t>(std::max(rows, 1), 0)) {}
  static std::vector<int32_t> scrambled(int n) {
    std::vector<int32_t> t(n);
    for (int b = 0; b < n; ++b) t[b] = n % 7 ? (b * 7 + 3) % n : n - 1 - b;
    return t;
  }
  // Rows the blocks hold (a multiple of kKvBlock, at least `positions`).
  int capacity() const { return n_blocks * kKvBlock; }
  size_t elems(int width) const { return size_t(n_blocks) * n_head_kv * kKvBlock * width; }
  size_t at(int g, int j, int i, int width) const {
    return ((size_t(table[j / kKvBlock]) * n_head_kv + g) * kKvBlock + j % kKvBlock) * width + i;
  }
  KvPaged kv(uint16_t* k, uint16_t* v, int k_width, int v_width) const {
    KvPaged p;
    p.k = k;
    p.v = v;
    p.n_head_kv = n_head_kv;
    p.k_width = k_width;
    p.v_width = v_width;
    p.tables = dtable.get();
    p.row_table = drow_table.get();
    return p;
  }
};


// ---------------------------------------------------------------- case parameters

struct MatmulCase {
  GgmlType type;
  int64_t rows, cols;
  int n;
  bool epilogue = false;  // bias + accumulate (+ a soft-capped variant)
  bool gemv = false;      // launch_gemv whatever n (groups of 8 tokens), as the MoE router
};

struct RouteCase {
  int n_tokens, n_expert, k;
  ExpertGating gating;
  bool norm_top_k, bias;
  float scale;
  int n_group, n_group_used;
};

struct MoeMatmulCase {
  GgmlType type;
  int n_expert, k;
  int64_t rows, cols;  // per expert and part
  int parts;           // 2: gate and up side by side
  int n_tokens;
  bool token_rows;     // inputs per token (gate/up: in_div = k) or per pair (down)
};

struct QkvCase {
  int n_tokens, n_head, n_head_kv, head_dim, pos0;
  RopeKind kind;
  RopeScaling scaling;
  bool qk_norm, freq_factors;
};

struct AttnCase {
  int n_tokens, n_ctx, n_head, n_head_kv, head_dim, head_dim_v, window;
  float softcap;
  bool flash;
  int splits;
  bool v_in_k = false;  // values are the first head_dim_v of each key row (MLA's latent cache)
  bool sinks = false;   // gpt-oss's attention sinks, one logit per head
};

// ---------------------------------------------------------------- checks, by op family

// staging.cu
void check_get_rows(GgmlType type, int64_t vocab, int64_t cols, int n);
void check_copy_stage(int rows, int dim);
void check_staged_like_copy(const std::string& name, const DevStage& st, int rows);
void check_norm_stage(NormKind kind, int rows, int dim, bool affine);
void check_swiglu_stage(int rows, int ff, GateActivation act);
void check_post_norm_add(int rows, int dim, float residual_scale);
// matmul.cu
void check_matmul(const MatmulCase& mc);
void check_head_matmul(GgmlType type, int n_tokens, int n_head, int64_t rows, int64_t cols);
// moe.cu
void check_moe_route(const RouteCase& c);
void check_moe_matmul(const MoeMatmulCase& mc);
void check_moe_combine(int n_tokens, int dim, int k, bool shared, bool gated);
// attention.cu
void check_qkv_post(const QkvCase& c);
void check_mla_post(int n_tokens, int n_head, int nope, int rope_dims, int kv_lora, int pos0);
void check_attention(const AttnCase& c);
// timing.cu (GPU only)
void time_matmul(GgmlType type, int64_t rows, int64_t cols, int n);
void time_moe_decode(GgmlType type);
void time_decode_staging();
void time_attention(int n_tokens, int n_ctx, int n_head, int n_head_kv, int hd, bool flash, int splits);

}  // namespace tessera::harness
