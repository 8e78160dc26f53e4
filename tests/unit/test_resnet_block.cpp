#include <doctest/doctest.h>

#include <cpc/encoder/resnet_block.hpp>

#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "support/golden.hpp"
#include "support/gradcheck.hpp"

using namespace cpc;
using namespace cpc::testing;

TEST_CASE("resnet_block: finite differences for the input and every parameter") {
  rng gen(11);
  resnet_block<double> block({.channels = 3, .kernel = 3}, gen);
  // Non-trivial layer-norm affine parameters.
  block.for_each_parameter([&](const std::string& name, parameter<double>& p) {
    if (name.rfind("ln", 0) == 0) fill_uniform(p.value, gen, 0.5);
    if (name.find(".weight") != std::string::npos && name.rfind("ln", 0) == 0) p.value += 1.0;
  });
  tensor4<double> x = xt::zeros<double>({2, 4, 3, 3}), y, dx;
  fill_uniform(x, gen);
  block.forward(x, y);
  tensor4<double> r = xt::zeros<double>(y.shape());
  fill_uniform(r, gen);
  block.backward(x, y, r, &dx);
  resnet_block<double> probe = block;  // a copy evaluates the loss without touching the kept activations
  auto loss = [&] {
    tensor4<double> yy;
    probe.forward(x, yy);
    return project(yy, r);
  };
  CHECK(gradient_error(loss, x.data(), x.size(), dx.data()) < 1e-6);
  auto mine = named_parameters<double>(block);
  auto theirs = named_parameters<double>(probe);
  REQUIRE(mine.size() == 8);
  for (std::size_t i = 0; i < mine.size(); ++i) {
    CAPTURE(mine[i].first);
    CHECK(gradient_error(loss, theirs[i].second->value.data(), theirs[i].second->size(),
                         mine[i].second->grad.data()) < 1e-6);
  }
}

TEST_CASE("resnet_block: matches the PyTorch pre-activation block (golden, float)") {
  auto g = read_golden("image.txt");
  rng gen(0);
  resnet_block<float> block({.channels = 2, .kernel = 3}, gen);
  block.for_each_parameter(
      [&](const std::string& name, parameter<float>& p) { assign(p.value, g["block." + name]); });
  tensor4<float> x, y, dy, dx;
  assign(x, g["block.x"]);
  assign(dy, g["block.dy"]);
  block.forward(x, y);
  CHECK(max_relative_error(y, g["block.y"]) < 1e-4);
  block.backward(x, y, dy, &dx);
  CHECK(max_relative_error(dx, g["block.dx"]) < 1e-4);
  block.for_each_parameter([&](const std::string& name, parameter<float>& p) {
    CAPTURE(name);
    CHECK(max_relative_error(p.grad, g["block.d" + name]) < 1e-4);
  });
}

TEST_CASE("resnet_block: with zero second convolution it is the identity") {
  rng gen(2);
  resnet_block<float> block({.channels = 4}, gen);
  block.conv2().weight().value.fill(0.f);
  block.conv2().bias().value.fill(0.f);
  tensor4<float> x = xt::zeros<float>({3, 5, 5, 4}), y;
  fill_uniform(x, gen);
  block.forward(x, y);
  CHECK(y == x);
}

TEST_CASE("resnet_block: wrong channel count is a shape_error") {
  rng gen(2);
  resnet_block<float> block({.channels = 4}, gen);
  tensor4<float> x = xt::zeros<float>({1, 5, 5, 3}), y;
  CHECK_THROWS_WITH_AS(block.forward(x, y),
                       "resnet_block forward input: expected [*, *, *, 4], got [1, 5, 5, 3]", shape_error);
  CHECK_THROWS_AS(resnet_block<float>({.channels = 4, .kernel = 2}, gen), config_error);
}
