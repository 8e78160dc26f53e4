#pragma once
/// cpu kernels of the conv2d ops (backend/op/conv2d.hpp), on the project's one GEMM engine,
/// `cpu_kernels::gemm` (backend/cpu/gemm.hpp).
///
/// The batch is cut into groups of whole images of about `group_rows` output pixels. A task takes
/// a group, gathers its receptive fields into an im2col matrix `[pixels, kernel*kernel*C_in]`
/// (order u, v, c) in task-local scratch (a few hundred KiB, so it stays in the core's L2 cache
/// between the gather and the GEMMs that read it), and runs its GEMMs on it:
///   forward   y = cols B + bias, B `[window, C_out]` = the weight, packed once per call;
///   backward  d weight^T `[window, C_out]` += cols^T dy, into the partial sum of the task's part
///             (a fixed run of consecutive groups); d bias likewise; then dcols = dy W (W packed
///             once per call) overwrites the scratch and is scattered back into dx image by image.
/// The parts' partial sums are added in order at the end. Every row of a GEMM's output depends
/// only on its row of A, on B and on k (see gemm.hpp), and the parts are fixed by the shapes, so
/// results do not depend on the thread count or on how tasks are scheduled.
#include <algorithm>
#include <array>
#include <cstddef>
#include <memory>
#include <new>

#include "cpc/backend/cpu/gemm.hpp"
#include "cpc/backend/op/conv2d.hpp"
#include "cpc/backend/tags.hpp"
#include "cpc/core/memory.hpp"
#include "cpc/core/threads.hpp"

namespace cpc::ops {

/// cpu: the packed weights and the partial sums of d weight and d bias.
template <class T>
struct conv2d_workspace<cpu, T> {
  cpu_kernels::packed_rhs<T> wpack;   ///< forward B `[window, C_out]`
  host_buffer<T> wk;                  ///< weight as `[C_out, k, k, C_in]` (d input)
  cpu_kernels::packed_rhs<T> wkpack;  ///< d input B `[C_out, window]` (wk packed)
  host_buffer<T> dwt_parts;           ///< per part: a partial d weight^T `[k, k, C_in, C_out]`
  host_buffer<T> dbias_parts;         ///< per part: a partial d bias `[C_out]`
};

namespace cpu_detail {

/// Blocking of the cpu conv2d kernels. The d weight and d bias sums depend on these (through the
/// groups and parts), never on the thread count.
template <class T>
struct conv2d_blocking {
  /// Output pixels per group (at least one whole image): 20 micro-tile rows of the GEMM, so a
  /// group's im2col matrix of the 64-channel 3x3 layers (240 x 576 floats) fits in L2.
  static constexpr std::size_t group_rows = 20 * cpu_kernels::gemm_tile<T>::rows;
  /// Output pixels per part of d weight (whole groups), and the most parts per call.
  static constexpr std::size_t part_rows = 1024;
  static constexpr std::size_t max_parts = 64;
};

/// Groups and parts of a call, fixed by its shape.
struct conv2d_plan {
  std::size_t pixels = 0;            ///< output pixels per image
  std::size_t images_per_group = 1;  ///< whole images per group
  std::size_t groups = 0;
  std::size_t groups_per_part = 1;
  std::size_t parts = 0;
};

/// The plan of a call on `s`: groups of whole images of about `group_rows` output pixels, parts of
/// about `part_rows` (whole groups, at most `max_parts`).
template <class T>
conv2d_plan conv2d_make_plan(const conv2d_shape& s) {
  using blocking = conv2d_blocking<T>;
  conv2d_plan p;
  p.pixels = s.out_height() * s.out_width();
  p.images_per_group = std::max<std::size_t>(1, blocking::group_rows / std::max<std::size_t>(1, p.pixels));
  p.groups = (s.batch + p.images_per_group - 1) / p.images_per_group;
  const std::size_t group_rows = p.images_per_group * p.pixels;
  p.groups_per_part = std::max<std::size_t>(1, blocking::part_rows / std::max<std::size_t>(1, group_rows));
  p.groups_per_part = std::max(p.groups_per_part, (p.groups + blocking::max_parts - 1) / blocking::max_parts);
  p.parts = (p.groups + p.groups_per_part - 1) / p.groups_per_part;
  return p;
}

/// Uninitialised, 64-byte aligned scratch of n scalars owned by one task.
template <class T>
class conv2d_scratch {
 public:
  explicit conv2d_scratch(std::size_t n)
      : data_(
            static_cast<T*>(::operator new (std::max<std::size_t>(1, n) * sizeof(T), std::align_val_t{64}))) {
  }
  ~conv2d_scratch() { ::operator delete (data_, std::align_val_t{64}); }
  conv2d_scratch(const conv2d_scratch&) = delete;
  conv2d_scratch& operator=(const conv2d_scratch&) = delete;
  T* data() { return data_; }

 private:
  T* data_;
};

/// Input row / column of output index i and kernel offset u, or -1 outside the image.
inline std::ptrdiff_t conv2d_source(const conv2d_shape& s, std::size_t i, std::size_t u, std::size_t extent) {
  const auto r = static_cast<std::ptrdiff_t>(i * s.stride + u) - static_cast<std::ptrdiff_t>(s.padding);
  return r >= 0 && r < static_cast<std::ptrdiff_t>(extent) ? r : -1;
}

/// cols[(b - b0) * pixels + i * W_out + j, (u * k + v) * C_in + c] = x[b, i*s+u-p, j*s+v-p, c]
/// (0 outside) for the nb images from b0. Single-threaded.
template <class T>
void conv2d_im2col(const conv2d_shape& s, const T* x, std::size_t b0, std::size_t nb, T* cols) {
  const std::size_t k = s.kernel, c_in = s.in_channels;
  const std::size_t h_out = s.out_height(), w_out = s.out_width();
  T* out = cols;
  for (std::size_t b = b0; b < b0 + nb; ++b) {
    const T* xb = x + b * s.height * s.width * c_in;
    for (std::size_t i = 0; i < h_out; ++i)
      for (std::size_t j = 0; j < w_out; ++j)
        for (std::size_t u = 0; u < k; ++u) {
          const std::ptrdiff_t r = conv2d_source(s, i, u, s.height);
          for (std::size_t v = 0; v < k; ++v, out += c_in) {
            const std::ptrdiff_t q = conv2d_source(s, j, v, s.width);
            if (r < 0 || q < 0)
              std::fill(out, out + c_in, T(0));
            else
              std::copy_n(xb + (static_cast<std::size_t>(r) * s.width + static_cast<std::size_t>(q)) * c_in,
                          c_in, out);
          }
        }
  }
}

/// dx[b] = sum of the dcols rows scattered back to their input pixels, in order, for the nb
/// images from b0 (their dx overwritten). Single-threaded.
template <class T>
void conv2d_col2im(const conv2d_shape& s, const T* dcols, std::size_t b0, std::size_t nb, T* dx) {
  const std::size_t k = s.kernel, c_in = s.in_channels;
  const std::size_t h_out = s.out_height(), w_out = s.out_width();
  std::fill(dx + b0 * s.height * s.width * c_in, dx + (b0 + nb) * s.height * s.width * c_in, T(0));
  const T* in = dcols;
  for (std::size_t b = b0; b < b0 + nb; ++b) {
    T* dxb = dx + b * s.height * s.width * c_in;
    for (std::size_t i = 0; i < h_out; ++i)
      for (std::size_t j = 0; j < w_out; ++j)
        for (std::size_t u = 0; u < k; ++u) {
          const std::ptrdiff_t r = conv2d_source(s, i, u, s.height);
          for (std::size_t v = 0; v < k; ++v, in += c_in) {
            const std::ptrdiff_t q = conv2d_source(s, j, v, s.width);
            if (r < 0 || q < 0) continue;
            T* dst = dxb + (static_cast<std::size_t>(r) * s.width + static_cast<std::size_t>(q)) * c_in;
            for (std::size_t c = 0; c < c_in; ++c) dst[c] += in[c];
          }
        }
  }
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

/// cpu conv2d_forward: B(p, o) = weight[o, c, u, v] (p = (u * k + v) * C_in + c) packed once;
/// one task per group: im2col, y = cols B, + bias.
template <class T>
void run(cpu, const conv2d_forward_args<T>& a, conv2d_workspace<cpu, T>& ws) {
  const conv2d_shape& s = a.shape;
  const cpu_detail::conv2d_plan plan = cpu_detail::conv2d_make_plan<T>(s);
  const std::size_t c_out = s.out_channels, win = s.window(), kk = s.kernel * s.kernel, c_in = s.in_channels;
  if (plan.groups == 0) return;
  ws.wpack.use_bf16(cpu_kernels::convolution_bf16<T>());
  ws.wpack.pack_rows(
      win, c_out, [&](std::size_t p) { return a.weight + (p % c_in) * kk + p / c_in; },
      static_cast<std::ptrdiff_t>(c_in * kk));
  parallel_for(0, plan.groups, [&](std::size_t g) {
    const std::size_t b0 = g * plan.images_per_group, nb = std::min(plan.images_per_group, s.batch - b0);
    const std::size_t rows = nb * plan.pixels;
    cpu_detail::conv2d_scratch<T> cols(rows * win);
    cpu_detail::conv2d_im2col(s, a.x, b0, nb, cols.data());
    alignas(64) std::array<T, cpu_kernels::gemm_workspace_size<T>()> work;
    T* y = a.y + b0 * plan.pixels * c_out;
    cpu_kernels::gemm<T>(rows, cols.data(), static_cast<std::ptrdiff_t>(win), 1, ws.wpack, y,
                         static_cast<std::ptrdiff_t>(c_out), false, work.data());
    if (a.bias != nullptr)
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t o = 0; o < c_out; ++o) y[r * c_out + o] += a.bias[o];
  });
}

/// cpu conv2d_backward: one task per part, its groups in order: im2col; d weight^T part +=
/// cols^T dy and d bias part += column sums of dy; with dx, dcols = dy W and col2im. Then the
/// parts are added in order into d weight and d bias.
template <class T>
void run(cpu, const conv2d_backward_args<T>& a, conv2d_workspace<cpu, T>& ws) {
  const conv2d_shape& s = a.shape;
  const cpu_detail::conv2d_plan plan = cpu_detail::conv2d_make_plan<T>(s);
  const std::size_t c_out = s.out_channels, win = s.window();
  if (plan.groups == 0) return;
  const std::size_t part_size = win * c_out;
  ws.dwt_parts.resize(plan.parts * part_size);
  ws.dbias_parts.resize(plan.parts * c_out);
  if (a.dx != nullptr) {
    // B(o, p) = weight[o, c, u, v] for p = (u * k + v) * C_in + c: reordered, then packed.
    cpu_detail::conv2d_reorder_weight(s, a.weight, ws.wk);
    ws.wkpack.use_bf16(cpu_kernels::convolution_bf16<T>());
    ws.wkpack.pack(ws.wk.data(), static_cast<std::ptrdiff_t>(win), 1, c_out, win);
  }
  parallel_for(0, plan.parts, [&](std::size_t part) {
    T* dwt = ws.dwt_parts.data() + part * part_size;
    T* db = ws.dbias_parts.data() + part * c_out;
    std::fill(db, db + c_out, T(0));
    const std::size_t g0 = part * plan.groups_per_part, g1 = std::min(plan.groups, g0 + plan.groups_per_part);
    cpu_detail::conv2d_scratch<T> cols(std::min(plan.images_per_group, s.batch) * plan.pixels * win);
    cpu_kernels::packed_rhs<T> dypack;
    dypack.use_bf16(cpu_kernels::convolution_bf16<T>());
    alignas(64) std::array<T, cpu_kernels::gemm_workspace_size<T>()> work;
    for (std::size_t g = g0; g < g1; ++g) {
      const std::size_t b0 = g * plan.images_per_group, nb = std::min(plan.images_per_group, s.batch - b0);
      const std::size_t rows = nb * plan.pixels;
      const T* dy = a.dy + b0 * plan.pixels * c_out;
      cpu_detail::conv2d_im2col(s, a.x, b0, nb, cols.data());
      // d weight^T(p, o) += sum_r cols[r, p] dy[r, o]: A = cols^T (a transposed operand).
      dypack.pack(dy, static_cast<std::ptrdiff_t>(c_out), 1, rows, c_out);
      cpu_kernels::gemm<T>(win, cols.data(), 1, static_cast<std::ptrdiff_t>(win), dypack, dwt,
                           static_cast<std::ptrdiff_t>(c_out), g > g0, work.data());
      if (a.dbias != nullptr)
        for (std::size_t r = 0; r < rows; ++r)
          for (std::size_t o = 0; o < c_out; ++o) db[o] += dy[r * c_out + o];
      if (a.dx == nullptr) continue;
      // dcols = dy W overwrites cols, then goes back to the images' pixels.
      cpu_kernels::gemm<T>(rows, dy, static_cast<std::ptrdiff_t>(c_out), 1, ws.wkpack, cols.data(),
                           static_cast<std::ptrdiff_t>(win), false, work.data());
      cpu_detail::conv2d_col2im(s, static_cast<const T*>(cols.data()), b0, nb, a.dx);
    }
  });
  // Parts in order; d weight^T [k, k, C_in, C_out] -> d weight [C_out, C_in, k, k].
  for (std::size_t part = 1; part < plan.parts; ++part) {
    const T* src = ws.dwt_parts.data() + part * part_size;
    for (std::size_t i = 0; i < part_size; ++i) ws.dwt_parts[i] += src[i];
    if (a.dbias != nullptr)
      for (std::size_t o = 0; o < c_out; ++o) ws.dbias_parts[o] += ws.dbias_parts[part * c_out + o];
  }
  const std::size_t c_in = s.in_channels, kk = s.kernel * s.kernel;
  for (std::size_t o = 0; o < c_out; ++o)
    for (std::size_t c = 0; c < c_in; ++c)
      for (std::size_t q = 0; q < kk; ++q)
        a.dweight[(o * c_in + c) * kk + q] += ws.dwt_parts[(q * c_in + c) * c_out + o];
  if (a.dbias != nullptr)
    for (std::size_t o = 0; o < c_out; ++o) a.dbias[o] += ws.dbias_parts[o];
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
