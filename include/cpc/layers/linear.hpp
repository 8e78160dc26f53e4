#pragma once
#include <array>
#include <cstddef>
#include <string_view>

#include "cpc/backend/ops.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/layers/init.hpp"

namespace cpc {

/// Sizes of `cpc::linear` (the same type for every element type and backend); `bias = false` drops
/// the bias term.
struct linear_options {
  std::size_t in_features = 0;
  std::size_t out_features = 0;
  bool bias = true;
};

/// Fully connected layer applied to every frame: y[b,t,:] = W x[b,t,:] + bias.
/// Shapes: x `[batch, time, in_features]` -> y `[batch, time, out_features]`;
/// weight `[out_features, in_features]`, bias `[out_features]` (PyTorch's layout and names).
/// Init: PyTorch's default (U(+-1/sqrt(in_features))). Errors: `cpc::shape_error` on a wrong
/// input or gradient shape; `cpc::config_error` on zero features.
/// Source: torch.nn.Linear.
template <class T, class Backend = cpu>
class linear {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// Layer sizes (`cpc::linear_options`).
  using options = linear_options;

  /// Builds the layer and draws PyTorch's default initial weights from `gen`.
  linear(options opt, rng& gen) : opt_(opt), weight_({opt.out_features, opt.in_features}) {
    if (opt.in_features == 0 || opt.out_features == 0)
      throw config_error("linear: expected in_features > 0 and out_features > 0");
    const double bound = default_init_bound(opt.in_features);
    init_uniform(weight_, bound, gen);
    if (opt.bias) {
      bias_ = parameter<T>({opt.out_features});
      init_uniform(bias_, bound, gen);
    }
  }

  const options& config() const { return opt_; }

  /// y = x W^T + b. Shapes: x `[B, T, in]`, y resized to `[B, T, out]`.
  void forward(const tensor3<T>& x, tensor3<T>& y) {
    check_shape("linear forward input", x, {any, any, static_cast<std::ptrdiff_t>(opt_.in_features)});
    const std::size_t rows = x.shape()[0] * x.shape()[1];
    ensure_shape(y, std::array<std::size_t, 3>{x.shape()[0], x.shape()[1], opt_.out_features});
    const auto in = static_cast<std::ptrdiff_t>(opt_.in_features);
    const auto out = static_cast<std::ptrdiff_t>(opt_.out_features);
    // y[r, o] = sum_i x[r, i] W[o, i]: B(i, o) = W[o, i].
    ops::gemm<Backend>(ops::gemm_args<T>{.m = rows,
                                         .n = opt_.out_features,
                                         .k = opt_.in_features,
                                         .a = x.data(),
                                         .a_row_stride = in,
                                         .a_depth_stride = 1,
                                         .b = weight_.value.data(),
                                         .b_row_stride = 1,
                                         .b_col_stride = in,
                                         .c = y.data(),
                                         .ldc = out,
                                         .accumulate = false},
                       gemm_ws_);
    if (opt_.bias)
      ops::add_row_vector<Backend>(ops::add_row_vector_args<T>{
          .rows = rows, .cols = opt_.out_features, .v = bias_.value.data(), .y = y.data(), .ldy = out});
  }

  /// Accumulates dW += dy^T x and db += sum(dy); writes dx = dy W when `dx` is not null.
  /// Shapes: x `[B, T, in]`, dy `[B, T, out]`, dx resized to `[B, T, in]`. `y` is unused.
  void backward(const tensor3<T>& x, const tensor3<T>& /*y*/, const tensor3<T>& dy, tensor3<T>* dx) {
    check_shape("linear backward input", x, {any, any, static_cast<std::ptrdiff_t>(opt_.in_features)});
    check_shape("linear backward output gradient", dy,
                {static_cast<std::ptrdiff_t>(x.shape()[0]), static_cast<std::ptrdiff_t>(x.shape()[1]),
                 static_cast<std::ptrdiff_t>(opt_.out_features)});
    const std::size_t rows = x.shape()[0] * x.shape()[1];
    const auto in = static_cast<std::ptrdiff_t>(opt_.in_features);
    const auto out = static_cast<std::ptrdiff_t>(opt_.out_features);
    // dW[o, i] += sum_r dy[r, o] x[r, i]: A = dy^T, B = x.
    ops::gemm<Backend>(ops::gemm_args<T>{.m = opt_.out_features,
                                         .n = opt_.in_features,
                                         .k = rows,
                                         .a = dy.data(),
                                         .a_row_stride = 1,
                                         .a_depth_stride = out,
                                         .b = x.data(),
                                         .b_row_stride = in,
                                         .b_col_stride = 1,
                                         .c = weight_.grad.data(),
                                         .ldc = in,
                                         .accumulate = true},
                       gemm_ws_);
    if (opt_.bias)
      ops::sum_rows<Backend>(ops::sum_rows_args<T>{
          .rows = rows, .cols = opt_.out_features, .x = dy.data(), .ldx = out, .out = bias_.grad.data()});
    if (dx == nullptr) return;
    ensure_shape(*dx, x.shape());
    // dx[r, i] = sum_o dy[r, o] W[o, i]: B(o, i) = W[o, i].
    ops::gemm<Backend>(ops::gemm_args<T>{.m = rows,
                                         .n = opt_.in_features,
                                         .k = opt_.out_features,
                                         .a = dy.data(),
                                         .a_row_stride = out,
                                         .a_depth_stride = 1,
                                         .b = weight_.value.data(),
                                         .b_row_stride = in,
                                         .b_col_stride = 1,
                                         .c = dx->data(),
                                         .ldc = in,
                                         .accumulate = false},
                       gemm_ws_);
  }

  /// Visits "weight" `[out, in]` and, with bias, "bias" `[out]`.
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    f(join_name(prefix, "weight"), weight_);
    if (opt_.bias) f(join_name(prefix, "bias"), bias_);
  }

  parameter<T>& weight() { return weight_; }
  parameter<T>& bias() { return bias_; }

 private:
  options opt_;
  parameter<T> weight_;
  parameter<T> bias_;
  ops::gemm_workspace<Backend, T> gemm_ws_;
};

}  // namespace cpc
