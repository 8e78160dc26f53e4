#pragma once
/// Bodies of the CUDA backend's 2-D convolution and patch ops (backend/op/conv2d.hpp,
/// backend/op/patches.hpp), written once for device and host. The convolution runs as cuBLAS GEMMs
/// on an im2col matrix (backend/cuda/conv2d.cuh), as conv1d does:
///   col[(b, i, j), (c * k + u) * k + v] = x[b, i * stride + u - padding, j * stride + v - padding, c]
/// (0 outside the image), `[batch * H_out * W_out, C_in * k * k]`, whose column order matches the
/// weight `[C_out, C_in, k, k]`; dx is the col2im gather of d col in double. The patch ops are one
/// element each; the means and their gradients in double, as backend/reference/patches.hpp.
#include <cstddef>

#include "cpc/backend/cuda/hd.hpp"
#include "cpc/backend/op/conv2d.hpp"
#include "cpc/backend/op/patches.hpp"

namespace cpc::cuda_body {

/// Output rows and columns of `s`, usable on the device.
CPC_HD inline std::size_t conv2d_out_height(const ops::conv2d_shape& s) {
  return (s.height + 2 * s.padding - s.kernel) / s.stride + 1;
}
CPC_HD inline std::size_t conv2d_out_width(const ops::conv2d_shape& s) {
  return (s.width + 2 * s.padding - s.kernel) / s.stride + 1;
}

/// Element i of the im2col matrix of images x `[batch, H, W, C_in]`.
template <class T>
CPC_HD T conv2d_im2col_element(const ops::conv2d_shape& s, const T* x, std::size_t i) {
  const std::size_t k = s.kernel, width = s.in_channels * k * k, row = i / width, col = i % width;
  const std::size_t ho = conv2d_out_height(s), wo = conv2d_out_width(s);
  const std::size_t b = row / (ho * wo), oi = (row / wo) % ho, oj = row % wo;
  const std::size_t c = col / (k * k), u = (col / k) % k, v = col % k;
  const std::size_t r = oi * s.stride + u, q = oj * s.stride + v;  // in the padded image
  if (r < s.padding || q < s.padding || r - s.padding >= s.height || q - s.padding >= s.width) return T(0);
  return x[((b * s.height + (r - s.padding)) * s.width + (q - s.padding)) * s.in_channels + c];
}

/// Element i = ((b * H + r) * W + q) * C_in + c of dx: the sum over the taps (u, v) of the outputs
/// (oi, oj) that read pixel (r, q) of dcol[(b, oi, oj), (c * k + u) * k + v], in double.
template <class T>
CPC_HD T conv2d_col2im_element(const ops::conv2d_shape& s, const T* dcol, std::size_t i) {
  const std::size_t ci = s.in_channels, c = i % ci, q = (i / ci) % s.width,
                    r = (i / (ci * s.width)) % s.height, b = i / (ci * s.width * s.height);
  const std::size_t k = s.kernel, ho = conv2d_out_height(s), wo = conv2d_out_width(s), width = ci * k * k;
  double acc = 0;
  for (std::size_t u = 0; u < k; ++u) {
    const std::size_t nr = r + s.padding;  // oi * stride + u = r + padding
    if (nr < u || (nr - u) % s.stride != 0 || (nr - u) / s.stride >= ho) continue;
    const std::size_t oi = (nr - u) / s.stride;
    for (std::size_t v = 0; v < k; ++v) {
      const std::size_t nq = q + s.padding;
      if (nq < v || (nq - v) % s.stride != 0 || (nq - v) / s.stride >= wo) continue;
      const std::size_t oj = (nq - v) / s.stride;
      acc += static_cast<double>(dcol[((b * ho + oi) * wo + oj) * width + (c * k + u) * k + v]);
    }
  }
  return static_cast<T>(acc);
}

/// zero_kernel_rows, element i of the `slices * (kernel - keep_rows) * kernel` zeroed entries.
template <class T>
CPC_HD void element(const ops::zero_kernel_rows_args<T>& a, std::size_t i) {
  const std::size_t rows = a.kernel - a.keep_rows, v = i % a.kernel, u = a.keep_rows + (i / a.kernel) % rows,
                    sl = i / (a.kernel * rows);
  a.w[(sl * a.kernel + u) * a.kernel + v] = T(0);
}

/// extract_patches, element i of the patches `[batch * rows * cols, size, size, channels]`.
template <class T>
CPC_HD void element(const ops::extract_patches_args<T>& a, std::size_t i) {
  const std::size_t ch = i % a.channels, v = (i / a.channels) % a.size,
                    u = (i / (a.channels * a.size)) % a.size, patch = i / (a.channels * a.size * a.size);
  const std::size_t c = patch % a.cols, r = (patch / a.cols) % a.rows, b = patch / (a.cols * a.rows);
  const std::size_t y = r * a.stride + u, x = c * a.stride + v;  // in the padded image
  const bool inside = y >= a.padding && x >= a.padding && y - a.padding < a.height && x - a.padding < a.width;
  a.patches[i] =
      inside ? a.images[((b * a.height + (y - a.padding)) * a.width + (x - a.padding)) * a.channels + ch]
             : T(0);
}

/// patch_mean_pool, element i = n * channels + c of y: the mean over the patch's pixels in double.
template <class T>
CPC_HD void element(const ops::patch_mean_pool_args<T>& a, std::size_t i) {
  const std::size_t n = i / a.channels, c = i % a.channels;
  double sum = 0;
  for (std::size_t q = 0; q < a.pixels; ++q)
    sum += static_cast<double>(a.x[(n * a.pixels + q) * a.channels + c]);
  a.y[i] = static_cast<T>(sum / static_cast<double>(a.pixels));
}

/// patch_mean_pool_backward, element i = (n * pixels + q) * channels + c of dx.
template <class T>
CPC_HD void element(const ops::patch_mean_pool_backward_args<T>& a, std::size_t i) {
  const std::size_t c = i % a.channels, n = i / (a.channels * a.pixels);
  a.dx[i] = static_cast<T>(static_cast<double>(a.dy[n * a.channels + c]) / static_cast<double>(a.pixels));
}

}  // namespace cpc::cuda_body
