// ModelPlan: the architecture-independent description of a decoder the executors run.
// TypeScript builds it from a GGUF file and an architecture description (lib/arch/) and
// validates it; the addon converts it (addon/plan_from_js.cpp) and model.cpp re-checks
// every shape before any kernel sees a pointer.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/ggml_types.h"
#include "core/layer_roles.h"

namespace tessera {

// A tensor inside the mmapped GGUF. ne[0] is the contiguous dimension (ggml order).
struct TensorRef {
  std::string name;
  GgmlType type = GgmlType::F32;
  int n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};
  uint64_t offset = 0;  // absolute byte offset in the file
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr;  // set once the file is mapped

  int64_t rows() const { return ne[1] * ne[2] * ne[3]; }
  int64_t elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

enum class NormKind { Rms = 0, Layer = 1 };
enum class RopeKind { None = 0, Normal = 1, Neox = 2 };
enum class RopeScaling { None = 0, Linear = 1, Yarn = 2, Llama3 = 3 };
enum class FfnKind { Dense = 0, Moe = 1 };
// SwigluOai (gpt-oss): x = min(gate, 7), y = clamp(up, -7, 7), out = x * sigmoid(1.702 x) * (y + 1).
enum class GateActivation { Silu = 0, Gelu = 1, SwigluOai = 2 };
// SoftmaxWeight (gpt-oss): experts picked by raw logit, weighted by the softmax of the picked ones.
enum class ExpertGating { Softmax = 0, Sigmoid = 1, SoftmaxWeight = 2 };

struct RopeParams {
  RopeKind kind = RopeKind::Normal;
  int n_dims = 0;            // rotated dimensions per head (<= head_dim)
  float freq_base = 10000.f;
  float freq_scale = 1.f;    // 1 / linear scaling factor
  RopeScaling scaling = RopeScaling::None;
  int n_ctx_orig = 0;        // training context before extension (YaRN, llama3)
  float yarn_ext_factor = 0.f;
  float yarn_attn_factor = 1.f;
  float yarn_beta_fast = 32.f;
  float yarn_beta_slow = 1.f;
  float llama3_low_freq_factor = 1.f;
  float llama3_high_freq_factor = 4.f;
  int freq_factors = -1;     // tensor index of per-dimension frequency divisors (rope_freqs), or -1
};

struct MoeParams {
  int n_expert = 0;
  int n_expert_used = 0;
  int n_expert_shared = 0;        // shared experts folded into the *_shexp tensors
  ExpertGating gating = ExpertGating::Softmax;
  bool norm_top_k = false;        // renormalize the selected experts' weights to sum 1
  float weights_scale = 1.f;      // multiply the routing weights (deepseek2)
  int n_group = 0;                // group-limited routing: groups of experts...
  int n_group_used = 0;           // ...of which the best n_group_used are eligible
};

// Multi-head latent attention (deepseek2). The KV cache holds one row per token of
// kv_lora_rank normalized latent values then head_dim_rope RoPE'd key values, read as MQA
// with n_head_kv = 1, head_dim = kv_lora_rank + head_dim_rope, head_dim_v = kv_lora_rank
// (V is the latent prefix of the same row). q_nope is absorbed through wk_b per head and
// the latent attention output expanded through wv_b per head.
struct MlaParams {
  int q_lora_rank = 0;     // 0: q from wq; else wq_a -> q_a_norm -> wq_b
  int kv_lora_rank = 0;    // 0: not an MLA model
  int head_dim_nope = 0;   // per-head q·k size without RoPE
  int head_dim_rope = 0;   // per-head RoPE'd size (shared k_pe)
  int head_dim_v = 0;      // per-head value size after wv_b
};

// Mamba-2 selective state-space blocks (lib/arch/mamba2.ts; llama.cpp's build_mamba2_layer).
// A block whose ssm_in is set runs, on its normalized input, in_proj -> [z | xBC | dt];
// a causal depthwise conv of d_conv taps over xBC (+ bias, SiLU); the selective scan of
// n_head heads of head_dim = d_inner / n_head channels, each with a d_state state and a
// scalar decay, B and C shared by the heads of each of n_group groups; + D * x; * SiLU(z);
// RMSNorm per group; out_proj. Each sequence carries, per SSM block, a conv state
// [d_conv - 1][conv channels] and a scan state [n_head][head_dim][d_state] (kv_cache.h).
struct SsmParams {
  static constexpr int kMaxConv = 16;  // most conv taps the executors take (files have 4)
  int d_conv = 0;   // conv taps (0: no SSM blocks)
  int d_inner = 0;  // n_head * head_dim
  int d_state = 0;
  int n_group = 0;
  int n_head = 0;   // the file's time_step_rank

  int head_dim() const { return n_head > 0 ? d_inner / n_head : 0; }
  int64_t conv_channels() const { return d_inner + 2 * int64_t(n_group) * d_state; }
  int64_t in_proj_width() const { return d_inner + conv_channels() + n_head; }
  // Floats of one sequence's state in one SSM block: conv window, then scan state.
  int64_t state_floats() const { return (d_conv - 1) * conv_channels() + int64_t(d_inner) * d_state; }
};

// Every tensor field is an index into ModelPlan::tensors, -1 when absent. The fields are
// the rows of core/layer_roles.h (kind, GGUF name, presence); what they hold:
//   attn_*/w[qkvo]/b[qkvo]: attention; q_norm/k_norm: per-head RMSNorm of q and k (qwen3).
//   MLA: wq or (wq_a, q_a_norm, wq_b); wkv_a [n_embd -> kv_lora + rope], kv_a_norm,
//     wk_b [n_head][kv_lora][nope], wv_b [n_head][head_dim_v][kv_lora].
//   ffn_gate/up/down(_b): dense FFN (biases: llama).
//   Mixture of experts: router ffn_gate_inp [n_embd -> n_expert], stacked experts
//     ffn_*_exps [n_expert][...], ffn_exp_probs_b (routing bias added for selection only,
//     sigmoid gating), shared expert ffn_*_shexp, ffn_gate_inp_shexp (its sigmoid gate, qwen2moe).
struct LayerPlan {
#define TESSERA_ROLE_FIELD(field, js, suffix, kind, presence, label) int field = -1;
  TESSERA_LAYER_ROLES(TESSERA_ROLE_FIELD)
#undef TESSERA_ROLE_FIELD
  FfnKind ffn_kind = FfnKind::Dense;
  int sliding_window = 0;         // 0: attends to every earlier position
  // The block's own RoPE base and scale in place of the plan's, scaling off (Gemma 3's local
  // blocks: rope.freq_base_swa, unscaled); 0: the plan's.
  float rope_freq_base = 0.f;
  float rope_freq_scale = 0.f;

  // A Mamba-2 block (see SsmParams) in place of attention; it has an FFN only with ffn_norm.
  bool is_ssm() const { return ssm_in >= 0; }
  bool has_ffn() const { return !is_ssm() || ffn_norm >= 0; }

  int& operator[](LayerRole r);
  int operator[](LayerRole r) const { return const_cast<LayerPlan&>(*this)[r]; }
};

inline int& LayerPlan::operator[](LayerRole r) {
  static constexpr int LayerPlan::* kFields[] = {
#define TESSERA_ROLE_MEMBER(field, js, suffix, kind, presence, label) &LayerPlan::field,
      TESSERA_LAYER_ROLES(TESSERA_ROLE_MEMBER)
#undef TESSERA_ROLE_MEMBER
  };
  return this->*kFields[static_cast<int>(r)];
}

struct ModelPlan {
  std::string architecture;
  int n_layer = 0;
  int n_embd = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;      // key/query head size
  int head_dim_v = 0;    // value head size
  int n_ff = 0;          // dense FFN hidden size, as the tensors have it (0: no dense block)
  int n_ff_exp = 0;      // per-expert hidden size (MoE), likewise
  int n_vocab = 0;
  int n_ctx_train = 0;
  float norm_eps = 1e-5f;
  NormKind norm = NormKind::Rms;
  GateActivation activation = GateActivation::Silu;
  float attn_scale = 0.f;       // softmax scale; plan_from_js resolves 0 (unset) to 1/sqrt(head_dim)
  float attn_logit_softcap = 0.f;   // scores = cap * tanh(scores * (1 / cap)); 0: none (Gemma 2)
  float final_logit_softcap = 0.f;  // likewise for the logits
  float embedding_scale = 0.f;  // 0: none
  float residual_scale = 0.f;   // multiplies attention and FFN outputs before the residual add; 0: none
  float logit_scale = 0.f;      // logits times 1 / logit_scale (llama.cpp's ggml_scale); 0: none
  // Multiplies q (after RoPE) before attention, as Gemma's graph does (ggml_scale of Qcur; the
  // softmax scale is then 1); 0: none. The CPU scales q so that its fp16 rounding is llama.cpp's.
  float query_scale = 0.f;
  // Llama 4 style attention temperature (Mistral 3): q of the row at position pos is also
  // multiplied by 1 + attn_temp_scale * ln(floor(pos / attn_temp_floor) + 1); 0: none.
  float attn_temp_scale = 0.f;
  int attn_temp_floor = 1;
  RopeParams rope;
  MoeParams moe;
  MlaParams mla;
  SsmParams ssm;

  // Encoders (bert, nomic-bert; lib/arch/types.ts EncoderRecipe). causal = false: a row sees
  // every position of its sequence in the step, and a sequence runs whole, from position 0,
  // in one step. post_norm: LayerNorm (attn_out_norm, layer_out_norm) after each residual
  // add, no attn_norm/ffn_norm. ffn_gated = false: dense FFN is down(act(up(x))), no gate.
  // lm_head = false: no output norm or LM head; hidden states are the last block's output
  // and logits are refused.
  bool causal = true;
  bool post_norm = false;
  bool ffn_gated = true;
  // Phi-3: ffn_up [n_embd, 2 * n_ff] holds [gate | up] and there is no ffn_gate.
  bool ffn_fused_gate_up = false;
  bool lm_head = true;
  // Input embeddings: x = tok_embd[t] + token_types[0] + pos_embd[pos], then LayerNorm by
  // tok_embd_norm(_b). -1: absent.
  int pos_embd = -1;     // [n_embd, n_positions]; max_context must not exceed n_positions
  int token_types = -1;  // [n_embd, n_types]
  int tok_embd_norm = -1, tok_embd_norm_b = -1;

  int tok_embd = -1;
  int output_norm = -1, output_norm_b = -1;  // output_norm -1 only without an LM head
  int output = -1;  // -1: tied to tok_embd
  int output_b = -1;  // LM head bias [n_vocab] (qwen2), or -1

  std::vector<LayerPlan> layers;
  std::vector<TensorRef> tensors;
};

// The RoPE block L rotates q and k with: the plan's, or the block's own base and scale with
// no scaling mode (the plan builder refuses a block override under YaRN, whose attention
// factor it would drop).
inline RopeParams layer_rope(const ModelPlan& p, const LayerPlan& L) {
  RopeParams r = p.rope;
  if (L.rope_freq_base > 0.f) {
    r.freq_base = L.rope_freq_base;
    r.freq_scale = L.rope_freq_scale > 0.f ? L.rope_freq_scale : 1.f;
    r.scaling = RopeScaling::None;
  }
  return r;
}

// The attention temperature of a row at position pos, computed as llama.cpp's
// llm_graph_input_attn_temp does (a float quotient floored, the rest in double, stored as
// float); the CUDA executor's qkv_post repeats it on the device.
inline float attention_temperature(int pos, float scale, int floor_len) {
  const float q = std::floor(float(pos) / float(floor_len));
  return float(std::log(double(q) + 1.0) * double(scale) + 1.0);
}

// Whether the plan needs anything only the CPU executor computes (the encoder fields).
inline bool uses_encoder_features(const ModelPlan& p) {
  return !p.causal || p.post_norm || !p.ffn_gated || !p.lm_head || p.pos_embd >= 0 || p.token_types >= 0 ||
         p.tok_embd_norm >= 0;
}

// Whether the plan has blocks with per-sequence recurrent state (SSM blocks).
inline bool uses_recurrent_state(const ModelPlan& p) {
  for (const LayerPlan& L : p.layers)
    if (L.is_ssm()) return true;
  return false;
}

// Attention blocks: those whose keys and values the KV cache holds.
inline int attention_layer_count(const ModelPlan& p) {
  int n = 0;
  for (const LayerPlan& L : p.layers) n += L.is_ssm() ? 0 : 1;
  return n;
}

}  // namespace tessera
