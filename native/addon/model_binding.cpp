// JS classes NativeModel and NativeContext. Loading and evaluation run on libuv worker
// threads (AsyncWorker) so the event loop stays free; evalSync exists for models so small
// that the thread hop would cost more than the step itself. One crossing per eval call.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "addon/bindings.h"
#include "addon/plan_from_js.h"
#include "addon/status_napi.h"
#include "core/model.h"

namespace tessera {

namespace {

// Constructors live in per-environment instance data so the addon works in worker threads.
struct Constructors {
  Napi::FunctionReference model;
  Napi::FunctionReference context;
};

Constructors& constructors(Napi::Env env) { return *env.GetInstanceData<Constructors>(); }

[[noreturn]] void invalid(Napi::Env env, const std::string& message) {
  throw to_js_error(env, Status::error(StatusCode::InvalidArgument, message));
}

class NativeContext : public Napi::ObjectWrap<NativeContext> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeContext",
                       {InstanceMethod<&NativeContext::eval>("eval"),
                        InstanceMethod<&NativeContext::eval_sync>("evalSync"),
                        InstanceMethod<&NativeContext::abort>("abort"),
                        InstanceMethod<&NativeContext::dispose>("dispose"),
                        InstanceAccessor<&NativeContext::capacity>("capacity"),
                        InstanceAccessor<&NativeContext::last_eval_ns>("lastEvalNs"),
                        InstanceAccessor<&NativeContext::memory_bytes>("memoryBytes")});
  }

  explicit NativeContext(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeContext>(info) {}

  void attach(std::shared_ptr<LoadedModel> model, std::unique_ptr<Executor> executor) {
    model_ = std::move(model);
    executor_ = std::move(executor);
  }

  void finish_async() {
    busy_ = false;
    if (dispose_pending_) release();
  }

 private:
  friend class EvalWorker;

  struct EvalRequest {
    std::vector<int32_t> tokens;
    int pos0 = 0;
    bool all_logits = false;
    float* logits = nullptr;
  };

  EvalRequest parse(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!executor_) throw to_js_error(env, Status::error(StatusCode::InvalidArgument, "the session was disposed"));
    if (busy_) invalid(env, "the session is already evaluating; await the previous call first");
    if (info.Length() < 4 || !info[0].IsTypedArray() || !info[1].IsNumber() || !info[3].IsTypedArray())
      invalid(env, "eval(tokens: Int32Array, pos0: number, allLogits: boolean, logits: Float32Array)");
    Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
    Napi::TypedArray la = info[3].As<Napi::TypedArray>();
    if (ta.TypedArrayType() != napi_int32_array) invalid(env, "tokens must be an Int32Array");
    if (la.TypedArrayType() != napi_float32_array) invalid(env, "logits must be a Float32Array");
    Napi::Int32Array tokens = ta.As<Napi::Int32Array>();
    Napi::Float32Array logits = la.As<Napi::Float32Array>();
    EvalRequest r;
    r.tokens.assign(tokens.Data(), tokens.Data() + tokens.ElementLength());
    r.pos0 = info[1].As<Napi::Number>().Int32Value();
    r.all_logits = info[2].ToBoolean().Value();
    const size_t rows = r.all_logits ? r.tokens.size() : 1;
    if (logits.ElementLength() < rows * static_cast<size_t>(model_->plan.n_vocab))
      invalid(env, "logits buffer is too small");
    r.logits = logits.Data();
    return r;
  }

  Napi::Value eval(const Napi::CallbackInfo& info);

  // Runs the request and records how long the executor itself took (the benchmark suite
  // subtracts it from the JS-observed step time to get the N-API crossing cost).
  Status run(const EvalRequest& r) {
    auto start = std::chrono::steady_clock::now();
    Status st = executor_->eval(r.tokens.data(), static_cast<int>(r.tokens.size()), r.pos0, r.all_logits, r.logits);
    last_eval_ns_ = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    return st;
  }

  Napi::Value eval_sync(const Napi::CallbackInfo& info) {
    EvalRequest r = parse(info);
    check(info.Env(), run(r));
    return info.Env().Undefined();
  }

  Napi::Value abort(const Napi::CallbackInfo& info) {
    if (executor_ && busy_) executor_->request_abort();
    return info.Env().Undefined();
  }

  Napi::Value dispose(const Napi::CallbackInfo& info) {
    if (busy_) {
      dispose_pending_ = true;
      executor_->request_abort();
    } else {
      release();
    }
    return info.Env().Undefined();
  }

  void release() {
    executor_.reset();
    model_.reset();
  }

  Napi::Value capacity(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), executor_ ? executor_->capacity() : 0);
  }
  Napi::Value last_eval_ns(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), last_eval_ns_); }
  Napi::Value memory_bytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), executor_ ? static_cast<double>(executor_->memory_bytes()) : 0);
  }

  std::shared_ptr<LoadedModel> model_;
  std::unique_ptr<Executor> executor_;
  bool busy_ = false;
  bool dispose_pending_ = false;
  double last_eval_ns_ = 0;
};

class EvalWorker : public Napi::AsyncWorker {
 public:
  EvalWorker(Napi::Env env, NativeContext* context, Napi::Object context_object, Napi::Object logits_owner,
             NativeContext::EvalRequest request)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), context_(context),
        request_(std::move(request)) {
    // Keep the JS wrapper and the logits array alive while the worker writes into them.
    context_ref_ = Napi::Persistent(context_object);
    logits_ref_ = Napi::Persistent(logits_owner);
  }

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override { status_ = context_->run(request_); }

  void OnOK() override {
    context_->finish_async();
    if (status_.is_ok()) deferred_.Resolve(Env().Undefined());
    else deferred_.Reject(to_js_error(Env(), status_).Value());
  }

  void OnError(const Napi::Error& e) override {
    context_->finish_async();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  NativeContext* context_;
  NativeContext::EvalRequest request_;
  Napi::ObjectReference context_ref_;
  Napi::ObjectReference logits_ref_;
  Status status_;
};

Napi::Value NativeContext::eval(const Napi::CallbackInfo& info) {
  EvalRequest r = parse(info);
  auto* worker = new EvalWorker(info.Env(), this, info.This().As<Napi::Object>(), info[3].As<Napi::Object>(),
                                std::move(r));
  busy_ = true;
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeModel",
                       {InstanceMethod<&NativeModel::create_context>("createContext"),
                        InstanceMethod<&NativeModel::dispose>("dispose"),
                        InstanceAccessor<&NativeModel::backend_name>("backend"),
                        InstanceAccessor<&NativeModel::weight_bytes>("weightBytes")});
  }

  explicit NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {}
  void attach(std::shared_ptr<LoadedModel> model) { model_ = std::move(model); }

 private:
  Napi::Value create_context(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!model_) throw to_js_error(env, Status::error(StatusCode::InvalidArgument, "the model was disposed"));
    if (info.Length() < 1 || !info[0].IsObject()) invalid(env, "createContext({contextSize, batchSize})");
    Napi::Object o = info[0].As<Napi::Object>();
    ExecutorOptions options;
    Napi::Value cs = o.Get("contextSize"), bs = o.Get("batchSize");
    if (!cs.IsNumber()) invalid(env, "contextSize must be a number");
    options.context_size = cs.As<Napi::Number>().Int32Value();
    if (bs.IsNumber()) options.batch_size = bs.As<Napi::Number>().Int32Value();
    if (options.context_size < 1 || options.batch_size < 1) invalid(env, "contextSize and batchSize must be positive");
    std::unique_ptr<Executor> executor;
    check(env, model_->backend->create_executor(options, &executor));
    Napi::Object obj = constructors(env).context.New({});
    NativeContext::Unwrap(obj)->attach(model_, std::move(executor));
    return obj;
  }

  Napi::Value dispose(const Napi::CallbackInfo& info) {
    model_.reset();  // contexts hold their own reference; memory goes when the last one does
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

class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, std::string path, ModelPlan plan, BackendKind kind, BackendOptions options)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), path_(std::move(path)),
        plan_(std::move(plan)), kind_(kind), options_(options) {}

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override { status_ = load_model(path_, std::move(plan_), kind_, options_, &model_); }

  void OnOK() override {
    if (!status_.is_ok()) {
      deferred_.Reject(to_js_error(Env(), status_).Value());
      return;
    }
    Napi::Object obj = constructors(Env()).model.New({});
    NativeModel::Unwrap(obj)->attach(std::move(model_));
    deferred_.Resolve(obj);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::string path_;
  ModelPlan plan_;
  BackendKind kind_;
  BackendOptions options_;
  Status status_;
  std::shared_ptr<LoadedModel> model_;
};

// loadModel(path: string, plan: object, options: {backend: "cpu"|"cuda", threads: number}) -> Promise<NativeModel>
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
  auto* worker = new LoadWorker(env, std::move(path), std::move(plan), kind, options);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

}  // namespace

void register_model_bindings(Napi::Env env, Napi::Object exports) {
  auto* ctors = new Constructors{Napi::Persistent(NativeModel::define(env)), Napi::Persistent(NativeContext::define(env))};
  env.SetInstanceData(ctors);
  exports.Set("loadModel", Napi::Function::New(env, LoadModel));
}

}  // namespace tessera
