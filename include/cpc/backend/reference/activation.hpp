#pragma once
/// reference kernels of the activation ops (backend/op/activation.hpp): plain loops, one thread.
#include <cstddef>

#include "cpc/backend/op/activation.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc::ops {

/// reference relu_forward: y = 0 where x < 0, else x (NaN stays NaN, as torch.relu).
template <class T>
void run(reference, const relu_forward_args<T>& a) {
  for (std::size_t i = 0; i < a.n; ++i) a.y[i] = a.x[i] < T(0) ? T(0) : a.x[i];
}

/// reference relu_backward: dx = dy where y > 0, else 0.
template <class T>
void run(reference, const relu_backward_args<T>& a) {
  for (std::size_t i = 0; i < a.n; ++i) a.dx[i] = a.y[i] > T(0) ? a.dy[i] : T(0);
}

/// reference add_where_positive: adds 0 where the gate is closed, as the definition says (so a
/// -0 in y becomes +0 there).
template <class T>
void run(reference, const add_where_positive_args<T>& a) {
  for (std::size_t i = 0; i < a.n; ++i) a.y[i] += a.gate[i] > T(0) ? a.x[i] : T(0);
}

}  // namespace cpc::ops
