// The access pattern of the decode kernels and the read-bandwidth probe: S separate
// stretches of a range read side by side. One sequential stream per core keeps too few DRAM
// requests in flight (on a Zen 3 VM one core read 13 GB/s as one stream and 17-19 as four),
// while adjacent items in lockstep (rows of 952 bytes at 896 columns) look to the hardware
// prefetcher like many short streams and read slower still.
#pragma once
#include <cstdint>

namespace tessera::cpu {

constexpr int kSideBySideStreams = 4;

// Calls step(idx) for i in [0, stretch), stretch = (end - begin) / S, with idx[s] = begin +
// s * stretch + i. Returns the first index it did not cover: [that, end) is the caller's.
template <int S, typename Step>
inline int64_t side_by_side(int64_t begin, int64_t end, Step&& step) {
  const int64_t stretch = (end - begin) / S;
  for (int64_t i = 0; i < stretch; ++i) {
    int64_t idx[S];
    for (int s = 0; s < S; ++s) idx[s] = begin + s * stretch + i;
    step(idx);
  }
  return begin + S * stretch;
}

}  // namespace tessera::cpu
