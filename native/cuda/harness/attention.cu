// Harness checks: q/k/v post-processing, multi-head latent attention, attention.
#include "cuda/harness/common.h"

namespace tessera::harness {

// ---------------------------------------------------------------- q/k/v post-processing


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

// ---------------------------------------------------------------- attention


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
  // Sinks around the scores' range, one far above them (most of its head's weight dropped).
  std::vector<float> sinks(c.n_head);
  for (int h = 0; h < c.n_head; ++h) sinks[h] = h == 0 ? 9.f : 2.f * gauss();

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
      if (c.sinks) mx = std::max(mx, double(sinks[h]));
      double z = 0;
      for (double& e : s) z += (e = std::exp(e - mx));
      if (c.sinks) z += std::exp(double(sinks[h]) - mx);
      for (int i = 0; i < hdv; ++i) {
        double acc = 0;
        for (int j = lo; j <= pos[t]; ++j) acc += s[j - lo] / z * value(g, j, i);
        ref[(size_t(t) * c.n_head + h) * hdv + i] = acc;
      }
    }

  Dev<float> dq(q), dout(size_t(c.n_tokens) * ldo), dpart(attention_partial_floats(c.n_tokens, c.n_head, hdv, c.splits));
  Dev<uint16_t> dk(kc), dv(vc);
  Dev<int32_t> dpos(pos);
  Dev<float> dsinks(sinks);
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
  a.sinks = c.sinks ? dsinks.get() : nullptr;
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
                           (c.v_in_k ? " v-in-k" : "") + (c.sinks ? " sinks" : "");
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

}  // namespace tessera::harness
