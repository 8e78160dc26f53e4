// cpc::transformer_info_nce (CPC_audio's InfoNCE with transformer prediction heads): PyTorch golden
// values, finite differences in double, CPC_audio's anchor window, cpu against reference, padded
// items, errors.
#include <doctest/doctest.h>

#include <cpc/loss/transformer_info_nce.hpp>

#include <cmath>
#include <string>
#include <vector>

#include <xtensor/xview.hpp>

#include "support/backend_parity.hpp"
#include "support/golden.hpp"
#include "support/gradcheck.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {
const transformer_info_nce_options tiny{
    .context_dim = 6, .latent_dim = 6, .steps = 2, .negatives = 3, .heads = 2, .ff_dim = 5, .max_time = 5};
}  // namespace

TEST_CASE_TEMPLATE("transformer_info_nce: matches a PyTorch CPC_audio-style criterion (golden values, float)",
                   Backend, CPC_TEST_BACKENDS) {
  auto g = read_golden("transformer_info_nce.txt");
  rng gen(0);
  transformer_info_nce<float, Backend> loss(tiny, gen);
  loss.for_each_parameter([&](const std::string& name, parameter<float>& p) {
    CAPTURE(name);
    REQUIRE(g.count(name) == 1);
    assign(p.value, g[name]);
  });
  tensor3<float> z, c, dz, dc;
  assign(z, g["z"]);
  assign(c, g["c"]);
  tensor<std::int32_t, 4> neg;
  assign(neg, g["negatives"]);
  zero_grad<float>(loss);
  const auto r = loss.compute(z, c, batch_info{}, neg, &dz, &dc);
  REQUIRE(r.loss_per_step.size() == 2);
  CHECK(r.loss_per_step[0] == doctest::Approx(g["loss_per_step"](0)).epsilon(1e-5));
  CHECK(r.loss_per_step[1] == doctest::Approx(g["loss_per_step"](1)).epsilon(1e-5));
  CHECK(r.loss == doctest::Approx((g["loss_per_step"](0) + g["loss_per_step"](1)) / 2).epsilon(1e-5));
  CHECK(r.terms == std::vector<std::size_t>{10, 10});  // 2 items x (7 - K) anchors
  CHECK(max_relative_error(dz, g["dz"]) < 1e-4);
  CHECK(max_relative_error(dc, g["dc"]) < 1e-4);
  loss.for_each_parameter([&](const std::string& name, parameter<float>& p) {
    CAPTURE(name);
    CHECK(max_relative_error(p.grad, g["d:" + name]) < 1e-4);
  });
}

TEST_CASE_TEMPLATE("transformer_info_nce: finite differences in double through z, c and the heads", Backend,
                   CPC_TEST_BACKENDS) {
  rng gen(3);
  auto opt = tiny;
  opt.reduction = step_reduction::sum;
  opt.scale = score_scale::dot;
  transformer_info_nce<double, Backend> loss(opt, gen);
  tensor3<double> z = xt::zeros<double>({2, 7, 6}), c = z, dz, dc;
  fill_uniform(z, gen);
  fill_uniform(c, gen);
  const batch_info info{.lengths = {7, 6}};
  loss.compute(z, c, info, gen, nullptr, nullptr);  // draw negatives once, then keep them
  const tensor<std::int32_t, 4> neg = loss.sampler().indices();
  zero_grad<double>(loss);
  loss.compute(z, c, info, neg, &dz, &dc);
  auto f = [&] { return loss.compute(z, c, info, neg, nullptr, nullptr).loss; };
  CHECK(gradient_error(f, z.data(), z.size(), dz.data()) < 1e-6);
  CHECK(gradient_error(f, c.data(), c.size(), dc.data()) < 1e-6);
  int checked = 0;
  loss.for_each_parameter([&](const std::string& name, parameter<double>& p) {
    if (!name.starts_with("predictor.1.")) return;  // one head is enough (same code)
    CAPTURE(name);
    CHECK(gradient_error(f, p.value.data(), p.size(), p.grad.data()) < 1e-6);
    ++checked;
  });
  CHECK(checked == 13);
  // CPC_audio's window: item 1 has 6 valid frames, so anchors t < 4; contexts from t = 4 on and
  // latents of padded frames get no gradient.
  CHECK(xt::amax(xt::abs(xt::view(dc, xt::all(), xt::range(5, 7), xt::all())))() == 0.0);
  CHECK(xt::amax(xt::abs(xt::view(dc, 1, xt::range(4, 7), xt::all())))() == 0.0);
  CHECK(xt::amax(xt::abs(xt::view(dz, 1, 6, xt::all())))() == 0.0);
}

TEST_CASE("transformer_info_nce: cpu equals reference (1e-5): losses, dz, dc and head gradients") {
  rng g1(5), g2(5), gz(6);
  transformer_info_nce<float, cpu> a(tiny, g1);
  transformer_info_nce<float, reference> b(tiny, g2);
  tensor3<float> z = xt::zeros<float>({3, 7, 6}), c = z, dza, dca, dzb, dcb;
  fill_uniform(z, gz, 2.0);
  fill_uniform(c, gz);
  rng s1(9), s2(9);
  zero_grad<float>(a);
  zero_grad<float>(b);
  const auto ra = a.compute(z, c, batch_info{}, s1, &dza, &dca);
  const auto rb = b.compute(z, c, batch_info{}, s2, &dzb, &dcb);
  CHECK(ra.loss == doctest::Approx(rb.loss).epsilon(1e-5));
  CHECK(ra.accuracy == rb.accuracy);
  CHECK(scaled_max_error(dza, dzb) < 1e-5);
  CHECK(scaled_max_error(dca, dcb) < 1e-5);
  auto pa = named_parameters<float>(a);
  auto pb = named_parameters<float>(b);
  REQUIRE(pa.size() == pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) {
    CAPTURE(pa[i].first);
    CHECK(scaled_max_error(pa[i].second->grad, pb[i].second->grad) < 1e-5);
  }
}

TEST_CASE("transformer_info_nce: bad options and inputs throw typed errors naming the problem") {
  rng gen(0);
  using loss_t = transformer_info_nce<float>;
  auto bad = tiny;
  bad.latent_dim = 8;
  CHECK_THROWS_WITH_AS(loss_t(bad, gen),
                       "transformer_info_nce: expected context_dim = latent_dim (the transformer heads map D "
                       "channels to D), got 6 and 8",
                       config_error);
  loss_t loss(tiny, gen);
  tensor3<float> z = xt::zeros<float>({1, 8, 6}), c = z;
  CHECK_THROWS_WITH_AS(loss.compute(z, c, batch_info{}, gen, nullptr, nullptr),
                       "transformer_info_nce z: expected at most max_time + K = 7 frames, got [1, 8, 6]",
                       shape_error);
  tensor3<float> short_z = xt::zeros<float>({1, 2, 6});
  CHECK_THROWS_AS(loss.compute(short_z, short_z, batch_info{}, gen, nullptr, nullptr), config_error);
}
