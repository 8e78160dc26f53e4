#pragma once
/// cpu kernels of the recurrent ops (backend/op/recurrent.hpp).
///
/// Forward of a layer: the input projections `[B*T, in] x [in, G*H]` in row blocks split across
/// tasks, then the recurrence with one task per fixed batch slice, each running its own time loop
/// with the recurrent weights packed once per call (`[slice, H] x [H, G*H]` per step) and the
/// xsimd cell. Backward mirrors it: per-step gate gradients are stored for all t, then dW_ih,
/// dW_hh, the biases and dx come from single GEMMs after the time loop.
///
/// Determinism: every GEMM here runs Eigen's GEBP kernel on operands whose column count is padded
/// to a multiple of its register block, so each output row (one batch item, one time step) is
/// computed by the same instruction sequence whatever the batch size, the chunking of the sequence
/// or the thread count. Forward results are therefore bit-identical for a batch item alone or in a
/// batch, for one pass or a stream of chunks, and for any number of threads. The cell's tail
/// lanes go through the same SIMD code as the body (zero-padded), so an element's value does not
/// depend on its position in the row either.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <type_traits>
#include <vector>

#include <Eigen/Core>
#include <xsimd/xsimd.hpp>

#include "cpc/backend/cpu/eigen.hpp"
#include "cpc/backend/op/recurrent.hpp"
#include "cpc/backend/tags.hpp"
#include "cpc/core/memory.hpp"
#include "cpc/core/threads.hpp"

namespace cpc::cpu_kernels::rnn {

using index_t = std::ptrdiff_t;

/// std::vector with Eigen's aligned allocator (the GEBP panels and workspaces).
template <class T>
using aligned_vector = std::vector<T, Eigen::aligned_allocator<T>>;

/// n rounded up to a multiple of m.
inline std::size_t round_up(std::size_t n, std::size_t m) {
  return (n + m - 1) / m * m;
}

/// A matrix A `[m, k]` packed once into the panel layout of Eigen's GEBP kernel, then multiplied
/// many times: `C += A B` with B `[k, n]` and C `[m, n]` both column-major (i.e. B's columns and
/// C's columns are the rows of row-major `[n, k]` / `[n, m]` buffers). Avoids re-packing the
/// weights at every time step and allocates nothing per call. Uses Eigen 3.4's internal GEBP API
/// (gemm_pack_lhs / gemm_pack_rhs / gebp_kernel), the same calls Eigen's own products make.
template <class T>
class packed_matrix {
  using traits = Eigen::internal::gebp_traits<T, T>;
  static constexpr std::size_t align_elems = 64;  // keeps every packed panel 64-byte aligned

 public:
  /// GEBP's register block of columns; column counts that are multiples of it keep every column
  /// on the same code path.
  static constexpr std::size_t column_block = static_cast<std::size_t>(traits::nr);

  /// Packs A `[m, k]` stored with leading dimension `lda` in `Order` (Eigen::RowMajor: A(i, p) at
  /// a[i * lda + p]; Eigen::ColMajor: at a[p * lda + i]).
  template <int Order>
  void pack(const T* a, index_t lda, index_t m, index_t k) {
    m_ = m;
    k_ = k;
    // Eigen's depth blocking depends on k alone (not on m or n), so it is the same for every call.
    index_t kc = k, mc = m, nc = traits::nr;
    Eigen::internal::computeProductBlockingSizes<T, T, 1, index_t>(kc, mc, nc, index_t(1));
    kc_ = std::max<index_t>(kc, 1);
    offsets_.clear();
    std::size_t total = 0;
    for (index_t k0 = 0; k0 < k; k0 += kc_) {
      offsets_.push_back(total);
      total += round_up(static_cast<std::size_t>(m * std::min(kc_, k - k0)), align_elems);
    }
    ensure_size(data_, total);
    using mapper = Eigen::internal::const_blas_data_mapper<T, index_t, Order>;
    Eigen::internal::gemm_pack_lhs<T, index_t, mapper, traits::mr, traits::LhsProgress,
                                   typename traits::LhsPacket4Packing, Order>
        pack_lhs;
    std::size_t p = 0;
    for (index_t k0 = 0; k0 < k; k0 += kc_, ++p) {
      const T* a0 = Order == Eigen::RowMajor ? a + k0 : a + k0 * lda;
      pack_lhs(data_.data() + offsets_[p], mapper(a0, lda), std::min(kc_, k - k0), m);
    }
  }

  /// Scalars of `work` that `multiply_add` needs for `n` columns.
  std::size_t work_size(index_t n) const { return static_cast<std::size_t>(kc_ * std::max<index_t>(n, 1)); }

  /// C += A B: B column-major `[k, n]` (column j at b + j * ldb), C column-major `[m, n]` (column j
  /// at c + j * ldc). `work` holds `work_size(n)` aligned scalars. Pass n a multiple of column_block for
  /// results that do not depend on a column's position (see the file comment).
  void multiply_add(const T* b, index_t ldb, index_t n, T* c, index_t ldc, T* work) const {
    if (n == 0 || m_ == 0) return;
    using rhs_mapper = Eigen::internal::const_blas_data_mapper<T, index_t, Eigen::ColMajor>;
    using res_mapper = Eigen::internal::blas_data_mapper<T, index_t, Eigen::ColMajor, Eigen::Unaligned, 1>;
    Eigen::internal::gemm_pack_rhs<T, index_t, rhs_mapper, traits::nr, Eigen::ColMajor> pack_rhs;
    Eigen::internal::gebp_kernel<T, T, index_t, res_mapper, traits::mr, traits::nr, false, false> gebp;
    std::size_t p = 0;
    for (index_t k0 = 0; k0 < k_; k0 += kc_, ++p) {
      const index_t kp = std::min(kc_, k_ - k0);
      pack_rhs(work, rhs_mapper(b + k0, ldb), kp, n);
      gebp(res_mapper(c, ldc), data_.data() + offsets_[p], work, m_, kp, n, T(1));
    }
  }

  index_t rows() const { return m_; }

 private:
  index_t m_ = 0, k_ = 0, kc_ = 1;
  std::vector<std::size_t> offsets_;
  aligned_vector<T> data_;
};

// ---- element-wise maths of one time step -------------------------------------------------------

/// The SIMD register type of the cells.
template <class T>
using simd = xsimd::batch<T>;

/// Loads / stores whole SIMD registers.
template <class T>
struct full_lanes {
  simd<T> load(const T* p) const { return simd<T>::load_unaligned(p); }
  void store(T* p, const simd<T>& v) const { v.store_unaligned(p); }
};

/// Loads / stores the first `count` lanes of a register (the tail of a row), zero-padding loads.
/// The tail goes through the same SIMD code as the body, so every element of a row is computed
/// identically whatever its position.
template <class T>
struct partial_lanes {
  std::size_t count;
  simd<T> load(const T* p) const {
    alignas(64) std::array<T, simd<T>::size> buf{};
    std::copy_n(p, count, buf.data());
    return simd<T>::load_aligned(buf.data());
  }
  void store(T* p, const simd<T>& v) const {
    alignas(64) std::array<T, simd<T>::size> buf;
    v.store_aligned(buf.data());
    std::copy_n(buf.data(), count, p);
  }
};

/// Calls `kernel(j, lanes)` for j = 0, W, 2W, ... < n, where `lanes` loads/stores W = SIMD width
/// elements (fewer for the tail).
template <class T, class Kernel>
void for_each_lane(std::size_t n, Kernel&& kernel) {
  constexpr std::size_t w = simd<T>::size;
  std::size_t j = 0;
  for (; j + w <= n; j += w) kernel(j, full_lanes<T>{});
  if (j < n) kernel(j, partial_lanes<T>{n - j});
}

// GCC 12 reports -Wuninitialized inside its own AVX-512 intrinsics (the `_mm512_undefined_*`
// pass-through operand of xsimd's rounding in exp / tanh): a false positive, silenced here only.
// The cells' step functions are flattened so that xsimd's maths is inlined into this region
// (which also makes the per-step loops free of calls).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#define CPC_RNN_FLATTEN [[gnu::flatten]]
#else
#define CPC_RNN_FLATTEN
#endif

/// Applies a scalar function to every lane (the double path: tests and gradient checks, where
/// libm's accuracy matters more than speed).
template <class T, class F>
simd<T> per_lane(const simd<T>& x, F&& f) {
  alignas(64) std::array<T, simd<T>::size> buf;
  x.store_aligned(buf.data());
  for (auto& v : buf) v = f(v);
  return simd<T>::load_aligned(buf.data());
}

/// Logistic sigmoid 1 / (1 + exp(-x)), lane-wise.
template <class T>
simd<T> sigmoid(const simd<T>& x) {
  if constexpr (std::is_same_v<T, float>)
    return simd<T>(T(1)) / (simd<T>(T(1)) + xsimd::exp(-x));
  else
    return per_lane<T>(x, [](T v) { return T(1) / (T(1) + std::exp(-v)); });
}

/// Hyperbolic tangent, lane-wise.
template <class T>
simd<T> tanh(const simd<T>& x) {
  if constexpr (std::is_same_v<T, float>)
    return xsimd::tanh(x);
  else
    return per_lane<T>(x, [](T v) { return std::tanh(v); });
}

/// Pointers of one batch item at one time step, forward. Rows of H scalars unless noted.
template <class T>
struct step_forward {
  T* gates;         ///< [G*H] in: x W_ih^T + b_ih; out: the activated gates
  const T* rec;     ///< [G*H] h_prev W_hh^T + b_hh
  const T* h_prev;  ///< h_{t-1}
  const T* c_prev;  ///< c_{t-1} (LSTM only)
  T* h;             ///< out: h_t
  T* extra;         ///< out: what backward needs besides the gates (GRU: W_hn h + b_hn; LSTM: c_t)
};

/// Pointers of one batch item at one time step, backward.
template <class T>
struct step_backward {
  const T* gates;   ///< [G*H] activated gates from forward
  const T* extra;   ///< GRU: W_hn h_prev + b_hn; LSTM: c_t
  const T* h_prev;  ///< h_{t-1}
  const T* c_prev;  ///< c_{t-1} (LSTM only)
  const T* dy;      ///< dL/dh_t from the layer's outputs
  T* dh;            ///< in: dL/dh_t through the recurrence; out: dL/dh_{t-1} except the W_hh path
  T* dc;            ///< LSTM: in dL/dc_t through the recurrence, out dL/dc_{t-1}
  T* dgi;           ///< [G*H] out: dL/d(x W_ih^T + b_ih)
  T* dgh;           ///< [G*H] out: dL/d(h W_hh^T + b_hh)
};

/// GRU cell, torch.nn.GRU: r = s(Wir x + bir + Whr h + bhr), z = s(Wiz x + biz + Whz h + bhz),
/// n = tanh(Win x + bin + r * (Whn h + bhn)), h' = (1 - z) * n + z * h; gate order r, z, n.
struct gru_cell {
  static constexpr std::size_t gates = 3;
  static constexpr bool has_cell_state = false;

  template <class T>
  CPC_RNN_FLATTEN static void forward(std::size_t H, const step_forward<T>& s) {
    for_each_lane<T>(H, [&](std::size_t j, const auto& io) {
      const auto r = sigmoid<T>(io.load(s.gates + j) + io.load(s.rec + j));
      const auto z = sigmoid<T>(io.load(s.gates + H + j) + io.load(s.rec + H + j));
      const auto hn = io.load(s.rec + 2 * H + j);
      const auto n = rnn::tanh<T>(io.load(s.gates + 2 * H + j) + r * hn);
      const auto hp = io.load(s.h_prev + j);
      io.store(s.gates + j, r);
      io.store(s.gates + H + j, z);
      io.store(s.gates + 2 * H + j, n);
      io.store(s.extra + j, hn);
      io.store(s.h + j, n + z * (hp - n));
    });
  }

  template <class T>
  CPC_RNN_FLATTEN static void backward(std::size_t H, const step_backward<T>& s) {
    for_each_lane<T>(H, [&](std::size_t j, const auto& io) {
      using V = simd<T>;
      const V one(T(1));
      const auto r = io.load(s.gates + j);
      const auto z = io.load(s.gates + H + j);
      const auto n = io.load(s.gates + 2 * H + j);
      const auto dh = io.load(s.dy + j) + io.load(s.dh + j);
      const auto dan = dh * (one - z) * (one - n * n);
      const auto daz = dh * (io.load(s.h_prev + j) - n) * z * (one - z);
      const auto dar = dan * io.load(s.extra + j) * r * (one - r);
      io.store(s.dh + j, dh * z);
      io.store(s.dgi + j, dar);
      io.store(s.dgi + H + j, daz);
      io.store(s.dgi + 2 * H + j, dan);
      io.store(s.dgh + j, dar);
      io.store(s.dgh + H + j, daz);
      io.store(s.dgh + 2 * H + j, dan * r);
    });
  }
};

/// LSTM cell, torch.nn.LSTM: i, f, o = s(W_i* x + b_i* + W_h* h + b_h*), g = tanh(...),
/// c' = f * c + i * g, h' = o * tanh(c'); gate order i, f, g, o.
struct lstm_cell {
  static constexpr std::size_t gates = 4;
  static constexpr bool has_cell_state = true;

  template <class T>
  CPC_RNN_FLATTEN static void forward(std::size_t H, const step_forward<T>& s) {
    for_each_lane<T>(H, [&](std::size_t j, const auto& io) {
      const auto i = sigmoid<T>(io.load(s.gates + j) + io.load(s.rec + j));
      const auto f = sigmoid<T>(io.load(s.gates + H + j) + io.load(s.rec + H + j));
      const auto g = rnn::tanh<T>(io.load(s.gates + 2 * H + j) + io.load(s.rec + 2 * H + j));
      const auto o = sigmoid<T>(io.load(s.gates + 3 * H + j) + io.load(s.rec + 3 * H + j));
      const auto c = f * io.load(s.c_prev + j) + i * g;
      io.store(s.gates + j, i);
      io.store(s.gates + H + j, f);
      io.store(s.gates + 2 * H + j, g);
      io.store(s.gates + 3 * H + j, o);
      io.store(s.extra + j, c);
      io.store(s.h + j, o * rnn::tanh<T>(c));
    });
  }

  template <class T>
  CPC_RNN_FLATTEN static void backward(std::size_t H, const step_backward<T>& s) {
    for_each_lane<T>(H, [&](std::size_t j, const auto& io) {
      using V = simd<T>;
      const V one(T(1));
      const auto i = io.load(s.gates + j);
      const auto f = io.load(s.gates + H + j);
      const auto g = io.load(s.gates + 2 * H + j);
      const auto o = io.load(s.gates + 3 * H + j);
      const auto tc = rnn::tanh<T>(io.load(s.extra + j));
      const auto dh = io.load(s.dy + j) + io.load(s.dh + j);
      const auto dc = io.load(s.dc + j) + dh * o * (one - tc * tc);
      const auto dai = dc * g * i * (one - i);
      const auto daf = dc * io.load(s.c_prev + j) * f * (one - f);
      const auto dag = dc * i * (one - g * g);
      const auto dao = dh * tc * o * (one - o);
      io.store(s.dc + j, dc * f);
      io.store(s.dh + j, V(T(0)));
      const std::array<V, 4> da{dai, daf, dag, dao};
      for (std::size_t q = 0; q < 4; ++q) {
        io.store(s.dgi + q * H + j, da[q]);
        io.store(s.dgh + q * H + j, da[q]);
      }
    });
  }
};

#undef CPC_RNN_FLATTEN
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// Calls `f(Cell{})` with the cell type of `c`.
template <class F>
void with_cell(ops::rnn_cell c, F&& f) {
  if (c == ops::rnn_cell::gru)
    f(gru_cell{});
  else
    f(lstm_cell{});
}

/// `Cell::forward` for each row of `a`, in order (single-threaded).
template <class Cell, class T>
void cell_forward_rows(const ops::rnn_cell_forward_args<T>& a) {
  for (std::size_t r = 0; r < a.rows; ++r) {
    const auto i = static_cast<index_t>(r);
    Cell::forward(a.hidden,
                  step_forward<T>{a.gates + i * a.ld_gates, a.rec + i * a.ld_rec, a.h_prev + i * a.ld_h_prev,
                                  Cell::has_cell_state ? a.c_prev + i * a.ld_c_prev : nullptr,
                                  a.h + i * a.ld_h, a.extra + i * a.ld_extra});
  }
}

/// `Cell::backward` for each row of `a`, in order (single-threaded).
template <class Cell, class T>
void cell_backward_rows(const ops::rnn_cell_backward_args<T>& a) {
  for (std::size_t r = 0; r < a.rows; ++r) {
    const auto i = static_cast<index_t>(r);
    Cell::backward(
        a.hidden,
        step_backward<T>{a.gates + i * a.ld_gates, a.extra + i * a.ld_extra, a.h_prev + i * a.ld_h_prev,
                         Cell::has_cell_state ? a.c_prev + i * a.ld_c_prev : nullptr, a.dy + i * a.ld_dy,
                         a.dh + i * a.ld_dh, Cell::has_cell_state ? a.dc + i * a.ld_dc : nullptr,
                         a.dgi + i * a.ld_dgi, a.dgh + i * a.ld_dgh});
  }
}

/// Rows per input-projection GEMM.
inline constexpr std::size_t proj_block = 64;
/// Gate rows per task in the weight gradients.
inline constexpr std::size_t grad_block = 64;
/// Rows per task in dx.
inline constexpr std::size_t row_block = 256;
/// Batch items per recurrence task, at most.
inline constexpr std::size_t max_slice = 16;

/// Batch items per recurrence task: a multiple of `cb` (GEBP's column block) sized so that the
/// threads get one slice each. Results do not depend on it (see the file comment).
inline std::size_t slice_size(std::size_t B, std::size_t cb) {
  const std::size_t per_thread = (B + num_threads() - 1) / num_threads();
  return std::clamp<std::size_t>(round_up(per_thread, cb), cb, round_up(max_slice, cb));
}

/// Sets `n` rows of `width` scalars to `bias` (zeros when null).
template <class T>
void fill_rows(const T* bias, std::size_t width, T* rows_ptr, std::size_t n) {
  for (std::size_t r = 0; r < n; ++r) {
    if (bias)
      std::copy_n(bias, width, rows_ptr + r * width);
    else
      std::fill_n(rows_ptr + r * width, width, T(0));
  }
}

}  // namespace cpc::cpu_kernels::rnn

namespace cpc::ops {

/// cpu: the packed weights (GEBP panels) and per-task buffers of the recurrent kernels.
template <class T>
struct recurrent_workspace<cpu, T> {
  cpu_kernels::rnn::packed_matrix<T> w_ih, w_hh, w_hh_t;
  std::vector<cpu_kernels::rnn::aligned_vector<T>> proj, slices;
};

/// cpu rnn_cell_forward: the xsimd cell row by row (rows are independent).
template <class T>
void run(cpu, const rnn_cell_forward_args<T>& a) {
  cpu_kernels::rnn::with_cell(a.cell,
                              [&](auto cell) { cpu_kernels::rnn::cell_forward_rows<decltype(cell)>(a); });
}

/// cpu rnn_cell_backward: the xsimd cell's backward row by row.
template <class T>
void run(cpu, const rnn_cell_backward_args<T>& a) {
  cpu_kernels::rnn::with_cell(a.cell,
                              [&](auto cell) { cpu_kernels::rnn::cell_backward_rows<decltype(cell)>(a); });
}

/// cpu recurrent_input_projection: blocks of `proj_block` rows through GEBP with W_ih packed once;
/// a partial block is padded to a multiple of GEBP's column block so that each row is computed
/// the same way. Bias first, then the products accumulate onto it.
template <class T>
void run(cpu, const recurrent_projection_args<T>& a, recurrent_workspace<cpu, T>& ws) {
  namespace k = cpu_kernels::rnn;
  using k::index_t;
  constexpr std::size_t cb = k::packed_matrix<T>::column_block;
  static_assert(k::proj_block % cb == 0, "cpc: proj_block must be a multiple of GEBP's column block");
  if (a.rows == 0) return;
  const std::size_t in = a.in, GH = a.width, rows = a.rows;
  ws.w_ih.template pack<Eigen::RowMajor>(a.w_ih, static_cast<index_t>(in), static_cast<index_t>(GH),
                                         static_cast<index_t>(in));
  const std::size_t blocks = (rows + k::proj_block - 1) / k::proj_block;
  const std::size_t parts = std::min(blocks, num_threads());
  if (ws.proj.size() < parts) ws.proj.resize(parts);
  const std::size_t work = ws.w_ih.work_size(k::proj_block);
  const auto sin = static_cast<index_t>(in), sGH = static_cast<index_t>(GH);
  parallel_for(0, parts, [&](std::size_t part) {
    auto& w = ws.proj[part];
    ensure_size(w, work + cb * in + cb * GH);
    T* pack = w.data();
    T* xpad = pack + work;
    T* ypad = xpad + cb * in;
    for (std::size_t blk = part * blocks / parts; blk < (part + 1) * blocks / parts; ++blk) {
      const std::size_t r0 = blk * k::proj_block, n = std::min(k::proj_block, rows - r0), n4 = n / cb * cb;
      T* y0 = a.gates + r0 * GH;
      k::fill_rows(a.b_ih, GH, y0, n);
      ws.w_ih.multiply_add(a.x + r0 * in, sin, static_cast<index_t>(n4), y0, sGH, pack);
      if (n4 == n) continue;
      std::fill_n(xpad, cb * in, T(0));
      std::copy_n(a.x + (r0 + n4) * in, (n - n4) * in, xpad);
      k::fill_rows(a.b_ih, GH, ypad, cb);
      ws.w_ih.multiply_add(xpad, sin, static_cast<index_t>(cb), ypad, sGH, pack);
      std::copy_n(ypad, (n - n4) * GH, y0 + n4 * GH);
    }
  });
}

/// cpu recurrent_forward: one task per batch slice, each with its own time loop; per step the
/// slice's h_{t-1} (zero-padded to GEBP's column block) times the packed W_hh onto b_hh, then the
/// cell item by item.
template <class T>
void run(cpu, const recurrent_forward_args<T>& a, recurrent_workspace<cpu, T>& ws) {
  namespace k = cpu_kernels::rnn;
  using k::index_t;
  constexpr std::size_t cb = k::packed_matrix<T>::column_block;
  const std::size_t B = a.batch, T_ = a.time, H = a.hidden, GH = rnn_gates(a.cell) * H;
  if (T_ == 0 || B == 0) return;
  ws.w_hh.template pack<Eigen::RowMajor>(a.w_hh, static_cast<index_t>(H), static_cast<index_t>(GH),
                                         static_cast<index_t>(H));
  const std::size_t S = k::slice_size(B, cb), slices = (B + S - 1) / S;
  if (ws.slices.size() < slices) ws.slices.resize(slices);
  const std::size_t pack_size = ws.w_hh.work_size(static_cast<index_t>(S));
  const bool lstm = rnn_has_cell_state(a.cell);
  parallel_for(0, slices, [&](std::size_t s) {
    const std::size_t b0 = s * S, nb = std::min(S, B - b0), nb4 = k::round_up(nb, cb);
    auto& w = ws.slices[s];
    ensure_size(w, pack_size + S * H + S * GH);
    T* pack = w.data();
    T* hp = pack + pack_size;  // [nb4, H] h_{t-1} of the slice, zero-padded
    T* rec = hp + S * H;       // [nb4, GH] h_{t-1} W_hh^T + b_hh
    std::fill_n(hp, nb4 * H, T(0));
    for (std::size_t t = 0; t < T_; ++t) {
      for (std::size_t i = 0; i < nb; ++i) {
        const std::size_t b = b0 + i;
        std::copy_n(t == 0 ? a.h0 + b * H : a.h + (b * T_ + t - 1) * H, H, hp + i * H);
      }
      k::fill_rows(a.b_hh, GH, rec, nb4);
      ws.w_hh.multiply_add(hp, static_cast<index_t>(H), static_cast<index_t>(nb4), rec,
                           static_cast<index_t>(GH), pack);
      const std::size_t r0 = b0 * T_ + t;
      const auto sT = static_cast<index_t>(T_);
      const T* c_prev = nullptr;
      index_t ld_c = 0;
      if (lstm) {
        c_prev = t == 0 ? a.c0 + b0 * H : a.extra + (r0 - 1) * H;
        ld_c = t == 0 ? static_cast<index_t>(H) : sT * static_cast<index_t>(H);
      }
      k::with_cell(a.cell, [&](auto cell) {
        k::cell_forward_rows<decltype(cell)>(
            rnn_cell_forward_args<T>{.cell = a.cell,
                                     .rows = nb,
                                     .hidden = H,
                                     .gates = a.gates + r0 * GH,
                                     .ld_gates = sT * static_cast<index_t>(GH),
                                     .rec = rec,
                                     .ld_rec = static_cast<index_t>(GH),
                                     .h_prev = hp,
                                     .ld_h_prev = static_cast<index_t>(H),
                                     .c_prev = c_prev,
                                     .ld_c_prev = ld_c,
                                     .h = a.h + r0 * H,
                                     .ld_h = sT * static_cast<index_t>(H),
                                     .extra = a.extra + r0 * H,
                                     .ld_extra = sT * static_cast<index_t>(H)});
      });
    }
  });
}

/// cpu recurrent_backward: one task per batch slice, each with its own reverse time loop; per
/// step the cell's backward item by item, then dh += dG_h W_hh through the packed W_hh^T.
template <class T>
void run(cpu, const recurrent_backward_args<T>& a, recurrent_workspace<cpu, T>& ws) {
  namespace k = cpu_kernels::rnn;
  using k::index_t;
  constexpr std::size_t cb = k::packed_matrix<T>::column_block;
  const std::size_t B = a.batch, T_ = a.time, H = a.hidden, GH = rnn_gates(a.cell) * H;
  if (T_ == 0 || B == 0) return;
  // W_hh^T `[H, GH]` is the column-major view of W_hh `[GH, H]` row-major.
  ws.w_hh_t.template pack<Eigen::ColMajor>(a.w_hh, static_cast<index_t>(H), static_cast<index_t>(H),
                                           static_cast<index_t>(GH));
  const std::size_t S = k::slice_size(B, cb), slices = (B + S - 1) / S;
  if (ws.slices.size() < slices) ws.slices.resize(slices);
  const std::size_t pack_size = ws.w_hh_t.work_size(static_cast<index_t>(S));
  const bool lstm = rnn_has_cell_state(a.cell);
  parallel_for(0, slices, [&](std::size_t s) {
    const std::size_t b0 = s * S, nb = std::min(S, B - b0), nb4 = k::round_up(nb, cb);
    auto& w = ws.slices[s];
    ensure_size(w, pack_size + 2 * S * H + S * GH);
    T* pack = w.data();
    T* dh = pack + pack_size;  // [nb4, H] dL/dh_t through the recurrence
    T* dc = dh + S * H;        // [nb4, H] dL/dc_t through the recurrence (LSTM)
    T* dgh = dc + S * H;       // [nb4, GH] this step's recurrent gate gradients
    std::fill_n(dh, nb4 * H, T(0));
    std::fill_n(dc, nb4 * H, T(0));
    std::fill_n(dgh, nb4 * GH, T(0));
    for (std::size_t i = 0; i < nb; ++i) std::fill_n(a.dgh + ((b0 + i) * T_ + T_ - 1) * GH, GH, T(0));
    for (std::size_t t = T_; t-- > 0;) {
      for (std::size_t i = 0; i < nb; ++i) {
        const std::size_t b = b0 + i, r = b * T_ + t;
        const T* h_prev = t == 0 ? a.h0 + b * H : a.h + (r - 1) * H;
        const T* c_prev = nullptr;
        if (lstm) c_prev = t == 0 ? a.c0 + b * H : a.extra + (r - 1) * H;
        k::with_cell(a.cell, [&](auto cell) {
          k::cell_backward_rows<decltype(cell)>(rnn_cell_backward_args<T>{.cell = a.cell,
                                                                          .rows = 1,
                                                                          .hidden = H,
                                                                          .gates = a.gates + r * GH,
                                                                          .extra = a.extra + r * H,
                                                                          .h_prev = h_prev,
                                                                          .c_prev = c_prev,
                                                                          .dy = a.dy + r * H,
                                                                          .dh = dh + i * H,
                                                                          .dc = dc + i * H,
                                                                          .dgi = a.dgi + r * GH,
                                                                          .dgh = dgh + i * GH});
        });
        std::copy_n(dgh + i * GH, GH, t == 0 ? a.dgh0 + b * GH : a.dgh + (r - 1) * GH);
      }
      if (t > 0)
        ws.w_hh_t.multiply_add(dgh, static_cast<index_t>(GH), static_cast<index_t>(nb4), dh,
                               static_cast<index_t>(H), pack);
    }
  });
}

/// cpu recurrent_weight_gradients: Eigen products over all (b, t), tasks own disjoint blocks of
/// `grad_block` gate rows; bias gradients are Eigen column sums in the same tasks.
template <class T>
void run(cpu, const recurrent_weight_grad_args<T>& a) {
  namespace k = cpu_kernels::rnn;
  using k::index_t;
  const std::size_t GH = a.width, H = a.hidden, in = a.in;
  const auto srows = static_cast<index_t>(a.rows), sGH = static_cast<index_t>(GH),
             sin = static_cast<index_t>(in), sH = static_cast<index_t>(H);
  const std::size_t blocks = (GH + k::grad_block - 1) / k::grad_block;
  parallel_for(0, blocks, [&](std::size_t blk) {
    const std::size_t o0 = blk * k::grad_block;
    const auto n = static_cast<index_t>(std::min(k::grad_block, GH - o0));
    const auto dgi = cpu_kernels::strided_map(a.dgi + o0, srows, n, sGH);
    const auto dgh = cpu_kernels::strided_map(a.dgh + o0, srows, n, sGH);
    const auto dgh0 = cpu_kernels::strided_map(a.dgh0 + o0, static_cast<index_t>(a.batch), n, sGH);
    cpu_kernels::matrix_map(a.dw_ih + o0 * in, n, sin).noalias() +=
        dgi.transpose() * cpu_kernels::matrix_map(a.x, srows, sin);
    auto dw_hh = cpu_kernels::matrix_map(a.dw_hh + o0 * H, n, sH);
    dw_hh.noalias() += dgh.transpose() * cpu_kernels::matrix_map(a.h, srows, sH);
    if (a.h0)
      dw_hh.noalias() += dgh0.transpose() * cpu_kernels::matrix_map(a.h0, static_cast<index_t>(a.batch), sH);
    if (a.db_ih) cpu_kernels::row_vector_map(a.db_ih + o0, n) += dgi.colwise().sum();
    if (a.db_hh) cpu_kernels::row_vector_map(a.db_hh + o0, n) += dgh.colwise().sum() + dgh0.colwise().sum();
  });
}

/// cpu recurrent_input_gradient: dx = dgi W_ih in blocks of `row_block` rows (Eigen products).
template <class T>
void run(cpu, const recurrent_input_grad_args<T>& a) {
  namespace k = cpu_kernels::rnn;
  using k::index_t;
  const auto sGH = static_cast<index_t>(a.width), sin = static_cast<index_t>(a.in);
  const auto w = cpu_kernels::matrix_map(a.w_ih, sGH, sin);
  parallel_for(0, (a.rows + k::row_block - 1) / k::row_block, [&](std::size_t blk) {
    const std::size_t r0 = blk * k::row_block;
    const auto n = static_cast<index_t>(std::min(k::row_block, a.rows - r0));
    cpu_kernels::matrix_map(a.dx + r0 * a.in, n, sin).noalias() =
        cpu_kernels::matrix_map(a.dgi + r0 * a.width, n, sGH) * w;
  });
}

}  // namespace cpc::ops
