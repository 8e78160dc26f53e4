// cpu against reference for ops::rmsprop_update (backend/op/optim.hpp): plain, centered, momentum
// and both, with and without weight decay, over sizes around the cpu kernel's 16384-element blocks.
#include <doctest/doctest.h>

#include <cpc/backend/ops.hpp>

#include <vector>

#include "support/backend_parity.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

std::vector<float> random_vector(std::size_t n, rng& gen, double lo = -1.0, double hi = 1.0) {
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(gen.uniform(lo, hi));
  return v;
}

}  // namespace

TEST_CASE("ops::rmsprop_update: cpu equals reference to 1e-6 of the scale") {
  rng gen(5);
  for (std::size_t n : {std::size_t{1}, std::size_t{17}, std::size_t{16384}, std::size_t{40000}}) {
    for (int mode = 0; mode < 4; ++mode) {  // bit 0: centered, bit 1: momentum
      for (bool decay : {false, true}) {
        CAPTURE(n);
        CAPTURE(mode);
        CAPTURE(decay);
        const bool centered = (mode & 1) != 0, momentum = (mode & 2) != 0;
        const auto grad = random_vector(n, gen);
        auto p_cpu = random_vector(n, gen), s_cpu = random_vector(n, gen, 0.5, 1.0),
             a_cpu = random_vector(n, gen, -0.5, 0.5), b_cpu = random_vector(n, gen);
        auto p_ref = p_cpu, s_ref = s_cpu, a_ref = a_cpu, b_ref = b_cpu;
        ops::rmsprop_update_args<float> r{.n = n,
                                          .value = p_cpu.data(),
                                          .grad = grad.data(),
                                          .square_avg = s_cpu.data(),
                                          .grad_avg = centered ? a_cpu.data() : nullptr,
                                          .momentum_buffer = momentum ? b_cpu.data() : nullptr,
                                          .lr = 0.01f,
                                          .alpha = 0.99f,
                                          .one_minus_alpha = 0.01f,
                                          .eps = 1e-5f,
                                          .weight_decay = 0.01f,
                                          .momentum = 0.9f,
                                          .decay = decay};
        ops::rmsprop_update<cpu>(r);
        r.value = p_ref.data();
        r.square_avg = s_ref.data();
        r.grad_avg = centered ? a_ref.data() : nullptr;
        r.momentum_buffer = momentum ? b_ref.data() : nullptr;
        ops::rmsprop_update<reference>(r);
        CHECK(scaled_max_error(p_cpu, p_ref) < 1e-6);
        CHECK(scaled_max_error(s_cpu, s_ref) < 1e-6);
        CHECK(scaled_max_error(a_cpu, a_ref) < 1e-6);
        CHECK(scaled_max_error(b_cpu, b_ref) < 1e-6);
      }
    }
  }
}
