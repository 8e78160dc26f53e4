#pragma once
// cpu against reference: the same op or layer run on both backends must agree to a stated
// tolerance (the reference backend is the oracle; backend/reference/).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include <cpc/backend/ops.hpp>
#include <cpc/core/parameter.hpp>
#include <cpc/core/random.hpp>

#include <xtensor/xmath.hpp>

namespace cpc::testing {

/// The backends every layer test runs on (doctest TEST_CASE_TEMPLATE lists).
#define CPC_TEST_BACKENDS cpc::cpu, cpc::reference

/// max |a_i - b_i| / max(max |b_i|, tiny) over n elements: the error of a relative to the scale of b.
/// Infinite where exactly one of a_i, b_i is NaN (an element one side left unwritten).
template <class T>
double scaled_max_error(const T* a, const T* b, std::size_t n) {
  double num = 0, den = 1e-30;
  for (std::size_t i = 0; i < n; ++i) {
    if (std::isnan(static_cast<double>(a[i])) != std::isnan(static_cast<double>(b[i])))
      return std::numeric_limits<double>::infinity();
    num = std::max(num, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
    den = std::max(den, std::abs(static_cast<double>(b[i])));
  }
  return num / den;
}

/// `scaled_max_error` of two containers of equal size (CHECKed).
template <class A, class B>
double scaled_max_error(const A& a, const B& b) {
  CHECK(a.size() == b.size());
  return scaled_max_error(a.data(), b.data(), std::min<std::size_t>(a.size(), b.size()));
}

/// Builds `Layer<T, cpu>` and `Layer<T, reference>` from the same options and seed, runs forward
/// on `x` and backward with dy = cos(3 y) on both, and CHECKs that y, dx and every parameter
/// gradient agree within `tol` (scaled_max_error, reference as the scale). Outputs are pre-filled
/// with NaN so that a kernel that skips an element fails.
template <template <class, class> class Layer, class T, class Options, class Tensor>
void check_layer_backends(const Options& opt, const Tensor& x, double tol, std::uint64_t seed = 17) {
  rng g1(seed), g2(seed);
  Layer<T, cpu> a(opt, g1);
  Layer<T, reference> b(opt, g2);
  Tensor ya, yb, dxa, dxb;
  a.forward(x, ya);
  yb = ya;
  yb.fill(std::nan(""));
  b.forward(x, yb);
  CHECK(scaled_max_error(ya, yb) < tol);
  const Tensor dy = xt::cos(yb * T(3));
  zero_grad<T>(a);
  zero_grad<T>(b);
  a.backward(x, ya, dy, &dxa);
  dxb = dxa;
  dxb.fill(std::nan(""));
  b.backward(x, yb, dy, &dxb);
  CHECK(scaled_max_error(dxa, dxb) < tol);
  auto pa = named_parameters<T>(a);
  auto pb = named_parameters<T>(b);
  REQUIRE(pa.size() == pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) {
    CAPTURE(pa[i].first);
    CHECK(scaled_max_error(pa[i].second->grad, pb[i].second->grad) < tol);
  }
}

}  // namespace cpc::testing
