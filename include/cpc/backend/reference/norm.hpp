#pragma once
/// reference kernels of the normalisation ops (backend/op/norm.hpp): the definitions as plain
/// loops, statistics and sums in double, one thread. The test oracle.
#include <cmath>
#include <cstddef>
#include <vector>

#include "cpc/backend/op/norm.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc::ops {

namespace reference_detail {
/// Mean and 1/sqrt(biased variance + eps) of the n scalars at x, in double (two passes).
template <class T>
void row_stats(const T* x, std::size_t n, double eps, double& mean, double& rstd) {
  double s = 0;
  for (std::size_t j = 0; j < n; ++j) s += static_cast<double>(x[j]);
  mean = s / static_cast<double>(n);
  double v = 0;
  for (std::size_t j = 0; j < n; ++j)
    v += (static_cast<double>(x[j]) - mean) * (static_cast<double>(x[j]) - mean);
  rstd = 1.0 / std::sqrt(v / static_cast<double>(n) + eps);
}
}  // namespace reference_detail

/// reference layer_norm_forward: y = [relu]((x - mean) * rstd * weight + bias), row by row, in double.
template <class T>
void run(reference, const layer_norm_forward_args<T>& a) {
  for (std::size_t r = 0; r < a.rows; ++r) {
    const T* x = a.x + r * a.cols;
    double mean = 0, rstd = 0;
    reference_detail::row_stats(x, a.cols, a.eps, mean, rstd);
    for (std::size_t j = 0; j < a.cols; ++j) {
      double v = (static_cast<double>(x[j]) - mean) * rstd;
      if (a.weight != nullptr) v = v * static_cast<double>(a.weight[j]) + static_cast<double>(a.bias[j]);
      if (a.relu && v < 0) v = 0;
      a.y[r * a.cols + j] = static_cast<T>(v);
    }
  }
}

/// reference layer_norm_backward: the formulas of `layer_norm_backward_args`, row by row in
/// double; the parameter gradients summed over rows in order, in double, then added.
template <class T>
void run(reference, const layer_norm_backward_args<T>& a, layer_norm_workspace<reference, T>&) {
  const std::size_t n = a.cols;
  // dy' of element (r, j): dy masked by the forward output when the ReLU is fused.
  auto masked = [&](std::size_t r, std::size_t j) {
    const std::size_t i = r * n + j;
    return a.relu && !(a.y[i] > T(0)) ? 0.0 : static_cast<double>(a.dy[i]);
  };
  // Parameter gradients first: dx may be dy itself.
  if (a.d_weight != nullptr) {
    std::vector<double> dw(n, 0.0), db(n, 0.0);
    for (std::size_t r = 0; r < a.rows; ++r) {
      double mean = 0, rstd = 0;
      reference_detail::row_stats(a.x + r * n, n, a.eps, mean, rstd);
      for (std::size_t j = 0; j < n; ++j) {
        const double xhat = (static_cast<double>(a.x[r * n + j]) - mean) * rstd;
        dw[j] += masked(r, j) * xhat;
        db[j] += masked(r, j);
      }
    }
    for (std::size_t j = 0; j < n; ++j) {
      a.d_weight[j] = static_cast<T>(static_cast<double>(a.d_weight[j]) + dw[j]);
      a.d_bias[j] = static_cast<T>(static_cast<double>(a.d_bias[j]) + db[j]);
    }
  }
  if (a.dx != nullptr) {
    std::vector<double> g(n), xhat(n);  // one row
    for (std::size_t r = 0; r < a.rows; ++r) {
      double mean = 0, rstd = 0;
      reference_detail::row_stats(a.x + r * n, n, a.eps, mean, rstd);
      double g_sum = 0, gx_sum = 0;
      for (std::size_t j = 0; j < n; ++j) {
        g[j] = masked(r, j) * (a.weight != nullptr ? static_cast<double>(a.weight[j]) : 1.0);
        xhat[j] = (static_cast<double>(a.x[r * n + j]) - mean) * rstd;
      }
      for (std::size_t j = 0; j < n; ++j) {
        g_sum += g[j];
        gx_sum += g[j] * xhat[j];
      }
      const double g_mean = g_sum / static_cast<double>(n), gx_mean = gx_sum / static_cast<double>(n);
      for (std::size_t j = 0; j < n; ++j)
        a.dx[r * n + j] = static_cast<T>(rstd * (g[j] - g_mean - xhat[j] * gx_mean));
    }
  }
}

}  // namespace cpc::ops
