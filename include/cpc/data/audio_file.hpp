#pragma once
/// Reading and writing audio files: any format libsndfile reads (WAV, FLAC, AIFF, OGG, ...) into
/// mono float samples in [-1, 1] at a target rate (16 kHz by default), downmixing and resampling
/// with libsamplerate when needed; 16-bit PCM WAV / FLAC writing for tests and tools.
/// Needs the `cpc::audio` target (libsndfile + libsamplerate). Source: issue 4 "Reading audio".
#include <samplerate.h>
#include <sndfile.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cpc/core/error.hpp"

namespace cpc {

/// Sample-rate converter quality, i.e. which libsamplerate converter resamples.
/// `medium` (SRC_SINC_MEDIUM_QUALITY, the default) keeps the pass band flat to ~90% of the
/// Nyquist rate with > 97 dB stop-band rejection: far beyond what speech features need, and it
/// measured 3-5x faster than `best` on this project's machine (60 s of mono audio to 16 kHz,
/// one core, -O2: from 48 kHz best 1.8 s, medium 0.66 s, fastest 0.24 s; from 44.1 kHz best
/// 2.8 s, medium 0.60 s, fastest 0.29 s), i.e. ~100x real time; tests/audio/test_audio_file.cpp
/// checks the frequency and length it preserves. `best` is
/// SRC_SINC_BEST_QUALITY, `fastest` SRC_SINC_FASTEST.
enum class resample_quality { best, medium, fastest };

/// Options of `read_audio`.
struct audio_read_options {
  /// Output rate in Hz; files at another rate are resampled (or refused in strict mode).
  int sample_rate = 16000;
  /// Refuse files that are not already mono at `sample_rate` instead of converting them.
  bool strict = false;
  /// Converter used when resampling.
  resample_quality quality = resample_quality::medium;
};

/// What a file's header says, without decoding the samples.
struct audio_info {
  int sample_rate = 0;     ///< Hz
  int channels = 0;        ///< interleaved channels
  std::size_t frames = 0;  ///< samples per channel (as reported by the header)
  std::string format;      ///< libsndfile's major format name, e.g. "WAV (Microsoft)"
};

namespace detail {

inline std::string audio_where(const std::filesystem::path& path) {
  return "audio file '" + path.string() + "'";
}

/// RAII owner of a SNDFILE*.
class sndfile_handle {
 public:
  /// Opens under one process-wide lock: a failed sf_open leaves its reason in libsndfile's one
  /// global error, which another thread's open would overwrite before sf_strerror(nullptr) reads
  /// it (the corpus opens files in parallel; the reason then read "No Error.").
  sndfile_handle(const std::filesystem::path& path, int mode, SF_INFO& info) {
    static std::mutex open_lock;
    std::string why;
    {
      const std::lock_guard<std::mutex> hold(open_lock);
      handle_ = sf_open(path.c_str(), mode, &info);
      if (!handle_) {
        const char* reason = sf_strerror(nullptr);
        why = reason ? reason : "unknown error";
      }
    }
    if (!handle_) throw io_error(audio_where(path) + ": cannot open (" + why + ")");
  }
  sndfile_handle(const sndfile_handle&) = delete;
  sndfile_handle& operator=(const sndfile_handle&) = delete;
  ~sndfile_handle() {
    if (handle_) sf_close(handle_);
  }
  SNDFILE* get() const { return handle_; }

 private:
  SNDFILE* handle_ = nullptr;
};

inline std::string format_name(int format) {
  SF_FORMAT_INFO fi{};
  fi.format = format & SF_FORMAT_TYPEMASK;
  if (sf_command(nullptr, SFC_GET_FORMAT_INFO, &fi, sizeof(fi)) == 0 && fi.name) return fi.name;
  return "unknown";
}

/// libsndfile silently shortens a WAV whose data chunk claims more bytes than the file holds and
/// only notes it in its log ("data : 5760000 (should be 2879978)"); that is a truncated file and
/// must not pass as a good one. Streaming writers that cannot seek back put a placeholder
/// (0, or a size near 2^31 / 2^32) in the header; those are accepted as the "odd headers" real
/// files carry.
inline bool log_says_truncated(SNDFILE* f) {
  char log[8192] = {};
  sf_command(f, SFC_GET_LOG_INFO, log, sizeof(log));
  const std::string_view text(log);
  std::size_t pos = 0;
  while ((pos = text.find("data : ", pos)) != std::string_view::npos) {
    pos += 7;
    unsigned long long declared = 0, actual = 0;
    const std::string line(text.substr(pos, text.find('\n', pos) - pos));
    if (std::sscanf(line.c_str(), "%llu (should be %llu)", &declared, &actual) == 2 && declared > actual &&
        declared < 0x7fff0000ULL)
      return true;
  }
  return false;
}

inline int converter_type(resample_quality q) {
  switch (q) {
    case resample_quality::best:
      return SRC_SINC_BEST_QUALITY;
    case resample_quality::fastest:
      return SRC_SINC_FASTEST;
    case resample_quality::medium:
    default:
      return SRC_SINC_MEDIUM_QUALITY;
  }
}

}  // namespace detail

/// Reads the header of `path` (rate, channels, frames, format) without decoding samples.
/// Errors: throws `cpc::io_error` naming the file and libsndfile's reason when it cannot be opened.
inline audio_info probe_audio(const std::filesystem::path& path) {
  SF_INFO info{};
  detail::sndfile_handle f(path, SFM_READ, info);
  return {info.samplerate, info.channels, static_cast<std::size_t>(std::max<sf_count_t>(info.frames, 0)),
          detail::format_name(info.format)};
}

/// Resamples mono `input` from `from_rate` to `to_rate` Hz with libsamplerate (whole signal at
/// once, end of input flushed). Output length is exactly round(input.size() * to_rate / from_rate).
/// Returns `input` unchanged when the rates agree.
/// Errors: throws `cpc::config_error` for non-positive rates or a ratio libsamplerate refuses
/// (outside 1/256..256), `cpc::error` if the converter fails.
inline std::vector<float> resample(std::span<const float> input, int from_rate, int to_rate,
                                   resample_quality quality = resample_quality::medium) {
  if (from_rate <= 0 || to_rate <= 0)
    throw config_error("resample: expected positive rates, got " + std::to_string(from_rate) + " -> " +
                       std::to_string(to_rate) + " Hz");
  if (from_rate == to_rate || input.empty()) return {input.begin(), input.end()};
  const double ratio = static_cast<double>(to_rate) / from_rate;
  if (!src_is_valid_ratio(ratio))
    throw config_error("resample: ratio " + std::to_string(ratio) + " outside libsamplerate's 1/256..256");
  const auto expected = static_cast<std::size_t>(std::llround(static_cast<double>(input.size()) * ratio));
  // libsamplerate can stop a sample or two short of n * ratio when the input ends; a short run
  // of trailing zeros (the signal is silent after its end) lets it reach the exact length.
  std::vector<float> padded(input.begin(), input.end());
  padded.resize(input.size() + static_cast<std::size_t>(std::ceil(8.0 / std::min(ratio, 1.0))), 0.0f);
  std::vector<float> out(expected + static_cast<std::size_t>(std::ceil(8.0 * std::max(ratio, 1.0))) + 16);
  SRC_DATA data{};
  data.data_in = padded.data();
  data.input_frames = static_cast<long>(padded.size());
  data.data_out = out.data();
  data.output_frames = static_cast<long>(out.size());
  data.end_of_input = 1;
  data.src_ratio = ratio;
  if (const int err = src_simple(&data, detail::converter_type(quality), 1); err != 0)
    throw error(std::string("resample: libsamplerate failed (") + src_strerror(err) + ")");
  if (static_cast<std::size_t>(data.output_frames_gen) < expected)
    throw error("resample: libsamplerate produced " + std::to_string(data.output_frames_gen) + " of " +
                std::to_string(expected) + " samples");
  out.resize(expected);
  return out;
}

/// Reads `path` into mono float samples in [-1, 1] at `opts.sample_rate` Hz `[samples]`.
/// Integer PCM is scaled by libsndfile (16-bit: x / 32768). Several channels are averaged;
/// another rate is converted with libsamplerate (`opts.quality`). Values outside [-1, 1] (float
/// files, resampler overshoot on full-scale input) are clipped to [-1, 1].
/// Errors: throws `cpc::io_error` naming the file and the reason when it is missing, empty,
/// not audio, malformed (libsndfile's `sf_strerror`), truncated (fewer frames decoded than the
/// header announces, or libsndfile reporting a data chunk longer than the file), holds no
/// samples (also: none left after resampling, e.g. one frame at 44.1 kHz), or holds NaN/Inf
/// samples (float files; a corrupt file, so io_error, not numeric_error); in strict mode also
/// when it is not mono at `opts.sample_rate`.
inline std::vector<float> read_audio(const std::filesystem::path& path, const audio_read_options& opts = {}) {
  if (opts.sample_rate <= 0)
    throw config_error("read_audio: expected a positive sample_rate, got " +
                       std::to_string(opts.sample_rate));
  const std::string where = detail::audio_where(path);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw io_error(where + ": no such file");
  if (!std::filesystem::is_regular_file(path, ec)) throw io_error(where + ": not a regular file");
  SF_INFO info{};
  detail::sndfile_handle f(path, SFM_READ, info);
  if (info.channels <= 0 || info.samplerate <= 0)
    throw io_error(where + ": invalid header (" + std::to_string(info.channels) + " channels, " +
                   std::to_string(info.samplerate) + " Hz)");
  if (opts.strict && (info.channels != 1 || info.samplerate != opts.sample_rate))
    throw io_error(where + ": strict mode expects mono " + std::to_string(opts.sample_rate) + " Hz, got " +
                   std::to_string(info.channels) + " channel(s) at " + std::to_string(info.samplerate) +
                   " Hz");
  if (info.frames <= 0) throw io_error(where + ": contains no samples");
  if (detail::log_says_truncated(f.get()))
    throw io_error(where + ": truncated (the header announces more data than the file holds)");

  const auto channels = static_cast<std::size_t>(info.channels);
  // Decode in blocks instead of allocating what the header announces up front: a corrupt header
  // (e.g. a FLAC STREAMINFO) can claim billions of frames in a file of a hundred bytes.
  constexpr sf_count_t block = sf_count_t{1} << 16;
  std::vector<float> interleaved;
  sf_count_t got = 0;
  while (got < info.frames) {
    const sf_count_t want = std::min(block, info.frames - got);
    interleaved.resize(static_cast<std::size_t>(got + want) * channels);
    const sf_count_t n =
        sf_readf_float(f.get(), interleaved.data() + static_cast<std::size_t>(got) * channels, want);
    if (n <= 0) break;
    got += n;
  }
  interleaved.resize(static_cast<std::size_t>(got) * channels);
  const auto frames = static_cast<std::size_t>(got);
  if (got != info.frames) {
    const char* why = sf_strerror(f.get());
    throw io_error(where + ": truncated or corrupt: decoded " + std::to_string(got) + " of " +
                   std::to_string(info.frames) + " frames (" + (why ? why : "no further detail") + ")");
  }
  for (std::size_t i = 0; i < interleaved.size(); ++i)
    if (!std::isfinite(interleaved[i]))
      throw io_error(where + ": non-finite sample (NaN or Inf) at frame " + std::to_string(i / channels));

  std::vector<float> mono;
  if (channels == 1) {
    mono = std::move(interleaved);
  } else {
    mono.resize(frames);
    const float scale = 1.0f / static_cast<float>(channels);
    for (std::size_t t = 0; t < frames; ++t) {
      float sum = 0.0f;
      for (std::size_t c = 0; c < channels; ++c) sum += interleaved[t * channels + c];
      mono[t] = sum * scale;
    }
  }
  if (info.samplerate != opts.sample_rate)
    mono = resample(mono, info.samplerate, opts.sample_rate, opts.quality);
  if (mono.empty())  // e.g. 1 frame at 44.1 kHz rounds to 0 samples at 16 kHz
    throw io_error(where + ": contains no samples at " + std::to_string(opts.sample_rate) + " Hz (" +
                   std::to_string(frames) + " frame(s) at " + std::to_string(info.samplerate) + " Hz)");
  for (auto& x : mono) x = std::clamp(x, -1.0f, 1.0f);
  return mono;
}

/// Encodings `write_audio` can produce.
enum class audio_format {
  wav_pcm16,   ///< RIFF WAV, 16-bit signed PCM
  wav_float,   ///< RIFF WAV, 32-bit IEEE float (values written as given, NaN included)
  flac_pcm16,  ///< FLAC, 16-bit
};

/// Writes interleaved `samples` (`[frames * channels]`, nominally in [-1, 1]) to `path` at
/// `sample_rate` Hz. Integer formats clip out-of-range values instead of wrapping.
/// Errors: throws `cpc::config_error` for bad rate/channels or a sample count not divisible by
/// `channels`; `cpc::io_error` naming the file when it cannot be created or written.
inline void write_audio(const std::filesystem::path& path, std::span<const float> samples, int sample_rate,
                        int channels = 1, audio_format format = audio_format::wav_pcm16) {
  if (sample_rate <= 0 || channels <= 0 || samples.size() % static_cast<std::size_t>(channels) != 0)
    throw config_error(
        "write_audio: expected rate > 0, channels > 0 and samples divisible by channels, got " +
        std::to_string(sample_rate) + " Hz, " + std::to_string(channels) + " channel(s), " +
        std::to_string(samples.size()) + " samples");
  SF_INFO info{};
  info.samplerate = sample_rate;
  info.channels = channels;
  switch (format) {
    case audio_format::wav_float:
      info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
      break;
    case audio_format::flac_pcm16:
      info.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
      break;
    case audio_format::wav_pcm16:
    default:
      info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
      break;
  }
  {
    detail::sndfile_handle f(path, SFM_WRITE, info);
    sf_command(f.get(), SFC_SET_CLIPPING, nullptr, SF_TRUE);
    const auto frames = static_cast<sf_count_t>(samples.size() / static_cast<std::size_t>(channels));
    if (sf_writef_float(f.get(), samples.data(), frames) != frames) {
      const char* why = sf_strerror(f.get());
      throw io_error(detail::audio_where(path) + ": write failed (" + (why ? why : "unknown error") + ")");
    }
  }
}

/// Writes mono `samples` in [-1, 1] as a 16-bit PCM WAV file at `sample_rate` Hz.
/// Errors: as `write_audio`.
inline void write_wav(const std::filesystem::path& path, std::span<const float> samples,
                      int sample_rate = 16000) {
  write_audio(path, samples, sample_rate, 1, audio_format::wav_pcm16);
}

}  // namespace cpc
