#pragma once
/// Element-wise ops of the masked-convolution autoregressor's residual stack: the ReLU between
/// layers and its backward accumulated into the residual gradient. Every op takes raw pointers
/// into memory of its backend and is dispatched on the backend tag alone (backend/dispatch.hpp).
/// Source: torch.relu and its gradient (0 at x = 0, as in PyTorch).
#include <cstddef>

#include "cpc/backend/dispatch.hpp"

namespace cpc::ops {

/// Arguments of `positive_part`: y[i] = max(x[i], 0) for i < n (x and y do not overlap).
template <class T>
struct positive_part_args {
  std::size_t n = 0;
  const T* x = nullptr;
  T* y = nullptr;  ///< overwritten
};

/// y = max(x, 0) element-wise (a ReLU). Errors: none.
template <class Backend, class T>
void positive_part(const positive_part_args<T>& args) {
  CPC_DISPATCH("positive_part", Backend, args);
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
