#include <doctest/doctest.h>

#include <cpc/encoder/strided_conv_encoder.hpp>

#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

#include "support/backend_parity.hpp"
#include "support/golden.hpp"
#include "support/gradcheck.hpp"

using namespace cpc;
using namespace cpc::testing;

TEST_CASE("strided_conv_encoder: the paper's configuration maps 20480 samples to 128 frames of 512") {
  using encoder = strided_conv_encoder<float>;
  const encoder::options paper{};
  CHECK(encoder::frames(20480, paper) == 128);
  CHECK(encoder::total_stride(paper) == 160);
  CHECK(encoder::frames(1600, paper) == 10);
  CHECK(encoder::frames(16000, paper) == 100);
  rng gen(1);
  encoder enc(paper, gen);
  CHECK(enc.total_stride() == 160);
  CHECK(enc.frames(20480) == 128);
  auto params = named_parameters<float>(enc);
  REQUIRE(params.size() == 20);
  const std::vector<std::vector<std::size_t>> conv_shapes{{512, 1, 10}, {512, 512, 8}, {512, 512, 4}};
  for (std::size_t i = 0; i < 5; ++i) {
    const std::string n = std::to_string(i);
    CHECK(params[4 * i].first == "conv" + n + ".weight");
    CHECK(params[4 * i + 1].first == "conv" + n + ".bias");
    CHECK(params[4 * i + 2].first == "norm" + n + ".weight");
    CHECK(params[4 * i + 3].first == "norm" + n + ".bias");
    CHECK(params[4 * i].second->value.shape() == conv_shapes[std::min<std::size_t>(i, 2)]);
    CHECK(params[4 * i + 3].second->value.shape() == std::vector<std::size_t>{512});
  }
  tensor2<float> audio = xt::zeros<float>({std::size_t{1}, std::size_t{20480}});
  fill_uniform(audio, gen, 0.5);
  tensor3<float> z;
  enc.forward(audio, z);
  CHECK(z.shape() == std::array<std::size_t, 3>{1, 128, 512});
  CHECK(xt::amin(z)() >= 0.0f);  // ReLU output
  CHECK(xt::amax(z)() > 0.1f);   // and not all zero
  CHECK(std::isfinite(xt::sum(z)()));
}

TEST_CASE_TEMPLATE("strided_conv_encoder: finite differences in double for every parameter", Backend,
                   CPC_TEST_BACKENDS) {
  for (auto norm : {encoder_normalisation::channel_norm, encoder_normalisation::none}) {
    CAPTURE(static_cast<int>(norm));
    rng gen(17);
    strided_conv_encoder<double, Backend> enc({.channels = 3, .normalisation = norm}, gen);
    // Random norm weights and biases so that their gradients are checked away from the init.
    if (norm == encoder_normalisation::channel_norm)
      for (std::size_t i = 0; i < 5; ++i) {
        fill_uniform(enc.norm(i).weight().value, gen, 1.5);
        fill_uniform(enc.norm(i).bias().value, gen, 0.5);
      }
    tensor2<double> audio = xt::zeros<double>({std::size_t{2}, std::size_t{800}});
    fill_uniform(audio, gen);
    tensor3<double> z;
    enc.forward(audio, z);
    REQUIRE(z.shape() == std::array<std::size_t, 3>{2, 5, 3});
    tensor3<double> r = xt::zeros_like(z);
    fill_uniform(r, gen);
    enc.backward(r);
    auto loss = [&] {
      tensor3<double> zz;
      enc.forward(audio, zz);
      return project(zz, r);
    };
    std::size_t checked = 0;
    enc.for_each_parameter([&](const std::string& name, parameter<double>& p) {
      CAPTURE(name);
      CHECK(gradient_error(loss, p.value.data(), p.size(), p.grad.data()) < 1e-6);
      ++checked;
    });
    CHECK(checked == (norm == encoder_normalisation::channel_norm ? 20u : 10u));
  }
}

TEST_CASE_TEMPLATE("strided_conv_encoder: matches a PyTorch Conv1d/LayerNorm/ReLU stack (golden, float)",
                   Backend, CPC_TEST_BACKENDS) {
  auto g = read_golden("encoder.txt");
  rng gen(0);
  strided_conv_encoder<float, Backend> enc({.channels = 4}, gen);
  enc.for_each_parameter([&](const std::string& name, parameter<float>& p) {
    REQUIRE(g.count(name) == 1);
    REQUIRE(p.size() == g[name].size());
    assign(p.value, g[name]);
  });
  tensor2<float> audio;
  tensor3<float> dz, z;
  assign(audio, g["audio"]);
  assign(dz, g["dz"]);
  enc.forward(audio, z);
  REQUIRE(z.shape() == std::array<std::size_t, 3>{2, 10, 4});
  CHECK(max_relative_error(z, g["z"]) < 1e-4);
  enc.backward(dz);
  enc.for_each_parameter([&](const std::string& name, parameter<float>& p) {
    CAPTURE(name);
    CHECK(max_relative_error(p.grad, g["grad." + name]) < 1e-4);
  });
}

TEST_CASE_TEMPLATE("strided_conv_encoder: batch independence, repeatable forward, gradients accumulate",
                   Backend, CPC_TEST_BACKENDS) {
  rng gen(23);
  strided_conv_encoder<float, Backend> enc({.channels = 16}, gen);
  tensor2<float> audio = xt::zeros<float>({std::size_t{3}, std::size_t{3200}});
  fill_uniform(audio, gen);
  tensor3<float> z, z_again;
  enc.forward(audio, z);
  REQUIRE(z.shape() == std::array<std::size_t, 3>{3, 20, 16});
  for (std::size_t b = 0; b < 3; ++b) {
    tensor2<float> one = xt::view(audio, xt::range(b, b + 1), xt::all());
    tensor3<float> zb;
    enc.forward(one, zb);
    CHECK(xt::allclose(zb, xt::view(z, xt::range(b, b + 1), xt::all(), xt::all()), 1e-5, 1e-6));
  }
  enc.forward(audio, z_again);
  CHECK(z_again == z);
  tensor3<float> dz = xt::cos(z * 5.0f);
  enc.backward(dz);
  const array<float> once = enc.conv(1).weight().grad;
  enc.backward(dz);
  CHECK(xt::allclose(enc.conv(1).weight().grad, 2.0f * once, 1e-5, 1e-7));
}

TEST_CASE_TEMPLATE("strided_conv_encoder: bad input and options throw with a message", Backend,
                   CPC_TEST_BACKENDS) {
  rng gen(2);
  strided_conv_encoder<float, Backend> enc({.channels = 4}, gen);
  tensor3<float> z, dz = xt::zeros<float>({2, 10, 4});
  CHECK_THROWS_WITH_AS(enc.backward(dz), "strided_conv_encoder backward: called before forward", error);
  CHECK(enc.min_samples() == 159);
  CHECK(enc.frames(159) == 1);
  CHECK(enc.frames(158) == 0);
  tensor2<float> short_audio = xt::zeros<float>({std::size_t{2}, std::size_t{158}});
  CHECK_THROWS_WITH_AS(enc.forward(short_audio, z),
                       "strided_conv_encoder forward audio: expected [*, >= 159] samples, got [2, 158]",
                       shape_error);
  tensor2<float> one_frame = xt::zeros<float>({std::size_t{2}, std::size_t{159}});
  enc.forward(one_frame, z);
  CHECK(z.shape() == std::array<std::size_t, 3>{2, 1, 4});
  tensor2<float> audio = xt::zeros<float>({std::size_t{2}, std::size_t{1600}});
  enc.forward(audio, z);
  tensor3<float> bad = xt::zeros<float>({2, 10, 5});
  CHECK_THROWS_WITH_AS(enc.backward(bad),
                       "strided_conv_encoder backward dz: expected [2, 10, 4], got [2, 10, 5]", shape_error);
  using encoder_t = strided_conv_encoder<float, Backend>;  // (a comma inside CHECK_THROWS_AS would split it)
  CHECK_THROWS_AS(encoder_t({.kernels = {10, 8}}, gen), config_error);
  CHECK_THROWS_AS(encoder_t({.channels = 0}, gen), config_error);
}

TEST_CASE("strided_conv_encoder: cpu equals reference (1e-5) for z and every parameter gradient") {
  // 40 channels (a remainder after the 32-channel register chunks of the first layer's direct
  // loop) and 2 x 4000 samples, so each layer's frames span several cpu task blocks.
  for (auto norm : {encoder_normalisation::channel_norm, encoder_normalisation::none}) {
    CAPTURE(static_cast<int>(norm));
    const strided_conv_encoder_options opt{.channels = 40, .normalisation = norm};
    rng g1(8), g2(8), gen(9);
    strided_conv_encoder<float, cpu> a(opt, g1);
    strided_conv_encoder<float, reference> b(opt, g2);
    tensor2<float> audio = xt::zeros<float>({std::size_t{2}, std::size_t{4000}});
    fill_uniform(audio, gen);
    tensor3<float> za, zb = xt::zeros<float>({2, 25, 40});
    a.forward(audio, za);
    zb.fill(std::nanf(""));
    b.forward(audio, zb);
    REQUIRE(za.shape() == std::array<std::size_t, 3>{2, 25, 40});
    CHECK(scaled_max_error(za, zb) < 1e-5);
    const tensor3<float> dz = xt::cos(zb * 3.0f);
    a.backward(dz);
    b.backward(dz);
    auto pa = named_parameters<float>(a);
    auto pb = named_parameters<float>(b);
    REQUIRE(pa.size() == pb.size());
    for (std::size_t i = 0; i < pa.size(); ++i) {
      CAPTURE(pa[i].first);
      CHECK(scaled_max_error(pa[i].second->grad, pb[i].second->grad) < 1e-5);
    }
  }
}
