// Single-op entry points for the shared kernel harness (dev/kernels/harness.ts): each runs
// one CPU op on typed arrays through a ThreadPool of the requested size and returns fresh
// output, so tests can compare it with a float64 reference and benchmarks can time it.
// Every argument is validated here (types, lengths, ranges) before a kernel sees a pointer.
#include "addon/bindings.h"
#include "addon/kernel_args.h"
#include "core/argmax.h"
#include "cpu/cpu_executor.h"

namespace tessera {

namespace {

using namespace tessera::kernel_args;

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
  const size_t n = typed_length(info, 4, "tokens must be an Int32Array");
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

// swiglu(gate, up, nRows, dim, activation 0=silu 1=gelu 2=gpt-oss's clamped SwiGLU, threads)
Napi::Value Swiglu(const Napi::CallbackInfo& info) {
  const int n_rows = int(int_arg(info, 2, "nRows", 1, kMaxDim)), dim = int(int_arg(info, 3, "dim", 1, kMaxDim));
  const float* g = array_arg<float, napi_float32_array>(info, 0, "gate", size_t(n_rows) * dim);
  const float* u = array_arg<float, napi_float32_array>(info, 1, "up", size_t(n_rows) * dim);
  const auto act = static_cast<GateActivation>(int_arg(info, 4, "activation", 0, 2));
  const int threads = int(int_arg(info, 5, "threads", 1, kMaxThreads));
  auto y = new_output(info.Env(), size_t(n_rows) * dim);
  float* yd = y.Data();
  ThreadPool(threads).run([&](int ith, int nth) { swiglu(g, u, yd, n_rows, dim, dim, dim, act, ith, nth); });
  return y;
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
  const size_t n = typed_length(info, 0, "x must be a Float32Array");
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
  const int block = f == ActFormat::Q8_0 || f == ActFormat::Q8_1 ? QK8_0 : f == ActFormat::Q8_K ? QK_K : 1;
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
  const size_t x_len = typed_length(info, 0, "x must be a Float32Array");
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
  const size_t n = typed_length(info, 0, "x must be a Float32Array");
  if (n == 0) invalid(info.Env(), "x must not be empty");
  const float* x = array_arg<float, napi_float32_array>(info, 0, "x", n);
  auto y = new_output(info.Env(), n);
  std::copy(x, x + n, y.Data());
  softmax(y.Data(), int(n));
  return y;
}

// argmax(x) -> the index of x's largest value, lowest on ties (core/argmax.h, the engine's greedy pick)
Napi::Value Argmax(const Napi::CallbackInfo& info) {
  const size_t n = typed_length(info, 0, "x must be a Float32Array");
  const float* x = array_arg<float, napi_float32_array>(info, 0, "x", n);
  return Napi::Number::New(info.Env(), argmax_f32(x, n));
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

// weightTypeTable() -> [{ name, type, activation, repacked, layouts: { avx2, avx512vnni } }]: the rows of core/weight_types.h
//   as the CPU kernels use them (the activation format a type's dot product takes, and
//   whether pack_weight repacks it on AVX2 or AVX-512 VNNI), so the tests pick references and layouts by the table
//   rather than by lists of their own.
Napi::Value WeightTypeTable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
#define TESSERA_WEIGHT_TYPE_ROW(t, act, layout, layout512)                            \
  {                                                                                   \
    Napi::Object row = Napi::Object::New(env);                                        \
    row.Set("name", ggml_type_traits(GgmlType::t).name);                              \
    row.Set("type", int(GgmlType::t));                                                \
    row.Set("activation", #act);                                                      \
    row.Set("repacked", WeightLayout::layout != WeightLayout::Gguf ||                 \
                            WeightLayout::layout512 != WeightLayout::Gguf);                     \
    Napi::Object layouts = Napi::Object::New(env);                                    \
    layouts.Set("avx2", #layout);                                                     \
    layouts.Set("avx512vnni", #layout512);                                            \
    row.Set("layouts", layouts);                                                      \
    out.Set(out.Length(), row);                                                       \
  }
  TESSERA_WEIGHT_TYPES(TESSERA_WEIGHT_TYPE_ROW)
#undef TESSERA_WEIGHT_TYPE_ROW
  return out;
}

// chooseThreads(threads, nsAll[n], nsFewer[n]) -> picks[n]: the executor's ThreadChooser over
//   n one-row steps, step i costing nsAll[i] on all threads and nsFewer[i] on one fewer, so
//   tests can follow its picks and tries through a scripted load.
Napi::Value ChooseThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int threads = int(int_arg(info, 0, "threads", 1, kMaxThreads));
  const size_t n = typed_length(info, 1, "nsAll has the wrong type");
  const double* all = array_arg<double, napi_float64_array>(info, 1, "nsAll", n);
  const double* fewer = array_arg<double, napi_float64_array>(info, 2, "nsFewer", n);
  Napi::Int32Array picks = Napi::Int32Array::New(env, n);
  cpu::ThreadChooser chooser(threads);
  for (size_t i = 0; i < n; ++i) {
    const int t = chooser.pick(1);
    chooser.record(1, t, t == threads ? all[i] : fewer[i]);
    picks[i] = t;
  }
  return picks;
}

}  // namespace

void register_kernel_bindings(Napi::Env env, Napi::Object exports) {
  Napi::Object k = Napi::Object::New(env);
  k.Set("matmul", Napi::Function::New(env, Matmul));
  k.Set("getRows", Napi::Function::New(env, GetRows));
  k.Set("rmsNorm", Napi::Function::New(env, RmsNorm));
  k.Set("rope", Napi::Function::New(env, Rope));
  k.Set("swiglu", Napi::Function::New(env, Swiglu));
  k.Set("attention", Napi::Function::New(env, Attention));
  k.Set("softmax", Napi::Function::New(env, Softmax));
  k.Set("argmax", Napi::Function::New(env, Argmax));
  k.Set("vectorTopK", Napi::Function::New(env, VectorTopK));
  k.Set("hadamard", Napi::Function::New(env, Hadamard));
  k.Set("layerNorm", Napi::Function::New(env, LayerNorm));
  k.Set("add", Napi::Function::New(env, Add));
  k.Set("addBias", Napi::Function::New(env, AddBias));
  k.Set("quantizeAct", Napi::Function::New(env, QuantizeAct));
  k.Set("headMatmul", Napi::Function::New(env, HeadMatmul));
  k.Set("copyHeads", Napi::Function::New(env, CopyHeads));
  k.Set("weightTypeTable", Napi::Function::New(env, WeightTypeTable));
  k.Set("chooseThreads", Napi::Function::New(env, ChooseThreads));
  register_bench_bindings(env, k);
  register_ssm_kernel_bindings(env, k);
  exports.Set("kernels", k);
}

}  // namespace tessera
