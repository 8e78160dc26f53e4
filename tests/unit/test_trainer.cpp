// The one trainer (issue 15): cpc::train takes each model's own batch type, from a sampler object
// (`next(batch&)`) or a callable, trains the image model as it trains the audio model, and
// measures how long each step waited for its data.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cpc/data/image_sampler.hpp>
#include <cpc/eval/image_features.hpp>
#include <cpc/eval/pca.hpp>
#include <cpc/model/image_model.hpp>
#include <cpc/model/model.hpp>
#include <cpc/optim/adam.hpp>
#include <cpc/train/trainer.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace cpc;
namespace fs = std::filesystem;

namespace {

using tiny_audio = model<presets::audio_tiny, strided_conv_encoder, gru, info_nce, float>;
using tiny_image = cpc_image_model<presets::image_tiny>;

static_assert(trainable_model<tiny_audio>);
static_assert(trainable_model<tiny_image>);
static_assert(std::same_as<tiny_audio::batch_type, audio_batch<float>>);
static_assert(std::same_as<tiny_image::batch_type, image_batch<float>>);
static_assert(batch_source<image_sampler, image_batch<float>>);
static_assert(!batch_source<image_sampler, audio_batch<float>>);

/// `n` images 28x28x1 whose pixel (y, x) of image i is ((7 i + 3 y + x) mod 11) / 10.
tensor4<float> pattern_images(std::size_t n) {
  tensor4<float> im = xt::zeros<float>({n, std::size_t{28}, std::size_t{28}, std::size_t{1}});
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t y = 0; y < 28; ++y)
      for (std::size_t x = 0; x < 28; ++x)
        im(i, y, x, 0) = static_cast<float>((7 * i + 3 * y + x) % 11) / 10.0f;
  return im;
}

fs::path temp_file(const std::string& name) {
  return fs::temp_directory_path() / ("cpc_test_trainer_" + std::to_string(::getpid()) + "_" + name);
}

}  // namespace

TEST_CASE("image_sampler: every image once per epoch, in a new order each epoch; rows copy their image") {
  const tensor4<float> images = pattern_images(10);
  image_sampler s(images, {.batch_size = 4, .seed = 3});
  image_batch<float> b;
  std::vector<std::size_t> first, second;
  for (int i = 0; i < 2; ++i) {  // epoch 1: 2 batches of 4 (the last 2 images wait for the next epoch)
    s.next(b);
    REQUIRE(b.images.shape() == std::array<std::size_t, 4>{4, 28, 28, 1});
    REQUIRE(b.indices.size() == 4);
    for (std::size_t r = 0; r < 4; ++r)
      for (std::size_t p = 0; p < 28 * 28; ++p)
        REQUIRE(b.images.data()[r * 784 + p] == images.data()[b.indices[r] * 784 + p]);
    first.insert(first.end(), b.indices.begin(), b.indices.end());
  }
  for (int i = 0; i < 2; ++i) {
    s.next(b);
    second.insert(second.end(), b.indices.begin(), b.indices.end());
  }
  CHECK(std::set<std::size_t>(first.begin(), first.end()).size() == 8);  // no repeats inside an epoch
  CHECK(std::set<std::size_t>(second.begin(), second.end()).size() == 8);
  CHECK(first != second);
  CHECK_THROWS_WITH_AS(image_sampler(images, {.batch_size = 11}),
                       "image_sampler: expected 1 to 10 images per batch, got 11", config_error);
  CHECK_THROWS_AS(image_sampler(images, {.batch_size = 0}), config_error);
}

TEST_CASE("train: the image model trains through cpc::train from an image_sampler; CSV and checkpoint") {
  const tensor4<float> images = pattern_images(64);
  tiny_image m;
  adam<float> opt(m.parameters(), {.learning_rate = 3e-3});
  image_sampler source(images, {.batch_size = 8, .seed = 1});
  const fs::path csv = temp_file("image.csv"), ckpt = temp_file("image.safetensors");
  train_options o;
  o.max_steps = 30;
  o.csv_path = csv;
  o.checkpoint_path = ckpt;
  o.progress = false;
  const train_summary s = train(m, opt, constant_lr{3e-3}, source, o);
  CHECK(s.steps == 30);
  CHECK(s.steps_run == 30);
  CHECK(opt.steps() == 30);
  REQUIRE(s.last.accuracy.size() == presets::image_tiny::prediction_steps);
  CHECK(s.left_chance);  // ln(5) = 1.61 at chance with N = 4
  CHECK(s.last.loss < 0.98 * s.last.log_candidates);
  std::ifstream in(csv);
  std::string header, line;
  std::getline(in, header);
  CHECK(header == "step,seconds,lr,loss,accuracy_mean,grad_norm,data_seconds,accuracy_1,accuracy_2");
  std::size_t rows = 0;
  while (std::getline(in, line)) ++rows;
  CHECK(rows == 30);
  // The checkpoint holds the image model: a fresh model loads it and encodes the same latents.
  tiny_image again;
  adam<float> opt2(again.parameters(), {});
  load_checkpoint(ckpt, again, opt2);
  CHECK(opt2.steps() == 30);
  const auto a = encode_image_latents(m, images, 5), b = encode_image_latents(again, images, 5);
  CHECK(a.mean == b.mean);
  CHECK(a.grid == b.grid);
  fs::remove(csv);
  fs::remove(ckpt);
}

TEST_CASE("train: a callable source and a sampler object give the same run; the data wait is measured") {
  const tensor4<float> images = pattern_images(40);
  train_options o;
  o.max_steps = 6;
  o.progress = false;
  tiny_image a, b;
  adam<float> oa(a.parameters(), {.learning_rate = 1e-3}), ob(b.parameters(), {.learning_rate = 1e-3});
  image_sampler sa(images, {.batch_size = 4, .seed = 2}), sb(images, {.batch_size = 4, .seed = 2});
  const auto ra = train(a, oa, constant_lr{1e-3}, sa, o);
  // A source that takes 30 ms per batch: the summary counts the wait, the step does not hide it.
  const auto slow = [&](image_batch<float>& batch) {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    sb.next(batch);
  };
  const auto rb = train(b, ob, constant_lr{1e-3}, slow, o);
  CHECK(ra.last.loss == rb.last.loss);
  CHECK(rb.data_seconds >= 6 * 0.030);
  CHECK(rb.data_seconds <= rb.seconds);
  CHECK(ra.data_seconds < rb.data_seconds);
}

TEST_CASE("train: the audio model takes audio_batch, and its lengths and speaker ids reach the loss") {
  tiny_audio::options opt;
  opt.loss.policy = negative_policy::same_speaker;
  tiny_audio m(opt);
  adam<float> adam_opt(m.parameters(), {.learning_rate = 1e-3});
  rng gen(5);
  std::ostringstream log;
  train_options o;
  o.max_steps = 3;
  o.out = &log;
  o.progress_every = 1;
  const auto source = [&](audio_batch<float>& b) {
    b.audio.resize({std::size_t{4}, std::size_t{512}});
    for (auto& v : b.audio) v = static_cast<float>(0.1 * gen.normal());
    b.info.lengths = {16, 9, 16, 12};
    b.info.speakers = {3, 3, 8, 8};
  };
  const auto s = train(m, adam_opt, constant_lr{1e-3}, source, o);
  CHECK(s.steps == 3);
  // Same-speaker negatives of items 0 and 1 lie in items 0 and 1, never past item 1's 9 frames.
  const auto& idx = m.loss().sampler().indices();
  for (std::size_t t = 0; t + 1 < 9; ++t)
    for (std::size_t n = 0; n < idx.shape()[3]; ++n) {
      const auto v = static_cast<std::size_t>(idx(0, 1, t, n));
      REQUIRE(v / 16 <= 1);
      REQUIRE((v / 16 == 0 || v % 16 < 9));
    }
  CHECK(log.str().find("step 3/3") != std::string::npos);
  CHECK(log.str().find("data wait") != std::string::npos);
  // The wrong number of lengths is the loss's error, not a silent default.
  const auto bad = [&](audio_batch<float>& b) {
    source(b);
    b.info.lengths = {16, 9};
  };
  o.max_steps = 4;
  CHECK_THROWS_WITH_AS(train(m, adam_opt, constant_lr{1e-3}, bad, o), doctest::Contains("lengths"),
                       config_error);
}

TEST_CASE("principal_components: recovers the axis of largest variance, with a fixed sign") {
  // Points along (1, 2, 2) / 3 with spread 10, plus small noise in two other directions.
  rng gen(1);
  const std::size_t n = 500;
  tensor2<float> x = xt::zeros<float>({n, std::size_t{3}});
  std::vector<double> along(n);
  for (std::size_t i = 0; i < n; ++i) {
    along[i] = 10 * gen.normal();
    const double a = 0.3 * gen.normal(), b = 0.3 * gen.normal();
    x(i, 0) = static_cast<float>(along[i] / 3 + 2 * a / 3 + 2 * b / 3 + 5);
    x(i, 1) = static_cast<float>(2 * along[i] / 3 + a / 3 - 2 * b / 3 - 1);
    x(i, 2) = static_cast<float>(2 * along[i] / 3 - 2 * a / 3 + b / 3);
  }
  const tensor2<double> p = principal_components(x, 2, false);
  REQUIRE(p.shape() == std::array<std::size_t, 2>{n, 2});
  double mean_along = 0;
  for (double v : along) mean_along += v / static_cast<double>(n);
  // The first score is the coordinate along the axis (centred), up to noise; the sign puts the
  // largest entry of (1, 2, 2) / 3 positive, so scores follow `along`.
  double err = 0, var2 = 0;
  for (std::size_t i = 0; i < n; ++i) {
    err = std::max(err, std::abs(p(i, 0) - (along[i] - mean_along)));
    var2 += p(i, 1) * p(i, 1) / static_cast<double>(n);
  }
  CHECK(err < 0.2);
  CHECK(std::sqrt(var2) == doctest::Approx(0.3).epsilon(0.15));
  CHECK_THROWS_WITH_AS(
      principal_components(x, 4),
      "principal_components: expected 1 <= k <= 3 components of at least 2 rows, got k = 4 of "
      "500 rows",
      config_error);
}

TEST_CASE("nearest_neighbours: cosine of standardised features; a point's nearest is itself") {
  tensor2<float> base{{1, 0}, {0, 1}, {1, 1}, {-1, 0}};
  const auto nn = nearest_neighbours(base, base, 2);
  REQUIRE(nn.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) CHECK(nn[i][0] == i);
  CHECK(nearest_neighbours(base, base, 10)[0].size() == 4);  // k is capped at the base's size
  // After standardising with the base's statistics, (3, 3) points the way (1, 1) does.
  tensor2<float> query{{3, 3}};
  CHECK(nearest_neighbours(base, query, 1)[0] == std::vector<std::size_t>{2});
  tensor2<float> wrong = xt::zeros<float>({1, 3});
  CHECK_THROWS_AS(nearest_neighbours(base, wrong, 1), shape_error);
}

TEST_CASE("with_audio_preset: names pick the compile-time preset; others are a config_error") {
  const auto channels = [](auto preset) { return decltype(preset)::latent_channels; };
  CHECK(presets::with_audio_preset("paper", channels) == 512);
  CHECK(presets::with_audio_preset("small", channels) == 256);
  CHECK_THROWS_WITH_AS(presets::with_audio_preset("tiny", channels, "--model"),
                       "--model: expected paper or small, got 'tiny'", config_error);
}
