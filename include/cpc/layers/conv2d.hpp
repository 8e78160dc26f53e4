#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "cpc/backend/ops.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/layers/init.hpp"

namespace cpc {

/// Sizes of `cpc::conv2d` (the same type for every element type and backend): a square kernel,
/// `padding` zeros added on every side; `bias = false` drops the bias.
struct conv2d_options {
  std::size_t in_channels = 0;
  std::size_t out_channels = 0;
  std::size_t kernel = 0;
  std::size_t stride = 1;
  std::size_t padding = 0;
  bool bias = true;
};

/// 2-D convolution on channel-last images with zero padding on all four sides:
/// y[b,i,j,o] = bias[o] + sum_{c,u,v} weight[o,c,u,v] * x[b, i*stride + u - padding, j*stride + v - padding,
/// c]. Shapes: x `[batch, H, W, C_in]` -> y `[batch, H_out, W_out, C_out]` with H_out = (H + 2*padding -
/// kernel) / stride + 1 (floor; W_out likewise); weight
/// `[C_out, C_in, kernel, kernel]`, bias `[C_out]` (PyTorch's layout and names).
/// Init: PyTorch's default, U(+-1/sqrt(C_in*kernel*kernel)) for weight and bias.
/// Errors: `cpc::shape_error` on a wrong channel count, an image smaller than the kernel (after
/// padding) or a wrong gradient shape; `cpc::config_error` on a zero size or stride.
/// Source: torch.nn.Conv2d (on NCHW, so y here is its output permuted to NHWC).
/// Runs on the conv2d ops (backend/op/conv2d.hpp); results do not depend on the thread count.
template <class T, class Backend = cpu>
class conv2d {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// Layer sizes (`cpc::conv2d_options`).
  using options = conv2d_options;

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

  /// The options the layer was built with.
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
    const ops::conv2d_shape s = check_input("conv2d forward input", x);
    ensure_shape(y, std::array<std::size_t, 4>{s.batch, s.out_height(), s.out_width(), s.out_channels});
    ops::conv2d_forward<Backend>(ops::conv2d_forward_args<T>{.shape = s,
                                                             .x = x.data(),
                                                             .weight = weight_.value.data(),
                                                             .bias = opt_.bias ? bias_.value.data() : nullptr,
                                                             .y = y.data()},
                                 ws_);
  }

  /// Accumulates d weight and d bias; writes dx (`[B, H, W, C_in]`, overwritten) when `dx` is not
  /// null. Shapes: x `[B, H, W, C_in]`, dy `[B, H_out, W_out, C_out]`. `y` is unused.
  void backward(const tensor4<T>& x, const tensor4<T>& /*y*/, const tensor4<T>& dy, tensor4<T>* dx) {
    const ops::conv2d_shape s = check_input("conv2d backward input", x);
    check_shape("conv2d backward output gradient", dy,
                {static_cast<std::ptrdiff_t>(s.batch), static_cast<std::ptrdiff_t>(s.out_height()),
                 static_cast<std::ptrdiff_t>(s.out_width()), static_cast<std::ptrdiff_t>(opt_.out_channels)});
    if (dx != nullptr) ensure_shape(*dx, x.shape());
    ops::conv2d_backward<Backend>(
        ops::conv2d_backward_args<T>{.shape = s,
                                     .x = x.data(),
                                     .weight = weight_.value.data(),
                                     .dy = dy.data(),
                                     .dweight = weight_.grad.data(),
                                     .dbias = opt_.bias ? bias_.grad.data() : nullptr,
                                     .dx = dx != nullptr ? dx->data() : nullptr},
        ws_);
  }

  /// Visits "weight" `[C_out, C_in, kernel, kernel]` and, with bias, "bias" `[C_out]`.
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    f(join_name(prefix, "weight"), weight_);
    if (opt_.bias) f(join_name(prefix, "bias"), bias_);
  }

  /// The weight `[C_out, C_in, kernel, kernel]`.
  parameter<T>& weight() { return weight_; }
  /// The bias `[C_out]` (empty without bias).
  parameter<T>& bias() { return bias_; }

  /// Multiply-adds of one forward pass on `[batch, h, w, C_in]` (for benchmarks).
  double forward_macs(std::size_t batch, std::size_t h, std::size_t w) const {
    return static_cast<double>(batch * output_size(h) * output_size(w)) *
           static_cast<double>(opt_.out_channels) *
           static_cast<double>(opt_.kernel * opt_.kernel * opt_.in_channels);
  }

 private:
  // The op geometry of x, after checking its channels and extents.
  ops::conv2d_shape check_input(std::string_view where, const tensor4<T>& x) const {
    check_shape(where, x, {any, any, any, static_cast<std::ptrdiff_t>(opt_.in_channels)});
    const std::size_t h = x.shape()[1], w = x.shape()[2];
    if (std::min(h, w) + 2 * opt_.padding < opt_.kernel)
      throw shape_error(std::string(where) + ": expected [*, >= " +
                        std::to_string(opt_.kernel - std::min(opt_.kernel, 2 * opt_.padding)) +
                        ", >= " + std::to_string(opt_.kernel - std::min(opt_.kernel, 2 * opt_.padding)) +
                        ", " + std::to_string(opt_.in_channels) + "] (kernel " + std::to_string(opt_.kernel) +
                        ", padding " + std::to_string(opt_.padding) + "), got " + shape_string(x.shape()));
    return {.batch = x.shape()[0],
            .height = h,
            .width = w,
            .in_channels = opt_.in_channels,
            .out_channels = opt_.out_channels,
            .kernel = opt_.kernel,
            .stride = opt_.stride,
            .padding = opt_.padding};
  }

  options opt_;
  parameter<T> weight_;
  parameter<T> bias_;
  ops::conv2d_workspace<Backend, T> ws_;  // kernel scratch, reused across calls
};

}  // namespace cpc
