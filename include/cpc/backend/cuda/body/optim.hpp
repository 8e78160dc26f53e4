#pragma once
/// Bodies of the CUDA backend's optimiser ops (backend/op/optim.hpp), written once for device and
/// host: the Adam and SGD updates of one scalar (in double, as backend/reference/optim.hpp), the
/// sum of squares of one lane's share of a chunk, and the finiteness test.
#include <cstddef>

#include "cpc/backend/cuda/hd.hpp"
#include "cpc/backend/op/optim.hpp"

namespace cpc::cuda_body {

/// adam_update, scalar i (torch.optim.Adam, amsgrad = False).
template <class T>
CPC_HD void element(const ops::adam_update_args<T>& a, std::size_t i) {
  const double p = static_cast<double>(a.value[i]);
  const double g = a.decay ? static_cast<double>(a.grad[i]) + static_cast<double>(a.weight_decay) * p
                           : static_cast<double>(a.grad[i]);
  const double m = static_cast<double>(a.beta1) * static_cast<double>(a.exp_avg[i]) +
                   static_cast<double>(a.one_minus_beta1) * g;
  const double v = static_cast<double>(a.beta2) * static_cast<double>(a.exp_avg_sq[i]) +
                   static_cast<double>(a.one_minus_beta2) * g * g;
  a.exp_avg[i] = static_cast<T>(m);
  a.exp_avg_sq[i] = static_cast<T>(v);
  a.value[i] =
      static_cast<T>(p - static_cast<double>(a.step_size) * m /
                             (hd_sqrt(v) / static_cast<double>(a.bc2_sqrt) + static_cast<double>(a.eps)));
}

/// sgd_update, scalar i (torch.optim.SGD with momentum, dampening and Nesterov).
template <class T>
CPC_HD void element(const ops::sgd_update_args<T>& a, std::size_t i) {
  const double p = static_cast<double>(a.value[i]);
  const double d = a.decay ? static_cast<double>(a.grad[i]) + static_cast<double>(a.weight_decay) * p
                           : static_cast<double>(a.grad[i]);
  const double lr = static_cast<double>(a.lr);
  if (a.momentum_buffer == nullptr) {
    a.value[i] = static_cast<T>(p - lr * d);
    return;
  }
  const double mom = static_cast<double>(a.momentum);
  const double b =
      a.first ? d : mom * static_cast<double>(a.momentum_buffer[i]) + static_cast<double>(a.keep) * d;
  a.momentum_buffer[i] = static_cast<T>(b);
  a.value[i] = static_cast<T>(p - lr * (a.nesterov ? d + mom * b : b));
}

/// sum_squares: lane `lane` of `lanes`' share of chunk c, sum of x[i]^2 in double over
/// i = c * chunk + lane, + lanes, ... (the lanes' shares are then summed by a fixed tree).
template <class T>
CPC_HD double sum_squares_lane(const ops::sum_squares_args<T>& a, std::size_t c, std::size_t lane,
                               std::size_t lanes) {
  const std::size_t begin = c * a.chunk, end = begin + a.chunk < a.n ? begin + a.chunk : a.n;
  double s = 0;
  for (std::size_t i = begin + lane; i < end; i += lanes)
    s += static_cast<double>(a.x[i]) * static_cast<double>(a.x[i]);
  return s;
}

/// find_nonfinite: whether x[i] is NaN or infinite.
template <class T>
CPC_HD bool nonfinite_at(const ops::find_nonfinite_args<T>& a, std::size_t i) {
  return !hd_isfinite(a.x[i]);
}

}  // namespace cpc::cuda_body
