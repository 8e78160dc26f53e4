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
///
/// bf16 (optional, `packed_rhs::use_bf16`; the convolutions use it under
/// `cpc::matmul_precision::bf16`): B is packed as bf16 k-pairs and A rounded to bf16 into AMX tiles
/// as it is packed; `gemm_detail::gemm_source_amx` runs the same loops with 32 x 32 micro-tiles of
/// AMX tile products, fp32 sums in ascending k (same determinism). Source: Intel SDM, AMX.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "cpc/backend/cpu/bf16.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/memory.hpp"
#include "cpc/core/precision.hpp"
#include "cpc/core/threads.hpp"

namespace cpc::cpu_kernels {

#ifndef CPC_GEMM_DEPTH
#define CPC_GEMM_DEPTH 512
#endif
#ifndef CPC_GEMM_C_BUDGET_KB
#define CPC_GEMM_C_BUDGET_KB 1280
#endif
#ifndef CPC_GEMM_ROW_BLOCK
#define CPC_GEMM_ROW_BLOCK 96
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
  /// Largest k per block (the workspace holds a packed A block of row_block x depth); a
  /// packed_rhs uses this or a smaller block of its own (packed_rhs::k_block).
  static constexpr std::size_t depth = CPC_GEMM_DEPTH;
  /// Rows of C per row block: the block's C (row_block x n) stays in L2 while the k-blocks run.
  static constexpr std::size_t row_block = CPC_GEMM_ROW_BLOCK / rows * rows;
  static_assert(depth % 16 == 0, "gemm: the depth block must be whole groups of 16 k-steps");
};

/// B `[k, n]` packed for `gemm`: per block of `gemm_tile<T>::depth` rows of k, panels of
/// `gemm_tile<T>::cols` columns, each stored k-major (zero-padded to a whole panel).
/// With `use_bf16(true)` (float only, `CPC_HAVE_AMX_BF16` builds) the values are rounded to bf16
/// and each panel is stored as rows of k-pairs (see `bf16.hpp`), the k-blocks padded to whole
/// 32-k chunks: `gemm` then runs its AMX path.
template <class T>
class packed_rhs {
  using tile = gemm_tile<T>;

 public:
  /// Packs B(k, j) = b[k * row_stride + j * col_stride] for k < depth, j < cols. Panels are
  /// packed in parallel (cpc::parallel_for; each panel is written by one task).
  void pack(const T* b, std::ptrdiff_t row_stride, std::ptrdiff_t col_stride, std::size_t depth,
            std::size_t cols, std::size_t k_block = tile::depth) {
    pack_rows(
        depth, cols, [&](std::size_t k) { return b + static_cast<std::ptrdiff_t>(k) * row_stride; },
        col_stride, k_block);
  }

  /// Packs B(k, j) = row(k)[j * col_stride] for k < depth, j < cols, where `row(k)` returns a
  /// pointer to B(k, 0) (for operands whose rows are not evenly spaced, e.g. a convolution weight
  /// read tap by tap). `row` is called from several threads.
  template <class RowFn>
  void pack_rows(std::size_t depth, std::size_t cols, RowFn&& row, std::ptrdiff_t col_stride,
                 std::size_t k_block = tile::depth) {
    pack_units(depth, cols, k_block, [&](std::size_t k, std::size_t j0, T* d) {
      const std::size_t nj = std::min(tile::cols, cols - j0);
      const T* src = row(k) + static_cast<std::ptrdiff_t>(j0) * col_stride;
      if (col_stride == 1 && nj == tile::cols) {
        std::memcpy(d, src, tile::cols * sizeof(T));  // fixed size: a few vector moves
        return;
      }
      if (col_stride == 1) {
        std::copy_n(src, nj, d);
      } else {
        for (std::size_t j = 0; j < nj; ++j) d[j] = src[static_cast<std::ptrdiff_t>(j) * col_stride];
      }
      std::fill(d + nj, d + tile::cols, T(0));
    });
  }

  /// Packs B(k, j) = panel(k, j0)[(j - j0) * col_stride] for the panels' first columns j0 (multiples
  /// of `gemm_tile<T>::cols`), k < depth, j < cols: for operands whose columns are evenly spaced
  /// within each panel but not across panels (e.g. a convolution weight with the taps of several
  /// output rows side by side). `panel` is called from several threads.
  template <class PanelFn>
  void pack_panels(std::size_t depth, std::size_t cols, PanelFn&& panel, std::ptrdiff_t col_stride,
                   std::size_t k_block = tile::depth) {
    pack_units(depth, cols, k_block, [&](std::size_t k, std::size_t j0, T* d) {
      const std::size_t nj = std::min(tile::cols, cols - j0);
      const T* src = panel(k, j0);
      for (std::size_t j = 0; j < tile::cols; ++j)
        d[j] = j < nj ? src[static_cast<std::ptrdiff_t>(j) * col_stride] : T(0);
    });
  }

  /// Selects the bf16 layout for the next pack (see the class comment); false: fp32 (default).
  /// Errors: `cpc::config_error` when bf16 is asked for and unavailable (the reason from
  /// `cpc::bf16_matmul_unavailable_reason`, e.g. a build without AMX-BF16, or T is not float).
  void use_bf16(bool on) {
    if (on) {
      if constexpr (!std::is_same_v<T, float>) throw config_error("packed_rhs: bf16 needs float operands");
      require_bf16_matmul();
    }
    bf16_ = on;
  }
  /// True when packed as bf16 k-pairs (`gemm` then runs its AMX path).
  bool bf16() const { return bf16_; }

  std::size_t depth() const { return k_; }
  std::size_t cols() const { return n_; }
  std::size_t panels() const { return panels_; }
  /// k-steps per block (the gemm's depth block for this operand).
  std::size_t k_block() const { return kblock_; }
  /// Start of the packed panel p of the k-block that begins at k0.
  const T* block(std::size_t k0, std::size_t p) const {
    const std::size_t kb = std::min(kblock_, k_ - k0);
    return data_.data() + (k0 * panels_ + p * padded(kb)) * tile::cols / (bf16_ ? 2 : 1);
  }

 private:
  T* block(std::size_t k0, std::size_t p) {
    return const_cast<T*>(static_cast<const packed_rhs&>(*this).block(k0, p));
  }

  // k-steps a block of kb occupies: kb, or whole 32-k chunks in the bf16 layout.
  std::size_t padded(std::size_t kb) const { return bf16_ ? (kb + 31) / 32 * 32 : kb; }

  // Packs every (k-block, panel) unit in parallel; fetch(k, j0, out) writes B(k, j0 + j) for
  // j < tile::cols (zeros past the last column) to out.
  template <class Fetch>
  void pack_units(std::size_t depth, std::size_t cols, std::size_t k_block, const Fetch& fetch) {
    resize(depth, cols, k_block);
    const std::size_t k_blocks = (depth + kblock_ - 1) / kblock_;
    parallel_for(0, k_blocks * panels_, [&](std::size_t unit) {
      const std::size_t k0 = unit / panels_ * kblock_, p = unit % panels_, j0 = p * tile::cols;
      const std::size_t kb = std::min(kblock_, depth - k0);
      T* dst = block(k0, p);
      if (!bf16_) {
        for (std::size_t k = 0; k < kb; ++k) fetch(k0 + k, j0, dst + k * tile::cols);
        return;
      }
#if CPC_HAVE_AMX_BF16
      if constexpr (std::is_same_v<T, float>) {
        alignas(64) float rows[2][tile::cols];
        for (std::size_t q = 0; q < padded(kb) / 2; ++q) {
          for (std::size_t h = 0; h < 2; ++h) {
            if (2 * q + h < kb)
              fetch(k0 + 2 * q + h, j0, rows[h]);
            else
              std::fill_n(rows[h], tile::cols, 0.0f);
          }
          for (std::size_t j = 0; j < tile::cols; j += 16)
            _mm512_store_ps(dst + q * tile::cols + j,
                            bf16::pairs(_mm512_load_ps(rows[0] + j), _mm512_load_ps(rows[1] + j)));
        }
      }
#endif
    });
  }

  // Sets the shape; k_block: a positive multiple of 16 (32 in the bf16 layout), at most
  // tile::depth (the workspace's).
  void resize(std::size_t depth, std::size_t cols, std::size_t k_block) {
    k_ = depth;
    n_ = cols;
    const std::size_t step = bf16_ ? 32 : 16;
    kblock_ = std::clamp<std::size_t>(k_block / step * step, step, tile::depth);
    panels_ = (cols + tile::cols - 1) / tile::cols;
    data_.resize(panels_ * tile::cols * padded(depth) / (bf16_ ? 2 : 1));
  }

  std::size_t k_ = 0, n_ = 0, panels_ = 0, kblock_ = tile::depth;
  bool bf16_ = false;
  host_buffer<T> data_;
};

/// Whether a convolution's GEMM operands of type T are packed as bf16: T is float and the
/// process's matmul precision is bf16 (`cpc::set_matmul_precision`). The convolutions pass it to
/// `packed_rhs::use_bf16` before packing.
template <class T>
bool convolution_bf16() {
  return std::is_same_v<T, float> && get_matmul_precision() == matmul_precision::bf16;
}

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

// Cache lines to prefetch into L2 while a micro-kernel runs: a few runs of consecutive lines
// (the next B panel, the next A block's source), issued a few per group of k-steps so that they
// do not queue up behind each other.
template <class T>
struct prefetch_list {
  static constexpr std::size_t max_runs = 8, line = 64 / sizeof(T);
  const T* start[max_runs];
  std::size_t lines[max_runs];
  std::size_t runs = 0, total = 0, run = 0, done = 0;

  void clear() { runs = total = run = done = 0; }
  // Adds n lines from p on (issued at once when the list is full).
  void add(const T* p, std::size_t n) {
    if (n == 0) return;
    if (runs == max_runs) {
      for (std::size_t l = 0; l < n; ++l) __builtin_prefetch(p + l * line, 0, 2);
      return;
    }
    start[runs] = p;
    lines[runs++] = n;
    total += n;
  }
  // Issues the next n lines.
  void issue(std::size_t n) {
    for (; n > 0 && run < runs; --n) {
      __builtin_prefetch(start[run] + done * line, 0, 2);
      if (++done == lines[run]) done = 0, ++run;
    }
  }
};

// c[r, 0..cols) (+)= sum_k A(r, k) b[k, 0..cols) for r < Rows, the whole tile in registers, A
// packed in layout L. Every element is one chain of fused multiply-adds in ascending k, starting
// from c or from zero. The lines of `c_next` (the tile the caller runs next, same ldc) are
// prefetched halfway through; the lines of `pf` (if any) a few per group of 16 k-steps.
// With `c_rows` non-null, row r of the tile is c_rows[r] instead of c + r * ldc (rows anywhere).
template <class T, std::size_t Rows, a_layout L>
inline void micro_kernel(std::size_t kb, const T* __restrict a, const T* __restrict b, T* c,
                         std::ptrdiff_t ldc, bool accumulate, const T* c_next, prefetch_list<T>* pf = nullptr,
                         T* const* c_rows = nullptr) {
  auto c_at = [&](std::size_t r) {
    return c_rows != nullptr ? c_rows[r] : c + static_cast<std::ptrdiff_t>(r) * ldc;
  };
  using V = simd<T>;
  constexpr std::size_t w = V::size, G = a_group;
  V acc0[Rows], acc1[Rows];
  if (accumulate) {
#pragma GCC unroll 16
    for (std::size_t r = 0; r < Rows; ++r) {
      acc0[r] = V::load_unaligned(c_at(r));
      acc1[r] = V::load_unaligned(c_at(r) + w);
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
  const std::size_t pf_per_group = pf != nullptr && groups > 0 ? (pf->total + groups - 1) / groups : 0;
  for (std::size_t g = 0; g < groups; ++g) {
    const T* ag = a + g * G * Rows;
    const T* bg = b + g * G * 2 * w;
    if (pf_per_group > 0) pf->issue(pf_per_group);
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
    acc0[r].store_unaligned(c_at(r));
    acc1[r].store_unaligned(c_at(r) + w);
  }
}

// Scalars between consecutive packed A tiles of kb k-steps: whole groups (the row_chunks layout
// spaces a partial last group like a full one).
template <std::size_t R>
constexpr std::size_t a_tile_stride(std::size_t kb) {
  return R * ((kb + a_group - 1) / a_group * a_group);
}

// The AMX path's packed A block: for each 16-row tile t, its 32-k chunks c in order, each an A tile
// of 16 rows x 64 bytes (1 KB = 256 float slots); rows padded to whole 32-row micro-tiles.
inline constexpr std::size_t amx_micro_rows = 32;
inline constexpr std::size_t amx_rows(std::size_t mb) {
  return (mb + amx_micro_rows - 1) / amx_micro_rows * amx_micro_rows;
}
inline constexpr std::size_t amx_a_offset(std::size_t t, std::size_t c, std::size_t chunks) {
  return (t * chunks + c) * 256;
}

// The A operand of gemm, given by rows: A(i, k) = row(i)[k] (each row contiguous in k; rows anywhere,
// e.g. an im2col view whose edge rows come from another buffer). Packed as row chunks.
template <class T, class RowFn>
struct a_rows {
  static constexpr a_layout layout = a_layout::row_chunks;
  RowFn row;

  // Packs A(i0 + i, k0 + k), i < mb, k < kb, as tiles of R rows (zero rows past mb).
  template <std::size_t R>
  void pack(std::size_t i0, std::size_t mb, std::size_t k0, std::size_t kb, T* ap) const {
    constexpr std::size_t G = a_group;
    const std::size_t tiles = (mb + R - 1) / R, full = kb / G * G;
    for (std::size_t t = 0; t < tiles; ++t) {
      T* apt = ap + t * a_tile_stride<R>(kb);
      for (std::size_t r = 0; r < R; ++r) {
        const std::size_t i = t * R + r;
        if (i >= mb) {
          for (std::size_t k = 0; k < kb; ++k) apt[k / G * G * R + r * G + k % G] = T(0);
          continue;
        }
        const T* src = row(i0 + i) + k0;
        for (std::size_t k = 0; k < full; k += G) {
          T* d = apt + k * R + r * G;
          std::memcpy(d, src + k, G * sizeof(T));  // fixed size: vector moves
        }
        for (std::size_t k = full; k < kb; ++k) apt[full * R + r * G + (k - full)] = src[k];
      }
    }
  }

#if CPC_HAVE_AMX_BF16
  // Packs A(i0 + i, k0 + k), i < mb, k < kb, as bf16 AMX A tiles (see `amx_a_offset`).
  void pack_bf16(std::size_t i0, std::size_t mb, std::size_t k0, std::size_t kb, T* ap) const {
    const std::size_t chunks = (kb + 31) / 32;
    for (std::size_t i = 0; i < amx_rows(mb); ++i)
      for (std::size_t c = 0; c < chunks; ++c)
        bf16::row32(i < mb ? row(i0 + i) + k0 + c * 32 : nullptr,
                    i < mb ? std::min<std::size_t>(32, kb - c * 32) : 0,
                    ap + amx_a_offset(i / 16, c, chunks) + i % 16 * 16);
  }
#endif

  // Cache line c of the o-th row of the block (i0.., k0..), the order in which pack reads them.
  const T* line(std::size_t i0, std::size_t k0, std::size_t o, std::size_t c) const {
    return row(i0 + o) + k0 + c * (64 / sizeof(T));
  }
  static std::size_t outer(std::size_t mb, std::size_t) {
    return mb;
  }
  static std::size_t inner(std::size_t, std::size_t kb) {
    return kb;
  }
};

// The A operand of gemm, given by columns: A(i, k) = col(k)[i] (each column contiguous in i, e.g.
// a transposed im2col view). Packed k-major: one sweep over k, each source line read once.
template <class T, class ColFn>
struct a_cols {
  static constexpr a_layout layout = a_layout::k_major;
  ColFn col;

  template <std::size_t R>
  void pack(std::size_t i0, std::size_t mb, std::size_t k0, std::size_t kb, T* ap) const {
    const std::size_t tiles = (mb + R - 1) / R;
    for (std::size_t k = 0; k < kb; ++k) {
      const T* src = col(k0 + k) + i0;
      for (std::size_t t = 0; t < tiles; ++t) {
        T* d = ap + t * a_tile_stride<R>(kb) + k * R;
        const T* s = src + t * R;
        if ((t + 1) * R <= mb) {
          std::memcpy(d, s, R * sizeof(T));  // fixed size: a few vector moves
          continue;
        }
        for (std::size_t r = 0; r < R; ++r) d[r] = t * R + r < mb ? s[r] : T(0);
      }
    }
  }

#if CPC_HAVE_AMX_BF16
  void pack_bf16(std::size_t i0, std::size_t mb, std::size_t k0, std::size_t kb, T* ap) const {
    const std::size_t chunks = (kb + 31) / 32;
    for (std::size_t t = 0; t < amx_rows(mb) / 16; ++t) {
      const std::size_t rows = t * 16 < mb ? std::min<std::size_t>(16, mb - t * 16) : 0;
      for (std::size_t c = 0; c < chunks; ++c)
        bf16::a_tile_from_columns([&](std::size_t k) { return col(k0 + c * 32 + k) + i0 + t * 16; }, rows,
                                  std::min<std::size_t>(32, kb - c * 32), ap + amx_a_offset(t, c, chunks));
    }
  }
#endif

  // Cache line c of the o-th column of the block (i0.., k0..).
  const T* line(std::size_t i0, std::size_t k0, std::size_t o, std::size_t c) const {
    return col(k0 + o) + i0 + c * (64 / sizeof(T));
  }
  static std::size_t outer(std::size_t, std::size_t kb) {
    return kb;
  }
  static std::size_t inner(std::size_t mb, std::size_t) {
    return mb;
  }
};

// The A operand with any two strides: A(i, k) = a[i * rs + k * ds], packed k-major one scalar at a
// time (not prefetched).
template <class T>
struct a_strided {
  static constexpr a_layout layout = a_layout::k_major;
  const T* a;
  std::ptrdiff_t rs, ds;

  template <std::size_t R>
  void pack(std::size_t i0, std::size_t mb, std::size_t k0, std::size_t kb, T* ap) const {
    const std::size_t tiles = (mb + R - 1) / R;
    for (std::size_t t = 0; t < tiles; ++t)
      for (std::size_t r = 0; r < R; ++r) {
        const std::size_t i = t * R + r;
        for (std::size_t k = 0; k < kb; ++k)
          ap[t * a_tile_stride<R>(kb) + k * R + r] =
              i < mb ? a[static_cast<std::ptrdiff_t>(i0 + i) * rs + static_cast<std::ptrdiff_t>(k0 + k) * ds]
                     : T(0);
      }
  }

#if CPC_HAVE_AMX_BF16
  void pack_bf16(std::size_t i0, std::size_t mb, std::size_t k0, std::size_t kb, T* ap) const {
    const std::size_t chunks = (kb + 31) / 32;
    alignas(64) T row[32];
    for (std::size_t i = 0; i < amx_rows(mb); ++i)
      for (std::size_t c = 0; c < chunks; ++c) {
        const std::size_t n = i < mb ? std::min<std::size_t>(32, kb - c * 32) : 0;
        for (std::size_t k = 0; k < n; ++k)
          row[k] =
              a[static_cast<std::ptrdiff_t>(i0 + i) * rs + static_cast<std::ptrdiff_t>(k0 + c * 32 + k) * ds];
        bf16::row32(row, n, ap + amx_a_offset(i / 16, c, chunks) + i % 16 * 16);
      }
  }
#endif

  const T* line(std::size_t, std::size_t, std::size_t, std::size_t) const {
    return a;
  }
  static std::size_t outer(std::size_t, std::size_t) {
    return 0;
  }
  static std::size_t inner(std::size_t, std::size_t) {
    return 0;
  }
};

// Lists (for prefetching into L2) the cache lines of an A block a slice at a time, so that the
// next block's source arrives while the current block computes.
template <class T, class Source>
class block_prefetcher {
 public:
  explicit block_prefetcher(const Source& a) : a_(a) {}

  // The block (i0.., k0..) of mb x kb; `slices` calls of step() cover it.
  void start(std::size_t i0, std::size_t mb, std::size_t k0, std::size_t kb, std::size_t slices) {
    i0_ = i0, k0_ = k0;
    outer_ = Source::outer(mb, kb);
    per_ = (Source::inner(mb, kb) + line_scalars - 1) / line_scalars;
    step_ = (outer_ * per_ + slices - 1) / std::max<std::size_t>(slices, 1);
    o_ = c_ = 0;
  }
  void stop() { outer_ = 0; }

  // Adds the next slice's lines to `list` (runs of consecutive lines).
  void step(prefetch_list<T>& list) {
    std::size_t left = step_;
    while (left > 0 && o_ < outer_) {
      const std::size_t n = std::min(left, per_ - c_);
      list.add(a_.line(i0_, k0_, o_, c_), n);
      left -= n;
      c_ += n;
      if (c_ == per_) c_ = 0, ++o_;
    }
  }

 private:
  static constexpr std::size_t line_scalars = 64 / sizeof(T);
  const Source& a_;
  std::size_t i0_ = 0, k0_ = 0, outer_ = 0, per_ = 0, step_ = 0, o_ = 0, c_ = 0;
};

// The C operand of gemm: C(i, j) = c[i * ldc + j].
template <class T>
struct c_strided {
  T* c;
  std::ptrdiff_t ldc;
  T* row(std::size_t i) const { return c + static_cast<std::ptrdiff_t>(i) * ldc; }
  bool regular(std::size_t, std::size_t) const { return true; }
};

// The C operand given by rows: C(i, j) = fn(i)[j]. Tiles whose rows lie ldc apart run in place,
// the others through a temporary tile.
template <class T, class RowFn>
struct c_rows {
  RowFn fn;
  std::ptrdiff_t ldc;
  T* row(std::size_t i) const { return fn(i); }
  bool regular(std::size_t i0, std::size_t n) const {
    T* const first = fn(i0);
    for (std::size_t r = 1; r < n; ++r)
      if (fn(i0 + r) != first + static_cast<std::ptrdiff_t>(r) * ldc) return false;
    return true;
  }
};

// Height of `rows` rows cut into equal blocks of at most `most` rows, rounded up to whole tiles of
// `unit` rows, so that no block is left with a few rows.
constexpr std::size_t balanced_block(std::size_t rows, std::size_t most, std::size_t unit) {
  const std::size_t blocks = (rows + most - 1) / most;
  return ((rows + blocks - 1) / blocks + unit - 1) / unit * unit;
}

// Rows of C per group: the group's C (`panels` panels of gemm_tile<T>::cols columns) within
// CPC_GEMM_C_BUDGET_KB, whole blocks of `block` rows (at least one).
template <class T>
constexpr std::size_t c_budget_rows(std::size_t panels, std::size_t block) {
  return std::max<std::size_t>(1, std::size_t(CPC_GEMM_C_BUDGET_KB) * 1024 /
                                      (panels * gemm_tile<T>::cols * sizeof(T)) / block) *
         block;
}

#if CPC_HAVE_AMX_BF16
// gemm_source's AMX path, for B packed as bf16 (`packed_rhs::use_bf16`): the same loops (groups of
// rows within the C budget, ascending k-blocks, row blocks with A rounded to bf16 into `work`,
// column panels), then micro-tiles of 32 x 32 C: four 16 x 16 fp32 C tiles (tiles 0-3), two A
// tiles (4-5) and two B tiles (6-7) per 32-k chunk. Each element of C is summed in ascending k
// (TDPBF16PS adds the two products of a k-pair in order, each exact in fp32), whatever the
// thread or the tile it falls in. Partial tiles and irregular C rows go through a 32 x 32 scratch.
template <class Source, class CRows>
void gemm_source_amx(std::size_t m, const Source& a, const packed_rhs<float>& b, const CRows& c,
                     bool accumulate, float* work, std::size_t p_begin, std::size_t p_end) {
  using tile = gemm_tile<float>;
  constexpr std::size_t R = amx_micro_rows, W = tile::cols, MB = tile::row_block / R * R;
  static_assert(W == 32 && MB >= R, "gemm: the AMX path needs 32-column panels");
  const std::size_t KB = b.k_block(), depth = b.depth(), n = b.cols();
  const std::size_t panels = p_end - p_begin;
  const std::size_t group = c_budget_rows<float>(panels, MB);
  float* ap = work;                         // packed A block (bf16 tiles), at most MB x depth / 2 slots
  float* ct = work + MB * tile::depth / 2;  // 32 x 32 scratch C
  static_assert(MB * tile::depth / 2 + R * W <= gemm_workspace_size<float>(), "gemm: AMX scratch");
  const std::ptrdiff_t ldc = c.ldc;
  auto balanced = [](std::size_t rows, std::size_t most) { return balanced_block(rows, most, R); };
  const bf16::tile_scope tiles_in_use;
  const std::size_t group_rows = balanced(m, group);
  for (std::size_t io = 0; io < m; io += group_rows) {
    const std::size_t ge = std::min(m, io + group_rows), block_rows = balanced(ge - io, MB);
    for (std::size_t k0 = 0; k0 < depth; k0 += KB) {
      const std::size_t kb = std::min(KB, depth - k0), chunks = (kb + 31) / 32;
      const bool acc = accumulate || k0 > 0;
      for (std::size_t ib = io; ib < ge; ib += block_rows) {
        const std::size_t ie = std::min(ge, ib + block_rows), tiles = (ie - ib + R - 1) / R;
        a.pack_bf16(ib, ie - ib, k0, kb, ap);
        for (std::size_t p = p_begin; p < p_end; ++p) {
          const std::size_t j0 = p * W, nj = std::min(W, n - j0);
          const float* bp = b.block(k0, p);  // pair rows of 32 slots (128 bytes)
          for (std::size_t t = 0; t < tiles; ++t) {
            const std::size_t i0 = ib + t * R, mr = std::min(R, ie - i0);
            const bool direct = mr == R && nj == W && c.regular(i0, R);
            float* cp = direct ? c.row(i0) + j0 : ct;
            const std::ptrdiff_t ld = direct ? ldc : static_cast<std::ptrdiff_t>(W);
            if (!direct)
              for (std::size_t r = 0; r < R; ++r)
                for (std::size_t j = 0; j < W; ++j)
                  ct[r * W + j] = acc && r < mr && j < nj ? c.row(i0 + r)[j0 + j] : 0.0f;
            const auto stride = static_cast<std::size_t>(ld) * sizeof(float);
            if (acc || !direct) {
              _tile_loadd(0, cp, stride);
              _tile_loadd(1, cp + 16, stride);
              _tile_loadd(2, cp + 16 * ld, stride);
              _tile_loadd(3, cp + 16 * ld + 16, stride);
            } else {
              _tile_zero(0);
              _tile_zero(1);
              _tile_zero(2);
              _tile_zero(3);
            }
            const float* a0 = ap + amx_a_offset(2 * t, 0, chunks);
            const float* a1 = ap + amx_a_offset(2 * t + 1, 0, chunks);
            for (std::size_t ch = 0; ch < chunks; ++ch) {
              _tile_loadd(4, a0 + ch * 256, 64);
              _tile_loadd(5, a1 + ch * 256, 64);
              _tile_loadd(6, bp + ch * 16 * W, W * sizeof(float));
              _tile_loadd(7, bp + ch * 16 * W + 16, W * sizeof(float));
              _tile_dpbf16ps(0, 4, 6);
              _tile_dpbf16ps(1, 4, 7);
              _tile_dpbf16ps(2, 5, 6);
              _tile_dpbf16ps(3, 5, 7);
            }
            _tile_stored(0, cp, stride);
            _tile_stored(1, cp + 16, stride);
            _tile_stored(2, cp + 16 * ld, stride);
            _tile_stored(3, cp + 16 * ld + 16, stride);
            if (!direct)
              for (std::size_t r = 0; r < mr; ++r) std::copy_n(ct + r * W, nj, c.row(i0 + r) + j0);
          }
        }
      }
    }
  }
}
#endif

// gemm for one A source (see `gemm`). Loops, outer to inner: groups of rows whose C fits the L2
// budget; k-blocks in ascending order (the B k-block stays in L2 for the whole group); blocks
// of `row_block` rows (A packed into `work`; the next block's source prefetched); column panels
// of B (one panel stays in L1 while it serves every tile of the block; the next one prefetched);
// micro-tiles of `rows` rows (the next C tile prefetched).
// `Rows` is the micro-tile height (see `gemm`); the row block is the largest multiple of it
// within `gemm_tile<T>::row_block`.
template <class T, std::size_t Rows = gemm_tile<T>::rows, class Source, class CRows>
void gemm_source(std::size_t m, const Source& a, const packed_rhs<T>& b, const CRows& c, bool accumulate,
                 T* work, std::size_t p_begin = 0, std::size_t p_end = std::size_t(-1)) {
  using tile = gemm_tile<T>;
  constexpr std::size_t R = Rows, W = tile::cols, MB = tile::row_block / R * R;
  constexpr a_layout L = Source::layout;
  const std::size_t KB = b.k_block();
  const std::size_t depth = b.depth(), n = b.cols();
  p_end = std::min(p_end, b.panels());
  if (m == 0 || n == 0 || p_begin >= p_end) return;
  if (b.bf16()) {
#if CPC_HAVE_AMX_BF16
    if constexpr (std::is_same_v<T, float>) gemm_source_amx(m, a, b, c, accumulate, work, p_begin, p_end);
#endif
    return;
  }
  const std::size_t panels = p_end - p_begin;
  // Rows per group: C of the group within the budget, whole row blocks.
  const std::size_t group = c_budget_rows<T>(panels, MB);
  T* ap = work;                     // packed A block: tiles of [kb, R]
  T* ct = work + MB * tile::depth;  // [R, W] tile for partial rows / columns
  block_prefetcher<T, Source> prefetch(a);
  prefetch_list<T> pf;
  constexpr std::size_t line = 64 / sizeof(T);
  const std::ptrdiff_t ldc = c.ldc;
  bool regular[MB / R];  // per tile of the block: its C rows lie ldc apart
  // Blocks of equal size (whole tiles, at most MB rows), so that no block is left with a few rows.
  auto balanced = [](std::size_t rows, std::size_t most) { return balanced_block(rows, most, R); };
  const std::size_t group_rows = balanced(m, group);
  for (std::size_t io = 0; io < m; io += group_rows) {
    const std::size_t ge = std::min(m, io + group_rows), block_rows = balanced(ge - io, MB);
    for (std::size_t k0 = 0; k0 < depth; k0 += KB) {
      const std::size_t kb = std::min(KB, depth - k0);
      const bool acc = accumulate || k0 > 0;
      for (std::size_t ib = io; ib < ge; ib += block_rows) {
        const std::size_t ie = std::min(ge, ib + block_rows), tiles = (ie - ib + R - 1) / R;
        a.template pack<R>(ib, ie - ib, k0, kb, ap);
        for (std::size_t t = 0; t < tiles; ++t)
          regular[t] = c.regular(ib + t * R, std::min(R, ie - ib - t * R));
        // The block after this one: the next rows of the group, the group's first rows in the
        // next k-block, or the next group's first block.
        if (ie < ge)
          prefetch.start(ie, std::min(block_rows, ge - ie), k0, kb, panels * tiles);
        else if (k0 + KB < depth)
          prefetch.start(io, std::min(block_rows, ge - io), k0 + KB, std::min(KB, depth - k0 - KB),
                         panels * tiles);
        else if (ge < m)
          prefetch.start(ge, std::min(balanced(std::min(group_rows, m - ge), MB), m - ge), 0,
                         std::min(KB, depth), panels * tiles);
        else
          prefetch.stop();
        for (std::size_t p = p_begin; p < p_end; ++p) {
          const std::size_t j0 = p * W, nj = std::min(W, n - j0);
          const T* bp = b.block(k0, p);
          // The B panel after this one, prefetched into L2 a slice per tile while this one
          // serves the block from L1: the next panel, or the first of the next k-block.
          const bool last = p + 1 == p_end;
          const std::size_t k_next = last ? (k0 + KB < depth ? k0 + KB : 0) : k0;
          const T* b_next = b.block(k_next, last ? p_begin : p + 1);
          const std::size_t b_next_lines = std::min(KB, depth - k_next) * W * sizeof(T) / 64;
          const std::size_t b_lines_per_tile = (b_next_lines + tiles - 1) / tiles;
          for (std::size_t t = 0; t < tiles; ++t) {
            const std::size_t l0 = std::min(b_next_lines, t * b_lines_per_tile);
            pf.clear();
            pf.add(b_next + l0 * line, std::min(b_next_lines, (t + 1) * b_lines_per_tile) - l0);
            prefetch.step(pf);
            const std::size_t i0 = ib + t * R, mr = std::min(R, ie - i0);
            T* cij = c.row(i0) + j0;
            // The tile after this one: the next rows in this panel, or the block's first in the next.
            const T* c_next = t + 1 < tiles ? c.row(i0 + R) + j0 : c.row(ib) + (last ? p_begin * W : j0 + W);
            const T* apt = ap + t * a_tile_stride<R>(kb);
            if (mr == R && nj == W) {
              if (regular[t]) {
                micro_kernel<T, R, L>(kb, apt, bp, cij, ldc, acc, c_next, &pf);
              } else {
                T* rows[R];
                for (std::size_t r = 0; r < R; ++r) rows[r] = c.row(i0 + r) + j0;
                micro_kernel<T, R, L>(kb, apt, bp, cij, ldc, acc, c_next, &pf, rows);
              }
              continue;
            }
            for (std::size_t r = 0; r < R; ++r)
              for (std::size_t j = 0; j < W; ++j)
                ct[r * W + j] = acc && r < mr && j < nj ? c.row(i0 + r)[j0 + j] : T(0);
            micro_kernel<T, R, L>(kb, apt, bp, ct, static_cast<std::ptrdiff_t>(W), true, c_next, &pf);
            for (std::size_t r = 0; r < mr; ++r) std::copy_n(ct + r * W, nj, c.row(i0 + r) + j0);
          }
        }
      }
    }
  }
}

}  // namespace gemm_detail

/// C[i, j] = (accumulate ? C[i, j] : 0) + sum_k A(i, k) B(k, j) for i < m, j < B.cols(), with
/// A(i, k) = a[i * a_row_stride + k * a_depth_stride] (k < B.depth()) and C(i, j) at
/// c[i * ldc + j]. `work` holds `gemm_workspace_size<T>()` scalars. Single-threaded: callers
/// split rows (or independent outputs) across tasks. See the file comment for the summation order
/// and gemm_detail::gemm_source for the loops. A with unit depth stride (rows of k, e.g. an
/// im2col view) is packed as row chunks (plain copies); any other A as k-major tiles.
/// `Rows` (at most `gemm_tile<T>::rows`) is the height of the micro-tile: a smaller one wastes
/// less on a few rows (e.g. 8 rows of a recurrent step); every element is computed by the same
/// instructions whatever `Rows`, so results do not depend on it.
template <class T, std::size_t Rows = gemm_tile<T>::rows>
void gemm(std::size_t m, const T* a, std::ptrdiff_t a_row_stride, std::ptrdiff_t a_depth_stride,
          const packed_rhs<T>& b, T* c, std::ptrdiff_t ldc, bool accumulate, T* work) {
  static_assert(Rows >= 1 && Rows <= gemm_tile<T>::rows, "cpc: gemm tile height above gemm_tile<T>::rows");
  if (a_depth_stride == 1 && a_row_stride != 1) {
    auto row = [=](std::size_t i) { return a + static_cast<std::ptrdiff_t>(i) * a_row_stride; };
    gemm_detail::gemm_source<T, Rows>(m, gemm_detail::a_rows<T, decltype(row)>{row}, b,
                                      gemm_detail::c_strided<T>{c, ldc}, accumulate, work);
  } else if (a_row_stride == 1) {
    auto col = [=](std::size_t k) { return a + static_cast<std::ptrdiff_t>(k) * a_depth_stride; };
    gemm_detail::gemm_source<T, Rows>(m, gemm_detail::a_cols<T, decltype(col)>{col}, b,
                                      gemm_detail::c_strided<T>{c, ldc}, accumulate, work);
  } else {
    gemm_detail::gemm_source<T, Rows>(m, gemm_detail::a_strided<T>{a, a_row_stride, a_depth_stride}, b,
                                      gemm_detail::c_strided<T>{c, ldc}, accumulate, work);
  }
}

/// `gemm` with A given by rows: A(i, k) = row(i)[k], each row contiguous in k (row(i) returns a
/// const T*; e.g. an im2col view whose edge rows live in another buffer).
template <class T, class RowFn>
void gemm_rows(std::size_t m, RowFn&& row, const packed_rhs<T>& b, T* c, std::ptrdiff_t ldc, bool accumulate,
               T* work) {
  gemm_detail::gemm_source<T>(m, gemm_detail::a_rows<T, std::decay_t<RowFn>>{row}, b,
                              gemm_detail::c_strided<T>{c, ldc}, accumulate, work);
}

/// `gemm_rows` with C given by rows as well: C(i, j) = c_row(i)[j] (c_row(i) returns a T*). Tiles
/// whose rows lie `ldc` apart are computed in place; the others (e.g. rows redirected to a
/// scratch buffer at the edges of a convolution) through a temporary tile. Only the columns of
/// B's panels [p_begin, p_end) (`gemm_tile<T>::cols` columns each) are computed, so that a wide
/// C can be done in column slices whose B stays in cache.
template <class T, class ARowFn, class CRowFn>
void gemm_rows_into(std::size_t m, ARowFn&& a_row, const packed_rhs<T>& b, CRowFn&& c_row, std::ptrdiff_t ldc,
                    bool accumulate, T* work, std::size_t p_begin = 0, std::size_t p_end = std::size_t(-1)) {
  gemm_detail::gemm_source<T>(m, gemm_detail::a_rows<T, std::decay_t<ARowFn>>{a_row}, b,
                              gemm_detail::c_rows<T, std::decay_t<CRowFn>>{c_row, ldc}, accumulate, work,
                              p_begin, p_end);
}

/// `gemm` with A given by columns: A(i, k) = col(k)[i], each column contiguous in i (col(k)
/// returns a const T*; e.g. a transposed im2col view).
template <class T, class ColFn>
void gemm_cols(std::size_t m, ColFn&& col, const packed_rhs<T>& b, T* c, std::ptrdiff_t ldc, bool accumulate,
               T* work) {
  gemm_detail::gemm_source<T>(m, gemm_detail::a_cols<T, std::decay_t<ColFn>>{col}, b,
                              gemm_detail::c_strided<T>{c, ldc}, accumulate, work);
}

}  // namespace cpc::cpu_kernels
