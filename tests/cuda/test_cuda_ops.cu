// cuda against cpu for every op that has a CUDA kernel (backend/cuda.cuh), on random inputs of the
// shapes the cpu-vs-reference tests use (tests/backend/) plus the audio model's: the same host
// inputs go through ops::<op><cpu> on the host and ops::<op><cpc::cuda> on the device, and the results
// must agree to the stated tolerances (scaled_max_error: max |a - b| over max |b|). Also: an
// out-of-memory call gives device_error. Needs a GPU: without one the executable exits 77 (skipped).
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "cuda/device_parity.hpp"

using namespace cpc;
using namespace cpc::testing;

TEST_CASE(
    "cuda ops: gemm equals cpu (1e-5 of the scale) for row-major, transposed, strided and padded operands") {
  rng gen(1);
  const std::vector<std::array<std::size_t, 3>> shapes{{1, 1, 1},     {1, 70, 37},     {13, 33, 1},
                                                       {25, 32, 300}, {12, 64, 8},     {100, 7, 513},
                                                       {37, 129, 64}, {256, 512, 512}, {3, 4, 0}};
  for (const auto& [m, n, k] : shapes)
    for (int at = 0; at < 2; ++at)
      for (int bt = 0; bt < 2; ++bt)
        for (int acc = 0; acc < 2; ++acc) {
          CAPTURE(m);
          CAPTURE(n);
          CAPTURE(k);
          CAPTURE(at);
          CAPTURE(bt);
          CAPTURE(acc);
          const auto a = random_values(m * k, gen), b = random_values(k * n, gen);
          const auto ldc = static_cast<std::ptrdiff_t>(n) + 3;
          auto c = random_values(m * static_cast<std::size_t>(ldc), gen);
          auto da = on_device(a), db = on_device(b), dc = on_device(c);
          ops::gemm_args<float> g{.m = m,
                                  .n = n,
                                  .k = k,
                                  .a = a.data(),
                                  .a_row_stride = at ? 1 : static_cast<std::ptrdiff_t>(k),
                                  .a_depth_stride = at ? static_cast<std::ptrdiff_t>(m) : 1,
                                  .b = b.data(),
                                  .b_row_stride = bt ? 1 : static_cast<std::ptrdiff_t>(n),
                                  .b_col_stride = bt ? static_cast<std::ptrdiff_t>(k) : 1,
                                  .c = c.data(),
                                  .ldc = ldc,
                                  .accumulate = acc != 0};
          ops::gemm_workspace<cpu, float> ws_cpu;
          ops::gemm<cpu>(g, ws_cpu);
          g.a = da.data();
          g.b = db.data();
          g.c = dc.data();
          ops::gemm_workspace<cpc::cuda, float> ws_cuda;
          ops::gemm<cpc::cuda>(g, ws_cuda);
          const auto got = on_host(dc);
          CHECK(scaled_max_error(got, c) < 1e-5);
          for (std::size_t i = 0; i < m; ++i)  // C's padding columns are never written
            for (std::size_t j = n; j < static_cast<std::size_t>(ldc); ++j)
              CHECK(got[i * static_cast<std::size_t>(ldc) + j] == c[i * static_cast<std::size_t>(ldc) + j]);
        }
  // Strides no cuBLAS call takes: the fallback kernel.
  const std::size_t m = 9, n = 5, k = 7;
  const auto a = random_values(2 * m * k, gen), b = random_values(k * n, gen);
  std::vector<float> c(m * n);
  auto da = on_device(a), db = on_device(b), dc = on_device(c);
  ops::gemm_args<float> g{.m = m,
                          .n = n,
                          .k = k,
                          .a = a.data(),
                          .a_row_stride = static_cast<std::ptrdiff_t>(2 * k),
                          .a_depth_stride = 2,
                          .b = b.data(),
                          .b_row_stride = static_cast<std::ptrdiff_t>(n),
                          .c = c.data(),
                          .ldc = static_cast<std::ptrdiff_t>(n)};
  ops::gemm_workspace<cpu, float> ws_cpu;
  ops::gemm<cpu>(g, ws_cpu);
  g.a = da.data();
  g.b = db.data();
  g.c = dc.data();
  ops::gemm_workspace<cpc::cuda, float> ws_cuda;
  ops::gemm<cpc::cuda>(g, ws_cuda);
  CHECK(device_error_vs(dc, c) < 1e-5);
}

TEST_CASE("cuda ops: add_row_vector, sum_rows, axpby, fill, copy and the activations equal cpu") {
  rng gen(2);
  for (const auto& [rows, cols] :
       std::vector<std::array<std::size_t, 2>>{{1, 1}, {3, 17}, {300, 70}, {1000, 130}, {40000, 3}}) {
    CAPTURE(rows);
    CAPTURE(cols);
    const std::size_t n = rows * cols;
    const auto ld = static_cast<std::ptrdiff_t>(cols);
    const auto v = random_values(cols, gen), x = random_values(n, gen);
    auto y = random_values(n, gen);
    auto dv = on_device(v), dx = on_device(x), dy = on_device(y);
    ops::add_row_vector<cpu>(ops::add_row_vector_args<float>{rows, cols, v.data(), y.data(), ld});
    ops::add_row_vector<cpc::cuda>(ops::add_row_vector_args<float>{rows, cols, dv.data(), dy.data(), ld});
    CHECK(on_host(dy) == y);  // one addition per element: exact

    auto s = random_values(cols, gen);
    auto ds = on_device(s);
    ops::sum_rows<cpu>(ops::sum_rows_args<float>{rows, cols, x.data(), ld, s.data()});
    ops::sum_rows<cpc::cuda>(ops::sum_rows_args<float>{rows, cols, dx.data(), ld, ds.data()});
    CHECK(device_error_vs(ds, s) < 1e-5);

    auto w = random_values(n, gen);
    auto dw = on_device(w);
    ops::axpby<cpu>(ops::axpby_args<float>{n, 0.5f, x.data(), -2.0f, w.data()});
    ops::axpby<cpc::cuda>(ops::axpby_args<float>{n, 0.5f, dx.data(), -2.0f, dw.data()});
    CHECK(device_error_vs(dw, w) < 1e-6);
    std::vector<float> nan(n, std::nanf(""));
    auto dnan = on_device(nan);
    ops::axpby<cpc::cuda>(ops::axpby_args<float>{n, 3.0f, dx.data(), 0.0f, dnan.data()});
    ops::axpby<cpu>(ops::axpby_args<float>{n, 3.0f, x.data(), 0.0f, nan.data()});
    CHECK(on_host(dnan) == nan);  // beta = 0 overwrites NaN

    ops::fill<cpc::cuda>(ops::fill_args<float>{n, 7.0f, dw.data()});
    CHECK(on_host(dw) == std::vector<float>(n, 7.0f));
    ops::fill<cpc::cuda>(ops::fill_args<float>{n, 0.0f, dw.data()});
    CHECK(on_host(dw) == std::vector<float>(n, 0.0f));
    ops::copy<cpc::cuda>(ops::copy_args<float>{n, dx.data(), dw.data()});
    CHECK(on_host(dw) == x);

    std::vector<float> r(n), d(n);
    auto dr = on_device(r), dd = on_device(d);
    ops::relu_forward<cpu>(ops::relu_forward_args<float>{n, x.data(), r.data()});
    ops::relu_forward<cpc::cuda>(ops::relu_forward_args<float>{n, dx.data(), dr.data()});
    CHECK(on_host(dr) == r);
    ops::relu_backward<cpu>(ops::relu_backward_args<float>{n, r.data(), y.data(), d.data()});
    ops::relu_backward<cpc::cuda>(ops::relu_backward_args<float>{n, dr.data(), dy.data(), dd.data()});
    CHECK(on_host(dd) == d);
    ops::add_where_positive<cpu>(ops::add_where_positive_args<float>{n, x.data(), y.data(), d.data()});
    ops::add_where_positive<cpc::cuda>(
        ops::add_where_positive_args<float>{n, dx.data(), dy.data(), dd.data()});
    CHECK(on_host(dd) == d);
  }
}

TEST_CASE("cuda ops: layer norm forward and backward equal cpu (1e-5), with and without affine and ReLU") {
  rng gen(3);
  for (const auto& [rows, cols] : std::vector<std::array<std::size_t, 2>>{
           {1, 1}, {1, 7}, {3, 5}, {130, 6}, {65, 200}, {200, 513}, {8192, 512}})
    for (bool affine : {true, false})
      for (bool relu : {false, true})
        for (bool with_dx : {true, false}) {
          CAPTURE(rows);
          CAPTURE(cols);
          CAPTURE(affine);
          CAPTURE(relu);
          CAPTURE(with_dx);
          const std::size_t n = rows * cols;
          auto x = random_values(n, gen, 3.0);
          for (std::size_t r = 0; r < rows; ++r) x[r * cols] += 5.0f;
          const auto w = random_values(cols, gen, 2.0), b = random_values(cols, gen, 0.5),
                     dy = random_values(n, gen);
          std::vector<float> y(n);
          auto dx_ = on_device(x), dw_ = on_device(w), db_ = on_device(b), ddy = on_device(dy),
               dyo = on_device(y);
          ops::layer_norm_forward_args<float> f{.rows = rows,
                                                .cols = cols,
                                                .eps = 1e-5,
                                                .relu = relu,
                                                .x = x.data(),
                                                .weight = affine ? w.data() : nullptr,
                                                .bias = affine ? b.data() : nullptr,
                                                .y = y.data()};
          ops::layer_norm_forward<cpu>(f);
          f.x = dx_.data();
          f.weight = affine ? dw_.data() : nullptr;
          f.bias = affine ? db_.data() : nullptr;
          f.y = dyo.data();
          ops::layer_norm_forward<cpc::cuda>(f);
          CHECK(device_error_vs(dyo, y) < 1e-5);

          std::vector<float> gx(with_dx ? n : 0);
          auto gw = random_values(cols, gen), gb = random_values(cols, gen);
          auto dgx = on_device(gx), dgw = on_device(gw), dgb = on_device(gb);
          ops::layer_norm_backward_args<float> bw{.rows = rows,
                                                  .cols = cols,
                                                  .eps = 1e-5,
                                                  .relu = relu,
                                                  .x = x.data(),
                                                  .y = y.data(),
                                                  .dy = dy.data(),
                                                  .weight = affine ? w.data() : nullptr,
                                                  .dx = with_dx ? gx.data() : nullptr,
                                                  .d_weight = affine ? gw.data() : nullptr,
                                                  .d_bias = affine ? gb.data() : nullptr};
          ops::layer_norm_workspace<cpu, float> ws_cpu;
          ops::layer_norm_backward<cpu>(bw, ws_cpu);
          bw.x = dx_.data();
          bw.y = dyo.data();
          bw.dy = ddy.data();
          bw.weight = affine ? dw_.data() : nullptr;
          bw.dx = with_dx ? dgx.data() : nullptr;
          bw.d_weight = affine ? dgw.data() : nullptr;
          bw.d_bias = affine ? dgb.data() : nullptr;
          ops::layer_norm_workspace<cpc::cuda, float> ws_cuda;
          ops::layer_norm_backward<cpc::cuda>(bw, ws_cuda);
          if (with_dx) CHECK(device_error_vs(dgx, gx) < 1e-5);
          CHECK(device_error_vs(dgw, gw) < 1e-5);
          CHECK(device_error_vs(dgb, gb) < 1e-5);
        }
}

TEST_CASE(
    "cuda ops: recurrent_forward / recurrent_backward (GRU, LSTM) equal cpu (1e-4), with and without bias") {
  rng gen(4);
  for (auto cell : {ops::rnn_cell::gru, ops::rnn_cell::lstm})
    for (const auto& [B, T, H] :
         std::vector<std::array<std::size_t, 3>>{{1, 1, 1}, {3, 7, 33}, {8, 128, 256}})
      for (bool bias : {true, false}) {
        CAPTURE(static_cast<int>(cell));
        CAPTURE(B);
        CAPTURE(T);
        CAPTURE(H);
        CAPTURE(bias);
        const std::size_t GH = ops::rnn_gates(cell) * H;
        const double scale = 1.0 / std::sqrt(static_cast<double>(H));
        const auto gates0 = random_values(B * T * GH, gen), w_hh = random_values(GH * H, gen, scale),
                   b_ih = random_values(GH, gen, scale), b_hh = random_values(GH, gen, scale),
                   h0 = random_values(B * H, gen), c0 = random_values(B * H, gen),
                   dy = random_values(B * T * H, gen);
        auto gates = gates0;
        std::vector<float> h(B * T * H), extra(B * T * H);
        auto d_gates = on_device(gates0), d_w = on_device(w_hh), d_bih = on_device(b_ih),
             d_bhh = on_device(b_hh), d_h0 = on_device(h0), d_c0 = on_device(c0), d_h = on_device(h),
             d_extra = on_device(extra), d_dy = on_device(dy);
        ops::recurrent_forward_args<float> f{.cell = cell,
                                             .batch = B,
                                             .time = T,
                                             .hidden = H,
                                             .gates = gates.data(),
                                             .w_hh = w_hh.data(),
                                             .b_ih = bias ? b_ih.data() : nullptr,
                                             .b_hh = bias ? b_hh.data() : nullptr,
                                             .h0 = h0.data(),
                                             .c0 = c0.data(),
                                             .h = h.data(),
                                             .extra = extra.data()};
        ops::recurrent_workspace<cpu, float> ws_cpu;
        ops::recurrent_forward<cpu>(f, ws_cpu);
        f.gates = d_gates.data();
        f.w_hh = d_w.data();
        f.b_ih = bias ? d_bih.data() : nullptr;
        f.b_hh = bias ? d_bhh.data() : nullptr;
        f.h0 = d_h0.data();
        f.c0 = d_c0.data();
        f.h = d_h.data();
        f.extra = d_extra.data();
        ops::recurrent_workspace<cpc::cuda, float> ws_cuda;
        ops::recurrent_forward<cpc::cuda>(f, ws_cuda);
        CHECK(device_error_vs(d_gates, gates) < 1e-4);
        CHECK(device_error_vs(d_h, h) < 1e-4);
        CHECK(device_error_vs(d_extra, extra) < 1e-4);

        std::vector<float> dgi(B * T * GH), dgh(B * T * GH, 5.0f), dgh0(B * GH);
        auto d_dgi = on_device(dgi), d_dgh = on_device(dgh), d_dgh0 = on_device(dgh0);
        ops::recurrent_backward_args<float> bw{.cell = cell,
                                               .batch = B,
                                               .time = T,
                                               .hidden = H,
                                               .gates = gates.data(),
                                               .extra = extra.data(),
                                               .h = h.data(),
                                               .h0 = h0.data(),
                                               .c0 = c0.data(),
                                               .w_hh = w_hh.data(),
                                               .dy = dy.data(),
                                               .dgi = dgi.data(),
                                               .dgh = dgh.data(),
                                               .dgh0 = dgh0.data()};
        ops::recurrent_backward<cpu>(bw, ws_cpu);
        bw.gates = d_gates.data();
        bw.extra = d_extra.data();
        bw.h = d_h.data();
        bw.h0 = d_h0.data();
        bw.c0 = d_c0.data();
        bw.w_hh = d_w.data();
        bw.dy = d_dy.data();
        bw.dgi = d_dgi.data();
        bw.dgh = d_dgh.data();
        bw.dgh0 = d_dgh0.data();
        ops::recurrent_backward<cpc::cuda>(bw, ws_cuda);
        CHECK(device_error_vs(d_dgi, dgi) < 1e-4);
        CHECK(device_error_vs(d_dgh, dgh) < 1e-4);
        CHECK(device_error_vs(d_dgh0, dgh0) < 1e-4);
      }
}

TEST_CASE(
    "cuda ops: conv1d forward and both gradients equal cpu (1e-5), the audio encoder's layers included") {
  rng gen(5);
  // (batch, t_in, c_in, c_out, kernel, stride, padding): the paper's five layers at batch 2 on 1.28 s
  // of audio, odd shapes, no padding, a kernel as long as the input.
  const std::vector<std::array<std::size_t, 7>> shapes{
      {2, 20480, 1, 512, 10, 5, 3}, {2, 4096, 512, 512, 8, 4, 2}, {2, 1024, 512, 512, 4, 2, 1},
      {2, 256, 512, 512, 4, 2, 1},  {3, 32, 8, 6, 8, 4, 2},       {1, 9, 3, 2, 4, 2, 1},
      {2, 7, 2, 3, 3, 1, 0},        {1, 5, 4, 2, 5, 1, 0}};
  for (const auto& [batch, t_in, c_in, c_out, kernel, stride, padding] : shapes)
    for (bool bias : {true, false}) {
      CAPTURE(t_in);
      CAPTURE(c_in);
      CAPTURE(kernel);
      CAPTURE(bias);
      const ops::conv1d_shape s{batch, t_in, c_in, c_out, kernel, stride, padding};
      const std::size_t t_out = s.t_out();
      const double scale = 1.0 / std::sqrt(static_cast<double>(c_in * kernel));
      const auto x = random_values(batch * t_in * c_in, gen),
                 w = random_values(c_out * c_in * kernel, gen, scale), b = random_values(c_out, gen),
                 dy = random_values(batch * t_out * c_out, gen);
      std::vector<float> y(batch * t_out * c_out);
      auto dx_ = on_device(x), dw_ = on_device(w), db_ = on_device(b), ddy = on_device(dy),
           dyo = on_device(y);
      ops::conv1d_workspace<cpu, float> ws_cpu;
      ops::conv1d_workspace<cpc::cuda, float> ws_cuda;
      ops::conv1d_forward<cpu>(
          ops::conv1d_forward_args<float>{s, x.data(), w.data(), bias ? b.data() : nullptr, y.data()},
          ws_cpu);
      ops::conv1d_forward<cpc::cuda>(
          ops::conv1d_forward_args<float>{s, dx_.data(), dw_.data(), bias ? db_.data() : nullptr, dyo.data()},
          ws_cuda);
      CHECK(device_error_vs(dyo, y) < 1e-5);

      auto gw = random_values(w.size(), gen), gb = random_values(c_out, gen);
      auto dgw = on_device(gw), dgb = on_device(gb);
      ops::conv1d_backward_params<cpu>(
          ops::conv1d_backward_params_args<float>{s, x.data(), dy.data(), gw.data(),
                                                  bias ? gb.data() : nullptr},
          ws_cpu);
      ops::conv1d_backward_params<cpc::cuda>(
          ops::conv1d_backward_params_args<float>{s, dx_.data(), ddy.data(), dgw.data(),
                                                  bias ? dgb.data() : nullptr},
          ws_cuda);
      CHECK(device_error_vs(dgw, gw) < 1e-5);
      CHECK(device_error_vs(dgb, gb) < 1e-5);

      std::vector<float> gx(x.size(), std::nanf(""));
      auto dgx = on_device(gx);
      ops::conv1d_backward_input<cpu>(
          ops::conv1d_backward_input_args<float>{s, dy.data(), w.data(), gx.data()}, ws_cpu);
      ops::conv1d_backward_input<cpc::cuda>(
          ops::conv1d_backward_input_args<float>{s, ddy.data(), dw_.data(), dgx.data()}, ws_cuda);
      CHECK(device_error_vs(dgx, gx) < 1e-5);
    }
}

TEST_CASE("cuda ops: InfoNCE anchor terms, the dz gather and transpose_grid equal cpu") {
  rng gen(6);
  struct step_case {
    std::size_t batch, time, dim, negatives, step;
    std::vector<std::size_t> lengths;
  };
  const std::vector<step_case> cases{{1, 1, 3, 2, 1, {1}},
                                     {1, 2, 2, 1, 1, {2}},
                                     {2, 13, 37, 7, 3, {13, 6}},
                                     {2, 33, 17, 4, 2, {33, 1}},
                                     {4, 50, 512, 128, 12, {50, 20, 13, 40}},
                                     {8, 128, 512, 128, 1, {128, 128, 128, 128, 128, 128, 128, 100}}};
  for (const auto& c : cases)
    for (bool grad : {true, false}) {
      CAPTURE(c.batch);
      CAPTURE(c.dim);
      CAPTURE(c.negatives);
      CAPTURE(grad);
      const std::size_t BT = c.batch * c.time, N1 = c.negatives + 1, D = c.dim;
      const auto p = random_values(BT * D, gen, 0.5), z = random_values(BT * D, gen, 0.5);
      std::vector<std::int32_t> valid, neg(BT * c.negatives, 0);
      for (std::size_t b = 0; b < c.batch; ++b)
        for (std::size_t t = 0; t < c.lengths[b]; ++t)
          valid.push_back(static_cast<std::int32_t>(b * c.time + t));
      for (std::size_t a = 0; a < BT; ++a) {
        if (a % c.time + c.step >= c.lengths[a / c.time]) continue;
        for (std::size_t n = 0; n < c.negatives; ++n) {
          std::int32_t v = 0;
          do v = valid[gen.uniform_int(valid.size())];
          while (v == static_cast<std::int32_t>(a + c.step));
          neg[a * c.negatives + n] = v;
        }
      }
      std::vector<std::int32_t> cand(BT * N1, -7);
      std::vector<float> logits(BT * N1, 5.0f), dp(grad ? BT * D : 0, std::nanf(""));
      std::vector<double> loss(BT, 3.0);
      std::vector<unsigned char> hit(BT, 7);
      double loss_sum = 0, dev_loss_sum = 0;
      std::size_t hits = 0, dev_hits = 0;
      auto d_len = on_device(c.lengths);
      auto d_p = on_device(p), d_z = on_device(z), d_logits = on_device(logits), d_dp = on_device(dp);
      auto d_neg = on_device(neg), d_cand = on_device(cand);
      auto d_loss = on_device(loss);
      auto d_hit = on_device(hit);
      ops::info_nce_anchor_args<float> g{.batch = c.batch,
                                         .time = c.time,
                                         .dim = D,
                                         .negatives = c.negatives,
                                         .step = c.step,
                                         .lengths = c.lengths.data(),
                                         .p = p.data(),
                                         .z = z.data(),
                                         .negative_index = neg.data(),
                                         .scale = 0.7f,
                                         .weight = 0.01,
                                         .candidates = cand.data(),
                                         .logits = logits.data(),
                                         .anchor_loss = loss.data(),
                                         .anchor_hit = hit.data(),
                                         .dp = grad ? dp.data() : nullptr,
                                         .loss_sum = &loss_sum,
                                         .hits = &hits};
      ops::info_nce_anchor_terms<cpu>(g);
      g.lengths = d_len.data();
      g.p = d_p.data();
      g.z = d_z.data();
      g.negative_index = d_neg.data();
      g.candidates = d_cand.data();
      g.logits = d_logits.data();
      g.anchor_loss = d_loss.data();
      g.anchor_hit = d_hit.data();
      g.dp = grad ? d_dp.data() : nullptr;
      g.loss_sum = &dev_loss_sum;
      g.hits = &dev_hits;
      ops::info_nce_anchor_terms<cpc::cuda>(g);
      CHECK(on_host(d_cand) == cand);
      CHECK(dev_hits == hits);
      CHECK(dev_loss_sum == doctest::Approx(loss_sum).epsilon(1e-6));
      CHECK(scaled_max_error(on_host(d_loss), loss) < 1e-6);
      CHECK(device_error_vs(d_logits, logits) < 1e-5);
      if (grad) CHECK(device_error_vs(d_dp, dp) < 1e-5);
      if (!grad) continue;

      const auto dz0 = random_values(BT * D, gen);
      auto dz = dz0;
      auto d_dz = on_device(dz0), d_dz2 = on_device(dz0);
      ops::info_nce_scatter_args<float> s{.batch = c.batch,
                                          .time = c.time,
                                          .dim = D,
                                          .negatives = c.negatives,
                                          .step = c.step,
                                          .lengths = c.lengths.data(),
                                          .candidates = cand.data(),
                                          .coeff = logits.data(),
                                          .p = p.data(),
                                          .dz = dz.data()};
      ops::info_nce_scatter_workspace<cpu, float> ws_cpu;
      ops::info_nce_scatter_dz<cpu>(s, ws_cpu);
      s.lengths = d_len.data();
      s.candidates = d_cand.data();
      s.coeff = d_logits.data();
      s.p = d_p.data();
      s.dz = d_dz.data();
      ops::info_nce_scatter_workspace<cpc::cuda, float> ws_cuda;
      ops::info_nce_scatter_dz<cpc::cuda>(s, ws_cuda);
      CHECK(device_error_vs(d_dz, dz) < 1e-5);
      s.dz = d_dz2.data();  // deterministic: the same inputs give the same bits
      ops::info_nce_scatter_dz<cpc::cuda>(s, ws_cuda);
      CHECK(on_host(d_dz2) == on_host(d_dz));
    }
  const std::size_t B = 2, R = 7, C = 5, D = 33, n = B * R * C * D;
  const auto x = random_values(n, gen);
  std::vector<float> y(n);
  auto d_x = on_device(x), d_y = on_device(y);
  ops::transpose_grid<cpu>(ops::transpose_grid_args<float>{B, R, C, D, x.data(), y.data()});
  ops::transpose_grid<cpc::cuda>(ops::transpose_grid_args<float>{B, R, C, D, d_x.data(), d_y.data()});
  CHECK(on_host(d_y) == y);
}

TEST_CASE("cuda ops: Adam, SGD, sum of squares and the first non-finite index equal cpu") {
  rng gen(7);
  const std::size_t n = 100003;
  const auto grad = random_values(n, gen);
  auto value = random_values(n, gen), m = random_values(n, gen, 0.1), v = random_values(n, gen, 0.1);
  for (auto& s : v) s = std::abs(s);
  auto d_value = on_device(value), d_grad = on_device(grad), d_m = on_device(m), d_v = on_device(v);
  for (bool decay : {false, true}) {
    ops::adam_update_args<float> a{.n = n,
                                   .value = value.data(),
                                   .grad = grad.data(),
                                   .exp_avg = m.data(),
                                   .exp_avg_sq = v.data(),
                                   .step_size = 1e-3f,
                                   .bc2_sqrt = 0.3f,
                                   .beta1 = 0.9f,
                                   .beta2 = 0.999f,
                                   .one_minus_beta1 = 0.1f,
                                   .one_minus_beta2 = 0.001f,
                                   .eps = 1e-8f,
                                   .weight_decay = 0.01f,
                                   .decay = decay};
    ops::adam_update<cpu>(a);
    a.value = d_value.data();
    a.grad = d_grad.data();
    a.exp_avg = d_m.data();
    a.exp_avg_sq = d_v.data();
    ops::adam_update<cpc::cuda>(a);
    CHECK(device_error_vs(d_value, value) < 1e-6);
    CHECK(device_error_vs(d_m, m) < 1e-6);
    CHECK(device_error_vs(d_v, v) < 1e-6);
  }
  for (bool momentum : {false, true})
    for (bool nesterov : {false, true}) {
      auto p = random_values(n, gen), b = random_values(n, gen);
      auto d_p = on_device(p), d_b = on_device(b);
      ops::sgd_update_args<float> a{.n = n,
                                    .value = p.data(),
                                    .grad = grad.data(),
                                    .momentum_buffer = momentum ? b.data() : nullptr,
                                    .lr = 0.05f,
                                    .weight_decay = 0.1f,
                                    .momentum = 0.9f,
                                    .keep = 0.75f,
                                    .decay = true,
                                    .nesterov = nesterov};
      ops::sgd_update<cpu>(a);
      a.value = d_p.data();
      a.grad = d_grad.data();
      a.momentum_buffer = momentum ? d_b.data() : nullptr;
      ops::sgd_update<cpc::cuda>(a);
      CHECK(device_error_vs(d_p, p) < 1e-6);
      CHECK(device_error_vs(d_b, b) < 1e-6);
    }
  const std::size_t chunk = 16384, chunks = (n + chunk - 1) / chunk;
  std::vector<double> part_cpu(chunks), part_cuda(chunks);
  ops::sum_squares<cpu>(ops::sum_squares_args<float>{n, grad.data(), chunk, part_cpu.data()});
  ops::sum_squares<cpc::cuda>(ops::sum_squares_args<float>{n, d_grad.data(), chunk, part_cuda.data()});
  for (std::size_t c = 0; c < chunks; ++c) CHECK(part_cuda[c] == doctest::Approx(part_cpu[c]).epsilon(1e-12));
  auto bad = grad;
  std::size_t first = 0;
  ops::find_nonfinite<cpc::cuda>(ops::find_nonfinite_args<float>{n, d_grad.data(), &first});
  CHECK(first == n);
  bad[70000] = std::numeric_limits<float>::infinity();
  bad[90000] = std::nanf("");
  bad[99999] = -std::numeric_limits<float>::infinity();
  auto d_bad = on_device(bad);
  ops::find_nonfinite<cpc::cuda>(ops::find_nonfinite_args<float>{n, d_bad.data(), &first});
  CHECK(first == 70000);
}

TEST_CASE("cuda ops: conv2d, zero_kernel_rows and the patch ops equal cpu (the image model's ops)") {
  rng gen(8);
  // (batch, H, W, C_in, C_out, kernel, stride, padding): the image encoder's convolutions.
  const std::vector<std::array<std::size_t, 8>> shapes{{2, 8, 8, 3, 16, 3, 1, 1},
                                                       {4, 16, 16, 64, 64, 3, 1, 1},
                                                       {3, 7, 9, 2, 3, 3, 2, 1},
                                                       {2, 5, 5, 4, 2, 5, 1, 0}};
  for (const auto& [batch, h, w, ci, co, k, stride, padding] : shapes)
    for (bool with_dx : {true, false}) {
      CAPTURE(h);
      CAPTURE(ci);
      CAPTURE(k);
      CAPTURE(with_dx);
      const ops::conv2d_shape s{batch, h, w, ci, co, k, stride, padding};
      const std::size_t n_out = batch * s.out_height() * s.out_width() * co;
      const double scale = 1.0 / std::sqrt(static_cast<double>(ci * k * k));
      const auto x = random_values(batch * h * w * ci, gen), wt = random_values(co * ci * k * k, gen, scale),
                 b = random_values(co, gen), dy = random_values(n_out, gen);
      std::vector<float> y(n_out);
      auto dx_ = on_device(x), dw_ = on_device(wt), db_ = on_device(b), ddy = on_device(dy),
           dyo = on_device(y);
      ops::conv2d_workspace<cpu, float> ws_cpu;
      ops::conv2d_workspace<cpc::cuda, float> ws_cuda;
      ops::conv2d_forward<cpu>(ops::conv2d_forward_args<float>{s, x.data(), wt.data(), b.data(), y.data()},
                               ws_cpu);
      ops::conv2d_forward<cpc::cuda>(
          ops::conv2d_forward_args<float>{s, dx_.data(), dw_.data(), db_.data(), dyo.data()}, ws_cuda);
      CHECK(device_error_vs(dyo, y) < 1e-5);
      auto gw = random_values(wt.size(), gen), gb = random_values(co, gen);
      std::vector<float> gx(x.size(), std::nanf(""));
      auto dgw = on_device(gw), dgb = on_device(gb), dgx = on_device(gx);
      ops::conv2d_backward<cpu>(ops::conv2d_backward_args<float>{s, x.data(), wt.data(), dy.data(), gw.data(),
                                                                 gb.data(), with_dx ? gx.data() : nullptr},
                                ws_cpu);
      ops::conv2d_backward<cpc::cuda>(
          ops::conv2d_backward_args<float>{s, dx_.data(), dw_.data(), ddy.data(), dgw.data(), dgb.data(),
                                           with_dx ? dgx.data() : nullptr},
          ws_cuda);
      CHECK(device_error_vs(dgw, gw) < 1e-5);
      CHECK(device_error_vs(dgb, gb) < 1e-5);
      if (with_dx) CHECK(device_error_vs(dgx, gx) < 1e-5);
    }
  auto wk = random_values(12 * 5 * 5, gen);
  auto dwk = on_device(wk);
  ops::zero_kernel_rows<cpu>(ops::zero_kernel_rows_args<float>{12, 5, 3, wk.data()});
  ops::zero_kernel_rows<cpc::cuda>(ops::zero_kernel_rows_args<float>{12, 5, 3, dwk.data()});
  CHECK(on_host(dwk) == wk);

  const std::size_t B = 3, H = 28, W = 28, C = 1, size = 8, stride = 4, pad = 2;
  const std::size_t rows = (H + 2 * pad - size) / stride + 1, cols = (W + 2 * pad - size) / stride + 1;
  const auto images = random_values(B * H * W * C, gen);
  const std::size_t n = B * rows * cols * size * size * C;
  std::vector<float> p(n);
  auto d_images = on_device(images), d_p = on_device(p);
  ops::extract_patches<cpu>(
      ops::extract_patches_args<float>{B, H, W, C, size, stride, pad, rows, cols, images.data(), p.data()});
  ops::extract_patches<cpc::cuda>(ops::extract_patches_args<float>{B, H, W, C, size, stride, pad, rows, cols,
                                                                   d_images.data(), d_p.data()});
  CHECK(on_host(d_p) == p);
  const std::size_t patches = B * rows * cols, pixels = size * size, ch = 64;
  const auto maps = random_values(patches * pixels * ch, gen);
  std::vector<float> m(patches * ch), g(maps.size());
  auto d_maps = on_device(maps), d_m = on_device(m), d_g = on_device(g);
  ops::patch_mean_pool<cpu>(ops::patch_mean_pool_args<float>{patches, pixels, ch, maps.data(), m.data()});
  ops::patch_mean_pool<cpc::cuda>(
      ops::patch_mean_pool_args<float>{patches, pixels, ch, d_maps.data(), d_m.data()});
  CHECK(device_error_vs(d_m, m) < 1e-6);
  ops::patch_mean_pool_backward<cpu>(
      ops::patch_mean_pool_backward_args<float>{patches, pixels, ch, m.data(), g.data()});
  ops::patch_mean_pool_backward<cpc::cuda>(
      ops::patch_mean_pool_backward_args<float>{patches, pixels, ch, d_m.data(), d_g.data()});
  CHECK(device_error_vs(d_g, g) < 1e-6);
}

TEST_CASE("cuda ops: a convolution whose im2col does not fit is a device_error naming the op and the sizes") {
  // 2^20 frames x 512 channels x kernel 8 at stride 1: an im2col of 16 TiB.
  const ops::conv1d_shape s{1, std::size_t{1} << 20, 512, 512, 8, 1, 0};
  device_buffer<float> x(1), w(1), y(1);
  ops::conv1d_workspace<cpc::cuda, float> ws;
  try {
    ops::conv1d_forward<cpc::cuda>(ops::conv1d_forward_args<float>{s, x.data(), w.data(), nullptr, y.data()},
                                   ws);
    FAIL("expected a device_error");
  } catch (const device_error& e) {
    const std::string m = e.what();
    CHECK(m.find("cpc::cuda conv1d_forward (batch=1, t_in=1048576") != std::string::npos);
    CHECK(m.find("device_buffer allocation") != std::string::npos);
    CHECK(m.find("cudaErrorMemoryAllocation") != std::string::npos);
  }
  // The device keeps working.
  device_buffer<float> ok(4, 1.0f);
  CHECK(on_host(ok) == std::vector<float>(4, 1.0f));
}
