// attention_split: causal softmax(q K^T * scale) V over the fp16 paged KV cache for any head
// size (a multiple of 8; keys <= 576, values <= 512, so MLA's latent cache fits), with
// GQA/MQA, sliding window and soft-capping; the decode path. Each row reads its own
// sequence's blocks. Value rows may live inside the key rows (MLA reads the latent prefix
// of each cache row as its value: kv.v = kv.k, kv.v_width the key width).
// A block serves one (token, kv head, KV split) and up to 8 of the query heads that share
// the kv head (4 for values over 256 wide), so each key and value row is read once for all
// of them. Its 4 warps take tiles of 32 positions in turn: lanes score one position each
// (16-byte key loads, q from shared memory, q rounded to fp16 as the CPU does), the warp
// keeps an online softmax per head, and for the value product lanes own head_dim_v / 32
// output dimensions. Each warp leaves a (max, sum, unnormalized output) record; the combine
// kernel merges the records of all warps and splits of a (token, head), and writes the
// head's output as fp32 or, when asked, straight in the staged formats of the next product
// (whole chunks per head). Split s of a token at position pos covers positions
// lo + s * per_split .. (per_split = max(32, ceil(len / splits))), so splits past the
// context's length are empty and cost a block that exits at once.
// Launch: grid (n_head_kv * head_groups, splits, n_tokens), block 128; combine grid
// (n_head, n_tokens), block 128. Template D = dims per lane (2, 4, 8, 16: head_dim_v <= 64,
// 128, 256, 512). Positions come from device memory (graph-capturable).
#include "cuda/device.cuh"
#include "cuda/ops.cuh"
#include "cuda/stage.cuh"

namespace tessera::cuda {

namespace {

constexpr int kWarps = 4, kTile = 32;
// Keys up to 576 values (MLA: a 512-value latent + 64 RoPE'd values), values up to 512.
constexpr int kMaxHeadDim = 576, kMaxHeadDimV = 512;
constexpr int kMaxRecords = 64 * kWarps;  // splits <= 64 (the executor's kMaxSplits)

// Query heads per block: 8, or 4 for values over 256 wide, which keep 16 accumulators per
// lane and head in registers.
__host__ __device__ constexpr int heads_per_block(int dims_per_lane) { return dims_per_lane > 8 ? 4 : 8; }

int head_groups(const AttentionArgs& a, int heads) { return (a.n_head / a.n_head_kv + heads - 1) / heads; }

template <int D>
__device__ __forceinline__ void load_v(const uint16_t* row, int lane, int hdv, float v[D]) {
  if (hdv == 32 * D) {
    if constexpr (D == 2) {
      const uint32_t w = *reinterpret_cast<const uint32_t*>(row + 2 * lane);
      v[0] = half_to_float(uint16_t(w & 0xFFFF));
      v[1] = half_to_float(uint16_t(w >> 16));
    } else if constexpr (D == 4) {
      const uint2 w = load8(row + 4 * lane);
      v[0] = half_to_float(uint16_t(w.x & 0xFFFF));
      v[1] = half_to_float(uint16_t(w.x >> 16));
      v[2] = half_to_float(uint16_t(w.y & 0xFFFF));
      v[3] = half_to_float(uint16_t(w.y >> 16));
    } else {
#pragma unroll
      for (int part = 0; part < D / 8; ++part) {
        const uint4 w = load16(row + D * lane + 8 * part);
        const uint32_t r[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          v[8 * part + 2 * i] = half_to_float(uint16_t(r[i] & 0xFFFF));
          v[8 * part + 2 * i + 1] = half_to_float(uint16_t(r[i] >> 16));
        }
      }
    }
  } else {
#pragma unroll
    for (int d = 0; d < D; ++d) v[d] = lane * D + d < hdv ? half_to_float(row[lane * D + d]) : 0.f;
  }
}

template <int D>
__global__ void __launch_bounds__(kWarps * 32) attention_split_kernel(AttentionArgs a, int n_groups) {
  constexpr int kHeads = heads_per_block(D);
  begin_kernel();
  __shared__ float qs[kHeads][kMaxHeadDim];
  __shared__ float ps[kWarps][kHeads][kTile];
  const int group = a.n_head / a.n_head_kv;
  const int g = blockIdx.x / n_groups, hg = blockIdx.x % n_groups;
  const int h0 = g * group + hg * kHeads;
  const int G = min(kHeads, group - hg * kHeads);
  const int split = blockIdx.y, t = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int hd = a.head_dim, hdv = a.head_dim_v;

  const int pos = a.pos[t];
  const int lo = a.sliding_window > 0 ? max(0, pos - a.sliding_window + 1) : 0;
  const int len = pos - lo + 1;
  const int per_split = max(kTile, (len + a.splits - 1) / a.splits);
  const int begin = lo + split * per_split;
  const int end = min(pos + 1, begin + per_split);

#pragma unroll 4
  for (int i = threadIdx.x; i < G * hd; i += kWarps * 32) {
    const float x = a.q[int64_t(t) * a.ldq + int64_t(h0 + i / hd) * hd + i % hd];
    qs[i / hd][i % hd] = __half2float(__float2half_rn(x));
  }
  __syncthreads();

  const int32_t* table = a.kv.table_of(t);
  const int ldv = a.kv.v_width;
  float m[kHeads], l[kHeads], acc[kHeads][D];
#pragma unroll
  for (int h = 0; h < kHeads; ++h) {
    m[h] = -INFINITY;
    l[h] = 0.f;
#pragma unroll
    for (int d = 0; d < D; ++d) acc[h][d] = 0.f;
  }

  for (int j0 = begin + warp * kTile; j0 < end; j0 += kWarps * kTile) {  // uniform per warp
    const int j = j0 + lane;
    const bool valid = j < end;
    float s[kHeads];
#pragma unroll
    for (int h = 0; h < kHeads; ++h) s[h] = 0.f;
    if (valid) {
      const uint16_t* kp = a.kv.k + a.kv.row(table, g, j, hd);
#pragma unroll 4
      for (int d0 = 0; d0 < hd; d0 += 8) {
        const uint4 raw = load16(kp + d0);
        const uint32_t r[4] = {raw.x, raw.y, raw.z, raw.w};
        float k[8];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          k[2 * i] = half_to_float(uint16_t(r[i] & 0xFFFF));
          k[2 * i + 1] = half_to_float(uint16_t(r[i] >> 16));
        }
#pragma unroll
        for (int h = 0; h < kHeads; ++h)
          if (h < G)
#pragma unroll
            for (int e = 0; e < 8; ++e) s[h] += qs[h][d0 + e] * k[e];
      }
    }
#pragma unroll
    for (int h = 0; h < kHeads; ++h) {
      if (h < G) {  // uniform per block
        float sc = -INFINITY;
        if (valid) {
          sc = s[h] * a.scale;
          if (a.softcap != 0.f) sc = a.softcap * tanhf(sc * (1.0f / a.softcap));
        }
        const float m_new = fmaxf(m[h], warp_max(sc));  // lane 0 is always valid: finite
        const float p = valid ? expf(sc - m_new) : 0.f;
        const float corr = expf(m[h] - m_new);
        l[h] = l[h] * corr + warp_sum(p);
#pragma unroll
        for (int d = 0; d < D; ++d) acc[h][d] *= corr;
        m[h] = m_new;
        ps[warp][h][lane] = p;
      }
    }
    __syncwarp();
    const int count = min(kTile, end - j0);
    // Unrolled so several value rows are in flight at once (the loop is latency-bound).
#pragma unroll 8
    for (int jj = 0; jj < count; ++jj) {
      float v[D];
      load_v<D>(a.kv.v + a.kv.row(table, g, j0 + jj, ldv), lane, hdv, v);
#pragma unroll
      for (int h = 0; h < kHeads; ++h) {
        if (h < G) {
          const float p = ps[warp][h][jj];
#pragma unroll
          for (int d = 0; d < D; ++d) acc[h][d] += p * v[d];
        }
      }
    }
    __syncwarp();
  }

  const int records = a.splits * kWarps;
#pragma unroll
  for (int h = 0; h < kHeads; ++h) {
    if (h < G) {
      float* rec = a.partials + ((int64_t(t) * a.n_head + h0 + h) * records + split * kWarps + warp) * (2 + hdv);
      if (lane == 0) {
        rec[0] = m[h];
        rec[1] = l[h];
      }
#pragma unroll
      for (int d = 0; d < D; ++d)
        if (lane * D + d < hdv) rec[2 + lane * D + d] = acc[h][d];
    }
  }
}

// Records are merged by all threads at once: weights exp(m_r - max) go to shared memory
// first, so each output dimension is one pass over the records instead of a serial chain.
__global__ void __launch_bounds__(128) attention_combine_kernel(AttentionArgs a) {
  begin_kernel();
  __shared__ float weight[kMaxRecords];
  __shared__ float scratch[32];
  __shared__ float head_out[kMaxHeadDimV];  // staged from here, whole chunks per warp
  const int h = blockIdx.x, t = blockIdx.y;
  const int hdv = a.head_dim_v, records = a.splits * kWarps;
  const float* recs = a.partials + (int64_t(t) * a.n_head + h) * records * (2 + hdv);
  float mx = -INFINITY;
  for (int r = threadIdx.x; r < records; r += 128)
    if (recs[r * (2 + hdv) + 1] > 0.f) mx = fmaxf(mx, recs[r * (2 + hdv)]);
  mx = block_max(mx, scratch);
  if (a.sinks) mx = fmaxf(mx, a.sinks[h]);  // the sink joins the max and, below, the sum
  float total = 0.f;
  for (int r = threadIdx.x; r < records; r += 128) {
    const float* rec = recs + r * (2 + hdv);
    const float w = rec[1] > 0.f ? expf(rec[0] - mx) : 0.f;
    weight[r] = w;
    total += w * rec[1];
  }
  total = block_sum(total, scratch);  // its barriers also publish weight[]
  if (a.sinks) total += expf(a.sinks[h] - mx);
  float* o = a.stage_formats ? head_out : a.out + int64_t(t) * a.ldo + int64_t(h) * hdv;
  for (int d = threadIdx.x; d < hdv; d += 128) {
    float v = 0.f;
#pragma unroll 4
    for (int r = 0; r < records; ++r) v += weight[r] * recs[r * (2 + hdv) + 2 + d];
    o[d] = total > 0.f ? v / total : 0.f;
  }
  if (a.stage_formats) {
    __syncthreads();
    const int64_t cols32 = int64_t(a.n_head) * hdv, first = int64_t(h) * hdv / 32;
    const int lane = threadIdx.x & 31;
    for (int c = threadIdx.x >> 5; c < hdv / 32; c += 4)
      stage_chunk(a.stage, a.stage_formats, cols32, t, first + c, head_out[32 * c + lane], lane);
  }
}

template <int D>
void launch_split_for(const AttentionArgs& a, cudaStream_t s) {
  const int groups = head_groups(a, heads_per_block(D));
  launch_kernel(attention_split_kernel<D>, dim3(a.n_head_kv * groups, a.splits, a.n_tokens), dim3(kWarps * 32), s, a,
                groups);
}

}  // namespace

bool attention_split_can_stage(int head_dim_v) { return head_dim_v % kChunk == 0; }

size_t attention_partial_floats(int n_tokens, int n_head, int head_dim_v, int splits) {
  return size_t(n_tokens) * n_head * splits * kWarps * (2 + head_dim_v);
}

void launch_attention_split(const AttentionArgs& a, cudaStream_t s) {
  if (a.head_dim_v <= 64) launch_split_for<2>(a, s);
  else if (a.head_dim_v <= 128) launch_split_for<4>(a, s);
  else if (a.head_dim_v <= 256) launch_split_for<8>(a, s);
  else launch_split_for<16>(a, s);
  launch_kernel(attention_combine_kernel, dim3(a.n_head, a.n_tokens), dim3(128), s, a);
}

}  // namespace tessera::cuda
