// cpu against reference for the InfoNCE ops (backend/op/info_nce.hpp) on random shapes: one item,
// one frame, D and N below and above the SIMD width and the 4-row unroll, anchor blocks with a
// partial last block, padded items and items too short for the step; plus a hand-computed case.
// Outputs are pre-filled with NaN or junk so that an element that should be written and is not
// (or one that should be left alone and is written) fails.
#include <doctest/doctest.h>

#include <cpc/backend/ops.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "support/backend_parity.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

std::vector<float> random_vector(std::size_t n, rng& gen, double scale = 1.0) {
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(gen.uniform(-scale, scale));
  return v;
}

struct step_case {
  std::size_t batch, time, dim, negatives, step;
  std::vector<std::size_t> lengths;  // empty: every item has `time` frames
};

const std::vector<step_case> step_cases{
    {1, 1, 3, 2, 1, {}},                      // one frame: no anchor has a term
    {1, 2, 2, 1, 1, {}},                      // one anchor, one negative
    {2, 13, 37, 7, 3, {13, 6}},               // odd D (SIMD tail) and N + 1 = 8, a padded item
    {3, 40, 64, 20, 1, {}},                   // 120 anchors: four blocks, the last partial
    {2, 33, 17, 4, 2, {33, 1}},               // an item with no term at all
    {4, 50, 512, 128, 12, {50, 20, 13, 40}},  // the paper's D and N; an item shorter than k
    {5, 7, 1, 3, 1, {7, 2, 5, 3, 7}},         // D = 1 (no SIMD body)
};

struct step_data {
  std::vector<std::size_t> len;
  std::vector<float> p, z;
  std::vector<std::int32_t> neg;
  std::size_t terms = 0;
};

bool has_term(const step_case& c, const std::vector<std::size_t>& len, std::size_t a) {
  return a % c.time + c.step < len[a / c.time];
}

// Random predictions and latents; every negative a valid frame of the batch other than the
// positive (as negative_sampler draws them; duplicates allowed).
step_data make_step(const step_case& c, rng& gen) {
  step_data d;
  const std::size_t BT = c.batch * c.time;
  d.len = c.lengths.empty() ? std::vector<std::size_t>(c.batch, c.time) : c.lengths;
  d.p = random_vector(BT * c.dim, gen, 0.5);
  d.z = random_vector(BT * c.dim, gen, 0.5);
  std::vector<std::int32_t> valid;
  for (std::size_t b = 0; b < c.batch; ++b)
    for (std::size_t t = 0; t < d.len[b]; ++t) valid.push_back(static_cast<std::int32_t>(b * c.time + t));
  d.neg.assign(BT * c.negatives, -1);
  for (std::size_t a = 0; a < BT; ++a) {
    if (!has_term(c, d.len, a)) continue;
    ++d.terms;
    for (std::size_t n = 0; n < c.negatives; ++n) {
      std::int32_t v = 0;
      do v = valid[gen.uniform_int(valid.size())];
      while (v == static_cast<std::int32_t>(a + c.step));
      d.neg[a * c.negatives + n] = v;
    }
  }
  return d;
}

// The outputs of one info_nce_anchor_terms call, pre-filled with junk.
struct anchor_outputs {
  std::vector<std::int32_t> cand;
  std::vector<float> logits, dp;
  std::vector<double> loss;
  std::vector<unsigned char> hit;
  double loss_sum = std::nan("");
  std::size_t hits = 12345;

  anchor_outputs(std::size_t bt, std::size_t n1, std::size_t dim, bool grad)
      : cand(bt * n1, -7),
        logits(bt * n1, std::nanf("")),
        dp(grad ? bt * dim : 0, std::nanf("")),
        loss(bt, std::nan("")),
        hit(bt, 7) {}

  template <class Backend>
  void run(const step_case& c, const step_data& d, float scale, double weight) {
    ops::info_nce_anchor_terms<Backend>(
        ops::info_nce_anchor_args<float>{.batch = c.batch,
                                         .time = c.time,
                                         .dim = c.dim,
                                         .negatives = c.negatives,
                                         .step = c.step,
                                         .lengths = d.len.data(),
                                         .p = d.p.data(),
                                         .z = d.z.data(),
                                         .negative_index = d.neg.data(),
                                         .scale = scale,
                                         .weight = weight,
                                         .candidates = cand.data(),
                                         .logits = logits.data(),
                                         .anchor_loss = loss.data(),
                                         .anchor_hit = hit.data(),
                                         .dp = dp.empty() ? nullptr : dp.data(),
                                         .loss_sum = &loss_sum,
                                         .hits = &hits});
  }
};

}  // namespace

TEST_CASE(
    "ops::info_nce_anchor_terms: cpu equals reference (1e-5) on random shapes; rows without a term are "
    "left alone, their dp rows zeroed") {
  rng gen(1);
  for (const auto& c : step_cases)
    for (bool grad : {false, true}) {
      CAPTURE(c.batch);
      CAPTURE(c.time);
      CAPTURE(c.dim);
      CAPTURE(c.negatives);
      CAPTURE(c.step);
      CAPTURE(grad);
      const auto d = make_step(c, gen);
      const std::size_t BT = c.batch * c.time, N1 = c.negatives + 1;
      const float scale = 0.7f;
      const double weight = 1.0 / static_cast<double>(std::max<std::size_t>(d.terms, 1));
      anchor_outputs a(BT, N1, c.dim, grad), r(BT, N1, c.dim, grad);
      a.run<cpu>(c, d, scale, weight);
      r.run<reference>(c, d, scale, weight);
      CHECK(a.hits == r.hits);
      CHECK(std::abs(a.loss_sum - r.loss_sum) <= 1e-5 * std::max(1.0, std::abs(r.loss_sum)));
      if (d.terms == 0) CHECK(r.loss_sum == 0.0);
      double max_logit_err = 0, max_logit = 1e-30;
      std::size_t hits = 0;
      double loss_sum = 0;
      for (std::size_t i = 0; i < BT; ++i) {
        if (!has_term(c, d.len, i)) {
          for (const auto* o : {&a, &r}) {
            for (std::size_t j = 0; j < N1; ++j) {
              CHECK(o->cand[i * N1 + j] == -7);
              CHECK(std::isnan(o->logits[i * N1 + j]));
            }
            CHECK(std::isnan(o->loss[i]));
            CHECK(o->hit[i] == 7);
            for (std::size_t k = 0; k < o->dp.size() / BT; ++k) CHECK(o->dp[i * c.dim + k] == 0.0f);
          }
          continue;
        }
        CHECK(a.cand[i * N1] == static_cast<std::int32_t>(i + c.step));
        for (std::size_t j = 0; j < N1; ++j) {
          CHECK(a.cand[i * N1 + j] == r.cand[i * N1 + j]);
          if (j > 0) CHECK(a.cand[i * N1 + j] == d.neg[i * c.negatives + j - 1]);
          max_logit_err =
              std::max(max_logit_err, std::abs(double(a.logits[i * N1 + j]) - r.logits[i * N1 + j]));
          max_logit = std::max(max_logit, std::abs(double(r.logits[i * N1 + j])));
        }
        CHECK(std::abs(a.loss[i] - r.loss[i]) <= 1e-5 * std::max(1.0, r.loss[i]));
        CHECK(r.loss[i] >= 0.0);
        CHECK(a.hit[i] == r.hit[i]);
        hits += r.hit[i];
        loss_sum += r.loss[i];
      }
      CHECK(hits == r.hits);
      CHECK(loss_sum == doctest::Approx(r.loss_sum).epsilon(1e-12));
      CHECK(max_logit_err / max_logit < 1e-5);  // logits, or coefficients with grad
      if (grad) CHECK(scaled_max_error(a.dp, r.dp) < 1e-5);
    }
}

TEST_CASE("ops::info_nce_anchor_terms and info_nce_scatter_dz: a hand-computed anchor, on both backends") {
  // One item of 2 frames, D = 2, N = 1, k = 1: anchor 0's positive is frame 1, its negative frame 0.
  // p_0 = (1, 2), z_0 = (3, 0), z_1 = (0, 1): logits (2, 3), loss = log(e^2 + e^3) - 2 = log(1 + e),
  // no hit; softmax (q, 1 - q) with q = 1 / (1 + e); g = (q - 1, 1 - q) (weight 1, scale 1);
  // dp_0 = g_0 z_1 + g_1 z_0 = ((1 - q) 3, q - 1); dz_1 += g_0 p_0, dz_0 += g_1 p_0.
  const step_case c{1, 2, 2, 1, 1, {}};
  step_data d;
  d.len = {2};
  d.p = {1, 2, 0, 0};
  d.z = {3, 0, 0, 1};
  d.neg = {0, -1};
  const double q = 1.0 / (1.0 + std::exp(1.0));
  auto check = [&](auto backend) {
    using Backend = decltype(backend);
    anchor_outputs o(2, 2, 2, false);
    o.run<Backend>(c, d, 1.0f, 1.0);
    CHECK(o.cand[0] == 1);
    CHECK(o.cand[1] == 0);
    CHECK(o.logits[0] == doctest::Approx(2.0));
    CHECK(o.logits[1] == doctest::Approx(3.0));
    CHECK(o.loss[0] == doctest::Approx(std::log(1.0 + std::exp(1.0))).epsilon(1e-7));
    CHECK(o.hit[0] == 0);
    CHECK(o.hits == 0);
    CHECK(o.loss_sum == doctest::Approx(std::log(1.0 + std::exp(1.0))).epsilon(1e-7));
    anchor_outputs g(2, 2, 2, true);
    g.run<Backend>(c, d, 1.0f, 1.0);
    CHECK(g.logits[0] == doctest::Approx(q - 1.0).epsilon(1e-6));
    CHECK(g.logits[1] == doctest::Approx(1.0 - q).epsilon(1e-6));
    CHECK(g.dp[0] == doctest::Approx(3.0 * (1.0 - q)).epsilon(1e-6));
    CHECK(g.dp[1] == doctest::Approx(q - 1.0).epsilon(1e-6));
    CHECK(g.dp[2] == 0.0f);  // anchor 1 has no term
    CHECK(g.dp[3] == 0.0f);
    std::vector<float> dz{10, 20, 30, 40};
    ops::info_nce_scatter_workspace<Backend, float> ws;
    ops::info_nce_scatter_dz<Backend>(ops::info_nce_scatter_args<float>{.batch = 1,
                                                                        .time = 2,
                                                                        .dim = 2,
                                                                        .negatives = 1,
                                                                        .step = 1,
                                                                        .lengths = d.len.data(),
                                                                        .candidates = g.cand.data(),
                                                                        .coeff = g.logits.data(),
                                                                        .p = d.p.data(),
                                                                        .dz = dz.data()},
                                      ws);
    CHECK(dz[0] == doctest::Approx(10.0 + (1.0 - q)).epsilon(1e-6));
    CHECK(dz[1] == doctest::Approx(20.0 + 2.0 * (1.0 - q)).epsilon(1e-6));
    CHECK(dz[2] == doctest::Approx(30.0 + (q - 1.0)).epsilon(1e-6));
    CHECK(dz[3] == doctest::Approx(40.0 + 2.0 * (q - 1.0)).epsilon(1e-6));
  };
  check(cpu{});
  check(reference{});
}

TEST_CASE(
    "ops::info_nce_scatter_dz: cpu equals reference (1e-5) on random shapes; rows that are no candidate "
    "keep their old values exactly; the workspace is reused across sizes") {
  rng gen(2);
  ops::info_nce_scatter_workspace<cpu, float> ws_cpu;  // shared by every case: shrinks and grows
  ops::info_nce_scatter_workspace<reference, float> ws_ref;
  for (const auto& c : step_cases) {
    CAPTURE(c.batch);
    CAPTURE(c.time);
    CAPTURE(c.dim);
    CAPTURE(c.negatives);
    CAPTURE(c.step);
    const auto d = make_step(c, gen);
    const std::size_t BT = c.batch * c.time, N1 = c.negatives + 1;
    // Candidates as the anchor op writes them; junk in rows without a term must be ignored.
    anchor_outputs g(BT, N1, c.dim, true);
    g.run<cpu>(c, d, 1.0f, 1.0);
    for (std::size_t a = 0; a < BT; ++a)
      if (!has_term(c, d.len, a))
        for (std::size_t j = 0; j < N1; ++j) g.cand[a * N1 + j] = 1 << 30;  // out of range if read
    const auto junk = random_vector(BT * c.dim, gen, 3.0);
    auto dz_cpu = junk, dz_ref = junk;
    ops::info_nce_scatter_args<float> args{.batch = c.batch,
                                           .time = c.time,
                                           .dim = c.dim,
                                           .negatives = c.negatives,
                                           .step = c.step,
                                           .lengths = d.len.data(),
                                           .candidates = g.cand.data(),
                                           .coeff = g.logits.data(),
                                           .p = d.p.data(),
                                           .dz = dz_cpu.data()};
    ops::info_nce_scatter_dz<cpu>(args, ws_cpu);
    args.dz = dz_ref.data();
    ops::info_nce_scatter_dz<reference>(args, ws_ref);
    CHECK(scaled_max_error(dz_cpu, dz_ref) < 1e-5);
    std::vector<bool> is_candidate(BT, false);
    for (std::size_t a = 0; a < BT; ++a)
      if (has_term(c, d.len, a))
        for (std::size_t j = 0; j < N1; ++j)
          is_candidate[static_cast<std::size_t>(g.cand[a * N1 + j])] = true;
    std::size_t untouched = 0;
    for (std::size_t r = 0; r < BT; ++r)
      if (!is_candidate[r]) {
        ++untouched;
        for (std::size_t k = 0; k < c.dim; ++k) {
          CHECK(dz_cpu[r * c.dim + k] == junk[r * c.dim + k]);
          CHECK(dz_ref[r * c.dim + k] == junk[r * c.dim + k]);
        }
      }
    if (d.terms == 0) CHECK(untouched == BT);
  }
}

TEST_CASE("ops::transpose_grid: y[b, j, i] = x[b, i, j] on both backends; transposing back restores x") {
  rng gen(3);
  for (const auto& entry :
       std::vector<std::array<std::size_t, 4>>{{1, 1, 1, 1}, {2, 3, 5, 7}, {3, 4, 4, 64}, {1, 7, 2, 3}}) {
    const auto& B = std::get<0>(entry);
    const auto& R = std::get<1>(entry);
    const auto& C = std::get<2>(entry);
    const auto& D = std::get<3>(entry);
    CAPTURE(B);
    CAPTURE(R);
    CAPTURE(C);
    CAPTURE(D);
    const auto x = random_vector(B * R * C * D, gen);
    std::vector<float> y_cpu(x.size(), std::nanf("")), y_ref = y_cpu;
    ops::transpose_grid<cpu>(ops::transpose_grid_args<float>{B, R, C, D, x.data(), y_cpu.data()});
    ops::transpose_grid<reference>(ops::transpose_grid_args<float>{B, R, C, D, x.data(), y_ref.data()});
    CHECK(y_cpu == y_ref);
    bool all = true;
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t i = 0; i < R; ++i)
        for (std::size_t j = 0; j < C; ++j)
          for (std::size_t k = 0; k < D; ++k)
            all = all && y_cpu[((b * C + j) * R + i) * D + k] == x[((b * R + i) * C + j) * D + k];
    CHECK(all);
    std::vector<float> back(x.size(), std::nanf(""));
    ops::transpose_grid<cpu>(ops::transpose_grid_args<float>{B, C, R, D, y_cpu.data(), back.data()});
    CHECK(back == x);
  }
}
