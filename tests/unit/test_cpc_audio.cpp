// A CPC_audio checkpoint converted by scripts/convert_cpc_audio.py (tests/golden/gen_cpc_audio.py
// builds a tiny model with CPC_audio's architecture and checkpoint layout in PyTorch, saves it as
// CPC_audio does and converts it): cpc's features equal PyTorch's (relative error < 1e-4 in float),
// by one pass and by streaming; --layers 1 gives the first LSTM layer's features; the criterion's
// per-step losses match; bad metadata is refused with a message.
#include <doctest/doctest.h>

#include <cpc/model/context_stream.hpp>
#include <cpc/model/cpc_audio.hpp>
#include <cpc/optim/adam.hpp>
#include <cpc/train/checkpoint.hpp>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <xtensor/xview.hpp>

#include "support/golden.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

using model_t = cpc_audio_model<>;

std::string fixture(const std::string& name) {
  return std::string(CPC_GOLDEN_DIR) + "/" + name;
}

// A model built from the converted file's metadata, with its weights loaded.
std::unique_ptr<model_t> load_converted(const std::string& file) {
  const auto path = fixture(file);
  const auto md = load_safetensors(path).metadata;
  auto m = std::make_unique<model_t>(cpc_audio_options<model_t::options>(md, path));
  load_weights(path, *m);
  return m;
}

}  // namespace

TEST_CASE("cpc_audio: a converted checkpoint's features match PyTorch's (1e-4), one pass and streamed") {
  auto g = read_golden("cpc_audio.txt");
  auto m = load_converted("cpc_audio_tiny.safetensors");
  CHECK(m->config().encoder.channels == 8);
  CHECK(m->config().autoregressor.num_layers == 2);
  CHECK(m->config().loss.heads == 2);
  CHECK(m->config().loss.ff_dim == 6);
  CHECK(m->config().loss.max_time == 8);
  // CPC_audio's unbiased channel norm as cpc's biased one: eps (C-1)/C = 1e-5 * 7/8 in every norm.
  for (std::size_t i = 0; i < 5; ++i) CHECK(m->encoder().norm(i).config().eps == doctest::Approx(8.75e-6));
  tensor2<float> audio;
  assign(audio, g["audio"]);
  tensor3<float> z, c;
  m->encode(audio, z, c);
  CHECK(max_relative_error(z, g["z"]) < 1e-4);
  CHECK(max_relative_error(c, g["c"]) < 1e-4);

  // Streaming in uneven chunks gives the same contexts, bit for bit.
  context_stream<model_t> stream(*m);
  std::vector<float> streamed;
  std::size_t frames = 0;
  const std::size_t n = audio.shape()[1];
  const auto take = [&](const tensor3<float>& part) {
    for (std::size_t t = 0; t < part.shape()[1]; ++t, ++frames)
      for (std::size_t b = 0; b < 2; ++b)
        for (std::size_t j = 0; j < 8; ++j) CHECK(part(b, t, j) == c(b, frames, j));
  };
  for (std::size_t s0 = 0, i = 0; s0 < n; ++i) {
    const std::size_t len = std::min<std::size_t>(i % 2 ? 97 : 410, n - s0);
    tensor2<float> chunk = xt::view(audio, xt::all(), xt::range(s0, s0 + len));
    s0 += len;
    tensor3<float> part;
    stream.push(chunk, part);
    take(part);
  }
  tensor3<float> rest;
  stream.finish(rest);
  take(rest);
  CHECK(frames == c.shape()[1]);
}

TEST_CASE("cpc_audio: --layers 1 keeps the first LSTM layer (ZeroSpeech's layer features)") {
  auto g = read_golden("cpc_audio.txt");
  auto m = load_converted("cpc_audio_tiny_layer1.safetensors");
  CHECK(m->config().autoregressor.num_layers == 1);
  tensor2<float> audio;
  assign(audio, g["audio"]);
  tensor3<float> z, c;
  m->encode(audio, z, c);
  CHECK(max_relative_error(c, g["c_layer1"]) < 1e-4);
}

TEST_CASE("cpc_audio: the converted transformer heads give CPC_audio's per-step losses (1e-4)") {
  auto g = read_golden("cpc_audio.txt");
  auto m = load_converted("cpc_audio_tiny.safetensors");
  tensor2<float> audio;
  assign(audio, g["audio"]);
  tensor2<float> window = xt::view(audio, xt::all(), xt::range(0, 1600));
  tensor3<float> z, c;
  m->encode(window, z, c);
  tensor<std::int32_t, 4> neg;
  assign(neg, g["window_negatives"]);
  const auto r = m->loss().compute(z, c, batch_info{}, neg, nullptr, nullptr);
  CHECK(r.loss_per_step[0] == doctest::Approx(g["window_losses"](0)).epsilon(1e-4));
  CHECK(r.loss_per_step[1] == doctest::Approx(g["window_losses"](1)).epsilon(1e-4));
}

TEST_CASE("cpc_audio: options from metadata refuse what is missing or another architecture") {
  const std::string where = "f.safetensors";
  CHECK_THROWS_WITH_AS(cpc_audio_options<model_t::options>({}, where),
                       "f.safetensors: no metadata 'cpc_audio' (not a checkpoint converted by "
                       "scripts/convert_cpc_audio.py)",
                       io_error);
  CHECK_THROWS_WITH_AS(cpc_audio_options<model_t::options>({{"cpc_audio", "{"}}, where),
                       doctest::Contains("f.safetensors: metadata 'cpc_audio': not valid JSON"), io_error);
  auto md = load_safetensors(fixture("cpc_audio_tiny.safetensors")).metadata;
  std::string json = md["cpc_audio"];
  json.replace(json.find("\"LSTM\""), 6, "\"GRU\"");
  CHECK_THROWS_WITH_AS(cpc_audio_options<model_t::options>({{"cpc_audio", json}}, where),
                       "f.safetensors: metadata 'cpc_audio': expected 'ar_mode' = \"LSTM\", got \"GRU\"",
                       io_error);
  json = md["cpc_audio"];
  json.replace(json.find("\"ar_hidden\": 8"), 14, "\"ar_hidden\": 0");
  CHECK_THROWS_WITH_AS(cpc_audio_options<model_t::options>({{"cpc_audio", json}}, where),
                       "f.safetensors: metadata 'cpc_audio': expected 'ar_hidden' as a whole number > 0",
                       io_error);
}

TEST_CASE("cpc_audio: load_weights refuses a checkpoint of another shape, naming the tensor") {
  auto md = load_safetensors(fixture("cpc_audio_tiny.safetensors")).metadata;
  auto opt = cpc_audio_options<model_t::options>(md, "x");
  opt.autoregressor.hidden_size = opt.loss.context_dim = opt.loss.latent_dim = opt.encoder.channels = 16;
  opt.autoregressor.input_size = 16;
  model_t m(opt);
  CHECK_THROWS_WITH_AS(
      load_weights(fixture("cpc_audio_tiny.safetensors"), m),
      doctest::Contains("tensor 'model.encoder.conv0.weight': expected [16, 1, 10], got [8, 1, 10]"),
      io_error);
}

TEST_CASE("cpc_audio: a converted model trains (Adam steps lower the loss on a fixed batch)") {
  auto m = load_converted("cpc_audio_tiny.safetensors");
  adam<float> opt(m->parameters(), {.learning_rate = 1e-2});
  rng gen(3);
  tensor2<float> audio = xt::zeros<float>({4, 1600});
  for (auto& v : audio) v = static_cast<float>(gen.uniform(-0.3, 0.3));
  const batch_info info{};
  m->generator().reseed(1);
  const double before = m->evaluate(audio, info).loss;
  for (int i = 0; i < 20; ++i) {
    m->generator().reseed(1);  // the same negatives every step: a fixed objective
    const auto r = m->train_step(audio, opt, info);
    CHECK(std::isfinite(r.loss));
  }
  m->generator().reseed(1);
  CHECK(m->evaluate(audio, info).loss < before);
}
