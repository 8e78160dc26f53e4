#pragma once
/// cpu kernels of the optimiser ops (backend/op/optim.hpp): fixed chunks of
/// `optimizer_chunk_size` scalars in parallel; every element's arithmetic is the scalar formula,
/// so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "cpc/backend/op/optim.hpp"
#include "cpc/backend/tags.hpp"
#include "cpc/core/threads.hpp"

namespace cpc::ops {

namespace cpu_detail {
/// Scalars per task of the optimiser kernels.
inline constexpr std::size_t optimizer_block = 16384;

template <class F>
void for_each_optimizer_block(std::size_t n, F&& f) {
  parallel_for(0, (n + optimizer_block - 1) / optimizer_block, [&](std::size_t c) {
    const std::size_t i0 = c * optimizer_block;
    f(i0, std::min(optimizer_block, n - i0));
  });
}
}  // namespace cpu_detail

/// cpu adam_update.
template <class T>
void run(cpu, const adam_update_args<T>& a) {
  cpu_detail::for_each_optimizer_block(a.n, [&](std::size_t begin, std::size_t count) {
    T* p = a.value + begin;
    const T* grad = a.grad + begin;
    T* m = a.exp_avg + begin;
    T* v = a.exp_avg_sq + begin;
    const T b1 = a.beta1, b2 = a.beta2, one_minus_b1 = a.one_minus_beta1, one_minus_b2 = a.one_minus_beta2;
    const T step_size = a.step_size, bc2_sqrt = a.bc2_sqrt, eps = a.eps, wd = a.weight_decay;
    const bool decay = a.decay;
    for (std::size_t i = 0; i < count; ++i) {
      const T g = decay ? grad[i] + wd * p[i] : grad[i];
      m[i] = m[i] * b1 + g * one_minus_b1;
      v[i] = v[i] * b2 + one_minus_b2 * g * g;
      p[i] -= step_size * m[i] / (std::sqrt(v[i]) / bc2_sqrt + eps);
    }
  });
}

/// cpu sgd_update.
template <class T>
void run(cpu, const sgd_update_args<T>& a) {
  cpu_detail::for_each_optimizer_block(a.n, [&](std::size_t begin, std::size_t count) {
    T* p = a.value + begin;
    const T* grad = a.grad + begin;
    const T lr = a.lr, wd = a.weight_decay, mu = a.momentum, keep = a.keep;
    const bool decay = a.decay, first = a.first, nesterov = a.nesterov;
    if (a.momentum_buffer == nullptr) {
      for (std::size_t i = 0; i < count; ++i) p[i] -= lr * (decay ? grad[i] + wd * p[i] : grad[i]);
      return;
    }
    T* b = a.momentum_buffer + begin;
    for (std::size_t i = 0; i < count; ++i) {
      const T d = decay ? grad[i] + wd * p[i] : grad[i];
      b[i] = first ? d : mu * b[i] + keep * d;
      p[i] -= lr * (nesterov ? d + mu * b[i] : b[i]);
    }
  });
}

/// cpu rmsprop_update.
template <class T>
void run(cpu, const rmsprop_update_args<T>& a) {
  cpu_detail::for_each_optimizer_block(a.n, [&](std::size_t begin, std::size_t count) {
    T* p = a.value + begin;
    const T* grad = a.grad + begin;
    T* s = a.square_avg + begin;
    T* ga = a.grad_avg == nullptr ? nullptr : a.grad_avg + begin;
    T* b = a.momentum_buffer == nullptr ? nullptr : a.momentum_buffer + begin;
    const T lr = a.lr, alpha = a.alpha, one_minus_alpha = a.one_minus_alpha, eps = a.eps, wd = a.weight_decay,
            mu = a.momentum;
    const bool decay = a.decay;
    for (std::size_t i = 0; i < count; ++i) {
      const T g = decay ? grad[i] + wd * p[i] : grad[i];
      s[i] = alpha * s[i] + one_minus_alpha * g * g;
      T d;
      if (ga != nullptr) {
        ga[i] = alpha * ga[i] + one_minus_alpha * g;
        d = std::sqrt(s[i] - ga[i] * ga[i]) + eps;
      } else {
        d = std::sqrt(s[i]) + eps;
      }
      if (b != nullptr) {
        b[i] = mu * b[i] + g / d;
        p[i] -= lr * b[i];
      } else {
        p[i] -= lr * (g / d);
      }
    }
  });
}

/// cpu sum_squares: one task per chunk.
template <class T>
void run(cpu, const sum_squares_args<T>& a) {
  parallel_for(0, (a.n + a.chunk - 1) / a.chunk, [&](std::size_t c) {
    const T* g = a.x + c * a.chunk;
    const std::size_t count = std::min(a.chunk, a.n - c * a.chunk);
    double s = 0;
    for (std::size_t i = 0; i < count; ++i) s += static_cast<double>(g[i]) * static_cast<double>(g[i]);
    a.partials[c] = s;
  });
}

/// cpu find_nonfinite: blocks in parallel, the first hit of the first block that has one.
template <class T>
void run(cpu, const find_nonfinite_args<T>& a) {
  constexpr std::size_t none = std::numeric_limits<std::size_t>::max();
  const std::size_t blocks = (a.n + cpu_detail::optimizer_block - 1) / cpu_detail::optimizer_block;
  std::vector<std::size_t> first(blocks, none);
  cpu_detail::for_each_optimizer_block(a.n, [&](std::size_t begin, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i)
      if (!std::isfinite(a.x[begin + i])) {
        first[begin / cpu_detail::optimizer_block] = begin + i;
        return;
      }
  });
  *a.first = a.n;
  for (std::size_t f : first)
    if (f != none) {
      *a.first = f;
      return;
    }
}

}  // namespace cpc::ops
