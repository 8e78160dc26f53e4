#pragma once
/// cuda kernels of the recurrent ops (backend/op/recurrent.hpp). The cells are element-wise launches
/// of the bodies in backend/cuda/body/recurrent.hpp (one thread per (row, unit), double inside).
/// The time loops run on the host, per step one cuBLAS GEMM for h_{t-1} W_hh^T (forward) or
/// dh += dG_h W_hh (backward) and one cell launch, as the op contract describes; the gate gradients
/// are written straight into `dgh` / `dgh0`. Every pointer is device memory. Errors: `device_error`.
#include <cuda_runtime.h>

#include <cstddef>
#include <string>

#include "cpc/backend/cuda/blas.cuh"
#include "cpc/backend/cuda/body/recurrent.hpp"
#include "cpc/backend/cuda/launch.cuh"
#include "cpc/backend/cuda/memory.hpp"
#include "cpc/backend/op/recurrent.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc::ops {

/// Scratch of the cuda recurrent ops: the recurrent products `[batch, G*H]` of one step and the
/// recurrent gradients dh, dc `[batch, H]`, device memory, grown as needed.
template <class T>
struct recurrent_workspace<cuda, T> {
  device_buffer<T> rec, dh, dc;
};

/// cuda rnn_cell_forward: one thread per (row, unit).
template <class T>
void run(cuda, const rnn_cell_forward_args<T>& a) {
  cuda_detail::launch_elements("rnn_cell_forward", a, a.rows * a.hidden, [&] {
    return "rows=" + std::to_string(a.rows) + ", hidden=" + std::to_string(a.hidden);
  });
}

/// cuda rnn_cell_backward: one thread per (row, unit).
template <class T>
void run(cuda, const rnn_cell_backward_args<T>& a) {
  cuda_detail::launch_elements("rnn_cell_backward", a, a.rows * a.hidden, [&] {
    return "rows=" + std::to_string(a.rows) + ", hidden=" + std::to_string(a.hidden);
  });
}

/// cuda recurrent_forward: per step a cuBLAS GEMM and a cell launch.
template <class T>
void run(cuda, const recurrent_forward_args<T>& a, recurrent_workspace<cuda, T>& ws) {
  const std::size_t B = a.batch, T_ = a.time, H = a.hidden, GH = rnn_gates(a.cell) * H;
  if (B == 0 || T_ == 0 || H == 0) return;
  ensure_device_size(ws.rec, B * GH, "recurrent_forward", [&] {
    return "batch=" + std::to_string(B) + ", time=" + std::to_string(T_) + ", hidden=" + std::to_string(H);
  });
  const auto sH = static_cast<std::ptrdiff_t>(H), sGH = static_cast<std::ptrdiff_t>(GH),
             sTH = static_cast<std::ptrdiff_t>(T_ * H), sTGH = static_cast<std::ptrdiff_t>(T_ * GH);
  for (std::size_t t = 0; t < T_; ++t) {
    const T* h_prev = t == 0 ? a.h0 : a.h + (t - 1) * H;
    const std::ptrdiff_t ld_prev = t == 0 ? sH : sTH;
    cuda_detail::device_gemm(gemm_args<T>{.m = B,
                                          .n = GH,
                                          .k = H,
                                          .a = h_prev,
                                          .a_row_stride = ld_prev,
                                          .a_depth_stride = 1,
                                          .b = a.w_hh,
                                          .b_row_stride = 1,
                                          .b_col_stride = sH,
                                          .c = ws.rec.data(),
                                          .ldc = sGH},
                             "recurrent_forward");
    const T* c_prev = rnn_has_cell_state(a.cell) ? (t == 0 ? a.c0 : a.extra + (t - 1) * H) : nullptr;
    run(cuda{}, rnn_cell_forward_args<T>{.cell = a.cell,
                                         .rows = B,
                                         .hidden = H,
                                         .gates = a.gates + t * GH,
                                         .ld_gates = sTGH,
                                         .rec = ws.rec.data(),
                                         .ld_rec = sGH,
                                         .b_ih = a.b_ih,
                                         .b_hh = a.b_hh,
                                         .h_prev = h_prev,
                                         .ld_h_prev = ld_prev,
                                         .c_prev = c_prev,
                                         .ld_c_prev = ld_prev,
                                         .h = a.h + t * H,
                                         .ld_h = sTH,
                                         .extra = a.extra + t * H,
                                         .ld_extra = sTH});
  }
}

/// cuda recurrent_backward: per step (last to first) a cell launch and a cuBLAS GEMM.
template <class T>
void run(cuda, const recurrent_backward_args<T>& a, recurrent_workspace<cuda, T>& ws) {
  const std::size_t B = a.batch, T_ = a.time, H = a.hidden, GH = rnn_gates(a.cell) * H;
  if (B == 0 || T_ == 0 || H == 0) return;
  const auto sizes = [&] {
    return "batch=" + std::to_string(B) + ", time=" + std::to_string(T_) + ", hidden=" + std::to_string(H);
  };
  cuda_detail::context& c = cuda_detail::context::get("recurrent_backward");
  ensure_device_size(ws.dh, B * H, "recurrent_backward", sizes);
  ensure_device_size(ws.dc, B * H, "recurrent_backward", sizes);
  cuda_detail::check(cudaMemsetAsync(ws.dh.data(), 0, B * H * sizeof(T), c.stream()), "recurrent_backward",
                     sizes);
  cuda_detail::check(cudaMemsetAsync(ws.dc.data(), 0, B * H * sizeof(T), c.stream()), "recurrent_backward",
                     sizes);
  // dgh[b, time - 1] = 0 (no step after the last).
  cuda_detail::check(
      cudaMemset2DAsync(a.dgh + (T_ - 1) * GH, T_ * GH * sizeof(T), 0, GH * sizeof(T), B, c.stream()),
      "recurrent_backward", sizes);
  const auto sH = static_cast<std::ptrdiff_t>(H), sGH = static_cast<std::ptrdiff_t>(GH),
             sTH = static_cast<std::ptrdiff_t>(T_ * H), sTGH = static_cast<std::ptrdiff_t>(T_ * GH);
  for (std::size_t t = T_; t-- > 0;) {
    const T* h_prev = t == 0 ? a.h0 : a.h + (t - 1) * H;
    const std::ptrdiff_t ld_prev = t == 0 ? sH : sTH;
    const T* c_prev = rnn_has_cell_state(a.cell) ? (t == 0 ? a.c0 : a.extra + (t - 1) * H) : nullptr;
    T* dgh = t == 0 ? a.dgh0 : a.dgh + (t - 1) * GH;
    const std::ptrdiff_t ld_dgh = t == 0 ? sGH : sTGH;
    run(cuda{}, rnn_cell_backward_args<T>{.cell = a.cell,
                                          .rows = B,
                                          .hidden = H,
                                          .gates = a.gates + t * GH,
                                          .ld_gates = sTGH,
                                          .extra = a.extra + t * H,
                                          .ld_extra = sTH,
                                          .h_prev = h_prev,
                                          .ld_h_prev = ld_prev,
                                          .c_prev = c_prev,
                                          .ld_c_prev = ld_prev,
                                          .dy = a.dy + t * H,
                                          .ld_dy = sTH,
                                          .dh = ws.dh.data(),
                                          .ld_dh = sH,
                                          .dc = ws.dc.data(),
                                          .ld_dc = sH,
                                          .dgi = a.dgi + t * GH,
                                          .ld_dgi = sTGH,
                                          .dgh = dgh,
                                          .ld_dgh = ld_dgh});
    if (t == 0) break;
    cuda_detail::device_gemm(gemm_args<T>{.m = B,
                                          .n = H,
                                          .k = GH,
                                          .a = dgh,
                                          .a_row_stride = ld_dgh,
                                          .a_depth_stride = 1,
                                          .b = a.w_hh,
                                          .b_row_stride = sH,
                                          .b_col_stride = 1,
                                          .c = ws.dh.data(),
                                          .ldc = sH,
                                          .accumulate = true},
                             "recurrent_backward");
  }
}

}  // namespace cpc::ops
