#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "cpc/backend/cpu/eigen.hpp"
#include "cpc/backend/tags.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/core/threads.hpp"
#include "cpc/layers/init.hpp"

namespace cpc {

/// 2-D convolution on channel-last images with zero padding on all four sides:
/// y[b,i,j,o] = bias[o] + sum_{c,u,v} weight[o,c,u,v] * x[b, i*stride + u - padding, j*stride + v - padding,
/// c]. Shapes: x `[batch, H, W, C_in]` -> y `[batch, H_out, W_out, C_out]` with H_out = (H + 2*padding -
/// kernel) / stride + 1 (floor; W_out likewise); weight
/// `[C_out, C_in, kernel, kernel]`, bias `[C_out]` (PyTorch's layout and names).
/// Init: PyTorch's default, U(+-1/sqrt(C_in*kernel*kernel)) for weight and bias.
/// Errors: `cpc::shape_error` on a wrong channel count, an image smaller than the kernel (after
/// padding) or a wrong gradient shape; `cpc::config_error` on a zero size or stride.
/// Source: torch.nn.Conv2d (on NCHW, so y here is its output permuted to NHWC).
///
/// How it runs: the images are processed in chunks of whole images (about `chunk_rows` output
/// pixels each). For a chunk, the receptive fields are gathered into an im2col matrix
/// `[pixels, kernel*kernel*C_in]` (order u, v, c), and the forward pass is one GEMM with the
/// weight reordered to `[C_out, kernel, kernel, C_in]`, split over fixed row blocks. Backward
/// recomputes the same matrix: d weight += dy^T cols (split over output-channel blocks and fixed
/// row parts, partial sums added in order), and dx by dcols = dy W scattered back image by image. Every
/// output element is written by one task in a fixed order, so results do not depend on the thread count.
template <class T, class Backend = cpu>
class conv2d {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// Sizes (square kernel); `padding` zeros are added on every side; `bias = false` drops the bias.
  struct options {
    std::size_t in_channels = 0;
    std::size_t out_channels = 0;
    std::size_t kernel = 0;
    std::size_t stride = 1;
    std::size_t padding = 0;
    bool bias = true;
  };

  /// Builds the layer and draws PyTorch's default initial weights from `gen` (weight, then bias).
  conv2d(options opt, rng& gen) : opt_(opt) {
    if (opt.in_channels == 0 || opt.out_channels == 0 || opt.kernel == 0 || opt.stride == 0)
      throw config_error("conv2d: expected in_channels, out_channels, kernel and stride > 0, got " +
                         std::to_string(opt.in_channels) + ", " + std::to_string(opt.out_channels) + ", " +
                         std::to_string(opt.kernel) + ", " + std::to_string(opt.stride));
    weight_ = parameter<T>({opt.out_channels, opt.in_channels, opt.kernel, opt.kernel});
    const double bound = default_init_bound(opt.in_channels * opt.kernel * opt.kernel);
    init_uniform(weight_, bound, gen);
    if (opt.bias) {
      bias_ = parameter<T>({opt.out_channels});
      init_uniform(bias_, bound, gen);
    }
  }

  const options& config() const { return opt_; }

  /// Output extent (n + 2*padding - kernel) / stride + 1 of one spatial axis of length n.
  /// Errors: `cpc::shape_error` when n + 2*padding < kernel.
  std::size_t output_size(std::size_t n) const {
    if (n + 2 * opt_.padding < opt_.kernel)
      throw shape_error("conv2d::output_size: expected an extent >= " +
                        std::to_string(opt_.kernel - std::min(opt_.kernel, 2 * opt_.padding)) + " (kernel " +
                        std::to_string(opt_.kernel) + ", padding " + std::to_string(opt_.padding) +
                        "), got " + std::to_string(n));
    return (n + 2 * opt_.padding - opt_.kernel) / opt_.stride + 1;
  }

  /// y = conv(x) + bias. Shapes: x `[B, H, W, C_in]`, y resized to `[B, H_out, W_out, C_out]`.
  void forward(const tensor4<T>& x, tensor4<T>& y) {
    const geometry g = check_input("conv2d forward input", x);
    ensure_shape(y, std::array<std::size_t, 4>{g.batch, g.h_out, g.w_out, opt_.out_channels});
    reorder_weight();
    const auto c_out = static_cast<std::ptrdiff_t>(opt_.out_channels);
    const auto win = window();
    for_each_chunk(g, [&](std::size_t b0, std::size_t nb) {
      im2col(x, g, b0, nb);
      const std::size_t rows = nb * g.pixels_out();
      T* y0 = y.data() + b0 * g.pixels_out() * opt_.out_channels;
      parallel_for(0, (rows + row_block - 1) / row_block, [&](std::size_t blk) {
        const std::size_t r0 = blk * row_block;
        const auto n = static_cast<std::ptrdiff_t>(std::min(row_block, rows - r0));
        auto yb = cpu_kernels::matrix_map(y0 + r0 * opt_.out_channels, n, c_out);
        yb.noalias() = cpu_kernels::matrix_map(
                           static_cast<const T*>(cols_.data()) + r0 * static_cast<std::size_t>(win), n, win) *
                       cpu_kernels::matrix_map(static_cast<const T*>(wk_.data()), c_out, win).transpose();
        if (opt_.bias)
          yb.rowwise() += cpu_kernels::row_vector_map(static_cast<const T*>(bias_.value.data()), c_out);
      });
    });
  }

  /// Accumulates d weight and d bias; writes dx (`[B, H, W, C_in]`, overwritten) when `dx` is not
  /// null. Shapes: x `[B, H, W, C_in]`, dy `[B, H_out, W_out, C_out]`. `y` is unused.
  void backward(const tensor4<T>& x, const tensor4<T>& /*y*/, const tensor4<T>& dy, tensor4<T>* dx) {
    const geometry g = check_input("conv2d backward input", x);
    check_shape("conv2d backward output gradient", dy,
                {static_cast<std::ptrdiff_t>(g.batch), static_cast<std::ptrdiff_t>(g.h_out),
                 static_cast<std::ptrdiff_t>(g.w_out), static_cast<std::ptrdiff_t>(opt_.out_channels)});
    reorder_weight();
    const std::size_t c_out = opt_.out_channels;
    const auto win = window();
    dwk_.assign(c_out * static_cast<std::size_t>(win), T(0));
    dwk_parts_.resize(((chunk_rows_max(g) + part_rows - 1) / part_rows) * dwk_.size());
    if (dx != nullptr) ensure_shape(*dx, x.shape());
    for_each_chunk(g, [&](std::size_t b0, std::size_t nb) {
      im2col(x, g, b0, nb);
      const std::size_t rows = nb * g.pixels_out();
      const T* dy0 = dy.data() + b0 * g.pixels_out() * c_out;
      // d weight and d bias: task (channel block, row part) adds into its own partial sum; the
      // parts are fixed by the chunk geometry and summed in order below (deterministic).
      const std::size_t c_blocks = (c_out + channel_block - 1) / channel_block;
      const std::size_t parts = (rows + part_rows - 1) / part_rows;
      parallel_for(0, c_blocks * parts, [&](std::size_t task) {
        const std::size_t o0 = (task / parts) * channel_block, r0 = (task % parts) * part_rows;
        const auto n = static_cast<std::ptrdiff_t>(std::min(channel_block, c_out - o0));
        const auto nr = static_cast<std::ptrdiff_t>(std::min(part_rows, rows - r0));
        const auto dyb =
            cpu_kernels::strided_map(dy0 + r0 * c_out + o0, nr, n, static_cast<std::ptrdiff_t>(c_out));
        T* part = dwk_parts_.data() + (task % parts) * c_out * static_cast<std::size_t>(win);
        cpu_kernels::matrix_map(part + o0 * static_cast<std::size_t>(win), n, win).noalias() =
            dyb.transpose() *
            cpu_kernels::matrix_map(static_cast<const T*>(cols_.data()) + r0 * static_cast<std::size_t>(win),
                                    nr, win);
      });
      for (std::size_t q = 0; q < parts; ++q)
        cpu_kernels::row_vector_map(dwk_.data(), static_cast<std::ptrdiff_t>(dwk_.size())) +=
            cpu_kernels::row_vector_map(static_cast<const T*>(dwk_parts_.data()) + q * dwk_.size(),
                                        static_cast<std::ptrdiff_t>(dwk_.size()));
      if (opt_.bias)
        cpu_kernels::row_vector_map(bias_.grad.data(), static_cast<std::ptrdiff_t>(c_out)) +=
            cpu_kernels::matrix_map(dy0, static_cast<std::ptrdiff_t>(rows),
                                    static_cast<std::ptrdiff_t>(c_out))
                .colwise()
                .sum();
      if (dx == nullptr) return;
      // dcols = dy W (rows x window), reusing cols_, then scattered back one image per task.
      parallel_for(0, (rows + row_block - 1) / row_block, [&](std::size_t blk) {
        const std::size_t r0 = blk * row_block;
        const auto n = static_cast<std::ptrdiff_t>(std::min(row_block, rows - r0));
        cpu_kernels::matrix_map(cols_.data() + r0 * static_cast<std::size_t>(win), n, win).noalias() =
            cpu_kernels::matrix_map(dy0 + r0 * c_out, n, static_cast<std::ptrdiff_t>(c_out)) *
            cpu_kernels::matrix_map(static_cast<const T*>(wk_.data()), static_cast<std::ptrdiff_t>(c_out),
                                    win);
      });
      col2im(*dx, g, b0, nb);
    });
    // dwk_ [C_out, k, k, C_in] -> weight grad [C_out, C_in, k, k].
    const std::size_t c_in = opt_.in_channels, kk = opt_.kernel * opt_.kernel;
    T* dw = weight_.grad.data();
    for (std::size_t o = 0; o < c_out; ++o)
      for (std::size_t c = 0; c < c_in; ++c)
        for (std::size_t q = 0; q < kk; ++q) dw[(o * c_in + c) * kk + q] += dwk_[(o * kk + q) * c_in + c];
  }

  /// Visits "weight" `[C_out, C_in, kernel, kernel]` and, with bias, "bias" `[C_out]`.
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    f(join_name(prefix, "weight"), weight_);
    if (opt_.bias) f(join_name(prefix, "bias"), bias_);
  }

  parameter<T>& weight() { return weight_; }
  parameter<T>& bias() { return bias_; }

  /// Multiply-adds of one forward pass on `[batch, h, w, C_in]` (for benchmarks).
  double forward_macs(std::size_t batch, std::size_t h, std::size_t w) const {
    return static_cast<double>(batch * output_size(h) * output_size(w)) *
           static_cast<double>(opt_.out_channels) * static_cast<double>(window());
  }

 private:
  static constexpr std::size_t chunk_rows = 4096;   // output pixels per chunk (whole images)
  static constexpr std::size_t row_block = 256;     // output pixels per task
  static constexpr std::size_t channel_block = 64;  // output channels per task in d weight
  static constexpr std::size_t part_rows = 1024;    // output pixels per partial d weight

  struct geometry {
    std::size_t batch, h, w, h_out, w_out;
    std::size_t pixels_out() const { return h_out * w_out; }
  };

  std::ptrdiff_t window() const {
    return static_cast<std::ptrdiff_t>(opt_.kernel * opt_.kernel * opt_.in_channels);
  }

  geometry check_input(std::string_view where, const tensor4<T>& x) const {
    check_shape(where, x, {any, any, any, static_cast<std::ptrdiff_t>(opt_.in_channels)});
    const std::size_t h = x.shape()[1], w = x.shape()[2];
    if (std::min(h, w) + 2 * opt_.padding < opt_.kernel)
      throw shape_error(std::string(where) + ": expected [*, >= " +
                        std::to_string(opt_.kernel - std::min(opt_.kernel, 2 * opt_.padding)) +
                        ", >= " + std::to_string(opt_.kernel - std::min(opt_.kernel, 2 * opt_.padding)) +
                        ", " + std::to_string(opt_.in_channels) + "] (kernel " + std::to_string(opt_.kernel) +
                        ", padding " + std::to_string(opt_.padding) + "), got " + shape_string(x.shape()));
    return {x.shape()[0], h, w, output_size(h), output_size(w)};
  }

  // Output pixels of the largest chunk.
  static std::size_t chunk_rows_max(const geometry& g) {
    const std::size_t per = std::max<std::size_t>(1, chunk_rows / std::max<std::size_t>(1, g.pixels_out()));
    return std::min(per, g.batch) * g.pixels_out();
  }

  // Calls f(first image, images) for consecutive chunks of whole images, in order.
  template <class F>
  void for_each_chunk(const geometry& g, F&& f) {
    const std::size_t per = std::max<std::size_t>(1, chunk_rows / std::max<std::size_t>(1, g.pixels_out()));
    const std::size_t n = std::min(per, g.batch);
    cols_.resize(n * g.pixels_out() * static_cast<std::size_t>(window()));
    for (std::size_t b0 = 0; b0 < g.batch; b0 += per) f(b0, std::min(per, g.batch - b0));
  }

  // Input pixel row / column of output index i and kernel offset u, or -1 outside the image.
  std::ptrdiff_t source(std::size_t i, std::size_t u, std::size_t extent) const {
    const auto s =
        static_cast<std::ptrdiff_t>(i * opt_.stride + u) - static_cast<std::ptrdiff_t>(opt_.padding);
    return s >= 0 && s < static_cast<std::ptrdiff_t>(extent) ? s : -1;
  }

  // cols_[(b - b0) * pixels + i * w_out + j, (u * k + v) * C_in + c] = x[b, i*s+u-p, j*s+v-p, c] (0 outside).
  void im2col(const tensor4<T>& x, const geometry& g, std::size_t b0, std::size_t nb) {
    const std::size_t k = opt_.kernel, c_in = opt_.in_channels, win = static_cast<std::size_t>(window());
    parallel_for(0, nb, [&](std::size_t ib) {
      const T* xb = x.data() + (b0 + ib) * g.h * g.w * c_in;
      T* out = cols_.data() + ib * g.pixels_out() * win;
      for (std::size_t i = 0; i < g.h_out; ++i)
        for (std::size_t j = 0; j < g.w_out; ++j, out += win)
          for (std::size_t u = 0; u < k; ++u) {
            const std::ptrdiff_t r = source(i, u, g.h);
            for (std::size_t v = 0; v < k; ++v) {
              const std::ptrdiff_t s = source(j, v, g.w);
              T* dst = out + (u * k + v) * c_in;
              if (r < 0 || s < 0)
                std::fill(dst, dst + c_in, T(0));
              else
                std::copy_n(xb + (static_cast<std::size_t>(r) * g.w + static_cast<std::size_t>(s)) * c_in,
                            c_in, dst);
            }
          }
    });
  }

  // dx[b] = sum of the dcols rows (held in cols_) scattered back to their input pixels, in order.
  void col2im(tensor4<T>& dx, const geometry& g, std::size_t b0, std::size_t nb) {
    const std::size_t k = opt_.kernel, c_in = opt_.in_channels, win = static_cast<std::size_t>(window());
    parallel_for(0, nb, [&](std::size_t ib) {
      T* dxb = dx.data() + (b0 + ib) * g.h * g.w * c_in;
      std::fill(dxb, dxb + g.h * g.w * c_in, T(0));
      const T* in = cols_.data() + ib * g.pixels_out() * win;
      for (std::size_t i = 0; i < g.h_out; ++i)
        for (std::size_t j = 0; j < g.w_out; ++j, in += win)
          for (std::size_t u = 0; u < k; ++u) {
            const std::ptrdiff_t r = source(i, u, g.h);
            if (r < 0) continue;
            for (std::size_t v = 0; v < k; ++v) {
              const std::ptrdiff_t s = source(j, v, g.w);
              if (s < 0) continue;
              T* dst = dxb + (static_cast<std::size_t>(r) * g.w + static_cast<std::size_t>(s)) * c_in;
              const T* src = in + (u * k + v) * c_in;
              for (std::size_t c = 0; c < c_in; ++c) dst[c] += src[c];
            }
          }
    });
  }

  // weight [C_out, C_in, k, k] -> wk_ [C_out, k, k, C_in] (the im2col order).
  void reorder_weight() {
    const std::size_t c_out = opt_.out_channels, c_in = opt_.in_channels, kk = opt_.kernel * opt_.kernel;
    wk_.resize(c_out * c_in * kk);
    const T* w = weight_.value.data();
    for (std::size_t o = 0; o < c_out; ++o)
      for (std::size_t c = 0; c < c_in; ++c)
        for (std::size_t q = 0; q < kk; ++q) wk_[(o * kk + q) * c_in + c] = w[(o * c_in + c) * kk + q];
  }

  options opt_;
  parameter<T> weight_;
  parameter<T> bias_;
  std::vector<T> wk_, dwk_, dwk_parts_, cols_;  // workspaces, reused across calls
};

}  // namespace cpc
