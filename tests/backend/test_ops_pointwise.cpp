// cpu against reference for the element-wise ops (backend/op/pointwise.hpp): sizes around the
// cpu task block (2^15), zeros, signed zeros and NaN; outputs start as junk.
#include <doctest/doctest.h>

#include <cpc/backend/ops.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "support/backend_parity.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {
std::vector<float> random_vector(std::size_t n, rng& gen) {
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

TEST_CASE("ops::positive_part: cpu equals reference bit for bit; y = max(x, 0)") {
  rng gen(1);
  for (std::size_t n : {std::size_t{1}, std::size_t{5}, std::size_t{1} << 15, (std::size_t{1} << 15) + 7}) {
    CAPTURE(n);
    const auto x = random_vector(n, gen);
    std::vector<float> y_cpu(n, 7.0f), y_ref(n, -7.0f);
    ops::positive_part<cpu>(ops::positive_part_args<float>{.n = n, .x = x.data(), .y = y_cpu.data()});
    ops::positive_part<reference>(ops::positive_part_args<float>{.n = n, .x = x.data(), .y = y_ref.data()});
    CHECK(same_bits(y_cpu, y_ref));
    for (std::size_t i = 3; i < n; ++i) CHECK(y_cpu[i] == (x[i] > 0 ? x[i] : 0.0f));
  }
}

TEST_CASE("ops::add_where_positive: cpu equals reference bit for bit; y += x where gate > 0") {
  rng gen(2);
  for (std::size_t n : {std::size_t{1}, std::size_t{5}, std::size_t{1} << 15, (std::size_t{1} << 15) + 7}) {
    CAPTURE(n);
    const auto gate = random_vector(n, gen), x = random_vector(n, gen), y0 = random_vector(n, gen);
    auto y_cpu = y0, y_ref = y0;
    ops::add_where_positive<cpu>(
        ops::add_where_positive_args<float>{.n = n, .gate = gate.data(), .x = x.data(), .y = y_cpu.data()});
    ops::add_where_positive<reference>(
        ops::add_where_positive_args<float>{.n = n, .gate = gate.data(), .x = x.data(), .y = y_ref.data()});
    CHECK(same_bits(y_cpu, y_ref));
    for (std::size_t i = 3; i < n; ++i) CHECK(y_cpu[i] == (gate[i] > 0 ? y0[i] + x[i] : y0[i]));
  }
}
