// A few training steps of the paper's audio model structure (tests/cuda/op_model.hpp: strided conv
// encoder with channel norm + ReLU, GRU, K heads, InfoNCE, Adam on one flat buffer) on cuda against
// the same steps on cpu: the same seed gives the same host-drawn negatives, the first step's whole
// gradient agrees to 1e-3 (norm-wise relative), and five steps' losses to 1e-3 relative. Needs a GPU:
// without one the executable exits 77 (skipped).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

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
