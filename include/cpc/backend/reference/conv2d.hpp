#pragma once
/// reference kernels of the conv2d ops (backend/op/conv2d.hpp): the definitions as direct loops
/// over output pixels, kernel taps and channels, accumulating in double, one thread. The oracle
/// that tests compare every backend against.
#include <cstddef>
#include <vector>

#include "cpc/backend/op/conv2d.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc::ops {

namespace reference_detail {
/// Input row (or column) i*stride + u - padding of output index i and tap u, or -1 outside [0, extent).
inline std::ptrdiff_t conv2d_tap(const conv2d_shape& s, std::size_t i, std::size_t u, std::size_t extent) {
  const auto r = static_cast<std::ptrdiff_t>(i * s.stride + u) - static_cast<std::ptrdiff_t>(s.padding);
  return r >= 0 && r < static_cast<std::ptrdiff_t>(extent) ? r : -1;
}
}  // namespace reference_detail

/// reference conv2d_forward: y[b,i,j,o] = bias[o] + sum_{c,u,v} w[o,c,u,v] x[b, i*s+u-p, j*s+v-p, c]
/// in double, taps outside the image skipped.
template <class T>
void run(reference, const conv2d_forward_args<T>& a, conv2d_workspace<reference, T>&) {
  const conv2d_shape& s = a.shape;
  const std::size_t ho = s.out_height(), wo = s.out_width(), k = s.kernel;
  const std::size_t ci = s.in_channels, co = s.out_channels;
  for (std::size_t b = 0; b < s.batch; ++b)
    for (std::size_t i = 0; i < ho; ++i)
      for (std::size_t j = 0; j < wo; ++j)
        for (std::size_t o = 0; o < co; ++o) {
          double sum = a.bias != nullptr ? static_cast<double>(a.bias[o]) : 0.0;
          for (std::size_t c = 0; c < ci; ++c)
            for (std::size_t u = 0; u < k; ++u) {
              const std::ptrdiff_t r = reference_detail::conv2d_tap(s, i, u, s.height);
              if (r < 0) continue;
              for (std::size_t v = 0; v < k; ++v) {
                const std::ptrdiff_t q = reference_detail::conv2d_tap(s, j, v, s.width);
                if (q < 0) continue;
                const std::size_t xi =
                    ((b * s.height + static_cast<std::size_t>(r)) * s.width + static_cast<std::size_t>(q)) *
                        ci +
                    c;
                sum += static_cast<double>(a.weight[((o * ci + c) * k + u) * k + v]) *
                       static_cast<double>(a.x[xi]);
              }
            }
          a.y[((b * ho + i) * wo + j) * co + o] = static_cast<T>(sum);
        }
}

/// reference conv2d_backward: every gradient summed in double over (b, i, j) in order; dx gathers
/// dy[b,i,j,o] w[o,c,u,v] over every (i, j, u, v, o) that reads input pixel (r, q).
template <class T>
void run(reference, const conv2d_backward_args<T>& a, conv2d_workspace<reference, T>&) {
  const conv2d_shape& s = a.shape;
  const std::size_t ho = s.out_height(), wo = s.out_width(), k = s.kernel;
  const std::size_t ci = s.in_channels, co = s.out_channels;
  auto dy = [&](std::size_t b, std::size_t i, std::size_t j, std::size_t o) {
    return static_cast<double>(a.dy[((b * ho + i) * wo + j) * co + o]);
  };
  if (a.dbias != nullptr)
    for (std::size_t o = 0; o < co; ++o) {
      double sum = 0;
      for (std::size_t b = 0; b < s.batch; ++b)
        for (std::size_t i = 0; i < ho; ++i)
          for (std::size_t j = 0; j < wo; ++j) sum += dy(b, i, j, o);
      a.dbias[o] = static_cast<T>(static_cast<double>(a.dbias[o]) + sum);
    }
  for (std::size_t o = 0; o < co; ++o)
    for (std::size_t c = 0; c < ci; ++c)
      for (std::size_t u = 0; u < k; ++u)
        for (std::size_t v = 0; v < k; ++v) {
          double sum = 0;
          for (std::size_t b = 0; b < s.batch; ++b)
            for (std::size_t i = 0; i < ho; ++i) {
              const std::ptrdiff_t r = reference_detail::conv2d_tap(s, i, u, s.height);
              if (r < 0) continue;
              for (std::size_t j = 0; j < wo; ++j) {
                const std::ptrdiff_t q = reference_detail::conv2d_tap(s, j, v, s.width);
                if (q < 0) continue;
                const std::size_t xi =
                    ((b * s.height + static_cast<std::size_t>(r)) * s.width + static_cast<std::size_t>(q)) *
                        ci +
                    c;
                sum += dy(b, i, j, o) * static_cast<double>(a.x[xi]);
              }
            }
          T& dw = a.dweight[((o * ci + c) * k + u) * k + v];
          dw = static_cast<T>(static_cast<double>(dw) + sum);
        }
  if (a.dx == nullptr) return;
  std::vector<double> dx(s.batch * s.height * s.width * ci, 0.0);
  for (std::size_t b = 0; b < s.batch; ++b)
    for (std::size_t i = 0; i < ho; ++i)
      for (std::size_t j = 0; j < wo; ++j)
        for (std::size_t u = 0; u < k; ++u) {
          const std::ptrdiff_t r = reference_detail::conv2d_tap(s, i, u, s.height);
          if (r < 0) continue;
          for (std::size_t v = 0; v < k; ++v) {
            const std::ptrdiff_t q = reference_detail::conv2d_tap(s, j, v, s.width);
            if (q < 0) continue;
            double* d =
                dx.data() +
                ((b * s.height + static_cast<std::size_t>(r)) * s.width + static_cast<std::size_t>(q)) * ci;
            for (std::size_t c = 0; c < ci; ++c)
              for (std::size_t o = 0; o < co; ++o)
                d[c] += dy(b, i, j, o) * static_cast<double>(a.weight[((o * ci + c) * k + u) * k + v]);
          }
        }
  for (std::size_t n = 0; n < dx.size(); ++n) a.dx[n] = static_cast<T>(dx[n]);
}

/// reference zero_kernel_rows.
template <class T>
void run(reference, const zero_kernel_rows_args<T>& a) {
  for (std::size_t s = 0; s < a.slices; ++s)
    for (std::size_t u = a.keep_rows; u < a.kernel; ++u)
      for (std::size_t v = 0; v < a.kernel; ++v) a.w[(s * a.kernel + u) * a.kernel + v] = T(0);
}

}  // namespace cpc::ops
