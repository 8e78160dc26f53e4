#pragma once
#include <cstddef>
#include <string_view>

#include "cpc/backend/ops.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"

namespace cpc {

/// Options of `cpc::relu`: none (it exists so that every layer builds from `(options, rng&)`,
/// e.g. in generic tests).
struct relu_options {};

/// Rectified linear unit, y = max(x, 0), element-wise; no parameters.
/// Shapes: x `[batch, time, channels]` -> y of the same shape. The gradient is dy where y > 0 and
/// 0 elsewhere (also at x == 0, as in PyTorch). Errors: `cpc::shape_error` when backward's
/// tensors disagree in shape. Source: torch.nn.ReLU. Kernels: backend/op/activation.hpp.
template <class T, class Backend = cpu>
class relu {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// No options (`cpc::relu_options`).
  using options = relu_options;

  /// A ReLU layer.
  relu() = default;
  /// Same as `relu()`; takes options and a generator only so that every layer builds the same way.
  relu(options /*opt*/, rng& /*gen*/) {}

  /// y = max(x, 0); y is resized to x's shape.
  void forward(const tensor3<T>& x, tensor3<T>& y) {
    ensure_shape(y, x.shape());
    ops::relu_forward<Backend>(ops::relu_forward_args<T>{.n = x.size(), .x = x.data(), .y = y.data()});
  }

  /// dx = dy * (y > 0); dx is resized to y's shape (`dx` may be null: then nothing happens).
  /// `x` is unused. Errors: `cpc::shape_error` when dy's shape differs from y's.
  void backward(const tensor3<T>& /*x*/, const tensor3<T>& y, const tensor3<T>& dy, tensor3<T>* dx) {
    check_shape("relu backward output gradient", dy,
                {static_cast<std::ptrdiff_t>(y.shape()[0]), static_cast<std::ptrdiff_t>(y.shape()[1]),
                 static_cast<std::ptrdiff_t>(y.shape()[2])});
    if (dx == nullptr) return;
    ensure_shape(*dx, y.shape());
    ops::relu_backward<Backend>(
        ops::relu_backward_args<T>{.n = y.size(), .y = y.data(), .dy = dy.data(), .dx = dx->data()});
  }

  /// No parameters: visits nothing.
  template <class F>
  void for_each_parameter(F&& /*f*/, std::string_view /*prefix*/ = "") {}
};

}  // namespace cpc
