// The parts of data-parallel training that need no MPI (issue 18): rng::jump (the per-rank
// streams), the replica fingerprint, the group of one process (local_communicator) and
// on_lead's error passing. The 2-rank tests are in tests/dist (run under mpirun).
#include <doctest/doctest.h>

#include <cpc/cpc.hpp>

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace {

// A 256 x 256 matrix over GF(2): column j is a 256-bit state (4 words).
using bits256 = std::array<std::uint64_t, 4>;
using gf2_matrix = std::array<bits256, 256>;

bits256 multiply(const gf2_matrix& m, const bits256& v) {
  bits256 out{};
  for (std::size_t j = 0; j < 256; ++j)
    if ((v[j / 64] >> (j % 64)) & 1)
      for (std::size_t w = 0; w < 4; ++w) out[w] ^= m[j][w];
  return out;
}

// xoshiro256's state transition as a matrix: column j = next() applied to the unit state e_j.
gf2_matrix transition() {
  gf2_matrix m{};
  for (std::size_t j = 0; j < 256; ++j) {
    bits256 e{};
    e[j / 64] = std::uint64_t{1} << (j % 64);
    cpc::rng g;
    g.set_state(e);
    g.next();
    m[j] = g.state();
  }
  return m;
}

using model_t = cpc::audio_model<cpc::presets::audio_tiny>;

void fill_audio(cpc::rng& g, cpc::tensor2<float>& audio) {
  cpc::ensure_shape(audio, std::array<std::size_t, 2>{4, cpc::presets::audio_tiny::window_samples});
  for (auto& v : audio) v = static_cast<float>(0.3 * g.normal());
}

std::uint64_t weights_fingerprint(model_t& m) {
  const auto& f = m.parameters().flat;
  return cpc::fingerprint(f.values, f.size * sizeof(float));
}

}  // namespace

TEST_CASE("rng::jump advances the state by exactly 2^128 draws (the transition matrix squared 128 times)") {
  gf2_matrix m = transition();
  for (int i = 0; i < 128; ++i) {
    gf2_matrix squared{};
    for (std::size_t j = 0; j < 256; ++j) squared[j] = multiply(m, m[j]);
    m = squared;
  }
  for (const std::uint64_t seed : {1ULL, 42ULL, 0x123456789ULL}) {
    cpc::rng g(seed);
    const bits256 expected = multiply(m, g.state());
    g.jump();
    CHECK(g.state() == expected);
  }
  // Jumped streams differ from the original, and jumping commutes with drawing.
  cpc::rng a(7), b(7);
  a.jump();
  CHECK(a.next() != b.next());
  cpc::rng c(7), d(7);
  c.next();
  c.jump();
  d.jump();
  d.next();
  CHECK(c.state() == d.state());
}

TEST_CASE("fingerprint: equal bytes give equal values; a flipped bit or another length changes it") {
  std::vector<float> x(1001);
  cpc::rng g(3);
  for (auto& v : x) v = static_cast<float>(g.normal());
  const std::vector<float> y = x;
  CHECK(cpc::fingerprint(x.data(), x.size() * 4) == cpc::fingerprint(y.data(), y.size() * 4));
  for (const std::size_t byte : {std::size_t{0}, std::size_t{17}, std::size_t{2000}, std::size_t{4003}}) {
    std::vector<float> z = x;
    reinterpret_cast<unsigned char*>(z.data())[byte] ^= 1;
    CHECK(cpc::fingerprint(z.data(), z.size() * 4) != cpc::fingerprint(x.data(), x.size() * 4));
  }
  CHECK(cpc::fingerprint(x.data(), 4000) != cpc::fingerprint(x.data(), 4004));
}

TEST_CASE("train with a group of one process (local_communicator) is train without a group, bit for bit") {
  cpc::local_communicator alone;
  CHECK(alone.rank() == 0);
  CHECK(alone.size() == 1);
  std::vector<std::uint64_t> results;
  for (const bool group : {false, true}) {
    model_t m([] {
      model_t::options o;
      o.seed = 4;
      return o;
    }());
    cpc::adam<float> opt(m.parameters(), {.learning_rate = 1e-3});
    cpc::rng data(9);
    cpc::train_options o;
    o.max_steps = 4;
    o.progress = false;
    o.generators = {{"data", &data}};
    if (group) o.comm = &alone;
    const auto s = cpc::train(
        m, opt, cpc::constant_lr{1e-3}, [&](cpc::audio_batch<float>& b) { fill_audio(data, b.audio); }, o);
    CHECK(s.allreduce_seconds == 0);
    results.push_back(weights_fingerprint(m));
    results.push_back(cpc::fingerprint(data.state().data(), 32));  // no jump for a group of one
  }
  CHECK(results[0] == results[2]);
  CHECK(results[1] == results[3]);
}

TEST_CASE(
    "load_checkpoint with a group of one process is the plain load; allreduce_mean of one rank is the "
    "identity") {
  const auto path = std::filesystem::temp_directory_path() / "cpc_test_distributed_local.safetensors";
  model_t::options o;
  o.seed = 5;
  model_t a(o);
  cpc::adam<float> opt_a(a.parameters(), {.learning_rate = 1e-3});
  cpc::rng data_a(2);
  data_a.next();
  cpc::save_checkpoint(path, a, opt_a, {{"data", &data_a}});
  o.seed = 6;
  model_t b(o);
  cpc::adam<float> opt_b(b.parameters(), {.learning_rate = 1e-3});
  cpc::rng data_b(3);
  cpc::local_communicator alone;
  cpc::load_checkpoint(path, b, opt_b, {{"data", &data_b}}, alone);
  CHECK(weights_fingerprint(a) == weights_fingerprint(b));
  CHECK(data_a.state() == data_b.state());
  std::filesystem::remove(path);

  std::vector<float> x{1.5f, -2.0f, 3.25f};
  cpc::allreduce_mean(alone, x.data(), x.size());
  CHECK(x == std::vector<float>{1.5f, -2.0f, 3.25f});
}

TEST_CASE("on_lead: rank 0's exception reaches the caller unchanged") {
  cpc::local_communicator alone;
  CHECK_THROWS_AS(cpc::detail::on_lead(alone, "writing", [] { throw cpc::io_error("disk full"); }),
                  cpc::io_error);
  int runs = 0;
  cpc::detail::on_lead(alone, "counting", [&] { ++runs; });
  CHECK(runs == 1);
}
