#include <doctest/doctest.h>

#include <cpc/eval/features.hpp>

#include <cmath>
#include <numbers>
#include <thread>
#include <vector>

#include <xtensor/xview.hpp>

#include "support/golden.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

/// The golden test signal (same formula as tests/golden/gen_features.py).
std::vector<float> test_signal(std::size_t n) {
  std::vector<float> x(n);
  for (std::size_t k = 0; k < n; ++k) {
    const double i = static_cast<double>(k);
    x[k] = static_cast<float>(0.5 * std::sin(2 * std::numbers::pi * 440 * i / 16000) +
                              0.25 * std::sin(2 * std::numbers::pi * 3100 * i / 16000 + 0.3) +
                              0.1 * std::sin(0.0007 * i * i) + 0.01 * std::sin(0.37 * i * i + i));
  }
  return x;
}

std::vector<float> tone(std::size_t n, double hz, double amplitude = 0.5) {
  std::vector<float> x(n);
  for (std::size_t k = 0; k < n; ++k)
    x[k] =
        static_cast<float>(amplitude * std::sin(2 * std::numbers::pi * hz * static_cast<double>(k) / 16000));
  return x;
}

}  // namespace

TEST_CASE("audio_features: MFCC, log mel and log power match an independent numpy implementation") {
  auto g = read_golden("features.txt");
  const auto x = test_signal(1600);
  audio_features feats;
  tensor2<float> mfcc, mel, pow;
  feats.mfcc(x, mfcc);
  feats.log_mel_spectrum(x, mel);
  feats.log_power_spectrum(x, pow);
  REQUIRE(mfcc.shape()[0] == 10);
  REQUIRE(mfcc.shape()[1] == 39);
  CHECK(max_relative_error(mfcc, g["mfcc"]) < 1e-4);
  tensor2<float> mel_rows = xt::view(mel, xt::keep(0, 4, 9), xt::all());
  CHECK(max_relative_error(mel_rows, g["log_mel"]) < 1e-4);
  tensor2<float> pow_rows = xt::view(pow, xt::keep(0, 5), xt::range(0, 257, 4));
  CHECK(max_relative_error(pow_rows, g["log_power"]) < 1e-4);
}

TEST_CASE("audio_features: shapes and frame count floor(samples / 160)") {
  audio_features feats;
  tensor2<float> out;
  for (std::size_t n : {0, 159, 160, 161, 20480, 20479}) {
    const std::vector<float> x(n, 0.1f);
    feats.mfcc(x, out);
    CHECK(out.shape()[0] == n / 160);
    CHECK(out.shape()[1] == 39);
    feats.log_power_spectrum(x, out);
    CHECK(out.shape()[0] == n / 160);
    CHECK(out.shape()[1] == 257);
    feats.log_mel_spectrum(x, out);
    CHECK(out.shape()[1] == 40);
  }
  feats.mfcc(std::vector<float>(1600, 0.1f), out, false);
  CHECK(out.shape()[1] == 13);
}

TEST_CASE("audio_features: frame f is centred on samples [160 f, 160 f + 160)") {
  // A 1 kHz burst filling exactly model frame 7. Frame f's 400-sample window spans
  // [160 f - 120, 160 f + 280), so only frames 6, 7 and 8 see it, 7 most, 6 and 8 about equally.
  std::vector<float> x(160 * 16, 0.0f);
  const auto burst = tone(160, 1000);
  std::copy(burst.begin(), burst.end(), x.begin() + 160 * 7);
  audio_features feats;
  tensor2<float> mel;
  feats.log_mel_spectrum(x, mel);
  std::vector<double> energy(mel.shape()[0]);
  for (std::size_t f = 0; f < energy.size(); ++f)
    for (std::size_t m = 0; m < 40; ++m) energy[f] += std::exp(static_cast<double>(mel(f, m)));
  const double silent = 40 * 1e-10;
  for (std::size_t f = 0; f < energy.size(); ++f) {
    CAPTURE(f);
    if (f < 6 || f > 8) CHECK(energy[f] == doctest::Approx(silent).epsilon(1e-3));
  }
  CHECK(energy[7] > 2 * energy[6]);
  CHECK(energy[7] > 2 * energy[8]);
  CHECK(energy[6] > 1e3 * silent);
  CHECK(energy[6] == doctest::Approx(energy[8]).epsilon(0.2));
}

TEST_CASE("audio_features: a pure tone peaks at its FFT bin and its mel filter") {
  audio_features feats;
  tensor2<float> pow, mel;
  for (double hz : {1000.0, 2500.0, 6000.0}) {
    CAPTURE(hz);
    const auto x = tone(3200, hz);
    feats.log_power_spectrum(x, pow);
    feats.log_mel_spectrum(x, mel);
    const std::size_t f = 10;  // a frame well inside the signal
    const float* row = pow.data() + f * 257;
    const auto peak = static_cast<std::size_t>(std::max_element(row, row + 257) - row);
    CHECK(peak == static_cast<std::size_t>(std::lround(hz * 512 / 16000)));
    // The mel filter with the largest response is one whose triangle contains the tone.
    const float* mrow = mel.data() + f * 40;
    const auto mpeak = static_cast<std::size_t>(std::max_element(mrow, mrow + 40) - mrow);
    CHECK(feats.mel_filterbank()[mpeak * 257 + peak] > 0.3f);
  }
}

TEST_CASE("audio_features: silence gives the log floor; c0 = sqrt(40) ln(floor), other cepstra 0") {
  audio_features feats;
  tensor2<float> mfcc;
  feats.mfcc(std::vector<float>(1600, 0.0f), mfcc);
  const double floor = std::log(1e-10f);
  for (std::size_t f = 0; f < 10; ++f) {
    CHECK(mfcc(f, 0) == doctest::Approx(std::sqrt(40.0) * floor).epsilon(1e-5));
    for (std::size_t i = 1; i < 39; ++i) CHECK(std::abs(mfcc(f, i)) < 1e-4);
  }
}

TEST_CASE("audio_features: HTK deltas over +-2 frames, edges repeated") {
  audio_features feats;
  // Column block [0, 13) holds c_t = t * (i + 1); deltas go to [13, 26).
  const std::size_t nf = 6, width = 39;
  std::vector<float> data(nf * width, 0.0f);
  for (std::size_t t = 0; t < nf; ++t)
    for (std::size_t i = 0; i < 13; ++i) data[t * width + i] = static_cast<float>(t * (i + 1));
  feats.deltas(data.data(), nf, width, 0, 13);
  for (std::size_t i = 0; i < 13; ++i) {
    const double s = static_cast<double>(i + 1);
    CHECK(data[0 * width + 13 + i] == doctest::Approx(s * (1 * 1 + 2 * 2) / 10.0));  // t = 0: (1 + 4) / 10
    CHECK(data[1 * width + 13 + i] == doctest::Approx(s * (1 * 2 + 2 * 3) / 10.0));  // t = 1: c_-1 = c_0
    CHECK(data[2 * width + 13 + i] == doctest::Approx(s));                           // interior: slope
    CHECK(data[3 * width + 13 + i] == doctest::Approx(s));
    CHECK(data[5 * width + 13 + i] == doctest::Approx(s * (1 * 1 + 2 * 2) / 10.0));  // t = 5: c_6 = c_7 = c_5
  }
}

TEST_CASE("audio_features: objects on several threads agree with one serial object") {
  const auto x = test_signal(3200);
  tensor2<float> serial;
  audio_features(audio_features::options{}).mfcc(x, serial);
  std::vector<tensor2<float>> results(6);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < results.size(); ++t)
    threads.emplace_back([&, t] {
      // Different FFT sizes make the threads plan concurrently.
      audio_features other({.window = 300 + 10 * t, .fft_size = 512 + 128 * (t % 3)});
      tensor2<float> ignored;
      other.mfcc(x, ignored);
      audio_features feats;
      feats.mfcc(x, results[t]);
    });
  for (auto& th : threads) th.join();
  for (const auto& r : results) CHECK(r == serial);
}

TEST_CASE("audio_features: inconsistent options throw config_error") {
  CHECK_THROWS_WITH_AS(audio_features({.window = 600, .fft_size = 512}),
                       "audio_features: expected fft_size >= window, got fft_size 512 < window 600",
                       config_error);
  CHECK_THROWS_WITH_AS(audio_features({.mel_filters = 10, .cepstra = 13}),
                       "audio_features: expected 0 < cepstra <= mel_filters, got cepstra 13, mel_filters 10",
                       config_error);
  CHECK_THROWS_AS(audio_features({.high_hz = 9000}), config_error);
  CHECK_THROWS_AS(audio_features({.hop = 0}), config_error);
}
