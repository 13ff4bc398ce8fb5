#include "addon/bindings.h"

namespace tessera {
void register_model_bindings(Napi::Env, Napi::Object) {}
}  // namespace tessera
