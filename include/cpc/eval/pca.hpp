#pragma once
/// Principal component analysis of feature rows, for pictures of representations (the README's
/// PCA of window contexts coloured by speaker; the paper's Figure 2 uses t-SNE, PCA is linear like
/// the probes). Source: Jolliffe, "Principal Component Analysis" (2002), ch. 1; eigenvectors by
/// Eigen's SelfAdjointEigenSolver.
#include <Eigen/Eigenvalues>

#include <cmath>
#include <cstddef>
#include <string>

#include "cpc/core/error.hpp"
#include "cpc/core/tensor.hpp"

namespace cpc {

/// Scores of rows `x` `[n, d]` on their first `k` principal components: the columns are centred
/// (and, with `standardise`, divided by their population standard deviation; a constant column
/// stays 0, so a few large dimensions do not dominate), then projected on the k eigenvectors of
/// X^T X with the largest eigenvalues, in decreasing order. Each eigenvector's sign is fixed so that
/// its entry of largest magnitude is positive, so the result does not depend on the solver's sign
/// choice. Returns `[n, k]` (double).
/// Errors: `cpc::config_error` when k is 0 or above d, or n < 2.
template <class T>
tensor2<double> principal_components(const tensor2<T>& x, std::size_t k, bool standardise = true) {
  const std::size_t n = x.shape()[0], d = x.shape()[1];
  if (k == 0 || k > d || n < 2)
    throw config_error("principal_components: expected 1 <= k <= " + std::to_string(d) +
                       " components of at least 2 rows, got k = " + std::to_string(k) + " of " +
                       std::to_string(n) + " rows");
  Eigen::MatrixXd m(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d));
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < d; ++j)
      m(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = static_cast<double>(x(i, j));
  m.rowwise() -= m.colwise().mean();
  if (standardise) {
    const Eigen::RowVectorXd sd = m.array().square().colwise().mean().sqrt();
    for (Eigen::Index j = 0; j < m.cols(); ++j)
      if (sd(j) > 1e-12) m.col(j) /= sd(j);
  }
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(m.transpose() * m);
  tensor2<double> out = xt::zeros<double>({n, k});
  for (std::size_t c = 0; c < k; ++c) {  // eigenvalues ascend: the last column is the first component
    Eigen::VectorXd v = eig.eigenvectors().col(static_cast<Eigen::Index>(d - 1 - c));
    Eigen::Index top = 0;
    v.cwiseAbs().maxCoeff(&top);
    if (v(top) < 0) v = -v;
    const Eigen::VectorXd scores = m * v;
    for (std::size_t i = 0; i < n; ++i) out(i, c) = scores(static_cast<Eigen::Index>(i));
  }
  return out;
}

}  // namespace cpc
