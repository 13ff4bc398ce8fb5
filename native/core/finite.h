// Finiteness scans over float data: a non-finite value has every exponent bit set, and an
// OR-reduction of that bit test over a chunk is a loop the compiler vectorizes. Used on each
// step's logits (a few hundred KiB per row) and on every weight with checkTensors, so they
// must run at memory speed. Values are read through memcpy (no aliasing of float storage).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace tessera {

// Whether all n floats at p are finite.
static inline bool all_finite_f32(const float* p, size_t n) {
  constexpr size_t kChunk = 1024;  // returns early on a bad chunk, without a branch per element
  for (size_t at = 0; at < n; at += kChunk) {
    const size_t end = at + kChunk < n ? at + kChunk : n;
    uint32_t bad = 0;
    for (size_t i = at; i < end; ++i) {
      uint32_t w;
      std::memcpy(&w, p + i, sizeof w);
      bad |= uint32_t((w & 0x7f800000u) == 0x7f800000u);
    }
    if (bad) return false;
  }
  return true;
}

// The same over n halves (F16: 5 exponent bits, mask 0x7c00; BF16: 8 bits, mask 0x7f80),
// each `stride` bytes apart starting at `base` (2 for a plain array; a block's size for the
// scales of quantized blocks). Unaligned reads: block scales sit at odd offsets.
static inline bool all_finite_half(const uint8_t* base, size_t n, size_t stride, uint16_t exp_mask) {
  constexpr size_t kChunk = 1024;
  for (size_t at = 0; at < n; at += kChunk) {
    const size_t end = at + kChunk < n ? at + kChunk : n;
    uint32_t bad = 0;
    for (size_t i = at; i < end; ++i) {
      uint16_t h;
      std::memcpy(&h, base + i * stride, sizeof h);
      bad |= uint32_t((h & exp_mask) == exp_mask);
    }
    if (bad) return false;
  }
  return true;
}

}  // namespace tessera
