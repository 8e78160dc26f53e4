// The library's path from a speech corpus to cpc::train (issue 15): the recipe, its checkpoint
// metadata, the sampler's batches reaching the model unchanged (lengths in frames, speaker ids,
// the input gain), prefetching that changes nothing but the wait, resuming.
#include <doctest/doctest.h>

#include <cpc/data/window_sampler.hpp>
#include <cpc/model/model.hpp>
#include <cpc/train/speech.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

#include "audio_test_util.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

/// A small audio model with the paper's 160-sample frames: kernels 10, 8, 8, strides 5, 4, 8,
/// paddings 3, 2, 0 give 10 frames per 1600-sample window.
/// (`name` and `sample_rate`, which presets carry for checkpoints, are not needed by the model.)
struct test_preset {
  static constexpr std::size_t window_samples = 1600;
  static constexpr std::size_t latent_channels = 16;
  static constexpr std::size_t context_channels = 8;
  static constexpr std::size_t autoregressor_layers = 1;
  static constexpr std::size_t prediction_steps = 3;
  static constexpr std::size_t negatives = 4;
  static constexpr std::array<std::size_t, 3> kernels{10, 8, 8};
  static constexpr std::array<std::size_t, 3> strides{5, 4, 8};
  static constexpr std::array<std::size_t, 3> paddings{3, 2, 0};
};
using test_model = audio_model<test_preset>;

/// 4 speakers x 3 utterances of 1000 + 700 j + 160 s samples (j = 0 ones are shorter than a
/// window); utterance 2 of each speaker is in the test split.
struct training_corpus {
  temp_dir dir;
  std::unique_ptr<speech_corpus> corpus;
  training_corpus() {
    std::ostringstream train, test;  // (string operator+ chains trip GCC 12's bogus -Wrestrict here)
    for (int s = 0; s < 4; ++s)
      for (int j = 0; j < 3; ++j) {
        std::ostringstream spk, id;
        spk << 's' << s;
        id << spk.str() << "-c-" << j;
        write_fake_utterance(dir.path(), {spk.str(), "c", id.str(),
                                          static_cast<std::size_t>(1000 + 700 * j + 160 * s), 16000, ".wav"});
        (j == 2 ? test : train) << id.str() << '\n';
      }
    write_bytes(dir / "train.txt", train.str());
    write_bytes(dir / "test.txt", test.str());
    corpus = std::make_unique<speech_corpus>(dir.path(), speech_corpus::options{.log = nullptr});
  }
};

test_model::options options_of(const speech_recipe& r) {
  test_model::options o;
  r.apply(o);
  return o;
}

speech_run_options quiet(std::uint64_t steps, std::ostream& log) {
  speech_run_options run;
  run.train.max_steps = steps;
  run.train.out = &log;
  run.train.progress = false;
  return run;
}

}  // namespace

TEST_CASE("speech_recipe: metadata round trip, old checkpoints, describe, and typed errors") {
  speech_recipe r;
  r.model = "small";
  r.steps_ahead = 8;
  r.negatives = negative_policy::same_speaker_other_sequences;
  r.batch = 8;
  r.speakers_per_batch = 2;
  r.short_utterances = short_utterance_policy::pad;
  r.gain = 7.25f;
  r.learning_rate = 5e-4;
  r.warmup = 50;
  r.clip = 2.5;
  r.head_std = 0.01;
  r.seed = 9;
  const auto m = r.metadata();
  CHECK(m.at("negatives") == "same_speaker_other_sequences");
  CHECK(m.at("lr") == "5e-04");  // shortest round-trip form
  CHECK(m.at("gain") == "7.25");
  const speech_recipe back = speech_recipe::from_metadata(m, "ckpt");
  CHECK(back.metadata() == m);
  CHECK(back.describe(12) == r.describe(12));
  CHECK(
      r.describe(12) ==
      "negatives same_speaker_other_sequences (same speaker, excluding the current sequence), 8 windows per "
      "step "
      "from 2 speakers x 4, short utterances padded and masked, K = 8, Adam lr 5e-04 with 50 warm-up steps, "
      "clip 2.5, head std 0.01, input unit-rms (gain 7.25), seed 9");
  // A checkpoint of the version before recipes holds only model and gain: defaults for the rest.
  const auto old = speech_recipe::from_metadata({{"model", "paper"}, {"gain", "3.5"}}, "old");
  CHECK(old.gain == 3.5f);
  CHECK(old.negatives == negative_policy::batch);
  CHECK(old.steps_ahead == 0);
  CHECK(old.learning_rate == 2e-4);
  CHECK_THROWS_WITH_AS(speech_recipe::from_metadata({{"model", "paper"}}, "x.safetensors"),
                       "x.safetensors: not a cpc-speech checkpoint (metadata 'model' and 'gain' missing)",
                       io_error);
  CHECK_THROWS_WITH_AS(speech_recipe::from_metadata({{"model", "paper"}, {"gain", "-1"}}, "x"),
                       "x: metadata 'gain': expected a number > 0, got '-1'", io_error);
  CHECK_THROWS_WITH_AS(
      speech_recipe::from_metadata({{"model", "paper"}, {"gain", "1"}, {"batch", "eight"}}, "x"),
      "x: metadata 'batch': expected a whole number, got 'eight'", io_error);
  CHECK_THROWS_AS(speech_recipe::from_metadata({{"model", "huge"}, {"gain", "1"}}, "x"), io_error);
  // check(): the first bad field by its option name.
  speech_recipe bad;
  bad.speakers_per_batch = 3;
  CHECK_THROWS_WITH_AS(bad.check(),
                       "--speakers-per-batch: expected a divisor of --batch 8 (0 = uniform windows), got 3",
                       config_error);
  bad.speakers_per_batch = 0;
  bad.negatives = negative_policy::same_speaker_other_sequences;
  CHECK_THROWS_WITH_AS(bad.check(),
                       doctest::Contains("expected speaker-balanced batches with at least 2 windows"),
                       config_error);
  bad = {};
  bad.learning_rate = 0;
  CHECK_THROWS_WITH_AS(bad.check(), "--lr: expected a learning rate > 0, got 0", config_error);
  // apply(): the recipe's choices land in the model's options.
  test_model::options o = options_of(r);
  CHECK(o.seed == 9);
  CHECK(o.loss.steps == 8);
  CHECK(o.loss.policy == negative_policy::same_speaker_other_sequences);
  CHECK(o.loss.init_scale == 0.01);
  CHECK(options_of(speech_recipe{}).loss.steps == test_preset::prediction_steps);
}

TEST_CASE(
    "train_speech: prefetching gives the same run as drawing in the step; the checkpoint carries the "
    "recipe") {
  training_corpus c;
  speech_recipe r;
  r.batch = 4;
  r.speakers_per_batch = 2;
  r.negatives = negative_policy::same_speaker;
  r.warmup = 2;
  r.learning_rate = 1e-3;
  r.prepare(*c.corpus);
  CHECK(r.gain == doctest::Approx(1 / (0.3 / std::sqrt(2.0))).epsilon(0.01));  // tones of amplitude 0.3
  temp_dir out;
  std::ostringstream log;
  auto run = quiet(6, log);
  run.train.checkpoint_path = out / "a.safetensors";
  test_model a(options_of(r)), b(options_of(r));
  const auto ra = train_speech(a, *c.corpus, r, run);
  run.prefetch = false;
  run.train.checkpoint_path = out / "b.safetensors";
  const auto rb = train_speech(b, *c.corpus, r, run);
  CHECK(ra.steps == 6);
  CHECK(ra.last.loss == rb.last.loss);
  CHECK(ra.last.accuracy == rb.last.accuracy);
  // 4 short train utterances (j = 0 of each speaker) are skipped, and said so.
  CHECK(log.str().find("4 train utterances are shorter than a window") != std::string::npos);
  // Same-speaker negatives drawn from a speaker-balanced batch: each anchor's negatives come from
  // the rows of its speaker (rows 0-1 and 2-3).
  const auto& idx = a.loss().sampler().indices();
  for (std::size_t b0 = 0; b0 < 4; ++b0)
    for (std::size_t n = 0; n < idx.shape()[3]; ++n)
      REQUIRE(static_cast<std::size_t>(idx(0, b0, 0, n)) / 10 / 2 == b0 / 2);
  const auto saved = read_speech_recipe(out / "a.safetensors");
  CHECK(saved.metadata() == r.metadata());
  CHECK(load_safetensors(out / "a.safetensors").metadata.at("step") == "6");
}

TEST_CASE("train_speech: resuming continues the run exactly (windows, negatives and schedule)") {
  training_corpus c;
  speech_recipe r;
  r.batch = 4;
  r.warmup = 3;
  r.learning_rate = 1e-3;
  r.prepare(*c.corpus);
  temp_dir out;
  std::ostringstream log;
  auto run = quiet(5, log);
  run.train.checkpoint_path = out / "whole.safetensors";
  test_model whole(options_of(r));
  const auto all = train_speech(whole, *c.corpus, r, run);
  run.train.checkpoint_path = out / "split.safetensors";
  run.train.max_steps = 2;
  test_model first(options_of(r));
  train_speech(first, *c.corpus, r, run);
  run.resume = true;
  run.train.max_steps = 5;
  test_model second(options_of(r));
  const auto rest = train_speech(second, *c.corpus, r, run);
  CHECK(rest.steps == 5);
  CHECK(rest.steps_run == 3);
  CHECK(rest.last.loss == all.last.loss);
}

TEST_CASE("train_speech: short utterances padded: their rows reach the loss with their frame lengths") {
  training_corpus c;
  speech_recipe r;
  r.batch = 8;
  r.short_utterances = short_utterance_policy::pad;
  r.negatives = negative_policy::same_sequence;
  r.prepare(*c.corpus);
  std::ostringstream log;
  test_model m(options_of(r));
  train_speech(m, *c.corpus, r, quiet(4, log));
  CHECK(log.str().find("shorter than a window") == std::string::npos);
  // The 4th batch, drawn again by a sampler with the recipe's options: a row of L valid frames has
  // negatives exactly for its anchors t < L - 1 (k = 1), and they lie inside its own first L frames.
  window_sampler again(*c.corpus, r.sampler_options(test_preset::window_samples),
                       c.corpus->indices(corpus_split::train));
  audio_batch<float> batch;
  for (int i = 0; i < 4; ++i) again.next(batch);
  const auto& idx = m.loss().sampler().indices();
  std::size_t padded_rows = 0;
  for (std::size_t b = 0; b < 8; ++b) {
    const std::size_t len = batch.info.lengths[b];
    padded_rows += len < 10;
    for (std::size_t t = 0; t < 10; ++t)
      for (std::size_t n = 0; n < idx.shape()[3]; ++n) {
        const std::int32_t v = idx(0, b, t, n);
        REQUIRE((v == -1) == (t + 1 >= len));
        if (v >= 0)
          REQUIRE((static_cast<std::size_t>(v) / 10 == b && static_cast<std::size_t>(v) % 10 < len));
      }
  }
  CHECK(padded_rows > 0);
}

TEST_CASE("train_speech: a model whose frames are not the corpus's frames is refused") {
  training_corpus c;
  speech_recipe r;
  r.prepare(*c.corpus);
  std::ostringstream log;
  audio_model<presets::audio_tiny> tiny;  // 32-sample frames, 512-sample windows
  CHECK_THROWS_WITH_AS(
      train_speech(tiny, *c.corpus, r, quiet(1, log)),
      "train_speech: the model makes 16 frames of a 512-sample window, expected one per corpus "
      "frame of 160 samples (3)",
      config_error);
}

TEST_CASE(
    "streamed_features: each utterance's contexts equal one encode of the whole utterance (gain applied)") {
  training_corpus c;
  test_model m;
  const std::vector<std::size_t> utts{1, 5, 10};
  const float gain = 3.0f;
  const auto f = streamed_features(m, *c.corpus, utts, gain);
  REQUIRE(f.rows.size() == utts.size());
  CHECK(f.utterances == utts);
  CHECK(f.dims == test_preset::context_channels);
  for (std::size_t i = 0; i < utts.size(); ++i) {
    CAPTURE(i);
    const auto& s = (*c.corpus)[utts[i]].samples;
    tensor2<float> audio = tensor2<float>::from_shape({1, s.size()});
    for (std::size_t k = 0; k < s.size(); ++k) audio(0, k) = gain * s[k];
    tensor3<float> z, ctx;
    m.encode(audio, z, ctx);
    REQUIRE(f.rows[i].shape()[0] == ctx.shape()[1]);
    REQUIRE(f.rows[i].shape()[0] == s.size() / 160);
    double worst = 0;
    for (std::size_t t = 0; t < ctx.shape()[1]; ++t)
      for (std::size_t d = 0; d < f.dims; ++d)
        worst = std::max(worst, static_cast<double>(std::abs(f.rows[i](t, d) - ctx(0, t, d))));
    CHECK(worst <= 1e-5);
  }
}
