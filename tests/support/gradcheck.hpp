#pragma once
// Finite-difference gradient checks in double precision, shared by every layer test.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <string>

#include <cpc/core/random.hpp>
#include <cpc/core/tensor.hpp>

namespace cpc::testing {

/// Norm-wise relative error ||a - n|| / max(||a||, ||n||, tiny) between an analytic gradient `a`
/// and central differences n_i = (L(x + h e_i) - L(x - h e_i)) / 2h of `loss`, which recomputes
/// the scalar loss from the current values at `x` (perturbed in place and restored).
inline double gradient_error(const std::function<double()>& loss, double* x, std::size_t n,
                             const double* analytic, double h = 1e-6) {
  double diff2 = 0, a2 = 0, n2 = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double lp = loss();
    x[i] = saved - h;
    const double lm = loss();
    x[i] = saved;
    const double num = (lp - lm) / (2 * h);
    diff2 += (num - analytic[i]) * (num - analytic[i]);
    a2 += analytic[i] * analytic[i];
    n2 += num * num;
  }
  return std::sqrt(diff2) / std::max({std::sqrt(a2), std::sqrt(n2), 1e-30});
}

/// Fills a tensor with U(-scale, scale) from `gen`.
template <class Tensor>
void fill_uniform(Tensor& t, rng& gen, double scale = 1.0) {
  for (auto& v : t) v = static_cast<typename Tensor::value_type>(gen.uniform(-scale, scale));
}

/// sum(y * r): a scalar loss whose gradient with respect to y is exactly r.
template <class A, class B>
double project(const A& y, const B& r) {
  double s = 0;
  auto it = r.begin();
  for (auto v : y) s += static_cast<double>(v) * static_cast<double>(*it++);
  return s;
}

}  // namespace cpc::testing
