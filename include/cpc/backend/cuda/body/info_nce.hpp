#pragma once
/// Bodies of the CUDA backend's InfoNCE ops (backend/op/info_nce.hpp), written once for device and
/// host: an anchor's candidates, the partial dot products of its logits, the softmax
/// cross-entropy over its N + 1 logits (loss, hit, gradient coefficients), one element of dP, and
/// one element of the dz gather over a row's (anchor, candidate) entries. Dot products and sums are
/// in double, as backend/reference/info_nce.hpp; the device kernels (backend/cuda/info_nce.cuh)
/// give one thread block to an anchor and one thread to a dz element.
#include <cstddef>
#include <cstdint>
#include <limits>

#include "cpc/backend/cuda/hd.hpp"
#include "cpc/backend/op/info_nce.hpp"

namespace cpc::cuda_body {

/// Whether anchor a = b * time + t has a term at step k: t + k < lengths[b].
CPC_HD inline bool info_nce_has_term(std::size_t time, std::size_t step, const std::size_t* lengths,
                                     std::size_t a) {
  return a % time + step < lengths[a / time];
}

/// Candidate j of anchor a: the positive a + k for j = 0, else negative j - 1.
template <class T>
CPC_HD std::int32_t info_nce_candidate(const ops::info_nce_anchor_args<T>& g, std::size_t a, std::size_t j) {
  return j == 0 ? static_cast<std::int32_t>(a + g.step) : g.negative_index[a * g.negatives + (j - 1)];
}

/// Lane `lane` of `lanes`' share of p_a . z_c in double: the sum over d = lane, lane + lanes, ...
/// (the lanes' shares are then summed by a fixed tree; one lane gives the reference's order).
template <class T>
CPC_HD double info_nce_dot_lane(const T* p_row, const T* z_row, std::size_t dim, std::size_t lane,
                                std::size_t lanes) {
  double s = 0;
  for (std::size_t d = lane; d < dim; d += lanes)
    s += static_cast<double>(p_row[d]) * static_cast<double>(z_row[d]);
  return s;
}

/// The softmax cross-entropy of one anchor over its `n1` logits `logit[j]` (already scaled, double):
/// loss = log sum_j exp(logit_j - m) + m - logit_0 with m the maximum, hit = logit_0 > max_{j>=1} logit_j.
/// Writes `out[j]` (T): the logit, or with `grad` the coefficient
/// weight * (softmax_j - [j == 0]) * scale, which also replaces `logit[j]` (double) for dP.
template <class T>
CPC_HD void info_nce_softmax_row(double* logit, std::size_t n1, double scale, double weight, bool grad,
                                 T* out, double& loss, bool& hit) {
  double best_neg = -std::numeric_limits<double>::infinity();
  for (std::size_t j = 1; j < n1; ++j) best_neg = hd_max(best_neg, logit[j]);
  const double m = hd_max(logit[0], best_neg);
  double sum = 0;
  for (std::size_t j = 0; j < n1; ++j) sum += hd_exp(logit[j] - m);
  loss = m + hd_log(sum) - logit[0];
  hit = logit[0] > best_neg;
  if (!grad) {
    for (std::size_t j = 0; j < n1; ++j) out[j] = static_cast<T>(logit[j]);
    return;
  }
  for (std::size_t j = 0; j < n1; ++j) {
    const double soft = hd_exp(logit[j] - m) / sum;
    logit[j] = weight * (soft - (j == 0 ? 1.0 : 0.0)) * scale;
    out[j] = static_cast<T>(logit[j]);
  }
}

/// dP of anchor a, element d: sum_j coeff[j] z[cand[j], d] in double, candidates in order.
template <class T>
CPC_HD T info_nce_dp_element(const ops::info_nce_anchor_args<T>& g, const double* coeff,
                             const std::int32_t* cand, std::size_t d) {
  double acc = 0;
  for (std::size_t j = 0; j <= g.negatives; ++j)
    acc += coeff[j] * static_cast<double>(g.z[static_cast<std::size_t>(cand[j]) * g.dim + d]);
  return static_cast<T>(acc);
}

/// Sort key of entry e = a * (N + 1) + j of the candidates matrix for the dz gather: the row it
/// adds to, candidates[e], or B*T (after every row) when anchor a has no term.
template <class T>
CPC_HD std::uint32_t info_nce_scatter_key(const ops::info_nce_scatter_args<T>& g, std::size_t e) {
  const std::size_t a = e / (g.negatives + 1);
  return info_nce_has_term(g.time, g.step, g.lengths, a) ? static_cast<std::uint32_t>(g.candidates[e])
                                                         : static_cast<std::uint32_t>(g.batch * g.time);
}

/// First index i in [0, n) with keys[i] >= r (keys sorted ascending), or n.
CPC_HD inline std::size_t lower_bound_index(const std::uint32_t* keys, std::size_t n, std::uint32_t r) {
  std::size_t lo = 0, hi = n;
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (keys[mid] < r)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/// dz gather, element (r, d): with `entries[row_begin[r] .. row_begin[r + 1])` the entries whose
/// candidate is row r in increasing e (a stable sort of the entries by `info_nce_scatter_key`),
/// dz[r, d] += sum over them of coeff[e] * p[a(e), d], in double. Rows without entries are left alone.
template <class T>
CPC_HD void info_nce_scatter_element(const ops::info_nce_scatter_args<T>& g, const std::int32_t* entries,
                                     const std::size_t* row_begin, std::size_t r, std::size_t d) {
  const std::size_t begin = row_begin[r], end = row_begin[r + 1];
  if (begin == end) return;
  const std::size_t n1 = g.negatives + 1;
  double acc = 0;
  for (std::size_t i = begin; i < end; ++i) {
    const auto e = static_cast<std::size_t>(entries[i]);
    acc += static_cast<double>(g.coeff[e]) * static_cast<double>(g.p[(e / n1) * g.dim + d]);
  }
  T& out = g.dz[r * g.dim + d];
  out = static_cast<T>(static_cast<double>(out) + acc);
}

/// transpose_grid, element i of y `[B, C, R, D]` (i in y's order): y[b, j, r, d] = x[b, r, j, d].
template <class T>
CPC_HD void element(const ops::transpose_grid_args<T>& g, std::size_t i) {
  const std::size_t d = i % g.dim, r = (i / g.dim) % g.rows, j = (i / (g.dim * g.rows)) % g.cols,
                    b = i / (g.dim * g.rows * g.cols);
  g.y[i] = g.x[((b * g.rows + r) * g.cols + j) * g.dim + d];
}

}  // namespace cpc::cuda_body
