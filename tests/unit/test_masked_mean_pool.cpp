#include <doctest/doctest.h>

#include <cpc/layers/masked_mean_pool.hpp>

#include <vector>

#include "support/backend_parity.hpp"
#include "support/golden.hpp"
#include "support/gradcheck.hpp"

using namespace cpc;
using namespace cpc::testing;

TEST_CASE_TEMPLATE("masked_mean_pool: finite differences in double for the input gradient", Backend,
                   CPC_TEST_BACKENDS) {
  rng gen(2);
  masked_mean_pool<double, Backend> pool;
  tensor3<double> x = xt::zeros<double>({4, 6, 3}), dx;
  fill_uniform(x, gen);
  const std::vector<std::size_t> len{6, 3, 0, 1};
  tensor2<double> y, r = xt::zeros<double>({4, 3});
  fill_uniform(r, gen);
  pool.forward(x, len, y);
  pool.backward(x, len, r, dx);
  auto loss = [&] {
    tensor2<double> yy;
    pool.forward(x, len, yy);
    return project(yy, r);
  };
  CHECK(gradient_error(loss, x.data(), x.size(), dx.data()) < 1e-8);
  for (std::size_t c = 0; c < 3; ++c) CHECK(y(2, c) == 0.0);      // length 0: zero output
  for (std::size_t t = 3; t < 6; ++t) CHECK(dx(1, t, 0) == 0.0);  // padding: zero gradient
  CHECK(y(3, 1) == x(3, 0, 1));                                   // length 1: the first step
}

TEST_CASE_TEMPLATE("masked_mean_pool: matches PyTorch's masked mean golden values", Backend,
                   CPC_TEST_BACKENDS) {
  auto g = read_golden("text.txt");
  masked_mean_pool<float, Backend> pool;
  tensor3<float> x, dx;
  tensor2<float> y, dy;
  assign(x, g["pool_x"]);
  assign(dy, g["pool_dy"]);
  std::vector<std::size_t> len;
  for (double v : g["pool_lengths"]) len.push_back(static_cast<std::size_t>(v));
  pool.forward(x, len, y);
  CHECK(max_relative_error(y, g["pool_y"]) < 1e-6);
  pool.backward(x, len, dy, dx);
  CHECK(max_relative_error(dx, g["pool_dx"]) < 1e-6);
}

TEST_CASE("masked_mean_pool: the output does not depend on what the padding holds; typed errors") {
  masked_mean_pool<float> pool;
  tensor3<float> a = xt::ones<float>({2, 4, 2}), b = a;
  b(0, 3, 0) = 1e30f;
  b(1, 2, 1) = NAN;
  const std::vector<std::size_t> len{3, 2};
  tensor2<float> ya, yb;
  pool.forward(a, len, ya);
  pool.forward(b, len, yb);
  CHECK(ya == yb);
  const std::vector<std::size_t> three{1, 1, 1}, too_long{5, 1};
  CHECK_THROWS_WITH_AS(pool.forward(a, three, ya), "masked_mean_pool forward: expected 2 lengths, got 3",
                       shape_error);
  CHECK_THROWS_WITH_AS(pool.forward(a, too_long, ya),
                       "masked_mean_pool forward: length of row 0 is 5, expected <= 4", shape_error);
}
