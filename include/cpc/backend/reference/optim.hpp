#pragma once
/// reference kernels of the optimiser ops (backend/op/optim.hpp): the formulas in double, one
/// element at a time.
#include <cmath>
#include <cstddef>

#include "cpc/backend/op/optim.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc::ops {

/// reference adam_update.
template <class T>
void run(reference, const adam_update_args<T>& a) {
  for (std::size_t i = 0; i < a.n; ++i) {
    const double p = a.value[i];
    const double g =
        a.decay ? a.grad[i] + static_cast<double>(a.weight_decay) * p : static_cast<double>(a.grad[i]);
    const double m = a.beta1 * static_cast<double>(a.exp_avg[i]) + static_cast<double>(a.one_minus_beta1) * g;
    const double v =
        a.beta2 * static_cast<double>(a.exp_avg_sq[i]) + static_cast<double>(a.one_minus_beta2) * g * g;
    a.exp_avg[i] = static_cast<T>(m);
    a.exp_avg_sq[i] = static_cast<T>(v);
    a.value[i] = static_cast<T>(p - a.step_size * m / (std::sqrt(v) / a.bc2_sqrt + a.eps));
  }
}

/// reference sgd_update.
template <class T>
void run(reference, const sgd_update_args<T>& a) {
  for (std::size_t i = 0; i < a.n; ++i) {
    const double p = a.value[i];
    const double d =
        a.decay ? a.grad[i] + static_cast<double>(a.weight_decay) * p : static_cast<double>(a.grad[i]);
    if (a.momentum_buffer == nullptr) {
      a.value[i] = static_cast<T>(p - a.lr * d);
      continue;
    }
    const double b = a.first ? d : a.momentum * static_cast<double>(a.momentum_buffer[i]) + a.keep * d;
    a.momentum_buffer[i] = static_cast<T>(b);
    a.value[i] = static_cast<T>(p - a.lr * (a.nesterov ? d + a.momentum * b : b));
  }
}

/// reference rmsprop_update.
template <class T>
void run(reference, const rmsprop_update_args<T>& a) {
  for (std::size_t i = 0; i < a.n; ++i) {
    const double p = a.value[i];
    const double g =
        a.decay ? a.grad[i] + static_cast<double>(a.weight_decay) * p : static_cast<double>(a.grad[i]);
    const double alpha = a.alpha, one_minus_alpha = a.one_minus_alpha;
    const double s = alpha * static_cast<double>(a.square_avg[i]) + one_minus_alpha * g * g;
    a.square_avg[i] = static_cast<T>(s);
    double d = 0;
    if (a.grad_avg != nullptr) {
      const double m = alpha * static_cast<double>(a.grad_avg[i]) + one_minus_alpha * g;
      a.grad_avg[i] = static_cast<T>(m);
      d = std::sqrt(s - m * m) + a.eps;
    } else {
      d = std::sqrt(s) + a.eps;
    }
    if (a.momentum_buffer != nullptr) {
      const double b = a.momentum * static_cast<double>(a.momentum_buffer[i]) + g / d;
      a.momentum_buffer[i] = static_cast<T>(b);
      a.value[i] = static_cast<T>(p - a.lr * b);
    } else {
      a.value[i] = static_cast<T>(p - a.lr * (g / d));
    }
  }
}

/// reference sum_squares.
template <class T>
void run(reference, const sum_squares_args<T>& a) {
  for (std::size_t c = 0; c * a.chunk < a.n; ++c) {
    double s = 0;
    for (std::size_t i = c * a.chunk; i < a.n && i < (c + 1) * a.chunk; ++i)
      s += static_cast<double>(a.x[i]) * static_cast<double>(a.x[i]);
    a.partials[c] = s;
  }
}

/// reference find_nonfinite.
template <class T>
void run(reference, const find_nonfinite_args<T>& a) {
  *a.first = a.n;
  for (std::size_t i = 0; i < a.n; ++i)
    if (!std::isfinite(a.x[i])) {
      *a.first = i;
      return;
    }
}

}  // namespace cpc::ops
