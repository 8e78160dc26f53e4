// The op-level audio CPC harness that the CUDA training test and benchmark drive
// (tests/cuda/op_model.hpp), checked on the host so that a cuda-vs-cpu agreement on a GPU means
// agreement on the right gradient: its backward equals central differences of its loss (reference
// backend, float parameters, step 1e-3, same negatives), cpu equals reference, and Adam lowers the
// loss on a repeated batch. Needs no GPU.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "cuda/op_model.hpp"
#include "support/backend_parity.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

op_cpc_options tiny() {
  op_cpc_options o;
  o.batch = 2;
  o.samples = 640;
  o.negatives = 6;
  return o;
}

std::vector<float> audio_for(const op_cpc_options& o) {
  rng gen(3);
  std::vector<float> a(o.batch * o.samples);
  for (auto& v : a) v = static_cast<float>(gen.uniform(-1.0, 1.0));
  return a;
}

}  // namespace

TEST_CASE(
    "op model: the gradient equals central differences of the loss (12 largest coordinates, 1e-3 steps)") {
  const auto o = tiny();
  const auto audio = audio_for(o);
  op_cpc<reference> m(o);
  m.reseed(99);
  const double loss = m.train_step(audio, false);
  CHECK(loss == doctest::Approx(std::log(7.0)).epsilon(0.2));  // near chance: log(N + 1)
  const auto g = m.grads();
  const auto v0 = m.values();
  std::vector<std::size_t> order(g.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + 12, order.end(),
                    [&](std::size_t a, std::size_t b) { return std::abs(g[a]) > std::abs(g[b]); });
  for (std::size_t r = 0; r < 12; ++r) {
    const std::size_t i = order[r];
    CAPTURE(i);
    const double e = 1e-3;
    auto v = v0;
    v[i] = static_cast<float>(v0[i] + e);
    m.set_values(v);
    m.reseed(99);
    const double up = m.train_step(audio, false);
    v[i] = static_cast<float>(v0[i] - e);
    m.set_values(v);
    m.reseed(99);
    const double down = m.train_step(audio, false);
    const double fd = (up - down) / (static_cast<double>(v0[i] + static_cast<float>(e)) -
                                     static_cast<double>(v0[i] - static_cast<float>(e)));
    CHECK(std::abs(fd - g[i]) < 3e-4 + 0.02 * std::abs(g[i]));
  }
}

TEST_CASE("op model: cpu equals reference over three training steps, and training lowers the loss") {
  const auto o = tiny();
  const auto audio = audio_for(o);
  op_cpc<cpu> a(o);
  op_cpc<reference> b(o);
  for (int s = 0; s < 3; ++s) {
    const double la = a.train_step(audio), lb = b.train_step(audio);
    CHECK(la == doctest::Approx(lb).epsilon(1e-4));
  }
  CHECK(scaled_max_error(a.values(), b.values()) < 1e-3);
  double first = 0, last = 0;
  op_cpc<cpu> t(o);
  for (int s = 0; s < 40; ++s) {
    const double l = t.train_step(audio);
    if (s == 0) first = l;
    last = l;
  }
  CHECK(last < 0.5 * first);
}
