#include <doctest/doctest.h>

#include <cpc/data/negative_sampler.hpp>

#include <map>
#include <set>

using namespace cpc;

namespace {
// Calls f(k, b, t, n, index) for every drawn negative of anchors with a term.
template <class F>
void for_each_draw(const negative_sampler& s, const std::vector<std::size_t>& len, F&& f) {
  const auto& idx = s.indices();
  const std::size_t K = idx.shape()[0], B = idx.shape()[1], T = idx.shape()[2], N = idx.shape()[3];
  for (std::size_t k = 1; k <= K; ++k)
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t t = 0; t < T; ++t)
        for (std::size_t n = 0; n < N; ++n) {
          const std::int32_t v = idx(k - 1, b, t, n);
          if (t + k >= len[b]) {
            REQUIRE(v == -1);
            continue;
          }
          f(k, b, t, n, v);
        }
}

double chi_square(const std::map<std::int32_t, std::size_t>& counts, const std::set<std::int32_t>& cells,
                  double total) {
  const double expected = total / static_cast<double>(cells.size());
  double chi2 = 0;
  for (auto cell : cells) {
    const auto it = counts.find(cell);
    const double o = it == counts.end() ? 0.0 : static_cast<double>(it->second);
    chi2 += (o - expected) * (o - expected) / expected;
  }
  return chi2;
}
}  // namespace

TEST_CASE(
    "negative_sampler: positives never drawn, padding never drawn, policy sets respected (1e5+ draws)") {
  const std::size_t B = 4, T = 12, K = 3;
  const batch_info info{.lengths = {12, 7, 10, 4}, .speakers = {1, 2, 1, 2}};
  for (auto policy :
       {negative_policy::batch, negative_policy::same_sequence, negative_policy::other_sequences,
        negative_policy::same_speaker, negative_policy::same_speaker_other_sequences}) {
    for (auto sharing : {negative_sharing::per_step, negative_sharing::shared}) {
      CAPTURE(to_string(policy));
      CAPTURE(static_cast<int>(sharing));
      negative_sampler s({.policy = policy, .negatives = 1400, .steps = K, .sharing = sharing});
      rng gen(11);
      s.sample(B, T, info, gen);
      std::size_t draws = 0, violations = 0;
      for_each_draw(
          s, info.lengths, [&](std::size_t k, std::size_t b, std::size_t t, std::size_t, std::int32_t v) {
            ++draws;
            const std::size_t ob = static_cast<std::size_t>(v) / T, ot = static_cast<std::size_t>(v) % T;
            bool ok = v >= 0 && ob < B && ot < info.lengths[ob];      // a valid frame, never padding
            ok = ok && static_cast<std::size_t>(v) != b * T + t + k;  // never the positive
            if (sharing == negative_sharing::shared)                  // never any step's positive
              for (std::size_t kk = 1; kk <= K && t + kk < info.lengths[b]; ++kk)
                ok = ok && static_cast<std::size_t>(v) != b * T + t + kk;
            if (policy == negative_policy::same_sequence) ok = ok && ob == b;
            if (policy == negative_policy::other_sequences) ok = ok && ob != b;
            if (policy == negative_policy::same_speaker) ok = ok && info.speakers[ob] == info.speakers[b];
            if (policy == negative_policy::same_speaker_other_sequences)
              ok = ok && ob != b && info.speakers[ob] == info.speakers[b];
            violations += ok ? 0 : 1;
          });
      CHECK(draws >= 100000);
      CHECK(violations == 0);
    }
  }
}

TEST_CASE("negative_sampler: uniform over candidates minus the positive (chi-square)") {
  // Anchor (b=0, t=2, k=1): positive frame 3; batch policy over lengths {8, 5} -> 12 allowed cells.
  const std::size_t T = 8, N = 24000;
  negative_sampler s({.policy = negative_policy::batch, .negatives = N, .steps = 1});
  rng gen(5);
  s.sample(2, T, {.lengths = {8, 5}}, gen);
  std::map<std::int32_t, std::size_t> counts;
  for (std::size_t n = 0; n < N; ++n) ++counts[s.indices()(0, 0, 2, n)];
  std::set<std::int32_t> cells;
  for (std::int32_t v : {0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12}) cells.insert(v);
  CHECK(counts.count(3) == 0);
  CHECK(counts.size() == cells.size());
  // 11 degrees of freedom: P(chi2 > 31.26) = 0.001. The seed is fixed, so this never flakes.
  CHECK(chi_square(counts, cells, N) < 31.26);

  // Shared negatives exclude the run of all K positives (t+1..t+K) and stay uniform over the rest.
  negative_sampler sh({.policy = negative_policy::same_sequence,
                       .negatives = N,
                       .steps = 3,
                       .sharing = negative_sharing::shared});
  sh.sample(1, 10, {}, gen);
  std::map<std::int32_t, std::size_t> c2;
  for (std::size_t n = 0; n < N; ++n) ++c2[sh.indices()(0, 0, 4, n)];
  std::set<std::int32_t> cells2{0, 1, 2, 3, 4, 8, 9};
  CHECK(c2.size() == cells2.size());
  for (auto v : {5, 6, 7}) CHECK(c2.count(v) == 0);
  CHECK(chi_square(c2, cells2, N) < 22.46);  // 6 dof, p = 0.001
  for (std::size_t k = 1; k < 3; ++k)
    for (std::size_t n = 0; n < N; ++n) REQUIRE(sh.indices()(k, 0, 4, n) == sh.indices()(0, 0, 4, n));
}

TEST_CASE(
    "negative_sampler: same speaker excluding the current sequence is uniform over the others (chi-square)") {
  // Items 0 and 2 are speaker 7, items 1 and 3 speaker 3: anchors of item 0 draw only from item 2's
  // 6 valid frames (flat 16..21), each equally likely; their own item (and so the positive) never.
  const std::size_t T = 8, N = 30000;
  const batch_info info{.lengths = {8, 5, 6, 4}, .speakers = {7, 3, 7, 3}};
  negative_sampler s({.policy = negative_policy::same_speaker_other_sequences, .negatives = N, .steps = 2});
  rng gen(13);
  s.sample(4, T, info, gen);
  CHECK(s.candidates(0) == std::vector<std::int32_t>{16, 17, 18, 19, 20, 21});
  CHECK(s.candidates(1) == std::vector<std::int32_t>{24, 25, 26, 27});
  CHECK(s.candidates(2) == std::vector<std::int32_t>{0, 1, 2, 3, 4, 5, 6, 7});
  std::map<std::int32_t, std::size_t> counts;
  for (std::size_t n = 0; n < N; ++n) ++counts[s.indices()(1, 0, 3, n)];  // anchor (b=0, t=3, k=2)
  const std::set<std::int32_t> cells{16, 17, 18, 19, 20, 21};
  CHECK(counts.size() == cells.size());
  for (const auto& [v, c] : counts) CHECK(cells.count(v) == 1);
  CHECK(chi_square(counts, cells, N) < 20.52);  // 5 dof, p = 0.001
  // A speaker with one item in the batch leaves its anchors without a candidate; no speaker ids at all
  // is refused by name.
  CHECK_THROWS_WITH_AS(s.sample(3, T, {.lengths = {8, 8, 6}, .speakers = {7, 3, 7}}, gen),
                       "negative_sampler: policy same_speaker_other_sequences has no negative candidate for "
                       "anchor (b=1, t=0, k=1): 0 candidate frames, 0 excluded",
                       config_error);
  CHECK_THROWS_WITH_AS(s.sample(2, T, {}, gen),
                       "negative_sampler: policy same_speaker_other_sequences needs 2 speaker ids, got 0",
                       config_error);
}

TEST_CASE("negative_sampler: fewer candidates than N samples with replacement and covers all of them") {
  negative_sampler s({.policy = negative_policy::same_sequence, .negatives = 50, .steps = 1});
  rng gen(2);
  s.sample(2, 6, {.lengths = {4, 6}}, gen);
  std::set<std::int32_t> seen;
  for (std::size_t n = 0; n < 50; ++n) seen.insert(s.indices()(0, 0, 1, n));
  CHECK(seen == std::set<std::int32_t>{0, 1, 3});  // item 0's 4 frames minus the positive 2
}

TEST_CASE("negative_sampler: no candidate throws config_error naming the policy and the anchor") {
  negative_sampler s({.policy = negative_policy::other_sequences, .negatives = 4, .steps = 2});
  rng gen(1);
  CHECK_THROWS_WITH_AS(
      s.sample(1, 5, {}, gen),
      "negative_sampler: policy other_sequences has no negative candidate for anchor (b=0, t=0, k=1): "
      "0 candidate frames, 0 excluded",
      config_error);
  negative_sampler sp({.policy = negative_policy::same_speaker, .negatives = 4, .steps = 2});
  CHECK_THROWS_WITH_AS(sp.sample(2, 5, {}, gen),
                       "negative_sampler: policy same_speaker needs 2 speaker ids, got 0", config_error);
  CHECK_THROWS_WITH_AS(sp.sample(2, 5, {.lengths = {5, 6}}, gen),
                       "negative_sampler: length of item 1 is 6, expected <= 5", config_error);
  // A wrong number of speaker ids is refused whatever the policy, with or without lengths.
  negative_sampler batch_policy({.negatives = 4, .steps = 2});
  CHECK_THROWS_WITH_AS(batch_policy.sample(2, 5, {.speakers = {7}}, gen),
                       "negative_sampler: expected 2 speaker ids, got 1", config_error);
  CHECK_THROWS_WITH_AS(batch_policy.sample(2, 5, {.lengths = {5, 5}, .speakers = {7, 8, 9}}, gen),
                       "negative_sampler: expected 2 speaker ids, got 3", config_error);
  CHECK_THROWS_AS(negative_sampler({.negatives = 0}), config_error);
  // A single-frame item has no anchor, so it needs no candidate.
  CHECK_NOTHROW(s.sample(2, 5, {.lengths = {1, 5}}, gen));
}

TEST_CASE("negative_sampler: same seed gives the same indices for any thread count; other seeds differ") {
  const batch_info info{.lengths = {16, 11, 16}, .speakers = {0, 1, 0}};
  negative_sampler s({.policy = negative_policy::same_speaker, .negatives = 32, .steps = 4});
  rng g1(42), g2(42), g3(43);
  s.sample(3, 16, info, g1);
  const auto first = s.indices();
  set_num_threads(1);
  s.sample(3, 16, info, g2);
  set_num_threads(2);
  CHECK(s.indices() == first);
  s.sample(3, 16, info, g3);
  CHECK(s.indices() != first);
  // The caller's generator advances: a second draw from it differs from the first.
  s.sample(3, 16, info, g1);
  CHECK(s.indices() != first);
}

TEST_CASE("negative_sampler: candidate lists per policy") {
  rng gen(0);
  negative_sampler s({.policy = negative_policy::same_speaker, .negatives = 1, .steps = 1});
  s.sample(3, 3, {.lengths = {2, 3, 1}, .speakers = {9, 4, 9}}, gen);
  CHECK(s.candidates(0) == std::vector<std::int32_t>{0, 1, 6});
  CHECK(s.candidates(1) == std::vector<std::int32_t>{3, 4, 5});
  negative_sampler o({.policy = negative_policy::other_sequences, .negatives = 1, .steps = 1});
  o.sample(3, 3, {.lengths = {2, 3, 1}}, gen);
  CHECK(o.candidates(1) == std::vector<std::int32_t>{0, 1, 6});
}

TEST_CASE("negative_sampler: policy names parse with '_' or '-' and round-trip; others are refused") {
  for (auto p : {negative_policy::batch, negative_policy::same_sequence, negative_policy::other_sequences,
                 negative_policy::same_speaker, negative_policy::same_speaker_other_sequences}) {
    CHECK(parse_negative_policy(to_string(p)) == p);
    std::string hyphens(to_string(p));
    std::replace(hyphens.begin(), hyphens.end(), '_', '-');
    CHECK(parse_negative_policy(hyphens) == p);
  }
  CHECK(parse_negative_policy("same-speaker-other-sequences") ==
        negative_policy::same_speaker_other_sequences);
  CHECK_THROWS_WITH_AS(parse_negative_policy("mixed", "--negatives"),
                       "--negatives: expected batch, same-sequence, other-sequences, same-speaker or "
                       "same-speaker-other-sequences, got 'mixed'",
                       config_error);
}
