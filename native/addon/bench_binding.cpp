// The kernel timers (kernels.benchMatmul, benchAttention, readBandwidth): bench/ times the CPU
// ops through these with packing, buffers and the thread pool set up beforehand, as the
// executor has them; the single-op checks are in kernel_binding.cpp.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "addon/bindings.h"
#include "addon/kernel_args.h"
#include "cpu/read_probe.h"

namespace tessera {

namespace {

using namespace tessera::kernel_args;

// The native timers' loop: step(i, ith, nth) runs on every thread of the pool, call after call
// (i counts them; a step ends with every thread done, on a barrier), until `seconds` have
// passed with at least 5 calls timed. The first pass over the n_copies inputs (at least 3
// calls) warms up untimed. Returns {medianMs, minMs, runs, copies}.
template <typename Step>
Napi::Object time_on_pool(Napi::Env env, ThreadPool& pool, size_t n_copies, double seconds, Step&& step) {
  std::vector<double> times;
  bool done = false;  // written by thread 0, read by all after the barrier that ends each call
  pool.run([&](int ith, int nth) {
    const auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; !done; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      step(i, ith, nth);
      if (ith == 0) {
        const auto t1 = std::chrono::steady_clock::now();
        if (i >= n_copies || i >= 3) times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        done = (times.size() >= 5 && std::chrono::duration<double>(t1 - start).count() >= seconds) || times.size() >= 100000;
      }
      pool.barrier();
    }
  });
  std::sort(times.begin(), times.end());
  Napi::Object out = Napi::Object::New(env);
  out.Set("medianMs", times[times.size() / 2]);
  out.Set("minMs", times.front());
  out.Set("runs", double(times.size()));
  out.Set("copies", double(n_copies));
  return out;
}

// benchMatmul(type, weightBytes, rows, cols, x, nTokens, threads, seconds, repack = true,
//             copies = 0, order = "gemm") -> { medianMs, minMs, runs, copies }: times matmul_step
// with packing and buffers set up beforehand (as in the executor), rotating over copies of the
// weights; copies = 0 takes enough (>= 256 MiB together, at most 64) that each call streams
// its weights from DRAM as decode does, copies = 1 measures cache-resident compute. All calls
// run inside one pool region, as a decode step runs its matmuls, so a call's time is its
// encode, multiply and barriers and not a wake-up of the calling thread (~35 us here, a sixth
// of a 0.5B-shape matvec).
Napi::Value BenchMatmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const MatmulArgs a = matmul_args(info);
  const double seconds = num_arg(info, 7, "seconds");
  const bool repack = flag_arg(info, 8, "repack");
  if (!(seconds > 0 && seconds <= 60)) invalid(env, "seconds must be in (0, 60]");
  const int64_t copies_arg = info.Length() > 9 && !info[9].IsUndefined() ? int_arg(info, 9, "copies", 0, 64) : 0;
  const DotOrder order = order_arg(info, 10);
  const size_t n_copies = copies_arg > 0 ? size_t(copies_arg)
                                         : std::min<size_t>(64, std::max<size_t>(1, ((size_t(256) << 20) + a.w_bytes - 1) / a.w_bytes));
  std::vector<AlignedBuffer> copies(n_copies);
  std::vector<PackedWeight> packed(n_copies);
  HugePageArena arena;  // the copies packed as a model's weights are (cpu_backend.cpp)
  for (size_t i = 0; i < n_copies; ++i) {
    check(env, copies[i].allocate(a.w_bytes, "benchmark weights"));
    std::copy(a.w, a.w + a.w_bytes, copies[i].data());
    check(env, pack(a, copies[i].data(), repack, &packed[i], &arena));
  }
  AlignedBuffer act, y;
  check(env, act.allocate(std::max<size_t>(act_bytes(act_format_for(a.type), a.cols, a.n_tokens), 64), "harness activations"));
  check(env, y.allocate(size_t(a.n_tokens) * a.rows * 4, "harness output"));
  ThreadPool pool(a.threads);
  return time_on_pool(env, pool, n_copies, seconds, [&](size_t i, int ith, int nth) {
    matmul_step(pool, a, packed[i % n_copies], act.data(), reinterpret_cast<float*>(y.data()), order, ith, nth);
  });
}

// benchAttention(<attention's arguments 0..12>, seconds, vInK?, kvType?) -> {medianMs, minMs, runs, copies}:
// times the attention op alone with one thread pool. A single query token (decode) rotates
// through copies of the cache totalling at least 256 MiB, so it streams keys and values from
// DRAM as a decode step does; a batch reads one cache that it keeps warm, as a prefill does.
Napi::Value BenchAttention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AttentionCall c = attention_call(info, 14);
  const double seconds = num_arg(info, 13, "seconds");
  if (!(seconds > 0 && seconds <= 60)) invalid(env, "seconds must be in (0, 60]");
  const size_t n_copies =
      c.a.n_tokens > 1 ? 1 : std::min<size_t>(256, std::max<size_t>(1, ((size_t(256) << 20) + c.cache_bytes - 1) / c.cache_bytes));
  std::vector<AlignedBuffer> caches(n_copies);
  for (AlignedBuffer& cache : caches) check(env, cache.allocate(c.cache_bytes, "benchmark KV cache"));
  AlignedBuffer scratch, out;
  check(env, scratch.allocate(c.scratch_bytes, "harness scratch"));
  check(env, out.allocate(c.out_floats * 4, "harness output"));
  std::vector<AttentionArgs> calls;
  for (AlignedBuffer& cache : caches) {
    calls.push_back(cache_args(c, cache.data()));
    calls.back().out = reinterpret_cast<float*>(out.data());
    calls.back().scratch = reinterpret_cast<float*>(scratch.data());
  }
  ThreadPool pool(c.threads);
  pool.run([&](int ith, int nth) {
    for (const AttentionArgs& call : calls) store_kv(c, call.kv, ith, nth);
  });
  return time_on_pool(env, pool, n_copies, seconds, [&](size_t i, int ith, int nth) {
    attention(calls[i % n_copies], ith, nth);
    pool.barrier();
  });
}

// readBandwidth(megabytes, reps, threads) -> { medianGBps, bestGBps, method, threads, methods }:
// reads a buffer of `megabytes` (far larger than the caches) `reps` times per read method
// (cpu::ReadMethod) on `threads` threads and on one fewer, in 8 MiB chunks, timing each
// chunk the same way benchMatmul times its calls, so kernel and probe figures compare like
// for like on a machine shared with other work (median: typical, best: a quiet moment). The
// top level is the combination with the highest median: the probe stands for the read
// ceiling, and the engine itself runs each step on all threads or one fewer, whichever is
// faster. A busy neighbour on one core stalls every barrier of a full-width pass: on a
// loaded 2-core VM one probe read 17.9 GB/s with the kernels' pattern on 2 threads and 38.2
// on 1, the likely way a 1B decode came to 113% of a 2-thread probe. Combinations take turns
// pass by pass, so a neighbour's burst does not land on one of them only.
Napi::Value ReadBandwidth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t mb = int_arg(info, 0, "megabytes", 8, 1 << 14);
  const int reps = int(int_arg(info, 1, "reps", 1, 1000)), threads = int(int_arg(info, 2, "threads", 1, kMaxThreads));
  constexpr int64_t kChunk = (int64_t(8) << 20) / 4;  // floats per chunk
  const int64_t n = mb * (1 << 20) / 4 / kChunk * kChunk;
  AlignedBuffer buf;
  // In huge pages, as the weights are (pack_weight.cpp): the same page walks per byte read.
  check(env, buf.allocate(size_t(n) * 4, "bandwidth probe buffer", true));
  float* data = reinterpret_cast<float*>(buf.data());
  for (int64_t i = 0; i < n; ++i) data[i] = float(i & 7);
  ThreadPool pool(threads);
  std::vector<float> sink(threads);
  const int widths = threads > 1 ? 2 : 1;  // all threads, then one fewer
  std::vector<std::vector<double>> gbps(size_t(widths) * cpu::kReadMethods);
  for (int r = 0; r < reps; ++r)
    for (int w = 0; w < widths; ++w)
      // One region for all chunks with a barrier after each, as benchMatmul times its calls, so
      // the probe and the kernels it judges pay the same synchronisation per timed piece.
      pool.run(
          [&](int ith, int nth) {
            for (int m = 0; m < cpu::kReadMethods; ++m)
              for (int64_t c = 0; c < n; c += kChunk) {
                const auto t0 = std::chrono::steady_clock::now();
                sink[ith] += read_probe(data + c, kChunk, ith, nth, cpu::ReadMethod(m));
                pool.barrier();
                if (ith == 0)
                  gbps[size_t(w) * cpu::kReadMethods + m].push_back(
                      double(kChunk) * 4 / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 1e9);
              }
          },
          threads - w);
  volatile float keep = sink[0];
  (void)keep;
  Napi::Array methods = Napi::Array::New(env);
  double top_median = 0, top_best = 0;
  size_t top = 0;
  for (size_t i = 0; i < gbps.size(); ++i) {
    std::sort(gbps[i].begin(), gbps[i].end());
    const double median = gbps[i][gbps[i].size() / 2], best = gbps[i].back();
    Napi::Object o = Napi::Object::New(env);
    o.Set("method", cpu::read_method_name(cpu::ReadMethod(i % cpu::kReadMethods)));
    o.Set("threads", threads - int(i / cpu::kReadMethods));
    o.Set("medianGBps", median);
    o.Set("bestGBps", best);
    methods.Set(uint32_t(i), o);
    if (median > top_median) top_median = median, top = i;
    top_best = std::max(top_best, best);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("medianGBps", top_median);
  out.Set("bestGBps", top_best);
  out.Set("method", cpu::read_method_name(cpu::ReadMethod(top % cpu::kReadMethods)));
  out.Set("threads", threads - int(top / cpu::kReadMethods));
  out.Set("methods", methods);
  return out;
}

}  // namespace

void register_bench_bindings(Napi::Env env, Napi::Object kernels) {
  kernels.Set("benchMatmul", Napi::Function::New(env, BenchMatmul));
  kernels.Set("benchAttention", Napi::Function::New(env, BenchAttention));
  kernels.Set("readBandwidth", Napi::Function::New(env, ReadBandwidth));
}

}  // namespace tessera
