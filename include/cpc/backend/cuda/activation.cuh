#pragma once
/// cuda kernels of the activation ops (backend/op/activation.hpp): element-wise launches of the
/// bodies in backend/cuda/body/activation.hpp. Every pointer is device memory. Errors: `device_error`.
#include <cstddef>
#include <string>

#include "cpc/backend/cuda/body/activation.hpp"
#include "cpc/backend/cuda/launch.cuh"
#include "cpc/backend/op/activation.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc::ops {

/// cuda relu_forward.
template <class T>
void run(cuda, const relu_forward_args<T>& a) {
  cuda_detail::launch_elements("relu_forward", a, a.n, [&] { return "n=" + std::to_string(a.n); });
}

/// cuda relu_backward.
template <class T>
void run(cuda, const relu_backward_args<T>& a) {
  cuda_detail::launch_elements("relu_backward", a, a.n, [&] { return "n=" + std::to_string(a.n); });
}

/// cuda add_where_positive.
template <class T>
void run(cuda, const add_where_positive_args<T>& a) {
  cuda_detail::launch_elements("add_where_positive", a, a.n, [&] { return "n=" + std::to_string(a.n); });
}

}  // namespace cpc::ops
