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
