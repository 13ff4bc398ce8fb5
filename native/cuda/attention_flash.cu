// attention_flash: causal softmax(q K^T * scale) V for a chunk of tokens (prefill) on the
// tensor cores, FlashAttention-2 style: a block takes a tile of up to 64 queries of one
// sequence and one head, and walks the keys its queries can see in tiles of 64 with an
// online softmax, so no score matrix ever reaches memory. Keys and values are read from the
// tile's sequence's blocks of the paged cache. Each of the 4 warps owns 16 query rows; S = Q K^T and O += P V are
// mma.sync.m16n8k16 products (fp16 operands, fp32 accumulators); Q fragments stay in
// registers (q rounded to fp16, as the CPU does), the K tile is shared [key][dim], the V
// tile shared transposed [dim][key], both padded by 8 halves (conflict-free fragment
// loads). The S accumulator fragments are re-packed in registers as the A operand of P V.
// Masking per element: key > pos (causal), key < pos - window + 1 (sliding window); keys
// outside the block's range are zero-filled, never read from unwritten cache rows.
// Launch: grid (n_tiles, n_head), block 128. Template HD = head_dim = head_dim_v in
// {64, 128}. Positions, tiles and block tables come from device memory.
#include <climits>

#include "cuda/device.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

constexpr int kBK = 64, kThreads = 128;
static_assert(kFlashQueryTile == 64, "the kernel's 4 warps take 16 query rows each");

__device__ __forceinline__ uint32_t smem_pair(const uint16_t* p) { return *reinterpret_cast<const uint32_t*>(p); }

__device__ __forceinline__ int warp_min_int(int v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = min(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ int warp_max_int(int v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

template <int HD>
__global__ void __launch_bounds__(kThreads) attention_flash_kernel(AttentionArgs a) {
  begin_kernel();
  constexpr int kKLd = HD + 8, kVLd = kBK + 8;
  __shared__ __align__(16) uint16_t ks[kBK][kKLd];
  __shared__ __align__(16) uint16_t vt[HD][kVLd];
  __shared__ int range_lo[kThreads / 32], range_hi[kThreads / 32];

  const int h = blockIdx.y, g = h / (a.n_head / a.n_head_kv);
  const int4 tile = a.tiles[blockIdx.x];
  const int t0 = tile.x, t_end = tile.x + tile.y;
  const int32_t* table = a.kv.table_of(t0);  // every row of the tile is of one sequence
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int gq = lane >> 2, tg = lane & 3;
  const int r0 = t0 + warp * 16 + gq, r1 = r0 + 8;
  const int p0 = r0 < t_end ? a.pos[r0] : -1;
  const int p1 = r1 < t_end ? a.pos[r1] : -1;
  const int lo0 = a.sliding_window > 0 ? max(0, p0 - a.sliding_window + 1) : 0;
  const int lo1 = a.sliding_window > 0 ? max(0, p1 - a.sliding_window + 1) : 0;

  // The keys any query of the block can see: [kmin, kmax].
  {
    int mn = INT_MAX, mx = -1;
    if (p0 >= 0) {
      mn = min(mn, lo0);
      mx = max(mx, p0);
    }
    if (p1 >= 0) {
      mn = min(mn, lo1);
      mx = max(mx, p1);
    }
    mn = warp_min_int(mn);
    mx = warp_max_int(mx);
    if (lane == 0) {
      range_lo[warp] = mn;
      range_hi[warp] = mx;
    }
  }
  __syncthreads();
  int kmin = INT_MAX, kmax = -1;
  for (int w = 0; w < kThreads / 32; ++w) {
    kmin = min(kmin, range_lo[w]);
    kmax = max(kmax, range_hi[w]);
  }

  // Q fragments (rows r0, r1 of this warp's 16), fp16.
  uint32_t qf[HD / 16][4];
  {
    const float* q0 = a.q + int64_t(r0) * a.ldq + int64_t(h) * HD;
    const float* q1 = a.q + int64_t(r1) * a.ldq + int64_t(h) * HD;
#pragma unroll
    for (int kk = 0; kk < HD / 16; ++kk) {
      const int c = 16 * kk + 2 * tg;
      qf[kk][0] = p0 >= 0 ? pack_half2(q0[c], q0[c + 1]) : 0u;
      qf[kk][1] = p1 >= 0 ? pack_half2(q1[c], q1[c + 1]) : 0u;
      qf[kk][2] = p0 >= 0 ? pack_half2(q0[c + 8], q0[c + 9]) : 0u;
      qf[kk][3] = p1 >= 0 ? pack_half2(q1[c + 8], q1[c + 9]) : 0u;
    }
  }

  // A sink starts each row's running max and (in one lane of the four that share a row) its
  // sum: exp(sink - sink) = 1, rescaled with the rest as larger scores arrive.
  const float sink = a.sinks ? a.sinks[h] : -INFINITY;
  float m0 = sink, m1 = sink, l0 = a.sinks && tg == 0 ? 1.f : 0.f, l1 = l0;
  float o[HD / 8][4];
#pragma unroll
  for (int d = 0; d < HD / 8; ++d)
#pragma unroll
    for (int e = 0; e < 4; ++e) o[d][e] = 0.f;

  for (int kb = kmin / kBK * kBK; kb <= kmax; kb += kBK) {  // uniform per block
    __syncthreads();  // every warp is done with the previous tile
    for (int piece = threadIdx.x; piece < kBK * HD / 8; piece += kThreads) {
      const int kl = piece / (HD / 8), col = (piece % (HD / 8)) * 8, key = kb + kl;
      const bool ok = key >= kmin && key <= kmax;
      const uint4 kv = ok ? load16(a.kv.k + a.kv.row(table, g, key, HD) + col) : make_uint4(0, 0, 0, 0);
      const uint4 vv = ok ? load16(a.kv.v + a.kv.row(table, g, key, HD) + col) : make_uint4(0, 0, 0, 0);
      *reinterpret_cast<uint4*>(&ks[kl][col]) = kv;
      const uint32_t w[4] = {vv.x, vv.y, vv.z, vv.w};
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        vt[col + 2 * i][kl] = uint16_t(w[i] & 0xFFFF);
        vt[col + 2 * i + 1][kl] = uint16_t(w[i] >> 16);
      }
    }
    __syncthreads();

    // S = Q K^T for this warp's 16 rows x 64 keys.
    float s[kBK / 8][4];
#pragma unroll
    for (int nt = 0; nt < kBK / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) s[nt][e] = 0.f;
#pragma unroll
      for (int kk = 0; kk < HD / 16; ++kk) {
        const uint32_t b[2] = {smem_pair(&ks[nt * 8 + gq][16 * kk + 2 * tg]), smem_pair(&ks[nt * 8 + gq][16 * kk + 8 + 2 * tg])};
        mma_16x8x16(s[nt], qf[kk], b);
      }
    }

    // Scale, soft-cap, mask; row maxima across the quad that shares a row.
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < kBK / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = kb + nt * 8 + 2 * tg + (e & 1);
        const int p = e < 2 ? p0 : p1, lo = e < 2 ? lo0 : lo1;
        float x = s[nt][e] * a.scale;
        if (a.softcap != 0.f) x = a.softcap * tanhf(x * (1.0f / a.softcap));
        if (key > p || key < lo) x = -INFINITY;
        s[nt][e] = x;
        if (e < 2) mx0 = fmaxf(mx0, x);
        else mx1 = fmaxf(mx1, x);
      }
#pragma unroll
    for (int o2 = 1; o2 <= 2; o2 <<= 1) {
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, o2));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, o2));
    }
    const float n0 = fmaxf(m0, mx0), n1 = fmaxf(m1, mx1);
    const float base0 = n0 == -INFINITY ? 0.f : n0, base1 = n1 == -INFINITY ? 0.f : n1;
    const float c0 = expf(m0 - base0), c1 = expf(m1 - base1);
    m0 = n0;
    m1 = n1;
    l0 *= c0;
    l1 *= c1;
#pragma unroll
    for (int d = 0; d < HD / 8; ++d) {
      o[d][0] *= c0;
      o[d][1] *= c0;
      o[d][2] *= c1;
      o[d][3] *= c1;
    }
#pragma unroll
    for (int nt = 0; nt < kBK / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float p = expf(s[nt][e] - (e < 2 ? base0 : base1));
        s[nt][e] = p;
        if (e < 2) l0 += p;
        else l1 += p;
      }

    // O += P V: the S fragments of key tiles 2kk, 2kk+1 form the A fragment of keys 16kk..
#pragma unroll
    for (int kk = 0; kk < kBK / 16; ++kk) {
      const uint32_t pa[4] = {pack_half2(s[2 * kk][0], s[2 * kk][1]), pack_half2(s[2 * kk][2], s[2 * kk][3]),
                              pack_half2(s[2 * kk + 1][0], s[2 * kk + 1][1]), pack_half2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int d = 0; d < HD / 8; ++d) {
        const uint32_t b[2] = {smem_pair(&vt[d * 8 + gq][16 * kk + 2 * tg]), smem_pair(&vt[d * 8 + gq][16 * kk + 8 + 2 * tg])};
        mma_16x8x16(o[d], pa, b);
      }
    }
  }

#pragma unroll
  for (int o2 = 1; o2 <= 2; o2 <<= 1) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, o2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, o2);
  }
  const float inv0 = l0 > 0.f ? 1.0f / l0 : 0.f, inv1 = l1 > 0.f ? 1.0f / l1 : 0.f;
  float* out0 = a.out + int64_t(r0) * a.ldo + int64_t(h) * HD;
  float* out1 = a.out + int64_t(r1) * a.ldo + int64_t(h) * HD;
#pragma unroll
  for (int d = 0; d < HD / 8; ++d) {
    const int c = d * 8 + 2 * tg;
    if (p0 >= 0) {
      out0[c] = o[d][0] * inv0;
      out0[c + 1] = o[d][1] * inv0;
    }
    if (p1 >= 0) {
      out1[c] = o[d][2] * inv1;
      out1[c + 1] = o[d][3] * inv1;
    }
  }
}

}  // namespace

bool flash_attention_supported(int head_dim, int head_dim_v) {
  return head_dim == head_dim_v && (head_dim == 64 || head_dim == 128);
}

void launch_attention_flash(const AttentionArgs& a, cudaStream_t s) {
  const dim3 grid(a.n_tiles, a.n_head), block(kThreads);
  if (a.head_dim == 64) launch_kernel(attention_flash_kernel<64>, grid, block, s, a);
  else launch_kernel(attention_flash_kernel<128>, grid, block, s, a);
}

}  // namespace tessera::cuda
