#pragma once
/// What the CUDA backend's kernel bodies (backend/cuda/body/*.hpp) need to compile both as CUDA
/// device code (nvcc) and as plain C++ (any host compiler, no CUDA toolkit): `CPC_HD` marks a
/// function `__host__ __device__` under nvcc and is empty elsewhere, and the maths helpers call
/// the CUDA math library on the device and the C library on the host, both in double.
/// Source: CUDA C++ Programming Guide, "Function Execution Space Specifiers".
#include <cmath>
#include <cstddef>

#if defined(__CUDACC__)
#define CPC_HD __host__ __device__
#else
#define CPC_HD
#endif

namespace cpc::cuda_body {

/// e^x in double.
CPC_HD inline double hd_exp(double x) {
  return ::exp(x);
}
/// Natural logarithm in double.
CPC_HD inline double hd_log(double x) {
  return ::log(x);
}
/// Hyperbolic tangent in double.
CPC_HD inline double hd_tanh(double x) {
  return ::tanh(x);
}
/// Square root in double.
CPC_HD inline double hd_sqrt(double x) {
  return ::sqrt(x);
}
/// Logistic sigmoid 1 / (1 + e^-x) in double (as the reference backend computes it).
CPC_HD inline double hd_sigmoid(double x) {
  return 1.0 / (1.0 + ::exp(-x));
}
/// Whether x is neither NaN nor infinite.
template <class T>
CPC_HD bool hd_isfinite(T x) {
#if defined(__CUDA_ARCH__)
  return isfinite(x);
#else
  return std::isfinite(x);
#endif
}
/// The larger of a and b (b when they compare equal or either is NaN, as std::max(a, b) with a first).
CPC_HD inline double hd_max(double a, double b) {
  return a < b ? b : a;
}

/// Reduction over the lanes that share one row in a row body: on the host one lane, so the sum is
/// the lane's own value. (The device kernels pass a block-wide reducer with the same call shape.)
struct serial_reducer {
  CPC_HD double operator()(double v) const { return v; }
};

}  // namespace cpc::cuda_body
