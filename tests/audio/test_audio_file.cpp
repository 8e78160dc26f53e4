#include <doctest/doctest.h>

#include <cpc/data/audio_file.hpp>

#include <cmath>
#include <limits>

#include "audio_test_util.hpp"

using namespace cpc;
using namespace cpc::testing;

TEST_CASE("read_audio: 16-bit WAV and FLAC round trip at 16 kHz mono") {
  temp_dir dir;
  std::vector<float> x = tone(440.0, 16000, 4000, 0.7);
  x[0] = 1.0f;  // clipped to 32767/32768 on write
  x[1] = -1.0f;
  x[2] = 0.25f;
  for (auto format : {audio_format::wav_pcm16, audio_format::flac_pcm16}) {
    const auto path = dir / (format == audio_format::wav_pcm16 ? "a.wav" : "a.flac");
    write_audio(path, x, 16000, 1, format);
    const auto info = probe_audio(path);
    CHECK(info.sample_rate == 16000);
    CHECK(info.channels == 1);
    CHECK(info.frames == x.size());
    const auto y = read_audio(path, {.strict = true});
    REQUIRE(y.size() == x.size());
    double worst = 0;
    for (std::size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(double(x[i]) - y[i]));
    CHECK(worst <= 1.0 / 32768 + 1e-7);  // one 16-bit step, from rounding or the +1.0 clip
    CHECK(y[1] == -1.0f);
    CHECK(y[2] == 0.25f);  // exactly representable in 16 bits
  }
}

TEST_CASE("read_audio: write_wav clips out-of-range values instead of wrapping") {
  temp_dir dir;
  const std::vector<float> x = {1.5f, -3.0f, 0.5f};
  write_wav(dir / "c.wav", x, 16000);
  const auto y = read_audio(dir / "c.wav");
  REQUIRE(y.size() == 3);
  CHECK(y[0] > 0.999f);
  CHECK(y[1] == -1.0f);
  CHECK(y[2] == 0.5f);
}

TEST_CASE("read_audio: resampling tones to 16 kHz keeps frequency, amplitude and duration") {
  temp_dir dir;
  for (int rate : {8000, 22050, 32000, 44100, 48000}) {
    for (double f : {440.0, 1000.0, 3100.0}) {
      CAPTURE(rate);
      CAPTURE(f);
      const std::size_t n = static_cast<std::size_t>(rate) * 3 / 2;  // 1.5 s
      const auto path = dir / (std::to_string(rate) + "t.flac");
      write_audio(path, tone(f, rate, n, 0.5), rate, 1, audio_format::flac_pcm16);
      const auto y = read_audio(path);
      const double expected_len = static_cast<double>(n) * 16000.0 / rate;
      CHECK(static_cast<double>(y.size()) == std::round(expected_len));
      CHECK(zero_crossing_frequency(y, 16000, 400) == doctest::Approx(f).epsilon(1e-4));
      CHECK(rms(y, 400) == doctest::Approx(0.5 / std::sqrt(2.0)).epsilon(2e-3));
      CHECK_THROWS_AS(read_audio(path, {.strict = true}), io_error);
    }
  }
}

TEST_CASE("read_audio: the anti-aliasing filter removes content above 8 kHz instead of folding it") {
  temp_dir dir;
  // 11 kHz in a 48 kHz file would alias to 5 kHz without a low-pass; with one it vanishes.
  write_audio(dir / "hi.wav", tone(11000.0, 48000, 48000, 0.5), 48000, 1, audio_format::wav_float);
  const auto y = read_audio(dir / "hi.wav");
  CHECK(y.size() == 16000);
  CHECK(rms(y, 400) < 1e-3);
}

TEST_CASE("read_audio: stereo is downmixed by averaging the channels") {
  temp_dir dir;
  const std::size_t n = 1000;
  const auto left = tone(500.0, 16000, n, 0.5);
  std::vector<float> inter(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    inter[2 * i] = left[i];
    inter[2 * i + 1] = 0.25f;  // DC on the right
  }
  write_audio(dir / "s.wav", inter, 16000, 2, audio_format::wav_float);
  CHECK(probe_audio(dir / "s.wav").channels == 2);
  const auto y = read_audio(dir / "s.wav");
  REQUIRE(y.size() == n);
  for (std::size_t i = 0; i < n; i += 37) CHECK(y[i] == doctest::Approx(0.5 * left[i] + 0.125).epsilon(1e-6));
  CHECK_THROWS_WITH_AS(read_audio(dir / "s.wav", {.strict = true}),
                       doctest::Contains("strict mode expects mono 16000 Hz, got 2 channel(s) at 16000 Hz"),
                       io_error);
  // Stereo at 44.1 kHz: downmix then resample.
  std::vector<float> st(2 * 44100);
  const auto t = tone(700.0, 44100, 44100, 0.4);
  for (std::size_t i = 0; i < t.size(); ++i) st[2 * i] = st[2 * i + 1] = t[i];
  write_audio(dir / "s44.wav", st, 44100, 2);
  const auto z = read_audio(dir / "s44.wav");
  CHECK(z.size() == 16000);
  CHECK(zero_crossing_frequency(z, 16000, 400) == doctest::Approx(700.0).epsilon(1e-4));
}

TEST_CASE("read_audio: bad files throw io_error naming the file and the reason") {
  temp_dir dir;
  write_wav(dir / "good.wav", tone(300.0, 16000, 16000), 16000);
  write_audio(dir / "good.flac", tone(300.0, 16000, 16000), 16000, 1, audio_format::flac_pcm16);
  const std::string wav = read_bytes(dir / "good.wav");
  const std::string flac = read_bytes(dir / "good.flac");

  SUBCASE("missing") {
    CHECK_THROWS_WITH_AS(read_audio(dir / "nope.wav"), doctest::Contains("nope.wav': no such file"),
                         io_error);
    std::filesystem::create_directory(dir / "folder.wav");
    CHECK_THROWS_WITH_AS(read_audio(dir / "folder.wav"), doctest::Contains("folder.wav': not a regular file"),
                         io_error);
  }
  SUBCASE("empty") {
    write_bytes(dir / "empty.wav", "");
    CHECK_THROWS_WITH_AS(read_audio(dir / "empty.wav"), doctest::Contains("empty.wav': cannot open ("),
                         io_error);
  }
  SUBCASE("text renamed .wav") {
    write_bytes(dir / "text.wav", "this is not audio at all, just some words in a file\n");
    CHECK_THROWS_WITH_AS(read_audio(dir / "text.wav"), doctest::Contains("text.wav': cannot open ("),
                         io_error);
  }
  SUBCASE("WAV truncated in the data") {
    write_bytes(dir / "cut.wav", wav.substr(0, wav.size() / 2));
    CHECK_THROWS_WITH_AS(read_audio(dir / "cut.wav"), doctest::Contains("cut.wav': truncated"), io_error);
  }
  SUBCASE("WAV truncated in the header") {
    write_bytes(dir / "head.wav", wav.substr(0, 30));
    CHECK_THROWS_WITH_AS(read_audio(dir / "head.wav"),
                         doctest::Contains("head.wav': cannot open (Error in WAV"), io_error);
  }
  SUBCASE("FLAC truncated") {
    write_bytes(dir / "cut.flac", flac.substr(0, flac.size() / 2));
    CHECK_THROWS_WITH_AS(read_audio(dir / "cut.flac"),
                         doctest::Contains("cut.flac': truncated or corrupt: decoded"), io_error);
  }
  SUBCASE("header with no samples") {
    write_wav(dir / "zero.wav", std::vector<float>{}, 16000);
    CHECK_THROWS_WITH_AS(read_audio(dir / "zero.wav"), doctest::Contains("zero.wav': contains no samples"),
                         io_error);
  }
  SUBCASE("NaN and Inf in a float WAV") {
    std::vector<float> x(100, 0.1f);
    x[42] = std::numeric_limits<float>::quiet_NaN();
    write_audio(dir / "nan.wav", x, 16000, 1, audio_format::wav_float);
    CHECK_THROWS_WITH_AS(read_audio(dir / "nan.wav"),
                         doctest::Contains("nan.wav': non-finite sample (NaN or Inf) at frame 42"), io_error);
    x[42] = 0.0f;
    x[7] = std::numeric_limits<float>::infinity();
    write_audio(dir / "inf.wav", x, 16000, 1, audio_format::wav_float);
    CHECK_THROWS_WITH_AS(read_audio(dir / "inf.wav"), doctest::Contains("at frame 7"), io_error);
  }
  SUBCASE("a good file still reads after all that") {
    CHECK(read_audio(dir / "good.wav").size() == 16000);
  }
}

TEST_CASE("read_audio: a streaming WAV header with a placeholder data size is accepted") {
  temp_dir dir;
  write_wav(dir / "s.wav", tone(300.0, 16000, 1600), 16000);
  std::string bytes = read_bytes(dir / "s.wav");
  REQUIRE(bytes.substr(36, 4) == "data");
  for (int i = 0; i < 4; ++i) bytes[40 + i] = static_cast<char>(0xff);  // data size 0xffffffff
  for (int i = 0; i < 4; ++i) bytes[4 + i] = static_cast<char>(0xff);   // RIFF size too
  write_bytes(dir / "s.wav", bytes);
  CHECK(read_audio(dir / "s.wav").size() == 1600);
}

TEST_CASE("read_audio and resample: option errors") {
  CHECK_THROWS_AS(read_audio("x.wav", {.sample_rate = 0}), config_error);
  const std::vector<float> x(10, 0.0f);
  CHECK_THROWS_AS(resample(x, 0, 16000), config_error);
  CHECK(resample(x, 16000, 16000).size() == 10);
  CHECK_THROWS_AS(write_audio("x.wav", x, 16000, 3), config_error);
}
