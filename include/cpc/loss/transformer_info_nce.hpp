#pragma once
/// InfoNCE with CPC_audio's "transformer" prediction network (Rivière et al. 2020; the ZeroSpeech
/// 2021 baselines): one causal transformer layer per prediction step k instead of a linear W_k.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cpc/backend/ops.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/loss_result.hpp"
#include "cpc/core/memory.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/data/negative_sampler.hpp"
#include "cpc/layers/transformer_layer.hpp"
#include "cpc/loss/info_nce.hpp"
#include "cpc/loss/info_nce_detail.hpp"

namespace cpc {

/// Sizes and choices of `cpc::transformer_info_nce` (the same type for every element type and
/// backend). Defaults are CPC_audio's for 256 channels and 1.28 s windows (128 frames).
/// `context_dim` and `latent_dim` must be equal (the transformer maps D channels to D channels, as
/// CPC_audio requires). `max_time` S is the length of the heads' relative-position tables: CPC_audio
/// builds them for the window's frames minus K (116), and windows may have at most S + K frames.
struct transformer_info_nce_options {
  std::size_t context_dim = 256;
  std::size_t latent_dim = 256;
  std::size_t steps = 12;                    ///< K prediction steps, one transformer layer each
  std::size_t negatives = 128;               ///< N negatives per anchor
  std::size_t heads = 8;                     ///< attention heads per layer
  std::size_t ff_dim = 2048;                 ///< feed-forward width per layer
  std::size_t max_time = 116;                ///< S (CPC_audio: window frames - K)
  score_scale scale = score_scale::inv_dim;  ///< CPC_audio: the mean over channels of p * z
  double temperature = 1.0;                  ///< with score_scale::temperature; > 0
  negative_policy policy = negative_policy::batch;
  negative_sharing sharing = negative_sharing::per_step;
  step_reduction reduction = step_reduction::mean;
};

/// InfoNCE of CPC with CPC_audio's transformer prediction network. For item b with L_b valid
/// frames, the anchors are t < L_b - K for every step k (CPC_audio's window of T - K anchors; the
/// same anchors for every k); step k's prediction is p_t = Transformer_k(c_0..c_{L-K-1})_t, a
/// causal `cpc::transformer_layer` over the first T - K contexts, and the term of anchor t is
/// -log softmax over [z_{t+k}, N negatives] of s * p_t . z (s from `score_scale`; CPC_audio takes
/// the mean over channels, `inv_dim`). Each step's loss is the mean of its terms; `loss` combines
/// the steps per `step_reduction` (CPC_audio sums them: `step_reduction::sum`).
/// Shapes: z `[batch, time, D]`, c `[batch, time, D]`, negatives `[K, batch, time, N]`, with
/// time - K <= max_time. Parameters: "predictor.{k}.<transformer_layer names>", k = 0..K-1 for
/// step k + 1 (CPC_audio's "wPrediction.predictors.{k}.0.<name>").
/// Computation: per step, the head's forward over `[B, T - K, D]`, then `ops::info_nce_anchor_terms`
/// (the anchors gated by per-step lengths min(L_b - K + k, ...) so that t < L_b - K) and, with
/// gradients, `ops::info_nce_scatter_dz` and the head's backward; dc sums the steps. No dropout.
/// Errors: `cpc::config_error` for bad options (zero sizes, context_dim != latent_dim, temperature
/// <= 0), bad lengths, invalid negatives, or no anchor (every item has <= K frames);
/// `cpc::shape_error` for wrong z / c / negative shapes or time - K > max_time.
/// Source: van den Oord et al. 2018 eq. 3-4; Rivière et al. 2020 and facebookresearch/CPC_audio
/// (cpc/criterion/criterion.py, PredictionNetwork with rnnMode "transformer").
template <class T, class Backend = cpu>
class transformer_info_nce {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// Sizes and choices (`cpc::transformer_info_nce_options`).
  using options = transformer_info_nce_options;

  /// Builds K transformer heads, drawing their initial weights from `gen` (head 0 first).
  transformer_info_nce(options opt, rng& gen)
      : opt_(validate(opt)),
        sampler_(
            {.policy = opt.policy, .negatives = opt.negatives, .steps = opt.steps, .sharing = opt.sharing}) {
    heads_.reserve(opt.steps);
    for (std::size_t k = 0; k < opt.steps; ++k)
      heads_.emplace_back(transformer_layer_options{.model_dim = opt.context_dim,
                                                    .heads = opt.heads,
                                                    .ff_dim = opt.ff_dim,
                                                    .max_time = opt.max_time},
                          gen);
  }

  /// The options the loss was built with.
  const options& config() const { return opt_; }

  /// The score multiplier s (see `score_scale`).
  double score_multiplier() const {
    return detail::info_nce_score_multiplier(opt_.scale, opt_.latent_dim, opt_.temperature);
  }

  /// Draws negatives with the configured policy from `gen`, then evaluates the loss as below.
  info_nce_result compute(const tensor3<T>& z, const tensor3<T>& c, const batch_info& info, rng& gen,
                          tensor3<T>* dz, tensor3<T>* dc) {
    check_inputs(z, c);
    sampler_.sample(z.shape()[0], z.shape()[1], info, gen);
    return compute(z, c, info, sampler_.indices(), dz, dc);
  }

  /// Evaluates the loss with the given negatives `[K, B, T, N]`. With `dz` / `dc` non-null,
  /// overwrites them with dloss/dz, dloss/dc and accumulates the heads' parameter gradients.
  info_nce_result compute(const tensor3<T>& z, const tensor3<T>& c, const batch_info& info,
                          const tensor<std::int32_t, 4>& negatives, tensor3<T>* dz, tensor3<T>* dc) {
    check_inputs(z, c);
    const std::size_t B = z.shape()[0], Tn = z.shape()[1], BT = B * Tn;
    const std::size_t K = opt_.steps, N = opt_.negatives, N1 = N + 1, D = opt_.latent_dim;
    check_shape("transformer_info_nce negatives", negatives,
                {static_cast<std::ptrdiff_t>(K), static_cast<std::ptrdiff_t>(B),
                 static_cast<std::ptrdiff_t>(Tn), static_cast<std::ptrdiff_t>(N)});
    const auto len = resolve_lengths("transformer_info_nce", info, B, Tn);
    detail::check_info_nce_negatives("transformer_info_nce", negatives, len, B, Tn, N, K, true);
    const std::size_t W = Tn > K ? Tn - K : 0;  // frames the heads see: the anchors' window

    info_nce_result res = detail::start_info_nce_result(K, N);
    std::size_t anchors = 0;
    for (std::size_t b = 0; b < B; ++b) anchors += len[b] > K ? len[b] - K : 0;
    if (anchors == 0)
      throw config_error("transformer_info_nce: no anchor; items need more than K = " + std::to_string(K) +
                         " valid frames");
    res.terms.assign(K, anchors);

    const bool grad = dz != nullptr || dc != nullptr;
    detail::zero_info_nce_gradients<T, Backend>(z, c, dz, dc);
    // The heads' input: the first W contexts of every item.
    const std::array<std::size_t, 3> window{B, W, D};
    ensure_shape(c_in_, window);
    copy_rows(c.data(), Tn, c_in_.data(), W, W);
    ensure_shape(p_, z.shape());
    ops::fill<Backend>(ops::fill_args<T>{.n = p_.size(), .value = T(0), .y = p_.data()});
    if (grad) {
      ensure_shape(dp_, z.shape());
      ensure_shape(dp_head_, window);
    }
    steps_.reserve(BT, N1);
    const auto s = static_cast<T>(score_multiplier());
    const double w = opt_.reduction == step_reduction::mean
                         ? 1.0 / (static_cast<double>(anchors) * static_cast<double>(K))
                         : 1.0 / static_cast<double>(anchors);
    for (std::size_t k = 1; k <= K; ++k) {
      // Anchor t of item b has a term when t + k < lengths[b], i.e. t < len_b - K.
      step_len_.resize(B);
      for (std::size_t b = 0; b < B; ++b) step_len_[b] = len[b] > K ? len[b] - K + k : 0;
      steps_.set_lengths(step_len_);
      auto& head = heads_[k - 1];
      head.forward(c_in_, p_head_);
      copy_rows(p_head_.data(), W, p_.data(), Tn, W);
      const auto totals = steps_.step({.batch = B,
                                       .time = Tn,
                                       .dim = D,
                                       .negatives = N,
                                       .step = k,
                                       .p = p_.data(),
                                       .z = z.data(),
                                       .negative_index = negatives.data() + (k - 1) * BT * N,
                                       .scale = s,
                                       .weight = w,
                                       .dp = grad ? dp_.data() : nullptr,
                                       .dz = dz != nullptr ? dz->data() : nullptr});
      res.loss_per_step[k - 1] = totals.loss_sum / static_cast<double>(anchors);
      res.accuracy[k - 1] = static_cast<double>(totals.hits) / static_cast<double>(anchors);
      if (!grad) continue;
      copy_rows(dp_.data(), Tn, dp_head_.data(), W, W);
      head.backward(c_in_, p_head_, dp_head_, dc != nullptr ? &dc_step_ : nullptr);
      if (dc != nullptr)
        for (std::size_t b = 0; b < B; ++b)
          ops::axpby<Backend>(ops::axpby_args<T>{.n = W * D,
                                                 .alpha = T(1),
                                                 .x = dc_step_.data() + b * W * D,
                                                 .beta = T(1),
                                                 .y = dc->data() + b * Tn * D});
    }
    res.loss = detail::combine_info_nce_steps(res.loss_per_step, opt_.reduction, K);
    return res;
  }

  /// The sampler that `compute(..., rng&, ...)` uses; its `indices()` hold the last negatives.
  const negative_sampler& sampler() const { return sampler_; }
  negative_sampler& sampler() { return sampler_; }

  /// Prediction head of step k + 1 (k = 0..K-1).
  transformer_layer<T, Backend>& head(std::size_t k) { return heads_.at(k); }

  /// Visits "predictor.{k}.<name>" for k = 0..K-1 (names of `cpc::transformer_layer`).
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    for (std::size_t k = 0; k < heads_.size(); ++k)
      heads_[k].for_each_parameter(f, join_name(prefix, "predictor." + std::to_string(k)));
  }

 private:
  static const options& validate(const options& o) {
    if (o.context_dim == 0 || o.latent_dim == 0 || o.steps == 0)
      throw config_error("transformer_info_nce: expected context_dim, latent_dim and steps > 0");
    if (o.context_dim != o.latent_dim)
      throw config_error(
          "transformer_info_nce: expected context_dim = latent_dim (the transformer heads map D "
          "channels to D), got " +
          std::to_string(o.context_dim) + " and " + std::to_string(o.latent_dim));
    if (o.scale == score_scale::temperature && !(o.temperature > 0))
      throw config_error("transformer_info_nce: expected temperature > 0, got " +
                         std::to_string(o.temperature));
    return o;
  }

  void check_inputs(const tensor3<T>& z, const tensor3<T>& c) const {
    detail::check_info_nce_inputs("transformer_info_nce", z, c, opt_.latent_dim, opt_.context_dim);
    if (z.shape()[1] > opt_.max_time + opt_.steps)
      throw shape_error("transformer_info_nce z: expected at most max_time + K = " +
                        std::to_string(opt_.max_time + opt_.steps) + " frames, got " +
                        shape_string(z.shape()));
  }

  // dst[b, 0:rows, :] = src[b, 0:rows, :] for every item; items hold src_time / dst_time rows of D.
  void copy_rows(const T* src, std::size_t src_time, T* dst, std::size_t dst_time, std::size_t rows) const {
    const std::size_t D = opt_.latent_dim;
    for (std::size_t b = 0; b < c_in_.shape()[0]; ++b)
      ops::copy<Backend>(
          ops::copy_args<T>{.n = rows * D, .x = src + b * src_time * D, .y = dst + b * dst_time * D});
  }

  options opt_;
  negative_sampler sampler_;
  std::vector<transformer_layer<T, Backend>> heads_;
  // Workspaces, reused across calls (memory of the backend).
  tensor3<T> c_in_, p_head_, p_, dp_, dp_head_, dc_step_;  // [B, W, D] or [B, T, D]
  std::vector<std::size_t> step_len_;                      // host copy of one step's anchor limits
  detail::info_nce_steps<T, Backend> steps_;               // lengths = per-step anchor limits; ...
};

}  // namespace cpc
