#pragma once
#include <array>
#include <cstddef>
#include <string_view>

#include "cpc/backend/ops.hpp"
#include "cpc/layers/recurrent_detail.hpp"

namespace cpc {

/// Sizes of `cpc::lstm` (`cpc::recurrent_options`: the same type for every element type and
/// backend, shared with `cpc::gru`).
using lstm_options = recurrent_options;

/// Multi-layer long short-term memory, batch-first. Source: torch.nn.LSTM (batch_first=True,
/// proj_size=0), same equations, gate order (i, f, g, o), parameter names and layouts:
///   i = s(W_ii x + b_ii + W_hi h + b_hi),  f = s(W_if x + b_if + W_hf h + b_hf),
///   g = tanh(W_ig x + b_ig + W_hg h + b_hg),  o = s(W_io x + b_io + W_ho h + b_ho),
///   c' = f * c + i * g,  h' = o * tanh(c').
/// Shapes: x `[batch, time, input_size]` -> y `[batch, time, hidden_size]` (the last layer's h_t);
/// states h and c each `[num_layers, batch, hidden_size]`; "weight_ih_l{k}" `[4H, in_k]`,
/// "weight_hh_l{k}" `[4H, H]`, "bias_ih_l{k}" / "bias_hh_l{k}" `[4H]`.
/// Init: PyTorch's, U(+-1/sqrt(hidden_size)) for every tensor. (h0, c0) = 0 unless given.
/// Causal, batch items independent, forward bit-identical for any thread count, alone or in a
/// batch, and when streamed in chunks (see cpc::gru).
/// Errors: `cpc::shape_error` on wrong input, state or gradient shapes; `cpc::config_error` on zero
/// sizes or backward without forward. A layer object is not safe to use from two threads at once.
template <class T, class Backend = cpu>
class lstm {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// `{.input_size, .hidden_size, .num_layers = 1, .bias = true}` (`cpc::lstm_options`).
  using options = lstm_options;

  /// Recurrent state: h and c, each `[num_layers, batch, hidden_size]`.
  struct state {
    tensor3<T> h;
    tensor3<T> c;
  };

  /// Builds the stack and draws PyTorch's default initial weights from `gen`.
  lstm(options opt, rng& gen) : core_(opt, gen, "lstm") {}

  const options& config() const { return core_.config(); }

  /// y = LSTM(x) with (h0, c0) = 0. x `[B, T, input_size]`, y resized to `[B, T, hidden_size]`.
  void forward(const tensor3<T>& x, tensor3<T>& y) {
    core_.forward(x, y, nullptr, nullptr, nullptr, nullptr);
  }

  /// State-carrying forward for streaming: starts from `*initial` (zeros when null) and, when
  /// `final` is not null, writes the final (h, c) there (`final` may be `initial`). Feeding a
  /// sequence in chunks with final -> initial gives bit-identically the y of one pass.
  void forward(const tensor3<T>& x, tensor3<T>& y, const state* initial, state* final) {
    core_.forward(x, y, initial ? &initial->h : nullptr, initial ? &initial->c : nullptr,
                  final ? &final->h : nullptr, final ? &final->c : nullptr);
  }

  /// The same with the state packed in one tensor `[2 * num_layers, B, hidden_size]`: the h of
  /// every layer, then the c of every layer (the form cpc::model's autoregressor interface takes).
  /// `hc_n` may be the same object as `hc0`. Errors: `cpc::shape_error` on a wrong state shape.
  void forward(const tensor3<T>& x, tensor3<T>& y, const tensor3<T>* hc0, tensor3<T>* hc_n) {
    const std::size_t L = config().num_layers, H = config().hidden_size;
    if (hc0) {
      check_shape("lstm forward initial state (h then c)", *hc0,
                  {static_cast<std::ptrdiff_t>(2 * L), any, static_cast<std::ptrdiff_t>(H)});
      split(*hc0, packed_in_);
    }
    forward(x, y, hc0 ? &packed_in_ : nullptr, hc_n ? &packed_out_ : nullptr);
    if (hc_n) {
      const std::size_t half = packed_out_.h.size();
      ensure_shape(*hc_n, std::array<std::size_t, 3>{2 * L, packed_out_.h.shape()[1], H});
      ops::copy<Backend>(ops::copy_args<T>{.n = half, .x = packed_out_.h.data(), .y = hc_n->data()});
      ops::copy<Backend>(ops::copy_args<T>{.n = half, .x = packed_out_.c.data(), .y = hc_n->data() + half});
    }
  }

  /// Back-propagation through time over the whole sequence of the latest forward call (x and y
  /// must be that call's input and output). ACCUMULATES every parameter gradient and, when `dx`
  /// is not null, overwrites *dx (resized to `[B, T, input_size]`). dy `[B, T, hidden_size]`.
  /// The gradients with respect to the initial state (h0, c0) are not computed.
  void backward(const tensor3<T>& x, const tensor3<T>& y, const tensor3<T>& dy, tensor3<T>* dx) {
    core_.backward(x, y, dy, dx);
  }

  /// Visits, per layer k: "weight_ih_l{k}", "weight_hh_l{k}", and with bias "bias_ih_l{k}",
  /// "bias_hh_l{k}" (torch.nn.LSTM's order).
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
  static void split(const tensor3<T>& hc, state& s) {
    const std::array<std::size_t, 3> shape{hc.shape()[0] / 2, hc.shape()[1], hc.shape()[2]};
    ensure_shape(s.h, shape);
    ensure_shape(s.c, shape);
    const std::size_t half = s.h.size();
    ops::copy<Backend>(ops::copy_args<T>{.n = half, .x = hc.data(), .y = s.h.data()});
    ops::copy<Backend>(ops::copy_args<T>{.n = half, .x = hc.data() + half, .y = s.c.data()});
  }

  detail::recurrent_stack<T, Backend, ops::rnn_cell::lstm> core_;
  state packed_in_, packed_out_;  // workspaces of the packed-state forward
};

}  // namespace cpc
