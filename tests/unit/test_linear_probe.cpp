#include <doctest/doctest.h>

#include <cpc/eval/linear_probe.hpp>

#include <cmath>
#include <vector>

#include <xtensor/xview.hpp>

#include "support/gradcheck.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

/// n points in `d` dimensions around `classes` well separated random centres (offset and scaled
/// so that standardisation matters), with their labels.
void blobs(std::size_t n, std::size_t d, std::size_t classes, double spread, rng& gen, tensor2<float>& x,
           std::vector<int>& y) {
  tensor2<double> centres = xt::zeros<double>({classes, d});
  for (auto& v : centres) v = 4.0 * gen.normal();
  x = xt::zeros<float>({n, d});
  y.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    y[i] = static_cast<int>(gen.uniform_int(classes));
    for (std::size_t j = 0; j < d; ++j)
      x(i, j) = static_cast<float>(100.0 + 30.0 * (centres(y[i], j) + spread * gen.normal()));
  }
}

}  // namespace

TEST_CASE("linear_probe: separable blobs are classified almost perfectly on held-out points") {
  rng gen(1);
  tensor2<float> x;
  std::vector<int> y;
  blobs(4000, 10, 5, 0.5, gen, x, y);
  tensor2<float> xtr = xt::view(x, xt::range(0, 2000), xt::all());
  tensor2<float> xte = xt::view(x, xt::range(2000, 4000), xt::all());
  std::vector<int> ytr(y.begin(), y.begin() + 2000), yte(y.begin() + 2000, y.end());
  linear_probe<float> probe(10, 5, {.epochs = 20, .learning_rate = 1e-2});
  const double loss = probe.fit(xtr, ytr);
  CHECK(loss < 0.1);
  CHECK(probe.accuracy(xtr, ytr) > 0.995);
  CHECK(probe.accuracy(xte, yte) > 0.99);
  // Standardisation statistics come from the training rows.
  double mean0 = 0;
  for (std::size_t i = 0; i < 2000; ++i) mean0 += xtr(i, 0);
  CHECK(probe.mean()(0) == doctest::Approx(mean0 / 2000).epsilon(1e-5));
}

TEST_CASE("linear_probe: random labels give chance accuracy on held-out data") {
  rng gen(2);
  const std::size_t n = 4000, d = 8, classes = 4;
  tensor2<float> x = xt::zeros<float>({n, d});
  std::vector<int> y(n);
  for (auto& v : x) v = static_cast<float>(gen.normal());
  for (auto& l : y) l = static_cast<int>(gen.uniform_int(classes));
  tensor2<float> xtr = xt::view(x, xt::range(0, n / 2), xt::all());
  tensor2<float> xte = xt::view(x, xt::range(n / 2, n), xt::all());
  std::vector<int> ytr(y.begin(), y.begin() + n / 2), yte(y.begin() + n / 2, y.end());
  linear_probe<float> probe(d, classes, {.epochs = 5, .learning_rate = 1e-2});
  probe.fit(xtr, ytr);
  const double acc = probe.accuracy(xte, yte);
  // Chance is 0.25; with 2000 test points the standard error is about 0.01.
  CHECK(acc > 0.20);
  CHECK(acc < 0.30);
}

TEST_CASE("linear_probe: objective gradient matches finite differences in double") {
  rng gen(3);
  const std::size_t n = 30, d = 6, classes = 4;
  tensor2<double> x = xt::zeros<double>({n, d});
  fill_uniform(x, gen, 2.0);
  std::vector<int> y(n);
  for (auto& l : y) l = static_cast<int>(gen.uniform_int(classes));
  y[3] = -1;  // unlabelled rows take no part
  y[17] = -1;
  linear_probe<double> probe(d, classes, {.weight_decay = 0.3});
  fill_uniform(probe.weight().value, gen);
  fill_uniform(probe.bias().value, gen);
  tensor2<double> dw;
  tensor1<double> db;
  probe.objective(x, y, &dw, &db);
  auto loss = [&] { return probe.objective(x, y); };
  CHECK(gradient_error(loss, probe.weight().value.data(), probe.weight().size(), dw.data()) < 1e-6);
  CHECK(gradient_error(loss, probe.bias().value.data(), probe.bias().size(), db.data()) < 1e-6);
  // Changing an unlabelled row's features changes nothing.
  const double before = probe.objective(x, y);
  x(3, 0) += 5.0;
  CHECK(probe.objective(x, y) == before);
}

TEST_CASE("linear_probe: objective value equals cross-entropy computed by hand") {
  linear_probe<double> probe(2, 3, {.weight_decay = 0.5, .standardise = false});
  probe.weight().value = tensor2<double>{{1, 0}, {0, 1}, {1, 1}};
  probe.bias().value = tensor1<double>{0.5, 0, -0.5};
  tensor2<double> x{{1, 2}, {-1, 0}};
  std::vector<int> y{2, 0};
  auto ce = [](double a, double b, double c, double target) {
    return std::log(std::exp(a) + std::exp(b) + std::exp(c)) - target;
  };
  const double expected = 0.5 * (ce(1.5, 2, 2.5, 2.5) + ce(-0.5, 0, -1.5, -0.5)) + 0.25 * 4.0;
  CHECK(probe.objective(x, y) == doctest::Approx(expected).epsilon(1e-12));
  // inverse_c (scikit-learn's 1 / C) penalises the summed loss: over these 2 rows, 1.0 / 2 = 0.5.
  linear_probe<double> per_sum(2, 3, {.inverse_c = 1.0, .standardise = false});
  per_sum.weight().value = probe.weight().value;
  per_sum.bias().value = probe.bias().value;
  CHECK(per_sum.objective(x, y) == doctest::Approx(expected).epsilon(1e-12));
  CHECK_THROWS_AS(linear_probe<double>(2, 3, {.inverse_c = -1}), config_error);
}

TEST_CASE("linear_probe: same seed gives identical weights; another seed differs") {
  rng gen(4);
  tensor2<float> x;
  std::vector<int> y;
  blobs(600, 5, 3, 2.0, gen, x, y);
  linear_probe<float> a(5, 3, {.epochs = 3, .batch_size = 32, .seed = 7});
  linear_probe<float> b(5, 3, {.epochs = 3, .batch_size = 32, .seed = 7});
  linear_probe<float> c(5, 3, {.epochs = 3, .batch_size = 32, .seed = 8});
  a.fit(x, y);
  const std::size_t threads = num_threads();
  set_num_threads(1);
  b.fit(x, y);
  c.fit(x, y);
  set_num_threads(threads);
  CHECK(a.weight().value == b.weight().value);
  CHECK(a.bias().value == b.bias().value);
  CHECK(a.predict(x) == b.predict(x));
  CHECK(a.weight().value != c.weight().value);
  // Refitting starts from zero: the same probe fitted twice ends in the same place.
  const cpc::array<float> w = a.weight().value;
  a.fit(x, y);
  CHECK(a.weight().value == w);
}

TEST_CASE("linear_probe: unlabelled rows are skipped by fit and accuracy") {
  rng gen(5);
  tensor2<float> x;
  std::vector<int> y;
  blobs(400, 4, 2, 0.3, gen, x, y);
  std::vector<int> masked = y;
  for (std::size_t i = 0; i < masked.size(); i += 3) masked[i] = -1;
  linear_probe<float> probe(4, 2, {.epochs = 5, .learning_rate = 1e-2});
  probe.fit(x, masked);
  CHECK(probe.accuracy(x, masked) > 0.99);
  std::vector<int> wrong = masked;
  for (auto& l : wrong)
    if (l != -1) l = 1 - l;
  CHECK(probe.accuracy(x, wrong) < 0.01);  // only labelled rows count
}

TEST_CASE("linear_probe: bad inputs throw typed errors with clear messages") {
  linear_probe<float> probe(3, 2);
  tensor2<float> x = xt::zeros<float>({4, 3});
  tensor2<float> x5 = xt::zeros<float>({4, 5});
  std::vector<int> y{0, 1, 0, 1};
  CHECK_THROWS_WITH_AS(probe.fit(x5, y), "linear_probe::fit input: expected [*, 3], got [4, 5]", shape_error);
  CHECK_THROWS_WITH_AS(probe.fit(x, std::vector<int>{0, 1}),
                       "linear_probe::fit labels: expected [4], got [2]", shape_error);
  CHECK_THROWS_WITH_AS(probe.fit(x, std::vector<int>{0, 2, 0, 1}),
                       "linear_probe::fit: label 2 at row 1 is outside [0, 2) and not -1", config_error);
  CHECK_THROWS_WITH_AS(probe.accuracy(x, std::vector<int>{-1, -1, -1, -1}),
                       "linear_probe::accuracy: no labelled rows (every label is -1)", config_error);
  CHECK_THROWS_WITH_AS(linear_probe<float>(0, 2),
                       "linear_probe: expected features > 0 and classes > 0, got 0 and 2", config_error);
  CHECK_THROWS_AS(linear_probe<float>(3, 2, {.batch_size = 0}), config_error);
  CHECK_THROWS_WITH_AS(linear_probe<float>(3, 2, {.epochs = 0}),
                       "linear_probe: expected epochs > 0 or min_updates > 0", config_error);
}

TEST_CASE("linear_probe: the update budget is epochs x batches, with a floor for small sets") {
  linear_probe<float> probe(4, 2, {.epochs = 20, .min_updates = 3000, .batch_size = 256});
  CHECK(probe.updates(500) == 3000);         // 20 epochs of 2 batches would be 40 updates
  CHECK(probe.updates(120000) == 20 * 469);  // 469 batches per epoch: epochs decide
  CHECK(linear_probe<float>(4, 2, {.epochs = 3, .batch_size = 10}).updates(95) == 30);
  CHECK(linear_probe<float>(4, 2, {.epochs = 0, .min_updates = 7}).updates(1) == 7);
}

TEST_CASE("linear_probe: on a few hundred overlapping rows the update floor reaches convergence") {
  // 300 rows, 3 overlapping classes in 16 dims: 20 epochs of 2 batches (40 updates) stop far from the
  // optimum; 4000 and 8000 updates (cosine-annealed) end at nearly the same objective and accuracy.
  rng gen(6);
  tensor2<float> all;
  std::vector<int> labels;
  blobs(3300, 16, 3, 12.0, gen, all, labels);
  const tensor2<float> x = xt::view(all, xt::range(0, 300), xt::all());
  const tensor2<float> xt_ = xt::view(all, xt::range(300, 3300), xt::all());
  const std::vector<int> y(labels.begin(), labels.begin() + 300), yt(labels.begin() + 300, labels.end());
  const auto fit = [&](std::size_t min_updates) {
    linear_probe<float> p(16, 3, {.epochs = 20, .min_updates = min_updates, .weight_decay = 1e-3, .seed = 1});
    const double objective = p.fit(x, y);
    return std::pair{objective, p.accuracy(xt_, yt)};
  };
  // Named results, not structured bindings: clang 14's CAPTURE cannot take a binding.
  const auto few_fit = fit(0), once_fit = fit(4000), twice_fit = fit(8000);
  const double few = few_fit.first, once = once_fit.first, twice = twice_fit.first;
  const double once_acc = once_fit.second, twice_acc = twice_fit.second;
  CAPTURE(few);
  CAPTURE(once);
  CAPTURE(twice);
  CHECK(few > once + 0.05);               // 40 updates: not converged
  CHECK(std::abs(once - twice) < 0.005);  // doubling the budget: the same optimum
  CHECK(std::abs(once_acc - twice_acc) < 0.005);
  CHECK(once_acc > 0.5);
}
