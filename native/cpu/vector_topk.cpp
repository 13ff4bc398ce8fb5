// Exact top-k vector search (lib/embeddings/vector-index.ts): every row of data [n][dim]
// scored against one query, each thread keeping the best k of its share of the rows in a
// min-heap; the caller merges the nth partial lists. Cosine is the dot product of rows the
// index normalized on insertion. Scores are computed in blocks so the heap test runs on a
// buffer in L1, not interleaved with the streaming loads. The AVX2 twin is
// vector_topk_avx2.cpp; the scalar loop below keeps 8 partial sums per row like it.
#include <algorithm>
#include <vector>

#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "cpu/ops.h"
#include "cpu/vector_topk_kernels.h"

namespace tessera::cpu {

namespace {

constexpr int64_t kBlock = 256;

void scalar_scores(const float* data, int64_t n, int dim, const float* q, bool l2, float* out) {
  for (int64_t r = 0; r < n; ++r) {
    const float* x = data + r * dim;
    float acc[8] = {};
    int i = 0;
    for (; i + 8 <= dim; i += 8)
      for (int j = 0; j < 8; ++j) acc[j] += l2 ? (x[i + j] - q[i + j]) * (x[i + j] - q[i + j]) : x[i + j] * q[i + j];
    float s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    for (; i < dim; ++i) s += l2 ? (x[i] - q[i]) * (x[i] - q[i]) : x[i] * q[i];
    out[r] = l2 ? -s : s;
  }
}

// Better first: a higher score, then a lower row.
struct Hit {
  float score;
  int32_t row;
};
inline bool better(const Hit& a, const Hit& b) { return a.score > b.score || (a.score == b.score && a.row < b.row); }

}  // namespace

void vector_topk(const float* data, int64_t n, int dim, const float* query, VectorMetric metric, int k, int32_t* rows,
                 float* scores, int ith, int nth) {
  int64_t b, e;
  split_range(n, ith, nth, &b, &e);
  const bool l2 = metric == VectorMetric::L2;
  const bool avx2 = active_cpu_isa() >= CpuIsa::Avx2;
  std::vector<Hit> heap;  // a min-heap under `better`: heap.front() is the worst kept
  heap.reserve(size_t(k));
  auto worse_first = [](const Hit& a, const Hit& c) { return better(a, c); };
  float block[kBlock];
  for (int64_t r0 = b; r0 < e; r0 += kBlock) {
    const int64_t m = std::min(kBlock, e - r0);
    if (avx2)
      avx2::vector_scores(data + r0 * dim, m, dim, query, l2, block);
    else
      scalar_scores(data + r0 * dim, m, dim, query, l2, block);
    for (int64_t i = 0; i < m; ++i) {
      const Hit h{block[i], int32_t(r0 + i)};
      if (h.score != h.score) continue;  // NaN never ranks (the index refuses non-finite vectors)
      if (int(heap.size()) < k) {
        heap.push_back(h);
        std::push_heap(heap.begin(), heap.end(), worse_first);
      } else if (better(h, heap.front())) {
        std::pop_heap(heap.begin(), heap.end(), worse_first);
        heap.back() = h;
        std::push_heap(heap.begin(), heap.end(), worse_first);
      }
    }
  }
  std::sort(heap.begin(), heap.end(), better);
  int32_t* out_rows = rows + int64_t(ith) * k;
  float* out_scores = scores + int64_t(ith) * k;
  for (int i = 0; i < k; ++i) {
    out_rows[i] = i < int(heap.size()) ? heap[i].row : -1;
    out_scores[i] = i < int(heap.size()) ? heap[i].score : 0.f;
  }
}

}  // namespace tessera::cpu
