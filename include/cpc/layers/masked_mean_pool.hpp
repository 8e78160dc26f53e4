#pragma once
/// Mean pooling over the valid steps of padded sequences.
#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "cpc/backend/ops.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"

namespace cpc {

/// Options of `cpc::masked_mean_pool`: none (every layer builds from `(options, rng&)`).
struct masked_mean_pool_options {};

/// Mean over time of each row's first lengths[r] steps: y[r, c] = (1 / len_r) sum_{t < len_r}
/// x[r, t, c]; a row of length 0 gives 0 (and gets no gradient). Padding steps t >= len_r affect
/// neither the output nor, in backward, their gradient (which is 0). No parameters.
/// Shapes: x `[rows, time, channels]`, lengths `[rows]` -> y `[rows, channels]`.
/// Errors: `cpc::shape_error` for a lengths count other than rows, a length above time, or a
/// gradient of the wrong shape. Source: the masked mean `(x * m).sum(1) / m.sum(1)` with
/// m[r, t] = t < len_r (PyTorch), as a sentence encoder pools a padded batch (van den Oord et al.
/// 2018, section 3.3). Kernels: backend/op/text.hpp.
template <class T, class Backend = cpu>
class masked_mean_pool {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// No options (`cpc::masked_mean_pool_options`).
  using options = masked_mean_pool_options;

  masked_mean_pool() = default;
  /// Same as `masked_mean_pool()`.
  masked_mean_pool(options /*opt*/, rng& /*gen*/) {}

  /// y = masked mean of x over time; y resized to `[rows, channels]`.
  void forward(const tensor3<T>& x, std::span<const std::size_t> lengths, tensor2<T>& y) {
    check_lengths("masked_mean_pool forward", x, lengths);
    ensure_shape(y, std::array<std::size_t, 2>{x.shape()[0], x.shape()[2]});
    ops::masked_mean_pool<Backend>(ops::masked_mean_pool_args<T>{.rows = x.shape()[0],
                                                                 .time = x.shape()[1],
                                                                 .channels = x.shape()[2],
                                                                 .lengths = lengths.data(),
                                                                 .x = x.data(),
                                                                 .y = y.data()});
  }

  /// dx `[rows, time, channels]` (resized, overwritten) from dy `[rows, channels]`: dy / len_r on
  /// the valid steps, 0 on padding.
  void backward(const tensor3<T>& x, std::span<const std::size_t> lengths, const tensor2<T>& dy,
                tensor3<T>& dx) {
    check_lengths("masked_mean_pool backward", x, lengths);
    check_shape("masked_mean_pool backward output gradient", dy,
                {static_cast<std::ptrdiff_t>(x.shape()[0]), static_cast<std::ptrdiff_t>(x.shape()[2])});
    ensure_shape(dx, x.shape());
    ops::masked_mean_pool_backward<Backend>(ops::masked_mean_pool_backward_args<T>{.rows = x.shape()[0],
                                                                                   .time = x.shape()[1],
                                                                                   .channels = x.shape()[2],
                                                                                   .lengths = lengths.data(),
                                                                                   .dy = dy.data(),
                                                                                   .dx = dx.data()});
  }

  /// No parameters: visits nothing.
  template <class F>
  void for_each_parameter(F&& /*f*/, std::string_view /*prefix*/ = "") {}

 private:
  static void check_lengths(std::string_view where, const tensor3<T>& x,
                            std::span<const std::size_t> lengths) {
    if (lengths.size() != x.shape()[0])
      throw shape_error(std::string(where) + ": expected " + std::to_string(x.shape()[0]) + " lengths, got " +
                        std::to_string(lengths.size()));
    for (std::size_t r = 0; r < lengths.size(); ++r)
      if (lengths[r] > x.shape()[1])
        throw shape_error(std::string(where) + ": length of row " + std::to_string(r) + " is " +
                          std::to_string(lengths[r]) + ", expected <= " + std::to_string(x.shape()[1]));
  }
};

}  // namespace cpc
