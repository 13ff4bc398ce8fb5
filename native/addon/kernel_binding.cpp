// Single-op entry points for the shared kernel harness (lib/kernels/harness.ts): each runs
// one CPU op on typed arrays through a ThreadPool of the requested size and returns fresh
// output, so tests can compare it with a float64 reference and benchmarks can time it.
// Every argument is validated here (types, lengths, ranges) before a kernel sees a pointer.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "addon/bindings.h"
#include "addon/status_napi.h"
#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "cpu/ops.h"
#include "cpu/read_probe.h"

namespace tessera {

namespace {

using namespace tessera::cpu;

[[noreturn]] void invalid(Napi::Env env, const std::string& what) {
  check(env, Status::error(StatusCode::InvalidArgument, "kernel harness: " + what));
  throw Napi::Error::New(env, what);  // not reached: check throws
}

int64_t int_arg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo, int64_t hi) {
  if (info.Length() <= i || !info[i].IsNumber()) invalid(info.Env(), std::string(name) + " must be a number");
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= double(lo) && v <= double(hi)) || v != std::floor(v))
    invalid(info.Env(), std::string(name) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return int64_t(v);
}

double num_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber()) invalid(info.Env(), std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

template <typename T, napi_typedarray_type kind>
T* array_arg(const Napi::CallbackInfo& info, size_t i, const char* name, size_t length, bool nullable = false) {
  if (nullable && (info.Length() <= i || info[i].IsNull() || info[i].IsUndefined())) return nullptr;
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != kind)
    invalid(info.Env(), std::string(name) + " has the wrong type");
  auto a = info[i].As<Napi::TypedArray>();
  if (a.ElementLength() != length)
    invalid(info.Env(), std::string(name) + " has " + std::to_string(a.ElementLength()) + " elements, expected " + std::to_string(length));
  return reinterpret_cast<T*>(static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset());
}

Napi::Float32Array new_output(Napi::Env env, size_t n) { return Napi::Float32Array::New(env, n); }

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

MatmulArgs matmul_args(const Napi::CallbackInfo& info) {
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
bool flag_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || info[i].IsUndefined()) return true;
  if (!info[i].IsBoolean()) invalid(info.Env(), std::string(name) + " must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

// Optional summation order argument i: "gemm" (default) or "gemv" (see cpu::DotOrder).
DotOrder order_arg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined()) return DotOrder::Gemm;
  const std::string v = info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : "";
  if (v != "gemm" && v != "gemv") invalid(info.Env(), "order must be \"gemm\" or \"gemv\"");
  return v == "gemv" ? DotOrder::Gemv : DotOrder::Gemm;
}

Status pack(const MatmulArgs& a, const uint8_t* data, bool repack, PackedWeight* out) {
  TensorRef t;
  t.name = "harness";
  t.type = a.type;
  t.n_dims = 2;
  t.ne[0] = a.cols;
  t.ne[1] = a.rows;
  t.nbytes = a.w_bytes;
  t.data = data;
  return pack_weight(t, out, repack);
}

// One matmul as the executor runs it inside a region: encode the activations, barrier,
// multiply, barrier.
void matmul_step(ThreadPool& pool, const MatmulArgs& a, const PackedWeight& pw, uint8_t* act, float* y, DotOrder order, int ith, int nth) {
  const ActFormat f = act_format_for(a.type);
  if (f != ActFormat::F32) {
    quantize_act(f, a.x, a.n_tokens, a.cols, act, ith, nth);
    pool.barrier();
  }
  const MatmulJob job{&pw, f == ActFormat::F32 ? static_cast<const void*>(a.x) : act, y, a.rows, order};
  matmul_shared(&job, 1, a.n_tokens, &pool.work_cursor(), nth);
  pool.barrier();
}

void run_matmul(ThreadPool& pool, const MatmulArgs& a, const PackedWeight& pw, uint8_t* act, float* y, DotOrder order) {
  pool.run([&](int ith, int nth) { matmul_step(pool, a, pw, act, y, order, ith, nth); });
}

// matmul(type, weightBytes, rows, cols, x[nTokens*cols], nTokens, threads, repack = true,
//        order = "gemm") -> y[nTokens*rows]; repack = false keeps the GGUF layout
//   (pack_weight's allow_repack)
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const MatmulArgs a = matmul_args(info);
  PackedWeight pw;
  check(env, pack(a, a.w, flag_arg(info, 7, "repack"), &pw));
  AlignedBuffer act;
  check(env, act.allocate(std::max<size_t>(act_bytes(act_format_for(a.type), a.cols, a.n_tokens), 64), "harness activations"));
  auto y = new_output(env, size_t(a.n_tokens) * a.rows);
  ThreadPool pool(a.threads);
  run_matmul(pool, a, pw, act.data(), y.Data(), order_arg(info, 8));
  return y;
}

// The native timers' loop: step(i, ith, nth) runs on every thread of the pool, call after call
// (i counts them; a step ends with every thread done, on a barrier), until `seconds` have
// passed with at least 5 calls timed. The first pass over the n_copies inputs (at least 3
// calls) warms up untimed. Returns {medianMs, minMs, runs, copies}.
template <typename Step>
Napi::Object time_on_pool(Napi::Env env, ThreadPool& pool, size_t n_copies, double seconds, Step&& step) {
  std::vector<double> times;
  bool done = false;  // written by thread 0, read by all after the barrier that ends each call
  pool.run([&](int ith, int nth) {
    const auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; !done; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      step(i, ith, nth);
      if (ith == 0) {
        const auto t1 = std::chrono::steady_clock::now();
        if (i >= n_copies || i >= 3) times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        done = (times.size() >= 5 && std::chrono::duration<double>(t1 - start).count() >= seconds) || times.size() >= 100000;
      }
      pool.barrier();
    }
  });
  std::sort(times.begin(), times.end());
  Napi::Object out = Napi::Object::New(env);
  out.Set("medianMs", times[times.size() / 2]);
  out.Set("minMs", times.front());
  out.Set("runs", double(times.size()));
  out.Set("copies", double(n_copies));
  return out;
}

// benchMatmul(type, weightBytes, rows, cols, x, nTokens, threads, seconds, repack = true,
//             copies = 0, order = "gemm") -> { medianMs, minMs, runs, copies }: times matmul_step
// with packing and buffers set up beforehand (as in the executor), rotating over copies of the
// weights; copies = 0 takes enough (>= 256 MiB together, at most 64) that each call streams
// its weights from DRAM as decode does, copies = 1 measures cache-resident compute. All calls
// run inside one pool region, as a decode step runs its matmuls, so a call's time is its
// encode, multiply and barriers and not a wake-up of the calling thread (~35 us here, a sixth
// of a 0.5B-shape matvec).
Napi::Value BenchMatmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const MatmulArgs a = matmul_args(info);
  const double seconds = num_arg(info, 7, "seconds");
  const bool repack = flag_arg(info, 8, "repack");
  if (!(seconds > 0 && seconds <= 60)) invalid(env, "seconds must be in (0, 60]");
  const int64_t copies_arg = info.Length() > 9 && !info[9].IsUndefined() ? int_arg(info, 9, "copies", 0, 64) : 0;
  const DotOrder order = order_arg(info, 10);
  const size_t n_copies = copies_arg > 0 ? size_t(copies_arg)
                                         : std::min<size_t>(64, std::max<size_t>(1, ((size_t(256) << 20) + a.w_bytes - 1) / a.w_bytes));
  std::vector<AlignedBuffer> copies(n_copies);
  std::vector<PackedWeight> packed(n_copies);
  for (size_t i = 0; i < n_copies; ++i) {
    check(env, copies[i].allocate(a.w_bytes, "benchmark weights"));
    std::copy(a.w, a.w + a.w_bytes, copies[i].data());
    check(env, pack(a, copies[i].data(), repack, &packed[i]));
  }
  AlignedBuffer act, y;
  check(env, act.allocate(std::max<size_t>(act_bytes(act_format_for(a.type), a.cols, a.n_tokens), 64), "harness activations"));
  check(env, y.allocate(size_t(a.n_tokens) * a.rows * 4, "harness output"));
  ThreadPool pool(a.threads);
  return time_on_pool(env, pool, n_copies, seconds, [&](size_t i, int ith, int nth) {
    matmul_step(pool, a, packed[i % n_copies], act.data(), reinterpret_cast<float*>(y.data()), order, ith, nth);
  });
}

// getRows(type, tableBytes, rows, cols, tokens: Int32Array) -> [nTokens*cols]
Napi::Value GetRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto type = static_cast<GgmlType>(int_arg(info, 0, "type", 0, 64));
  const int64_t rows = int_arg(info, 2, "rows", 1, kMaxDim), cols = int_arg(info, 3, "cols", 1, kMaxDim);
  const size_t row_bytes = ggml_row_bytes(type, cols);
  if (row_bytes == 0) invalid(env, "cols is not a whole number of blocks of this type");
  TensorRef t;
  t.type = type;
  t.ne[0] = cols;
  t.ne[1] = rows;
  t.data = array_arg<uint8_t, napi_uint8_array>(info, 1, "tableBytes", row_bytes * rows);
  if (!info[4].IsTypedArray()) invalid(env, "tokens must be an Int32Array");
  const size_t n = info[4].As<Napi::TypedArray>().ElementLength();
  const int32_t* tokens = array_arg<int32_t, napi_int32_array>(info, 4, "tokens", n);
  for (size_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= rows) invalid(env, "token id out of range");
  auto out = new_output(env, n * cols);
  get_rows(t, tokens, int(n), out.Data(), 0, 1);
  return out;
}

// rmsNorm(x, weight|null, nRows, dim, eps, threads)
Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  const int n_rows = int(int_arg(info, 2, "nRows", 1, kMaxDim)), dim = int(int_arg(info, 3, "dim", 1, kMaxDim));
  const float* x = array_arg<float, napi_float32_array>(info, 0, "x", size_t(n_rows) * dim);
  const float* w = array_arg<float, napi_float32_array>(info, 1, "weight", dim, true);
  const float eps = float(num_arg(info, 4, "eps"));
  const int threads = int(int_arg(info, 5, "threads", 1, kMaxThreads));
  auto y = new_output(info.Env(), size_t(n_rows) * dim);
  float* yd = y.Data();
  ThreadPool(threads).run([&](int ith, int nth) { rms_norm(x, w, yd, n_rows, dim, eps, ith, nth); });
  return y;
}

// rope(x, pos, nTokens, nHeads, headDim, params{...}, freqFactors|null, threads)
Napi::Value Rope(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int n_tokens = int(int_arg(info, 2, "nTokens", 1, 1 << 16)), n_heads = int(int_arg(info, 3, "nHeads", 1, 1024));
  const int head_dim = int(int_arg(info, 4, "headDim", 2, 4096));
  const float* x = array_arg<float, napi_float32_array>(info, 0, "x", size_t(n_tokens) * n_heads * head_dim);
  const int32_t* pos = array_arg<int32_t, napi_int32_array>(info, 1, "pos", n_tokens);
  if (!info[5].IsObject()) invalid(env, "params must be an object");
  Napi::Object o = info[5].As<Napi::Object>();
  auto get = [&](const char* k, double fallback) { return o.Has(k) && o.Get(k).IsNumber() ? o.Get(k).As<Napi::Number>().DoubleValue() : fallback; };
  RopeParams p;
  p.kind = get("kind", 1) == 2 ? RopeKind::Neox : RopeKind::Normal;
  p.n_dims = int(get("nDims", head_dim));
  if (p.n_dims < 2 || p.n_dims > head_dim || p.n_dims % 2) invalid(env, "nDims must be even and <= headDim");
  p.freq_base = float(get("freqBase", 10000));
  p.freq_scale = float(get("freqScale", 1));
  p.scaling = static_cast<RopeScaling>(int(get("scaling", 0)) & 3);
  p.n_ctx_orig = int(get("nCtxOrig", 0));
  p.yarn_ext_factor = float(get("extFactor", 0));
  p.yarn_attn_factor = float(get("attnFactor", 1));
  p.yarn_beta_fast = float(get("betaFast", 32));
  p.yarn_beta_slow = float(get("betaSlow", 1));
  p.llama3_low_freq_factor = float(get("lowFreqFactor", 1));
  p.llama3_high_freq_factor = float(get("highFreqFactor", 4));
  const float* ff = array_arg<float, napi_float32_array>(info, 6, "freqFactors", p.n_dims / 2, true);
  const int threads = int(int_arg(info, 7, "threads", 1, kMaxThreads));
  auto y = new_output(env, size_t(n_tokens) * n_heads * head_dim);
  std::copy(x, x + y.ElementLength(), y.Data());
  float* yd = y.Data();
  ThreadPool(threads).run([&](int ith, int nth) { rope(yd, pos, n_tokens, n_heads, head_dim, p, ff, ith, nth); });
  return y;
}

// swiglu(gate, up, nRows, dim, activation 0=silu 1=gelu, threads)
Napi::Value Swiglu(const Napi::CallbackInfo& info) {
  const int n_rows = int(int_arg(info, 2, "nRows", 1, kMaxDim)), dim = int(int_arg(info, 3, "dim", 1, kMaxDim));
  const float* g = array_arg<float, napi_float32_array>(info, 0, "gate", size_t(n_rows) * dim);
  const float* u = array_arg<float, napi_float32_array>(info, 1, "up", size_t(n_rows) * dim);
  const auto act = static_cast<GateActivation>(int_arg(info, 4, "activation", 0, 1));
  const int threads = int(int_arg(info, 5, "threads", 1, kMaxThreads));
  auto y = new_output(info.Env(), size_t(n_rows) * dim);
  float* yd = y.Data();
  ThreadPool(threads).run([&](int ith, int nth) { swiglu(g, u, yd, n_rows, dim, dim, dim, act, ith, nth); });
  return y;
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
AttentionCall attention_call(const Napi::CallbackInfo& info, size_t extra_arg) {
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
AttentionArgs cache_args(AttentionCall& c, uint8_t* cache) {
  for (auto& t : c.tables) t = c.table.data();
  AttentionArgs a = c.a;
  a.kv.k = cache;
  a.kv.v = a.kv.v_in_k ? nullptr : cache + c.table.size() * a.kv.n_head_kv * a.kv.k_tile;
  a.rows = {c.pos.data() + (c.n_ctx - a.n_tokens), c.tables.data()};
  return a;
}

void store_kv(const AttentionCall& c, const KvLayer& kv, int ith, int nth) {
  const AttentionArgs& a = c.a;
  kv_store(kv, c.k, int64_t(a.n_head_kv) * a.head_dim, c.v, int64_t(a.n_head_kv) * a.head_dim_v, c.n_ctx,
           KvRows{c.pos.data(), c.tables.data()}, a.head_dim, a.head_dim_v, ith, nth);
}

Napi::Value Attention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AttentionCall c = attention_call(info, 13);
  AlignedBuffer cache, scratch;
  check(env, cache.allocate(c.cache_bytes, "harness KV cache"));
  check(env, scratch.allocate(c.scratch_bytes, "harness scratch"));
  auto out = new_output(env, c.out_floats);
  AttentionArgs a = cache_args(c, cache.data());
  a.out = out.Data();
  a.scratch = reinterpret_cast<float*>(scratch.data());
  ThreadPool pool(c.threads);
  pool.run([&](int ith, int nth) {
    store_kv(c, a.kv, ith, nth);
    pool.barrier();
    attention(a, ith, nth);
  });
  return out;
}

// benchAttention(<attention's arguments 0..12>, seconds, vInK?, kvType?) -> {medianMs, minMs, runs, copies}:
// times the attention op alone with one thread pool. A single query token (decode) rotates
// through copies of the cache totalling at least 256 MiB, so it streams keys and values from
// DRAM as a decode step does; a batch reads one cache that it keeps warm, as a prefill does.
Napi::Value BenchAttention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AttentionCall c = attention_call(info, 14);
  const double seconds = num_arg(info, 13, "seconds");
  if (!(seconds > 0 && seconds <= 60)) invalid(env, "seconds must be in (0, 60]");
  const size_t n_copies =
      c.a.n_tokens > 1 ? 1 : std::min<size_t>(256, std::max<size_t>(1, ((size_t(256) << 20) + c.cache_bytes - 1) / c.cache_bytes));
  std::vector<AlignedBuffer> caches(n_copies);
  for (AlignedBuffer& cache : caches) check(env, cache.allocate(c.cache_bytes, "benchmark KV cache"));
  AlignedBuffer scratch, out;
  check(env, scratch.allocate(c.scratch_bytes, "harness scratch"));
  check(env, out.allocate(c.out_floats * 4, "harness output"));
  std::vector<AttentionArgs> calls;
  for (AlignedBuffer& cache : caches) {
    calls.push_back(cache_args(c, cache.data()));
    calls.back().out = reinterpret_cast<float*>(out.data());
    calls.back().scratch = reinterpret_cast<float*>(scratch.data());
  }
  ThreadPool pool(c.threads);
  pool.run([&](int ith, int nth) {
    for (const AttentionArgs& call : calls) store_kv(c, call.kv, ith, nth);
  });
  return time_on_pool(env, pool, n_copies, seconds, [&](size_t i, int ith, int nth) {
    attention(calls[i % n_copies], ith, nth);
    pool.barrier();
  });
}

// layerNorm(x, weight|null, bias|null, nRows, dim, eps, threads)
Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
  const int n_rows = int(int_arg(info, 3, "nRows", 1, kMaxDim)), dim = int(int_arg(info, 4, "dim", 1, kMaxDim));
  const float* x = array_arg<float, napi_float32_array>(info, 0, "x", size_t(n_rows) * dim);
  const float* w = array_arg<float, napi_float32_array>(info, 1, "weight", dim, true);
  const float* b = array_arg<float, napi_float32_array>(info, 2, "bias", dim, true);
  const float eps = float(num_arg(info, 5, "eps"));
  const int threads = int(int_arg(info, 6, "threads", 1, kMaxThreads));
  auto y = new_output(info.Env(), size_t(n_rows) * dim);
  float* yd = y.Data();
  ThreadPool(threads).run([&](int ith, int nth) { layer_norm(x, w, b, yd, n_rows, dim, eps, ith, nth); });
  return y;
}

// add(x, y, threads) -> x + y
Napi::Value Add(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsTypedArray()) invalid(info.Env(), "x must be a Float32Array");
  const size_t n = info[0].As<Napi::TypedArray>().ElementLength();
  const float* x = array_arg<float, napi_float32_array>(info, 0, "x", n);
  const float* y = array_arg<float, napi_float32_array>(info, 1, "y", n);
  const int threads = int(int_arg(info, 2, "threads", 1, kMaxThreads));
  auto out = new_output(info.Env(), n);
  float* od = out.Data();
  std::copy(x, x + n, od);
  ThreadPool(threads).run([&](int ith, int nth) { add(od, y, int64_t(n), ith, nth); });
  return out;
}

// addBias(x[nRows*ldx], bias[dim], nRows, dim, ldx, threads) -> x with bias added to the
// first dim columns of every row
Napi::Value AddBias(const Napi::CallbackInfo& info) {
  const int n_rows = int(int_arg(info, 2, "nRows", 1, kMaxDim)), dim = int(int_arg(info, 3, "dim", 1, kMaxDim));
  const int64_t ldx = int_arg(info, 4, "ldx", dim, kMaxDim);
  const float* x = array_arg<float, napi_float32_array>(info, 0, "x", size_t(n_rows) * ldx);
  const float* bias = array_arg<float, napi_float32_array>(info, 1, "bias", dim);
  const int threads = int(int_arg(info, 5, "threads", 1, kMaxThreads));
  auto out = new_output(info.Env(), size_t(n_rows) * ldx);
  float* od = out.Data();
  std::copy(x, x + out.ElementLength(), od);
  ThreadPool(threads).run([&](int ith, int nth) { add_bias(od, bias, n_rows, dim, ldx, ith, nth); });
  return out;
}

// quantizeAct(weightType, x[nTokens*cols], nTokens, cols, threads) -> the bytes of x encoded
// in the activation format that weight type's matmul consumes (F32: a copy)
Napi::Value QuantizeAct(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto type = static_cast<GgmlType>(int_arg(info, 0, "weightType", 0, 64));
  const int n_tokens = int(int_arg(info, 2, "nTokens", 1, 1 << 16));
  const int64_t cols = int_arg(info, 3, "cols", 1, kMaxDim);
  const int threads = int(int_arg(info, 4, "threads", 1, kMaxThreads));
  const float* x = array_arg<float, napi_float32_array>(info, 1, "x", size_t(n_tokens) * cols);
  const ActFormat f = act_format_for(type);
  const int block = f == ActFormat::Q8_0 ? QK8_0 : f == ActFormat::Q8_K ? QK_K : 1;
  if (cols % block) invalid(env, "cols must be a multiple of " + std::to_string(block) + " for this weight type");
  auto out = Napi::Uint8Array::New(env, act_bytes(f, cols, n_tokens));
  uint8_t* od = out.Data();
  if (f == ActFormat::F32) {
    std::copy(x, x + size_t(n_tokens) * cols, reinterpret_cast<float*>(od));
    return out;
  }
  ThreadPool(threads).run([&](int ith, int nth) { quantize_act(f, x, n_tokens, cols, od, ith, nth); });
  return out;
}

// headMatmul(type, weightBytes, nHead, rows, cols, x[nHead][nTokens][cols], nTokens, threads)
//   -> y[nTokens][nHead][rows]
Napi::Value HeadMatmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto type = static_cast<GgmlType>(int_arg(info, 0, "type", 0, 64));
  const int n_head = int(int_arg(info, 2, "nHead", 1, 1024));
  const int64_t rows = int_arg(info, 3, "rows", 1, kMaxDim), cols = int_arg(info, 4, "cols", 1, kMaxDim);
  const int n_tokens = int(int_arg(info, 6, "nTokens", 1, 4096));
  const int threads = int(int_arg(info, 7, "threads", 1, kMaxThreads));
  const size_t row_bytes = ggml_row_bytes(type, cols);
  if (row_bytes == 0) invalid(env, "cols is not a whole number of blocks of this type");
  const int64_t total_rows = rows * n_head;
  const uint8_t* w = array_arg<uint8_t, napi_uint8_array>(info, 1, "weightBytes", row_bytes * total_rows);
  const float* x = array_arg<float, napi_float32_array>(info, 5, "x", size_t(n_head) * n_tokens * cols);
  TensorRef t;
  t.name = "harness";
  t.type = type;
  t.n_dims = 3;
  t.ne[0] = cols;
  t.ne[1] = rows;
  t.ne[2] = n_head;
  t.nbytes = row_bytes * total_rows;
  t.data = w;
  PackedWeight pw;
  check(env, pack_weight(t, &pw));
  const ActFormat f = act_format_for(type);
  AlignedBuffer act;
  check(env, act.allocate(std::max<size_t>(act_bytes(f, cols, n_head * n_tokens), 64), "harness activations"));
  auto y = new_output(env, size_t(n_tokens) * total_rows);
  float* yd = y.Data();
  ThreadPool pool(threads);
  pool.run([&](int ith, int nth) {
    if (f != ActFormat::F32) {
      quantize_act(f, x, n_head * n_tokens, cols, act.data(), ith, nth);
      pool.barrier();
    }
    head_matmul(pw, n_head, f == ActFormat::F32 ? static_cast<const void*>(x) : act.data(), n_tokens, yd, total_rows, rows,
                ith, nth);
  });
  return y;
}

// copyHeads(x, xLdToken, xLdHead, yLength, yLdToken, yLdHead, nTokens, nHead, width, threads) -> y
Napi::Value CopyHeads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) invalid(env, "x must be a Float32Array");
  const size_t x_len = info[0].As<Napi::TypedArray>().ElementLength();
  const float* x = array_arg<float, napi_float32_array>(info, 0, "x", x_len);
  const int64_t x_ldt = int_arg(info, 1, "xLdToken", 0, kMaxDim), x_ldh = int_arg(info, 2, "xLdHead", 0, kMaxDim);
  const int64_t y_len = int_arg(info, 3, "yLength", 1, int64_t(1) << 26);
  const int64_t y_ldt = int_arg(info, 4, "yLdToken", 0, kMaxDim), y_ldh = int_arg(info, 5, "yLdHead", 0, kMaxDim);
  const int n_tokens = int(int_arg(info, 6, "nTokens", 1, 1 << 16)), n_head = int(int_arg(info, 7, "nHead", 1, 1024));
  const int width = int(int_arg(info, 8, "width", 1, kMaxDim));
  const int threads = int(int_arg(info, 9, "threads", 1, kMaxThreads));
  if ((n_tokens - 1) * x_ldt + (n_head - 1) * x_ldh + width > int64_t(x_len) || (n_tokens - 1) * y_ldt + (n_head - 1) * y_ldh + width > y_len)
    invalid(env, "the strides reach past the end of x or y");
  auto y = new_output(env, size_t(y_len));
  float* yd = y.Data();
  ThreadPool(threads).run([&](int ith, int nth) { copy_heads(x, x_ldt, x_ldh, yd, y_ldt, y_ldh, n_tokens, n_head, width, ith, nth); });
  return y;
}

// vectorTopK(data, n, dim, query, metric, k, threads) -> { rows: Int32Array, scores: Float32Array }:
// the best min(k, n) rows of data [>= n][dim] for query [dim], best first (ties: lower row);
// metric 0 dot (cosine over normalized rows), 1 L2 (score: minus the squared distance).
Napi::Value VectorTopK(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t n = int_arg(info, 1, "n", 0, int64_t(1) << 31), dim = int_arg(info, 2, "dim", 1, 1 << 16);
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    invalid(env, "data must be a Float32Array");
  Napi::Float32Array data = info[0].As<Napi::Float32Array>();
  if (data.ElementLength() < size_t(n) * size_t(dim)) invalid(env, "data holds fewer than n rows of dim");
  const float* query = array_arg<float, napi_float32_array>(info, 3, "query", size_t(dim));
  const int metric = int(int_arg(info, 4, "metric", 0, 1));
  const int k = int(int_arg(info, 5, "k", 1, 1 << 20));
  const int threads = int(int_arg(info, 6, "threads", 1, kMaxThreads));
  const int nth = int(std::max<int64_t>(1, std::min<int64_t>(threads, n / 4096 + 1)));  // small sets: one thread
  std::vector<int32_t> rows(size_t(nth) * k);
  std::vector<float> scores(size_t(nth) * k);
  const float* d = data.Data();
  auto work = [&](int ith, int nt) { vector_topk(d, n, int(dim), query, VectorMetric(metric), k, rows.data(), scores.data(), ith, nt); };
  if (nth == 1)
    work(0, 1);
  else
    ThreadPool(nth).run(work);
  // Merge the per-thread lists (each sorted best first).
  const int m = int(std::min<int64_t>(k, n));
  std::vector<int> at(size_t(nth), 0);
  Napi::Int32Array out_rows = Napi::Int32Array::New(env, size_t(m));
  Napi::Float32Array out_scores = Napi::Float32Array::New(env, size_t(m));
  int found = 0;
  for (; found < m; ++found) {
    int best = -1;
    for (int t = 0; t < nth; ++t) {
      if (at[t] >= k) continue;
      const size_t i = size_t(t) * k + at[t];
      if (rows[i] < 0) continue;
      if (best < 0) { best = t; continue; }
      const size_t j = size_t(best) * k + at[best];
      if (scores[i] > scores[j] || (scores[i] == scores[j] && rows[i] < rows[j])) best = t;
    }
    if (best < 0) break;
    const size_t j = size_t(best) * k + at[best]++;
    out_rows[found] = rows[j];
    out_scores[found] = scores[j];
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("rows", found == m ? out_rows : Napi::Int32Array::New(env, size_t(found)));
  out.Set("scores", found == m ? out_scores : Napi::Float32Array::New(env, size_t(found)));
  if (found != m) {
    for (int i = 0; i < found; ++i) {
      out.Get("rows").As<Napi::Int32Array>()[i] = out_rows[i];
      out.Get("scores").As<Napi::Float32Array>()[i] = out_scores[i];
    }
  }
  return out;
}

// softmax(x) -> softmax of a copy of x
Napi::Value Softmax(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray()) invalid(info.Env(), "x must be a Float32Array");
  const size_t n = info[0].As<Napi::TypedArray>().ElementLength();
  if (n == 0) invalid(info.Env(), "x must not be empty");
  const float* x = array_arg<float, napi_float32_array>(info, 0, "x", n);
  auto y = new_output(info.Env(), n);
  std::copy(x, x + n, y.Data());
  softmax(y.Data(), int(n));
  return y;
}

// hadamard(x, nRows, width, n, threads) -> x with each run of n values of each row rotated
Napi::Value Hadamard(const Napi::CallbackInfo& info) {
  const int n_rows = int(int_arg(info, 1, "nRows", 1, kMaxDim)), width = int(int_arg(info, 2, "width", 1, kMaxDim));
  const int n = int(int_arg(info, 3, "n", 1, 1 << 16));
  if ((n & (n - 1)) || width % n) invalid(info.Env(), "n must be a power of two dividing width");
  const float* x = array_arg<float, napi_float32_array>(info, 0, "x", size_t(n_rows) * width);
  const int threads = int(int_arg(info, 4, "threads", 1, kMaxThreads));
  auto y = new_output(info.Env(), size_t(n_rows) * width);
  float* yd = y.Data();
  std::copy(x, x + size_t(n_rows) * width, yd);
  ThreadPool(threads).run([&](int ith, int nth) { hadamard(yd, n_rows, width, width, n, ith, nth); });
  return y;
}

// readBandwidth(megabytes, reps, threads) -> { medianGBps, bestGBps, method, threads, methods }:
// reads a buffer of `megabytes` (far larger than the caches) `reps` times per read method
// (cpu::ReadMethod) on `threads` threads and on one fewer, in 8 MiB chunks, timing each
// chunk the same way benchMatmul times its calls, so kernel and probe figures compare like
// for like on a machine shared with other work (median: typical, best: a quiet moment). The
// top level is the combination with the highest median: the probe stands for the read
// ceiling, and the engine itself runs each step on all threads or one fewer, whichever is
// faster. A busy neighbour on one core stalls every barrier of a full-width pass: on a
// loaded 2-core VM one probe read 17.9 GB/s with the kernels' pattern on 2 threads and 38.2
// on 1, the likely way a 1B decode came to 113% of a 2-thread probe. Combinations take turns
// pass by pass, so a neighbour's burst does not land on one of them only.
Napi::Value ReadBandwidth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t mb = int_arg(info, 0, "megabytes", 8, 1 << 14);
  const int reps = int(int_arg(info, 1, "reps", 1, 1000)), threads = int(int_arg(info, 2, "threads", 1, kMaxThreads));
  constexpr int64_t kChunk = (int64_t(8) << 20) / 4;  // floats per chunk
  const int64_t n = mb * (1 << 20) / 4 / kChunk * kChunk;
  AlignedBuffer buf;
  // In huge pages, as the weights are (pack_weight.cpp): the same page walks per byte read.
  check(env, buf.allocate(size_t(n) * 4, "bandwidth probe buffer", true));
  float* data = reinterpret_cast<float*>(buf.data());
  for (int64_t i = 0; i < n; ++i) data[i] = float(i & 7);
  ThreadPool pool(threads);
  std::vector<float> sink(threads);
  const int widths = threads > 1 ? 2 : 1;  // all threads, then one fewer
  std::vector<std::vector<double>> gbps(size_t(widths) * cpu::kReadMethods);
  for (int r = 0; r < reps; ++r)
    for (int w = 0; w < widths; ++w)
      // One region for all chunks with a barrier after each, as benchMatmul times its calls, so
      // the probe and the kernels it judges pay the same synchronisation per timed piece.
      pool.run(
          [&](int ith, int nth) {
            for (int m = 0; m < cpu::kReadMethods; ++m)
              for (int64_t c = 0; c < n; c += kChunk) {
                const auto t0 = std::chrono::steady_clock::now();
                sink[ith] += read_probe(data + c, kChunk, ith, nth, cpu::ReadMethod(m));
                pool.barrier();
                if (ith == 0)
                  gbps[size_t(w) * cpu::kReadMethods + m].push_back(
                      double(kChunk) * 4 / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 1e9);
              }
          },
          threads - w);
  volatile float keep = sink[0];
  (void)keep;
  Napi::Array methods = Napi::Array::New(env);
  double top_median = 0, top_best = 0;
  size_t top = 0;
  for (size_t i = 0; i < gbps.size(); ++i) {
    std::sort(gbps[i].begin(), gbps[i].end());
    const double median = gbps[i][gbps[i].size() / 2], best = gbps[i].back();
    Napi::Object o = Napi::Object::New(env);
    o.Set("method", cpu::read_method_name(cpu::ReadMethod(i % cpu::kReadMethods)));
    o.Set("threads", threads - int(i / cpu::kReadMethods));
    o.Set("medianGBps", median);
    o.Set("bestGBps", best);
    methods.Set(uint32_t(i), o);
    if (median > top_median) top_median = median, top = i;
    top_best = std::max(top_best, best);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("medianGBps", top_median);
  out.Set("bestGBps", top_best);
  out.Set("method", cpu::read_method_name(cpu::ReadMethod(top % cpu::kReadMethods)));
  out.Set("threads", threads - int(top / cpu::kReadMethods));
  out.Set("methods", methods);
  return out;
}

}  // namespace

void register_kernel_bindings(Napi::Env env, Napi::Object exports) {
  Napi::Object k = Napi::Object::New(env);
  k.Set("matmul", Napi::Function::New(env, Matmul));
  k.Set("benchMatmul", Napi::Function::New(env, BenchMatmul));
  k.Set("getRows", Napi::Function::New(env, GetRows));
  k.Set("rmsNorm", Napi::Function::New(env, RmsNorm));
  k.Set("rope", Napi::Function::New(env, Rope));
  k.Set("swiglu", Napi::Function::New(env, Swiglu));
  k.Set("attention", Napi::Function::New(env, Attention));
  k.Set("benchAttention", Napi::Function::New(env, BenchAttention));
  k.Set("softmax", Napi::Function::New(env, Softmax));
  k.Set("vectorTopK", Napi::Function::New(env, VectorTopK));
  k.Set("hadamard", Napi::Function::New(env, Hadamard));
  k.Set("layerNorm", Napi::Function::New(env, LayerNorm));
  k.Set("add", Napi::Function::New(env, Add));
  k.Set("addBias", Napi::Function::New(env, AddBias));
  k.Set("quantizeAct", Napi::Function::New(env, QuantizeAct));
  k.Set("headMatmul", Napi::Function::New(env, HeadMatmul));
  k.Set("copyHeads", Napi::Function::New(env, CopyHeads));
  k.Set("readBandwidth", Napi::Function::New(env, ReadBandwidth));
  exports.Set("kernels", k);
}

}  // namespace tessera
