// Harness checks: mixture of experts (routing, grouped expert products, combine).
#include "cuda/harness/common.h"

namespace tessera::harness {

// ---------------------------------------------------------------- mixture of experts


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

}  // namespace tessera::harness
