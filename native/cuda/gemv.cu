// gemv: y[t] = W x[t] for up to 8 tokens (decode), W in the repacked layout, fp32 results.
// One warp per weight row; lanes stride over the row in 16-byte units of weight data, so a
// warp's loads cover consecutive bytes and the weights stream from memory exactly once for
// all tokens. Quantized weights take q8 activations and multiply with 4-way int8 dot
// products (dp4a), scaling per 32-chunk in fp32: Q4_0/Q4_K/Q6_K units are whole chunks
// (16 bytes of 4-bit values, + 8 bytes of high bits for Q6_K), Q8_0 units half chunks.
// F32/F16/BF16 weights take fp32 activations, 4 or 8 values per unit.
// Launch: grid ceil(rows / 4), block 128 (4 warps). Template N >= n_tokens (1, 2, 4, 8).
// Invariants: activation rows are cols32 long and zero-padded like the weight rows.
#include "cuda/device.cuh"
#include "cuda/matmul_out.cuh"
#include "cuda/matrix.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

constexpr int kWarps = 4;

template <GgmlType T, int N>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_kernel(DeviceMatrix m, ActQ8 aq, const float* af, int n, MatmulOut out) {
  begin_kernel();
  const int64_t row = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= m.rows) return;  // whole warp: no collective is skipped by part of it
  const int64_t nch = m.cols32 / 32;
  float acc[N];
#pragma unroll
  for (int t = 0; t < N; ++t) acc[t] = 0.f;

  const uint8_t* q = m.q + row * m.q_row;
  if constexpr (T == GgmlType::Q4_0 || T == GgmlType::Q4_K || T == GgmlType::Q6_K) {
    // Unrolled so each lane has several 16-byte weight loads in flight before the first use:
    // one at a time leaves a decode GEMV latency-bound far below the memory bandwidth.
#pragma unroll 4
    for (int64_t c = lane; c < nch; c += 32) {
      const uint4 w = load16(q + 16 * c);
      float dw = 0.f, mw = 0.f, sc0 = 0.f, sc1 = 0.f;
      uint2 hb = make_uint2(0, 0);
      if constexpr (T == GgmlType::Q4_0) {
        dw = half_to_float(reinterpret_cast<const uint16_t*>(m.s + row * m.s_row)[c]);
      } else if constexpr (T == GgmlType::Q4_K) {
        const uint16_t sm = reinterpret_cast<const uint16_t*>(m.s + row * m.s_row)[c];
        const uint16_t* dm = reinterpret_cast<const uint16_t*>(m.sb + row * m.sb_row) + 2 * (c / 8);
        dw = half_to_float(dm[0]) * float(sm & 0xFF);
        mw = half_to_float(dm[1]) * float(sm >> 8);
      } else {
        dw = half_to_float(reinterpret_cast<const uint16_t*>(m.sb + row * m.sb_row)[c / 8]);
        const int8_t* sc = reinterpret_cast<const int8_t*>(m.s + row * m.s_row) + 2 * c;
        sc0 = float(sc[0]);
        sc1 = float(sc[1]);
        hb = load8(m.qh + row * m.qh_row + 8 * c);
      }
#pragma unroll
      for (int t = 0; t < N; ++t) {
        if (t < n) {
          int a[8];
          load_act_chunk(aq.q + t * m.cols32, c, a);
          const float2 ds = aq.ds[t * nch + c];
          if constexpr (T == GgmlType::Q4_0) {
            acc[t] += dw * (ds.x * float(dot_nibbles(w, a)) - 8.f * ds.y);
          } else if constexpr (T == GgmlType::Q4_K) {
            acc[t] += dw * ds.x * float(dot_nibbles(w, a)) - mw * ds.y;
          } else {
            int s0, s1;
            dot_q6(w, hb, a, &s0, &s1);
            acc[t] += dw * ds.x * (sc0 * float(s0) + sc1 * float(s1));
          }
        }
      }
    }
  } else if constexpr (T == GgmlType::Q8_0) {
#pragma unroll 4
    for (int64_t u = lane; u < 2 * nch; u += 32) {
      const int64_t c = u / 2;
      uint32_t w[4];
      unpack_words(load16(q + 16 * u), w);
      const float dw = half_to_float(reinterpret_cast<const uint16_t*>(m.s + row * m.s_row)[c]);
#pragma unroll
      for (int t = 0; t < N; ++t) {
        if (t < n) {
          uint32_t a[4];
          unpack_words(load16(aq.q + t * m.cols32 + 16 * u), a);
          int s = 0;
#pragma unroll
          for (int i = 0; i < 4; ++i) s = dot_i8x4(int(w[i]), int(a[i]), s);
          acc[t] += dw * aq.ds[t * nch + c].x * float(s);
        }
      }
    }
  } else {
    // Float weights: F32 units are 4 values, F16/BF16 units 8 values.
    constexpr int kVals = T == GgmlType::F32 ? 4 : 8;
    const int64_t units = m.cols32 / kVals;
#pragma unroll 4
    for (int64_t u = lane; u < units; u += 32) {
      float w[kVals];
      const uint4 raw = load16(q + 16 * u);
      if constexpr (T == GgmlType::F32) {
        w[0] = __uint_as_float(raw.x);
        w[1] = __uint_as_float(raw.y);
        w[2] = __uint_as_float(raw.z);
        w[3] = __uint_as_float(raw.w);
      } else {
        uint32_t r[4];
        unpack_words(raw, r);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const uint16_t lo = uint16_t(r[i] & 0xFFFF), hi = uint16_t(r[i] >> 16);
          w[2 * i] = T == GgmlType::F16 ? half_to_float(lo) : bf16_to_float(lo);
          w[2 * i + 1] = T == GgmlType::F16 ? half_to_float(hi) : bf16_to_float(hi);
        }
      }
#pragma unroll
      for (int t = 0; t < N; ++t) {
        if (t < n) {
          const float4* x = reinterpret_cast<const float4*>(af + t * m.cols32 + kVals * u);
          float s = 0.f;
#pragma unroll
          for (int i = 0; i < kVals / 4; ++i) {
            const float4 v = x[i];
            s += w[4 * i] * v.x + w[4 * i + 1] * v.y + w[4 * i + 2] * v.z + w[4 * i + 3] * v.w;
          }
          acc[t] += s;
        }
      }
    }
  }

#pragma unroll
  for (int t = 0; t < N; ++t) {
    const float s = warp_sum(acc[t]);
    if (lane == 0 && t < n) store_matmul_out(out, row, t, s);
  }
}

template <GgmlType T>
void launch_for_type(const DeviceMatrix& w, const StagedAct& act, int n, const MatmulOut& out, cudaStream_t s) {
  const dim3 grid(unsigned((w.rows + kWarps - 1) / kWarps)), block(kWarps * 32);
  const ActQ8 aq{act.q8, act.ds};
  if (n <= 1) launch_kernel(gemv_kernel<T, 1>, grid, block, s, w, aq, act.f32, n, out);
  else if (n <= 2) launch_kernel(gemv_kernel<T, 2>, grid, block, s, w, aq, act.f32, n, out);
  else if (n <= 4) launch_kernel(gemv_kernel<T, 4>, grid, block, s, w, aq, act.f32, n, out);
  else launch_kernel(gemv_kernel<T, 8>, grid, block, s, w, aq, act.f32, n, out);
}

}  // namespace

void launch_gemv(const DeviceMatrix& w, const StagedAct& act, int n_tokens, const MatmulOut& out, cudaStream_t s) {
  switch (w.type) {
    case GgmlType::F32: return launch_for_type<GgmlType::F32>(w, act, n_tokens, out, s);
    case GgmlType::F16: return launch_for_type<GgmlType::F16>(w, act, n_tokens, out, s);
    case GgmlType::BF16: return launch_for_type<GgmlType::BF16>(w, act, n_tokens, out, s);
    case GgmlType::Q8_0: return launch_for_type<GgmlType::Q8_0>(w, act, n_tokens, out, s);
    case GgmlType::Q4_0: return launch_for_type<GgmlType::Q4_0>(w, act, n_tokens, out, s);
    case GgmlType::Q4_K: return launch_for_type<GgmlType::Q4_K>(w, act, n_tokens, out, s);
    case GgmlType::Q6_K: return launch_for_type<GgmlType::Q6_K>(w, act, n_tokens, out, s);
    default: return;  // the backend only builds matrices of supported types
  }
}

}  // namespace tessera::cuda
