#pragma once
/// Bodies of the CUDA backend's layer-norm ops (backend/op/norm.hpp), written once for device and
/// host. A row is processed by `lanes` cooperating threads (lane = 0 .. lanes - 1, element j by
/// lane j % lanes) and a `reduce(double)` that returns the sum of a value over the row's lanes:
/// on the device one thread block and a fixed-order block reduction, on the host one lane
/// (`serial_reducer`). Statistics and sums are in double, as backend/reference/norm.hpp.
#include <cstddef>

#include "cpc/backend/cuda/body/blas.hpp"
#include "cpc/backend/cuda/hd.hpp"
#include "cpc/backend/op/norm.hpp"

namespace cpc::cuda_body {

/// Mean and 1 / sqrt(biased variance + eps) of the n scalars at x (two passes, double).
template <class T, class Reduce>
CPC_HD void layer_norm_row_stats(const T* x, std::size_t n, double eps, std::size_t lane, std::size_t lanes,
                                 const Reduce& reduce, double& mean, double& rstd) {
  double s = 0;
  for (std::size_t j = lane; j < n; j += lanes) s += static_cast<double>(x[j]);
  mean = reduce(s) / static_cast<double>(n);
  double v = 0;
  for (std::size_t j = lane; j < n; j += lanes) {
    const double d = static_cast<double>(x[j]) - mean;
    v += d * d;
  }
  rstd = 1.0 / hd_sqrt(reduce(v) / static_cast<double>(n) + eps);
}

/// layer_norm_forward, row r: y = [relu]((x - mean) * rstd * weight + bias).
template <class T, class Reduce>
CPC_HD void layer_norm_forward_row(const ops::layer_norm_forward_args<T>& a, std::size_t r, std::size_t lane,
                                   std::size_t lanes, const Reduce& reduce) {
  const T* x = a.x + r * a.cols;
  double mean = 0, rstd = 0;
  layer_norm_row_stats(x, a.cols, a.eps, lane, lanes, reduce, mean, rstd);
  for (std::size_t j = lane; j < a.cols; j += lanes) {
    double v = (static_cast<double>(x[j]) - mean) * rstd;
    if (a.weight != nullptr) v = v * static_cast<double>(a.weight[j]) + static_cast<double>(a.bias[j]);
    if (a.relu && v < 0) v = 0;
    a.y[r * a.cols + j] = static_cast<T>(v);
  }
}

/// dy' of element i: dy, masked by the forward output y > 0 when the ReLU is fused.
template <class T>
CPC_HD double layer_norm_masked_dy(const ops::layer_norm_backward_args<T>& a, std::size_t i) {
  return a.relu && !(a.y[i] > T(0)) ? 0.0 : static_cast<double>(a.dy[i]);
}

/// layer_norm_backward, row r: the row's statistics (stored to `mean_out[r]`, `rstd_out[r]` when
/// those are not null, for the parameter gradients) and, when dx is not null,
/// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy' * weight.
template <class T, class Reduce>
CPC_HD void layer_norm_backward_row(const ops::layer_norm_backward_args<T>& a, std::size_t r,
                                    std::size_t lane, std::size_t lanes, const Reduce& reduce,
                                    double* mean_out, double* rstd_out) {
  const std::size_t n = a.cols;
  const T* x = a.x + r * n;
  double mean = 0, rstd = 0;
  layer_norm_row_stats(x, n, a.eps, lane, lanes, reduce, mean, rstd);
  if (lane == 0 && mean_out != nullptr) {
    mean_out[r] = mean;
    rstd_out[r] = rstd;
  }
  if (a.dx == nullptr) return;
  double g_sum = 0, gx_sum = 0;
  for (std::size_t j = lane; j < n; j += lanes) {
    const double g =
        layer_norm_masked_dy(a, r * n + j) * (a.weight != nullptr ? static_cast<double>(a.weight[j]) : 1.0);
    g_sum += g;
    gx_sum += g * (static_cast<double>(x[j]) - mean) * rstd;
  }
  const double g_mean = reduce(g_sum) / static_cast<double>(n),
               gx_mean = reduce(gx_sum) / static_cast<double>(n);
  for (std::size_t j = lane; j < n; j += lanes) {
    const double g =
        layer_norm_masked_dy(a, r * n + j) * (a.weight != nullptr ? static_cast<double>(a.weight[j]) : 1.0);
    const double xhat = (static_cast<double>(x[j]) - mean) * rstd;
    a.dx[r * n + j] = static_cast<T>(rstd * (g - g_mean - xhat * gx_mean));
  }
}

/// layer_norm_backward's parameter gradients, column j over the rows of chunk c (`sum_chunk_rows`
/// rows, in order): dw += dy' * xhat and db += dy', with the row statistics of
/// `layer_norm_backward_row`.
template <class T>
CPC_HD void layer_norm_param_partial(const ops::layer_norm_backward_args<T>& a, const double* mean,
                                     const double* rstd, std::size_t j, std::size_t c, double& dw,
                                     double& db) {
  dw = 0;
  db = 0;
  const std::size_t end = (c + 1) * sum_chunk_rows < a.rows ? (c + 1) * sum_chunk_rows : a.rows;
  for (std::size_t r = c * sum_chunk_rows; r < end; ++r) {
    const std::size_t i = r * a.cols + j;
    const double d = layer_norm_masked_dy(a, i);
    dw += d * (static_cast<double>(a.x[i]) - mean[r]) * rstd[r];
    db += d;
  }
}

/// layer_norm_backward's parameter gradients, column j: adds the chunk partials
/// (`partials[(2 c) * cols + j]` for weight, `partials[(2 c + 1) * cols + j]` for bias) in chunk order.
template <class T>
CPC_HD void layer_norm_param_finish(const ops::layer_norm_backward_args<T>& a, const double* partials,
                                    std::size_t j) {
  double dw = 0, db = 0;
  const std::size_t chunks = sum_chunks(a.rows);
  for (std::size_t c = 0; c < chunks; ++c) {
    dw += partials[(2 * c) * a.cols + j];
    db += partials[(2 * c + 1) * a.cols + j];
  }
  a.d_weight[j] = static_cast<T>(static_cast<double>(a.d_weight[j]) + dw);
  a.d_bias[j] = static_cast<T>(static_cast<double>(a.d_bias[j]) + db);
}

}  // namespace cpc::cuda_body
