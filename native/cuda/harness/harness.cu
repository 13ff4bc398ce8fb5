// CUDA kernel harness: every CUDA op on fresh random inputs against a reference, by relative
// error (||got - ref|| / ||ref||) with a budget per op and type, then timed with CUDA events
// (median of many runs, inputs rotated through copies larger than the L2 cache so weights
// and KV rows stream from device memory). Exits 1 when any check fails.
//  - Matmuls are checked twice: against a float64 product of exactly what the kernel
//    consumed (the staged activations it read, weights rounded to fp16 where the GEMM does),
//    which isolates the kernel's own arithmetic (tight budgets), and against the float64
//    product of the original fp32 activations (the end-to-end error of q8 / fp16 staging).
//  - Weight decoding and staging are checked exactly; RoPE, norms and the KV store against
//    the CPU engine's ops (the behaviour the CUDA backend must reproduce); attention against
//    a float64 softmax.
// Built by scripts/cuda-harness.sh (GPU) or scripts/cuda-emulated.sh (CPU emulator: smaller
// shapes, no timing).
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

#include "cpu/ops.h"
#include "cuda/matrix_layout.h"
#include "cuda/ops.cuh"

using namespace tessera;
using namespace tessera::cuda;

namespace {

#ifdef TESSERA_CUDA_EMULATOR
constexpr bool kEmulated = true;
#else
constexpr bool kEmulated = false;
#endif

int g_failures = 0;
// Fresh inputs every run; the seed is printed so a failure can be replayed (TESSERA_SEED).
std::mt19937 g_rng;

bool cuda_ok(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return true;
  std::printf("CUDA error in %s: %s\n", what, cudaGetErrorString(e));
  ++g_failures;
  return false;
}

float gauss() { return std::normal_distribution<float>(0.f, 1.f)(g_rng); }
int uniform_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(g_rng); }

std::vector<float> gauss_vector(size_t n, float scale = 1.f) {
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

double rel_error(const std::vector<float>& got, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = double(got[i]) - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  if (!std::isfinite(num)) return INFINITY;
  return std::sqrt(num / std::max(den, 1e-300));
}

void report(const std::string& name, double err, double budget) {
  const bool ok = err <= budget;
  if (!ok) ++g_failures;
  std::printf("  %-66s rel err %9.2e (budget %.0e) %s\n", name.c_str(), err, budget, ok ? "ok" : "FAIL");
}

void report_exact(const std::string& name, size_t mismatches, size_t total) {
  if (mismatches) ++g_failures;
  std::printf("  %-66s %zu/%zu differ %s\n", name.c_str(), mismatches, total, mismatches ? "FAIL" : "ok");
}

const char* type_name(GgmlType t) { return ggml_type_traits(t).name; }

// Random well-formed GGUF rows: values ~ N(0, 1/cols) for float types; random quants with
// scales that give weights of about that size for the block types.
std::vector<uint8_t> random_gguf_rows(GgmlType type, int64_t rows, int64_t cols) {
  const size_t rb = ggml_row_bytes(type, cols);
  std::vector<uint8_t> out(rb * rows);
  for (uint8_t& b : out) b = uint8_t(g_rng());
  const float sigma = 1.f / std::sqrt(float(cols));
  auto put16 = [&](size_t at, uint16_t v) { std::memcpy(out.data() + at, &v, 2); };
  auto jitter = [&]() { return 0.5f + 0.01f * float(uniform_int(0, 100)); };
  for (int64_t r = 0; r < rows; ++r) {
    const size_t base = size_t(r) * rb;
    switch (type) {
      case GgmlType::F32:
        for (int64_t i = 0; i < cols; ++i) {
          const float v = gauss() * sigma;
          std::memcpy(out.data() + base + 4 * i, &v, 4);
        }
        break;
      case GgmlType::F16:
        for (int64_t i = 0; i < cols; ++i) put16(base + 2 * i, fp32_to_fp16(gauss() * sigma));
        break;
      case GgmlType::BF16:
        for (int64_t i = 0; i < cols; ++i) put16(base + 2 * i, fp32_to_bf16(gauss() * sigma));
        break;
      case GgmlType::Q8_0:
        for (int64_t b = 0; b < cols / 32; ++b) put16(base + b * 34, fp32_to_fp16(sigma / 70.f * jitter()));
        break;
      case GgmlType::Q4_0:
        for (int64_t b = 0; b < cols / 32; ++b) put16(base + b * 18, fp32_to_fp16(sigma / 4.f * jitter()));
        break;
      case GgmlType::Q4_K:
        for (int64_t b = 0; b < cols / 256; ++b) {
          put16(base + b * 144, fp32_to_fp16(sigma / 120.f * jitter()));
          put16(base + b * 144 + 2, fp32_to_fp16(sigma / 60.f * jitter()));
        }
        break;
      case GgmlType::Q6_K:
        for (int64_t b = 0; b < cols / 256; ++b) {
          put16(base + b * 210 + 208, fp32_to_fp16(sigma / 500.f * jitter()));
          for (int s = 0; s < 16; ++s) out[base + b * 210 + 192 + s] = uint8_t(int8_t(uniform_int(-60, 60)));
        }
        break;
      default: break;
    }
  }
  return out;
}

std::vector<float> dequantize(GgmlType type, const std::vector<uint8_t>& bytes, int64_t rows, int64_t cols) {
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

float half_value(uint16_t h) { return fp16_to_fp32(h); }
uint16_t half_sat(float v) { return fp32_to_fp16(std::fmin(std::fmax(v, -65504.f), 65504.f)); }

// ---------------------------------------------------------------- weight decoding

void check_get_rows(GgmlType type, int64_t vocab, int64_t cols, int n) {
  const auto gguf = random_gguf_rows(type, vocab, cols);
  const auto w = dequantize(type, gguf, vocab, cols);
  DevMatrix dm(type, gguf, vocab, cols);
  std::vector<int32_t> tokens(n);
  for (int32_t& t : tokens) t = uniform_int(0, int(vocab) - 1);
  tokens[0] = int32_t(vocab) - 1;
  Dev<int32_t> dtok(tokens);
  for (float scale : {0.f, 1.7f}) {
    Dev<float> out(size_t(n) * cols);
    launch_get_rows(dm.m, dtok.get(), n, scale, out.get(), nullptr);
    const auto got = out.download();
    size_t bad = 0;
    for (int t = 0; t < n; ++t)
      for (int64_t c = 0; c < cols; ++c) {
        const float want = w[size_t(tokens[t]) * cols + c] * (scale != 0.f ? scale : 1.f);
        if (got[size_t(t) * cols + c] != want) ++bad;
      }
    report_exact(std::string("get_rows ") + type_name(type) + " " + std::to_string(vocab) + "x" + std::to_string(cols) +
                     " n=" + std::to_string(n) + (scale != 0.f ? " scaled" : "") + " (== CPU dequantize)",
                 bad, size_t(n) * cols);
  }
}

// ---------------------------------------------------------------- staging

constexpr unsigned kAllFormats = kStageQ8 | kStageF32 | kStageF16;

void check_copy_stage(int rows, int dim) {
  auto x = gauss_vector(size_t(rows) * dim, 3.f);
  x[0] = 70000.f;  // past the fp16 range: must saturate
  for (int i = 0; i < std::min(dim, 32); ++i) x[size_t(rows - 1) * dim + i] = 0.f;  // an all-zero chunk
  Dev<float> dx(x);
  DevStage st(rows, dim);
  launch_copy_stage(dx.get(), dim, rows, dim, kAllFormats, st.act, nullptr);
  const auto q8 = st.q8.download();
  const auto ds = st.ds.download();
  const auto f32 = st.f32.download();
  const auto f16 = st.f16.download();
  size_t bad_f32 = 0, bad_f16 = 0, bad_q8 = 0;
  const int64_t c32 = st.cols32;
  for (int r = 0; r < rows; ++r)
    for (int64_t c = 0; c < c32; ++c) {
      const float v = c < dim ? x[size_t(r) * dim + c] : 0.f;
      if (f32[r * c32 + c] != v) ++bad_f32;
      if (f16[r * c32 + c] != half_sat(v)) ++bad_f16;
    }
  for (int r = 0; r < rows; ++r)
    for (int64_t k = 0; k < c32 / 32; ++k) {
      const float2 e = ds[r * (c32 / 32) + k];
      int sum = 0;
      float amax = 0.f;
      for (int i = 0; i < 32; ++i) {
        const int64_t c = 32 * k + i;
        const float v = c < dim ? x[size_t(r) * dim + c] : 0.f;
        amax = std::max(amax, std::fabs(v));
        const int q = q8[r * c32 + c];
        sum += q;
        if (std::fabs(q * e.x - v) > 0.5f * e.x * 1.0001f + 1e-30f) ++bad_q8;
      }
      if (std::fabs(e.x - amax / 127.f) > 1e-6f * amax || std::fabs(e.y - e.x * sum) > 1e-5f * (std::fabs(e.y) + 1e-20f))
        ++bad_q8;
    }
  const std::string shape = std::to_string(rows) + "x" + std::to_string(dim);
  report_exact("stage f32 " + shape + " (exact, zero padded)", bad_f32, size_t(rows) * c32);
  report_exact("stage f16 " + shape + " (round to nearest, saturating)", bad_f16, size_t(rows) * c32);
  report_exact("stage q8 " + shape + " (|q d - x| <= d/2, d = amax/127, sums)", bad_q8, size_t(rows) * c32);
}

// A kernel that stages its own output (norm, SwiGLU, the attention combine) must write
// exactly what copy_stage writes for the fp32 values it staged: q8 values, scales and sums
// and fp16 bit for bit.
void check_staged_like_copy(const std::string& name, const DevStage& st, int rows) {
  const auto f32 = st.f32.download();
  Dev<float> dx(f32);
  DevStage copy(rows, st.cols32);
  launch_copy_stage(dx.get(), st.cols32, rows, int(st.cols32), kAllFormats, copy.act, nullptr);
  const auto q8 = st.q8.download(), q8_copy = copy.q8.download();
  const auto f16 = st.f16.download(), f16_copy = copy.f16.download();
  const auto ds = st.ds.download(), ds_copy = copy.ds.download();
  size_t bad = 0;
  for (size_t i = 0; i < q8.size(); ++i) bad += q8[i] != q8_copy[i] || f16[i] != f16_copy[i];
  for (size_t i = 0; i < ds.size(); ++i)
    bad += std::memcmp(&ds[i], &ds_copy[i], sizeof(float2)) != 0;
  report_exact(name + " q8/f16 == copy_stage of its f32", bad, q8.size() + ds.size());
}

void check_norm_stage(NormKind kind, int rows, int dim, bool affine) {
  const auto x = gauss_vector(size_t(rows) * dim, 2.f);
  std::vector<float> w(dim), b(dim);
  for (float& e : w) e = 1.f + 0.3f * gauss();
  for (float& e : b) e = 0.2f * gauss();
  Dev<float> dx(x), dw(w), db(b);
  DevStage st(rows, dim);
  launch_norm_stage(dx.get(), dim, rows, dim, kind, affine ? dw.get() : nullptr, affine ? db.get() : nullptr, 1e-5f,
                    kAllFormats, st.act, nullptr);
  const auto got32 = st.f32.download();
  std::vector<float> got(size_t(rows) * dim);
  std::vector<double> ref(got.size());
  for (int r = 0; r < rows; ++r) {
    const float* xr = &x[size_t(r) * dim];
    double mean = 0, ss = 0;
    if (kind == NormKind::Layer) {
      for (int i = 0; i < dim; ++i) mean += xr[i];
      mean /= dim;
    }
    for (int i = 0; i < dim; ++i) ss += (xr[i] - mean) * (xr[i] - mean);
    const double scale = 1 / std::sqrt(ss / dim + 1e-5);
    for (int i = 0; i < dim; ++i) {
      double y = (xr[i] - mean) * scale;
      if (affine) {
        y *= w[i];
        if (kind == NormKind::Layer) y += b[i];
      }
      ref[size_t(r) * dim + i] = y;
      got[size_t(r) * dim + i] = got32[r * st.cols32 + i];
    }
  }
  const std::string name = std::string(kind == NormKind::Rms ? "rms_norm" : "layer_norm") + (affine ? "+affine" : "") +
                           " stage " + std::to_string(rows) + "x" + std::to_string(dim);
  report(name, rel_error(got, ref), 2e-6);
  check_staged_like_copy(name, st, rows);
}

void check_swiglu_stage(int rows, int ff, GateActivation act) {
  const auto gu = gauss_vector(size_t(rows) * 2 * ff, 2.f);
  Dev<float> dgu(gu);
  DevStage st(rows, ff);
  launch_swiglu_stage(dgu.get(), rows, ff, act, kAllFormats, st.act, nullptr);
  const auto got32 = st.f32.download();
  std::vector<float> got(size_t(rows) * ff);
  std::vector<double> ref(got.size());
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < ff; ++i) {
      const double g = gu[size_t(r) * 2 * ff + i], u = gu[size_t(r) * 2 * ff + ff + i];
      const double a = act == GateActivation::Silu ? g / (1 + std::exp(-g))
                                                   : 0.5 * g * (1 + std::tanh(0.7978845608028654 * g * (1 + 0.044715 * g * g)));
      ref[size_t(r) * ff + i] = a * u;
      got[size_t(r) * ff + i] = got32[r * st.cols32 + i];
    }
  const std::string name =
      std::string(act == GateActivation::Silu ? "swiglu" : "geglu") + " stage " + std::to_string(rows) + "x" + std::to_string(ff);
  report(name, rel_error(got, ref), 5e-6);
  check_staged_like_copy(name, st, rows);
}

// ---------------------------------------------------------------- matmul

struct MatmulCase {
  GgmlType type;
  int64_t rows, cols;
  int n;
  bool epilogue = false;  // bias + accumulate (+ a soft-capped variant)
  bool gemv = false;      // launch_gemv whatever n (groups of 8 tokens), as the MoE router
};

void check_matmul(const MatmulCase& mc) {
  const int64_t rows = mc.rows, cols = mc.cols;
  const int n = mc.n;
  const auto gguf = random_gguf_rows(mc.type, rows, cols);
  const auto w = dequantize(mc.type, gguf, rows, cols);
  DevMatrix dm(mc.type, gguf, rows, cols);
  const auto x = gauss_vector(size_t(n) * cols);
  Dev<float> dx(x);
  DevStage st(n, cols);
  const unsigned formats = mc.gemv ? gemv_formats_for(dm.m) : stage_formats_for(dm.m, n);
  launch_copy_stage(dx.get(), cols, n, int(cols), formats, st.act, nullptr);
  const auto matmul = [&](const MatmulOut& o) {
    if (mc.gemv) launch_gemv(dm.m, st.act, n, o, nullptr);
    else launch_matmul(dm.m, st.act, n, o, nullptr);
  };

  // What the kernel consumed: the staged activations, and fp16 weights in the GEMM.
  std::vector<double> x_eff(size_t(n) * cols);
  const int64_t c32 = st.cols32;
  if (formats & kStageQ8) {
    const auto q8 = st.q8.download();
    const auto ds = st.ds.download();
    for (int t = 0; t < n; ++t)
      for (int64_t c = 0; c < cols; ++c) x_eff[t * cols + c] = double(q8[t * c32 + c]) * ds[t * (c32 / 32) + c / 32].x;
  } else if (formats & kStageF16) {
    const auto f16 = st.f16.download();
    for (int t = 0; t < n; ++t)
      for (int64_t c = 0; c < cols; ++c) x_eff[t * cols + c] = half_value(f16[t * c32 + c]);
  } else {
    for (size_t i = 0; i < x_eff.size(); ++i) x_eff[i] = x[i];
  }
  const bool gemm = formats & kStageF16;

  std::vector<float> bias(rows), y0(size_t(n) * rows);
  for (float& e : bias) e = gauss();
  for (float& e : y0) e = gauss();
  Dev<float> dbias(bias), dy(size_t(n) * rows);
  dy.upload(y0);
  MatmulOut out;
  out.y = dy.get();
  out.ldy = rows;
  if (mc.epilogue) {
    out.bias = dbias.get();
    out.accumulate = true;
  }
  matmul(out);
  const auto got = dy.download();

  std::vector<double> tight(size_t(n) * rows), exact(size_t(n) * rows);
  for (int t = 0; t < n; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      double s_tight = 0, s_exact = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const float wv = w[r * cols + c];
        s_tight += double(gemm ? half_value(half_sat(wv)) : wv) * x_eff[t * cols + c];
        s_exact += double(wv) * x[t * cols + c];
      }
      const double add = mc.epilogue ? double(y0[t * rows + r]) + bias[r] : 0.0;
      tight[t * rows + r] = s_tight + add;
      exact[t * rows + r] = s_exact + add;
    }
  const std::string name = std::string(gemm ? "gemm " : "gemv ") + type_name(mc.type) + " " + std::to_string(rows) + "x" +
                           std::to_string(cols) + " n=" + std::to_string(n) + (mc.epilogue ? " +bias+acc" : "") +
                           (mc.gemv && n > 8 ? " (groups of 8)" : "");
  report(name + " vs consumed inputs", rel_error(got, tight), gemm ? 2e-5 : 2e-6);
  const bool q8 = formats & kStageQ8;
  report(name + " vs fp32 inputs", rel_error(got, exact), q8 ? 2e-2 : (gemm ? 4e-3 : 2e-6));

  if (mc.epilogue) {  // soft-capped logits
    MatmulOut capped;
    capped.y = dy.get();
    capped.ldy = rows;
    capped.softcap = 3.f;
    matmul(capped);
    const auto got_cap = dy.download();
    std::vector<double> ref_cap(tight.size());
    for (int t = 0; t < n; ++t)
      for (int64_t r = 0; r < rows; ++r) {
        const double v = tight[t * rows + r] - double(y0[t * rows + r]) - bias[r];
        ref_cap[t * rows + r] = 3.0 * std::tanh(v / 3.0);
      }
    report(name + " softcap 3", rel_error(got_cap, ref_cap), 2e-5);
  }
}

// ---------------------------------------------------------------- mixture of experts

struct RouteCase {
  int n_tokens, n_expert, k;
  ExpertGating gating;
  bool norm_top_k, bias;
  float scale;
  int n_group, n_group_used;
};

std::string route_name(const RouteCase& c) {
  std::string s = "moe_route " + std::string(c.gating == ExpertGating::Softmax ? "softmax" : "sigmoid") + " n=" +
                  std::to_string(c.n_tokens) + " top-" + std::to_string(c.k) + "/" + std::to_string(c.n_expert);
  if (c.norm_top_k) s += " norm";
  if (c.bias) s += " +bias";
  if (c.scale != 1.f) s += " scale";
  if (c.n_group > 1) s += " groups " + std::to_string(c.n_group_used) + "/" + std::to_string(c.n_group);
  return s;
}

// Against the CPU router (moe_route.cpp) on the same logits: expert ids exactly, weights by
// relative error (the probabilities' exp differs in the last bits).
void check_moe_route(const RouteCase& c) {
  MoeParams p;
  p.n_expert = c.n_expert;
  p.n_expert_used = c.k;
  p.gating = c.gating;
  p.norm_top_k = c.norm_top_k;
  p.weights_scale = c.scale;
  p.n_group = c.n_group;
  p.n_group_used = c.n_group_used;
  const int64_t ld = c.n_expert + 3;  // a strided logits buffer, as with the shared-expert gate column
  const auto logits = gauss_vector(size_t(c.n_tokens) * ld, 2.f);
  const auto bias = gauss_vector(size_t(c.n_expert), 0.3f);
  Dev<float> dl(logits), db(bias), dw(size_t(c.n_tokens) * c.k);
  Dev<int32_t> de(size_t(c.n_tokens) * c.k);
  MoeRouteArgs a;
  a.logits = dl.get();
  a.ld = ld;
  a.selection_bias = c.bias ? db.get() : nullptr;
  a.params = p;
  a.n_tokens = c.n_tokens;
  a.experts = de.get();
  a.weights = dw.get();
  launch_moe_route(a, nullptr);
  const auto got_e = de.download();
  const auto got_w = dw.download();
  std::vector<int32_t> ref_e(got_e.size());
  std::vector<float> ref_w(got_w.size()), scratch(2 * size_t(c.n_expert));
  for (int t = 0; t < c.n_tokens; ++t)
    cpu::moe_route(&logits[size_t(t) * ld], c.bias ? bias.data() : nullptr, p, &ref_e[size_t(t) * c.k],
                   &ref_w[size_t(t) * c.k], scratch.data());
  size_t bad = 0;
  for (size_t i = 0; i < ref_e.size(); ++i) bad += got_e[i] != ref_e[i];
  report_exact(route_name(c) + " experts (== CPU)", bad, ref_e.size());
  report(route_name(c) + " weights (vs CPU)", rel_error(got_w, std::vector<double>(ref_w.begin(), ref_w.end())), 1e-5);
}

// Distinct random experts per token (as a router picks them).
std::vector<int32_t> random_routing(int n_tokens, int k, int n_expert) {
  std::vector<int32_t> e(size_t(n_tokens) * k);
  for (int t = 0; t < n_tokens; ++t)
    for (int j = 0; j < k; ++j) {
      int32_t v;
      bool dup;
      do {
        v = uniform_int(0, n_expert - 1);
        dup = false;
        for (int i = 0; i < j; ++i) dup |= e[size_t(t) * k + i] == v;
      } while (dup);
      e[size_t(t) * k + j] = v;
    }
  return e;
}

struct MoeMatmulCase {
  GgmlType type;
  int n_expert, k;
  int64_t rows, cols;  // per expert and part
  int parts;           // 2: gate and up side by side
  int n_tokens;
  bool token_rows;     // inputs per token (gate/up: in_div = k) or per pair (down)
};

// The grouped expert product against float64 of the experts' dequantized rows, like
// check_matmul: once with what the kernel consumed (staged activations, fp16 weights in the
// GEMM), once with the fp32 activations. The GEMM path also checks the grouping itself.
void check_moe_matmul(const MoeMatmulCase& mc) {
  const int pairs = mc.n_tokens * mc.k, in_div = mc.token_rows ? mc.k : 1;
  const int in_rows = mc.token_rows ? mc.n_tokens : pairs;
  const int64_t rows = mc.rows, cols = mc.cols, out_w = mc.parts * rows;
  std::vector<std::vector<float>> w;
  std::vector<std::unique_ptr<DevMatrix>> dm;
  ExpertWeights ew;
  ew.parts = mc.parts;
  ew.rows = rows;
  for (int i = 0; i < mc.parts; ++i) {
    const auto gguf = random_gguf_rows(mc.type, mc.n_expert * rows, cols);
    w.push_back(dequantize(mc.type, gguf, mc.n_expert * rows, cols));
    dm.push_back(std::make_unique<DevMatrix>(mc.type, gguf, mc.n_expert * rows, cols));
    ew.part[i] = dm.back()->m;
  }
  const auto experts = random_routing(mc.n_tokens, mc.k, mc.n_expert);
  const auto x = gauss_vector(size_t(in_rows) * cols);
  Dev<float> dx(x);
  Dev<int32_t> de(experts), dorder(static_cast<size_t>(pairs)), dcount(1);
  Dev<int4> dtiles(size_t(moe_max_tiles(pairs, mc.n_expert)));
  DevStage st(in_rows, cols);
  const unsigned formats = stage_formats_for(ew.part[0], mc.n_tokens);
  launch_copy_stage(dx.get(), cols, in_rows, int(cols), formats, st.act, nullptr);
  const bool gemm = matmul_uses_gemm(mc.n_tokens);
  MoeMatmul mm;
  mm.experts = de.get();
  mm.groups = {dorder.get(), dtiles.get(), dcount.get()};
  mm.n_tokens = mc.n_tokens;
  mm.k = mc.k;
  mm.n_expert = mc.n_expert;
  mm.in_div = in_div;
  const std::string name = std::string(gemm ? "moe_gemm " : "moe_gemv ") + type_name(mc.type) + " " +
                           std::to_string(mc.n_expert) + "x" + std::to_string(mc.parts) + "x" + std::to_string(rows) +
                           "x" + std::to_string(cols) + " n=" + std::to_string(mc.n_tokens) + " top-" +
                           std::to_string(mc.k) + (mc.token_rows ? " token rows" : " pair rows");
  if (gemm) {
    launch_moe_sort(de.get(), pairs, mc.n_expert, mm.groups, nullptr);
    const auto order = dorder.download();
    std::vector<int32_t> want;
    for (int e = 0; e < mc.n_expert; ++e)
      for (int p = 0; p < pairs; ++p)
        if (experts[p] == e) want.push_back(p);
    size_t bad = 0;
    for (int p = 0; p < pairs; ++p) bad += order[p] != want[p];
    report_exact(name + " sort order", bad, size_t(pairs));
  }
  Dev<float> dy(size_t(pairs) * out_w);
  MatmulOut out;
  out.y = dy.get();
  out.ldy = out_w;
  launch_moe_matmul(ew, mm, st.act, out, nullptr);
  const auto got = dy.download();

  std::vector<double> x_eff(size_t(in_rows) * cols);
  const int64_t c32 = st.cols32;
  if (formats & kStageQ8) {
    const auto q8 = st.q8.download();
    const auto ds = st.ds.download();
    for (int t = 0; t < in_rows; ++t)
      for (int64_t c = 0; c < cols; ++c) x_eff[t * cols + c] = double(q8[t * c32 + c]) * ds[t * (c32 / 32) + c / 32].x;
  } else if (formats & kStageF16) {
    const auto f16 = st.f16.download();
    for (int t = 0; t < in_rows; ++t)
      for (int64_t c = 0; c < cols; ++c) x_eff[t * cols + c] = half_value(f16[t * c32 + c]);
  } else {
    for (size_t i = 0; i < x_eff.size(); ++i) x_eff[i] = x[i];
  }
  std::vector<double> tight(got.size()), exact(got.size());
  for (int p = 0; p < pairs; ++p)
    for (int64_t o = 0; o < out_w; ++o) {
      const int part = int(o / rows);
      const float* wr = &w[part][(size_t(experts[p]) * rows + o % rows) * cols];
      const int64_t in = p / in_div;
      double s_tight = 0, s_exact = 0;
      for (int64_t c = 0; c < cols; ++c) {
        s_tight += double(gemm ? half_value(half_sat(wr[c])) : wr[c]) * x_eff[in * cols + c];
        s_exact += double(wr[c]) * x[in * cols + c];
      }
      tight[size_t(p) * out_w + o] = s_tight;
      exact[size_t(p) * out_w + o] = s_exact;
    }
  report(name + " vs consumed inputs", rel_error(got, tight), gemm ? 2e-5 : 2e-6);
  report(name + " vs fp32 inputs", rel_error(got, exact), (formats & kStageQ8) ? 2e-2 : (gemm ? 4e-3 : 2e-6));
}

void check_moe_combine(int n_tokens, int dim, int k, bool shared, bool gated) {
  const auto x0 = gauss_vector(size_t(n_tokens) * dim);
  const auto wts = gauss_vector(size_t(n_tokens) * k, 0.5f);
  const auto eo = gauss_vector(size_t(n_tokens) * k * dim);
  const auto so = gauss_vector(size_t(n_tokens) * dim);
  const int64_t ld_gate = 5;
  const auto gate = gauss_vector(size_t(n_tokens) * ld_gate, 2.f);
  Dev<float> dx(x0), dw(wts), deo(eo), dso(so), dg(gate);
  MoeCombine c;
  c.x = dx.get();
  c.n_tokens = n_tokens;
  c.dim = dim;
  c.k = k;
  c.weights = dw.get();
  c.expert_out = deo.get();
  c.shared_out = shared ? dso.get() : nullptr;
  c.shared_gate = gated ? dg.get() + 4 : nullptr;
  c.ld_gate = ld_gate;
  launch_moe_combine(c, nullptr);
  const auto got = dx.download();
  std::vector<double> ref(got.size());
  for (int t = 0; t < n_tokens; ++t)
    for (int i = 0; i < dim; ++i) {
      double s = 0;
      for (int j = 0; j < k; ++j) s += double(wts[size_t(t) * k + j]) * eo[(size_t(t) * k + j) * dim + i];
      if (shared) s += (gated ? 1 / (1 + std::exp(-double(gate[size_t(t) * ld_gate + 4]))) : 1.0) * so[size_t(t) * dim + i];
      ref[size_t(t) * dim + i] = x0[size_t(t) * dim + i] + s;
    }
  report("moe_combine n=" + std::to_string(n_tokens) + " dim=" + std::to_string(dim) + " top-" + std::to_string(k) +
             (shared ? (gated ? " +gated shared" : " +shared") : ""),
         rel_error(got, ref), 2e-6);
}

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

// ---------------------------------------------------------------- q/k/v post-processing

struct QkvCase {
  int n_tokens, n_head, n_head_kv, head_dim, pos0;
  RopeKind kind;
  RopeScaling scaling;
  bool qk_norm, freq_factors;
};

void check_qkv_post(const QkvCase& c) {
  const int hd = c.head_dim, hdv = c.head_dim;
  const PagedKv paged(c.n_head_kv, c.pos0 + c.n_tokens + 3, c.n_tokens);
  const int capacity = paged.capacity();
  const int64_t q_w = int64_t(c.n_head) * hd, k_w = int64_t(c.n_head_kv) * hd, ld = q_w + 2 * k_w + 5;
  const auto qkv = gauss_vector(size_t(c.n_tokens) * ld);
  RopeParams rp;
  rp.kind = c.kind;
  rp.n_dims = c.kind == RopeKind::None ? 0 : hd - 16;
  rp.freq_base = 10000.f;
  rp.scaling = c.scaling;
  rp.freq_scale = c.scaling == RopeScaling::None ? 1.f : 0.25f;
  rp.n_ctx_orig = 4096;
  rp.yarn_ext_factor = c.scaling == RopeScaling::Yarn ? 1.f : 0.f;
  rp.yarn_attn_factor = 1.f;
  rp.llama3_low_freq_factor = 1.f;
  rp.llama3_high_freq_factor = 4.f;
  std::vector<float> qn(hd), kn(hd), factors(std::max(1, rp.n_dims / 2));
  for (float& e : qn) e = 1.f + 0.2f * gauss();
  for (float& e : kn) e = 1.f + 0.2f * gauss();
  for (float& e : factors) e = 1.f + float(uniform_int(0, 300)) / 100.f;
  std::vector<int32_t> pos(c.n_tokens);
  for (int t = 0; t < c.n_tokens; ++t) pos[t] = c.pos0 + t;
  const std::vector<uint16_t> sentinel(paged.elems(hd), 0x3C00);  // 1.0

  Dev<float> dqkv(qkv), dqn(qn), dkn(kn), dfac(factors);
  Dev<int32_t> dpos(pos);
  Dev<uint16_t> kc(sentinel), vc(sentinel);
  QkvPost p;
  p.qkv = dqkv.get();
  p.ldqkv = ld;
  p.n_tokens = c.n_tokens;
  p.n_head = c.n_head;
  p.n_head_kv = c.n_head_kv;
  p.head_dim = hd;
  p.head_dim_v = hdv;
  p.pos = dpos.get();
  p.q_norm = c.qk_norm ? dqn.get() : nullptr;
  p.k_norm = c.qk_norm ? dkn.get() : nullptr;
  p.norm_eps = 1e-6f;
  p.rope = rp;
  p.freq_factors = c.freq_factors ? dfac.get() : nullptr;
  p.kv = paged.kv(kc.get(), vc.get(), hd, hdv);
  launch_qkv_post(p, nullptr);
  const auto got_qkv = dqkv.download();
  const auto got_k = kc.download();
  const auto got_v = vc.download();

  // Reference: the CPU engine's ops on the same rows.
  std::vector<float> q(size_t(c.n_tokens) * q_w), k(size_t(c.n_tokens) * k_w);
  for (int t = 0; t < c.n_tokens; ++t) {
    std::copy(&qkv[t * ld], &qkv[t * ld] + q_w, &q[t * q_w]);
    std::copy(&qkv[t * ld + q_w], &qkv[t * ld + q_w] + k_w, &k[t * k_w]);
  }
  if (c.qk_norm) {
    cpu::rms_norm(q.data(), qn.data(), q.data(), c.n_tokens * c.n_head, hd, 1e-6f, 0, 1);
    cpu::rms_norm(k.data(), kn.data(), k.data(), c.n_tokens * c.n_head_kv, hd, 1e-6f, 0, 1);
  }
  if (c.kind != RopeKind::None) {
    const float* f = c.freq_factors ? factors.data() : nullptr;
    cpu::rope(q.data(), pos.data(), c.n_tokens, c.n_head, hd, rp, f, 0, 1);
    cpu::rope(k.data(), pos.data(), c.n_tokens, c.n_head_kv, hd, rp, f, 0, 1);
  }
  std::vector<float> got_q(q.size()), got_kf, got_vf;
  std::vector<double> ref_q(q.size()), ref_k, ref_v;
  for (int t = 0; t < c.n_tokens; ++t)
    for (int64_t i = 0; i < q_w; ++i) {
      got_q[t * q_w + i] = got_qkv[t * ld + i];
      ref_q[t * q_w + i] = q[t * q_w + i];
    }
  size_t untouched_bad = 0;
  for (int g = 0; g < c.n_head_kv; ++g)
    for (int j = 0; j < capacity; ++j) {
      const int t = j - c.pos0;
      for (int i = 0; i < hd; ++i) {
        const size_t at = paged.at(g, j, i, hd);
        if (t < 0 || t >= c.n_tokens) {
          untouched_bad += got_k[at] != 0x3C00 || got_v[at] != 0x3C00;
          continue;
        }
        // The cache holds fp16: compare with the reference rounded the same way (a rounding
        // flip from fp32 noise costs ~1e-5; a wrong element ~1).
        got_kf.push_back(half_value(got_k[at]));
        ref_k.push_back(half_value(fp32_to_fp16(k[size_t(t) * k_w + g * hd + i])));
        got_vf.push_back(half_value(got_v[at]));
        ref_v.push_back(half_value(fp32_to_fp16(qkv[size_t(t) * ld + q_w + k_w + g * hd + i])));
      }
    }
  const char* kinds[] = {"none", "normal", "neox"};
  const char* scalings[] = {"", " linear", " yarn", " llama3"};
  const std::string name = std::string("qkv_post rope ") + kinds[int(c.kind)] + scalings[int(c.scaling)] +
                           (c.freq_factors ? " +factors" : "") + (c.qk_norm ? " +qk_norm" : "") + " n=" +
                           std::to_string(c.n_tokens) + " hd=" + std::to_string(hd) + " pos0=" + std::to_string(c.pos0);
  report(name + " q (vs CPU ops)", rel_error(got_q, ref_q), 1e-6);
  report(name + " k cache", rel_error(got_kf, ref_k), 1e-4);
  report(name + " v cache", rel_error(got_vf, ref_v), 1e-6);
  report_exact(name + " other cache rows untouched", untouched_bad, size_t(c.n_head_kv) * capacity * hd);
}

// ---------------------------------------------------------------- multi-head latent attention

// mla_post against the CPU engine's ops as its MLA block applies them: RoPE of each head's
// q_pe and of k_pe (rows of nope + rope / kv_lora + rope values), RMSNorm of the latent.
void check_mla_post(int n_tokens, int n_head, int nope, int rope_dims, int kv_lora, int pos0) {
  const int64_t qk = nope + rope_dims, row_w = kv_lora + rope_dims;
  auto q = gauss_vector(size_t(n_tokens) * n_head * qk), kv = gauss_vector(size_t(n_tokens) * row_w, 2.f);
  std::vector<float> norm(kv_lora);
  for (float& e : norm) e = 1.f + 0.2f * gauss();
  RopeParams rp;
  rp.kind = RopeKind::Normal;
  rp.n_dims = rope_dims;
  rp.freq_base = 10000.f;
  rp.scaling = RopeScaling::Yarn;
  rp.freq_scale = 0.25f;
  rp.n_ctx_orig = 4096;
  rp.yarn_ext_factor = 1.f;
  rp.yarn_attn_factor = 1.f;
  std::vector<int32_t> pos(n_tokens);
  for (int t = 0; t < n_tokens; ++t) pos[t] = pos0 + 3 * t;  // not contiguous: rows land by position
  const float sentinel = 1234.5f;
  Dev<float> dq(q), dkv(kv), dnorm(norm), dmqa(std::vector<float>(size_t(n_tokens) * n_head * row_w, sentinel));
  Dev<int32_t> dpos(pos);
  const PagedKv paged(1, pos0 + 3 * n_tokens, n_tokens);
  Dev<uint16_t> cache(std::vector<uint16_t>(paged.elems(int(row_w)), 0x3C00));
  MlaPost p;
  p.q = dq.get();
  p.kv = dkv.get();
  p.n_tokens = n_tokens;
  p.n_head = n_head;
  p.nope = nope;
  p.rope_dims = rope_dims;
  p.kv_lora = kv_lora;
  p.pos = dpos.get();
  p.kv_norm = dnorm.get();
  p.norm_eps = 1e-6f;
  p.rope = rp;
  p.q_mqa = dmqa.get();
  p.cache = paged.kv(cache.get(), cache.get(), int(row_w), int(row_w));
  launch_mla_post(p, nullptr);
  const auto got_mqa = dmqa.download();
  const auto got_cache = cache.download();

  cpu::rope(q.data() + nope, pos.data(), n_tokens, n_head, int(qk), rp, nullptr, 0, 1);
  cpu::rope(kv.data() + kv_lora, pos.data(), n_tokens, 1, int(row_w), rp, nullptr, 0, 1);
  for (int t = 0; t < n_tokens; ++t) cpu::rms_norm(&kv[t * row_w], norm.data(), &kv[t * row_w], 1, kv_lora, 1e-6f, 0, 1);
  std::vector<float> got_q, got_k;
  std::vector<double> ref_q, ref_k;
  size_t untouched_bad = 0;
  for (int t = 0; t < n_tokens; ++t)
    for (int h = 0; h < n_head; ++h)
      for (int64_t i = 0; i < row_w; ++i) {
        const float g = got_mqa[(size_t(t) * n_head + h) * row_w + i];
        if (i < kv_lora) {
          untouched_bad += g != sentinel;  // the latent part is the head matmul's
        } else {
          got_q.push_back(g);
          ref_q.push_back(q[(size_t(t) * n_head + h) * qk + nope + (i - kv_lora)]);
        }
      }
  for (int64_t j = 0; j < paged.capacity(); ++j) {
    const int t = int(j - pos0) / 3;
    const bool stored = j >= pos0 && (j - pos0) % 3 == 0 && t < n_tokens;
    for (int64_t i = 0; i < row_w; ++i) {
      const uint16_t g = got_cache[paged.at(0, int(j), int(i), int(row_w))];
      if (!stored) {
        untouched_bad += g != 0x3C00;
        continue;
      }
      got_k.push_back(half_value(g));
      ref_k.push_back(kv[t * row_w + i]);
    }
  }
  const std::string name = "mla_post n=" + std::to_string(n_tokens) + " heads=" + std::to_string(n_head) + " nope=" +
                           std::to_string(nope) + " rope=" + std::to_string(rope_dims) + " latent=" + std::to_string(kv_lora);
  report(name + " q_pe (vs CPU ops)", rel_error(got_q, ref_q), 1e-6);
  report(name + " cache rows (vs CPU ops, fp16)", rel_error(got_k, ref_k), 1e-3);
  report_exact(name + " latent q part and other cache rows untouched", untouched_bad,
               size_t(n_tokens) * n_head * kv_lora + size_t(paged.capacity()) * row_w);
}

// launch_head_matmul: row p = t * n_head + h through head h's matrix, against float64 of
// the dequantized weights and the staged activations the kernel read.
void check_head_matmul(GgmlType type, int n_tokens, int n_head, int64_t rows, int64_t cols) {
  const int pairs = n_tokens * n_head;
  const auto gguf = random_gguf_rows(type, n_head * rows, cols);
  const auto w = dequantize(type, gguf, n_head * rows, cols);
  DevMatrix dm(type, gguf, n_head * rows, cols);
  ExpertWeights ew;
  ew.rows = rows;
  ew.part[0] = dm.m;
  std::vector<int32_t> heads(pairs);
  for (int p = 0; p < pairs; ++p) heads[p] = p % n_head;
  const auto x = gauss_vector(size_t(pairs) * cols);
  Dev<float> dx(x), dy(size_t(pairs) * rows + 7);
  Dev<int32_t> dheads(heads);
  DevStage st(pairs, cols);
  const unsigned formats = gemv_formats_for(ew.part[0]);
  launch_copy_stage(dx.get(), cols, pairs, int(cols), formats, st.act, nullptr);
  MatmulOut out;
  out.y = dy.get();
  out.ldy = rows;
  launch_head_matmul(ew, dheads.get(), pairs, st.act, out, nullptr);
  const auto y = dy.download();
  const auto q8 = st.q8.download();
  const auto ds = st.ds.download();
  const int64_t c32 = st.cols32;
  std::vector<float> got(size_t(pairs) * rows);
  std::vector<double> ref(got.size());
  for (int p = 0; p < pairs; ++p)
    for (int64_t r = 0; r < rows; ++r) {
      double acc = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const double a = formats == kStageQ8 ? double(q8[p * c32 + c]) * ds[p * (c32 / 32) + c / 32].x : x[size_t(p) * cols + c];
        acc += double(w[(size_t(p % n_head) * rows + r) * cols + c]) * a;
      }
      ref[size_t(p) * rows + r] = acc;
      got[size_t(p) * rows + r] = y[size_t(p) * rows + r];
    }
  report(std::string("head_matmul ") + type_name(type) + " tokens=" + std::to_string(n_tokens) + " heads=" +
             std::to_string(n_head) + " " + std::to_string(rows) + "x" + std::to_string(cols) + " (staged activations)",
         rel_error(got, ref), 2e-6);
}

// ---------------------------------------------------------------- attention

struct AttnCase {
  int n_tokens, n_ctx, n_head, n_head_kv, head_dim, head_dim_v, window;
  float softcap;
  bool flash;
  int splits;
  bool v_in_k = false;  // values are the first head_dim_v of each key row (MLA's latent cache)
};

void check_attention(const AttnCase& c) {
  const int hd = c.head_dim, hdv = c.head_dim_v;
  const PagedKv paged(c.n_head_kv, c.n_ctx + 5, c.n_tokens);
  const int capacity = paged.capacity();
  const int64_t ldq = int64_t(c.n_head) * hd + 24, ldo = int64_t(c.n_head) * hdv + 8;
  const auto q = gauss_vector(size_t(c.n_tokens) * ldq);
  std::vector<uint16_t> kc(paged.elems(hd)), vc(paged.elems(hdv));
  for (uint16_t& e : kc) e = fp32_to_fp16(gauss());
  for (uint16_t& e : vc) e = fp32_to_fp16(gauss());
  auto key = [&](int g, int j, int i) { return half_value(kc[paged.at(g, j, i, hd)]); };
  auto value = [&](int g, int j, int i) { return c.v_in_k ? key(g, j, i) : half_value(vc[paged.at(g, j, i, hdv)]); };
  // Rows past the context hold NaN: a kernel that reads them fails the check.
  for (int g = 0; g < c.n_head_kv; ++g)
    for (int j = c.n_ctx; j < capacity; ++j) {
      for (int i = 0; i < hd; ++i) kc[paged.at(g, j, i, hd)] = 0x7E00;
      for (int i = 0; i < hdv; ++i) vc[paged.at(g, j, i, hdv)] = 0x7E00;
    }
  std::vector<int32_t> pos(c.n_tokens);
  for (int t = 0; t < c.n_tokens; ++t) pos[t] = c.n_ctx - c.n_tokens + t;
  const float scale = 1.f / std::sqrt(float(hd));

  std::vector<double> ref(size_t(c.n_tokens) * c.n_head * hdv);
  for (int t = 0; t < c.n_tokens; ++t)
    for (int h = 0; h < c.n_head; ++h) {
      const int g = h / (c.n_head / c.n_head_kv);
      const int lo = c.window > 0 ? std::max(0, pos[t] - c.window + 1) : 0;
      std::vector<double> s;
      double mx = -1e300;
      for (int j = lo; j <= pos[t]; ++j) {
        double d = 0;
        for (int i = 0; i < hd; ++i)
          d += double(half_value(fp32_to_fp16(q[t * ldq + h * hd + i]))) * key(g, j, i);
        d *= scale;
        if (c.softcap != 0.f) d = c.softcap * std::tanh(d / c.softcap);
        s.push_back(d);
        mx = std::max(mx, d);
      }
      double z = 0;
      for (double& e : s) z += (e = std::exp(e - mx));
      for (int i = 0; i < hdv; ++i) {
        double acc = 0;
        for (int j = lo; j <= pos[t]; ++j) acc += s[j - lo] / z * value(g, j, i);
        ref[(size_t(t) * c.n_head + h) * hdv + i] = acc;
      }
    }

  Dev<float> dq(q), dout(size_t(c.n_tokens) * ldo), dpart(attention_partial_floats(c.n_tokens, c.n_head, hdv, c.splits));
  Dev<uint16_t> dk(kc), dv(vc);
  Dev<int32_t> dpos(pos);
  // Flash query tiles: runs of up to 64 rows (all of the one sequence).
  std::vector<int4> tiles;
  for (int t = 0; t < c.n_tokens; t += kFlashQueryTile) tiles.push_back(make_int4(t, std::min(kFlashQueryTile, c.n_tokens - t), 0, 0));
  Dev<int4> dtiles(tiles);
  AttentionArgs a;
  a.q = dq.get();
  a.ldq = ldq;
  a.kv = c.v_in_k ? paged.kv(dk.get(), dk.get(), hd, hd) : paged.kv(dk.get(), dv.get(), hd, hdv);
  a.tiles = dtiles.get();
  a.n_tiles = int(tiles.size());
  a.pos = dpos.get();
  a.n_tokens = c.n_tokens;
  a.n_head = c.n_head;
  a.n_head_kv = c.n_head_kv;
  a.head_dim = hd;
  a.head_dim_v = hdv;
  a.sliding_window = c.window;
  a.scale = scale;
  a.softcap = c.softcap;
  a.out = dout.get();
  a.ldo = ldo;
  a.partials = dpart.get();
  a.splits = c.splits;
  if (c.flash) launch_attention_flash(a, nullptr);
  else launch_attention_split(a, nullptr);
  const auto out = dout.download();
  std::vector<float> got(ref.size());
  for (int t = 0; t < c.n_tokens; ++t)
    for (int64_t i = 0; i < int64_t(c.n_head) * hdv; ++i) got[t * int64_t(c.n_head) * hdv + i] = out[t * ldo + i];
  const std::string name = std::string(c.flash ? "attention flash" : "attention split") + " tokens=" +
                           std::to_string(c.n_tokens) + " ctx=" + std::to_string(c.n_ctx) + " heads=" +
                           std::to_string(c.n_head) + "/" + std::to_string(c.n_head_kv) + " hd=" + std::to_string(hd) +
                           (hdv != hd ? "/" + std::to_string(hdv) : "") +
                           (c.flash ? "" : " splits=" + std::to_string(c.splits)) +
                           (c.window ? " window=" + std::to_string(c.window) : "") + (c.softcap != 0.f ? " softcap" : "") +
                           (c.v_in_k ? " v-in-k" : "");
  report(name, rel_error(got, ref), c.flash ? 3e-3 : 2e-5);
  if (c.flash || !attention_split_can_stage(hdv)) return;

  // The same attention with the combine staging its output: the f32 rows must be the
  // unstaged output, and the other formats what copy_stage makes of them.
  const int64_t width = int64_t(c.n_head) * hdv;
  DevStage st(c.n_tokens, width);
  a.stage_formats = kAllFormats;
  a.stage = st.act;
  launch_attention_split(a, nullptr);
  const auto staged = st.f32.download();
  size_t bad = 0;
  for (int t = 0; t < c.n_tokens; ++t)
    for (int64_t i = 0; i < width; ++i) bad += staged[t * width + i] != out[t * ldo + i];
  report_exact(name + " staged f32 == out", bad, size_t(c.n_tokens) * width);
  check_staged_like_copy(name + " staged", st, c.n_tokens);
}

// ---------------------------------------------------------------- timing (GPU only)

struct Timer {
  Timer() {
    cudaEventCreate(&a);
    cudaEventCreate(&b);
  }
  ~Timer() {
    cudaEventDestroy(a);
    cudaEventDestroy(b);
  }
  // Median milliseconds of `reps` runs of fn(i) after 5 warm-up runs.
  double median_ms(int reps, const std::function<void(int)>& fn) {
    for (int i = 0; i < 5; ++i) fn(i);
    std::vector<float> ms;
    for (int i = 0; i < reps; ++i) {
      cudaEventRecord(a);
      fn(i);
      cudaEventRecord(b);
      cudaEventSynchronize(b);
      float t = 0;
      cudaEventElapsedTime(&t, a, b);
      ms.push_back(t);
    }
    cuda_ok(cudaGetLastError(), "timed kernel");
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  }
  cudaEvent_t a, b;
};

size_t l2_bytes() {
  int v = 0;
  cudaDeviceGetAttribute(&v, cudaDevAttrL2CacheSize, 0);
  return size_t(std::max(v, 1 << 20));
}

// Copies of an input, enough that cycling through them never hits in L2.
int rotation_copies(size_t bytes) { return int(std::min<size_t>(64, 4 * l2_bytes() / std::max<size_t>(bytes, 1) + 2)); }

void time_matmul(GgmlType type, int64_t rows, int64_t cols, int n) {
  const auto gguf = random_gguf_rows(type, rows, cols);
  const MatrixLayout L = matrix_layout(type, rows, cols);
  std::vector<uint8_t> host(L.total, 0);
  repack_rows(type, cols, gguf.data(), rows, L, 0, host.data());
  const int copies = rotation_copies(L.total);
  std::vector<std::unique_ptr<Dev<uint8_t>>> bufs;
  for (int i = 0; i < copies; ++i) bufs.push_back(std::make_unique<Dev<uint8_t>>(host));
  const auto x = gauss_vector(size_t(n) * cols);
  Dev<float> dx(x), dy(size_t(n) * rows);
  DevStage st(n, cols);
  const unsigned formats = stage_formats_for(matrix_view(type, rows, cols, L, bufs[0]->get()), n);
  launch_copy_stage(dx.get(), cols, n, int(cols), formats, st.act, nullptr);
  MatmulOut out;
  out.y = dy.get();
  out.ldy = rows;
  Timer timer;
  const double ms = timer.median_ms(50, [&](int i) {
    launch_matmul(matrix_view(type, rows, cols, L, bufs[i % copies]->get()), st.act, n, out, nullptr);
  });
  const double gbs = double(L.total) / (ms * 1e-3) / 1e9, tflops = 2.0 * rows * cols * n / (ms * 1e-3) / 1e12;
  std::printf("  %-5s %-5s %6ldx%-6ld n=%-4d %8.4f ms  %7.1f GB/s  %7.2f TFLOP/s\n", n > 8 ? "gemm" : "gemv", type_name(type),
              long(rows), long(cols), n, ms, gbs, tflops);
}

// Qwen3-30B-A3B's expert block for one decode token (128 experts of 768 x 2048, 8 active): the
// grouped GEMVs' bandwidth on the active experts' bytes. Each step routes to a different set
// of 8 experts (16 disjoint sets cycle through all 128), so the weights stream from memory.
void time_moe_decode(GgmlType type) {
  constexpr int kExperts = 128, kUsed = 8, kSets = kExperts / kUsed;
  const int64_t ff = 768, dim = 2048;
  auto stacked = [&](int64_t rows, int64_t cols) {
    return std::make_unique<DevMatrix>(type, random_gguf_rows(type, kExperts * rows, cols), kExperts * rows, cols);
  };
  const auto gate = stacked(ff, dim), up = stacked(ff, dim), down = stacked(dim, ff);
  ExpertWeights gu, dn;
  gu.parts = 2;
  gu.rows = ff;
  gu.part[0] = gate->m;
  gu.part[1] = up->m;
  dn.rows = dim;
  dn.part[0] = down->m;
  std::vector<int32_t> perm(kExperts);
  for (int e = 0; e < kExperts; ++e) perm[e] = e;
  std::shuffle(perm.begin(), perm.end(), g_rng);
  std::vector<std::unique_ptr<Dev<int32_t>>> sets;
  for (int i = 0; i < kSets; ++i)
    sets.push_back(std::make_unique<Dev<int32_t>>(std::vector<int32_t>(perm.begin() + i * kUsed, perm.begin() + (i + 1) * kUsed)));
  const auto x = gauss_vector(size_t(dim)), h = gauss_vector(size_t(kUsed) * ff);
  Dev<float> dx(x), dh(h), dy_gu(size_t(kUsed) * 2 * ff), dy_dn(size_t(kUsed) * dim);
  DevStage sx(1, dim), sh(kUsed, ff);
  launch_copy_stage(dx.get(), dim, 1, int(dim), stage_formats_for(gu.part[0], 1), sx.act, nullptr);
  launch_copy_stage(dh.get(), ff, kUsed, int(ff), stage_formats_for(dn.part[0], 1), sh.act, nullptr);
  MatmulOut o_gu, o_dn;
  o_gu.y = dy_gu.get();
  o_gu.ldy = 2 * ff;
  o_dn.y = dy_dn.get();
  o_dn.ldy = dim;
  Timer timer;
  const double ms_gu = timer.median_ms(50, [&](int i) { launch_moe_gemv(gu, sets[i % kSets]->get(), kUsed, kUsed, sx.act, o_gu, nullptr); });
  const double ms_dn = timer.median_ms(50, [&](int i) { launch_moe_gemv(dn, sets[i % kSets]->get(), kUsed, 1, sh.act, o_dn, nullptr); });
  const double bytes_gu = double(gate->layout.total + up->layout.total) / kExperts * kUsed;
  const double bytes_dn = double(down->layout.total) / kExperts * kUsed;
  std::printf("  moe_gemv %-5s gate|up 8 of 128 x 1536x2048: %8.4f ms  %7.1f GB/s   down 8 of 128 x 2048x768: %8.4f ms  %7.1f GB/s\n",
              type_name(type), ms_gu, bytes_gu / (ms_gu * 1e-3) / 1e9, ms_dn, bytes_dn / (ms_dn * 1e-3) / 1e9);
}

// The staging kernels on one decode row (Llama-3-8B widths, q8 for a quantized GEMV): each
// runs once or twice per layer between the weight products, so its latency adds directly to
// a decode step's time.
void time_decode_staging() {
  const int dim = 4096, ff = 14336;
  const auto x = gauss_vector(size_t(2) * ff), w = gauss_vector(dim);
  Dev<float> dx(x), dw(w);
  DevStage st(1, ff);
  Timer timer;
  const double norm_ms = timer.median_ms(200, [&](int) {
    launch_norm_stage(dx.get(), dim, 1, dim, NormKind::Rms, dw.get(), nullptr, 1e-5f, kStageQ8, st.act, nullptr);
  });
  const double swiglu_ms =
      timer.median_ms(200, [&](int) { launch_swiglu_stage(dx.get(), 1, ff, GateActivation::Silu, kStageQ8, st.act, nullptr); });
  const double copy_ms = timer.median_ms(200, [&](int) { launch_copy_stage(dx.get(), dim, 1, dim, kStageQ8, st.act, nullptr); });
  std::printf("  staging one decode row (q8): rms_norm %d %6.1f us   swiglu %d %6.1f us   copy %d %6.1f us\n", dim,
              norm_ms * 1e3, ff, swiglu_ms * 1e3, dim, copy_ms * 1e3);
}

void time_attention(int n_tokens, int n_ctx, int n_head, int n_head_kv, int hd, bool flash, int splits) {
  const PagedKv paged(n_head_kv, n_ctx, n_tokens);
  const size_t kv_elems = paged.elems(hd);
  const int copies = rotation_copies(4 * kv_elems);
  std::vector<uint16_t> kv(kv_elems);
  for (uint16_t& e : kv) e = fp32_to_fp16(gauss());
  std::vector<std::unique_ptr<Dev<uint16_t>>> ks, vs;
  for (int i = 0; i < copies; ++i) {
    ks.push_back(std::make_unique<Dev<uint16_t>>(kv));
    vs.push_back(std::make_unique<Dev<uint16_t>>(kv));
  }
  const auto q = gauss_vector(size_t(n_tokens) * n_head * hd);
  std::vector<int32_t> pos(n_tokens);
  for (int t = 0; t < n_tokens; ++t) pos[t] = n_ctx - n_tokens + t;
  Dev<float> dq(q), dout(size_t(n_tokens) * n_head * hd), dpart(attention_partial_floats(n_tokens, n_head, hd, splits));
  Dev<int32_t> dpos(pos);
  std::vector<int4> tiles;
  for (int t = 0; t < n_tokens; t += kFlashQueryTile) tiles.push_back(make_int4(t, std::min(kFlashQueryTile, n_tokens - t), 0, 0));
  Dev<int4> dtiles(tiles);
  AttentionArgs a;
  a.q = dq.get();
  a.ldq = int64_t(n_head) * hd;
  a.tiles = dtiles.get();
  a.n_tiles = int(tiles.size());
  a.pos = dpos.get();
  a.n_tokens = n_tokens;
  a.n_head = n_head;
  a.n_head_kv = n_head_kv;
  a.head_dim = hd;
  a.head_dim_v = hd;
  a.scale = 1.f / std::sqrt(float(hd));
  a.out = dout.get();
  a.ldo = int64_t(n_head) * hd;
  a.partials = dpart.get();
  a.splits = splits;
  Timer timer;
  const double ms = timer.median_ms(50, [&](int i) {
    a.kv = paged.kv(ks[i % copies]->get(), vs[i % copies]->get(), hd, hd);
    if (flash) launch_attention_flash(a, nullptr);
    else launch_attention_split(a, nullptr);
  });
  // Causal pairs (query, key) and the bytes of the keys and values read once.
  double pairs = 0;
  for (int t = 0; t < n_tokens; ++t) pairs += pos[t] + 1;
  const double flops = 4.0 * pairs * hd * n_head, bytes = 2.0 * 2 * n_head_kv * double(n_ctx) * hd;
  std::printf("  attention %-5s tokens=%-4d ctx=%-6d heads=%d/%d hd=%d: %8.4f ms  %7.1f GB/s (KV)  %6.2f TFLOP/s\n",
              flash ? "flash" : "split", n_tokens, n_ctx, n_head, n_head_kv, hd, ms, bytes / (ms * 1e-3) / 1e9,
              flops / (ms * 1e-3) / 1e12);
}

}  // namespace

int main() {
  const char* seed_env = std::getenv("TESSERA_SEED");
  const unsigned seed = seed_env ? unsigned(std::strtoul(seed_env, nullptr, 10)) : std::random_device{}();
  g_rng.seed(seed);
  std::printf("input seed %u\n", seed);
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::fprintf(stderr, "no CUDA device: nothing to check\n");
    return 2;
  }
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  device_sm_count() = prop.multiProcessorCount;
  std::printf("device: %s (sm_%d%d)%s\n", prop.name, prop.major, prop.minor, kEmulated ? " [emulated: no timing]" : "");

  const auto& types = kWeightTypes;  // core/weight_types.h
  std::printf("weight decoding\n");
  for (GgmlType t : types) check_get_rows(t, 37, 512, 5);
  check_get_rows(GgmlType::F32, 11, 72, 3);  // rows that are not whole 32-value chunks
  check_get_rows(GgmlType::F16, 11, 100, 3);

  std::printf("staging and elementwise\n");
  check_copy_stage(3, 100);
  check_copy_stage(2, 512);
  for (NormKind k : {NormKind::Rms, NormKind::Layer})
    for (bool affine : {false, true}) check_norm_stage(k, 3, kEmulated ? 1000 : 4096, affine);
  check_norm_stage(NormKind::Rms, 2, 72, true);
  check_norm_stage(NormKind::Rms, 1, kEmulated ? 2080 : 4096, true);  // a decode row over many blocks
  check_swiglu_stage(1, kEmulated ? 1400 : 14336, GateActivation::Silu);
  check_swiglu_stage(3, kEmulated ? 700 : 11008, GateActivation::Silu);
  check_swiglu_stage(2, 300, GateActivation::Gelu);

  std::printf("matmul\n");
  const int64_t rows = kEmulated ? 67 : 333;
  for (GgmlType t : types)
    for (int n : {1, 3, 8, 9, 64, 65, 70, 133}) check_matmul({t, rows, 512, n});
  // SMs + 1 row blocks x 2 token tiles of 128: enough blocks for the GEMM to take 128-token
  // tiles on any device (gemm.cu); the last row block and token tile are partial.
  const int64_t wide_rows = 128 * int64_t(device_sm_count()) + 100;
  for (GgmlType t : types) check_matmul({t, wide_rows, 256, 133});
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::BF16})
    for (int n : {1, 5, 20}) check_matmul({t, 45, 100, n});  // rows not whole chunks
  check_matmul({GgmlType::F32, 45, 20, 20});   // one K tile: the pipeline's loads all clamp
  check_matmul({GgmlType::Q8_0, 45, 64, 20});  // two K tiles
  check_matmul({GgmlType::F16, 45, 96, 70});   // three
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q8_0})
    for (int n : {2, 12}) check_matmul({t, 130, 256, n, true});
  for (GgmlType t : {GgmlType::F32, GgmlType::Q8_0, GgmlType::Q4_K})  // the MoE router in prefill
    for (int n : {9, 21}) check_matmul({t, 60, 256, n, n == 21, true});
  if (!kEmulated) {
    check_matmul({GgmlType::Q4_K, 4096, 4096, 1});
    check_matmul({GgmlType::Q6_K, 1000, 4096, 200});
  }

  std::printf("mixture of experts\n");
  const ExpertGating kSoftmax = ExpertGating::Softmax, kSigmoid = ExpertGating::Sigmoid;
  check_moe_route({1, 8, 2, kSoftmax, false, false, 1.f, 0, 0});       // mixtral
  check_moe_route({7, 60, 4, kSoftmax, false, false, 1.f, 0, 0});      // qwen2moe
  check_moe_route({5, 128, 8, kSoftmax, true, false, 1.f, 0, 0});      // qwen3moe
  check_moe_route({3, 64, 6, kSoftmax, false, false, 16.f, 0, 0});     // deepseek2 (v2-lite)
  check_moe_route({5, 256, 8, kSigmoid, true, true, 2.5f, 8, 4});      // deepseek3: sigmoid, bias, groups
  check_moe_route({2, 96, 16, kSigmoid, false, true, 1.f, 12, 2});     // k > experts of one group
  check_moe_route({9, 512, 12, kSoftmax, true, false, 1.f, 0, 0});     // the widest router
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
    const int64_t cols = 256;
    check_moe_matmul({t, 8, 2, 40, cols, 2, 1, true});    // decode gate/up
    check_moe_matmul({t, 8, 2, 72, cols, 1, 1, false});   // decode down (pair rows)
    check_moe_matmul({t, 16, 8, 24, cols, 2, 3, true});   // odd token count, GEMV
    check_moe_matmul({t, 8, 2, 136, cols, 2, 27, true});  // GEMM, parts split inside a 128-row tile
    check_moe_matmul({t, 16, 4, 40, cols, 1, 37, false}); // GEMM over pair rows, odd counts
  }
  check_moe_matmul({GgmlType::Q4_0, 2, 2, 40, 256, 2, 70, true});    // 70 slots per expert: two tiles each
  check_moe_matmul({GgmlType::Q6_K, 4, 3, 48, 256, 1, 90, false});   // ~68 per expert, uneven
  check_moe_matmul({GgmlType::BF16, 4, 2, 33, 100, 2, 1, true});  // rows that are not whole chunks
  check_moe_matmul({GgmlType::F16, 4, 3, 33, 100, 1, 11, false});
  if (!kEmulated) check_moe_matmul({GgmlType::Q4_K, 128, 8, 768, 2048, 2, 200, true});
  for (int k : {1, 2, 8}) check_moe_combine(3, 100, k, false, false);
  check_moe_combine(2, 300, 4, true, false);
  check_moe_combine(5, 64, 8, true, true);

  std::printf("q/k/v post-processing (norm, RoPE, KV store)\n");
  check_qkv_post({3, 4, 2, 64, 0, RopeKind::Normal, RopeScaling::None, false, false});
  check_qkv_post({2, 4, 1, 128, 3000, RopeKind::Neox, RopeScaling::None, true, false});
  check_qkv_post({2, 2, 2, 64, 700, RopeKind::Neox, RopeScaling::Yarn, false, false});
  check_qkv_post({2, 2, 1, 64, 9000, RopeKind::Normal, RopeScaling::Llama3, false, false});
  check_qkv_post({2, 2, 1, 64, 123, RopeKind::Neox, RopeScaling::Linear, false, true});
  check_qkv_post({1, 2, 2, 96, 5, RopeKind::None, RopeScaling::None, true, false});

  std::printf("multi-head latent attention\n");
  check_mla_post(3, 4, 64, 32, 128, 10);
  check_mla_post(1, 16, 128, 64, 512, 5000);
  for (GgmlType t : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0}) check_head_matmul(t, 3, 4, 40, 64);
  check_head_matmul(GgmlType::Q4_K, 2, 3, 16, 256);  // K-quants: rows of whole 256-value blocks
  check_head_matmul(GgmlType::Q8_0, 2, 5, 24, 96);
  if (!kEmulated) check_head_matmul(GgmlType::Q8_0, 512, 128, 8, 32);  // 65536 rows: sliced launches

  std::printf("attention\n");
  for (int hd : {64, 128}) {
    check_attention({1, kEmulated ? 300 : 3000, 8, 2, hd, hd, 0, 0.f, false, 1});
    check_attention({1, kEmulated ? 300 : 3000, 8, 2, hd, hd, 0, 0.f, false, 5});
    check_attention({kEmulated ? 70 : 200, kEmulated ? 150 : 700, 4, 2, hd, hd, 0, 0.f, true, 1});
    check_attention({37, 37, 4, 4, hd, hd, 0, 0.f, true, 1});
  }
  check_attention({1, 200, 12, 1, 96, 96, 0, 0.f, false, 3});      // MQA, 12 heads on one kv head
  check_attention({3, 90, 4, 2, 256, 256, 0, 30.f, false, 2});     // head size 256, soft-capping
  check_attention({2, 120, 4, 2, 80, 48, 0, 0.f, false, 2});       // K and V head sizes differ
  check_attention({1, 300, 4, 2, 64, 64, 64, 0.f, false, 4});      // sliding window
  check_attention({kEmulated ? 66 : 130, 300, 4, 2, 64, 64, 50, 0.f, true, 1});
  check_attention({20, 100, 4, 1, 128, 128, 0, 20.f, true, 1});
  // MLA's latent cache: one kv head, values the latent prefix of each key row; DeepSeek-V2's
  // 576/512 and a small 160/128, decode and prefill (one split).
  check_attention({1, kEmulated ? 150 : 2000, 16, 1, 576, 512, 0, 0.f, false, 3, true});
  check_attention({5, 60, 4, 1, 160, 128, 0, 0.f, false, 1, true});
  check_attention({1, 90, 6, 1, 160, 128, 0, 0.f, false, 2, true});

#ifdef TESSERA_CUDA_EMULATOR
  if (tessera_emu::failure_count() > 0) {
    std::printf("the emulator reported %d failed launch(es)\n", tessera_emu::failure_count());
    ++g_failures;
  }
#else
  {
    // Timed even after a failed check: a wrong kernel's speed still says where it stands.
    std::printf("timing (median of 50, inputs rotated beyond L2)\n");
    time_decode_staging();
    for (GgmlType t : types) time_matmul(t, 4096, 4096, 1);
    for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
      time_matmul(t, 14336, 4096, 1);
      time_matmul(t, 4096, 14336, 1);
      time_matmul(t, 4096, 4096, 4);
    }
    for (GgmlType t : {GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K})
      time_matmul(t, 4096, 4096, 512);
    for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_K}) {
      time_matmul(t, 14336, 4096, 512);
      time_matmul(t, 4096, 14336, 512);
    }
    for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q8_0}) time_moe_decode(t);
    for (int ctx : {128, 1024, 8192, 32768}) time_attention(1, ctx, 32, 8, 128, false, 32);
    time_attention(512, 512, 32, 8, 128, true, 1);
    time_attention(512, 4096, 32, 8, 128, true, 1);
    time_attention(512, 512, 32, 8, 64, true, 1);
  }
#endif
  std::printf("%s: %d check(s) failed\n", g_failures ? "FAIL" : "PASS", g_failures);
  return g_failures ? 1 : 0;
}
