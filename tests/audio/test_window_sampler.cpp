#include <doctest/doctest.h>

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

// Checks every row of `b` against the corpus: audio copied from the right place, labels from
// frame start / 160 + f, speaker, mask and length.
void check_rows(const sampler_corpus& c, const window_batch& b, std::size_t w) {
  const std::size_t frames = w / 160;
  REQUIRE(b.audio.shape()[1] == w);
  REQUIRE(b.labels.shape()[1] == frames);
  for (std::size_t r = 0; r < b.size(); ++r) {
    const auto& utt = (*c.corpus)[b.utterances[r]];
    const auto [s, j] = c.parse(b.utterances[r]);
    const std::size_t start = b.starts[r], n = utt.samples.size();
    CHECK(start % 160 == 0);
    CHECK(b.speakers[r] == utt.speaker);
    CHECK(b.speakers[r] == s);  // speaker folders s0..s4 sort in order
    const std::size_t len = std::min(w, n - start);
    CHECK(b.lengths[r] == len);
    if (n >= w) CHECK(start + w <= n);  // never crosses the end of the utterance
    for (std::size_t i = 0; i < w; ++i) {
      const float expected = i < len ? utt.samples[start + i] : 0.0f;
      if (b.audio(r, i) != expected) {
        FAIL_CHECK("row " << r << " sample " << i << " differs");
        break;
      }
    }
    for (std::size_t f = 0; f < frames; ++f) {
      const bool inside = (f + 1) * 160 <= len;
      CHECK(b.mask(r, f) == (inside ? 1.0f : 0.0f));
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
  window_batch b;
  std::set<std::size_t> seen_starts;
  for (int it = 0; it < 20; ++it) {
    sampler.sample(b);
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
  const auto b = sampler.sample();
  CHECK(b.audio.shape() == std::array<std::size_t, 2>{64, 20480});
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
  window_batch b;
  for (int i = 0; i < batches; ++i) {
    sampler.sample(b);
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
  window_batch b;
  std::size_t padded = 0;
  for (int it = 0; it < 20; ++it) {
    sampler.sample(b);
    check_rows(c, b, 1600);
    for (std::size_t r = 0; r < b.size(); ++r) {
      const std::size_t n = (*c.corpus)[b.utterances[r]].samples.size();
      if (n >= 1600) continue;
      ++padded;
      CHECK(b.starts[r] == 0);
      CHECK(b.lengths[r] == n);
      CHECK(b.audio(r, 1599) == 0.0f);
      CHECK(b.mask(r, n / 160 - 1) == 1.0f);
      CHECK(b.mask(r, n / 160) == 0.0f);  // the partly filled frame is masked
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
    const auto x = a.sample(), y = b.sample(), z = d.sample();
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
  window_batch b;
  const int batches = 2000;
  for (int i = 0; i < batches; ++i) {
    sampler.sample(b);
    REQUIRE(b.size() == 12);
    if (i < 20) check_rows(c, b, 1600);
    std::set<std::size_t> distinct;
    for (std::size_t s = 0; s < 3; ++s) {
      const std::size_t spk = b.speakers[s * 4];
      distinct.insert(spk);
      for (std::size_t u = 1; u < 4; ++u) CHECK(b.speakers[s * 4 + u] == spk);
      picked[spk] += 1;
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
  const auto x = sub.sample();
  for (auto u : x.utterances) CHECK((u == *c.corpus->find("s0-c-1") || u == *c.corpus->find("s3-c-2")));
}

TEST_CASE("prefetching_sampler: yields exactly the wrapped sampler's batches") {
  sampler_corpus c;
  const window_sampler::options o{.window = 1600, .batch_size = 6, .seed = 77};
  window_sampler plain(*c.corpus, o);
  prefetching_sampler pre(window_sampler(*c.corpus, o));
  window_batch got;
  for (int i = 0; i < 10; ++i) {
    const auto want = plain.sample();
    pre.next(got);
    CHECK(got.utterances == want.utterances);
    CHECK(got.starts == want.starts);
    CHECK(got.audio == want.audio);
    CHECK(got.labels == want.labels);
    CHECK(got.mask == want.mask);
  }
  CHECK(pre.next().size() == 6);
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
