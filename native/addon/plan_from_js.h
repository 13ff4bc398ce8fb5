// Converts the plan object built by lib/model/plan.ts into a ModelPlan. Only types are
// checked here (wrong types throw ERR_INVALID_ARGUMENT); meaning is checked by validate_plan.
#pragma once
#include <napi.h>

#include "core/model_plan.h"

namespace tessera {

ModelPlan plan_from_js(const Napi::Object& js);

// addon.layerRoles(): the rows of core/layer_roles.h, for the test that keeps
// lib/arch/tensor-names.ts in step with them.
Napi::Value LayerRoles(const Napi::CallbackInfo& info);

}  // namespace tessera
