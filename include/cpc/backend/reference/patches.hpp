#pragma once
/// reference kernels of the patch ops (backend/op/patches.hpp): the definitions as plain loops,
/// means accumulated in double, one thread. The oracle that tests compare every backend against.
#include <cstddef>

#include "cpc/backend/op/patches.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc::ops {

/// reference extract_patches: every patch element read from its padded image position.
template <class T>
void run(reference, const extract_patches_args<T>& a) {
  for (std::size_t b = 0; b < a.batch; ++b)
    for (std::size_t r = 0; r < a.rows; ++r)
      for (std::size_t c = 0; c < a.cols; ++c)
        for (std::size_t u = 0; u < a.size; ++u)
          for (std::size_t v = 0; v < a.size; ++v)
            for (std::size_t ch = 0; ch < a.channels; ++ch) {
              const auto y =
                  static_cast<std::ptrdiff_t>(r * a.stride + u) - static_cast<std::ptrdiff_t>(a.padding);
              const auto x =
                  static_cast<std::ptrdiff_t>(c * a.stride + v) - static_cast<std::ptrdiff_t>(a.padding);
              const bool inside = y >= 0 && x >= 0 && y < static_cast<std::ptrdiff_t>(a.height) &&
                                  x < static_cast<std::ptrdiff_t>(a.width);
              a.patches[((((b * a.rows + r) * a.cols + c) * a.size + u) * a.size + v) * a.channels + ch] =
                  inside ? a.images[((b * a.height + static_cast<std::size_t>(y)) * a.width +
                                     static_cast<std::size_t>(x)) *
                                        a.channels +
                                    ch]
                         : T(0);
            }
}

/// reference patch_mean_pool: each mean summed in double over pixels in order, then divided.
template <class T>
void run(reference, const patch_mean_pool_args<T>& a) {
  for (std::size_t n = 0; n < a.patches; ++n)
    for (std::size_t c = 0; c < a.channels; ++c) {
      double sum = 0;
      for (std::size_t q = 0; q < a.pixels; ++q)
        sum += static_cast<double>(a.x[(n * a.pixels + q) * a.channels + c]);
      a.y[n * a.channels + c] = static_cast<T>(sum / static_cast<double>(a.pixels));
    }
}

/// reference patch_mean_pool_backward: dx[n, q, c] = dy[n, c] / pixels in double.
template <class T>
void run(reference, const patch_mean_pool_backward_args<T>& a) {
  for (std::size_t n = 0; n < a.patches; ++n)
    for (std::size_t q = 0; q < a.pixels; ++q)
      for (std::size_t c = 0; c < a.channels; ++c)
        a.dx[(n * a.pixels + q) * a.channels + c] =
            static_cast<T>(static_cast<double>(a.dy[n * a.channels + c]) / static_cast<double>(a.pixels));
}

}  // namespace cpc::ops
