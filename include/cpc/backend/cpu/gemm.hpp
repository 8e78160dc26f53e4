#pragma once
/// A small single-threaded SGEMM/DGEMM for the convolution shapes of the audio encoder:
/// C[m, n] (+)= sum_k A(m, k) B(k, n), with C row-major (any row stride), A read through two
/// strides (so strided im2col views and transposed operands need no copy), and B packed once into
/// column panels and then reused by every call (the weights of a layer, or a gradient shared by
/// several tasks).
///
/// Why not Eigen's product: Eigen 3.4's AVX-512 kernel holds a 48 x 4 block of C (12 of the 32
/// vector registers) and repacks both operands and allocates its buffers on every product; on
/// the encoder's shapes it reached about 60% of the FMA peak. This kernel holds a 12 x 32 block
/// (24 registers; 6 x 16 with 16 registers under AVX2), packs B once per layer call and A per
/// 12-row panel into a caller-owned buffer, and allocates nothing.
///
/// Determinism: every element of C is the sum over k in ascending order of k-blocks of fixed size
/// (`depth_block`), each block accumulated by fused multiply-adds in ascending k, whatever m, n,
/// the position of the element in its tile, or the thread that runs the call. Partial tiles run
/// the same instructions on zero-padded panels. So a row of C depends only on its row of A, B
/// and k - not on how rows are grouped into calls or tasks.
#include <algorithm>
#include <array>
#include <cstddef>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "cpc/core/memory.hpp"
#include "cpc/core/threads.hpp"

namespace cpc::cpu_kernels {

#ifndef CPC_GEMM_DEPTH
#define CPC_GEMM_DEPTH 256
#endif
#ifndef CPC_GEMM_PREFETCH_B
#define CPC_GEMM_PREFETCH_B 1
#endif
#ifndef CPC_GEMM_ROW_TILES
#define CPC_GEMM_ROW_TILES 8
#endif

namespace gemm_detail {
template <class T>
using simd = xsimd::batch<T>;
}  // namespace gemm_detail

/// Tile and block sizes of `gemm` for element type T on the target instruction set.
template <class T>
struct gemm_tile {
  /// Columns of C per micro-tile: two SIMD registers.
  static constexpr std::size_t cols = 2 * gemm_detail::simd<T>::size;
  /// Rows of C per micro-tile: 12 with 32 vector registers (AVX-512), 6 otherwise.
#if defined(__AVX512F__)
  static constexpr std::size_t rows = 12;
#else
  static constexpr std::size_t rows = 6;
#endif
  /// k per block: the packed A panel (rows x depth) stays in L1 while the B panels stream
  /// through from L2.
  static constexpr std::size_t depth = CPC_GEMM_DEPTH;
  /// Rows of C per row block: the block's C (row_block x n) stays in L2 while the k-blocks run.
  static constexpr std::size_t row_block = CPC_GEMM_ROW_TILES * rows;
  static_assert(depth % 16 == 0, "gemm: the depth block must be whole groups of 16 k-steps");
};

/// B `[k, n]` packed for `gemm`: per block of `gemm_tile<T>::depth` rows of k, panels of
/// `gemm_tile<T>::cols` columns, each stored k-major (zero-padded to a whole panel).
template <class T>
class packed_rhs {
  using tile = gemm_tile<T>;

 public:
  /// Packs B(k, j) = b[k * row_stride + j * col_stride] for k < depth, j < cols. Panels are
  /// packed in parallel (cpc::parallel_for; each panel is written by one task).
  void pack(const T* b, std::ptrdiff_t row_stride, std::ptrdiff_t col_stride, std::size_t depth,
            std::size_t cols) {
    pack_rows(
        depth, cols, [&](std::size_t k) { return b + static_cast<std::ptrdiff_t>(k) * row_stride; },
        col_stride);
  }

  /// Packs B(k, j) = row(k)[j * col_stride] for k < depth, j < cols, where `row(k)` returns a
  /// pointer to B(k, 0) (for operands whose rows are not evenly spaced, e.g. a convolution weight
  /// read tap by tap). `row` is called from several threads.
  template <class RowFn>
  void pack_rows(std::size_t depth, std::size_t cols, RowFn&& row, std::ptrdiff_t col_stride) {
    k_ = depth;
    n_ = cols;
    panels_ = (cols + tile::cols - 1) / tile::cols;
    data_.resize(panels_ * tile::cols * depth);
    const std::size_t k_blocks = (depth + tile::depth - 1) / tile::depth;
    parallel_for(0, k_blocks * panels_, [&](std::size_t unit) {
      const std::size_t k0 = unit / panels_ * tile::depth, p = unit % panels_;
      const std::size_t kb = std::min(tile::depth, depth - k0);
      T* dst = block(k0, p);
      const std::size_t j0 = p * tile::cols, nj = std::min(tile::cols, cols - j0);
      for (std::size_t k = 0; k < kb; ++k) {
        const T* src = row(k0 + k) + static_cast<std::ptrdiff_t>(j0) * col_stride;
        T* d = dst + k * tile::cols;
        if (col_stride == 1 && nj == tile::cols) {
          for (std::size_t j = 0; j < tile::cols; ++j) d[j] = src[j];  // fixed size: a few vector moves
          continue;
        }
        if (col_stride == 1) {
          std::copy_n(src, nj, d);
        } else {
          for (std::size_t j = 0; j < nj; ++j) d[j] = src[static_cast<std::ptrdiff_t>(j) * col_stride];
        }
        std::fill(d + nj, d + tile::cols, T(0));
      }
    });
  }

  std::size_t depth() const { return k_; }
  std::size_t cols() const { return n_; }
  std::size_t panels() const { return panels_; }
  /// Start of the packed panel p of the k-block that begins at k0.
  const T* block(std::size_t k0, std::size_t p) const {
    const std::size_t kb = std::min(tile::depth, k_ - k0);
    return data_.data() + k0 * panels_ * tile::cols + p * kb * tile::cols;
  }

 private:
  T* block(std::size_t k0, std::size_t p) {
    return const_cast<T*>(static_cast<const packed_rhs&>(*this).block(k0, p));
  }

  std::size_t k_ = 0, n_ = 0, panels_ = 0;
  host_buffer<T> data_;
};

/// Scalars of workspace that `gemm` needs: a packed A block (`row_block` x `depth`) and one tile.
template <class T>
constexpr std::size_t gemm_workspace_size() {
  return gemm_tile<T>::row_block * gemm_tile<T>::depth + gemm_tile<T>::rows * gemm_tile<T>::cols;
}

namespace gemm_detail {

/// How a packed A tile (R rows x kb) is laid out; both store 16 k-steps of the tile in 16 R
/// consecutive scalars (one "group"), so the micro-kernel walks both the same way.
enum class a_layout {
  k_major,     ///< ap[k * R + r]: the R rows of one k together (from a transposed operand)
  row_chunks,  ///< ap[(k / 16) * 16 R + r * 16 + k % 16]: 16 consecutive k of one row together
};
inline constexpr std::size_t a_group = 16;  // k-steps per group of both layouts

template <a_layout L, std::size_t R>
constexpr std::size_t a_offset(std::size_t r, std::size_t kk) {
  return L == a_layout::k_major ? kk * R + r : r * a_group + kk;
}

// c[r, 0..cols) (+)= sum_k A(r, k) b[k, 0..cols) for r < Rows, the whole tile in registers, A
// packed in layout L. Every element is one chain of fused multiply-adds in ascending k, starting
// from c or from zero. The lines of `c_next` (the tile the caller runs next, same ldc) are
// prefetched halfway through.
template <class T, std::size_t Rows, a_layout L>
inline void micro_kernel(std::size_t kb, const T* __restrict a, const T* __restrict b, T* c,
                         std::ptrdiff_t ldc, bool accumulate, const T* c_next, const T* pf = nullptr,
                         std::size_t pf_lines = 0) {
  using V = simd<T>;
  constexpr std::size_t w = V::size, G = a_group;
  V acc0[Rows], acc1[Rows];
  if (accumulate) {
#pragma GCC unroll 16
    for (std::size_t r = 0; r < Rows; ++r) {
      acc0[r] = V::load_unaligned(c + static_cast<std::ptrdiff_t>(r) * ldc);
      acc1[r] = V::load_unaligned(c + static_cast<std::ptrdiff_t>(r) * ldc + w);
    }
  } else {
#pragma GCC unroll 16
    for (std::size_t r = 0; r < Rows; ++r) acc0[r] = acc1[r] = V(T(0));
  }
  // One k-step: kk is the step within the group that starts at ag (A) and bg (B).
  auto step = [&](const T* ag, const T* bg, std::size_t kk) {
    const V b0 = V::load_aligned(bg + kk * 2 * w), b1 = V::load_aligned(bg + kk * 2 * w + w);
#pragma GCC unroll 16
    for (std::size_t r = 0; r < Rows; ++r) {
      const V av(ag[a_offset<L, Rows>(r, kk)]);
      acc0[r] = xsimd::fma(av, b0, acc0[r]);
      acc1[r] = xsimd::fma(av, b1, acc1[r]);
    }
  };
  const std::size_t groups = kb / G;
  constexpr std::size_t line = 64 / sizeof(T);
  const std::size_t pf_per_group = groups > 0 ? (pf_lines + groups - 1) / groups : 0;
  for (std::size_t g = 0; g < groups; ++g) {
    const T* ag = a + g * G * Rows;
    const T* bg = b + g * G * 2 * w;
    for (std::size_t l = g * pf_per_group; l < std::min(pf_lines, (g + 1) * pf_per_group); ++l)
      __builtin_prefetch(pf + l * line, 0, 2);
    if (g == groups / 2) {
#pragma GCC unroll 16
      for (std::size_t r = 0; r < Rows; ++r) {
        __builtin_prefetch(c_next + static_cast<std::ptrdiff_t>(r) * ldc, 1);
        __builtin_prefetch(c_next + static_cast<std::ptrdiff_t>(r) * ldc + 2 * w - 1, 1);
      }
    }
#pragma GCC unroll 16
    for (std::size_t kk = 0; kk < G; ++kk) step(ag, bg, kk);
  }
  for (std::size_t kk = 0; kk < kb - groups * G; ++kk)
    step(a + groups * G * Rows, b + groups * G * 2 * w, kk);
#pragma GCC unroll 16
  for (std::size_t r = 0; r < Rows; ++r) {
    acc0[r].store_unaligned(c + static_cast<std::ptrdiff_t>(r) * ldc);
    acc1[r].store_unaligned(c + static_cast<std::ptrdiff_t>(r) * ldc + w);
  }
}

// Scalars between consecutive packed A tiles of kb k-steps: whole groups (the row_chunks layout
// spaces a partial last group like a full one).
template <std::size_t R>
constexpr std::size_t a_tile_stride(std::size_t kb) {
  return R * ((kb + a_group - 1) / a_group * a_group);
}

// Packs the A block A(r, k) = a[r * rs + k * ds], r < mb, k < kb, as consecutive tiles of R rows,
// tile t at ap + t * a_tile_stride<R>(kb) in layout L, rows of the last tile past mb set to zero.
//   row_chunks (ds == 1): each row's run of k is copied 16 scalars at a time (no transposition);
//   k_major (rs == 1): one sweep over k, copying the block's run of mb scalars into the tiles
//   (each source line is read once); any other strides: k_major, one scalar at a time.
template <class T, std::size_t R, a_layout L>
inline void pack_a_block(std::size_t mb, std::size_t kb, const T* a, std::ptrdiff_t rs, std::ptrdiff_t ds,
                         T* ap) {
  constexpr std::size_t G = a_group;
  const std::size_t tiles = (mb + R - 1) / R;
  if constexpr (L == a_layout::row_chunks) {
    const std::size_t full = kb / G * G;
    for (std::size_t t = 0; t < tiles; ++t) {
      T* apt = ap + t * a_tile_stride<R>(kb);
      for (std::size_t r = 0; r < R; ++r) {
        const std::size_t i = t * R + r;
        const T* src = a + static_cast<std::ptrdiff_t>(i) * rs;
        if (i >= mb) {
          for (std::size_t k = 0; k < kb; ++k) apt[k / G * G * R + r * G + k % G] = T(0);
          continue;
        }
        for (std::size_t k = 0; k < full; k += G) {
          T* d = apt + k * R + r * G;
          for (std::size_t j = 0; j < G; ++j) d[j] = src[k + j];  // fixed size: vector moves
        }
        for (std::size_t k = full; k < kb; ++k) apt[full * R + r * G + (k - full)] = src[k];
      }
    }
  } else if (rs == 1) {
    for (std::size_t k = 0; k < kb; ++k) {
      const T* src = a + static_cast<std::ptrdiff_t>(k) * ds;
      for (std::size_t t = 0; t < tiles; ++t) {
        T* d = ap + t * a_tile_stride<R>(kb) + k * R;
        const T* s = src + t * R;
        if ((t + 1) * R <= mb) {
          for (std::size_t r = 0; r < R; ++r) d[r] = s[r];  // fixed size: a few vector moves
          continue;
        }
        for (std::size_t r = 0; r < R; ++r) d[r] = t * R + r < mb ? s[r] : T(0);
      }
    }
  } else {
    for (std::size_t t = 0; t < tiles; ++t)
      for (std::size_t r = 0; r < R; ++r) {
        const std::size_t i = t * R + r;
        for (std::size_t k = 0; k < kb; ++k)
          ap[t * a_tile_stride<R>(kb) + k * R + r] =
              i < mb ? a[static_cast<std::ptrdiff_t>(i) * rs + static_cast<std::ptrdiff_t>(k) * ds] : T(0);
      }
  }
}

// Prefetches (into L2) the cache lines of an A block (as pack_a_block reads it) a slice at a time,
// so that the next block's source arrives while the current block computes.
template <class T>
class block_prefetcher {
 public:
  static constexpr std::size_t line = 64 / sizeof(T);  // scalars per cache line

  // The block A(r, k) = a[r * rs + k * ds], r < mb, k < kb; `slices` calls of step() cover it.
  // Blocks with neither stride 1 are not prefetched.
  void start(const T* a, std::size_t mb, std::size_t kb, std::ptrdiff_t rs, std::ptrdiff_t ds,
             std::size_t slices) {
    a_ = a;
    if (ds == 1) {
      outer_ = mb, per_ = (kb + line - 1) / line, stride_ = rs;
    } else if (rs == 1) {
      outer_ = kb, per_ = (mb + line - 1) / line, stride_ = ds;
    } else {
      outer_ = per_ = 0;
    }
    step_ = (outer_ * per_ + slices - 1) / std::max<std::size_t>(slices, 1);
    o_ = i_ = 0;
  }

  void step() {
    for (std::size_t j = 0; j < step_ && o_ < outer_; ++j) {
      __builtin_prefetch(
          a_ + static_cast<std::ptrdiff_t>(o_) * stride_ + static_cast<std::ptrdiff_t>(i_ * line), 0, 2);
      if (++i_ == per_) i_ = 0, ++o_;
    }
  }

 private:
  const T* a_ = nullptr;
  std::size_t outer_ = 0, per_ = 0, step_ = 0, o_ = 0, i_ = 0;
  std::ptrdiff_t stride_ = 0;
};

template <class T, a_layout L>
void gemm_layout(std::size_t m, const T* a, std::ptrdiff_t a_row_stride, std::ptrdiff_t a_depth_stride,
                 const packed_rhs<T>& b, T* c, std::ptrdiff_t ldc, bool accumulate, T* work) {
  using tile = gemm_tile<T>;
  constexpr std::size_t R = tile::rows, W = tile::cols, MB = tile::row_block, KB = tile::depth;
  const std::size_t depth = b.depth(), n = b.cols(), panels = b.panels();
  T* ap = work;            // packed A block: tiles of [kb, R]
  T* ct = work + MB * KB;  // [R, W] tile for partial rows / columns
  auto a_at = [&](std::size_t i, std::size_t k) {
    return a + static_cast<std::ptrdiff_t>(i) * a_row_stride +
           static_cast<std::ptrdiff_t>(k) * a_depth_stride;
  };
  block_prefetcher<T> prefetch;
  for (std::size_t ib = 0; ib < m; ib += MB) {
    const std::size_t ie = std::min(m, ib + MB), tiles = (ie - ib + R - 1) / R;
    for (std::size_t k0 = 0; k0 < depth; k0 += KB) {
      const std::size_t kb = std::min(KB, depth - k0);
      const bool acc = accumulate || k0 > 0;
      pack_a_block<T, R, L>(ie - ib, kb, a_at(ib, k0), a_row_stride, a_depth_stride, ap);
      // The block after this one: the next k-block of these rows, or the next rows' first.
      if (k0 + KB < depth)
        prefetch.start(a_at(ib, k0 + KB), ie - ib, std::min(KB, depth - k0 - KB), a_row_stride,
                       a_depth_stride, panels * tiles);
      else if (ie < m)
        prefetch.start(a_at(ie, 0), std::min(MB, m - ie), std::min(KB, depth), a_row_stride, a_depth_stride,
                       panels * tiles);
      else
        prefetch.start(nullptr, 0, 0, 0, 0, 1);
      for (std::size_t p = 0; p < panels; ++p) {
        const std::size_t j0 = p * W, nj = std::min(W, n - j0);
        const T* bp = b.block(k0, p);
        // The B panel after this one (the next k-block's or the next row block's first after the
        // last), prefetched into L2 a slice per tile while this one serves the block from L1.
        const T* b_next =
            p + 1 < panels ? b.block(k0, p + 1) : (k0 + KB < depth ? b.block(k0 + KB, 0) : b.block(0, 0));
        const std::size_t b_next_lines =
            (p + 1 < panels ? kb : std::min(KB, k0 + KB < depth ? depth - k0 - KB : depth)) * W * sizeof(T) /
            64;
        const std::size_t b_lines_per_tile = (b_next_lines + tiles - 1) / tiles;
        for (std::size_t t = 0; t < tiles; ++t) {
          prefetch.step();
#if CPC_GEMM_PREFETCH_B
          const std::size_t l0 = std::min(b_next_lines, t * b_lines_per_tile);
          const T* pf = b_next + l0 * (64 / sizeof(T));
          const std::size_t pf_lines = std::min(b_next_lines, (t + 1) * b_lines_per_tile) - l0;
#else
          const T* pf = nullptr;
          const std::size_t pf_lines = 0;
#endif
          const std::size_t i0 = ib + t * R, mr = std::min(R, ie - i0);
          T* cij = c + static_cast<std::ptrdiff_t>(i0) * ldc + static_cast<std::ptrdiff_t>(j0);
          // The tile after this one: the next rows in this panel, or the block's first in the next.
          const T* c_next = t + 1 < tiles ? cij + static_cast<std::ptrdiff_t>(R) * ldc
                                          : c + static_cast<std::ptrdiff_t>(ib) * ldc +
                                                static_cast<std::ptrdiff_t>(p + 1 < panels ? j0 + W : 0);
          const T* apt = ap + t * a_tile_stride<R>(kb);
          if (mr == R && nj == W) {
            micro_kernel<T, R, L>(kb, apt, bp, cij, ldc, acc, c_next, pf, pf_lines);
            continue;
          }
          for (std::size_t r = 0; r < R; ++r)
            for (std::size_t j = 0; j < W; ++j)
              ct[r * W + j] = acc && r < mr && j < nj
                                  ? cij[static_cast<std::ptrdiff_t>(r) * ldc + static_cast<std::ptrdiff_t>(j)]
                                  : T(0);
          micro_kernel<T, R, L>(kb, apt, bp, ct, static_cast<std::ptrdiff_t>(W), true, c_next, pf, pf_lines);
          for (std::size_t r = 0; r < mr; ++r)
            std::copy_n(ct + r * W, nj, cij + static_cast<std::ptrdiff_t>(r) * ldc);
        }
      }
    }
  }
}

}  // namespace gemm_detail

/// C[i, j] = (accumulate ? C[i, j] : 0) + sum_k A(i, k) B(k, j) for i < m, j < B.cols(), with
/// A(i, k) = a[i * a_row_stride + k * a_depth_stride] (k < B.depth()) and C(i, j) at
/// c[i * ldc + j]. `work` holds `gemm_workspace_size<T>()` scalars. Single-threaded: callers
/// split rows (or independent outputs) across tasks. See the file comment for the summation order.
///
/// Loops, outer to inner: blocks of `row_block` rows (their C stays in L2 across the k-blocks),
/// k-blocks of `depth` in ascending order (the A block packed into `work`, kept in L2, while the
/// next block's source is prefetched), column panels of B (one panel stays in L1 while it
/// serves every micro-tile of the block), micro-tiles of `rows` rows. The micro-kernel
/// prefetches the C tile that runs after it. A with unit depth stride (rows of k, e.g. an im2col
/// view) is packed as row chunks (plain copies); any other A as k-major tiles.
template <class T>
void gemm(std::size_t m, const T* a, std::ptrdiff_t a_row_stride, std::ptrdiff_t a_depth_stride,
          const packed_rhs<T>& b, T* c, std::ptrdiff_t ldc, bool accumulate, T* work) {
  if (m == 0 || b.cols() == 0) return;
  if (a_depth_stride == 1 && a_row_stride != 1)
    gemm_detail::gemm_layout<T, gemm_detail::a_layout::row_chunks>(m, a, a_row_stride, a_depth_stride, b, c,
                                                                   ldc, accumulate, work);
  else
    gemm_detail::gemm_layout<T, gemm_detail::a_layout::k_major>(m, a, a_row_stride, a_depth_stride, b, c, ldc,
                                                                accumulate, work);
}

}  // namespace cpc::cpu_kernels
