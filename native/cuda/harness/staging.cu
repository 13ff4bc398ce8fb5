// Harness checks: weight decoding (get_rows) and the staging kernels (copy, norm, SwiGLU).
#include "cuda/harness/common.h"

namespace tessera::harness {

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
  // gpt-oss's clamp at 7 needs values past it.
  const auto gu = gauss_vector(size_t(rows) * 2 * ff, act == GateActivation::SwigluOai ? 8.f : 2.f);
  Dev<float> dgu(gu);
  DevStage st(rows, ff);
  launch_swiglu_stage(dgu.get(), rows, ff, act, kAllFormats, st.act, nullptr);
  const auto got32 = st.f32.download();
  std::vector<float> got(size_t(rows) * ff);
  std::vector<double> ref(got.size());
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < ff; ++i) {
      const double g = gu[size_t(r) * 2 * ff + i], u = gu[size_t(r) * 2 * ff + ff + i];
      if (act == GateActivation::SwigluOai) {
        const double x = std::min(g, 7.0), y = std::clamp(u, -7.0, 7.0);
        ref[size_t(r) * ff + i] = x / (1 + std::exp(-1.702 * x)) * (y + 1);
      } else {
        const double a = act == GateActivation::Silu ? g / (1 + std::exp(-g))
                                                     : 0.5 * g * (1 + std::tanh(0.7978845608028654 * g * (1 + 0.044715 * g * g)));
        ref[size_t(r) * ff + i] = a * u;
      }
      got[size_t(r) * ff + i] = got32[r * st.cols32 + i];
    }
  const std::string name =
      std::string(act == GateActivation::Silu ? "swiglu" : act == GateActivation::Gelu ? "geglu" : "swiglu-oai") + " stage " +
      std::to_string(rows) + "x" + std::to_string(ff);
  report(name, rel_error(got, ref), 5e-6);
  check_staged_like_copy(name, st, rows);
}

// post_norm_add against a float64 RMSNorm-and-add of the same rows.
void check_post_norm_add(int rows, int dim, float residual_scale) {
  const auto y = gauss_vector(size_t(rows) * dim, 3.f);
  const auto x0 = gauss_vector(size_t(rows) * dim, 1.f);
  std::vector<float> w(dim);
  for (float& e : w) e = 1.f + 0.3f * gauss();
  Dev<float> dy(y), dw(w), dx(x0);
  launch_post_norm_add(dy.get(), dw.get(), rows, dim, 1e-6f, residual_scale, dx.get(), nullptr);
  const auto got = dx.download();
  std::vector<double> ref(got.size());
  for (int r = 0; r < rows; ++r) {
    const float* yr = &y[size_t(r) * dim];
    double ss = 0;
    for (int i = 0; i < dim; ++i) ss += double(yr[i]) * yr[i];
    const double scale = 1 / std::sqrt(ss / dim + 1e-6);
    for (int i = 0; i < dim; ++i)
      ref[size_t(r) * dim + i] = x0[size_t(r) * dim + i] + yr[i] * scale * w[i] * (residual_scale != 0.f ? residual_scale : 1.0);
  }
  report("post_norm_add " + std::to_string(rows) + "x" + std::to_string(dim) + (residual_scale != 0.f ? " scaled" : ""),
         rel_error(got, ref), 2e-6);
}

}  // namespace tessera::harness
