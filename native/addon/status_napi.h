// The one place native StatusCodes become JS error codes (see lib/errors.ts).
#pragma once
#include <napi.h>

#include "core/status.h"

namespace tessera {

const char* js_error_code(StatusCode code);
// addon.errorCodes(): the JS code of every failing StatusCode, for the test that keeps them
// in step with lib/errors.ts.
Napi::Value ErrorCodes(const Napi::CallbackInfo& info);
Napi::Error to_js_error(Napi::Env env, const Status& status);
// Throws the mapped error (a C++ exception that node-addon-api turns into a JS throw).
void check(Napi::Env env, const Status& status);

}  // namespace tessera
