#include <doctest/doctest.h>

#include <cpc/data/corpus.hpp>
#include <cpc/eval/speech_probes.hpp>

#include <sstream>
#include <string>

#include "audio_test_util.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

constexpr std::size_t frames = 200;  // 2 s at 16 kHz: one 1.28 s window per utterance

std::int32_t phone_of(std::size_t frame) {
  return static_cast<std::int32_t>((frame / 10) % 3);
}

// Two speakers with two utterances each (first: train, second: test). `labels`: "all" writes
// alignments for every utterance, "train only" leaves the test utterances at -1, "none" writes none.
struct probe_corpus {
  temp_dir dir;
  explicit probe_corpus(const std::string& labels) {
    std::ostringstream al;  // (string operator+ chains trip GCC 12's bogus -Wrestrict here)
    for (const char* spk : {"1", "2"})
      for (int i = 0; i < 2; ++i) {
        std::ostringstream id;
        id << spk << "-0-" << i;
        write_fake_utterance(dir.path(), {spk, "0", id.str(), frames * 160, 16000, ".wav"});
        al << id.str();
        for (std::size_t f = 0; f < frames; ++f)
          al << ' ' << (labels == "train only" && i == 1 ? -1 : phone_of(f));
        al << '\n';
      }
    write_bytes(dir / "train.txt", "1-0-0\n2-0-0\n");
    write_bytes(dir / "test.txt", "1-0-1\n2-0-1\n");
    if (labels != "none") {
      write_bytes(dir / "alignments.txt", al.str());
      write_bytes(dir / "phones.txt", "a\nb\nc\n");
    }
  }
};

// Features that give the answer away: one-hot phone (from the frame index) and one-hot speaker.
utterance_features one_hot_features(const speech_corpus& c, const std::vector<std::size_t>& utts) {
  utterance_features f;
  f.dims = 5;
  for (std::size_t u : utts) {
    tensor2<float> x = xt::zeros<float>({frames, f.dims});
    for (std::size_t t = 0; t < frames; ++t) {
      x(t, static_cast<std::size_t>(phone_of(t))) = 1;
      x(t, 3 + c[u].speaker) = 1;
    }
    f.utterances.push_back(u);
    f.rows.push_back(std::move(x));
  }
  return f;
}

probe_report probe(const speech_corpus& c) {
  probe_settings s;
  s.probe.learning_rate = 0.05;
  s.probe.batch_size = 64;
  return run_speech_probes(c, one_hot_features(c, c.indices(corpus_split::train)),
                           one_hot_features(c, c.indices(corpus_split::test)), s);
}

}  // namespace

TEST_CASE("run_speech_probes: with phone labels the phone probe is measured (separable features: 1.0)") {
  probe_corpus d("all");
  speech_corpus c(d.dir.path(), {.log = nullptr});
  const auto r = probe(c);
  CHECK(r.phone_labelled);
  CHECK(r.phone_frame == doctest::Approx(1.0));
  CHECK(r.speaker_frame == doctest::Approx(1.0));
  CHECK(r.speaker_window_mean == doctest::Approx(1.0));
}

TEST_CASE(
    "run_speech_probes: without phone labels phone_labelled is false and phone_frame 0, speakers still run") {
  probe_corpus d("none");
  speech_corpus c(d.dir.path(), {.log = nullptr});
  REQUIRE_FALSE(c.has_alignments());
  const auto r = probe(c);
  CHECK_FALSE(r.phone_labelled);
  CHECK(r.phone_frame == 0.0);
  CHECK(r.speaker_frame == doctest::Approx(1.0));
  CHECK(r.speaker_short_mean == doctest::Approx(1.0));
}

TEST_CASE("run_speech_probes: alignments without a labelled test frame are n/a, not an error") {
  // Used to throw linear_probe's config_error "no labelled rows" from the test-set accuracy.
  probe_corpus d("train only");
  speech_corpus c(d.dir.path(), {.log = nullptr});
  REQUIRE(c.has_alignments());
  const auto r = probe(c);
  CHECK_FALSE(r.phone_labelled);
  CHECK(r.phone_frame == 0.0);
  CHECK(r.speaker_frame == doctest::Approx(1.0));
}

TEST_CASE("run_speech_probes: the phone chance line is the majority class's rate on the test frames") {
  // phone_of(f) = (f / 10) mod 3 over 200 frames: classes 0 and 1 have 70 frames each, class 2 60;
  // the tie goes to class 0, which is 70 / 200 of the test frames.
  probe_corpus d("all");
  speech_corpus c(d.dir.path(), {.log = nullptr});
  const auto r = probe(c);
  CHECK(r.phone_majority == doctest::Approx(0.35));
  CHECK(r.speakers == 2);
  CHECK(r.speakers_probed);
}

TEST_CASE("run_speech_probes: with one speaker the speaker probes are not run (n/a, not 100%)") {
  temp_dir dir;
  std::ostringstream al;
  for (int i = 0; i < 2; ++i) {
    std::ostringstream name;
    name << "1-0-" << i;
    const std::string id = name.str();
    write_fake_utterance(dir.path(), {"1", "0", id, frames * 160, 16000, ".wav"});
    al << id;
    for (std::size_t f = 0; f < frames; ++f) al << ' ' << phone_of(f);
    al << '\n';
  }
  write_bytes(dir / "alignments.txt", al.str());
  write_bytes(dir / "train.txt", "1-0-0\n");
  write_bytes(dir / "test.txt", "1-0-1\n");
  speech_corpus c(dir.path(), {.log = nullptr});
  const auto r = probe(c);
  CHECK(r.phone_labelled);
  CHECK(r.phone_frame == doctest::Approx(1.0));
  CHECK(r.speakers == 1);
  CHECK_FALSE(r.speakers_probed);
  CHECK(r.speaker_frame == 0.0);
  CHECK(r.speaker_window_mean == 0.0);
}

TEST_CASE("pooled_windows: non-overlapping windows from frame 0, mean or last frame, labelled by speaker") {
  probe_corpus d("all");
  speech_corpus c(d.dir.path(), {.log = nullptr});
  const auto f = one_hot_features(c, c.indices(corpus_split::train));
  // 200 frames: windows of 64 frames at 0, 64, 128 (the tail of 8 frames is dropped).
  const auto mean = pooled_windows(c, f, 64, false), last = pooled_windows(c, f, 64, true);
  REQUIRE(mean.x.shape() == std::array<std::size_t, 2>{6, 5});
  CHECK(mean.y == std::vector<int>{0, 0, 0, 1, 1, 1});
  // Window 0 covers frames 0..63: phone 0 in frames 0-9, 30-39, 60-63 = 24 of 64.
  CHECK(mean.x(0, 0) == doctest::Approx(24.0 / 64));
  CHECK(mean.x(0, 3) == doctest::Approx(1.0));  // speaker 0's one-hot
  // Its last frame, 63, is phone (63 / 10) mod 3 = 0.
  CHECK(last.x(0, 0) == 1.0f);
  CHECK(last.x(0, 1) == 0.0f);
}

TEST_CASE("speech_abx: phone one-hot features give 0 error, constant features 0.5; no labels is refused") {
  // Two speakers, 2 s each; 10-frame phones a b a c a b a c ...: b and c share the context a_a.
  temp_dir dir;
  std::ostringstream al;
  const auto phone = [](std::size_t f) {
    return static_cast<std::int32_t>((f / 10) % 2 == 0 ? 0 : (f / 20) % 2 + 1);
  };
  for (const char* spk : {"1", "2"}) {
    const std::string id = std::string(spk) + "-0-0";
    write_fake_utterance(dir.path(), {spk, "0", id, frames * 160, 16000, ".wav"});
    al << id;
    for (std::size_t f = 0; f < frames; ++f) al << ' ' << phone(f);
    al << '\n';
  }
  write_bytes(dir / "alignments.txt", al.str());
  write_bytes(dir / "phones.txt", "sil\nb\nc\n");
  speech_corpus c(dir.path(), {.log = nullptr});
  const auto utts = c.indices(corpus_split::all);
  REQUIRE(utts.size() == 2);
  utterance_features one_hot, constant;
  one_hot.dims = constant.dims = 3;
  for (std::size_t u : utts) {
    tensor2<float> x = xt::zeros<float>({frames, std::size_t{3}});
    for (std::size_t t = 0; t < frames; ++t) x(t, static_cast<std::size_t>(phone(t))) = 1;
    one_hot.utterances.push_back(u);
    one_hot.rows.push_back(std::move(x));
    constant.utterances.push_back(u);
    constant.rows.push_back(xt::ones<float>({frames, std::size_t{3}}));
  }
  const auto r = speech_abx(c, one_hot, {});
  CHECK(r.items > 0);
  CHECK(r.within == doctest::Approx(0.0));
  CHECK(r.across == doctest::Approx(0.0));
  const auto flat = speech_abx(c, constant, {});
  CHECK(flat.within == doctest::Approx(0.5));
  CHECK(flat.across == doctest::Approx(0.5));

  probe_corpus unlabelled("none");
  speech_corpus u(unlabelled.dir.path(), {.log = nullptr});
  CHECK_THROWS_WITH_AS(speech_abx(u, one_hot_features(u, u.indices(corpus_split::all)), {}),
                       doctest::Contains("no labelled triphones"), config_error);
}
