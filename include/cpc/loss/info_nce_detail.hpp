#pragma once
/// The part that `cpc::info_nce` (K linear heads) and `cpc::transformer_info_nce` (CPC_audio's
/// transformer heads) share (internal; include info_nce.hpp or transformer_info_nce.hpp instead):
/// the score scale and step reduction choices, and in `cpc::detail` the InfoNCE terms of one
/// prediction step given its predictions (`ops::info_nce_anchor_terms`, then
/// `ops::info_nce_scatter_dz`), the input and negative checks, the result's bookkeeping and the
/// combination of the per-step losses. The two losses differ only in their heads and in which
/// anchors have a term (t + k < L_b for info_nce, t < L_b - K for every k for CPC_audio's).
/// Source: van den Oord et al. 2018, section 2, eq. 3-4.
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
#include "cpc/core/tensor.hpp"

namespace cpc {

/// Multiplier s applied to every score s * (W_k c_t) . z:
/// `dot` s = 1 (the paper's f_k, eq. 3), `inv_sqrt_dim` s = 1/sqrt(latent_dim),
/// `inv_dim` s = 1/latent_dim, `temperature` s = 1/options::temperature.
enum class score_scale { dot, inv_sqrt_dim, inv_dim, temperature };

/// How the K per-step losses combine into `loss`: `mean` (default) = mean over the steps that have
/// terms of the per-step means, so a chance-level model scores log(N + 1) whatever K is; `sum` =
/// their sum, as the paper sums the K losses (K * log(N + 1) at chance, e.g. 58.3 for K = 12,
/// N = 128). Gradients follow the choice.
enum class step_reduction { mean, sum };

namespace detail {

/// The score multiplier s of `scale` for latent vectors of `latent_dim` channels (see `score_scale`).
inline double info_nce_score_multiplier(score_scale scale, std::size_t latent_dim, double temperature) {
  switch (scale) {
    case score_scale::dot:
      return 1.0;
    case score_scale::inv_sqrt_dim:
      return 1.0 / std::sqrt(static_cast<double>(latent_dim));
    case score_scale::inv_dim:
      return 1.0 / static_cast<double>(latent_dim);
    case score_scale::temperature:
      return 1.0 / temperature;
  }
  return 1.0;
}

/// Checks z `[batch, time, latent_dim]` and c `[batch, time, context_dim]` (same batch and time).
/// Errors: `cpc::shape_error` naming `who` ("info_nce" gives "info_nce z" / "info_nce c").
template <class T>
void check_info_nce_inputs(std::string_view who, const tensor3<T>& z, const tensor3<T>& c,
                           std::size_t latent_dim, std::size_t context_dim) {
  check_shape(std::string(who) + " z", z, {any, any, static_cast<std::ptrdiff_t>(latent_dim)});
  check_shape(std::string(who) + " c", c,
              {static_cast<std::ptrdiff_t>(z.shape()[0]), static_cast<std::ptrdiff_t>(z.shape()[1]),
               static_cast<std::ptrdiff_t>(context_dim)});
}

/// Every negative of an anchor with a term must be a valid frame of the batch. Negatives
/// `neg` `[K, B, Tn, N]` hold flat frame indices b * Tn + t; `len` are the B valid lengths. The
/// anchors of step k (1..K) are t + k < len[b], or t + K < len[b] with `same_anchors_every_step`
/// (CPC_audio's window). Errors: `cpc::config_error` naming `who`, the negative, its anchor and frame.
inline void check_info_nce_negatives(std::string_view who, const tensor<std::int32_t, 4>& neg,
                                     const std::vector<std::size_t>& len, std::size_t B, std::size_t Tn,
                                     std::size_t N, std::size_t K, bool same_anchors_every_step) {
  for (std::size_t k = 1; k <= K; ++k) {
    const std::size_t gap = same_anchors_every_step ? K : k;
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t t = 0; t + gap < len[b]; ++t) {
        const std::int32_t* n = neg.data() + (((k - 1) * B + b) * Tn + t) * N;
        for (std::size_t i = 0; i < N; ++i) {
          const std::int64_t v = n[i];
          if (v < 0 || static_cast<std::size_t>(v) >= B * Tn ||
              static_cast<std::size_t>(v) % Tn >= len[static_cast<std::size_t>(v) / Tn])
            throw config_error(std::string(who) + ": negative " + std::to_string(i) + " of anchor (b=" +
                               std::to_string(b) + ", t=" + std::to_string(t) + ", k=" + std::to_string(k) +
                               ") is frame " + std::to_string(v) + ", not a valid frame of the batch");
        }
      }
  }
}

/// A result of K steps with N negatives: per-step vectors zeroed, chance 1/(N+1), log(N+1).
inline info_nce_result start_info_nce_result(std::size_t K, std::size_t N) {
  info_nce_result res;
  res.loss_per_step.assign(K, 0.0);
  res.accuracy.assign(K, 0.0);
  res.terms.assign(K, 0);
  res.chance = 1.0 / static_cast<double>(N + 1);
  res.log_candidates = std::log(static_cast<double>(N + 1));
  return res;
}

/// `loss` from the per-step losses: their sum, or with `step_reduction::mean` the sum divided by
/// `used_steps` (the steps with terms; the others hold 0).
inline double combine_info_nce_steps(const std::vector<double>& loss_per_step, step_reduction reduction,
                                     std::size_t used_steps) {
  double combined = 0;
  for (const double l : loss_per_step) combined += l;
  return reduction == step_reduction::mean ? combined / static_cast<double>(used_steps) : combined;
}

/// Overwrites `dz` / `dc` (those non-null) with zeros of z's / c's shape.
template <class T, class Backend>
void zero_info_nce_gradients(const tensor3<T>& z, const tensor3<T>& c, tensor3<T>* dz, tensor3<T>* dc) {
  if (dz != nullptr) {
    ensure_shape(*dz, z.shape());
    ops::fill<Backend>(ops::fill_args<T>{.n = dz->size(), .value = T(0), .y = dz->data()});
  }
  if (dc != nullptr) {
    ensure_shape(*dc, c.shape());
    ops::fill<Backend>(ops::fill_args<T>{.n = dc->size(), .value = T(0), .y = dc->data()});
  }
}

/// One prediction step's InfoNCE terms (`info_nce_steps::step`): sizes, predictions p
/// `[batch, time, dim]`, latents z `[batch, time, dim]`, this step's negatives `[batch, time, N]`,
/// the score multiplier, the weight of each term in `loss` (for dp), and the outputs: dp
/// `[batch, time, dim]` (d loss / d p of the anchors with a term, as `ops::info_nce_anchor_terms`
/// writes it; nullptr: forward only) and dz `[batch, time, dim]` (accumulated; nullptr: none).
template <class T>
struct info_nce_step_args {
  std::size_t batch = 0, time = 0, dim = 0, negatives = 0;
  std::size_t step = 0;  ///< k = 1..K
  const T* p = nullptr;
  const T* z = nullptr;
  const std::int32_t* negative_index = nullptr;
  T scale = T(1);
  double weight = 0;
  T* dp = nullptr;
  T* dz = nullptr;
};

/// The sum of one step's terms -log softmax(l)[0] and the number of anchors whose positive scores highest.
struct info_nce_step_totals {
  double loss_sum = 0;
  std::size_t hits = 0;
};

/// The per-step engine and its workspaces (memory of the backend, reused across calls): the anchors'
/// lengths, then per step `ops::info_nce_anchor_terms` (candidates, logits, log-sum-exp, hits, dp)
/// and, with dz, `ops::info_nce_scatter_dz`. Deterministic for any thread count (the ops' contract).
template <class T, class Backend>
class info_nce_steps {
 public:
  /// Sizes the workspaces for `anchors` = B * T anchors of N + 1 candidates (never shrinks).
  void reserve(std::size_t anchors, std::size_t candidates) {
    ensure_size(cand_, anchors * candidates);
    ensure_size(logits_, anchors * candidates);
    ensure_size(anchor_loss_, anchors);
    ensure_size(anchor_hit_, anchors);
  }

  /// Sets the B anchor limits the next steps use: anchor (b, t) of step k has a term when t + k < lengths[b].
  void set_lengths(const std::vector<std::size_t>& lengths) {
    lengths_.assign(lengths.begin(), lengths.end());
  }

  /// Evaluates one step (see `info_nce_step_args`); returns its loss sum and hits.
  info_nce_step_totals step(const info_nce_step_args<T>& a) {
    info_nce_step_totals out;
    ops::info_nce_anchor_terms<Backend>(ops::info_nce_anchor_args<T>{.batch = a.batch,
                                                                     .time = a.time,
                                                                     .dim = a.dim,
                                                                     .negatives = a.negatives,
                                                                     .step = a.step,
                                                                     .lengths = lengths_.data(),
                                                                     .p = a.p,
                                                                     .z = a.z,
                                                                     .negative_index = a.negative_index,
                                                                     .scale = a.scale,
                                                                     .weight = a.weight,
                                                                     .candidates = cand_.data(),
                                                                     .logits = logits_.data(),
                                                                     .anchor_loss = anchor_loss_.data(),
                                                                     .anchor_hit = anchor_hit_.data(),
                                                                     .dp = a.dp,
                                                                     .loss_sum = &out.loss_sum,
                                                                     .hits = &out.hits});
    if (a.dz != nullptr)
      ops::info_nce_scatter_dz<Backend>(ops::info_nce_scatter_args<T>{.batch = a.batch,
                                                                      .time = a.time,
                                                                      .dim = a.dim,
                                                                      .negatives = a.negatives,
                                                                      .step = a.step,
                                                                      .lengths = lengths_.data(),
                                                                      .candidates = cand_.data(),
                                                                      .coeff = logits_.data(),
                                                                      .p = a.p,
                                                                      .dz = a.dz},
                                        scatter_ws_);
    return out;
  }

 private:
  buffer_for<std::size_t, Backend> lengths_;       // [B] anchor limits
  buffer_for<std::int32_t, Backend> cand_;         // [B*T, N+1] candidates per anchor, positive first
  buffer_for<T, Backend> logits_;                  // [B*T, N+1] logits, then their gradients times s
  buffer_for<double, Backend> anchor_loss_;        // [B*T]
  buffer_for<unsigned char, Backend> anchor_hit_;  // [B*T]
  ops::info_nce_scatter_workspace<Backend, T> scatter_ws_;
};

}  // namespace detail
}  // namespace cpc
