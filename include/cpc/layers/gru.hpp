#pragma once
#include <cstddef>
#include <string_view>

#include "cpc/backend/ops.hpp"
#include "cpc/layers/recurrent_detail.hpp"

namespace cpc {

/// Sizes of `cpc::gru` (`cpc::recurrent_options`: the same type for every element type and
/// backend, shared with `cpc::lstm`).
using gru_options = recurrent_options;

/// Multi-layer gated recurrent unit, batch-first. Source: torch.nn.GRU (batch_first=True), same
/// equations, gate order (r, z, n), parameter names and layouts:
///   r = s(W_ir x + b_ir + W_hr h + b_hr),  z = s(W_iz x + b_iz + W_hz h + b_hz),
///   n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h.
/// Shapes: x `[batch, time, input_size]` -> y `[batch, time, hidden_size]` (the last layer's h_t);
/// states `[num_layers, batch, hidden_size]`; "weight_ih_l{k}" `[3H, in_k]` (in_0 = input_size,
/// in_k = H), "weight_hh_l{k}" `[3H, H]`, "bias_ih_l{k}" / "bias_hh_l{k}" `[3H]`.
/// Init: PyTorch's, U(+-1/sqrt(hidden_size)) for every tensor. h0 = 0 unless given.
/// Causal: y at time t depends on x at times <= t only (bit-identical when later inputs change);
/// batch items are independent; forward is bit-identical for any thread count, for an item alone
/// or in a batch, and for a sequence fed in chunks carrying h_n -> h0.
/// Errors: `cpc::shape_error` on wrong input, state or gradient shapes; `cpc::config_error` on zero
/// sizes or backward without forward. A layer object is not safe to use from two threads at once.
template <class T, class Backend = cpu>
class gru {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// `{.input_size, .hidden_size, .num_layers = 1, .bias = true}` (`cpc::gru_options`).
  using options = gru_options;

  /// Builds the stack and draws PyTorch's default initial weights from `gen`.
  gru(options opt, rng& gen) : core_(opt, gen, "gru") {}

  const options& config() const { return core_.config(); }

  /// y = GRU(x) with h0 = 0. x `[B, T, input_size]`, y resized to `[B, T, hidden_size]`. Keeps the
  /// gates and hidden states for `backward`.
  void forward(const tensor3<T>& x, tensor3<T>& y) {
    core_.forward(x, y, nullptr, nullptr, nullptr, nullptr);
  }

  /// State-carrying forward for streaming: starts from `h0` `[num_layers, B, hidden_size]` (zeros
  /// when null) and, when `h_n` is not null, writes the final states there (resized to
  /// `[num_layers, B, hidden_size]`; `h_n` may be the same object as `h0`). Feeding a sequence in
  /// chunks with h_n -> h0 gives bit-identically the y of one pass.
  void forward(const tensor3<T>& x, tensor3<T>& y, const tensor3<T>* h0, tensor3<T>* h_n) {
    core_.forward(x, y, h0, nullptr, h_n, nullptr);
  }

  /// Back-propagation through time over the whole sequence of the latest forward call (x and y
  /// must be that call's input and output). ACCUMULATES every parameter gradient and, when `dx`
  /// is not null, overwrites *dx (resized to `[B, T, input_size]`). dy `[B, T, hidden_size]`.
  /// The gradient with respect to h0 is not computed (h0 is treated as a constant).
  void backward(const tensor3<T>& x, const tensor3<T>& y, const tensor3<T>& dy, tensor3<T>* dx) {
    core_.backward(x, y, dy, dx);
  }

  /// Visits, per layer k: "weight_ih_l{k}", "weight_hh_l{k}", and with bias "bias_ih_l{k}",
  /// "bias_hh_l{k}" (torch.nn.GRU's order).
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    core_.for_each_parameter(f, prefix);
  }

  /// Layer k's parameters. Errors: `cpc::config_error` when k >= num_layers.
  parameter<T>& weight_ih(std::size_t k = 0) { return core_.weight_ih(k); }
  parameter<T>& weight_hh(std::size_t k = 0) { return core_.weight_hh(k); }
  parameter<T>& bias_ih(std::size_t k = 0) { return core_.bias_ih(k); }
  parameter<T>& bias_hh(std::size_t k = 0) { return core_.bias_hh(k); }

 private:
  detail::recurrent_stack<T, Backend, ops::rnn_cell::gru> core_;
};

}  // namespace cpc
