#pragma once
/// cpu kernels of the activation ops (backend/op/activation.hpp), moved unchanged from the former
/// `cpc::relu` layer: fixed chunks of 2^15 elements per task (element-wise, so thread-invariant).
#include <algorithm>
#include <cstddef>

#include "cpc/backend/op/activation.hpp"
#include "cpc/backend/tags.hpp"
#include "cpc/core/threads.hpp"

namespace cpc::ops {

namespace cpu_detail {
/// Elements per task of the activation kernels.
inline constexpr std::size_t activation_chunk = std::size_t(1) << 15;

/// Calls f(begin, end) for the chunks of [0, n) in parallel.
template <class F>
void for_each_activation_chunk(std::size_t n, F&& f) {
  parallel_for(0, (n + activation_chunk - 1) / activation_chunk,
               [&](std::size_t c) { f(c * activation_chunk, std::min(n, (c + 1) * activation_chunk)); });
}
}  // namespace cpu_detail

/// cpu relu_forward.
template <class T>
void run(cpu, const relu_forward_args<T>& a) {
  const T* in = a.x;
  T* out = a.y;
  cpu_detail::for_each_activation_chunk(a.n, [&](std::size_t i0, std::size_t i1) {
    for (std::size_t i = i0; i < i1; ++i) out[i] = std::max(in[i], T(0));
  });
}

/// cpu relu_backward.
template <class T>
void run(cpu, const relu_backward_args<T>& a) {
  const T* yv = a.y;
  const T* d = a.dy;
  T* out = a.dx;
  cpu_detail::for_each_activation_chunk(a.n, [&](std::size_t i0, std::size_t i1) {
    // A multiply, not a branch: the sign of y is random, and a branch mispredicts half the time.
    for (std::size_t i = i0; i < i1; ++i) out[i] = d[i] * static_cast<T>(yv[i] > T(0));
  });
}

/// cpu add_where_positive.
template <class T>
void run(cpu, const add_where_positive_args<T>& a) {
  cpu_detail::for_each_activation_chunk(a.n, [&](std::size_t i0, std::size_t i1) {
    for (std::size_t i = i0; i < i1; ++i) a.y[i] += a.gate[i] > T(0) ? a.x[i] : T(0);
  });
}

}  // namespace cpc::ops
