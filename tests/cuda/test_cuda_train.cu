// A few training steps of the paper's audio model structure (tests/cuda/op_model.hpp: strided conv
// encoder with channel norm + ReLU, GRU, K heads, InfoNCE, Adam on one flat buffer) on cuda against
// the same steps on cpu: the same seed gives the same host-drawn negatives, the first step's whole
// gradient agrees to 1e-3 (norm-wise relative), and five steps' losses to 1e-3 relative. Needs a GPU:
// without one the executable exits 77 (skipped). Also cpc::adam / cpc::sgd / clip_grad_norm over a
// device parameter store against the same on cpu.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include <cpc/layers/linear.hpp>
#include <cpc/optim/adam.hpp>
#include <cpc/optim/clip.hpp>
#include <cpc/optim/sgd.hpp>

#include "cuda/device_parity.hpp"
#include "cuda/op_model.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

/// ||a - b|| / ||b|| over two equally long vectors.
double relative_norm_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 1e-300;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    num += d * d;
    den += static_cast<double>(b[i]) * static_cast<double>(b[i]);
  }
  return std::sqrt(num / den);
}

std::vector<float> random_audio(std::size_t n, rng& gen) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = static_cast<float>(0.5 * std::sin(0.01 * static_cast<double>(i % 997)) + gen.uniform(-0.3, 0.3));
  return v;
}

}  // namespace

TEST_CASE(
    "cuda training: five steps of the audio model structure follow cpu (gradients and losses to 1e-3)") {
  const op_cpc_options o;  // 4 x 1280 samples, two convs (160x... 20x), 32 channels, GRU 24, K = 3, N = 8
  op_cpc<cpu> host(o);
  op_cpc<cpc::cuda> device(o);
  REQUIRE(host.parameter_count() == device.parameter_count());
  CHECK(host.values() == device.values());  // same initial parameters
  rng gen(11);
  for (int step = 0; step < 5; ++step) {
    CAPTURE(step);
    const auto audio = random_audio(o.batch * o.samples, gen);
    const double loss_cpu = host.train_step(audio);
    const double loss_cuda = device.train_step(audio);
    CHECK(host.negatives() == device.negatives());
    CHECK(std::isfinite(loss_cuda));
    CHECK(loss_cuda == doctest::Approx(loss_cpu).epsilon(1e-3));
    if (step == 0) {
      const auto g_cpu = host.grads(), g_cuda = device.grads();
      CHECK(relative_norm_error(g_cuda, g_cpu) < 1e-3);
      CHECK(relative_norm_error(device.values(), host.values()) < 1e-3);
    }
  }
  CHECK(relative_norm_error(device.values(), host.values()) < 1e-3);
}

TEST_CASE(
    "cuda optimisers: cpc::adam, cpc::sgd, clip_grad_norm and the finiteness check on a device store equal "
    "cpu") {
  rng g1(4), g2(4), gen(9);
  const linear_options lo{.in_features = 300, .out_features = 70};
  linear<float, cpu> a(lo, g1);
  linear<float, cpu> b(lo, g2);
  parameter_store<float, cpu> hs(a);
  parameter_store<float, cpc::cuda> ds(b);
  REQUIRE(hs.size() == ds.size());
  cpc::adam<float, cpu> host_adam(hs.parameters(), {.learning_rate = 1e-2, .weight_decay = 1e-3});
  cpc::adam<float, cpc::cuda> dev_adam(ds.parameters(), {.learning_rate = 1e-2, .weight_decay = 1e-3});
  for (int step = 0; step < 3; ++step) {
    CAPTURE(step);
    const auto grad = random_values(hs.size(), gen, 2.0);
    std::copy(grad.begin(), grad.end(), hs.grads());
    ds.grads_from_host(grad.data());
    const double n_cpu = clip_grad_norm<float, cpu>(hs.parameters(), 1.0);
    const double n_cuda = clip_grad_norm<float, cpc::cuda>(ds.parameters(), 1.0);
    CHECK(n_cuda == doctest::Approx(n_cpu).epsilon(1e-12));
    CHECK(scaled_max_error(ds.grads_to_host(), std::vector<float>(hs.grads(), hs.grads() + hs.size())) <
          1e-6);
    host_adam.step();
    dev_adam.step();
    CHECK(scaled_max_error(ds.values_to_host(), std::vector<float>(hs.values(), hs.values() + hs.size())) <
          1e-6);
  }
  cpc::sgd<float, cpu> host_sgd(hs.parameters(), {.learning_rate = 0.1, .momentum = 0.9, .nesterov = true});
  cpc::sgd<float, cpc::cuda> dev_sgd(ds.parameters(),
                                     {.learning_rate = 0.1, .momentum = 0.9, .nesterov = true});
  for (int step = 0; step < 2; ++step) {
    host_sgd.step();
    dev_sgd.step();
  }
  CHECK(scaled_max_error(ds.values_to_host(), std::vector<float>(hs.values(), hs.values() + hs.size())) <
        1e-6);
  dev_sgd.zero_grad();
  CHECK(ds.grads_to_host() == std::vector<float>(ds.size(), 0.0f));
  CHECK(all_finite<float, cpc::cuda>(ds.parameters()));
  auto bad = std::vector<float>(ds.size(), 0.0f);
  const std::size_t bias_at = static_cast<std::size_t>(b.bias().grad.data() - ds.grads());
  bad[bias_at + 5] = std::nanf("");
  ds.grads_from_host(bad.data());
  const auto loc = find_nonfinite_gradient<float, cpc::cuda>(ds.parameters());
  CHECK(loc.found);
  CHECK(loc.param == 1);
  CHECK(loc.element == 5);
}
