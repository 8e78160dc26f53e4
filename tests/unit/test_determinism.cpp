// Determinism of training (issue 7): the same seed and thread count give bit-identical loss
// curves and weights; 1 and 2 threads agree within a stated tolerance (by design - fixed-size
// parallel blocks, no reduction split across tasks - they are in fact bit-identical, and the test
// reports the measured difference).
#include <doctest/doctest.h>

#include <cpc/core/threads.hpp>
#include <cpc/model/model.hpp>
#include <cpc/optim/adam.hpp>
#include <cpc/train/trainer.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

using namespace cpc;

namespace {

using tiny_f = model<presets::audio_tiny, strided_conv_encoder, gru, info_nce, float>;

struct run_result {
  std::vector<double> losses;   ///< per step
  std::vector<float> weights;   ///< every parameter after the last step
  rng::state_type negatives{};  ///< the model's generator after the last step
};

/// Trains the tiny model for `steps` steps through cpc::train (one call per step, to read each
/// step's loss) on batches of 8 noisy tones drawn from a generator seeded with `seed + 1`.
run_result train_tiny(std::uint64_t seed, std::size_t threads, std::uint64_t steps) {
  set_num_threads(threads);
  tiny_f::options o;
  o.seed = seed;
  o.loss.init = predictor_init::normal;
  tiny_f m(o);
  adam<float> opt(m.parameters(), {.learning_rate = 3e-3});
  rng data(seed + 1);
  auto batches = [&](audio_batch<float>& b) {
    b.audio.resize({std::size_t{8}, std::size_t{512}});
    for (std::size_t i = 0; i < 8; ++i) {
      const double f = data.uniform(0.02, 0.3), ph = data.uniform(0.0, 6.28);
      for (std::size_t s = 0; s < 512; ++s)
        b.audio(i, s) =
            static_cast<float>(0.5 * std::sin(f * static_cast<double>(s) + ph) + 0.05 * data.normal());
    }
  };
  run_result r;
  train_options t;
  t.progress = false;
  for (std::uint64_t k = 1; k <= steps; ++k) {
    t.max_steps = k;
    r.losses.push_back(train(m, opt, constant_lr{3e-3}, batches, t).last.loss);
  }
  m.for_each_parameter([&](const std::string&, parameter<float>& p) {
    r.weights.insert(r.weights.end(), p.value.begin(), p.value.end());
  });
  r.negatives = m.generator().state();
  return r;
}

double max_relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    d = std::max(d, std::abs(a[i] - b[i]) / std::max(std::abs(b[i]), 1e-12));
  return d;
}

}  // namespace

TEST_CASE("determinism: the same seed and thread count give a bit-identical loss curve and weights") {
  for (std::size_t threads : {1u, 2u}) {
    INFO("threads = " << threads);
    const auto a = train_tiny(5, threads, 5);
    const auto b = train_tiny(5, threads, 5);
    REQUIRE(a.losses.size() == 5);
    CHECK(a.losses == b.losses);  // exact, bit for bit
    CHECK(a.weights == b.weights);
    CHECK(a.negatives == b.negatives);
    for (double l : a.losses) CHECK(std::isfinite(l));
    // The run is not degenerate: the loss moves and another seed gives another curve.
    CHECK(a.losses.front() != a.losses.back());
    const auto other = train_tiny(6, threads, 5);
    CHECK(other.losses != a.losses);
  }
}

TEST_CASE("determinism: 1 and 2 threads agree within 1e-6 relative on every step's loss (measured: 0)") {
  // Stated tolerance: 1e-6 relative on losses, 1e-6 absolute on weights after 5 Adam steps. The
  // kernels split work into fixed-size blocks independent of the thread count, so the measured
  // difference is 0; the tolerance leaves room for a future kernel that documents otherwise.
  const auto one = train_tiny(7, 1, 5);
  const auto two = train_tiny(7, 2, 5);
  const double loss_diff = max_relative_difference(two.losses, one.losses);
  double weight_diff = 0;
  REQUIRE(one.weights.size() == two.weights.size());
  for (std::size_t i = 0; i < one.weights.size(); ++i)
    weight_diff = std::max(weight_diff, static_cast<double>(std::abs(one.weights[i] - two.weights[i])));
  MESSAGE("1 vs 2 threads: max relative loss difference " << loss_diff << ", max weight difference "
                                                          << weight_diff);
  CHECK(loss_diff <= 1e-6);
  CHECK(weight_diff <= 1e-6);
  CHECK(one.negatives == two.negatives);  // negatives are drawn on the calling thread
}
