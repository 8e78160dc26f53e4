#pragma once
/// Dense linear-algebra ops: GEMM, row-vector broadcasts, column sums, axpy, fill and copy.
/// Every op takes raw pointers into memory of its backend (host memory for cpu and reference)
/// and is dispatched on the backend tag alone (backend/dispatch.hpp). Shapes are given in the
/// argument structs; strides are in elements. Source: BLAS conventions (sgemm, saxpy), row-major.
#include <cstddef>

#include "cpc/backend/dispatch.hpp"

namespace cpc::ops {

/// C = (accumulate ? C : 0) + A B, all row-major views:
///   A(i, p) = a[i * a_row_stride + p * a_depth_stride]   i < m, p < k   (any strides: a strided
///                                                         im2col view or a transposed operand)
///   B(p, j) = b[p * b_row_stride + j * b_col_stride]      p < k, j < n
///   C(i, j) = c[i * ldc + j]                              i < m, j < n
/// Contract on every backend: row i of C depends only on row i of A, on B and on C's old row i -
/// never on m, on where the row sits, or on the thread count.
template <class T>
struct gemm_args {
  std::size_t m = 0, n = 0, k = 0;
  const T* a = nullptr;
  std::ptrdiff_t a_row_stride = 0, a_depth_stride = 1;
  const T* b = nullptr;
  std::ptrdiff_t b_row_stride = 0, b_col_stride = 1;
  T* c = nullptr;
  std::ptrdiff_t ldc = 0;
  bool accumulate = false;
};

/// Reusable scratch of `gemm` on a backend (cpu: the packed B operand). Owned by the caller
/// (a layer keeps one), so steady-state calls allocate nothing. Empty on backends that need none.
template <class Backend, class T>
struct gemm_workspace {};

/// C (+)= A B (see `gemm_args`). Errors: none (sizes are the caller's contract).
template <class Backend, class T>
void gemm(const gemm_args<T>& args, gemm_workspace<Backend, T>& ws) {
  CPC_DISPATCH("gemm", Backend, args, ws);
}

/// y[r, j] += v[j] for r < rows, j < cols; row r of y starts at y + r * ldy (a bias broadcast).
template <class T>
struct add_row_vector_args {
  std::size_t rows = 0, cols = 0;
  const T* v = nullptr;
  T* y = nullptr;
  std::ptrdiff_t ldy = 0;
};

/// y[r, :] += v for every row (see `add_row_vector_args`).
template <class Backend, class T>
void add_row_vector(const add_row_vector_args<T>& args) {
  CPC_DISPATCH("add_row_vector", Backend, args);
}

/// out[j] += sum_{r < rows} x[r * ldx + j] for j < cols (column sums, e.g. a bias gradient).
/// Deterministic: the summation order is fixed per backend and does not depend on threads.
template <class T>
struct sum_rows_args {
  std::size_t rows = 0, cols = 0;
  const T* x = nullptr;
  std::ptrdiff_t ldx = 0;
  T* out = nullptr;
};

/// out += column sums of x (see `sum_rows_args`).
template <class Backend, class T>
void sum_rows(const sum_rows_args<T>& args) {
  CPC_DISPATCH("sum_rows", Backend, args);
}

/// y[i] = alpha * x[i] + beta * y[i] for i < n (beta = 0 overwrites y, even where y is NaN).
/// x may be y (in-place scaling).
template <class T>
struct axpby_args {
  std::size_t n = 0;
  T alpha = T(1);
  const T* x = nullptr;
  T beta = T(1);
  T* y = nullptr;
};

/// y = alpha x + beta y, element-wise (see `axpby_args`).
template <class Backend, class T>
void axpby(const axpby_args<T>& args) {
  CPC_DISPATCH("axpby", Backend, args);
}

/// y[i] = value for i < n.
template <class T>
struct fill_args {
  std::size_t n = 0;
  T value = T(0);
  T* y = nullptr;
};

/// Sets n elements to `value`.
template <class Backend, class T>
void fill(const fill_args<T>& args) {
  CPC_DISPATCH("fill", Backend, args);
}

/// y[i] = x[i] for i < n (x and y do not overlap).
template <class T>
struct copy_args {
  std::size_t n = 0;
  const T* x = nullptr;
  T* y = nullptr;
};

/// Copies n elements within one backend's memory.
template <class Backend, class T>
void copy(const copy_args<T>& args) {
  CPC_DISPATCH("copy", Backend, args);
}

}  // namespace cpc::ops
