#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cpc/core/error.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/rl/env/grid.hpp"

namespace cpc::rl {

/// `n` copies of an environment stepped as one batch (the parallel actors of A2C, Mnih et al.
/// 2016; paper section 3.4). `Env` has `Env(seed, options)`, `spec()`, `reset()`,
/// `observe(float*)` and `step(int) -> step_result` (e.g. `memory_maze`, `cue_corridor`).
/// Environment i is seeded with the i-th draw of a generator seeded with `seed`, so a batch
/// replays identically from the same seed and actions. An environment whose episode ends is reset
/// within the same `step`: the observation returned is then its new episode's first one, and
/// `dones[i]` is 1.
template <class Env>
class vector_env {
 public:
  using options = typename Env::options;

  /// Errors: `cpc::config_error` for n == 0, or from `Env`'s options.
  vector_env(std::size_t n, std::uint64_t seed, options opt = {}) {
    if (n == 0) throw config_error("vector_env: expected at least one environment, got 0");
    rng seeds(seed);
    envs_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) envs_.emplace_back(seeds.next(), opt);
    returns_.assign(n, 0.0);
    lengths_.assign(n, 0);
  }

  /// Number of environments.
  std::size_t size() const { return envs_.size(); }
  /// The environments' (common) description.
  env_spec spec() const { return envs_.front().spec(); }
  /// Environment i, for tests and displays.
  const Env& env(std::size_t i) const { return envs_.at(i); }

  /// Current observations of all environments into `obs` `[n, height, width, channels]` (resized).
  void observe(tensor4<float>& obs) const {
    const env_spec s = spec();
    if (obs.shape(0) != size() || obs.shape(1) != s.height || obs.shape(2) != s.width ||
        obs.shape(3) != s.channels)
      obs.resize({size(), s.height, s.width, s.channels});
    for (std::size_t i = 0; i < size(); ++i) envs_[i].observe(obs.data() + i * s.observation_size());
  }

  /// Steps every environment i with `actions[i]`; `rewards` and `dones` `[n]` (resized) get each
  /// step's reward and 1 where the episode ended (that environment is reset), then `obs` gets the
  /// observations after the step. Finished episodes' returns and lengths are queued for
  /// `take_finished`.
  /// Errors: `cpc::shape_error` when actions has not n entries; `cpc::config_error` for an action
  /// out of range.
  void step(const std::vector<int>& actions, tensor4<float>& obs, std::vector<float>& rewards,
            std::vector<float>& dones) {
    if (actions.size() != size())
      throw shape_error("vector_env::step: expected " + std::to_string(size()) + " actions, got " +
                        std::to_string(actions.size()));
    rewards.assign(size(), 0.0f);
    dones.assign(size(), 0.0f);
    for (std::size_t i = 0; i < size(); ++i) {
      const step_result r = envs_[i].step(actions[i]);
      rewards[i] = r.reward;
      returns_[i] += r.reward;
      ++lengths_[i];
      if (r.done) {
        dones[i] = 1.0f;
        finished_returns_.push_back(returns_[i]);
        finished_lengths_.push_back(lengths_[i]);
        returns_[i] = 0;
        lengths_[i] = 0;
        envs_[i].reset();
      }
    }
    observe(obs);
  }

  /// Returns (sum of rewards) of the episodes finished since the last call, in order of ending,
  /// and clears the queue; `lengths` (if given) gets their lengths in steps.
  std::vector<double> take_finished(std::vector<std::size_t>* lengths = nullptr) {
    std::vector<double> out;
    out.swap(finished_returns_);
    if (lengths != nullptr) lengths->swap(finished_lengths_);
    finished_lengths_.clear();
    return out;
  }

 private:
  std::vector<Env> envs_;
  std::vector<double> returns_;
  std::vector<std::size_t> lengths_;
  std::vector<double> finished_returns_;
  std::vector<std::size_t> finished_lengths_;
};

}  // namespace cpc::rl
