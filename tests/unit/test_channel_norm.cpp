#include <doctest/doctest.h>

#include <cpc/layers/channel_norm.hpp>

#include <algorithm>

#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "support/backend_parity.hpp"
#include "support/golden.hpp"
#include "support/gradcheck.hpp"

using namespace cpc;
using namespace cpc::testing;

TEST_CASE_TEMPLATE(
    "channel_norm: finite differences in double for input, weight and bias (plain and fused ReLU)", Backend,
    CPC_TEST_BACKENDS) {
  for (bool with_relu : {false, true}) {
    CAPTURE(with_relu);
    rng gen(13);
    channel_norm<double, Backend> layer({.channels = 5});
    fill_uniform(layer.weight().value, gen, 2.0);
    fill_uniform(layer.bias().value, gen, 0.5);
    tensor3<double> x = xt::zeros<double>({3, 4, 5}), y, dx;
    fill_uniform(x, gen, 2.0);
    tensor3<double> r = xt::zeros_like(x);
    fill_uniform(r, gen);
    auto fwd = [&](tensor3<double>& out) {
      if (with_relu)
        layer.forward_relu(x, out);
      else
        layer.forward(x, out);
    };
    fwd(y);
    if (with_relu)
      layer.backward_relu(x, y, r, &dx);
    else
      layer.backward(x, y, r, &dx);
    auto loss = [&] {
      tensor3<double> yy;
      fwd(yy);
      return project(yy, r);
    };
    CHECK(gradient_error(loss, x.data(), x.size(), dx.data()) < 1e-6);
    auto& w = layer.weight();
    CHECK(gradient_error(loss, w.value.data(), w.size(), w.grad.data()) < 1e-6);
    auto& b = layer.bias();
    CHECK(gradient_error(loss, b.value.data(), b.size(), b.grad.data()) < 1e-6);
  }
}

TEST_CASE_TEMPLATE("channel_norm: matches torch.nn.LayerNorm over channels (golden, float)", Backend,
                   CPC_TEST_BACKENDS) {
  auto g = read_golden("norms.txt");
  channel_norm<float, Backend> layer({.channels = 6});
  assign(layer.weight().value, g["weight"]);
  assign(layer.bias().value, g["bias"]);
  tensor3<float> x, dy, y, dx;
  assign(x, g["x"]);
  assign(dy, g["dy"]);
  layer.forward(x, y);
  CHECK(max_relative_error(y, g["y"]) < 1e-4);
  layer.backward(x, y, dy, &dx);
  CHECK(max_relative_error(dx, g["dx"]) < 1e-4);
  CHECK(max_relative_error(layer.weight().grad, g["dweight"]) < 1e-4);
  CHECK(max_relative_error(layer.bias().grad, g["dbias"]) < 1e-4);
  zero_grad<float>(layer);
  layer.forward_relu(x, y);
  CHECK(max_relative_error(y, g["relu_y"]) < 1e-4);
  layer.backward_relu(x, y, dy, &dx);
  CHECK(max_relative_error(dx, g["relu_dx"]) < 1e-4);
  CHECK(max_relative_error(layer.weight().grad, g["relu_dweight"]) < 1e-4);
}

TEST_CASE_TEMPLATE(
    "channel_norm: never normalises across time - changing frame t changes only output frame t", Backend,
    CPC_TEST_BACKENDS) {
  rng gen(21);
  channel_norm<double, Backend> layer({.channels = 8});
  tensor3<double> x = xt::zeros<double>({2, 6, 8}), y, y2;
  fill_uniform(x, gen);
  layer.forward(x, y);
  for (std::size_t t = 0; t < 6; ++t) {
    tensor3<double> x2 = x;
    xt::view(x2, 1, t, xt::all()) *= 3.0;
    xt::view(x2, 1, t, 2) += 1.0;
    layer.forward(x2, y2);
    for (std::size_t b = 0; b < 2; ++b)
      for (std::size_t u = 0; u < 6; ++u) {
        const bool same = xt::allclose(xt::view(y2, b, u, xt::all()), xt::view(y, b, u, xt::all()), 0.0, 0.0);
        CHECK(same == !(b == 1 && u == t));
      }
  }
  // Per-frame statistics: a frame scaled and shifted as a whole normalises to the same output.
  tensor3<double> x3 = x;
  xt::view(x3, 0, 2, xt::all()) = 4.0 * xt::view(x, 0, 2, xt::all()) - 7.0;
  layer.forward(x3, y2);
  CHECK(xt::allclose(xt::view(y2, 0, 2, xt::all()), xt::view(y, 0, 2, xt::all()), 1e-4, 1e-4));
}

TEST_CASE_TEMPLATE(
    "channel_norm: parameters are named weight/bias, shaped [channels], initialised to 1 and 0", Backend,
    CPC_TEST_BACKENDS) {
  channel_norm<float, Backend> layer({.channels = 3});
  auto params = named_parameters<float>(layer, "norm0");
  REQUIRE(params.size() == 2);
  CHECK(params[0].first == "norm0.weight");
  CHECK(params[1].first == "norm0.bias");
  CHECK(params[0].second->value == xt::ones<float>({3}));
  CHECK(params[1].second->value == xt::zeros<float>({3}));
}

TEST_CASE_TEMPLATE("channel_norm: bad shapes throw shape_error naming channel_norm", Backend,
                   CPC_TEST_BACKENDS) {
  channel_norm<float, Backend> layer({.channels = 4});
  tensor3<float> x = xt::zeros<float>({2, 3, 6}), y;
  CHECK_THROWS_WITH_AS(layer.forward(x, y), "channel_norm forward input: expected [*, *, 4], got [2, 3, 6]",
                       shape_error);
  tensor3<float> good = xt::zeros<float>({2, 3, 4}), dy = xt::zeros<float>({1, 3, 4});
  CHECK_THROWS_WITH_AS(layer.backward_relu(good, good, dy, nullptr),
                       "channel_norm backward output gradient: expected [2, 3, 4], got [1, 3, 4]",
                       shape_error);
  using layer_t = channel_norm<float, Backend>;  // (a comma inside CHECK_THROWS_AS would split the macro)
  CHECK_THROWS_AS(layer_t({.channels = 0}), config_error);
}

TEST_CASE("channel_norm: cpu equals reference (1e-5) for forward/backward and the fused ReLU") {
  rng gen(14);
  tensor3<float> x = xt::zeros<float>({3, 70, 130});
  fill_uniform(x, gen, 2.0);
  check_layer_backends<channel_norm, float>(channel_norm_options{.channels = 130}, x, 1e-5);
  channel_norm<float, cpu> a({.channels = 130});
  channel_norm<float, reference> b({.channels = 130});
  fill_uniform(a.weight().value, gen, 2.0);
  std::copy_n(a.weight().value.data(), 130, b.weight().value.data());
  tensor3<float> ya, yb = xt::zeros_like(x), dxa, dxb = xt::zeros_like(x);
  a.forward_relu(x, ya);
  yb.fill(std::nanf(""));
  b.forward_relu(x, yb);
  CHECK(scaled_max_error(ya, yb) < 1e-5);
  const tensor3<float> dy = xt::cos(yb * 3.0f);
  a.backward_relu(x, yb, dy, &dxa);  // one mask (the reference output) for both
  dxb.fill(std::nanf(""));
  b.backward_relu(x, yb, dy, &dxb);
  CHECK(scaled_max_error(dxa, dxb) < 1e-5);
  CHECK(scaled_max_error(a.weight().grad, b.weight().grad) < 1e-5);
  CHECK(scaled_max_error(a.bias().grad, b.bias().grad) < 1e-5);
}
