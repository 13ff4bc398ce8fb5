// The CPU operator set. Each op lives in its own file (native/cpu/<op>.cpp, with an
// <op>_avx2.cpp twin where vectorized) and is data-parallel: every thread of a ThreadPool
// region calls it with its (ith, nth) and processes its own share; callers put a barrier
// between ops that depend on each other. Activations are fp32, row-major, one row per token.
//
// AVX2 translation units may only call static-inline helpers from shared headers (see
// core/ggml_types.h) so no AVX2 code leaks into the scalar path through the linker.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/ggml_types.h"
#include "core/kv_cache.h"
#include "core/model_plan.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "core/weight_types.h"

namespace tessera {
class HugePageArena;  // core/aligned_buffer.h
}

namespace tessera::cpu {

// ---------------------------------------------------------------- matmul (matmul.cpp)

// The activation encoding a weight type's dot product consumes (as in llama.cpp, so results
// match it: F16/BF16 weights see activations rounded to their own type, Q4_0/Q8_0 see Q8_0
// blocks, K-quants Q8_K super-blocks).
// Q8_1 (Q4_1/Q5_1 weights): Q8_0's blocks with the fp16 d * sum(q) beside d.
enum class ActFormat { F32 = 0, F16 = 1, BF16 = 2, Q8_0 = 3, Q8_K = 4, Q8_1 = 5 };
constexpr int kActFormatCount = 6;  // sizes the per-format buffers (cpu_executor.h)
constexpr ActFormat kEncodedActFormats[] = {ActFormat::F16, ActFormat::BF16, ActFormat::Q8_0, ActFormat::Q8_K, ActFormat::Q8_1};
ActFormat act_format_for(GgmlType weight_type);
// Bytes of one encoded activation row of `cols` values.
size_t act_row_bytes(ActFormat format, int64_t cols);
// Bytes of n_tokens activation rows of `cols` values in `format`.
size_t act_bytes(ActFormat format, int64_t cols, int n_tokens);
// Encodes x [n_tokens][cols] into `out`; (row, block) units are split across threads.
void quantize_act(ActFormat format, const float* x, int n_tokens, int64_t cols, void* out, int ith, int nth);
// The elements [begin, end) of the flat x [n_tokens][cols] that quantize_act reads on thread
// ith: a phase that writes exactly these before encoding needs no barrier in between.
// False when units do not tile the rows (no such split).
bool quantize_act_split(ActFormat format, int n_tokens, int64_t cols, int ith, int nth, int64_t* begin, int64_t* end);

// Kernel-private weight layouts made at load time (see pack_weight.cpp).
enum class WeightLayout {
  Gguf = 0,     // row-major GGUF blocks only
  Q4_0x8 = 1,   // plus Q4_0 rows interleaved in groups of 8 (cpu/packed_q4_0x8.h)
  Q4_Kx8 = 2,   // plus Q4_K rows interleaved in groups of 8 (cpu/packed_q4_kx8.h)
  Q8_0x16 = 3,  // plus Q8_0 rows interleaved in groups of 16 (cpu/packed_q8_0x16.h), AVX-512 VNNI
  Q4_Kx16 = 4,  // plus Q4_K rows interleaved in groups of 16 (cpu/packed_q4_kx16.h), AVX-512 VNNI
  Q5_Kx16 = 5,  // plus Q5_K rows interleaved in groups of 16 (cpu/packed_q5_kx16.h), AVX-512 VNNI
  Q3_Kx16 = 6,  // plus Q3_K rows interleaved in groups of 16 (cpu/packed_q3_kx16.h), AVX-512 VNNI
  Q6_Kx16 = 7,  // plus Q6_K rows interleaved in groups of 16 (cpu/packed_q6_kx16.h), AVX-512 VNNI
};

// Rows per interleaved group of a repacked layout (1 for Gguf). Whole groups take exactly
// the bytes of their GGUF rows, so group g starts at g * group_rows * row_bytes.
static inline int64_t layout_group_rows(WeightLayout layout) {
  switch (layout) {
    case WeightLayout::Gguf: return 1;
    case WeightLayout::Q8_0x16:
    case WeightLayout::Q4_Kx16:
    case WeightLayout::Q5_Kx16:
    case WeightLayout::Q3_Kx16:
    case WeightLayout::Q6_Kx16: return 16;
    default: return 8;
  }
}

// The layout pack_weight repacks a type into (core/weight_types.h), Gguf for none: the
// AVX-512 VNNI column when that ISA is active at load, else the AVX2 one.
static inline WeightLayout repacked_layout(GgmlType type, bool avx512) {
  switch (type) {
#define TESSERA_REPACKED_LAYOUT(t, act, layout, layout512) \
  case GgmlType::t: return avx512 ? WeightLayout::layout512 : WeightLayout::layout;
    TESSERA_WEIGHT_TYPES(TESSERA_REPACKED_LAYOUT)
#undef TESSERA_REPACKED_LAYOUT
    default: return WeightLayout::Gguf;
  }
}

// Which of llama.cpp's two kernels for a weight type a product reproduces, where they sum in
// different orders: its batch kernel (Gemm) or its one-row kernel (Gemv). llama.cpp runs
// the batch kernel on each full group of 4 tokens of a dense Q4_K matmul and on dense float
// matmuls of 2 or more tokens, the one-row kernel on the 1..3 remaining Q4_K tokens, on a
// single token, on float shapes its batch kernel refuses, and on every token routed to an
// expert (its mul_mat_id multiplies each routed token on its own, at any batch size).
//   Q4_K (repacked): both sum a 32-value sub-block exactly in int32 weighted by its 6-bit
//     scale (the mins likewise through the activation sums); GEMM then adds per 64 values
//     acc += float(int sum) * (d * dx), GEMV sums the whole 256-value super-block in int32
//     first and does one multiply-add.
//   F32, F16, BF16: tinyBLAS (one 8-lane accumulator per output) vs ggml_vec_dot (four,
//     folded at the end); see matmul_avx2.cpp.
// The results differ in the last bits, which int8 re-quantization of the next activations
// can turn into a different quantum. Other types sum alike in both.
enum class DotOrder { Gemm = 0, Gemv = 1 };

// A weight matrix W [rows][cols] (GGUF ne0 = cols) and the layout its kernel streams.
struct PackedWeight {
  GgmlType type = GgmlType::F32;
  int64_t rows = 0, cols = 0;
  const uint8_t* data = nullptr;      // the GGUF rows: in the file mapping, or a huge-page copy (pack_weight.cpp)
  WeightLayout layout = WeightLayout::Gguf;
  const uint8_t* packed = nullptr;    // the repacked copy covering rows [0, whole groups), or null
  std::shared_ptr<uint8_t> owned;     // owns `packed`, or `data` when that is a copy
};
// Validates type and shape and prepares `w` (called once at load time). With allow_repack it
// may copy the weights into a kernel-private layout (see cpu/packed_q4_0x8.h, packed_q4_kx8.h)
// or, unless `resident` (the rows are in huge pages of the model's own already), into huge pages.
// With an arena, copies under kStreamedHugePageBytes go into its huge-page chunks.
Status pack_weight(const TensorRef& t, PackedWeight* out, bool allow_repack = true, bool resident = false,
                   HugePageArena* arena = nullptr);

// One product of a matmul_shared group: y[t * ldy + r] = sum_c W[r][c] * x[t][c] for every
// row r, where `act` holds x encoded in act_format_for(w->type). Dense projections keep the
// GEMM order for every token, also for the 1..3 that llama.cpp's batches leave to GEMV and
// for its one-token decode steps: Tessera's logits then do not depend on how a sequence is
// split into batches, and equal llama.cpp's for a prompt of whole groups of 4 tokens.
//
// With `residual`, each thread also adds the rows it just computed into residual [t][ldy]
// (residual += y, the same fp32 add as a separate add phase): the block's residual add
// then needs no phase and no barrier of its own, and reads y while it is in the thread's
// L1 rather than from the core that wrote it.
struct MatmulJob {
  const PackedWeight* w;
  const void* act;
  float* y;
  int64_t ldy;
  DotOrder order = DotOrder::Gemm;
  float* residual = nullptr;
};

// The most jobs one matmul_shared group takes (q/k/v is the largest group the executor forms).
constexpr int kMaxMatmulJobs = 4;

// Every job of the group for tokens [0, n_tokens), called by all nth threads of a pool
// region as thread ith. The rows (jobs after one another, in 16-row units) are split into
// nth contiguous parts; thread i works through part i from its front, each claim half of
// what is left of the part, and a thread done with its own part takes half of what is left
// of another's from its back (down to 16 rows at the end), so a thread slowed by memory
// traffic or the OS does not hold the others at the next barrier. cursors[0..nth) must read
// 0 when the first thread starts and serve no other work until all threads are past the
// next barrier (ThreadPool::work_cursors() provides exactly that).
void matmul_shared(const MatmulJob* jobs, int n_jobs, int n_tokens, ThreadPool::WorkCursor* cursors, int ith, int nth);

// Rows [row_begin, row_end) of the same product, single-threaded, summed in `order` (float
// weights of a shape llama.cpp's tinyBLAS refuses always in Gemv's): the MoE path uses it to
// split work across experts and rows itself. act_key: see DotTile (0: nothing is reused).
void matmul_rows(const PackedWeight& w, const void* act, int n_tokens, float* y, int64_t ldy,
                 int64_t row_begin, int64_t row_end, DotOrder order, uint64_t act_key = 0);

// Matrix `index` of a stack of matrices of `rows` rows each (experts, per-head projections),
// keeping the repacked layout when the slice is made of whole 8-row groups.
PackedWeight weight_slice(const PackedWeight& w, int64_t index, int64_t rows);

// (head_matmul.cpp) One matrix per attention head, W [n_head][rows][cols] (GGUF ne =
// {cols, rows, n_head}): y[t * ldy + h * ldh + r] = sum_c W[h][r][c] * x[h][t][c], where
// `act` holds x head-major ([n_head][n_tokens][cols]) encoded in act_format_for(w.type).
// Work is split over (head, chunk of rows).
void head_matmul(const PackedWeight& w, int n_head, const void* act, int n_tokens, float* y, int64_t ldy, int64_t ldh,
                 int ith, int nth);

// (copy_heads.cpp) Strided copy of `width` values per (token, head):
// y[t * y_ld_token + h * y_ld_head + c] = x[t * x_ld_token + h * x_ld_head + c]. Regroups
// per-head slices (token-major <-> head-major, or into a wider row). Split over (token, head).
void copy_heads(const float* x, int64_t x_ld_token, int64_t x_ld_head, float* y, int64_t y_ld_token, int64_t y_ld_head,
                int n_tokens, int n_head, int width, int ith, int nth);

// ---------------------------------------------------------------- elementwise / rows

// Embedding lookup: out[i] = dequantized row tokens[i] of `table` [n_vocab][n_embd].
// Token ids are validated before this is called.
void get_rows(const TensorRef& table, const int32_t* tokens, int n_tokens, float* out, int ith, int nth);
// Converts one row of n elements of `type` to fp32.
void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);

// (rms_norm.cpp) y[t] = x[t] / sqrt(mean(x[t]^2) + eps) * weight; weight may be null.
void rms_norm(const float* x, const float* weight, float* y, int n_rows, int dim, float eps, int ith, int nth);
// The same for elements [begin, end) of the flat y [rows][dim] only (each row they touch is
// summed whole, as rms_norm sums it: the same bits); not in place.
void rms_norm_span(const float* x, const float* weight, float* y, int dim, float eps, int64_t begin, int64_t end);
// (layer_norm.cpp) y[t] = (x[t] - mean) / sqrt(var + eps) * weight + bias; either may be null.
void layer_norm(const float* x, const float* weight, const float* bias, float* y, int n_rows, int dim, float eps,
                int ith, int nth);

// (rope.cpp) Rotates x [n_tokens][n_heads][head_dim] in place; token t sits at pos[t].
// Normal style pairs (2i, 2i+1); neox pairs (i, i + n_dims/2). `freq_factors` divides the
// per-pair frequency when non-null.
void rope(float* x, const int32_t* pos, int n_tokens, int n_heads, int head_dim, const RopeParams& p,
          const float* freq_factors, int ith, int nth);

// (swiglu.cpp) out[i] = act(gate[i]) * up[i] (up null: act(gate[i])) over n_rows rows of `dim`, where rows are
// strided by the given leading dimensions.
void swiglu(const float* gate, const float* up, float* out, int n_rows, int dim, int64_t ld_in, int64_t ld_out,
            GateActivation act, int ith, int nth);
// The same for the flat elements [begin, end) of [n_rows][dim] (each element's formula does not
// depend on the split).
void swiglu_span(const float* gate, const float* up, float* out, int dim, int64_t ld_in, int64_t ld_out, GateActivation act,
                 int64_t begin, int64_t end);

// (add.cpp) x[i] += y[i] for i < n; and x[t][i] += b[i] (bias broadcast over rows).
void add(float* x, const float* y, int64_t n, int ith, int nth);
void add_bias(float* x, const float* bias, int n_rows, int dim, int64_t ldx, int ith, int nth);

// (softmax.cpp) In-place numerically stable softmax of one row.
void softmax(float* x, int n);

// (moe_route.cpp) Router of one token: from logits [n_expert] writes the selected expert ids
// and their weights [n_expert_used], per MoeParams (gating, selection bias, group-limited
// top-k, renormalization, scale). scratch: 2 * n_expert floats. n_expert <= 512,
// n_group <= 256 (validated with the plan).
void moe_route(const float* logits, const float* selection_bias, const MoeParams& p, int32_t* experts, float* weights,
               float* scratch);

// (hadamard.cpp) Rotates each row of x [n_rows][width] (rows ldx apart) in place by the
// orthonormal Walsh-Hadamard matrix of size n (a power of two dividing width), one run of n
// values at a time, as llama.cpp rotates what it stores in a quantized KV cache.
void hadamard(float* x, int n_rows, int64_t ldx, int64_t width, int n, int ith, int nth);
// The rotation size llama.cpp uses for keys of `width` values: the largest power of two of
// at least 64 dividing it; 0 when 64 does not (then nothing is rotated). Values use 64.
int hadamard_size(int width);

// ---------------------------------------------------------------- KV cache (kv_store.cpp)

// One layer's share of the paged KV pool (core/kv_cache.h): per block and kv head one key
// tile and one value tile of kKvBlock positions.
//   F16 keys [kKvBlock / 8][head_dim][8]: 8-position groups whose vector at entry i holds
//     that entry for the 8 positions, so a group's 8 scores come out as the 8 lanes of a
//     vector (each lane accumulating one position over head_dim, in llama.cpp's lane order)
//     with no horizontal sums; a tile is one contiguous run.
//   F16 values, transposed [head_dim_v][kKvBlock]: a value column over the tile's positions
//     is contiguous, so the probability-weighted sum runs 8 positions per vector, as
//     llama.cpp's transposed V cache does (the same lanes, hence the same rounding).
//   Q8_0 / Q4_0 keys and values: one row of head_dim (head_dim_v) values per position
//     [kKvBlock][width / 32 blocks], quantized as llama.cpp quantizes its cache rows.
// With v_in_k (multi-head latent attention) there is no value store: value j of head g is
// the first head_dim_v entries of key j.
struct KvLayer {
  uint8_t* k = nullptr;  // [n_blocks][n_head_kv] key tiles of k_tile bytes
  uint8_t* v = nullptr;  // [n_blocks][n_head_kv] value tiles of v_tile bytes; null with v_in_k
  uint64_t k_tile = 0, v_tile = 0;
  int n_head_kv = 0;
  KvType type = KvType::F16;
  bool v_in_k = false;
  uint8_t* key_tile(int block, int g) const { return k + (uint64_t(block) * n_head_kv + g) * k_tile; }
  uint8_t* value_tile(int block, int g) const { return v + (uint64_t(block) * n_head_kv + g) * v_tile; }
};

// Index of key entry i of slot s (0..kKvBlock) inside an F16 key tile of head_dim entries.
inline int64_t kv_key_index(int head_dim, int s, int i) { return int64_t(s & ~7) * head_dim + int64_t(i) * 8 + (s & 7); }

// Where the rows of a chunk live: row t is at position pos[t] of the sequence whose block
// ids are table[t] (position p in block table[t][p / kKvBlock]).
struct KvRows {
  const int32_t* pos = nullptr;
  const int32_t* const* table = nullptr;
};

// Writes the k/v rows of n_tokens rows into their blocks. k: [n_tokens][n_head_kv][head_dim],
// v: [n_tokens][n_head_kv][head_dim_v], rows strided by ldk/ldv. With kv.v_in_k only k is
// written (v is ignored).
void kv_store(const KvLayer& kv, const float* k, int64_t ldk, const float* v, int64_t ldv, int n_tokens,
              const KvRows& rows, int head_dim, int head_dim_v, int ith, int nth);

// Asks for the cache lines kv_store will write on thread ith (the same split), so that they
// arrive while other work runs. Why: one decode token's values land in a different line per
// entry (transposed tiles), lines that the step's weight stream evicted since the last token
// wrote them; stored cold, kv_store took ~9 us per layer of a 1B model, 0.14 ms per token.
// Steps of more than kKvPrefetchTokens rows write whole runs of lines and skip it.
constexpr int kKvPrefetchTokens = 16;
void kv_store_prefetch(const KvLayer& kv, int n_tokens, const KvRows& rows, int head_dim, int head_dim_v, int ith,
                       int nth);

// ---------------------------------------------------------------- attention (attention.cpp)

struct AttentionArgs {
  const float* q = nullptr;  // [n_tokens][n_head][head_dim], token rows strided by ldq
  int64_t ldq = 0;
  KvLayer kv;
  KvRows rows;               // row t sees positions [lo, rows.pos[t]] of its own sequence
  int n_tokens = 0;
  int max_context = 0;       // positions the scratch covers: every rows.pos[t] < max_context
  int n_head = 0, n_head_kv = 0, head_dim = 0, head_dim_v = 0;
  int sliding_window = 0;    // 0: lo = 0; else lo = max(0, pos - sliding_window + 1)
  // Bidirectional (encoder) attention: row t sees [lo, last[t]] rather than [lo, rows.pos[t]]
  // (every position of its sequence in the step, whose keys and values are all stored). null: causal.
  const int32_t* last = nullptr;
  float scale = 1.f;
  float softcap = 0.f;       // 0: none; else scores = softcap * tanh(scores * (1 / softcap)), after the scale
  // Attention sinks [n_head] (gpt-oss), or null: head h's softmax runs as if one more score,
  // sinks[h], joined the row (its max and its sum) with no value (ggml's soft_max sinks).
  const float* sinks = nullptr;
  float* out = nullptr;      // [n_tokens][n_head][head_dim_v], rows strided by ldo
  int64_t ldo = 0;
  float* scratch = nullptr;  // attention_scratch_floats() floats per thread, thread ith uses its slice
  // Tracing only: the weight of each position, row t head h at probs + (t * n_head + h) *
  // probs_ld + j for j <= rows.pos[t] (0 outside the window); null: not recorded.
  float* probs = nullptr;
  int64_t probs_ld = 0;
};
// Positions rounded up to whole 8-position groups (the scores rows of the scratch).
inline int kv_padded(int positions) { return (positions + 7) / 8 * 8; }
size_t attention_scratch_floats(int max_context, int head_dim, int head_dim_v);
// Query heads of one kv head that the AVX2 kernel attends together (sharing K and V loads).
constexpr int kAttentionHeads = 4;
// Thread ith's slice of a.scratch: scores [kAttentionHeads][kv_padded(max_context)], rounded
// (or, for a quantized cache, Q8_0-encoded) q [kAttentionHeads][head_dim], the value
// accumulator [head_dim_v] (and after it a dequantized value row for a quantized cache).
struct AttentionScratch {
  float* scores;
  int64_t scores_stride;
  float* q16;
  float* acc;
};
AttentionScratch attention_scratch(const AttentionArgs& a, int ith);
// Causal (or, with a.last, bidirectional) attention with GQA/MQA (query head h reads kv head h / (n_head / n_head_kv)) over
// each row's own sequence in the paged cache. A causal row's work grows with its position,
// so no thread takes only late tokens: the scalar kernel deals (token, head) pairs
// round-robin; the AVX2 kernel splits each token's (kv head, chunk of its heads) items into
// contiguous runs, one per thread, starting one thread later per token. A quantized cache
// runs attention_quantized (attention_quant.cpp).
void attention(const AttentionArgs& a, int ith, int nth);
// (attention_quant.cpp) The same over a Q8_0 / Q4_0 cache: scores are the cache type's dot
// product with q encoded as Q8_0 (llama.cpp's K·q for a quantized K), the softmax in fp32,
// values dequantized and summed in fp32.
void attention_quantized(const AttentionArgs& a, int ith, int nth);

// ---------------------------------------------------------------- vector search (vector_topk.cpp)

// Cosine runs as Dot over rows normalized on insertion.
enum class VectorMetric { Dot = 0, L2 = 1 };
// Scores thread ith's share of the rows of data [n][dim] against query [dim] (Dot: the dot
// product; L2: minus the squared distance, so higher is nearer for both) and writes its best
// k, best first (ties: the lower row), to rows/scores [nth][k] at [ith]; -1 pads a share of
// fewer than k rows. NaN scores never rank.
void vector_topk(const float* data, int64_t n, int dim, const float* query, VectorMetric metric, int k, int32_t* rows,
                 float* scores, int ith, int nth);

// ---------------------------------------------------------------- Mamba-2 (ssm_conv.cpp, ssm_scan.cpp)

// The most conv taps ssm_conv takes (Mamba-2 files use 4).
constexpr int kMaxSsmConv = SsmParams::kMaxConv;

// (ssm_conv.cpp) Causal depthwise conv over n_rows consecutive rows of one sequence, for
// channels [c0, c1): y[t][c] = sum_k win_t[k] * w[c][k] + bias[c] (bias may be null), where win_t is the
// d_conv - 1 inputs before row t then x[t][c], summed from the oldest tap (ggml_ssm_conv's
// order); the d_conv - 1 inputs before the first row come from state [d_conv - 1][channels]
// (oldest first), which is left holding the last d_conv - 1 inputs. y may alias x (each
// channel is read before it is written).
void ssm_conv(float* state, const float* x, int64_t ldx, int n_rows, const float* w, const float* bias, int64_t channels,
              int d_conv, float* y, int64_t ldy, int64_t c0, int64_t c1);

// (ssm_scan.cpp) Mamba-2's selective scan over n_rows consecutive rows of one sequence, for
// heads [h0, h1). Per head h of group g = h / (n_head / n_group) and row t, with
// dt' = softplus(dt[t][h] + dt_bias[h]):
//   state[h] = state[h] * exp(dt' * A[h]) + (x[t][h] * dt') (outer) B[t][g]
//   y[t][h]  = state[h] . C[t][g] + x[t][h] * D[h]
// state is [n_head][head_dim][d_state], updated in place; x [n_head][head_dim], B and C
// [n_group][d_state] are rows of ld_x (the conv output), dt rows of ld_dt.
struct SsmScanArgs {
  float* state = nullptr;
  const float* x = nullptr;
  const float* B = nullptr;
  const float* C = nullptr;
  int64_t ld_x = 0;
  const float* dt = nullptr;
  int64_t ld_dt = 0;
  const float* dt_bias = nullptr;  // [n_head]
  const float* A = nullptr;        // [n_head]
  const float* D = nullptr;        // [n_head]
  float* y = nullptr;              // rows of ld_y: [n_head][head_dim]
  int64_t ld_y = 0;
  int n_rows = 0, n_head = 0, head_dim = 0, d_state = 0, n_group = 0;
};
void ssm_scan(const SsmScanArgs& a, int h0, int h1);

}  // namespace tessera::cpu
