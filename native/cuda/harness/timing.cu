// Harness timing (GPU only): CUDA events, median of many runs, inputs rotated beyond L2.
#include "cuda/harness/common.h"

namespace tessera::harness {

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

}  // namespace tessera::harness
