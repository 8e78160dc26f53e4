#pragma once
/// CPU kernels for the gathered form of InfoNCE: dot products of one vector with rows picked by
/// index, and sums of picked rows scaled by coefficients. Rows live in one contiguous row-major
/// buffer `base` of width `d`; `idx[i]` selects row `base + idx[i] * d`. The summation order is
/// fixed (it does not depend on threads), so results are reproducible.
#include <cstddef>
#include <cstdint>

#include <xsimd/xsimd.hpp>

namespace cpc::cpu_kernels {

/// out[i] = p . base[idx[i]] for i < n; p and each row have `d` entries.
template <class T>
void gather_dot(const T* p, const T* base, const std::int32_t* idx, std::size_t n, std::size_t d, T* out) {
  using batch = xsimd::batch<T>;
  constexpr std::size_t w = batch::size;
  const std::size_t dv = d - d % w;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const T* r0 = base + static_cast<std::size_t>(idx[i]) * d;
    const T* r1 = base + static_cast<std::size_t>(idx[i + 1]) * d;
    const T* r2 = base + static_cast<std::size_t>(idx[i + 2]) * d;
    const T* r3 = base + static_cast<std::size_t>(idx[i + 3]) * d;
    batch a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0));
    for (std::size_t j = 0; j < dv; j += w) {
      const batch pv = batch::load_unaligned(p + j);
      a0 = xsimd::fma(pv, batch::load_unaligned(r0 + j), a0);
      a1 = xsimd::fma(pv, batch::load_unaligned(r1 + j), a1);
      a2 = xsimd::fma(pv, batch::load_unaligned(r2 + j), a2);
      a3 = xsimd::fma(pv, batch::load_unaligned(r3 + j), a3);
    }
    T s0 = xsimd::hadd(a0), s1 = xsimd::hadd(a1), s2 = xsimd::hadd(a2), s3 = xsimd::hadd(a3);
    for (std::size_t j = dv; j < d; ++j) {
      s0 += p[j] * r0[j];
      s1 += p[j] * r1[j];
      s2 += p[j] * r2[j];
      s3 += p[j] * r3[j];
    }
    out[i] = s0;
    out[i + 1] = s1;
    out[i + 2] = s2;
    out[i + 3] = s3;
  }
  for (; i < n; ++i) {
    const T* r = base + static_cast<std::size_t>(idx[i]) * d;
    batch a(T(0));
    for (std::size_t j = 0; j < dv; j += w)
      a = xsimd::fma(batch::load_unaligned(p + j), batch::load_unaligned(r + j), a);
    T s = xsimd::hadd(a);
    for (std::size_t j = dv; j < d; ++j) s += p[j] * r[j];
    out[i] = s;
  }
}

/// y += sum_i coeff[i] * base[idx[i]] for i < n; y and each row have `d` entries. Rows are taken
/// four at a time so that y stays in L1 and each row is streamed once.
template <class T>
void gather_axpy(T* y, const T* base, const std::int32_t* idx, const T* coeff, std::size_t n, std::size_t d) {
  using batch = xsimd::batch<T>;
  constexpr std::size_t w = batch::size;
  const std::size_t dv = d - d % w;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const T* r0 = base + static_cast<std::size_t>(idx[i]) * d;
    const T* r1 = base + static_cast<std::size_t>(idx[i + 1]) * d;
    const T* r2 = base + static_cast<std::size_t>(idx[i + 2]) * d;
    const T* r3 = base + static_cast<std::size_t>(idx[i + 3]) * d;
    const batch c0(coeff[i]), c1(coeff[i + 1]), c2(coeff[i + 2]), c3(coeff[i + 3]);
    for (std::size_t j = 0; j < dv; j += w) {
      batch acc = batch::load_unaligned(y + j);
      acc = xsimd::fma(c0, batch::load_unaligned(r0 + j), acc);
      acc = xsimd::fma(c1, batch::load_unaligned(r1 + j), acc);
      acc = xsimd::fma(c2, batch::load_unaligned(r2 + j), acc);
      acc = xsimd::fma(c3, batch::load_unaligned(r3 + j), acc);
      acc.store_unaligned(y + j);
    }
    for (std::size_t j = dv; j < d; ++j)
      y[j] += coeff[i] * r0[j] + coeff[i + 1] * r1[j] + coeff[i + 2] * r2[j] + coeff[i + 3] * r3[j];
  }
  for (; i < n; ++i) {
    const T* r = base + static_cast<std::size_t>(idx[i]) * d;
    const batch c(coeff[i]);
    for (std::size_t j = 0; j < dv; j += w) {
      batch acc = batch::load_unaligned(y + j);
      acc = xsimd::fma(c, batch::load_unaligned(r + j), acc);
      acc.store_unaligned(y + j);
    }
    for (std::size_t j = dv; j < d; ++j) y[j] += coeff[i] * r[j];
  }
}

}  // namespace cpc::cpu_kernels
