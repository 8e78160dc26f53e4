#pragma once
/// Bodies of the CUDA backend's activation ops (backend/op/activation.hpp), one element each,
/// written once for device and host (the same expressions as backend/reference/activation.hpp).
#include <cstddef>

#include "cpc/backend/cuda/hd.hpp"
#include "cpc/backend/op/activation.hpp"

namespace cpc::cuda_body {

/// relu_forward, element i: 0 where x < 0, else x (NaN stays NaN, as torch.relu).
template <class T>
CPC_HD void element(const ops::relu_forward_args<T>& a, std::size_t i) {
  a.y[i] = a.x[i] < T(0) ? T(0) : a.x[i];
}

/// relu_backward, element i: dy where y > 0, else 0.
template <class T>
CPC_HD void element(const ops::relu_backward_args<T>& a, std::size_t i) {
  a.dx[i] = a.y[i] > T(0) ? a.dy[i] : T(0);
}

/// add_where_positive, element i: y += x where gate > 0 (adds 0 elsewhere, as the reference).
template <class T>
CPC_HD void element(const ops::add_where_positive_args<T>& a, std::size_t i) {
  a.y[i] += a.gate[i] > T(0) ? a.x[i] : T(0);
}

}  // namespace cpc::cuda_body
