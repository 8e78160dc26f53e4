#include <doctest/doctest.h>

#include <cpc/layers/layer_norm.hpp>

#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "support/golden.hpp"
#include "support/gradcheck.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

// Loss through forward or forward_relu, for finite differences.
template <class Layer>
double run(Layer& layer, bool with_relu, const tensor3<double>& x, const tensor3<double>& r) {
  tensor3<double> y;
  if (with_relu)
    layer.forward_relu(x, y);
  else
    layer.forward(x, y);
  return project(y, r);
}

}  // namespace

TEST_CASE("layer_norm: finite differences in double for input, weight and bias (plain and fused ReLU)") {
  for (bool with_relu : {false, true}) {
    CAPTURE(with_relu);
    rng gen(3);
    layer_norm<double> layer({.normalized_shape = 7});
    fill_uniform(layer.weight().value, gen, 2.0);
    fill_uniform(layer.bias().value, gen, 0.5);
    // 130 frames: more than one block of frames in the parallel loops.
    tensor3<double> x = xt::zeros<double>({2, 65, 7}), y, dx;
    fill_uniform(x, gen, 3.0);
    tensor3<double> r = xt::zeros_like(x);
    fill_uniform(r, gen);
    if (with_relu) {
      layer.forward_relu(x, y);
      layer.backward_relu(x, y, r, &dx);
    } else {
      layer.forward(x, y);
      layer.backward(x, y, r, &dx);
    }
    auto loss = [&] { return run(layer, with_relu, x, r); };
    CHECK(gradient_error(loss, x.data(), x.size(), dx.data()) < 1e-6);
    auto& w = layer.weight();
    CHECK(gradient_error(loss, w.value.data(), w.size(), w.grad.data()) < 1e-6);
    auto& b = layer.bias();
    CHECK(gradient_error(loss, b.value.data(), b.size(), b.grad.data()) < 1e-6);
  }
}

TEST_CASE("layer_norm: finite differences without affine parameters, 200 channels (several channel blocks)") {
  rng gen(8);
  layer_norm<double> plain({.normalized_shape = 200, .elementwise_affine = false});
  int visited = 0;
  plain.for_each_parameter([&](const std::string&, parameter<double>&) { ++visited; });
  CHECK(visited == 0);
  tensor3<double> x = xt::zeros<double>({2, 3, 200}), y, dx;
  fill_uniform(x, gen);
  tensor3<double> r = xt::zeros_like(x);
  fill_uniform(r, gen);
  plain.forward(x, y);
  plain.backward(x, y, r, &dx);
  CHECK(gradient_error([&] { return run(plain, false, x, r); }, x.data(), x.size(), dx.data()) < 1e-6);

  layer_norm<double> affine({.normalized_shape = 200});
  fill_uniform(affine.weight().value, gen);
  affine.forward(x, y);
  affine.backward(x, y, r, nullptr);  // parameter gradients only
  auto& w = affine.weight();
  CHECK(gradient_error([&] { return run(affine, false, x, r); }, w.value.data(), w.size(), w.grad.data()) <
        1e-6);
}

TEST_CASE("layer_norm: matches torch.nn.LayerNorm golden values in float") {
  auto g = read_golden("norms.txt");
  tensor3<float> x, dy, y, dx;
  assign(x, g["x"]);
  assign(dy, g["dy"]);
  SUBCASE("affine") {
    layer_norm<float> layer({.normalized_shape = 6});
    assign(layer.weight().value, g["weight"]);
    assign(layer.bias().value, g["bias"]);
    layer.forward(x, y);
    CHECK(max_relative_error(y, g["y"]) < 1e-4);
    layer.backward(x, y, dy, &dx);
    CHECK(max_relative_error(dx, g["dx"]) < 1e-4);
    CHECK(max_relative_error(layer.weight().grad, g["dweight"]) < 1e-4);
    CHECK(max_relative_error(layer.bias().grad, g["dbias"]) < 1e-4);
  }
  SUBCASE("affine then ReLU, fused") {
    layer_norm<float> layer({.normalized_shape = 6});
    assign(layer.weight().value, g["weight"]);
    assign(layer.bias().value, g["bias"]);
    layer.forward_relu(x, y);
    CHECK(max_relative_error(y, g["relu_y"]) < 1e-4);
    layer.backward_relu(x, y, dy, &dx);
    CHECK(max_relative_error(dx, g["relu_dx"]) < 1e-4);
    CHECK(max_relative_error(layer.weight().grad, g["relu_dweight"]) < 1e-4);
    CHECK(max_relative_error(layer.bias().grad, g["relu_dbias"]) < 1e-4);
  }
  SUBCASE("no affine parameters") {
    layer_norm<float> layer({.normalized_shape = 6, .elementwise_affine = false});
    layer.forward(x, y);
    CHECK(max_relative_error(y, g["plain_y"]) < 1e-4);
    layer.backward(x, y, dy, &dx);
    CHECK(max_relative_error(dx, g["plain_dx"]) < 1e-4);
  }
}

TEST_CASE("layer_norm: each output frame has mean 0 and biased variance 1 / (1 + eps / var)") {
  rng gen(6);
  layer_norm<double> layer({.normalized_shape = 16});
  tensor3<double> x = xt::zeros<double>({3, 4, 16}), y;
  fill_uniform(x, gen, 5.0);
  x += 10.0;
  layer.forward(x, y);
  for (std::size_t b = 0; b < 3; ++b)
    for (std::size_t t = 0; t < 4; ++t) {
      auto xr = xt::view(x, b, t, xt::all());
      auto yr = xt::view(y, b, t, xt::all());
      const double var = xt::mean(xt::square(xr - xt::mean(xr)()))();
      CHECK(std::abs(xt::mean(yr)()) < 1e-12);
      CHECK(xt::mean(xt::square(yr))() == doctest::Approx(var / (var + 1e-5)).epsilon(1e-12));
    }
}

TEST_CASE("layer_norm: bad shapes and options throw with a message") {
  layer_norm<float> layer({.normalized_shape = 4});
  tensor3<float> x = xt::zeros<float>({2, 3, 5}), y;
  CHECK_THROWS_WITH_AS(layer.forward(x, y), "layer_norm forward input: expected [*, *, 4], got [2, 3, 5]",
                       shape_error);
  tensor3<float> good = xt::zeros<float>({2, 3, 4}), dy = xt::zeros<float>({2, 2, 4});
  CHECK_THROWS_WITH_AS(layer.backward(good, good, dy, nullptr),
                       "layer_norm backward output gradient: expected [2, 3, 4], got [2, 2, 4]", shape_error);
  CHECK_THROWS_AS(layer_norm<float>({.normalized_shape = 0}), config_error);
  CHECK_THROWS_AS(layer_norm<float>({.normalized_shape = 3, .eps = -1.0}), config_error);
}
