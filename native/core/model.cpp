#include "core/model.h"

#include <cmath>

#include <string>
#include <utility>
#include <vector>

#include "core/cuda_loader.h"
#include "core/tensor_check.h"
#include "core/weight_types.h"

namespace tessera {

std::unique_ptr<Backend> create_cpu_backend(const BackendOptions& options);  // cpu/cpu_backend.cpp

namespace {

std::string dims_string(const TensorRef& t) {
  std::string s = "[";
  for (int i = 0; i < t.n_dims; ++i) s += (i ? ", " : "") + std::to_string(t.ne[i]);
  return s + "]";
}

class PlanChecker {
 public:
  explicit PlanChecker(const ModelPlan& plan) : plan_(plan) {}

  // role: a readable name for messages; expected dims in ggml order, every one of them
  // checked (no wildcard: a width the plan got wrong must fail here, not overrun a buffer).
  Status expect(int index, const char* role, std::vector<int64_t> dims, bool matmul) const {
    const TensorRef* t = nullptr;
    TESSERA_RETURN_IF_ERROR(tensor(index, role, &t));
    for (size_t i = 0; i < 4; ++i) {
      int64_t want = i < dims.size() ? dims[i] : 1;
      if (t->ne[i] != want) {
        std::string want_s = "[";
        for (size_t j = 0; j < dims.size(); ++j) want_s += (j ? ", " : "") + std::to_string(dims[j]);
        return Status::error(StatusCode::ModelIncompatible, "tensor " + t->name + " (" + role + ") has shape " +
                                                                dims_string(*t) + ", expected " + want_s + "]");
      }
    }
    if (matmul && !is_matmul_type(t->type))
      return Status::error(StatusCode::UnsupportedQuantType,
                           "tensor " + t->name + " uses " + ggml_type_traits(t->type).name +
                               ", which Tessera cannot compute with; use a file quantized as " + weight_type_list());
    if (!matmul && t->type != GgmlType::F32)
      return Status::error(StatusCode::ModelIncompatible,
                           "tensor " + t->name + " (" + role + ") must be F32, found " + ggml_type_traits(t->type).name);
    return Status::ok();
  }

  // The tensor at `index`, which must exist.
  Status tensor(int index, const char* role, const TensorRef** out) const {
    if (index < 0) return Status::error(StatusCode::ModelIncompatible, std::string("missing tensor for ") + role);
    if (index >= static_cast<int>(plan_.tensors.size()))
      return Status::error(StatusCode::InvalidArgument, std::string("tensor index out of range for ") + role);
    *out = &plan_.tensors[index];
    return Status::ok();
  }

  Status optional(int index, const char* role, std::vector<int64_t> dims) const {
    return index < 0 ? Status::ok() : expect(index, role, std::move(dims), false);
  }

  // A block tensor, its label, type kind and presence from core/layer_roles.h; `required`
  // overrides an optional role's presence (a shared expert's up once it has a gate).
  Status role(const LayerPlan& L, LayerRole r, std::vector<int64_t> dims, bool required = false) const {
    const LayerRoleInfo& info = layer_role_info(r);
    checked_ |= uint64_t(1) << static_cast<int>(r);
    if (L[r] < 0 && info.presence == RolePresence::Optional && !required) return Status::ok();
    return expect(L[r], info.label, std::move(dims), info.kind == RoleKind::Matmul);
  }

  // After a block's checks: a tensor the block's recipe did not check is one no executor
  // would read, so the plan is refused rather than run without it.
  void begin_block() const { checked_ = 0; }
  Status unchecked(const LayerPlan& L) const {
    for (int r = 0; r < kLayerRoleCount; ++r)
      if (L[static_cast<LayerRole>(r)] >= 0 && !(checked_ >> r & 1))
        return Status::error(StatusCode::ModelIncompatible, std::string("the plan sets ") + kLayerRoles[r].label +
                                                                " (" + kLayerRoles[r].suffix +
                                                                "), which this block's recipe does not use");
    return Status::ok();
  }

 private:
  const ModelPlan& plan_;
  mutable uint64_t checked_ = 0;  // bit per LayerRole checked in the current block
  static_assert(kLayerRoleCount <= 64, "checked_ holds one bit per role");
};

Status validate_tensor_storage(const TensorRef& t, uint64_t file_size) {
  GgmlTypeTraits tr = ggml_type_traits(t.type);
  if (tr.block_size <= 0)
    return Status::error(StatusCode::UnsupportedQuantType, "tensor " + t.name + " has an unknown type id " +
                                                              std::to_string(static_cast<int>(t.type)));
  if (t.n_dims < 1 || t.n_dims > 4)
    return Status::error(StatusCode::InvalidArgument, "tensor " + t.name + " has " + std::to_string(t.n_dims) + " dims");
  for (int i = 0; i < 4; ++i)
    if (t.ne[i] < 1 || t.ne[i] > (int64_t(1) << 40))
      return Status::error(StatusCode::InvalidArgument, "tensor " + t.name + " has an invalid dimension");
  size_t row = ggml_row_bytes(t.type, t.ne[0]);
  if (row == 0)
    return Status::error(StatusCode::ModelIncompatible,
                         "tensor " + t.name + " row length " + std::to_string(t.ne[0]) + " is not a multiple of the " +
                             tr.name + " block size");
  const unsigned __int128 bytes = static_cast<unsigned __int128>(row) * static_cast<unsigned __int128>(t.rows());
  if (bytes != t.nbytes)
    return Status::error(StatusCode::InvalidArgument, "tensor " + t.name + " byte length does not match its shape");
  if (t.offset > file_size || t.nbytes > file_size - t.offset)
    return Status::error(StatusCode::InvalidArgument, "tensor " + t.name + " extends past the end of the file");
  // The kernels read F32 values and the fp16 scales of quant blocks in place from the mapping
  // (page-aligned): data at an odd offset would make those reads misaligned. GGUF aligns
  // tensor data to a multiple of 8.
  if (t.offset % 8 != 0)
    return Status::error(StatusCode::InvalidArgument, "tensor " + t.name + " data at file offset " +
                                                          std::to_string(t.offset) + " is not aligned to 8 bytes");
  return Status::ok();
}

// MLA: the cache row shape and every latent-attention tensor against the plan's ranks.
Status validate_mla_shape(const ModelPlan& p) {
  const MlaParams& m = p.mla;
  if (m.kv_lora_rank < 1 || m.q_lora_rank < 0 || m.head_dim_nope < 1 || m.head_dim_rope < 2 || m.head_dim_v < 1 ||
      m.kv_lora_rank > 65536 || m.q_lora_rank > 65536 || m.head_dim_nope > 4096 || m.head_dim_v > 4096)
    return Status::error(StatusCode::ModelIncompatible, "invalid multi-head latent attention ranks");
  if (p.n_head_kv != 1 || p.head_dim != m.kv_lora_rank + m.head_dim_rope || p.head_dim_v != m.kv_lora_rank ||
      p.rope.n_dims != m.head_dim_rope)
    return Status::error(StatusCode::ModelIncompatible,
                         "multi-head latent attention needs one KV head of kv_lora_rank + rope dims with RoPE over the "
                         "rope dims and values of kv_lora_rank");
  return Status::ok();
}

Status validate_mla_layer(const PlanChecker& c, const ModelPlan& p, const LayerPlan& L) {
  const MlaParams& m = p.mla;
  const int64_t e = p.n_embd, h = p.n_head, q_w = h * (m.head_dim_nope + m.head_dim_rope);
  using R = LayerRole;
  if (m.q_lora_rank > 0) {
    TESSERA_RETURN_IF_ERROR(c.role(L, R::wq_a, {e, m.q_lora_rank}));
    TESSERA_RETURN_IF_ERROR(c.role(L, R::q_a_norm, {m.q_lora_rank}));
    TESSERA_RETURN_IF_ERROR(c.role(L, R::wq_b, {m.q_lora_rank, q_w}));
  } else {
    TESSERA_RETURN_IF_ERROR(c.role(L, R::wq, {e, q_w}));
  }
  TESSERA_RETURN_IF_ERROR(c.role(L, R::wkv_a, {e, m.kv_lora_rank + m.head_dim_rope}));
  TESSERA_RETURN_IF_ERROR(c.role(L, R::kv_a_norm, {m.kv_lora_rank}));
  TESSERA_RETURN_IF_ERROR(c.role(L, R::wk_b, {m.head_dim_nope, m.kv_lora_rank, h}));
  TESSERA_RETURN_IF_ERROR(c.role(L, R::wv_b, {m.kv_lora_rank, m.head_dim_v, h}));
  return c.role(L, R::wo, {h * m.head_dim_v, e});
}

// An encoder's input embeddings: the position and token-type tables are read by row like
// token_embd (any computable type), [n_embd, rows] with rows from the tensor; the embedding
// LayerNorm is F32 [n_embd].
Status validate_inputs(const PlanChecker& c, const ModelPlan& p) {
  const int64_t e = p.n_embd;
  for (auto [index, role] : {std::pair<int, const char*>{p.pos_embd, "position embeddings"}, {p.token_types, "token-type embeddings"}}) {
    if (index < 0) continue;
    const TensorRef* t = nullptr;
    TESSERA_RETURN_IF_ERROR(c.tensor(index, role, &t));
    if (t->n_dims != 2 || t->ne[0] != e)
      return Status::error(StatusCode::ModelIncompatible, "tensor " + t->name + " (" + role + ") has shape " +
                                                              dims_string(*t) + ", expected [" + std::to_string(e) + ", rows]");
    TESSERA_RETURN_IF_ERROR(c.expect(index, role, {e, t->ne[1]}, true));
  }
  if (p.tok_embd_norm_b >= 0 && p.tok_embd_norm < 0)
    return Status::error(StatusCode::ModelIncompatible, "the plan has an embedding norm bias without its weight");
  TESSERA_RETURN_IF_ERROR(c.optional(p.tok_embd_norm, "embedding norm", {e}));
  return c.optional(p.tok_embd_norm_b, "embedding norm bias", {e});
}

}  // namespace

// Mamba-2: the SSM sizes (model_plan.h SsmParams), checked before any block's tensors.
Status validate_ssm_shape(const ModelPlan& p) {
  const SsmParams& m = p.ssm;
  if (m.d_conv < 2 || m.d_conv > SsmParams::kMaxConv || m.d_inner < 1 || m.d_inner > (1 << 20) || m.d_state < 1 ||
      m.d_state > 4096 || m.n_group < 1 || m.n_head < 1 || m.d_inner % m.n_head != 0 || m.n_head % m.n_group != 0 ||
      m.d_inner % m.n_group != 0)
    return Status::error(StatusCode::ModelIncompatible,
                         "invalid SSM sizes (conv kernel " + std::to_string(m.d_conv) + ", inner size " +
                             std::to_string(m.d_inner) + ", state size " + std::to_string(m.d_state) + ", groups " +
                             std::to_string(m.n_group) + ", heads " + std::to_string(m.n_head) + ")");
  return Status::ok();
}

Status validate_ssm_layer(const PlanChecker& c, const ModelPlan& p, const LayerPlan& L) {
  using R = LayerRole;
  const SsmParams& m = p.ssm;
  const int64_t e = p.n_embd, ch = m.conv_channels(), h = m.n_head;
  TESSERA_RETURN_IF_ERROR(c.role(L, R::attn_norm, {e}));
  TESSERA_RETURN_IF_ERROR(c.role(L, R::ssm_in, {e, m.in_proj_width()}));
  TESSERA_RETURN_IF_ERROR(c.role(L, R::ssm_conv1d, {m.d_conv, ch}));
  TESSERA_RETURN_IF_ERROR(c.role(L, R::ssm_conv1d_b, {ch}));
  TESSERA_RETURN_IF_ERROR(c.role(L, R::ssm_dt_b, {h}));
  TESSERA_RETURN_IF_ERROR(c.role(L, R::ssm_a, {1, h}));
  TESSERA_RETURN_IF_ERROR(c.role(L, R::ssm_d, {1, h}));
  TESSERA_RETURN_IF_ERROR(c.role(L, R::ssm_norm, {m.d_inner / m.n_group, m.n_group}));
  return c.role(L, R::ssm_out, {m.d_inner, e});
}

Status validate_plan(const ModelPlan& p, uint64_t file_size) {
  for (const TensorRef& t : p.tensors) TESSERA_RETURN_IF_ERROR(validate_tensor_storage(t, file_size));
  if (static_cast<int>(p.layers.size()) != p.n_layer)
    return Status::error(StatusCode::InvalidArgument, "plan has a different number of layers than n_layer");
  // A model of SSM blocks only (mamba2) has no attention heads.
  const bool attention = attention_layer_count(p) > 0;
  if (p.n_layer < 1 || p.n_embd < 1 || p.n_vocab < 1 ||
      (attention && (p.n_head < 1 || p.n_head_kv < 1 || p.head_dim < 2 || p.head_dim_v < 1)) ||
      (!attention && (p.n_head != 0 || p.n_head_kv != 0 || p.head_dim != 0 || p.head_dim_v != 0)))
    return Status::error(StatusCode::ModelIncompatible, "model hyperparameters must be positive");
  if (uses_recurrent_state(p)) TESSERA_RETURN_IF_ERROR(validate_ssm_shape(p));
  if (attention && p.n_head % p.n_head_kv != 0)
    return Status::error(StatusCode::ModelIncompatible, "head count " + std::to_string(p.n_head) +
                                                            " is not a multiple of the KV head count " +
                                                            std::to_string(p.n_head_kv));
  if (static_cast<int>(p.layers.size()) != p.n_layer)
    return Status::error(StatusCode::InvalidArgument, "plan has a different number of layers than n_layer");
  if (attention && p.rope.kind != RopeKind::None && (p.rope.n_dims < 2 || p.rope.n_dims > p.head_dim || p.rope.n_dims % 2))
    return Status::error(StatusCode::ModelIncompatible, "rope dimension count must be even and at most the head size");

  // Scalar multipliers (Granite): 0 is "none"; a negative or non-finite one is damage.
  for (float s : {p.embedding_scale, p.residual_scale, p.logit_scale, p.query_scale, p.attn_logit_softcap, p.final_logit_softcap})
    if (!(s >= 0.f) || !std::isfinite(s))
      return Status::error(StatusCode::ModelIncompatible,
                           "the embedding, residual, logit and query scales and the soft-caps must be finite and non-negative");

  if (!std::isfinite(p.attn_temp_scale) || p.attn_temp_floor < 1)
    return Status::error(StatusCode::ModelIncompatible, "the attention temperature needs a finite scale and a positive length");
  const bool mla = p.mla.kv_lora_rank > 0;
  if (mla) TESSERA_RETURN_IF_ERROR(validate_mla_shape(p));
  // The executors size their FFN scratch from these widths, so every FFN tensor below is
  // checked against them exactly; a block kind without its width is refused here.
  bool dense = false, moe = false;
  for (const LayerPlan& L : p.layers)
    if (L.has_ffn()) (L.ffn_kind == FfnKind::Dense ? dense : moe) = true;
  if (p.n_ff < 0 || p.n_ff_exp < 0 || (dense && p.n_ff < 1) || (moe && p.n_ff_exp < 1))
    return Status::error(StatusCode::ModelIncompatible,
                         "the plan has no FFN width (n_ff " + std::to_string(p.n_ff) + ", n_ff_exp " +
                             std::to_string(p.n_ff_exp) + ") for its dense or expert blocks");

  PlanChecker c(p);
  const int64_t e = p.n_embd, v = p.n_vocab;
  const int64_t q_out = int64_t(p.n_head) * p.head_dim, k_out = int64_t(p.n_head_kv) * p.head_dim;
  const int64_t v_out = int64_t(p.n_head_kv) * p.head_dim_v, o_in = int64_t(p.n_head) * p.head_dim_v;
  TESSERA_RETURN_IF_ERROR(c.expect(p.tok_embd, "token embeddings", {e, v}, true));
  if (p.lm_head) {
    TESSERA_RETURN_IF_ERROR(c.expect(p.output_norm, "output norm", {e}, false));
    TESSERA_RETURN_IF_ERROR(c.optional(p.output_norm_b, "output norm bias", {e}));
    if (p.output >= 0) TESSERA_RETURN_IF_ERROR(c.expect(p.output, "output projection", {e, v}, true));
    TESSERA_RETURN_IF_ERROR(c.optional(p.output_b, "output bias", {v}));
  } else if (p.output_norm >= 0 || p.output_norm_b >= 0 || p.output >= 0 || p.output_b >= 0) {
    return Status::error(StatusCode::ModelIncompatible, "the plan has no LM head but sets an output norm or projection");
  }
  TESSERA_RETURN_IF_ERROR(validate_inputs(c, p));
  if (!p.causal && p.mla.kv_lora_rank > 0)
    return Status::error(StatusCode::ModelIncompatible, "bidirectional attention with multi-head latent attention is not supported");
  if (p.rope.freq_factors >= 0)
    TESSERA_RETURN_IF_ERROR(c.expect(p.rope.freq_factors, "rope frequency factors", {p.rope.n_dims / 2}, false));

  using R = LayerRole;
  for (int il = 0; il < p.n_layer; ++il) {
    const LayerPlan& L = p.layers[il];
    c.begin_block();
    if (L.is_ssm()) {
      TESSERA_RETURN_IF_ERROR(validate_ssm_layer(c, p, L));
      if (!L.has_ffn()) {
        TESSERA_RETURN_IF_ERROR(c.unchecked(L));
        continue;
      }
    } else if (p.post_norm) {
      TESSERA_RETURN_IF_ERROR(c.role(L, R::attn_out_norm, {e}, true));
      TESSERA_RETURN_IF_ERROR(c.role(L, R::attn_out_norm_b, {e}));
      TESSERA_RETURN_IF_ERROR(c.role(L, R::layer_out_norm, {e}, true));
      TESSERA_RETURN_IF_ERROR(c.role(L, R::layer_out_norm_b, {e}));
    } else {
      TESSERA_RETURN_IF_ERROR(c.role(L, R::attn_norm, {e}));
      TESSERA_RETURN_IF_ERROR(c.role(L, R::attn_norm_b, {e}));
      TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_norm, {e}));
      TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_norm_b, {e}));
    }
    if (L.is_ssm()) {
      TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_norm, {e}));  // the FFN of a hybrid's SSM block
    } else if (mla) {
      TESSERA_RETURN_IF_ERROR(validate_mla_layer(c, p, L));
    } else if (L.wqkv >= 0) {
      // Fused projection: rows [q | k | v], split by the executor.
      TESSERA_RETURN_IF_ERROR(c.role(L, R::wqkv, {e, q_out + k_out + v_out}));
      TESSERA_RETURN_IF_ERROR(c.role(L, R::bqkv, {q_out + k_out + v_out}));
      if (L.bqkv >= 0 && (L.bq >= 0 || L.bk >= 0 || L.bv >= 0))
        return Status::error(StatusCode::ModelIncompatible, "a block has both a fused qkv bias and separate q/k/v biases");
      TESSERA_RETURN_IF_ERROR(c.role(L, R::wo, {o_in, e}));
    } else {
      TESSERA_RETURN_IF_ERROR(c.role(L, R::wq, {e, q_out}));
      TESSERA_RETURN_IF_ERROR(c.role(L, R::wk, {e, k_out}));
      TESSERA_RETURN_IF_ERROR(c.role(L, R::wv, {e, v_out}));
      TESSERA_RETURN_IF_ERROR(c.role(L, R::wo, {o_in, e}));
    }
    TESSERA_RETURN_IF_ERROR(c.role(L, R::bq, {q_out}));
    TESSERA_RETURN_IF_ERROR(c.role(L, R::bk, {k_out}));
    TESSERA_RETURN_IF_ERROR(c.role(L, R::bv, {v_out}));
    TESSERA_RETURN_IF_ERROR(c.role(L, R::bo, {e}));
    TESSERA_RETURN_IF_ERROR(c.role(L, R::attn_sinks, {p.n_head}));
    TESSERA_RETURN_IF_ERROR(c.role(L, R::attn_post_norm, {e}));
    TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_post_norm, {e}));
    if (L.ffn_post_norm >= 0 && L.ffn_kind == FfnKind::Moe)
      return Status::error(StatusCode::ModelIncompatible, "a post-FFN norm on a mixture-of-experts block is not supported");
    if (!(L.rope_freq_base >= 0.f && std::isfinite(L.rope_freq_base) && L.rope_freq_scale >= 0.f && std::isfinite(L.rope_freq_scale)))
      return Status::error(StatusCode::ModelIncompatible, "a block's RoPE base and scale must be finite and non-negative");
    TESSERA_RETURN_IF_ERROR(c.role(L, R::q_norm, {p.head_dim}));
    TESSERA_RETURN_IF_ERROR(c.role(L, R::k_norm, {p.head_dim}));
    if (L.sliding_window < 0) return Status::error(StatusCode::ModelIncompatible, "negative sliding window");
    if (L.ffn_kind == FfnKind::Dense) {
      const int64_t f = p.n_ff;
      // Ungated (ffn_gated false) or fused (gate and up in ffn_up): a gate set anyway is left
      // unchecked and refused below.
      const bool gate = p.ffn_gated && !p.ffn_fused_gate_up;
      if (p.ffn_fused_gate_up && (!p.ffn_gated || L.ffn_gate_b >= 0 || L.ffn_up_b >= 0))
        return Status::error(StatusCode::ModelIncompatible, "a fused gate/up FFN must be gated and has no gate or up bias");
      if (gate) TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_gate, {e, f}));
      TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_up, {e, p.ffn_fused_gate_up ? 2 * f : f}));
      TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_down, {f, e}));
      if (gate) TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_gate_b, {f}));
      TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_up_b, {f}));
      TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_down_b, {e}));
    } else {
      const MoeParams& m = p.moe;
      if (m.n_expert < 1 || m.n_expert > 512 || m.n_expert_used < 1 || m.n_expert_used > m.n_expert || m.n_expert_used > 64)
        return Status::error(StatusCode::ModelIncompatible, "invalid expert counts (at most 512 experts, 64 used)");
      if (m.n_group > 0 && (m.n_group > 256 || m.n_expert % m.n_group != 0 || m.n_group_used < 1 || m.n_group_used > m.n_group))
        return Status::error(StatusCode::ModelIncompatible, "invalid expert group counts");
      const int64_t f = p.n_ff_exp, n = m.n_expert;
      TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_gate_inp, {e, n}));
      TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_gate_exps, {e, f, n}));
      TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_up_exps, {e, f, n}));
      TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_down_exps, {f, e, n}));
      TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_exp_probs_b, {n}));
      TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_gate_inp_b, {n}));
      TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_gate_exps_b, {f, n}));
      TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_up_exps_b, {f, n}));
      TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_down_exps_b, {e, n}));
      if (L.ffn_gate_shexp >= 0 || L.ffn_up_shexp >= 0 || L.ffn_down_shexp >= 0) {
        // The shared expert's width is its gate's; up and down must match it.
        const TensorRef* gate = nullptr;
        TESSERA_RETURN_IF_ERROR(c.tensor(L.ffn_gate_shexp, "shared expert gate", &gate));
        const int64_t fs = gate->ne[1];
        TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_gate_shexp, {e, fs}, true));
        TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_up_shexp, {e, fs}, true));
        TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_down_shexp, {fs, e}, true));
      }
      if (L.ffn_gate_b >= 0 || L.ffn_up_b >= 0 || L.ffn_down_b >= 0)
        return Status::error(StatusCode::ModelIncompatible, "FFN biases are only supported on dense blocks");
      TESSERA_RETURN_IF_ERROR(c.role(L, R::ffn_gate_inp_shexp, {e}));
    }
    TESSERA_RETURN_IF_ERROR(c.unchecked(L));
  }
  return Status::ok();
}

Status load_model(const std::string& path, ModelPlan plan, BackendKind kind, const BackendOptions& options,
                  const LoadSettings& settings, LoadControl& control, std::shared_ptr<LoadedModel>* out) {
  // Everything built here belongs to `model`: an error or an abort returns and frees it.
  auto model = std::make_shared<LoadedModel>();
  TESSERA_RETURN_IF_ERROR(model->file.open(path));
  TESSERA_RETURN_IF_ERROR(validate_plan(plan, model->file.size()));
  if (kind == BackendKind::Cuda && uses_recurrent_state(plan))
    return Status::error(StatusCode::BackendUnavailable, "the CUDA backend does not run state-space models (" +
                                                             plan.architecture + ") yet; load it with backend \"cpu\"");
  if (kind == BackendKind::Cuda && uses_encoder_features(plan))
    return Status::error(StatusCode::BackendUnavailable, "the CUDA backend does not run encoder models (" +
                                                             plan.architecture + ") yet; load it with backend \"cpu\"");
  // Progress in bytes, fixed before the first advance so that it only grows: the file read
  // (without a mapping), each tensor's check, and each tensor's preparation (the backend
  // advances by the tensors it packs or uploads; the rest is counted at the end).
  uint64_t tensor_bytes = 0;
  for (const TensorRef& t : plan.tensors) tensor_bytes += t.nbytes;
  control.total.store((settings.map ? 0 : model->file.size()) + (settings.check_tensors ? tensor_bytes : 0) + tensor_bytes);
  TESSERA_RETURN_IF_ERROR(control.cancelled());
  TESSERA_RETURN_IF_ERROR(model->file.load(settings.map, &control));
  for (TensorRef& t : plan.tensors) t.data = model->file.data() + t.offset;
  model->plan = std::move(plan);
  if (settings.check_tensors) {
    for (const TensorRef& t : model->plan.tensors) {
      TESSERA_RETURN_IF_ERROR(check_tensor_finite(t));
      TESSERA_RETURN_IF_ERROR(control.advance(t.nbytes));
    }
  }

  if (kind == BackendKind::Cuda) {
    CudaCreateBackendFn create = cuda_create_backend_fn();
    if (!create)
      return Status::error(StatusCode::BackendUnavailable,
                           "the CUDA backend is unavailable: " + cuda_availability().reason +
                               "; use backend \"cpu\" or \"auto\"");
    char error[512] = {0};
    model->backend.reset(create(&options, error, sizeof error));
    if (!model->backend)
      return Status::error(StatusCode::Cuda, std::string("creating the CUDA backend failed: ") + error);
  } else {
    BackendOptions cpu_options = options;
    cpu_options.weights_in_memory = !settings.map;
    model->backend = create_cpu_backend(cpu_options);
  }
  TESSERA_RETURN_IF_ERROR(model->backend->prepare(model->plan, control));
  control.done.store(control.total.load());
  *out = std::move(model);
  return Status::ok();
}

}  // namespace tessera
