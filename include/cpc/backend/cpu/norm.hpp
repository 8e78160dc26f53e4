#pragma once
/// cpu kernels of the normalisation ops (backend/op/norm.hpp): SIMD row loops (xsimd), blocks of
/// 64 rows per task for the forward pass; the backward pass computes dx and the parameter
/// gradients' partial sums in one pass over blocks of 256 rows per task, then adds the partial
/// sums in block order (fixed blocks, so the result does not depend on the thread count). A row's
/// result depends only on that row (see layer_norm_kernel).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <utility>

#include <xsimd/xsimd.hpp>

#include "cpc/backend/op/norm.hpp"
#include "cpc/backend/tags.hpp"
#include "cpc/core/memory.hpp"
#include "cpc/core/threads.hpp"

namespace cpc::ops {

/// cpu scratch of `layer_norm_backward`: per-row mean and 1/sqrt(var + eps), `[rows]` each, and
/// the per-block partial sums of d weight and d bias, `[blocks, 2, C rounded up to SIMD registers]`.
template <class T>
struct layer_norm_workspace<cpu, T> {
  host_buffer<T> mean, rstd, partial;
};

namespace cpu_detail {

/// The cpu layer norm over rows of `cols` scalars.
///
/// Every sum and element-wise formula runs on SIMD registers with explicit fused multiply-adds in
/// an order fixed by `cols` alone: the last partial register of a row is loaded from a padded copy
/// (padding chosen so that it adds nothing) and goes through the same instructions. So a row's
/// output depends only on that row - not on its position in the buffer, its address alignment or
/// the rows around it - and a channel's parameter gradient only on its column.
template <class T>
struct layer_norm_kernel {
  using V = xsimd::batch<T>;
  static constexpr std::size_t lanes = V::size;
  static constexpr std::size_t row_block = 64;      // frames per task
  static constexpr std::size_t channel_block = 64;  // channels per task adding d weight / d bias
  static constexpr std::size_t grad_block = 256;    // frames per backward task (one partial sum each)

  std::ptrdiff_t width;  ///< scalars per row (C)
  double eps;            ///< variance floor

  /// Elements [i, i + n) of p in one register, n <= lanes; lanes past n hold `fill`.
  static V load(const T* p, std::size_t n, T fill) {
    if (n == lanes) return V::load_unaligned(p);
    alignas(64) std::array<T, lanes> t;
    t.fill(fill);
    std::copy_n(p, n, t.data());
    return V::load_aligned(t.data());
  }

  /// Stores the first n <= lanes lanes of v at p.
  static void store(const V& v, T* p, std::size_t n) {
    if (n == lanes) return v.store_unaligned(p);
    alignas(64) std::array<T, lanes> t;
    v.store_aligned(t.data());
    std::copy_n(t.data(), n, p);
  }

  /// Calls f(i, n) for the registers of a row: i = 0, lanes, ..., n = lanes except for the last.
  template <class F>
  void for_each_register(F&& f) const {
    const auto c = static_cast<std::size_t>(width);
    std::size_t i = 0;
    for (; i + lanes <= c; i += lanes) f(i, lanes);
    if (i < c) f(i, c - i);
  }

  /// N sums over the registers of a row: f(acc, i, n) adds register [i, i + n) of the row into
  /// acc (N registers). Four sets of partial sums take the registers in turn (whole groups of
  /// four), the rest go to the first; then ((0 + 1) + (2 + 3)), reduced across lanes. The order
  /// depends on `width` only.
  template <std::size_t N, class F>
  std::array<T, N> row_sums(F&& f) const {
    const auto c = static_cast<std::size_t>(width);
    std::array<V, N> s0, s1, s2, s3;
    s0.fill(V(T(0)));
    s1 = s2 = s3 = s0;
    std::size_t i = 0;
    for (; i + 4 * lanes <= c; i += 4 * lanes) {
      f(s0, i, lanes);
      f(s1, i + lanes, lanes);
      f(s2, i + 2 * lanes, lanes);
      f(s3, i + 3 * lanes, lanes);
    }
    for (; i + lanes <= c; i += lanes) f(s0, i, lanes);
    if (i < c) f(s0, i, c - i);
    std::array<T, N> out;
    for (std::size_t j = 0; j < N; ++j) out[j] = xsimd::hadd((s0[j] + s1[j]) + (s2[j] + s3[j]));
    return out;
  }

  /// Mean and 1/sqrt(var + eps) of one frame (biased variance, two passes for accuracy).
  std::pair<T, T> stats(const T* xr) const {
    const T n = static_cast<T>(width);
    const T mean = row_sums<1>([&](std::array<V, 1>& acc, std::size_t i, std::size_t k) {
                     acc[0] += load(xr + i, k, T(0));
                   })[0] /
                   n;
    const V m(mean);
    const T var = row_sums<1>([&](std::array<V, 1>& acc, std::size_t i, std::size_t k) {
                    const V d = load(xr + i, k, mean) - m;  // padding: d = 0
                    acc[0] = xsimd::fma(d, d, acc[0]);
                  })[0] /
                  n;
    return {mean, T(1) / std::sqrt(var + static_cast<T>(eps))};
  }

  /// y = [relu](layer_norm(x)) for every row (see `layer_norm_forward_args`).
  template <bool Relu>
  void forward_rows(const layer_norm_forward_args<T>& a) const {
    const std::size_t rows = a.rows;
    const auto c = static_cast<std::size_t>(width);
    const bool affine = a.weight != nullptr;
    parallel_for(0, (rows + row_block - 1) / row_block, [&](std::size_t blk) {
      const std::size_t end = std::min(rows, (blk + 1) * row_block);
      for (std::size_t r = blk * row_block; r < end; ++r) {
        const T* xr = a.x + r * c;
        T* yr = a.y + r * c;
        const std::pair<T, T> st = stats(xr);
        const V m(st.first), s(st.second);
        for_each_register([&](std::size_t i, std::size_t n) {
          V v = (load(xr + i, n, T(0)) - m) * s;
          if (affine) v = xsimd::fma(v, load(a.weight + i, n, T(0)), load(a.bias + i, n, T(0)));
          if constexpr (Relu)
            v = xsimd::select(v < V(T(0)), V(T(0)), v);  // NaN stays NaN (as std::max(v, 0))
          store(v, yr + i, n);
        });
      }
    });
  }

  /// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy' * weight, xhat the normalised
  /// input and dy' = dy (masked by y > 0 with Relu); d weight += sum dy' * xhat, d bias += sum dy'.
  /// One pass over the rows: each task takes a block of `grad_block` rows, writes their dx and
  /// sums dy' * xhat and dy' of its rows in order (one lane per channel) into its own partial sums;
  /// then each channel adds the blocks' partial sums in block order to d weight and d bias.
  template <bool Relu>
  void backward_rows(const layer_norm_backward_args<T>& a, layer_norm_workspace<cpu, T>& ws) const {
    const std::size_t rows = a.rows;
    const auto c = static_cast<std::size_t>(width);
    const std::size_t c_pad = (c + lanes - 1) / lanes * lanes, blocks = (rows + grad_block - 1) / grad_block;
    const bool affine = a.weight != nullptr;
    T* const dx = a.dx;
    ws.mean.resize(rows);
    ws.rstd.resize(rows);
    if (affine) ws.partial.resize(blocks * 2 * c_pad);
    // Masked output gradient of elements [i, i + n) of row r (zero past n).
    auto dy_reg = [&](std::size_t r, std::size_t i, std::size_t n) {
      const V d = load(a.dy + r * c + i, n, T(0));
      if constexpr (Relu)
        return xsimd::select(load(a.y + r * c + i, n, T(0)) > V(T(0)), d, V(T(0)));
      else
        return d;
    };
    parallel_for(0, blocks, [&](std::size_t blk) {
      // This block's partial sums of d weight (pw) and d bias (pb); lanes past C stay zero.
      T* const pw = affine ? ws.partial.data() + blk * 2 * c_pad : nullptr;
      T* const pb = affine ? pw + c_pad : nullptr;
      if (affine) std::fill(pw, pw + 2 * c_pad, T(0));
      auto add_partial = [&](std::size_t i, const V& d, const V& xhat) {
        xsimd::fma(d, xhat, V::load_aligned(pw + i)).store_aligned(pw + i);
        (V::load_aligned(pb + i) + d).store_aligned(pb + i);
      };
      const std::size_t end = std::min(rows, (blk + 1) * grad_block);
      for (std::size_t r = blk * grad_block; r < end; ++r) {
        const T* xr = a.x + r * c;
        // Not a structured binding: clang < 16 cannot capture one in the lambdas below.
        const std::pair<T, T> st = stats(xr);
        const T mean = st.first, rstd = st.second;
        ws.mean[r] = mean;
        ws.rstd[r] = rstd;
        const V m(mean), s(rstd);
        if (dx == nullptr) {
          if (!affine) continue;
          for_each_register([&](std::size_t i, std::size_t n) {
            add_partial(i, dy_reg(r, i, n), (load(xr + i, n, mean) - m) * s);  // padding: xhat = 0
          });
          continue;
        }
        // g is built in dx's row (one pass for both of its sums), then replaced element by element.
        T* gr = dx + r * c;
        const auto sums = row_sums<2>([&](std::array<V, 2>& acc, std::size_t i, std::size_t n) {
          V g = dy_reg(r, i, n);
          const V xhat = (load(xr + i, n, mean) - m) * s;  // padding: xhat = 0
          if (affine) {
            add_partial(i, g, xhat);
            g *= load(a.weight + i, n, T(0));
          }
          acc[0] += g;
          acc[1] = xsimd::fma(g, xhat, acc[1]);
          store(g, gr + i, n);
        });
        const T n_c = static_cast<T>(width);
        const V g_mean(sums[0] / n_c), gx_mean(sums[1] / n_c);
        for_each_register([&](std::size_t i, std::size_t n) {
          const V xhat = (load(xr + i, n, mean) - m) * s;
          const V g = load(gr + i, n, T(0));
          store(s * xsimd::fnma(xhat, gx_mean, g - g_mean), gr + i, n);
        });
      }
    });
    if (!affine) return;
    // Each task owns a block of channels and adds the row blocks' partial sums in block order.
    static_assert(channel_block % lanes == 0, "channel_block must be a whole number of SIMD registers");
    parallel_for(0, (c + channel_block - 1) / channel_block, [&](std::size_t cb) {
      const std::size_t c0 = cb * channel_block, c1 = std::min(c, c0 + channel_block);
      for (std::size_t i = c0; i < c1; i += lanes) {
        const std::size_t n = std::min(lanes, c1 - i);
        V dw(T(0)), db(T(0));
        for (std::size_t blk = 0; blk < blocks; ++blk) {
          dw += V::load_aligned(ws.partial.data() + blk * 2 * c_pad + i);
          db += V::load_aligned(ws.partial.data() + blk * 2 * c_pad + c_pad + i);
        }
        store(load(a.d_weight + i, n, T(0)) + dw, a.d_weight + i, n);
        store(load(a.d_bias + i, n, T(0)) + db, a.d_bias + i, n);
      }
    });
  }
};

}  // namespace cpu_detail

/// cpu layer_norm_forward: blocks of 64 rows per task, SIMD row loops.
template <class T>
void run(cpu, const layer_norm_forward_args<T>& a) {
  const cpu_detail::layer_norm_kernel<T> k{static_cast<std::ptrdiff_t>(a.cols), a.eps};
  if (a.relu)
    k.template forward_rows<true>(a);
  else
    k.template forward_rows<false>(a);
}

/// cpu layer_norm_backward: per-row statistics, dx and partial sums of d weight and d bias in
/// blocks of 256 rows, then the partial sums added in block order (blocks of 64 channels).
template <class T>
void run(cpu, const layer_norm_backward_args<T>& a, layer_norm_workspace<cpu, T>& ws) {
  const cpu_detail::layer_norm_kernel<T> k{static_cast<std::ptrdiff_t>(a.cols), a.eps};
  if (a.relu)
    k.template backward_rows<true>(a, ws);
  else
    k.template backward_rows<false>(a, ws);
}

}  // namespace cpc::ops
