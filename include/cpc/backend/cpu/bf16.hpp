#pragma once
/// Building blocks of the GEMM's bf16 path (`gemm.hpp`, `cpc/core/precision.hpp`): fp32 -> bf16
/// rounding into the layouts of Intel AMX tiles, and the tile configuration.
///
/// Layouts (bf16 values stored two per 32-bit slot of a float buffer, the lower k in the low half):
/// - A tile: 16 rows x 32 k, each row 64 bytes (32 bf16 of one row, ascending k).
/// - B tile ("pairs"): 16 rows of k-pairs x 16 columns, each row 64 bytes: slot j of pair row q
///   holds (B(2q, j), B(2q + 1, j)).
/// Rounding: to nearest even (`vcvtne2ps2bf16`), NaN stays NaN. Source: Intel SDM, AMX
/// `TDPBF16PS` and AVX512-BF16 `VCVTNE2PS2BF16`.
#include <bit>
#include <cstddef>
#include <cstdint>

#include "cpc/core/precision.hpp"

#if CPC_HAVE_AMX_BF16
#include <immintrin.h>

namespace cpc::cpu_kernels::bf16 {

/// Rounds lo[0..16) and hi[0..16) to bf16 and interleaves them: 32-bit slot j = (lo[j], hi[j]).
inline __m512 pairs(__m512 lo, __m512 hi) {
  const __m512i l = _mm512_cvtepu16_epi32(std::bit_cast<__m256i>(_mm512_cvtneps_pbh(lo)));
  const __m512i h = _mm512_cvtepu16_epi32(std::bit_cast<__m256i>(_mm512_cvtneps_pbh(hi)));
  return _mm512_castsi512_ps(_mm512_or_si512(l, _mm512_slli_epi32(h, 16)));
}

/// Rounds src[0..n) (n <= 32; zeros past n) to 32 bf16 in order, written to dst (64 bytes: 16
/// slots of a float buffer).
inline void row32(const float* src, std::size_t n, float* dst) {
  __m512 a, b;
  if (n >= 32) {
    a = _mm512_loadu_ps(src);
    b = _mm512_loadu_ps(src + 16);
  } else {
    const auto mask = [](std::size_t k) {
      return static_cast<__mmask16>(k >= 16 ? 0xFFFFu : (1u << k) - 1u);
    };
    a = _mm512_maskz_loadu_ps(mask(n), src);
    b = n > 16 ? _mm512_maskz_loadu_ps(mask(n - 16), src + 16) : _mm512_setzero_ps();
  }
  _mm512_storeu_si512(dst, std::bit_cast<__m512i>(_mm512_cvtne2ps_pbh(b, a)));
}

/// In-place transpose of 16 x 16 32-bit slots: afterwards r[i] lane j = before r[j] lane i.
inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int i = 0; i < 16; i += 8)
    for (int j = 0; j < 4; ++j) {
      t[i + j] = _mm512_shuffle_i32x4(r[i + j], r[i + j + 4], 0x88);
      t[i + j + 4] = _mm512_shuffle_i32x4(r[i + j], r[i + j + 4], 0xdd);
    }
  for (int j = 0; j < 8; ++j) {
    r[j] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0x88);
    r[j + 8] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0xdd);
  }
}

/// An A tile (16 rows x 32 k, 64-byte rows at dst) from columns: A(r, k) = col(k)[r], r < rows,
/// k < depth (zeros beyond either); `col(k)` returns a const float*.
template <class ColFn>
inline void a_tile_from_columns(ColFn&& col, std::size_t rows, std::size_t depth, float* dst) {
  const auto mask = static_cast<__mmask16>(rows >= 16 ? 0xFFFFu : (1u << rows) - 1u);
  __m512i q[16];
  for (std::size_t p = 0; p < 16; ++p) {
    const std::size_t k = 2 * p;
    const __m512 lo = k < depth ? _mm512_maskz_loadu_ps(mask, col(k)) : _mm512_setzero_ps();
    const __m512 hi = k + 1 < depth ? _mm512_maskz_loadu_ps(mask, col(k + 1)) : _mm512_setzero_ps();
    q[p] = _mm512_castps_si512(pairs(lo, hi));  // lane r = (A(r, k), A(r, k + 1))
  }
  transpose16(q);  // q[r] lane p = pair p of row r
  for (std::size_t r = 0; r < 16; ++r) _mm512_storeu_si512(dst + r * 16, q[r]);
}

/// The tile configuration of the GEMM: tiles 0-3 C (16 x 16 fp32), 4-5 A, 6-7 B; every tile 16
/// rows of 64 bytes. Loaded by `tile_scope` for the duration of one GEMM call.
struct alignas(64) tile_config {
  std::uint8_t palette = 1, start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  std::uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};

/// Loads the tile configuration on this thread; releases the tiles when it ends.
class tile_scope {
 public:
  tile_scope() {
    static const tile_config config{};
    _tile_loadconfig(&config);
  }
  ~tile_scope() { _tile_release(); }
  tile_scope(const tile_scope&) = delete;
  tile_scope& operator=(const tile_scope&) = delete;
};

}  // namespace cpc::cpu_kernels::bf16

#endif  // CPC_HAVE_AMX_BF16
