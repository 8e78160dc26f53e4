#pragma once
/// Optimiser ops: element-wise parameter updates over a flat run of parameters (a whole model's
/// flat buffers in one call, or one parameter), and the reductions that gradient clipping and the
/// finiteness check need. Dispatched on the backend tag (backend/dispatch.hpp).
#include <cstddef>

#include "cpc/backend/dispatch.hpp"

namespace cpc::ops {

/// Adam (torch.optim.Adam, amsgrad = False) on n scalars, element-wise:
///   g = grad + weight_decay * p (when decay); m = beta1 m + (1 - beta1) g;
///   v = beta2 v + (1 - beta2) g^2; p -= step_size * m / (sqrt(v) / bc2_sqrt + eps),
/// with step_size = lr / (1 - beta1^t) and bc2_sqrt = sqrt(1 - beta2^t) computed by the caller.
/// value, grad, exp_avg, exp_avg_sq: `[n]` each, in the backend's memory.
template <class T>
struct adam_update_args {
  std::size_t n = 0;
  T* value = nullptr;
  const T* grad = nullptr;
  T* exp_avg = nullptr;
  T* exp_avg_sq = nullptr;
  T step_size = 0, bc2_sqrt = 1, beta1 = 0, beta2 = 0, one_minus_beta1 = 1, one_minus_beta2 = 1, eps = 0,
    weight_decay = 0;
  bool decay = false;
};

/// One Adam update of n scalars (see `adam_update_args`).
template <class Backend, class T>
void adam_update(const adam_update_args<T>& args) {
  CPC_DISPATCH("adam_update", Backend, args);
}

/// SGD with momentum (torch.optim.SGD) on n scalars, element-wise: d = grad + weight_decay * p
/// (when decay); without momentum p -= lr d; with momentum b = first ? d : momentum b + keep d
/// (keep = 1 - dampening), p -= lr (nesterov ? d + momentum b : b). `momentum_buffer` is null
/// without momentum. All arrays `[n]`.
template <class T>
struct sgd_update_args {
  std::size_t n = 0;
  T* value = nullptr;
  const T* grad = nullptr;
  T* momentum_buffer = nullptr;
  T lr = 0, weight_decay = 0, momentum = 0, keep = 1;
  bool decay = false, first = false, nesterov = false;
};

/// One SGD update of n scalars (see `sgd_update_args`).
template <class Backend, class T>
void sgd_update(const sgd_update_args<T>& args) {
  CPC_DISPATCH("sgd_update", Backend, args);
}

/// RMSprop (torch.optim.RMSprop) on n scalars, element-wise:
///   g = grad + weight_decay * p (when decay); s = alpha s + (1 - alpha) g^2;
///   centered: a = alpha a + (1 - alpha) g, d = sqrt(s - a^2) + eps; else d = sqrt(s) + eps;
///   with momentum: b = momentum b + g / d, p -= lr b; else p -= lr g / d.
/// `grad_avg` is null unless centered, `momentum_buffer` null without momentum. All arrays `[n]`.
template <class T>
struct rmsprop_update_args {
  std::size_t n = 0;
  T* value = nullptr;
  const T* grad = nullptr;
  T* square_avg = nullptr;
  T* grad_avg = nullptr;
  T* momentum_buffer = nullptr;
  T lr = 0, alpha = 0, one_minus_alpha = 1, eps = 0, weight_decay = 0, momentum = 0;
  bool decay = false;
};

/// One RMSprop update of n scalars (see `rmsprop_update_args`).
template <class Backend, class T>
void rmsprop_update(const rmsprop_update_args<T>& args) {
  CPC_DISPATCH("rmsprop_update", Backend, args);
}

/// partials[c] = sum of x[i]^2 (in double, i ascending) over chunk c = [c * chunk, (c + 1) * chunk)
/// of x `[n]`, for c < ceil(n / chunk). `partials` is host memory (the caller combines them in
/// order, so a norm does not depend on threads).
template <class T>
struct sum_squares_args {
  std::size_t n = 0;
  const T* x = nullptr;
  std::size_t chunk = 1;
  double* partials = nullptr;
};

/// Per-chunk sums of squares (see `sum_squares_args`).
template <class Backend, class T>
void sum_squares(const sum_squares_args<T>& args) {
  CPC_DISPATCH("sum_squares", Backend, args);
}

/// *first = the smallest i < n with x[i] NaN or infinite, or n when every element is finite.
/// `first` is host memory.
template <class T>
struct find_nonfinite_args {
  std::size_t n = 0;
  const T* x = nullptr;
  std::size_t* first = nullptr;
};

/// Index of the first non-finite element (see `find_nonfinite_args`).
template <class Backend, class T>
void find_nonfinite(const find_nonfinite_args<T>& args) {
  CPC_DISPATCH("find_nonfinite", Backend, args);
}

}  // namespace cpc::ops
