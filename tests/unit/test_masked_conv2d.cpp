#include <doctest/doctest.h>

#include <cpc/layers/masked_conv2d.hpp>

#include <array>
#include <vector>

#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "support/backend_parity.hpp"
#include "support/golden.hpp"
#include "support/gradcheck.hpp"
#include "support/thread_invariance.hpp"

using namespace cpc;
using namespace cpc::testing;

TEST_CASE_TEMPLATE("masked_conv2d: kernel rows below the centre are zero after init, forward and backward",
                   Backend, CPC_TEST_BACKENDS) {
  rng gen(1);
  masked_conv2d<double, Backend> layer({.in_channels = 2, .out_channels = 3, .kernel = 5}, gen);
  CHECK(layer.visible_rows() == 3);
  auto& w = layer.weight();
  tensor4<double> x = xt::zeros<double>({2, 6, 5, 2}), y, dx;
  fill_uniform(x, gen);
  w.value.fill(0.5);  // as if loaded from an unmasked checkpoint
  layer.forward(x, y);
  tensor4<double> dy = xt::ones<double>(y.shape());
  layer.backward(x, y, dy, &dx);
  for (std::size_t o = 0; o < 3; ++o)
    for (std::size_t c = 0; c < 2; ++c)
      for (std::size_t u = 0; u < 5; ++u)
        for (std::size_t v = 0; v < 5; ++v) {
          CHECK((w.value(o, c, u, v) == 0.0) == (u > 2));
          if (u > 2) CHECK(w.grad(o, c, u, v) == 0.0);
        }
}

TEST_CASE_TEMPLATE("masked_conv2d: finite differences for x, weight (unmasked entries) and bias", Backend,
                   CPC_TEST_BACKENDS) {
  rng gen(3);
  masked_conv2d<double, Backend> layer({.in_channels = 3, .out_channels = 2, .kernel = 3}, gen);
  tensor4<double> x = xt::zeros<double>({2, 4, 5, 3}), y, dx;
  fill_uniform(x, gen);
  layer.forward(x, y);
  tensor4<double> r = xt::zeros<double>(y.shape());
  fill_uniform(r, gen);
  layer.backward(x, y, r, &dx);
  auto loss = [&] {
    tensor4<double> yy;
    layer.forward(x, yy);
    return project(yy, r);
  };
  CHECK(gradient_error(loss, x.data(), x.size(), dx.data()) < 1e-6);
  // Masked weights are re-zeroed by forward, so their numerical gradient is 0 as well.
  auto& w = layer.weight();
  CHECK(gradient_error(loss, w.value.data(), w.size(), w.grad.data()) < 1e-6);
  auto& b = layer.bias();
  CHECK(gradient_error(loss, b.value.data(), b.size(), b.grad.data()) < 1e-6);
}

TEST_CASE_TEMPLATE(
    "masked_conv2d: an output row never changes when rows below it change (stacked layers too)", Backend,
    CPC_TEST_BACKENDS) {
  rng gen(5);
  masked_conv2d<float, Backend> a({.in_channels = 2, .out_channels = 4, .kernel = 3}, gen);
  masked_conv2d<float, Backend> b({.in_channels = 4, .out_channels = 3, .kernel = 5}, gen);
  tensor4<float> x = xt::zeros<float>({2, 7, 7, 2}), h, y;
  fill_uniform(x, gen);
  a.forward(x, h);
  b.forward(h, y);
  for (std::size_t row = 0; row < 7; ++row) {
    tensor4<float> x2 = x, h2, y2;
    for (std::size_t r = row + 1; r < 7; ++r) xt::view(x2, xt::all(), r) += 3.0f;
    a.forward(x2, h2);
    b.forward(h2, y2);
    CHECK(xt::view(y2, xt::all(), xt::range(0, row + 1)) == xt::view(y, xt::all(), xt::range(0, row + 1)));
    if (row + 1 < 7) CHECK(xt::view(y2, xt::all(), row + 1) != xt::view(y, xt::all(), row + 1));
  }
}

TEST_CASE_TEMPLATE("masked_conv2d: matches torch conv2d with weight * mask (golden, float)", Backend,
                   CPC_TEST_BACKENDS) {
  auto g = read_golden("image.txt");
  rng gen(0);
  masked_conv2d<float, Backend> layer({.in_channels = 2, .out_channels = 2, .kernel = 3}, gen);
  assign(layer.weight().value, g["masked.weight"]);  // unmasked values: the layer applies the mask
  assign(layer.bias().value, g["masked.bias"]);
  tensor4<float> x, y, dy, dx;
  assign(x, g["masked.x"]);
  assign(dy, g["masked.dy"]);
  layer.forward(x, y);
  CHECK(max_relative_error(y, g["masked.y"]) < 1e-4);
  layer.backward(x, y, dy, &dx);
  CHECK(max_relative_error(dx, g["masked.dx"]) < 1e-4);
  CHECK(max_relative_error(layer.weight().grad, g["masked.dweight"]) < 1e-4);
  CHECK(max_relative_error(layer.bias().grad, g["masked.dbias"]) < 1e-4);
}

TEST_CASE_TEMPLATE("masked_conv2d: an even kernel is a config_error", Backend, CPC_TEST_BACKENDS) {
  rng gen(0);
  CHECK_THROWS_WITH_AS(
      (masked_conv2d<float, Backend>({.in_channels = 1, .out_channels = 1, .kernel = 4}, gen)),
      "masked_conv2d: expected an odd kernel, got 4", config_error);
}

TEST_CASE("masked_conv2d: cpu equals reference (1e-5) on kernels 1, 3, 5, batch 1, with and without bias") {
  rng gen(31);
  for (const auto& entry : std::vector<std::array<std::size_t, 6>>{
           {1, 1, 1, 1, 1, 1}, {1, 7, 7, 4, 6, 3}, {3, 5, 6, 3, 70, 5}, {2, 7, 7, 64, 64, 3}}) {
    const auto& b = std::get<0>(entry);
    const auto& h = std::get<1>(entry);
    const auto& w = std::get<2>(entry);
    const auto& c_in = std::get<3>(entry);
    const auto& c_out = std::get<4>(entry);
    const auto& k = std::get<5>(entry);
    for (bool bias : {true, false}) {
      CAPTURE(k);
      CAPTURE(bias);
      tensor4<float> x = xt::zeros<float>({b, h, w, c_in});
      fill_uniform(x, gen);
      check_layer_backends<masked_conv2d, float>(
          masked_conv2d_options{.in_channels = c_in, .out_channels = c_out, .kernel = k, .bias = bias}, x,
          1e-5);
    }
  }
}

TEST_CASE("masked_conv2d: results do not depend on the thread count (cpu)") {
  rng gen(32);
  masked_conv2d<float> layer({.in_channels = 16, .out_channels = 70, .kernel = 3}, gen);
  tensor4<float> x = xt::zeros<float>({100, 7, 7, 16});  // 4900 rows: many groups, several d weight parts
  fill_uniform(x, gen);
  check_thread_invariance(layer, x);
}
