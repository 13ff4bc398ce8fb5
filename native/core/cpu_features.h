// Run-time CPU feature detection: the AVX2 kernels are compiled into their own files and
// selected here, so one binary runs on any x86-64 (and scalar-only on other targets).
#pragma once

namespace tessera {

// Ordered: each level includes the ones below it (Avx512Vnni = the AVX2 kernels, with the
// Q8_0 dot products on 512-bit AVX-512 VNNI), so kernels test `>= CpuIsa::Avx2`.
enum class CpuIsa { Scalar = 0, Avx2 = 1, Avx512Vnni = 2 };

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  // AVX-512 F, BW, DQ, VL and VNNI, with the OS saving the 512-bit state (Zen 4, Ice Lake
  // server and later): vpdpbusd on 512-bit vectors.
  bool avx512vnni = false;
};

const CpuFeatures& cpu_features();

// The ISA the CPU kernels use: the best the machine supports, unless lowered by
// set_cpu_isa (tests run every path) or the TESSERA_CPU_ISA environment variable (scalar,
// avx2, avx512vnni: a ceiling).
CpuIsa active_cpu_isa();
void set_cpu_isa(CpuIsa isa);  // clamped to what the machine supports
const char* cpu_isa_name(CpuIsa isa);
// "scalar", "avx2", "avx512vnni"; false when the name is none of them.
bool cpu_isa_from_name(const char* name, CpuIsa* isa);

}  // namespace tessera
