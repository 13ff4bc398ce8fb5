// AVX2 dot-product tiles (compiled with -mavx2 -mfma -mf16c; only called after run-time
// detection). See dot_kernels.h for the tile contract.
#include <immintrin.h>

#include "cpu/dot_kernels.h"

namespace tessera::cpu::avx2 {

bool matmul_tile(GgmlType, int, const DotTile&, int64_t, int64_t) { return false; }

}  // namespace tessera::cpu::avx2
