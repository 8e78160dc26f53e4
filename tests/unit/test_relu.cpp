#include <doctest/doctest.h>

#include <cpc/layers/relu.hpp>

#include <xtensor/xmath.hpp>

#include "support/backend_parity.hpp"
#include "support/gradcheck.hpp"

using namespace cpc;
using namespace cpc::testing;

TEST_CASE_TEMPLATE("relu: forward clamps at zero and backward passes dy where y > 0", Backend,
                   CPC_TEST_BACKENDS) {
  relu<float, Backend> layer;
  tensor3<float> x = {{{-1.5f, 0.0f, 2.0f}, {3.0f, -0.25f, 1e-7f}}}, y, dx;
  layer.forward(x, y);
  const tensor3<float> y_ref = {{{0.0f, 0.0f, 2.0f}, {3.0f, 0.0f, 1e-7f}}};
  CHECK(y == y_ref);
  const tensor3<float> dy = {{{1.0f, 2.0f, 3.0f}, {4.0f, 5.0f, 6.0f}}};
  dx = xt::ones_like(dy) * 42.0f;  // overwritten, not accumulated
  layer.backward(x, y, dy, &dx);
  const tensor3<float> dx_ref = {{{0.0f, 0.0f, 3.0f}, {4.0f, 0.0f, 6.0f}}};  // 0 at x == 0, as PyTorch
  CHECK(dx == dx_ref);
}

TEST_CASE_TEMPLATE("relu: finite differences in double away from the kink, over several parallel chunks",
                   Backend, CPC_TEST_BACKENDS) {
  rng gen(4);
  relu<double, Backend> layer;
  tensor3<double> x = xt::zeros<double>({3, 50, 300}), y, dx;  // 45000 elements: two chunks
  fill_uniform(x, gen);
  for (auto& v : x) v += v > 0 ? 0.01 : -0.01;  // keep away from 0 where the derivative jumps
  tensor3<double> r = xt::zeros_like(x);
  fill_uniform(r, gen);
  layer.forward(x, y);
  layer.backward(x, y, r, &dx);
  auto loss = [&] {
    tensor3<double> yy;
    layer.forward(x, yy);
    return project(yy, r);
  };
  CHECK(gradient_error(loss, x.data(), 2000, dx.data()) < 1e-6);
  CHECK(xt::allclose(dx, xt::where(x > 0.0, r, 0.0)));
}

TEST_CASE_TEMPLATE("relu: mismatched gradient shape throws shape_error", Backend, CPC_TEST_BACKENDS) {
  relu<float, Backend> layer;
  tensor3<float> x = xt::zeros<float>({2, 3, 4}), y, dx;
  layer.forward(x, y);
  tensor3<float> dy = xt::zeros<float>({2, 3, 5});
  CHECK_THROWS_WITH_AS(layer.backward(x, y, dy, &dx),
                       "relu backward output gradient: expected [2, 3, 4], got [2, 3, 5]", shape_error);
}

TEST_CASE("relu: cpu equals reference exactly (one element, several parallel chunks)") {
  rng gen(6);
  for (const auto& [b, t, c] : std::vector<std::array<std::size_t, 3>>{{1, 1, 1}, {3, 50, 300}}) {
    tensor3<float> x = xt::zeros<float>({b, t, c});
    fill_uniform(x, gen);
    check_layer_backends<relu, float>(relu_options{}, x, 1e-300);  // exact: max and a mask
  }
}
