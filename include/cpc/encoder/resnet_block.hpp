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
#include "cpc/layers/conv2d.hpp"
#include "cpc/layers/layer_norm.hpp"

namespace cpc {

namespace detail {
// Copies an NHWC image tensor into `[N, H*W, C]` (the per-pixel frames layer_norm works on).
template <class Backend, class T>
void as_frames(const tensor4<T>& x, tensor3<T>& out) {
  ensure_shape(out, std::array<std::size_t, 3>{x.shape()[0], x.shape()[1] * x.shape()[2], x.shape()[3]});
  ops::copy<Backend>(ops::copy_args<T>{.n = x.size(), .x = x.data(), .y = out.data()});
}
// Copies `[N, H*W, C]` frames back into an NHWC tensor of `shape`.
template <class Backend, class T, class Shape>
void as_image(const tensor3<T>& x, const Shape& shape, tensor4<T>& out) {
  ensure_shape(out, shape);
  ops::copy<Backend>(ops::copy_args<T>{.n = x.size(), .x = x.data(), .y = out.data()});
}
// y += x element-wise over n scalars.
template <class Backend, class T>
void add_into(std::size_t n, const T* x, T* y) {
  ops::axpby<Backend>(ops::axpby_args<T>{.n = n, .alpha = T(1), .x = x, .beta = T(1), .y = y});
}
}  // namespace detail

/// Sizes of `cpc::resnet_block` (the same type for every element type and backend): width C and
/// the (odd) kernel size.
struct resnet_block_options {
  std::size_t channels = 64;
  std::size_t kernel = 3;
};

/// Pre-activation residual block (He et al. 2016, "Identity Mappings in Deep Residual
/// Networks", Fig. 4e) with layer norm in place of batch norm, as CPC v2 does (Hénaff et al. 2020):
///   y = x + conv2(relu(ln2(conv1(relu(ln1(x)))))),
/// where ln normalises the C channels of each pixel (torch.nn.LayerNorm(C) on NHWC) and conv1,
/// conv2 are `kernel` x `kernel` convolutions, stride 1, "same" padding, C -> C channels.
/// Shapes: x, y `[batch, H, W, C]`. Parameters: "ln1.{weight,bias}", "conv1.{weight,bias}",
/// "ln2.{weight,bias}", "conv2.{weight,bias}". Errors: `cpc::config_error` for zero channels or an
/// even kernel; `cpc::shape_error` for a wrong channel count or gradient shape.
/// Source: torch code in tests/golden/gen_image.py (PreActBlock).
template <class T, class Backend = cpu>
class resnet_block {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// Block sizes (`cpc::resnet_block_options`).
  using options = resnet_block_options;

  /// Draws conv1 then conv2 from `gen` (layer norms start at weight 1, bias 0).
  resnet_block(options opt, rng& gen)
      : opt_(check(opt)),
        ln1_({.normalized_shape = opt.channels}),
        conv1_(conv_options(opt), gen),
        ln2_({.normalized_shape = opt.channels}),
        conv2_(conv_options(opt), gen) {}

  /// The options the block was built with.
  const options& config() const { return opt_; }

  /// y = x + F(x). Keeps the intermediate activations for `backward`.
  void forward(const tensor4<T>& x, tensor4<T>& y) {
    check_shape("resnet_block forward input", x, {any, any, any, static_cast<std::ptrdiff_t>(opt_.channels)});
    detail::as_frames<Backend>(x, x3_);
    ln1_.forward_relu(x3_, a1_3_);
    detail::as_image<Backend>(a1_3_, x.shape(), a1_);
    conv1_.forward(a1_, h1_);
    detail::as_frames<Backend>(h1_, h1_3_);
    ln2_.forward_relu(h1_3_, a2_3_);
    detail::as_image<Backend>(a2_3_, x.shape(), a2_);
    conv2_.forward(a2_, y);
    detail::add_into<Backend>(y.size(), x.data(), y.data());
  }

  /// Accumulates every parameter gradient; writes dx (overwritten) when not null. Must follow a
  /// `forward` on the same x. Shapes: x, y, dy, dx `[B, H, W, C]`.
  void backward(const tensor4<T>& x, const tensor4<T>& /*y*/, const tensor4<T>& dy, tensor4<T>* dx) {
    check_shape("resnet_block backward output gradient", dy,
                {static_cast<std::ptrdiff_t>(x.shape()[0]), static_cast<std::ptrdiff_t>(x.shape()[1]),
                 static_cast<std::ptrdiff_t>(x.shape()[2]), static_cast<std::ptrdiff_t>(opt_.channels)});
    conv2_.backward(a2_, dy, dy, &d4_);
    detail::as_frames<Backend>(d4_, d3_);
    ln2_.backward_relu(h1_3_, a2_3_, d3_, &e3_);
    detail::as_image<Backend>(e3_, x.shape(), d4_);
    conv1_.backward(a1_, h1_, d4_, &e4_);
    detail::as_frames<Backend>(e4_, d3_);
    ln1_.backward_relu(x3_, a1_3_, d3_, dx != nullptr ? &e3_ : nullptr);
    if (dx == nullptr) return;
    detail::as_image<Backend>(e3_, x.shape(), *dx);
    detail::add_into<Backend>(dx->size(), dy.data(), dx->data());
  }

  /// Visits ln1, conv1, ln2, conv2 parameters (see the class comment for names).
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    ln1_.for_each_parameter(f, join_name(prefix, "ln1"));
    conv1_.for_each_parameter(f, join_name(prefix, "conv1"));
    ln2_.for_each_parameter(f, join_name(prefix, "ln2"));
    conv2_.for_each_parameter(f, join_name(prefix, "conv2"));
  }

  /// The first convolution (after ln1 + ReLU).
  conv2d<T, Backend>& conv1() { return conv1_; }
  /// The second convolution (after ln2 + ReLU).
  conv2d<T, Backend>& conv2() { return conv2_; }
  /// The first layer norm (on the block input).
  layer_norm<T, Backend>& ln1() { return ln1_; }
  /// The second layer norm (on conv1's output).
  layer_norm<T, Backend>& ln2() { return ln2_; }

 private:
  static const options& check(const options& o) {
    if (o.channels == 0) throw config_error("resnet_block: expected channels > 0, got 0");
    if (o.kernel % 2 == 0)
      throw config_error("resnet_block: expected an odd kernel, got " + std::to_string(o.kernel));
    return o;
  }
  static conv2d_options conv_options(const options& o) {
    return {.in_channels = o.channels,
            .out_channels = o.channels,
            .kernel = o.kernel,
            .stride = 1,
            .padding = o.kernel / 2};
  }

  options opt_;
  layer_norm<T, Backend> ln1_;
  conv2d<T, Backend> conv1_;
  layer_norm<T, Backend> ln2_;
  conv2d<T, Backend> conv2_;
  // Activations kept for backward, and gradient workspaces.
  tensor3<T> x3_, a1_3_, h1_3_, a2_3_, d3_, e3_;
  tensor4<T> a1_, h1_, a2_, d4_, e4_;
};

}  // namespace cpc
