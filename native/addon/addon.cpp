// N-API entry point: registers the system queries here and the model/context and kernel
// bindings from their own files.
#include <napi.h>

#include "addon/bindings.h"
#include "addon/plan_from_js.h"
#include "addon/status_napi.h"
#include "core/cpu_features.h"
#include "core/cuda_loader.h"
#include "core/weight_types.h"

namespace tessera {

namespace {

Napi::Value SystemInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  const CpuFeatures& f = cpu_features();
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("avx2", f.avx2);
  cpu.Set("fma", f.fma);
  cpu.Set("f16c", f.f16c);
  cpu.Set("avx512vnni", f.avx512vnni);
  cpu.Set("isa", cpu_isa_name(active_cpu_isa()));
  out.Set("cpu", cpu);
  const CudaAvailability& cuda = cuda_availability();
  Napi::Object cu = Napi::Object::New(env);
  cu.Set("available", cuda.available);
  cu.Set("deviceCount", cuda.device_count);
  if (cuda.available) cu.Set("deviceName", cuda.device_name);
  else cu.Set("reason", cuda.reason);
  out.Set("cuda", cu);
  // The weight types the kernels compute with (core/weight_types.h), by ggml name.
  Napi::Array types = Napi::Array::New(env);
  for (GgmlType t : kWeightTypes) types.Set(types.Length(), ggml_type_traits(t).name);
  out.Set("weightTypes", types);
  return out;
}

Napi::Value SetCpuIsa(const Napi::CallbackInfo& info) {
  const std::string name = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : std::string();
  CpuIsa isa;
  if (!cpu_isa_from_name(name.c_str(), &isa))
    check(info.Env(), Status::error(StatusCode::InvalidArgument, "setCpuIsa: the ISA is one of scalar, avx2, avx512vnni"));
  set_cpu_isa(isa);  // lowered to the best the machine has
  return Napi::String::New(info.Env(), cpu_isa_name(active_cpu_isa()));
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("systemInfo", Napi::Function::New(env, SystemInfo));
  exports.Set("setCpuIsa", Napi::Function::New(env, SetCpuIsa));
  exports.Set("layerRoles", Napi::Function::New(env, LayerRoles));
  exports.Set("errorCodes", Napi::Function::New(env, ErrorCodes));
  register_model_bindings(env, exports);
  register_kernel_bindings(env, exports);
  return exports;
}

}  // namespace tessera

static Napi::Object InitTessera(Napi::Env env, Napi::Object exports) { return tessera::Init(env, exports); }

NODE_API_MODULE(tessera, InitTessera)
