// The CUDA backend's kernel bodies (backend/cuda/body/*.hpp) run on the host, compiled by the
// ordinary C++ compiler, against the reference backend: the element of every element-wise op,
// the per-row layer-norm algorithm (one lane), the GRU/LSTM cell elements, the InfoNCE anchor
// algorithm and dz gather (with the entry sort done by std::stable_sort, as the device does with a
// stable radix sort), the conv1d im2col / col2im (with a host GEMM), the optimiser updates, and
// `plan_gemm`'s mapping of row-major GEMMs onto one column-major cuBLAS call (executed by a host
// GEMM written as cuBLAS documents it). Needs no GPU and no CUDA toolkit: CI runs it everywhere.
// What these cannot check - launch geometry, block reductions, cuBLAS itself - the device tests do
// (tests/cuda/test_cuda_ops.cu).
#include <doctest/doctest.h>

#include <cpc/backend/cuda/body.hpp>
#include <cpc/backend/ops.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "support/backend_parity.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

template <class T = float>
std::vector<T> random_vector(std::size_t n, rng& gen, double scale = 1.0) {
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(gen.uniform(-scale, scale));
  return v;
}

/// Runs `cuda_body::element(args, i)` for i < n, as the device's element-wise kernel does.
template <class Args>
void run_elements(const Args& a, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) cuda_body::element(a, i);
}

/// cuBLAS's column-major gemm as documented (C = op(A) op(B) + beta C, alpha = 1), in double.
template <class T>
void column_major_gemm(bool ta, bool tb, long long m, long long n, long long k, const T* a, long long lda,
                       const T* b, long long ldb, double beta, T* c, long long ldc) {
  for (long long i = 0; i < m; ++i)
    for (long long j = 0; j < n; ++j) {
      double s = 0;
      for (long long p = 0; p < k; ++p) {
        const double av = ta ? a[p + i * lda] : a[i + p * lda];
        const double bv = tb ? b[j + p * ldb] : b[p + j * ldb];
        s += av * bv;
      }
      T& cv = c[i + j * ldc];
      cv = static_cast<T>(beta == 0 ? s : s + beta * static_cast<double>(cv));
    }
}

/// Executes `plan_gemm(g)` (CHECKs that it is ok) with the host column-major gemm.
template <class T>
void run_planned_gemm(const ops::gemm_args<T>& g) {
  if (g.k == 0) {  // the device wrapper handles k = 0 without cuBLAS
    if (!g.accumulate)
      for (std::size_t i = 0; i < g.m; ++i)
        for (std::size_t j = 0; j < g.n; ++j) g.c[static_cast<std::ptrdiff_t>(i) * g.ldc + j] = T(0);
    return;
  }
  const cuda_body::gemm_plan p = cuda_body::plan_gemm(g);
  REQUIRE(p.ok);
  column_major_gemm(p.transpose_x, p.transpose_y, p.m, p.n, p.k, g.b, p.ldx, g.a, p.ldy,
                    g.accumulate ? 1.0 : 0.0, g.c, p.ldc);
}

}  // namespace

TEST_CASE("cuda bodies: plan_gemm maps every row-major and transposed operand onto one cuBLAS call") {
  rng gen(1);
  const std::vector<std::array<std::size_t, 3>> shapes{{1, 1, 1},     {1, 70, 37},   {13, 33, 1},
                                                       {25, 32, 300}, {12, 64, 8},   {100, 7, 1},
                                                       {1, 1, 513},   {37, 129, 64}, {3, 5, 0}};
  for (const auto& entry : shapes)
    for (int at = 0; at < 2; ++at)
      for (int bt = 0; bt < 2; ++bt)
        for (int acc = 0; acc < 2; ++acc) {
          const std::size_t m = std::get<0>(entry);
          const std::size_t n = std::get<1>(entry);
          const std::size_t k = std::get<2>(entry);
          CAPTURE(m);
          CAPTURE(n);
          CAPTURE(k);
          CAPTURE(at);
          CAPTURE(bt);
          CAPTURE(acc);
          const auto a = random_vector(m * k, gen), b = random_vector(k * n, gen);
          const auto ldc = static_cast<std::ptrdiff_t>(n) + 2;
          auto c_plan = random_vector(m * static_cast<std::size_t>(ldc), gen), c_ref = c_plan;
          ops::gemm_args<float> g{.m = m,
                                  .n = n,
                                  .k = k,
                                  .a = a.data(),
                                  .a_row_stride = at ? 1 : static_cast<std::ptrdiff_t>(k),
                                  .a_depth_stride = at ? static_cast<std::ptrdiff_t>(m) : 1,
                                  .b = b.data(),
                                  .b_row_stride = bt ? 1 : static_cast<std::ptrdiff_t>(n),
                                  .b_col_stride = bt ? static_cast<std::ptrdiff_t>(k) : 1,
                                  .c = c_plan.data(),
                                  .ldc = ldc,
                                  .accumulate = acc != 0};
          run_planned_gemm(g);
          g.c = c_ref.data();
          ops::gemm_workspace<reference, float> ws;
          ops::gemm<reference>(g, ws);
          CHECK(scaled_max_error(c_plan, c_ref) < 1e-6);
          // The padding columns of C are never written.
          for (std::size_t i = 0; i < m; ++i)
            for (std::size_t j = n; j < static_cast<std::size_t>(ldc); ++j)
              CHECK(c_plan[i * static_cast<std::size_t>(ldc) + j] ==
                    c_ref[i * static_cast<std::size_t>(ldc) + j]);
        }
}

TEST_CASE("cuda bodies: plan_gemm refuses strides no cuBLAS call takes; gemm_element computes them") {
  rng gen(2);
  const std::size_t m = 4, n = 3, k = 5;
  // A read with row stride 2k and depth stride 2 (every other scalar): no unit stride.
  const auto a = random_vector(2 * m * k, gen), b = random_vector(k * n, gen);
  std::vector<float> c_body(m * n), c_ref(m * n);
  ops::gemm_args<float> g{.m = m,
                          .n = n,
                          .k = k,
                          .a = a.data(),
                          .a_row_stride = static_cast<std::ptrdiff_t>(2 * k),
                          .a_depth_stride = 2,
                          .b = b.data(),
                          .b_row_stride = static_cast<std::ptrdiff_t>(n),
                          .b_col_stride = 1,
                          .c = c_body.data(),
                          .ldc = static_cast<std::ptrdiff_t>(n)};
  CHECK_FALSE(cuda_body::plan_gemm(g).ok);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) cuda_body::gemm_element(g, i, j);
  g.c = c_ref.data();
  ops::gemm_workspace<reference, float> ws;
  ops::gemm<reference>(g, ws);
  CHECK(c_body == c_ref);
  // A leading dimension below the stored extent is refused too.
  g.a_row_stride = static_cast<std::ptrdiff_t>(k - 1);
  g.a_depth_stride = 1;
  CHECK_FALSE(cuda_body::plan_gemm(g).ok);
}

TEST_CASE("cuda bodies: add_row_vector, axpby, fill, copy, sum_rows and the activations equal reference") {
  rng gen(3);
  for (const auto& entry : std::vector<std::array<std::size_t, 2>>{{1, 1}, {3, 17}, {300, 70}, {513, 9}}) {
    const auto& rows = std::get<0>(entry);
    const auto& cols = std::get<1>(entry);
    CAPTURE(rows);
    CAPTURE(cols);
    const std::size_t n = rows * cols;
    const auto ld = static_cast<std::ptrdiff_t>(cols);
    const auto v = random_vector(cols, gen), x = random_vector(n, gen);
    auto y_body = random_vector(n, gen), y_ref = y_body;
    run_elements(ops::add_row_vector_args<float>{rows, cols, v.data(), y_body.data(), ld}, n);
    ops::add_row_vector<reference>(ops::add_row_vector_args<float>{rows, cols, v.data(), y_ref.data(), ld});
    CHECK(y_body == y_ref);

    auto s_body = random_vector(cols, gen), s_ref = s_body;
    const ops::sum_rows_args<float> sr{rows, cols, x.data(), ld, s_body.data()};
    std::vector<double> partials(cuda_body::sum_chunks(rows) * cols);
    for (std::size_t c = 0; c < cuda_body::sum_chunks(rows); ++c)
      for (std::size_t j = 0; j < cols; ++j) partials[c * cols + j] = cuda_body::sum_rows_partial(sr, j, c);
    for (std::size_t j = 0; j < cols; ++j) cuda_body::sum_rows_finish(sr, partials.data(), j);
    ops::sum_rows<reference>(ops::sum_rows_args<float>{rows, cols, x.data(), ld, s_ref.data()});
    CHECK(scaled_max_error(s_body, s_ref) < 1e-7);

    auto a_body = random_vector(n, gen), a_ref = a_body;
    run_elements(ops::axpby_args<float>{n, 0.5f, x.data(), -2.0f, a_body.data()}, n);
    ops::axpby<reference>(ops::axpby_args<float>{n, 0.5f, x.data(), -2.0f, a_ref.data()});
    CHECK(a_body == a_ref);
    std::vector<float> nan_body(n, std::nanf(""));
    run_elements(ops::axpby_args<float>{n, 3.0f, x.data(), 0.0f, nan_body.data()}, n);
    for (std::size_t i = 0; i < n; ++i) CHECK(nan_body[i] == 3.0f * x[i]);  // beta = 0 overwrites NaN

    std::vector<float> f(n, 1.0f);
    run_elements(ops::fill_args<float>{n, 7.0f, f.data()}, n);
    CHECK(f == std::vector<float>(n, 7.0f));
    run_elements(ops::copy_args<float>{n, x.data(), f.data()}, n);
    CHECK(f == x);

    auto xr = x;
    xr[0] = 0.0f;
    xr[n - 1] = std::nanf("");
    std::vector<float> r_body(n), r_ref(n), d_body(n), d_ref(n);
    run_elements(ops::relu_forward_args<float>{n, xr.data(), r_body.data()}, n);
    ops::relu_forward<reference>(ops::relu_forward_args<float>{n, xr.data(), r_ref.data()});
    for (std::size_t i = 0; i + 1 < n; ++i) CHECK(r_body[i] == r_ref[i]);
    CHECK(std::isnan(r_body[n - 1]));
    run_elements(ops::relu_backward_args<float>{n, r_ref.data(), y_ref.data(), d_body.data()}, n);
    ops::relu_backward<reference>(
        ops::relu_backward_args<float>{n, r_ref.data(), y_ref.data(), d_ref.data()});
    CHECK(d_body == d_ref);
    auto w_body = random_vector(n, gen), w_ref = w_body;
    run_elements(ops::add_where_positive_args<float>{n, xr.data(), y_ref.data(), w_body.data()}, n);
    ops::add_where_positive<reference>(
        ops::add_where_positive_args<float>{n, xr.data(), y_ref.data(), w_ref.data()});
    CHECK(w_body == w_ref);
  }
}

TEST_CASE("cuda bodies: the layer-norm row algorithm (one lane) equals reference, forward and backward") {
  rng gen(4);
  for (const auto& entry :
       std::vector<std::array<std::size_t, 2>>{{1, 1}, {1, 7}, {3, 5}, {130, 6}, {300, 64}, {20, 513}})
    for (bool affine : {true, false})
      for (bool relu : {false, true})
        for (bool with_dx : {true, false}) {
          const std::size_t rows = std::get<0>(entry);
          const std::size_t cols = std::get<1>(entry);
          CAPTURE(rows);
          CAPTURE(cols);
          CAPTURE(affine);
          CAPTURE(relu);
          CAPTURE(with_dx);
          const std::size_t n = rows * cols;
          auto x = random_vector(n, gen, 3.0);
          for (std::size_t r = 0; r < rows; ++r) x[r * cols] += 5.0f;
          const auto w = random_vector(cols, gen, 2.0), b = random_vector(cols, gen, 0.5),
                     dy = random_vector(n, gen);
          std::vector<float> y_body(n, std::nanf("")), y_ref = y_body;
          ops::layer_norm_forward_args<float> f{.rows = rows,
                                                .cols = cols,
                                                .eps = 1e-5,
                                                .relu = relu,
                                                .x = x.data(),
                                                .weight = affine ? w.data() : nullptr,
                                                .bias = affine ? b.data() : nullptr,
                                                .y = y_body.data()};
          for (std::size_t r = 0; r < rows; ++r)
            cuda_body::layer_norm_forward_row(f, r, 0, 1, cuda_body::serial_reducer{});
          f.y = y_ref.data();
          ops::layer_norm_forward<reference>(f);
          CHECK(scaled_max_error(y_body, y_ref) < 1e-6);

          std::vector<float> dx_body(with_dx ? n : 0, std::nanf("")), dx_ref = dx_body;
          auto dw_body = random_vector(cols, gen), db_body = random_vector(cols, gen);
          auto dw_ref = dw_body, db_ref = db_body;
          ops::layer_norm_backward_args<float> bw{.rows = rows,
                                                  .cols = cols,
                                                  .eps = 1e-5,
                                                  .relu = relu,
                                                  .x = x.data(),
                                                  .y = y_ref.data(),
                                                  .dy = dy.data(),
                                                  .weight = affine ? w.data() : nullptr,
                                                  .dx = with_dx ? dx_body.data() : nullptr,
                                                  .d_weight = affine ? dw_body.data() : nullptr,
                                                  .d_bias = affine ? db_body.data() : nullptr};
          std::vector<double> mean(rows), rstd(rows);
          for (std::size_t r = 0; r < rows; ++r)
            cuda_body::layer_norm_backward_row(bw, r, 0, 1, cuda_body::serial_reducer{}, mean.data(),
                                               rstd.data());
          if (affine) {
            const std::size_t chunks = cuda_body::sum_chunks(rows);
            std::vector<double> partials(2 * chunks * cols);
            for (std::size_t c = 0; c < chunks; ++c)
              for (std::size_t j = 0; j < cols; ++j)
                cuda_body::layer_norm_param_partial(bw, mean.data(), rstd.data(), j, c,
                                                    partials[2 * c * cols + j],
                                                    partials[(2 * c + 1) * cols + j]);
            for (std::size_t j = 0; j < cols; ++j) cuda_body::layer_norm_param_finish(bw, partials.data(), j);
          }
          bw.dx = with_dx ? dx_ref.data() : nullptr;
          bw.d_weight = affine ? dw_ref.data() : nullptr;
          bw.d_bias = affine ? db_ref.data() : nullptr;
          ops::layer_norm_workspace<reference, float> ws;
          ops::layer_norm_backward<reference>(bw, ws);
          if (with_dx) CHECK(scaled_max_error(dx_body, dx_ref) < 1e-6);
          CHECK(scaled_max_error(dw_body, dw_ref) < 1e-6);
          CHECK(scaled_max_error(db_body, db_ref) < 1e-6);
        }
}

TEST_CASE(
    "cuda bodies: GRU and LSTM cell elements equal reference exactly, with strides and without biases") {
  rng gen(5);
  for (auto cell : {ops::rnn_cell::gru, ops::rnn_cell::lstm})
    for (std::size_t rows : {1, 5})
      for (std::size_t H : {1, 7, 33})
        for (bool bias : {true, false}) {
          CAPTURE(static_cast<int>(cell));
          CAPTURE(rows);
          CAPTURE(H);
          CAPTURE(bias);
          const std::size_t G = cell == ops::rnn_cell::gru ? 3 : 4, GH = G * H, ldg = GH + 3, ldh = H + 2;
          const auto gates_in = random_vector(rows * ldg, gen, 1.5),
                     rec = random_vector(rows * ldg, gen, 1.5), b_ih = random_vector(GH, gen),
                     b_hh = random_vector(GH, gen), h_prev = random_vector(rows * ldh, gen),
                     c_prev = random_vector(rows * ldh, gen);
          auto g_body = gates_in, g_ref = gates_in;
          std::vector<float> h_body(rows * ldh, 9.0f), h_ref = h_body, e_body = h_body, e_ref = h_body;
          const auto sg = static_cast<std::ptrdiff_t>(ldg), sh = static_cast<std::ptrdiff_t>(ldh);
          ops::rnn_cell_forward_args<float> f{.cell = cell,
                                              .rows = rows,
                                              .hidden = H,
                                              .gates = g_body.data(),
                                              .ld_gates = sg,
                                              .rec = rec.data(),
                                              .ld_rec = sg,
                                              .b_ih = bias ? b_ih.data() : nullptr,
                                              .b_hh = bias ? b_hh.data() : nullptr,
                                              .h_prev = h_prev.data(),
                                              .ld_h_prev = sh,
                                              .c_prev = c_prev.data(),
                                              .ld_c_prev = sh,
                                              .h = h_body.data(),
                                              .ld_h = sh,
                                              .extra = e_body.data(),
                                              .ld_extra = sh};
          run_elements(f, rows * H);
          f.gates = g_ref.data();
          f.h = h_ref.data();
          f.extra = e_ref.data();
          ops::rnn_cell_forward<reference>(f);
          CHECK(g_body == g_ref);
          CHECK(h_body == h_ref);
          CHECK(e_body == e_ref);

          const auto dy = random_vector(rows * ldh, gen);
          auto dh_body = random_vector(rows * ldh, gen), dc_body = random_vector(rows * ldh, gen);
          auto dh_ref = dh_body, dc_ref = dc_body;
          std::vector<float> dgi_body(rows * ldg, 9.0f), dgh_body = dgi_body, dgi_ref = dgi_body,
                                                         dgh_ref = dgi_body;
          ops::rnn_cell_backward_args<float> bw{.cell = cell,
                                                .rows = rows,
                                                .hidden = H,
                                                .gates = g_ref.data(),
                                                .ld_gates = sg,
                                                .extra = e_ref.data(),
                                                .ld_extra = sh,
                                                .h_prev = h_prev.data(),
                                                .ld_h_prev = sh,
                                                .c_prev = c_prev.data(),
                                                .ld_c_prev = sh,
                                                .dy = dy.data(),
                                                .ld_dy = sh,
                                                .dh = dh_body.data(),
                                                .ld_dh = sh,
                                                .dc = dc_body.data(),
                                                .ld_dc = sh,
                                                .dgi = dgi_body.data(),
                                                .ld_dgi = sg,
                                                .dgh = dgh_body.data(),
                                                .ld_dgh = sg};
          run_elements(bw, rows * H);
          bw.dh = dh_ref.data();
          bw.dc = dc_ref.data();
          bw.dgi = dgi_ref.data();
          bw.dgh = dgh_ref.data();
          ops::rnn_cell_backward<reference>(bw);
          CHECK(dh_body == dh_ref);
          CHECK(dc_body == dc_ref);
          CHECK(dgi_body == dgi_ref);
          CHECK(dgh_body == dgh_ref);
        }
}

TEST_CASE("cuda bodies: the InfoNCE anchor algorithm and the sorted dz gather equal reference") {
  rng gen(6);
  struct step_case {
    std::size_t batch, time, dim, negatives, step;
    std::vector<std::size_t> lengths;
  };
  const std::vector<step_case> cases{{1, 2, 2, 1, 1, {2}},
                                     {2, 13, 37, 7, 3, {13, 6}},
                                     {2, 33, 17, 4, 2, {33, 1}},
                                     {4, 30, 64, 32, 12, {30, 20, 13, 25}},
                                     {5, 7, 1, 3, 1, {7, 2, 5, 3, 7}}};
  for (const auto& c : cases)
    for (bool grad : {true, false}) {
      CAPTURE(c.dim);
      CAPTURE(c.negatives);
      CAPTURE(grad);
      const std::size_t BT = c.batch * c.time, N1 = c.negatives + 1, D = c.dim;
      const auto p = random_vector(BT * D, gen, 0.5), z = random_vector(BT * D, gen, 0.5);
      std::vector<std::int32_t> valid, neg(BT * c.negatives, -1);
      for (std::size_t b = 0; b < c.batch; ++b)
        for (std::size_t t = 0; t < c.lengths[b]; ++t)
          valid.push_back(static_cast<std::int32_t>(b * c.time + t));
      for (std::size_t a = 0; a < BT; ++a) {
        if (!cuda_body::info_nce_has_term(c.time, c.step, c.lengths.data(), a)) continue;
        for (std::size_t n = 0; n < c.negatives; ++n) {
          std::int32_t v = 0;
          do v = valid[gen.uniform_int(valid.size())];
          while (v == static_cast<std::int32_t>(a + c.step));
          neg[a * c.negatives + n] = v;
        }
      }
      struct outputs {
        std::vector<std::int32_t> cand;
        std::vector<float> logits, dp;
        std::vector<double> loss;
        std::vector<unsigned char> hit;
        double loss_sum = 0;
        std::size_t hits = 0;
      };
      outputs body{std::vector<std::int32_t>(BT * N1, -7), std::vector<float>(BT * N1, 5.0f),
                   std::vector<float>(grad ? BT * D : 0, std::nanf("")), std::vector<double>(BT, 3.0),
                   std::vector<unsigned char>(BT, 7)};
      outputs ref = body;
      const auto args = [&](outputs& o) {
        return ops::info_nce_anchor_args<float>{.batch = c.batch,
                                                .time = c.time,
                                                .dim = D,
                                                .negatives = c.negatives,
                                                .step = c.step,
                                                .lengths = c.lengths.data(),
                                                .p = p.data(),
                                                .z = z.data(),
                                                .negative_index = neg.data(),
                                                .scale = 0.7f,
                                                .weight = 0.125,
                                                .candidates = o.cand.data(),
                                                .logits = o.logits.data(),
                                                .anchor_loss = o.loss.data(),
                                                .anchor_hit = o.hit.data(),
                                                .dp = grad ? o.dp.data() : nullptr,
                                                .loss_sum = &o.loss_sum,
                                                .hits = &o.hits};
      };
      // The device kernel's steps for each anchor, one lane.
      const auto g = args(body);
      std::vector<double> logit(N1);
      for (std::size_t a = 0; a < BT; ++a) {
        if (!cuda_body::info_nce_has_term(c.time, c.step, c.lengths.data(), a)) {
          if (grad)
            for (std::size_t d = 0; d < D; ++d) g.dp[a * D + d] = 0.0f;
          continue;
        }
        std::int32_t* cand = g.candidates + a * N1;
        for (std::size_t j = 0; j < N1; ++j) cand[j] = cuda_body::info_nce_candidate(g, a, j);
        for (std::size_t j = 0; j < N1; ++j)
          logit[j] =
              static_cast<double>(g.scale) *
              cuda_body::info_nce_dot_lane(g.p + a * D, g.z + static_cast<std::size_t>(cand[j]) * D, D, 0, 1);
        double loss = 0;
        bool hit = false;
        cuda_body::info_nce_softmax_row(logit.data(), N1, static_cast<double>(g.scale), g.weight, grad,
                                        g.logits + a * N1, loss, hit);
        g.anchor_loss[a] = loss;
        g.anchor_hit[a] = hit ? 1 : 0;
        body.loss_sum += loss;
        body.hits += hit ? 1 : 0;
        if (grad)
          for (std::size_t d = 0; d < D; ++d)
            g.dp[a * D + d] = cuda_body::info_nce_dp_element(g, logit.data(), cand, d);
      }
      ops::info_nce_anchor_terms<reference>(args(ref));
      CHECK(body.cand == ref.cand);
      CHECK(body.hit == ref.hit);
      CHECK(scaled_max_error(body.loss, ref.loss) < 1e-12);
      CHECK(scaled_max_error(body.logits, ref.logits) < 1e-7);
      CHECK(body.hits == ref.hits);
      CHECK(std::abs(body.loss_sum - ref.loss_sum) < 1e-9 * std::abs(ref.loss_sum) + 1e-12);
      if (grad) CHECK(scaled_max_error(body.dp, ref.dp) < 1e-6);
      if (!grad) continue;

      // dz: the entries sorted stably by row (the device's radix sort), row starts by lower bound.
      const auto dz0 = random_vector(BT * D, gen);
      auto dz_body = dz0, dz_ref = dz0;
      ops::info_nce_scatter_args<float> s{.batch = c.batch,
                                          .time = c.time,
                                          .dim = D,
                                          .negatives = c.negatives,
                                          .step = c.step,
                                          .lengths = c.lengths.data(),
                                          .candidates = ref.cand.data(),
                                          .coeff = ref.logits.data(),
                                          .p = p.data(),
                                          .dz = dz_body.data()};
      std::vector<std::uint32_t> keys(BT * N1);
      std::vector<std::int32_t> entries(BT * N1);
      for (std::size_t e = 0; e < BT * N1; ++e) keys[e] = cuda_body::info_nce_scatter_key(s, e);
      std::iota(entries.begin(), entries.end(), 0);
      std::stable_sort(entries.begin(), entries.end(), [&](std::int32_t x, std::int32_t y) {
        return keys[static_cast<std::size_t>(x)] < keys[static_cast<std::size_t>(y)];
      });
      std::vector<std::uint32_t> sorted(BT * N1);
      for (std::size_t i = 0; i < sorted.size(); ++i) sorted[i] = keys[static_cast<std::size_t>(entries[i])];
      std::vector<std::size_t> row_begin(BT + 1);
      for (std::size_t r = 0; r <= BT; ++r)
        row_begin[r] =
            cuda_body::lower_bound_index(sorted.data(), sorted.size(), static_cast<std::uint32_t>(r));
      for (std::size_t r = 0; r < BT; ++r)
        for (std::size_t d = 0; d < D; ++d)
          cuda_body::info_nce_scatter_element(s, entries.data(), row_begin.data(), r, d);
      s.dz = dz_ref.data();
      ops::info_nce_scatter_workspace<reference, float> ws;
      ops::info_nce_scatter_dz<reference>(s, ws);
      CHECK(scaled_max_error(dz_body, dz_ref) < 1e-6);
    }
}

TEST_CASE("cuda bodies: transpose_grid elements equal reference") {
  rng gen(7);
  const std::size_t B = 2, R = 3, C = 5, D = 4, n = B * R * C * D;
  const auto x = random_vector(n, gen);
  std::vector<float> y_body(n), y_ref(n);
  run_elements(ops::transpose_grid_args<float>{B, R, C, D, x.data(), y_body.data()}, n);
  ops::transpose_grid<reference>(ops::transpose_grid_args<float>{B, R, C, D, x.data(), y_ref.data()});
  CHECK(y_body == y_ref);
}

TEST_CASE("cuda bodies: conv1d as im2col + GEMM and col2im equals reference (forward and both gradients)") {
  rng gen(8);
  // (batch, t_in, c_in, c_out, kernel, stride, padding): the audio encoder's first two layers at small
  // widths, no padding, a kernel as long as the input, stride above the kernel.
  const std::vector<std::array<std::size_t, 7>> shapes{{2, 160, 1, 8, 10, 5, 3}, {3, 32, 8, 6, 8, 4, 2},
                                                       {1, 9, 3, 2, 4, 2, 1},    {2, 7, 2, 3, 3, 1, 0},
                                                       {1, 5, 4, 2, 5, 1, 0},    {2, 20, 3, 4, 2, 3, 1}};
  for (const auto& entry : shapes) {
    const auto& batch = std::get<0>(entry);
    const auto& t_in = std::get<1>(entry);
    const auto& c_in = std::get<2>(entry);
    const auto& c_out = std::get<3>(entry);
    const auto& kernel = std::get<4>(entry);
    const auto& stride = std::get<5>(entry);
    const auto& padding = std::get<6>(entry);
    CAPTURE(t_in);
    CAPTURE(kernel);
    CAPTURE(stride);
    CAPTURE(padding);
    const ops::conv1d_shape s{batch, t_in, c_in, c_out, kernel, stride, padding};
    const std::size_t t_out = cuda_body::conv1d_t_out(s), rows = batch * t_out, width = c_in * kernel;
    CHECK(t_out == s.t_out());
    const auto x = random_vector(batch * t_in * c_in, gen), w = random_vector(c_out * width, gen),
               bias = random_vector(c_out, gen), dy = random_vector(rows * c_out, gen);
    std::vector<float> col(rows * width);
    for (std::size_t i = 0; i < col.size(); ++i) col[i] = cuda_body::conv1d_im2col_element(s, x.data(), i);
    const auto sw = static_cast<std::ptrdiff_t>(width), so = static_cast<std::ptrdiff_t>(c_out);
    ops::gemm_workspace<reference, float> gws;
    ops::conv1d_workspace<reference, float> cws;
    // Forward: y = col W^T + bias.
    std::vector<float> y_body(rows * c_out), y_ref(rows * c_out);
    ops::gemm<reference>(ops::gemm_args<float>{.m = rows,
                                               .n = c_out,
                                               .k = width,
                                               .a = col.data(),
                                               .a_row_stride = sw,
                                               .b = w.data(),
                                               .b_row_stride = 1,
                                               .b_col_stride = sw,
                                               .c = y_body.data(),
                                               .ldc = so},
                         gws);
    run_elements(ops::add_row_vector_args<float>{rows, c_out, bias.data(), y_body.data(), so}, rows * c_out);
    ops::conv1d_forward<reference>(
        ops::conv1d_forward_args<float>{s, x.data(), w.data(), bias.data(), y_ref.data()}, cws);
    CHECK(scaled_max_error(y_body, y_ref) < 1e-6);
    // d W += dy^T col.
    auto dw_body = random_vector(c_out * width, gen), dw_ref = dw_body;
    ops::gemm<reference>(ops::gemm_args<float>{.m = c_out,
                                               .n = width,
                                               .k = rows,
                                               .a = dy.data(),
                                               .a_row_stride = 1,
                                               .a_depth_stride = so,
                                               .b = col.data(),
                                               .b_row_stride = sw,
                                               .b_col_stride = 1,
                                               .c = dw_body.data(),
                                               .ldc = sw,
                                               .accumulate = true},
                         gws);
    ops::conv1d_backward_params<reference>(
        ops::conv1d_backward_params_args<float>{s, x.data(), dy.data(), dw_ref.data(), nullptr}, cws);
    CHECK(scaled_max_error(dw_body, dw_ref) < 1e-6);
    // dx = col2im(dy W).
    std::vector<float> dcol(rows * width), dx_body(batch * t_in * c_in, std::nanf("")), dx_ref = dx_body;
    ops::gemm<reference>(ops::gemm_args<float>{.m = rows,
                                               .n = width,
                                               .k = c_out,
                                               .a = dy.data(),
                                               .a_row_stride = so,
                                               .b = w.data(),
                                               .b_row_stride = sw,
                                               .c = dcol.data(),
                                               .ldc = sw},
                         gws);
    for (std::size_t i = 0; i < dx_body.size(); ++i)
      dx_body[i] = cuda_body::conv1d_col2im_element(s, dcol.data(), i);
    ops::conv1d_backward_input<reference>(
        ops::conv1d_backward_input_args<float>{s, dy.data(), w.data(), dx_ref.data()}, cws);
    CHECK(scaled_max_error(dx_body, dx_ref) < 1e-6);
  }
}

TEST_CASE("cuda bodies: Adam, SGD, sum of squares and the finiteness test equal reference") {
  rng gen(9);
  const std::size_t n = 1000;
  const auto grad = random_vector(n, gen);
  auto v_body = random_vector(n, gen), m_body = random_vector(n, gen, 0.1),
       s_body = random_vector(n, gen, 0.1);
  for (auto& s : s_body) s = std::abs(s);
  auto v_ref = v_body, m_ref = m_body, s_ref = s_body;
  for (bool decay : {false, true}) {
    ops::adam_update_args<float> a{.n = n,
                                   .value = v_body.data(),
                                   .grad = grad.data(),
                                   .exp_avg = m_body.data(),
                                   .exp_avg_sq = s_body.data(),
                                   .step_size = 1e-3f,
                                   .bc2_sqrt = 0.3f,
                                   .beta1 = 0.9f,
                                   .beta2 = 0.999f,
                                   .one_minus_beta1 = 0.1f,
                                   .one_minus_beta2 = 0.001f,
                                   .eps = 1e-8f,
                                   .weight_decay = 0.01f,
                                   .decay = decay};
    run_elements(a, n);
    a.value = v_ref.data();
    a.exp_avg = m_ref.data();
    a.exp_avg_sq = s_ref.data();
    ops::adam_update<reference>(a);
    CHECK(v_body == v_ref);
    CHECK(m_body == m_ref);
    CHECK(s_body == s_ref);
  }
  for (bool momentum : {false, true})
    for (bool nesterov : {false, true})
      for (bool first : {false, true}) {
        auto p_body = random_vector(n, gen), b_body = random_vector(n, gen);
        auto p_ref = p_body, b_ref = b_body;
        ops::sgd_update_args<float> a{.n = n,
                                      .value = p_body.data(),
                                      .grad = grad.data(),
                                      .momentum_buffer = momentum ? b_body.data() : nullptr,
                                      .lr = 0.05f,
                                      .weight_decay = 0.1f,
                                      .momentum = 0.9f,
                                      .keep = 0.75f,
                                      .decay = true,
                                      .first = first,
                                      .nesterov = nesterov};
        run_elements(a, n);
        a.value = p_ref.data();
        a.momentum_buffer = momentum ? b_ref.data() : nullptr;
        ops::sgd_update<reference>(a);
        CHECK(p_body == p_ref);
        CHECK(b_body == b_ref);
      }
  // Sum of squares per chunk: 4 lanes' shares summed in lane order vs the reference's one pass.
  const std::size_t chunk = 300, chunks = (n + chunk - 1) / chunk;
  std::vector<double> part_body(chunks), part_ref(chunks);
  const ops::sum_squares_args<float> ss{n, grad.data(), chunk, part_body.data()};
  for (std::size_t c = 0; c < chunks; ++c) {
    double s = 0;
    for (std::size_t lane = 0; lane < 4; ++lane) s += cuda_body::sum_squares_lane(ss, c, lane, 4);
    part_body[c] = s;
  }
  ops::sum_squares<reference>(ops::sum_squares_args<float>{n, grad.data(), chunk, part_ref.data()});
  for (std::size_t c = 0; c < chunks; ++c) CHECK(part_body[c] == doctest::Approx(part_ref[c]).epsilon(1e-13));
  auto bad = grad;
  bad[700] = std::numeric_limits<float>::infinity();
  bad[900] = std::nanf("");
  const ops::find_nonfinite_args<float> fn{n, bad.data(), nullptr};
  std::size_t first = n;
  for (std::size_t i = n; i-- > 0;)
    if (cuda_body::nonfinite_at(fn, i)) first = i;
  CHECK(first == 700);
}

TEST_CASE("cuda bodies: conv2d as im2col + GEMM and col2im equals reference (forward and backward)") {
  rng gen(10);
  // (batch, H, W, C_in, C_out, kernel, stride, padding): the image encoder's 3x3 convs, a strided
  // stem, no padding, a kernel as large as the image.
  const std::vector<std::array<std::size_t, 8>> shapes{
      {2, 8, 8, 3, 4, 3, 1, 1}, {1, 7, 9, 2, 3, 3, 2, 1}, {2, 5, 5, 4, 2, 5, 1, 0}, {1, 6, 4, 1, 2, 2, 2, 0}};
  for (const auto& entry : shapes) {
    const auto& batch = std::get<0>(entry);
    const auto& h = std::get<1>(entry);
    const auto& w = std::get<2>(entry);
    const auto& ci = std::get<3>(entry);
    const auto& co = std::get<4>(entry);
    const auto& k = std::get<5>(entry);
    const auto& stride = std::get<6>(entry);
    const auto& padding = std::get<7>(entry);
    CAPTURE(h);
    CAPTURE(k);
    CAPTURE(stride);
    const ops::conv2d_shape s{batch, h, w, ci, co, k, stride, padding};
    const std::size_t ho = cuda_body::conv2d_out_height(s), wo = cuda_body::conv2d_out_width(s);
    CHECK(ho == s.out_height());
    CHECK(wo == s.out_width());
    const std::size_t rows = batch * ho * wo, width = ci * k * k;
    const auto x = random_vector(batch * h * w * ci, gen), wt = random_vector(co * width, gen),
               bias = random_vector(co, gen), dy = random_vector(rows * co, gen);
    std::vector<float> col(rows * width);
    for (std::size_t i = 0; i < col.size(); ++i) col[i] = cuda_body::conv2d_im2col_element(s, x.data(), i);
    const auto sw = static_cast<std::ptrdiff_t>(width), so = static_cast<std::ptrdiff_t>(co);
    ops::gemm_workspace<reference, float> gws;
    ops::conv2d_workspace<reference, float> cws;
    std::vector<float> y_body(rows * co), y_ref(rows * co);
    ops::gemm<reference>(ops::gemm_args<float>{.m = rows,
                                               .n = co,
                                               .k = width,
                                               .a = col.data(),
                                               .a_row_stride = sw,
                                               .b = wt.data(),
                                               .b_row_stride = 1,
                                               .b_col_stride = sw,
                                               .c = y_body.data(),
                                               .ldc = so},
                         gws);
    run_elements(ops::add_row_vector_args<float>{rows, co, bias.data(), y_body.data(), so}, rows * co);
    ops::conv2d_forward<reference>(
        ops::conv2d_forward_args<float>{s, x.data(), wt.data(), bias.data(), y_ref.data()}, cws);
    CHECK(scaled_max_error(y_body, y_ref) < 1e-6);
    auto dw_body = random_vector(co * width, gen), db_body = random_vector(co, gen);
    auto dw_ref = dw_body, db_ref = db_body;
    ops::gemm<reference>(ops::gemm_args<float>{.m = co,
                                               .n = width,
                                               .k = rows,
                                               .a = dy.data(),
                                               .a_row_stride = 1,
                                               .a_depth_stride = so,
                                               .b = col.data(),
                                               .b_row_stride = sw,
                                               .b_col_stride = 1,
                                               .c = dw_body.data(),
                                               .ldc = sw,
                                               .accumulate = true},
                         gws);
    ops::sum_rows<reference>(ops::sum_rows_args<float>{rows, co, dy.data(), so, db_body.data()});
    std::vector<float> dcol(rows * width), dx_body(x.size(), std::nanf("")), dx_ref = dx_body;
    ops::gemm<reference>(ops::gemm_args<float>{.m = rows,
                                               .n = width,
                                               .k = co,
                                               .a = dy.data(),
                                               .a_row_stride = so,
                                               .b = wt.data(),
                                               .b_row_stride = sw,
                                               .c = dcol.data(),
                                               .ldc = sw},
                         gws);
    for (std::size_t i = 0; i < dx_body.size(); ++i)
      dx_body[i] = cuda_body::conv2d_col2im_element(s, dcol.data(), i);
    ops::conv2d_backward<reference>(
        ops::conv2d_backward_args<float>{s, x.data(), wt.data(), dy.data(), dw_ref.data(), db_ref.data(),
                                         dx_ref.data()},
        cws);
    CHECK(scaled_max_error(dw_body, dw_ref) < 1e-6);
    CHECK(scaled_max_error(db_body, db_ref) < 1e-6);
    CHECK(scaled_max_error(dx_body, dx_ref) < 1e-6);
  }
}

TEST_CASE("cuda bodies: zero_kernel_rows, extract_patches and the patch mean pool equal reference") {
  rng gen(11);
  auto w_body = random_vector(6 * 5 * 5, gen), w_ref = w_body;
  const ops::zero_kernel_rows_args<float> z{6, 5, 3, w_body.data()};
  run_elements(z, 6 * (5 - 3) * 5);
  ops::zero_kernel_rows<reference>(ops::zero_kernel_rows_args<float>{6, 5, 3, w_ref.data()});
  CHECK(w_body == w_ref);

  const std::size_t B = 2, H = 9, W = 7, C = 3, size = 4, stride = 2, pad = 1;
  const std::size_t rows = (H + 2 * pad - size) / stride + 1, cols = (W + 2 * pad - size) / stride + 1;
  const auto images = random_vector(B * H * W * C, gen);
  const std::size_t n = B * rows * cols * size * size * C;
  std::vector<float> p_body(n, std::nanf("")), p_ref = p_body;
  ops::extract_patches_args<float> e{B, H, W, C, size, stride, pad, rows, cols, images.data(), p_body.data()};
  run_elements(e, n);
  e.patches = p_ref.data();
  ops::extract_patches<reference>(e);
  CHECK(p_body == p_ref);

  const std::size_t patches = B * rows * cols, pixels = size * size;
  std::vector<float> m_body(patches * C), m_ref(patches * C);
  run_elements(ops::patch_mean_pool_args<float>{patches, pixels, C, p_ref.data(), m_body.data()},
               patches * C);
  ops::patch_mean_pool<reference>(
      ops::patch_mean_pool_args<float>{patches, pixels, C, p_ref.data(), m_ref.data()});
  CHECK(m_body == m_ref);
  std::vector<float> d_body(n), d_ref(n);
  run_elements(ops::patch_mean_pool_backward_args<float>{patches, pixels, C, m_ref.data(), d_body.data()}, n);
  ops::patch_mean_pool_backward<reference>(
      ops::patch_mean_pool_backward_args<float>{patches, pixels, C, m_ref.data(), d_ref.data()});
  CHECK(d_body == d_ref);
}
