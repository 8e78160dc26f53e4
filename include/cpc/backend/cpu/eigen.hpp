#pragma once
/// Eigen views over xtensor buffers (row-major, no copies). GEMMs in cpc go through these maps,
/// e.g. `matrix_map(ptr, rows, cols).noalias() += a * b.transpose()`. Eigen runs
/// single-threaded here; parallelism comes from cpc::parallel_for over independent outputs.
#include <cstddef>

#include <Eigen/Core>

namespace cpc::cpu_kernels {

/// Row-major dynamic Eigen matrix type.
template <class T>
using row_matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Mutable view of `rows x cols` contiguous row-major scalars at `data`.
template <class T>
Eigen::Map<row_matrix<T>> matrix_map(T* data, std::ptrdiff_t rows, std::ptrdiff_t cols) {
  return Eigen::Map<row_matrix<T>>(data, rows, cols);
}

/// Read-only view of `rows x cols` contiguous row-major scalars at `data`.
template <class T>
Eigen::Map<const row_matrix<T>> matrix_map(const T* data, std::ptrdiff_t rows, std::ptrdiff_t cols) {
  return Eigen::Map<const row_matrix<T>>(data, rows, cols);
}

/// Mutable view of `n` contiguous scalars as a row vector `[1, n]`.
template <class T>
Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>> row_vector_map(T* data, std::ptrdiff_t n) {
  return Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>>(data, n);
}

/// Read-only view of `n` contiguous scalars as a row vector `[1, n]`.
template <class T>
Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>> row_vector_map(const T* data, std::ptrdiff_t n) {
  return Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>(data, n);
}

/// Strided read-only view: `rows x cols` with `row_stride` scalars between row starts.
template <class T>
Eigen::Map<const row_matrix<T>, 0, Eigen::OuterStride<>> strided_map(const T* data, std::ptrdiff_t rows,
                                                                     std::ptrdiff_t cols,
                                                                     std::ptrdiff_t row_stride) {
  return {data, rows, cols, Eigen::OuterStride<>(row_stride)};
}

/// Strided mutable view: `rows x cols` with `row_stride` scalars between row starts.
template <class T>
Eigen::Map<row_matrix<T>, 0, Eigen::OuterStride<>> strided_map(T* data, std::ptrdiff_t rows,
                                                               std::ptrdiff_t cols,
                                                               std::ptrdiff_t row_stride) {
  return {data, rows, cols, Eigen::OuterStride<>(row_stride)};
}

}  // namespace cpc::cpu_kernels
