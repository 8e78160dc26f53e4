// Episode segments, the CPC auxiliary loss's masking at episode boundaries, and the A2C learner
// (include/cpc/rl/segments.hpp, include/cpc/rl/agent.hpp).
#include <doctest/doctest.h>

#include <cpc/loss/info_nce.hpp>
#include <cpc/rl/agent.hpp>
#include <cpc/rl/env/cue_corridor.hpp>
#include <cpc/rl/segments.hpp>

#include <cmath>
#include <vector>

using namespace cpc;
using namespace cpc::rl;

TEST_CASE("episode_segments: cut at episode ends; pack and unpack are inverse") {
  // 4 steps, 2 envs: env 0 ends at steps 1 and 3, env 1 never.
  const tensor<float, 2> dones = {{0, 0}, {1, 0}, {0, 0}, {1, 0}};
  const auto s = episode_segments(dones);
  REQUIRE(s.size() == 3);
  CHECK((s[0].env == 0 && s[0].start == 0 && s[0].length == 2));
  CHECK((s[1].env == 0 && s[1].start == 2 && s[1].length == 2));
  CHECK((s[2].env == 1 && s[2].start == 0 && s[2].length == 4));
  CHECK(segment_lengths(s) == std::vector<std::size_t>{2, 2, 4});
  std::vector<float> frames(4 * 2 * 3);
  for (std::size_t i = 0; i < frames.size(); ++i) frames[i] = static_cast<float>(i);
  tensor3<float> packed;
  pack_segments(frames.data(), 4, 2, 3, s, packed);
  CHECK(packed.shape(0) == 3);
  CHECK(packed(1, 0, 0) == frames[(2 * 2 + 0) * 3]);  // segment 1 starts at step 2 of env 0
  CHECK(packed(2, 3, 2) == frames[(3 * 2 + 1) * 3 + 2]);
  CHECK(packed(0, 2, 0) == 0.0f);  // padding
  std::vector<float> back(frames.size(), -1.0f);
  unpack_segments(packed, 2, s, back.data());
  CHECK(back == frames);
}

TEST_CASE("CPC auxiliary loss: no prediction crosses an episode boundary") {
  // 6 steps, 2 envs; env 0's episode ends with step 2. Packed into segments with lengths as masks.
  const std::size_t steps = 6, envs = 2, D = 4, H = 3, K = 3;
  tensor<float, 2> dones({steps, envs}, 0.0f);
  dones(2, 0) = 1;
  const auto seg = episode_segments(dones);
  REQUIRE(segment_lengths(seg) == std::vector<std::size_t>{3, 3, 6});
  rng gen(4);
  std::vector<float> z(steps * envs * D), c(steps * envs * H);
  for (auto& x : z) x = gen.uniform(-1.0f, 1.0f);
  for (auto& x : c) x = gen.uniform(-1.0f, 1.0f);
  tensor3<float> zp, cp;
  pack_segments(z.data(), steps, envs, D, seg, zp);
  pack_segments(c.data(), steps, envs, H, seg, cp);
  info_nce<float> loss({.context_dim = H, .latent_dim = D, .steps = K, .negatives = 5}, gen);
  batch_info info{.lengths = segment_lengths(seg)};
  tensor3<float> dz, dc;
  const auto r = loss.compute(zp, cp, info, gen, &dz, &dc);
  // Terms of step k: sum over segments of max(0, length - k): (2 + 2 + 5, 1 + 1 + 4, 0 + 0 + 3).
  CHECK(r.terms == std::vector<std::size_t>{9, 6, 3});
  // The last frame of a segment predicts nothing: its context gradient is zero (also at the
  // boundary inside env 0, frame 2, whose next frame belongs to the next episode).
  for (std::size_t h = 0; h < H; ++h) {
    CHECK(dc(0, 2, h) == 0.0f);
    CHECK(dc(1, 2, h) == 0.0f);
    CHECK(dc(2, 5, h) == 0.0f);
    CHECK(dc(0, 1, h) != 0.0f);
  }
  // Fixed negatives: changing the context of the frame before the boundary leaves the loss unchanged.
  const auto negatives = loss.sampler().indices();
  cp(0, 2, 0) += 1.0f;
  CHECK(loss.compute(zp, cp, info, negatives, nullptr, nullptr).loss ==
        doctest::Approx(r.loss).epsilon(1e-12));
  cp(0, 1, 0) += 1.0f;
  CHECK(loss.compute(zp, cp, info, negatives, nullptr, nullptr).loss !=
        doctest::Approx(r.loss).epsilon(1e-6));
}

TEST_CASE("a2c_learner: updates are finite and replay identically from the seed, with and without CPC") {
  auto run = [](double cpc_weight) {
    vector_env<cue_corridor> envs(4, 3, {.length = 3, .max_steps = 8});
    a2c_learner<cue_corridor> learner(
        envs, {.conv_channels = 4, .latent_dim = 8, .hidden_size = 8},
        {.rollout = 6, .cpc_weight = cpc_weight, .cpc_steps = 4, .cpc_negatives = 4}, 11);
    std::vector<double> trace;
    for (int u = 0; u < 4; ++u) {
      const a2c_update_stats s = learner.update();
      CHECK(std::isfinite(s.loss.total));
      CHECK(std::isfinite(s.grad_norm));
      CHECK(s.segments >= 4);
      CHECK(s.loss.entropy > 0);
      CHECK(s.loss.entropy <= std::log(4.0) + 1e-6);
      if (cpc_weight > 0) {
        CHECK(s.cpc_loss > 0);
      } else {
        CHECK(s.cpc_loss == 0);
      }
      trace.push_back(s.loss.total);
      trace.push_back(s.cpc_loss);
    }
    CHECK(learner.env_steps() == 4 * 6 * 4);
    return trace;
  };
  CHECK(run(0) == run(0));
  const auto with = run(0.5);
  CHECK(with == run(0.5));
  CHECK(with != run(0));
}

TEST_CASE(
    "a2c_agent: every parameter's gradient of heads + CPC objective matches finite differences (double)") {
  // 4 steps x 2 envs; env 0's episode ends with step 1 (two segments); a non-zero carried state.
  const env_spec spec{"test", 3, 3, 2, 3, 10};
  rng gen(5);
  basic_a2c_agent<double> agent(spec, {.conv_channels = 2, .latent_dim = 4, .hidden_size = 3}, 2, 3, gen);
  const std::size_t steps = 4, envs = 2;
  tensor4<double> obs({steps * envs, 3, 3, 2});
  for (auto& x : obs) x = gen.uniform(0.0, 1.0);
  tensor<double, 2> dones({steps, envs}, 0.0);
  dones(1, 0) = 1;
  const auto seg = episode_segments(dones);
  tensor3<double> hc0({2, envs, 3});
  for (auto& x : hc0) x = gen.uniform(-0.5, 0.5);
  // A linear stand-in for the A2C loss: L = sum G * logits + sum g * values.
  tensor<double, 3> G({steps, envs, 3});
  tensor<double, 2> g({steps, envs});
  for (auto& x : G) x = gen.uniform(-1.0, 1.0);
  for (auto& x : g) x = gen.uniform(-1.0, 1.0);
  const double w = 0.7;
  auto objective = [&] {
    rng negatives(77);  // the same negatives every time
    double heads = 0;
    const double cpc = agent.train(obs, steps, envs, seg, hc0, w, negatives,
                                   [&](const tensor<double, 3>& lg, const tensor<double, 2>& v,
                                       tensor<double, 3>& dl, tensor<double, 2>& dv) {
                                     heads = xt::sum(lg * G)() + xt::sum(v * g)();
                                     dl = G;
                                     dv = g;
                                   });
    return heads + w * cpc;
  };
  auto params = named_parameters<double>(agent);
  CHECK(params.size() == 14);  // conv 2, fc 2, core 4, policy 2, value 2, CPC heads 2
  for (auto& [name, p] : params) p->zero_grad();
  objective();
  std::vector<array<double>> grads;
  for (auto& [name, p] : params) grads.emplace_back(p->grad);
  const double eps = 1e-6;
  for (std::size_t i = 0; i < params.size(); ++i) {
    CAPTURE(params[i].first);
    auto& v = params[i].second->value;
    double worst = 0, scale = 1e-8;
    for (std::size_t j = 0; j < v.size(); j += std::max<std::size_t>(1, v.size() / 7)) {
      const double keep = v.data()[j];
      v.data()[j] = keep + eps;
      const double up = objective();
      v.data()[j] = keep - eps;
      const double down = objective();
      v.data()[j] = keep;
      worst = std::max(worst, std::abs((up - down) / (2 * eps) - grads[i].data()[j]));
      scale = std::max(scale, std::abs(grads[i].data()[j]));
    }
    CHECK(worst / scale < 1e-5);
    CHECK(scale > 1e-8);  // every parameter receives a gradient
  }
}
