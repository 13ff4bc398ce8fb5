#include "addon/status_napi.h"

namespace tessera {

const char* js_error_code(StatusCode code) {
  switch (code) {
    case StatusCode::Ok: return "OK";
    case StatusCode::InvalidArgument: return "ERR_INVALID_ARGUMENT";
    case StatusCode::ModelIncompatible: return "ERR_MODEL_INCOMPATIBLE";
    case StatusCode::UnsupportedQuantType: return "ERR_UNSUPPORTED_QUANT_TYPE";
    case StatusCode::OutOfContext: return "ERR_OUT_OF_CONTEXT";
    case StatusCode::OutOfMemory: return "ERR_OUT_OF_MEMORY";
    case StatusCode::Io: return "ERR_IO";
    case StatusCode::BackendUnavailable: return "ERR_BACKEND_UNAVAILABLE";
    case StatusCode::Cuda: return "ERR_CUDA";
    case StatusCode::Aborted: return "ERR_ABORTED";
    case StatusCode::Busy: return "ERR_BUSY";
    case StatusCode::Internal: return "ERR_INTERNAL";
    case StatusCode::NonFinite: return "ERR_NON_FINITE";
    case StatusCode::Disposed: return "ERR_DISPOSED";
  }
  return "ERR_INTERNAL";
}

Napi::Value ErrorCodes(const Napi::CallbackInfo& info) {
  Napi::Array out = Napi::Array::New(info.Env(), kStatusCodeCount - 1);
  for (int c = 1; c < kStatusCodeCount; ++c) out.Set(uint32_t(c - 1), js_error_code(static_cast<StatusCode>(c)));
  return out;
}

Napi::Error to_js_error(Napi::Env env, const Status& status) {
  Napi::Error error = Napi::Error::New(env, status.message);
  error.Set("code", Napi::String::New(env, js_error_code(status.code)));
  return error;
}

void check(Napi::Env env, const Status& status) {
  if (!status.is_ok()) throw to_js_error(env, status);
}

}  // namespace tessera
