// ABX discriminability (cpc/eval/abx.hpp) on hand-computed cases: DTW costs and path lengths,
// triphone items cut from frame labels, within- and across-speaker error rates with ties, the
// averaging order, invariance to time stretching, determinism, errors.
#include <doctest/doctest.h>

#include <cpc/eval/abx.hpp>

#include <cmath>
#include <numbers>
#include <vector>

using namespace cpc;

namespace {

// Utterances of single frames [cos(pi t), sin(pi t)]: the angular distance of two is |t1 - t2|.
std::vector<tensor2<float>> angles(const std::vector<double>& t) {
  std::vector<tensor2<float>> f;
  for (double v : t) {
    tensor2<float> x = xt::zeros<float>({1, 2});
    x(0, 0) = static_cast<float>(std::cos(std::numbers::pi * v));
    x(0, 1) = static_cast<float>(std::sin(std::numbers::pi * v));
    f.push_back(x);
  }
  return f;
}

abx_item one_frame(std::size_t u, std::int64_t phone, std::int64_t speaker, std::int64_t context = 0) {
  return {.utterance = u, .begin = 0, .end = 1, .phone = phone, .context = context, .speaker = speaker};
}

}  // namespace

TEST_CASE("abx_dtw: path-length-normalised DTW on hand-computed matrices") {
  const std::vector<double> one{0.7};
  CHECK(abx_dtw(one.data(), 1, 1) == 0.7);
  const std::vector<double> row{1, 2, 3};  // one path of 3 cells
  CHECK(abx_dtw(row.data(), 1, 3) == doctest::Approx(2.0));
  CHECK(abx_dtw(row.data(), 3, 1) == doctest::Approx(2.0));
  const std::vector<double> diag{0, 1, 1, 0};  // the diagonal: cost 0 over 2 cells
  CHECK(abx_dtw(diag.data(), 2, 2) == 0.0);
  // Costs: row 0: 0.1 0.6 1.5; row 1: 0.5 0.3 0.6. Backtrack from (1, 2): left (0.3) before diagonal
  // (0.6) and up (1.5); from (1, 1) the diagonal to (0, 0): 3 cells, 0.6 / 3.
  const std::vector<double> d{0.1, 0.5, 0.9, 0.4, 0.2, 0.3};
  CHECK(abx_dtw(d.data(), 2, 3) == doctest::Approx(0.2));
  // A path that reaches the first row early: (2, 1) -> (1, 0) -> (0, 0) via the column.
  const std::vector<double> e{0, 5, 0, 5, 9, 0};  // [3, 2]: costs 0 5 / 0 5 / 9 0 -> total 0
  CHECK(abx_dtw(e.data(), 3, 2) == 0.0);
}

TEST_CASE("abx_items: triphones from runs of frame labels; silence, unknown frames and edges give none") {
  //              run:  0 0 | 1 1 1 | 2 2 | 0 | 3 3 | -1 | 4 4 | 0
  const std::vector<std::vector<std::int32_t>> labels{{0, 0, 1, 1, 1, 2, 2, 0, 3, 3, -1, 4, 4, 0}, {5, 6}};
  const auto items = abx_items(labels, {7, 8});
  REQUIRE(items.size() == 2);
  CHECK(items[0].utterance == 0);
  CHECK(items[0].begin == 0);
  CHECK(items[0].end == 7);  // previous phone 0, phone 1, next phone 2
  CHECK(items[0].phone == 1);
  CHECK(items[0].context == (std::int64_t{0} << 32) + 2);
  CHECK(items[0].speaker == 7);
  CHECK(items[1].begin == 2);
  CHECK(items[1].end == 8);
  CHECK(items[1].phone == 2);
  CHECK(items[1].context == (std::int64_t{1} << 32) + 0);
  const auto central = abx_items(labels, {7, 8}, {.segment = abx_segment::phone});
  REQUIRE(central.size() == 2);
  CHECK(central[0].begin == 2);
  CHECK(central[0].end == 5);
  CHECK(central[1].begin == 5);
  CHECK(central[1].end == 7);
  const auto with_silence = abx_items(labels, {7, 8}, {.excluded_phones = {}});
  CHECK(with_silence.size() == 3);  // the silence run between 2 and 3 becomes an item
  CHECK_THROWS_WITH_AS(abx_items(labels, {7}),
                       "abx_items: expected one speaker per utterance, got 2 label sequences and 1 speakers",
                       shape_error);
}

TEST_CASE("abx_error: within and across speakers, hand-computed (single-frame items)") {
  // Context 0. Speaker 0: phone 1 at t = 0 and 0.1, phone 2 at t = 0.05 and 1.0.
  // Speaker 1: phone 1 at t = 0.02.
  const auto f = angles({0.0, 0.1, 0.05, 1.0, 0.02});
  const std::vector<abx_item> items{one_frame(0, 1, 0), one_frame(1, 1, 0), one_frame(2, 2, 0),
                                    one_frame(3, 2, 0), one_frame(4, 1, 1)};
  const auto r = abx_error(f, items);
  // Within, (A = 1, B = 2): x = 0, a = 0.1: d = 0.1 vs 0.05 (wrong), 1.0 (right); x = 0.1, a = 0:
  // 0.1 vs 0.05 (wrong), 0.9 (right): error 0.5. (A = 2, B = 1): x = 0.05, a = 1: 0.95 vs 0.05,
  // 0.05 (wrong, wrong); x = 1, a = 0.05: 0.95 vs 1.0 (right), 0.9 (wrong): error 0.75.
  CHECK(r.within == doctest::Approx((0.5 + 0.75) / 2));
  CHECK(r.within_cells == 2);
  CHECK(r.within_pairs == 2);
  // Across: A, B from speaker 0, X = 0.02 from speaker 1 (phone 1 only): d(a) = 0.02, 0.08 against
  // d(b) = 0.03, 0.98: right, right, wrong, right: error 0.25. Speaker 1 has no phone 2: no cell
  // with A = 2, and one phone only: no cell with A, B from speaker 1.
  CHECK(r.across == doctest::Approx(0.25));
  CHECK(r.across_cells == 1);
  CHECK(r.items == 5);
}

TEST_CASE("abx_error: equal distances count one half") {
  // Phone 1 at t = 0 and 0.2, phone 2 at t = 0.2 (the same frame as the second A).
  const auto f = angles({0.0, 0.2, 0.2});
  const std::vector<abx_item> items{one_frame(0, 1, 0), one_frame(1, 1, 0), one_frame(2, 2, 0)};
  // x = 0, a = 0.2: 0.2 vs 0.2, a tie (1/2); x = 0.2, a = 0: 0.2 vs 0 (wrong): error 1 - 0.25.
  CHECK(abx_error(f, items).within == doctest::Approx(0.75));
}

TEST_CASE("abx_error: averages over contexts, then speakers, then phone pairs") {
  // Speaker 0, context 0: phones 1 {0, 0.01} and 2 {0.5, 0.51}, separated: error 0 for (1, 2) and
  // (2, 1). Speaker 0, context 1: phones 1 {0, 0.5} and 2 {0.01, 0.51}, mixed: (A = 1, B = 2):
  // x = 0, a = 0.5: 0.5 vs 0.01, 0.51 (wrong, right); x = 0.5, a = 0: 0.5 vs 0.49, 0.01 (wrong,
  // wrong): error 0.75, and (2, 1) likewise 0.75. Speaker 1, context 0: as speaker 0's: error 0.
  // Per speaker: 0.375 and 0; per pair: 0.1875 (a flat mean over the 3 cells would be 0.25).
  const auto f = angles({0.0, 0.01, 0.5, 0.51, 0.0, 0.5, 0.01, 0.51, 0.0, 0.01, 0.5, 0.51});
  std::vector<abx_item> items;
  const std::int64_t phone[12] = {1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2};
  const std::int64_t context[12] = {0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0};
  const std::int64_t speaker[12] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1};
  for (std::size_t u = 0; u < 12; ++u) items.push_back(one_frame(u, phone[u], speaker[u], context[u]));
  const auto r = abx_error(f, items);
  CHECK(r.within == doctest::Approx(0.1875));
  CHECK(r.within_cells == 6);
  CHECK(r.within_pairs == 2);
}

TEST_CASE("abx_error: DTW makes a segment and its time-stretched copy identical") {
  // Items of several frames: phone 1 = frames (0, 0.3) and the stretched (0, 0, 0.3, 0.3, 0.3);
  // phone 2 = (0.6, 0.9). X = each phone-1 item: d(A) = 0 < d(B): error 0.
  std::vector<tensor2<float>> f;
  for (const std::vector<double>& ts :
       std::vector<std::vector<double>>{{0, 0.3}, {0, 0, 0.3, 0.3, 0.3}, {0.6, 0.9}}) {
    tensor2<float> x = xt::zeros<float>({ts.size(), std::size_t{3}});
    for (std::size_t i = 0; i < ts.size(); ++i) {
      x(i, 0) = 2.0f * static_cast<float>(std::cos(std::numbers::pi * ts[i]));  // any length: angular
      x(i, 1) = 2.0f * static_cast<float>(std::sin(std::numbers::pi * ts[i]));
    }
    f.push_back(x);
  }
  const std::vector<abx_item> items{{.utterance = 0, .end = 2, .phone = 1},
                                    {.utterance = 1, .end = 5, .phone = 1},
                                    {.utterance = 2, .end = 2, .phone = 2}};
  const auto r = abx_error(f, items);
  CHECK(r.within_cells == 1);  // phone 2 has one item: no cell with A = 2
  CHECK(r.within == 0.0);
  const auto e = abx_error(f, items, {.distance = abx_distance::euclidean});
  CHECK(e.within == 0.0);
}

TEST_CASE("abx_error: deterministic for a seed (groups drawn at random), NaN without triplets, errors") {
  std::vector<double> t;
  std::vector<abx_item> items;
  rng gen(1);
  for (std::size_t u = 0; u < 60; ++u) {
    t.push_back(gen.uniform());
    items.push_back(one_frame(u, static_cast<std::int64_t>(u % 3), static_cast<std::int64_t>(u % 2)));
  }
  const auto f = angles(t);
  const abx_options o{.max_group_size = 4, .max_x_across = 1, .seed = 5};
  const auto a = abx_error(f, items, o), b = abx_error(f, items, o);
  CHECK(a.within == b.within);
  CHECK(a.across == b.across);
  CHECK(a.within > 0.0);
  CHECK(a.within < 1.0);
  const auto none = abx_error(f, {one_frame(0, 1, 0)});
  CHECK(std::isnan(none.within));
  CHECK(std::isnan(none.across));
  CHECK_THROWS_WITH_AS(abx_error(f, {one_frame(60, 1, 0)}),
                       "abx_error: item 0 names utterance 60, expected < 60", shape_error);
}
