#pragma once
#include <napi.h>

namespace tessera {

// NativeModel / NativeContext classes (addon/model_binding.cpp).
void register_model_bindings(Napi::Env env, Napi::Object exports);
// Single-op entry points for the kernel harness (addon/kernel_binding.cpp).
void register_kernel_bindings(Napi::Env env, Napi::Object exports);
// Their timers, set on the same `kernels` object (addon/bench_binding.cpp).
void register_bench_bindings(Napi::Env env, Napi::Object kernels);
// The Mamba-2 ops, likewise (addon/ssm_binding.cpp).
void register_ssm_kernel_bindings(Napi::Env env, Napi::Object kernels);

}  // namespace tessera
