#include <doctest/doctest.h>

#include <cpc/encoder/patches.hpp>
#include <cpc/encoder/resnet_patch_encoder.hpp>

#include <array>
#include <cmath>
#include <thread>
#include <vector>

#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "support/backend_parity.hpp"
#include "support/golden.hpp"
#include "support/gradcheck.hpp"

using namespace cpc;
using namespace cpc::testing;

TEST_CASE("patch_grid: 28x28 digits give the paper's 7x7 grid; 256x256 with 64/32 too") {
  CHECK(patch_grid{}.count(28) == 7);
  CHECK(patch_grid{.size = 64, .stride = 32, .padding = 0}.count(256) == 7);
  const patch_grid unpadded{.size = 8, .stride = 4, .padding = 0};
  CHECK(unpadded.count(28) == 6);
  CHECK_THROWS_WITH_AS(unpadded.count(7), "patch_grid: expected an image extent >= 8, got 7", shape_error);
  const patch_grid no_stride{.size = 8, .stride = 0};
  CHECK_THROWS_AS(no_stride.count(28), config_error);
}

TEST_CASE_TEMPLATE("extract_patches: every patch pixel is the padded image pixel it covers", Backend,
                   CPC_TEST_BACKENDS) {
  const std::size_t B = 2, H = 10, W = 9, C = 2;
  tensor4<float> img = xt::zeros<float>({B, H, W, C}), patches;
  for (std::size_t i = 0; i < img.size(); ++i) img.data()[i] = static_cast<float>(i + 1);
  const patch_grid grid{.size = 4, .stride = 3, .padding = 1};
  patches = xt::zeros<float>({B * 9, std::size_t{4}, std::size_t{4}, C});
  patches.fill(std::nan(""));  // every element must be written
  extract_patches<Backend>(img, grid, patches);
  const std::size_t rows = grid.count(H), cols = grid.count(W);
  CHECK(rows == 3);
  CHECK(cols == 3);
  REQUIRE(patches.shape() == std::array<std::size_t, 4>{B * rows * cols, 4, 4, C});
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < cols; ++c)
        for (std::size_t u = 0; u < 4; ++u)
          for (std::size_t v = 0; v < 4; ++v)
            for (std::size_t ch = 0; ch < C; ++ch) {
              const long y = static_cast<long>(r * 3 + u) - 1, x = static_cast<long>(c * 3 + v) - 1;
              const float want = (y < 0 || x < 0 || y >= long(H) || x >= long(W))
                                     ? 0.f
                                     : img(b, static_cast<std::size_t>(y), static_cast<std::size_t>(x), ch);
              CHECK(patches((b * rows + r) * cols + c, u, v, ch) == want);
            }
}

namespace {
// Loads the golden weights under `prefix` into an encoder with `opt`, checks z and every gradient.
template <class Backend>
void check_patch_encoder_golden(const std::string& prefix, const resnet_patch_encoder_options& opt) {
  auto g = read_golden("image.txt");
  rng gen(0);
  resnet_patch_encoder<float, Backend> enc(opt, gen);
  enc.for_each_parameter(
      [&](const std::string& name, parameter<float>& p) { assign(p.value, g[prefix + name]); });
  tensor4<float> img, z, dz;
  assign(img, g[prefix + "img"]);
  assign(dz, g[prefix + "dz"]);
  enc.forward(img, z);
  CHECK(max_relative_error(z, g[prefix + "z"]) < 1e-4);
  enc.backward(dz);
  enc.for_each_parameter([&](const std::string& name, parameter<float>& p) {
    CAPTURE(name);
    CHECK(max_relative_error(p.grad, g[prefix + "d" + name]) < 1e-4);
  });
}
}  // namespace

TEST_CASE_TEMPLATE(
    "resnet_patch_encoder: matches PyTorch (unfold -> stem -> block -> layer norm + ReLU -> mean)", Backend,
    CPC_TEST_BACKENDS) {
  check_patch_encoder_golden<Backend>("enc.", {.in_channels = 1,
                                               .channels = 2,
                                               .blocks = 1,
                                               .kernel = 3,
                                               .stem_stride = 1,
                                               .grid = {.size = 4, .stride = 3, .padding = 1}});
}

TEST_CASE_TEMPLATE("resnet_patch_encoder: a stride-2 stem matches PyTorch (6x6 patches -> 3x3 pixels)",
                   Backend, CPC_TEST_BACKENDS) {
  check_patch_encoder_golden<Backend>("enc2.", {.in_channels = 1,
                                                .channels = 2,
                                                .blocks = 1,
                                                .kernel = 3,
                                                .stem_stride = 2,
                                                .grid = {.size = 6, .stride = 4, .padding = 1}});
}

TEST_CASE_TEMPLATE("resnet_patch_encoder: finite differences for every parameter; patches are independent",
                   Backend, CPC_TEST_BACKENDS) {
  for (const std::size_t stem_stride : {1, 2}) {
    CAPTURE(stem_stride);
    rng gen(4);
    resnet_patch_encoder<double, Backend> enc({.in_channels = 1,
                                               .channels = 3,
                                               .blocks = 2,
                                               .kernel = 3,
                                               .stem_stride = stem_stride,
                                               .grid = {.size = 4, .stride = 2, .padding = 0}},
                                              gen);
    tensor4<double> img = xt::zeros<double>({2, 8, 6, 1}), z;
    fill_uniform(img, gen);
    enc.forward(img, z);
    REQUIRE(z.shape() == std::array<std::size_t, 4>{2, 3, 2, 3});
    tensor4<double> r = xt::zeros<double>(z.shape());
    fill_uniform(r, gen);
    enc.backward(r);
    auto probe = enc;
    auto loss = [&] {
      tensor4<double> zz;
      probe.forward(img, zz);
      return project(zz, r);
    };
    auto mine = named_parameters<double>(enc), theirs = named_parameters<double>(probe);
    for (std::size_t i = 0; i < mine.size(); ++i) {
      CAPTURE(mine[i].first);
      CHECK(gradient_error(loss, theirs[i].second->value.data(), theirs[i].second->size(),
                           mine[i].second->grad.data()) < 1e-6);
    }
    // Changing pixels covered only by the bottom-right patch changes only that patch's latent.
    tensor4<double> img2 = img, z2;
    img2(1, 7, 5, 0) += 1.0;
    enc.forward(img2, z2);
    for (std::size_t b = 0; b < 2; ++b)
      for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t j = 0; j < 2; ++j) {
          const bool changed = xt::view(z2, b, i, j) != xt::view(z, b, i, j);
          CHECK(changed == (b == 1 && i == 2 && j == 1));
        }
  }
}

TEST_CASE("resnet_patch_encoder: cpu equals reference (1e-5) for z and every gradient, odd grids, batch 1") {
  struct encoder_case {
    std::array<std::size_t, 4> images;
    resnet_patch_encoder_options opt;
  };
  const std::vector<encoder_case> cases{
      {{1, 28, 28, 1}, {}},  // the image_small preset's encoder on one digit
      {{3, 11, 9, 2},
       {.in_channels = 2,
        .channels = 5,
        .blocks = 2,
        .kernel = 3,
        .stem_stride = 1,
        .grid = {.size = 5, .stride = 3, .padding = 1}}},
      {{2, 16, 16, 1},
       {.in_channels = 1,
        .channels = 70,
        .blocks = 1,
        .kernel = 5,
        .stem_stride = 2,
        .grid = {.size = 8, .stride = 4, .padding = 0}}},
  };
  for (const auto& c : cases) {
    CAPTURE(c.opt.channels);
    rng gen(41), g1(42), g2(42);
    tensor4<float> img = xt::zeros<float>(c.images), za, zb;
    fill_uniform(img, gen);
    resnet_patch_encoder<float, cpu> a(c.opt, g1);
    resnet_patch_encoder<float, reference> b(c.opt, g2);
    a.forward(img, za);
    zb = za;
    zb.fill(std::nan(""));
    b.forward(img, zb);
    CHECK(scaled_max_error(za, zb) < 1e-5);
    const tensor4<float> dz = xt::cos(zb * 3.0f);
    zero_grad<float>(a);
    zero_grad<float>(b);
    a.backward(dz);
    b.backward(dz);
    auto pa = named_parameters<float>(a), pb = named_parameters<float>(b);
    REQUIRE(pa.size() == pb.size());
    for (std::size_t i = 0; i < pa.size(); ++i) {
      CAPTURE(pa[i].first);
      CHECK(scaled_max_error(pa[i].second->grad, pb[i].second->grad) < 1e-5);
    }
  }
}

TEST_CASE("resnet_patch_encoder: results do not depend on the thread count (cpu)") {
  rng gen(43);
  resnet_patch_encoder<float> enc({}, gen);  // the image_small preset's encoder
  tensor4<float> img = xt::zeros<float>({8, 28, 28, 1}), z1, z2;
  fill_uniform(img, gen);
  const tensor4<float> dz = xt::ones<float>({8, 7, 7, 64});
  auto run = [&](std::size_t threads, tensor4<float>& z) {
    set_num_threads(threads);
    zero_grad<float>(enc);
    enc.forward(img, z);
    enc.backward(xt::cos(z * 3.0f) + dz);
    std::vector<array<float>> grads;
    for (auto& [name, p] : named_parameters<float>(enc)) grads.push_back(p->grad);
    return grads;
  };
  const auto g1 = run(1, z1);
  const auto g2 = run(2, z2);
  set_num_threads(std::thread::hardware_concurrency());
  CHECK(z1 == z2);
  for (std::size_t i = 0; i < g1.size(); ++i) CHECK(g1[i] == g2[i]);
}
