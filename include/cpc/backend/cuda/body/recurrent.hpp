#pragma once
/// Bodies of the CUDA backend's recurrent cell ops (backend/op/recurrent.hpp), one (row, unit)
/// element each, written once for device and host: torch.nn.GRU / torch.nn.LSTM cell equations in
/// double, rounded to T where stored (the same expressions as backend/reference/recurrent.hpp).
/// The time loops (one cuBLAS GEMM and one cell launch per step) are in backend/cuda/recurrent.cuh.
#include <cstddef>

#include "cpc/backend/cuda/hd.hpp"
#include "cpc/backend/op/recurrent.hpp"

namespace cpc::cuda_body {

/// p[r * ld + j] as double.
template <class T>
CPC_HD double at(const T* p, std::ptrdiff_t ld, std::size_t r, std::size_t j) {
  return static_cast<double>(p[static_cast<std::ptrdiff_t>(r) * ld + static_cast<std::ptrdiff_t>(j)]);
}
/// Stores v (rounded to T) at p[r * ld + j].
template <class T>
CPC_HD void put(T* p, std::ptrdiff_t ld, std::size_t r, std::size_t j, double v) {
  p[static_cast<std::ptrdiff_t>(r) * ld + static_cast<std::ptrdiff_t>(j)] = static_cast<T>(v);
}

/// rnn_cell_forward, element (r, j) = (i / hidden, i % hidden) of the `rows * hidden` grid.
template <class T>
CPC_HD void element(const ops::rnn_cell_forward_args<T>& a, std::size_t i) {
  const std::size_t H = a.hidden, r = i / H, j = i % H;
  const auto ax = [&](std::size_t q) {
    return at(a.gates, a.ld_gates, r, q * H + j) + (a.b_ih ? static_cast<double>(a.b_ih[q * H + j]) : 0.0);
  };
  const auto ah = [&](std::size_t q) {
    return at(a.rec, a.ld_rec, r, q * H + j) + (a.b_hh ? static_cast<double>(a.b_hh[q * H + j]) : 0.0);
  };
  const double h_prev = at(a.h_prev, a.ld_h_prev, r, j);
  if (a.cell == ops::rnn_cell::gru) {
    const double rg = hd_sigmoid(ax(0) + ah(0)), z = hd_sigmoid(ax(1) + ah(1));
    const double hn = ah(2), n = hd_tanh(ax(2) + rg * hn);
    put(a.gates, a.ld_gates, r, j, rg);
    put(a.gates, a.ld_gates, r, H + j, z);
    put(a.gates, a.ld_gates, r, 2 * H + j, n);
    put(a.extra, a.ld_extra, r, j, hn);
    put(a.h, a.ld_h, r, j, (1.0 - z) * n + z * h_prev);
  } else {
    const double ig = hd_sigmoid(ax(0) + ah(0)), f = hd_sigmoid(ax(1) + ah(1));
    const double g = hd_tanh(ax(2) + ah(2)), o = hd_sigmoid(ax(3) + ah(3));
    const double c = f * at(a.c_prev, a.ld_c_prev, r, j) + ig * g;
    put(a.gates, a.ld_gates, r, j, ig);
    put(a.gates, a.ld_gates, r, H + j, f);
    put(a.gates, a.ld_gates, r, 2 * H + j, g);
    put(a.gates, a.ld_gates, r, 3 * H + j, o);
    put(a.extra, a.ld_extra, r, j, c);
    put(a.h, a.ld_h, r, j, o * hd_tanh(c));
  }
}

/// rnn_cell_backward, element (r, j) = (i / hidden, i % hidden): the derivatives of the cell.
template <class T>
CPC_HD void element(const ops::rnn_cell_backward_args<T>& a, std::size_t i) {
  const std::size_t H = a.hidden, r = i / H, j = i % H;
  const auto gate = [&](std::size_t q) { return at(a.gates, a.ld_gates, r, q * H + j); };
  const double dh = at(a.dy, a.ld_dy, r, j) + at(a.dh, a.ld_dh, r, j);
  if (a.cell == ops::rnn_cell::gru) {
    // h' = (1 - z) n + z h_prev, n = tanh(a_n + r * extra), z = s(.), r = s(.).
    const double rg = gate(0), z = gate(1), n = gate(2);
    const double dan = dh * (1.0 - z) * (1.0 - n * n);
    const double daz = dh * (at(a.h_prev, a.ld_h_prev, r, j) - n) * z * (1.0 - z);
    const double dar = dan * at(a.extra, a.ld_extra, r, j) * rg * (1.0 - rg);
    put(a.dh, a.ld_dh, r, j, dh * z);
    put(a.dgi, a.ld_dgi, r, j, dar);
    put(a.dgi, a.ld_dgi, r, H + j, daz);
    put(a.dgi, a.ld_dgi, r, 2 * H + j, dan);
    put(a.dgh, a.ld_dgh, r, j, dar);
    put(a.dgh, a.ld_dgh, r, H + j, daz);
    put(a.dgh, a.ld_dgh, r, 2 * H + j, dan * rg);
  } else {
    // c' = f c + i g, h' = o tanh(c').
    const double ig = gate(0), f = gate(1), g = gate(2), o = gate(3);
    const double tc = hd_tanh(at(a.extra, a.ld_extra, r, j));
    const double dc = at(a.dc, a.ld_dc, r, j) + dh * o * (1.0 - tc * tc);
    const double da[4] = {dc * g * ig * (1.0 - ig), dc * at(a.c_prev, a.ld_c_prev, r, j) * f * (1.0 - f),
                          dc * ig * (1.0 - g * g), dh * tc * o * (1.0 - o)};
    put(a.dc, a.ld_dc, r, j, dc * f);
    put(a.dh, a.ld_dh, r, j, 0.0);
    for (std::size_t q = 0; q < 4; ++q) {
      put(a.dgi, a.ld_dgi, r, q * H + j, da[q]);
      put(a.dgh, a.ld_dgh, r, q * H + j, da[q]);
    }
  }
}

}  // namespace cpc::cuda_body
