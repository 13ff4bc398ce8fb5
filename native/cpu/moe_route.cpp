// moe_route: the router of a mixture-of-experts block for one token. From the router logits
// [n_expert] it computes gating probabilities (softmax or sigmoid), picks the top-k experts
// by probability plus the optional selection bias (which steers selection only), limited to
// the best n_group_used groups when the model uses group-limited routing (group score: sum
// of its two best experts), and returns the selected experts' probabilities as weights,
// renormalized to sum 1 when norm_top_k, times weights_scale. Matches llama.cpp's MoE graph.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "cpu/ops.h"

namespace tessera::cpu {

void moe_route(const float* logits, const float* selection_bias, const MoeParams& p, int32_t* experts, float* weights,
               float* scratch) {
  const int n = p.n_expert, k = p.n_expert_used;
  float* probs = scratch;          // [n]
  float* select = scratch + n;     // [n]
  if (p.gating == ExpertGating::Softmax) {
    std::copy(logits, logits + n, probs);
    softmax(probs, n);
  } else if (p.gating == ExpertGating::SoftmaxWeight) {
    std::copy(logits, logits + n, probs);  // picked by raw logit; weighted below
  } else {
    for (int i = 0; i < n; ++i) probs[i] = 1.0f / (1.0f + std::exp(-logits[i]));
  }
  for (int i = 0; i < n; ++i) select[i] = probs[i] + (selection_bias ? selection_bias[i] : 0.f);

  if (p.n_group > 1 && p.n_group_used < p.n_group) {
    const int per_group = n / p.n_group;
    float group_score[256];
    int order[256];
    for (int g = 0; g < p.n_group; ++g) {
      float best = -INFINITY, second = -INFINITY;
      for (int i = g * per_group; i < (g + 1) * per_group; ++i) {
        if (select[i] > best) {
          second = best;
          best = select[i];
        } else if (select[i] > second) {
          second = select[i];
        }
      }
      group_score[g] = per_group > 1 ? best + second : best;
      order[g] = g;
    }
    std::partial_sort(order, order + p.n_group_used, order + p.n_group,
                      [&](int a, int b) { return group_score[a] > group_score[b]; });
    bool keep[256] = {};
    for (int i = 0; i < p.n_group_used; ++i) keep[order[i]] = true;
    for (int g = 0; g < p.n_group; ++g)
      if (!keep[g])
        for (int i = g * per_group; i < (g + 1) * per_group; ++i) select[i] = -INFINITY;
  }

  int idx[512];
  std::iota(idx, idx + n, 0);
  std::partial_sort(idx, idx + k, idx + n, [&](int a, int b) { return select[a] > select[b] || (select[a] == select[b] && a < b); });
  // Renormalization rounds as llama.cpp's graph does (a row sum accumulated in double, then
  // a division per weight), so that the weights agree to the bit.
  double sum = 0.0;
  for (int j = 0; j < k; ++j) {
    experts[j] = idx[j];
    weights[j] = probs[idx[j]];
    sum += weights[j];
  }
  if (p.gating == ExpertGating::SoftmaxWeight) softmax(weights, k);  // over the picked logits only
  if (p.norm_top_k) {
    const float denom = std::max(float(sum), 6.103515625e-5f);
    for (int j = 0; j < k; ++j) weights[j] /= denom;
  }
  if (p.weights_scale != 0.f && p.weights_scale != 1.f)
    for (int j = 0; j < k; ++j) weights[j] *= p.weights_scale;
}

}  // namespace tessera::cpu
