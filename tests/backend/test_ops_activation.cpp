// cpu against reference for the activation ops (backend/op/activation.hpp): sizes of 0, 1, one
// partial chunk and several 2^15-element task chunks plus a remainder, exact zeros in the input,
// outputs pre-filled with NaN. Both are exact (no rounding), so the backends must agree bit for bit.
#include <doctest/doctest.h>

#include <cpc/backend/ops.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "support/backend_parity.hpp"

using namespace cpc;
using namespace cpc::testing;

TEST_CASE("ops::relu_*: cpu equals reference exactly, every element written") {
  rng gen(3);
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{1000}, (std::size_t{1} << 15) * 3 + 17}) {
    CAPTURE(n);
    std::vector<float> x(n), dy(n);
    for (std::size_t i = 0; i < n; ++i) {
      x[i] = i % 7 == 0 ? 0.0f : static_cast<float>(gen.uniform(-1.0, 1.0));  // exact zeros: gradient 0
      dy[i] = static_cast<float>(gen.uniform(-1.0, 1.0));
    }
    std::vector<float> y_cpu(n, NAN), y_ref(n, NAN);
    ops::relu_forward<cpu>(ops::relu_forward_args<float>{.n = n, .x = x.data(), .y = y_cpu.data()});
    ops::relu_forward<reference>(ops::relu_forward_args<float>{.n = n, .x = x.data(), .y = y_ref.data()});
    CHECK(y_cpu == y_ref);
    bool forward_ok = true;
    for (std::size_t i = 0; i < n; ++i) forward_ok = forward_ok && y_ref[i] == (x[i] > 0 ? x[i] : 0.0f);
    CHECK(forward_ok);

    std::vector<float> dx_cpu(n, NAN), dx_ref(n, NAN);
    ops::relu_backward<cpu>(
        ops::relu_backward_args<float>{.n = n, .y = y_cpu.data(), .dy = dy.data(), .dx = dx_cpu.data()});
    ops::relu_backward<reference>(
        ops::relu_backward_args<float>{.n = n, .y = y_ref.data(), .dy = dy.data(), .dx = dx_ref.data()});
    CHECK(dx_cpu == dx_ref);
    bool backward_ok = true;
    for (std::size_t i = 0; i < n; ++i) backward_ok = backward_ok && dx_ref[i] == (x[i] > 0 ? dy[i] : 0.0f);
    CHECK(backward_ok);
  }
}

TEST_CASE("ops::relu_forward: works in place (y == x) on both backends") {
  std::vector<double> a{-2, 0, 3, -0.5}, b = a;
  ops::relu_forward<cpu>(ops::relu_forward_args<double>{.n = 4, .x = a.data(), .y = a.data()});
  ops::relu_forward<reference>(ops::relu_forward_args<double>{.n = 4, .x = b.data(), .y = b.data()});
  CHECK(a == std::vector<double>{0, 0, 3, 0});
  CHECK(b == a);
}

namespace {
std::vector<float> signed_random_vector(std::size_t n, rng& gen) {
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(gen.uniform(-1.0, 1.0));
  if (n > 3) {
    v[0] = 0.0f;
    v[1] = -0.0f;
    v[2] = std::nanf("");
  }
  return v;
}
// Equal bit patterns (so NaN == NaN and -0 != +0).
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}
}  // namespace

TEST_CASE("ops::add_where_positive: cpu equals reference bit for bit; y += x where gate > 0") {
  rng gen(2);
  for (std::size_t n : {std::size_t{1}, std::size_t{5}, std::size_t{1} << 15, (std::size_t{1} << 15) + 7}) {
    CAPTURE(n);
    const auto gate = signed_random_vector(n, gen), x = signed_random_vector(n, gen),
               y0 = signed_random_vector(n, gen);
    auto y_cpu = y0, y_ref = y0;
    ops::add_where_positive<cpu>(
        ops::add_where_positive_args<float>{.n = n, .gate = gate.data(), .x = x.data(), .y = y_cpu.data()});
    ops::add_where_positive<reference>(
        ops::add_where_positive_args<float>{.n = n, .gate = gate.data(), .x = x.data(), .y = y_ref.data()});
    CHECK(same_bits(y_cpu, y_ref));
    for (std::size_t i = 3; i < n; ++i) CHECK(y_cpu[i] == (gate[i] > 0 ? y0[i] + x[i] : y0[i]));
  }
}
