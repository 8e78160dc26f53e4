#pragma once
#include <array>
#include <cstddef>
#include <string_view>

#include "cpc/backend/cpu/eigen.hpp"
#include "cpc/backend/cpu/gemm.hpp"
#include "cpc/backend/tags.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/core/threads.hpp"
#include "cpc/layers/init.hpp"

namespace cpc {

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
  /// Layer sizes; `bias = false` drops the bias term.
  struct options {
    std::size_t in_features = 0;
    std::size_t out_features = 0;
    bool bias = true;
  };

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
    // B(i, o) = W[o, i], packed once for every task.
    wpack_.pack(weight_.value.data(), 1, in, opt_.in_features, opt_.out_features);
    parallel_for(0, row_blocks(rows), [&](std::size_t blk) {
      const auto [r0, n] = block(blk, rows);
      alignas(64) std::array<T, cpu_kernels::gemm_workspace_size<T>()> work;
      cpu_kernels::gemm<T>(static_cast<std::size_t>(n), x.data() + r0 * in, in, 1, wpack_,
                           y.data() + r0 * out, out, false, work.data());
      if (opt_.bias)
        cpu_kernels::matrix_map(y.data() + r0 * out, n, out).rowwise() +=
            cpu_kernels::row_vector_map(bias_.value.data(), out);
    });
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
    // Parameter gradients dW[o, :] += sum_r dy[r, o] x[r, :]: x packed once; each block of output
    // features is owned by one task and sums rows in order (deterministic).
    xpack_.pack(x.data(), in, 1, rows, opt_.in_features);
    const std::size_t out_blocks = (opt_.out_features + feature_block - 1) / feature_block;
    parallel_for(0, out_blocks, [&](std::size_t blk) {
      const std::size_t o0 = blk * feature_block;
      const auto n = static_cast<std::ptrdiff_t>(std::min(feature_block, opt_.out_features - o0));
      alignas(64) std::array<T, cpu_kernels::gemm_workspace_size<T>()> work;
      cpu_kernels::gemm<T>(static_cast<std::size_t>(n), dy.data() + o0, 1, out, xpack_,
                           weight_.grad.data() + o0 * in, in, true, work.data());
      if (opt_.bias) {
        const auto dyb = cpu_kernels::strided_map(dy.data() + o0, static_cast<std::ptrdiff_t>(rows), n, out);
        cpu_kernels::row_vector_map(bias_.grad.data() + o0, n) += dyb.colwise().sum();
      }
    });
    if (dx == nullptr) return;
    ensure_shape(*dx, x.shape());
    // B(o, i) = W[o, i].
    wpack_.pack(weight_.value.data(), in, 1, opt_.out_features, opt_.in_features);
    parallel_for(0, row_blocks(rows), [&](std::size_t blk) {
      const auto [r0, n] = block(blk, rows);
      alignas(64) std::array<T, cpu_kernels::gemm_workspace_size<T>()> work;
      cpu_kernels::gemm<T>(static_cast<std::size_t>(n), dy.data() + r0 * out, out, 1, wpack_,
                           dx->data() + r0 * in, in, false, work.data());
    });
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
  static constexpr std::size_t row_block = 256;     // rows per task in forward / dx
  static constexpr std::size_t feature_block = 64;  // output features per task in dW
  static std::size_t row_blocks(std::size_t rows) { return (rows + row_block - 1) / row_block; }
  static std::pair<std::size_t, std::ptrdiff_t> block(std::size_t blk, std::size_t rows) {
    const std::size_t r0 = blk * row_block;
    return {r0, static_cast<std::ptrdiff_t>(std::min(row_block, rows - r0))};
  }

  options opt_;
  parameter<T> weight_;
  parameter<T> bias_;
  cpu_kernels::packed_rhs<T> wpack_, xpack_;  // GEMM workspaces: packed weight, packed input (d weight)
};

}  // namespace cpc
