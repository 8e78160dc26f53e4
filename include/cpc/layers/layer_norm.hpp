#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "cpc/backend/tags.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/core/threads.hpp"

namespace cpc {

/// Layer normalisation over the last dimension of every frame:
/// y[b,t,:] = (x[b,t,:] - mean) / sqrt(var + eps) * weight + bias, with the mean and the biased
/// variance (divide by C) taken over the C = normalized_shape channels of that one frame only.
/// Shapes: x `[batch, time, C]` -> y `[batch, time, C]`; weight and bias `[C]` (init 1 and 0).
/// Also offers `forward_relu` / `backward_relu`: relu(layer_norm(x)) in one pass, which the audio
/// encoder uses after each convolution. Errors: `cpc::shape_error` on a wrong input or gradient
/// shape; `cpc::config_error` on C == 0 or eps < 0. Source: torch.nn.LayerNorm(C) (Ba et al. 2016).
template <class T, class Backend = cpu>
class layer_norm {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// C = `normalized_shape` (the last dimension); `elementwise_affine = false` drops weight/bias.
  struct options {
    std::size_t normalized_shape = 0;
    double eps = 1e-5;
    bool elementwise_affine = true;
  };

  /// Builds the layer with weight 1 and bias 0 (PyTorch's init; nothing is drawn at random).
  explicit layer_norm(options opt) : opt_(opt) {
    if (opt.normalized_shape == 0) throw config_error("layer_norm: expected normalized_shape > 0, got 0");
    if (!(opt.eps >= 0)) throw config_error("layer_norm: expected eps >= 0, got " + std::to_string(opt.eps));
    if (opt.elementwise_affine) {
      weight_ = parameter<T>({opt.normalized_shape});
      weight_.value.fill(T(1));
      bias_ = parameter<T>({opt.normalized_shape});
    }
  }
  /// Same as `layer_norm(opt)`; takes a generator only so that every layer builds the same way.
  layer_norm(options opt, rng& /*gen*/) : layer_norm(opt) {}

  const options& config() const { return opt_; }

  /// y = layer_norm(x). Shapes: x `[B, T, C]`, y resized to `[B, T, C]`.
  void forward(const tensor3<T>& x, tensor3<T>& y) { forward_rows<false>("layer_norm forward input", x, y); }

  /// y = max(layer_norm(x), 0) in one pass over x. Shapes as `forward`.
  void forward_relu(const tensor3<T>& x, tensor3<T>& y) {
    forward_rows<true>("layer_norm forward input", x, y);
  }

  /// Accumulates d weight and d bias; writes dx when `dx` is not null. The per-frame statistics
  /// are recomputed from x, so backward depends only on its arguments. Shapes: x, dy `[B, T, C]`;
  /// dx resized to `[B, T, C]`. `y` is unused.
  void backward(const tensor3<T>& x, const tensor3<T>& y, const tensor3<T>& dy, tensor3<T>* dx) {
    backward_rows<false>("layer_norm", x, y, dy, dx);
  }

  /// Backward of `forward_relu`: y is its output (the relu mask is y > 0, as in PyTorch).
  void backward_relu(const tensor3<T>& x, const tensor3<T>& y, const tensor3<T>& dy, tensor3<T>* dx) {
    backward_rows<true>("layer_norm", x, y, dy, dx);
  }

  /// Visits "weight" `[C]` and "bias" `[C]` when elementwise_affine, else nothing.
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    if (!opt_.elementwise_affine) return;
    f(join_name(prefix, "weight"), weight_);
    f(join_name(prefix, "bias"), bias_);
  }

  parameter<T>& weight() { return weight_; }
  parameter<T>& bias() { return bias_; }

 private:
  using row_array = Eigen::Array<T, 1, Eigen::Dynamic>;
  using row_map = Eigen::Map<const row_array>;
  static constexpr std::size_t row_block = 64;      // frames per task
  static constexpr std::size_t channel_block = 64;  // channels per task in d weight / d bias

  std::ptrdiff_t width() const { return static_cast<std::ptrdiff_t>(opt_.normalized_shape); }

  // Mean and 1/sqrt(var + eps) of one frame (biased variance, two passes for accuracy).
  std::pair<T, T> stats(const T* xr) const {
    const row_map xv(xr, width());
    const T mean = xv.mean();
    const T var = (xv - mean).square().mean();
    return {mean, T(1) / std::sqrt(var + static_cast<T>(opt_.eps))};
  }

  template <bool Relu>
  void forward_rows(std::string_view where, const tensor3<T>& x, tensor3<T>& y) {
    check_shape(where, x, {any, any, width()});
    ensure_shape(y, x.shape());
    const std::size_t rows = x.shape()[0] * x.shape()[1];
    const std::ptrdiff_t c = width();
    parallel_for(0, (rows + row_block - 1) / row_block, [&](std::size_t blk) {
      const std::size_t end = std::min(rows, (blk + 1) * row_block);
      for (std::size_t r = blk * row_block; r < end; ++r) {
        const T* xr = x.data() + r * c;
        const auto [mean, rstd] = stats(xr);
        Eigen::Map<row_array> yv(y.data() + r * c, c);
        if (opt_.elementwise_affine)
          yv = (row_map(xr, c) - mean) * rstd * row_map(weight_.value.data(), c) +
               row_map(bias_.value.data(), c);
        else
          yv = (row_map(xr, c) - mean) * rstd;
        if constexpr (Relu) yv = yv.max(T(0));
      }
    });
  }

  // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy' * weight, xhat the normalised
  // input and dy' = dy (masked by y > 0 with Relu); d weight += sum dy' * xhat, d bias += sum dy'.
  template <bool Relu>
  void backward_rows(std::string_view name, const tensor3<T>& x, const tensor3<T>& y, const tensor3<T>& dy,
                     tensor3<T>* dx) {
    const std::string n(name);
    check_shape(n + " backward input", x, {any, any, width()});
    const std::initializer_list<std::ptrdiff_t> xs{static_cast<std::ptrdiff_t>(x.shape()[0]),
                                                   static_cast<std::ptrdiff_t>(x.shape()[1]), width()};
    check_shape(n + " backward output gradient", dy, xs);
    if constexpr (Relu) check_shape(n + " backward output", y, xs);
    const std::size_t rows = x.shape()[0] * x.shape()[1];
    const std::ptrdiff_t c = width();
    mean_.resize(rows);
    rstd_.resize(rows);
    if (dx != nullptr) ensure_shape(*dx, x.shape());
    // Masked output gradient of row r as an Eigen expression.
    auto dy_row = [&](std::size_t r) {
      const row_map d(dy.data() + r * c, c);
      if constexpr (Relu)
        return (row_map(y.data() + r * c, c) > T(0)).select(d, T(0));
      else
        return d;
    };
    parallel_for(0, (rows + row_block - 1) / row_block, [&](std::size_t blk) {
      const std::size_t end = std::min(rows, (blk + 1) * row_block);
      for (std::size_t r = blk * row_block; r < end; ++r) {
        const T* xr = x.data() + r * c;
        const auto [mean, rstd] = stats(xr);
        mean_[r] = mean;
        rstd_[r] = rstd;
        if (dx == nullptr) continue;
        const auto xhat = (row_map(xr, c) - mean) * rstd;
        // g is built in dx's row, then replaced element by element (no temporaries).
        Eigen::Map<row_array> g(dx->data() + r * c, c);
        g = dy_row(r);
        if (opt_.elementwise_affine) g *= row_map(weight_.value.data(), c);
        const T g_mean = g.mean();
        const T gx_mean = (g * xhat).mean();
        g = rstd * (g - g_mean - xhat * gx_mean);
      }
    });
    if (!opt_.elementwise_affine) return;
    // Each task owns a block of channels and sums over all frames in order (deterministic).
    const std::size_t channels = opt_.normalized_shape;
    parallel_for(0, (channels + channel_block - 1) / channel_block, [&](std::size_t blk) {
      const std::size_t c0 = blk * channel_block;
      const auto n_c = static_cast<std::ptrdiff_t>(std::min(channel_block, channels - c0));
      std::array<T, channel_block> dw_buf{}, db_buf{};
      Eigen::Map<row_array> dw(dw_buf.data(), n_c), db(db_buf.data(), n_c);
      for (std::size_t r = 0; r < rows; ++r) {
        const row_map d(dy.data() + r * c + c0, n_c);
        const auto xhat = (row_map(x.data() + r * c + c0, n_c) - mean_[r]) * rstd_[r];
        if constexpr (Relu) {
          const auto dm = (row_map(y.data() + r * c + c0, n_c) > T(0)).select(d, T(0));
          dw += dm * xhat;
          db += dm;
        } else {
          dw += d * xhat;
          db += d;
        }
      }
      Eigen::Map<row_array>(weight_.grad.data() + c0, n_c) += dw;
      Eigen::Map<row_array>(bias_.grad.data() + c0, n_c) += db;
    });
  }

  options opt_;
  parameter<T> weight_;
  parameter<T> bias_;
  std::vector<T> mean_, rstd_;  // per-frame statistics, backward workspace `[B * T]`
};

}  // namespace cpc
