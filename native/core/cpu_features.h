// Run-time CPU feature detection: the AVX2 kernels are compiled into their own files and
// selected here, so one binary runs on any x86-64 (and scalar-only on other targets).
#pragma once

namespace tessera {

enum class CpuIsa { Scalar = 0, Avx2 = 1 };

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
};

const CpuFeatures& cpu_features();

// The ISA the CPU kernels use: the best the machine supports, unless lowered by
// set_cpu_isa (tests run both paths) or the TESSERA_CPU_ISA=scalar environment variable.
CpuIsa active_cpu_isa();
void set_cpu_isa(CpuIsa isa);  // clamped to what the machine supports
const char* cpu_isa_name(CpuIsa isa);

}  // namespace tessera
