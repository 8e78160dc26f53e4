#pragma once
/// Bodies of the CUDA backend's dense ops (backend/op/blas.hpp), written once for device and host:
/// the element of each element-wise op, the per-chunk column sums of `sum_rows`, the fallback GEMM
/// element, and `plan_gemm`, which maps a row-major `gemm_args` onto one column-major cuBLAS call.
/// Host tests run them against the reference backend (tests/backend/test_cuda_bodies.cpp).
#include <cstddef>
#include <limits>

#include "cpc/backend/cuda/hd.hpp"
#include "cpc/backend/op/blas.hpp"

namespace cpc::cuda_body {

/// add_row_vector, element i of the `rows * cols` grid: y[r, j] += v[j] with r = i / cols.
template <class T>
CPC_HD void element(const ops::add_row_vector_args<T>& a, std::size_t i) {
  const std::size_t r = i / a.cols, j = i % a.cols;
  a.y[static_cast<std::ptrdiff_t>(r) * a.ldy + static_cast<std::ptrdiff_t>(j)] += a.v[j];
}

/// axpby, element i: beta = 0 overwrites (even a NaN y), else alpha x + beta y in double.
template <class T>
CPC_HD void element(const ops::axpby_args<T>& a, std::size_t i) {
  a.y[i] = a.beta == T(0) ? a.alpha * a.x[i]
                          : static_cast<T>(static_cast<double>(a.alpha) * static_cast<double>(a.x[i]) +
                                           static_cast<double>(a.beta) * static_cast<double>(a.y[i]));
}

/// fill, element i.
template <class T>
CPC_HD void element(const ops::fill_args<T>& a, std::size_t i) {
  a.y[i] = a.value;
}

/// copy, element i.
template <class T>
CPC_HD void element(const ops::copy_args<T>& a, std::size_t i) {
  a.y[i] = a.x[i];
}

/// Rows per chunk of the column sums (`sum_rows`, the norms' parameter gradients): chunk c covers
/// rows [c * sum_chunk_rows, (c + 1) * sum_chunk_rows); chunks are summed in double, then the
/// partial sums in chunk order, so the result is the same on every run and every GPU.
inline constexpr std::size_t sum_chunk_rows = 256;

/// Number of row chunks of `rows` rows.
CPC_HD inline std::size_t sum_chunks(std::size_t rows) {
  return (rows + sum_chunk_rows - 1) / sum_chunk_rows;
}

/// sum_rows, partial sum of column j over the rows of chunk c, in double, rows in order.
template <class T>
CPC_HD double sum_rows_partial(const ops::sum_rows_args<T>& a, std::size_t j, std::size_t c) {
  double s = 0;
  const std::size_t end = (c + 1) * sum_chunk_rows < a.rows ? (c + 1) * sum_chunk_rows : a.rows;
  for (std::size_t r = c * sum_chunk_rows; r < end; ++r)
    s += static_cast<double>(a.x[static_cast<std::ptrdiff_t>(r) * a.ldx + static_cast<std::ptrdiff_t>(j)]);
  return s;
}

/// sum_rows, column j: out[j] += the chunk partials `partials[c * cols + j]` summed in chunk order.
template <class T>
CPC_HD void sum_rows_finish(const ops::sum_rows_args<T>& a, const double* partials, std::size_t j) {
  double s = 0;
  const std::size_t chunks = sum_chunks(a.rows);
  for (std::size_t c = 0; c < chunks; ++c) s += partials[c * a.cols + j];
  a.out[j] = static_cast<T>(static_cast<double>(a.out[j]) + s);
}

/// gemm, element (i, j) in double, depth in order: the fallback for operands with strides that no
/// cuBLAS call takes (see `plan_gemm`).
template <class T>
CPC_HD void gemm_element(const ops::gemm_args<T>& g, std::size_t i, std::size_t j) {
  const auto ip = static_cast<std::ptrdiff_t>(i), jp = static_cast<std::ptrdiff_t>(j);
  T& c = g.c[ip * g.ldc + jp];
  double s = g.accumulate ? static_cast<double>(c) : 0.0;
  for (std::size_t p = 0; p < g.k; ++p) {
    const auto pp = static_cast<std::ptrdiff_t>(p);
    s += static_cast<double>(g.a[ip * g.a_row_stride + pp * g.a_depth_stride]) *
         static_cast<double>(g.b[pp * g.b_row_stride + jp * g.b_col_stride]);
  }
  c = static_cast<T>(s);
}

/// A column-major GEMM call C' = op(X) op(Y) + beta C' (cuBLAS's gemm argument order), where the
/// row-major C = A B of `gemm_args` is read as its transpose C' = C^T = B^T A^T: X is B's memory
/// (op(X) is n x k), Y is A's memory (op(Y) is k x m), C' is n x m with leading dimension ldc.
/// `transpose_x` / `transpose_y` say whether cuBLAS must transpose (CUBLAS_OP_T) the stored matrix.
struct gemm_plan {
  bool ok = false;  ///< false: no single cuBLAS call fits (use the fallback kernel)
  bool transpose_x = false, transpose_y = false;
  long long m = 0, n = 0, k = 0;  ///< cuBLAS's (m, n, k) = (n, m, k) of the row-major product
  long long ldx = 0, ldy = 0, ldc = 0;
};

/// Maps `g` onto one cuBLAS call when its strides allow (one unit stride per operand, leading
/// dimensions at least the stored extent, everything below 2^31; a stride is free where its
/// extent is 1), else `ok = false`. Pure arithmetic: tests check it on the host by executing the
/// plan with a column-major GEMM written as cuBLAS documents it.
template <class T>
CPC_HD gemm_plan plan_gemm(const ops::gemm_args<T>& g) {
  gemm_plan p;
  const long long m = static_cast<long long>(g.m), n = static_cast<long long>(g.n),
                  k = static_cast<long long>(g.k);
  const long long limit = 2147483647LL;
  if (m > limit || n > limit || k > limit || g.ldc < 1 || g.ldc > limit) return p;
  if (m > 1 && g.ldc < (n > 1 ? n : 1)) return p;
  const long long ars = g.a_row_stride, ads = g.a_depth_stride, brs = g.b_row_stride, bcs = g.b_col_stride;
  const long long k1 = k > 1 ? k : 1, m1 = m > 1 ? m : 1, n1 = n > 1 ? n : 1;
  // X = B's memory. Stored n x k column-major (B row-major, unit column stride) -> no transpose.
  if ((n <= 1 || bcs == 1) && (k <= 1 || brs >= n1)) {
    p.transpose_x = false;
    p.ldx = k <= 1 ? n1 : brs;
  } else if ((k <= 1 || brs == 1) && (n <= 1 || bcs >= k1)) {
    p.transpose_x = true;  // stored k x n column-major (B^T row-major)
    p.ldx = n <= 1 ? k1 : bcs;
  } else {
    return p;
  }
  // Y = A's memory. Stored k x m column-major (A row-major, unit depth stride) -> no transpose.
  if ((k <= 1 || ads == 1) && (m <= 1 || ars >= k1)) {
    p.transpose_y = false;
    p.ldy = m <= 1 ? k1 : ars;
  } else if ((m <= 1 || ars == 1) && (k <= 1 || ads >= m1)) {
    p.transpose_y = true;  // stored m x k column-major (A^T row-major)
    p.ldy = k <= 1 ? m1 : ads;
  } else {
    return p;
  }
  if (p.ldx > limit || p.ldy > limit) return p;
  p.m = n;
  p.n = m;
  p.k = k;
  p.ldc = m <= 1 ? (g.ldc > n1 ? g.ldc : n1) : g.ldc;
  p.ok = true;
  return p;
}

}  // namespace cpc::cuda_body
