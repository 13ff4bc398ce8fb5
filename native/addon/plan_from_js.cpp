#include "addon/plan_from_js.h"

#include <cmath>
#include <iterator>
#include <string>

#include "addon/status_napi.h"

namespace tessera {

namespace {

[[noreturn]] void bad(const Napi::Env& env, const std::string& what) {
  throw to_js_error(env, Status::error(StatusCode::InvalidArgument, "model plan: " + what));
}

double number(const Napi::Object& o, const char* key, double fallback, bool required = false) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) {
    if (required) bad(o.Env(), std::string("missing ") + key);
    return fallback;
  }
  if (!v.IsNumber()) bad(o.Env(), std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) bad(o.Env(), std::string(key) + " must be finite");
  return d;
}

int integer(const Napi::Object& o, const char* key, int fallback, bool required = false) {
  double d = number(o, key, fallback, required);
  if (d != std::floor(d) || d < -1 || d > 2147483647.0) bad(o.Env(), std::string(key) + " must be an int32");
  return static_cast<int>(d);
}

float real(const Napi::Object& o, const char* key, float fallback) { return static_cast<float>(number(o, key, fallback)); }

bool flag(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return !v.IsUndefined() && v.ToBoolean().Value();
}

bool boolean(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) bad(o.Env(), std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

Napi::Object object(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsObject()) bad(o.Env(), std::string(key) + " must be an object");
  return v.As<Napi::Object>();
}

// Every enum of the plan crosses N-API as a string: these tables are the one mapping
// between NativePlan's string unions (lib/model/plan.ts) and the C++ enums, in enum order.
template <typename E>
struct EnumNames;
template <>
struct EnumNames<NormKind> { static constexpr const char* names[] = {"rms", "layer"}; };
template <>
struct EnumNames<GateActivation> { static constexpr const char* names[] = {"silu", "gelu", "swiglu-oai"}; };
template <>
struct EnumNames<FfnKind> { static constexpr const char* names[] = {"dense", "moe"}; };
template <>
struct EnumNames<RopeKind> { static constexpr const char* names[] = {"none", "normal", "neox"}; };
template <>
struct EnumNames<RopeScaling> { static constexpr const char* names[] = {"none", "linear", "yarn", "llama3"}; };
template <>
struct EnumNames<ExpertGating> { static constexpr const char* names[] = {"softmax", "sigmoid", "softmax-weight"}; };

template <typename E>
E enumeration(const Napi::Object& o, const char* key, E fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  const auto& names = EnumNames<E>::names;
  std::string allowed;
  if (v.IsString()) {
    std::string s = v.As<Napi::String>();
    for (size_t i = 0; i < std::size(names); ++i)
      if (s == names[i]) return static_cast<E>(i);
  }
  for (size_t i = 0; i < std::size(names); ++i) allowed += std::string(i ? ", " : "") + '"' + names[i] + '"';
  bad(o.Env(), std::string(key) + " must be one of " + allowed);
}

TensorRef tensor_from_js(const Napi::Object& t) {
  TensorRef r;
  Napi::Value name = t.Get("name");
  if (!name.IsString()) bad(t.Env(), "tensor name must be a string");
  r.name = name.As<Napi::String>();
  r.type = static_cast<GgmlType>(integer(t, "type", 0, true));
  Napi::Value dims = t.Get("dims");
  if (!dims.IsArray()) bad(t.Env(), "tensor dims must be an array");
  Napi::Array d = dims.As<Napi::Array>();
  if (d.Length() < 1 || d.Length() > 4) bad(t.Env(), "tensor " + r.name + " must have 1 to 4 dims");
  r.n_dims = static_cast<int>(d.Length());
  for (uint32_t i = 0; i < d.Length(); ++i) {
    Napi::Value di = d.Get(i);
    if (!di.IsNumber()) bad(t.Env(), "tensor dims must be numbers");
    double v = di.As<Napi::Number>().DoubleValue();
    if (v < 1 || v != std::floor(v) || v > 9007199254740991.0) bad(t.Env(), "tensor " + r.name + " has a bad dim");
    r.ne[i] = static_cast<int64_t>(v);
  }
  double off = number(t, "offset", 0, true), len = number(t, "byteLength", 0, true);
  if (off < 0 || len < 0 || off != std::floor(off) || len != std::floor(len))
    bad(t.Env(), "tensor " + r.name + " has a bad offset or length");
  r.offset = static_cast<uint64_t>(off);
  r.nbytes = static_cast<uint64_t>(len);
  return r;
}

LayerPlan layer_from_js(const Napi::Object& o) {
  LayerPlan L;
#define TESSERA_ROLE_FROM_JS(field, js, suffix, kind, presence, label) L.field = integer(o, #js, -1);
  TESSERA_LAYER_ROLES(TESSERA_ROLE_FROM_JS)
#undef TESSERA_ROLE_FROM_JS
  L.ffn_kind = enumeration(o, "ffnKind", FfnKind::Dense);
  L.sliding_window = integer(o, "slidingWindow", 0);
  L.rope_freq_base = real(o, "ropeFreqBase", 0.f);
  L.rope_freq_scale = real(o, "ropeFreqScale", 0.f);
  return L;
}

}  // namespace

Napi::Value LayerRoles(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env, kLayerRoleCount);
  for (int r = 0; r < kLayerRoleCount; ++r) {
    const LayerRoleInfo& role = kLayerRoles[r];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", role.js);
    o.Set("suffix", role.suffix);
    o.Set("kind", role_kind_name(role.kind));
    o.Set("required", role.presence == RolePresence::Required);
    o.Set("label", role.label);
    out.Set(uint32_t(r), o);
  }
  return out;
}

ModelPlan plan_from_js(const Napi::Object& js) {
  ModelPlan p;
  Napi::Value arch = js.Get("architecture");
  if (!arch.IsString()) bad(js.Env(), "architecture must be a string");
  p.architecture = arch.As<Napi::String>();
  p.n_layer = integer(js, "nLayer", 0, true);
  p.n_embd = integer(js, "nEmbd", 0, true);
  p.n_head = integer(js, "nHead", 0, true);
  p.n_head_kv = integer(js, "nHeadKv", 0, true);
  p.head_dim = integer(js, "headDim", 0, true);
  p.head_dim_v = integer(js, "headDimV", 0, true);
  p.n_ff = integer(js, "nFf", 0);
  p.n_ff_exp = integer(js, "nFfExp", 0);
  p.n_vocab = integer(js, "nVocab", 0, true);
  p.n_ctx_train = integer(js, "nCtxTrain", 0);
  p.norm_eps = real(js, "normEps", 1e-5f);
  p.norm = enumeration(js, "norm", NormKind::Rms);
  p.activation = enumeration(js, "activation", GateActivation::Silu);
  p.attn_scale = real(js, "attnScale", 0.f);
  if (p.attn_scale == 0.f && p.head_dim > 0) p.attn_scale = 1.0f / std::sqrt(static_cast<float>(p.head_dim));
  p.attn_logit_softcap = real(js, "attnLogitSoftcap", 0.f);
  p.final_logit_softcap = real(js, "finalLogitSoftcap", 0.f);
  p.embedding_scale = real(js, "embeddingScale", 0.f);
  p.residual_scale = real(js, "residualScale", 0.f);
  p.logit_scale = real(js, "logitScale", 0.f);
  p.query_scale = real(js, "queryScale", 0.f);
  p.attn_temp_scale = real(js, "attnTempScale", 0.f);
  p.attn_temp_floor = integer(js, "attnTempFloor", 1);

  Napi::Object rope = object(js, "rope");
  p.rope.kind = enumeration(rope, "kind", RopeKind::Normal);
  p.rope.n_dims = integer(rope, "nDims", 0);
  p.rope.freq_base = real(rope, "freqBase", 10000.f);
  p.rope.freq_scale = real(rope, "freqScale", 1.f);
  p.rope.scaling = enumeration(rope, "scaling", RopeScaling::None);
  p.rope.n_ctx_orig = integer(rope, "nCtxOrig", 0);
  p.rope.yarn_ext_factor = real(rope, "yarnExtFactor", 0.f);
  p.rope.yarn_attn_factor = real(rope, "yarnAttnFactor", 1.f);
  p.rope.yarn_beta_fast = real(rope, "yarnBetaFast", 32.f);
  p.rope.yarn_beta_slow = real(rope, "yarnBetaSlow", 1.f);
  p.rope.llama3_low_freq_factor = real(rope, "llama3LowFreqFactor", 1.f);
  p.rope.llama3_high_freq_factor = real(rope, "llama3HighFreqFactor", 4.f);
  p.rope.freq_factors = integer(rope, "freqFactors", -1);

  Napi::Value moe_v = js.Get("moe");
  if (moe_v.IsObject()) {
    Napi::Object moe = moe_v.As<Napi::Object>();
    p.moe.n_expert = integer(moe, "nExpert", 0);
    p.moe.n_expert_used = integer(moe, "nExpertUsed", 0);
    p.moe.n_expert_shared = integer(moe, "nExpertShared", 0);
    p.moe.gating = enumeration(moe, "gating", ExpertGating::Softmax);
    p.moe.norm_top_k = flag(moe, "normTopK");
    p.moe.weights_scale = real(moe, "weightsScale", 1.f);
    p.moe.n_group = integer(moe, "nGroup", 0);
    p.moe.n_group_used = integer(moe, "nGroupUsed", 0);
  }

  Napi::Value mla_v = js.Get("mla");
  if (mla_v.IsObject()) {
    Napi::Object mla = mla_v.As<Napi::Object>();
    p.mla.q_lora_rank = integer(mla, "qLoraRank", 0);
    p.mla.kv_lora_rank = integer(mla, "kvLoraRank", 0);
    p.mla.head_dim_nope = integer(mla, "headDimNope", 0);
    p.mla.head_dim_rope = integer(mla, "headDimRope", 0);
    p.mla.head_dim_v = integer(mla, "headDimV", 0);
  }

  Napi::Value ssm_v = js.Get("ssm");
  if (ssm_v.IsObject()) {
    Napi::Object ssm = ssm_v.As<Napi::Object>();
    p.ssm.d_conv = integer(ssm, "dConv", 0, true);
    p.ssm.d_inner = integer(ssm, "dInner", 0, true);
    p.ssm.d_state = integer(ssm, "dState", 0, true);
    p.ssm.n_group = integer(ssm, "nGroup", 0, true);
    p.ssm.n_head = integer(ssm, "nHead", 0, true);
  }

  p.causal = boolean(js, "causal", true);
  p.post_norm = boolean(js, "postNorm", false);
  p.ffn_gated = boolean(js, "ffnGated", true);
  p.ffn_fused_gate_up = boolean(js, "ffnFusedGateUp", false);
  p.lm_head = boolean(js, "lmHead", true);
  p.pos_embd = integer(js, "posEmbd", -1);
  p.token_types = integer(js, "tokenTypes", -1);
  p.tok_embd_norm = integer(js, "tokEmbdNorm", -1);
  p.tok_embd_norm_b = integer(js, "tokEmbdNormB", -1);
  p.tok_embd = integer(js, "tokEmbd", -1, true);
  p.output_norm = integer(js, "outputNorm", -1, true);
  p.output_norm_b = integer(js, "outputNormB", -1);
  p.output = integer(js, "output", -1);
  p.output_b = integer(js, "outputB", -1);

  Napi::Value tensors = js.Get("tensors");
  if (!tensors.IsArray()) bad(js.Env(), "tensors must be an array");
  Napi::Array ta = tensors.As<Napi::Array>();
  p.tensors.reserve(ta.Length());
  for (uint32_t i = 0; i < ta.Length(); ++i) {
    Napi::Value t = ta.Get(i);
    if (!t.IsObject()) bad(js.Env(), "tensors must hold objects");
    p.tensors.push_back(tensor_from_js(t.As<Napi::Object>()));
  }
  Napi::Value layers = js.Get("layers");
  if (!layers.IsArray()) bad(js.Env(), "layers must be an array");
  Napi::Array la = layers.As<Napi::Array>();
  for (uint32_t i = 0; i < la.Length(); ++i) {
    Napi::Value l = la.Get(i);
    if (!l.IsObject()) bad(js.Env(), "layers must hold objects");
    p.layers.push_back(layer_from_js(l.As<Napi::Object>()));
  }
  return p;
}

}  // namespace tessera
