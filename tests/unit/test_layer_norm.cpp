#include <doctest/doctest.h>

#include <cpc/layers/layer_norm.hpp>

#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "support/backend_parity.hpp"
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

TEST_CASE_TEMPLATE(
    "layer_norm: finite differences in double for input, weight and bias (plain and fused ReLU)", Backend,
    CPC_TEST_BACKENDS) {
  for (bool with_relu : {false, true}) {
    CAPTURE(with_relu);
    rng gen(3);
    layer_norm<double, Backend> layer({.normalized_shape = 7});
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

TEST_CASE_TEMPLATE(
    "layer_norm: finite differences without affine parameters, 200 channels (several channel blocks)",
    Backend, CPC_TEST_BACKENDS) {
  rng gen(8);
  layer_norm<double, Backend> plain({.normalized_shape = 200, .elementwise_affine = false});
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

  layer_norm<double, Backend> affine({.normalized_shape = 200});
  fill_uniform(affine.weight().value, gen);
  affine.forward(x, y);
  affine.backward(x, y, r, nullptr);  // parameter gradients only
  auto& w = affine.weight();
  CHECK(gradient_error([&] { return run(affine, false, x, r); }, w.value.data(), w.size(), w.grad.data()) <
        1e-6);
}

TEST_CASE_TEMPLATE("layer_norm: matches torch.nn.LayerNorm golden values in float", Backend,
                   CPC_TEST_BACKENDS) {
  auto g = read_golden("norms.txt");
  tensor3<float> x, dy, y, dx;
  assign(x, g["x"]);
  assign(dy, g["dy"]);
  SUBCASE("affine") {
    layer_norm<float, Backend> layer({.normalized_shape = 6});
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
    layer_norm<float, Backend> layer({.normalized_shape = 6});
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
    layer_norm<float, Backend> layer({.normalized_shape = 6, .elementwise_affine = false});
    layer.forward(x, y);
    CHECK(max_relative_error(y, g["plain_y"]) < 1e-4);
    layer.backward(x, y, dy, &dx);
    CHECK(max_relative_error(dx, g["plain_dx"]) < 1e-4);
  }
}

TEST_CASE_TEMPLATE("layer_norm: each output frame has mean 0 and biased variance 1 / (1 + eps / var)",
                   Backend, CPC_TEST_BACKENDS) {
  rng gen(6);
  layer_norm<double, Backend> layer({.normalized_shape = 16});
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

TEST_CASE_TEMPLATE("layer_norm: bad shapes and options throw with a message", Backend, CPC_TEST_BACKENDS) {
  layer_norm<float, Backend> layer({.normalized_shape = 4});
  tensor3<float> x = xt::zeros<float>({2, 3, 5}), y;
  CHECK_THROWS_WITH_AS(layer.forward(x, y), "layer_norm forward input: expected [*, *, 4], got [2, 3, 5]",
                       shape_error);
  tensor3<float> good = xt::zeros<float>({2, 3, 4}), dy = xt::zeros<float>({2, 2, 4});
  CHECK_THROWS_WITH_AS(layer.backward(good, good, dy, nullptr),
                       "layer_norm backward output gradient: expected [2, 3, 4], got [2, 2, 4]", shape_error);
  using layer_t = layer_norm<float, Backend>;  // (a comma inside CHECK_THROWS_AS would split the macro)
  CHECK_THROWS_AS(layer_t({.normalized_shape = 0}), config_error);
  CHECK_THROWS_AS(layer_t({.normalized_shape = 3, .eps = -1.0}), config_error);
}

namespace {

// cpu against reference for forward_relu / backward_relu (check_layer_backends covers forward and
// backward): y, dx and the parameter gradients within `tol`, reference outputs pre-filled with NaN.
template <template <class, class> class Layer, class Options>
void check_fused_relu_backends(const Options& opt, const tensor3<float>& x, double tol) {
  rng g1(1), g2(1);
  Layer<float, cpu> a(opt, g1);
  Layer<float, reference> b(opt, g2);
  for (auto* p : {&a.weight(), &b.weight()}) {
    rng gw(4);
    fill_uniform(p->value, gw, 2.0);
  }
  tensor3<float> ya, yb = xt::zeros_like(x), dxa, dxb = xt::zeros_like(x);
  a.forward_relu(x, ya);
  yb.fill(std::nanf(""));
  b.forward_relu(x, yb);
  CHECK(scaled_max_error(ya, yb) < tol);
  const tensor3<float> dy = xt::cos(yb * 3.0f);
  a.backward_relu(x, yb, dy, &dxa);  // one mask (the reference output) for both
  dxb.fill(std::nanf(""));
  b.backward_relu(x, yb, dy, &dxb);
  CHECK(scaled_max_error(dxa, dxb) < tol);
  CHECK(scaled_max_error(a.weight().grad, b.weight().grad) < tol);
  CHECK(scaled_max_error(a.bias().grad, b.bias().grad) < tol);
}

}  // namespace

TEST_CASE("layer_norm: cpu equals reference (1e-5) with and without affine, plain and fused ReLU") {
  rng gen(12);
  // One frame of one channel, row counts across 64-frame blocks, channels across 64-channel blocks.
  for (const auto& entry : std::vector<std::array<std::size_t, 3>>{{1, 1, 1}, {2, 65, 7}, {3, 50, 200}}) {
    const auto& b = std::get<0>(entry);
    const auto& t = std::get<1>(entry);
    const auto& c = std::get<2>(entry);
    CAPTURE(c);
    tensor3<float> x = xt::zeros<float>({b, t, c});
    fill_uniform(x, gen, 3.0);
    x += 2.0f;
    for (bool affine : {true, false})
      check_layer_backends<layer_norm, float>(
          layer_norm_options{.normalized_shape = c, .elementwise_affine = affine}, x, 1e-5);
    check_fused_relu_backends<layer_norm>(layer_norm_options{.normalized_shape = c}, x, 1e-5);
  }
}
