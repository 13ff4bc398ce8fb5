#include "cpu/cpu_executor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>

namespace tessera::cpu {

namespace {

unsigned format_bit(ActFormat f) { return 1u << static_cast<unsigned>(f); }

int64_t max3(int64_t a, int64_t b, int64_t c) { return std::max(a, std::max(b, c)); }

}  // namespace

int ThreadChooser::pick(int rows) {
  if (threads_ < 2) return threads_;
  Bucket& b = buckets_[bucket(rows)];
  ++b.steps;
  // A first try once the running average has forgotten the cold first steps, then one
  // every b.wait steps (sooner after a switch: see record).
  const bool explore = b.steps == kFirstExplore || (b.steps > kFirstExplore && b.steps >= b.next_explore);
  if (explore) b.next_explore = b.steps + b.wait;
  return count(explore ? 1 - b.current : b.current);
}

void ThreadChooser::record(int rows, int threads, double ns) {
  if (threads_ < 2 || rows < 1) return;
  Bucket& b = buckets_[bucket(rows)];
  // The first step of a size pays for cold weights (page-ins, caches): 2-3x a later one. An
  // average starting there made a one-thread try at the 4th step of decode look better, and
  // decode then ran on one thread (5 -> 7.3 ms per token, SmolLM2-135M Q8_0, quiet machine).
  if (b.steps <= 1) return;
  const int arm = threads == threads_ ? 0 : 1;
  const double x = ns / rows;
  double& avg = b.ns_per_row[arm];
  if (arm == b.current) {
    // The running count's average follows every step, a single step counting as at most
    // twice the average: one outlier (a GC pause of the caller, a page fault) used to lift
    // it past the other count's stale average and switch decode to one thread for ~70
    // steps (3.2 -> 5.1 ms per token). A lasting slowdown still lifts it 20% a step.
    avg = avg == 0 ? x : 0.8 * avg + 0.2 * std::min(x, 2 * avg);
    if (b.wait > kExplore && avg > kFarSlower * b.tried_at) {
      // Slower than when the other count lost by far: try it again within kExplore steps.
      b.wait = kExplore;
      b.next_explore = std::min(b.next_explore, b.steps + kExplore);
    }
    return;
  }
  // An exploring step: its single sample counts for half, and only now, with both counts'
  // figures fresh, may the count change.
  avg = avg == 0 ? x : 0.5 * avg + 0.5 * x;
  const double other = b.ns_per_row[1 - b.current], running = b.ns_per_row[b.current];
  if (other > 0 && other < 0.9 * running) {
    b.current = 1 - b.current;
    b.wait = kExplore;
    // One sample decided it: the count left is tried again soon, so a noisy sample costs
    // kConfirm steps, not kExplore.
    b.next_explore = b.steps + kConfirm;
  } else if (b.current == 0 && x > kFarSlower * running) {
    // Only on all threads: a neighbour arriving slows the running count (which brings the
    // tries back); one leaving speeds up only the count not running, so one thread fewer
    // keeps trying every kExplore steps. By this try's own time, not the average: an
    // average still holding older slow tries kept the waits long for two more tries.
    b.wait = std::min(2 * b.wait, kMaxExplore);
    b.tried_at = running;
    b.next_explore = b.steps + b.wait;
  } else {
    b.wait = kExplore;
    b.next_explore = b.steps + kExplore;
  }
}

CpuExecutor::CpuExecutor(const CpuBackend& backend)
    : backend_(backend), plan_(backend.plan()), pool_(ThreadPool::shared(backend.threads())), chooser_(backend.threads()) {}

void CpuExecutor::layout(BumpAllocator& a) {
  const ModelPlan& p = plan_;
  const int64_t B = batch_;
  const int64_t q_w = int64_t(p.n_head) * p.head_dim, k_w = int64_t(p.n_head_kv) * p.head_dim;
  const int64_t v_w = int64_t(p.n_head_kv) * p.head_dim_v, o_w = int64_t(p.n_head) * p.head_dim_v;
  const int64_t ff = std::max<int64_t>(ffn_width_, 1);
  s_.x = a.take<float>(B * p.n_embd);
  s_.xn = a.take<float>(B * p.n_embd);
  s_.q = a.take<float>(B * q_w);
  s_.k = a.take<float>(B * k_w);
  s_.v = a.take<float>(B * v_w);
  s_.attn = a.take<float>(B * o_w);
  s_.proj = a.take<float>(B * p.n_embd);
  s_.gate = a.take<float>(B * ff);
  s_.up = a.take<float>(B * ff);
  s_.logits = a.take<float>(p.n_vocab);
  const MlaParams& m = p.mla;
  const int64_t mla_o_w = int64_t(p.n_head) * m.head_dim_v;
  const int64_t widest_input =
      std::max(max3(p.n_embd, o_w, ff), max3(m.q_lora_rank, mla_o_w, p.ssm.d_inner));
  for (ActFormat f : kEncodedActFormats) s_.act[static_cast<int>(f)] = a.take<uint8_t>(act_bytes(f, widest_input, batch_));
  s_.attn_scratch = a.take<float>(attn_scratch_floats_ * pool_->size());
  s_.pos = a.take<int32_t>(B);
  s_.last = a.take<int32_t>(B);
  bool fused_qkv = false;
  for (const LayerPlan& L : p.layers) fused_qkv |= L.wqkv >= 0;
  if (fused_qkv) s_.qkv = a.take<float>(B * (q_w + k_w + v_w));
  if (p.ffn_fused_gate_up) s_.gate_up = a.take<float>(B * 2 * ff);
  s_.table = a.take<const int32_t*>(B);
  s_.logit_rows = a.take<int32_t>(B);
  s_.hidden_rows = a.take<int32_t>(B);
  if (p.moe.n_expert > 0) {
    const int64_t K = p.moe.n_expert_used, ne = p.moe.n_expert, fe = std::max(p.n_ff_exp, 1);
    s_.router = a.take<float>(B * ne);
    s_.sel = a.take<int32_t>(B * K);
    s_.sel_w = a.take<float>(B * K);
    s_.slot = a.take<int32_t>(B * K);
    s_.active = a.take<int32_t>(ne);
    s_.active_off = a.take<int32_t>(ne + 1);
    s_.route_scratch = a.take<float>(2 * ne);
    s_.moe_x = a.take<float>(B * K * p.n_embd);
    s_.moe_gate = a.take<float>(B * K * fe);
    s_.moe_up = a.take<float>(B * K * fe);
    s_.moe_out = a.take<float>(B * K * p.n_embd);
    for (ActFormat f : kEncodedActFormats)
      s_.moe_act[static_cast<int>(f)] = a.take<uint8_t>(act_bytes(f, std::max<int64_t>(p.n_embd, fe), int(B * K)));
    s_.shexp_gate = a.take<float>(B);
  }
  if (uses_recurrent_state(p)) {
    const int64_t P = p.ssm.in_proj_width();
    s_.ssm_zx = a.take<float>(B * P);
    s_.ssm_y = a.take<float>(B * P);
    s_.ssm_g = a.take<float>(B * p.ssm.d_inner);
  }
  if (m.kv_lora_rank > 0) {
    const int64_t H = p.n_head, head_w = std::max(m.head_dim_nope, m.kv_lora_rank);
    s_.mla_q = a.take<float>(B * H * (m.head_dim_nope + m.head_dim_rope));
    s_.mla_qa = a.take<float>(B * std::max(m.q_lora_rank, 1));
    s_.mla_kv = a.take<float>(B * (m.kv_lora_rank + m.head_dim_rope));
    s_.mla_heads = a.take<float>(H * B * head_w);
    s_.mla_out = a.take<float>(B * mla_o_w);
    for (ActFormat f : kEncodedActFormats) s_.mla_act[static_cast<int>(f)] = a.take<uint8_t>(act_bytes(f, head_w, int(H * B)));
  }
}

Status CpuExecutor::init(const ExecutorOptions& options) {
  const ModelPlan& p = plan_;
  ffn_width_ = p.n_ff;
  for (const LayerPlan& L : p.layers)
    if (L.ffn_gate_shexp >= 0) ffn_width_ = std::max(ffn_width_, p.tensors[L.ffn_gate_shexp].ne[1]);
  if (options.max_context < 1 || options.n_blocks < 1 || options.batch_size < 1)
    return Status::error(StatusCode::InvalidArgument, "context size, block count and batch size must be positive");
  if (kv_type_quantized(options.kv_type) && (p.head_dim % QK8_0 || p.head_dim_v % QK8_0))
    return Status::error(StatusCode::ModelIncompatible,
                         std::string("a ") + kv_type_name(options.kv_type) + " KV cache needs head sizes that are multiples of 32, "
                         "this model's are " + std::to_string(p.head_dim) + " and " + std::to_string(p.head_dim_v) +
                         "; use kvCacheType \"f16\"");
  if (p.pos_embd >= 0 && options.max_context > p.tensors[p.pos_embd].ne[1])
    return Status::error(StatusCode::InvalidArgument,
                         "context size " + std::to_string(options.max_context) + " exceeds the model's " +
                             std::to_string(p.tensors[p.pos_embd].ne[1]) +
                             " position embeddings; load it with a contextSize of at most that");
  max_context_ = options.max_context;
  n_blocks_ = options.n_blocks;
  batch_ = options.batch_size;
  attn_scratch_floats_ = attention_scratch_floats(max_context_, p.head_dim, p.head_dim_v);

  // The pool: per layer, every block's key tiles then every block's value tiles; with
  // multi-head latent attention only the latent keys (values are their prefix). Pages are
  // committed as blocks are first written, so memory grows with the tokens held.
  const bool latent_cache = p.mla.kv_lora_rank > 0;
  if (kv_type_quantized(options.kv_type)) {
    rot_k_ = hadamard_size(p.head_dim);
    // With latent attention the values are a prefix of the rotated keys: whole runs of it.
    rot_v_ = latent_cache ? (rot_k_ && p.head_dim_v % rot_k_ == 0 ? rot_k_ : 0) : (p.head_dim_v % 64 == 0 ? 64 : 0);
    if (latent_cache && !rot_v_) rot_k_ = 0;
  }
  const uint64_t k_tile = kv_tile_bytes(options.kv_type, p.head_dim);
  const uint64_t v_tile = latent_cache ? 0 : kv_tile_bytes(options.kv_type, p.head_dim_v);
  const uint64_t layer_blocks = uint64_t(n_blocks_) * p.n_head_kv;
  block_bytes_ = kv_block_bytes(p, options.kv_type);
  TESSERA_RETURN_IF_ERROR(kv_.allocate(block_bytes_ * n_blocks_, "KV cache"));
  kv_layers_.resize(p.n_layer);
  uint8_t* cursor = kv_.data();
  for (int il = 0; il < p.n_layer; ++il) {
    KvLayer& kv = kv_layers_[il];
    if (p.layers[il].is_ssm()) continue;  // no keys or values: its state is in ssm_states_
    kv.k = cursor;
    cursor += layer_blocks * k_tile;
    kv.v = latent_cache ? nullptr : cursor;
    cursor += layer_blocks * v_tile;
    kv.k_tile = k_tile;
    kv.v_tile = v_tile;
    kv.n_head_kv = p.n_head_kv;
    kv.type = options.kv_type;
    kv.v_in_k = latent_cache;
  }

  if (uses_recurrent_state(p)) {
    // The checkpoints beside the KV cache (core/kv_cache.h); pages commit as blocks are written.
    ssm_block_floats_ = ssm_state_block_floats(p);
    ssm_layer_offset_.assign(p.n_layer, -1);
    int64_t off = 0;
    for (int il = 0; il < p.n_layer; ++il)
      if (p.layers[il].is_ssm()) {
        ssm_layer_offset_[il] = off;
        off += p.ssm.state_floats();
      }
    TESSERA_RETURN_IF_ERROR(ssm_states_.allocate(ssm_block_floats_ * sizeof(float) * n_blocks_, "recurrent state"));
    block_bytes_ += ssm_block_floats_ * sizeof(float);
    ssm_segments_.resize(batch_);
  }

  BumpAllocator measure(nullptr);
  layout(measure);
  TESSERA_RETURN_IF_ERROR(scratch_.allocate(measure.used(), "activation scratch"));
  BumpAllocator real(scratch_.data());
  layout(real);
  return Status::ok();
}

void CpuExecutor::copy_block(int src, int dst) {
  for (const KvLayer& kv : kv_layers_) {
    if (!kv.k) continue;  // an SSM layer
    std::memcpy(kv.key_tile(dst, 0), kv.key_tile(src, 0), kv.k_tile * kv.n_head_kv);
    if (kv.v) std::memcpy(kv.value_tile(dst, 0), kv.value_tile(src, 0), kv.v_tile * kv.n_head_kv);
  }
  if (ssm_block_floats_)
    std::memcpy(ssm_state(dst, -1), ssm_state(src, -1), ssm_block_floats_ * sizeof(float));
}

Status CpuExecutor::begin_step(const StepBatch& b) {
  take_abort();  // a request that arrived before this step started is stale
  TESSERA_RETURN_IF_ERROR(check_step(b, max_context_, n_blocks_, plan_.n_vocab));
  if (!plan_.lm_head && b.n_logits > 0)
    return Status::error(StatusCode::InvalidArgument, "step: " + plan_.architecture +
                                                          " is an encoder without an LM head; it gives hidden states (embed), not logits");
  if (!plan_.causal) TESSERA_RETURN_IF_ERROR(check_bidirectional(b));
  for (int i = 0; i < b.n_copies; ++i) copy_block(b.copies[2 * i], b.copies[2 * i + 1]);
  trace_ = b.trace;
  trace_rows_ = b.n_rows;
  if (trace_) {
    trace_slot_.assign(plan_.n_layer, -1);
    int recorded = 0;
    for (int il = 0; il < plan_.n_layer; ++il)
      if (trace_->attention_layers && trace_->attention_layers[il]) trace_slot_[il] = recorded++;
    if (trace_->top_k > 0) lens_logits_.resize(size_t(std::min(batch_, b.n_rows)) * plan_.n_vocab);
    for (int r = 0; r < b.n_rows; ++r)
      if (trace_->attention && b.positions[r] >= trace_->positions)
        return Status::error(StatusCode::InvalidArgument, "step: trace attention rows are shorter than a row's position");
  }
  return Status::ok();
}

CpuExecutor::Chunk CpuExecutor::prepare_chunk(const StepBatch& b, float* logits, int done, int* next_logit, int* next_hidden) {
  Chunk c;
  c.n = std::min(batch_, b.n_rows - done);
  const int n = c.n;
  for (int i = 0; i < n; ++i) {
    s_.pos[i] = b.positions[done + i];
    s_.table[i] = b.tables + b.table_start[b.row_seq[done + i]];
  }
  if (!plan_.causal)  // each row sees its whole sequence: up to the sequence's last row (checked above)
    for (int i = n - 1; i >= 0; --i)
      s_.last[i] = i + 1 < n && b.row_seq[done + i + 1] == b.row_seq[done + i] ? s_.last[i + 1] : s_.pos[i];
  const int first_logit = *next_logit;
  while (*next_logit < b.n_logits && b.logit_rows[*next_logit] < done + n) {
    s_.logit_rows[*next_logit - first_logit] = b.logit_rows[*next_logit] - done;
    ++*next_logit;
  }
  c.n_logits = *next_logit - first_logit;
  c.logits = logits + int64_t(first_logit) * plan_.n_vocab;
  const int first_hidden = *next_hidden;
  while (*next_hidden < b.n_hidden && b.hidden_rows[*next_hidden] < done + n) {
    s_.hidden_rows[*next_hidden - first_hidden] = b.hidden_rows[*next_hidden] - done;
    ++*next_hidden;
  }
  c.n_hidden = *next_hidden - first_hidden;
  c.hidden = c.n_hidden ? b.hidden + int64_t(first_hidden) * plan_.n_embd : nullptr;
  if (ssm_block_floats_) plan_ssm_segments(n);
  stop_ = false;
  trace_row0_ = done;
  return c;
}

Status CpuExecutor::step(const StepBatch& b, float* logits) {
  TESSERA_RETURN_IF_ERROR(begin_step(b));
  int next_logit = 0;   // index into b.logit_rows of the first row at or after the chunk
  int next_hidden = 0;  // the same for b.hidden_rows
  for (int done = 0; done < b.n_rows; done += batch_) {
    const Chunk c = prepare_chunk(b, logits, done, &next_logit, &next_hidden);
    const int threads = picked_.rows == c.n ? picked_.threads : chooser_.pick(c.n);
    picked_ = {};
    const auto start = std::chrono::steady_clock::now();
    pool_->run([&](int ith, int nth) { forward(b.tokens + done, c.n, c.n_logits, c.logits, c.n_hidden, c.hidden, ith, nth); }, threads);
    chooser_.record(c.n, threads, std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count());
    if (stop_) {
      trace_ = nullptr;
      return Status::error(StatusCode::Aborted, "evaluation aborted");
    }
  }
  trace_ = nullptr;
  return Status::ok();
}

bool CpuExecutor::try_step_async(const StepBatch& b, float* logits, void (*done)(void*, const Status&), void* ctx) {
  // One region only: a step of more than one chunk, a trace's bookkeeping and a failed check
  // (which step() then reports) stay with step().
  if (b.trace || b.n_rows < 1 || b.n_rows > batch_) return false;
  const int n = b.n_rows, threads = chooser_.pick(n);
  // If this step goes to step() after all, it runs on this pick (a second pick would skip
  // the chooser's tries of one thread fewer).
  picked_ = {n, threads};
  // A one-thread step (the chooser's pick, or its try) runs on pool thread 0 too: handed to
  // a libuv thread it cost a second slow step after it (21 + 22 ms where a step takes 11,
  // 1B Q3_K_M on the 2-core VM), not only its own.
  if (!begin_step(b).is_ok()) return false;  // begin_step again in step(): the same checks and block copies
  int next_logit = 0, next_hidden = 0;
  const Chunk c = prepare_chunk(b, logits, 0, &next_logit, &next_hidden);
  async_ = {n, threads, std::chrono::steady_clock::now(), done, ctx};
  async_job_ = [this, tokens = b.tokens, c](int ith, int nth) { forward(tokens, c.n, c.n_logits, c.logits, c.n_hidden, c.hidden, ith, nth); };
  if (!pool_->try_start(async_job_, threads, &CpuExecutor::async_step_done, this)) return false;
  picked_ = {};
  return true;
}

void CpuExecutor::async_step_done(void* self) {
  CpuExecutor& e = *static_cast<CpuExecutor*>(self);
  const AsyncStep a = e.async_;
  e.chooser_.record(a.n, a.threads, std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - a.start).count());
  a.done(a.ctx, e.stop_ ? Status::error(StatusCode::Aborted, "evaluation aborted") : Status::ok());
}

Status CpuExecutor::check_bidirectional(const StepBatch& b) const {
  // Bidirectional attention needs every key of a sequence before any row attends: a
  // sequence runs whole, from position 0, in consecutive rows of one chunk of batch_ rows
  // (and nothing is cached between steps: no prefix can be reused).
  if (b.trace) return Status::error(StatusCode::InvalidArgument, "step: tracing an encoder model is not supported");
  for (int r = 0; r < b.n_rows; ++r) {
    const bool first = r == 0 || b.row_seq[r] != b.row_seq[r - 1];
    if (first ? b.positions[r] != 0 : b.positions[r] != b.positions[r - 1] + 1)
      return Status::error(StatusCode::InvalidArgument,
                           "step: an encoder's input runs whole in one step, from position 0, in consecutive rows");
    if (!first && r % batch_ == 0)
      return Status::error(StatusCode::InvalidArgument, "step: an encoder's input is split across chunks of " +
                                                            std::to_string(batch_) + " rows; raise batchSize");
  }
  return Status::ok();
}

void CpuExecutor::encode(const float* x, int n, int64_t cols, unsigned mask, int ith, int nth) {
  for (ActFormat f : kEncodedActFormats)
    if (mask & format_bit(f)) quantize_act(f, x, n, cols, s_.act[static_cast<int>(f)], ith, nth);
  pool_->barrier();
}

unsigned CpuExecutor::format_bit_of(int weight) const { return format_bit(act_format_for(backend_.weight(weight).type)); }

const void* CpuExecutor::act_for(int weight, const float* x) const {
  ActFormat f = act_format_for(backend_.weight(weight).type);
  return f == ActFormat::F32 ? static_cast<const void*>(x) : s_.act[static_cast<int>(f)];
}

void CpuExecutor::project(std::initializer_list<Projection> group, int n, int ith, int nth) {
  MatmulJob jobs[kMaxMatmulJobs];
  int count = 0;
  for (const Projection& pr : group)
    jobs[count++] = {&backend_.weight(pr.weight), act_for(pr.weight, pr.x), pr.y, pr.ldy, DotOrder::Gemm, pr.residual};
  matmul_shared(jobs, count, n, pool_->work_cursors(), ith, nth);
  pool_->barrier();
}

void CpuExecutor::norm(const float* x, int norm_w, int norm_b, float* y, int n, int ith, int nth) const {
  if (plan_.norm == NormKind::Rms)
    rms_norm(x, backend_.f32(norm_w), y, n, plan_.n_embd, plan_.norm_eps, ith, nth);
  else
    layer_norm(x, backend_.f32(norm_w), backend_.f32(norm_b), y, n, plan_.n_embd, plan_.norm_eps, ith, nth);
}

void CpuExecutor::final_norm_rows(const int32_t* idx, int count, float* y, int ith, int nth) {
  const ModelPlan& p = plan_;
  if (p.output_norm < 0) {  // an encoder: the last block's output as it is
    for (int i = ith; i < count; i += nth)
      std::copy(s_.x + int64_t(idx[i]) * p.n_embd, s_.x + int64_t(idx[i] + 1) * p.n_embd, y + int64_t(i) * p.n_embd);
    pool_->barrier();
    return;
  }
  // Contiguous rows (one sequence's last token, or all of them) are read in place; others
  // are gathered into proj (free at this point).
  const float* x_rows = s_.x + int64_t(idx[0]) * p.n_embd;
  if (idx[count - 1] - idx[0] != count - 1) {
    for (int i = ith; i < count; i += nth)
      std::copy(s_.x + int64_t(idx[i]) * p.n_embd, s_.x + int64_t(idx[i] + 1) * p.n_embd, s_.proj + int64_t(i) * p.n_embd);
    pool_->barrier();
    x_rows = s_.proj;
  }
  norm(x_rows, p.output_norm, p.output_norm_b, y, count, ith, nth);
  pool_->barrier();
}

void CpuExecutor::forward(const int32_t* tokens, int n, int n_logits, float* logits, int n_hidden, float* hidden, int ith,
                          int nth) {
  const ModelPlan& p = plan_;
  get_rows(p.tensors[p.tok_embd], tokens, n, s_.x, ith, nth);
  pool_->barrier();
  if (p.embedding_scale != 0.f) {
    int64_t b, e;
    split_range(int64_t(n) * p.n_embd, ith, nth, &b, &e);
    for (int64_t i = b; i < e; ++i) s_.x[i] *= p.embedding_scale;
    pool_->barrier();
  }
  if (p.token_types >= 0 || p.pos_embd >= 0 || p.tok_embd_norm >= 0) input_embeddings(n, ith, nth);

  for (int il = 0; il < p.n_layer; ++il) {
    const LayerPlan& L = p.layers[il];
    if (L.is_ssm())
      ssm_block(il, n, ith, nth);
    else if (p.mla.kv_lora_rank > 0)
      mla_attention_block(il, n, ith, nth);
    else
      attention_block(il, n, ith, nth);
    if (L.has_ffn()) ffn_block(il, n, ith, nth);
    if (trace_) {
      pool_->barrier();  // the residual add of the block is done
      trace_layer(il, n, ith, nth);
    }
    if (ith == 0) stop_ = abort_.load(std::memory_order_relaxed);
    pool_->barrier();
    if (stop_) return;
  }
  if (n_hidden > 0) final_norm_rows(s_.hidden_rows, n_hidden, hidden, ith, nth);
  if (n_logits == 0) return;

  // Only the rows whose logits are wanted go through the final norm and the LM head.
  const int rows = n_logits;
  final_norm_rows(s_.logit_rows, rows, s_.xn, ith, nth);
  const int out_w = p.output >= 0 ? p.output : p.tok_embd;
  encode(s_.xn, rows, p.n_embd, format_bit(act_format_for(backend_.weight(out_w).type)), ith, nth);
  project({{out_w, s_.xn, logits, p.n_vocab}}, rows, ith, nth);
  if (p.output_b >= 0) {
    add_bias(logits, backend_.f32(p.output_b), rows, p.n_vocab, p.n_vocab, ith, nth);
    pool_->barrier();
  }
  scale_logits(logits, rows, ith, nth);
  if (p.final_logit_softcap != 0.f) {
    int64_t b, e;
    split_range(int64_t(rows) * p.n_vocab, ith, nth, &b, &e);
    // ggml's scale by the fp32 reciprocal, tanh, scale back: the same roundings.
    const float cap = p.final_logit_softcap, inv = 1.0f / cap;
    for (int64_t i = b; i < e; ++i) logits[i] = cap * std::tanh(logits[i] * inv);
  }
}

void CpuExecutor::input_embeddings(int n, int ith, int nth) {
  // As llama.cpp's bert graph: (token + token_types[0]) + position, then LayerNorm. The
  // table rows are read into proj (free until the first block's output projection).
  const ModelPlan& p = plan_;
  if (p.token_types >= 0) {
    static const int32_t kTypeZero = 0;  // every token is of type 0 ("sentence A")
    get_rows(p.tensors[p.token_types], &kTypeZero, 1, s_.proj, ith, nth);
    pool_->barrier();
    add_bias(s_.x, s_.proj, n, p.n_embd, p.n_embd, ith, nth);
    pool_->barrier();
  }
  if (p.pos_embd >= 0) {
    get_rows(p.tensors[p.pos_embd], s_.pos, n, s_.proj, ith, nth);
    pool_->barrier();
    add(s_.x, s_.proj, int64_t(n) * p.n_embd, ith, nth);
    pool_->barrier();
  }
  if (p.tok_embd_norm >= 0) {
    layer_norm(s_.x, backend_.f32(p.tok_embd_norm), backend_.f32(p.tok_embd_norm_b), s_.x, n, p.n_embd, p.norm_eps, ith, nth);
    pool_->barrier();
  }
}

void CpuExecutor::block_input(int norm_w, int norm_b, int n, int ith, int nth) {
  if (plan_.post_norm) {
    // Post-norm blocks take the residual stream itself (normalized by the previous step).
    int64_t b, e;
    split_range(int64_t(n) * plan_.n_embd, ith, nth, &b, &e);
    std::copy(s_.x + b, s_.x + e, s_.xn + b);
  } else {
    norm(s_.x, norm_w, norm_b, s_.xn, n, ith, nth);
  }
  pool_->barrier();
}

void CpuExecutor::block_input_encoded(int norm_w, int norm_b, int n, unsigned formats, int ith, int nth) {
  // With fewer rows than threads (a decode step) and one encoded format, a single phase:
  // each thread normalizes exactly the elements quantize_act then encodes on it (so no
  // barrier between), summing every row whole as rms_norm does (the same bits). Decode
  // otherwise had two phases here, one of them a single thread's.
  const ModelPlan& p = plan_;
  int encoded = 0;
  ActFormat f = ActFormat::F32;
  for (ActFormat g : kEncodedActFormats)
    if (formats & format_bit(g)) {
      f = g;
      ++encoded;
    }
  int64_t b, e;
  if (n < nth && p.norm == NormKind::Rms && !p.post_norm && encoded == 1 && quantize_act_split(f, n, p.n_embd, ith, nth, &b, &e)) {
    rms_norm_span(s_.x, backend_.f32(norm_w), s_.xn, int(p.n_embd), p.norm_eps, b, e);
    quantize_act(f, s_.xn, n, p.n_embd, s_.act[static_cast<int>(f)], ith, nth);
    pool_->barrier();  // xn whole for any F32 weight among the consumers, and every encoding
    return;
  }
  block_input(norm_w, norm_b, n, ith, nth);
  encode(s_.xn, n, p.n_embd, formats, ith, nth);
}

void CpuExecutor::trace_layer(int il, int n, int ith, int nth) {
  const ModelPlan& p = plan_;
  const StepTrace& t = *trace_;
  const int64_t row0 = int64_t(il) * trace_rows_ + trace_row0_;
  for (int r = ith; r < n; r += nth) {
    double ss = 0;
    for (int64_t i = 0; i < p.n_embd; ++i) ss += double(s_.x[r * int64_t(p.n_embd) + i]) * s_.x[r * int64_t(p.n_embd) + i];
    if (t.residual_norm) t.residual_norm[row0 + r] = float(std::sqrt(ss));
  }
  if (t.top_k > 0) {
    // The layer's residual through the final norm and the LM head, as the last layer's is.
    norm(s_.x, p.output_norm, p.output_norm_b, s_.xn, n, ith, nth);
    pool_->barrier();
    const int out_w = p.output >= 0 ? p.output : p.tok_embd;
    float* logits = lens_logits_.data();
    encode(s_.xn, n, p.n_embd, format_bit(act_format_for(backend_.weight(out_w).type)), ith, nth);
    project({{out_w, s_.xn, logits, p.n_vocab}}, n, ith, nth);
    if (p.output_b >= 0) {
      add_bias(logits, backend_.f32(p.output_b), n, p.n_vocab, p.n_vocab, ith, nth);
      pool_->barrier();
    }
    scale_logits(logits, n, ith, nth);
    pool_->barrier();
    const int k = std::min(t.top_k, p.n_vocab);
    for (int r = ith; r < n; r += nth) {
      float* row = logits + int64_t(r) * p.n_vocab;
      if (p.final_logit_softcap != 0.f)
        for (int i = 0; i < p.n_vocab; ++i) row[i] = p.final_logit_softcap * std::tanh(row[i] * (1.0f / p.final_logit_softcap));
      float max = -INFINITY;
      for (int i = 0; i < p.n_vocab; ++i) max = std::max(max, row[i]);
      double sum = 0;
      for (int i = 0; i < p.n_vocab; ++i) sum += std::exp(double(row[i]) - max);
      // Top-k by repeated selection into a small sorted list (k is a handful).
      int32_t* ids = t.lens_ids + (row0 + r) * t.top_k;
      float* probs = t.lens_probs + (row0 + r) * t.top_k;
      int found = 0;
      for (int i = 0; i < p.n_vocab; ++i) {
        if (found == k && row[i] <= row[ids[k - 1]]) continue;
        int at = std::min(found, k - 1);
        while (at > 0 && row[ids[at - 1]] < row[i]) {
          ids[at] = ids[at - 1];
          --at;
        }
        ids[at] = i;
        if (found < k) ++found;
      }
      for (int j = 0; j < k; ++j) probs[j] = float(std::exp(double(row[ids[j]]) - max) / sum);
    }
  }
  pool_->barrier();
}

void CpuExecutor::attention_block(int il, int n, int ith, int nth) {
  const ModelPlan& p = plan_;
  const LayerPlan& L = p.layers[il];
  const int64_t q_w = int64_t(p.n_head) * p.head_dim, k_w = int64_t(p.n_head_kv) * p.head_dim;
  const int64_t v_w = int64_t(p.n_head_kv) * p.head_dim_v, o_w = int64_t(p.n_head) * p.head_dim_v;

  unsigned formats = 0;
  for (int w : {L.wqkv, L.wq, L.wk, L.wv})
    if (w >= 0) formats |= format_bit(act_format_for(backend_.weight(w).type));
  block_input_encoded(L.attn_norm, L.attn_norm_b, n, formats, ith, nth);
  if (L.wqkv >= 0)
    fused_qkv(L, n, ith, nth);
  else
    project({{L.wq, s_.xn, s_.q, q_w}, {L.wk, s_.xn, s_.k, k_w}, {L.wv, s_.xn, s_.v, v_w}}, n, ith, nth);

  if (L.bq >= 0 || L.bk >= 0 || L.bv >= 0) {
    if (L.bq >= 0) add_bias(s_.q, backend_.f32(L.bq), n, int(q_w), q_w, ith, nth);
    if (L.bk >= 0) add_bias(s_.k, backend_.f32(L.bk), n, int(k_w), k_w, ith, nth);
    if (L.bv >= 0) add_bias(s_.v, backend_.f32(L.bv), n, int(v_w), v_w, ith, nth);
    pool_->barrier();
  }
  if (L.q_norm >= 0 || L.k_norm >= 0) {
    // Per-head RMSNorm: every head vector is one row of head_dim.
    if (L.q_norm >= 0) rms_norm(s_.q, backend_.f32(L.q_norm), s_.q, n * p.n_head, p.head_dim, p.norm_eps, ith, nth);
    if (L.k_norm >= 0)
      rms_norm(s_.k, backend_.f32(L.k_norm), s_.k, n * p.n_head_kv, p.head_dim, p.norm_eps, ith, nth);
    pool_->barrier();
  }
  kv_store_prefetch(kv_layers_[il], n, rows(), p.head_dim, p.head_dim_v, ith, nth);
  if (p.rope.kind != RopeKind::None) {
    const float* factors = backend_.f32(p.rope.freq_factors);
    const RopeParams r = layer_rope(p, L);
    rope(s_.q, s_.pos, n, p.n_head, p.head_dim, r, factors, ith, nth);
    rope(s_.k, s_.pos, n, p.n_head_kv, p.head_dim, r, factors, ith, nth);
    // kv_store splits the (token, kv head) rows of k as rope does (split_range over
    // n * n_head_kv), so each thread stores the rows it rotated and kv_store's barrier
    // covers both; a phase between them that reads q or k in another split needs this one.
    // 16 barriers fewer per 1B token: decode +0.5% (paired runs in one process).
    if (p.query_scale != 0.f || p.attn_temp_scale != 0.f || rot_k_ || rot_v_) pool_->barrier();
  }
  if (p.query_scale != 0.f || p.attn_temp_scale != 0.f) {
    // Gemma and Phi-3 scale q itself (ggml_scale of Qcur), before attention rounds it to
    // fp16; Mistral 3 multiplies each row by its position's temperature (ggml_mul).
    int64_t b, e;
    split_range(int64_t(n) * q_w, ith, nth, &b, &e);
    if (p.attn_temp_scale != 0.f)
      for (int64_t i = b; i < e; ++i) s_.q[i] *= attention_temperature(s_.pos[i / q_w], p.attn_temp_scale, p.attn_temp_floor);
    if (p.query_scale != 0.f)
      for (int64_t i = b; i < e; ++i) s_.q[i] *= p.query_scale;
    pool_->barrier();
  }
  if (rot_k_ || rot_v_) {
    if (rot_k_) {
      hadamard(s_.q, n, q_w, q_w, rot_k_, ith, nth);
      hadamard(s_.k, n, k_w, k_w, rot_k_, ith, nth);
    }
    if (rot_v_) hadamard(s_.v, n, v_w, v_w, rot_v_, ith, nth);
    pool_->barrier();
  }
  kv_store(kv_layers_[il], s_.k, k_w, s_.v, v_w, n, rows(), p.head_dim, p.head_dim_v, ith, nth);
  pool_->barrier();

  AttentionArgs a = attention_args(il, n);
  a.q = s_.q;
  a.ldq = q_w;
  a.out = s_.attn;
  a.ldo = o_w;
  attention(a, ith, nth);
  pool_->barrier();
  if (rot_v_) {
    hadamard(s_.attn, n, o_w, o_w, rot_v_, ith, nth);  // the values were stored rotated
    pool_->barrier();
  }
  attention_output(il, s_.attn, o_w, n, ith, nth);
  if (p.post_norm) {
    norm(s_.x, L.attn_out_norm, L.attn_out_norm_b, s_.x, n, ith, nth);
    pool_->barrier();
  }
}

void CpuExecutor::fused_qkv(const LayerPlan& L, int n, int ith, int nth) {
  // One projection into rows [q | k | v] (llama.cpp views the same product), then split.
  const ModelPlan& p = plan_;
  const int64_t q_w = int64_t(p.n_head) * p.head_dim, k_w = int64_t(p.n_head_kv) * p.head_dim;
  const int64_t v_w = int64_t(p.n_head_kv) * p.head_dim_v, w = q_w + k_w + v_w;
  project({{L.wqkv, s_.xn, s_.qkv, w}}, n, ith, nth);
  if (L.bqkv >= 0) {
    add_bias(s_.qkv, backend_.f32(L.bqkv), n, int(w), w, ith, nth);
    pool_->barrier();
  }
  for (int r = ith; r < n; r += nth) {
    const float* row = s_.qkv + int64_t(r) * w;
    std::copy(row, row + q_w, s_.q + int64_t(r) * q_w);
    std::copy(row + q_w, row + q_w + k_w, s_.k + int64_t(r) * k_w);
    std::copy(row + q_w + k_w, row + w, s_.v + int64_t(r) * v_w);
  }
  pool_->barrier();
}

AttentionArgs CpuExecutor::attention_args(int il, int n) const {
  const ModelPlan& p = plan_;
  AttentionArgs a;
  a.kv = kv_layers_[il];
  a.rows = rows();
  a.n_tokens = n;
  a.max_context = max_context_;
  a.n_head = p.n_head;
  a.n_head_kv = p.n_head_kv;
  a.head_dim = p.head_dim;
  a.head_dim_v = p.head_dim_v;
  a.sliding_window = p.layers[il].sliding_window;
  a.last = p.causal ? nullptr : s_.last;
  a.scale = p.attn_scale;
  a.softcap = p.attn_logit_softcap;
  a.sinks = backend_.f32(p.layers[il].attn_sinks);
  a.scratch = s_.attn_scratch;
  if (trace_ && trace_->attention && trace_slot_[il] >= 0) {
    a.probs = trace_->attention + (int64_t(trace_slot_[il]) * trace_rows_ + trace_row0_) * p.n_head * trace_->positions;
    a.probs_ld = trace_->positions;
  }
  return a;
}

float* CpuExecutor::fused_residual(int bias, int post_norm) const {
  // Bias, post-norm and residual scale each come between the product and the add.
  return bias < 0 && post_norm < 0 && plan_.residual_scale == 0.f ? s_.x : nullptr;
}

void CpuExecutor::residual_add(int n, int post_norm, int ith, int nth) {
  const ModelPlan& p = plan_;
  const int64_t count = int64_t(n) * p.n_embd;
  if (post_norm >= 0) {
    // Gemma's post-norms: the block output is normalized before it joins the residual.
    rms_norm(s_.proj, backend_.f32(post_norm), s_.proj, n, p.n_embd, p.norm_eps, ith, nth);
    pool_->barrier();
  }
  if (p.residual_scale != 0.f) {
    // Scaled first and stored, then added: ggml's scale and add, two roundings. The split
    // is add()'s, so each thread scales the elements it adds.
    int64_t b, e;
    split_range(count, ith, nth, &b, &e);
    for (int64_t i = b; i < e; ++i) s_.proj[i] *= p.residual_scale;
  }
  add(s_.x, s_.proj, count, ith, nth);
}

void CpuExecutor::scale_logits(float* logits, int rows, int ith, int nth) const {
  const ModelPlan& p = plan_;
  if (p.logit_scale == 0.f) return;
  // llama.cpp multiplies by the fp32 reciprocal (ggml_scale(cur, 1.0f / f_logit_scale)).
  const float inv = 1.0f / p.logit_scale;
  int64_t b, e;
  split_range(int64_t(rows) * p.n_vocab, ith, nth, &b, &e);
  for (int64_t i = b; i < e; ++i) logits[i] *= inv;
}

void CpuExecutor::attention_output(int il, const float* attn_in, int64_t width, int n, int ith, int nth) {
  const ModelPlan& p = plan_;
  const LayerPlan& L = p.layers[il];
  encode(attn_in, n, width, format_bit(act_format_for(backend_.weight(L.wo).type)), ith, nth);
  if (float* x = fused_residual(L.bo, L.attn_post_norm)) {
    project({{L.wo, attn_in, s_.proj, p.n_embd, x}}, n, ith, nth);
    return;
  }
  project({{L.wo, attn_in, s_.proj, p.n_embd}}, n, ith, nth);
  if (L.bo >= 0) {
    add_bias(s_.proj, backend_.f32(L.bo), n, p.n_embd, p.n_embd, ith, nth);
    pool_->barrier();
  }
  residual_add(n, L.attn_post_norm, ith, nth);
  pool_->barrier();
}

const void* CpuExecutor::encode_heads(int weight, int rows, int64_t cols, int ith, int nth) {
  const ActFormat f = act_format_for(backend_.weight(weight).type);
  if (f == ActFormat::F32) return s_.mla_heads;
  quantize_act(f, s_.mla_heads, rows, cols, s_.mla_act[static_cast<int>(f)], ith, nth);
  pool_->barrier();
  return s_.mla_act[static_cast<int>(f)];
}

void CpuExecutor::mla_attention_block(int il, int n, int ith, int nth) {
  // As llama.cpp computes it (so rounding matches): q = wq(x) or wq_b(norm(wq_a(x))) per head
  // [nope | rope]; kv_a(x) = [latent | k_pe]; RoPE on q_pe and k_pe, RMSNorm on the latent;
  // the cache row is [latent | k_pe]; the MQA query of head h is [wk_b[h] · q_nope[h] | q_pe[h]];
  // attention over the cache yields a latent per head, expanded by wv_b[h], then wo.
  const ModelPlan& p = plan_;
  const LayerPlan& L = p.layers[il];
  const MlaParams& m = p.mla;
  const int H = p.n_head, nope = m.head_dim_nope, rope_w = m.head_dim_rope, lora = m.kv_lora_rank;
  const int64_t qk = nope + rope_w, q_w = H * qk, kv_w = lora + rope_w;
  const int64_t mqa_w = int64_t(H) * p.head_dim, latent_w = int64_t(H) * p.head_dim_v, o_w = int64_t(H) * m.head_dim_v;
  auto format = [&](int w) { return format_bit(act_format_for(backend_.weight(w).type)); };

  norm(s_.x, L.attn_norm, L.attn_norm_b, s_.xn, n, ith, nth);
  pool_->barrier();
  const int q_in = m.q_lora_rank > 0 ? L.wq_a : L.wq;
  encode(s_.xn, n, p.n_embd, format(q_in) | format(L.wkv_a), ith, nth);
  if (m.q_lora_rank > 0) {
    project({{L.wkv_a, s_.xn, s_.mla_kv, kv_w}, {L.wq_a, s_.xn, s_.mla_qa, m.q_lora_rank}}, n, ith, nth);
    rms_norm(s_.mla_qa, backend_.f32(L.q_a_norm), s_.mla_qa, n, m.q_lora_rank, p.norm_eps, ith, nth);
    pool_->barrier();
    encode(s_.mla_qa, n, m.q_lora_rank, format(L.wq_b), ith, nth);
    project({{L.wq_b, s_.mla_qa, s_.mla_q, q_w}}, n, ith, nth);
  } else {
    project({{L.wkv_a, s_.xn, s_.mla_kv, kv_w}, {L.wq, s_.xn, s_.mla_q, q_w}}, n, ith, nth);
  }

  // RoPE rotates the first n_dims of rows of `head_dim`: starting at the rope part of each
  // row, it rotates exactly q_pe of every head and the shared k_pe.
  const float* factors = backend_.f32(p.rope.freq_factors);
  rope(s_.mla_q + nope, s_.pos, n, H, int(qk), p.rope, factors, ith, nth);
  rope(s_.mla_kv + lora, s_.pos, n, 1, int(kv_w), p.rope, factors, ith, nth);
  // The latent is the prefix of each kv row: whole rows per thread, one rms_norm call each.
  for (int t = ith; t < n; t += nth)
    rms_norm(s_.mla_kv + t * kv_w, backend_.f32(L.kv_a_norm), s_.mla_kv + t * kv_w, 1, lora, p.norm_eps, 0, 1);
  copy_heads(s_.mla_q, q_w, qk, s_.mla_heads, nope, int64_t(n) * nope, n, H, nope, ith, nth);
  pool_->barrier();

  if (rot_k_) {
    hadamard(s_.mla_kv, n, kv_w, kv_w, rot_k_, ith, nth);
    pool_->barrier();
  }
  kv_store(kv_layers_[il], s_.mla_kv, kv_w, nullptr, 0, n, rows(), p.head_dim, 0, ith, nth);
  copy_heads(s_.mla_q + nope, q_w, qk, s_.q + lora, mqa_w, p.head_dim, n, H, rope_w, ith, nth);
  const void* q_nope = encode_heads(L.wk_b, H * n, nope, ith, nth);
  head_matmul(backend_.weight(L.wk_b), H, q_nope, n, s_.q, mqa_w, p.head_dim, ith, nth);
  pool_->barrier();
  if (rot_k_) {
    hadamard(s_.q, n, mqa_w, mqa_w, rot_k_, ith, nth);
    pool_->barrier();
  }

  AttentionArgs a = attention_args(il, n);
  a.q = s_.q;
  a.ldq = mqa_w;
  a.out = s_.attn;
  a.ldo = latent_w;
  attention(a, ith, nth);
  pool_->barrier();
  if (rot_v_) {
    hadamard(s_.attn, n, latent_w, latent_w, rot_v_, ith, nth);
    pool_->barrier();
  }

  copy_heads(s_.attn, latent_w, lora, s_.mla_heads, lora, int64_t(n) * lora, n, H, lora, ith, nth);
  pool_->barrier();
  const void* latent = encode_heads(L.wv_b, H * n, lora, ith, nth);
  head_matmul(backend_.weight(L.wv_b), H, latent, n, s_.mla_out, o_w, m.head_dim_v, ith, nth);
  pool_->barrier();
  attention_output(il, s_.mla_out, o_w, n, ith, nth);
}

void CpuExecutor::dense_ffn(int gate, int up, int down, int gate_b, int up_b, int down_b, int64_t width, int n, int ith,
                            int nth, float* residual) {
  if (gate < 0 && plan_.ffn_fused_gate_up) {
    // Phi-3: one product into rows [gate | up] (llama.cpp's swiglu over the halves), then down.
    project({{up, s_.xn, s_.gate_up, 2 * width}}, n, ith, nth);
    swiglu(s_.gate_up, s_.gate_up + width, s_.gate, n, int(width), 2 * width, width, plan_.activation, ith, nth);
    pool_->barrier();
    encode(s_.gate, n, width, format_bit(act_format_for(backend_.weight(down).type)), ith, nth);
    project({{down, s_.gate, s_.proj, plan_.n_embd, residual}}, n, ith, nth);
    if (down_b >= 0) {
      add_bias(s_.proj, backend_.f32(down_b), n, plan_.n_embd, plan_.n_embd, ith, nth);
      pool_->barrier();
    }
    return;
  }
  if (gate >= 0)
    project({{gate, s_.xn, s_.gate, width}, {up, s_.xn, s_.up, width}}, n, ith, nth);
  else
    project({{up, s_.xn, s_.up, width}}, n, ith, nth);
  if (gate_b >= 0 || up_b >= 0) {
    if (gate_b >= 0) add_bias(s_.gate, backend_.f32(gate_b), n, int(width), width, ith, nth);
    if (up_b >= 0) add_bias(s_.up, backend_.f32(up_b), n, int(width), width, ith, nth);
    pool_->barrier();
  }
  // Without a gate (BERT): down(act(up)), the activation written into gate.
  const float* g = gate >= 0 ? s_.gate : s_.up;
  const float* u = gate >= 0 ? s_.up : nullptr;
  const ActFormat f = act_format_for(backend_.weight(down).type);
  int64_t b, e;
  if (quantize_act_split(f, n, width, ith, nth, &b, &e)) {
    // Each thread activates exactly the elements it then encodes: one phase, one barrier.
    swiglu_span(g, u, s_.gate, int(width), width, width, plan_.activation, b, e);
    quantize_act(f, s_.gate, n, width, s_.act[static_cast<int>(f)], ith, nth);
    pool_->barrier();
  } else {
    swiglu(g, u, s_.gate, n, int(width), width, width, plan_.activation, ith, nth);
    pool_->barrier();
    encode(s_.gate, n, width, format_bit(f), ith, nth);
  }
  project({{down, s_.gate, s_.proj, plan_.n_embd, residual}}, n, ith, nth);
  if (down_b >= 0) {
    add_bias(s_.proj, backend_.f32(down_b), n, plan_.n_embd, plan_.n_embd, ith, nth);
    pool_->barrier();
  }
}

void CpuExecutor::ffn_block(int il, int n, int ith, int nth) {
  const ModelPlan& p = plan_;
  const LayerPlan& L = p.layers[il];
  if (L.ffn_kind == FfnKind::Moe) {
    block_input(L.ffn_norm, L.ffn_norm_b, n, ith, nth);
    moe_block(il, n, ith, nth);
    return;
  }
  unsigned formats = 0;
  for (int w : {L.ffn_gate, L.ffn_up})
    if (w >= 0) formats |= format_bit(act_format_for(backend_.weight(w).type));
  block_input_encoded(L.ffn_norm, L.ffn_norm_b, n, formats, ith, nth);
  float* fused = fused_residual(L.ffn_down_b, L.ffn_post_norm);
  dense_ffn(L.ffn_gate, L.ffn_up, L.ffn_down, L.ffn_gate_b, L.ffn_up_b, L.ffn_down_b, p.n_ff, n, ith, nth, fused);
  if (!fused) residual_add(n, L.ffn_post_norm, ith, nth);
  if (p.post_norm) {
    pool_->barrier();
    norm(s_.x, L.layer_out_norm, L.layer_out_norm_b, s_.x, n, ith, nth);
  }
  // The caller's end-of-layer barrier orders this add before the next layer reads x.
}

void CpuExecutor::expert_matmul(int weight, const void* act, int64_t cols, float* y, int64_t rows, int ith, int nth) {
  // Work units are (active expert, chunk of 16 output rows); each thread takes a contiguous
  // range, so only the selected experts' weights are read, each by one thread per chunk.
  // Summed in the GEMV order at any token count: llama.cpp's mul_mat_id multiplies each
  // routed token on its own (see DotOrder). Float-weight experts keep the batch order,
  // though: the one-row order runs 10-20% slower per token on AVX2 (F16/BF16 2048x2048:
  // 0.43-0.38 -> 0.48 ms), and float MoE models stay within fp32 noise of llama.cpp anyway.
  const PackedWeight& w = backend_.weight(weight);
  const DotOrder order = is_float_type(w.type) ? DotOrder::Gemm : DotOrder::Gemv;
  const size_t act_row = act_row_bytes(act_format_for(w.type), cols);
  constexpr int64_t kChunk = 16;
  const int64_t chunks = (rows + kChunk - 1) / kChunk;
  int64_t u0, u1;
  split_range(int64_t(n_active_) * chunks, ith, nth, &u0, &u1);
  for (int64_t u = u0; u < u1; ++u) {
    const int a = int(u / chunks);
    const int64_t c = u % chunks;
    const int e = s_.active[a];
    const int off = s_.active_off[a], m = s_.active_off[a + 1] - off;
    matmul_rows(weight_slice(w, e, rows), static_cast<const uint8_t*>(act) + size_t(off) * act_row, m, y + int64_t(off) * rows, rows, c * kChunk,
                std::min(rows, (c + 1) * kChunk), order);
  }
}

void CpuExecutor::expert_bias(int bias, float* y, int64_t width, int ith, int nth) {
  // Rows are packed by expert (active_off); each gets its expert's bias row [width]
  // (llama.cpp's ggml_add_id over the selected experts).
  if (bias < 0) return;
  const float* b = backend_.f32(bias);
  const int64_t total = s_.active_off[n_active_];
  for (int a = 0; a < n_active_; ++a) {
    const float* row_bias = b + int64_t(s_.active[a]) * width;
    for (int64_t r = s_.active_off[a]; r < s_.active_off[a + 1]; ++r)
      if (r % nth == ith)
        for (int64_t i = 0; i < width; ++i) y[r * width + i] += row_bias[i];
  }
  (void)total;
}

namespace {

// The shared expert's sigmoid gate (1 without a gate tensor). llama.cpp's graph writes the
// sigmoid as silu(x) / x, which rounds differently from 1 / (1 + e^-x) in about one case in
// five; the same two divisions here keep the engines' residual streams bit-identical (at
// x = 0 its 0 / 0 would be NaN, where the sigmoid is exactly 1/2).
float shared_expert_gate(bool gated, float x) {
  if (!gated) return 1.0f;
  if (x == 0.0f) return 0.5f;
  return (x / (1.0f + std::exp(-x))) / x;
}

}  // namespace

void CpuExecutor::moe_block(int il, int n, int ith, int nth) {
  const ModelPlan& p = plan_;
  const LayerPlan& L = p.layers[il];
  const MoeParams& m = p.moe;
  const int K = m.n_expert_used, E = p.n_embd;
  const int64_t F = p.n_ff_exp;

  // Router logits, and the shared expert's inputs, from the normalized block input.
  unsigned formats = format_bit(act_format_for(backend_.weight(L.ffn_gate_inp).type));
  if (L.ffn_gate_shexp >= 0)
    for (int w : {L.ffn_gate_shexp, L.ffn_up_shexp}) formats |= format_bit(act_format_for(backend_.weight(w).type));
  if (L.ffn_gate_inp_shexp >= 0) formats |= format_bit(act_format_for(backend_.weight(L.ffn_gate_inp_shexp).type));
  encode(s_.xn, n, E, formats, ith, nth);
  if (L.ffn_gate_inp_shexp >= 0)
    project({{L.ffn_gate_inp, s_.xn, s_.router, m.n_expert}, {L.ffn_gate_inp_shexp, s_.xn, s_.shexp_gate, 1}}, n, ith, nth);
  else
    project({{L.ffn_gate_inp, s_.xn, s_.router, m.n_expert}}, n, ith, nth);
  if (L.ffn_gate_inp_b >= 0) {
    // gpt-oss: the router's bias joins its logits (ggml_add), selection and weights alike.
    add_bias(s_.router, backend_.f32(L.ffn_gate_inp_b), n, m.n_expert, m.n_expert, ith, nth);
    pool_->barrier();
  }

  // Routing and grouping by expert (cheap; one thread).
  if (ith == 0) {
    const float* bias = backend_.f32(L.ffn_exp_probs_b);
    for (int t = 0; t < n; ++t)
      moe_route(s_.router + int64_t(t) * m.n_expert, bias, m, s_.sel + t * K, s_.sel_w + t * K, s_.route_scratch);
    int32_t* count = s_.active_off;  // reused as per-expert counts, then rewritten as offsets
    std::fill(count, count + m.n_expert + 1, 0);
    for (int i = 0; i < n * K; ++i) count[s_.sel[i]]++;
    n_active_ = 0;
    int32_t start[512];
    int total = 0;
    for (int e = 0; e < m.n_expert; ++e) {
      start[e] = total;
      if (count[e] > 0) {
        s_.active[n_active_++] = e;
        total += count[e];
      }
    }
    for (int a = 0; a < n_active_; ++a) s_.active_off[a] = start[s_.active[a]];
    s_.active_off[n_active_] = total;
    for (int i = 0; i < n * K; ++i) s_.slot[i] = start[s_.sel[i]]++;
    if (trace_ && trace_->experts) {
      const int64_t at = (int64_t(il) * trace_rows_ + trace_row0_) * K;
      std::copy(s_.sel, s_.sel + n * K, trace_->experts + at);
      std::copy(s_.sel_w, s_.sel_w + n * K, trace_->expert_weights + at);
    }
  }
  pool_->barrier();

  // Gather each (token, choice) row into its expert's packed range and encode it.
  const int rows = n * K;
  {
    int64_t b, e;
    split_range(rows, ith, nth, &b, &e);
    for (int64_t i = b; i < e; ++i) std::copy(s_.xn + (i / K) * E, s_.xn + (i / K + 1) * E, s_.moe_x + int64_t(s_.slot[i]) * E);
  }
  pool_->barrier();
  const ActFormat fin = act_format_for(backend_.weight(L.ffn_gate_exps).type);
  const ActFormat fup = act_format_for(backend_.weight(L.ffn_up_exps).type);
  for (ActFormat f : kEncodedActFormats)
    if (f == fin || f == fup) quantize_act(f, s_.moe_x, rows, E, s_.moe_act[static_cast<int>(f)], ith, nth);
  pool_->barrier();
  auto encoded = [&](ActFormat f, const float* x) -> const void* { return f == ActFormat::F32 ? static_cast<const void*>(x) : s_.moe_act[static_cast<int>(f)]; };
  expert_matmul(L.ffn_gate_exps, encoded(fin, s_.moe_x), E, s_.moe_gate, F, ith, nth);
  expert_matmul(L.ffn_up_exps, encoded(fup, s_.moe_x), E, s_.moe_up, F, ith, nth);
  pool_->barrier();
  if (L.ffn_gate_exps_b >= 0 || L.ffn_up_exps_b >= 0) {
    expert_bias(L.ffn_gate_exps_b, s_.moe_gate, F, ith, nth);
    expert_bias(L.ffn_up_exps_b, s_.moe_up, F, ith, nth);
    pool_->barrier();
  }
  swiglu(s_.moe_gate, s_.moe_up, s_.moe_gate, rows, int(F), F, F, p.activation, ith, nth);
  pool_->barrier();
  const ActFormat fdown = act_format_for(backend_.weight(L.ffn_down_exps).type);
  if (fdown != ActFormat::F32) quantize_act(fdown, s_.moe_gate, rows, F, s_.moe_act[static_cast<int>(fdown)], ith, nth);
  pool_->barrier();
  expert_matmul(L.ffn_down_exps, encoded(fdown, s_.moe_gate), F, s_.moe_out, E, ith, nth);
  if (L.ffn_down_exps_b >= 0) {
    pool_->barrier();
    expert_bias(L.ffn_down_exps_b, s_.moe_out, E, ith, nth);
  }

  // The shared expert runs on the same normalized input (its activations are still encoded).
  // dense_ffn ends with a barrier, which also orders the expert products above.
  if (L.ffn_gate_shexp >= 0)
    dense_ffn(L.ffn_gate_shexp, L.ffn_up_shexp, L.ffn_down_shexp, -1, -1, -1, p.tensors[L.ffn_gate_shexp].ne[1], n, ith,
              nth);
  else
    pool_->barrier();

  // Weighted combine into the residual stream.
  int64_t b, e;
  split_range(int64_t(n) * E, ith, nth, &b, &e);
  for (int64_t idx = b; idx < e; ++idx) {
    const int64_t t = idx / E, i = idx % E;
    float sum = 0.f;
    for (int j = 0; j < K; ++j) sum += s_.sel_w[t * K + j] * s_.moe_out[int64_t(s_.slot[t * K + j]) * E + i];
    if (L.ffn_gate_shexp >= 0) {
      sum += shared_expert_gate(L.ffn_gate_inp_shexp >= 0, s_.shexp_gate[t]) * s_.proj[idx];
    }
    if (p.residual_scale != 0.f) sum *= p.residual_scale;  // (no FMA in this file: two roundings, as ggml)
    s_.x[idx] += sum;
  }
}

}  // namespace tessera::cpu
