#pragma once
/// cpu kernels of the normalisation ops (backend/op/norm.hpp), moved unchanged from the former
/// `cpc::layer_norm` layer: Eigen row expressions, blocks of 64 rows per task for the per-row
/// work, blocks of 64 channels per task for the parameter gradients (each task sums every row in
/// order, so the result does not depend on the thread count).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <utility>

#include <Eigen/Core>

#include "cpc/backend/op/norm.hpp"
#include "cpc/backend/tags.hpp"
#include "cpc/core/memory.hpp"
#include "cpc/core/threads.hpp"

namespace cpc::ops {

/// cpu scratch of `layer_norm_backward`: per-row mean and 1/sqrt(var + eps), `[rows]` each.
template <class T>
struct layer_norm_workspace<cpu, T> {
  host_buffer<T> mean, rstd;
};

namespace cpu_detail {

/// The cpu layer norm over rows of `cols` scalars.
template <class T>
struct layer_norm_kernel {
  using row_array = Eigen::Array<T, 1, Eigen::Dynamic>;
  using row_map = Eigen::Map<const row_array>;
  static constexpr std::size_t row_block = 64;      // frames per task
  static constexpr std::size_t channel_block = 64;  // channels per task in d weight / d bias

  std::ptrdiff_t width;  ///< scalars per row (C)
  double eps;            ///< variance floor

  /// Mean and 1/sqrt(var + eps) of one frame (biased variance, two passes for accuracy).
  std::pair<T, T> stats(const T* xr) const {
    const row_map xv(xr, width);
    const T mean = xv.mean();
    const T var = (xv - mean).square().mean();
    return {mean, T(1) / std::sqrt(var + static_cast<T>(eps))};
  }

  /// y = [relu](layer_norm(x)) for every row (see `layer_norm_forward_args`).
  template <bool Relu>
  void forward_rows(const layer_norm_forward_args<T>& a) const {
    const std::size_t rows = a.rows;
    const std::ptrdiff_t c = width;
    const bool affine = a.weight != nullptr;
    parallel_for(0, (rows + row_block - 1) / row_block, [&](std::size_t blk) {
      const std::size_t end = std::min(rows, (blk + 1) * row_block);
      for (std::size_t r = blk * row_block; r < end; ++r) {
        const T* xr = a.x + r * c;
        const auto [mean, rstd] = stats(xr);
        Eigen::Map<row_array> yv(a.y + r * c, c);
        if (affine)
          yv = (row_map(xr, c) - mean) * rstd * row_map(a.weight, c) + row_map(a.bias, c);
        else
          yv = (row_map(xr, c) - mean) * rstd;
        if constexpr (Relu) yv = yv.max(T(0));
      }
    });
  }

  /// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy' * weight, xhat the normalised
  /// input and dy' = dy (masked by y > 0 with Relu); d weight += sum dy' * xhat, d bias += sum dy'.
  template <bool Relu>
  void backward_rows(const layer_norm_backward_args<T>& a, layer_norm_workspace<cpu, T>& ws) const {
    const std::size_t rows = a.rows;
    const std::ptrdiff_t c = width;
    const bool affine = a.weight != nullptr;
    T* const dx = a.dx;
    ws.mean.resize(rows);
    ws.rstd.resize(rows);
    // Masked output gradient of row r as an Eigen expression.
    auto dy_row = [&](std::size_t r) {
      const row_map d(a.dy + r * c, c);
      if constexpr (Relu)
        return (row_map(a.y + r * c, c) > T(0)).select(d, T(0));
      else
        return d;
    };
    parallel_for(0, (rows + row_block - 1) / row_block, [&](std::size_t blk) {
      const std::size_t end = std::min(rows, (blk + 1) * row_block);
      for (std::size_t r = blk * row_block; r < end; ++r) {
        const T* xr = a.x + r * c;
        const auto [mean, rstd] = stats(xr);
        ws.mean[r] = mean;
        ws.rstd[r] = rstd;
        if (dx == nullptr) continue;
        const auto xhat = (row_map(xr, c) - mean) * rstd;
        // g is built in dx's row, then replaced element by element (no temporaries).
        Eigen::Map<row_array> g(dx + r * c, c);
        g = dy_row(r);
        if (affine) g *= row_map(a.weight, c);
        const T g_mean = g.mean();
        const T gx_mean = (g * xhat).mean();
        g = rstd * (g - g_mean - xhat * gx_mean);
      }
    });
    if (!affine) return;
    // Each task owns a block of channels and sums over all frames in order (deterministic).
    const auto channels = static_cast<std::size_t>(width);
    parallel_for(0, (channels + channel_block - 1) / channel_block, [&](std::size_t blk) {
      const std::size_t c0 = blk * channel_block;
      const auto n_c = static_cast<std::ptrdiff_t>(std::min(channel_block, channels - c0));
      std::array<T, channel_block> dw_buf{}, db_buf{};
      Eigen::Map<row_array> dw(dw_buf.data(), n_c), db(db_buf.data(), n_c);
      for (std::size_t r = 0; r < rows; ++r) {
        const row_map d(a.dy + r * c + c0, n_c);
        const auto xhat = (row_map(a.x + r * c + c0, n_c) - ws.mean[r]) * ws.rstd[r];
        if constexpr (Relu) {
          const auto dm = (row_map(a.y + r * c + c0, n_c) > T(0)).select(d, T(0));
          dw += dm * xhat;
          db += dm;
        } else {
          dw += d * xhat;
          db += d;
        }
      }
      Eigen::Map<row_array>(a.d_weight + c0, n_c) += dw;
      Eigen::Map<row_array>(a.d_bias + c0, n_c) += db;
    });
  }
};

}  // namespace cpu_detail

/// cpu layer_norm_forward: blocks of 64 rows per task, Eigen row expressions.
template <class T>
void run(cpu, const layer_norm_forward_args<T>& a) {
  const cpu_detail::layer_norm_kernel<T> k{static_cast<std::ptrdiff_t>(a.cols), a.eps};
  if (a.relu)
    k.template forward_rows<true>(a);
  else
    k.template forward_rows<false>(a);
}

/// cpu layer_norm_backward: per-row statistics and dx in blocks of 64 rows; d weight and d bias
/// in blocks of 64 channels, each summing every row in order.
template <class T>
void run(cpu, const layer_norm_backward_args<T>& a, layer_norm_workspace<cpu, T>& ws) {
  const cpu_detail::layer_norm_kernel<T> k{static_cast<std::ptrdiff_t>(a.cols), a.eps};
  if (a.relu)
    k.template backward_rows<true>(a, ws);
  else
    k.template backward_rows<false>(a, ws);
}

}  // namespace cpc::ops
