// CudaBackend: checks that the plan fits the CUDA kernels, then uploads the weights into
// one device allocation. The layout is computed twice by the same code (build): once to
// measure, once to repack (repack.cpp, on `threads` host threads) and copy each tensor.
// Also the C entry point tessera_cuda_create_backend.
#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "cuda/cuda_backend.h"
#include "cuda/device.cuh"
#include "core/weight_types.h"

namespace tessera::cuda {

namespace {

Status internal_error(const std::exception& e, const char* what) {
  if (dynamic_cast<const std::bad_alloc*>(&e))
    return Status::error(StatusCode::OutOfMemory, std::string("out of host memory while ") + what);
  return Status::error(StatusCode::Internal, std::string(what) + " failed: " + e.what());
}

// Places weights in one allocation (base null: only measures) and, when base is set,
// repacks and copies them there, advancing `control` (when set) by each tensor uploaded.
class WeightPlacer {
 public:
  WeightPlacer(const ModelPlan& plan, uint8_t* base, int threads, LoadControl* control)
      : plan_(plan), base_(base), threads_(threads), control_(control) {}

  size_t used() const { return slots_.used(); }

  // The rows of the tensors `parts` (same type and row length), stacked into one matrix.
  Status matrix(const std::vector<int>& parts, DeviceMatrix* out) {
    const TensorRef& first = plan_.tensors[parts[0]];
    int64_t rows = 0;
    for (int i : parts) rows += plan_.tensors[i].rows();
    const MatrixLayout L = matrix_layout(first.type, rows, first.ne[0]);
    const size_t at = take(L.total);
    if (!base_) return Status::ok();
    *out = matrix_view(first.type, rows, first.ne[0], L, base_ + at);
    staging_.assign(L.total, 0);
    int64_t row = 0;
    for (int i : parts) {
      const TensorRef& t = plan_.tensors[i];
      repack_parallel(t, L, row);
      row += t.rows();
    }
    TESSERA_RETURN_IF_ERROR(upload(at, L.total, "uploading weights"));
    return advance(parts);
  }

  // An F32 vector (null when index < 0).
  Status vector(int index, const float** out) {
    if (index < 0) return Status::ok();
    const TensorRef& t = plan_.tensors[index];
    const size_t at = take(t.nbytes);
    if (!base_) return Status::ok();
    *out = reinterpret_cast<const float*>(base_ + at);
    staging_.assign(t.data, t.data + t.nbytes);
    TESSERA_RETURN_IF_ERROR(upload(at, t.nbytes, "uploading weights"));
    return advance({index});
  }

  // F32 vectors concatenated, zeros where a part is absent (index < 0); null when all are.
  Status concat(const std::vector<int>& parts, const std::vector<int64_t>& lengths, const float** out) {
    if (std::all_of(parts.begin(), parts.end(), [](int i) { return i < 0; })) return Status::ok();
    int64_t total = 0;
    for (int64_t n : lengths) total += n;
    const size_t at = take(size_t(total) * 4);
    if (!base_) return Status::ok();
    *out = reinterpret_cast<const float*>(base_ + at);
    staging_.assign(size_t(total) * 4, 0);
    size_t off = 0;
    for (size_t k = 0; k < parts.size(); ++k) {
      if (parts[k] >= 0) std::memcpy(staging_.data() + off, plan_.tensors[parts[k]].data, size_t(lengths[k]) * 4);
      off += size_t(lengths[k]) * 4;
    }
    TESSERA_RETURN_IF_ERROR(upload(at, size_t(total) * 4, "uploading weights"));
    return advance(parts);
  }

 private:
  // Offset of a new aligned slot of `bytes`.
  size_t take(size_t bytes) {
    const size_t at = slots_.used();
    slots_.take<uint8_t>(bytes);
    return at;
  }

  void repack_parallel(const TensorRef& t, const MatrixLayout& L, int64_t dst_row) {
    const int64_t rows = t.rows();
    const size_t row_bytes = ggml_row_bytes(t.type, t.ne[0]);
    const int n = int(std::max<int64_t>(1, std::min<int64_t>(threads_, rows / 256)));
    auto work = [&](int k) {
      const int64_t r0 = rows * k / n, r1 = rows * (k + 1) / n;
      repack_rows(t.type, t.ne[0], t.data + size_t(r0) * row_bytes, r1 - r0, L, dst_row + r0, staging_.data());
    };
    std::vector<std::thread> pool;
    for (int k = 1; k < n; ++k) pool.emplace_back(work, k);
    work(0);
    for (std::thread& th : pool) th.join();
  }

  Status upload(size_t at, size_t bytes, const char* what) {
    return cuda_status(cudaMemcpy(base_ + at, staging_.data(), bytes, cudaMemcpyHostToDevice), what);
  }

  // Counts the tensors `parts` (absent ones, < 0, excepted) as prepared; Aborted once cancelled.
  Status advance(const std::vector<int>& parts) {
    if (!control_) return Status::ok();
    uint64_t bytes = 0;
    for (int i : parts)
      if (i >= 0) bytes += plan_.tensors[i].nbytes;
    return control_->advance(bytes);
  }

  const ModelPlan& plan_;
  uint8_t* base_;
  int threads_;
  LoadControl* control_;
  BumpAllocator slots_{nullptr, kDeviceAlignment};
  std::vector<uint8_t> staging_;
};

bool same_kind(const ModelPlan& p, const std::vector<int>& parts) {
  for (int i : parts)
    if (p.tensors[i].type != p.tensors[parts[0]].type || p.tensors[i].ne[0] != p.tensors[parts[0]].ne[0]) return false;
  return true;
}

// Fused when the types agree (one matrix, one launch), else one projection per part.
Status place_projections(WeightPlacer& placer, const ModelPlan& p, const std::vector<int>& parts,
                         const float* bias, std::vector<Projection>* out) {
  out->clear();
  if (same_kind(p, parts)) {
    Projection proj;
    TESSERA_RETURN_IF_ERROR(placer.matrix(parts, &proj.w));
    proj.bias = bias;
    out->push_back(proj);
    return Status::ok();
  }
  int64_t offset = 0;
  for (int i : parts) {
    Projection proj;
    TESSERA_RETURN_IF_ERROR(placer.matrix({i}, &proj.w));
    proj.offset = offset;
    proj.bias = bias ? bias + offset : nullptr;
    out->push_back(proj);
    offset += p.tensors[i].rows();
  }
  return Status::ok();
}

// Stacked expert tensors [n_expert][rows][cols] as one matrix each, fused side by side into
// one product when their types agree.
Status place_experts(WeightPlacer& placer, const ModelPlan& p, const std::vector<int>& parts,
                     std::vector<ExpertProjection>* out) {
  out->clear();
  const int64_t rows = p.tensors[parts[0]].ne[1];
  if (same_kind(p, parts) && parts.size() <= 2) {
    ExpertProjection e;
    e.w.parts = int(parts.size());
    e.w.rows = rows;
    for (size_t i = 0; i < parts.size(); ++i) TESSERA_RETURN_IF_ERROR(placer.matrix({parts[i]}, &e.w.part[i]));
    out->push_back(e);
    return Status::ok();
  }
  int64_t offset = 0;
  for (int i : parts) {
    ExpertProjection e;
    e.w.rows = p.tensors[i].ne[1];
    e.offset = offset;
    TESSERA_RETURN_IF_ERROR(placer.matrix({i}, &e.w.part[0]));
    out->push_back(e);
    offset += e.w.rows;
  }
  return Status::ok();
}

Status place_moe(WeightPlacer& placer, const ModelPlan& p, const LayerPlan& L, MoeWeights* m) {
  std::vector<int> router = {L.ffn_gate_inp};
  m->shexp_gated = L.ffn_gate_inp_shexp >= 0;
  if (m->shexp_gated) router.push_back(L.ffn_gate_inp_shexp);
  // gpt-oss's router bias joins its logits (no shared-expert gate column with it).
  const float* router_bias = nullptr;
  if (L.ffn_gate_inp_b >= 0 && !m->shexp_gated) TESSERA_RETURN_IF_ERROR(placer.vector(L.ffn_gate_inp_b, &router_bias));
  TESSERA_RETURN_IF_ERROR(place_projections(placer, p, router, router_bias, &m->router));
  TESSERA_RETURN_IF_ERROR(placer.vector(L.ffn_exp_probs_b, &m->selection_bias));
  TESSERA_RETURN_IF_ERROR(placer.vector(L.ffn_gate_exps_b, &m->gate_bias));
  TESSERA_RETURN_IF_ERROR(placer.vector(L.ffn_up_exps_b, &m->up_bias));
  TESSERA_RETURN_IF_ERROR(placer.vector(L.ffn_down_exps_b, &m->down_bias));
  TESSERA_RETURN_IF_ERROR(place_experts(placer, p, {L.ffn_gate_exps, L.ffn_up_exps}, &m->gate_up));
  std::vector<ExpertProjection> down;
  TESSERA_RETURN_IF_ERROR(place_experts(placer, p, {L.ffn_down_exps}, &down));
  if (!down.empty()) m->down = down[0];
  if (L.ffn_gate_shexp >= 0) {
    m->shexp_ff = p.tensors[L.ffn_gate_shexp].ne[1];
    TESSERA_RETURN_IF_ERROR(place_projections(placer, p, {L.ffn_gate_shexp, L.ffn_up_shexp}, nullptr, &m->shexp_gate_up));
    TESSERA_RETURN_IF_ERROR(placer.matrix({L.ffn_down_shexp}, &m->shexp_down.w));
  }
  return Status::ok();
}

Status place_mla(WeightPlacer& placer, const ModelPlan& p, const LayerPlan& L, MlaWeights* m) {
  if (L.wq_a >= 0) {
    TESSERA_RETURN_IF_ERROR(placer.matrix({L.wq_a}, &m->wq_a.w));
    TESSERA_RETURN_IF_ERROR(placer.vector(L.q_a_norm, &m->q_a_norm));
    TESSERA_RETURN_IF_ERROR(placer.matrix({L.wq_b}, &m->wq_b.w));
  } else {
    TESSERA_RETURN_IF_ERROR(placer.matrix({L.wq}, &m->wq.w));
  }
  TESSERA_RETURN_IF_ERROR(placer.matrix({L.wkv_a}, &m->wkv_a.w));
  TESSERA_RETURN_IF_ERROR(placer.vector(L.kv_a_norm, &m->kv_a_norm));
  // [n_head][rows][cols] tensors: stacked per head, as experts are.
  m->wk_b.rows = p.tensors[L.wk_b].ne[1];
  TESSERA_RETURN_IF_ERROR(placer.matrix({L.wk_b}, &m->wk_b.part[0]));
  m->wv_b.rows = p.tensors[L.wv_b].ne[1];
  return placer.matrix({L.wv_b}, &m->wv_b.part[0]);
}

}  // namespace

CudaBackend::CudaBackend(const BackendOptions& options)
    : device_(options.device), threads_(std::max(1, std::min(options.threads, 64))) {}

Status CudaBackend::check_plan(const ModelPlan& p) const {
  const bool moe = std::any_of(p.layers.begin(), p.layers.end(), [](const LayerPlan& L) { return L.ffn_kind == FfnKind::Moe; });
  if (moe) {
    const MoeParams& m = p.moe;
    if (m.n_expert < 1 || m.n_expert > kMaxExperts || m.n_expert_used < 1 || m.n_expert_used > m.n_expert)
      return Status::error(StatusCode::ModelIncompatible,
                           "the CUDA mixture-of-experts kernels route to 1.." + std::to_string(kMaxExperts) +
                               " experts (this model: " + std::to_string(m.n_expert_used) + " of " +
                               std::to_string(m.n_expert) + "); use backend \"cpu\"");
    if (m.n_group > 1 && (m.n_group > kMaxExpertGroups || m.n_expert % m.n_group != 0))
      return Status::error(StatusCode::ModelIncompatible,
                           "the CUDA router needs at most " + std::to_string(kMaxExpertGroups) +
                               " expert groups of equal size (this model: " + std::to_string(m.n_group) + " groups of " +
                               std::to_string(m.n_expert) + " experts); use backend \"cpu\"");
  }
  // A router bias rides on the router's product, which a shared-expert gate column would
  // share (no architecture has both).
  for (const LayerPlan& L : p.layers)
    if (L.ffn_gate_inp_b >= 0 && L.ffn_gate_inp_shexp >= 0)
      return Status::error(StatusCode::ModelIncompatible,
                           "the CUDA router takes a router bias or a shared-expert gate, not both; use backend \"cpu\"");
  // MLA's cache rows (latent + RoPE'd key) are read by the split kernel alone; other heads
  // also pass through qkv_post, which holds a head of up to 256 values.
  const bool mla = p.mla.kv_lora_rank > 0;
  const int max_k = mla ? 576 : 256, max_v = mla ? 512 : 256;
  if (p.head_dim % 8 != 0 || p.head_dim_v % 8 != 0 || p.head_dim > max_k || p.head_dim_v > max_v)
    return Status::error(StatusCode::ModelIncompatible,
                         "the CUDA attention kernels need head sizes that are multiples of 8 up to " +
                             std::to_string(max_k) + " (keys) and " + std::to_string(max_v) + " (values); this model has " +
                             std::to_string(p.head_dim) + " and " + std::to_string(p.head_dim_v) + "; use backend \"cpu\"");
  for (const TensorRef& t : p.tensors)
    if (t.n_dims >= 2 && !is_matmul_type(t.type))
      return Status::error(StatusCode::UnsupportedQuantType,
                           "tensor " + t.name + " uses " + ggml_type_traits(t.type).name +
                               ", which the CUDA backend cannot compute with; use a file quantized as " +
                               weight_type_list());
  return Status::ok();
}

Status CudaBackend::build(const ModelPlan& p, uint8_t* base, size_t* used, LoadControl* control) {
  WeightPlacer placer(p, base, threads_, control);
  ModelWeights& m = model_;
  TESSERA_RETURN_IF_ERROR(placer.matrix({p.tok_embd}, &m.tok_embd));
  if (p.output >= 0) TESSERA_RETURN_IF_ERROR(placer.matrix({p.output}, &m.output));
  else m.output = m.tok_embd;
  TESSERA_RETURN_IF_ERROR(placer.vector(p.output_b, &m.output_b));
  TESSERA_RETURN_IF_ERROR(placer.vector(p.output_norm, &m.output_norm));
  TESSERA_RETURN_IF_ERROR(placer.vector(p.output_norm_b, &m.output_norm_b));
  TESSERA_RETURN_IF_ERROR(placer.vector(p.rope.freq_factors, &m.rope_freqs));
  const int64_t q_w = int64_t(p.n_head) * p.head_dim, k_w = int64_t(p.n_head_kv) * p.head_dim;
  const int64_t v_w = int64_t(p.n_head_kv) * p.head_dim_v;
  m.layers.resize(p.n_layer);
  for (int il = 0; il < p.n_layer; ++il) {
    const LayerPlan& L = p.layers[il];
    LayerWeights& lw = m.layers[il];
    TESSERA_RETURN_IF_ERROR(placer.vector(L.attn_norm, &lw.attn_norm));
    TESSERA_RETURN_IF_ERROR(placer.vector(L.attn_norm_b, &lw.attn_norm_b));
    TESSERA_RETURN_IF_ERROR(placer.vector(L.ffn_norm, &lw.ffn_norm));
    TESSERA_RETURN_IF_ERROR(placer.vector(L.ffn_norm_b, &lw.ffn_norm_b));
    TESSERA_RETURN_IF_ERROR(placer.vector(L.q_norm, &lw.q_norm));
    TESSERA_RETURN_IF_ERROR(placer.vector(L.k_norm, &lw.k_norm));
    TESSERA_RETURN_IF_ERROR(placer.vector(L.attn_sinks, &lw.attn_sinks));
    TESSERA_RETURN_IF_ERROR(placer.vector(L.attn_post_norm, &lw.attn_post_norm));
    TESSERA_RETURN_IF_ERROR(placer.vector(L.ffn_post_norm, &lw.ffn_post_norm));
    TESSERA_RETURN_IF_ERROR(placer.vector(L.bo, &lw.bo));
    if (p.mla.kv_lora_rank > 0) {
      lw.mla = true;
      TESSERA_RETURN_IF_ERROR(place_mla(placer, p, L, &lw.latent));
    } else {
      const float* qkv_bias = nullptr;
      if (L.wqkv >= 0) {
        // A fused attn_qkv (Phi-3) is already the rows [q | k | v] the executor reads; its
        // bias is attn_qkv.bias or separate q/k/v biases (llama.cpp takes either).
        if (L.bqkv >= 0) TESSERA_RETURN_IF_ERROR(placer.vector(L.bqkv, &qkv_bias));
        else TESSERA_RETURN_IF_ERROR(placer.concat({L.bq, L.bk, L.bv}, {q_w, k_w, v_w}, &qkv_bias));
        TESSERA_RETURN_IF_ERROR(place_projections(placer, p, {L.wqkv}, qkv_bias, &lw.qkv));
      } else {
        TESSERA_RETURN_IF_ERROR(placer.concat({L.bq, L.bk, L.bv}, {q_w, k_w, v_w}, &qkv_bias));
        TESSERA_RETURN_IF_ERROR(place_projections(placer, p, {L.wq, L.wk, L.wv}, qkv_bias, &lw.qkv));
      }
    }
    TESSERA_RETURN_IF_ERROR(placer.matrix({L.wo}, &lw.wo.w));
    if (L.ffn_kind == FfnKind::Moe) {
      lw.moe = true;
      TESSERA_RETURN_IF_ERROR(place_moe(placer, p, L, &lw.experts));
    } else {
      const float* gate_up_bias = nullptr;
      TESSERA_RETURN_IF_ERROR(placer.concat({L.ffn_gate_b, L.ffn_up_b}, {p.n_ff, p.n_ff}, &gate_up_bias));
      // A fused ffn_up (Phi-3) is already the rows [gate | up] the SwiGLU stage reads.
      const std::vector<int> gate_up = p.ffn_fused_gate_up ? std::vector<int>{L.ffn_up} : std::vector<int>{L.ffn_gate, L.ffn_up};
      TESSERA_RETURN_IF_ERROR(place_projections(placer, p, gate_up, gate_up_bias, &lw.gate_up));
      TESSERA_RETURN_IF_ERROR(placer.matrix({L.ffn_down}, &lw.down.w));
      TESSERA_RETURN_IF_ERROR(placer.vector(L.ffn_down_b, &lw.down.bias));
    }
  }
  *used = placer.used();
  return Status::ok();
}

Status CudaBackend::prepare(const ModelPlan& plan, LoadControl& control) {
  try {
    plan_ = &plan;
    TESSERA_RETURN_IF_ERROR(check_plan(plan));
    TESSERA_CUDA_TRY(cudaSetDevice(device_), "selecting the CUDA device");
    int sms = 1;
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device_) == cudaSuccess && sms > 0) sm_count_ = sms;
    device_sm_count() = sm_count_;
    int major = 0;
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device_);
    // TESSERA_CUDA_SERIAL_LAUNCH=1 turns programmatic launch off (for A/B timing).
    const char* serial = std::getenv("TESSERA_CUDA_SERIAL_LAUNCH");
    programmatic_launch() = major >= 9 && !(serial && serial[0] == '1');
    cudaGetLastError();
    size_t total = 0;
    TESSERA_RETURN_IF_ERROR(build(plan, nullptr, &total, nullptr));
    TESSERA_RETURN_IF_ERROR(weights_.allocate(total, "model weights"));
    return build(plan, weights_.data(), &total, &control);
  } catch (const std::exception& e) {
    return internal_error(e, "uploading the model to the GPU");
  }
}

Status CudaBackend::create_executor(const ExecutorOptions& options, std::unique_ptr<Executor>* out) {
  try {
    auto executor = std::make_unique<CudaExecutor>(*this);
    TESSERA_RETURN_IF_ERROR(executor->init(options));
    *out = std::move(executor);
    return Status::ok();
  } catch (const std::exception& e) {
    return internal_error(e, "creating a CUDA session");
  }
}

}  // namespace tessera::cuda

extern "C" __attribute__((visibility("default"))) tessera::Backend* tessera_cuda_create_backend(
    const tessera::BackendOptions* options, char* error_out, int error_len) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0 || options == nullptr || options->device < 0 || options->device >= count) {
    if (error_out && error_len > 0)
      std::snprintf(error_out, size_t(error_len), "no usable CUDA device %d (%s)", options ? options->device : -1,
                    err != cudaSuccess ? cudaGetErrorString(err) : "device count 0 or ordinal out of range");
    cudaGetLastError();
    return nullptr;
  }
  return new (std::nothrow) tessera::cuda::CudaBackend(*options);
}
