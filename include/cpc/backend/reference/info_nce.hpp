#pragma once
/// reference kernels of the InfoNCE ops (backend/op/info_nce.hpp): the definitions as plain loops,
/// dot products, log-sum-exp, softmax and sums in double, one thread. The oracle that tests compare
/// every backend against.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "cpc/backend/op/info_nce.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc::ops {

/// reference info_nce_anchor_terms: per anchor with a term, the N + 1 logits in double, their
/// log-sum-exp with the maximum subtracted, the hit, and with dp the softmax coefficients and
/// dp = sum_j g_j z_j summed in double in candidate order.
template <class T>
void run(reference, const info_nce_anchor_args<T>& g) {
  const std::size_t BT = g.batch * g.time, N1 = g.negatives + 1, D = g.dim;
  double total = 0;
  std::size_t hits = 0;
  std::vector<double> logit(N1);
  for (std::size_t a = 0; a < BT; ++a) {
    const std::size_t b = a / g.time, t = a % g.time;
    if (g.dp != nullptr)
      for (std::size_t d = 0; d < D; ++d) g.dp[a * D + d] = T(0);
    if (t + g.step >= g.lengths[b]) continue;
    std::int32_t* cand = g.candidates + a * N1;
    cand[0] = static_cast<std::int32_t>(a + g.step);
    for (std::size_t n = 0; n < g.negatives; ++n) cand[1 + n] = g.negative_index[a * g.negatives + n];
    const T* p = g.p + a * D;
    for (std::size_t j = 0; j < N1; ++j) {
      const T* zj = g.z + static_cast<std::size_t>(cand[j]) * D;
      double dot = 0;
      for (std::size_t d = 0; d < D; ++d) dot += static_cast<double>(p[d]) * static_cast<double>(zj[d]);
      logit[j] = static_cast<double>(g.scale) * dot;
    }
    double best_neg = -std::numeric_limits<double>::infinity();
    for (std::size_t j = 1; j < N1; ++j) best_neg = std::max(best_neg, logit[j]);
    const double m = std::max(logit[0], best_neg);
    double sum = 0;
    for (std::size_t j = 0; j < N1; ++j) sum += std::exp(logit[j] - m);
    const double loss = m + std::log(sum) - logit[0];
    const bool hit = logit[0] > best_neg;
    g.anchor_loss[a] = loss;
    g.anchor_hit[a] = hit ? 1 : 0;
    total += loss;
    hits += hit ? 1 : 0;
    T* l = g.logits + a * N1;
    if (g.dp == nullptr) {
      for (std::size_t j = 0; j < N1; ++j) l[j] = static_cast<T>(logit[j]);
      continue;
    }
    std::vector<double> coeff(N1);
    for (std::size_t j = 0; j < N1; ++j) {
      const double soft = std::exp(logit[j] - m) / sum;
      coeff[j] = g.weight * (soft - (j == 0 ? 1.0 : 0.0)) * static_cast<double>(g.scale);
      l[j] = static_cast<T>(coeff[j]);
    }
    for (std::size_t d = 0; d < D; ++d) {
      double acc = 0;
      for (std::size_t j = 0; j < N1; ++j)
        acc += coeff[j] * static_cast<double>(g.z[static_cast<std::size_t>(cand[j]) * D + d]);
      g.dp[a * D + d] = static_cast<T>(acc);
    }
  }
  *g.loss_sum = total;
  *g.hits = hits;
}

/// reference info_nce_scatter_dz: every (anchor, candidate) entry adds coeff * p_a to a double
/// accumulator of its row; the accumulators are then added to dz.
template <class T>
void run(reference, const info_nce_scatter_args<T>& g, info_nce_scatter_workspace<reference, T>&) {
  const std::size_t BT = g.batch * g.time, N1 = g.negatives + 1, D = g.dim;
  std::vector<double> acc(BT * D, 0.0);
  std::vector<bool> touched(BT, false);
  for (std::size_t a = 0; a < BT; ++a) {
    if (a % g.time + g.step >= g.lengths[a / g.time]) continue;
    for (std::size_t j = 0; j < N1; ++j) {
      const auto r = static_cast<std::size_t>(g.candidates[a * N1 + j]);
      touched[r] = true;
      for (std::size_t d = 0; d < D; ++d)
        acc[r * D + d] += static_cast<double>(g.coeff[a * N1 + j]) * static_cast<double>(g.p[a * D + d]);
    }
  }
  for (std::size_t r = 0; r < BT; ++r)
    if (touched[r])
      for (std::size_t d = 0; d < D; ++d)
        g.dz[r * D + d] = static_cast<T>(static_cast<double>(g.dz[r * D + d]) + acc[r * D + d]);
}

/// reference transpose_grid: y[b, j, i, d] = x[b, i, j, d], element by element.
template <class T>
void run(reference, const transpose_grid_args<T>& g) {
  for (std::size_t b = 0; b < g.batch; ++b)
    for (std::size_t i = 0; i < g.rows; ++i)
      for (std::size_t j = 0; j < g.cols; ++j)
        for (std::size_t d = 0; d < g.dim; ++d)
          g.y[((b * g.cols + j) * g.rows + i) * g.dim + d] = g.x[((b * g.rows + i) * g.cols + j) * g.dim + d];
}

}  // namespace cpc::ops
