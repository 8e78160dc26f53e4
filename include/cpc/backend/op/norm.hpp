#pragma once
/// Normalisation ops: layer normalisation over the last dimension of every row, optionally fused
/// with a ReLU (the audio encoder's channel norm + ReLU, the image encoder's pre-activation
/// norms). Every op takes raw pointers into memory of its backend and is dispatched on the backend
/// tag alone (backend/dispatch.hpp). Source: torch.nn.LayerNorm(C) (Ba et al. 2016).
#include <cstddef>

#include "cpc/backend/dispatch.hpp"

namespace cpc::ops {

/// Arguments of `layer_norm_forward`: for each of `rows` rows of `cols` contiguous scalars,
///   y[r, :] = (x[r, :] - mean_r) / sqrt(var_r + eps) * weight + bias    (then max(., 0) if relu)
/// with the mean and the biased variance (divide by cols) of row r. x and y `[rows, cols]`;
/// weight and bias `[cols]`, both null for no affine transform (then y is just normalised).
/// y is overwritten (every element) and may not alias x.
template <class T>
struct layer_norm_forward_args {
  std::size_t rows = 0, cols = 0;
  double eps = 1e-5;
  bool relu = false;
  const T* x = nullptr;
  const T* weight = nullptr;
  const T* bias = nullptr;
  T* y = nullptr;
};

/// Arguments of `layer_norm_backward` (the statistics are recomputed from x):
///   dy' = dy, masked by y > 0 when relu (y is then the forward output; unused otherwise),
///   g = dy' * weight (or dy' without affine),
///   dx[r, :] = rstd_r * (g - mean(g) - xhat * mean(g * xhat))      (overwritten; skipped if dx is null)
///   d_weight += sum_r dy' * xhat,  d_bias += sum_r dy'             (accumulated)
/// with xhat = (x - mean_r) * rstd_r. All row tensors `[rows, cols]`; weight, d_weight, d_bias
/// `[cols]`. Without affine transform weight, d_weight and d_bias are all null; with it, all set.
/// dx may be dy itself (the gradient replaced in place, as the audio encoder does to save a buffer
/// per block); it may not alias x or y, nor overlap dy otherwise.
/// Deterministic: the sums over rows run in a fixed order per backend, independent of threads.
template <class T>
struct layer_norm_backward_args {
  std::size_t rows = 0, cols = 0;
  double eps = 1e-5;
  bool relu = false;
  const T* x = nullptr;
  const T* y = nullptr;
  const T* dy = nullptr;
  const T* weight = nullptr;
  T* dx = nullptr;
  T* d_weight = nullptr;
  T* d_bias = nullptr;
};

/// Reusable scratch of `layer_norm_backward` (cpu: per-row mean and 1/std, `[rows]` each). Owned
/// by the layer. Empty on backends that need none.
template <class Backend, class T>
struct layer_norm_workspace {};

/// y = [relu](layer_norm(x)) (see `layer_norm_forward_args`). Errors: none (sizes are the
/// caller's contract).
template <class Backend, class T>
void layer_norm_forward(const layer_norm_forward_args<T>& args) {
  CPC_DISPATCH("layer_norm_forward", Backend, args);
}

/// Gradients of `layer_norm_forward` (see `layer_norm_backward_args`).
template <class Backend, class T>
void layer_norm_backward(const layer_norm_backward_args<T>& args, layer_norm_workspace<Backend, T>& ws) {
  CPC_DISPATCH("layer_norm_backward", Backend, args, ws);
}

}  // namespace cpc::ops
