#pragma once
/// reference kernels of the recurrent ops (backend/op/recurrent.hpp): the equations of
/// torch.nn.GRU / torch.nn.LSTM as plain loops in double (std::exp, std::tanh), one thread. Values
/// are rounded to T where an op stores them (gates, states, gradients), as the op contract says.
#include <cmath>
#include <cstddef>
#include <vector>

#include "cpc/backend/op/recurrent.hpp"
#include "cpc/backend/tags.hpp"

namespace cpc::ops {

namespace reference_detail {
inline double sigmoid(double v) {
  return 1.0 / (1.0 + std::exp(-v));
}
/// p[r * ld + j] as double.
template <class T>
double at(const T* p, std::ptrdiff_t ld, std::size_t r, std::size_t j) {
  return static_cast<double>(p[static_cast<std::ptrdiff_t>(r) * ld + static_cast<std::ptrdiff_t>(j)]);
}
/// Reference to p[r * ld + j].
template <class T>
T& ref(T* p, std::ptrdiff_t ld, std::size_t r, std::size_t j) {
  return p[static_cast<std::ptrdiff_t>(r) * ld + static_cast<std::ptrdiff_t>(j)];
}
}  // namespace reference_detail

/// reference rnn_cell_forward: the cell equations element by element in double.
template <class T>
void run(reference, const rnn_cell_forward_args<T>& a) {
  using reference_detail::at, reference_detail::ref, reference_detail::sigmoid;
  const std::size_t H = a.hidden;
  for (std::size_t r = 0; r < a.rows; ++r)
    for (std::size_t j = 0; j < H; ++j) {
      // Pre-activations of gate q: x part and h part, each with its bias.
      auto ax = [&](std::size_t q) {
        return at(a.gates, a.ld_gates, r, q * H + j) +
               (a.b_ih ? static_cast<double>(a.b_ih[q * H + j]) : 0.0);
      };
      auto ah = [&](std::size_t q) {
        return at(a.rec, a.ld_rec, r, q * H + j) + (a.b_hh ? static_cast<double>(a.b_hh[q * H + j]) : 0.0);
      };
      const double h_prev = at(a.h_prev, a.ld_h_prev, r, j);
      if (a.cell == rnn_cell::gru) {
        const double rg = sigmoid(ax(0) + ah(0)), z = sigmoid(ax(1) + ah(1));
        const double hn = ah(2), n = std::tanh(ax(2) + rg * hn);
        ref(a.gates, a.ld_gates, r, j) = static_cast<T>(rg);
        ref(a.gates, a.ld_gates, r, H + j) = static_cast<T>(z);
        ref(a.gates, a.ld_gates, r, 2 * H + j) = static_cast<T>(n);
        ref(a.extra, a.ld_extra, r, j) = static_cast<T>(hn);
        ref(a.h, a.ld_h, r, j) = static_cast<T>((1.0 - z) * n + z * h_prev);
      } else {
        const double i = sigmoid(ax(0) + ah(0)), f = sigmoid(ax(1) + ah(1));
        const double g = std::tanh(ax(2) + ah(2)), o = sigmoid(ax(3) + ah(3));
        const double c = f * at(a.c_prev, a.ld_c_prev, r, j) + i * g;
        ref(a.gates, a.ld_gates, r, j) = static_cast<T>(i);
        ref(a.gates, a.ld_gates, r, H + j) = static_cast<T>(f);
        ref(a.gates, a.ld_gates, r, 2 * H + j) = static_cast<T>(g);
        ref(a.gates, a.ld_gates, r, 3 * H + j) = static_cast<T>(o);
        ref(a.extra, a.ld_extra, r, j) = static_cast<T>(c);
        ref(a.h, a.ld_h, r, j) = static_cast<T>(o * std::tanh(c));
      }
    }
}

/// reference rnn_cell_backward: the derivatives of the cell equations in double.
template <class T>
void run(reference, const rnn_cell_backward_args<T>& a) {
  using reference_detail::at, reference_detail::ref;
  const std::size_t H = a.hidden;
  for (std::size_t r = 0; r < a.rows; ++r)
    for (std::size_t j = 0; j < H; ++j) {
      auto gate = [&](std::size_t q) { return at(a.gates, a.ld_gates, r, q * H + j); };
      const double dh = at(a.dy, a.ld_dy, r, j) + at(a.dh, a.ld_dh, r, j);
      if (a.cell == rnn_cell::gru) {
        // h' = (1 - z) n + z h_prev, n = tanh(a_n + r * extra), z = s(.), r = s(.).
        const double rg = gate(0), z = gate(1), n = gate(2);
        const double dan = dh * (1.0 - z) * (1.0 - n * n);
        const double daz = dh * (at(a.h_prev, a.ld_h_prev, r, j) - n) * z * (1.0 - z);
        const double dar = dan * at(a.extra, a.ld_extra, r, j) * rg * (1.0 - rg);
        ref(a.dh, a.ld_dh, r, j) = static_cast<T>(dh * z);
        const double dgi[3] = {dar, daz, dan}, dgh[3] = {dar, daz, dan * rg};
        for (std::size_t q = 0; q < 3; ++q) {
          ref(a.dgi, a.ld_dgi, r, q * H + j) = static_cast<T>(dgi[q]);
          ref(a.dgh, a.ld_dgh, r, q * H + j) = static_cast<T>(dgh[q]);
        }
      } else {
        // c' = f c + i g, h' = o tanh(c').
        const double i = gate(0), f = gate(1), g = gate(2), o = gate(3);
        const double tc = std::tanh(at(a.extra, a.ld_extra, r, j));
        const double dc = at(a.dc, a.ld_dc, r, j) + dh * o * (1.0 - tc * tc);
        const double da[4] = {dc * g * i * (1.0 - i), dc * at(a.c_prev, a.ld_c_prev, r, j) * f * (1.0 - f),
                              dc * i * (1.0 - g * g), dh * tc * o * (1.0 - o)};
        ref(a.dc, a.ld_dc, r, j) = static_cast<T>(dc * f);
        ref(a.dh, a.ld_dh, r, j) = T(0);
        for (std::size_t q = 0; q < 4; ++q) {
          ref(a.dgi, a.ld_dgi, r, q * H + j) = static_cast<T>(da[q]);
          ref(a.dgh, a.ld_dgh, r, q * H + j) = static_cast<T>(da[q]);
        }
      }
    }
}

/// reference recurrent_forward: for each step, rec = h_{t-1} W_hh^T summed in double for the
/// whole batch, then the reference cell (which adds the biases).
template <class T>
void run(reference, const recurrent_forward_args<T>& a, recurrent_workspace<reference, T>&) {
  const std::size_t B = a.batch, T_ = a.time, H = a.hidden, GH = rnn_gates(a.cell) * H;
  const auto sH = static_cast<std::ptrdiff_t>(H), sGH = static_cast<std::ptrdiff_t>(GH),
             sTH = static_cast<std::ptrdiff_t>(T_ * H), sTGH = static_cast<std::ptrdiff_t>(T_ * GH);
  std::vector<T> rec(B * GH);
  for (std::size_t t = 0; t < T_; ++t) {
    // Row b of h_{t-1} (and c_{t-1}): h0[b] at t = 0, else h[b, t - 1].
    const T* h_prev = t == 0 ? a.h0 : a.h + (t - 1) * H;
    const std::ptrdiff_t ld_prev = t == 0 ? sH : sTH;
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t g = 0; g < GH; ++g) {
        double s = 0;
        for (std::size_t j = 0; j < H; ++j)
          s += reference_detail::at(h_prev, ld_prev, b, j) * static_cast<double>(a.w_hh[g * H + j]);
        rec[b * GH + g] = static_cast<T>(s);
      }
    const T* c_prev = rnn_has_cell_state(a.cell) ? (t == 0 ? a.c0 : a.extra + (t - 1) * H) : nullptr;
    run(reference{}, rnn_cell_forward_args<T>{.cell = a.cell,
                                              .rows = B,
                                              .hidden = H,
                                              .gates = a.gates + t * GH,
                                              .ld_gates = sTGH,
                                              .rec = rec.data(),
                                              .ld_rec = sGH,
                                              .b_ih = a.b_ih,
                                              .b_hh = a.b_hh,
                                              .h_prev = h_prev,
                                              .ld_h_prev = ld_prev,
                                              .c_prev = c_prev,
                                              .ld_c_prev = ld_prev,
                                              .h = a.h + t * H,
                                              .ld_h = sTH,
                                              .extra = a.extra + t * H,
                                              .ld_extra = sTH});
  }
}

/// reference recurrent_backward: for t = T - 1 .. 0 the reference cell's backward for the whole
/// batch, then dh_{t-1} = (the cell's direct part) + dG_h W_hh summed in double.
template <class T>
void run(reference, const recurrent_backward_args<T>& a, recurrent_workspace<reference, T>&) {
  const std::size_t B = a.batch, T_ = a.time, H = a.hidden, GH = rnn_gates(a.cell) * H;
  const auto sH = static_cast<std::ptrdiff_t>(H), sGH = static_cast<std::ptrdiff_t>(GH),
             sTH = static_cast<std::ptrdiff_t>(T_ * H), sTGH = static_cast<std::ptrdiff_t>(T_ * GH);
  std::vector<T> dh(B * H, T(0)), dc(B * H, T(0)), dgh(B * GH);
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t g = 0; g < GH; ++g) a.dgh[(b * T_ + T_ - 1) * GH + g] = T(0);
  for (std::size_t t = T_; t-- > 0;) {
    const T* h_prev = t == 0 ? a.h0 : a.h + (t - 1) * H;
    const std::ptrdiff_t ld_prev = t == 0 ? sH : sTH;
    const T* c_prev = rnn_has_cell_state(a.cell) ? (t == 0 ? a.c0 : a.extra + (t - 1) * H) : nullptr;
    run(reference{}, rnn_cell_backward_args<T>{.cell = a.cell,
                                               .rows = B,
                                               .hidden = H,
                                               .gates = a.gates + t * GH,
                                               .ld_gates = sTGH,
                                               .extra = a.extra + t * H,
                                               .ld_extra = sTH,
                                               .h_prev = h_prev,
                                               .ld_h_prev = ld_prev,
                                               .c_prev = c_prev,
                                               .ld_c_prev = ld_prev,
                                               .dy = a.dy + t * H,
                                               .ld_dy = sTH,
                                               .dh = dh.data(),
                                               .ld_dh = sH,
                                               .dc = dc.data(),
                                               .ld_dc = sH,
                                               .dgi = a.dgi + t * GH,
                                               .ld_dgi = sTGH,
                                               .dgh = dgh.data(),
                                               .ld_dgh = sGH});
    for (std::size_t b = 0; b < B; ++b) {
      T* dst = t == 0 ? a.dgh0 + b * GH : a.dgh + (b * T_ + t - 1) * GH;
      for (std::size_t g = 0; g < GH; ++g) dst[g] = dgh[b * GH + g];
      if (t == 0) continue;
      for (std::size_t j = 0; j < H; ++j) {
        double s = static_cast<double>(dh[b * H + j]);
        for (std::size_t g = 0; g < GH; ++g)
          s += static_cast<double>(dgh[b * GH + g]) * static_cast<double>(a.w_hh[g * H + j]);
        dh[b * H + j] = static_cast<T>(s);
      }
    }
  }
}

}  // namespace cpc::ops
