// Argument parsing and shared steps of the single-op entry points (kernel_binding.cpp) and
// their timers (bench_binding.cpp): every argument is validated here (types, lengths,
// ranges) before a kernel sees a pointer.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "addon/status_napi.h"
#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "cpu/ops.h"

namespace tessera::kernel_args {

using namespace tessera::cpu;

[[noreturn]] inline void invalid(Napi::Env env, const std::string& what) {
  check(env, Status::error(StatusCode::InvalidArgument, "kernel harness: " + what));
  throw Napi::Error::New(env, what);  // not reached: check throws
}

inline int64_t int_arg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo, int64_t hi) {
  if (info.Length() <= i || !info[i].IsNumber()) invalid(info.Env(), std::string(name) + " must be a number");
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= double(lo) && v <= double(hi)) || v != std::floor(v))
    invalid(info.Env(), std::string(name) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return int64_t(v);
}

inline double num_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber()) invalid(info.Env(), std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

template <typename T, napi_typedarray_type kind>
inline T* array_arg(const Napi::CallbackInfo& info, size_t i, const char* name, size_t length, bool nullable = false) {
  if (nullable && (info.Length() <= i || info[i].IsNull() || info[i].IsUndefined())) return nullptr;
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != kind)
    invalid(info.Env(), std::string(name) + " has the wrong type");
  auto a = info[i].As<Napi::TypedArray>();
  if (a.ElementLength() != length)
    invalid(info.Env(), std::string(name) + " has " + std::to_string(a.ElementLength()) + " elements, expected " + std::to_string(length));
  return reinterpret_cast<T*>(static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset());
}

// The element count of argument i, which must be a typed array (`message` otherwise): the
// length an array_arg read of it then checks against.
inline size_t typed_length(const Napi::CallbackInfo& info, size_t i, const char* message) {
  if (info.Length() <= i || !info[i].IsTypedArray()) invalid(info.Env(), message);
  return info[i].As<Napi::TypedArray>().ElementLength();
}

inline Napi::Float32Array new_output(Napi::Env env, size_t n) { return Napi::Float32Array::New(env, n); }

constexpr int64_t kMaxDim = 1 << 20;
constexpr int64_t kMaxThreads = 256;

// The validated arguments shared by matmul and benchMatmul:
// (type, weightBytes, rows, cols, x[nTokens*cols], nTokens, threads, ...).
struct MatmulArgs {
  GgmlType type;
  int64_t rows, cols;
  int n_tokens, threads;
  const uint8_t* w;
  size_t w_bytes;
  const float* x;
};

inline MatmulArgs matmul_args(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  MatmulArgs a;
  a.type = static_cast<GgmlType>(int_arg(info, 0, "type", 0, 64));
  a.rows = int_arg(info, 2, "rows", 1, kMaxDim);
  a.cols = int_arg(info, 3, "cols", 1, kMaxDim);
  a.n_tokens = int(int_arg(info, 5, "nTokens", 1, 4096));
  a.threads = int(int_arg(info, 6, "threads", 1, kMaxThreads));
  const size_t row_bytes = ggml_row_bytes(a.type, a.cols);
  if (row_bytes == 0) invalid(env, "cols is not a whole number of blocks of this type");
  a.w_bytes = row_bytes * a.rows;
  a.w = array_arg<uint8_t, napi_uint8_array>(info, 1, "weightBytes", a.w_bytes);
  a.x = array_arg<float, napi_float32_array>(info, 4, "x", size_t(a.n_tokens) * a.cols);
  return a;
}

// Optional boolean argument i (default true).
inline bool flag_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || info[i].IsUndefined()) return true;
  if (!info[i].IsBoolean()) invalid(info.Env(), std::string(name) + " must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

// Optional summation order argument i: "gemm" (default) or "gemv" (see cpu::DotOrder).
inline DotOrder order_arg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined()) return DotOrder::Gemm;
  const std::string v = info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : "";
  if (v != "gemm" && v != "gemv") invalid(info.Env(), "order must be \"gemm\" or \"gemv\"");
  return v == "gemv" ? DotOrder::Gemv : DotOrder::Gemm;
}

// With an arena, as the CPU backend packs a model's weights (small ones share huge pages).
inline Status pack(const MatmulArgs& a, const uint8_t* data, bool repack, PackedWeight* out, HugePageArena* arena = nullptr) {
  TensorRef t;
  t.name = "harness";
  t.type = a.type;
  t.n_dims = 2;
  t.ne[0] = a.cols;
  t.ne[1] = a.rows;
  t.nbytes = a.w_bytes;
  t.data = data;
  return pack_weight(t, out, repack, false, arena);
}

// One matmul as the executor runs it inside a region: encode the activations, barrier,
// multiply, barrier.
inline void matmul_step(ThreadPool& pool, const MatmulArgs& a, const PackedWeight& pw, uint8_t* act, float* y, DotOrder order, int ith, int nth) {
  const ActFormat f = act_format_for(a.type);
  if (f != ActFormat::F32) {
    quantize_act(f, a.x, a.n_tokens, a.cols, act, ith, nth);
    pool.barrier();
  }
  const MatmulJob job{&pw, f == ActFormat::F32 ? static_cast<const void*>(a.x) : act, y, a.rows, order};
  matmul_shared(&job, 1, a.n_tokens, pool.work_cursors(), ith, nth);
  pool.barrier();
}

inline void run_matmul(ThreadPool& pool, const MatmulArgs& a, const PackedWeight& pw, uint8_t* act, float* y, DotOrder order) {
  pool.run([&](int ith, int nth) { matmul_step(pool, a, pw, act, y, order, ith, nth); });
}

// attention(q[nTokens][nHead][hd], k[nCtx][nHeadKv][hd], v[nCtx][nHeadKv][hdv], nTokens, nCtx,
//           nHead, nHeadKv, hd, hdv, slidingWindow, scale, softcap, threads, vInK?, kvType?)
// The last nTokens of the nCtx positions are the queries' own positions. The cache is paged
// as an engine's is, its blocks in scrambled pool order (the table is a permutation), so the
// kernels are checked across block boundaries. With vInK (MLA) the cache holds K only and
// the values are the first hdv entries of each key row (v is ignored). kvType: 0 f16,
// 1 q8_0, 2 q4_0.
struct AttentionCall {
  AttentionArgs a;              // everything but kv tiles, out and scratch
  const float *k, *v;           // the rows kv_store writes into the cache
  std::vector<int32_t> table;   // block ids of the one sequence
  std::vector<int32_t> pos;     // [n_ctx] 0..n_ctx-1: the rows kv_store writes; the queries are the last n_tokens
  std::vector<const int32_t*> tables;  // [n_ctx] every row's table
  size_t cache_bytes, scratch_bytes, out_floats;
  int n_ctx, threads;
};

// extra_arg: the position of the optional vInK flag (kvType follows it).
inline AttentionCall attention_call(const Napi::CallbackInfo& info, size_t extra_arg) {
  Napi::Env env = info.Env();
  const int n_tokens = int(int_arg(info, 3, "nTokens", 1, 1 << 14)), n_ctx = int(int_arg(info, 4, "nCtx", 1, 1 << 16));
  const int n_head = int(int_arg(info, 5, "nHead", 1, 1024)), n_head_kv = int(int_arg(info, 6, "nHeadKv", 1, 1024));
  const int hd = int(int_arg(info, 7, "headDim", 1, 1024)), hdv = int(int_arg(info, 8, "headDimV", 1, 1024));
  if (n_tokens > n_ctx || n_head % n_head_kv) invalid(env, "need nTokens <= nCtx and nHead a multiple of nHeadKv");
  AttentionCall c;
  AttentionArgs& a = c.a;
  a.sliding_window = int(int_arg(info, 9, "slidingWindow", 0, 1 << 20));
  a.scale = float(num_arg(info, 10, "scale"));
  a.softcap = float(num_arg(info, 11, "softcap"));
  c.threads = int(int_arg(info, 12, "threads", 1, kMaxThreads));
  c.n_ctx = n_ctx;
  a.q = array_arg<float, napi_float32_array>(info, 0, "q", size_t(n_tokens) * n_head * hd);
  c.k = array_arg<float, napi_float32_array>(info, 1, "k", size_t(n_ctx) * n_head_kv * hd);
  a.kv.v_in_k = info.Length() > extra_arg && info[extra_arg].ToBoolean().Value();
  a.kv.type = info.Length() > extra_arg + 1 && !info[extra_arg + 1].IsUndefined()
                  ? static_cast<KvType>(int_arg(info, extra_arg + 1, "kvType", 0, 2))
                  : KvType::F16;
  // Attention sinks [nHead] after kvType (gpt-oss), null or absent: none.
  if (info.Length() > extra_arg + 2 && !info[extra_arg + 2].IsUndefined() && !info[extra_arg + 2].IsNull())
    a.sinks = array_arg<float, napi_float32_array>(info, extra_arg + 2, "sinks", size_t(n_head));
  if (a.kv.v_in_k && hdv > hd) invalid(env, "with vInK the value size must not exceed the key size");
  if (kv_type_quantized(a.kv.type) && (hd % 32 || hdv % 32)) invalid(env, "a quantized cache needs head sizes that are multiples of 32");
  c.v = a.kv.v_in_k ? nullptr : array_arg<float, napi_float32_array>(info, 2, "v", size_t(n_ctx) * n_head_kv * hdv);
  a.kv.n_head_kv = n_head_kv;
  a.kv.k_tile = kv_tile_bytes(a.kv.type, hd);
  a.kv.v_tile = a.kv.v_in_k ? 0 : kv_tile_bytes(a.kv.type, hdv);
  const int n_blocks = (n_ctx + kKvBlock - 1) / kKvBlock;
  // Block b of the sequence sits at pool slot (b * 7 + 3) mod n, a permutation whenever 7
  // does not divide n (then reversed order): never the identity for more than one block.
  c.table.resize(n_blocks);
  for (int b = 0; b < n_blocks; ++b) c.table[b] = n_blocks % 7 ? (b * 7 + 3) % n_blocks : n_blocks - 1 - b;
  c.pos.resize(n_ctx);
  for (int j = 0; j < n_ctx; ++j) c.pos[j] = j;
  c.tables.assign(n_ctx, nullptr);
  a.max_context = n_ctx;
  a.ldq = int64_t(n_head) * hd;
  a.n_tokens = n_tokens;
  a.n_head = n_head;
  a.n_head_kv = n_head_kv;
  a.head_dim = hd;
  a.head_dim_v = hdv;
  a.ldo = int64_t(n_head) * hdv;
  c.cache_bytes = size_t(n_blocks) * n_head_kv * (a.kv.k_tile + a.kv.v_tile);
  c.scratch_bytes = attention_scratch_floats(n_ctx, hd, hdv) * c.threads * 4;
  c.out_floats = size_t(n_tokens) * n_head * hdv;
  return c;
}

// The call's arguments with kv pointing at `cache` (cache_bytes) and the rows tables fixed
// up (c's vectors must not move afterwards).
inline AttentionArgs cache_args(AttentionCall& c, uint8_t* cache) {
  for (auto& t : c.tables) t = c.table.data();
  AttentionArgs a = c.a;
  a.kv.k = cache;
  a.kv.v = a.kv.v_in_k ? nullptr : cache + c.table.size() * a.kv.n_head_kv * a.kv.k_tile;
  a.rows = {c.pos.data() + (c.n_ctx - a.n_tokens), c.tables.data()};
  return a;
}

inline void store_kv(const AttentionCall& c, const KvLayer& kv, int ith, int nth) {
  const AttentionArgs& a = c.a;
  kv_store(kv, c.k, int64_t(a.n_head_kv) * a.head_dim, c.v, int64_t(a.n_head_kv) * a.head_dim_v, c.n_ctx,
           KvRows{c.pos.data(), c.tables.data()}, a.head_dim, a.head_dim_v, ith, nth);
}

}  // namespace tessera::kernel_args
