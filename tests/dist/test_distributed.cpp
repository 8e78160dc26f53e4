// Data-parallel training over MPI (issue 18, cpc/train/distributed.hpp, cpc/dist/mpi.hpp). ctest
// runs each test case as 2 ranks (`mpirun --oversubscribe -np 2`); the tiny audio model keeps
// every case to a second or two.
#include <doctest/doctest.h>

#include <cpc/cpc.hpp>

#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "support/mpi_world.hpp"

namespace fs = std::filesystem;

namespace {

using model_t = cpc::audio_model<cpc::presets::audio_tiny>;
constexpr std::size_t window = cpc::presets::audio_tiny::window_samples;

model_t::options tiny(std::uint64_t seed) {
  model_t::options o;
  o.seed = seed;
  return o;
}

// `rows` windows, each a sine of random frequency and phase plus noise, drawn from `g`.
void fill_audio(cpc::rng& g, cpc::tensor2<float>& audio, std::size_t rows) {
  cpc::ensure_shape(audio, std::array<std::size_t, 2>{rows, window});
  for (std::size_t b = 0; b < rows; ++b) {
    const double f = g.uniform(0.02, 0.3), phase = g.uniform(0.0, 6.28);
    for (std::size_t i = 0; i < window; ++i)
      audio(b, i) = static_cast<float>(std::sin(f * static_cast<double>(i) + phase) + 0.1 * g.normal());
  }
}

// A batch source of 4 windows per step from `g`.
auto source(cpc::rng& g) {
  return [&g](cpc::audio_batch<float>& b) { fill_audio(g, b.audio, 4); };
}

std::uint64_t weights_fingerprint(model_t& m) {
  const auto& f = m.parameters().flat;
  return cpc::fingerprint(f.values, f.size * sizeof(float));
}

template <class Optimizer>
std::uint64_t state_fingerprint(Optimizer& opt) {
  std::vector<std::uint64_t> each;
  opt.for_each_state(
      [&](const std::string&, auto& s) { each.push_back(cpc::fingerprint(s.data(), s.size() * 4)); });
  return cpc::fingerprint(each.data(), each.size() * sizeof(std::uint64_t));
}

// `v` of every rank, on every rank.
std::vector<std::uint64_t> gather(std::uint64_t v) {
  std::vector<std::uint64_t> all(test_world().size());
  test_world().allgather(&v, all.data(), sizeof v);
  return all;
}

std::uint64_t bits(double v) {
  std::uint64_t u;
  std::memcpy(&u, &v, sizeof u);
  return u;
}

// Training options for the test group: `steps` steps, no progress line.
cpc::train_options quiet(std::uint64_t steps) {
  cpc::train_options o;
  o.max_steps = steps;
  o.progress = false;
  o.comm = &test_world();
  return o;
}

// A scratch folder with the same name on every rank (rank 0's process id), removed at the end.
struct shared_dir {
  fs::path path;
  shared_dir() {
    std::uint64_t id = static_cast<std::uint64_t>(::getpid());
    test_world().broadcast(&id, sizeof id, 0);
    path = fs::temp_directory_path() / ("cpc_test_distributed_" + std::to_string(id));
    if (test_world().rank() == 0) fs::create_directories(path);
    test_world().barrier();
  }
  ~shared_dir() {
    test_world().barrier();
    std::error_code ec;
    if (test_world().rank() == 0) fs::remove_all(path, ec);
  }
};

}  // namespace

TEST_CASE(
    "2 ranks: replicas hold bit-identical weights after 6 steps, each rank trained on its own windows") {
  auto& w = test_world();
  REQUIRE(w.size() == 2);
  model_t m(tiny(5));
  const std::uint64_t initial = weights_fingerprint(m);
  cpc::adam<float> opt(m.parameters(), {.learning_rate = 1e-3});
  cpc::rng data(11);  // the same seed on both ranks: train gives rank 1 its own stream
  std::uint64_t first_batch = 0;
  auto o = quiet(6);
  o.generators = {{"data", &data}};
  const auto s = cpc::train(
      m, opt, cpc::constant_lr{1e-3},
      [&](cpc::audio_batch<float>& b) {
        fill_audio(data, b.audio, 4);
        if (first_batch == 0) first_batch = cpc::fingerprint(b.audio.data(), b.audio.size() * sizeof(float));
      },
      o);
  CHECK(s.steps == 6);
  CHECK(s.allreduce_seconds > 0);
  const auto weights = gather(weights_fingerprint(m));
  CHECK(weights[0] == weights[1]);
  CHECK(weights[0] != initial);
  const auto state = gather(state_fingerprint(opt));
  CHECK(state[0] == state[1]);
  const auto batches = gather(first_batch);
  CHECK(batches[0] != batches[1]);
  // The reported loss is the mean over the ranks: the same on both.
  const auto loss = gather(bits(s.last.loss));
  CHECK(loss[0] == loss[1]);
}

TEST_CASE(
    "the averaged gradient of 2 ranks with batch 4 each equals the mean of both ranks' single-process "
    "gradients") {
  auto& w = test_world();
  REQUIRE(w.size() == 2);
  // Rank q's 4 windows come from generator 100 + q; its negatives from the model's generator
  // jumped q times (what train gives rank q).
  const auto windows = [](std::size_t q) {
    cpc::rng g(100 + q);
    cpc::tensor2<float> a;
    fill_audio(g, a, 4);
    return a;
  };
  std::vector<std::vector<float>> single;
  std::vector<cpc::info_nce_result> results;
  for (std::size_t q = 0; q < 2; ++q) {
    model_t one(tiny(3));
    for (std::size_t r = 0; r < q; ++r) one.generator().jump();
    results.push_back(one.compute_gradients(windows(q)));
    const auto& f = one.parameters().flat;
    single.emplace_back(f.grads, f.grads + f.size);
  }
  REQUIRE(single[0] != single[1]);

  model_t m(tiny(3));
  cpc::adam<float> opt(m.parameters(), {.learning_rate = 1e-3});
  const cpc::tensor2<float> mine = windows(w.rank());
  const auto s = cpc::train(
      m, opt, cpc::constant_lr{1e-3}, [&](cpc::audio_batch<float>& b) { b.audio = mine; }, quiet(1));
  // train leaves the averaged gradient in the flat gradient buffer (the step does not zero it).
  const auto& f = m.parameters().flat;
  REQUIRE(f.size == single[0].size());
  std::size_t differ = 0;
  for (std::size_t i = 0; i < f.size; ++i) {
    const float mean = (single[0][i] + single[1][i]) * 0.5f;
    if (std::memcmp(&mean, &f.grads[i], sizeof mean) != 0) ++differ;
  }
  CHECK_MESSAGE(differ == 0, differ << " of " << f.size << " gradient elements differ from the mean");
  CHECK(s.last.loss == (results[0].loss + results[1].loss) / 2);
  for (std::size_t k = 0; k < s.last.accuracy.size(); ++k) {
    CHECK(s.last.accuracy[k] == (results[0].accuracy[k] + results[1].accuracy[k]) / 2);
    CHECK(s.last.terms[k] == results[0].terms[k] + results[1].terms[k]);
  }
}

TEST_CASE("resuming a 2-rank checkpoint with 2 ranks continues bit-identically") {
  auto& w = test_world();
  shared_dir dir;
  const auto run = [&](std::uint64_t steps, const fs::path& ckpt, bool resume) {
    model_t m(tiny(7));
    cpc::adam<float> opt(m.parameters(), {.learning_rate = 1e-3});
    cpc::rng data(21);
    if (resume) cpc::load_checkpoint(ckpt, m, opt, {{"data", &data}}, w);
    auto o = quiet(steps);
    o.generators = {{"data", &data}};
    o.checkpoint_path = ckpt;
    cpc::train(m, opt, cpc::constant_lr{1e-3}, source(data), o);
    return weights_fingerprint(m);
  };
  const std::uint64_t straight = run(5, dir.path / "straight.safetensors", false);
  run(3, dir.path / "split.safetensors", false);
  if (w.rank() == 0) {  // rank 0 wrote every rank's generators
    const auto f = cpc::load_safetensors(dir.path / "split.safetensors");
    CHECK(f.metadata.at("ranks") == "2");
    CHECK(f.metadata.at("step") == "3");
    for (const char* t : {"rng.model", "rng.data", "rng.rank1.model", "rng.rank1.data"}) CHECK(f.contains(t));
  }
  const std::uint64_t resumed = run(5, dir.path / "split.safetensors", true);
  CHECK(resumed == straight);
  const auto all = gather(resumed);
  CHECK(all[0] == all[1]);
}

TEST_CASE(
    "resuming with another number of ranks: weights, Adam state and steps carry over; generators restart") {
  auto& w = test_world();
  shared_dir dir;
  const fs::path two = dir.path / "two.safetensors", alone = dir.path / "alone.safetensors";
  std::uint64_t trained = 0, trained_state = 0;
  {  // 2 ranks write a checkpoint after 3 steps
    model_t m(tiny(9));
    cpc::adam<float> opt(m.parameters(), {.learning_rate = 1e-3});
    cpc::rng data(31);
    auto o = quiet(3);
    o.generators = {{"data", &data}};
    o.checkpoint_path = two;
    cpc::train(m, opt, cpc::constant_lr{1e-3}, source(data), o);
    trained = weights_fingerprint(m);
    trained_state = state_fingerprint(opt);
  }
  {  // 2 -> 1: each rank alone (a group of one, MPI_COMM_SELF) resumes it and trains 2 more steps
    cpc::mpi_communicator self(MPI_COMM_SELF, {.timeout_seconds = 30});
    model_t m(tiny(9));
    cpc::adam<float> opt(m.parameters(), {.learning_rate = 1e-3});
    cpc::rng data(31);
    const auto meta = cpc::load_checkpoint(two, m, opt, {{"data", &data}}, self);
    CHECK(meta.at("ranks") == "2");
    CHECK(weights_fingerprint(m) == trained);
    CHECK(state_fingerprint(opt) == trained_state);
    CHECK(opt.steps() == 3);
    const auto saved = cpc::load_safetensors(two).at("rng.data").values<std::uint64_t>();
    CHECK(std::equal(saved.begin(), saved.end(), data.state().begin()));  // rank 0's stream
    auto o = quiet(5);
    o.comm = &self;
    o.generators = {{"data", &data}};
    if (w.rank() == 0) o.checkpoint_path = alone;
    const auto s = cpc::train(m, opt, cpc::constant_lr{1e-3}, source(data), o);
    CHECK(s.steps_run == 2);
  }
  {  // 1 -> 2: the one-process checkpoint on 2 ranks; rank 1's generators are rank 0's jumped once
    model_t m(tiny(9));
    cpc::adam<float> opt(m.parameters(), {.learning_rate = 1e-3});
    cpc::rng data(31);
    const auto meta = cpc::load_checkpoint(alone, m, opt, {{"data", &data}}, w);
    CHECK(meta.count("ranks") == 0);
    CHECK(opt.steps() == 5);
    const auto weights = gather(weights_fingerprint(m));
    CHECK(weights[0] == weights[1]);
    std::array<std::uint64_t, 8> states{};
    w.allgather(data.state().data(), states.data(), 4 * sizeof(std::uint64_t));
    cpc::rng expected(1);
    expected.set_state({states[0], states[1], states[2], states[3]});
    expected.jump();
    CHECK(std::equal(expected.state().begin(), expected.state().end(), states.begin() + 4));
    auto o = quiet(7);
    o.generators = {{"data", &data}};
    cpc::train(m, opt, cpc::constant_lr{1e-3}, source(data), o);
    const auto after = gather(weights_fingerprint(m));
    CHECK(after[0] == after[1]);
  }
}

TEST_CASE("a checkpoint that rank 0 cannot write is an io_error on every rank") {
  auto& w = test_world();
  model_t m(tiny(1));
  cpc::adam<float> opt(m.parameters(), {.learning_rate = 1e-3});
  cpc::rng data(2);
  auto o = quiet(2);
  o.checkpoint_path = "/proc/cpc-no-such-folder/model.safetensors";
  std::string message;
  try {
    cpc::train(m, opt, cpc::constant_lr{1e-3}, source(data), o);
  } catch (const cpc::io_error& e) {
    message = e.what();
  }
  INFO("rank " << w.rank() << ": " << message);
  CHECK(message.find(w.rank() == 0 ? "write_file_atomically" : "rank 0: writing the checkpoint") !=
        std::string::npos);
  CHECK(opt.steps() == 0);
}

TEST_CASE("a NaN on one rank stops both ranks at the same step with numeric_error") {
  auto& w = test_world();
  model_t m(tiny(2));
  cpc::adam<float> opt(m.parameters(), {.learning_rate = 1e-3});
  cpc::rng data(4);
  int step = 0;
  std::string message;
  try {
    cpc::train(
        m, opt, cpc::constant_lr{1e-3},
        [&](cpc::audio_batch<float>& b) {
          fill_audio(data, b.audio, 4);
          if (++step == 3 && w.rank() == 1) b.audio(0, 7) = std::numeric_limits<float>::quiet_NaN();
        },
        quiet(6));
  } catch (const cpc::numeric_error& e) {
    message = e.what();
  }
  INFO("rank " << w.rank() << ": " << message);
  CHECK(message.find("training step 3") != std::string::npos);
  CHECK(opt.steps() == 2);
  const auto weights = gather(weights_fingerprint(m));
  CHECK(weights[0] == weights[1]);
}

TEST_CASE("a time budget ends both ranks at the same step, rank 0's clock deciding") {
  auto& w = test_world();
  model_t m(tiny(6));
  cpc::adam<float> opt(m.parameters(), {.learning_rate = 1e-3});
  cpc::rng data(8);
  auto o = quiet(0);
  o.max_seconds = 0.3;
  const auto s = cpc::train(
      m, opt, cpc::constant_lr{1e-3},
      [&](cpc::audio_batch<float>& b) {
        fill_audio(data, b.audio, 4);
        if (w.rank() == 1) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      },
      o);
  CHECK(s.steps >= 1);
  const auto steps = gather(s.steps);
  CHECK(steps[0] == steps[1]);
}

TEST_CASE(
    "a rank that does not take part ends the other's collective with communication_error after the "
    "deadline") {
  auto& w = test_world();
  cpc::mpi_communicator quick(MPI_COMM_WORLD, {.timeout_seconds = 1});
  if (w.rank() == 0) {
    const auto t0 = std::chrono::steady_clock::now();
    std::string message;
    try {
      quick.barrier();
    } catch (const cpc::communication_error& e) {
      message = e.what();
    }
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    INFO(message);
    CHECK(message.find("barrier on rank 0 of 2 did not complete within 1 s") != std::string::npos);
    CHECK(waited >= 1.0);
    CHECK(waited < 2.0);
  } else {
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    quick.barrier();  // completes: rank 0's request is still posted
  }
  w.barrier();
}

// Run by ctest `distributed.watchdog` alone (--no-skip): the process must end with the watchdog's
// message, since no exception can leave a blocking MPI_Allreduce.
TEST_CASE("watchdog: a rank that hangs inside the allreduce's transfer ends the waiting rank's process" *
          doctest::skip()) {
  auto& w = test_world();
  cpc::mpi_communicator quick(MPI_COMM_WORLD, {.timeout_seconds = 1});
  if (w.rank() == 0) {
    std::vector<float> x(1000, 1.0f);
    quick.allreduce_sum(x.data(), x.size());  // arrives (the barrier matches rank 1's), then blocks
  } else {
    quick.barrier();  // matches rank 0's arrival, then never joins the allreduce
    std::this_thread::sleep_for(std::chrono::seconds(10));
  }
  FAIL("the watchdog did not end rank 0");
}
