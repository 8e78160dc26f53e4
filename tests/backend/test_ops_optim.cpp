// cpu against reference for the optimiser ops (backend/op/optim.hpp): Adam and SGD updates over
// sizes around the cpu kernels' 16384-element blocks, the chunked sums of squares and the search
// for the first non-finite element.
#include <doctest/doctest.h>

#include <cpc/backend/ops.hpp>

#include <cmath>
#include <limits>
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

TEST_CASE("ops::adam_update and ops::sgd_update: cpu equals reference to 1e-6 of the scale") {
  rng gen(3);
  for (std::size_t n : {std::size_t{1}, std::size_t{17}, std::size_t{16384}, std::size_t{40000}}) {
    for (bool decay : {false, true}) {
      CAPTURE(n);
      CAPTURE(decay);
      const auto grad = random_vector(n, gen);
      auto p_cpu = random_vector(n, gen), m_cpu = random_vector(n, gen),
           v_cpu = random_vector(n, gen, 0.0, 1.0);
      auto p_ref = p_cpu, m_ref = m_cpu, v_ref = v_cpu;
      ops::adam_update_args<float> a{.n = n,
                                     .value = p_cpu.data(),
                                     .grad = grad.data(),
                                     .exp_avg = m_cpu.data(),
                                     .exp_avg_sq = v_cpu.data(),
                                     .step_size = 0.01f,
                                     .bc2_sqrt = 0.3f,
                                     .beta1 = 0.9f,
                                     .beta2 = 0.999f,
                                     .one_minus_beta1 = 0.1f,
                                     .one_minus_beta2 = 0.001f,
                                     .eps = 1e-8f,
                                     .weight_decay = 0.01f,
                                     .decay = decay};
      ops::adam_update<cpu>(a);
      a.value = p_ref.data();
      a.exp_avg = m_ref.data();
      a.exp_avg_sq = v_ref.data();
      ops::adam_update<reference>(a);
      CHECK(scaled_max_error(p_cpu, p_ref) < 1e-6);
      CHECK(scaled_max_error(m_cpu, m_ref) < 1e-6);
      CHECK(scaled_max_error(v_cpu, v_ref) < 1e-6);

      for (int mode = 0; mode < 3; ++mode) {  // plain, momentum (not first step), Nesterov (first step)
        CAPTURE(mode);
        auto q_cpu = random_vector(n, gen), b_cpu = random_vector(n, gen);
        auto q_ref = q_cpu, b_ref = b_cpu;
        ops::sgd_update_args<float> s{.n = n,
                                      .value = q_cpu.data(),
                                      .grad = grad.data(),
                                      .momentum_buffer = mode == 0 ? nullptr : b_cpu.data(),
                                      .lr = 0.05f,
                                      .weight_decay = 0.01f,
                                      .momentum = 0.9f,
                                      .keep = 0.8f,
                                      .decay = decay,
                                      .first = mode == 2,
                                      .nesterov = mode == 2};
        ops::sgd_update<cpu>(s);
        s.value = q_ref.data();
        s.momentum_buffer = mode == 0 ? nullptr : b_ref.data();
        ops::sgd_update<reference>(s);
        CHECK(scaled_max_error(q_cpu, q_ref) < 1e-6);
        CHECK(scaled_max_error(b_cpu, b_ref) < 1e-6);
      }
    }
  }
}

TEST_CASE("ops::sum_squares and ops::find_nonfinite: cpu equals reference") {
  rng gen(4);
  for (std::size_t n : {std::size_t{1}, std::size_t{100}, std::size_t{40000}}) {
    CAPTURE(n);
    auto x = random_vector(n, gen);
    const std::size_t chunk = 16384, chunks = (n + chunk - 1) / chunk;
    std::vector<double> s_cpu(chunks, -1.0), s_ref(chunks, -2.0);
    ops::sum_squares<cpu>(ops::sum_squares_args<float>{n, x.data(), chunk, s_cpu.data()});
    ops::sum_squares<reference>(ops::sum_squares_args<float>{n, x.data(), chunk, s_ref.data()});
    CHECK(s_cpu == s_ref);  // both sum the squares in double in index order
    double total = 0;
    for (float v : x) total += static_cast<double>(v) * v;
    double parts = 0;
    for (double v : s_cpu) parts += v;
    CHECK(parts == doctest::Approx(total).epsilon(1e-12));

    std::size_t f_cpu = 7, f_ref = 7;
    ops::find_nonfinite<cpu>(ops::find_nonfinite_args<float>{n, x.data(), &f_cpu});
    ops::find_nonfinite<reference>(ops::find_nonfinite_args<float>{n, x.data(), &f_ref});
    CHECK(f_cpu == n);
    CHECK(f_ref == n);
    x[n - 1] = std::numeric_limits<float>::infinity();
    x[n / 2] = std::nanf("");  // the first one wins, even across blocks
    ops::find_nonfinite<cpu>(ops::find_nonfinite_args<float>{n, x.data(), &f_cpu});
    ops::find_nonfinite<reference>(ops::find_nonfinite_args<float>{n, x.data(), &f_ref});
    CHECK(f_cpu == n / 2);
    CHECK(f_ref == n / 2);
  }
}
