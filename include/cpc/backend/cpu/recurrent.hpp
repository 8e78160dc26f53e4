#pragma once
/// cpu kernels of the recurrent ops (backend/op/recurrent.hpp).
///
/// The time loops run one task per fixed batch slice, each with its own loop over time and no
/// synchronisation between steps: forward, per step, rec = h_{t-1} W_hh^T through the
/// register-blocked GEMM of backend/cpu/gemm.hpp (W_hh^T packed once per call, the slice's rows
/// of h_{t-1} read in place), then the xsimd cell for the slice's rows; backward, per step, the
/// cell's backward, then dh_{t-1} += dG_h W_hh through the same GEMM (W_hh packed once per call).
///
/// Determinism: cpu_kernels::gemm computes each row of C from its own row of A alone, with the
/// same fused multiply-adds in the same order whatever the number of rows, the row's position in
/// its tile or the tile height (see its file comment), and the cell's tail lanes go through the
/// same SIMD code as the body (zero-padded). So each output row (one batch item, one time step)
/// is bit-identical whatever the batch, the slice it falls in, the thread count, or the chunking
/// of the sequence.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <type_traits>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "cpc/backend/cpu/gemm.hpp"
#include "cpc/backend/op/recurrent.hpp"
#include "cpc/backend/tags.hpp"
#include "cpc/core/memory.hpp"
#include "cpc/core/threads.hpp"

namespace cpc::cpu_kernels::rnn {

using index_t = std::ptrdiff_t;

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
  T* gates;         ///< [G*H] in: x W_ih^T; out: the activated gates
  const T* rec;     ///< [G*H] h_prev W_hh^T
  const T* b_ih;    ///< [G*H] or null
  const T* b_hh;    ///< [G*H] or null
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

/// p[k] + bias[k] for the lanes at k (p[k] alone when there is no bias).
template <class Lanes, class T>
simd<T> with_bias(const Lanes& io, const T* p, const T* bias, std::size_t k) {
  return bias ? io.load(p + k) + io.load(bias + k) : io.load(p + k);
}

/// GRU cell, torch.nn.GRU: r = s(Wir x + bir + Whr h + bhr), z = s(Wiz x + biz + Whz h + bhz),
/// n = tanh(Win x + bin + r * (Whn h + bhn)), h' = (1 - z) * n + z * h; gate order r, z, n.
struct gru_cell {
  static constexpr std::size_t gates = 3;
  static constexpr bool has_cell_state = false;

  template <class T>
  CPC_RNN_FLATTEN static void forward(std::size_t H, const step_forward<T>& s) {
    for_each_lane<T>(H, [&](std::size_t j, const auto& io) {
      const auto a = [&](std::size_t q) { return with_bias(io, s.gates, s.b_ih, q * H + j); };
      const auto c = [&](std::size_t q) { return with_bias(io, s.rec, s.b_hh, q * H + j); };
      const auto r = sigmoid<T>(a(0) + c(0));
      const auto z = sigmoid<T>(a(1) + c(1));
      const auto hn = c(2);
      const auto n = rnn::tanh<T>(a(2) + r * hn);
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
      const auto a = [&](std::size_t q) {
        return with_bias(io, s.gates, s.b_ih, q * H + j) + with_bias(io, s.rec, s.b_hh, q * H + j);
      };
      const auto i = sigmoid<T>(a(0));
      const auto f = sigmoid<T>(a(1));
      const auto g = rnn::tanh<T>(a(2));
      const auto o = sigmoid<T>(a(3));
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
    Cell::forward(a.hidden, step_forward<T>{a.gates + i * a.ld_gates, a.rec + i * a.ld_rec, a.b_ih, a.b_hh,
                                            a.h_prev + i * a.ld_h_prev,
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

/// Batch items per recurrence task, at most.
inline constexpr std::size_t max_slice = 16;

/// Batch items per recurrence task: enough that the threads get one slice each, at most
/// `max_slice`. Results do not depend on it (see the file comment).
inline std::size_t slice_size(std::size_t B) {
  const std::size_t per_thread = (B + num_threads() - 1) / num_threads();
  return std::clamp<std::size_t>(per_thread, 1, max_slice);
}

/// C[m, n] (+)= A B through cpu_kernels::gemm, A(i, p) = a[i * lda + p], with the micro-tile
/// height R, 2R/3 or R/3 (R = gemm_tile<T>::rows: 12, 8 or 4 rows under AVX-512) that pads m the
/// least, the taller on a tie: a recurrent step has only a slice of the batch as rows (e.g. 8).
/// The arithmetic per element does not depend on the choice. Single-threaded.
template <class T>
void gemm_few_rows(std::size_t m, const T* a, index_t lda, const packed_rhs<T>& b, T* c, index_t ldc,
                   bool accumulate) {
  alignas(64) std::array<T, gemm_workspace_size<T>()> work;
  constexpr std::size_t r1 = gemm_tile<T>::rows, r2 = std::max<std::size_t>(1, 2 * r1 / 3),
                        r3 = std::max<std::size_t>(1, r1 / 3);
  auto padded = [m](std::size_t r) { return (m + r - 1) / r * r; };
  if (padded(r1) <= padded(r2) && padded(r1) <= padded(r3))
    gemm<T, r1>(m, a, lda, 1, b, c, ldc, accumulate, work.data());
  else if (padded(r2) <= padded(r3))
    gemm<T, r2>(m, a, lda, 1, b, c, ldc, accumulate, work.data());
  else
    gemm<T, r3>(m, a, lda, 1, b, c, ldc, accumulate, work.data());
}

}  // namespace cpc::cpu_kernels::rnn

namespace cpc::ops {

/// cpu: the packed recurrent weights (W_hh^T for forward, W_hh for backward; each call packs
/// them again) and each recurrence task's step buffers. Grow only.
template <class T>
struct recurrent_workspace<cpu, T> {
  cpu_kernels::packed_rhs<T> weights;
  std::vector<host_buffer<T>> slices;
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

/// cpu recurrent_forward: one task per batch slice, each with its own time loop; per step the
/// slice's rows of h_{t-1} (read in place) times the packed W_hh^T, then the cell (which adds
/// the biases).
template <class T>
void run(cpu, const recurrent_forward_args<T>& a, recurrent_workspace<cpu, T>& ws) {
  namespace k = cpu_kernels::rnn;
  using k::index_t;
  const std::size_t B = a.batch, T_ = a.time, H = a.hidden, GH = rnn_gates(a.cell) * H;
  if (T_ == 0 || B == 0) return;
  // B(p, j) = W_hh[j, p]: the [H, G*H] operand of rec = h W_hh^T.
  ws.weights.pack(a.w_hh, 1, static_cast<index_t>(H), H, GH);
  const std::size_t S = k::slice_size(B), slices = (B + S - 1) / S;
  if (ws.slices.size() < slices) ws.slices.resize(slices);
  const auto sH = static_cast<index_t>(H), sGH = static_cast<index_t>(GH), sT = static_cast<index_t>(T_);
  const bool lstm = rnn_has_cell_state(a.cell);
  parallel_for(0, slices, [&](std::size_t s) {
    const std::size_t b0 = s * S, nb = std::min(S, B - b0);
    auto& w = ws.slices[s];
    ensure_size(w, S * GH);
    T* rec = w.data();  // [nb, GH] h_{t-1} W_hh^T
    for (std::size_t t = 0; t < T_; ++t) {
      const std::size_t r0 = b0 * T_ + t;  // row (b0, t) of the sequences
      // Rows (b, t - 1) of h and of c (= extra), or rows b of h0 and c0 at t = 0.
      const T* h_prev = t == 0 ? a.h0 + b0 * H : a.h + (r0 - 1) * H;
      const T* c_prev = !lstm ? nullptr : t == 0 ? a.c0 + b0 * H : a.extra + (r0 - 1) * H;
      const index_t ld_prev = t == 0 ? sH : sT * sH;
      k::gemm_few_rows<T>(nb, h_prev, ld_prev, ws.weights, rec, sGH, false);
      k::with_cell(a.cell, [&](auto cell) {
        k::cell_forward_rows<decltype(cell)>(rnn_cell_forward_args<T>{.cell = a.cell,
                                                                      .rows = nb,
                                                                      .hidden = H,
                                                                      .gates = a.gates + r0 * GH,
                                                                      .ld_gates = sT * sGH,
                                                                      .rec = rec,
                                                                      .ld_rec = sGH,
                                                                      .b_ih = a.b_ih,
                                                                      .b_hh = a.b_hh,
                                                                      .h_prev = h_prev,
                                                                      .ld_h_prev = ld_prev,
                                                                      .c_prev = c_prev,
                                                                      .ld_c_prev = ld_prev,
                                                                      .h = a.h + r0 * H,
                                                                      .ld_h = sT * sH,
                                                                      .extra = a.extra + r0 * H,
                                                                      .ld_extra = sT * sH});
      });
    }
  });
}

/// cpu recurrent_backward: one task per batch slice, each with its own reverse time loop; per
/// step the cell's backward for the slice's rows, with the recurrent gate gradients written to a
/// contiguous step buffer (the GEMM reads them faster there than from rows time * G*H apart),
/// then dh += dG_h W_hh through the packed W_hh, then the step buffer copied to its shifted rows
/// of dgh.
template <class T>
void run(cpu, const recurrent_backward_args<T>& a, recurrent_workspace<cpu, T>& ws) {
  namespace k = cpu_kernels::rnn;
  using k::index_t;
  const std::size_t B = a.batch, T_ = a.time, H = a.hidden, GH = rnn_gates(a.cell) * H;
  if (T_ == 0 || B == 0) return;
  // B(p, j) = W_hh[p, j]: the [G*H, H] operand of dh = dG_h W_hh.
  ws.weights.pack(a.w_hh, static_cast<index_t>(H), 1, GH, H);
  const std::size_t S = k::slice_size(B), slices = (B + S - 1) / S;
  if (ws.slices.size() < slices) ws.slices.resize(slices);
  const auto sH = static_cast<index_t>(H), sGH = static_cast<index_t>(GH), sT = static_cast<index_t>(T_);
  const bool lstm = rnn_has_cell_state(a.cell);
  parallel_for(0, slices, [&](std::size_t s) {
    const std::size_t b0 = s * S, nb = std::min(S, B - b0);
    auto& w = ws.slices[s];
    ensure_size(w, 2 * S * H + S * GH);
    T* dh = w.data();    // [nb, H] dL/dh_t through the recurrence
    T* dc = dh + S * H;  // [nb, H] dL/dc_t through the recurrence (LSTM)
    T* g = dc + S * H;   // [nb, GH] this step's recurrent gate gradients, contiguous for the GEMM
    std::fill_n(dh, nb * H, T(0));
    std::fill_n(dc, nb * H, T(0));
    for (std::size_t i = 0; i < nb; ++i) std::fill_n(a.dgh + ((b0 + i) * T_ + T_ - 1) * GH, GH, T(0));
    for (std::size_t t = T_; t-- > 0;) {
      const std::size_t r0 = b0 * T_ + t;
      const T* h_prev = t == 0 ? a.h0 + b0 * H : a.h + (r0 - 1) * H;
      const T* c_prev = !lstm ? nullptr : t == 0 ? a.c0 + b0 * H : a.extra + (r0 - 1) * H;
      const index_t ld_prev = t == 0 ? sH : sT * sH;
      // dL/d(rec at t) goes to row (b, t - 1) of dgh, or to dgh0 at t = 0.
      T* dgh = t == 0 ? a.dgh0 + b0 * GH : a.dgh + (r0 - 1) * GH;
      const index_t ld_dgh = t == 0 ? sGH : sT * sGH;
      k::with_cell(a.cell, [&](auto cell) {
        k::cell_backward_rows<decltype(cell)>(rnn_cell_backward_args<T>{.cell = a.cell,
                                                                        .rows = nb,
                                                                        .hidden = H,
                                                                        .gates = a.gates + r0 * GH,
                                                                        .ld_gates = sT * sGH,
                                                                        .extra = a.extra + r0 * H,
                                                                        .ld_extra = sT * sH,
                                                                        .h_prev = h_prev,
                                                                        .ld_h_prev = ld_prev,
                                                                        .c_prev = c_prev,
                                                                        .ld_c_prev = ld_prev,
                                                                        .dy = a.dy + r0 * H,
                                                                        .ld_dy = sT * sH,
                                                                        .dh = dh,
                                                                        .ld_dh = sH,
                                                                        .dc = dc,
                                                                        .ld_dc = sH,
                                                                        .dgi = a.dgi + r0 * GH,
                                                                        .ld_dgi = sT * sGH,
                                                                        .dgh = g,
                                                                        .ld_dgh = sGH});
      });
      if (t > 0) k::gemm_few_rows<T>(nb, g, sGH, ws.weights, dh, sH, true);
      for (std::size_t i = 0; i < nb; ++i)
        std::copy_n(g + i * GH, GH, dgh + static_cast<index_t>(i) * ld_dgh);
    }
  });
}

}  // namespace cpc::ops
