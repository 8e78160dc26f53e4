#pragma once
// Helpers of the cuda-against-cpu device tests: host vectors to device buffers and back, random
// data. Only for translation units compiled by nvcc with <cpc/backend/cuda.cuh>.
#include <cpc/backend/cuda.cuh>
#include <cpc/core/random.hpp>

#include <cmath>
#include <cstddef>
#include <vector>

#include "support/backend_parity.hpp"

namespace cpc::testing {

/// A device copy of host vector `v`.
template <class T>
device_buffer<T> on_device(const std::vector<T>& v) {
  device_buffer<T> d(v.size());
  d.upload(v.data(), v.size());
  return d;
}

/// A host copy of device buffer `d`.
template <class T>
std::vector<T> on_host(const device_buffer<T>& d) {
  return d.to_host();
}

/// n uniform values in [-scale, scale].
template <class T = float>
std::vector<T> random_values(std::size_t n, rng& gen, double scale = 1.0) {
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(gen.uniform(-scale, scale));
  return v;
}

/// `scaled_max_error` of a device buffer (read back) against a host vector.
template <class T>
double device_error_vs(const device_buffer<T>& d, const std::vector<T>& h) {
  return scaled_max_error(on_host(d), h);
}

}  // namespace cpc::testing
