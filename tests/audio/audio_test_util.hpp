#pragma once
// Helpers shared by the audio tests: a temporary directory removed at scope exit, tones, files.
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include <cpc/data/audio_file.hpp>

namespace cpc::testing {

/// A fresh directory under the system temp dir, removed (recursively) on destruction.
class temp_dir {
 public:
  temp_dir() {
    std::random_device rd;
    const auto base = std::filesystem::temp_directory_path();
    for (int attempt = 0; attempt < 100; ++attempt) {
      path_ = base / ("cpc-test-" + std::to_string(rd()) + std::to_string(rd()));
      if (std::filesystem::create_directory(path_)) return;
    }
    throw std::runtime_error("temp_dir: could not create a unique directory");
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// `amplitude * sin(2 pi f t)` for `n` samples at `rate` Hz.
inline std::vector<float> tone(double f, int rate, std::size_t n, double amplitude = 0.5) {
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i)
    x[i] =
        static_cast<float>(amplitude * std::sin(2.0 * std::numbers::pi * f * static_cast<double>(i) / rate));
  return x;
}

/// Frequency of a (clean) tone from its rising zero crossings, interpolated between samples.
inline double zero_crossing_frequency(const std::vector<float>& x, int rate, std::size_t skip = 0) {
  double first = -1, last = -1;
  std::size_t count = 0;
  for (std::size_t i = skip + 1; i + skip < x.size(); ++i) {
    if (x[i - 1] < 0.0f && x[i] >= 0.0f) {
      const double t = static_cast<double>(i - 1) + x[i - 1] / static_cast<double>(x[i - 1] - x[i]);
      if (first < 0) first = t;
      last = t;
      ++count;
    }
  }
  if (count < 2) return 0.0;
  return static_cast<double>(count - 1) * rate / (last - first);
}

/// Root mean square of x[skip, size - skip).
inline double rms(const std::vector<float>& x, std::size_t skip = 0) {
  double s = 0;
  std::size_t n = 0;
  for (std::size_t i = skip; i + skip < x.size(); ++i, ++n) s += double(x[i]) * x[i];
  return n ? std::sqrt(s / static_cast<double>(n)) : 0.0;
}

/// Writes `bytes` verbatim to `path`.
inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// Reads a whole file as bytes.
inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

/// One utterance of a corpus folder built by a test.
struct fake_utterance {
  std::string speaker, chapter, id;
  std::size_t samples = 16000;  ///< length at `rate`
  int rate = 16000;
  std::string ext = ".flac";
};

/// Writes `u` as `<root>/<speaker>/<chapter>/<id><ext>`: a tone whose frequency depends on the
/// id, 16-bit FLAC or WAV. Returns the path.
inline std::filesystem::path write_fake_utterance(const std::filesystem::path& root,
                                                  const fake_utterance& u) {
  auto dir = root / u.speaker;
  if (!u.chapter.empty()) dir /= u.chapter;
  std::filesystem::create_directories(dir);
  const auto path = dir / (u.id + u.ext);
  double f = 200.0 + static_cast<double>(std::hash<std::string>{}(u.id) % 1000);
  write_audio(path, tone(f, u.rate, u.samples, 0.3), u.rate, 1,
              u.ext == ".flac" ? audio_format::flac_pcm16 : audio_format::wav_pcm16);
  return path;
}

}  // namespace cpc::testing
