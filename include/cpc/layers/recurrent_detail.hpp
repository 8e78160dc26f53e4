#pragma once
/// Shared engine of `cpc::gru` and `cpc::lstm` (internal; include gru.hpp or lstm.hpp instead).
///
/// A stack of `num_layers` recurrent layers, batch-first `[batch, time, channels]`, with
/// PyTorch's parameter names and layouts (torch.nn.GRU / torch.nn.LSTM). The cell (GRU or LSTM)
/// is an `ops::rnn_cell`; the engine checks shapes, owns the parameters, the per-layer sequences
/// kept for backward and the workspaces, and runs the layers in order. The kernels are ops
/// (backend/op/recurrent.hpp), chosen by `Backend`:
///
/// Per layer, forward:
///   1. the input projections of all (b, t) at once, `gates = x W_ih^T` (`ops::gemm`);
///   2. the recurrence (`ops::recurrent_forward`): per step `h_{t-1} W_hh^T` and the cell, which
///      adds both biases.
/// Backward, from the last layer to the first:
///   1. back-propagation through time (`ops::recurrent_backward`): the gate gradients of every step;
///   2. the parameter gradients and the gradient with respect to the layer's input, each one
///      `ops::gemm` (or `ops::sum_rows` for a bias) over all (b, t) at once.
///
/// Determinism: the ops' contracts make each forward output row (one batch item, one time step)
/// independent of the batch, of the item's position and of the thread count, so forward results
/// are bit-identical for a batch item alone or in a batch, for one pass or a stream of chunks
/// carrying the final state into the next chunk's initial state, and for any number of threads.
#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "cpc/backend/ops.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/layers/init.hpp"

namespace cpc {

/// Sizes of a recurrent stack (`cpc::gru`, `cpc::lstm`; the same type for every element type
/// and backend); the names follow torch.nn.GRU / LSTM. `input_size` = channels of x,
/// `hidden_size` = H = channels of y, `num_layers` stacked layers (layer k > 0 reads layer k-1's
/// outputs), `bias = false` drops bias_ih / bias_hh.
struct recurrent_options {
  std::size_t input_size = 0;
  std::size_t hidden_size = 0;
  std::size_t num_layers = 1;
  bool bias = true;
};

namespace detail {

/// The engine behind `cpc::gru` / `cpc::lstm`: `num_layers` layers of `Cell`, batch-first, on
/// `Backend`. See the file comment for the algorithm and its determinism guarantee.
template <class T, class Backend, ops::rnn_cell Cell>
class recurrent_stack {
  static constexpr std::size_t G = ops::rnn_gates(Cell);
  static constexpr bool has_cell_state = ops::rnn_has_cell_state(Cell);

 public:
  /// Builds the layers and draws PyTorch's init, U(+-1/sqrt(hidden_size)), from `gen` in
  /// torch's parameter order. `name` prefixes error messages ("gru", "lstm").
  /// Errors: `cpc::config_error` on a zero size.
  recurrent_stack(const recurrent_options& opt, rng& gen, std::string name)
      : opt_(opt), name_(std::move(name)) {
    if (opt.input_size == 0 || opt.hidden_size == 0 || opt.num_layers == 0)
      throw config_error(name_ + ": expected input_size > 0, hidden_size > 0 and num_layers > 0, got " +
                         std::to_string(opt.input_size) + ", " + std::to_string(opt.hidden_size) + ", " +
                         std::to_string(opt.num_layers));
    const std::size_t H = opt.hidden_size;
    const double bound = 1.0 / std::sqrt(static_cast<double>(H));
    layers_.resize(opt.num_layers);
    for (std::size_t l = 0; l < opt.num_layers; ++l) {
      auto& p = layers_[l];
      p.w_ih = parameter<T>({G * H, l == 0 ? opt.input_size : H});
      p.w_hh = parameter<T>({G * H, H});
      init_uniform(p.w_ih, bound, gen);
      init_uniform(p.w_hh, bound, gen);
      if (opt.bias) {
        p.b_ih = parameter<T>({G * H});
        p.b_hh = parameter<T>({G * H});
        init_uniform(p.b_ih, bound, gen);
        init_uniform(p.b_hh, bound, gen);
      }
    }
  }

  const recurrent_options& config() const { return opt_; }

  /// Runs the stack. x `[B, T, input_size]` -> y `[B, T, H]`; h0 / c0 `[L, B, H]` or null (zeros);
  /// h_n / c_n (when not null) resized to `[L, B, H]`. The states may alias h0 / c0.
  /// Errors: `cpc::shape_error` on a wrong input or state shape.
  void forward(const tensor3<T>& x, tensor3<T>& y, const tensor3<T>* h0, const tensor3<T>* c0,
               tensor3<T>* h_n, tensor3<T>* c_n) {
    check_shape(name_ + " forward input", x, {any, any, static_cast<std::ptrdiff_t>(opt_.input_size)});
    const std::size_t B = x.shape()[0], T_ = x.shape()[1], H = opt_.hidden_size, L = opt_.num_layers;
    const std::array<std::size_t, 3> state_shape{L, B, H};
    const auto sL = static_cast<std::ptrdiff_t>(L), sB = static_cast<std::ptrdiff_t>(B),
               sH = static_cast<std::ptrdiff_t>(H);
    if (h0) check_shape(name_ + " forward initial hidden state", *h0, {sL, sB, sH});
    if (c0) check_shape(name_ + " forward initial cell state", *c0, {sL, sB, sH});
    // Copy the initial states first: h_n / c_n may alias them.
    const std::size_t states = L * B * H;
    ensure_size(h0_, states);
    copy_or_zero(h0 ? h0->data() : nullptr, h0_.data(), states);
    if constexpr (has_cell_state) {
      ensure_size(c0_, states);
      copy_or_zero(c0 ? c0->data() : nullptr, c0_.data(), states);
    }
    has_h0_ = h0 != nullptr;
    batch_ = B;
    time_ = T_;
    work_.resize(L);
    for (auto& w : work_) {
      ensure_size(w.gates, B * T_ * G * H);
      ensure_size(w.extra, B * T_ * H);
      ensure_size(w.h, B * T_ * H);
    }
    for (std::size_t l = 0; l < L; ++l) forward_layer(l, l == 0 ? x.data() : work_[l - 1].h.data());
    ensure_shape(y, std::array<std::size_t, 3>{B, T_, H});
    ops::copy<Backend>(ops::copy_args<T>{.n = B * T_ * H, .x = work_[L - 1].h.data(), .y = y.data()});
    if (h_n) {
      ensure_shape(*h_n, state_shape);
      final_states(
          h0_.data(), [&](std::size_t l) { return work_[l].h.data(); }, h_n->data());
    }
    if constexpr (has_cell_state) {
      if (c_n) {
        ensure_shape(*c_n, state_shape);
        final_states(
            c0_.data(), [&](std::size_t l) { return work_[l].extra.data(); }, c_n->data());
      }
    }
  }

  /// Back-propagation through time over the sequence of the latest forward call; accumulates
  /// the parameter gradients and overwrites *dx when not null.
  /// Errors: `cpc::config_error` without a forward call; `cpc::shape_error` on wrong shapes.
  void backward(const tensor3<T>& x, const tensor3<T>& y, const tensor3<T>& dy, tensor3<T>* dx) {
    const std::size_t H = opt_.hidden_size, L = opt_.num_layers, GH = G * H;
    const auto sB = static_cast<std::ptrdiff_t>(batch_), sT = static_cast<std::ptrdiff_t>(time_),
               sH = static_cast<std::ptrdiff_t>(H);
    if (work_.empty()) throw config_error(name_ + " backward: expected a forward call first");
    check_shape(name_ + " backward input", x, {sB, sT, static_cast<std::ptrdiff_t>(opt_.input_size)});
    check_shape(name_ + " backward output", y, {sB, sT, sH});
    check_shape(name_ + " backward output gradient", dy, {sB, sT, sH});
    const std::size_t B = batch_, T_ = time_, rows = B * T_;
    ensure_size(dgi_, rows * GH);
    ensure_size(dgh_, rows * GH);
    ensure_size(dgh0_, B * GH);
    ensure_size(dh_a_, rows * H);
    ensure_size(dh_b_, rows * H);
    if (dx) ensure_shape(*dx, x.shape());
    if (rows == 0) return;      // an empty sequence has no gradient
    const T* dout = dy.data();  // gradient w.r.t. the current layer's outputs
    for (std::size_t li = L; li-- > 0;) {
      auto& p = layers_[li];
      const std::size_t in = li == 0 ? opt_.input_size : H;
      const T* xin = li == 0 ? x.data() : work_[li - 1].h.data();
      const T* h0 = h0_.data() + li * B * H;
      ops::recurrent_backward<Backend>(
          ops::recurrent_backward_args<T>{.cell = Cell,
                                          .batch = B,
                                          .time = T_,
                                          .hidden = H,
                                          .gates = work_[li].gates.data(),
                                          .extra = work_[li].extra.data(),
                                          .h = work_[li].h.data(),
                                          .h0 = h0,
                                          .c0 = has_cell_state ? c0_.data() + li * B * H : nullptr,
                                          .w_hh = p.w_hh.value.data(),
                                          .dy = dout,
                                          .dgi = dgi_.data(),
                                          .dgh = dgh_.data(),
                                          .dgh0 = dgh0_.data()},
          ws_);
      // Parameter gradients, each one GEMM over all (b, t): dW_ih += dG_i^T x, dW_hh += dG_h^T h
      // (+ dG_h0^T h0), db_ih += sum dG_i, db_hh += sum dG_h + sum dG_h0.
      const auto sGH = static_cast<std::ptrdiff_t>(GH), sin = static_cast<std::ptrdiff_t>(in);
      auto accumulate_product = [&](const T* dg, std::size_t k, const T* rhs, std::size_t n, T* grad) {
        ops::gemm<Backend>(ops::gemm_args<T>{.m = GH,
                                             .n = n,
                                             .k = k,
                                             .a = dg,
                                             .a_row_stride = 1,
                                             .a_depth_stride = sGH,
                                             .b = rhs,
                                             .b_row_stride = static_cast<std::ptrdiff_t>(n),
                                             .b_col_stride = 1,
                                             .c = grad,
                                             .ldc = static_cast<std::ptrdiff_t>(n),
                                             .accumulate = true},
                           gemm_ws_);
      };
      accumulate_product(dgi_.data(), rows, xin, in, p.w_ih.grad.data());
      accumulate_product(dgh_.data(), rows, work_[li].h.data(), H, p.w_hh.grad.data());
      if (has_h0_) accumulate_product(dgh0_.data(), B, h0, H, p.w_hh.grad.data());
      if (opt_.bias) {
        auto sum = [&](const T* dg, std::size_t n, T* out) {
          ops::sum_rows<Backend>(
              ops::sum_rows_args<T>{.rows = n, .cols = GH, .x = dg, .ldx = sGH, .out = out});
        };
        sum(dgi_.data(), rows, p.b_ih.grad.data());
        sum(dgh_.data(), rows, p.b_hh.grad.data());
        sum(dgh0_.data(), B, p.b_hh.grad.data());
      }
      // Gradient w.r.t. this layer's input: dX = dG_i W_ih, B(g, i) = W_ih[g, i].
      if (li == 0 && !dx) break;
      T* dxin = li == 0 ? dx->data() : (dout == dh_a_.data() ? dh_b_.data() : dh_a_.data());
      ops::gemm<Backend>(ops::gemm_args<T>{.m = rows,
                                           .n = in,
                                           .k = GH,
                                           .a = dgi_.data(),
                                           .a_row_stride = sGH,
                                           .a_depth_stride = 1,
                                           .b = p.w_ih.value.data(),
                                           .b_row_stride = sin,
                                           .b_col_stride = 1,
                                           .c = dxin,
                                           .ldc = sin,
                                           .accumulate = false},
                         gemm_ws_);
      dout = dxin;
    }
  }

  /// Visits, per layer k: "weight_ih_l{k}", "weight_hh_l{k}", and with bias "bias_ih_l{k}",
  /// "bias_hh_l{k}" (torch's order).
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix) {
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const std::string k = std::to_string(l);
      f(join_name(prefix, "weight_ih_l" + k), layers_[l].w_ih);
      f(join_name(prefix, "weight_hh_l" + k), layers_[l].w_hh);
      if (opt_.bias) {
        f(join_name(prefix, "bias_ih_l" + k), layers_[l].b_ih);
        f(join_name(prefix, "bias_hh_l" + k), layers_[l].b_hh);
      }
    }
  }

  /// Layer l's parameters. Errors: `cpc::config_error` when l >= num_layers.
  parameter<T>& weight_ih(std::size_t l) { return layer(l).w_ih; }
  parameter<T>& weight_hh(std::size_t l) { return layer(l).w_hh; }
  parameter<T>& bias_ih(std::size_t l) { return layer(l).b_ih; }
  parameter<T>& bias_hh(std::size_t l) { return layer(l).b_hh; }

 private:
  // Buffers of the backend's memory. An unavailable backend (no `memory`) names host memory here
  // so that its layer stops at CPC_REQUIRE_BACKEND's one message, not at this type as well.
  using buffer = buffer_for<T, std::conditional_t<backend_available<Backend>, Backend, cpu>>;

  struct layer_params {
    parameter<T> w_ih, w_hh, b_ih, b_hh;
  };
  struct layer_work {
    buffer gates;  // [B, T, G*H] activated gates
    buffer extra;  // [B, T, H] GRU: W_hn h + b_hn; LSTM: c_t
    buffer h;      // [B, T, H] the layer's outputs h_t
  };

  layer_params& layer(std::size_t l) {
    if (l >= layers_.size())
      throw config_error(name_ + ": expected layer < " + std::to_string(layers_.size()) + ", got " +
                         std::to_string(l));
    return layers_[l];
  }

  /// dst[0, n) = src, or zeros when src is null.
  static void copy_or_zero(const T* src, T* dst, std::size_t n) {
    if (src)
      ops::copy<Backend>(ops::copy_args<T>{.n = n, .x = src, .y = dst});
    else
      ops::fill<Backend>(ops::fill_args<T>{.n = n, .value = T(0), .y = dst});
  }

  /// out[l, b] = seq(l)[b, T - 1] for every layer and item, or initial[l, b] when T = 0.
  template <class Seq>
  void final_states(const T* initial, Seq&& seq, T* out) const {
    const std::size_t B = batch_, T_ = time_, H = opt_.hidden_size;
    for (std::size_t l = 0; l < opt_.num_layers; ++l) {
      if (T_ == 0) {
        ops::copy<Backend>(ops::copy_args<T>{.n = B * H, .x = initial + l * B * H, .y = out + l * B * H});
        continue;
      }
      for (std::size_t b = 0; b < B; ++b)
        ops::copy<Backend>(
            ops::copy_args<T>{.n = H, .x = seq(l) + (b * T_ + T_ - 1) * H, .y = out + (l * B + b) * H});
    }
  }

  void forward_layer(std::size_t l, const T* x) {
    auto& p = layers_[l];
    auto& w = work_[l];
    const std::size_t B = batch_, T_ = time_, H = opt_.hidden_size, GH = G * H;
    const std::size_t in = l == 0 ? opt_.input_size : H;
    if (T_ == 0 || B == 0) return;
    // gates = x W_ih^T for all (b, t), B(i, g) = W_ih[g, i]; the cell adds b_ih.
    ops::gemm<Backend>(ops::gemm_args<T>{.m = B * T_,
                                         .n = GH,
                                         .k = in,
                                         .a = x,
                                         .a_row_stride = static_cast<std::ptrdiff_t>(in),
                                         .a_depth_stride = 1,
                                         .b = p.w_ih.value.data(),
                                         .b_row_stride = 1,
                                         .b_col_stride = static_cast<std::ptrdiff_t>(in),
                                         .c = w.gates.data(),
                                         .ldc = static_cast<std::ptrdiff_t>(GH),
                                         .accumulate = false},
                       gemm_ws_);
    ops::recurrent_forward<Backend>(
        ops::recurrent_forward_args<T>{.cell = Cell,
                                       .batch = B,
                                       .time = T_,
                                       .hidden = H,
                                       .gates = w.gates.data(),
                                       .w_hh = p.w_hh.value.data(),
                                       .b_ih = opt_.bias ? p.b_ih.value.data() : nullptr,
                                       .b_hh = opt_.bias ? p.b_hh.value.data() : nullptr,
                                       .h0 = h0_.data() + l * B * H,
                                       .c0 = has_cell_state ? c0_.data() + l * B * H : nullptr,
                                       .h = w.h.data(),
                                       .extra = w.extra.data()},
        ws_);
  }

  recurrent_options opt_;
  std::string name_;
  std::vector<layer_params> layers_;
  // Forward state kept for backward.
  std::size_t batch_ = 0, time_ = 0;
  bool has_h0_ = false;
  buffer h0_, c0_;  // [L, B, H] initial states (zeros when none was given)
  std::vector<layer_work> work_;
  // Workspaces (grow only).
  ops::recurrent_workspace<Backend, T> ws_;
  ops::gemm_workspace<Backend, T> gemm_ws_;
  buffer dgi_, dgh_, dgh0_, dh_a_, dh_b_;
};

}  // namespace detail
}  // namespace cpc
