// cpu against reference for the normalisation ops (backend/op/norm.hpp) on random shapes: one
// row, one channel, row counts across the 64-row forward blocks and the 256-row backward blocks
// (whose partial parameter gradients are added in block order), channel counts across the
// 64-channel blocks, with and without affine parameters and fused ReLU, dx present or null.
// Overwritten outputs start as NaN, accumulated ones as the same junk. The cpu backward gives the
// same bits for 1 and 2 threads.
#include <doctest/doctest.h>

#include <cpc/backend/ops.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <thread>
#include <vector>

#include "support/backend_parity.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

template <class T>
std::vector<T> random_vector(std::size_t n, rng& gen, double scale = 1.0) {
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(gen.uniform(-scale, scale));
  return v;
}

template <class T>
bool all_finite(const std::vector<T>& v) {
  for (T x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

template <class T>
void check_layer_norm_ops(double tol) {
  rng gen(9);
  for (const auto& entry : std::vector<std::array<std::size_t, 2>>{
           {1, 1}, {1, 7}, {3, 5}, {130, 6}, {65, 200}, {200, 513}, {700, 37}})
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
          auto x = random_vector<T>(n, gen, 3.0);
          for (std::size_t r = 0; r < rows; ++r) x[r * cols] += T(5);  // rows with a non-zero mean
          const auto w = random_vector<T>(cols, gen, 2.0), b = random_vector<T>(cols, gen, 0.5);
          const auto dy = random_vector<T>(n, gen);

          std::vector<T> y_cpu(n, T(NAN)), y_ref = y_cpu;
          ops::layer_norm_forward_args<T> f{.rows = rows,
                                            .cols = cols,
                                            .eps = 1e-5,
                                            .relu = relu,
                                            .x = x.data(),
                                            .weight = affine ? w.data() : nullptr,
                                            .bias = affine ? b.data() : nullptr,
                                            .y = y_cpu.data()};
          ops::layer_norm_forward<cpu>(f);
          f.y = y_ref.data();
          ops::layer_norm_forward<reference>(f);
          CHECK(all_finite(y_cpu));
          CHECK(all_finite(y_ref));
          CHECK(scaled_max_error(y_cpu, y_ref) < tol);
          if (relu) {
            bool non_negative = true;
            for (T v : y_ref) non_negative = non_negative && v >= T(0);
            CHECK(non_negative);
          }

          std::vector<T> dx_cpu(n, T(NAN)), dx_ref = dx_cpu;
          auto dw_cpu = random_vector<T>(cols, gen), dw_ref = dw_cpu;
          auto db_cpu = random_vector<T>(cols, gen), db_ref = db_cpu;
          ops::layer_norm_backward_args<T> g{.rows = rows,
                                             .cols = cols,
                                             .eps = 1e-5,
                                             .relu = relu,
                                             .x = x.data(),
                                             .y = relu ? y_ref.data() : nullptr,
                                             .dy = dy.data(),
                                             .weight = affine ? w.data() : nullptr,
                                             .dx = with_dx ? dx_cpu.data() : nullptr,
                                             .d_weight = affine ? dw_cpu.data() : nullptr,
                                             .d_bias = affine ? db_cpu.data() : nullptr};
          ops::layer_norm_workspace<cpu, T> ws_cpu;
          ops::layer_norm_backward<cpu>(g, ws_cpu);
          g.dx = with_dx ? dx_ref.data() : nullptr;
          g.d_weight = affine ? dw_ref.data() : nullptr;
          g.d_bias = affine ? db_ref.data() : nullptr;
          ops::layer_norm_workspace<reference, T> ws_ref;
          ops::layer_norm_backward<reference>(g, ws_ref);
          if (with_dx) {
            CHECK(all_finite(dx_cpu));
            CHECK(all_finite(dx_ref));
            CHECK(scaled_max_error(dx_cpu, dx_ref) < tol);
          } else {
            CHECK(std::isnan(dx_cpu[0]));  // null dx: nothing written
            CHECK(std::isnan(dx_ref[n - 1]));
          }
          CHECK(scaled_max_error(dw_cpu, dw_ref) < tol);
          CHECK(scaled_max_error(db_cpu, db_ref) < tol);
        }
}

}  // namespace

TEST_CASE("ops::layer_norm_*: cpu equals reference in float (1e-5 of the scale) on random shapes") {
  check_layer_norm_ops<float>(1e-5);
}

TEST_CASE("ops::layer_norm_*: cpu equals reference in double (1e-12 of the scale) on random shapes") {
  check_layer_norm_ops<double>(1e-12);
}

TEST_CASE("ops::layer_norm_*: the reference kernels give hand-computed values") {
  // One row x = [1, 3]: mean 2, biased variance 1, eps 0 -> xhat = [-1, 1].
  const std::vector<double> x{1, 3}, w{2, 3}, b{0.5, -4};
  std::vector<double> y(2);
  ops::layer_norm_forward<reference>(ops::layer_norm_forward_args<double>{
      .rows = 1, .cols = 2, .eps = 0, .x = x.data(), .weight = w.data(), .bias = b.data(), .y = y.data()});
  CHECK(y == std::vector<double>{-1.5, -1});
  ops::layer_norm_forward<reference>(ops::layer_norm_forward_args<double>{.rows = 1,
                                                                          .cols = 2,
                                                                          .eps = 0,
                                                                          .relu = true,
                                                                          .x = x.data(),
                                                                          .weight = w.data(),
                                                                          .bias = b.data(),
                                                                          .y = y.data()});
  CHECK(y == std::vector<double>{0, 0});
  // Without ReLU, dy = [1, 0]: g = dy * w = [2, 0], mean(g) = 1, mean(g * xhat) = -1,
  // dx = rstd * (g - 1 + xhat) = [0, 0] (a shift along xhat is normalised away); dw = dy * xhat, db = dy.
  const std::vector<double> dy{1, 0};
  std::vector<double> dx(2, NAN), dw{0, 0}, db{0, 0};
  ops::layer_norm_workspace<reference, double> ws;
  ops::layer_norm_backward<reference>(ops::layer_norm_backward_args<double>{.rows = 1,
                                                                            .cols = 2,
                                                                            .eps = 0,
                                                                            .x = x.data(),
                                                                            .dy = dy.data(),
                                                                            .weight = w.data(),
                                                                            .dx = dx.data(),
                                                                            .d_weight = dw.data(),
                                                                            .d_bias = db.data()},
                                      ws);
  CHECK(dx == std::vector<double>{0, 0});
  CHECK(dw == std::vector<double>{-1, 0});
  CHECK(db == std::vector<double>{1, 0});
}

TEST_CASE("ops::layer_norm_forward: a NaN in a row gives NaN outputs with the fused ReLU, not zeros") {
  // The ReLU must propagate NaN (as std::max(v, 0) and the reference do), so that a non-finite
  // input reaches the loss and training stops with a numeric_error.
  for (std::size_t cols : {1u, 20u, 512u}) {
    CAPTURE(cols);
    std::vector<float> x(2 * cols, 0.25f), y(2 * cols, 0.0f);
    for (std::size_t j = 0; j < cols; ++j) x[j] = static_cast<float>(j % 3);
    x[cols + cols / 2] = NAN;
    ops::layer_norm_forward<cpu>(ops::layer_norm_forward_args<float>{
        .rows = 2, .cols = cols, .relu = true, .x = x.data(), .y = y.data()});
    for (std::size_t j = 0; j < cols; ++j) {
      CHECK(std::isfinite(y[j]));
      CHECK(std::isnan(y[cols + j]));
    }
  }
}

TEST_CASE("ops::layer_norm_backward (cpu): the same bits for 1 and 2 threads across 256-row blocks") {
  // 1100 rows: four full backward blocks and a partial one, each summing its own partial d weight
  // and d bias; 37 channels: a partial SIMD register.
  constexpr std::size_t rows = 1100, cols = 37, n = rows * cols;
  rng gen(21);
  const auto x = random_vector<float>(n, gen, 3.0), dy = random_vector<float>(n, gen);
  const auto w = random_vector<float>(cols, gen, 2.0), b = random_vector<float>(cols, gen, 0.5);
  std::vector<float> y(n);
  ops::layer_norm_forward<cpu>(ops::layer_norm_forward_args<float>{.rows = rows,
                                                                   .cols = cols,
                                                                   .relu = true,
                                                                   .x = x.data(),
                                                                   .weight = w.data(),
                                                                   .bias = b.data(),
                                                                   .y = y.data()});
  auto run = [&](std::size_t threads) {
    set_num_threads(threads);
    std::vector<float> dx(n), dw(cols, 0.5f), db(cols, -0.25f);
    ops::layer_norm_workspace<cpu, float> ws;
    ops::layer_norm_backward<cpu>(ops::layer_norm_backward_args<float>{.rows = rows,
                                                                       .cols = cols,
                                                                       .relu = true,
                                                                       .x = x.data(),
                                                                       .y = y.data(),
                                                                       .dy = dy.data(),
                                                                       .weight = w.data(),
                                                                       .dx = dx.data(),
                                                                       .d_weight = dw.data(),
                                                                       .d_bias = db.data()},
                                  ws);
    return std::array<std::vector<float>, 3>{dx, dw, db};
  };
  const auto one = run(1), two = run(2);
  set_num_threads(std::max(1u, std::thread::hardware_concurrency()));
  CHECK(one[0] == two[0]);
  CHECK(one[1] == two[1]);
  CHECK(one[2] == two[2]);
}

TEST_CASE_TEMPLATE("ops::layer_norm_backward: dx = dy in place gives the same bits as a separate dx", Backend,
                   cpu, reference) {
  constexpr std::size_t rows = 700, cols = 37, n = rows * cols;
  rng gen(22);
  const auto x = random_vector<float>(n, gen, 3.0), dy = random_vector<float>(n, gen);
  const auto w = random_vector<float>(cols, gen, 2.0), b = random_vector<float>(cols, gen, 0.5);
  std::vector<float> y(n);
  ops::layer_norm_forward<Backend>(ops::layer_norm_forward_args<float>{.rows = rows,
                                                                       .cols = cols,
                                                                       .relu = true,
                                                                       .x = x.data(),
                                                                       .weight = w.data(),
                                                                       .bias = b.data(),
                                                                       .y = y.data()});
  auto run = [&](bool in_place) {
    std::vector<float> g = dy, dx(n), dw(cols, 0.5f), db(cols, -0.25f);
    ops::layer_norm_workspace<Backend, float> ws;
    ops::layer_norm_backward<Backend>(
        ops::layer_norm_backward_args<float>{.rows = rows,
                                             .cols = cols,
                                             .relu = true,
                                             .x = x.data(),
                                             .y = y.data(),
                                             .dy = g.data(),
                                             .weight = w.data(),
                                             .dx = in_place ? g.data() : dx.data(),
                                             .d_weight = dw.data(),
                                             .d_bias = db.data()},
        ws);
    return std::array<std::vector<float>, 3>{in_place ? g : dx, dw, db};
  };
  const auto separate = run(false), in_place = run(true);
  CHECK(separate[0] == in_place[0]);
  CHECK(separate[1] == in_place[1]);
  CHECK(separate[2] == in_place[2]);
}
