#pragma once
/// cpu kernels of the conv2d ops (backend/op/conv2d.hpp). The images are processed in chunks of
/// whole images (about `chunk_rows` output pixels each). For a chunk, the receptive fields are
/// gathered into an im2col matrix `[pixels, kernel*kernel*C_in]` (order u, v, c), and the forward
/// pass is one GEMM with the weight reordered to `[C_out, kernel, kernel, C_in]`, split over fixed
/// row blocks. Backward recomputes the same matrix: d weight += dy^T cols (split over
/// output-channel blocks and fixed row parts, partial sums added in order), and dx by
/// dcols = dy W scattered back image by image. Every output element is written by one task in a
/// fixed order, so results do not depend on the thread count.
#include <algorithm>
#include <cstddef>

#include "cpc/backend/cpu/eigen.hpp"
#include "cpc/backend/op/conv2d.hpp"
#include "cpc/backend/tags.hpp"
#include "cpc/core/memory.hpp"
#include "cpc/core/threads.hpp"

namespace cpc::ops {

/// cpu: the im2col matrix of one chunk, the reordered weight and the weight-gradient partials.
template <class T>
struct conv2d_workspace<cpu, T> {
  host_buffer<T> wk;         ///< weight as `[C_out, k, k, C_in]`
  host_buffer<T> dwk;        ///< d weight as `[C_out, k, k, C_in]`
  host_buffer<T> dwk_parts;  ///< per row part: a partial d weight `[C_out, k, k, C_in]`
  host_buffer<T> cols;       ///< im2col (forward) or dcols (backward) of one chunk
};

namespace cpu_detail {

/// Blocking of the cpu conv2d kernels (fixed: results depend on them, never on threads).
struct conv2d_blocking {
  static constexpr std::size_t chunk_rows = 4096;   ///< output pixels per chunk (whole images)
  static constexpr std::size_t row_block = 256;     ///< output pixels per task
  static constexpr std::size_t channel_block = 64;  ///< output channels per task in d weight
  static constexpr std::size_t part_rows = 1024;    ///< output pixels per partial d weight
};

/// Images per chunk.
inline std::size_t conv2d_images_per_chunk(const conv2d_shape& s) {
  const std::size_t pixels = s.out_height() * s.out_width();
  return std::max<std::size_t>(1, conv2d_blocking::chunk_rows / std::max<std::size_t>(1, pixels));
}

/// Output pixels of the largest chunk.
inline std::size_t conv2d_chunk_rows_max(const conv2d_shape& s) {
  return std::min(conv2d_images_per_chunk(s), s.batch) * s.out_height() * s.out_width();
}

/// Calls f(first image, images) for consecutive chunks of whole images, in order, after sizing
/// `cols` for the largest chunk.
template <class T, class F>
void conv2d_for_each_chunk(const conv2d_shape& s, host_buffer<T>& cols, F&& f) {
  const std::size_t per = conv2d_images_per_chunk(s);
  const std::size_t n = std::min(per, s.batch);
  cols.resize(n * s.out_height() * s.out_width() * s.window());
  for (std::size_t b0 = 0; b0 < s.batch; b0 += per) f(b0, std::min(per, s.batch - b0));
}

/// Input row / column of output index i and kernel offset u, or -1 outside the image.
inline std::ptrdiff_t conv2d_source(const conv2d_shape& s, std::size_t i, std::size_t u, std::size_t extent) {
  const auto r = static_cast<std::ptrdiff_t>(i * s.stride + u) - static_cast<std::ptrdiff_t>(s.padding);
  return r >= 0 && r < static_cast<std::ptrdiff_t>(extent) ? r : -1;
}

/// cols[(b - b0) * pixels + i * W_out + j, (u * k + v) * C_in + c] = x[b, i*s+u-p, j*s+v-p, c] (0 outside).
template <class T>
void conv2d_im2col(const conv2d_shape& s, const T* x, std::size_t b0, std::size_t nb, T* cols) {
  const std::size_t k = s.kernel, c_in = s.in_channels, win = s.window();
  const std::size_t h_out = s.out_height(), w_out = s.out_width();
  parallel_for(0, nb, [&](std::size_t ib) {
    const T* xb = x + (b0 + ib) * s.height * s.width * c_in;
    T* out = cols + ib * h_out * w_out * win;
    for (std::size_t i = 0; i < h_out; ++i)
      for (std::size_t j = 0; j < w_out; ++j, out += win)
        for (std::size_t u = 0; u < k; ++u) {
          const std::ptrdiff_t r = conv2d_source(s, i, u, s.height);
          for (std::size_t v = 0; v < k; ++v) {
            const std::ptrdiff_t q = conv2d_source(s, j, v, s.width);
            T* dst = out + (u * k + v) * c_in;
            if (r < 0 || q < 0)
              std::fill(dst, dst + c_in, T(0));
            else
              std::copy_n(xb + (static_cast<std::size_t>(r) * s.width + static_cast<std::size_t>(q)) * c_in,
                          c_in, dst);
          }
        }
  });
}

/// dx[b] = sum of the dcols rows scattered back to their input pixels, in order (dx overwritten).
template <class T>
void conv2d_col2im(const conv2d_shape& s, const T* dcols, std::size_t b0, std::size_t nb, T* dx) {
  const std::size_t k = s.kernel, c_in = s.in_channels, win = s.window();
  const std::size_t h_out = s.out_height(), w_out = s.out_width();
  parallel_for(0, nb, [&](std::size_t ib) {
    T* dxb = dx + (b0 + ib) * s.height * s.width * c_in;
    std::fill(dxb, dxb + s.height * s.width * c_in, T(0));
    const T* in = dcols + ib * h_out * w_out * win;
    for (std::size_t i = 0; i < h_out; ++i)
      for (std::size_t j = 0; j < w_out; ++j, in += win)
        for (std::size_t u = 0; u < k; ++u) {
          const std::ptrdiff_t r = conv2d_source(s, i, u, s.height);
          if (r < 0) continue;
          for (std::size_t v = 0; v < k; ++v) {
            const std::ptrdiff_t q = conv2d_source(s, j, v, s.width);
            if (q < 0) continue;
            T* dst = dxb + (static_cast<std::size_t>(r) * s.width + static_cast<std::size_t>(q)) * c_in;
            const T* src = in + (u * k + v) * c_in;
            for (std::size_t c = 0; c < c_in; ++c) dst[c] += src[c];
          }
        }
  });
}

/// weight [C_out, C_in, k, k] -> wk [C_out, k, k, C_in] (the im2col order).
template <class T>
void conv2d_reorder_weight(const conv2d_shape& s, const T* w, host_buffer<T>& wk) {
  const std::size_t c_out = s.out_channels, c_in = s.in_channels, kk = s.kernel * s.kernel;
  wk.resize(c_out * c_in * kk);
  for (std::size_t o = 0; o < c_out; ++o)
    for (std::size_t c = 0; c < c_in; ++c)
      for (std::size_t q = 0; q < kk; ++q) wk[(o * kk + q) * c_in + c] = w[(o * c_in + c) * kk + q];
}

}  // namespace cpu_detail

/// cpu conv2d_forward: per chunk, im2col then y = cols wk^T (+ bias) over row blocks of 256 pixels.
template <class T>
void run(cpu, const conv2d_forward_args<T>& a, conv2d_workspace<cpu, T>& ws) {
  using blocking = cpu_detail::conv2d_blocking;
  const conv2d_shape& s = a.shape;
  const std::size_t pixels = s.out_height() * s.out_width();
  cpu_detail::conv2d_reorder_weight(s, a.weight, ws.wk);
  const auto c_out = static_cast<std::ptrdiff_t>(s.out_channels);
  const auto win = static_cast<std::ptrdiff_t>(s.window());
  cpu_detail::conv2d_for_each_chunk(s, ws.cols, [&](std::size_t b0, std::size_t nb) {
    cpu_detail::conv2d_im2col(s, a.x, b0, nb, ws.cols.data());
    const std::size_t rows = nb * pixels;
    T* y0 = a.y + b0 * pixels * s.out_channels;
    parallel_for(0, (rows + blocking::row_block - 1) / blocking::row_block, [&](std::size_t blk) {
      const std::size_t r0 = blk * blocking::row_block;
      const auto n = static_cast<std::ptrdiff_t>(std::min(blocking::row_block, rows - r0));
      auto yb = cpu_kernels::matrix_map(y0 + r0 * s.out_channels, n, c_out);
      yb.noalias() = cpu_kernels::matrix_map(
                         static_cast<const T*>(ws.cols.data()) + r0 * static_cast<std::size_t>(win), n, win) *
                     cpu_kernels::matrix_map(static_cast<const T*>(ws.wk.data()), c_out, win).transpose();
      if (a.bias != nullptr) yb.rowwise() += cpu_kernels::row_vector_map(a.bias, c_out);
    });
  });
}

/// cpu conv2d_backward: per chunk, im2col; d weight by (channel block, row part) tasks into
/// partial sums added in order; d bias by Eigen's column sums; dcols = dy wk over row blocks,
/// scattered back image by image.
template <class T>
void run(cpu, const conv2d_backward_args<T>& a, conv2d_workspace<cpu, T>& ws) {
  using blocking = cpu_detail::conv2d_blocking;
  const conv2d_shape& s = a.shape;
  const std::size_t pixels = s.out_height() * s.out_width();
  cpu_detail::conv2d_reorder_weight(s, a.weight, ws.wk);
  const std::size_t c_out = s.out_channels;
  const auto win = static_cast<std::ptrdiff_t>(s.window());
  ws.dwk.assign(c_out * static_cast<std::size_t>(win), T(0));
  ws.dwk_parts.resize(
      ((cpu_detail::conv2d_chunk_rows_max(s) + blocking::part_rows - 1) / blocking::part_rows) *
      ws.dwk.size());
  cpu_detail::conv2d_for_each_chunk(s, ws.cols, [&](std::size_t b0, std::size_t nb) {
    cpu_detail::conv2d_im2col(s, a.x, b0, nb, ws.cols.data());
    const std::size_t rows = nb * pixels;
    const T* dy0 = a.dy + b0 * pixels * c_out;
    // d weight and d bias: task (channel block, row part) adds into its own partial sum; the
    // parts are fixed by the chunk geometry and summed in order below (deterministic).
    const std::size_t c_blocks = (c_out + blocking::channel_block - 1) / blocking::channel_block;
    const std::size_t parts = (rows + blocking::part_rows - 1) / blocking::part_rows;
    parallel_for(0, c_blocks * parts, [&](std::size_t task) {
      const std::size_t o0 = (task / parts) * blocking::channel_block,
                        r0 = (task % parts) * blocking::part_rows;
      const auto n = static_cast<std::ptrdiff_t>(std::min(blocking::channel_block, c_out - o0));
      const auto nr = static_cast<std::ptrdiff_t>(std::min(blocking::part_rows, rows - r0));
      const auto dyb =
          cpu_kernels::strided_map(dy0 + r0 * c_out + o0, nr, n, static_cast<std::ptrdiff_t>(c_out));
      T* part = ws.dwk_parts.data() + (task % parts) * c_out * static_cast<std::size_t>(win);
      cpu_kernels::matrix_map(part + o0 * static_cast<std::size_t>(win), n, win).noalias() =
          dyb.transpose() *
          cpu_kernels::matrix_map(static_cast<const T*>(ws.cols.data()) + r0 * static_cast<std::size_t>(win),
                                  nr, win);
    });
    for (std::size_t q = 0; q < parts; ++q)
      cpu_kernels::row_vector_map(ws.dwk.data(), static_cast<std::ptrdiff_t>(ws.dwk.size())) +=
          cpu_kernels::row_vector_map(static_cast<const T*>(ws.dwk_parts.data()) + q * ws.dwk.size(),
                                      static_cast<std::ptrdiff_t>(ws.dwk.size()));
    if (a.dbias != nullptr)
      cpu_kernels::row_vector_map(a.dbias, static_cast<std::ptrdiff_t>(c_out)) +=
          cpu_kernels::matrix_map(dy0, static_cast<std::ptrdiff_t>(rows), static_cast<std::ptrdiff_t>(c_out))
              .colwise()
              .sum();
    if (a.dx == nullptr) return;
    // dcols = dy W (rows x window), reusing cols, then scattered back one image per task.
    parallel_for(0, (rows + blocking::row_block - 1) / blocking::row_block, [&](std::size_t blk) {
      const std::size_t r0 = blk * blocking::row_block;
      const auto n = static_cast<std::ptrdiff_t>(std::min(blocking::row_block, rows - r0));
      cpu_kernels::matrix_map(ws.cols.data() + r0 * static_cast<std::size_t>(win), n, win).noalias() =
          cpu_kernels::matrix_map(dy0 + r0 * c_out, n, static_cast<std::ptrdiff_t>(c_out)) *
          cpu_kernels::matrix_map(static_cast<const T*>(ws.wk.data()), static_cast<std::ptrdiff_t>(c_out),
                                  win);
    });
    cpu_detail::conv2d_col2im(s, static_cast<const T*>(ws.cols.data()), b0, nb, a.dx);
  });
  // dwk [C_out, k, k, C_in] -> weight grad [C_out, C_in, k, k].
  const std::size_t c_in = s.in_channels, kk = s.kernel * s.kernel;
  for (std::size_t o = 0; o < c_out; ++o)
    for (std::size_t c = 0; c < c_in; ++c)
      for (std::size_t q = 0; q < kk; ++q)
        a.dweight[(o * c_in + c) * kk + q] += ws.dwk[(o * kk + q) * c_in + c];
}

/// cpu zero_kernel_rows: one pass over the slices (a weight is small).
template <class T>
void run(cpu, const zero_kernel_rows_args<T>& a) {
  const std::size_t k = a.kernel;
  for (std::size_t s = 0; s < a.slices; ++s)
    for (std::size_t u = a.keep_rows; u < k; ++u)
      for (std::size_t v = 0; v < k; ++v) a.w[(s * k + u) * k + v] = T(0);
}

}  // namespace cpc::ops
