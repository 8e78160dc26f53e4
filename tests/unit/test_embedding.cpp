#include <doctest/doctest.h>

#include <cpc/layers/embedding.hpp>

#include "support/backend_parity.hpp"
#include "support/golden.hpp"
#include "support/gradcheck.hpp"

using namespace cpc;
using namespace cpc::testing;

TEST_CASE_TEMPLATE("embedding: finite differences in double for the table's gradient", Backend,
                   CPC_TEST_BACKENDS) {
  rng gen(3);
  embedding<double, Backend> layer({.vocabulary = 6, .dim = 4, .padding = 0}, gen);
  tensor2<std::int32_t> ids = {{1, 5, 1, 0}, {3, 0, 0, 2}};
  tensor3<double> y, r = xt::zeros<double>({2, 4, 4});
  fill_uniform(r, gen);
  layer.weight().grad.fill(0);
  layer.forward(ids, y);
  layer.backward(ids, r);
  auto loss = [&] {
    tensor3<double> yy;
    layer.forward(ids, yy);
    return project(yy, r);
  };
  auto& w = layer.weight();
  // The padding row is not a free parameter (torch keeps it at zero): compare rows 1..5 only.
  CHECK(gradient_error(loss, w.value.data() + 4, w.size() - 4, w.grad.data() + 4) < 1e-6);
  for (std::size_t c = 0; c < 4; ++c) CHECK(w.grad(0, c) == 0.0);
  CHECK(w.grad(4, 0) == 0.0);  // id 4 never occurs
}

TEST_CASE_TEMPLATE("embedding: matches torch.nn.Embedding(padding_idx=0) golden values", Backend,
                   CPC_TEST_BACKENDS) {
  auto g = read_golden("text.txt");
  rng gen(0);
  embedding<float, Backend> layer({.vocabulary = 7, .dim = 3, .padding = 0}, gen);
  assign(layer.weight().value, g["emb_weight"]);
  tensor2<std::int32_t> ids;
  assign(ids, g["emb_ids"]);
  tensor3<float> y, dy;
  assign(dy, g["emb_dy"]);
  layer.forward(ids, y);
  CHECK(max_relative_error(y, g["emb_y"]) < 1e-6);
  layer.weight().grad.fill(0);
  layer.backward(ids, dy);
  CHECK(max_relative_error(layer.weight().grad, g["emb_dweight"]) < 1e-6);
}

TEST_CASE("embedding: init N(0, 1) with a zero padding row; typed errors") {
  rng gen(1);
  embedding<float> layer({.vocabulary = 200, .dim = 50, .padding = 3}, gen);
  double s = 0, s2 = 0;
  for (std::size_t v = 0; v < 200; ++v)
    for (std::size_t c = 0; c < 50; ++c) {
      s += layer.weight().value(v, c);
      s2 += layer.weight().value(v, c) * layer.weight().value(v, c);
    }
  CHECK(std::abs(s / 10000) < 0.05);
  CHECK(s2 / 9950 == doctest::Approx(1.0).epsilon(0.05));
  for (std::size_t c = 0; c < 50; ++c) CHECK(layer.weight().value(3, c) == 0.0f);
  tensor2<std::int32_t> bad = {{1, 200}};
  tensor3<float> y;
  CHECK_THROWS_WITH_AS(layer.forward(bad, y),
                       "embedding forward: expected token ids in [0, 200), got 200 at [0, 1]", shape_error);
  tensor2<std::int32_t> neg = {{-1}};
  CHECK_THROWS_AS(layer.forward(neg, y), shape_error);
  CHECK_THROWS_AS(embedding<float>({.vocabulary = 0, .dim = 2}, gen), config_error);
  CHECK_THROWS_WITH_AS(embedding<float>({.vocabulary = 4, .dim = 2, .padding = 4}, gen),
                       "embedding: expected a padding id in [-1, 4), got 4", config_error);
  tensor2<std::int32_t> ok = {{1, 2}};
  tensor3<float> wrong = xt::zeros<float>({1, 3, 50});
  CHECK_THROWS_AS(layer.backward(ok, wrong), shape_error);
}
