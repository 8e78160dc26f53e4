#include <doctest/doctest.h>

#include <cpc/encoder/sentence_encoder.hpp>

#include "support/backend_parity.hpp"
#include "support/golden.hpp"
#include "support/gradcheck.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {
// ids [2, 2, 5]: sentences of 5, 2, 1 and 3 tokens (0 = padding).
tensor3<std::int32_t> sample_ids() {
  return {{{4, 9, 2, 7, 5}, {3, 3, 0, 0, 0}}, {{10, 0, 0, 0, 0}, {1, 8, 6, 0, 0}}};
}
}  // namespace

TEST_CASE_TEMPLATE("sentence_encoder: finite differences in double for every parameter", Backend,
                   CPC_TEST_BACKENDS) {
  rng gen(5);
  sentence_encoder<double, Backend> enc({.vocabulary = 11, .embedding_dim = 4, .channels = 6, .kernel = 3},
                                        gen);
  const auto ids = sample_ids();
  tensor3<double> z, r = xt::zeros<double>({2, 2, 6});
  fill_uniform(r, gen);
  enc.forward(ids, z);
  enc.backward(r);
  auto loss = [&] {
    tensor3<double> zz;
    enc.forward(ids, zz);
    return project(zz, r);
  };
  auto& e = enc.embedding_layer().weight();
  CHECK(gradient_error(loss, e.value.data() + 4, e.size() - 4, e.grad.data() + 4) < 1e-6);  // row 0: padding
  auto& w = enc.conv().weight();
  CHECK(gradient_error(loss, w.value.data(), w.size(), w.grad.data()) < 1e-6);
  auto& b = enc.conv().bias();
  CHECK(gradient_error(loss, b.value.data(), b.size(), b.grad.data()) < 1e-6);
  CHECK(enc.lengths() == std::vector<std::size_t>{5, 2, 1, 3});
}

TEST_CASE_TEMPLATE("sentence_encoder: matches PyTorch (Embedding, Conv1d, ReLU, masked mean) golden values",
                   Backend, CPC_TEST_BACKENDS) {
  auto g = read_golden("text.txt");
  rng gen(0);
  sentence_encoder<float, Backend> enc({.vocabulary = 11, .embedding_dim = 4, .channels = 6, .kernel = 3},
                                       gen);
  assign(enc.embedding_layer().weight().value, g["enc_embedding"]);
  assign(enc.conv().weight().value, g["enc_conv_weight"]);
  assign(enc.conv().bias().value, g["enc_conv_bias"]);
  tensor3<std::int32_t> ids;
  assign(ids, g["enc_ids"]);
  tensor3<float> z, dz;
  assign(dz, g["enc_dz"]);
  enc.forward(ids, z);
  CHECK(max_relative_error(z, g["enc_z"]) < 1e-5);
  enc.backward(dz);
  CHECK(max_relative_error(enc.embedding_layer().weight().grad, g["enc_dembedding"]) < 1e-5);
  CHECK(max_relative_error(enc.conv().weight().grad, g["enc_dconv_weight"]) < 1e-5);
  CHECK(max_relative_error(enc.conv().bias().grad, g["enc_dconv_bias"]) < 1e-5);
}

TEST_CASE("sentence_encoder: a sentence's latent does not depend on its batch's padding; empty slots are 0") {
  rng gen(7);
  sentence_encoder<float> enc({.vocabulary = 11, .embedding_dim = 4, .channels = 6, .kernel = 5}, gen);
  tensor3<std::int32_t> short_ids = {{{4, 9, 2}}},
                        long_ids = {{{4, 9, 2, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0}}};
  tensor3<float> za, zb;
  enc.forward(short_ids, za);
  enc.forward(long_ids, zb);
  for (std::size_t c = 0; c < 6; ++c) {
    CHECK(za(0, 0, c) == doctest::Approx(zb(0, 0, c)).epsilon(1e-6));
    CHECK(zb(0, 1, c) == 0.0f);
  }
  CHECK_THROWS_AS(
      sentence_encoder<float>({.vocabulary = 11, .embedding_dim = 4, .channels = 6, .kernel = 4}, gen),
      config_error);
  tensor3<std::int32_t> bad = {{{4, 11}}};
  CHECK_THROWS_AS(enc.forward(bad, za), shape_error);
  tensor3<float> wrong = xt::zeros<float>({1, 1, 5});
  enc.forward(short_ids, za);
  CHECK_THROWS_AS(enc.backward(wrong), shape_error);
}
