// Promise-returning work on a libuv thread, on the raw N-API calls. node-addon-api's
// AsyncWorker turns a failing N-API call in its completion into a C++ exception or a fatal
// error. When a worker thread is terminated (or the process exits) with work in flight, Node
// still runs the completion, to drain its pending requests, but no JavaScript may run by
// then and every call that needs it fails: with AsyncWorker that ended the whole process
// ("terminate called after throwing an instance of 'Napi::Error'"). Here every status is
// checked, and a completion that can no longer reach JavaScript only frees the task.
#pragma once
#include <node_api.h>

#include <memory>

#include "addon/status_napi.h"
#include "core/status.h"

namespace tessera {

class AsyncTask {
 public:
  virtual ~AsyncTask() = default;

  // Queues `task` and returns its promise (on the JS thread; throws a JS error if N-API
  // refuses, before anything runs).
  static Napi::Promise queue(Napi::Env env, std::unique_ptr<AsyncTask> task, const char* name) {
    napi_value promise = task->promise(env, name), resource_name = nullptr;
    AsyncTask* t = task.get();
    if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
        napi_create_async_work(env, nullptr, resource_name, &AsyncTask::run, &AsyncTask::complete, t, &t->work_) != napi_ok)
      throw to_js_error(env, Status::error(StatusCode::Internal, std::string("cannot create async work for ") + name));
    if (napi_queue_async_work(env, t->work_) != napi_ok) {
      napi_delete_async_work(env, t->work_);
      throw to_js_error(env, Status::error(StatusCode::Internal, std::string("cannot queue async work for ") + name));
    }
    task.release();  // owned by the work until complete()
    return Napi::Promise(env, promise);
  }

  // The task's promise, for a task that runs without a libuv thread and ends through
  // settle_detached (on the JS thread; throws a JS error if N-API refuses).
  napi_value promise(napi_env env, const char* name) {
    napi_value promise = nullptr;
    if (napi_create_promise(env, &deferred_, &promise) != napi_ok)
      throw to_js_error(env, Status::error(StatusCode::Internal, std::string("cannot create a promise for ") + name));
    return promise;
  }

  // Ends a task started without queue(), as its completion would (on the JS thread): settles
  // its promise when `settle` (the caller has a scope open in which JavaScript may run), then
  // frees it either way.
  static void settle_detached(napi_env env, std::unique_ptr<AsyncTask> task, bool settle) {
    task->finished();
    if (!settle) return;
    try {
      task->settle(env);
    } catch (...) {
      // The environment is going away: nobody is left to observe the promise.
    }
  }

 protected:
  // On a libuv thread; no N-API calls.
  virtual void execute() = 0;
  // On the JS thread after execute(), whether or not JavaScript can still run: bookkeeping
  // only, no N-API calls.
  virtual void finished() {}
  // The status the promise settles with.
  virtual const Status& status() const = 0;
  // The value an ok status resolves with (undefined when null). May use node-addon-api: a
  // failure there throws, and the promise is then left unsettled.
  virtual napi_value value(napi_env env) { return nullptr; }

 private:
  static void run(napi_env, void* data) { static_cast<AsyncTask*>(data)->execute(); }

  static void complete(napi_env env, napi_status, void* data) {
    std::unique_ptr<AsyncTask> task(static_cast<AsyncTask*>(data));
    task->finished();
    napi_handle_scope scope = nullptr;
    if (napi_open_handle_scope(env, &scope) == napi_ok) {
      try {
        task->settle(env);
      } catch (...) {
        // The environment is going away: nobody is left to observe the promise.
      }
      napi_close_handle_scope(env, scope);
    }
    napi_delete_async_work(env, task->work_);
  }

  void settle(napi_env env) {
    const Status& st = status();
    if (st.is_ok()) {
      napi_value v = value(env);
      if (!v && napi_get_undefined(env, &v) != napi_ok) return;
      napi_resolve_deferred(env, deferred_, v);
      return;
    }
    napi_value message = nullptr, code = nullptr, error = nullptr;
    if (napi_create_string_utf8(env, st.message.c_str(), st.message.size(), &message) != napi_ok ||
        napi_create_string_utf8(env, js_error_code(st.code), NAPI_AUTO_LENGTH, &code) != napi_ok ||
        napi_create_error(env, nullptr, message, &error) != napi_ok || napi_set_named_property(env, error, "code", code) != napi_ok)
      return;
    napi_reject_deferred(env, deferred_, error);
  }

  napi_deferred deferred_ = nullptr;
  napi_async_work work_ = nullptr;
};

}  // namespace tessera
