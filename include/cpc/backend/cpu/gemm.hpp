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

namespace gemm_detail {
template <class T>
using simd = xsimd::batch<T>;
}  // namespace gemm_detail

/// Tile sizes of `gemm` for element type T on the target instruction set.
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
  /// k per block: a packed A panel (rows x depth) and B panel (depth x cols) fit in L1 together.
  static constexpr std::size_t depth = 256;
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

/// Scalars of A-panel workspace that `gemm` needs.
template <class T>
constexpr std::size_t gemm_workspace_size() {
  return gemm_tile<T>::rows * gemm_tile<T>::depth + gemm_tile<T>::rows * gemm_tile<T>::cols;
}

namespace gemm_detail {

// c[r, 0..cols) (+)= sum_k a[k, r] b[k, 0..cols) for r < Rows, the whole tile in registers.
template <class T, std::size_t Rows>
inline void micro_kernel(std::size_t kb, const T* a, const T* b, T* c, std::ptrdiff_t ldc, bool accumulate) {
  using V = simd<T>;
  constexpr std::size_t w = V::size;
  std::array<V, Rows> acc0, acc1;
  if (accumulate) {
    for (std::size_t r = 0; r < Rows; ++r) {
      acc0[r] = V::load_unaligned(c + static_cast<std::ptrdiff_t>(r) * ldc);
      acc1[r] = V::load_unaligned(c + static_cast<std::ptrdiff_t>(r) * ldc + w);
    }
  } else {
    for (std::size_t r = 0; r < Rows; ++r) acc0[r] = acc1[r] = V(T(0));
  }
  for (std::size_t k = 0; k < kb; ++k) {
    const V b0 = V::load_aligned(b + k * 2 * w), b1 = V::load_aligned(b + k * 2 * w + w);
#pragma GCC unroll 16
    for (std::size_t r = 0; r < Rows; ++r) {
      const V av(a[k * Rows + r]);
      acc0[r] = xsimd::fma(av, b0, acc0[r]);
      acc1[r] = xsimd::fma(av, b1, acc1[r]);
    }
  }
  for (std::size_t r = 0; r < Rows; ++r) {
    acc0[r].store_unaligned(c + static_cast<std::ptrdiff_t>(r) * ldc);
    acc1[r].store_unaligned(c + static_cast<std::ptrdiff_t>(r) * ldc + w);
  }
}

}  // namespace gemm_detail

/// C[i, j] = (accumulate ? C[i, j] : 0) + sum_k A(i, k) B(k, j) for i < m, j < B.cols(), with
/// A(i, k) = a[i * a_row_stride + k * a_depth_stride] (k < B.depth()) and C(i, j) at
/// c[i * ldc + j]. `work` holds `gemm_workspace_size<T>()` scalars. Single-threaded: callers
/// split rows (or independent outputs) across tasks. See the file comment for the summation order.
/// `Rows` (at most `gemm_tile<T>::rows`) is the height of the micro-tile: a smaller one wastes
/// less on a few rows (e.g. 8 rows of a recurrent step); every element is computed by the same
/// instructions whatever `Rows`, so results do not depend on it.
template <class T, std::size_t Rows = gemm_tile<T>::rows>
void gemm(std::size_t m, const T* a, std::ptrdiff_t a_row_stride, std::ptrdiff_t a_depth_stride,
          const packed_rhs<T>& b, T* c, std::ptrdiff_t ldc, bool accumulate, T* work) {
  using tile = gemm_tile<T>;
  static_assert(Rows >= 1 && Rows <= tile::rows, "cpc: gemm tile height above gemm_tile<T>::rows");
  constexpr std::size_t R = Rows, W = tile::cols;
  const std::size_t depth = b.depth(), n = b.cols(), panels = b.panels();
  if (m == 0 || n == 0) return;
  T* ap = work;                    // [kb, R] packed A panel
  T* ct = work + R * tile::depth;  // [R, W] tile for partial rows / columns
  for (std::size_t k0 = 0; k0 < depth; k0 += tile::depth) {
    const std::size_t kb = std::min(tile::depth, depth - k0);
    const bool acc = accumulate || k0 > 0;
    for (std::size_t i0 = 0; i0 < m; i0 += R) {
      const std::size_t mr = std::min(R, m - i0);
      // Pack A(i0 .. i0 + R, k0 .. k0 + kb) as [k][r], zero rows past m.
      const T* a0 = a + static_cast<std::ptrdiff_t>(i0) * a_row_stride +
                    static_cast<std::ptrdiff_t>(k0) * a_depth_stride;
      if (a_row_stride == 1) {
        // The R rows of one k are consecutive scalars (a transposed operand): copy them.
        for (std::size_t k = 0; k < kb; ++k) {
          const T* src = a0 + static_cast<std::ptrdiff_t>(k) * a_depth_stride;
          if (mr == R) {
            for (std::size_t r = 0; r < R; ++r) ap[k * R + r] = src[r];  // fixed size: no library call
            continue;
          }
          std::copy_n(src, mr, ap + k * R);
          std::fill(ap + k * R + mr, ap + (k + 1) * R, T(0));
        }
      } else {
        for (std::size_t r = 0; r < mr; ++r) {
          const T* src = a0 + static_cast<std::ptrdiff_t>(r) * a_row_stride;
          for (std::size_t k = 0; k < kb; ++k)
            ap[k * R + r] = src[static_cast<std::ptrdiff_t>(k) * a_depth_stride];
        }
        for (std::size_t r = mr; r < R; ++r)
          for (std::size_t k = 0; k < kb; ++k) ap[k * R + r] = T(0);
      }
      for (std::size_t p = 0; p < panels; ++p) {
        const std::size_t j0 = p * W, nj = std::min(W, n - j0);
        T* cij = c + static_cast<std::ptrdiff_t>(i0) * ldc + static_cast<std::ptrdiff_t>(j0);
        if (mr == R && nj == W) {
          gemm_detail::micro_kernel<T, R>(kb, ap, b.block(k0, p), cij, ldc, acc);
          continue;
        }
        for (std::size_t r = 0; r < R; ++r)
          for (std::size_t j = 0; j < W; ++j)
            ct[r * W + j] = acc && r < mr && j < nj
                                ? cij[static_cast<std::ptrdiff_t>(r) * ldc + static_cast<std::ptrdiff_t>(j)]
                                : T(0);
        gemm_detail::micro_kernel<T, R>(kb, ap, b.block(k0, p), ct, static_cast<std::ptrdiff_t>(W), true);
        for (std::size_t r = 0; r < mr; ++r)
          std::copy_n(ct + r * W, nj, cij + static_cast<std::ptrdiff_t>(r) * ldc);
      }
    }
  }
}

}  // namespace cpc::cpu_kernels
