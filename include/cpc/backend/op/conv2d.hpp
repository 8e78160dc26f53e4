#pragma once
/// 2-D convolution ops on channel-last images (NHWC): forward, backward (weight, bias and input
/// gradients in one call) and the kernel-row mask of PixelCNN's masked convolution. Every op takes
/// raw pointers into memory of its backend and is dispatched on the backend tag alone
/// (backend/dispatch.hpp). Source: torch.nn.Conv2d (weight layout `[C_out, C_in, k, k]`, zero
/// padding on all four sides), applied to NHWC tensors; PixelCNN masks (van den Oord et al. 2016,
/// "Pixel Recurrent Neural Networks", section 3.4).
#include <cstddef>

#include "cpc/backend/dispatch.hpp"

namespace cpc::ops {

/// Geometry of a square-kernel 2-D convolution with `padding` zeros on every side:
///   y[b, i, j, o] = bias[o] + sum_{c, u, v} weight[o, c, u, v] * x[b, i*stride + u - padding, j*stride + v -
///   padding, c]
/// (x is 0 outside the image). Contract: kernel, stride > 0 and height, width + 2*padding >= kernel.
struct conv2d_shape {
  std::size_t batch = 0;         ///< images
  std::size_t height = 0;        ///< input rows H
  std::size_t width = 0;         ///< input columns W
  std::size_t in_channels = 0;   ///< C_in
  std::size_t out_channels = 0;  ///< C_out
  std::size_t kernel = 0;        ///< kernel side k
  std::size_t stride = 1;
  std::size_t padding = 0;
  /// Output rows (H + 2*padding - k) / stride + 1.
  std::size_t out_height() const { return (height + 2 * padding - kernel) / stride + 1; }
  /// Output columns (W + 2*padding - k) / stride + 1.
  std::size_t out_width() const { return (width + 2 * padding - kernel) / stride + 1; }
  /// Scalars of one receptive field, k * k * C_in.
  std::size_t window() const { return kernel * kernel * in_channels; }
};

/// Arguments of `conv2d_forward` (all arrays contiguous, row-major).
template <class T>
struct conv2d_forward_args {
  conv2d_shape shape;
  const T* x = nullptr;       ///< `[batch, H, W, C_in]`
  const T* weight = nullptr;  ///< `[C_out, C_in, k, k]`
  const T* bias = nullptr;    ///< `[C_out]`, or null for no bias
  T* y = nullptr;             ///< `[batch, H_out, W_out, C_out]`, overwritten
};

/// Arguments of `conv2d_backward` (all arrays contiguous, row-major), for dy = d loss / d y.
template <class T>
struct conv2d_backward_args {
  conv2d_shape shape;
  const T* x = nullptr;       ///< `[batch, H, W, C_in]`, the forward input
  const T* weight = nullptr;  ///< `[C_out, C_in, k, k]`
  const T* dy = nullptr;      ///< `[batch, H_out, W_out, C_out]`
  T* dweight = nullptr;       ///< `[C_out, C_in, k, k]`, accumulated (+=)
  T* dbias = nullptr;         ///< `[C_out]`, accumulated (+=); null: no bias gradient
  T* dx = nullptr;            ///< `[batch, H, W, C_in]`, overwritten; null: not computed
};

/// Reusable scratch of the conv2d ops on a backend (cpu: the im2col matrix, the reordered weight
/// and the partial weight gradients). Owned by the caller (a layer keeps one), so steady-state
/// calls allocate nothing. Empty on backends that need none.
template <class Backend, class T>
struct conv2d_workspace {};

/// y = conv(x) + bias (see `conv2d_shape`, `conv2d_forward_args`). Results do not depend on the
/// thread count, and an image's outputs do not depend on the other images of the batch.
/// Errors: none (sizes are the caller's contract).
template <class Backend, class T>
void conv2d_forward(const conv2d_forward_args<T>& args, conv2d_workspace<Backend, T>& ws) {
  CPC_DISPATCH("conv2d_forward", Backend, args, ws);
}

/// dweight += sum_{b,i,j} dy[b,i,j,o] x[b, i*s+u-p, j*s+v-p, c]; dbias += sum_{b,i,j} dy[b,i,j,:];
/// dx = the transpose convolution of dy (see `conv2d_backward_args`). Deterministic: the
/// summation order is fixed per backend and does not depend on the thread count.
/// Errors: none (sizes are the caller's contract).
template <class Backend, class T>
void conv2d_backward(const conv2d_backward_args<T>& args, conv2d_workspace<Backend, T>& ws) {
  CPC_DISPATCH("conv2d_backward", Backend, args, ws);
}

/// Arguments of `zero_kernel_rows`: w holds `slices` kernels `[kernel, kernel]` (a conv2d weight
/// `[C_out, C_in, k, k]` has slices = C_out * C_in).
template <class T>
struct zero_kernel_rows_args {
  std::size_t slices = 0;
  std::size_t kernel = 0;
  std::size_t keep_rows = 0;  ///< rows 0 .. keep_rows - 1 of each kernel are kept
  T* w = nullptr;             ///< `[slices, kernel, kernel]`
};

/// w[s, u, v] = 0 for u >= keep_rows (PixelCNN's mask: keep_rows = kernel / 2 + 1 keeps the centre
/// row and the rows above it).
template <class Backend, class T>
void zero_kernel_rows(const zero_kernel_rows_args<T>& args) {
  CPC_DISPATCH("zero_kernel_rows", Backend, args);
}

}  // namespace cpc::ops
