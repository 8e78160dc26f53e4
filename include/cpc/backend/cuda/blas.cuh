#pragma once
/// cuda kernels of the dense ops (backend/op/blas.hpp). `gemm` is one cuBLAS call (sgemm / dgemm,
/// full FP32, no TF32) whenever `cuda_body::plan_gemm` maps the row-major strided operands onto one
/// (every layout cpc's layers use), else a plain kernel (one thread per C element, double
/// accumulation); k = 0 writes zeros or leaves C. `sum_rows` sums fixed chunks of 256 rows in double,
/// then the chunks in order (deterministic). The rest are element-wise launches of the bodies in
/// backend/cuda/body/blas.hpp. Every pointer is device memory. Errors: `device_error`.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>

#include "cpc/backend/cuda/body/blas.hpp"
#include "cpc/backend/cuda/launch.cuh"
#include "cpc/backend/cuda/runtime.hpp"
#include "cpc/backend/op/blas.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc::cuda_detail {

/// One thread per C element: the fallback for strides no cuBLAS call takes.
template <class T>
__global__ void gemm_fallback_kernel(ops::gemm_args<T> g) {
  const std::size_t total = g.m * g.n;
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<std::size_t>(blockDim.x) * gridDim.x)
    cuda_body::gemm_element(g, i / g.n, i % g.n);
}

/// sum_rows, pass 1: partials[c * cols + j] = column j summed over chunk c (one thread per (c, j)).
template <class T>
__global__ void sum_rows_partial_kernel(ops::sum_rows_args<T> a, double* partials, std::size_t total) {
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<std::size_t>(blockDim.x) * gridDim.x)
    partials[i] = cuda_body::sum_rows_partial(a, i % a.cols, i / a.cols);
}

/// sum_rows, pass 2: out[j] += the partials of column j in chunk order.
template <class T>
__global__ void sum_rows_finish_kernel(ops::sum_rows_args<T> a, const double* partials) {
  for (std::size_t j = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < a.cols;
       j += static_cast<std::size_t>(blockDim.x) * gridDim.x)
    cuda_body::sum_rows_finish(a, partials, j);
}

/// "m=.., n=.., k=.., strides .." for error messages.
template <class T>
std::string gemm_sizes(const ops::gemm_args<T>& g) {
  return "m=" + std::to_string(g.m) + ", n=" + std::to_string(g.n) + ", k=" + std::to_string(g.k) +
         ", A strides " + std::to_string(g.a_row_stride) + "/" + std::to_string(g.a_depth_stride) +
         ", B strides " + std::to_string(g.b_row_stride) + "/" + std::to_string(g.b_col_stride) +
         ", ldc=" + std::to_string(g.ldc);
}

/// C (+)= A B on the device (see the file comment); `op` names the calling op in errors.
template <class T>
void device_gemm(const ops::gemm_args<T>& g, std::string_view op) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "cpc::cuda gemm: float or double");
  if (g.m == 0 || g.n == 0) return;
  const auto sizes = [&] { return gemm_sizes(g); };
  context& c = context::get(op);
  if (g.k == 0) {
    if (g.accumulate) return;
    const std::size_t pitch =
        (g.m == 1 ? g.n : static_cast<std::size_t>(g.ldc)) * sizeof(T);  // one row: any ldc
    check(cudaMemset2DAsync(g.c, pitch, 0, g.n * sizeof(T), g.m, c.stream()), op, sizes);
    after_op(op, sizes);
    return;
  }
  const cuda_body::gemm_plan p = cuda_body::plan_gemm(g);
  if (!p.ok) {
    gemm_fallback_kernel<<<grid_for(g.m * g.n), block_threads, 0, c.stream()>>>(g);
    after_op(op, sizes);
    return;
  }
  const T one = T(1), beta = g.accumulate ? T(1) : T(0);
  const cublasOperation_t tx = p.transpose_x ? CUBLAS_OP_T : CUBLAS_OP_N,
                          ty = p.transpose_y ? CUBLAS_OP_T : CUBLAS_OP_N;
  const auto m = static_cast<int>(p.m), n = static_cast<int>(p.n), k = static_cast<int>(p.k);
  const auto ldx = static_cast<int>(p.ldx), ldy = static_cast<int>(p.ldy), ldc = static_cast<int>(p.ldc);
  cublasStatus_t s;
  if constexpr (std::is_same_v<T, float>)
    s = cublasSgemm(c.blas(), tx, ty, m, n, k, &one, g.b, ldx, g.a, ldy, &beta, g.c, ldc);
  else
    s = cublasDgemm(c.blas(), tx, ty, m, n, k, &one, g.b, ldx, g.a, ldy, &beta, g.c, ldc);
  check(s, op, sizes);
  after_op(op, sizes);
}

}  // namespace cpc::cuda_detail

namespace cpc::ops {

/// cuda gemm: one cuBLAS call, or the fallback kernel (see backend/cuda/blas.cuh).
template <class T>
void run(cuda, const gemm_args<T>& g, gemm_workspace<cuda, T>&) {
  cuda_detail::device_gemm(g, "gemm");
}

/// cuda add_row_vector: one thread per element.
template <class T>
void run(cuda, const add_row_vector_args<T>& a) {
  cuda_detail::launch_elements("add_row_vector", a, a.rows * a.cols, [&] {
    return "rows=" + std::to_string(a.rows) + ", cols=" + std::to_string(a.cols);
  });
}

/// cuda sum_rows: chunk partials in double, then chunks in order (deterministic).
template <class T>
void run(cuda, const sum_rows_args<T>& a) {
  if (a.cols == 0) return;
  const auto sizes = [&] { return "rows=" + std::to_string(a.rows) + ", cols=" + std::to_string(a.cols); };
  cuda_detail::context& c = cuda_detail::context::get("sum_rows");
  const std::size_t total = cuda_body::sum_chunks(a.rows) * a.cols;
  auto* partials = static_cast<double*>(c.scratch(total * sizeof(double), "sum_rows"));
  if (total > 0)
    cuda_detail::
        sum_rows_partial_kernel<<<cuda_detail::grid_for(total), cuda_detail::block_threads, 0, c.stream()>>>(
            a, partials, total);
  cuda_detail::
      sum_rows_finish_kernel<<<cuda_detail::grid_for(a.cols), cuda_detail::block_threads, 0, c.stream()>>>(
          a, partials);
  cuda_detail::after_op("sum_rows", sizes);
}

/// cuda axpby: one thread per element.
template <class T>
void run(cuda, const axpby_args<T>& a) {
  cuda_detail::launch_elements("axpby", a, a.n, [&] { return "n=" + std::to_string(a.n); });
}

/// cuda fill: cudaMemset for a zero value, else one thread per element.
template <class T>
void run(cuda, const fill_args<T>& a) {
  if (a.n == 0) return;
  const auto sizes = [&] { return "n=" + std::to_string(a.n); };
  if (a.value == T(0) && !std::signbit(a.value)) {  // +0 only: -0 has its sign bit set
    cuda_detail::context& c = cuda_detail::context::get("fill");
    cuda_detail::check(cudaMemsetAsync(a.y, 0, a.n * sizeof(T), c.stream()), "fill", sizes);
    cuda_detail::after_op("fill", sizes);
    return;
  }
  cuda_detail::launch_elements("fill", a, a.n, sizes);
}

/// cuda copy: cudaMemcpyAsync device to device.
template <class T>
void run(cuda, const copy_args<T>& a) {
  if (a.n == 0) return;
  const auto sizes = [&] { return "n=" + std::to_string(a.n); };
  cuda_detail::context& c = cuda_detail::context::get("copy");
  cuda_detail::check(cudaMemcpyAsync(a.y, a.x, a.n * sizeof(T), cudaMemcpyDeviceToDevice, c.stream()), "copy",
                     sizes);
  cuda_detail::after_op("copy", sizes);
}

}  // namespace cpc::ops
