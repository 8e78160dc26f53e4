#pragma once
/// reference kernels of the dense ops (backend/op/blas.hpp): the definitions as plain loops,
/// accumulating in double, one thread. The oracle that tests compare every backend against.
#include <cstddef>

#include "cpc/backend/op/blas.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc::ops {

/// reference gemm: C(i, j) = [C(i, j)] + sum_p A(i, p) B(p, j), summed in double in p order.
template <class T>
void run(reference, const gemm_args<T>& g, gemm_workspace<reference, T>&) {
  for (std::size_t i = 0; i < g.m; ++i)
    for (std::size_t j = 0; j < g.n; ++j) {
      T& c = g.c[static_cast<std::ptrdiff_t>(i) * g.ldc + static_cast<std::ptrdiff_t>(j)];
      double s = g.accumulate ? static_cast<double>(c) : 0.0;
      for (std::size_t p = 0; p < g.k; ++p) {
        const auto ip = static_cast<std::ptrdiff_t>(i), pp = static_cast<std::ptrdiff_t>(p),
                   jp = static_cast<std::ptrdiff_t>(j);
        s += static_cast<double>(g.a[ip * g.a_row_stride + pp * g.a_depth_stride]) *
             static_cast<double>(g.b[pp * g.b_row_stride + jp * g.b_col_stride]);
      }
      c = static_cast<T>(s);
    }
}

/// reference add_row_vector.
template <class T>
void run(reference, const add_row_vector_args<T>& a) {
  for (std::size_t r = 0; r < a.rows; ++r)
    for (std::size_t j = 0; j < a.cols; ++j)
      a.y[static_cast<std::ptrdiff_t>(r) * a.ldy + static_cast<std::ptrdiff_t>(j)] += a.v[j];
}

/// reference sum_rows: each column summed in double, rows in order.
template <class T>
void run(reference, const sum_rows_args<T>& a) {
  for (std::size_t j = 0; j < a.cols; ++j) {
    double s = 0;
    for (std::size_t r = 0; r < a.rows; ++r)
      s += static_cast<double>(a.x[static_cast<std::ptrdiff_t>(r) * a.ldx + static_cast<std::ptrdiff_t>(j)]);
    a.out[j] = static_cast<T>(static_cast<double>(a.out[j]) + s);
  }
}

/// reference axpby.
template <class T>
void run(reference, const axpby_args<T>& a) {
  for (std::size_t i = 0; i < a.n; ++i)
    a.y[i] =
        a.beta == T(0)
            ? a.alpha * a.x[i]
            : static_cast<T>(static_cast<double>(a.alpha) * a.x[i] + static_cast<double>(a.beta) * a.y[i]);
}

/// reference fill.
template <class T>
void run(reference, const fill_args<T>& a) {
  for (std::size_t i = 0; i < a.n; ++i) a.y[i] = a.value;
}

/// reference copy.
template <class T>
void run(reference, const copy_args<T>& a) {
  for (std::size_t i = 0; i < a.n; ++i) a.y[i] = a.x[i];
}

}  // namespace cpc::ops
