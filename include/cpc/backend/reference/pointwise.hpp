#pragma once
/// reference kernels of the element-wise ops (backend/op/pointwise.hpp): plain loops, one thread.
#include <cstddef>

#include "cpc/backend/op/pointwise.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc::ops {

/// reference positive_part (NaN and -0 pass through, as std::max(x, 0) and torch.relu do).
template <class T>
void run(reference, const positive_part_args<T>& a) {
  for (std::size_t i = 0; i < a.n; ++i) a.y[i] = a.x[i] < T(0) ? T(0) : a.x[i];
}

/// reference add_where_positive: adds 0 where the gate is closed, as the definition says (so a
/// -0 in y becomes +0 there).
template <class T>
void run(reference, const add_where_positive_args<T>& a) {
  for (std::size_t i = 0; i < a.n; ++i) a.y[i] += a.gate[i] > T(0) ? a.x[i] : T(0);
}

}  // namespace cpc::ops
