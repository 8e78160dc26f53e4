// Crash safety of training (issue 7): a run killed at any moment - including in the middle of a
// checkpoint save - leaves the previous or the new checkpoint on disk, complete and loadable, and
// resuming from it continues the run exactly (one thread: bit-identical to an uninterrupted run).
// Children are forked after cpc::set_num_threads(1), so they never touch the parent's oneTBB
// workers, and leave with _exit.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cpc/core/threads.hpp>
#include <cpc/model/model.hpp>
#include <cpc/optim/adam.hpp>
#include <cpc/train/checkpoint.hpp>
#include <cpc/train/trainer.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

using namespace cpc;
namespace fs = std::filesystem;

namespace {

using tiny_f = model<presets::audio_tiny, strided_conv_encoder, gru, info_nce, float>;

struct temp_dir {
  fs::path path;
  temp_dir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("cpc_test_crash_safety_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

tiny_f::options seeded(std::uint64_t seed) {
  tiny_f::options o;  // (a designated initialiser here trips GCC 12 into an undefined reference)
  o.seed = seed;
  return o;
}

/// A training run's whole state: model (seed 3), Adam and the data generator (seed 4).
struct run {
  tiny_f m{seeded(3)};
  adam<float> opt{m.parameters(), {.learning_rate = 1e-3}};
  rng data{4};

  void batches(training_batch<float>& b) {
    b.audio.resize({std::size_t{4}, std::size_t{512}});
    for (auto& v : b.audio) v = static_cast<float>(0.2 * data.normal());
  }
  /// Trains up to `steps` steps in total, saving to `checkpoint` (when not empty) every `every`.
  train_summary train_to(std::uint64_t steps, const fs::path& checkpoint = {}, std::uint64_t every = 0) {
    train_options o;
    o.max_steps = steps;
    o.checkpoint_path = checkpoint;
    o.checkpoint_every = every;
    o.progress = false;
    o.generators = {{"data", &data}};
    return train(
        m, opt, constant_lr{1e-3}, [this](training_batch<float>& b) { batches(b); }, o);
  }
  void resume(const fs::path& checkpoint) { load_checkpoint(checkpoint, m, opt, {{"data", &data}}); }
  std::vector<float> weights() {
    std::vector<float> w;
    m.for_each_parameter(
        [&](const std::string&, parameter<float>& p) { w.insert(w.end(), p.value.begin(), p.value.end()); });
    opt.for_each_state([&](const std::string&, const auto& s) { w.insert(w.end(), s.begin(), s.end()); });
    return w;
  }
};

/// Forks; the child runs `f` and leaves with _exit(0), or _exit(1) when `f` throws.
template <class F>
pid_t spawn(F&& f) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    int code = 0;
    try {
      f();
    } catch (...) {
      code = 1;
    }
    ::_exit(code);
  }
  REQUIRE(pid > 0);
  return pid;
}

/// SIGKILLs `pid` and reaps it; returns whether it died of that signal (not an earlier exit).
bool kill_and_reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

// The step count in the metadata of the checkpoint at `path`, or 0 while there is none. Safe to
// call while another process saves: saves replace the file atomically.
std::uint64_t saved_step(const fs::path& path) {
  if (!fs::exists(path)) return 0;
  try {
    return std::stoull(load_safetensors(path).metadata.at("step"));
  } catch (const io_error&) {
    return 0;  // replaced between the exists check and the read
  }
}

std::size_t temporary_files(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    n += e.path().filename().string().find(".tmp.") != std::string::npos;
  return n;
}

}  // namespace

TEST_CASE("crash safety: resuming N + M steps from a checkpoint is bit-identical to N + M uninterrupted") {
  set_num_threads(1);
  temp_dir dir;
  const auto ckpt = dir.path / "ckpt.safetensors";
  run uninterrupted;
  std::vector<double> straight;
  for (std::uint64_t k = 1; k <= 7; ++k) straight.push_back(uninterrupted.train_to(k).last.loss);

  run first;
  first.train_to(3, ckpt);
  run second;  // a fresh process would start like this
  second.resume(ckpt);
  CHECK(second.opt.steps() == 3);
  std::vector<double> resumed;
  for (std::uint64_t k = 4; k <= 7; ++k) resumed.push_back(second.train_to(k).last.loss);
  CHECK(resumed == std::vector<double>(straight.begin() + 3, straight.end()));
  CHECK(second.weights() == uninterrupted.weights());
  CHECK(second.m.generator().state() == uninterrupted.m.generator().state());
  CHECK(second.data.state() == uninterrupted.data.state());
  // Without the data generator in the checkpoint the batches would differ: the test can fail.
  run wrong;
  load_checkpoint(ckpt, wrong.m, wrong.opt);
  wrong.train_to(7);
  CHECK(wrong.weights() != uninterrupted.weights());
}

TEST_CASE("crash safety: SIGKILL in the middle of a checkpoint write leaves the old file intact") {
  set_num_threads(1);
  temp_dir dir;
  const auto ckpt = dir.path / "ckpt.safetensors";
  run r;
  r.train_to(2, ckpt);
  const std::string old = read_bytes(ckpt);
  r.train_to(3);
  const std::string next = [&] {
    const auto p = dir.path / "next.safetensors";
    save_checkpoint(p, r.m, r.opt, {{"data", &r.data}});
    auto b = read_bytes(p);
    fs::remove(p);
    return b;
  }();
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  // The child writes half of the new checkpoint into the temporary file, says so, and waits to
  // be killed: a kill during the save, deterministically.
  const pid_t pid = spawn([&] {
    write_file_atomically(ckpt, [&](atomic_output& out) {
      out.write(next.data(), next.size() / 2);
      const char c = 'x';
      (void)::write(ready[1], &c, 1);
      for (;;) ::pause();
    });
  });
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  ::close(ready[0]);
  ::close(ready[1]);
  CHECK(kill_and_reap(pid));
  CHECK(read_bytes(ckpt) == old);
  CHECK(temporary_files(dir.path) == 1);  // the half-written temporary file, never the target
  run resumed;
  resumed.resume(ckpt);
  CHECK(resumed.opt.steps() == 2);
  // The next save works despite the leftover and replaces the file completely.
  resumed.train_to(3, ckpt);
  CHECK(read_bytes(ckpt) == next);
}

TEST_CASE(
    "crash safety: training SIGKILLed at random moments always leaves a loadable checkpoint and resumes") {
  set_num_threads(1);
  temp_dir dir;
  const auto ckpt = dir.path / "ckpt.safetensors";
  rng delays(2024);  // seeded kill moments
  std::uint64_t last_step = 0;
  std::size_t advanced = 0;
  const int rounds = 10;
  for (int round = 0; round < rounds; ++round) {
    // The child resumes from the checkpoint when there is one and trains with a checkpoint
    // after every step (so most of its time is spent saving) until it is killed.
    const pid_t pid = spawn([&] {
      run r;
      if (fs::exists(ckpt)) r.resume(ckpt);
      r.train_to(1000000, ckpt, 1);
    });
    // Wait until the child has saved a step beyond the last one (up to a minute: sanitizers and
    // a loaded machine make loading and the first step slow), so that every round trains; then
    // kill it at a seeded random moment of its step-and-save loop.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (saved_step(ckpt) <= last_step && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::microseconds(delays.uniform<std::int64_t>(0, 60000)));
    REQUIRE(kill_and_reap(pid));      // it was still training, not dead of an error
    if (!fs::exists(ckpt)) continue;  // killed before its first save
    run check;
    CHECK_NOTHROW(check.resume(ckpt));
    const std::uint64_t step = check.opt.steps();
    CHECK(step >= last_step);  // never goes back: the previous or a newer checkpoint
    advanced += step > last_step;
    last_step = step;
  }
  MESSAGE("after " << rounds << " kills: step " << last_step << ", " << advanced << " rounds advanced, "
                   << temporary_files(dir.path) << " temporary files left by kills during a save");
  REQUIRE(last_step > 0);
  CHECK(advanced == static_cast<std::size_t>(rounds));  // each round waited for a new save

  // Resuming after all the kills continues the run exactly as if it had never been interrupted.
  run resumed;
  resumed.resume(ckpt);
  resumed.train_to(last_step + 3);
  run uninterrupted;
  uninterrupted.train_to(last_step + 3);
  CHECK(resumed.weights() == uninterrupted.weights());
  CHECK(resumed.data.state() == uninterrupted.data.state());
}
