#pragma once
/// cuda kernels of the 1-D convolution ops (backend/op/conv1d.hpp) as im2col + cuBLAS GEMM (see
/// backend/cuda/body/conv1d.hpp): forward y = col W^T, then the bias row-wise; parameter gradients
/// d W += dy^T col (col rebuilt from x) and d bias += column sums of dy; input gradient
/// d col = dy W, then the col2im gather. The im2col matrix `[batch * t_out, c_in * kernel]` lives in
/// the layer's workspace (e.g. 512 MiB for the audio encoder's second layer at batch 32).
/// Every pointer is device memory. Errors: `device_error` (also when the workspace does not fit).
#include <cstddef>
#include <string>

#include "cpc/backend/cuda/blas.cuh"
#include "cpc/backend/cuda/body/conv1d.hpp"
#include "cpc/backend/cuda/launch.cuh"
#include "cpc/backend/cuda/memory.hpp"
#include "cpc/backend/op/conv1d.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc::ops {

/// Scratch of the cuda conv1d ops: the im2col matrix (or its gradient), device memory, grown as needed.
template <class T>
struct conv1d_workspace<cuda, T> {
  device_buffer<T> col;
};

}  // namespace cpc::ops

namespace cpc::cuda_detail {

/// col[i] = the im2col element i of x.
template <class T>
__global__ void conv1d_im2col_kernel(ops::conv1d_shape s, const T* x, T* col, std::size_t total) {
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<std::size_t>(blockDim.x) * gridDim.x)
    col[i] = cuda_body::conv1d_im2col_element(s, x, i);
}

/// dx[i] = the col2im gather of dcol at element i.
template <class T>
__global__ void conv1d_col2im_kernel(ops::conv1d_shape s, const T* dcol, T* dx, std::size_t total) {
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<std::size_t>(blockDim.x) * gridDim.x)
    dx[i] = cuda_body::conv1d_col2im_element(s, dcol, i);
}

/// "batch=.., t_in=.., ..." for error messages.
inline std::string conv1d_sizes(const ops::conv1d_shape& s) {
  return "batch=" + std::to_string(s.batch) + ", t_in=" + std::to_string(s.t_in) +
         ", c_in=" + std::to_string(s.c_in) + ", c_out=" + std::to_string(s.c_out) +
         ", kernel=" + std::to_string(s.kernel) + ", stride=" + std::to_string(s.stride) +
         ", padding=" + std::to_string(s.padding);
}

/// Fills ws.col with im2col(x); returns its row count batch * t_out.
template <class T>
std::size_t conv1d_im2col(const ops::conv1d_shape& s, const T* x, ops::conv1d_workspace<cuda, T>& ws,
                          std::string_view op) {
  const std::size_t rows = s.batch * cuda_body::conv1d_t_out(s), total = rows * s.c_in * s.kernel;
  ensure_device_size(ws.col, total, op, [&] { return conv1d_sizes(s); });
  context& c = context::get(op);
  conv1d_im2col_kernel<<<grid_for(total), block_threads, 0, c.stream()>>>(s, x, ws.col.data(), total);
  after_op(op, [&] { return conv1d_sizes(s); });
  return rows;
}

}  // namespace cpc::cuda_detail

namespace cpc::ops {

/// cuda conv1d_forward: im2col, one GEMM, the bias.
template <class T>
void run(cuda, const conv1d_forward_args<T>& a, conv1d_workspace<cuda, T>& ws) {
  const conv1d_shape& s = a.shape;
  if (s.batch == 0) return;
  const std::size_t rows = cuda_detail::conv1d_im2col(s, a.x, ws, "conv1d_forward");
  const auto width = static_cast<std::ptrdiff_t>(s.c_in * s.kernel),
             c_out = static_cast<std::ptrdiff_t>(s.c_out);
  cuda_detail::device_gemm(gemm_args<T>{.m = rows,
                                        .n = s.c_out,
                                        .k = s.c_in * s.kernel,
                                        .a = ws.col.data(),
                                        .a_row_stride = width,
                                        .a_depth_stride = 1,
                                        .b = a.weight,
                                        .b_row_stride = 1,
                                        .b_col_stride = width,
                                        .c = a.y,
                                        .ldc = c_out},
                           "conv1d_forward");
  if (a.bias != nullptr) run(cuda{}, add_row_vector_args<T>{rows, s.c_out, a.bias, a.y, c_out});
}

/// cuda conv1d_backward_params: im2col, d W += dy^T col (one GEMM), d bias += column sums of dy.
template <class T>
void run(cuda, const conv1d_backward_params_args<T>& a, conv1d_workspace<cuda, T>& ws) {
  const conv1d_shape& s = a.shape;
  if (s.batch == 0) return;
  const std::size_t rows = cuda_detail::conv1d_im2col(s, a.x, ws, "conv1d_backward_params");
  const auto width = static_cast<std::ptrdiff_t>(s.c_in * s.kernel),
             c_out = static_cast<std::ptrdiff_t>(s.c_out);
  cuda_detail::device_gemm(gemm_args<T>{.m = s.c_out,
                                        .n = s.c_in * s.kernel,
                                        .k = rows,
                                        .a = a.dy,
                                        .a_row_stride = 1,
                                        .a_depth_stride = c_out,
                                        .b = ws.col.data(),
                                        .b_row_stride = width,
                                        .b_col_stride = 1,
                                        .c = a.d_weight,
                                        .ldc = width,
                                        .accumulate = true},
                           "conv1d_backward_params");
  if (a.d_bias != nullptr) run(cuda{}, sum_rows_args<T>{rows, s.c_out, a.dy, c_out, a.d_bias});
}

/// cuda conv1d_backward_input: d col = dy W (one GEMM), then the col2im gather into dx.
template <class T>
void run(cuda, const conv1d_backward_input_args<T>& a, conv1d_workspace<cuda, T>& ws) {
  const conv1d_shape& s = a.shape;
  if (s.batch == 0) return;
  const std::size_t rows = s.batch * cuda_body::conv1d_t_out(s), width = s.c_in * s.kernel;
  ensure_device_size(ws.col, rows * width, "conv1d_backward_input",
                     [&] { return cuda_detail::conv1d_sizes(s); });
  cuda_detail::device_gemm(gemm_args<T>{.m = rows,
                                        .n = width,
                                        .k = s.c_out,
                                        .a = a.dy,
                                        .a_row_stride = static_cast<std::ptrdiff_t>(s.c_out),
                                        .a_depth_stride = 1,
                                        .b = a.weight,
                                        .b_row_stride = static_cast<std::ptrdiff_t>(width),
                                        .b_col_stride = 1,
                                        .c = ws.col.data(),
                                        .ldc = static_cast<std::ptrdiff_t>(width)},
                           "conv1d_backward_input");
  const std::size_t total = s.batch * s.t_in * s.c_in;
  cuda_detail::context& c = cuda_detail::context::get("conv1d_backward_input");
  cuda_detail::
      conv1d_col2im_kernel<<<cuda_detail::grid_for(total), cuda_detail::block_threads, 0, c.stream()>>>(
          s, ws.col.data(), a.dx, total);
  cuda_detail::after_op("conv1d_backward_input", [&] { return cuda_detail::conv1d_sizes(s); });
}

}  // namespace cpc::ops
