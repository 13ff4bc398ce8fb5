// CudaExecutor: one engine on the GPU. Memory is allocated once in init: the fp16 paged KV
// pool (per layer [n_blocks][n_head_kv][kKvBlock][head_dim] key tiles, then the value
// tiles) and one scratch allocation holding the activations of a chunk of rows (residual x,
// fused qkv rows, attention output, fused gate/up rows, staged matmul inputs, split-KV
// records, gathered logit rows and their logits, token ids, positions, block tables and
// flash query tiles; for mixture-of-experts models also router logits, the routing (expert
// id and weight per token and choice), the grouping by expert, and the experts' gate/up,
// staged and output rows per (token, choice) pair). step() copies a chunk's ids, positions
// and tables in, enqueues the forward pass on the engine's stream and copies the wanted
// logits out; nothing is allocated per step.
//  - Chunks with a prompt in them are enqueued layer by layer; the host waits for layer
//    l - 1 to finish before enqueuing layer l + 1, so request_abort stops the pass within
//    about a layer.
//  - A decode step (up to kMaxGraphRows sequences, one row each, every logit wanted) is
//    captured once per row count as a CUDA graph and replayed: every kernel reads token
//    ids, positions, block tables and expert ids from device memory, so the same graph
//    serves every position, table and routing. Should capture fail, steps run as plain
//    launches.
#include <algorithm>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "cuda/cuda_backend.h"

namespace tessera::cuda {

namespace {

constexpr int kMaxLogitRows = 64;
constexpr int kMaxSplits = 64;
// Split-KV records are sized for this many decode rows at full splits; more rows split less.
constexpr int kSplitRows = 16;

Status check_launches(const char* what) { return cuda_status(cudaGetLastError(), what); }

}  // namespace

CudaExecutor::CudaExecutor(const CudaBackend& backend)
    : backend_(backend), plan_(backend.plan()), w_(backend.weights()) {}

CudaExecutor::~CudaExecutor() {
  if (stream_) cudaStreamSynchronize(stream_);
  for (cudaGraphExec_t g : decode_graphs_)
    if (g) cudaGraphExecDestroy(g);
  for (cudaEvent_t e : layer_done_)
    if (e) cudaEventDestroy(e);
  if (stream_) cudaStreamDestroy(stream_);
  cudaGetLastError();
}

void CudaExecutor::layout(BumpAllocator& c) {
  const ModelPlan& p = plan_;
  const size_t B = size_t(batch_);
  const size_t w32 = size_t(round_up(widest_, kChunk));
  x_ = c.take<float>(B * p.n_embd);
  qkv_ = c.take<float>(B * qkv_w_);
  attn_ = c.take<float>(B * attn_w_);
  gate_up_ = c.take<float>(B * 2 * ff_);
  logits_ = c.take<float>(size_t(logit_rows_) * p.n_vocab);
  gathered_ = c.take<float>(size_t(logit_rows_) * p.n_embd);
  stage_.q8 = c.take<int8_t>(B * w32);
  stage_.ds = c.take<float2>(B * (w32 / 32));
  stage_.f32 = c.take<float>(B * w32);
  stage_.f16 = c.take<uint16_t>(B * w32);
  // Decode uses up to splits_ records per head and row; the split kernel also serves prefill
  // (one split) when the flash kernel does not cover the head size.
  partials_ = c.take<float>(std::max(attention_partial_floats(kSplitRows, p.n_head, p.head_dim_v, splits_),
                                     attention_partial_floats(batch_, p.n_head, p.head_dim_v, 1)));
  tokens_ = c.take<int32_t>(B);
  pos_ = c.take<int32_t>(B);
  row_table_ = c.take<int32_t>(B);
  logit_idx_ = c.take<int32_t>(B);
  tiles_ = c.take<int4>(B);
  tables_ = c.take<int32_t>(size_t(max_table_entries_));
  if (has_post_norm_) block_out_ = c.take<float>(B * p.n_embd);
  if (has_mla_) {
    const MlaParams& m = p.mla;
    mla_kv_ = c.take<float>(B * (m.kv_lora_rank + m.head_dim_rope));
    mla_qa_ = c.take<float>(B * std::max(m.q_lora_rank, 1));
    mla_q_ = c.take<float>(B * p.n_head * (m.head_dim_nope + m.head_dim_rope));
    mla_out_ = c.take<float>(B * p.n_head * m.head_dim_v);
    head_ids_ = c.take<int32_t>(B * p.n_head);
  }
  if (has_moe_) {
    const size_t pairs = B * size_t(p.moe.n_expert_used), f32 = size_t(round_up(std::max(p.n_ff_exp, 1), kChunk));
    router_ = c.take<float>(B * router_w_);
    sel_ = c.take<int32_t>(pairs);
    sel_w_ = c.take<float>(pairs);
    groups_.order = c.take<int32_t>(pairs);
    groups_.tiles = c.take<int4>(size_t(moe_max_tiles(int(pairs), p.moe.n_expert)));
    groups_.n_tiles = c.take<int32_t>(1);
    moe_gate_up_ = c.take<float>(pairs * 2 * p.n_ff_exp);
    moe_out_ = c.take<float>(pairs * p.n_embd);
    shexp_out_ = c.take<float>(B * p.n_embd);
    moe_stage_.q8 = c.take<int8_t>(pairs * f32);
    moe_stage_.ds = c.take<float2>(pairs * (f32 / 32));
    moe_stage_.f32 = c.take<float>(pairs * f32);
    moe_stage_.f16 = c.take<uint16_t>(pairs * f32);
  }
}

Status CudaExecutor::init(const ExecutorOptions& options) {
  const ModelPlan& p = plan_;
  if (options.max_context < 1 || options.n_blocks < 1 || options.batch_size < 1)
    return Status::error(StatusCode::InvalidArgument, "context size, block count and batch size must be positive");
  if (options.kv_type != KvType::F16)
    return Status::error(StatusCode::BackendUnavailable,
                         std::string("the CUDA backend stores the KV cache as f16 only; kvCacheType \"") +
                             kv_type_name(options.kv_type) + "\" runs on the CPU backend (backend: \"cpu\")");
  max_context_ = options.max_context;
  n_blocks_ = options.n_blocks;
  batch_ = options.batch_size;
  logit_rows_ = std::min(batch_, kMaxLogitRows);
  // Every row of a chunk may be a sequence of its own, each holding up to a full context.
  max_table_entries_ = int(std::min<int64_t>(int64_t(batch_) * (max_context_ / kKvBlock + 1), int64_t(1) << 26));
  qkv_w_ = int64_t(p.n_head) * p.head_dim + int64_t(p.n_head_kv) * (p.head_dim + p.head_dim_v);
  attn_w_ = int64_t(p.n_head) * p.head_dim_v;
  ff_ = std::max(p.n_ff, 1);
  for (const LayerWeights& L : w_.layers) {
    if (!L.moe) continue;
    has_moe_ = true;
    ff_ = std::max(ff_, L.experts.shexp_ff);
    router_w_ = std::max<int64_t>(router_w_, p.moe.n_expert + (L.experts.shexp_gated ? 1 : 0));
  }
  has_mla_ = p.mla.kv_lora_rank > 0;
  for (const LayerWeights& L : w_.layers) has_post_norm_ = has_post_norm_ || L.attn_post_norm || L.ffn_post_norm;
  widest_ = std::max<int64_t>({p.n_embd, attn_w_, ff_});
  if (has_mla_) {
    // Staged MLA inputs: the q LoRA row, the (token, head) rows of q_nope as one row per
    // token's worth, and the expanded values before wo.
    const MlaParams& m = p.mla;
    widest_ = std::max<int64_t>({widest_, m.q_lora_rank, p.n_head * round_up(m.head_dim_nope, kChunk),
                                 int64_t(p.n_head) * m.head_dim_v});
  }
  // Enough decode splits to give every SM a couple of blocks, none shorter than 32 positions.
  const int blocks_per_split = p.n_head_kv * ((p.n_head / p.n_head_kv + 7) / 8);
  splits_ = std::max(1, std::min({kMaxSplits, (2 * backend_.sm_count() + blocks_per_split - 1) / blocks_per_split,
                                  (max_context_ + 31) / 32}));

  TESSERA_CUDA_TRY(cudaSetDevice(backend_.device()), "selecting the CUDA device");
  TESSERA_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "creating a CUDA stream");
  for (cudaEvent_t& e : layer_done_)
    TESSERA_CUDA_TRY(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "creating a CUDA event");

  // MLA keeps one latent row per position, read as key and (its prefix) as value: no V tiles.
  const size_t k_elems = size_t(n_blocks_) * p.n_head_kv * kKvBlock * p.head_dim;
  const size_t v_elems = has_mla_ ? 0 : size_t(n_blocks_) * p.n_head_kv * kKvBlock * p.head_dim_v;
  block_bytes_ = kv_block_bytes(p, KvType::F16);
  TESSERA_RETURN_IF_ERROR(kv_.allocate((k_elems + v_elems) * sizeof(uint16_t) * p.n_layer, "KV cache"));
  // Zeroed so that no row the kernels might touch before it is written holds NaN bits.
  TESSERA_CUDA_TRY(cudaMemsetAsync(kv_.data(), 0, kv_.size(), stream_), "clearing the KV cache");
  uint16_t* cursor = reinterpret_cast<uint16_t*>(kv_.data());
  for (int il = 0; il < p.n_layer; ++il) {
    k_cache_.push_back(cursor);
    v_cache_.push_back(has_mla_ ? cursor : cursor + k_elems);
    cursor += k_elems + v_elems;
  }

  BumpAllocator measure(nullptr, kDeviceAlignment);
  layout(measure);
  TESSERA_RETURN_IF_ERROR(scratch_.allocate(measure.used(), "activation buffers"));
  BumpAllocator real(scratch_.data(), kDeviceAlignment);
  layout(real);
  if (has_mla_) {
    std::vector<int32_t> heads(size_t(batch_) * p.n_head);
    for (size_t i = 0; i < heads.size(); ++i) heads[i] = int32_t(i % size_t(p.n_head));
    TESSERA_CUDA_TRY(cudaMemcpy(head_ids_, heads.data(), heads.size() * sizeof(int32_t), cudaMemcpyHostToDevice),
                     "preparing the attention heads");
  }
  // Host staging: ids, positions, row tables, logit rows (4 x batch), tiles (4 x batch), tables.
  TESSERA_RETURN_IF_ERROR(host_io_.allocate((8 * size_t(batch_) + size_t(max_table_entries_)) * sizeof(int32_t), "token ids"));
  TESSERA_RETURN_IF_ERROR(host_logits_.allocate(size_t(logit_rows_) * p.n_vocab * sizeof(float), "logits"));
  return cuda_status(cudaStreamSynchronize(stream_), "preparing the engine");
}

KvPaged CudaExecutor::kv_of(int il) const {
  const ModelPlan& p = plan_;
  KvPaged kv;
  kv.k = k_cache_[il];
  kv.v = v_cache_[il];
  kv.n_head_kv = p.n_head_kv;
  kv.k_width = p.head_dim;
  kv.v_width = has_mla_ ? p.head_dim : p.head_dim_v;
  kv.tables = tables_;
  kv.row_table = row_table_;
  return kv;
}

unsigned CudaExecutor::formats_for(const std::vector<Projection>& ps, int n) const {
  unsigned f = 0;
  for (const Projection& pr : ps) f |= stage_formats_for(pr.w, n);
  return f;
}

void CudaExecutor::enqueue_matmul(const Projection& pr, int n, float* y, int64_t ldy, bool accumulate) {
  MatmulOut out;
  out.y = y + pr.offset;
  out.ldy = ldy;
  out.bias = pr.bias;
  out.accumulate = accumulate;
  launch_matmul(pr.w, stage_, n, out, stream_);
}

Status CudaExecutor::enqueue_layer(int il, const Chunk& chunk) {
  const LayerWeights& L = w_.layers[il];
  if (L.mla) enqueue_mla_attention(il, chunk);
  else enqueue_attention(il, chunk);
  if (L.moe) enqueue_moe_ffn(L, chunk.n);
  else enqueue_dense_ffn(L, chunk.n);
  return check_launches("launching a decoder layer");
}

void CudaExecutor::enqueue_attention(int il, const Chunk& chunk) {
  const ModelPlan& p = plan_;
  const int n = chunk.n;
  const LayerWeights& L = w_.layers[il];
  cudaStream_t s = stream_;
  launch_norm_stage(x_, p.n_embd, n, p.n_embd, p.norm, L.attn_norm, L.attn_norm_b, p.norm_eps, formats_for(L.qkv, n),
                    stage_, s);
  for (const Projection& pr : L.qkv) enqueue_matmul(pr, n, qkv_, qkv_w_, false);
  QkvPost post;
  post.qkv = qkv_;
  post.ldqkv = qkv_w_;
  post.n_tokens = n;
  post.n_head = p.n_head;
  post.n_head_kv = p.n_head_kv;
  post.head_dim = p.head_dim;
  post.head_dim_v = p.head_dim_v;
  post.pos = pos_;
  post.q_norm = L.q_norm;
  post.k_norm = L.k_norm;
  post.norm_eps = p.norm_eps;
  post.rope = layer_rope(p, p.layers[il]);
  post.freq_factors = w_.rope_freqs;
  post.temp_scale = p.attn_temp_scale;
  post.temp_floor = p.attn_temp_floor;
  post.kv = kv_of(il);
  launch_qkv_post(post, s);

  AttentionArgs a = attention_args(il, chunk, qkv_w_);
  if (chunk.prefill && flash_attention_supported(p.head_dim, p.head_dim_v)) {
    launch_attention_flash(a, s);
  } else {
    if (attention_split_can_stage(p.head_dim_v)) {
      a.stage_formats = stage_formats_for(L.wo.w, n);
      a.stage = stage_;
    }
    launch_attention_split(a, s);
  }
  if (!a.stage_formats) launch_copy_stage(attn_, attn_w_, n, int(attn_w_), stage_formats_for(L.wo.w, n), stage_, s);
  enqueue_output_projection(L, n);
}

// A block output that a post norm (Gemma) normalizes goes to block_out_ first, then joins x.
void CudaExecutor::enqueue_residual_out(const DeviceMatrix& w, const float* bias, const float* post_norm, int n) {
  MatmulOut out;
  out.bias = bias;
  if (post_norm) {
    out.y = block_out_;
    out.ldy = plan_.n_embd;
    launch_matmul(w, stage_, n, out, stream_);
    launch_post_norm_add(block_out_, post_norm, n, plan_.n_embd, plan_.norm_eps, plan_.residual_scale, x_, stream_);
    return;
  }
  out.y = x_;
  out.ldy = plan_.n_embd;
  out.scale = plan_.residual_scale;
  out.accumulate = true;
  launch_matmul(w, stage_, n, out, stream_);
}

// The attention of layer il over a chunk's rows as both attention blocks set it up: query
// rows of qkv_ (ldq apart), the layer's blocks, output into attn_; decode splits the KV
// (fewer splits the more rows, so the records stay within what partials_ holds).
AttentionArgs CudaExecutor::attention_args(int il, const Chunk& chunk, int64_t ldq) const {
  const ModelPlan& p = plan_;
  const int n = chunk.n;
  AttentionArgs a;
  a.q = qkv_;
  a.ldq = ldq;
  a.kv = kv_of(il);
  a.pos = pos_;
  a.tiles = tiles_;
  a.n_tiles = chunk.n_tiles;
  a.n_tokens = n;
  a.n_head = p.n_head;
  a.n_head_kv = p.n_head_kv;
  a.head_dim = p.head_dim;
  a.head_dim_v = p.head_dim_v;
  a.sliding_window = p.layers[il].sliding_window;
  // Gemma's query scale multiplies q before attention on the CPU (for its fp16 rounding);
  // here it folds into the softmax scale, equal up to that rounding.
  a.scale = p.query_scale != 0.f ? p.attn_scale * p.query_scale : p.attn_scale;
  a.softcap = p.attn_logit_softcap;
  a.sinks = w_.layers[il].attn_sinks;
  a.out = attn_;
  a.ldo = attn_w_;
  a.partials = partials_;
  a.splits = chunk.prefill ? 1 : std::max(1, std::min(splits_, splits_ * kSplitRows / n));
  return a;
}

// x += wo . (the staged attention output) + bo.
void CudaExecutor::enqueue_output_projection(const LayerWeights& L, int n) {
  enqueue_residual_out(L.wo.w, L.bo, L.attn_post_norm, n);
}

// Multi-head latent attention (deepseek2), as the CPU executor's mla_attention_block: the
// latent kv and q projections, mla_post (RoPE, latent norm, cache store), each head's q_nope
// through its wk_b into the latent part of its MQA query, attention over the latent cache
// (one kv head; values are the latent prefix of each row), each head's latent output through
// its wv_b, then wo.
void CudaExecutor::enqueue_mla_attention(int il, const Chunk& chunk) {
  const ModelPlan& p = plan_;
  const int n = chunk.n;
  const LayerWeights& L = w_.layers[il];
  const MlaWeights& m = L.latent;
  const MlaParams& mp = p.mla;
  const int H = p.n_head, nope = mp.head_dim_nope, lora = mp.kv_lora_rank;
  const int64_t qk = nope + mp.head_dim_rope, kv_w = lora + mp.head_dim_rope, o_w = int64_t(H) * mp.head_dim_v;
  cudaStream_t s = stream_;

  const bool q_lora = mp.q_lora_rank > 0;
  const Projection& q_in = q_lora ? m.wq_a : m.wq;
  launch_norm_stage(x_, p.n_embd, n, p.n_embd, p.norm, L.attn_norm, L.attn_norm_b, p.norm_eps,
                    stage_formats_for(q_in.w, n) | stage_formats_for(m.wkv_a.w, n), stage_, s);
  enqueue_matmul(m.wkv_a, n, mla_kv_, kv_w, false);
  if (q_lora) {
    enqueue_matmul(m.wq_a, n, mla_qa_, mp.q_lora_rank, false);
    launch_norm_stage(mla_qa_, mp.q_lora_rank, n, mp.q_lora_rank, NormKind::Rms, m.q_a_norm, nullptr, p.norm_eps,
                      stage_formats_for(m.wq_b.w, n), stage_, s);
    enqueue_matmul(m.wq_b, n, mla_q_, H * qk, false);
  } else {
    enqueue_matmul(m.wq, n, mla_q_, H * qk, false);
  }

  MlaPost post;
  post.q = mla_q_;
  post.kv = mla_kv_;
  post.n_tokens = n;
  post.n_head = H;
  post.nope = nope;
  post.rope_dims = mp.head_dim_rope;
  post.kv_lora = lora;
  post.pos = pos_;
  post.kv_norm = m.kv_a_norm;
  post.norm_eps = p.norm_eps;
  post.rope = p.rope;
  post.freq_factors = w_.rope_freqs;
  post.q_mqa = qkv_;
  post.cache = kv_of(il);
  launch_mla_post(post, s);

  // The per-head products run as GEMVs over the (token, head) rows whatever n is.
  launch_copy_stage(mla_q_, qk, n * H, nope, gemv_formats_for(m.wk_b.part[0]), stage_, s);
  MatmulOut absorbed;
  absorbed.y = qkv_;
  absorbed.ldy = p.head_dim;
  launch_head_matmul(m.wk_b, head_ids_, n * H, stage_, absorbed, s);

  // One kv head (the plan's n_head_kv); the values are the latent cache rows' prefix.
  AttentionArgs a = attention_args(il, chunk, int64_t(H) * p.head_dim);
  // A token's heads side by side are its (token, head) rows one after another, so the
  // combine can stage them for wv_b directly.
  const unsigned latent_formats = gemv_formats_for(m.wv_b.part[0]);
  if (attention_split_can_stage(p.head_dim_v)) {
    a.stage_formats = latent_formats;
    a.stage = stage_;
  }
  launch_attention_split(a, s);
  if (!a.stage_formats) launch_copy_stage(attn_, p.head_dim_v, n * H, p.head_dim_v, latent_formats, stage_, s);
  MatmulOut expanded;
  expanded.y = mla_out_;
  expanded.ldy = mp.head_dim_v;
  launch_head_matmul(m.wv_b, head_ids_, n * H, stage_, expanded, s);

  launch_copy_stage(mla_out_, o_w, n, int(o_w), stage_formats_for(L.wo.w, n), stage_, s);
  enqueue_output_projection(L, n);
}

void CudaExecutor::enqueue_dense_ffn(const LayerWeights& L, int n) {
  const ModelPlan& p = plan_;
  launch_norm_stage(x_, p.n_embd, n, p.n_embd, p.norm, L.ffn_norm, L.ffn_norm_b, p.norm_eps, formats_for(L.gate_up, n),
                    stage_, stream_);
  const int64_t ff = std::max(p.n_ff, 1);  // ff_ may be wider, for a shared expert
  for (const Projection& pr : L.gate_up) enqueue_matmul(pr, n, gate_up_, 2 * ff, false);
  launch_swiglu_stage(gate_up_, n, int(ff), p.activation, stage_formats_for(L.down.w, n), stage_, stream_);
  enqueue_residual_out(L.down.w, L.down.bias, L.ffn_post_norm, n);
}

// Router, routing (and, for the grouped GEMM, grouping by expert), the experts' gate/up,
// SwiGLU and down products per (token, choice) pair, the shared expert on the token rows,
// then the weighted combine into x. Expert ids stay on the device throughout.
void CudaExecutor::enqueue_moe_ffn(const LayerWeights& L, int n) {
  const ModelPlan& p = plan_;
  const MoeWeights& m = L.experts;
  const int k = p.moe.n_expert_used, pairs = n * k;
  const int64_t F = p.n_ff_exp;
  cudaStream_t s = stream_;

  // The router always runs as a GEMV: the tensor-core GEMM's fp16 rounding of its weights
  // and inputs would move near-tied experts' scores, and with them the routing, away from the
  // CPU backend's router, for no speed that matters (it is only n_expert rows).
  unsigned formats = formats_for(m.shexp_gate_up, n);
  for (const Projection& pr : m.router) formats |= gemv_formats_for(pr.w);
  for (const ExpertProjection& e : m.gate_up) formats |= stage_formats_for(e.w.part[0], n);
  launch_norm_stage(x_, p.n_embd, n, p.n_embd, p.norm, L.ffn_norm, L.ffn_norm_b, p.norm_eps, formats, stage_, s);
  for (const Projection& pr : m.router) {
    MatmulOut out;
    out.y = router_ + pr.offset;
    out.ldy = router_w_;
    out.bias = pr.bias;
    launch_gemv(pr.w, stage_, n, out, s);
  }
  MoeRouteArgs route;
  route.logits = router_;
  route.ld = router_w_;
  route.selection_bias = m.selection_bias;
  route.params = p.moe;
  route.n_tokens = n;
  route.experts = sel_;
  route.weights = sel_w_;
  launch_moe_route(route, s);
  if (matmul_uses_gemm(n)) launch_moe_sort(sel_, pairs, p.moe.n_expert, groups_, s);

  MoeMatmul mm;
  mm.experts = sel_;
  mm.groups = groups_;
  mm.n_tokens = n;
  mm.k = k;
  mm.n_expert = p.moe.n_expert;
  mm.in_div = k;
  for (const ExpertProjection& e : m.gate_up) {
    MatmulOut out;
    out.y = moe_gate_up_ + e.offset;
    out.ldy = 2 * F;
    // gpt-oss's expert biases: gate and up parts of one product, or each product its own.
    out.expert_rows = F;
    if (m.gate_up.size() == 1) {
      out.expert_bias[0] = m.gate_bias;
      out.expert_bias[1] = m.up_bias;
    } else {
      out.expert_bias[0] = e.offset == 0 ? m.gate_bias : m.up_bias;
    }
    launch_moe_matmul(e.w, mm, stage_, out, s);
  }
  launch_swiglu_stage(moe_gate_up_, pairs, int(F), p.activation, stage_formats_for(m.down.w.part[0], n), moe_stage_, s);
  mm.in_div = 1;
  MatmulOut down;
  down.y = moe_out_;
  down.ldy = p.n_embd;
  down.expert_bias[0] = m.down_bias;
  down.expert_rows = p.n_embd;
  launch_moe_matmul(m.down.w, mm, moe_stage_, down, s);

  if (m.shexp_ff > 0) {
    const int64_t fs = m.shexp_ff;
    for (const Projection& pr : m.shexp_gate_up) enqueue_matmul(pr, n, gate_up_, 2 * fs, false);
    launch_swiglu_stage(gate_up_, n, int(fs), p.activation, stage_formats_for(m.shexp_down.w, n), stage_, s);
    MatmulOut sh;
    sh.y = shexp_out_;
    sh.ldy = p.n_embd;
    launch_matmul(m.shexp_down.w, stage_, n, sh, s);
  }
  MoeCombine c;
  c.x = x_;
  c.n_tokens = n;
  c.dim = p.n_embd;
  c.k = k;
  c.weights = sel_w_;
  c.expert_out = moe_out_;
  c.shared_out = m.shexp_ff > 0 ? shexp_out_ : nullptr;
  c.shared_gate = m.shexp_gated ? router_ + p.moe.n_expert : nullptr;
  c.ld_gate = router_w_;
  c.scale = p.residual_scale;
  launch_moe_combine(c, s);
}

// Final norm and LM head of `rows` rows: x's first rows, or the gathered_ rows.
void CudaExecutor::enqueue_head(int rows, bool gathered) {
  const ModelPlan& p = plan_;
  launch_norm_stage(gathered ? gathered_ : x_, p.n_embd, rows, p.n_embd, p.norm, w_.output_norm, w_.output_norm_b, p.norm_eps,
                    stage_formats_for(w_.output, rows), stage_, stream_);
  MatmulOut out;
  out.y = logits_;
  out.ldy = p.n_vocab;
  out.bias = w_.output_b;
  out.scale = p.logit_scale != 0.f ? 1.0f / p.logit_scale : 0.f;  // llama.cpp's fp32 reciprocal
  out.softcap = p.final_logit_softcap;
  launch_matmul(w_.output, stage_, rows, out, stream_);
}

// The logits of the chunk rows listed in logit_idx_ (n_logits of them), in groups of at most
// logit_rows_, copied to host_out (row-major, n_vocab per row).
Status CudaExecutor::enqueue_logits(int n_logits, float* host_out) {
  const ModelPlan& p = plan_;
  for (int done = 0; done < n_logits; done += logit_rows_) {
    const int n = std::min(logit_rows_, n_logits - done);
    launch_gather_rows(x_, p.n_embd, logit_idx_ + done, n, p.n_embd, gathered_, stream_);
    enqueue_head(n, true);
    TESSERA_RETURN_IF_ERROR(check_launches("launching the LM head"));
    TESSERA_CUDA_TRY(cudaMemcpyAsync(host_logits_.as<float>(), logits_, size_t(n) * p.n_vocab * sizeof(float),
                                     cudaMemcpyDeviceToHost, stream_),
                     "copying logits");
    TESSERA_CUDA_TRY(cudaStreamSynchronize(stream_), "running the LM head");
    std::memcpy(host_out + int64_t(done) * p.n_vocab, host_logits_.as<float>(), size_t(n) * p.n_vocab * sizeof(float));
  }
  return Status::ok();
}

// n decode rows (ids, positions and tables already on the device), through the graph
// captured for n rows; every row's logits go to `logits`.
Status CudaExecutor::decode_step(int n, float* logits) {
  const ModelPlan& p = plan_;
  Chunk chunk;
  chunk.n = n;
  chunk.n_tiles = n;
  cudaGraphExec_t& graph_exec = decode_graphs_[n];
  if (!graph_exec && !graph_failed_) {
    cudaGraph_t graph = nullptr;
    bool ok = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal) == cudaSuccess;
    if (ok) {
      launch_get_rows(w_.tok_embd, tokens_, n, p.embedding_scale, x_, stream_);
      for (int il = 0; il < p.n_layer; ++il) ok = enqueue_layer(il, chunk).is_ok() && ok;
      enqueue_head(n, false);
      ok = cudaGetLastError() == cudaSuccess && ok;
      ok = cudaStreamEndCapture(stream_, &graph) == cudaSuccess && ok;
    }
    if (ok) ok = cudaGraphInstantiate(&graph_exec, graph, 0) == cudaSuccess;
    if (graph) cudaGraphDestroy(graph);
    if (!ok) {
      // Run uncaptured from now on; the failed capture enqueued nothing.
      if (graph_exec) cudaGraphExecDestroy(graph_exec);
      graph_exec = nullptr;
      graph_failed_ = true;
      cudaGetLastError();
    }
  }
  if (graph_exec) {
    TESSERA_CUDA_TRY(cudaGraphLaunch(graph_exec, stream_), "launching the decode graph");
  } else {
    launch_get_rows(w_.tok_embd, tokens_, n, p.embedding_scale, x_, stream_);
    for (int il = 0; il < p.n_layer; ++il) TESSERA_RETURN_IF_ERROR(enqueue_layer(il, chunk));
    enqueue_head(n, false);
    TESSERA_RETURN_IF_ERROR(check_launches("launching the LM head"));
  }
  TESSERA_CUDA_TRY(cudaMemcpyAsync(host_logits_.as<float>(), logits_, size_t(n) * p.n_vocab * sizeof(float),
                                   cudaMemcpyDeviceToHost, stream_),
                   "copying logits");
  TESSERA_CUDA_TRY(cudaStreamSynchronize(stream_), "running the decode step");
  std::memcpy(logits, host_logits_.as<float>(), size_t(n) * p.n_vocab * sizeof(float));
  return Status::ok();
}

// Rows [first, first + chunk.n) of the step, whose ids, positions, row tables and tiles are
// already on the device; the logits of its n_logits rows listed in logit_rows (chunk-local)
// go to `logits`.
Status CudaExecutor::run_chunk(const StepBatch& b, int first, const Chunk& chunk, const int32_t* logit_rows, int n_logits,
                               float* logits) {
  const ModelPlan& p = plan_;
  const int n = chunk.n;
  if (!chunk.prefill && n_logits == n && n <= kMaxGraphRows) return decode_step(n, logits);

  launch_get_rows(w_.tok_embd, tokens_, n, p.embedding_scale, x_, stream_);
  for (int il = 0; il < p.n_layer; ++il) {
    TESSERA_RETURN_IF_ERROR(enqueue_layer(il, chunk));
    TESSERA_CUDA_TRY(cudaEventRecord(layer_done_[il & 1], stream_), "recording a layer event");
    // Stay at most one layer ahead of the GPU, and stop between layers on request.
    if (il > 0) TESSERA_CUDA_TRY(cudaEventSynchronize(layer_done_[(il - 1) & 1]), "running a decoder layer");
    if (abort_.load(std::memory_order_relaxed)) {
      TESSERA_CUDA_TRY(cudaStreamSynchronize(stream_), "stopping the forward pass");
      take_abort();
      return Status::error(StatusCode::Aborted, "evaluation aborted");
    }
  }
  if (n_logits > 0) {
    TESSERA_CUDA_TRY(cudaMemcpyAsync(logit_idx_, logit_rows, size_t(n_logits) * sizeof(int32_t), cudaMemcpyHostToDevice, stream_),
                     "copying logit rows");
    TESSERA_RETURN_IF_ERROR(enqueue_logits(n_logits, logits));
  }
  return cuda_status(cudaStreamSynchronize(stream_), "running the forward pass");
}

Status CudaExecutor::step(const StepBatch& b, float* logits) {
  try {
    const ModelPlan& p = plan_;
    take_abort();  // a request that arrived before this step started is stale
    TESSERA_RETURN_IF_ERROR(check_step(b, max_context_, n_blocks_, p.n_vocab));
    if (b.trace)
      return Status::error(StatusCode::BackendUnavailable, "tracing (session.trace) runs on the CPU backend; load the model with backend: \"cpu\"");
    if (b.n_hidden > 0)
      return Status::error(StatusCode::BackendUnavailable,
                           "hidden states (model.embed) run on the CPU backend for now; load the model with backend: \"cpu\"");
    if (b.n_table_entries > max_table_entries_)
      return Status::error(StatusCode::InvalidArgument, "step: more block table entries than the engine's batch can hold");
    TESSERA_CUDA_TRY(cudaSetDevice(backend_.device()), "selecting the CUDA device");

    // Copy-on-write block copies: a block's tiles of all kv heads are contiguous per layer.
    const size_t k_block = size_t(p.n_head_kv) * kKvBlock * p.head_dim, v_block = size_t(p.n_head_kv) * kKvBlock * p.head_dim_v;
    for (int i = 0; i < b.n_copies; ++i) {
      const size_t src = size_t(b.copies[2 * i]), dst = size_t(b.copies[2 * i + 1]);
      for (int il = 0; il < p.n_layer; ++il) {
        TESSERA_CUDA_TRY(cudaMemcpyAsync(k_cache_[il] + dst * k_block, k_cache_[il] + src * k_block, k_block * 2,
                                         cudaMemcpyDeviceToDevice, stream_),
                         "copying a KV block");
        if (!has_mla_)
          TESSERA_CUDA_TRY(cudaMemcpyAsync(v_cache_[il] + dst * v_block, v_cache_[il] + src * v_block, v_block * 2,
                                           cudaMemcpyDeviceToDevice, stream_),
                           "copying a KV block");
      }
    }
    int32_t* io = host_io_.as<int32_t>();
    int32_t* tables = io + 8 * size_t(batch_);
    std::memcpy(tables, b.tables, size_t(b.n_table_entries) * sizeof(int32_t));
    if (b.n_table_entries > 0)
      TESSERA_CUDA_TRY(cudaMemcpyAsync(tables_, tables, size_t(b.n_table_entries) * sizeof(int32_t), cudaMemcpyHostToDevice, stream_),
                       "copying block tables");

    int next_logit = 0;
    for (int done = 0; done < b.n_rows; done += batch_) {
      Chunk chunk;
      chunk.n = std::min(batch_, b.n_rows - done);
      const int n = chunk.n;
      int32_t* ids = io;
      int32_t* pos = io + batch_;
      int32_t* row_table = io + 2 * size_t(batch_);
      int32_t* logit_rows = io + 3 * size_t(batch_);
      int4* tiles = reinterpret_cast<int4*>(io + 4 * size_t(batch_));
      for (int i = 0; i < n; ++i) {
        const int r = done + i;
        ids[i] = b.tokens[r];
        pos[i] = b.positions[r];
        row_table[i] = b.table_start[b.row_seq[r]];
        // A new flash tile where the sequence changes or the tile is full.
        if (i == 0 || b.row_seq[r] != b.row_seq[r - 1] || tiles[chunk.n_tiles - 1].y == kFlashQueryTile)
          tiles[chunk.n_tiles++] = make_int4(i, 0, 0, 0);
        else
          chunk.prefill = true;
        tiles[chunk.n_tiles - 1].y++;
      }
      const int first_logit = next_logit;
      while (next_logit < b.n_logits && b.logit_rows[next_logit] < done + n) {
        logit_rows[next_logit - first_logit] = b.logit_rows[next_logit] - done;
        ++next_logit;
      }
      const int n_logits = next_logit - first_logit;
      TESSERA_CUDA_TRY(cudaMemcpyAsync(tokens_, ids, size_t(n) * sizeof(int32_t), cudaMemcpyHostToDevice, stream_), "copying token ids");
      TESSERA_CUDA_TRY(cudaMemcpyAsync(pos_, pos, size_t(n) * sizeof(int32_t), cudaMemcpyHostToDevice, stream_), "copying positions");
      TESSERA_CUDA_TRY(cudaMemcpyAsync(row_table_, row_table, size_t(n) * sizeof(int32_t), cudaMemcpyHostToDevice, stream_),
                       "copying row tables");
      TESSERA_CUDA_TRY(cudaMemcpyAsync(tiles_, tiles, size_t(chunk.n_tiles) * sizeof(int4), cudaMemcpyHostToDevice, stream_),
                       "copying attention tiles");
      float* out = logits + int64_t(first_logit) * p.n_vocab;
      TESSERA_RETURN_IF_ERROR(run_chunk(b, done, chunk, logit_rows, n_logits, out));
      if (take_abort()) return Status::error(StatusCode::Aborted, "evaluation aborted");
    }
    return cuda_status(cudaStreamSynchronize(stream_), "running the step");
  } catch (const std::exception& e) {
    return Status::error(StatusCode::Internal, std::string("CUDA evaluation failed: ") + e.what());
  }
}

}  // namespace tessera::cuda
