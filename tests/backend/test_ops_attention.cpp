// cpu against reference for the attention ops (backend/op/attention.hpp) on random shapes (one
// step, one head, several heads, time up to the relative table's length), with and without the
// relative-position term, outputs pre-filled with NaN (overwritten) or junk (accumulated); the
// reference's gradients against finite differences of its forward in double; a hand-computed case.
#include <doctest/doctest.h>

#include <cpc/backend/ops.hpp>

#include <array>
#include <cmath>
#include <vector>

#include "support/backend_parity.hpp"
#include "support/gradcheck.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

template <class T>
std::vector<T> random_vector(std::size_t n, rng& gen, double scale = 1.0) {
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(gen.uniform(-scale, scale));
  return v;
}

struct shape {
  std::size_t batch, time, heads, head_dim, rel_len;
};

// Inputs of one attention call.
template <class T>
struct problem {
  shape s;
  std::vector<T> q, k, v, rel, dout;
  problem(shape sh, rng& gen) : s(sh) {
    const std::size_t n = s.batch * s.time * s.heads * s.head_dim;
    q = random_vector<T>(n, gen, 1.5);
    k = random_vector<T>(n, gen, 1.5);
    v = random_vector<T>(n, gen);
    dout = random_vector<T>(n, gen);
    if (s.rel_len > 0) rel = random_vector<T>(s.head_dim * s.rel_len, gen);
  }
  std::size_t size() const { return q.size(); }
  const T* rel_ptr() const { return s.rel_len > 0 ? rel.data() : nullptr; }

  template <class Backend>
  void forward(std::vector<T>& probs, std::vector<T>& out) const {
    ops::causal_attention_forward<Backend>(
        ops::causal_attention_forward_args<T>{.batch = s.batch,
                                              .time = s.time,
                                              .heads = s.heads,
                                              .head_dim = s.head_dim,
                                              .rel_len = s.rel_len,
                                              .scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim)),
                                              .q = q.data(),
                                              .k = k.data(),
                                              .v = v.data(),
                                              .rel = rel_ptr(),
                                              .probs = probs.data(),
                                              .out = out.data()});
  }

  template <class Backend>
  void backward(const std::vector<T>& probs, std::vector<T>& dq, std::vector<T>& dk, std::vector<T>& dv,
                std::vector<T>* d_rel) const {
    ops::attention_workspace<Backend, T> ws;
    ops::causal_attention_backward<Backend>(
        ops::causal_attention_backward_args<T>{.batch = s.batch,
                                               .time = s.time,
                                               .heads = s.heads,
                                               .head_dim = s.head_dim,
                                               .rel_len = s.rel_len,
                                               .scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim)),
                                               .q = q.data(),
                                               .k = k.data(),
                                               .v = v.data(),
                                               .rel = rel_ptr(),
                                               .probs = probs.data(),
                                               .dout = dout.data(),
                                               .dq = dq.data(),
                                               .dk = dk.data(),
                                               .dv = dv.data(),
                                               .d_rel = d_rel != nullptr ? d_rel->data() : nullptr},
        ws);
  }
};

const std::vector<shape> shapes{{1, 1, 1, 1, 0}, {1, 1, 1, 3, 1},  {2, 5, 1, 4, 5},
                                {3, 7, 4, 8, 9}, {2, 13, 8, 5, 0}, {4, 33, 2, 16, 40}};

}  // namespace

TEST_CASE("ops::causal_attention_*: cpu equals reference to float rounding, every element written") {
  rng gen(5);
  for (const shape& s : shapes) {
    CAPTURE(s.batch);
    CAPTURE(s.time);
    CAPTURE(s.heads);
    CAPTURE(s.head_dim);
    CAPTURE(s.rel_len);
    const problem<float> p(s, gen);
    const std::size_t n = p.size(), np = s.batch * s.heads * s.time * s.time;
    std::vector<float> probs_cpu(np, NAN), probs_ref = probs_cpu, out_cpu(n, NAN), out_ref = out_cpu;
    p.forward<cpu>(probs_cpu, out_cpu);
    p.forward<reference>(probs_ref, out_ref);
    CHECK(scaled_max_error(probs_cpu, probs_ref) < 1e-5);
    CHECK(scaled_max_error(out_cpu, out_ref) < 1e-5);
    // Causal: weights above the diagonal are exactly 0, each row sums to 1.
    bool causal = true;
    for (std::size_t r = 0; r < s.batch * s.heads * s.time; ++r) {
      const std::size_t i = r % s.time;
      double sum = 0;
      for (std::size_t j = 0; j < s.time; ++j) {
        sum += probs_cpu[r * s.time + j];
        if (j > i && probs_cpu[r * s.time + j] != 0.0f) causal = false;
      }
      if (std::abs(sum - 1.0) > 1e-5) causal = false;
    }
    CHECK(causal);

    std::vector<float> dq_cpu(n, NAN), dk_cpu(n, NAN), dv_cpu(n, NAN), dq_ref = dq_cpu, dk_ref = dk_cpu,
                                                                       dv_ref = dv_cpu;
    const std::vector<float> junk = random_vector<float>(s.head_dim * s.rel_len, gen);
    std::vector<float> drel_cpu = junk, drel_ref = junk;
    p.backward<cpu>(probs_ref, dq_cpu, dk_cpu, dv_cpu, s.rel_len > 0 ? &drel_cpu : nullptr);
    p.backward<reference>(probs_ref, dq_ref, dk_ref, dv_ref, s.rel_len > 0 ? &drel_ref : nullptr);
    CHECK(scaled_max_error(dq_cpu, dq_ref) < 1e-5);
    CHECK(scaled_max_error(dk_cpu, dk_ref) < 1e-5);
    CHECK(scaled_max_error(dv_cpu, dv_ref) < 1e-5);
    CHECK(scaled_max_error(drel_cpu, drel_ref) < 1e-5);
  }
}

TEST_CASE_TEMPLATE("ops::causal_attention_backward: finite differences of the forward in double", Backend,
                   CPC_TEST_BACKENDS) {
  rng gen(11);
  for (const shape& s : {shape{2, 4, 2, 3, 6}, shape{1, 5, 3, 2, 0}}) {
    CAPTURE(s.rel_len);
    problem<double> p(s, gen);
    const std::size_t n = p.size(), np = s.batch * s.heads * s.time * s.time;
    std::vector<double> probs(np), out(n), dq(n), dk(n), dv(n), drel(s.head_dim * s.rel_len, 0.0);
    p.forward<Backend>(probs, out);
    p.backward<Backend>(probs, dq, dk, dv, s.rel_len > 0 ? &drel : nullptr);
    auto loss = [&] {
      std::vector<double> pr(np), o(n);
      p.forward<Backend>(pr, o);
      return project(o, p.dout);
    };
    CHECK(gradient_error(loss, p.q.data(), n, dq.data()) < 1e-7);
    CHECK(gradient_error(loss, p.k.data(), n, dk.data()) < 1e-7);
    CHECK(gradient_error(loss, p.v.data(), n, dv.data()) < 1e-7);
    if (s.rel_len > 0) CHECK(gradient_error(loss, p.rel.data(), p.rel.size(), drel.data()) < 1e-7);
  }
}

TEST_CASE_TEMPLATE("ops::causal_attention_forward: a hand-computed case", Backend, CPC_TEST_BACKENDS) {
  // One item, one head of width 1, two steps, relative table [r0, r1] (rel_len 2), scale 1:
  //   step 0 sees only itself: out_0 = v_0;
  //   step 1: s_10 = q_1 k_0 + q_1 r0 (distance 1: column 0), s_11 = q_1 k_1 + q_1 r1 (distance 0).
  const std::vector<double> q{1.0, 2.0}, k{0.5, -1.0}, v{3.0, 7.0}, rel{0.25, 1.0};
  std::vector<double> probs(4), out(2);
  ops::causal_attention_forward<Backend>(ops::causal_attention_forward_args<double>{.batch = 1,
                                                                                    .time = 2,
                                                                                    .heads = 1,
                                                                                    .head_dim = 1,
                                                                                    .rel_len = 2,
                                                                                    .scale = 1.0,
                                                                                    .q = q.data(),
                                                                                    .k = k.data(),
                                                                                    .v = v.data(),
                                                                                    .rel = rel.data(),
                                                                                    .probs = probs.data(),
                                                                                    .out = out.data()});
  const double s10 = 2.0 * 0.5 + 2.0 * 0.25, s11 = 2.0 * -1.0 + 2.0 * 1.0;  // 1.5 and 0
  const double a10 = std::exp(s10) / (std::exp(s10) + std::exp(s11));
  CHECK(probs[0] == 1.0);
  CHECK(probs[1] == 0.0);
  CHECK(probs[2] == doctest::Approx(a10).epsilon(1e-14));
  CHECK(probs[3] == doctest::Approx(1 - a10).epsilon(1e-14));
  CHECK(out[0] == 3.0);
  CHECK(out[1] == doctest::Approx(a10 * 3.0 + (1 - a10) * 7.0).epsilon(1e-14));
}
