#pragma once
/// The A2C agent of cpc::rl with CPC as an auxiliary loss (paper section 3.4, Figure 6): a
/// convolutional observation encoder, an LSTM core, policy and value heads, trained by batched
/// advantage actor-critic (Mnih et al. 2016) with RMSprop; optionally the InfoNCE loss predicts,
/// from the core's state c_t, the encoder latents z_{t+k}, k = 1..K, of the same episode
/// (negatives from the rest of the rollout), with weight `cpc_weight`.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cpc/backend/ops.hpp"
#include "cpc/core/batch_info.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/layers/conv2d.hpp"
#include "cpc/layers/linear.hpp"
#include "cpc/layers/lstm.hpp"
#include "cpc/layers/relu.hpp"
#include "cpc/loss/info_nce.hpp"
#include "cpc/optim/clip.hpp"
#include "cpc/optim/rmsprop.hpp"
#include "cpc/rl/a2c.hpp"
#include "cpc/rl/env/vector_env.hpp"
#include "cpc/rl/segments.hpp"

namespace cpc::rl {

/// Sizes of `a2c_agent`'s networks.
struct agent_options {
  std::size_t conv_channels = 16;  ///< channels of the 3 x 3 convolution (padding 1)
  std::size_t latent_dim = 64;     ///< encoder output z (the CPC latents)
  std::size_t hidden_size = 64;    ///< LSTM core state (the CPC context c)
};

/// Training choices of `a2c_learner`. Defaults: A2C's (Mnih et al. 2016; OpenAI baselines a2c:
/// RMSprop lr 7e-4, alpha 0.99, eps 1e-5, gradient norm clip 0.5, 0.5 value weight, 0.01 entropy).
struct a2c_options {
  std::size_t rollout = 20;  ///< steps per environment between updates (n of the n-step returns)
  double gamma = 0.99;
  a2c_loss_options loss{};
  double learning_rate = 7e-4;
  double rmsprop_alpha = 0.99;
  double rmsprop_eps = 1e-5;
  double max_grad_norm = 0.5;
  double cpc_weight = 0;           ///< weight of the CPC auxiliary loss; 0 switches it off
  std::size_t cpc_steps = 30;      ///< K prediction steps (the paper predicts up to 30 ahead)
  std::size_t cpc_negatives = 16;  ///< negatives per anchor, drawn from the rollout's frames
};

/// Statistics of one update.
struct a2c_update_stats {
  a2c_loss_result loss;
  double cpc_loss = 0;       ///< InfoNCE loss (0 when off or when no segment had 2 frames)
  double grad_norm = 0;      ///< before clipping
  std::size_t segments = 0;  ///< episode segments in the rollout (rows of the core's batch)
};

/// The agent's networks, element type T (float or double) on the cpu backend.
/// Encoder: observation `[B, h, w, c]` -> conv 3 x 3 (padding 1) -> ReLU -> flatten -> linear ->
/// ReLU = latent z `[B, latent_dim]`. Core: one LSTM layer, z -> c `[hidden_size]`. Heads: linear
/// c -> policy logits `[actions]`, linear c -> value. Parameters "encoder.conv.*",
/// "encoder.fc.*", "core.*", "policy.*", "value.*" and with CPC "cpc.predictor.{k}.*".
template <class T>
class basic_a2c_agent {
 public:
  /// Builds the networks for `spec`'s observations and actions; draws initial weights from `gen`.
  /// With `cpc_steps` > 0 also the InfoNCE prediction heads (K = cpc_steps, N = cpc_negatives).
  /// Errors: `cpc::config_error` for zero sizes.
  basic_a2c_agent(const env_spec& spec, agent_options opt, std::size_t cpc_steps, std::size_t cpc_negatives,
                  rng& gen)
      : spec_(spec),
        opt_(opt),
        conv_({.in_channels = spec.channels, .out_channels = opt.conv_channels, .kernel = 3, .padding = 1},
              gen),
        fc_({.in_features = spec.height * spec.width * opt.conv_channels, .out_features = opt.latent_dim},
            gen),
        core_({.input_size = opt.latent_dim, .hidden_size = opt.hidden_size}, gen),
        policy_({.in_features = opt.hidden_size, .out_features = spec.actions}, gen),
        value_({.in_features = opt.hidden_size, .out_features = 1}, gen) {
    if (spec.actions == 0 || opt.latent_dim == 0 || opt.hidden_size == 0 || opt.conv_channels == 0)
      throw config_error("a2c_agent: expected actions, latent_dim, hidden_size and conv_channels > 0");
    if (cpc_steps > 0)
      cpc_.emplace_back(info_nce_options{.context_dim = opt.hidden_size,
                                         .latent_dim = opt.latent_dim,
                                         .steps = cpc_steps,
                                         .negatives = cpc_negatives},
                        gen);
  }

  const env_spec& spec() const { return spec_; }
  const agent_options& config() const { return opt_; }
  /// Whether the CPC prediction heads exist.
  bool has_cpc() const { return !cpc_.empty(); }

  /// Zero core state for `envs` environments: `[2, envs, hidden_size]` (h then c).
  tensor3<T> initial_state(std::size_t envs) const {
    return tensor3<T>(std::array<std::size_t, 3>{2, envs, opt_.hidden_size}, 0.0f);
  }

  /// One acting step: obs `[N, h, w, c]`, core state `hc` `[2, N, hidden]` (advanced in place
  /// unless `advance` is false) -> logits `[N, actions]` and values `[N]`.
  void act(const tensor4<T>& obs, tensor3<T>& hc, tensor<T, 2>& logits, std::vector<T>& values,
           bool advance = true) {
    const std::size_t n = obs.shape(0);
    encode(obs);
    if (advance) {
      core_.forward(z_, c_, &hc, &hc);
    } else {
      core_.forward(z_, c_, &hc, &scratch_state_);
    }
    heads(c_);
    logits.resize({n, spec_.actions});
    std::copy(logits_.begin(), logits_.end(), logits.begin());
    values.assign(value_out_.begin(), value_out_.end());
  }

  /// Forward and backward over a rollout: obs `[time * envs, h, w, c]` time-major (frame
  /// t * envs + e), `segments` from `episode_segments`, core state at the rollout's start `hc0`
  /// `[2, envs, hidden]` (segments that start later start from zero). Fills `logits` `[time, envs,
  /// actions]` and `values` `[time, envs]`, then calls `loss_grad(logits, values, d_logits,
  /// d_values)` which must write the loss's gradients, and back-propagates them (plus, with
  /// `cpc_weight` > 0, `cpc_weight` times the InfoNCE loss's) into every parameter's gradient
  /// (accumulated). Returns the InfoNCE loss (0 when off).
  template <class LossGrad>
  double train(const tensor4<T>& obs, std::size_t steps, std::size_t envs,
               const std::vector<rollout_segment>& segments, const tensor3<T>& hc0, double cpc_weight,
               rng& gen, LossGrad&& loss_grad) {
    const std::size_t frames = steps * envs, D = opt_.latent_dim, H = opt_.hidden_size;
    encode(obs);
    // Pack latents into one row per episode segment; the rows' initial states.
    pack_segments(z_.data(), steps, envs, D, segments, zp_);
    tensor3<T> hcp(std::array<std::size_t, 3>{2, segments.size(), H}, 0.0f);
    for (std::size_t r = 0; r < segments.size(); ++r)
      if (segments[r].start == 0)
        for (std::size_t k = 0; k < 2; ++k)
          std::copy(&hc0(k, segments[r].env, 0), &hc0(k, segments[r].env, 0) + H, &hcp(k, r, 0));
    core_.forward(zp_, cp_, &hcp, nullptr);
    ensure_shape(c_, std::array<std::size_t, 3>{frames, 1, H});
    unpack_segments(cp_, envs, segments, c_.data());
    heads(c_);
    tensor<T, 3> logits = xt::adapt(logits_.data(), frames * spec_.actions, xt::no_ownership(),
                                    std::array<std::size_t, 3>{steps, envs, spec_.actions});
    tensor<T, 2> values =
        xt::adapt(value_out_.data(), frames, xt::no_ownership(), std::array<std::size_t, 2>{steps, envs});
    tensor<T, 3> d_logits;
    tensor<T, 2> d_values;
    loss_grad(logits, values, d_logits, d_values);
    // Heads backward: dc = dlogits W_pi + dvalue W_v.
    tensor3<T> dl = xt::adapt(d_logits.data(), d_logits.size(), xt::no_ownership(),
                              std::array<std::size_t, 3>{frames, 1, spec_.actions});
    tensor3<T> dv = xt::adapt(d_values.data(), d_values.size(), xt::no_ownership(),
                              std::array<std::size_t, 3>{frames, 1, 1});
    policy_.backward(c_, logits_, dl, &dc_);
    value_.backward(c_, value_out_, dv, &dc_value_);
    dc_ += dc_value_;
    pack_segments(dc_.data(), steps, envs, H, segments, dcp_);
    double cpc_loss = 0;
    dzp_extra_.resize({0, 0, 0});
    if (has_cpc() && cpc_weight > 0) {
      bool any_term = false;
      for (const auto& s : segments) any_term = any_term || s.length >= 2;
      if (any_term) {
        batch_info info{.lengths = segment_lengths(segments)};
        for (const auto& [name, p] : cpc_parameters()) p->zero_grad();
        const auto r = cpc_.front().compute(zp_, cp_, info, gen, &dzp_extra_, &dcp_cpc_);
        cpc_loss = r.loss;
        const auto w = static_cast<T>(cpc_weight);
        dcp_ += w * dcp_cpc_;
        dzp_extra_ *= w;
        for (const auto& [name, p] : cpc_parameters()) p->grad *= w;
      }
    }
    core_.backward(zp_, cp_, dcp_, &dzp_);
    if (dzp_extra_.size() == dzp_.size()) dzp_ += dzp_extra_;
    ensure_shape(dz_, std::array<std::size_t, 3>{frames, 1, D});
    unpack_segments(dzp_, envs, segments, dz_.data());
    encode_backward(obs);
    return cpc_loss;
  }

  /// Visits every parameter (see the class comment for the names).
  template <class F>
  void for_each_parameter(F&& f, std::string_view prefix = "") {
    const std::string p(prefix);
    conv_.for_each_parameter(f, p + "encoder.conv.");
    fc_.for_each_parameter(f, p + "encoder.fc.");
    core_.for_each_parameter(f, p + "core.");
    policy_.for_each_parameter(f, p + "policy.");
    value_.for_each_parameter(f, p + "value.");
    if (has_cpc()) cpc_.front().for_each_parameter(f, p + "cpc.");
  }

 private:
  named_parameter_list<T> cpc_parameters() {
    named_parameter_list<T> out;
    if (has_cpc())
      cpc_.front().for_each_parameter([&](const std::string& n, parameter<T>& p) { out.emplace_back(n, &p); },
                                      "");
    return out;
  }

  /// z_ `[B, 1, latent]` from obs `[B, h, w, c]`, keeping the intermediates for `encode_backward`.
  void encode(const tensor4<T>& obs) {
    const std::size_t b = obs.shape(0);
    conv_.forward(obs, conv_out_);
    ensure_shape(conv_relu_,
                 std::array<std::size_t, 3>{b, 1, conv_out_.size() / std::max<std::size_t>(b, 1)});
    ops::relu_forward<cpu>(
        ops::relu_forward_args<T>{.n = conv_out_.size(), .x = conv_out_.data(), .y = conv_relu_.data()});
    fc_.forward(conv_relu_, fc_out_);
    fc_relu_.forward(fc_out_, z_);
  }

  /// Accumulates the encoder's parameter gradients from dz_ `[B, 1, latent]`.
  void encode_backward(const tensor4<T>& obs) {
    fc_relu_.backward(fc_out_, z_, dz_, &d_fc_out_);
    fc_.backward(conv_relu_, fc_out_, d_fc_out_, &d_conv_relu_);
    ensure_shape(d_conv_out_, conv_out_.shape());
    ops::relu_backward<cpu>(ops::relu_backward_args<T>{
        .n = conv_relu_.size(), .y = conv_relu_.data(), .dy = d_conv_relu_.data(), .dx = d_conv_out_.data()});
    conv_.backward(obs, conv_out_, d_conv_out_, nullptr);
  }

  /// logits_ `[B, 1, actions]` and value_out_ `[B, 1, 1]` from c `[B, 1, hidden]`.
  void heads(const tensor3<T>& c) {
    policy_.forward(c, logits_);
    value_.forward(c, value_out_);
  }

  env_spec spec_;
  agent_options opt_;
  conv2d<T> conv_;
  linear<T> fc_;
  relu<T> fc_relu_;
  lstm<T> core_;
  linear<T> policy_, value_;
  std::vector<info_nce<T>> cpc_;  // empty without CPC
  tensor4<T> conv_out_, d_conv_out_;
  tensor3<T> conv_relu_, d_conv_relu_, fc_out_, d_fc_out_, z_, dz_, c_, dc_, dc_value_, logits_, value_out_;
  tensor3<T> zp_, cp_, dcp_, dcp_cpc_, dzp_, dzp_extra_, scratch_state_;
};

/// The agent in float, as `a2c_learner` trains it.
using a2c_agent = basic_a2c_agent<float>;

/// Batched A2C on a `vector_env`, with optional CPC auxiliary loss (paper section 3.4):
/// each `update()` acts `rollout` steps in every environment (actions sampled from the policy),
/// computes n-step returns bootstrapped with the critic, and takes one RMSprop step on
/// a2c_loss + cpc_weight InfoNCE after clipping the gradient norm.
template <class Env>
class a2c_learner {
 public:
  /// Errors: `cpc::config_error` for a zero rollout or bad optimiser options.
  a2c_learner(vector_env<Env>& envs, agent_options net, a2c_options opt, std::uint64_t seed)
      : envs_(envs),
        opt_(opt),
        gen_(seed),
        agent_(envs.spec(), net, opt.cpc_weight > 0 ? std::min(opt.cpc_steps, opt.rollout - 1) : 0,
               opt.cpc_negatives, gen_),
        params_(named_parameters<float>(agent_)),
        optim_(params_,
               {.learning_rate = opt.learning_rate, .alpha = opt.rmsprop_alpha, .eps = opt.rmsprop_eps}) {
    if (opt.rollout < 2)
      throw config_error("a2c_learner: expected rollout >= 2, got " + std::to_string(opt.rollout));
    hc_ = agent_.initial_state(envs.size());
    envs_.observe(obs_);
  }

  /// Environment steps taken so far (all environments together).
  std::size_t env_steps() const { return steps_; }
  a2c_agent& agent() { return agent_; }

  /// One rollout and one update (see the class comment).
  a2c_update_stats update() {
    const std::size_t n = envs_.size(), steps = opt_.rollout;
    const env_spec s = envs_.spec();
    const std::size_t frame = s.observation_size();
    tensor4<float> obs({steps * n, s.height, s.width, s.channels});
    tensor<float, 2> rewards({steps, n}), dones({steps, n});
    std::vector<int> actions(steps * n);
    const tensor3<float> hc0 = hc_;
    tensor<float, 2> logits;
    std::vector<float> values, r, d;
    for (std::size_t t = 0; t < steps; ++t) {
      std::copy(obs_.begin(), obs_.end(), obs.data() + t * n * frame);
      agent_.act(obs_, hc_, logits, values);
      for (std::size_t e = 0; e < n; ++e) actions[t * n + e] = sample(&logits(e, 0), s.actions);
      envs_.step(std::vector<int>(actions.begin() + static_cast<std::ptrdiff_t>(t * n),
                                  actions.begin() + static_cast<std::ptrdiff_t>((t + 1) * n)),
                 obs_, r, d);
      for (std::size_t e = 0; e < n; ++e) {
        rewards(t, e) = r[e];
        dones(t, e) = d[e];
        if (d[e] != 0.0f)  // a new episode starts from a zero core state
          for (std::size_t k = 0; k < 2; ++k) std::fill(&hc_(k, e, 0), &hc_(k, e, 0) + hc_.shape(2), 0.0f);
      }
    }
    steps_ += steps * n;
    // Bootstrap from the critic's value of the state after the rollout (core state not advanced).
    agent_.act(obs_, hc_, logits, values, false);
    tensor<float, 1> bootstrap(std::array<std::size_t, 1>{n});
    std::copy(values.begin(), values.end(), bootstrap.begin());
    const tensor<float, 2> returns = n_step_returns(rewards, dones, bootstrap, opt_.gamma);
    const auto segments = episode_segments(dones);
    a2c_update_stats st;
    st.segments = segments.size();
    optim_.zero_grad();
    st.cpc_loss = agent_.train(
        obs, steps, n, segments, hc0, opt_.cpc_weight, gen_,
        [&](const tensor<float, 3>& lg, const tensor<float, 2>& v, tensor<float, 3>& dl,
            tensor<float, 2>& dv) { st.loss = a2c_loss(lg, actions, v, returns, opt_.loss, dl, dv); });
    st.grad_norm = clip_grad_norm(params_, opt_.max_grad_norm);
    optim_.step();
    return st;
  }

 private:
  int sample(const float* logits, std::size_t n) {
    double mx = logits[0];
    for (std::size_t j = 1; j < n; ++j) mx = std::max(mx, static_cast<double>(logits[j]));
    double sum = 0;
    for (std::size_t j = 0; j < n; ++j) sum += std::exp(logits[j] - mx);
    double u = gen_.uniform() * sum;
    for (std::size_t j = 0; j < n; ++j) {
      u -= std::exp(logits[j] - mx);
      if (u < 0) return static_cast<int>(j);
    }
    return static_cast<int>(n - 1);
  }

  vector_env<Env>& envs_;
  a2c_options opt_;
  rng gen_;
  a2c_agent agent_;
  named_parameter_list<float> params_;
  rmsprop<float> optim_;
  tensor3<float> hc_;
  tensor4<float> obs_;
  std::size_t steps_ = 0;
};

}  // namespace cpc::rl
