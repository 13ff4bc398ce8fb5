#include "addon/bindings.h"

namespace tessera {
void register_kernel_bindings(Napi::Env, Napi::Object) {}
}  // namespace tessera
