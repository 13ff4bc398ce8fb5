// Status: how native code reports failure. Native code never throws across the N-API
// boundary, never calls exit/abort; every fallible function returns a Status, and the
// addon maps StatusCode to a JS error code in one place (addon/status_napi.cpp).
#pragma once
#include <string>
#include <utility>

namespace tessera {

enum class StatusCode : int {
  Ok = 0,
  InvalidArgument,
  ModelIncompatible,
  UnsupportedQuantType,
  OutOfContext,
  OutOfMemory,
  Io,
  BackendUnavailable,
  Cuda,
  Aborted,
  Busy,      // the object is already running an operation (ERR_BUSY)
  Internal,
  // NaN or Infinity where numbers must be finite: in a weight (a load with checkTensors) or
  // in the logits a step produced.
  NonFinite,
  // A model or engine used after dispose() (ERR_DISPOSED).
  Disposed,
};
inline constexpr int kStatusCodeCount = static_cast<int>(StatusCode::Disposed) + 1;

struct Status {
  StatusCode code = StatusCode::Ok;
  std::string message;

  static Status ok() { return {}; }
  static Status error(StatusCode code, std::string message) { return {code, std::move(message)}; }
  bool is_ok() const { return code == StatusCode::Ok; }
};

#define TESSERA_RETURN_IF_ERROR(expr)        \
  do {                                       \
    ::tessera::Status _st = (expr);          \
    if (!_st.is_ok()) return _st;            \
  } while (0)

}  // namespace tessera
