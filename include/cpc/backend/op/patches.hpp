#pragma once
/// Patch ops of the image encoder (van den Oord et al. 2018, section 3.2): cutting images into a
/// grid of overlapping square patches, and the mean over each patch's pixels that turns a patch's
/// feature map into its latent vector (and its backward). Every op takes raw pointers into memory
/// of its backend and is dispatched on the backend tag alone (backend/dispatch.hpp).
#include <cstddef>

#include "cpc/backend/dispatch.hpp"

namespace cpc::ops {

/// Arguments of `extract_patches`. The image is zero-padded by `padding` pixels on every side;
/// patch (r, c) covers padded rows [r*stride, r*stride + size) and columns [c*stride, c*stride + size):
///   patches[(b * rows + r) * cols + c, u, v, ch] = images[b, r*stride + u - padding, c*stride + v - padding,
///   ch]
/// (0 outside the image). Contract: rows, cols are the grid's extents for height, width
/// (`cpc::patch_grid::count`); any rows, cols that keep every patch inside the padded image are valid.
template <class T>
struct extract_patches_args {
  std::size_t batch = 0, height = 0, width = 0, channels = 0;
  std::size_t size = 0, stride = 1, padding = 0;  ///< patch side, step and image padding (pixels)
  std::size_t rows = 0, cols = 0;                 ///< patch grid extents
  const T* images = nullptr;                      ///< `[batch, height, width, channels]`
  T* patches = nullptr;  ///< `[batch * rows * cols, size, size, channels]`, overwritten
};

/// Cuts images into patches (see `extract_patches_args`). Errors: none (sizes are the caller's contract).
template <class Backend, class T>
void extract_patches(const extract_patches_args<T>& args) {
  CPC_DISPATCH("extract_patches", Backend, args);
}

/// Arguments of `patch_mean_pool`: `patches` feature maps of `pixels` pixels and `channels` channels.
template <class T>
struct patch_mean_pool_args {
  std::size_t patches = 0, pixels = 0, channels = 0;
  const T* x = nullptr;  ///< the maps `[patches, pixels, channels]`
  T* y = nullptr;        ///< the means `[patches, channels]`, overwritten
};

/// y[n, c] = (1 / pixels) sum_q x[n, q, c] (mean pooling over each patch's pixels).
/// Contract: pixels > 0. Errors: none.
template <class Backend, class T>
void patch_mean_pool(const patch_mean_pool_args<T>& args) {
  CPC_DISPATCH("patch_mean_pool", Backend, args);
}

/// Arguments of `patch_mean_pool_backward` (shapes as in `patch_mean_pool_args`).
template <class T>
struct patch_mean_pool_backward_args {
  std::size_t patches = 0, pixels = 0, channels = 0;
  const T* dy = nullptr;  ///< d loss / d means `[patches, channels]`
  T* dx = nullptr;        ///< d loss / d maps `[patches, pixels, channels]`, overwritten
};

/// Backward of `patch_mean_pool`: dx[n, q, c] = dy[n, c] / pixels for every pixel q.
/// Contract: pixels > 0. Errors: none.
template <class Backend, class T>
void patch_mean_pool_backward(const patch_mean_pool_backward_args<T>& args) {
  CPC_DISPATCH("patch_mean_pool_backward", Backend, args);
}

}  // namespace cpc::ops
