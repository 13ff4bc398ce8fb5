// The CUDA backend: weights uploaded once from the mmapped file (GGUF block layout, which
// the kernels dequantize in registers), an fp16 KV cache and every activation buffer
// allocated once per executor, and a forward pass that mirrors the CPU executor op for op.
// A decode step (one token) is captured once as a CUDA graph and replayed: kernels read
// the token id and position from device memory, so the same graph serves every position.
// Nothing here throws across the C boundary; every failure is a Status.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "core/backend.h"
#include "cuda/common.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

constexpr int kSplitKvMinPositionsPerSplit = 256;
constexpr int kMaxSplits = 16;

class CudaBackend;

class CudaExecutor final : public Executor {
 public:
  explicit CudaExecutor(const CudaBackend& backend);
  ~CudaExecutor() override;
  Status init(const ExecutorOptions& options);
  Status eval(const int32_t* tokens, int n_tokens, int pos0, bool all_logits, float* logits) override;
  int capacity() const override { return capacity_; }
  uint64_t memory_bytes() const override { return kv_.size() + scratch_.size(); }

 private:
  Status forward(int n, bool all_logits, float* logits_dev);
  Status run_chunk(const int32_t* tokens, int n, int pos0, bool all_logits, float* host_logits);

  const CudaBackend& backend_;
  const ModelPlan& plan_;
  cudaStream_t stream_ = nullptr;
  int capacity_ = 0, batch_ = 0, splits_ = 1;
  DeviceBuffer kv_, scratch_;
  std::vector<uint16_t*> k_, v_;
  // Device activations, [tokens][width].
  float *x_ = nullptr, *xn_ = nullptr, *q_ = nullptr, *k_new_ = nullptr, *v_new_ = nullptr, *attn_ = nullptr,
        *proj_ = nullptr, *gate_ = nullptr, *up_ = nullptr, *logits_ = nullptr, *partials_ = nullptr;
  int32_t *tokens_dev_ = nullptr, *pos_dev_ = nullptr;
  int32_t* host_io_ = nullptr;  // pinned [2 * batch]: tokens then positions
  cudaGraphExec_t decode_graph_ = nullptr;
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const BackendOptions& o) : device_(o.device) {}
  const char* name() const override { return "cuda"; }

  Status prepare(const ModelPlan& plan) override {
    plan_ = &plan;
    TESSERA_CUDA_TRY(cudaSetDevice(device_), "selecting the CUDA device");
    for (const LayerPlan& L : plan.layers)
      if (L.ffn_kind != FfnKind::Dense)
        return Status::error(StatusCode::ModelIncompatible, "mixture-of-experts models run on the CPU backend only for now; use backend \"cpu\"");
    if (plan.head_dim % 2 || plan.head_dim > 256 || plan.head_dim_v > 256)
      return Status::error(StatusCode::ModelIncompatible, "the CUDA attention kernel needs even head sizes up to 256");
    if (plan.n_embd % 32)
      return Status::error(StatusCode::ModelIncompatible, "the CUDA backend needs n_embd to be a multiple of 32");
    // One allocation; each tensor starts 256-byte aligned for the kernels' vector loads.
    auto aligned = [](uint64_t n) { return (n + 255) / 256 * 256; };
    size_t total = 0;
    for (const TensorRef& t : plan.tensors) total += aligned(t.nbytes);
    TESSERA_RETURN_IF_ERROR(weights_.allocate(total, "model weights"));
    offsets_.resize(plan.tensors.size());
    size_t at = 0;
    for (size_t i = 0; i < plan.tensors.size(); ++i) {
      const TensorRef& t = plan.tensors[i];
      offsets_[i] = at;
      TESSERA_CUDA_TRY(cudaMemcpy(weights_.as<uint8_t>() + at, t.data, t.nbytes, cudaMemcpyHostToDevice), "uploading weights");
      at += aligned(t.nbytes);
    }
    weight_bytes_ = total;
    return Status::ok();
  }

  Status create_executor(const ExecutorOptions& options, std::unique_ptr<Executor>* out) override {
    auto e = std::make_unique<CudaExecutor>(*this);
    TESSERA_RETURN_IF_ERROR(e->init(options));
    *out = std::move(e);
    return Status::ok();
  }
  uint64_t weight_bytes() const override { return weight_bytes_; }

  const ModelPlan& plan() const { return *plan_; }
  int device() const { return device_; }
  const float* f32(int index) const {
    return index < 0 ? nullptr : reinterpret_cast<const float*>(weights_.as<uint8_t>() + offsets_[index]);
  }
  DeviceWeight weight(int index) const {
    const TensorRef& t = plan_->tensors[index];
    DeviceWeight w;
    w.type = t.type;
    w.cols = t.ne[0];
    w.rows = t.rows();
    w.data = weights_.as<uint8_t>() + offsets_[index];
    w.row_bytes = ggml_row_bytes(t.type, t.ne[0]);
    return w;
  }

 private:
  int device_ = 0;
  const ModelPlan* plan_ = nullptr;
  DeviceBuffer weights_;
  std::vector<size_t> offsets_;
  uint64_t weight_bytes_ = 0;
};

CudaExecutor::CudaExecutor(const CudaBackend& backend) : backend_(backend), plan_(backend.plan()) {}

CudaExecutor::~CudaExecutor() {
  if (decode_graph_) cudaGraphExecDestroy(decode_graph_);
  if (host_io_) cudaFreeHost(host_io_);
  if (stream_) cudaStreamDestroy(stream_);
}

Status CudaExecutor::init(const ExecutorOptions& options) {
  const ModelPlan& p = plan_;
  if (options.context_size < 1) return Status::error(StatusCode::InvalidArgument, "context size must be positive");
  TESSERA_CUDA_TRY(cudaSetDevice(backend_.device()), "selecting the CUDA device");
  TESSERA_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "creating a CUDA stream");
  capacity_ = options.context_size;
  batch_ = std::max(1, std::min(options.batch_size, capacity_));
  splits_ = std::min(kMaxSplits, std::max(1, capacity_ / kSplitKvMinPositionsPerSplit));

  const size_t k_elems = size_t(p.n_head_kv) * capacity_ * p.head_dim, v_elems = size_t(p.n_head_kv) * capacity_ * p.head_dim_v;
  TESSERA_RETURN_IF_ERROR(kv_.allocate((k_elems + v_elems) * 2 * p.n_layer, "KV cache"));
  for (int il = 0; il < p.n_layer; ++il) {
    uint16_t* base = kv_.as<uint16_t>() + (k_elems + v_elems) * il;
    k_.push_back(base);
    v_.push_back(base + k_elems);
  }
  const size_t B = size_t(batch_);
  const size_t qw = size_t(p.n_head) * p.head_dim, kw = size_t(p.n_head_kv) * p.head_dim;
  const size_t vw = size_t(p.n_head_kv) * p.head_dim_v, ow = size_t(p.n_head) * p.head_dim_v;
  const size_t ff = std::max(p.n_ff, 1);
  const size_t sizes[] = {B * p.n_embd, B * p.n_embd, B * qw, B * kw, B * vw, B * ow, B * p.n_embd, B * ff, B * ff,
                          B * size_t(p.n_vocab), attention_partial_floats(1, p.n_head, p.head_dim_v, splits_)};
  float** slots[] = {&x_, &xn_, &q_, &k_new_, &v_new_, &attn_, &proj_, &gate_, &up_, &logits_, &partials_};
  size_t total = 2 * B * sizeof(int32_t);
  for (size_t s : sizes) total += (s * sizeof(float) + 255) / 256 * 256;
  TESSERA_RETURN_IF_ERROR(scratch_.allocate(total, "activation buffers"));
  uint8_t* cursor = scratch_.as<uint8_t>();
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); ++i) {
    *slots[i] = reinterpret_cast<float*>(cursor);
    cursor += (sizes[i] * sizeof(float) + 255) / 256 * 256;
  }
  tokens_dev_ = reinterpret_cast<int32_t*>(cursor);
  pos_dev_ = tokens_dev_ + B;
  TESSERA_CUDA_TRY(cudaMallocHost(&host_io_, 2 * B * sizeof(int32_t)), "allocating pinned host memory");
  return Status::ok();
}

Status CudaExecutor::forward(int n, bool all_logits, float* logits_dev) {
  const ModelPlan& p = plan_;
  const CudaBackend& b = backend_;
  cudaStream_t s = stream_;
  const int64_t qw = int64_t(p.n_head) * p.head_dim, kw = int64_t(p.n_head_kv) * p.head_dim;
  const int64_t vw = int64_t(p.n_head_kv) * p.head_dim_v;
  launch_get_rows(b.weight(p.tok_embd), tokens_dev_, n, x_, s);
  for (int il = 0; il < p.n_layer; ++il) {
    const LayerPlan& L = p.layers[il];
    launch_rms_norm(x_, b.f32(L.attn_norm), xn_, n, p.n_embd, p.norm_eps, s);
    launch_matmul(b.weight(L.wq), xn_, n, q_, qw, s);
    launch_matmul(b.weight(L.wk), xn_, n, k_new_, kw, s);
    launch_matmul(b.weight(L.wv), xn_, n, v_new_, vw, s);
    if (L.bq >= 0) launch_add_bias(q_, b.f32(L.bq), n, int(qw), s);
    if (L.bk >= 0) launch_add_bias(k_new_, b.f32(L.bk), n, int(kw), s);
    if (L.bv >= 0) launch_add_bias(v_new_, b.f32(L.bv), n, int(vw), s);
    if (L.q_norm >= 0) launch_rms_norm(q_, b.f32(L.q_norm), q_, n * p.n_head, p.head_dim, p.norm_eps, s);
    if (L.k_norm >= 0) launch_rms_norm(k_new_, b.f32(L.k_norm), k_new_, n * p.n_head_kv, p.head_dim, p.norm_eps, s);
    if (p.rope.kind != RopeKind::None) {
      const float* ff = b.f32(p.rope.freq_factors);
      launch_rope(q_, pos_dev_, n, p.n_head, p.head_dim, p.rope, ff, s);
      launch_rope(k_new_, pos_dev_, n, p.n_head_kv, p.head_dim, p.rope, ff, s);
    }
    launch_kv_store(k_[il], v_[il], capacity_, k_new_, v_new_, pos_dev_, n, p.n_head_kv, p.head_dim, p.head_dim_v, s);
    AttentionLaunch a{q_, k_[il], v_[il], capacity_, pos_dev_, n, p.n_head, p.n_head_kv, p.head_dim, p.head_dim_v,
                      L.sliding_window, p.attn_scale != 0.f ? p.attn_scale : 1.0f / std::sqrt(float(p.head_dim)),
                      p.attn_logit_softcap, attn_, partials_, n == 1 ? splits_ : 1};
    launch_attention(a, s);
    launch_matmul(b.weight(L.wo), attn_, n, proj_, p.n_embd, s);
    if (L.bo >= 0) launch_add_bias(proj_, b.f32(L.bo), n, p.n_embd, s);
    launch_add(x_, proj_, int64_t(n) * p.n_embd, s);
    launch_rms_norm(x_, b.f32(L.ffn_norm), xn_, n, p.n_embd, p.norm_eps, s);
    launch_matmul(b.weight(L.ffn_gate), xn_, n, gate_, p.n_ff, s);
    launch_matmul(b.weight(L.ffn_up), xn_, n, up_, p.n_ff, s);
    launch_swiglu(gate_, up_, gate_, int64_t(n) * p.n_ff, p.activation, s);
    launch_matmul(b.weight(L.ffn_down), gate_, n, proj_, p.n_embd, s);
    launch_add(x_, proj_, int64_t(n) * p.n_embd, s);
  }
  const int first = all_logits ? 0 : n - 1, rows = n - first;
  launch_rms_norm(x_ + int64_t(first) * p.n_embd, b.f32(p.output_norm), xn_, rows, p.n_embd, p.norm_eps, s);
  launch_matmul(b.weight(p.output >= 0 ? p.output : p.tok_embd), xn_, rows, logits_dev, p.n_vocab, s);
  return cuda_status(cudaGetLastError(), "launching the forward pass");
}

Status CudaExecutor::run_chunk(const int32_t* tokens, int n, int pos0, bool all_logits, float* host_logits) {
  for (int i = 0; i < n; ++i) {
    host_io_[i] = tokens[i];
    host_io_[batch_ + i] = pos0 + i;
  }
  TESSERA_CUDA_TRY(cudaMemcpyAsync(tokens_dev_, host_io_, size_t(n) * 4, cudaMemcpyHostToDevice, stream_), "copying tokens");
  TESSERA_CUDA_TRY(cudaMemcpyAsync(pos_dev_, host_io_ + batch_, size_t(n) * 4, cudaMemcpyHostToDevice, stream_), "copying positions");
  if (n == 1 && !all_logits) {
    if (!decode_graph_) {
      cudaGraph_t graph = nullptr;
      TESSERA_CUDA_TRY(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "capturing the decode graph");
      const Status fs = forward(1, false, logits_);
      const cudaError_t end = cudaStreamEndCapture(stream_, &graph);
      TESSERA_RETURN_IF_ERROR(fs);
      TESSERA_CUDA_TRY(end, "capturing the decode graph");
      const cudaError_t inst = cudaGraphInstantiate(&decode_graph_, graph, 0);
      cudaGraphDestroy(graph);
      TESSERA_CUDA_TRY(inst, "instantiating the decode graph");
    }
    TESSERA_CUDA_TRY(cudaGraphLaunch(decode_graph_, stream_), "launching the decode graph");
  } else {
    TESSERA_RETURN_IF_ERROR(forward(n, all_logits, logits_));
  }
  if (host_logits) {
    const size_t count = size_t(all_logits ? n : 1) * plan_.n_vocab;
    TESSERA_CUDA_TRY(cudaMemcpyAsync(host_logits, logits_, count * sizeof(float), cudaMemcpyDeviceToHost, stream_), "copying logits");
  }
  return cuda_status(cudaStreamSynchronize(stream_), "running the forward pass");
}

Status CudaExecutor::eval(const int32_t* tokens, int n_tokens, int pos0, bool all_logits, float* logits) {
  take_abort();
  if (n_tokens < 1) return Status::error(StatusCode::InvalidArgument, "eval needs at least one token");
  if (pos0 < 0 || int64_t(pos0) + n_tokens > capacity_)
    return Status::error(StatusCode::OutOfContext, "positions exceed the context size " + std::to_string(capacity_) +
                                                       "; create the session with a larger contextSize or reset it");
  for (int i = 0; i < n_tokens; ++i)
    if (tokens[i] < 0 || tokens[i] >= plan_.n_vocab)
      return Status::error(StatusCode::InvalidArgument, "token id " + std::to_string(tokens[i]) + " is out of range");
  TESSERA_CUDA_TRY(cudaSetDevice(backend_.device()), "selecting the CUDA device");
  for (int done = 0; done < n_tokens; done += batch_) {
    if (take_abort()) return Status::error(StatusCode::Aborted, "evaluation aborted");
    const int n = std::min(batch_, n_tokens - done);
    const bool last = done + n == n_tokens;
    float* out = all_logits ? logits + int64_t(done) * plan_.n_vocab : (last ? logits : nullptr);
    TESSERA_RETURN_IF_ERROR(run_chunk(tokens + done, n, pos0 + done, all_logits, out));
  }
  return Status::ok();
}

}  // namespace

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
