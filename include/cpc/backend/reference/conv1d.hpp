#pragma once
/// reference kernels of the 1-D convolution ops (backend/op/conv1d.hpp): the definitions as
/// plain loops over every index, accumulating in double, one thread. The test oracle.
#include <cstddef>

#include "cpc/backend/op/conv1d.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc::ops {

namespace reference_detail {
/// Input frame u = t * stride + k - padding read by output t at tap k; -1 when it is padding.
inline std::ptrdiff_t conv1d_input_frame(const conv1d_shape& s, std::size_t t, std::size_t k) {
  const auto u = static_cast<std::ptrdiff_t>(t * s.stride + k) - static_cast<std::ptrdiff_t>(s.padding);
  return u >= 0 && u < static_cast<std::ptrdiff_t>(s.t_in) ? u : -1;
}
}  // namespace reference_detail

/// reference conv1d_forward: y[b, t, o] = bias[o] + sum_{k, c} weight[o, c, k] x[b, u, c], in double.
template <class T>
void run(reference, const conv1d_forward_args<T>& a, conv1d_workspace<reference, T>&) {
  const conv1d_shape& s = a.shape;
  const std::size_t t_out = s.t_out();
  for (std::size_t b = 0; b < s.batch; ++b)
    for (std::size_t t = 0; t < t_out; ++t)
      for (std::size_t o = 0; o < s.c_out; ++o) {
        double acc = a.bias != nullptr ? static_cast<double>(a.bias[o]) : 0.0;
        for (std::size_t k = 0; k < s.kernel; ++k) {
          const std::ptrdiff_t u = reference_detail::conv1d_input_frame(s, t, k);
          if (u < 0) continue;
          for (std::size_t c = 0; c < s.c_in; ++c)
            acc += static_cast<double>(a.weight[(o * s.c_in + c) * s.kernel + k]) *
                   static_cast<double>(a.x[(b * s.t_in + static_cast<std::size_t>(u)) * s.c_in + c]);
        }
        a.y[(b * t_out + t) * s.c_out + o] = static_cast<T>(acc);
      }
}

/// reference conv1d_backward_params: each d weight and d bias element summed in double over
/// (b, t) in order, then added to the old value.
template <class T>
void run(reference, const conv1d_backward_params_args<T>& a, conv1d_workspace<reference, T>&) {
  const conv1d_shape& s = a.shape;
  const std::size_t t_out = s.t_out();
  for (std::size_t o = 0; o < s.c_out; ++o) {
    for (std::size_t c = 0; c < s.c_in; ++c)
      for (std::size_t k = 0; k < s.kernel; ++k) {
        double acc = 0;
        for (std::size_t b = 0; b < s.batch; ++b)
          for (std::size_t t = 0; t < t_out; ++t) {
            const std::ptrdiff_t u = reference_detail::conv1d_input_frame(s, t, k);
            if (u < 0) continue;
            acc += static_cast<double>(a.dy[(b * t_out + t) * s.c_out + o]) *
                   static_cast<double>(a.x[(b * s.t_in + static_cast<std::size_t>(u)) * s.c_in + c]);
          }
        T& dw = a.d_weight[(o * s.c_in + c) * s.kernel + k];
        dw = static_cast<T>(static_cast<double>(dw) + acc);
      }
    if (a.d_bias == nullptr) continue;
    double acc = 0;
    for (std::size_t r = 0; r < s.batch * t_out; ++r) acc += static_cast<double>(a.dy[r * s.c_out + o]);
    a.d_bias[o] = static_cast<T>(static_cast<double>(a.d_bias[o]) + acc);
  }
}

/// reference conv1d_backward_input: dx[b, u, c] = sum over taps k (and the output t whose tap k
/// reads u) and over o of dy[b, t, o] weight[o, c, k], in double; frames no window reaches get 0.
template <class T>
void run(reference, const conv1d_backward_input_args<T>& a, conv1d_workspace<reference, T>&) {
  const conv1d_shape& s = a.shape;
  const std::size_t t_out = s.t_out();
  for (std::size_t b = 0; b < s.batch; ++b)
    for (std::size_t u = 0; u < s.t_in; ++u)
      for (std::size_t c = 0; c < s.c_in; ++c) {
        double acc = 0;
        for (std::size_t k = 0; k < s.kernel; ++k) {
          // The output t whose tap k reads u: t * stride = u + padding - k.
          const auto num = static_cast<std::ptrdiff_t>(u + s.padding) - static_cast<std::ptrdiff_t>(k);
          const auto stride = static_cast<std::ptrdiff_t>(s.stride);
          if (num < 0 || num % stride != 0 || static_cast<std::size_t>(num / stride) >= t_out) continue;
          const auto t = static_cast<std::size_t>(num / stride);
          for (std::size_t o = 0; o < s.c_out; ++o)
            acc += static_cast<double>(a.dy[(b * t_out + t) * s.c_out + o]) *
                   static_cast<double>(a.weight[(o * s.c_in + c) * s.kernel + k]);
        }
        a.dx[(b * s.t_in + u) * s.c_in + c] = static_cast<T>(acc);
      }
}

}  // namespace cpc::ops
