#include <doctest/doctest.h>

#include <cpc/data/normalization.hpp>
#include <cpc/data/window_sampler.hpp>

#include <cmath>
#include <map>
#include <set>

#include "audio_test_util.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

constexpr std::size_t num_speakers = 5, per_speaker = 3;

std::size_t length_of(std::size_t s, std::size_t j) {
  return 1213 + 1000 * j + 160 * s;
}
std::int32_t label_of(std::size_t s, std::size_t j, std::size_t frame) {
  return static_cast<std::int32_t>((frame * 7 + 3 * j + 11 * s) % 41);
}

// 5 speakers x 3 utterances of 1213..4853 samples; with W = 1600 the three j = 0 utterances of
// speakers 0..2 are short. Every utterance but s4/j2 has labels.
struct sampler_corpus {
  temp_dir dir;
  std::unique_ptr<speech_corpus> corpus;
  sampler_corpus() {
    std::string al;
    for (std::size_t s = 0; s < num_speakers; ++s)
      for (std::size_t j = 0; j < per_speaker; ++j) {
        std::string speaker(1, 's');
        speaker += std::to_string(s);
        const std::string id = speaker + "-c-" + std::to_string(j);
        write_fake_utterance(dir.path(), {speaker, "c", id, length_of(s, j), 16000, ".wav"});
        if (s == 4 && j == 2) continue;
        al += id;
        for (std::size_t f = 0; f < length_of(s, j) / 160; ++f) {
          al += ' ';
          al += std::to_string(label_of(s, j, f));
        }
        al += '\n';
      }
    write_bytes(dir / "alignments.txt", al);
    corpus = std::make_unique<speech_corpus>(dir.path(), speech_corpus::options{.log = nullptr});
  }
  // (speaker, j) of corpus utterance u, from its id "s<S>-c-<J>".
  std::pair<std::size_t, std::size_t> parse(std::size_t u) const {
    const auto& id = (*corpus)[u].id;
    return {static_cast<std::size_t>(id[1] - '0'), static_cast<std::size_t>(id.back() - '0')};
  }
};

// Checks every row of `b` against the corpus: audio copied from the right place (times `gain`),
// labels from frame start / 160 + f, speaker id, and the length in frames wholly inside the utterance.
void check_rows(const sampler_corpus& c, const audio_batch<float>& b, std::size_t w, float gain = 1.0f) {
  const std::size_t frames = w / 160;
  REQUIRE(b.audio.shape()[1] == w);
  REQUIRE(b.labels.shape()[1] == frames);
  REQUIRE(b.info.lengths.size() == b.size());
  REQUIRE(b.info.speakers.size() == b.size());
  REQUIRE(b.utterances.size() == b.size());
  for (std::size_t r = 0; r < b.size(); ++r) {
    const auto& utt = (*c.corpus)[b.utterances[r]];
    const auto [s, j] = c.parse(b.utterances[r]);
    const std::size_t start = b.starts[r], n = utt.samples.size();
    CHECK(start % 160 == 0);
    CHECK(b.info.speakers[r] == static_cast<std::int64_t>(utt.speaker));
    CHECK(b.info.speakers[r] == static_cast<std::int64_t>(s));  // speaker folders s0..s4 sort in order
    const std::size_t len = std::min(w, n - start);
    CHECK(b.info.lengths[r] == len / 160);  // frames, not samples
    if (n >= w) CHECK(start + w <= n);      // never crosses the end of the utterance
    for (std::size_t i = 0; i < w; ++i) {
      const float expected = i < len ? gain * utt.samples[start + i] : 0.0f;
      if (b.audio(r, i) != expected) {
        FAIL_CHECK("row " << r << " sample " << i << " differs");
        break;
      }
    }
    for (std::size_t f = 0; f < frames; ++f) {
      const bool inside = (f + 1) * 160 <= len;
      const std::int32_t expected = !inside || (s == 4 && j == 2) ? -1 : label_of(s, j, start / 160 + f);
      if (b.labels(r, f) != expected) {
        FAIL_CHECK("row " << r << " frame " << f << ": label " << b.labels(r, f) << ", expected "
                          << expected);
        break;
      }
    }
  }
}

}  // namespace

TEST_CASE("window_sampler: windows, labels and speakers line up with the utterance (uniform mode)") {
  sampler_corpus c;
  window_sampler sampler(*c.corpus, {.window = 1600, .batch_size = 16, .seed = 1});
  CHECK(sampler.batch_size() == 16);
  CHECK(sampler.frames_per_window() == 10);
  CHECK(sampler.skipped_short() == 3);
  CHECK(sampler.usable_utterances().size() == 12);
  std::uint64_t positions = 0;
  for (std::size_t s = 0; s < num_speakers; ++s)
    for (std::size_t j = 0; j < per_speaker; ++j)
      if (length_of(s, j) >= 1600) positions += (length_of(s, j) - 1600) / 160 + 1;
  CHECK(sampler.num_positions() == positions);
  audio_batch<float> b;
  std::set<std::size_t> seen_starts;
  for (int it = 0; it < 20; ++it) {
    sampler.next(b);
    REQUIRE(b.size() == 16);
    check_rows(c, b, 1600);
    for (std::size_t r = 0; r < b.size(); ++r) {
      CHECK((*c.corpus)[b.utterances[r]].samples.size() >= 1600);  // short ones skipped
      seen_starts.insert(b.starts[r]);
    }
  }
  CHECK(seen_starts.size() > 10);  // starts vary
  CHECK(*seen_starts.rbegin() > 0);
}

TEST_CASE("window_sampler: the paper's 20480-sample window on longer utterances") {
  temp_dir dir;
  write_fake_utterance(dir.path(), {"a", "1", "a-1-0", 20480 + 160 * 7 + 55});
  write_fake_utterance(dir.path(), {"b", "1", "b-1-0", 20000});  // short
  speech_corpus corpus(dir.path(), {.log = nullptr});
  window_sampler sampler(corpus, {.batch_size = 64, .seed = 9});
  CHECK(sampler.window_length() == 20480);
  CHECK(sampler.frames_per_window() == 128);
  CHECK(sampler.skipped_short() == 1);
  CHECK(sampler.num_positions() == 8);
  const auto b = sampler.next();
  CHECK(b.audio.shape() == std::array<std::size_t, 2>{64, 20480});
  CHECK(b.info.lengths == std::vector<std::size_t>(64, 128));
  std::set<std::size_t> starts(b.starts.begin(), b.starts.end());
  CHECK(starts.size() == 8);  // all 8 positions 0, 160, ..., 1120 show up in 64 draws
  CHECK(*starts.rbegin() == 1120);
  for (std::size_t r = 0; r < b.size(); ++r) CHECK(b.labels(r, 0) == -1);  // corpus has no alignments
}

TEST_CASE("window_sampler: uniform mode is uniform over window positions, not utterances") {
  sampler_corpus c;
  window_sampler sampler(*c.corpus, {.window = 1600, .batch_size = 100, .seed = 2});
  std::map<std::size_t, double> count;
  const int batches = 300;
  audio_batch<float> b;
  for (int i = 0; i < batches; ++i) {
    sampler.next(b);
    for (auto u : b.utterances) count[u] += 1;
  }
  const double draws = 100.0 * batches, total = static_cast<double>(sampler.num_positions());
  for (auto u : sampler.usable_utterances()) {
    const double p = static_cast<double>(((*c.corpus)[u].samples.size() - 1600) / 160 + 1) / total;
    const double sigma = std::sqrt(draws * p * (1 - p));
    CAPTURE(u);
    CHECK(std::abs(count[u] - draws * p) < 5 * sigma);
  }
}

TEST_CASE("window_sampler: short utterances padded with zeros and masked") {
  sampler_corpus c;
  window_sampler sampler(
      *c.corpus,
      {.window = 1600, .batch_size = 32, .short_utterances = short_utterance_policy::pad, .seed = 3});
  CHECK(sampler.skipped_short() == 0);
  CHECK(sampler.usable_utterances().size() == 15);
  audio_batch<float> b;
  std::size_t padded = 0;
  for (int it = 0; it < 20; ++it) {
    sampler.next(b);
    check_rows(c, b, 1600);
    for (std::size_t r = 0; r < b.size(); ++r) {
      const std::size_t n = (*c.corpus)[b.utterances[r]].samples.size();
      if (n >= 1600) {
        CHECK(b.info.lengths[r] == 10);
        continue;
      }
      ++padded;
      CHECK(b.starts[r] == 0);
      // 1213 + 160 s samples (s = 0, 1, 2): 7, 8 or 9 whole frames; the partly filled frame is padding.
      CHECK(b.info.lengths[r] == n / 160);
      CHECK(b.info.lengths[r] >= 7);
      CHECK(b.info.lengths[r] <= 9);
      CHECK(b.audio(r, 1599) == 0.0f);
      CHECK(b.labels(r, n / 160 - 1) != -1);
      CHECK(b.labels(r, n / 160) == -1);
    }
  }
  CHECK(padded > 0);
}

TEST_CASE("window_sampler: the same seed gives the same batches; another seed does not") {
  sampler_corpus c;
  const window_sampler::options o{.window = 1600, .batch_size = 8, .seed = 42};
  window_sampler a(*c.corpus, o), b(*c.corpus, o);
  auto o2 = o;
  o2.seed = 43;
  window_sampler d(*c.corpus, o2);
  bool all_same_as_other_seed = true;
  for (int i = 0; i < 5; ++i) {
    const auto x = a.next(), y = b.next(), z = d.next();
    CHECK(x.utterances == y.utterances);
    CHECK(x.starts == y.starts);
    CHECK(x.audio == y.audio);
    CHECK(x.labels == y.labels);
    if (x.utterances != z.utterances || x.starts != z.starts) all_same_as_other_seed = false;
  }
  CHECK_FALSE(all_same_as_other_seed);
}

TEST_CASE("window_sampler: speaker-balanced batches hold S distinct speakers x U windows") {
  sampler_corpus c;
  window_sampler sampler(*c.corpus, {.window = 1600,
                                     .mode = window_sampling::speaker_balanced,
                                     .speakers = 3,
                                     .per_speaker = 4,
                                     .seed = 5});
  CHECK(sampler.batch_size() == 12);
  CHECK(sampler.usable_speakers().size() == 5);
  std::vector<double> picked(num_speakers, 0);
  audio_batch<float> b;
  const int batches = 2000;
  for (int i = 0; i < batches; ++i) {
    sampler.next(b);
    REQUIRE(b.size() == 12);
    if (i < 20) check_rows(c, b, 1600);
    std::set<std::int64_t> distinct;
    for (std::size_t s = 0; s < 3; ++s) {
      const std::int64_t spk = b.info.speakers[s * 4];
      distinct.insert(spk);
      for (std::size_t u = 1; u < 4; ++u) CHECK(b.info.speakers[s * 4 + u] == spk);
      picked[static_cast<std::size_t>(spk)] += 1;
    }
    CHECK(distinct.size() == 3);
  }
  // Each speaker is one of the 3 in a batch with probability 3/5.
  const double p = 3.0 / 5.0, sigma = std::sqrt(batches * p * (1 - p));
  for (std::size_t s = 0; s < num_speakers; ++s) CHECK(std::abs(picked[s] - batches * p) < 5 * sigma);
  // Restricted to a subset of utterances (e.g. a split), only those appear.
  window_sampler sub(
      *c.corpus, {.window = 1600, .mode = window_sampling::speaker_balanced, .speakers = 2, .per_speaker = 3},
      {c.corpus->find("s0-c-1").value(), c.corpus->find("s3-c-2").value()});
  const auto x = sub.next();
  for (auto u : x.utterances) CHECK((u == *c.corpus->find("s0-c-1") || u == *c.corpus->find("s3-c-2")));
}

TEST_CASE("prefetching_sampler: yields exactly the wrapped sampler's batches") {
  sampler_corpus c;
  const window_sampler::options o{.window = 1600, .batch_size = 6, .seed = 77};
  window_sampler plain(*c.corpus, o);
  prefetching_sampler pre(window_sampler(*c.corpus, o));
  audio_batch<float> got;
  for (int i = 0; i < 10; ++i) {
    const auto want = plain.next();
    pre.next(got);
    CHECK(got.utterances == want.utterances);
    CHECK(got.starts == want.starts);
    CHECK(got.audio == want.audio);
    CHECK(got.labels == want.labels);
    CHECK(got.info.lengths == want.info.lengths);
    CHECK(got.info.speakers == want.info.speakers);
  }
  CHECK(pre.next().size() == 6);
}

TEST_CASE(
    "prefetching_sampler: its generator state resumes at the next unconsumed batch, as a plain sampler's") {
  sampler_corpus c;
  const window_sampler::options o{.window = 1600, .batch_size = 4, .seed = 5};
  window_sampler plain(*c.corpus, o);
  prefetching_sampler pre(window_sampler(*c.corpus, o));
  // After 3 batches (a fourth already prepared ahead), both generators say "batch 4 comes next".
  for (int i = 0; i < 3; ++i) {
    plain.next();
    pre.next();
  }
  CHECK(pre.generator().state() == plain.generator().state());
  const rng::state_type saved = pre.generator().state();
  const auto fourth = plain.next();
  // A fresh prefetching sampler restored to that state yields batch 4, then batch 5.
  prefetching_sampler resumed(window_sampler(*c.corpus, o));
  resumed.generator().set_state(saved);
  const auto got = resumed.next();
  CHECK(got.utterances == fourth.utterances);
  CHECK(got.starts == fourth.starts);
  CHECK(resumed.next().starts == plain.next().starts);
}

TEST_CASE("window_sampler: the input gain scales every sample, and nothing else") {
  sampler_corpus c;
  window_sampler plain(*c.corpus, {.window = 1600, .batch_size = 8, .seed = 4});
  window_sampler scaled(*c.corpus, {.window = 1600, .batch_size = 8, .gain = 2.5f, .seed = 4});
  const auto a = plain.next(), b = scaled.next();
  check_rows(c, b, 1600, 2.5f);
  CHECK(a.utterances == b.utterances);
  CHECK(a.labels == b.labels);
  for (std::size_t i = 0; i < a.audio.size(); ++i) REQUIRE(b.audio.data()[i] == 2.5f * a.audio.data()[i]);
}

TEST_CASE("window_sampler: option errors") {
  sampler_corpus c;
  CHECK_THROWS_WITH_AS(
      window_sampler(*c.corpus, {.window = 1000}),
      "window_sampler: expected a window that is a positive multiple of 160 samples, got 1000", config_error);
  CHECK_THROWS_AS(window_sampler(*c.corpus, {.window = 1600, .batch_size = 0}), config_error);
  CHECK_THROWS_WITH_AS(
      window_sampler(*c.corpus, {.window = 1600, .mode = window_sampling::speaker_balanced, .speakers = 6}),
      doctest::Contains("asks for 6 speakers per batch but only 5 speakers"), config_error);
  CHECK_THROWS_WITH_AS(window_sampler(*c.corpus, {.window = 160 * 100}),
                       doctest::Contains("none of the 15 utterances has 16000 samples or more"),
                       config_error);
  CHECK_THROWS_WITH_AS(window_sampler(*c.corpus, {.window = 1600}, {99}),
                       doctest::Contains("utterance index 99 out of range"), config_error);
}

TEST_CASE("input_gain: unit-rms brings the given utterances to unit RMS; none is 1; names parse both ways") {
  sampler_corpus c;
  const auto& train = c.corpus->indices(corpus_split::all);
  const float g = input_gain(*c.corpus, train, input_normalization::unit_rms);
  double sum = 0, n = 0;
  for (std::size_t u : train)
    for (float v : (*c.corpus)[u].samples) {
      sum += static_cast<double>(g * v) * (g * v);
      n += 1;
    }
  CHECK(std::sqrt(sum / n) == doctest::Approx(1.0).epsilon(1e-5));
  CHECK(g > 1.0f);  // the fake utterances are quieter than full scale
  CHECK(input_gain(*c.corpus, train, input_normalization::none) == 1.0f);
  CHECK(input_gain(*c.corpus, {}, input_normalization::unit_rms) == 1.0f);
  for (auto m : {input_normalization::none, input_normalization::unit_rms})
    CHECK(parse_input_normalization(to_string(m)) == m);
  CHECK_THROWS_WITH_AS(parse_input_normalization("peak", "--normalize"),
                       "--normalize: expected none or unit-rms, got 'peak'", config_error);
}
