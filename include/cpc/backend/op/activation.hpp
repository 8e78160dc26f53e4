#pragma once
/// Element-wise activation ops (ReLU forward and backward) over flat arrays. Every op takes raw
/// pointers into memory of its backend and is dispatched on the backend tag alone
/// (backend/dispatch.hpp). Source: torch.nn.ReLU (gradient 0 at x == 0).
#include <cstddef>

#include "cpc/backend/dispatch.hpp"

namespace cpc::ops {

/// Arguments of `relu_forward`: y[i] = max(x[i], 0) for i < n (y overwritten; y may equal x).
template <class T>
struct relu_forward_args {
  std::size_t n = 0;
  const T* x = nullptr;
  T* y = nullptr;
};

/// Arguments of `relu_backward`: dx[i] = dy[i] where y[i] > 0, else 0, for i < n (dx overwritten;
/// y is the forward output, so the gradient at x == 0 is 0 as in PyTorch).
template <class T>
struct relu_backward_args {
  std::size_t n = 0;
  const T* y = nullptr;
  const T* dy = nullptr;
  T* dx = nullptr;
};

/// y = max(x, 0) element-wise (see `relu_forward_args`). Errors: none.
template <class Backend, class T>
void relu_forward(const relu_forward_args<T>& args) {
  CPC_DISPATCH("relu_forward", Backend, args);
}

/// dx = dy * (y > 0) element-wise (see `relu_backward_args`). Errors: none.
template <class Backend, class T>
void relu_backward(const relu_backward_args<T>& args) {
  CPC_DISPATCH("relu_backward", Backend, args);
}

/// Arguments of `add_where_positive`: y[i] += (gate[i] > 0 ? x[i] : 0) for i < n.
template <class T>
struct add_where_positive_args {
  std::size_t n = 0;
  const T* gate = nullptr;  ///< e.g. a ReLU's output: its gradient passes where gate > 0
  const T* x = nullptr;     ///< e.g. the gradient at the ReLU's output
  T* y = nullptr;           ///< accumulated
};

/// y += x where gate > 0 (the backward of a ReLU, added to a residual gradient). Errors: none.
template <class Backend, class T>
void add_where_positive(const add_where_positive_args<T>& args) {
  CPC_DISPATCH("add_where_positive", Backend, args);
}

}  // namespace cpc::ops
