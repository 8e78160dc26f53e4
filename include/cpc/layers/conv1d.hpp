#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "cpc/backend/cpu/eigen.hpp"
#include "cpc/backend/cpu/gemm.hpp"
#include "cpc/backend/tags.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/core/threads.hpp"
#include "cpc/layers/init.hpp"

namespace cpc {

/// 1-D convolution over time on channel-last sequences, with zero padding on both sides:
/// y[b,t,o] = bias[o] + sum_{c,k} weight[o,c,k] * x[b, t*stride + k - padding, c].
/// Shapes: x `[batch, T_in, C_in]` -> y `[batch, T_out, C_out]` with
/// T_out = (T_in + 2*padding - kernel) / stride + 1 (floor); weight `[C_out, C_in, kernel]`,
/// bias `[C_out]` (PyTorch's layout and names). Init: PyTorch's default, U(+-1/sqrt(C_in*kernel)).
/// Errors: `cpc::shape_error` on a wrong channel count, an input shorter than the kernel (after
/// padding) or a wrong gradient shape; `cpc::config_error` on a zero size or stride.
/// Source: torch.nn.Conv1d (on `[batch, channels, time]`, so y here is its output transposed).
///
/// How it runs: with channel-last storage the receptive field of output t, x[b, t*s - p ..
/// t*s - p + K - 1, :], is K*C_in consecutive scalars, and consecutive outputs start s*C_in
/// scalars apart. So the im2col matrix of a batch item is a strided view of x itself
/// (`[T_out, K*C_in]`, row stride s*C_in) and the forward pass is one GEMM against the weight
/// (packed once per call, `cpu_kernels::gemm`), without copying the input. Only the few outputs
/// whose window reaches into the padding read a small gathered copy. d weight is the GEMM
/// im2col^T dy and d input K GEMMs dy W_k into strided views of dx. Narrow windows (K*C_in <= 16,
/// e.g. the first layer on raw audio) use a direct loop instead of a GEMM with a tiny inner
/// dimension. Results do not depend on the thread count (see cpu_kernels::gemm).
template <class T, class Backend = cpu>
class conv1d {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// Sizes; `padding` zeros are added at both ends of time; `bias = false` drops the bias.
  struct options {
    std::size_t in_channels = 0;
    std::size_t out_channels = 0;
    std::size_t kernel = 0;
    std::size_t stride = 1;
    std::size_t padding = 0;
    bool bias = true;
  };

  /// Builds the layer and draws PyTorch's default initial weights from `gen` (weight, then bias).
  conv1d(options opt, rng& gen) : opt_(opt) {
    if (opt.in_channels == 0 || opt.out_channels == 0 || opt.kernel == 0 || opt.stride == 0)
      throw config_error("conv1d: expected in_channels, out_channels, kernel and stride > 0, got " +
                         std::to_string(opt.in_channels) + ", " + std::to_string(opt.out_channels) + ", " +
                         std::to_string(opt.kernel) + ", " + std::to_string(opt.stride));
    weight_ = parameter<T>({opt.out_channels, opt.in_channels, opt.kernel});
    const double bound = default_init_bound(opt.in_channels * opt.kernel);
    init_uniform(weight_, bound, gen);
    if (opt.bias) {
      bias_ = parameter<T>({opt.out_channels});
      init_uniform(bias_, bound, gen);
    }
  }

  const options& config() const { return opt_; }

  /// Output length (T_in + 2*padding - kernel) / stride + 1 of a convolution.
  /// Errors: `cpc::shape_error` when t_in + 2*padding < kernel; `cpc::config_error` on stride 0.
  static std::size_t output_length(std::size_t t_in, std::size_t kernel, std::size_t stride,
                                   std::size_t padding) {
    if (stride == 0) throw config_error("conv1d::output_length: expected stride > 0, got 0");
    if (t_in + 2 * padding < kernel)
      throw shape_error("conv1d::output_length: expected length >= " + std::to_string(kernel - 2 * padding) +
                        " (kernel " + std::to_string(kernel) + ", padding " + std::to_string(padding) +
                        "), got " + std::to_string(t_in));
    return (t_in + 2 * padding - kernel) / stride + 1;
  }

  /// Output length of this layer for an input of `t_in` time steps (errors as above).
  std::size_t output_length(std::size_t t_in) const {
    return output_length(t_in, opt_.kernel, opt_.stride, opt_.padding);
  }

  /// y = conv(x) + bias. Shapes: x `[B, T_in, C_in]`, y resized to `[B, T_out, C_out]`.
  void forward(const tensor3<T>& x, tensor3<T>& y) {
    const geometry g = check_input("conv1d forward input", x);
    ensure_shape(y, std::array<std::size_t, 3>{g.batch, g.t_out, opt_.out_channels});
    gather_edges(x, g);
    const auto c_out = static_cast<std::ptrdiff_t>(opt_.out_channels);
    const bool direct = window() <= direct_max_window;
    if (direct)
      reorder_weight();
    else
      pack_forward_weight();
    const std::size_t blocks = (g.t_out + row_block - 1) / row_block;
    parallel_for(0, g.batch * blocks, [&](std::size_t task) {
      const std::size_t b = task / blocks;
      const std::size_t r0 = (task % blocks) * row_block;
      const std::size_t r1 = std::min(g.t_out, r0 + row_block);
      T* yb = y.data() + b * g.t_out * opt_.out_channels;
      alignas(64) std::array<T, cpu_kernels::gemm_workspace_size<T>()> work;
      for_each_segment(x, g, b, r0, r1,
                       [&](std::size_t t0, std::ptrdiff_t n, const T* rows, std::ptrdiff_t stride) {
                         if (direct)
                           direct_rows(rows, stride, n, yb + t0 * opt_.out_channels);
                         else
                           cpu_kernels::gemm<T>(static_cast<std::size_t>(n), rows, stride, 1, wpack_,
                                                yb + t0 * opt_.out_channels, c_out, false, work.data());
                       });
      if (opt_.bias && !direct)
        cpu_kernels::matrix_map(yb + r0 * opt_.out_channels, static_cast<std::ptrdiff_t>(r1 - r0), c_out)
            .rowwise() += cpu_kernels::row_vector_map(static_cast<const T*>(bias_.value.data()), c_out);
    });
  }

  /// Accumulates d weight and d bias; writes dx (`[B, T_in, C_in]`, overwritten) when `dx` is not
  /// null (pass null for a first layer on raw audio). Shapes: x `[B, T_in, C_in]`,
  /// dy `[B, T_out, C_out]`. `y` is unused.
  void backward(const tensor3<T>& x, const tensor3<T>& /*y*/, const tensor3<T>& dy, tensor3<T>* dx) {
    const geometry g = check_input("conv1d backward input", x);
    check_shape("conv1d backward output gradient", dy,
                {static_cast<std::ptrdiff_t>(g.batch), static_cast<std::ptrdiff_t>(g.t_out),
                 static_cast<std::ptrdiff_t>(opt_.out_channels)});
    gather_edges(x, g);
    if (window() <= direct_max_window)
      parameter_gradients(x, dy, g);
    else
      parameter_gradients_gemm(x, dy, g);
    if (dx == nullptr) return;
    input_gradient(dy, g, *dx);
  }

  /// Visits "weight" `[C_out, C_in, kernel]` and, with bias, "bias" `[C_out]`.
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    f(join_name(prefix, "weight"), weight_);
    if (opt_.bias) f(join_name(prefix, "bias"), bias_);
  }

  parameter<T>& weight() { return weight_; }
  parameter<T>& bias() { return bias_; }

 private:
  static constexpr std::size_t row_block = 512;             // output frames per task (forward)
  static constexpr std::size_t channel_block = 128;         // output channels per task (d weight)
  static constexpr std::ptrdiff_t direct_max_window = 16;   // K*C_in up to which forward loops directly
  static constexpr std::size_t direct_chunk = 32;           // output channels held in registers
  static constexpr std::ptrdiff_t direct_rows_block = 4;    // frames held in registers
  static constexpr std::ptrdiff_t direct_frame_tile = 128;  // frames per cache tile in d weight
  static constexpr std::size_t window_block = 256;          // window positions per task (d weight, GEMM)

  // Sizes of one call. Outputs [t_lo, t_hi) read only real input; the others touch padding.
  struct geometry {
    std::size_t batch, t_in, t_out, t_lo, t_hi;
    std::size_t edges() const { return t_lo + (t_out - t_hi); }
  };

  std::ptrdiff_t window() const { return static_cast<std::ptrdiff_t>(opt_.kernel * opt_.in_channels); }

  geometry check_input(std::string_view where, const tensor3<T>& x) const {
    check_shape(where, x, {any, any, static_cast<std::ptrdiff_t>(opt_.in_channels)});
    const std::size_t t_in = x.shape()[1];
    if (t_in + 2 * opt_.padding < opt_.kernel)
      throw shape_error(std::string(where) +
                        ": expected [*, >= " + std::to_string(opt_.kernel - 2 * opt_.padding) + ", " +
                        std::to_string(opt_.in_channels) + "] (kernel " + std::to_string(opt_.kernel) +
                        ", padding " + std::to_string(opt_.padding) + "), got " + shape_string(x.shape()));
    geometry g{x.shape()[0], t_in, output_length(t_in), 0, 0};
    const std::size_t s = opt_.stride, p = opt_.padding, k = opt_.kernel;
    g.t_lo = std::min(g.t_out, (p + s - 1) / s);
    // Last interior output t satisfies t*s - p + K <= T_in.
    g.t_hi = t_in + p >= k ? std::clamp((t_in + p - k) / s + 1, g.t_lo, g.t_out) : g.t_lo;
    return g;
  }

  // Copies the windows of the outputs that touch padding into edges_ `[B, edges, K*C_in]`.
  void gather_edges(const tensor3<T>& x, const geometry& g) {
    const std::size_t win = opt_.kernel * opt_.in_channels, c_in = opt_.in_channels;
    edges_.assign(g.batch * g.edges() * win, T(0));
    for (std::size_t b = 0; b < g.batch; ++b) {
      std::size_t e = 0;
      auto gather = [&](std::size_t t) {
        T* row = edges_.data() + (b * g.edges() + e++) * win;
        for (std::size_t k = 0; k < opt_.kernel; ++k) {
          const auto u =
              static_cast<std::ptrdiff_t>(t * opt_.stride + k) - static_cast<std::ptrdiff_t>(opt_.padding);
          if (u >= 0 && u < static_cast<std::ptrdiff_t>(g.t_in))
            std::copy_n(x.data() + (b * g.t_in + static_cast<std::size_t>(u)) * c_in, c_in, row + k * c_in);
        }
      };
      for (std::size_t t = 0; t < g.t_lo; ++t) gather(t);
      for (std::size_t t = g.t_hi; t < g.t_out; ++t) gather(t);
    }
  }

  // Calls f(t0, n, rows, row_stride) for the runs of outputs [t0, t0 + n) within [r0, r1) of
  // batch item b that share one im2col view: edge rows from edges_, interior rows straight from x.
  template <class F>
  void for_each_segment(const tensor3<T>& x, const geometry& g, std::size_t b, std::size_t r0, std::size_t r1,
                        F&& f) const {
    const std::size_t win = opt_.kernel * opt_.in_channels;
    const T* edge = edges_.data() + b * g.edges() * win;
    if (r0 < g.t_lo) {
      const std::size_t e = std::min(r1, g.t_lo);
      f(r0, static_cast<std::ptrdiff_t>(e - r0), edge + r0 * win, static_cast<std::ptrdiff_t>(win));
    }
    const std::size_t a = std::max(r0, g.t_lo), e = std::min(r1, g.t_hi);
    if (a < e)
      f(a, static_cast<std::ptrdiff_t>(e - a),
        x.data() + (b * g.t_in + a * opt_.stride - opt_.padding) * opt_.in_channels,
        static_cast<std::ptrdiff_t>(opt_.stride * opt_.in_channels));
    const std::size_t h = std::max(r0, g.t_hi);
    if (h < r1)
      f(h, static_cast<std::ptrdiff_t>(r1 - h), edge + (g.t_lo + h - g.t_hi) * win,
        static_cast<std::ptrdiff_t>(win));
  }

  // The forward GEMM's B(j, o) = weight[o, c, k] for window position j = k * C_in + c, packed
  // straight from the weight (row j starts at weight + c * K + k, columns C_in * K apart).
  void pack_forward_weight() {
    const std::size_t c_in = opt_.in_channels, kk = opt_.kernel;
    const T* w = weight_.value.data();
    wpack_.pack_rows(
        kk * c_in, opt_.out_channels, [&](std::size_t j) { return w + (j % c_in) * kk + j / c_in; },
        static_cast<std::ptrdiff_t>(c_in * kk));
  }

  // weight [C_out, C_in, K] -> wkc_ [K, C_in, C_out] for the direct loop, so that one input
  // scalar scales a contiguous row of output channels.
  void reorder_weight() {
    const std::size_t c_out = opt_.out_channels, c_in = opt_.in_channels, kk = opt_.kernel;
    wkc_.resize(c_out * c_in * kk);
    const T* w = weight_.value.data();
    for (std::size_t o = 0; o < c_out; ++o)
      for (std::size_t c = 0; c < c_in; ++c)
        for (std::size_t k = 0; k < kk; ++k) {
          const std::size_t j = k * c_in + c;
          wkc_[j * c_out + o] = w[(o * c_in + c) * kk + k];
        }
  }

  // Direct forward for narrow windows: y[t, :] = bias + sum_j rows[t, j] * wkc_[j, :]. Blocks of
  // direct_rows_block frames x direct_chunk channels stay in registers while j runs.
  void direct_rows(const T* rows, std::ptrdiff_t stride, std::ptrdiff_t n, T* y) const {
    using chunk_t = Eigen::Array<T, direct_chunk, 1>;
    constexpr std::ptrdiff_t rb = direct_rows_block;
    const std::size_t c_out = opt_.out_channels, win = static_cast<std::size_t>(window());
    const T* w = wkc_.data();
    const T* bias = opt_.bias ? bias_.value.data() : nullptr;
    std::ptrdiff_t t0 = 0;
    for (; t0 + rb <= n; t0 += rb) {
      std::size_t o0 = 0;
      for (; o0 + direct_chunk <= c_out; o0 += direct_chunk) {
        const chunk_t init = bias ? chunk_t(Eigen::Map<const chunk_t>(bias + o0)) : chunk_t::Zero();
        std::array<chunk_t, rb> acc;
        acc.fill(init);
        for (std::size_t j = 0; j < win; ++j) {
          const Eigen::Map<const chunk_t> wj(w + j * c_out + o0);
          for (std::ptrdiff_t r = 0; r < rb; ++r) acc[r] += rows[(t0 + r) * stride + j] * wj;
        }
        for (std::ptrdiff_t r = 0; r < rb; ++r) Eigen::Map<chunk_t>(y + (t0 + r) * c_out + o0) = acc[r];
      }
      direct_scalar(rows + t0 * stride, stride, rb, o0, y + t0 * c_out);
    }
    direct_scalar(rows + t0 * stride, stride, n - t0, 0, y + t0 * c_out);
  }

  // The same for frames [0, n) and channels [o_begin, C_out) one scalar at a time (remainders).
  void direct_scalar(const T* rows, std::ptrdiff_t stride, std::ptrdiff_t n, std::size_t o_begin,
                     T* y) const {
    const std::size_t c_out = opt_.out_channels, win = static_cast<std::size_t>(window());
    const T* w = wkc_.data();
    for (std::ptrdiff_t t = 0; t < n; ++t)
      for (std::size_t o = o_begin; o < c_out; ++o) {
        T acc = opt_.bias ? bias_.value.data()[o] : T(0);
        for (std::size_t j = 0; j < win; ++j) acc += rows[t * stride + j] * w[j * c_out + o];
        y[t * c_out + o] = acc;
      }
  }

  // Narrow windows: d weight += dy^T im2col(x), d bias += sum dy. Each task owns a block of output
  // channels and sums over batch items and frames in a fixed order, so the result does not depend
  // on threads.
  void parameter_gradients(const tensor3<T>& x, const tensor3<T>& dy, const geometry& g) {
    const std::size_t c_out = opt_.out_channels, c_in = opt_.in_channels, kk = opt_.kernel;
    const std::ptrdiff_t win = window();
    dwkc_.resize(c_out * kk * c_in);
    parallel_for(0, (c_out + channel_block - 1) / channel_block, [&](std::size_t blk) {
      const std::size_t o0 = blk * channel_block;
      const auto n_o = static_cast<std::ptrdiff_t>(std::min(channel_block, c_out - o0));
      auto dw = cpu_kernels::matrix_map(dwkc_.data() + o0 * kk * c_in, n_o, win);
      dw.setZero();
      for (std::size_t b = 0; b < g.batch; ++b) {
        const T* dyb = dy.data() + b * g.t_out * c_out;
        for_each_segment(x, g, b, 0, g.t_out,
                         [&](std::size_t t0, std::ptrdiff_t n, const T* rows, std::ptrdiff_t stride) {
                           direct_weight_rows(dyb + t0 * c_out, n, rows, stride, o0, n_o);
                         });
        if (opt_.bias) {
          auto db = cpu_kernels::row_vector_map(bias_.grad.data() + o0, n_o);
          for (std::size_t t = 0; t < g.t_out; ++t)
            db += cpu_kernels::row_vector_map(dyb + t * c_out + o0, n_o);
        }
      }
      T* grad = weight_.grad.data();
      for (std::size_t o = o0; o < o0 + static_cast<std::size_t>(n_o); ++o)
        for (std::size_t c = 0; c < c_in; ++c)
          for (std::size_t k = 0; k < kk; ++k)
            grad[(o * c_in + c) * kk + k] += dwkc_[o * kk * c_in + k * c_in + c];
    });
  }

  // Wide windows: dW^T[j, o] = sum over items and frames t of rows[t, j] dy[t, o], one GEMM per
  // item and segment of frames with dy packed once and shared by the tasks, each task owning a
  // block of window positions j and summing items and segments in a fixed order
  // (deterministic for any thread count). d bias: blocks of channels, frames in order.
  void parameter_gradients_gemm(const tensor3<T>& x, const tensor3<T>& dy, const geometry& g) {
    const std::size_t c_out = opt_.out_channels, c_in = opt_.in_channels, kk = opt_.kernel;
    const auto win = static_cast<std::size_t>(window());
    dwt_.resize(win * c_out);
    const std::size_t blocks = (win + window_block - 1) / window_block;
    bool first = true;  // the first GEMM overwrites dwt_, the others accumulate
    for (std::size_t b = 0; b < g.batch; ++b) {
      const T* dyb = dy.data() + b * g.t_out * c_out;
      for_each_segment(x, g, b, 0, g.t_out,
                       [&](std::size_t t0, std::ptrdiff_t n, const T* rows, std::ptrdiff_t stride) {
                         dypack_.pack(dyb + t0 * c_out, static_cast<std::ptrdiff_t>(c_out), 1,
                                      static_cast<std::size_t>(n), c_out);
                         parallel_for(0, blocks, [&](std::size_t blk) {
                           const std::size_t j0 = blk * window_block, nj = std::min(window_block, win - j0);
                           alignas(64) std::array<T, cpu_kernels::gemm_workspace_size<T>()> work;
                           cpu_kernels::gemm<T>(nj, rows + j0, 1, stride, dypack_, dwt_.data() + j0 * c_out,
                                                static_cast<std::ptrdiff_t>(c_out), !first, work.data());
                         });
                         first = false;
                       });
    }
    parallel_for(0, (c_out + channel_block - 1) / channel_block, [&](std::size_t blk) {
      const std::size_t o0 = blk * channel_block, o1 = std::min(c_out, o0 + channel_block);
      const auto n_o = static_cast<std::ptrdiff_t>(o1 - o0);
      if (opt_.bias) {
        auto db = cpu_kernels::row_vector_map(bias_.grad.data() + o0, n_o);
        for (std::size_t r = 0; r < g.batch * g.t_out; ++r)
          db += cpu_kernels::row_vector_map(dy.data() + r * c_out + o0, n_o);
      }
      T* grad = weight_.grad.data();
      for (std::size_t o = o0; o < o1; ++o)
        for (std::size_t c = 0; c < c_in; ++c)
          for (std::size_t k = 0; k < kk; ++k)
            grad[(o * c_in + c) * kk + k] += dwt_[(k * c_in + c) * c_out + o];
    });
  }

  // Narrow windows: dwkc_[o, j] += sum_t dy[t, o] * rows[t, j] for o in [o0, o0 + n_o). Blocks of
  // direct_chunk channels x J window positions are accumulated in registers over t.
  void direct_weight_rows(const T* dy, std::ptrdiff_t n, const T* rows, std::ptrdiff_t stride, std::size_t o0,
                          std::ptrdiff_t n_o) {
    const auto win = static_cast<std::size_t>(window());
    // Tiles of frames, so that the tile of dy stays in cache across the passes over j.
    for (std::ptrdiff_t t0 = 0; t0 < n; t0 += direct_frame_tile) {
      const std::ptrdiff_t nt = std::min(direct_frame_tile, n - t0);
      const T* d = dy + static_cast<std::size_t>(t0) * opt_.out_channels;
      const T* r = rows + t0 * stride;
      std::size_t j0 = 0;
      for (; j0 + 8 <= win; j0 += 8) direct_weight_block<8>(d, nt, r, stride, o0, n_o, j0);
      for (; j0 + 4 <= win; j0 += 4) direct_weight_block<4>(d, nt, r, stride, o0, n_o, j0);
      for (; j0 + 2 <= win; j0 += 2) direct_weight_block<2>(d, nt, r, stride, o0, n_o, j0);
      for (; j0 < win; ++j0) direct_weight_block<1>(d, nt, r, stride, o0, n_o, j0);
    }
  }

  template <std::size_t J>
  void direct_weight_block(const T* dy, std::ptrdiff_t n, const T* rows, std::ptrdiff_t stride,
                           std::size_t o0, std::ptrdiff_t n_o, std::size_t j0) {
    using chunk_t = Eigen::Array<T, direct_chunk, 1>;
    const std::size_t c_out = opt_.out_channels;
    const auto win = static_cast<std::size_t>(window());
    const auto full = static_cast<std::size_t>(n_o) / direct_chunk * direct_chunk;
    for (std::size_t i0 = 0; i0 < full; i0 += direct_chunk) {
      std::array<chunk_t, J> acc;
      acc.fill(chunk_t::Zero());
      for (std::ptrdiff_t t = 0; t < n; ++t) {
        const Eigen::Map<const chunk_t> d(dy + static_cast<std::size_t>(t) * c_out + o0 + i0);
        const T* xr = rows + t * stride + static_cast<std::ptrdiff_t>(j0);
        for (std::size_t j = 0; j < J; ++j) acc[j] += xr[j] * d;
      }
      for (std::size_t j = 0; j < J; ++j)
        for (std::size_t i = 0; i < direct_chunk; ++i) dwkc_[(o0 + i0 + i) * win + j0 + j] += acc[j](i);
    }
    for (std::size_t o = o0 + full; o < o0 + static_cast<std::size_t>(n_o); ++o)
      for (std::size_t j = j0; j < j0 + J; ++j) {
        T acc = 0;
        for (std::ptrdiff_t t = 0; t < n; ++t)
          acc +=
              dy[static_cast<std::size_t>(t) * c_out + o] * rows[t * stride + static_cast<std::ptrdiff_t>(j)];
        dwkc_[o * win + j] += acc;
      }
  }

  // dx[b, u, :] = sum over (t, k) with t*s + k - p = u of dy[b, t, :] W_k, W_k = weight[:, :, k].
  // For a fixed k the rows u = t*s + k - p form a strided view of dx, so dx is K GEMMs
  // (`[n, C_out] x [C_out, C_in]`) accumulated into strided views. Tasks own blocks of dx rows.
  void input_gradient(const tensor3<T>& dy, const geometry& g, tensor3<T>& dx) {
    ensure_shape(dx, std::array<std::size_t, 3>{g.batch, g.t_in, opt_.in_channels});
    const auto c_out = static_cast<std::ptrdiff_t>(opt_.out_channels);
    const auto c_in = static_cast<std::ptrdiff_t>(opt_.in_channels);
    const auto s = static_cast<std::ptrdiff_t>(opt_.stride), p = static_cast<std::ptrdiff_t>(opt_.padding);
    const auto t_out = static_cast<std::ptrdiff_t>(g.t_out);
    const std::size_t rows_per_task = row_block * opt_.stride;
    const std::size_t blocks = (g.t_in + rows_per_task - 1) / rows_per_task;
    // GEMM operands B_k(o, c) = W_k[o, c] = weight[o, c, k], packed once for every task.
    if (kpack_.size() < opt_.kernel) kpack_.resize(opt_.kernel);
    for (std::size_t k = 0; k < opt_.kernel; ++k)
      kpack_[k].pack(weight_.value.data() + k, static_cast<std::ptrdiff_t>(opt_.in_channels * opt_.kernel),
                     static_cast<std::ptrdiff_t>(opt_.kernel), opt_.out_channels, opt_.in_channels);
    parallel_for(0, g.batch * blocks, [&](std::size_t task) {
      const std::size_t b = task / blocks;
      const auto u0 = static_cast<std::ptrdiff_t>((task % blocks) * rows_per_task);
      const auto u1 = static_cast<std::ptrdiff_t>(std::min(g.t_in, (task % blocks + 1) * rows_per_task));
      T* dxb = dx.data() + b * g.t_in * opt_.in_channels;
      const T* dyb = dy.data() + b * g.t_out * opt_.out_channels;
      cpu_kernels::matrix_map(dxb + u0 * c_in, u1 - u0, c_in).setZero();
      alignas(64) std::array<T, cpu_kernels::gemm_workspace_size<T>()> work;
      for (std::ptrdiff_t k = 0; k < static_cast<std::ptrdiff_t>(opt_.kernel); ++k) {
        // Outputs t with u0 <= t*s + k - p < u1.
        const std::ptrdiff_t lo = u0 + p - k, hi = u1 - 1 + p - k;
        const std::ptrdiff_t ta = lo <= 0 ? 0 : (lo + s - 1) / s;
        const std::ptrdiff_t tb = hi < 0 ? 0 : std::min(t_out, hi / s + 1);
        if (ta >= tb) continue;
        cpu_kernels::gemm<T>(static_cast<std::size_t>(tb - ta), dyb + ta * c_out, c_out, 1,
                             kpack_[static_cast<std::size_t>(k)], dxb + (ta * s + k - p) * c_in, s * c_in,
                             true, work.data());
      }
    });
  }

  options opt_;
  parameter<T> weight_;
  parameter<T> bias_;
  std::vector<T> wkc_;    // weight as `[K, C_in, C_out]` for the direct loop (see reorder_weight)
  std::vector<T> dwkc_;   // d weight in the `[C_out, K, C_in]` layout (direct loop)
  std::vector<T> edges_;  // gathered windows of outputs that touch padding `[B, edges, K*C_in]`
  std::vector<T> dwt_;    // d weight transposed, `[K*C_in, C_out]` (GEMM path)
  cpu_kernels::packed_rhs<T> wpack_, dypack_;      // forward weight; one segment of dy (d weight)
  std::vector<cpu_kernels::packed_rhs<T>> kpack_;  // per kernel tap k, W_k for d input
};

}  // namespace cpc
