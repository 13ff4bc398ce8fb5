// The CPU executor's Mamba-2 block (CpuExecutor::ssm_block), as llama.cpp's
// build_mamba2_layer computes it: in_proj, conv (+ bias, SiLU), selective scan (+ D x),
// SiLU(z) gate, grouped RMSNorm, out_proj, residual add. The recurrent state lives in the
// KV blocks as checkpoints (core/kv_cache.h): each segment of a chunk (consecutive rows of
// one sequence inside one block) starts from the state its first row needs, copied into
// the segment's block when it comes from the previous block, and updates it in place.
#include <algorithm>
#include <cstring>

#include "cpu/cpu_executor.h"

namespace tessera::cpu {

float* CpuExecutor::ssm_state(int block, int il) const {
  float* base = reinterpret_cast<float*>(ssm_states_.data()) + uint64_t(block) * ssm_block_floats_;
  return il < 0 ? base : base + ssm_layer_offset_[il];
}

void CpuExecutor::plan_ssm_segments(int n) {
  // s_.pos and s_.table hold the chunk's rows (step() filled them).
  int count = 0;
  for (int i = 0; i < n; ++i) {
    const int p = s_.pos[i];
    const int dst = s_.table[i][p / kKvBlock];
    const bool continues = i > 0 && s_.table[i] == s_.table[i - 1] && p == s_.pos[i - 1] + 1 && p % kKvBlock != 0;
    if (continues) {
      ++ssm_segments_[count - 1].n;
      continue;
    }
    SsmSegment& s = ssm_segments_[count++];
    s.row0 = i;
    s.n = 1;
    s.dst = dst;
    if (p == 0)
      s.src = kSsmZero;
    else {
      const int prev = s_.table[i][(p - 1) / kKvBlock];
      s.src = prev == dst ? kSsmInPlace : prev;
    }
  }
  n_ssm_segments_ = count;
}

void CpuExecutor::ssm_block(int il, int n, int ith, int nth) {
  const ModelPlan& p = plan_;
  const LayerPlan& L = p.layers[il];
  const SsmParams& m = p.ssm;
  const int64_t P = m.in_proj_width(), ch = m.conv_channels(), conv_floats = int64_t(m.d_conv - 1) * ch;
  const int hd = m.head_dim();

  norm(s_.x, L.attn_norm, L.attn_norm_b, s_.xn, n, ith, nth);
  pool_->barrier();
  encode(s_.xn, n, p.n_embd, format_bit_of(L.ssm_in), ith, nth);
  project({{L.ssm_in, s_.xn, s_.ssm_zx, P}}, n, ith, nth);

  // Conv over each segment, channels split across threads; a thread readies its own channels'
  // (and below its own heads') share of a segment's state, so no barrier is needed between.
  float* xbc = s_.ssm_zx + m.d_inner;
  const float* conv_w = backend_.f32(L.ssm_conv1d);
  const float* conv_b = backend_.f32(L.ssm_conv1d_b);
  int64_t c0, c1;
  split_range(ch, ith, nth, &c0, &c1);
  for (int si = 0; si < n_ssm_segments_; ++si) {
    const SsmSegment& sg = ssm_segments_[si];
    float* state = ssm_state(sg.dst, il);
    for (int k = 0; k < m.d_conv - 1 && sg.src != kSsmInPlace; ++k) {
      float* row = state + k * ch;
      if (sg.src == kSsmZero)
        std::fill(row + c0, row + c1, 0.0f);
      else
        std::copy(ssm_state(sg.src, il) + k * ch + c0, ssm_state(sg.src, il) + k * ch + c1, row + c0);
    }
    ssm_conv(state, xbc + sg.row0 * P, P, sg.n, conv_w, conv_b, ch, m.d_conv, xbc + sg.row0 * P, P, c0, c1);
  }
  pool_->barrier();
  swiglu(xbc, nullptr, xbc, n, int(ch), P, P, GateActivation::Silu, ith, nth);
  pool_->barrier();

  int64_t h0, h1;
  split_range(m.n_head, ith, nth, &h0, &h1);
  const int64_t head_floats = int64_t(hd) * m.d_state;
  SsmScanArgs a;
  a.ld_x = P;
  a.ld_dt = P;
  a.dt_bias = backend_.f32(L.ssm_dt_b);
  a.A = backend_.f32(L.ssm_a);
  a.D = backend_.f32(L.ssm_d);
  a.ld_y = P;
  a.n_head = m.n_head;
  a.head_dim = hd;
  a.d_state = m.d_state;
  a.n_group = m.n_group;
  for (int si = 0; si < n_ssm_segments_; ++si) {
    const SsmSegment& sg = ssm_segments_[si];
    float* state = ssm_state(sg.dst, il) + conv_floats;
    if (sg.src == kSsmZero)
      std::fill(state + h0 * head_floats, state + h1 * head_floats, 0.0f);
    else if (sg.src != kSsmInPlace) {
      const float* from = ssm_state(sg.src, il) + conv_floats;
      std::copy(from + h0 * head_floats, from + h1 * head_floats, state + h0 * head_floats);
    }
    const int64_t r0 = int64_t(sg.row0) * P;
    a.state = state;
    a.x = xbc + r0;
    a.B = xbc + r0 + m.d_inner;
    a.C = xbc + r0 + m.d_inner + int64_t(m.n_group) * m.d_state;
    a.dt = s_.ssm_zx + r0 + m.d_inner + ch;
    a.y = s_.ssm_y + r0;
    a.n_rows = sg.n;
    ssm_scan(a, int(h0), int(h1));
  }
  pool_->barrier();

  // y * SiLU(z) (llama.cpp's swiglu_split(z, y)), then RMSNorm per group of d_inner / n_group.
  swiglu(s_.ssm_zx, s_.ssm_y, s_.ssm_g, n, m.d_inner, P, m.d_inner, GateActivation::Silu, ith, nth);
  pool_->barrier();
  const int gs = m.d_inner / m.n_group;
  const float* norm_w = backend_.f32(L.ssm_norm);
  if (m.n_group == 1) {
    rms_norm(s_.ssm_g, norm_w, s_.ssm_g, n, gs, p.norm_eps, ith, nth);
  } else {
    for (int64_t u = ith; u < int64_t(n) * m.n_group; u += nth) {
      const int64_t g = u % m.n_group;
      float* row = s_.ssm_g + u * gs;  // row t's groups are contiguous: unit u is (t, g)
      rms_norm(row, norm_w + g * gs, row, 1, gs, p.norm_eps, 0, 1);
    }
  }
  pool_->barrier();
  encode(s_.ssm_g, n, m.d_inner, format_bit_of(L.ssm_out), ith, nth);
  project({{L.ssm_out, s_.ssm_g, s_.proj, p.n_embd}}, n, ith, nth);
  residual_add(n, -1, ith, nth);
  pool_->barrier();  // a hybrid's FFN reads x next
}

}  // namespace tessera::cpu
