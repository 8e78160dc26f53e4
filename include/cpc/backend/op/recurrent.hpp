#pragma once
/// Recurrent ops (GRU and LSTM, torch.nn.GRU / torch.nn.LSTM equations and gate orders): the
/// element-wise maths of one time step (`rnn_cell_forward`, `rnn_cell_backward`) and the time
/// loops of one layer (`recurrent_forward`, `recurrent_backward`: per step the recurrent GEMM
/// `h_{t-1} W_hh^T` and the cell, or the cell's backward and `dh += dG_h W_hh`).
/// The layer engine (layers/recurrent_detail.hpp) keeps the buffers and runs the input
/// projections `x W_ih^T` and the weight gradients; on a device backend the time loops are a host
/// loop of one GEMM (cuBLAS, no bias) and one element-wise cell kernel per step. As in PyTorch's
/// fused cells (ATen `_thnn_fused_gru_cell` / `_thnn_fused_lstm_cell`), the cell adds both biases,
/// so no GEMM output needs a separate bias pass.
///
/// Layouts: batch-first sequences `[batch, time, channels]`, row-major; "G*H" rows hold the gates
/// one after another, H = hidden size, G = `rnn_gates(cell)` (GRU: r, z, n; LSTM: i, f, g, o).
/// Pointers are into memory of the op's backend; strides (`ld_*`) are in elements.
#include <cstddef>

#include "cpc/backend/dispatch.hpp"

namespace cpc::ops {

/// The recurrent cell of an op.
///   gru:  r = s(a_r + c_r), z = s(a_z + c_z), n = tanh(a_n + r * c_n), h' = (1 - z) * n + z * h
///   lstm: i, f, o = s(a + c), g = tanh(a_g + c_g), c' = f * c + i * g, h' = o * tanh(c')
/// where a = x W_ih^T + b_ih and c = h W_hh^T + b_hh (per gate block of H), s = logistic sigmoid.
/// The cell kernels compute each as (x W_ih^T + b_ih) + (h W_hh^T + b_hh) from the GEMM outputs
/// and the biases.
enum class rnn_cell { gru, lstm };

/// Gates per cell: 3 for GRU (r, z, n), 4 for LSTM (i, f, g, o).
constexpr std::size_t rnn_gates(rnn_cell c) {
  return c == rnn_cell::gru ? 3 : 4;
}

/// Whether the cell carries a cell state c besides h (LSTM).
constexpr bool rnn_has_cell_state(rnn_cell c) {
  return c == rnn_cell::lstm;
}

/// One time step of `rows` independent batch items, forward. Row r of each operand starts at
/// `ptr + r * ld_ptr`. "extra" is what backward needs besides the gates: GRU W_hn h + b_hn (the
/// n block of `rec` plus its bias), LSTM c_t. `gates` may not alias the outputs; `h` and
/// `extra` are written.
template <class T>
struct rnn_cell_forward_args {
  rnn_cell cell = rnn_cell::gru;
  std::size_t rows = 0, hidden = 0;
  T* gates = nullptr;  ///< [rows, G*H] in: x W_ih^T (no bias); out: the activated gates
  std::ptrdiff_t ld_gates = 0;
  const T* rec = nullptr;  ///< [rows, G*H] h_{t-1} W_hh^T (no bias)
  std::ptrdiff_t ld_rec = 0;
  const T* b_ih = nullptr;    ///< [G*H] added to every row of `gates`, or null for none
  const T* b_hh = nullptr;    ///< [G*H] added to every row of `rec`, or null for none
  const T* h_prev = nullptr;  ///< [rows, H] h_{t-1}
  std::ptrdiff_t ld_h_prev = 0;
  const T* c_prev = nullptr;  ///< [rows, H] c_{t-1} (LSTM only; ignored for GRU)
  std::ptrdiff_t ld_c_prev = 0;
  T* h = nullptr;  ///< [rows, H] out: h_t
  std::ptrdiff_t ld_h = 0;
  T* extra = nullptr;  ///< [rows, H] out: GRU W_hn h_{t-1} + b_hn, LSTM c_t
  std::ptrdiff_t ld_extra = 0;
};

/// The cell of one time step for every row (see `rnn_cell_forward_args`). Contract: each row's
/// outputs depend only on that row's inputs. Errors: none (sizes are the caller's contract).
template <class Backend, class T>
void rnn_cell_forward(const rnn_cell_forward_args<T>& args) {
  CPC_DISPATCH("rnn_cell_forward", Backend, args);
}

/// One time step of `rows` batch items, backward (the derivative of `rnn_cell_forward`).
template <class T>
struct rnn_cell_backward_args {
  rnn_cell cell = rnn_cell::gru;
  std::size_t rows = 0, hidden = 0;
  const T* gates = nullptr;  ///< [rows, G*H] the activated gates of forward
  std::ptrdiff_t ld_gates = 0;
  const T* extra = nullptr;  ///< [rows, H] forward's extra (GRU W_hn h_{t-1} + b_hn, LSTM c_t)
  std::ptrdiff_t ld_extra = 0;
  const T* h_prev = nullptr;  ///< [rows, H] h_{t-1}
  std::ptrdiff_t ld_h_prev = 0;
  const T* c_prev = nullptr;  ///< [rows, H] c_{t-1} (LSTM only)
  std::ptrdiff_t ld_c_prev = 0;
  const T* dy = nullptr;  ///< [rows, H] dL/dh_t from the layer's outputs
  std::ptrdiff_t ld_dy = 0;
  /// [rows, H] in: dL/dh_t through the recurrence; out: the part of dL/dh_{t-1} that does not
  /// pass through W_hh (GRU: dh_t * z; LSTM: 0).
  T* dh = nullptr;
  std::ptrdiff_t ld_dh = 0;
  T* dc = nullptr;  ///< [rows, H] LSTM only: in dL/dc_t through the recurrence, out dL/dc_{t-1}
  std::ptrdiff_t ld_dc = 0;
  T* dgi = nullptr;  ///< [rows, G*H] out: dL/d(x W_ih^T + b_ih)
  std::ptrdiff_t ld_dgi = 0;
  T* dgh = nullptr;  ///< [rows, G*H] out: dL/d(h_{t-1} W_hh^T + b_hh)
  std::ptrdiff_t ld_dgh = 0;
};

/// The cell's backward for every row (see `rnn_cell_backward_args`); rows are independent.
template <class Backend, class T>
void rnn_cell_backward(const rnn_cell_backward_args<T>& args) {
  CPC_DISPATCH("rnn_cell_backward", Backend, args);
}

/// The time loop of one recurrent layer, forward: for t = 0 .. time - 1 and every batch item b,
///   rec = h_{t-1} W_hh^T  (h_{-1} = h0[b]),  then `rnn_cell_forward` on (gates[b, t], rec) with
///   the biases b_ih, b_hh.
/// The input projections x W_ih^T (no bias) must already be in `gates`. Sequences contiguous.
/// Contract: the outputs of item b depend only on item b's inputs (not on batch, on where the
/// item sits in the batch, or on the thread count), so a sequence fed in chunks with the last h
/// (and c) carried into h0 (c0) gives the outputs of one pass.
template <class T>
struct recurrent_forward_args {
  rnn_cell cell = rnn_cell::gru;
  std::size_t batch = 0, time = 0, hidden = 0;
  T* gates = nullptr;       ///< [batch, time, G*H] in: x W_ih^T (no bias); out: activated gates
  const T* w_hh = nullptr;  ///< [G*H, H] (torch's weight_hh_l{k})
  const T* b_ih = nullptr;  ///< [G*H] (torch's bias_ih_l{k}), or null for none
  const T* b_hh = nullptr;  ///< [G*H] (torch's bias_hh_l{k}), or null for none
  const T* h0 = nullptr;    ///< [batch, H] initial hidden state
  const T* c0 = nullptr;    ///< [batch, H] initial cell state (LSTM only)
  T* h = nullptr;           ///< [batch, time, H] out: h_t, the layer's outputs
  T* extra = nullptr;       ///< [batch, time, H] out: the cell's extra (see `rnn_cell_forward_args`)
};

/// The time loop of one recurrent layer, backward through time over the whole sequence of a
/// `recurrent_forward` call (same sizes, `gates`, `extra`, `h`, `h0`, `c0` as forward left them).
/// For t = time - 1 .. 0: `rnn_cell_backward` with dy[b, t] and the recurrent dh (and dc), then
/// dh_{t-1} += dG_h(t) W_hh. Outputs the gate gradients the weight gradients are built from:
///   dgi[b, t]      = dL/d(x_t W_ih^T + b_ih)
///   dgh[b, t - 1]  = dL/d(h_{t-1} W_hh^T + b_hh) for t >= 1 (so dW_hh = dgh^T h is one GEMM over
///                    the layer's outputs); dgh[b, time - 1] = 0
///   dgh0[b]        = the same at t = 0 (pairs with h0)
template <class T>
struct recurrent_backward_args {
  rnn_cell cell = rnn_cell::gru;
  std::size_t batch = 0, time = 0, hidden = 0;
  const T* gates = nullptr;  ///< [batch, time, G*H] activated gates from forward
  const T* extra = nullptr;  ///< [batch, time, H] forward's extra
  const T* h = nullptr;      ///< [batch, time, H] forward's outputs h_t
  const T* h0 = nullptr;     ///< [batch, H]
  const T* c0 = nullptr;     ///< [batch, H] (LSTM only)
  const T* w_hh = nullptr;   ///< [G*H, H]
  const T* dy = nullptr;     ///< [batch, time, H] dL/dh_t from the layer's outputs
  T* dgi = nullptr;          ///< [batch, time, G*H] out
  T* dgh = nullptr;          ///< [batch, time, G*H] out (shifted by one step, see above)
  T* dgh0 = nullptr;         ///< [batch, G*H] out
};

/// Reusable scratch of the recurrent ops on a backend (cpu: packed recurrent weights and per-task
/// step buffers). Owned by the layer, so steady-state calls allocate nothing. Empty where unneeded.
template <class Backend, class T>
struct recurrent_workspace {};

/// Runs one layer's recurrence forward (see `recurrent_forward_args`). Errors: none.
template <class Backend, class T>
void recurrent_forward(const recurrent_forward_args<T>& args, recurrent_workspace<Backend, T>& ws) {
  CPC_DISPATCH("recurrent_forward", Backend, args, ws);
}

/// Back-propagates through one layer's recurrence (see `recurrent_backward_args`). Errors: none.
template <class Backend, class T>
void recurrent_backward(const recurrent_backward_args<T>& args, recurrent_workspace<Backend, T>& ws) {
  CPC_DISPATCH("recurrent_backward", Backend, args, ws);
}

}  // namespace cpc::ops
