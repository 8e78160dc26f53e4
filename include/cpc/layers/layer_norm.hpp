#pragma once
#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>

#include "cpc/backend/ops.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"

namespace cpc {

/// Sizes of `cpc::layer_norm` (the same type for every element type and backend): C =
/// `normalized_shape` (the last dimension), the variance floor `eps`, and whether there are a
/// weight and a bias (`elementwise_affine = false` drops them).
struct layer_norm_options {
  std::size_t normalized_shape = 0;
  double eps = 1e-5;
  bool elementwise_affine = true;
};

/// Layer normalisation over the last dimension of every frame:
/// y[b,t,:] = (x[b,t,:] - mean) / sqrt(var + eps) * weight + bias, with the mean and the biased
/// variance (divide by C) taken over the C = normalized_shape channels of that one frame only.
/// Shapes: x `[batch, time, C]` -> y `[batch, time, C]`; weight and bias `[C]` (init 1 and 0).
/// Also offers `forward_relu` / `backward_relu`: relu(layer_norm(x)) in one pass, which the audio
/// encoder uses after each convolution. Errors: `cpc::shape_error` on a wrong input or gradient
/// shape; `cpc::config_error` on C == 0 or eps < 0. Source: torch.nn.LayerNorm(C) (Ba et al. 2016).
/// The kernels are the ops of backend/op/norm.hpp.
template <class T, class Backend = cpu>
class layer_norm {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// Layer sizes (`cpc::layer_norm_options`).
  using options = layer_norm_options;

  /// Builds the layer with weight 1 and bias 0 (PyTorch's init; nothing is drawn at random).
  explicit layer_norm(options opt) : opt_(opt) {
    if (opt.normalized_shape == 0) throw config_error("layer_norm: expected normalized_shape > 0, got 0");
    if (!(opt.eps >= 0)) throw config_error("layer_norm: expected eps >= 0, got " + std::to_string(opt.eps));
    if (opt.elementwise_affine) {
      weight_ = parameter<T>({opt.normalized_shape});
      ops::fill<Backend>(ops::fill_args<T>{.n = weight_.size(), .value = T(1), .y = weight_.value.data()});
      bias_ = parameter<T>({opt.normalized_shape});
    }
  }
  /// Same as `layer_norm(opt)`; takes a generator only so that every layer builds the same way.
  layer_norm(options opt, rng& /*gen*/) : layer_norm(opt) {}

  /// The options the layer was built with.
  const options& config() const { return opt_; }

  /// y = layer_norm(x). Shapes: x `[B, T, C]`, y resized to `[B, T, C]`.
  void forward(const tensor3<T>& x, tensor3<T>& y) { forward_rows(false, "layer_norm forward input", x, y); }

  /// y = max(layer_norm(x), 0) in one pass over x. Shapes as `forward`.
  void forward_relu(const tensor3<T>& x, tensor3<T>& y) {
    forward_rows(true, "layer_norm forward input", x, y);
  }

  /// Accumulates d weight and d bias; writes dx when `dx` is not null. The per-frame statistics
  /// are recomputed from x, so backward depends only on its arguments. Shapes: x, dy `[B, T, C]`;
  /// dx resized to `[B, T, C]`; dx may be &dy (the gradient replaced in place). `y` is unused.
  void backward(const tensor3<T>& x, const tensor3<T>& y, const tensor3<T>& dy, tensor3<T>* dx) {
    backward_rows(false, "layer_norm", x, y, dy, dx);
  }

  /// Backward of `forward_relu`: y is its output (the relu mask is y > 0, as in PyTorch); dx may
  /// be &dy.
  void backward_relu(const tensor3<T>& x, const tensor3<T>& y, const tensor3<T>& dy, tensor3<T>* dx) {
    backward_rows(true, "layer_norm", x, y, dy, dx);
  }

  /// Visits "weight" `[C]` and "bias" `[C]` when elementwise_affine, else nothing.
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    if (!opt_.elementwise_affine) return;
    f(join_name(prefix, "weight"), weight_);
    f(join_name(prefix, "bias"), bias_);
  }

  /// The weight `[C]` (empty without elementwise_affine).
  parameter<T>& weight() { return weight_; }
  /// The bias `[C]` (empty without elementwise_affine).
  parameter<T>& bias() { return bias_; }

 private:
  std::ptrdiff_t width() const { return static_cast<std::ptrdiff_t>(opt_.normalized_shape); }

  void forward_rows(bool relu, std::string_view where, const tensor3<T>& x, tensor3<T>& y) {
    check_shape(where, x, {any, any, width()});
    ensure_shape(y, x.shape());
    const bool affine = opt_.elementwise_affine;
    ops::layer_norm_forward<Backend>(
        ops::layer_norm_forward_args<T>{.rows = x.shape()[0] * x.shape()[1],
                                        .cols = opt_.normalized_shape,
                                        .eps = opt_.eps,
                                        .relu = relu,
                                        .x = x.data(),
                                        .weight = affine ? weight_.value.data() : nullptr,
                                        .bias = affine ? bias_.value.data() : nullptr,
                                        .y = y.data()});
  }

  void backward_rows(bool relu, std::string_view name, const tensor3<T>& x, const tensor3<T>& y,
                     const tensor3<T>& dy, tensor3<T>* dx) {
    const std::string n(name);
    check_shape(n + " backward input", x, {any, any, width()});
    const std::initializer_list<std::ptrdiff_t> xs{static_cast<std::ptrdiff_t>(x.shape()[0]),
                                                   static_cast<std::ptrdiff_t>(x.shape()[1]), width()};
    check_shape(n + " backward output gradient", dy, xs);
    if (relu) check_shape(n + " backward output", y, xs);
    if (dx != nullptr) ensure_shape(*dx, x.shape());
    const bool affine = opt_.elementwise_affine;
    ops::layer_norm_backward<Backend>(
        ops::layer_norm_backward_args<T>{.rows = x.shape()[0] * x.shape()[1],
                                         .cols = opt_.normalized_shape,
                                         .eps = opt_.eps,
                                         .relu = relu,
                                         .x = x.data(),
                                         .y = relu ? y.data() : nullptr,
                                         .dy = dy.data(),
                                         .weight = affine ? weight_.value.data() : nullptr,
                                         .dx = dx != nullptr ? dx->data() : nullptr,
                                         .d_weight = affine ? weight_.grad.data() : nullptr,
                                         .d_bias = affine ? bias_.grad.data() : nullptr},
        ws_);
  }

  options opt_;
  parameter<T> weight_;
  parameter<T> bias_;
  ops::layer_norm_workspace<Backend, T> ws_;  // per-frame statistics (backend-specific)
};

}  // namespace cpc
