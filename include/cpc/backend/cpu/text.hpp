#pragma once
/// cpu kernels of the text ops (backend/op/text.hpp). Embedding lookup: one task per block of 256
/// tokens. Embedding backward: one task per block of 16 table columns, each walking every token in
/// order, so each gradient element is summed in token order whatever the thread count. Pooling:
/// one task per block of 64 rows. Every output element is written by one task in a fixed order:
/// results do not depend on the thread count.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "cpc/backend/op/text.hpp"
#include "cpc/backend/tags.hpp"
#include "cpc/core/threads.hpp"

namespace cpc::ops {

namespace cpu_detail {
inline constexpr std::size_t embedding_token_block = 256;
inline constexpr std::size_t embedding_column_block = 16;
inline constexpr std::size_t pool_row_block = 64;
}  // namespace cpu_detail

/// cpu embedding_forward: row copies (zeros for the padding id).
template <class T>
void run(cpu, const embedding_forward_args<T>& a) {
  const std::size_t block = cpu_detail::embedding_token_block, D = a.dim;
  parallel_for(0, (a.n + block - 1) / block, [&](std::size_t blk) {
    for (std::size_t i = blk * block; i < std::min(a.n, (blk + 1) * block); ++i) {
      T* out = a.y + i * D;
      if (a.ids[i] == a.padding)
        std::fill(out, out + D, T(0));
      else
        std::copy_n(a.table + static_cast<std::size_t>(a.ids[i]) * D, D, out);
    }
  });
}

/// cpu embedding_backward: tasks own column blocks of the table and add tokens in order.
template <class T>
void run(cpu, const embedding_backward_args<T>& a) {
  const std::size_t block = cpu_detail::embedding_column_block, D = a.dim;
  parallel_for(0, (D + block - 1) / block, [&](std::size_t blk) {
    const std::size_t d0 = blk * block, d1 = std::min(D, d0 + block);
    for (std::size_t i = 0; i < a.n; ++i) {
      if (a.ids[i] == a.padding) continue;
      T* g = a.d_table + static_cast<std::size_t>(a.ids[i]) * D;
      const T* d = a.dy + i * D;
      for (std::size_t c = d0; c < d1; ++c) g[c] += d[c];
    }
  });
}

/// cpu masked_mean_pool: per row, sums the valid steps in order in T, then multiplies by 1 / length.
template <class T>
void run(cpu, const masked_mean_pool_args<T>& a) {
  const std::size_t block = cpu_detail::pool_row_block, C = a.channels, Tn = a.time;
  parallel_for(0, (a.rows + block - 1) / block, [&](std::size_t blk) {
    for (std::size_t r = blk * block; r < std::min(a.rows, (blk + 1) * block); ++r) {
      T* out = a.y + r * C;
      std::fill(out, out + C, T(0));
      const std::size_t len = a.lengths[r];
      if (len == 0) continue;
      const T* x = a.x + r * Tn * C;
      for (std::size_t t = 0; t < len; ++t)
        for (std::size_t c = 0; c < C; ++c) out[c] += x[t * C + c];
      const T inv = T(1) / static_cast<T>(len);
      for (std::size_t c = 0; c < C; ++c) out[c] *= inv;
    }
  });
}

/// cpu masked_mean_pool_backward.
template <class T>
void run(cpu, const masked_mean_pool_backward_args<T>& a) {
  const std::size_t block = cpu_detail::pool_row_block, C = a.channels, Tn = a.time;
  parallel_for(0, (a.rows + block - 1) / block, [&](std::size_t blk) {
    for (std::size_t r = blk * block; r < std::min(a.rows, (blk + 1) * block); ++r) {
      T* dx = a.dx + r * Tn * C;
      const std::size_t len = a.lengths[r];
      std::fill(dx + len * C, dx + Tn * C, T(0));
      if (len == 0) continue;
      const T inv = T(1) / static_cast<T>(len);
      const T* dy = a.dy + r * C;
      for (std::size_t t = 0; t < len; ++t)
        for (std::size_t c = 0; c < C; ++c) dx[t * C + c] = dy[c] * inv;
    }
  });
}

}  // namespace cpc::ops
