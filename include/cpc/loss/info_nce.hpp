#pragma once
/// InfoNCE with K linear prediction heads (van den Oord et al. 2018, section 2, eq. 3-4).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "cpc/backend/cpu/eigen.hpp"
#include "cpc/backend/tags.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/loss_result.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/core/threads.hpp"
#include "cpc/layers/init.hpp"
#include "cpc/layers/linear.hpp"
#include "cpc/loss/gather_kernels.hpp"
#include "cpc/loss/negative_sampler.hpp"

namespace cpc {

/// Multiplier s applied to every score s * (W_k c_t) . z:
/// `dot` s = 1 (the paper's f_k, eq. 3), `inv_sqrt_dim` s = 1/sqrt(latent_dim),
/// `inv_dim` s = 1/latent_dim, `temperature` s = 1/options::temperature.
enum class score_scale { dot, inv_sqrt_dim, inv_dim, temperature };

/// Initial prediction-head weights. `pytorch_default`: torch.nn.Linear's U(+-1/sqrt(context_dim))
/// for weight (and bias). `normal`: W ~ N(0, 1) * init_scale, bias 0. REFERENCE.md measured that
/// the default init keeps a 256-channel model at chance for 1,000+ steps, while unit-normal heads
/// leave chance after ~250 steps.
enum class predictor_init { pytorch_default, normal };

/// How the K per-step losses combine into `loss`: `mean` (default) = mean over the steps that have
/// terms of the per-step means, so a chance-level model scores log(N + 1) whatever K is; `sum` =
/// their sum, as the paper sums the K losses (K * log(N + 1) at chance, e.g. 58.3 for K = 12,
/// N = 128). Gradients follow the choice.
enum class step_reduction { mean, sum };

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
/// Computation: per step, one GEMM P_k = C W_k^T `[B*T, latent]`, then for each anchor the N + 1
/// candidate rows of z are gathered and dotted with its prediction (O(B T N D) per step instead
/// of a `[B*T, B*T]` score matrix, which costs B*T/(N+1) times more). Backward: dP by the same
/// gather; dz by a fixed-order scatter (per-step transpose of the anchor/candidate lists, each dz
/// row owned by one task); dc and dW_k by the heads' GEMMs. Steps are processed one at a time,
/// so only one `[B*T, latent]` prediction buffer is held. Deterministic for any thread count.
/// Errors: `cpc::shape_error` for wrong z / c / negative shapes; `cpc::config_error` for bad
/// options, bad lengths or speaker ids, a negative index outside the batch or on a padded frame,
/// or a batch without any term (every item shorter than 2 frames).
template <class T, class Backend = cpu>
class info_nce {
  CPC_REQUIRE_BACKEND(Backend);

 public:
  /// Sizes and choices. Defaults follow the paper's audio model (256 -> 512, K = 12, N = 128).
  struct options {
    std::size_t context_dim = 256;
    std::size_t latent_dim = 512;
    std::size_t steps = 12;
    std::size_t negatives = 128;
    bool predictor_bias = false;
    score_scale scale = score_scale::dot;
    double temperature = 1.0;  ///< used with score_scale::temperature; must be > 0
    predictor_init init = predictor_init::pytorch_default;
    double init_scale = 1.0;  ///< standard deviation of predictor_init::normal
    negative_policy policy = negative_policy::batch;
    negative_sharing sharing = negative_sharing::per_step;
    step_reduction reduction = step_reduction::mean;
  };

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
          typename linear<T, Backend>::options{
              .in_features = opt.context_dim, .out_features = opt.latent_dim, .bias = opt.predictor_bias},
          gen);
      if (opt.init == predictor_init::normal) {
        init_normal(heads_.back().weight(), opt.init_scale, gen);
        if (opt.predictor_bias) heads_.back().bias().value.fill(T(0));
      }
    }
  }

  const options& config() const { return opt_; }

  /// The score multiplier s (see `score_scale`).
  double score_multiplier() const {
    switch (opt_.scale) {
      case score_scale::dot:
        return 1.0;
      case score_scale::inv_sqrt_dim:
        return 1.0 / std::sqrt(static_cast<double>(opt_.latent_dim));
      case score_scale::inv_dim:
        return 1.0 / static_cast<double>(opt_.latent_dim);
      case score_scale::temperature:
        return 1.0 / opt_.temperature;
    }
    return 1.0;
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
    check_negatives(negatives, len, B, Tn);

    info_nce_result res;
    res.loss_per_step.assign(K, 0.0);
    res.accuracy.assign(K, 0.0);
    res.terms.assign(K, 0);
    res.chance = 1.0 / static_cast<double>(N1);
    res.log_candidates = std::log(static_cast<double>(N1));
    std::size_t used_steps = 0;
    for (std::size_t k = 1; k <= K; ++k) {
      for (std::size_t b = 0; b < B; ++b) res.terms[k - 1] += len[b] > k ? len[b] - k : 0;
      if (res.terms[k - 1] > 0) ++used_steps;
    }
    if (used_steps == 0)
      throw config_error(
          "info_nce: no (b, t, k) term with t + k < length; items need at least 2 valid frames");

    const bool grad = dz != nullptr || dc != nullptr;
    if (dz != nullptr) {
      ensure_shape(*dz, z.shape());
      dz->fill(T(0));
    }
    if (dc != nullptr) {
      ensure_shape(*dc, c.shape());
      dc->fill(T(0));
    }
    const auto s = static_cast<T>(score_multiplier());
    const auto b_shape = std::array<std::size_t, 3>{B, Tn, D};
    if (grad) ensure_shape(dp_, b_shape);
    cand_.resize(BT * N1);
    logits_.resize(BT * N1);
    anchor_loss_.resize(BT);
    anchor_hit_.resize(BT);

    for (std::size_t k = 1; k <= K; ++k) {
      const std::size_t terms = res.terms[k - 1];
      if (terms == 0) continue;
      auto& head = heads_[k - 1];
      head.forward(c, p_);
      const double w = opt_.reduction == step_reduction::mean
                           ? 1.0 / (static_cast<double>(terms) * static_cast<double>(used_steps))
                           : 1.0 / static_cast<double>(terms);
      const std::int32_t* neg_k = negatives.data() + (k - 1) * BT * N;
      parallel_for(0, (BT + anchor_block - 1) / anchor_block, [&](std::size_t blk) {
        const std::size_t a_end = std::min(BT, (blk + 1) * anchor_block);
        for (std::size_t a = blk * anchor_block; a < a_end; ++a) {
          const std::size_t b = a / Tn, t = a % Tn;
          T* dpa = grad ? dp_.data() + a * D : nullptr;
          if (dpa != nullptr) std::fill(dpa, dpa + D, T(0));
          if (t + k >= len[b]) continue;
          std::int32_t* cand = cand_.data() + a * N1;
          T* l = logits_.data() + a * N1;
          cand[0] = static_cast<std::int32_t>(a + k);
          std::copy(neg_k + a * N, neg_k + (a + 1) * N, cand + 1);
          cpu_kernels::gather_dot(p_.data() + a * D, z.data(), cand, N1, D, l);
          T best_neg = -std::numeric_limits<T>::infinity();
          for (std::size_t j = 0; j < N1; ++j) {
            l[j] *= s;
            if (j > 0) best_neg = std::max(best_neg, l[j]);
          }
          const double m = std::max(static_cast<double>(l[0]), static_cast<double>(best_neg));
          double sum = 0;
          for (std::size_t j = 0; j < N1; ++j) sum += std::exp(static_cast<double>(l[j]) - m);
          anchor_loss_[a] = m + std::log(sum) - static_cast<double>(l[0]);
          anchor_hit_[a] = l[0] > best_neg ? 1 : 0;
          if (dpa == nullptr) continue;
          // g_j = dloss/dl_j * s, the coefficient of z_j in dp and of p in dz_j.
          for (std::size_t j = 0; j < N1; ++j) {
            const double soft = std::exp(static_cast<double>(l[j]) - m) / sum;
            l[j] = static_cast<T>(w * (soft - (j == 0 ? 1.0 : 0.0)) * static_cast<double>(s));
          }
          cpu_kernels::gather_axpy(dpa, z.data(), cand, l, N1, D);
        }
      });
      double total = 0;
      std::size_t hits = 0;
      for (std::size_t a = 0; a < BT; ++a) {
        if (a % Tn + k >= len[a / Tn]) continue;
        total += anchor_loss_[a];
        hits += anchor_hit_[a];
      }
      res.loss_per_step[k - 1] = total / static_cast<double>(terms);
      res.accuracy[k - 1] = static_cast<double>(hits) / static_cast<double>(terms);
      if (!grad) continue;
      if (dz != nullptr) scatter_dz(*dz, len, Tn, k, N1, D);
      head.backward(c, p_, dp_, dc != nullptr ? &dc_step_ : nullptr);
      if (dc != nullptr) {
        const auto rows = static_cast<std::ptrdiff_t>(BT),
                   cols = static_cast<std::ptrdiff_t>(opt_.context_dim);
        cpu_kernels::matrix_map(dc->data(), rows, cols) +=
            cpu_kernels::matrix_map(dc_step_.data(), rows, cols);
      }
    }
    double combined = 0;
    for (std::size_t k = 0; k < K; ++k) combined += res.loss_per_step[k];
    res.loss = opt_.reduction == step_reduction::mean ? combined / static_cast<double>(used_steps) : combined;
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
  static constexpr std::size_t anchor_block = 32;  // anchors per task
  static constexpr std::size_t row_block = 32;     // dz rows per task

  void check_inputs(const tensor3<T>& z, const tensor3<T>& c) const {
    check_shape("info_nce z", z, {any, any, static_cast<std::ptrdiff_t>(opt_.latent_dim)});
    check_shape("info_nce c", c,
                {static_cast<std::ptrdiff_t>(z.shape()[0]), static_cast<std::ptrdiff_t>(z.shape()[1]),
                 static_cast<std::ptrdiff_t>(opt_.context_dim)});
  }

  // Every negative of an anchor with a term must be a valid frame of the batch.
  void check_negatives(const tensor<std::int32_t, 4>& neg, const std::vector<std::size_t>& len, std::size_t B,
                       std::size_t Tn) const {
    const std::size_t N = opt_.negatives;
    for (std::size_t k = 1; k <= opt_.steps; ++k)
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t t = 0; t + k < len[b]; ++t) {
          const std::int32_t* n = neg.data() + (((k - 1) * B + b) * Tn + t) * N;
          for (std::size_t i = 0; i < N; ++i) {
            const std::int64_t v = n[i];
            if (v < 0 || static_cast<std::size_t>(v) >= B * Tn ||
                static_cast<std::size_t>(v) % Tn >= len[static_cast<std::size_t>(v) / Tn])
              throw config_error("info_nce: negative " + std::to_string(i) + " of anchor (b=" +
                                 std::to_string(b) + ", t=" + std::to_string(t) + ", k=" + std::to_string(k) +
                                 ") is frame " + std::to_string(v) + ", not a valid frame of the batch");
          }
        }
  }

  // dz_r += sum over (anchor a, candidate j) with cand[a, j] = r of g[a, j] * p_a, in anchor order.
  void scatter_dz(tensor3<T>& dz, const std::vector<std::size_t>& len, std::size_t Tn, std::size_t k,
                  std::size_t N1, std::size_t D) {
    const std::size_t BT = dz.shape()[0] * Tn;
    row_start_.assign(BT + 1, 0);
    for (std::size_t a = 0; a < BT; ++a) {
      if (a % Tn + k >= len[a / Tn]) continue;
      for (std::size_t j = 0; j < N1; ++j) ++row_start_[static_cast<std::size_t>(cand_[a * N1 + j]) + 1];
    }
    for (std::size_t r = 0; r < BT; ++r) row_start_[r + 1] += row_start_[r];
    entry_anchor_.resize(row_start_[BT]);
    entry_coeff_.resize(row_start_[BT]);
    fill_.assign(row_start_.begin(), row_start_.end() - 1);
    for (std::size_t a = 0; a < BT; ++a) {
      if (a % Tn + k >= len[a / Tn]) continue;
      for (std::size_t j = 0; j < N1; ++j) {
        const std::size_t e = fill_[static_cast<std::size_t>(cand_[a * N1 + j])]++;
        entry_anchor_[e] = static_cast<std::int32_t>(a);
        entry_coeff_[e] = logits_[a * N1 + j];
      }
    }
    parallel_for(0, (BT + row_block - 1) / row_block, [&](std::size_t blk) {
      const std::size_t r_end = std::min(BT, (blk + 1) * row_block);
      for (std::size_t r = blk * row_block; r < r_end; ++r) {
        const std::size_t e0 = row_start_[r], n = row_start_[r + 1] - e0;
        if (n > 0)
          cpu_kernels::gather_axpy(dz.data() + r * D, p_.data(), entry_anchor_.data() + e0,
                                   entry_coeff_.data() + e0, n, D);
      }
    });
  }

  options opt_;
  negative_sampler sampler_;
  std::vector<linear<T, Backend>> heads_;
  // Workspaces, reused across calls.
  tensor3<T> p_, dp_, dc_step_;
  std::vector<std::int32_t> cand_;  // [B*T, N+1] candidates per anchor, positive first
  std::vector<T> logits_;           // [B*T, N+1] logits, then their gradients times s
  std::vector<double> anchor_loss_;
  std::vector<unsigned char> anchor_hit_;
  std::vector<std::size_t> row_start_, fill_;
  std::vector<std::int32_t> entry_anchor_;
  std::vector<T> entry_coeff_;
};

}  // namespace cpc
