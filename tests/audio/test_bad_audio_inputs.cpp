// Bad audio inputs that have no test elsewhere (README.md "Bad input" lists every row and where it
// is tested), and the fuzzers' audio regression inputs.
#include <doctest/doctest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cpc/data/audio_file.hpp>
#include <cpc/data/corpus.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "audio_test_util.hpp"

using namespace cpc;
using namespace cpc::testing;
namespace fs = std::filesystem;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool under_asan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool under_asan = true;
#else
constexpr bool under_asan = false;
#endif
#else
constexpr bool under_asan = false;
#endif

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Runs read_audio(path) in a child process limited to `limit_mb` MiB of address space beyond
/// what it has mapped already (no
/// limit under ASan, whose shadow memory needs terabytes of address space; its allocator then
/// reports the huge allocation instead). Exit status: 0 = io_error, 1 = read fine, 2 = bad_alloc,
/// 3 = another exception.
int read_audio_in_child(const fs::path& path, std::size_t limit_mb) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (!under_asan) {
      std::size_t pages = 0;
      std::ifstream("/proc/self/statm") >> pages;  // address space in use now
      const rlim_t bytes = pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) + (limit_mb << 20);
      rlimit r{bytes, bytes};
      ::setrlimit(RLIMIT_AS, &r);
    }
    int code = 3;
    try {
      (void)read_audio(path);
      code = 1;
    } catch (const io_error&) {
      code = 0;
    } catch (const std::bad_alloc&) {
      code = 2;
    } catch (...) {
    }
    ::_exit(code);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

}  // namespace

TEST_CASE(
    "bad audio: a FLAC header announcing 2^31 frames in 190 bytes is io_error, without a huge allocation") {
  // tests/fuzz/corpus/fuzz_read_audio/regression-flac-huge-frame-count (found by fuzz_read_audio;
  // byte 0 is the fuzzer's option byte). read_audio used to allocate the announced 8.8 GB up front.
  const std::string input =
      slurp(fs::path(CPC_SOURCE_DIR) / "tests/fuzz/corpus/fuzz_read_audio/regression-flac-huge-frame-count");
  REQUIRE(input.size() > 100);
  temp_dir dir;
  const auto path = dir / "huge.flac";
  std::ofstream(path, std::ios::binary) << input.substr(1);
  CHECK(probe_audio(path).frames > (std::size_t{1} << 30));
  CHECK_THROWS_WITH_AS(read_audio(path), doctest::Contains("huge.flac': truncated or corrupt: decoded "),
                       io_error);
  // 256 MiB more address space is plenty for the real content; the old code died with bad_alloc.
  CHECK(read_audio_in_child(path, 256) == 0);
}

TEST_CASE("bad audio: stereo 44.1 kHz is downmixed and resampled by default, refused in strict mode") {
  temp_dir dir;
  std::vector<float> stereo;
  for (float x : tone(440.0, 44100, 4410)) {
    stereo.push_back(x);
    stereo.push_back(-0.5f * x);
  }
  write_audio(dir / "s.wav", stereo, 44100, 2);
  CHECK(read_audio(dir / "s.wav").size() == 1600);  // 0.1 s at 16 kHz
  CHECK_THROWS_WITH_AS(
      read_audio(dir / "s.wav", {.strict = true}),
      doctest::Contains("s.wav': strict mode expects mono 16000 Hz, got 2 channel(s) at 44100 Hz"), io_error);
}

TEST_CASE("bad audio: a corpus with a NaN file and a truncated file skips both with their reasons") {
  temp_dir dir;
  fs::create_directories(dir / "spk/ch");
  write_wav(dir / "spk/ch/good.wav", tone(300.0, 16000, 1600), 16000);
  std::vector<float> nan_samples(1600, 0.1f);
  nan_samples[800] = std::numeric_limits<float>::quiet_NaN();
  write_audio(dir / "spk/ch/nan.wav", nan_samples, 16000, 1, audio_format::wav_float);
  write_wav(dir / "spk/ch/cut.wav", tone(300.0, 16000, 1600), 16000);
  const std::string cut = slurp(dir / "spk/ch/cut.wav");
  std::ofstream(dir / "spk/ch/cut.wav", std::ios::binary | std::ios::trunc) << cut.substr(0, cut.size() / 2);

  const speech_corpus c(dir.path(), {.log = nullptr});
  CHECK(c.size() == 1);
  REQUIRE(c.skipped().size() == 2);
  CHECK(c.skipped()[0].reason.find("cut.wav': truncated") != std::string::npos);
  CHECK(c.skipped()[1].reason.find("nan.wav': non-finite sample (NaN or Inf) at frame 800") !=
        std::string::npos);
  CHECK_THROWS_WITH_AS(speech_corpus(dir.path(), {.skip_bad_files = false, .log = nullptr}),
                       doctest::Contains("speech_corpus: audio file '"), io_error);
}

TEST_CASE(
    "bad audio: one frame at 44.1 kHz resamples to no samples at 16 kHz: io_error, not an empty vector") {
  // tests/fuzz/corpus/fuzz_read_audio/regression-one-frame-resampled-to-none (found by
  // fuzz_read_audio): a stereo 44.1 kHz WAV with a streaming placeholder data size and one frame.
  const std::string input = slurp(fs::path(CPC_SOURCE_DIR) /
                                  "tests/fuzz/corpus/fuzz_read_audio/regression-one-frame-resampled-to-none");
  temp_dir dir;
  std::ofstream(dir / "one.wav", std::ios::binary) << input.substr(1);
  CHECK_THROWS_WITH_AS(
      read_audio(dir / "one.wav"),
      doctest::Contains("one.wav': contains no samples at 16000 Hz (1 frame(s) at 44100 Hz)"), io_error);
  write_audio(dir / "one-written.wav", std::vector<float>{0.5f, 0.5f}, 44100, 2);
  CHECK_THROWS_AS(read_audio(dir / "one-written.wav"), io_error);
  CHECK(read_audio(dir / "one-written.wav", {.sample_rate = 44100}).size() == 1);
}

TEST_CASE("bad audio: a file that is not audio names libsndfile's reason while other threads open files") {
  // libsndfile keeps a failed open's reason in one global that any other open overwrites; the
  // corpus opens files in parallel, and on a fresh Debian the reason read "No Error." (found by
  // the README test command in a new Debian 12). Each of these reads must name the real reason;
  // without the lock in sndfile_handle about one run in three lost 10% of them.
  temp_dir dir;
  write_wav(dir / "good.wav", tone(300.0, 16000, 160), 16000);
  write_bytes(dir / "bad.flac", "this is not audio at all, just text in a file named .flac\n");
  std::atomic<bool> stop{false};
  std::atomic<int> good_reads{0}, wrong_sizes{0};
  std::vector<std::thread> openers;
  for (int t = 0; t < 3; ++t)
    openers.emplace_back([&] {
      while (!stop.load()) {
        wrong_sizes += read_audio(dir / "good.wav").size() != 160;
        ++good_reads;
      }
    });
  int named = 0;
  for (int i = 0; i < 2000; ++i) {
    try {
      (void)read_audio(dir / "bad.flac");
    } catch (const io_error& e) {
      named +=
          std::string(e.what()).find("bad.flac': cannot open (Format not recognised") != std::string::npos;
    }
  }
  stop = true;
  for (auto& t : openers) t.join();
  CHECK(named == 2000);
  CHECK(good_reads.load() > 0);
  CHECK(wrong_sizes.load() == 0);
}

TEST_CASE("bad labels: a label of 2^31 - 1 without a phone list gives 2^31 classes, not a signed overflow") {
  // tests/fuzz/corpus/fuzz_corpus/regression-label-int32-max (found by clang-tidy's
  // bugprone-misplaced-widening-cast, replayed by fuzz_corpus): num_phones was max_label + 1 in int32.
  temp_dir dir;
  fs::create_directories(dir / "s1/c1");
  write_wav(dir / "s1/c1/u1.wav", tone(300.0, 16000, 480), 16000);
  std::ofstream(dir / "alignments.txt") << "u1 0 1 2147483647\n";
  const speech_corpus c(dir.path(), {.log = nullptr});
  CHECK(c.num_phones() == (std::size_t{1} << 31));
  CHECK(c[0].labels == std::vector<std::int32_t>{0, 1, 2147483647});
}
