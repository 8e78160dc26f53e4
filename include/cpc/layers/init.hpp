#pragma once
/// PyTorch's default initialisations, so that a freshly built layer has the same distribution
/// as its torch.nn counterpart. Source: torch.nn.Linear / Conv1d.reset_parameters (kaiming
/// uniform with a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias);
/// torch.nn.GRU / LSTM (U(-1/sqrt(hidden), 1/sqrt(hidden)) for every tensor).
#include <cmath>

#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"

namespace cpc {

/// Fills `p.value` with U(-bound, bound) from `gen`, in row-major order.
template <class T>
void init_uniform(parameter<T>& p, double bound, rng& gen) {
  for (auto& v : p.value) v = static_cast<T>(gen.uniform(-bound, bound));
}

/// Fills `p.value` with N(0, std^2) from `gen`, in row-major order.
template <class T>
void init_normal(parameter<T>& p, double std, rng& gen) {
  for (auto& v : p.value) v = static_cast<T>(std * gen.normal());
}

/// The bound 1/sqrt(fan_in) of PyTorch's default Linear/Conv init. Requires fan_in > 0.
inline double default_init_bound(std::size_t fan_in) {
  return 1.0 / std::sqrt(static_cast<double>(fan_in));
}

}  // namespace cpc
