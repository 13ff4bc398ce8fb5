#include "core/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace tessera {

namespace {

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  // f16c has no __builtin_cpu_supports name on older compilers; every AVX2 CPU shipped has it,
  // and the AVX2 kernels are only chosen when both avx2 and fma are present.
  f.f16c = f.avx2;
#endif
  return f;
}

CpuIsa best_isa() {
  const CpuFeatures& f = cpu_features();
  return (f.avx2 && f.fma) ? CpuIsa::Avx2 : CpuIsa::Scalar;
}

CpuIsa initial_isa() {
  const char* env = std::getenv("TESSERA_CPU_ISA");
  if (env && std::strcmp(env, "scalar") == 0) return CpuIsa::Scalar;
  return best_isa();
}

std::atomic<int>& isa_slot() {
  static std::atomic<int> slot{static_cast<int>(initial_isa())};
  return slot;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

CpuIsa active_cpu_isa() { return static_cast<CpuIsa>(isa_slot().load(std::memory_order_relaxed)); }

void set_cpu_isa(CpuIsa isa) {
  if (isa == CpuIsa::Avx2 && best_isa() != CpuIsa::Avx2) isa = CpuIsa::Scalar;
  isa_slot().store(static_cast<int>(isa), std::memory_order_relaxed);
}

const char* cpu_isa_name(CpuIsa isa) { return isa == CpuIsa::Avx2 ? "avx2" : "scalar"; }

}  // namespace tessera
