#pragma once
/// Bodies of the CUDA backend's 1-D convolution ops (backend/op/conv1d.hpp), written once for
/// device and host. The convolutions run as cuBLAS GEMMs on an im2col matrix (backend/cuda/conv1d.cuh):
///   col[(b, t), c * kernel + k] = x[b, t * stride + k - padding, c]   (0 in the padding),
/// `[batch * t_out, c_in * kernel]`, whose column order matches the weight `[c_out, c_in, kernel]`, so
///   y = col W^T (+ bias),   d W += dy^T col,   d col = dy W,
/// and dx is the col2im gather of d col (each dx element sums the taps that read it, in double).
#include <cstddef>

#include "cpc/backend/cuda/hd.hpp"
#include "cpc/backend/op/conv1d.hpp"

namespace cpc::cuda_body {

/// Output frames of `s` ((t_in + 2 padding - kernel) / stride + 1), usable on the device.
CPC_HD inline std::size_t conv1d_t_out(const ops::conv1d_shape& s) {
  return (s.t_in + 2 * s.padding - s.kernel) / s.stride + 1;
}

/// Element i of the im2col matrix `[batch * t_out, c_in * kernel]` (row-major) of input x.
template <class T>
CPC_HD T conv1d_im2col_element(const ops::conv1d_shape& s, const T* x, std::size_t i) {
  const std::size_t width = s.c_in * s.kernel, row = i / width, col = i % width;
  const std::size_t t_out = conv1d_t_out(s), b = row / t_out, t = row % t_out;
  const std::size_t c = col / s.kernel, k = col % s.kernel;
  const std::size_t u = t * s.stride + k;  // frame in the padded input
  if (u < s.padding || u - s.padding >= s.t_in) return T(0);
  return x[(b * s.t_in + (u - s.padding)) * s.c_in + c];
}

/// Element i = (b * t_in + u) * c_in + c of dx: the sum over taps k (of the output t with
/// t * stride + k - padding = u) of dcol[(b, t), c * kernel + k], in double; 0 where no window reads u.
template <class T>
CPC_HD T conv1d_col2im_element(const ops::conv1d_shape& s, const T* dcol, std::size_t i) {
  const std::size_t c = i % s.c_in, u = (i / s.c_in) % s.t_in, b = i / (s.c_in * s.t_in);
  const std::size_t t_out = conv1d_t_out(s), width = s.c_in * s.kernel;
  double acc = 0;
  for (std::size_t k = 0; k < s.kernel; ++k) {
    const std::size_t num = u + s.padding;  // t * stride + k = u + padding
    if (num < k || (num - k) % s.stride != 0) continue;
    const std::size_t t = (num - k) / s.stride;
    if (t >= t_out) continue;
    acc += static_cast<double>(dcol[(b * t_out + t) * width + c * s.kernel + k]);
  }
  return static_cast<T>(acc);
}

}  // namespace cpc::cuda_body
