#pragma once
/// Hand-made frame features for the probes' baselines: log power spectrum, log mel spectrum and
/// MFCC (+ deltas + delta-deltas), computed with FFTW (link cpc::audio).
///
/// Frame alignment: feature frame f belongs to the model's frame f, the hop-sized block of
/// samples [hop f, hop f + hop) (160 samples = 10 ms at 16 kHz, the audio encoder's total stride),
/// and to the corpus label of that frame. Its analysis window (25 ms = 400 samples) is centred on
/// the block's centre: samples [hop f + hop/2 - window/2, ... + window) = [160 f - 120, 160 f + 280)
/// at the defaults; samples outside the signal count as zero. A signal of n samples gives
/// floor(n / hop) frames, the same count as the model and the labels.
///
/// Pipeline (HTK book, "Speech signal processing", and Davis & Mermelstein 1980):
/// 1. pre-emphasis over the whole signal: y[i] = x[i] - 0.97 x[i - 1], with x[-1] = 0;
/// 2. Hamming window w[j] = 0.54 - 0.46 cos(2 pi j / (window - 1)), zero-padded to fft_size (512);
/// 3. power spectrum |X_k|^2, k = 0 .. fft_size/2 (257 bins); log power = ln(max(P, log_floor));
/// 4. mel filters: mel_filters (40) triangles equally spaced on the HTK mel scale
///    2595 log10(1 + f / 700) between low_hz and high_hz (default 0 and sample_rate / 2), applied
///    to the power spectrum; log mel = ln(max(E, log_floor));
/// 5. MFCC: DCT-II with orthonormal scaling (scipy's dct(type=2, norm="ortho")) of the log mel
///    energies, coefficients c0 .. c12 (c0 kept, no liftering: a per-dimension scale that the
///    probe's standardisation removes anyway);
/// 6. deltas over +-2 frames as in HTK: d_t = sum_{k=1..2} k (c_{t+k} - c_{t-k}) / (2 sum k^2),
///    with the first/last frame repeated at the edges; delta-deltas are the deltas of the deltas.
///    MFCC output row: [c0..c12, d0..d12, dd0..dd12] (39 values).
/// Source: issue 5 ("MFCC (13 coefficients + deltas + delta-deltas, 25 ms window, 10 ms hop)");
/// the paper's MFCC baseline (van den Oord et al. 2018, Table 1).
#include <algorithm>
#include <cmath>
#include <complex>
#include <cstddef>
#include <map>
#include <mutex>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#include <fftw3.h>

#include "cpc/core/error.hpp"
#include "cpc/core/tensor.hpp"

namespace cpc {

namespace detail {

/// FFTW's planner is not thread-safe; every plan creation in cpc goes through this mutex.
inline std::mutex& fftw_planner_mutex() {
  static std::mutex m;
  return m;
}

/// A real-to-complex plan of size n, created once per size and shared (executing a plan on new
/// arrays with fftwf_execute_dft_r2c is thread-safe). FFTW_ESTIMATE makes the plan, and so the
/// numbers, the same on every run; FFTW_UNALIGNED allows arrays of any alignment.
inline fftwf_plan fftw_r2c_plan(int n) {
  // The cache owns its plans and destroys them at exit (so leak checkers see no leak).
  struct plan_cache {
    std::map<int, fftwf_plan> plans;
    ~plan_cache() {
      for (auto& [size, plan] : plans) fftwf_destroy_plan(plan);
      fftwf_cleanup();
    }
  };
  std::lock_guard<std::mutex> lock(fftw_planner_mutex());
  static plan_cache cache;
  auto& plans = cache.plans;
  auto it = plans.find(n);
  if (it != plans.end()) return it->second;
  std::vector<float> in(static_cast<std::size_t>(n));
  std::vector<std::complex<float>> out(static_cast<std::size_t>(n / 2 + 1));
  fftwf_plan p = fftwf_plan_dft_r2c_1d(n, in.data(), reinterpret_cast<fftwf_complex*>(out.data()),
                                       FFTW_ESTIMATE | FFTW_UNALIGNED);
  if (p == nullptr) throw config_error("fftw: could not plan a real FFT of size " + std::to_string(n));
  plans.emplace(n, p);
  return p;
}

}  // namespace detail

/// Computes log power spectra, log mel spectra and MFCCs of 16 kHz float audio, one row per
/// 10 ms frame (see the file comment for the exact definition and frame alignment).
/// Not thread-safe per object (it owns work buffers); use one object per thread. Construction is
/// cheap after the first object of a given FFT size.
/// Errors: `cpc::config_error` from the constructor for inconsistent options.
class audio_features {
 public:
  /// Analysis settings; defaults are the paper's baseline at 16 kHz.
  struct options {
    std::size_t sample_rate = 16000;  ///< Hz
    std::size_t hop = 160;            ///< samples per frame (10 ms)
    std::size_t window = 400;         ///< analysis window in samples (25 ms)
    std::size_t fft_size = 512;       ///< >= window
    float preemphasis = 0.97f;        ///< 0 disables
    std::size_t mel_filters = 40;
    double low_hz = 0;         ///< lowest mel filter edge
    double high_hz = 0;        ///< highest mel filter edge; 0 means sample_rate / 2
    std::size_t cepstra = 13;  ///< MFCC coefficients c0 .. c{cepstra-1}
    float log_floor = 1e-10f;  ///< energies are clamped to this before the log
  };

  /// Default settings (see `options`).
  audio_features() : audio_features(options{}) {}

  explicit audio_features(options opt) : opt_(opt) {
    if (opt_.high_hz == 0) opt_.high_hz = static_cast<double>(opt_.sample_rate) / 2;
    if (opt_.hop == 0 || opt_.window == 0 || opt_.sample_rate == 0)
      throw config_error("audio_features: expected hop, window and sample_rate > 0");
    if (opt_.fft_size < opt_.window)
      throw config_error("audio_features: expected fft_size >= window, got fft_size " +
                         std::to_string(opt_.fft_size) + " < window " + std::to_string(opt_.window));
    if (opt_.mel_filters == 0 || opt_.cepstra == 0 || opt_.cepstra > opt_.mel_filters)
      throw config_error("audio_features: expected 0 < cepstra <= mel_filters, got cepstra " +
                         std::to_string(opt_.cepstra) + ", mel_filters " + std::to_string(opt_.mel_filters));
    if (!(opt_.low_hz >= 0 && opt_.low_hz < opt_.high_hz &&
          opt_.high_hz <= static_cast<double>(opt_.sample_rate) / 2))
      throw config_error("audio_features: expected 0 <= low_hz < high_hz <= sample_rate / 2");
    plan_ = detail::fftw_r2c_plan(static_cast<int>(opt_.fft_size));
    frame_.assign(opt_.fft_size, 0.0f);
    spectrum_.resize(bins());
    power_.resize(bins());
    hamming_.resize(opt_.window);
    for (std::size_t j = 0; j < opt_.window; ++j)
      hamming_[j] = static_cast<float>(
          0.54 - 0.46 * std::cos(2 * std::numbers::pi * static_cast<double>(j) /
                                 static_cast<double>(opt_.window > 1 ? opt_.window - 1 : 1)));
    build_mel_filters();
    build_dct();
  }

  const options& config() const { return opt_; }
  /// Number of frames for `samples` samples: floor(samples / hop).
  std::size_t frames(std::size_t samples) const { return samples / opt_.hop; }
  /// Power-spectrum bins: fft_size / 2 + 1 (257 at the defaults).
  std::size_t bins() const { return opt_.fft_size / 2 + 1; }
  /// MFCC row width with deltas: 3 * cepstra (39 at the defaults).
  std::size_t mfcc_dims() const { return 3 * opt_.cepstra; }

  /// Natural-log power spectrum. Shapes: x `[samples]` -> out resized to `[frames, bins]`.
  void log_power_spectrum(std::span<const float> x, tensor2<float>& out) {
    const std::size_t nf = frames(x.size());
    ensure_shape(out, std::array<std::size_t, 2>{nf, bins()});
    for (std::size_t f = 0; f < nf; ++f) {
      power_spectrum(x, f);
      float* row = out.data() + f * bins();
      for (std::size_t k = 0; k < bins(); ++k) row[k] = std::log(std::max(power_[k], opt_.log_floor));
    }
  }

  /// Natural-log mel filterbank energies. Shapes: x `[samples]` -> out `[frames, mel_filters]`.
  void log_mel_spectrum(std::span<const float> x, tensor2<float>& out) {
    const std::size_t nf = frames(x.size()), m = opt_.mel_filters;
    ensure_shape(out, std::array<std::size_t, 2>{nf, m});
    for (std::size_t f = 0; f < nf; ++f) {
      power_spectrum(x, f);
      mel_row(out.data() + f * m);
    }
  }

  /// MFCC. Shapes: x `[samples]` -> out `[frames, 3 * cepstra]` ([c, deltas, delta-deltas]) when
  /// `with_deltas`, else `[frames, cepstra]`.
  void mfcc(std::span<const float> x, tensor2<float>& out, bool with_deltas = true) {
    const std::size_t nf = frames(x.size()), c = opt_.cepstra, m = opt_.mel_filters;
    const std::size_t width = with_deltas ? 3 * c : c;
    ensure_shape(out, std::array<std::size_t, 2>{nf, width});
    mel_.resize(m);
    for (std::size_t f = 0; f < nf; ++f) {
      power_spectrum(x, f);
      mel_row(mel_.data());
      float* row = out.data() + f * width;
      for (std::size_t i = 0; i < c; ++i) {
        double s = 0;
        for (std::size_t j = 0; j < m; ++j) s += dct_[i * m + j] * static_cast<double>(mel_[j]);
        row[i] = static_cast<float>(s);
      }
    }
    if (!with_deltas) return;
    deltas(out.data(), nf, width, 0, c);
    deltas(out.data(), nf, width, c, 2 * c);
  }

  /// HTK deltas over +-2 frames in place: columns [dst, dst + n) of each row of the `[frames,
  /// width]` matrix at `data` get the deltas of columns [src, src + n), n = cepstra.
  void deltas(float* data, std::size_t nf, std::size_t width, std::size_t src, std::size_t dst) const {
    const std::size_t n = opt_.cepstra;
    if (nf == 0) return;
    const auto at = [&](std::ptrdiff_t t, std::size_t i) {
      t = std::clamp<std::ptrdiff_t>(t, 0, static_cast<std::ptrdiff_t>(nf) - 1);
      return static_cast<double>(data[static_cast<std::size_t>(t) * width + src + i]);
    };
    for (std::size_t t = 0; t < nf; ++t) {
      const auto tt = static_cast<std::ptrdiff_t>(t);
      for (std::size_t i = 0; i < n; ++i)
        data[t * width + dst + i] = static_cast<float>(
            (1 * (at(tt + 1, i) - at(tt - 1, i)) + 2 * (at(tt + 2, i) - at(tt - 2, i))) / 10.0);
    }
  }

  /// The mel filterbank weights `[mel_filters, bins]` (row m: triangle m over the FFT bins).
  const std::vector<float>& mel_filterbank() const { return filters_; }

 private:
  static double hz_to_mel(double hz) { return 2595.0 * std::log10(1.0 + hz / 700.0); }
  static double mel_to_hz(double mel) { return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0); }

  void build_mel_filters() {
    const std::size_t m = opt_.mel_filters, nb = bins();
    filters_.assign(m * nb, 0.0f);
    const double lo = hz_to_mel(opt_.low_hz), hi = hz_to_mel(opt_.high_hz);
    std::vector<double> edge(m + 2);
    for (std::size_t i = 0; i < m + 2; ++i)
      edge[i] = mel_to_hz(lo + (hi - lo) * static_cast<double>(i) / static_cast<double>(m + 1));
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t k = 0; k < nb; ++k) {
        const double hz = static_cast<double>(k) * static_cast<double>(opt_.sample_rate) /
                          static_cast<double>(opt_.fft_size);
        const double up = (hz - edge[i]) / (edge[i + 1] - edge[i]);
        const double down = (edge[i + 2] - hz) / (edge[i + 2] - edge[i + 1]);
        filters_[i * nb + k] = static_cast<float>(std::max(0.0, std::min(up, down)));
      }
  }

  void build_dct() {
    const std::size_t c = opt_.cepstra, m = opt_.mel_filters;
    dct_.resize(c * m);
    const double md = static_cast<double>(m);
    for (std::size_t i = 0; i < c; ++i)
      for (std::size_t j = 0; j < m; ++j)
        dct_[i * m + j] =
            std::sqrt((i == 0 ? 1.0 : 2.0) / md) *
            std::cos(std::numbers::pi * static_cast<double>(i) * (static_cast<double>(j) + 0.5) / md);
  }

  /// Fills power_ with |FFT(window * preemphasised frame f)|^2.
  void power_spectrum(std::span<const float> x, std::size_t f) {
    const auto n = static_cast<std::ptrdiff_t>(x.size());
    const std::ptrdiff_t start = static_cast<std::ptrdiff_t>(opt_.hop * f + opt_.hop / 2) -
                                 static_cast<std::ptrdiff_t>(opt_.window / 2);
    const float k = opt_.preemphasis;
    for (std::size_t j = 0; j < opt_.window; ++j) {
      const std::ptrdiff_t p = start + static_cast<std::ptrdiff_t>(j);
      float v = 0.0f;
      if (p >= 0 && p < n)
        v = x[static_cast<std::size_t>(p)] - (p > 0 ? k * x[static_cast<std::size_t>(p - 1)] : 0.0f);
      frame_[j] = v * hamming_[j];
    }
    std::fill(frame_.begin() + static_cast<std::ptrdiff_t>(opt_.window), frame_.end(), 0.0f);
    // std::complex<float> is layout-compatible with fftwf_complex (FFTW manual, "Complex numbers").
    fftwf_execute_dft_r2c(plan_, frame_.data(), reinterpret_cast<fftwf_complex*>(spectrum_.data()));
    for (std::size_t b = 0; b < bins(); ++b) power_[b] = std::norm(spectrum_[b]);
  }

  /// Writes ln(max(filterbank * power_, floor)) to `row` (mel_filters values).
  void mel_row(float* row) const {
    const std::size_t nb = bins();
    for (std::size_t i = 0; i < opt_.mel_filters; ++i) {
      double e = 0;
      const float* w = filters_.data() + i * nb;
      for (std::size_t b = 0; b < nb; ++b) e += static_cast<double>(w[b]) * static_cast<double>(power_[b]);
      row[i] = static_cast<float>(std::log(std::max(e, static_cast<double>(opt_.log_floor))));
    }
  }

  options opt_;
  fftwf_plan plan_ = nullptr;
  std::vector<float> frame_, power_, hamming_, filters_, mel_;
  std::vector<std::complex<float>> spectrum_;
  std::vector<double> dct_;
};

}  // namespace cpc
