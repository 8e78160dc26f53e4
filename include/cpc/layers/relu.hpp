#pragma once
#include <algorithm>
#include <cstddef>
#include <string_view>

#include "cpc/backend/tags.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/core/threads.hpp"

namespace cpc {

/// Rectified linear unit, y = max(x, 0), element-wise; no parameters.
/// Shapes: x `[batch, time, channels]` -> y of the same shape. The gradient is dy where y > 0 and
/// 0 elsewhere (also at x == 0, as in PyTorch). Errors: `cpc::shape_error` when backward's
/// tensors disagree in shape. Source: torch.nn.ReLU.
template <class T, class Backend = cpu>
class relu {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// y = max(x, 0); y is resized to x's shape.
  void forward(const tensor3<T>& x, tensor3<T>& y) {
    ensure_shape(y, x.shape());
    const T* in = x.data();
    T* out = y.data();
    for_each_chunk(x.size(), [&](std::size_t i0, std::size_t i1) {
      for (std::size_t i = i0; i < i1; ++i) out[i] = std::max(in[i], T(0));
    });
  }

  /// dx = dy * (y > 0); dx is resized to y's shape (`dx` may be null: then nothing happens).
  /// `x` is unused. Errors: `cpc::shape_error` when dy's shape differs from y's.
  void backward(const tensor3<T>& /*x*/, const tensor3<T>& y, const tensor3<T>& dy, tensor3<T>* dx) {
    check_shape("relu backward output gradient", dy,
                {static_cast<std::ptrdiff_t>(y.shape()[0]), static_cast<std::ptrdiff_t>(y.shape()[1]),
                 static_cast<std::ptrdiff_t>(y.shape()[2])});
    if (dx == nullptr) return;
    ensure_shape(*dx, y.shape());
    const T* yv = y.data();
    const T* d = dy.data();
    T* out = dx->data();
    for_each_chunk(y.size(), [&](std::size_t i0, std::size_t i1) {
      // A multiply, not a branch: the sign of y is random, and a branch mispredicts half the time.
      for (std::size_t i = i0; i < i1; ++i) out[i] = d[i] * static_cast<T>(yv[i] > T(0));
    });
  }

  /// No parameters: visits nothing.
  template <class F>
  void for_each_parameter(F&& /*f*/, std::string_view /*prefix*/ = "") {}

 private:
  static constexpr std::size_t chunk = std::size_t(1) << 15;  // elements per task

  template <class F>
  static void for_each_chunk(std::size_t n, F&& f) {
    parallel_for(0, (n + chunk - 1) / chunk,
                 [&](std::size_t c) { f(c * chunk, std::min(n, (c + 1) * chunk)); });
  }
};

}  // namespace cpc
