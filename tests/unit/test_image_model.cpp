#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <vector>

#include <cpc/autoregressor/masked_conv_autoregressor.hpp>
#include <cpc/loss/grid_info_nce.hpp>
#include <cpc/model/image_model.hpp>
#include <cpc/optim/adam.hpp>

#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "support/backend_parity.hpp"
#include "support/gradcheck.hpp"
#include "support/thread_invariance.hpp"

using namespace cpc;
using namespace cpc::testing;

TEST_CASE("grid_info_nce: row offsets are 1..K, strictly increasing, without duplicates") {
  rng gen(0);
  grid_info_nce<float> loss({.context_dim = 4, .latent_dim = 4, .steps = 5, .negatives = 3}, gen);
  const auto off = loss.row_offsets();
  REQUIRE(off.size() == 5);
  CHECK(off.front() == 1);
  for (std::size_t k = 1; k < off.size(); ++k) CHECK(off[k] > off[k - 1]);
  CHECK(std::set<std::size_t>(off.begin(), off.end()).size() == off.size());
  for (std::size_t k = 1; k <= 5; ++k) CHECK(off[k - 1] == k);
}

TEST_CASE("grid_info_nce: loss equals a brute-force computation on the grid (positive k rows below)") {
  rng gen(1);
  const std::size_t B = 2, R = 4, C = 3, D = 5, H = 3, K = 3, N = 6;
  grid_info_nce<double> loss({.context_dim = H, .latent_dim = D, .steps = K, .negatives = N}, gen);
  tensor4<double> z = xt::zeros<double>({B, R, C, D}), c = xt::zeros<double>({B, R, C, H});
  fill_uniform(z, gen);
  fill_uniform(c, gen);
  const auto res = loss.compute(z, c, gen, nullptr, nullptr);
  const auto& neg = loss.loss().sampler().indices();
  REQUIRE(neg.shape() == std::array<std::size_t, 4>{K, B * C, R, N});
  std::set<std::size_t> images_seen, columns_seen;
  for (std::size_t k = 1; k <= K; ++k) {
    const auto& w = loss.loss().head(k - 1).weight().value;
    double total = 0;
    std::size_t terms = 0;
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
          double m = *std::max_element(l.begin(), l.end()), s = 0;
          for (double v : l) s += std::exp(v - m);
          total += m + std::log(s) - l[0];
          ++terms;
        }
    CHECK(res.terms[k - 1] == terms);
    CHECK(res.loss_per_step[k - 1] == doctest::Approx(total / static_cast<double>(terms)).epsilon(1e-12));
  }
  CHECK_FALSE(images_seen.empty());   // negatives from other images
  CHECK_FALSE(columns_seen.empty());  // and from other columns of the same image
}

TEST_CASE("grid_info_nce: finite differences for z, c and the heads") {
  rng gen(2);
  grid_info_nce<double> loss({.context_dim = 3, .latent_dim = 4, .steps = 2, .negatives = 5}, gen);
  tensor4<double> z = xt::zeros<double>({2, 3, 2, 4}), c = xt::zeros<double>({2, 3, 2, 3}), dz, dc;
  fill_uniform(z, gen);
  fill_uniform(c, gen);
  const auto state = gen.state();
  loss.compute(z, c, gen, &dz, &dc);
  auto f = [&] {
    rng g2(0);
    g2.set_state(state);
    return loss.compute(z, c, g2, nullptr, nullptr).loss;
  };
  CHECK(gradient_error(f, z.data(), z.size(), dz.data()) < 1e-6);
  CHECK(gradient_error(f, c.data(), c.size(), dc.data()) < 1e-6);
  auto& w = loss.loss().head(1).weight();
  CHECK(gradient_error(f, w.value.data(), w.size(), w.grad.data()) < 1e-6);
}

TEST_CASE_TEMPLATE("masked_conv_autoregressor: a context never changes when latents below its row change",
                   Backend, CPC_TEST_BACKENDS) {
  rng gen(3);
  masked_conv_autoregressor<float, Backend> ar({.input_size = 4, .hidden_size = 6, .layers = 3, .kernel = 3},
                                               gen);
  CHECK(ar.receptive_rows() == 3);
  tensor4<float> z = xt::zeros<float>({2, 7, 7, 4}), c;
  fill_uniform(z, gen);
  ar.forward(z, c);
  const tensor4<float> c0 = c;
  for (std::size_t row = 0; row + 1 < 7; ++row) {
    tensor4<float> z2 = z, c2;
    for (std::size_t r = row + 1; r < 7; ++r) xt::view(z2, xt::all(), r) = -xt::view(z, xt::all(), r) + 1.0f;
    ar.forward(z2, c2);
    CHECK(xt::view(c2, xt::all(), xt::range(0, row + 1)) == xt::view(c0, xt::all(), xt::range(0, row + 1)));
    CHECK(xt::view(c2, xt::all(), row + 1) != xt::view(c0, xt::all(), row + 1));
  }
}

TEST_CASE_TEMPLATE("masked_conv_autoregressor: finite differences for z and every parameter", Backend,
                   CPC_TEST_BACKENDS) {
  rng gen(4);
  masked_conv_autoregressor<double, Backend> ar({.input_size = 3, .hidden_size = 4, .layers = 3, .kernel = 3},
                                                gen);
  tensor4<double> z = xt::zeros<double>({2, 4, 3, 3}), c, dz;
  fill_uniform(z, gen);
  ar.forward(z, c);
  tensor4<double> r = xt::zeros<double>(c.shape());
  fill_uniform(r, gen);
  ar.backward(z, c, r, &dz);
  auto probe = ar;
  auto loss = [&] {
    tensor4<double> cc;
    probe.forward(z, cc);
    return project(cc, r);
  };
  CHECK(gradient_error(loss, z.data(), z.size(), dz.data()) < 1e-6);
  auto mine = named_parameters<double>(ar), theirs = named_parameters<double>(probe);
  REQUIRE(mine.size() == 6);
  for (std::size_t i = 0; i < mine.size(); ++i) {
    CAPTURE(mine[i].first);
    CHECK(gradient_error(loss, theirs[i].second->value.data(), theirs[i].second->size(),
                         mine[i].second->grad.data()) < 1e-6);
  }
}

TEST_CASE("masked_conv_autoregressor: cpu equals reference (1e-5) for c, dz and every gradient") {
  rng gen(12);
  for (const auto& entry : std::vector<std::array<std::size_t, 7>>{
           {1, 1, 1, 1, 1, 1, 1}, {1, 7, 7, 64, 64, 3, 3}, {3, 5, 4, 6, 70, 2, 5}, {2, 3, 6, 5, 4, 4, 3}}) {
    const auto& b = std::get<0>(entry);
    const auto& r = std::get<1>(entry);
    const auto& c = std::get<2>(entry);
    const auto& in = std::get<3>(entry);
    const auto& hidden = std::get<4>(entry);
    const auto& layers = std::get<5>(entry);
    const auto& k = std::get<6>(entry);
    CAPTURE(hidden);
    CAPTURE(layers);
    tensor4<float> z = xt::zeros<float>({b, r, c, in});
    fill_uniform(z, gen);
    check_layer_backends<masked_conv_autoregressor, float>(
        masked_conv_autoregressor_options{
            .input_size = in, .hidden_size = hidden, .layers = layers, .kernel = k},
        z, 1e-5);
  }
}

TEST_CASE("masked_conv_autoregressor: results do not depend on the thread count (cpu)") {
  rng gen(13);
  masked_conv_autoregressor<float> ar({}, gen);  // the image_small preset's sizes
  tensor4<float> z = xt::zeros<float>({100, 7, 7, 64});
  fill_uniform(z, gen);
  check_thread_invariance(ar, z);
}

namespace {
// A small double model on 8x8 images: 3x3 grid of 4x4 patches (stride 2), 4 channels.
using small_model =
    image_model<presets::image_tiny, resnet_patch_encoder, masked_conv_autoregressor, grid_info_nce, double>;
small_model::options small_options() {
  small_model::options o;
  o.encoder.channels = 4;
  o.encoder.grid = {.size = 4, .stride = 2, .padding = 0};
  o.autoregressor.input_size = 4;
  o.autoregressor.hidden_size = 4;
  o.loss.latent_dim = 4;
  o.loss.context_dim = 4;
  o.loss.steps = 2;
  o.loss.negatives = 5;
  o.seed = 5;
  return o;
}
}  // namespace

TEST_CASE(
    "image_model: gradients of the whole model match finite differences (first entries of each parameter)") {
  small_model m(small_options());
  rng gen(6);
  tensor4<double> img = xt::zeros<double>({2, 8, 8, 1});
  fill_uniform(img, gen);
  const auto state = m.generator().state();
  const auto res = m.compute_gradients(img);
  CHECK(res.terms[0] == 2 * 3 * 2);
  CHECK(res.terms[1] == 2 * 3 * 1);
  auto loss = [&] {
    m.generator().set_state(state);
    return m.evaluate(img).loss;
  };
  for (auto& entry : m.parameters()) {
    auto& name = std::get<0>(entry);
    auto& p = std::get<1>(entry);
    CAPTURE(name);
    const std::size_t n = std::min<std::size_t>(p->size(), 12);
    CHECK(gradient_error(loss, p->value.data(), n, p->grad.data()) < 1e-6);
  }
}

TEST_CASE("image_model: contexts of a patch row do not depend on image rows below that row's patches") {
  cpc_image_model<presets::image_tiny> m({.seed = 7});
  rng gen(8);
  tensor4<float> img = xt::zeros<float>({2, 28, 28, 1}), z, c, z2, c2;
  fill_uniform(img, gen);
  m.encode(img, z, c);
  REQUIRE(c.shape() == std::array<std::size_t, 4>{2, 7, 7, 8});
  // Image rows 24..27 (padded rows 26..29) are covered by patch rows 5 (padded 20..27) and 6 (24..31) only.
  tensor4<float> img2 = img;
  xt::view(img2, xt::all(), xt::range(24, 28)) += 0.5f;
  m.encode(img2, z2, c2);
  CHECK(xt::view(c2, xt::all(), xt::range(0, 5)) == xt::view(c, xt::all(), xt::range(0, 5)));
  CHECK(xt::view(c2, xt::all(), 5) != xt::view(c, xt::all(), 5));
}

TEST_CASE("image_model: mismatched component sizes are a config_error") {
  cpc_image_model<presets::image_tiny>::options o;
  o.autoregressor.input_size = 9;
  CHECK_THROWS_AS(cpc_image_model<presets::image_tiny>{o}, config_error);
}

TEST_CASE("image_model: an empty batch or an image of one patch row is a shape_error; nothing changes") {
  cpc_image_model<presets::image_tiny> m;
  adam<float> opt(m.parameters(), {});
  const auto before = xt::eval(m.encoder().stem().weight().value);
  tensor4<float> empty = xt::zeros<float>({std::size_t{0}, std::size_t{28}, std::size_t{28}, std::size_t{1}});
  CHECK_THROWS_WITH_AS(m.train_step(empty, opt),
                       "cpc::image_model: expected a non-empty batch [>= 1, H, W, C], got [0, 28, 28, 1]",
                       shape_error);
  CHECK_THROWS_AS(m.evaluate(empty), shape_error);
  // 4 pixels high + 2 * 2 padding = 8: one row of 8x8 patches, so no positive below any anchor.
  tensor4<float> flat = xt::zeros<float>({std::size_t{2}, std::size_t{4}, std::size_t{28}, std::size_t{1}});
  CHECK_THROWS_WITH_AS(m.train_step(flat, opt),
                       doctest::Contains("grid_info_nce: expected a grid of at least 2 patch rows"),
                       shape_error);
  CHECK(m.encoder().stem().weight().value == before);
  tensor4<float> ok = xt::zeros<float>({std::size_t{2}, std::size_t{28}, std::size_t{28}, std::size_t{1}});
  CHECK(std::isfinite(m.train_step(ok, opt).loss));
}

TEST_CASE("image_model: training on images with vertical structure beats chance") {
  // Each image: vertical stripes with a random period and phase, so a column predicts its rows below.
  cpc_image_model<presets::image_tiny> m({.seed = 9});
  adam<float> opt(m.parameters(), {.learning_rate = 2e-3});
  rng gen(10);
  auto batch = [&] {
    tensor4<float> img = xt::zeros<float>({8, 28, 28, 1});
    for (std::size_t b = 0; b < 8; ++b) {
      const double period = 3 + 5 * gen.uniform(), phase = 6.3 * gen.uniform(), amp = 0.5 + gen.uniform();
      for (std::size_t y = 0; y < 28; ++y)
        for (std::size_t x = 0; x < 28; ++x)
          img(b, y, x, 0) = static_cast<float>(
              amp * std::sin(6.283 * static_cast<double>(x) / period + phase) + 0.1 * gen.normal());
    }
    return img;
  };
  info_nce_result first, last;
  for (int step = 0; step < 40; ++step) {
    const auto r = m.train_step(batch(), opt);
    if (step == 0) first = r;
    last = r;
  }
  CHECK(std::isfinite(last.loss));
  CHECK(last.loss < first.loss);
  CHECK(last.accuracy[0] > 2 * last.chance);
}
