#pragma once
/// The maths of batched advantage actor-critic (A2C, the synchronous form of A3C: Mnih et al.
/// 2016, "Asynchronous methods for deep reinforcement learning", Algorithm S3), the agent of the
/// paper's section 3.4: n-step returns with episode-boundary masks, advantages, and the policy-
/// gradient + value + entropy loss with its gradients with respect to the policy logits and the
/// values. Rollouts are time-major: `[time, envs]` for per-step scalars, `[time, envs, actions]`
/// for logits. Host code, like the linear probe's softmax (`cpc::linear_probe`): O(time envs
/// actions), small next to the networks.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "cpc/core/error.hpp"
#include "cpc/core/tensor.hpp"

namespace cpc::rl {

/// n-step discounted returns of a rollout (Mnih et al. 2016, Algorithm S3):
///   R_T = bootstrap (the critic's value of the state after the last step),
///   R_t = r_t + gamma (1 - done_t) R_{t+1},
/// so a return never crosses an episode end (`done_t` = 1 when the episode ended with step t; a
/// time-limit end is treated as terminal).
/// rewards, dones: `[time, envs]`; bootstrap: `[envs]`; returns `[time, envs]`.
/// Errors: `cpc::shape_error` when the shapes disagree; `cpc::config_error` for gamma outside [0, 1].
template <class T>
tensor<T, 2> n_step_returns(const tensor<T, 2>& rewards, const tensor<T, 2>& dones,
                            const tensor<T, 1>& bootstrap, double gamma) {
  if (!(gamma >= 0 && gamma <= 1))
    throw config_error("n_step_returns: expected gamma in [0, 1], got " + std::to_string(gamma));
  if (dones.shape() != rewards.shape() || bootstrap.shape(0) != rewards.shape(1))
    throw shape_error(
        "n_step_returns: expected rewards and dones [time, envs] and bootstrap [envs], got rewards " +
        shape_string(rewards.shape()) + ", dones " + shape_string(dones.shape()) + ", bootstrap " +
        shape_string(bootstrap.shape()));
  const std::size_t steps = rewards.shape(0), envs = rewards.shape(1);
  tensor<T, 2> returns({steps, envs});
  for (std::size_t e = 0; e < envs; ++e) {
    double r = bootstrap(e);
    for (std::size_t t = steps; t-- > 0;) {
      r = rewards(t, e) + gamma * (1.0 - dones(t, e)) * r;
      returns(t, e) = static_cast<T>(r);
    }
  }
  return returns;
}

/// Weights of the A2C loss's terms (Mnih et al. 2016: entropy weight 0.01; value weight 0.5 as in
/// the common A2C implementations, e.g. OpenAI baselines).
struct a2c_loss_options {
  double value_weight = 0.5;
  double entropy_weight = 0.01;
};

/// The A2C loss and its parts, each a mean over the rollout's time * envs steps.
struct a2c_loss_result {
  double total = 0;    // policy + value_weight value - entropy_weight entropy
  double policy = 0;   // -mean of log pi(a_t | s_t) A_t, advantages held constant
  double value = 0;    // mean of (R_t - V_t)^2 / 2
  double entropy = 0;  // mean entropy of pi(. | s_t), in nats
};

/// The A2C loss over a rollout of M = time * envs steps with advantages A = R - V held constant:
///   L = -1/M sum log softmax(z_t)[a_t] A_t + value_weight / M sum (R_t - V_t)^2 / 2
///       - entropy_weight / M sum H(softmax(z_t)),
/// writing dL/dz into `d_logits` and dL/dV into `d_values` (resized):
///   dL/dz_j = (-(1[j = a] - p_j) A + entropy_weight p_j (log p_j + H)) / M,
///   dL/dV = value_weight (V - R) / M.
/// logits `[time, envs, actions]`; actions, values, returns `[time, envs]`.
/// Errors: `cpc::shape_error` when the shapes disagree; `cpc::config_error` for an action outside
/// [0, actions).
template <class T>
a2c_loss_result a2c_loss(const tensor<T, 3>& logits, const std::vector<int>& actions,
                         const tensor<T, 2>& values, const tensor<T, 2>& returns, const a2c_loss_options& opt,
                         tensor<T, 3>& d_logits, tensor<T, 2>& d_values) {
  const std::size_t steps = logits.shape(0), envs = logits.shape(1), n_actions = logits.shape(2);
  if (values.shape(0) != steps || values.shape(1) != envs || returns.shape() != values.shape() ||
      actions.size() != steps * envs || n_actions == 0)
    throw shape_error(
        "a2c_loss: expected logits [time, envs, actions], actions time * envs, values and returns "
        "[time, envs], got logits " +
        shape_string(logits.shape()) + ", " + std::to_string(actions.size()) + " actions, values " +
        shape_string(values.shape()) + ", returns " + shape_string(returns.shape()));
  d_logits.resize({steps, envs, n_actions});
  d_values.resize({steps, envs});
  const double m = static_cast<double>(steps * envs);
  a2c_loss_result out;
  std::vector<double> logp(n_actions);
  for (std::size_t t = 0; t < steps; ++t)
    for (std::size_t e = 0; e < envs; ++e) {
      const int a = actions[t * envs + e];
      if (a < 0 || static_cast<std::size_t>(a) >= n_actions)
        throw config_error("a2c_loss: expected actions in [0, " + std::to_string(n_actions) + "), got " +
                           std::to_string(a));
      const T* z = &logits(t, e, 0);
      double mx = z[0];
      for (std::size_t j = 1; j < n_actions; ++j) mx = std::max(mx, static_cast<double>(z[j]));
      double sum = 0;
      for (std::size_t j = 0; j < n_actions; ++j) sum += std::exp(z[j] - mx);
      const double lse = mx + std::log(sum);
      double h = 0;
      for (std::size_t j = 0; j < n_actions; ++j) {
        logp[j] = z[j] - lse;
        h -= std::exp(logp[j]) * logp[j];
      }
      const double v = values(t, e), r = returns(t, e), adv = r - v;
      out.policy -= logp[static_cast<std::size_t>(a)] * adv / m;
      out.value += 0.5 * (r - v) * (r - v) / m;
      out.entropy += h / m;
      T* dz = &d_logits(t, e, 0);
      for (std::size_t j = 0; j < n_actions; ++j) {
        const double p = std::exp(logp[j]);
        const double hit = static_cast<std::size_t>(a) == j ? 1.0 : 0.0;
        dz[j] = static_cast<T>((-(hit - p) * adv + opt.entropy_weight * p * (logp[j] + h)) / m);
      }
      d_values(t, e) = static_cast<T>(opt.value_weight * (v - r) / m);
    }
  out.total = out.policy + opt.value_weight * out.value - opt.entropy_weight * out.entropy;
  return out;
}

}  // namespace cpc::rl
