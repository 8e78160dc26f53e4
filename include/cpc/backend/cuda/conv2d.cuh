#pragma once
/// cuda kernels of the 2-D convolution ops (backend/op/conv2d.hpp) as im2col + cuBLAS GEMM (see
/// backend/cuda/body/conv2d.hpp): forward y = col W^T, then the bias row-wise; backward
/// d W += dy^T col (col rebuilt from x), d bias += column sums of dy, d col = dy W and the col2im
/// gather into dx; `zero_kernel_rows` one thread per zeroed weight. The im2col matrix
/// `[batch * H_out * W_out, C_in * k * k]` lives in the layer's workspace. Every pointer is device
/// memory. Errors: `device_error` (also when the workspace does not fit).
#include <cstddef>
#include <string>

#include "cpc/backend/cuda/blas.cuh"
#include "cpc/backend/cuda/body/conv2d.hpp"
#include "cpc/backend/cuda/launch.cuh"
#include "cpc/backend/cuda/memory.hpp"
#include "cpc/backend/op/conv2d.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc::ops {

/// Scratch of the cuda conv2d ops: the im2col matrix (or its gradient), device memory, grown as needed.
template <class T>
struct conv2d_workspace<cuda, T> {
  device_buffer<T> col;
};

}  // namespace cpc::ops

namespace cpc::cuda_detail {

/// col[i] = the im2col element i of x.
template <class T>
__global__ void conv2d_im2col_kernel(ops::conv2d_shape s, const T* x, T* col, std::size_t total) {
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<std::size_t>(blockDim.x) * gridDim.x)
    col[i] = cuda_body::conv2d_im2col_element(s, x, i);
}

/// dx[i] = the col2im gather of dcol at element i.
template <class T>
__global__ void conv2d_col2im_kernel(ops::conv2d_shape s, const T* dcol, T* dx, std::size_t total) {
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<std::size_t>(blockDim.x) * gridDim.x)
    dx[i] = cuda_body::conv2d_col2im_element(s, dcol, i);
}

/// "batch=.., height=.., ..." for error messages.
inline std::string conv2d_sizes(const ops::conv2d_shape& s) {
  return "batch=" + std::to_string(s.batch) + ", height=" + std::to_string(s.height) +
         ", width=" + std::to_string(s.width) + ", in_channels=" + std::to_string(s.in_channels) +
         ", out_channels=" + std::to_string(s.out_channels) + ", kernel=" + std::to_string(s.kernel) +
         ", stride=" + std::to_string(s.stride) + ", padding=" + std::to_string(s.padding);
}

/// Fills ws.col with im2col(x); returns its row count batch * H_out * W_out.
template <class T>
std::size_t conv2d_im2col(const ops::conv2d_shape& s, const T* x, ops::conv2d_workspace<cuda, T>& ws,
                          std::string_view op) {
  const std::size_t rows = s.batch * cuda_body::conv2d_out_height(s) * cuda_body::conv2d_out_width(s);
  const std::size_t total = rows * s.in_channels * s.kernel * s.kernel;
  ensure_device_size(ws.col, total, op, [&] { return conv2d_sizes(s); });
  context& c = context::get(op);
  conv2d_im2col_kernel<<<grid_for(total), block_threads, 0, c.stream()>>>(s, x, ws.col.data(), total);
  after_op(op, [&] { return conv2d_sizes(s); });
  return rows;
}

}  // namespace cpc::cuda_detail

namespace cpc::ops {

/// cuda conv2d_forward: im2col, one GEMM, the bias.
template <class T>
void run(cuda, const conv2d_forward_args<T>& a, conv2d_workspace<cuda, T>& ws) {
  const conv2d_shape& s = a.shape;
  if (s.batch == 0) return;
  const std::size_t rows = cuda_detail::conv2d_im2col(s, a.x, ws, "conv2d_forward");
  const std::size_t width = s.in_channels * s.kernel * s.kernel;
  const auto sw = static_cast<std::ptrdiff_t>(width), co = static_cast<std::ptrdiff_t>(s.out_channels);
  cuda_detail::device_gemm(gemm_args<T>{.m = rows,
                                        .n = s.out_channels,
                                        .k = width,
                                        .a = ws.col.data(),
                                        .a_row_stride = sw,
                                        .a_depth_stride = 1,
                                        .b = a.weight,
                                        .b_row_stride = 1,
                                        .b_col_stride = sw,
                                        .c = a.y,
                                        .ldc = co},
                           "conv2d_forward");
  if (a.bias != nullptr) run(cuda{}, add_row_vector_args<T>{rows, s.out_channels, a.bias, a.y, co});
}

/// cuda conv2d_backward: im2col; d W += dy^T col; d bias += column sums of dy; dx = col2im(dy W).
template <class T>
void run(cuda, const conv2d_backward_args<T>& a, conv2d_workspace<cuda, T>& ws) {
  const conv2d_shape& s = a.shape;
  if (s.batch == 0) return;
  const std::size_t rows = cuda_detail::conv2d_im2col(s, a.x, ws, "conv2d_backward");
  const std::size_t width = s.in_channels * s.kernel * s.kernel;
  const auto sw = static_cast<std::ptrdiff_t>(width), co = static_cast<std::ptrdiff_t>(s.out_channels);
  cuda_detail::device_gemm(gemm_args<T>{.m = s.out_channels,
                                        .n = width,
                                        .k = rows,
                                        .a = a.dy,
                                        .a_row_stride = 1,
                                        .a_depth_stride = co,
                                        .b = ws.col.data(),
                                        .b_row_stride = sw,
                                        .b_col_stride = 1,
                                        .c = a.dweight,
                                        .ldc = sw,
                                        .accumulate = true},
                           "conv2d_backward");
  if (a.dbias != nullptr) run(cuda{}, sum_rows_args<T>{rows, s.out_channels, a.dy, co, a.dbias});
  if (a.dx == nullptr) return;
  cuda_detail::device_gemm(gemm_args<T>{.m = rows,
                                        .n = width,
                                        .k = s.out_channels,
                                        .a = a.dy,
                                        .a_row_stride = co,
                                        .a_depth_stride = 1,
                                        .b = a.weight,
                                        .b_row_stride = sw,
                                        .b_col_stride = 1,
                                        .c = ws.col.data(),
                                        .ldc = sw},
                           "conv2d_backward");
  const std::size_t total = s.batch * s.height * s.width * s.in_channels;
  cuda_detail::context& c = cuda_detail::context::get("conv2d_backward");
  cuda_detail::
      conv2d_col2im_kernel<<<cuda_detail::grid_for(total), cuda_detail::block_threads, 0, c.stream()>>>(
          s, ws.col.data(), a.dx, total);
  cuda_detail::after_op("conv2d_backward", [&] { return cuda_detail::conv2d_sizes(s); });
}

/// cuda zero_kernel_rows: one thread per zeroed weight.
template <class T>
void run(cuda, const zero_kernel_rows_args<T>& a) {
  if (a.keep_rows >= a.kernel) return;
  cuda_detail::launch_elements("zero_kernel_rows", a, a.slices * (a.kernel - a.keep_rows) * a.kernel, [&] {
    return "slices=" + std::to_string(a.slices) + ", kernel=" + std::to_string(a.kernel) +
           ", keep_rows=" + std::to_string(a.keep_rows);
  });
}

}  // namespace cpc::ops
