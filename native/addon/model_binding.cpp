// JS classes NativeModel, NativeEngine and NativeLoadControl. Loading and steps run on libuv
// worker threads (AsyncTask) so the event loop stays free; stepSync exists for models so
// small that the thread hop would cost more than the step itself. One crossing per step, for
// every sequence in it. A load reports progress and takes cancellation through a
// LoadControl that JS polls (no callback into JS from the load thread, so nothing is left
// to call when the environment goes away mid-load).
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "addon/async_task.h"
#include "addon/bindings.h"
#include "addon/plan_from_js.h"
#include "addon/status_napi.h"
#include "core/argmax.h"
#include "core/finite.h"
#include "core/model.h"

namespace tessera {

namespace {

// Steps that run on the pool without a libuv thread (Executor::try_step_async): the pool
// thread that ends one hands it to the JS thread through a thread-safe function, whose
// callback settles its promise. One per environment, made at its first such step. Its
// cleanup hook, added after the function so that it runs first, waits for the steps still
// on the pool: none calls the function after it is gone.
struct AsyncSteps {
  napi_threadsafe_function tsfn = nullptr;
  std::mutex mutex;
  std::condition_variable idle;
  int running = 0;    // started, not yet handed over (guarded by mutex)
  int in_flight = 0;  // started, not yet settled (JS thread only)
};

// Constructors live in per-environment instance data so the addon works in worker threads.
struct Constructors {
  Napi::FunctionReference model;
  Napi::FunctionReference engine;
  Napi::FunctionReference load_control;
  AsyncSteps* steps = nullptr;  // made on first use, freed with the environment
};

Constructors& constructors(Napi::Env env) { return *env.GetInstanceData<Constructors>(); }

[[noreturn]] void invalid(Napi::Env env, const std::string& message) {
  throw to_js_error(env, Status::error(StatusCode::InvalidArgument, message));
}

// One engine's executor and the model it runs, shared by the JS wrapper and a step in
// flight: a wrapper disposed or collected mid-step leaves the memory to the step, which
// frees it when it finishes (dispose_pending).
struct EngineState {
  std::shared_ptr<LoadedModel> model;
  std::unique_ptr<Executor> executor;
  bool busy = false;  // a step is queued or running (touched on the JS thread only)
  bool dispose_pending = false;
  double last_step_ns = 0;

  void release() {
    executor.reset();
    model.reset();
  }
};

// A step's arguments, copied out of the JS arrays (the arrays may change once the call returns).
struct StepRequest {
  std::vector<int32_t> tokens, positions, row_seq, table_start, tables, logit_rows, copies, hidden_rows;
  float* logits = nullptr;
  float* hidden = nullptr;       // optional [n_hidden][n_embd], referenced like logits       // in a Float32Array the task keeps referenced until it completes
  uint8_t* non_finite = nullptr; // optional [n_logits] flags, likewise referenced
  int32_t* argmax = nullptr;     // optional [n_logits]: each finite row's greedy pick, likewise referenced
  int n_vocab = 0;
  // Tracing: the output arrays are the JS ones (kept referenced like logits); the layer mask copied.
  bool traced = false;
  StepTrace trace;
  std::vector<uint8_t> attention_layers;

  StepBatch batch() const {
    StepBatch b;
    b.n_rows = int(tokens.size());
    b.tokens = tokens.data();
    b.positions = positions.data();
    b.row_seq = row_seq.data();
    b.n_seqs = int(table_start.size()) - 1;
    b.table_start = table_start.data();
    b.tables = tables.data();
    b.n_table_entries = int(tables.size());
    b.n_logits = int(logit_rows.size());
    b.logit_rows = logit_rows.data();
    b.n_copies = int(copies.size() / 2);
    b.copies = copies.data();
    b.trace = traced ? &trace : nullptr;
    b.n_hidden = int(hidden_rows.size());
    b.hidden_rows = hidden_rows.data();
    b.hidden = hidden;
    return b;
  }
};

// NonFinite when a logit row holds NaN or Infinity (flagging each such row), so a model
// whose weights or activations went bad fails with a coded error instead of sampling
// garbage. One pass over the logits the step wrote: a few hundred KiB per row, next to a
// step that reads every weight.
Status check_logits(const StepRequest& r) {
  const size_t n_vocab = size_t(r.n_vocab);
  int bad = 0;
  for (size_t i = 0; i < r.logit_rows.size(); ++i) {
    const bool finite = all_finite_f32(r.logits + i * n_vocab, n_vocab);
    if (r.non_finite) r.non_finite[i] = finite ? 0 : 1;
    if (r.argmax) r.argmax[i] = finite ? argmax_f32(r.logits + i * n_vocab, n_vocab) : -1;
    bad += finite ? 0 : 1;
  }
  if (bad == 0) return Status::ok();
  return Status::error(StatusCode::NonFinite,
                       "the model produced NaN or Infinity logits (" + std::to_string(bad) + " of " +
                           std::to_string(r.logit_rows.size()) +
                           " rows): its weights hold non-finite values or its activations overflowed; load it with "
                           "checkTensors: true to find a damaged tensor, or use another quantization of the model");
}

Status run_step(EngineState& state, const StepRequest& r) {
  auto start = std::chrono::steady_clock::now();
  Status st = state.executor->step(r.batch(), r.logits);
  if (st.is_ok()) st = check_logits(r);
  state.last_step_ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  return st;
}

class StepTask final : public AsyncTask {
 public:
  // Starts the step on the pool without a libuv thread (see AsyncSteps); false when the
  // executor cannot (the caller queues the task instead).
  bool try_start_detached(AsyncSteps* steps) {
    steps_ = steps;
    start_ = std::chrono::steady_clock::now();
    batch_ = request_.batch();
    {
      std::lock_guard<std::mutex> lock(steps->mutex);
      ++steps->running;
    }
    if (state_->executor->try_step_async(batch_, request_.logits, &StepTask::pool_done, this)) return true;
    std::lock_guard<std::mutex> lock(steps->mutex);
    --steps->running;
    return false;
  }

  StepTask(std::shared_ptr<EngineState> state, StepRequest request, Napi::Object engine, Napi::Object logits, Napi::Value flags,
           Napi::Value trace, Napi::Value hidden, Napi::Value argmax)
      : state_(std::move(state)), request_(std::move(request)) {
    // Keep the JS wrapper and the output arrays alive while the step writes into them.
    engine_ref_ = Napi::Persistent(engine);
    logits_ref_ = Napi::Persistent(logits);
    if (flags.IsObject()) flags_ref_ = Napi::Persistent(flags.As<Napi::Object>());
    if (trace.IsObject()) trace_ref_ = Napi::Persistent(trace.As<Napi::Object>());
    if (hidden.IsObject()) hidden_ref_ = Napi::Persistent(hidden.As<Napi::Object>());
    if (argmax.IsObject()) argmax_ref_ = Napi::Persistent(argmax.As<Napi::Object>());
  }

 protected:
  void execute() override { status_ = run_step(*state_, request_); }
  void finished() override {
    state_->busy = false;
    if (state_->dispose_pending) state_->release();
  }
  const Status& status() const override { return status_; }

 private:
  // On the pool thread that ended the step: the logits' check, then the hand-off to the JS
  // thread (the function outlives every running step: see AsyncSteps).
  static void pool_done(void* ctx, const Status& st) {
    StepTask* t = static_cast<StepTask*>(ctx);
    t->status_ = st.is_ok() ? check_logits(t->request_) : st;
    t->state_->last_step_ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t->start_).count();
    AsyncSteps& s = *t->steps_;
    // napi_closing (the environment is going away): its cleanup hook frees nothing it was
    // not given, so the task is left to the process's end, like the environment's memory.
    napi_call_threadsafe_function(s.tsfn, t, napi_tsfn_nonblocking);
    std::lock_guard<std::mutex> lock(s.mutex);
    if (--s.running == 0) s.idle.notify_all();
  }

  AsyncSteps* steps_ = nullptr;
  std::chrono::steady_clock::time_point start_;
  StepBatch batch_;
  std::shared_ptr<EngineState> state_;
  StepRequest request_;
  Napi::ObjectReference engine_ref_, logits_ref_, flags_ref_, trace_ref_, hidden_ref_, argmax_ref_;
  Status status_;
};

// The JS thread's side of AsyncSteps: settle a step that ended (env null: the environment
// is going away and the task is only freed).
void settle_ended(napi_env env, napi_value, void* context, void* data) {
  AsyncSteps& s = *static_cast<AsyncSteps*>(context);
  AsyncTask::settle_detached(env, std::unique_ptr<AsyncTask>(static_cast<AsyncTask*>(data)), env != nullptr);
  if (env && --s.in_flight == 0) napi_unref_threadsafe_function(env, s.tsfn);
}

// Environment teardown, before the function's own cleanup: wait for the steps on the pool.
void wait_for_async_steps(void* arg) {
  AsyncSteps* s = static_cast<AsyncSteps*>(arg);
  std::unique_lock<std::mutex> lock(s->mutex);
  s->idle.wait(lock, [&] { return s->running == 0; });
}

// The environment's AsyncSteps, made on first use; null when N-API refuses (the steps then
// take libuv threads). Freed by the function's finalizer.
AsyncSteps* async_steps(Napi::Env env) {
  Constructors& c = constructors(env);
  if (c.steps) return c.steps;
  auto s = std::make_unique<AsyncSteps>();
  napi_value name = nullptr;
  if (napi_create_string_utf8(env, "tessera.step", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, s.get(),
                                      [](napi_env, void* data, void*) { delete static_cast<AsyncSteps*>(data); }, s.get(), settle_ended,
                                      &s->tsfn) != napi_ok)
    return nullptr;
  AsyncSteps* steps = s.release();  // owned by the function from here
  // Only steps in flight keep the loop alive.
  if (napi_unref_threadsafe_function(env, steps->tsfn) != napi_ok ||
      napi_add_env_cleanup_hook(env, wait_for_async_steps, steps) != napi_ok) {
    napi_release_threadsafe_function(steps->tsfn, napi_tsfn_abort);
    return nullptr;
  }
  c.steps = steps;
  return steps;
}

// A typed array of the trace object, of at least `length` elements (absent: null, when optional).
template <typename T, napi_typedarray_type kType>
T* trace_array(const Napi::Object& o, const char* key, size_t length, bool optional) {
  Napi::Value v = o.Get(key);
  if (optional && (v.IsUndefined() || v.IsNull())) return nullptr;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kType)
    invalid(o.Env(), std::string("trace.") + key + " must be a typed array of the documented type");
  Napi::TypedArray a = v.As<Napi::TypedArray>();
  if (a.ElementLength() < length) invalid(o.Env(), std::string("trace.") + key + " is too small");
  return reinterpret_cast<T*>(static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset());
}

// Optional argument i: a typed array of kType with one entry per logit row (nullptr when absent).
template <typename T, napi_typedarray_type kType>
T* per_logit_row(const Napi::CallbackInfo& info, size_t i, const char* type_error, const char* name, size_t rows) {
  if (info.Length() <= i || info[i].IsUndefined()) return nullptr;
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != kType) invalid(info.Env(), type_error);
  Napi::TypedArray a = info[i].As<Napi::TypedArray>();
  if (a.ElementLength() < rows) invalid(info.Env(), std::string(name) + " needs one entry per logit row");
  return reinterpret_cast<T*>(static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset());
}

std::vector<int32_t> int32_array(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    invalid(info.Env(), std::string(name) + " must be an Int32Array");
  Napi::Int32Array a = info[i].As<Napi::Int32Array>();
  return std::vector<int32_t>(a.Data(), a.Data() + a.ElementLength());
}

class NativeEngine : public Napi::ObjectWrap<NativeEngine> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeEngine",
                       {InstanceMethod<&NativeEngine::step>("step"),
                        InstanceMethod<&NativeEngine::step_sync>("stepSync"),
                        InstanceMethod<&NativeEngine::abort>("abort"),
                        InstanceMethod<&NativeEngine::dispose>("dispose"),
                        InstanceAccessor<&NativeEngine::max_context>("maxContext"),
                        InstanceAccessor<&NativeEngine::blocks>("blocks"),
                        InstanceAccessor<&NativeEngine::block_bytes>("blockBytes"),
                        InstanceAccessor<&NativeEngine::scratch_bytes>("scratchBytes"),
                        InstanceAccessor<&NativeEngine::last_step_ns>("lastStepNs")});
  }

  explicit NativeEngine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeEngine>(info) {}
  ~NativeEngine() override {
    // Collected without dispose(): free now, or when the step in flight finishes.
    if (state_ && state_->busy) {
      state_->dispose_pending = true;
      state_->executor->request_abort();
    }
  }

  void attach(std::shared_ptr<LoadedModel> model, std::unique_ptr<Executor> executor) {
    state_ = std::make_shared<EngineState>();
    state_->model = std::move(model);
    state_->executor = std::move(executor);
  }

 private:
  // step(tokens, positions, rowSeq, tableStart, tables, logitRows, copies, logits, nonFinite?):
  // see StepBatch; nonFinite (a Uint8Array of one flag per logit row) says which rows a
  // NonFinite failure was about.
  StepRequest parse(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!state_ || !state_->executor) throw to_js_error(env, Status::error(StatusCode::Disposed, "the engine was disposed"));
    if (state_->busy) throw to_js_error(env, Status::error(StatusCode::Busy, "the engine is already running a step"));
    StepRequest r;
    r.tokens = int32_array(info, 0, "tokens");
    r.positions = int32_array(info, 1, "positions");
    r.row_seq = int32_array(info, 2, "rowSeq");
    r.table_start = int32_array(info, 3, "tableStart");
    r.tables = int32_array(info, 4, "tables");
    r.logit_rows = int32_array(info, 5, "logitRows");
    r.copies = int32_array(info, 6, "copies");
    if (r.positions.size() != r.tokens.size() || r.row_seq.size() != r.tokens.size())
      invalid(env, "tokens, positions and rowSeq must have one entry per row");
    if (r.table_start.empty()) invalid(env, "tableStart needs n_seqs + 1 entries");
    if (r.copies.size() % 2) invalid(env, "copies holds (source, destination) pairs");
    if (r.tokens.size() > (size_t(1) << 24) || r.tables.size() > (size_t(1) << 28)) invalid(env, "step too large");
    if (info.Length() < 8 || !info[7].IsTypedArray() || info[7].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      invalid(env, "logits must be a Float32Array");
    Napi::Float32Array logits = info[7].As<Napi::Float32Array>();
    r.n_vocab = state_->model->plan.n_vocab;
    if (logits.ElementLength() < r.logit_rows.size() * size_t(r.n_vocab)) invalid(env, "logits buffer is too small");
    r.logits = logits.Data();
    r.non_finite = per_logit_row<uint8_t, napi_uint8_array>(info, 8, "nonFinite must be a Uint8Array", "nonFinite", r.logit_rows.size());
    if (info.Length() > 9 && info[9].IsObject()) parse_trace(info[9].As<Napi::Object>(), r);
    // hiddenRows (Int32Array, ascending rows) and hidden (Float32Array [n][n_embd]): the
    // rows' final-norm hidden states (embeddings), in the same crossing as the logits.
    if (info.Length() > 10 && !info[10].IsUndefined() && !info[10].IsNull()) {
      r.hidden_rows = int32_array(info, 10, "hiddenRows");
      if (info.Length() < 12 || !info[11].IsTypedArray() || info[11].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
        invalid(env, "hidden must be a Float32Array");
      Napi::Float32Array hidden = info[11].As<Napi::Float32Array>();
      if (hidden.ElementLength() < r.hidden_rows.size() * size_t(state_->model->plan.n_embd)) invalid(env, "hidden buffer is too small");
      r.hidden = hidden.Data();
    }
    // argmax (Int32Array, one entry per logit row): each row's largest logit, lowest index on
    // ties (greedy sampling without scanning the row in JS); -1 for a non-finite row.
    r.argmax = per_logit_row<int32_t, napi_int32_array>(info, 12, "argmax must be an Int32Array", "argmax", r.logit_rows.size());
    return r;
  }

  // trace: { residualNorm: Float32Array [n_layer][rows], topK, lensIds: Int32Array and
  // lensProbs: Float32Array [n_layer][rows][topK], attentionLayers: Uint8Array [n_layer],
  // attention: Float32Array [recorded][rows][n_head][positions], positions,
  // experts: Int32Array and expertWeights: Float32Array [n_layer][rows][K] (MoE models) }
  void parse_trace(const Napi::Object& o, StepRequest& r) {
    const ModelPlan& p = state_->model->plan;
    const size_t rows = r.tokens.size(), layers = size_t(p.n_layer);
    StepTrace& t = r.trace;
    r.traced = true;
    t.residual_norm = trace_array<float, napi_float32_array>(o, "residualNorm", layers * rows, false);
    Napi::Value k = o.Get("topK");
    t.top_k = k.IsNumber() ? k.As<Napi::Number>().Int32Value() : 0;
    if (t.top_k < 0 || t.top_k > 1000) invalid(o.Env(), "trace.topK must be in 0..1000");
    if (t.top_k > 0) {
      t.lens_ids = trace_array<int32_t, napi_int32_array>(o, "lensIds", layers * rows * t.top_k, false);
      t.lens_probs = trace_array<float, napi_float32_array>(o, "lensProbs", layers * rows * t.top_k, false);
    }
    const uint8_t* mask = trace_array<uint8_t, napi_uint8_array>(o, "attentionLayers", layers, true);
    if (mask) {
      r.attention_layers.assign(mask, mask + layers);
      size_t recorded = 0;
      for (uint8_t m : r.attention_layers) recorded += m != 0;
      Napi::Value pos = o.Get("positions");
      t.positions = pos.IsNumber() ? pos.As<Napi::Number>().Int32Value() : 0;
      if (t.positions < 1 || t.positions > (1 << 24)) invalid(o.Env(), "trace.positions must be positive");
      t.attention_layers = r.attention_layers.data();
      t.attention = trace_array<float, napi_float32_array>(o, "attention", recorded * rows * p.n_head * size_t(t.positions), recorded == 0);
    }
    if (p.moe.n_expert > 0) {
      const size_t n = layers * rows * p.moe.n_expert_used;
      t.experts = trace_array<int32_t, napi_int32_array>(o, "experts", n, false);
      t.expert_weights = trace_array<float, napi_float32_array>(o, "expertWeights", n, false);
      std::fill(t.experts, t.experts + n, -1);
    }
  }

  Napi::Value step(const Napi::CallbackInfo& info) {
    StepRequest r = parse(info);
    Napi::Value flags = info.Length() > 8 ? info[8] : info.Env().Undefined();
    Napi::Value trace = info.Length() > 9 ? info[9] : info.Env().Undefined();
    Napi::Value hidden = info.Length() > 11 ? info[11] : info.Env().Undefined();
    Napi::Value argmax = info.Length() > 12 ? info[12] : info.Env().Undefined();
    auto task = std::make_unique<StepTask>(state_, std::move(r), info.This().As<Napi::Object>(), info[7].As<Napi::Object>(), flags,
                                           trace, hidden, argmax);
    // A step that is one pool region starts from here and ends from the pool (AsyncSteps);
    // any other takes a libuv thread.
    if (AsyncSteps* steps = async_steps(info.Env()); steps && task->try_start_detached(steps)) {
      // Running: from here on the task belongs to AsyncSteps. It cannot end (on this thread)
      // before this call returns, so the promise is made in time.
      StepTask* t = task.release();
      if (steps->in_flight++ == 0) napi_ref_threadsafe_function(info.Env(), steps->tsfn);
      state_->busy = true;
      return Napi::Value(info.Env(), t->promise(info.Env(), "tessera.step"));
    }
    Napi::Promise promise = AsyncTask::queue(info.Env(), std::move(task), "tessera.step");
    state_->busy = true;
    return promise;
  }

  Napi::Value step_sync(const Napi::CallbackInfo& info) {
    StepRequest r = parse(info);
    check(info.Env(), run_step(*state_, r));
    return info.Env().Undefined();
  }

  Napi::Value abort(const Napi::CallbackInfo& info) {
    if (state_ && state_->busy) state_->executor->request_abort();
    return info.Env().Undefined();
  }

  Napi::Value dispose(const Napi::CallbackInfo& info) {
    if (!state_) return info.Env().Undefined();
    if (state_->busy) {
      state_->dispose_pending = true;
      state_->executor->request_abort();
    } else {
      state_->release();
    }
    state_.reset();
    return info.Env().Undefined();
  }

  Executor* live() const { return state_ ? state_->executor.get() : nullptr; }
  Napi::Value max_context(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), live() ? live()->max_context() : 0); }
  Napi::Value blocks(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), live() ? live()->n_blocks() : 0); }
  Napi::Value block_bytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), live() ? double(live()->block_bytes()) : 0);
  }
  Napi::Value scratch_bytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), live() ? double(live()->scratch_bytes()) : 0);
  }
  Napi::Value last_step_ns(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), state_ ? state_->last_step_ns : 0);
  }

  std::shared_ptr<EngineState> state_;
};

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeModel",
                       {InstanceMethod<&NativeModel::create_engine>("createEngine"),
                        InstanceMethod<&NativeModel::kv_block_bytes_of>("kvBlockBytes"),
                        InstanceMethod<&NativeModel::dispose>("dispose"),
                        InstanceAccessor<&NativeModel::backend_name>("backend"),
                        InstanceAccessor<&NativeModel::weight_bytes>("weightBytes")});
  }

  explicit NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {}
  void attach(std::shared_ptr<LoadedModel> model) { model_ = std::move(model); }

 private:
  static int int_option(const Napi::Object& o, const char* key, int lo, int hi, int fallback) {
    Napi::Value v = o.Get(key);
    if (v.IsUndefined()) return fallback;
    if (!v.IsNumber()) invalid(o.Env(), std::string(key) + " must be a number");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= lo && d <= hi) || d != double(int64_t(d)))
      invalid(o.Env(), std::string(key) + " must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
    return int(d);
  }

  // createEngine({maxContext, blocks, batchSize?, kvType?}) -> NativeEngine
  Napi::Value create_engine(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!model_) throw to_js_error(env, Status::error(StatusCode::Disposed, "the model was disposed"));
    if (info.Length() < 1 || !info[0].IsObject()) invalid(env, "createEngine({maxContext, blocks, batchSize, kvType})");
    Napi::Object o = info[0].As<Napi::Object>();
    ExecutorOptions options;
    options.max_context = int_option(o, "maxContext", 1, 1 << 24, 0);
    options.n_blocks = int_option(o, "blocks", 1, 1 << 24, 0);
    options.batch_size = int_option(o, "batchSize", 1, 1 << 16, 512);
    options.kv_type = static_cast<KvType>(int_option(o, "kvType", 0, 2, 0));
    if (options.max_context < 1 || options.n_blocks < 1) invalid(env, "maxContext and blocks are required");
    std::unique_ptr<Executor> executor;
    check(env, model_->backend->create_executor(options, &executor));
    Napi::Object obj = constructors(env).engine.New({});
    NativeEngine::Unwrap(obj)->attach(model_, std::move(executor));
    return obj;
  }

  // kvBlockBytes(kvType) -> bytes of one KV block of this model in that cache type
  Napi::Value kv_block_bytes_of(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!model_) throw to_js_error(env, Status::error(StatusCode::Disposed, "the model was disposed"));
    if (info.Length() < 1 || !info[0].IsNumber() || !kv_type_valid(info[0].As<Napi::Number>().Int32Value()))
      invalid(env, "kvBlockBytes(kvType: 0 | 1 | 2)");
    const ModelPlan& plan = model_->plan;
    const uint64_t bytes = kv_block_bytes(plan, static_cast<KvType>(info[0].As<Napi::Number>().Int32Value())) +
                           ssm_state_block_floats(plan) * sizeof(float);
    return Napi::Number::New(env, double(bytes));
  }

  Napi::Value dispose(const Napi::CallbackInfo& info) {
    model_.reset();  // engines hold their own reference; memory goes when the last one does
    return info.Env().Undefined();
  }

  Napi::Value backend_name(const Napi::CallbackInfo& info) {
    return model_ ? Napi::String::New(info.Env(), model_->backend->name()) : info.Env().Null();
  }
  Napi::Value weight_bytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), model_ ? static_cast<double>(model_->backend->weight_bytes()) : 0);
  }

  std::shared_ptr<LoadedModel> model_;
};

// One load's progress and cancel switch: JS polls `progress` while the load runs and calls
// abort(); the load task holds the same LoadControl, so either may outlive the other.
class NativeLoadControl : public Napi::ObjectWrap<NativeLoadControl> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeLoadControl",
                       {InstanceMethod<&NativeLoadControl::abort>("abort"),
                        InstanceAccessor<&NativeLoadControl::progress>("progress"),
                        InstanceAccessor<&NativeLoadControl::done>("done"),
                        InstanceAccessor<&NativeLoadControl::total>("total")});
  }
  explicit NativeLoadControl(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<NativeLoadControl>(info), control_(std::make_shared<LoadControl>()) {}
  const std::shared_ptr<LoadControl>& control() const { return control_; }

 private:
  Napi::Value abort(const Napi::CallbackInfo& info) {
    control_->abort.store(true);
    return info.Env().Undefined();
  }
  Napi::Value progress(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), control_->fraction()); }
  Napi::Value done(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(control_->done.load())); }
  Napi::Value total(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(control_->total.load())); }

  std::shared_ptr<LoadControl> control_;
};

class LoadTask final : public AsyncTask {
 public:
  LoadTask(std::string path, ModelPlan plan, BackendKind kind, BackendOptions options, LoadSettings settings,
           std::shared_ptr<LoadControl> control)
      : path_(std::move(path)), plan_(std::move(plan)), kind_(kind), options_(options), settings_(settings),
        control_(std::move(control)) {}

 protected:
  void execute() override {
    status_ = load_model(path_, std::move(plan_), kind_, options_, settings_, *control_, &model_);
  }
  const Status& status() const override { return status_; }
  napi_value value(napi_env env) override {
    Napi::Object obj = constructors(env).model.New({});
    NativeModel::Unwrap(obj)->attach(std::move(model_));
    return obj;
  }

 private:
  std::string path_;
  ModelPlan plan_;
  BackendKind kind_;
  BackendOptions options_;
  LoadSettings settings_;
  std::shared_ptr<LoadControl> control_;
  Status status_;
  std::shared_ptr<LoadedModel> model_;
};

bool bool_option(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) invalid(o.Env(), std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

// createLoadControl() -> NativeLoadControl
Napi::Value CreateLoadControl(const Napi::CallbackInfo& info) { return constructors(info.Env()).load_control.New({}); }

// loadModel(path: string, plan: object, options: {backend: "cpu"|"cuda", threads: number, mmap?: boolean,
// checkTensors?: boolean, control?: NativeLoadControl}) -> Promise<NativeModel>
Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsObject() || !info[2].IsObject())
    invalid(env, "loadModel(path, plan, options)");
  std::string path = info[0].As<Napi::String>();
  ModelPlan plan = plan_from_js(info[1].As<Napi::Object>());
  Napi::Object o = info[2].As<Napi::Object>();
  BackendOptions options;
  Napi::Value threads = o.Get("threads"), backend = o.Get("backend"), device = o.Get("device");
  if (threads.IsNumber()) options.threads = threads.As<Napi::Number>().Int32Value();
  if (device.IsNumber()) options.device = device.As<Napi::Number>().Int32Value();
  if (options.threads < 1 || options.threads > 256) invalid(env, "threads must be between 1 and 256");
  BackendKind kind = BackendKind::Cpu;
  if (backend.IsString()) {
    std::string b = backend.As<Napi::String>();
    if (b == "cuda") kind = BackendKind::Cuda;
    else if (b != "cpu") invalid(env, "backend must be \"cpu\" or \"cuda\"");
  }
  LoadSettings settings;
  settings.map = bool_option(o, "mmap", true);
  settings.check_tensors = bool_option(o, "checkTensors", false);
  std::shared_ptr<LoadControl> control;
  Napi::Value c = o.Get("control");
  if (c.IsUndefined()) {
    control = std::make_shared<LoadControl>();
  } else {
    if (!c.IsObject() || !c.As<Napi::Object>().InstanceOf(constructors(env).load_control.Value()))
      invalid(env, "control must come from createLoadControl()");
    control = NativeLoadControl::Unwrap(c.As<Napi::Object>())->control();
  }
  return AsyncTask::queue(env, std::make_unique<LoadTask>(std::move(path), std::move(plan), kind, options, settings, std::move(control)),
                          "tessera.load");
}

}  // namespace

void register_model_bindings(Napi::Env env, Napi::Object exports) {
  auto* ctors = new Constructors{Napi::Persistent(NativeModel::define(env)), Napi::Persistent(NativeEngine::define(env)),
                                 Napi::Persistent(NativeLoadControl::define(env))};
  env.SetInstanceData(ctors);
  exports.Set("loadModel", Napi::Function::New(env, LoadModel));
  exports.Set("createLoadControl", Napi::Function::New(env, CreateLoadControl));
}

}  // namespace tessera
