#pragma once
#include <cstddef>
#include <initializer_list>
#include <string_view>

#include "cpc/backend/ops.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/layers/layer_norm.hpp"

namespace cpc {

/// Sizes of `cpc::channel_norm` (the same type for every element type and backend): the number
/// of channels and the variance floor eps.
struct channel_norm_options {
  std::size_t channels = 0;
  double eps = 1e-5;
};

/// CPC's per-frame channel normalisation: each frame is normalised over its channels only,
/// y[b,t,:] = (x[b,t,:] - mean_c) / sqrt(var_c + eps) * weight + bias (biased variance, divide
/// by C). It never mixes frames, so it cannot leak the future and padding does not change other
/// frames (REFERENCE.md pitfall 8). The maths is `cpc::layer_norm` over the channel dimension,
/// which this class wraps. Shapes: x `[batch, time, channels]` -> y `[batch, time, channels]`;
/// weight and bias `[channels]` (init 1 and 0). Errors: `cpc::shape_error` on a wrong input or
/// gradient shape; `cpc::config_error` on channels == 0 or eps < 0.
/// Source: the ChannelNorm of public CPC reimplementations (facebookresearch/CPC_audio; it takes
/// the unbiased variance there, which differs by a factor C / (C - 1) inside the square root);
/// matches torch.nn.LayerNorm(channels) on channel-last input.
template <class T, class Backend = cpu>
class channel_norm {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// Layer sizes (`cpc::channel_norm_options`).
  using options = channel_norm_options;

  /// Builds the layer with weight 1 and bias 0.
  explicit channel_norm(options opt) : opt_(opt), impl_(make(opt)) {}
  /// Same as `channel_norm(opt)`; takes a generator only so that every layer builds the same way.
  channel_norm(options opt, rng& /*gen*/) : channel_norm(opt) {}

  /// The options the layer was built with.
  const options& config() const { return opt_; }

  /// y = channel_norm(x). Shapes: x `[B, T, channels]`, y resized to `[B, T, channels]`.
  void forward(const tensor3<T>& x, tensor3<T>& y) {
    check_input("channel_norm forward input", x);
    impl_.forward(x, y);
  }

  /// y = max(channel_norm(x), 0) in one pass (the encoder's norm + ReLU).
  void forward_relu(const tensor3<T>& x, tensor3<T>& y) {
    check_input("channel_norm forward input", x);
    impl_.forward_relu(x, y);
  }

  /// Accumulates d weight, d bias; writes dx when not null (dx may be &dy: replaced in place).
  /// Shapes: x, dy `[B, T, channels]`.
  void backward(const tensor3<T>& x, const tensor3<T>& y, const tensor3<T>& dy, tensor3<T>* dx) {
    check_backward(x, nullptr, dy);
    impl_.backward(x, y, dy, dx);
  }

  /// Backward of `forward_relu`; `y` is its output. dx may be &dy (replaced in place).
  void backward_relu(const tensor3<T>& x, const tensor3<T>& y, const tensor3<T>& dy, tensor3<T>* dx) {
    check_backward(x, &y, dy);
    impl_.backward_relu(x, y, dy, dx);
  }

  /// Visits "weight" `[channels]` and "bias" `[channels]`.
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    impl_.for_each_parameter(f, prefix);
  }

  /// The weight `[channels]`.
  parameter<T>& weight() { return impl_.weight(); }
  /// The bias `[channels]`.
  parameter<T>& bias() { return impl_.bias(); }

 private:
  static layer_norm_options make(const options& opt) {
    if (opt.channels == 0) throw config_error("channel_norm: expected channels > 0, got 0");
    return {.normalized_shape = opt.channels, .eps = opt.eps, .elementwise_affine = true};
  }
  void check_input(std::string_view where, const tensor3<T>& x) const {
    check_shape(where, x, {any, any, static_cast<std::ptrdiff_t>(opt_.channels)});
  }
  // Checked here as well so that the messages name channel_norm, not layer_norm.
  void check_backward(const tensor3<T>& x, const tensor3<T>* y, const tensor3<T>& dy) const {
    check_input("channel_norm backward input", x);
    const std::initializer_list<std::ptrdiff_t> xs{static_cast<std::ptrdiff_t>(x.shape()[0]),
                                                   static_cast<std::ptrdiff_t>(x.shape()[1]),
                                                   static_cast<std::ptrdiff_t>(opt_.channels)};
    check_shape("channel_norm backward output gradient", dy, xs);
    if (y != nullptr) check_shape("channel_norm backward output", *y, xs);
  }

  options opt_;
  layer_norm<T, Backend> impl_;
};

}  // namespace cpc
