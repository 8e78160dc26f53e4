#pragma once
/// cuda kernels of the layer-norm ops (backend/op/norm.hpp). Forward: one thread block per row
/// running `cuda_body::layer_norm_forward_row` with a fixed-order block reduction (statistics in
/// double, two passes). Backward: the same per row for dx (storing each row's mean and 1/std), then
/// the parameter gradients as column sums over fixed chunks of 256 rows in double, added in chunk
/// order (deterministic). Every pointer is device memory. Errors: `device_error`.
#include <cuda_runtime.h>

#include <cstddef>
#include <string>

#include "cpc/backend/cuda/body/norm.hpp"
#include "cpc/backend/cuda/launch.cuh"
#include "cpc/backend/cuda/memory.hpp"
#include "cpc/backend/op/norm.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc::ops {

/// Scratch of cuda `layer_norm_backward`: per-row mean and 1/std `[rows]` and the chunk partials of
/// the parameter gradients `[2 * chunks, cols]`, in double, device memory; grown as needed.
template <class T>
struct layer_norm_workspace<cuda, T> {
  device_buffer<double> mean, rstd, partials;
};

}  // namespace cpc::ops

namespace cpc::cuda_detail {

/// One block per row: layer_norm_forward_row.
template <class T>
__global__ void layer_norm_forward_kernel(ops::layer_norm_forward_args<T> a) {
  __shared__ double shared[block_threads / 32 + 1];
  const block_reducer reduce{shared};
  for (std::size_t r = blockIdx.x; r < a.rows; r += gridDim.x)
    cuda_body::layer_norm_forward_row(a, r, threadIdx.x, blockDim.x, reduce);
}

/// One block per row: layer_norm_backward_row (dx and the row statistics).
template <class T>
__global__ void layer_norm_backward_kernel(ops::layer_norm_backward_args<T> a, double* mean, double* rstd) {
  __shared__ double shared[block_threads / 32 + 1];
  const block_reducer reduce{shared};
  for (std::size_t r = blockIdx.x; r < a.rows; r += gridDim.x)
    cuda_body::layer_norm_backward_row(a, r, threadIdx.x, blockDim.x, reduce, mean, rstd);
}

/// One thread per (chunk, column): the chunk's partial parameter gradients.
template <class T>
__global__ void layer_norm_param_partial_kernel(ops::layer_norm_backward_args<T> a, const double* mean,
                                                const double* rstd, double* partials, std::size_t total) {
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<std::size_t>(blockDim.x) * gridDim.x) {
    const std::size_t c = i / a.cols, j = i % a.cols;
    cuda_body::layer_norm_param_partial(a, mean, rstd, j, c, partials[(2 * c) * a.cols + j],
                                        partials[(2 * c + 1) * a.cols + j]);
  }
}

/// One thread per column: adds the chunk partials in order.
template <class T>
__global__ void layer_norm_param_finish_kernel(ops::layer_norm_backward_args<T> a, const double* partials) {
  for (std::size_t j = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < a.cols;
       j += static_cast<std::size_t>(blockDim.x) * gridDim.x)
    cuda_body::layer_norm_param_finish(a, partials, j);
}

/// Blocks for a one-block-per-row kernel.
inline unsigned row_grid(std::size_t rows) {
  return static_cast<unsigned>(rows < 65535 * 16 ? (rows < 1 ? 1 : rows) : 65535 * 16);
}

}  // namespace cpc::cuda_detail

namespace cpc::ops {

/// cuda layer_norm_forward: one block per row.
template <class T>
void run(cuda, const layer_norm_forward_args<T>& a) {
  if (a.rows == 0 || a.cols == 0) return;
  const auto sizes = [&] { return "rows=" + std::to_string(a.rows) + ", cols=" + std::to_string(a.cols); };
  cuda_detail::context& c = cuda_detail::context::get("layer_norm_forward");
  cuda_detail::
      layer_norm_forward_kernel<<<cuda_detail::row_grid(a.rows), cuda_detail::block_threads, 0, c.stream()>>>(
          a);
  cuda_detail::after_op("layer_norm_forward", sizes);
}

/// cuda layer_norm_backward: dx per row, then chunked column sums for the parameter gradients.
template <class T>
void run(cuda, const layer_norm_backward_args<T>& a, layer_norm_workspace<cuda, T>& ws) {
  if (a.rows == 0 || a.cols == 0) return;
  const auto sizes = [&] { return "rows=" + std::to_string(a.rows) + ", cols=" + std::to_string(a.cols); };
  cuda_detail::context& c = cuda_detail::context::get("layer_norm_backward");
  const bool params = a.d_weight != nullptr;
  if (params) {
    ensure_device_size(ws.mean, a.rows, "layer_norm_backward", sizes);
    ensure_device_size(ws.rstd, a.rows, "layer_norm_backward", sizes);
  }
  if (a.dx != nullptr || params)
    cuda_detail::layer_norm_backward_kernel<<<cuda_detail::row_grid(a.rows), cuda_detail::block_threads, 0,
                                              c.stream()>>>(a, params ? ws.mean.data() : nullptr,
                                                            params ? ws.rstd.data() : nullptr);
  cuda_detail::after_op("layer_norm_backward", sizes);
  if (!params) return;
  const std::size_t total = cuda_body::sum_chunks(a.rows) * a.cols;
  ensure_device_size(ws.partials, 2 * total, "layer_norm_backward", sizes);
  cuda_detail::layer_norm_param_partial_kernel<<<cuda_detail::grid_for(total), cuda_detail::block_threads, 0,
                                                 c.stream()>>>(a, ws.mean.data(), ws.rstd.data(),
                                                               ws.partials.data(), total);
  cuda_detail::layer_norm_param_finish_kernel<<<cuda_detail::grid_for(a.cols), cuda_detail::block_threads, 0,
                                                c.stream()>>>(a, ws.partials.data());
  cuda_detail::after_op("layer_norm_backward", sizes);
}

}  // namespace cpc::ops
