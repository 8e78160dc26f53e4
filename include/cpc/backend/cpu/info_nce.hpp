#pragma once
/// cpu kernels of the InfoNCE ops (backend/op/info_nce.hpp): the gathered dot products and
/// scaled row sums (`cpu_kernels::gather_dot`, `gather_axpy`, xsimd), one fused loop per anchor
/// block for the anchor terms, a CSR transpose for the dz scatter, and the grid transpose.
/// Rows of a gather live in one contiguous row-major buffer `base` of width `d`; `idx[i]` selects
/// row `base + idx[i] * d`. The summation order is fixed (it does not depend on threads), so
/// results are reproducible: anchors and dz rows are split into fixed blocks of 32, each written
/// by one task, and the per-step totals are summed in anchor order after the parallel loop.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include <xsimd/xsimd.hpp>

#include "cpc/backend/op/info_nce.hpp"
#include "cpc/backend/tags.hpp"
#include "cpc/core/memory.hpp"
#include "cpc/core/threads.hpp"

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

namespace cpc::ops {

namespace cpu_detail {
inline constexpr std::size_t info_nce_anchor_block = 32;  // anchors per task
inline constexpr std::size_t info_nce_row_block = 32;     // dz rows per task
}  // namespace cpu_detail

/// cpu info_nce_anchor_terms: blocks of 32 anchors in parallel; per anchor, gather_dot over the
/// N + 1 candidate rows, the log-sum-exp in double, then (with dp) the coefficients in place and
/// gather_axpy of the same rows while they are still in cache. Totals summed serially in anchor order.
template <class T>
void run(cpu, const info_nce_anchor_args<T>& g) {
  const std::size_t Tn = g.time, BT = g.batch * Tn, k = g.step, N = g.negatives, N1 = N + 1, D = g.dim;
  const std::size_t* len = g.lengths;
  const T s = g.scale;
  const double w = g.weight;
  constexpr std::size_t anchor_block = cpu_detail::info_nce_anchor_block;
  parallel_for(0, (BT + anchor_block - 1) / anchor_block, [&](std::size_t blk) {
    const std::size_t a_end = std::min(BT, (blk + 1) * anchor_block);
    for (std::size_t a = blk * anchor_block; a < a_end; ++a) {
      const std::size_t b = a / Tn, t = a % Tn;
      T* dpa = g.dp != nullptr ? g.dp + a * D : nullptr;
      if (dpa != nullptr) std::fill(dpa, dpa + D, T(0));
      if (t + k >= len[b]) continue;
      std::int32_t* cand = g.candidates + a * N1;
      T* l = g.logits + a * N1;
      cand[0] = static_cast<std::int32_t>(a + k);
      std::copy(g.negative_index + a * N, g.negative_index + (a + 1) * N, cand + 1);
      cpu_kernels::gather_dot(g.p + a * D, g.z, cand, N1, D, l);
      T best_neg = -std::numeric_limits<T>::infinity();
      for (std::size_t j = 0; j < N1; ++j) {
        l[j] *= s;
        if (j > 0) best_neg = std::max(best_neg, l[j]);
      }
      const double m = std::max(static_cast<double>(l[0]), static_cast<double>(best_neg));
      double sum = 0;
      for (std::size_t j = 0; j < N1; ++j) sum += std::exp(static_cast<double>(l[j]) - m);
      g.anchor_loss[a] = m + std::log(sum) - static_cast<double>(l[0]);
      g.anchor_hit[a] = l[0] > best_neg ? 1 : 0;
      if (dpa == nullptr) continue;
      // g_j = dloss/dl_j * s, the coefficient of z_j in dp and of p in dz_j.
      for (std::size_t j = 0; j < N1; ++j) {
        const double soft = std::exp(static_cast<double>(l[j]) - m) / sum;
        l[j] = static_cast<T>(w * (soft - (j == 0 ? 1.0 : 0.0)) * static_cast<double>(s));
      }
      cpu_kernels::gather_axpy(dpa, g.z, cand, l, N1, D);
    }
  });
  double total = 0;
  std::size_t hits = 0;
  for (std::size_t a = 0; a < BT; ++a) {
    if (a % Tn + k >= len[a / Tn]) continue;
    total += g.anchor_loss[a];
    hits += g.anchor_hit[a];
  }
  *g.loss_sum = total;
  *g.hits = hits;
}

/// cpu: the entries (anchor, coefficient) of every dz row, in CSR form.
template <class T>
struct info_nce_scatter_workspace<cpu, T> {
  host_buffer<std::size_t> row_start, fill;
  host_buffer<std::int32_t> entry_anchor;
  host_buffer<T> entry_coeff;
};

/// cpu info_nce_scatter_dz: transposes the anchor/candidate lists into per-row entry lists (CSR,
/// anchors in increasing order within a row, built serially), then blocks of 32 dz rows in
/// parallel, each row one gather_axpy over its entries.
template <class T>
void run(cpu, const info_nce_scatter_args<T>& g, info_nce_scatter_workspace<cpu, T>& ws) {
  const std::size_t Tn = g.time, BT = g.batch * Tn, k = g.step, N1 = g.negatives + 1, D = g.dim;
  const std::size_t* len = g.lengths;
  ws.row_start.assign(BT + 1, 0);
  for (std::size_t a = 0; a < BT; ++a) {
    if (a % Tn + k >= len[a / Tn]) continue;
    for (std::size_t j = 0; j < N1; ++j)
      ++ws.row_start[static_cast<std::size_t>(g.candidates[a * N1 + j]) + 1];
  }
  for (std::size_t r = 0; r < BT; ++r) ws.row_start[r + 1] += ws.row_start[r];
  ws.entry_anchor.resize(ws.row_start[BT]);
  ws.entry_coeff.resize(ws.row_start[BT]);
  ws.fill.assign(ws.row_start.begin(), ws.row_start.end() - 1);
  for (std::size_t a = 0; a < BT; ++a) {
    if (a % Tn + k >= len[a / Tn]) continue;
    for (std::size_t j = 0; j < N1; ++j) {
      const std::size_t e = ws.fill[static_cast<std::size_t>(g.candidates[a * N1 + j])]++;
      ws.entry_anchor[e] = static_cast<std::int32_t>(a);
      ws.entry_coeff[e] = g.coeff[a * N1 + j];
    }
  }
  constexpr std::size_t row_block = cpu_detail::info_nce_row_block;
  parallel_for(0, (BT + row_block - 1) / row_block, [&](std::size_t blk) {
    const std::size_t r_end = std::min(BT, (blk + 1) * row_block);
    for (std::size_t r = blk * row_block; r < r_end; ++r) {
      const std::size_t e0 = ws.row_start[r], n = ws.row_start[r + 1] - e0;
      if (n > 0)
        cpu_kernels::gather_axpy(g.dz + r * D, g.p, ws.entry_anchor.data() + e0, ws.entry_coeff.data() + e0,
                                 n, D);
    }
  });
}

/// cpu transpose_grid: one task per image, one contiguous D-row copy per patch.
template <class T>
void run(cpu, const transpose_grid_args<T>& g) {
  const std::size_t R = g.rows, C = g.cols, D = g.dim;
  parallel_for(0, g.batch, [&](std::size_t b) {
    for (std::size_t i = 0; i < R; ++i)
      for (std::size_t j = 0; j < C; ++j)
        std::copy_n(g.x + ((b * R + i) * C + j) * D, D, g.y + ((b * C + j) * R + i) * D);
  });
}

}  // namespace cpc::ops
