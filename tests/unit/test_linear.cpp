#include <doctest/doctest.h>

#include <cpc/layers/linear.hpp>

#include <thread>
#include <utility>

#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "support/backend_parity.hpp"
#include "support/golden.hpp"
#include "support/gradcheck.hpp"
#include "support/thread_invariance.hpp"

using namespace cpc;
using namespace cpc::testing;

TEST_CASE_TEMPLATE("linear: finite differences in double for input, weight and bias gradients", Backend,
                   CPC_TEST_BACKENDS) {
  rng gen(3);
  linear<double, Backend> layer({.in_features = 6, .out_features = 4}, gen);
  tensor3<double> x = xt::zeros<double>({3, 5, 6}), y, dx;
  fill_uniform(x, gen);
  tensor3<double> r = xt::zeros<double>({3, 5, 4});
  fill_uniform(r, gen);
  layer.forward(x, y);
  layer.backward(x, y, r, &dx);
  auto loss = [&] {
    tensor3<double> yy;
    layer.forward(x, yy);
    return project(yy, r);
  };
  CHECK(gradient_error(loss, x.data(), x.size(), dx.data()) < 1e-6);
  auto& w = layer.weight();
  CHECK(gradient_error(loss, w.value.data(), w.size(), w.grad.data()) < 1e-6);
  auto& b = layer.bias();
  CHECK(gradient_error(loss, b.value.data(), b.size(), b.grad.data()) < 1e-6);
}

TEST_CASE_TEMPLATE("linear: matches torch.nn.Linear golden values in float", Backend, CPC_TEST_BACKENDS) {
  auto g = read_golden("linear.txt");
  rng gen(0);
  linear<float, Backend> layer({.in_features = 5, .out_features = 4}, gen);
  assign(layer.weight().value, g["weight"]);
  assign(layer.bias().value, g["bias"]);
  tensor3<float> x, y, dy, dx;
  assign(x, g["x"]);
  assign(dy, g["dy"]);
  layer.forward(x, y);
  CHECK(max_relative_error(y, g["y"]) < 1e-4);
  layer.backward(x, y, dy, &dx);
  CHECK(max_relative_error(dx, g["dx"]) < 1e-4);
  CHECK(max_relative_error(layer.weight().grad, g["dweight"]) < 1e-4);
  CHECK(max_relative_error(layer.bias().grad, g["dbias"]) < 1e-4);
}

TEST_CASE_TEMPLATE("linear: batch independence and permutation", Backend, CPC_TEST_BACKENDS) {
  rng gen(5);
  linear<float, Backend> layer({.in_features = 8, .out_features = 3}, gen);
  tensor3<float> x = xt::zeros<float>({4, 7, 8}), y;
  fill_uniform(x, gen);
  layer.forward(x, y);
  for (std::size_t b = 0; b < 4; ++b) {
    tensor3<float> xb = xt::view(x, xt::range(b, b + 1), xt::all(), xt::all()), yb;
    layer.forward(xb, yb);
    CHECK(xt::allclose(yb, xt::view(y, xt::range(b, b + 1), xt::all(), xt::all()), 1e-5, 1e-6));
  }
  tensor3<float> xp = x, yp;
  for (std::size_t b = 0; b < 4; ++b) xt::view(xp, b) = xt::view(x, 3 - b);
  layer.forward(xp, yp);
  for (std::size_t b = 0; b < 4; ++b) CHECK(xt::allclose(xt::view(yp, b), xt::view(y, 3 - b), 1e-5, 1e-6));
}

TEST_CASE_TEMPLATE("linear: wrong input width throws shape_error naming both shapes", Backend,
                   CPC_TEST_BACKENDS) {
  rng gen(1);
  linear<float, Backend> layer({.in_features = 8, .out_features = 3}, gen);
  tensor3<float> x = xt::zeros<float>({2, 5, 7}), y;
  CHECK_THROWS_WITH_AS(layer.forward(x, y), "linear forward input: expected [*, *, 8], got [2, 5, 7]",
                       shape_error);
}

TEST_CASE("linear: PyTorch default init bound 1/sqrt(in_features)") {
  rng gen(2);
  linear<double> layer({.in_features = 100, .out_features = 50}, gen);
  const double bound = 0.1;
  CHECK(xt::amax(xt::abs(layer.weight().value))() <= bound);
  CHECK(xt::amax(xt::abs(layer.weight().value))() > 0.95 * bound);
  CHECK(std::abs(xt::mean(layer.weight().value)()) < 0.01);
}

TEST_CASE("linear: results are bit-identical for 1 and 2 threads, and a row does not depend on its batch") {
  rng gen(11);
  // 3 x 150 = 450 rows (two row blocks, partial GEMM tiles), 70 outputs (a partial column panel).
  linear<float> layer({.in_features = 37, .out_features = 70}, gen);
  tensor3<float> x = xt::zeros<float>({3, 150, 37});
  fill_uniform(x, gen);
  const tensor3<float> y1 = check_thread_invariance(layer, x);  // y, dx, d weight, d bias
  // The last item alone gives bit-identical outputs (its rows sit at other tile positions).
  tensor3<float> x_last = xt::view(x, xt::range(2, 3)), y_last;
  layer.forward(x_last, y_last);
  CHECK(y_last == tensor3<float>(xt::view(y1, xt::range(2, 3))));
}

TEST_CASE("linear: cpu equals reference (1e-5) on odd sizes, one row, partial tiles, with and without bias") {
  rng gen(21);
  for (const auto& [b, t, in, out] :
       std::vector<std::array<std::size_t, 4>>{{1, 1, 1, 1}, {3, 150, 37, 70}, {2, 5, 300, 13}}) {
    for (bool bias : {true, false}) {
      tensor3<float> x = xt::zeros<float>({b, t, in});
      fill_uniform(x, gen);
      check_layer_backends<linear, float>(
          linear<float>::options{.in_features = in, .out_features = out, .bias = bias}, x, 1e-5);
    }
  }
}
