#pragma once
/// cpu kernels of the dense ops (backend/op/blas.hpp): the register-blocked GEMM of
/// backend/cpu/gemm.hpp split over row blocks, and the element-wise ops over fixed-size blocks.
/// Results do not depend on the thread count: GEMM rows are independent, and every reduction
/// runs in a fixed order within one task.
#include <algorithm>
#include <array>
#include <cstddef>

#include "cpc/backend/cpu/eigen.hpp"
#include "cpc/backend/cpu/gemm.hpp"
#include "cpc/backend/op/blas.hpp"
#include "cpc/backend/tags.hpp"
#include "cpc/core/threads.hpp"

namespace cpc::ops {

/// cpu: B packed once per call, shared by every task.
template <class T>
struct gemm_workspace<cpu, T> {
  cpu_kernels::packed_rhs<T> rhs;
};

namespace cpu_detail {
/// Elements per task of the element-wise kernels.
inline constexpr std::size_t element_block = std::size_t(1) << 15;

/// Calls f(begin, end) for fixed blocks of [0, n) in parallel.
template <class F>
void for_each_block(std::size_t n, std::size_t block, F&& f) {
  parallel_for(0, (n + block - 1) / block,
               [&](std::size_t i) { f(i * block, std::min(n, (i + 1) * block)); });
}
}  // namespace cpu_detail

/// cpu gemm: packs B, then tasks of whole micro-tile rows run cpu_kernels::gemm. The grouping of
/// rows into tasks may follow the thread count because rows of C are computed independently.
template <class T>
void run(cpu, const gemm_args<T>& g, gemm_workspace<cpu, T>& ws) {
  if (g.m == 0 || g.n == 0) return;
  if (g.k == 0) {
    if (!g.accumulate)
      for (std::size_t i = 0; i < g.m; ++i)
        std::fill_n(g.c + static_cast<std::ptrdiff_t>(i) * g.ldc, g.n, T(0));
    return;
  }
  ws.rhs.pack(g.b, g.b_row_stride, g.b_col_stride, g.k, g.n);
  constexpr std::size_t R = cpu_kernels::gemm_tile<T>::rows;
  const std::size_t tiles = (g.m + R - 1) / R;
  const std::size_t tasks = std::min(tiles, 4 * num_threads());
  const std::size_t rows_per_task = (tiles + tasks - 1) / tasks * R;
  parallel_for(0, (g.m + rows_per_task - 1) / rows_per_task, [&](std::size_t t) {
    const std::size_t r0 = t * rows_per_task, n = std::min(rows_per_task, g.m - r0);
    alignas(64) std::array<T, cpu_kernels::gemm_workspace_size<T>()> work;
    cpu_kernels::gemm<T>(n, g.a + static_cast<std::ptrdiff_t>(r0) * g.a_row_stride, g.a_row_stride,
                         g.a_depth_stride, ws.rhs, g.c + static_cast<std::ptrdiff_t>(r0) * g.ldc, g.ldc,
                         g.accumulate, work.data());
  });
}

/// cpu add_row_vector: blocks of rows in parallel.
template <class T>
void run(cpu, const add_row_vector_args<T>& a) {
  constexpr std::size_t rows_per_task = 256;
  cpu_detail::for_each_block(a.rows, rows_per_task, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t r = r0; r < r1; ++r) {
      T* y = a.y + static_cast<std::ptrdiff_t>(r) * a.ldy;
      for (std::size_t j = 0; j < a.cols; ++j) y[j] += a.v[j];
    }
  });
}

/// cpu sum_rows: each task owns 64 columns and sums every row with Eigen's column-wise
/// reduction (fixed order, independent of threads).
template <class T>
void run(cpu, const sum_rows_args<T>& a) {
  constexpr std::size_t cols_per_task = 64;
  cpu_detail::for_each_block(a.cols, cols_per_task, [&](std::size_t c0, std::size_t c1) {
    const auto n = static_cast<std::ptrdiff_t>(c1 - c0);
    const auto x = cpu_kernels::strided_map(a.x + c0, static_cast<std::ptrdiff_t>(a.rows), n, a.ldx);
    cpu_kernels::row_vector_map(a.out + c0, n) += x.colwise().sum();
  });
}

/// cpu axpby: element blocks in parallel.
template <class T>
void run(cpu, const axpby_args<T>& a) {
  cpu_detail::for_each_block(a.n, cpu_detail::element_block, [&](std::size_t i0, std::size_t i1) {
    if (a.beta == T(0)) {
      for (std::size_t i = i0; i < i1; ++i) a.y[i] = a.alpha * a.x[i];
    } else if (a.alpha == T(1) && a.beta == T(1)) {
      for (std::size_t i = i0; i < i1; ++i) a.y[i] += a.x[i];
    } else {
      for (std::size_t i = i0; i < i1; ++i) a.y[i] = a.alpha * a.x[i] + a.beta * a.y[i];
    }
  });
}

/// cpu fill.
template <class T>
void run(cpu, const fill_args<T>& a) {
  cpu_detail::for_each_block(a.n, cpu_detail::element_block,
                             [&](std::size_t i0, std::size_t i1) { std::fill(a.y + i0, a.y + i1, a.value); });
}

/// cpu copy.
template <class T>
void run(cpu, const copy_args<T>& a) {
  cpu_detail::for_each_block(a.n, cpu_detail::element_block, [&](std::size_t i0, std::size_t i1) {
    std::copy(a.x + i0, a.x + i1, a.y + i0);
  });
}

}  // namespace cpc::ops
