// grid_info_nce on both backends: a brute-force loss on the grid, finite differences, cpu against
// reference, shape errors. (Its row-offset test and the image model's tests are in test_image_model.)
#include <doctest/doctest.h>

#include <cpc/loss/grid_info_nce.hpp>

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

#include <xtensor/xmath.hpp>

#include "support/backend_parity.hpp"
#include "support/gradcheck.hpp"

using namespace cpc;
using namespace cpc::testing;

TEST_CASE_TEMPLATE("grid_info_nce: loss equals a brute-force computation on the grid (positive k rows below)",
                   Backend, CPC_TEST_BACKENDS) {
  rng gen(1);
  const std::size_t B = 2, R = 4, C = 3, D = 5, H = 3, K = 3, N = 6;
  grid_info_nce<double, Backend> loss({.context_dim = H, .latent_dim = D, .steps = K, .negatives = N}, gen);
  tensor4<double> z = xt::zeros<double>({B, R, C, D}), c = xt::zeros<double>({B, R, C, H});
  fill_uniform(z, gen);
  fill_uniform(c, gen);
  const auto res = loss.compute(z, c, gen, nullptr, nullptr);
  const auto& neg = loss.loss().sampler().indices();
  REQUIRE(neg.shape() == std::array<std::size_t, 4>{K, B * C, R, N});
  std::set<std::size_t> images_seen, columns_seen;
  double mean = 0;
  for (std::size_t k = 1; k <= K; ++k) {
    const auto& w = loss.loss().head(k - 1).weight().value;
    double total = 0;
    std::size_t terms = 0, hits = 0;
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t i = 0; i + k < R; ++i)
        for (std::size_t j = 0; j < C; ++j) {
          std::vector<double> p(D, 0.0);
          for (std::size_t d = 0; d < D; ++d)
            for (std::size_t h = 0; h < H; ++h) p[d] += w(d, h) * c(b, i, j, h);
          auto score = [&](std::size_t bb, std::size_t ii, std::size_t jj) {
            double s = 0;
            for (std::size_t d = 0; d < D; ++d) s += p[d] * z(bb, ii, jj, d);
            return s;
          };
          std::vector<double> l{score(b, i + loss.row_offset(k), j)};
          for (std::size_t n = 0; n < N; ++n) {
            const auto flat = static_cast<std::size_t>(neg(k - 1, b * C + j, i, n));
            const auto pos = loss.grid_position(flat, R, C);
            CHECK_FALSE((pos[0] == b && pos[1] == i + k && pos[2] == j));  // never the positive
            if (pos[0] != b) images_seen.insert(pos[0]);
            if (pos[0] == b && pos[2] != j) columns_seen.insert(pos[2]);
            l.push_back(score(pos[0], pos[1], pos[2]));
          }
          const double m = *std::max_element(l.begin(), l.end());
          double s = 0;
          for (double v : l) s += std::exp(v - m);
          total += m + std::log(s) - l[0];
          hits += std::all_of(l.begin() + 1, l.end(), [&](double v) { return l[0] > v; }) ? 1 : 0;
          ++terms;
        }
    CHECK(res.terms[k - 1] == terms);
    CHECK(terms == B * C * (R - k));
    CHECK(res.loss_per_step[k - 1] == doctest::Approx(total / static_cast<double>(terms)).epsilon(1e-12));
    CHECK(res.accuracy[k - 1] == doctest::Approx(double(hits) / double(terms)).epsilon(1e-12));
    mean += total / static_cast<double>(terms) / K;
  }
  CHECK(res.loss == doctest::Approx(mean).epsilon(1e-12));
  CHECK_FALSE(images_seen.empty());   // negatives from other images
  CHECK_FALSE(columns_seen.empty());  // and from other columns of the same image
}

TEST_CASE_TEMPLATE("grid_info_nce: finite differences in double for z, c and every head parameter", Backend,
                   CPC_TEST_BACKENDS) {
  rng gen(2);
  grid_info_nce<double, Backend> loss(
      {.context_dim = 3, .latent_dim = 4, .steps = 2, .negatives = 5, .predictor_bias = true}, gen);
  for (std::size_t k = 0; k < 2; ++k) fill_uniform(loss.loss().head(k).bias().value, gen);
  tensor4<double> z = xt::zeros<double>({2, 3, 2, 4}), c = xt::zeros<double>({2, 3, 2, 3}), dz, dc;
  fill_uniform(z, gen);
  fill_uniform(c, gen);
  const auto state = gen.state();
  loss.compute(z, c, gen, &dz, &dc);
  REQUIRE(dz.shape() == z.shape());
  REQUIRE(dc.shape() == c.shape());
  auto f = [&] {
    rng g2(0);
    g2.set_state(state);  // the same negatives every time
    return loss.compute(z, c, g2, nullptr, nullptr).loss;
  };
  CHECK(gradient_error(f, z.data(), z.size(), dz.data()) < 1e-6);
  CHECK(gradient_error(f, c.data(), c.size(), dc.data()) < 1e-6);
  // The last row's contexts predict nothing: zero gradient.
  for (std::size_t b = 0; b < 2; ++b)
    for (std::size_t j = 0; j < 2; ++j)
      for (std::size_t h = 0; h < 3; ++h) CHECK(dc(b, 2, j, h) == 0.0);
  loss.for_each_parameter([&](const std::string& name, parameter<double>& p) {
    CAPTURE(name);
    CHECK(gradient_error(f, p.value.data(), p.size(), p.grad.data()) < 1e-6);
  });
}

TEST_CASE(
    "grid_info_nce: cpu equals reference (1e-5) - loss, accuracy, dz, dc, head gradients - on odd grids, "
    "one image, one column") {
  struct grid_case {
    std::size_t batch, rows, cols, context, latent, steps, negatives;
  };
  for (const auto& g :
       std::vector<grid_case>{{2, 7, 7, 16, 24, 3, 16}, {1, 2, 5, 3, 9, 1, 4}, {3, 5, 1, 8, 33, 4, 7}}) {
    CAPTURE(g.batch);
    CAPTURE(g.rows);
    CAPTURE(g.cols);
    const info_nce_options opt{.context_dim = g.context,
                               .latent_dim = g.latent,
                               .steps = g.steps,
                               .negatives = g.negatives,
                               .predictor_bias = true,
                               .scale = score_scale::inv_sqrt_dim,
                               .init = predictor_init::normal,
                               .init_scale = 0.5};
    rng g1(41), g2(41);
    grid_info_nce<float, cpu> a(opt, g1);
    grid_info_nce<float, reference> b(opt, g2);
    rng data(6);
    tensor4<float> z = xt::zeros<float>({g.batch, g.rows, g.cols, g.latent}),
                   c = xt::zeros<float>({g.batch, g.rows, g.cols, g.context});
    fill_uniform(z, data);
    fill_uniform(c, data);
    rng na(77), nb(77);  // the same negatives on both
    tensor4<float> dza, dca;
    const auto ra = a.compute(z, c, na, &dza, &dca);
    tensor4<float> dzb = xt::zeros<float>(z.shape()), dcb = xt::zeros<float>(c.shape());
    dzb.fill(std::nanf(""));  // every element must be written
    dcb.fill(std::nanf(""));
    const auto rb = b.compute(z, c, nb, &dzb, &dcb);
    REQUIRE(a.loss().sampler().indices() == b.loss().sampler().indices());
    CHECK(std::abs(ra.loss - rb.loss) <= 1e-5 * std::abs(rb.loss));
    for (std::size_t k = 0; k < g.steps; ++k) {
      CAPTURE(k);
      CHECK(std::abs(ra.loss_per_step[k] - rb.loss_per_step[k]) <= 1e-5 * std::abs(rb.loss_per_step[k]));
      CHECK(ra.accuracy[k] == rb.accuracy[k]);
      CHECK(ra.terms[k] == rb.terms[k]);
    }
    CHECK(scaled_max_error(dza, dzb) < 1e-5);
    CHECK(scaled_max_error(dca, dcb) < 1e-5);
    auto pa = named_parameters<float>(a), pb = named_parameters<float>(b);
    REQUIRE(pa.size() == 2 * g.steps);
    REQUIRE(pb.size() == pa.size());
    for (std::size_t i = 0; i < pa.size(); ++i) {
      CAPTURE(pa[i].first);
      CHECK(scaled_max_error(pa[i].second->grad, pb[i].second->grad) < 1e-5);
    }
  }
}

TEST_CASE_TEMPLATE("grid_info_nce: one patch row or mismatched shapes throw shape_error naming the shapes",
                   Backend, CPC_TEST_BACKENDS) {
  rng gen(3);
  grid_info_nce<float, Backend> loss({.context_dim = 3, .latent_dim = 4, .steps = 2, .negatives = 3}, gen);
  tensor4<float> z = xt::zeros<float>({2, 1, 7, 4}), c = xt::zeros<float>({2, 1, 7, 3});
  CHECK_THROWS_WITH_AS(
      loss.compute(z, c, gen, nullptr, nullptr),
      "grid_info_nce: expected a grid of at least 2 patch rows (the positives lie k >= 1 rows "
      "below), got z [2, 1, 7, 4]",
      shape_error);
  tensor4<float> z2 = xt::zeros<float>({2, 3, 7, 4}), c2 = xt::zeros<float>({2, 3, 6, 3});
  CHECK_THROWS_WITH_AS(loss.compute(z2, c2, gen, nullptr, nullptr),
                       "grid_info_nce c: expected [2, 3, 7, 3], got [2, 3, 6, 3]", shape_error);
  tensor4<float> z3 = xt::zeros<float>({2, 3, 7, 5});
  CHECK_THROWS_WITH_AS(loss.compute(z3, c2, gen, nullptr, nullptr),
                       "grid_info_nce z: expected [*, *, *, 4], got [2, 3, 7, 5]", shape_error);
}
