#include <doctest/doctest.h>

#include <cpc/encoder/resnet_block.hpp>

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

TEST_CASE_TEMPLATE("resnet_block: finite differences for the input and every parameter", Backend,
                   CPC_TEST_BACKENDS) {
  rng gen(11);
  resnet_block<double, Backend> block({.channels = 3, .kernel = 3}, gen);
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
  resnet_block<double, Backend> probe =
      block;  // a copy evaluates the loss without touching the kept activations
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

TEST_CASE_TEMPLATE("resnet_block: matches the PyTorch pre-activation block (golden, float)", Backend,
                   CPC_TEST_BACKENDS) {
  auto g = read_golden("image.txt");
  rng gen(0);
  resnet_block<float, Backend> block({.channels = 2, .kernel = 3}, gen);
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

TEST_CASE_TEMPLATE("resnet_block: with zero second convolution it is the identity", Backend,
                   CPC_TEST_BACKENDS) {
  rng gen(2);
  resnet_block<float, Backend> block({.channels = 4}, gen);
  block.conv2().weight().value.fill(0.f);
  block.conv2().bias().value.fill(0.f);
  tensor4<float> x = xt::zeros<float>({3, 5, 5, 4}), y;
  fill_uniform(x, gen);
  block.forward(x, y);
  CHECK(y == x);
}

TEST_CASE_TEMPLATE("resnet_block: wrong channel count is a shape_error", Backend, CPC_TEST_BACKENDS) {
  rng gen(2);
  resnet_block<float, Backend> block({.channels = 4}, gen);
  tensor4<float> x = xt::zeros<float>({1, 5, 5, 3}), y;
  CHECK_THROWS_WITH_AS(block.forward(x, y),
                       "resnet_block forward input: expected [*, *, *, 4], got [1, 5, 5, 3]", shape_error);
  CHECK_THROWS_AS((resnet_block<float, Backend>({.channels = 4, .kernel = 2}, gen)), config_error);
}

TEST_CASE("resnet_block: cpu equals reference (1e-5) on odd sizes, batch 1, kernels 1, 3, 5") {
  rng gen(51);
  for (const auto& entry : std::vector<std::array<std::size_t, 5>>{
           {1, 1, 1, 1, 1}, {1, 4, 4, 64, 3}, {3, 5, 7, 6, 3}, {2, 6, 5, 70, 5}}) {
    const auto& b = std::get<0>(entry);
    const auto& h = std::get<1>(entry);
    const auto& w = std::get<2>(entry);
    const auto& c = std::get<3>(entry);
    const auto& k = std::get<4>(entry);
    CAPTURE(c);
    CAPTURE(k);
    tensor4<float> x = xt::zeros<float>({b, h, w, c});
    fill_uniform(x, gen);
    check_layer_backends<resnet_block, float>(resnet_block_options{.channels = c, .kernel = k}, x, 1e-5);
  }
}

TEST_CASE("resnet_block: results do not depend on the thread count (cpu)") {
  rng gen(52);
  resnet_block<float> block({.channels = 64}, gen);
  tensor4<float> x = xt::zeros<float>({300, 4, 4, 64});  // 4800 pixels: many conv groups and parts
  fill_uniform(x, gen);
  check_thread_invariance(block, x);
}
