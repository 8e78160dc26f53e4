#pragma once
#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>

#include "cpc/backend/ops.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/layers/init.hpp"
#include "cpc/layers/layer_norm.hpp"
#include "cpc/layers/linear.hpp"
#include "cpc/layers/relu.hpp"

namespace cpc {

/// Sizes of `cpc::transformer_layer` (the same type for every element type and backend). The
/// defaults are CPC_audio's prediction network for 256 channels and 1.28 s windows: 8 heads, a
/// 2048-wide feed-forward network, a relative-position table for 116 steps (128 frames minus
/// K = 12).
struct transformer_layer_options {
  std::size_t model_dim = 256;    ///< D, channels of input and output
  std::size_t heads = 8;          ///< attention heads; D must be a multiple (head width D / heads)
  std::size_t ff_dim = 2048;      ///< hidden width of the feed-forward network
  std::size_t max_time = 116;     ///< S, length of the relative-position table; inputs have time <= S
  bool relative_position = true;  ///< the learned relative term (CPC_audio without --abspos)
  double norm_eps = 1e-5;         ///< eps of both layer norms
};

/// One post-norm transformer layer with causal self-attention, as the "transformer" prediction
/// network of facebookresearch/CPC_audio (cpc/transformers.py, TransformerLayer with abspos off):
///   q, k, v = x Wq^T, x Wk^T, x Wv^T                       (no biases)
///   o = causal multi-head attention(q, k, v) with the relative term (ops::causal_attention_forward)
///   y1 = LayerNorm_1(x + o Wo^T)
///   y  = LayerNorm_2(y1 + W2 relu(W1 y1 + b1) + b2)
/// Output frame t depends only on input frames 0..t. No dropout (CPC_audio trains with 0.1;
/// inference is the same). Shapes: x `[batch, time, D]` -> y `[batch, time, D]`, time <= S.
/// Parameters (CPC_audio's names, torch.nn.Linear / LayerNorm layouts): "multihead.Wo.weight",
/// "multihead.Wk.weight", "multihead.Wq.weight", "multihead.Wv.weight" `[D, D]`,
/// "multihead.Att.Krelpos" `[D / heads, S]` (with relative_position), "ln_multihead.weight" /
/// ".bias" `[D]`, "ffnetwork.lin1.weight" `[ff, D]`, "ffnetwork.lin1.bias" `[ff]`,
/// "ffnetwork.lin2.weight" `[D, ff]`, "ffnetwork.lin2.bias" `[D]`, "ln_ffnetwork.weight" / ".bias".
/// Init: PyTorch's (linear U(+-1/sqrt(fan_in)), Krelpos U(+-1/sqrt(D / heads)), norms 1 and 0).
/// Errors: `cpc::config_error` for zero sizes or D not a multiple of heads; `cpc::shape_error` for
/// a wrong input or gradient shape or time > S; `cpc::config_error` for backward before forward.
/// Source: Vaswani et al. 2017 section 3; Rivière et al. 2020 (CPC_audio's prediction network).
template <class T, class Backend = cpu>
class transformer_layer {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// Layer sizes (`cpc::transformer_layer_options`).
  using options = transformer_layer_options;

  /// Builds the layer, drawing PyTorch's default init from `gen` in CPC_audio's module order
  /// (Wo, Wk, Wq, Wv, Krelpos, lin1, lin2).
  transformer_layer(options opt, rng& gen)
      : opt_(validate(opt)),
        wo_(square(opt), gen),
        wk_(square(opt), gen),
        wq_(square(opt), gen),
        wv_(square(opt), gen),
        ln1_({.normalized_shape = opt.model_dim, .eps = opt.norm_eps}),
        lin1_({.in_features = opt.model_dim, .out_features = opt.ff_dim}, init_rel(opt, gen)),
        lin2_({.in_features = opt.ff_dim, .out_features = opt.model_dim}, gen),
        ln2_({.normalized_shape = opt.model_dim, .eps = opt.norm_eps}) {
    if (opt_.relative_position) rel_ = std::move(pending_rel_);
  }

  /// The options the layer was built with.
  const options& config() const { return opt_; }

  /// y = layer(x). Keeps the intermediates for `backward`. Shapes: x `[B, L, D]` with L <= S
  /// (when relative_position), y resized to `[B, L, D]`.
  void forward(const tensor3<T>& x, tensor3<T>& y) {
    check_input("transformer_layer forward input", x);
    const std::size_t B = x.shape()[0], L = x.shape()[1];
    wq_.forward(x, q_);
    wk_.forward(x, k_);
    wv_.forward(x, v_);
    ensure_shape(o_, x.shape());
    ensure_size(probs_, B * opt_.heads * L * L);
    ops::causal_attention_forward<Backend>(ops::causal_attention_forward_args<T>{.batch = B,
                                                                                 .time = L,
                                                                                 .heads = opt_.heads,
                                                                                 .head_dim = head_dim(),
                                                                                 .rel_len = rel_len(),
                                                                                 .scale = scale(),
                                                                                 .q = q_.data(),
                                                                                 .k = k_.data(),
                                                                                 .v = v_.data(),
                                                                                 .rel = rel_ptr(),
                                                                                 .probs = probs_.data(),
                                                                                 .out = o_.data()});
    wo_.forward(o_, a_);
    add(x, a_, s1_);
    ln1_.forward(s1_, y1_);
    lin1_.forward(y1_, h_);
    relu_.forward(h_, r_);
    lin2_.forward(r_, f_);
    add(y1_, f_, s2_);
    ln2_.forward(s2_, y);
    batch_ = B;
    time_ = L;
  }

  /// Accumulates every parameter gradient for the output gradient `dy` and, when `dx` is not
  /// null, overwrites *dx (resized to `[B, L, D]`), using the intermediates of the latest forward
  /// (x must be its input; y is unused). Shapes: dy `[B, L, D]` as y.
  void backward(const tensor3<T>& x, const tensor3<T>& /*y*/, const tensor3<T>& dy, tensor3<T>* dx) {
    if (batch_ == npos) throw config_error("transformer_layer backward: expected a forward call first");
    const auto sB = static_cast<std::ptrdiff_t>(batch_), sL = static_cast<std::ptrdiff_t>(time_),
               sD = static_cast<std::ptrdiff_t>(opt_.model_dim);
    check_shape("transformer_layer backward input", x, {sB, sL, sD});
    check_shape("transformer_layer backward output gradient", dy, {sB, sL, sD});
    ln2_.backward(s2_, s2_, dy, &ds2_);
    lin2_.backward(r_, f_, ds2_, &dr_);
    relu_.backward(h_, r_, dr_, &dh_);
    lin1_.backward(y1_, h_, dh_, &dy1_);
    accumulate(ds2_, dy1_);  // the residual around the feed-forward network
    ln1_.backward(s1_, y1_, dy1_, &ds1_);
    wo_.backward(o_, a_, ds1_, &do_);
    ensure_shape(dq_, x.shape());
    ensure_shape(dk_, x.shape());
    ensure_shape(dv_, x.shape());
    ops::causal_attention_backward<Backend>(
        ops::causal_attention_backward_args<T>{.batch = batch_,
                                               .time = time_,
                                               .heads = opt_.heads,
                                               .head_dim = head_dim(),
                                               .rel_len = rel_len(),
                                               .scale = scale(),
                                               .q = q_.data(),
                                               .k = k_.data(),
                                               .v = v_.data(),
                                               .rel = rel_ptr(),
                                               .probs = probs_.data(),
                                               .dout = do_.data(),
                                               .dq = dq_.data(),
                                               .dk = dk_.data(),
                                               .dv = dv_.data(),
                                               .d_rel = opt_.relative_position ? rel_.grad.data() : nullptr},
        attention_ws_);
    const bool want_dx = dx != nullptr;
    wq_.backward(x, q_, dq_, want_dx ? &dx_part_ : nullptr);
    if (want_dx) {
      ensure_shape(*dx, x.shape());
      ops::copy<Backend>(ops::copy_args<T>{.n = dx->size(), .x = ds1_.data(), .y = dx->data()});
      accumulate(dx_part_, *dx);
    }
    wk_.backward(x, k_, dk_, want_dx ? &dx_part_ : nullptr);
    if (want_dx) accumulate(dx_part_, *dx);
    wv_.backward(x, v_, dv_, want_dx ? &dx_part_ : nullptr);
    if (want_dx) accumulate(dx_part_, *dx);
  }

  /// Visits the parameters in CPC_audio's state-dict order with its names (see the class comment).
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    wo_.for_each_parameter(f, join_name(prefix, "multihead.Wo"));
    wk_.for_each_parameter(f, join_name(prefix, "multihead.Wk"));
    wq_.for_each_parameter(f, join_name(prefix, "multihead.Wq"));
    wv_.for_each_parameter(f, join_name(prefix, "multihead.Wv"));
    if (opt_.relative_position) f(join_name(prefix, "multihead.Att.Krelpos"), rel_);
    ln1_.for_each_parameter(f, join_name(prefix, "ln_multihead"));
    lin1_.for_each_parameter(f, join_name(prefix, "ffnetwork.lin1"));
    lin2_.for_each_parameter(f, join_name(prefix, "ffnetwork.lin2"));
    ln2_.for_each_parameter(f, join_name(prefix, "ln_ffnetwork"));
  }

  /// The relative-position table `[D / heads, S]` (empty without relative_position).
  parameter<T>& relative_table() { return rel_; }

 private:
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  static const options& validate(const options& o) {
    if (o.model_dim == 0 || o.heads == 0 || o.ff_dim == 0 || (o.relative_position && o.max_time == 0))
      throw config_error("transformer_layer: expected model_dim, heads, ff_dim and max_time > 0, got " +
                         std::to_string(o.model_dim) + ", " + std::to_string(o.heads) + ", " +
                         std::to_string(o.ff_dim) + ", " + std::to_string(o.max_time));
    if (o.model_dim % o.heads != 0)
      throw config_error("transformer_layer: expected model_dim a multiple of heads, got " +
                         std::to_string(o.model_dim) + " channels and " + std::to_string(o.heads) + " heads");
    return o;
  }
  static linear_options square(const options& o) {
    return {.in_features = o.model_dim, .out_features = o.model_dim, .bias = false};
  }
  // Draws the relative table between the projections and the feed-forward network (CPC_audio's
  // module order); returns gen for the next member's initialiser.
  rng& init_rel(const options& o, rng& gen) {
    if (o.relative_position) {
      pending_rel_ = parameter<T>({o.model_dim / o.heads, o.max_time});
      init_uniform(pending_rel_, 1.0 / std::sqrt(static_cast<double>(o.model_dim / o.heads)), gen);
    }
    return gen;
  }

  std::size_t head_dim() const { return opt_.model_dim / opt_.heads; }
  std::size_t rel_len() const { return opt_.relative_position ? opt_.max_time : 0; }
  const T* rel_ptr() const { return opt_.relative_position ? rel_.value.data() : nullptr; }
  double scale() const { return 1.0 / std::sqrt(static_cast<double>(head_dim())); }

  void check_input(std::string_view where, const tensor3<T>& x) const {
    check_shape(where, x, {any, any, static_cast<std::ptrdiff_t>(opt_.model_dim)});
    if (opt_.relative_position && x.shape()[1] > opt_.max_time)
      throw shape_error(std::string(where) + ": expected at most " + std::to_string(opt_.max_time) +
                        " steps (the relative-position table's length, max_time), got " +
                        shape_string(x.shape()));
  }

  // out = a + b (same shapes).
  static void add(const tensor3<T>& a, const tensor3<T>& b, tensor3<T>& out) {
    ensure_shape(out, a.shape());
    ops::copy<Backend>(ops::copy_args<T>{.n = a.size(), .x = a.data(), .y = out.data()});
    accumulate(b, out);
  }
  // y += x.
  static void accumulate(const tensor3<T>& x, tensor3<T>& y) {
    ops::axpby<Backend>(
        ops::axpby_args<T>{.n = x.size(), .alpha = T(1), .x = x.data(), .beta = T(1), .y = y.data()});
  }

  options opt_;
  parameter<T> pending_rel_;  // drawn during construction, moved into rel_
  linear<T, Backend> wo_, wk_, wq_, wv_;
  layer_norm<T, Backend> ln1_;
  linear<T, Backend> lin1_, lin2_;
  layer_norm<T, Backend> ln2_;
  relu<T, Backend> relu_;
  parameter<T> rel_;
  // Forward intermediates (kept for backward) and gradient workspaces, reused across calls.
  std::size_t batch_ = npos, time_ = 0;
  tensor3<T> q_, k_, v_, o_, a_, s1_, y1_, h_, r_, f_, s2_;
  tensor3<T> ds2_, dr_, dh_, dy1_, ds1_, do_, dq_, dk_, dv_, dx_part_;
  buffer_for<T, std::conditional_t<backend_available<Backend>, Backend, cpu>> probs_;
  ops::attention_workspace<Backend, T> attention_ws_;
};

}  // namespace cpc
