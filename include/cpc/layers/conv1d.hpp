#pragma once
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

/// Sizes of `cpc::conv1d` (the same type for every element type and backend); `padding` zeros are
/// added at both ends of time; `bias = false` drops the bias term.
struct conv1d_options {
  std::size_t in_channels = 0;
  std::size_t out_channels = 0;
  std::size_t kernel = 0;
  std::size_t stride = 1;
  std::size_t padding = 0;
  bool bias = true;
};

/// 1-D convolution over time on channel-last sequences, with zero padding on both sides:
/// y[b,t,o] = bias[o] + sum_{c,k} weight[o,c,k] * x[b, t*stride + k - padding, c].
/// Shapes: x `[batch, T_in, C_in]` -> y `[batch, T_out, C_out]` with
/// T_out = (T_in + 2*padding - kernel) / stride + 1 (floor); weight `[C_out, C_in, kernel]`,
/// bias `[C_out]` (PyTorch's layout and names). Init: PyTorch's default, U(+-1/sqrt(C_in*kernel)).
/// Errors: `cpc::shape_error` on a wrong channel count, an input shorter than the kernel (after
/// padding) or a wrong gradient shape; `cpc::config_error` on a zero size or stride.
/// Source: torch.nn.Conv1d (on `[batch, channels, time]`, so y here is its output transposed).
/// The kernels are the ops of backend/op/conv1d.hpp (on cpu: a strided im2col GEMM without
/// copying the input, see backend/cpu/conv1d.hpp); results do not depend on the thread count.
template <class T, class Backend = cpu>
class conv1d {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// Layer sizes (`cpc::conv1d_options`).
  using options = conv1d_options;

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

  /// The options the layer was built with.
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
    const ops::conv1d_shape s = check_input("conv1d forward input", x);
    ensure_shape(y, std::array<std::size_t, 3>{s.batch, s.t_out(), opt_.out_channels});
    ops::conv1d_forward<Backend>(
        ops::conv1d_forward_args<T>{
            .shape = s, .x = x.data(), .weight = weight_.value.data(), .bias = bias_value(), .y = y.data()},
        ws_);
  }

  /// Accumulates d weight and d bias; writes dx (`[B, T_in, C_in]`, overwritten) when `dx` is not
  /// null (pass null for a first layer on raw audio). Shapes: x `[B, T_in, C_in]`,
  /// dy `[B, T_out, C_out]`. `y` is unused.
  void backward(const tensor3<T>& x, const tensor3<T>& /*y*/, const tensor3<T>& dy, tensor3<T>* dx) {
    const ops::conv1d_shape s = check_input("conv1d backward input", x);
    check_shape("conv1d backward output gradient", dy,
                {static_cast<std::ptrdiff_t>(s.batch), static_cast<std::ptrdiff_t>(s.t_out()),
                 static_cast<std::ptrdiff_t>(opt_.out_channels)});
    ops::conv1d_backward_params<Backend>(
        ops::conv1d_backward_params_args<T>{.shape = s,
                                            .x = x.data(),
                                            .dy = dy.data(),
                                            .d_weight = weight_.grad.data(),
                                            .d_bias = opt_.bias ? bias_.grad.data() : nullptr},
        ws_);
    if (dx == nullptr) return;
    ensure_shape(*dx, x.shape());
    ops::conv1d_backward_input<Backend>(
        ops::conv1d_backward_input_args<T>{
            .shape = s, .dy = dy.data(), .weight = weight_.value.data(), .dx = dx->data()},
        ws_);
  }

  /// Visits "weight" `[C_out, C_in, kernel]` and, with bias, "bias" `[C_out]`.
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    f(join_name(prefix, "weight"), weight_);
    if (opt_.bias) f(join_name(prefix, "bias"), bias_);
  }

  /// The weight `[C_out, C_in, kernel]`.
  parameter<T>& weight() { return weight_; }
  /// The bias `[C_out]` (empty without bias).
  parameter<T>& bias() { return bias_; }

 private:
  const T* bias_value() const { return opt_.bias ? bias_.value.data() : nullptr; }

  // Checks x `[B, T_in, C_in]` with T_in + 2*padding >= kernel; returns the shape of the call.
  ops::conv1d_shape check_input(std::string_view where, const tensor3<T>& x) const {
    check_shape(where, x, {any, any, static_cast<std::ptrdiff_t>(opt_.in_channels)});
    const std::size_t t_in = x.shape()[1];
    if (t_in + 2 * opt_.padding < opt_.kernel)
      throw shape_error(std::string(where) +
                        ": expected [*, >= " + std::to_string(opt_.kernel - 2 * opt_.padding) + ", " +
                        std::to_string(opt_.in_channels) + "] (kernel " + std::to_string(opt_.kernel) +
                        ", padding " + std::to_string(opt_.padding) + "), got " + shape_string(x.shape()));
    return {.batch = x.shape()[0],
            .t_in = t_in,
            .c_in = opt_.in_channels,
            .c_out = opt_.out_channels,
            .kernel = opt_.kernel,
            .stride = opt_.stride,
            .padding = opt_.padding};
  }

  options opt_;
  parameter<T> weight_;
  parameter<T> bias_;
  ops::conv1d_workspace<Backend, T> ws_;  // packed weights and gradient staging (backend-specific)
};

}  // namespace cpc
