// cpu against reference for the recurrent ops (backend/op/recurrent.hpp) on random shapes: GRU
// and LSTM, one row or one step, hidden sizes below, at and above the SIMD width (partial lanes),
// padded row strides, batches that span several recurrence tasks, with and without bias. Outputs
// are pre-filled with NaN so that an element a kernel does not write fails; the padding between
// strided rows holds a sentinel that must survive.
#include <doctest/doctest.h>

#include <cpc/backend/ops.hpp>

#include <cmath>
#include <cstddef>
#include <vector>

#include "support/backend_parity.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

constexpr float sentinel = 12345.0f;

std::vector<float> random_vector(std::size_t n, rng& gen, double scale = 1.0) {
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(gen.uniform(-scale, scale));
  return v;
}

std::vector<float> nan_vector(std::size_t n) {
  return std::vector<float>(n, std::nanf(""));
}

/// `rows` random rows of `width` scalars `ld` apart, the padding set to `sentinel`.
std::vector<float> strided_rows(std::size_t rows, std::size_t width, std::size_t ld, rng& gen) {
  std::vector<float> v(rows * ld, sentinel);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < width; ++j) v[r * ld + j] = static_cast<float>(gen.uniform(-1.5, 1.5));
  return v;
}

/// Rows of NaN with sentinel padding.
std::vector<float> strided_nan(std::size_t rows, std::size_t width, std::size_t ld) {
  std::vector<float> v(rows * ld, sentinel);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < width; ++j) v[r * ld + j] = std::nanf("");
  return v;
}

/// Whether the padding of every row (columns width .. ld) still holds the sentinel.
bool padding_intact(const std::vector<float>& v, std::size_t width, std::size_t ld) {
  for (std::size_t i = 0; i < v.size(); ++i)
    if (i % ld >= width && v[i] != sentinel) return false;
  return true;
}

/// Whether no element is NaN (scaled_max_error alone would skip NaN differences).
bool no_nan(const std::vector<float>& v) {
  for (float x : v)
    if (std::isnan(x)) return false;
  return true;
}

/// scaled_max_error, or infinity when `a` holds a NaN (an element the kernel did not write).
double parity_error(const std::vector<float>& a, const std::vector<float>& b) {
  return no_nan(a) && no_nan(b) ? scaled_max_error(a, b) : HUGE_VAL;
}

const char* cell_name(ops::rnn_cell c) {
  return c == ops::rnn_cell::gru ? "gru" : "lstm";
}

}  // namespace

TEST_CASE(
    "ops::rnn_cell_forward / rnn_cell_backward: cpu equals reference (1e-6) with padded strides, with and "
    "without biases") {
  rng gen(1);
  for (auto cell : {ops::rnn_cell::gru, ops::rnn_cell::lstm})
    for (std::size_t rows : {1, 5})
      for (std::size_t H : {1, 7, 16, 33}) {
        CAPTURE(cell_name(cell));
        CAPTURE(rows);
        CAPTURE(H);
        const bool bias = (rows + H) % 2 == 0;  // half of the shapes without biases
        CAPTURE(bias);
        const std::size_t GH = ops::rnn_gates(cell) * H;
        const std::size_t ldg = GH + 3, ldh = H + 2;  // padded rows
        const auto gates_in = strided_rows(rows, GH, ldg, gen);
        const auto rec = strided_rows(rows, GH, ldg, gen);
        const auto h_prev = strided_rows(rows, H, ldh, gen);
        const auto c_prev = strided_rows(rows, H, ldh, gen);
        const auto b_ih = random_vector(GH, gen), b_hh = random_vector(GH, gen);
        // Forward.
        struct fwd_out {
          std::vector<float> gates, h, extra;
        };
        auto forward = [&]<class Backend>(Backend) {
          fwd_out o{gates_in, strided_nan(rows, H, ldh), strided_nan(rows, H, ldh)};
          ops::rnn_cell_forward<Backend>(
              ops::rnn_cell_forward_args<float>{.cell = cell,
                                                .rows = rows,
                                                .hidden = H,
                                                .gates = o.gates.data(),
                                                .ld_gates = static_cast<std::ptrdiff_t>(ldg),
                                                .rec = rec.data(),
                                                .ld_rec = static_cast<std::ptrdiff_t>(ldg),
                                                .b_ih = bias ? b_ih.data() : nullptr,
                                                .b_hh = bias ? b_hh.data() : nullptr,
                                                .h_prev = h_prev.data(),
                                                .ld_h_prev = static_cast<std::ptrdiff_t>(ldh),
                                                .c_prev = c_prev.data(),
                                                .ld_c_prev = static_cast<std::ptrdiff_t>(ldh),
                                                .h = o.h.data(),
                                                .ld_h = static_cast<std::ptrdiff_t>(ldh),
                                                .extra = o.extra.data(),
                                                .ld_extra = static_cast<std::ptrdiff_t>(ldh)});
          return o;
        };
        const fwd_out fc = forward(cpu{}), fr = forward(reference{});
        CHECK(parity_error(fc.gates, fr.gates) < 1e-6);
        CHECK(parity_error(fc.h, fr.h) < 1e-6);
        CHECK(parity_error(fc.extra, fr.extra) < 1e-6);
        CHECK(padding_intact(fc.gates, GH, ldg));
        CHECK(padding_intact(fc.h, H, ldh));
        CHECK(padding_intact(fc.extra, H, ldh));
        // Backward from the activated gates forward produced.
        const auto dy = strided_rows(rows, H, ldh, gen);
        const auto dh_in = strided_rows(rows, H, ldh, gen);
        const auto dc_in = strided_rows(rows, H, ldh, gen);
        struct bwd_out {
          std::vector<float> dh, dc, dgi, dgh;
        };
        auto backward = [&]<class Backend>(Backend) {
          bwd_out o{dh_in, dc_in, strided_nan(rows, GH, ldg), strided_nan(rows, GH, ldg)};
          ops::rnn_cell_backward<Backend>(
              ops::rnn_cell_backward_args<float>{.cell = cell,
                                                 .rows = rows,
                                                 .hidden = H,
                                                 .gates = fr.gates.data(),
                                                 .ld_gates = static_cast<std::ptrdiff_t>(ldg),
                                                 .extra = fr.extra.data(),
                                                 .ld_extra = static_cast<std::ptrdiff_t>(ldh),
                                                 .h_prev = h_prev.data(),
                                                 .ld_h_prev = static_cast<std::ptrdiff_t>(ldh),
                                                 .c_prev = c_prev.data(),
                                                 .ld_c_prev = static_cast<std::ptrdiff_t>(ldh),
                                                 .dy = dy.data(),
                                                 .ld_dy = static_cast<std::ptrdiff_t>(ldh),
                                                 .dh = o.dh.data(),
                                                 .ld_dh = static_cast<std::ptrdiff_t>(ldh),
                                                 .dc = o.dc.data(),
                                                 .ld_dc = static_cast<std::ptrdiff_t>(ldh),
                                                 .dgi = o.dgi.data(),
                                                 .ld_dgi = static_cast<std::ptrdiff_t>(ldg),
                                                 .dgh = o.dgh.data(),
                                                 .ld_dgh = static_cast<std::ptrdiff_t>(ldg)});
          return o;
        };
        const bwd_out bc = backward(cpu{}), br = backward(reference{});
        CHECK(parity_error(bc.dh, br.dh) < 1e-6);
        CHECK(parity_error(bc.dgi, br.dgi) < 1e-6);
        CHECK(parity_error(bc.dgh, br.dgh) < 1e-6);
        if (cell == ops::rnn_cell::lstm) CHECK(parity_error(bc.dc, br.dc) < 1e-6);
        CHECK(padding_intact(bc.dh, H, ldh));
        CHECK(padding_intact(bc.dgi, GH, ldg));
        CHECK(padding_intact(bc.dgh, GH, ldg));
      }
}

TEST_CASE("ops::recurrent_forward / recurrent_backward: cpu equals reference (1e-5) on random shapes") {
  rng gen(2);
  struct shape {
    std::size_t batch, time, hidden;
    bool bias;
  };
  for (auto cell : {ops::rnn_cell::gru, ops::rnn_cell::lstm})
    for (const auto& s :
         std::vector<shape>{{1, 1, 1, true}, {3, 6, 17, true}, {20, 5, 8, false}, {2, 9, 33, true}}) {
      CAPTURE(cell_name(cell));
      CAPTURE(s.batch);
      CAPTURE(s.time);
      CAPTURE(s.hidden);
      CAPTURE(s.bias);
      const std::size_t B = s.batch, T = s.time, H = s.hidden, GH = ops::rnn_gates(cell) * H;
      const double bound = 1.0 / std::sqrt(static_cast<double>(H));
      const auto gates_in = random_vector(B * T * GH, gen);
      const auto w_hh = random_vector(GH * H, gen, bound), b_hh = random_vector(GH, gen, bound),
                 b_ih = random_vector(GH, gen, bound);
      const auto h0 = random_vector(B * H, gen), c0 = random_vector(B * H, gen);
      struct fwd_out {
        std::vector<float> gates, h, extra;
      };
      auto forward = [&]<class Backend>(Backend) {
        fwd_out o{gates_in, nan_vector(B * T * H), nan_vector(B * T * H)};
        ops::recurrent_workspace<Backend, float> ws;
        ops::recurrent_forward<Backend>(
            ops::recurrent_forward_args<float>{.cell = cell,
                                               .batch = B,
                                               .time = T,
                                               .hidden = H,
                                               .gates = o.gates.data(),
                                               .w_hh = w_hh.data(),
                                               .b_ih = s.bias ? b_ih.data() : nullptr,
                                               .b_hh = s.bias ? b_hh.data() : nullptr,
                                               .h0 = h0.data(),
                                               .c0 = c0.data(),
                                               .h = o.h.data(),
                                               .extra = o.extra.data()},
            ws);
        return o;
      };
      const fwd_out fc = forward(cpu{}), fr = forward(reference{});
      CHECK(parity_error(fc.gates, fr.gates) < 1e-5);
      CHECK(parity_error(fc.h, fr.h) < 1e-5);
      CHECK(parity_error(fc.extra, fr.extra) < 1e-5);
      const auto dy = random_vector(B * T * H, gen);
      struct bwd_out {
        std::vector<float> dgi, dgh, dgh0;
      };
      auto backward = [&]<class Backend>(Backend) {
        bwd_out o{nan_vector(B * T * GH), nan_vector(B * T * GH), nan_vector(B * GH)};
        ops::recurrent_workspace<Backend, float> ws;
        ops::recurrent_backward<Backend>(ops::recurrent_backward_args<float>{.cell = cell,
                                                                             .batch = B,
                                                                             .time = T,
                                                                             .hidden = H,
                                                                             .gates = fr.gates.data(),
                                                                             .extra = fr.extra.data(),
                                                                             .h = fr.h.data(),
                                                                             .h0 = h0.data(),
                                                                             .c0 = c0.data(),
                                                                             .w_hh = w_hh.data(),
                                                                             .dy = dy.data(),
                                                                             .dgi = o.dgi.data(),
                                                                             .dgh = o.dgh.data(),
                                                                             .dgh0 = o.dgh0.data()},
                                         ws);
        return o;
      };
      const bwd_out bc = backward(cpu{}), br = backward(reference{});
      CHECK(parity_error(bc.dgi, br.dgi) < 1e-5);
      CHECK(parity_error(bc.dgh, br.dgh) < 1e-5);
      CHECK(parity_error(bc.dgh0, br.dgh0) < 1e-5);
      // The last step's shifted dgh rows are zero on both.
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t g = 0; g < GH; ++g) {
          CHECK(bc.dgh[(b * T + T - 1) * GH + g] == 0.0f);
          CHECK(br.dgh[(b * T + T - 1) * GH + g] == 0.0f);
        }
    }
}

TEST_CASE("ops::recurrent_forward: empty batch or sequence writes nothing on both backends") {
  for (auto [B, T] : std::vector<std::pair<std::size_t, std::size_t>>{{0, 3}, {2, 0}}) {
    const std::size_t H = 4, GH = 3 * H;
    std::vector<float> w(GH * H, 0.5f), h0(std::max<std::size_t>(B, 1) * H, 1.0f), out(8, sentinel);
    ops::recurrent_workspace<cpu, float> wc;
    ops::recurrent_workspace<reference, float> wr;
    const ops::recurrent_forward_args<float> a{.cell = ops::rnn_cell::gru,
                                               .batch = B,
                                               .time = T,
                                               .hidden = H,
                                               .gates = out.data(),
                                               .w_hh = w.data(),
                                               .h0 = h0.data(),
                                               .h = out.data(),
                                               .extra = out.data()};
    ops::recurrent_forward<cpu>(a, wc);
    ops::recurrent_forward<reference>(a, wr);
    CHECK(out == std::vector<float>(8, sentinel));
  }
}
