// Progress and cancellation of one model load, shared by the load task on a libuv thread
// and the JS object that polls it (addon/model_binding.cpp). The loader advances `done`
// as each tensor is read, checked or prepared, and stops at the next tensor once `abort`
// is set; `total` is fixed before the first advance, so done / total only grows.
#pragma once
#include <atomic>
#include <cstdint>

#include "core/status.h"

namespace tessera {

struct LoadControl {
  std::atomic<uint64_t> done{0};
  std::atomic<uint64_t> total{0};
  std::atomic<bool> abort{false};

  // Counts `bytes` as finished; Aborted when a cancel arrived (the caller frees what it built).
  Status advance(uint64_t bytes) {
    done.fetch_add(bytes, std::memory_order_relaxed);
    return cancelled();
  }
  Status cancelled() const {
    return abort.load(std::memory_order_relaxed) ? Status::error(StatusCode::Aborted, "model loading aborted")
                                                 : Status::ok();
  }
  // 0..1 (0 until the total is known).
  double fraction() const {
    const uint64_t t = total.load(std::memory_order_relaxed);
    if (t == 0) return 0;
    const uint64_t d = done.load(std::memory_order_relaxed);
    return d >= t ? 1.0 : double(d) / double(t);
  }
};

}  // namespace tessera
