#include "core/cpu_features.h"

#include <algorithm>
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
  // libgcc reports AVX-512 features only when the OS saves the 512-bit registers (XCR0).
  f.avx512vnni = f.avx2 && f.fma && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                 __builtin_cpu_supports("avx512vnni");
#endif
  return f;
}

CpuIsa best_isa() {
  const CpuFeatures& f = cpu_features();
  if (!(f.avx2 && f.fma)) return CpuIsa::Scalar;
#ifdef TESSERA_HAVE_AVX512VNNI
  if (f.avx512vnni) return CpuIsa::Avx512Vnni;
#endif
  return CpuIsa::Avx2;
}

CpuIsa initial_isa() {
  const char* env = std::getenv("TESSERA_CPU_ISA");
  CpuIsa ceiling;
  if (env && cpu_isa_from_name(env, &ceiling) && ceiling < best_isa()) return ceiling;
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
  isa_slot().store(static_cast<int>(std::min(isa, best_isa())), std::memory_order_relaxed);
}

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Avx512Vnni: return "avx512vnni";
    case CpuIsa::Avx2: return "avx2";
    default: return "scalar";
  }
}

bool cpu_isa_from_name(const char* name, CpuIsa* isa) {
  for (CpuIsa i : {CpuIsa::Scalar, CpuIsa::Avx2, CpuIsa::Avx512Vnni})
    if (std::strcmp(name, cpu_isa_name(i)) == 0) {
      *isa = i;
      return true;
    }
  return false;
}

}  // namespace tessera
