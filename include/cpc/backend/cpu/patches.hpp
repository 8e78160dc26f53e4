#pragma once
/// cpu kernels of the patch ops (backend/op/patches.hpp): one task per image (extraction) or per
/// block of 64 patches (pooling). Each output element is written by one task in a fixed order,
/// so results do not depend on the thread count.
#include <algorithm>
#include <cstddef>

#include "cpc/backend/op/patches.hpp"
#include "cpc/backend/tags.hpp"
#include "cpc/core/threads.hpp"

namespace cpc::ops {

namespace cpu_detail {
/// Patches per task of the pooling kernels.
inline constexpr std::size_t patch_block = 64;
}  // namespace cpu_detail

/// cpu extract_patches: one task per image; each patch pixel is a copy of C scalars or zeros.
template <class T>
void run(cpu, const extract_patches_args<T>& a) {
  const std::size_t H = a.height, W = a.width, C = a.channels, P = a.size;
  parallel_for(0, a.batch, [&](std::size_t b) {
    const T* img = a.images + b * H * W * C;
    for (std::size_t r = 0; r < a.rows; ++r)
      for (std::size_t c = 0; c < a.cols; ++c) {
        T* out = a.patches + ((b * a.rows + r) * a.cols + c) * P * P * C;
        for (std::size_t u = 0; u < P; ++u) {
          const auto y =
              static_cast<std::ptrdiff_t>(r * a.stride + u) - static_cast<std::ptrdiff_t>(a.padding);
          for (std::size_t v = 0; v < P; ++v, out += C) {
            const auto x =
                static_cast<std::ptrdiff_t>(c * a.stride + v) - static_cast<std::ptrdiff_t>(a.padding);
            if (y < 0 || x < 0 || y >= static_cast<std::ptrdiff_t>(H) || x >= static_cast<std::ptrdiff_t>(W))
              std::fill(out, out + C, T(0));
            else
              std::copy_n(img + (static_cast<std::size_t>(y) * W + static_cast<std::size_t>(x)) * C, C, out);
          }
        }
      }
  });
}

/// cpu patch_mean_pool: per patch, sums over pixels in order in T, then multiplies by 1 / pixels.
template <class T>
void run(cpu, const patch_mean_pool_args<T>& a) {
  const std::size_t N = a.patches, Q = a.pixels, C = a.channels, block = cpu_detail::patch_block;
  const T inv = T(1) / static_cast<T>(Q);
  parallel_for(0, (N + block - 1) / block, [&](std::size_t blk) {
    for (std::size_t n = blk * block; n < std::min(N, (blk + 1) * block); ++n) {
      T* out = a.y + n * C;
      std::fill(out, out + C, T(0));
      const T* x = a.x + n * Q * C;
      for (std::size_t q = 0; q < Q; ++q)
        for (std::size_t c = 0; c < C; ++c) out[c] += x[q * C + c];
      for (std::size_t c = 0; c < C; ++c) out[c] *= inv;
    }
  });
}

/// cpu patch_mean_pool_backward: dx = dy * (1 / pixels), broadcast over pixels.
template <class T>
void run(cpu, const patch_mean_pool_backward_args<T>& a) {
  const std::size_t N = a.patches, Q = a.pixels, C = a.channels, block = cpu_detail::patch_block;
  const T inv = T(1) / static_cast<T>(Q);
  parallel_for(0, (N + block - 1) / block, [&](std::size_t blk) {
    for (std::size_t n = blk * block; n < std::min(N, (blk + 1) * block); ++n)
      for (std::size_t q = 0; q < Q; ++q)
        for (std::size_t c = 0; c < C; ++c) a.dx[(n * Q + q) * C + c] = a.dy[n * C + c] * inv;
  });
}

}  // namespace cpc::ops
