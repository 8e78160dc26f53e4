#pragma once
/// InfoNCE with K linear prediction heads (van den Oord et al. 2018, section 2, eq. 3-4).
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
#include "cpc/layers/init.hpp"
#include "cpc/layers/linear.hpp"
#include "cpc/loss/info_nce_detail.hpp"

namespace cpc {

/// Initial prediction-head weights. `pytorch_default`: torch.nn.Linear's U(+-1/sqrt(context_dim))
/// for weight (and bias). `normal`: W ~ N(0, 1) * init_scale, bias 0. REFERENCE.md measured that
/// the default init keeps a 256-channel model at chance for 1,000+ steps, while unit-normal heads
/// leave chance after ~250 steps.
enum class predictor_init { pytorch_default, normal };

/// Sizes and choices of `cpc::info_nce` and `cpc::grid_info_nce` (the same type for every element
/// type and backend). Defaults follow the paper's audio model (256 -> 512, K = 12, N = 128).
struct info_nce_options {
  std::size_t context_dim = 256;
  std::size_t latent_dim = 512;
  std::size_t steps = 12;       ///< K prediction steps
  std::size_t negatives = 128;  ///< N negatives per anchor
  bool predictor_bias = false;
  score_scale scale = score_scale::dot;
  double temperature = 1.0;  ///< used with score_scale::temperature; must be > 0
  predictor_init init = predictor_init::pytorch_default;
  double init_scale = 1.0;  ///< standard deviation of predictor_init::normal
  negative_policy policy = negative_policy::batch;
  negative_sharing sharing = negative_sharing::per_step;
  step_reduction reduction = step_reduction::mean;
};

/// InfoNCE loss of CPC with its K prediction heads W_k (paper eq. 3-4).
/// For every anchor (b, t, k), k = 1..K, t + k < length_b: prediction p = W_k c_t (+ bias),
/// logits over candidates [positive z_{b,t+k}, negatives z_{n_1}, ..., z_{n_N}] are
/// l_j = s * p . z_j (s from `score_scale`), and the term is -log softmax(l)[0], computed as
/// log-sum-exp with the maximum subtracted. Each step's loss is the mean of its terms; `loss`
/// combines the steps per `step_reduction`.
/// Shapes: z `[batch, time, latent_dim]`, c `[batch, time, context_dim]`, negatives
/// `[K, batch, time, N]` flat frame indices b * time + t (see `negative_sampler`).
/// Parameters: "predictor.{k}.weight" `[latent_dim, context_dim]` and, with `predictor_bias`,
/// "predictor.{k}.bias" `[latent_dim]`, k = 0..K-1 standing for step k + 1 (torch.nn.Linear layout).
/// Computation: per step, one GEMM P_k = C W_k^T `[B*T, latent]` (the head, a `cpc::linear`), then
/// `ops::info_nce_anchor_terms`: for each anchor the N + 1 candidate rows of z are gathered and
/// dotted with its prediction (O(B T N D) per step instead of a `[B*T, B*T]` score matrix, which
/// costs B*T/(N+1) times more), with the log-sum-exp, hit and softmax coefficients. Backward: dP
/// by the same gather (same op); dz by `ops::info_nce_scatter_dz` (fixed order, each dz row owned
/// by one task); dc and dW_k by the heads' GEMMs, dc summed over steps with `ops::axpby`. Steps are
/// processed one at a time, so only one `[B*T, latent]` prediction buffer is held. Deterministic
/// for any thread count. Negatives are drawn on the host (`negative_sampler`) for every backend.
/// Errors: `cpc::shape_error` for wrong z / c / negative shapes; `cpc::config_error` for bad
/// options, bad lengths or speaker ids, a negative index outside the batch or on a padded frame,
/// or a batch without any term (every item shorter than 2 frames).
template <class T, class Backend = cpu>
class info_nce {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// Sizes and choices (`cpc::info_nce_options`).
  using options = info_nce_options;

  /// Builds K heads, drawing their initial weights from `gen` (head 0 first).
  /// Errors: `cpc::config_error` for zero sizes or a non-positive temperature.
  info_nce(options opt, rng& gen)
      : opt_(opt),
        sampler_(
            {.policy = opt.policy, .negatives = opt.negatives, .steps = opt.steps, .sharing = opt.sharing}) {
    if (opt.context_dim == 0 || opt.latent_dim == 0)
      throw config_error("info_nce: expected context_dim > 0 and latent_dim > 0");
    if (opt.scale == score_scale::temperature && !(opt.temperature > 0))
      throw config_error("info_nce: expected temperature > 0, got " + std::to_string(opt.temperature));
    heads_.reserve(opt.steps);
    for (std::size_t k = 0; k < opt.steps; ++k) {
      heads_.emplace_back(
          linear_options{
              .in_features = opt.context_dim, .out_features = opt.latent_dim, .bias = opt.predictor_bias},
          gen);
      if (opt.init == predictor_init::normal) {
        init_normal(heads_.back().weight(), opt.init_scale, gen);
        if (opt.predictor_bias) heads_.back().bias().value.fill(T(0));
      }
    }
  }

  /// The options the loss was built with.
  const options& config() const { return opt_; }

  /// The score multiplier s (see `score_scale`).
  double score_multiplier() const {
    return detail::info_nce_score_multiplier(opt_.scale, opt_.latent_dim, opt_.temperature);
  }

  /// Draws negatives with the configured policy from `gen` (readable afterwards through
  /// `sampler().indices()`), then evaluates the loss as the overload below.
  info_nce_result compute(const tensor3<T>& z, const tensor3<T>& c, const batch_info& info, rng& gen,
                          tensor3<T>* dz, tensor3<T>* dc) {
    check_inputs(z, c);
    sampler_.sample(z.shape()[0], z.shape()[1], info, gen);
    return compute(z, c, info, sampler_.indices(), dz, dc);
  }

  /// Evaluates the loss with the given negatives `[K, B, T, N]` (entries of anchors without a term
  /// are ignored). With `dz` / `dc` non-null, overwrites them with dloss/dz, dloss/dc (zero on
  /// padded frames) and accumulates the heads' parameter gradients; with both null, no gradient
  /// is computed and parameters are untouched.
  info_nce_result compute(const tensor3<T>& z, const tensor3<T>& c, const batch_info& info,
                          const tensor<std::int32_t, 4>& negatives, tensor3<T>* dz, tensor3<T>* dc) {
    check_inputs(z, c);
    const std::size_t B = z.shape()[0], Tn = z.shape()[1], BT = B * Tn;
    const std::size_t K = opt_.steps, N = opt_.negatives, N1 = N + 1, D = opt_.latent_dim;
    check_shape("info_nce negatives", negatives,
                {static_cast<std::ptrdiff_t>(K), static_cast<std::ptrdiff_t>(B),
                 static_cast<std::ptrdiff_t>(Tn), static_cast<std::ptrdiff_t>(N)});
    const auto len = resolve_lengths("info_nce", info, B, Tn);
    detail::check_info_nce_negatives("info_nce", negatives, len, B, Tn, N, K, false);

    info_nce_result res = detail::start_info_nce_result(K, N);
    std::size_t used_steps = 0;
    for (std::size_t k = 1; k <= K; ++k) {
      for (std::size_t b = 0; b < B; ++b) res.terms[k - 1] += len[b] > k ? len[b] - k : 0;
      if (res.terms[k - 1] > 0) ++used_steps;
    }
    if (used_steps == 0)
      throw config_error(
          "info_nce: no (b, t, k) term with t + k < length; items need at least 2 valid frames");

    const bool grad = dz != nullptr || dc != nullptr;
    detail::zero_info_nce_gradients<T, Backend>(z, c, dz, dc);
    const auto s = static_cast<T>(score_multiplier());
    const auto b_shape = std::array<std::size_t, 3>{B, Tn, D};
    if (grad) ensure_shape(dp_, b_shape);
    steps_.set_lengths(len);
    steps_.reserve(BT, N1);

    for (std::size_t k = 1; k <= K; ++k) {
      const std::size_t terms = res.terms[k - 1];
      if (terms == 0) continue;
      auto& head = heads_[k - 1];
      head.forward(c, p_);
      const double w = opt_.reduction == step_reduction::mean
                           ? 1.0 / (static_cast<double>(terms) * static_cast<double>(used_steps))
                           : 1.0 / static_cast<double>(terms);
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
      res.loss_per_step[k - 1] = totals.loss_sum / static_cast<double>(terms);
      res.accuracy[k - 1] = static_cast<double>(totals.hits) / static_cast<double>(terms);
      if (!grad) continue;
      head.backward(c, p_, dp_, dc != nullptr ? &dc_step_ : nullptr);
      if (dc != nullptr)
        ops::axpby<Backend>(ops::axpby_args<T>{
            .n = BT * opt_.context_dim, .alpha = T(1), .x = dc_step_.data(), .beta = T(1), .y = dc->data()});
    }
    res.loss = detail::combine_info_nce_steps(res.loss_per_step, opt_.reduction, used_steps);
    return res;
  }

  /// The sampler that `compute(..., rng&, ...)` uses; its `indices()` hold the last negatives.
  const negative_sampler& sampler() const { return sampler_; }
  negative_sampler& sampler() { return sampler_; }

  /// Prediction head of step k + 1 (k = 0..K-1): a linear context_dim -> latent_dim.
  linear<T, Backend>& head(std::size_t k) { return heads_.at(k); }

  /// Visits "predictor.{k}.weight" (and ".bias") for k = 0..K-1.
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    for (std::size_t k = 0; k < heads_.size(); ++k)
      heads_[k].for_each_parameter(f, join_name(prefix, "predictor." + std::to_string(k)));
  }

 private:
  void check_inputs(const tensor3<T>& z, const tensor3<T>& c) const {
    detail::check_info_nce_inputs("info_nce", z, c, opt_.latent_dim, opt_.context_dim);
  }

  options opt_;
  negative_sampler sampler_;
  std::vector<linear<T, Backend>> heads_;
  // Workspaces, reused across calls (memory of the backend).
  tensor3<T> p_, dp_, dc_step_;               // [B, T, latent], [B, T, latent], [B, T, context]
  detail::info_nce_steps<T, Backend> steps_;  // lengths = valid frames; candidates, logits, ...
};

}  // namespace cpc
