#pragma once
/// cpu kernels of the element-wise ops (backend/op/pointwise.hpp): fixed element blocks in
/// parallel (each element is computed alone, so results do not depend on the thread count).
#include <algorithm>
#include <cstddef>

#include "cpc/backend/cpu/blas.hpp"
#include "cpc/backend/op/pointwise.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc::ops {

/// cpu positive_part.
template <class T>
void run(cpu, const positive_part_args<T>& a) {
  cpu_detail::for_each_block(a.n, cpu_detail::element_block, [&](std::size_t i0, std::size_t i1) {
    for (std::size_t i = i0; i < i1; ++i) a.y[i] = std::max(a.x[i], T(0));
  });
}

/// cpu add_where_positive.
template <class T>
void run(cpu, const add_where_positive_args<T>& a) {
  cpu_detail::for_each_block(a.n, cpu_detail::element_block, [&](std::size_t i0, std::size_t i1) {
    for (std::size_t i = i0; i < i1; ++i) a.y[i] += a.gate[i] > T(0) ? a.x[i] : T(0);
  });
}

}  // namespace cpc::ops
