// A2C maths (include/cpc/rl/a2c.hpp): n-step returns against hand-computed values with episode
// ends, the loss's parts by hand, and its gradients by finite differences in double.
#include <doctest/doctest.h>

#include <cpc/core/random.hpp>
#include <cpc/rl/a2c.hpp>

#include <cmath>
#include <vector>

using namespace cpc;
using namespace cpc::rl;

TEST_CASE("n_step_returns: hand-computed discounted returns, cut at episode ends, bootstrapped") {
  // env 0: no end, bootstrap 10; env 1: episode ends with step 1, bootstrap 5.
  const tensor<double, 2> rewards = {{1, 1}, {0, 1}, {2, 1}};
  const tensor<double, 2> dones = {{0, 0}, {0, 1}, {0, 0}};
  const tensor<double, 1> bootstrap = {10, 5};
  const auto r = n_step_returns(rewards, dones, bootstrap, 0.9);
  // env 0: R2 = 2 + 0.9 * 10 = 11, R1 = 0.9 * 11 = 9.9, R0 = 1 + 0.9 * 9.9 = 9.91
  CHECK(r(2, 0) == doctest::Approx(11.0));
  CHECK(r(1, 0) == doctest::Approx(9.9));
  CHECK(r(0, 0) == doctest::Approx(9.91));
  // env 1: R2 = 1 + 0.9 * 5 = 5.5, R1 = 1 (the episode ended), R0 = 1 + 0.9 * 1 = 1.9
  CHECK(r(2, 1) == doctest::Approx(5.5));
  CHECK(r(1, 1) == doctest::Approx(1.0));
  CHECK(r(0, 1) == doctest::Approx(1.9));
  // Advantages A = R - V.
  const tensor<double, 2> values = {{9, 2}, {10, 0.5}, {11, 6}};
  const tensor<double, 2> adv = r - values;
  CHECK(adv(0, 0) == doctest::Approx(0.91));
  CHECK(adv(1, 1) == doctest::Approx(0.5));
  CHECK(adv(2, 1) == doctest::Approx(-0.5));
  // gamma 0: the rewards themselves.
  const auto r0 = n_step_returns(rewards, dones, bootstrap, 0.0);
  CHECK(r0 == rewards);
  CHECK_THROWS_AS(n_step_returns(rewards, dones, bootstrap, 1.5), config_error);
  CHECK_THROWS_AS(n_step_returns(rewards, tensor<double, 2>({2, 2}), bootstrap, 0.9), shape_error);
}

TEST_CASE("a2c_loss: hand-computed policy, value and entropy terms") {
  // One step, two actions, p = softmax(0, ln 3) = (0.25, 0.75); action 1; V = 1, R = 3, A = 2.
  const tensor<double, 3> logits = {{{0.0, std::log(3.0)}}};
  const tensor<double, 2> values = {{1.0}}, returns = {{3.0}};
  tensor<double, 3> dz;
  tensor<double, 2> dv;
  const auto r =
      a2c_loss(logits, {1}, values, returns, {.value_weight = 0.5, .entropy_weight = 0.01}, dz, dv);
  const double h = -(0.25 * std::log(0.25) + 0.75 * std::log(0.75));
  CHECK(r.policy == doctest::Approx(-std::log(0.75) * 2));
  CHECK(r.value == doctest::Approx(2.0));
  CHECK(r.entropy == doctest::Approx(h));
  CHECK(r.total == doctest::Approx(-std::log(0.75) * 2 + 1.0 - 0.01 * h));
  // dL/dz = -(onehot - p) A + 0.01 p (log p + H); dL/dV = 0.5 (V - R).
  CHECK(dz(0, 0, 0) == doctest::Approx(0.25 * 2 + 0.01 * 0.25 * (std::log(0.25) + h)));
  CHECK(dz(0, 0, 1) == doctest::Approx(-0.25 * 2 + 0.01 * 0.75 * (std::log(0.75) + h)));
  CHECK(dv(0, 0) == doctest::Approx(-1.0));
  CHECK_THROWS_AS(a2c_loss(logits, {2}, values, returns, {}, dz, dv), config_error);
  CHECK_THROWS_AS(a2c_loss(logits, {0, 1}, values, returns, {}, dz, dv), shape_error);
}

TEST_CASE("a2c_loss: gradients match central finite differences (double)") {
  rng gen(17);
  const std::size_t steps = 3, envs = 2, n_actions = 4;
  tensor<double, 3> logits({steps, envs, n_actions});
  tensor<double, 2> values({steps, envs}), returns({steps, envs});
  for (auto& x : logits) x = gen.uniform(-2.0, 2.0);
  for (auto& x : values) x = gen.uniform(-1.0, 1.0);
  for (auto& x : returns) x = gen.uniform(-1.0, 2.0);
  std::vector<int> actions(steps * envs);
  for (auto& a : actions) a = static_cast<int>(gen.uniform_int(n_actions));
  const a2c_loss_options opt{.value_weight = 0.7, .entropy_weight = 0.05};
  tensor<double, 3> dz, scratch_z;
  tensor<double, 2> dv, scratch_v;
  a2c_loss(logits, actions, values, returns, opt, dz, dv);
  const double eps = 1e-6;
  double worst = 0;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    auto plus = logits, minus = logits;
    plus.data()[i] += eps;
    minus.data()[i] -= eps;
    const double fd = (a2c_loss(plus, actions, values, returns, opt, scratch_z, scratch_v).total -
                       a2c_loss(minus, actions, values, returns, opt, scratch_z, scratch_v).total) /
                      (2 * eps);
    worst = std::max(worst, std::abs(fd - dz.data()[i]));
  }
  CHECK(worst < 1e-8);
  // The critic's gradient is that of value_weight * value (advantages are held constant for the
  // policy term, as in A3C).
  worst = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    auto plus = values, minus = values;
    plus.data()[i] += eps;
    minus.data()[i] -= eps;
    const double fd = opt.value_weight *
                      (a2c_loss(logits, actions, plus, returns, opt, scratch_z, scratch_v).value -
                       a2c_loss(logits, actions, minus, returns, opt, scratch_z, scratch_v).value) /
                      (2 * eps);
    worst = std::max(worst, std::abs(fd - dv.data()[i]));
  }
  CHECK(worst < 1e-8);
}
