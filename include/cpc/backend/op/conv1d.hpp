#pragma once
/// 1-D convolution ops over channel-last sequences (the audio encoder's strided convolutions):
/// forward, parameter gradients and input gradient as whole-layer kernels. Every op takes raw
/// pointers into memory of its backend and is dispatched on the backend tag alone
/// (backend/dispatch.hpp). Shapes are in `conv1d_args`; all tensors are dense row-major.
/// Source: torch.nn.Conv1d (weight layout `[C_out, C_in, kernel]`, zero padding at both ends),
/// applied to `[batch, time, channels]` storage.
#include <cstddef>

#include "cpc/backend/dispatch.hpp"

namespace cpc::ops {

/// Geometry of one 1-D convolution call:
///   x  `[batch, t_in, c_in]`, y and dy `[batch, t_out(), c_out]`,
///   weight `[c_out, c_in, kernel]`, bias `[c_out]`,
///   y[b, t, o] = bias[o] + sum_{c, k} weight[o, c, k] * x[b, t * stride + k - padding, c],
/// where x is zero outside [0, t_in). Contract (checked by the layer, not the kernels):
/// every size and the stride are > 0 and t_in + 2 * padding >= kernel.
struct conv1d_shape {
  std::size_t batch = 0, t_in = 0, c_in = 0, c_out = 0, kernel = 0, stride = 1, padding = 0;
  /// Output frames, (t_in + 2 * padding - kernel) / stride + 1 (floor), as PyTorch.
  std::size_t t_out() const { return (t_in + 2 * padding - kernel) / stride + 1; }
};

/// Arguments of `conv1d_forward`: y `[batch, t_out, c_out]` is overwritten (every element).
/// `bias` may be null (no bias term).
template <class T>
struct conv1d_forward_args {
  conv1d_shape shape;
  const T* x = nullptr;
  const T* weight = nullptr;
  const T* bias = nullptr;
  T* y = nullptr;
};

/// Arguments of `conv1d_backward_params`: accumulates
///   d_weight[o, c, k] += sum_{b, t} dy[b, t, o] * x[b, t * stride + k - padding, c]   and
///   d_bias[o] += sum_{b, t} dy[b, t, o]  (skipped when `d_bias` is null).
/// Deterministic: the summation order is fixed per backend and independent of the thread count.
template <class T>
struct conv1d_backward_params_args {
  conv1d_shape shape;
  const T* x = nullptr;
  const T* dy = nullptr;
  T* d_weight = nullptr;
  T* d_bias = nullptr;
};

/// Arguments of `conv1d_backward_input`: overwrites dx `[batch, t_in, c_in]` with
///   dx[b, u, c] = sum over (t, k) with t * stride + k - padding = u of sum_o dy[b, t, o] weight[o, c, k]
/// (zero where no output window covers u).
template <class T>
struct conv1d_backward_input_args {
  conv1d_shape shape;
  const T* dy = nullptr;
  const T* weight = nullptr;
  T* dx = nullptr;
};

/// Reusable scratch of the conv1d ops on a backend (cpu: packed weights, gathered edge windows,
/// gradient staging). One per layer, shared by its three ops, so steady-state calls allocate
/// nothing. Empty on backends that need none.
template <class Backend, class T>
struct conv1d_workspace {};

/// y = conv1d(x) + bias (see `conv1d_forward_args`). Errors: none (sizes are the caller's contract).
template <class Backend, class T>
void conv1d_forward(const conv1d_forward_args<T>& args, conv1d_workspace<Backend, T>& ws) {
  CPC_DISPATCH("conv1d_forward", Backend, args, ws);
}

/// d weight += dy^T im2col(x), d bias += column sums of dy (see `conv1d_backward_params_args`).
template <class Backend, class T>
void conv1d_backward_params(const conv1d_backward_params_args<T>& args, conv1d_workspace<Backend, T>& ws) {
  CPC_DISPATCH("conv1d_backward_params", Backend, args, ws);
}

/// dx = the transposed convolution of dy (see `conv1d_backward_input_args`).
template <class Backend, class T>
void conv1d_backward_input(const conv1d_backward_input_args<T>& args, conv1d_workspace<Backend, T>& ws) {
  CPC_DISPATCH("conv1d_backward_input", Backend, args, ws);
}

}  // namespace cpc::ops
