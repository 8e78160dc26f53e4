#pragma once
/// The paper's evaluation protocol for speech representations (van den Oord et al. 2018,
/// section 3.1, Table 1): linear probes on frozen features for phones (per 10 ms frame) and
/// speakers (per frame, per 0.25 s window and per 1.28 s window, mean- and last-frame pooled).
/// Features are per-utterance frame sequences `[frames, dims]`, frame f = samples
/// [160 f, 160 f + 160) at 16 kHz, the same frames as the corpus labels. Needs `cpc::audio`.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cpc/core/error.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/data/corpus.hpp"
#include "cpc/eval/abx.hpp"
#include "cpc/eval/features.hpp"
#include "cpc/eval/linear_probe.hpp"

#include <xtensor/xview.hpp>

namespace cpc {

/// Frame features of a list of corpus utterances: `rows[i]` is `[frames_i, dims]` for
/// utterance `utterances[i]`.
struct utterance_features {
  std::vector<std::size_t> utterances;
  std::vector<tensor2<float>> rows;
  std::size_t dims = 0;
};

/// Probe accuracies in [0, 1] (test split), one per task.
struct probe_report {
  double phone_frame = 0;  ///< phone class per 10 ms frame; 0 when `!phone_labelled`
  /// The phone chance line: the fraction of labelled test frames whose label is the most frequent
  /// class of the labelled training frames (a majority-class predictor's accuracy); 0 when
  /// `!phone_labelled`.
  double phone_majority = 0;
  double speaker_frame = 0;        ///< speaker per 10 ms frame; 0 when `speakers < 2`
  double speaker_short_mean = 0;   ///< speaker per 0.25 s window (25 frames), mean-pooled
  double speaker_window_mean = 0;  ///< speaker per 1.28 s window (128 frames), mean-pooled
  double speaker_window_last = 0;  ///< speaker per 1.28 s window, its last frame's features
  bool phone_labelled = false;     ///< whether `phone_frame` was measured (labelled frames in both sets)
  /// Distinct speakers among the training features; the speaker probes run only with 2 or more
  /// (with one speaker every probe would score 100%: print "n/a (1 speaker)").
  std::size_t speakers = 0;
  /// Whether the speaker probes were measured (`speakers >= 2` and `probe_settings::speakers`).
  bool speakers_probed = false;
};

/// The probes' classifier settings: `cpc::linear_probe` with Adam 1e-2 annealed to 0 on a cosine,
/// batch 256, seed 7, at least 20 epochs and at least 4000 updates, and scikit-learn's default
/// L2 penalty (C = 1: `inverse_c` 1, i.e. 1 / (2 n) ||W||^2 on the mean loss of n rows). The update
/// floor trains a probe on ~500 speaker windows as far as one on 10^5 frames (by epochs alone it
/// would get 40 updates); the penalty, negligible for 10^5 frames, gives a few hundred separable
/// windows a finite optimum. Measured on the default corpus (README "Probe protocol"): doubling
/// epochs and updates moved no figure by more than 0.5 points.
inline linear_probe<float>::options default_probe_options() {
  return {.epochs = 20,
          .min_updates = 4000,
          .learning_rate = 1e-2,
          .batch_size = 256,
          .inverse_c = 1.0,
          .seed = 7};
}

/// Probe settings. Windows are non-overlapping runs of frames from frame 0 of each utterance;
/// an utterance's incomplete tail is not a window. `max_train_frames` caps the frame-level
/// training sets by a deterministic stride (0 = no cap). `phones` / `speakers` turn the phone
/// probe and the four speaker probes on or off.
struct probe_settings {
  std::size_t short_window_frames = 25;
  std::size_t window_frames = 128;
  std::size_t max_train_frames = 120000;
  linear_probe<float>::options probe = default_probe_options();
  bool phones = true;
  bool speakers = true;
};

/// A subset of `candidates` with at most `max_seconds` of audio, balanced over speakers: speakers
/// take turns (in index order), each giving its next utterance in corpus order. 0 = all.
inline std::vector<std::size_t> balanced_subset(const speech_corpus& corpus,
                                                const std::vector<std::size_t>& candidates,
                                                double max_seconds) {
  if (max_seconds <= 0) return candidates;
  std::vector<std::vector<std::size_t>> by_speaker(corpus.speakers().size());
  for (std::size_t u : candidates) by_speaker[corpus[u].speaker].push_back(u);
  std::vector<std::size_t> out, next(by_speaker.size(), 0);
  double seconds = 0;
  for (bool any = true; any && seconds < max_seconds;) {
    any = false;
    for (std::size_t s = 0; s < by_speaker.size() && seconds < max_seconds; ++s) {
      if (next[s] >= by_speaker[s].size()) continue;
      const std::size_t u = by_speaker[s][next[s]++];
      out.push_back(u);
      seconds += static_cast<double>(corpus[u].samples.size()) / corpus.sample_rate();
      any = true;
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// MFCC (+ deltas + delta-deltas, 39 dims) of each utterance, computed in parallel.
inline utterance_features mfcc_features(const speech_corpus& corpus,
                                        const std::vector<std::size_t>& utterances) {
  utterance_features f;
  f.utterances = utterances;
  f.rows.resize(utterances.size());
  parallel_for(0, utterances.size(), [&](std::size_t i) {
    audio_features mfcc;
    const auto& s = corpus[utterances[i]].samples;
    mfcc.mfcc(std::span<const float>(s.data(), s.size()), f.rows[i]);
  });
  f.dims = audio_features{}.mfcc_dims();
  return f;
}

/// Contexts c_t of a CPC model for each utterance, computed the way the model was trained: the
/// utterance is cut into windows of `window` samples starting at 0, `window`, 2 `window`, ...,
/// plus one window ending at the utterance's end for the remainder (its new frames only); an
/// utterance shorter than a window is zero-padded. Each window starts from a zero state.
/// Windows are encoded `batch` at a time; samples are multiplied by `gain` first (use the gain
/// the model was trained with). Shapes: rows `[floor(samples / stride), context]`.
/// `Model` is a cpc::model (float).
template <class Model>
utterance_features model_features(Model& m, const speech_corpus& corpus,
                                  const std::vector<std::size_t>& utterances, std::size_t window,
                                  float gain = 1.0f, std::size_t batch = 16) {
  struct job {
    std::size_t item, start, first_frame;
  };
  const std::size_t stride = corpus.frame_length();
  const std::size_t wframes = window / stride;
  std::vector<job> jobs;
  utterance_features f;
  f.utterances = utterances;
  f.rows.resize(utterances.size());
  f.dims = m.config().loss.context_dim;
  for (std::size_t i = 0; i < utterances.size(); ++i) {
    const std::size_t n = corpus[utterances[i]].samples.size(), frames = n / stride;
    f.rows[i] = xt::zeros<float>({frames, f.dims});
    std::size_t s = 0;
    for (; s + window <= n; s += window) jobs.push_back({i, s, s / stride});
    if (s < frames * stride) {
      const std::size_t start = n >= window ? (n - window) / stride * stride : 0;
      jobs.push_back({i, start, s / stride});
    }
  }
  tensor2<float> audio;
  tensor3<float> z, c;
  for (std::size_t j0 = 0; j0 < jobs.size(); j0 += batch) {
    const std::size_t nb = std::min(batch, jobs.size() - j0);
    ensure_shape(audio, std::array<std::size_t, 2>{nb, window});
    audio.fill(0.0f);
    for (std::size_t b = 0; b < nb; ++b) {
      const auto& jb = jobs[j0 + b];
      const auto& s = corpus[f.utterances[jb.item]].samples;
      const std::size_t len = std::min(window, s.size() - jb.start);
      std::transform(s.data() + jb.start, s.data() + jb.start + len, audio.data() + b * window,
                     [gain](float v) { return gain * v; });
    }
    m.encode(audio, z, c);
    for (std::size_t b = 0; b < nb; ++b) {
      const auto& jb = jobs[j0 + b];
      auto& rows = f.rows[jb.item];
      const std::size_t frames = rows.shape()[0];
      for (std::size_t t = 0; t < wframes; ++t) {
        const std::size_t frame = jb.start / stride + t;
        if (frame < jb.first_frame || frame >= frames) continue;
        std::copy_n(c.data() + (b * c.shape()[1] + t) * f.dims, f.dims, rows.data() + frame * f.dims);
      }
    }
  }
  return f;
}

/// Rows of a probe data set: features `[n, dims]` and one label per row.
struct probe_rows {
  tensor2<float> x;
  std::vector<int> y;
};

/// Window-level rows: non-overlapping windows of `w` frames from frame 0 of each utterance (an
/// incomplete tail is dropped), pooled by the mean over the window's frames or (`last`) its last
/// frame's features; each labelled with its utterance's corpus speaker index. Shapes: rows `[n, dims]`.
inline probe_rows pooled_windows(const speech_corpus& corpus, const utterance_features& f, std::size_t w,
                                 bool last);

namespace detail {
/// Frame-level rows: every `step`-th frame of every utterance, labelled by `label(u, frame)`.
template <class Label>
probe_rows frame_rows(const utterance_features& f, std::size_t step, Label&& label) {
  std::size_t total = 0;
  for (const auto& r : f.rows) total += r.shape()[0];
  probe_rows out;
  out.x = xt::zeros<float>({(total + step - 1) / step + f.rows.size(), f.dims});
  std::size_t n = 0, counter = 0;
  for (std::size_t i = 0; i < f.rows.size(); ++i)
    for (std::size_t t = 0; t < f.rows[i].shape()[0]; ++t, ++counter) {
      if (counter % step != 0) continue;
      std::copy_n(f.rows[i].data() + t * f.dims, f.dims, out.x.data() + n * f.dims);
      out.y.push_back(label(f.utterances[i], t));
      ++n;
    }
  out.x = xt::view(out.x, xt::range(0, n), xt::all());
  return out;
}

}  // namespace detail

inline probe_rows pooled_windows(const speech_corpus& corpus, const utterance_features& f, std::size_t w,
                                 bool last) {
  probe_rows out;
  std::vector<float> buf;
  std::size_t n = 0;
  for (std::size_t i = 0; i < f.rows.size(); ++i) {
    const std::size_t frames = f.rows[i].shape()[0];
    for (std::size_t s = 0; s + w <= frames; s += w) {
      buf.resize((n + 1) * f.dims, 0.0f);
      float* row = buf.data() + n * f.dims;
      if (last) {
        std::copy_n(f.rows[i].data() + (s + w - 1) * f.dims, f.dims, row);
      } else {
        for (std::size_t t = s; t < s + w; ++t)
          for (std::size_t d = 0; d < f.dims; ++d) row[d] += f.rows[i](t, d) / static_cast<float>(w);
      }
      out.y.push_back(static_cast<int>(corpus[f.utterances[i]].speaker));
      ++n;
    }
  }
  out.x = xt::zeros<float>({n, f.dims});
  std::copy(buf.begin(), buf.end(), out.x.begin());
  return out;
}

namespace detail {
/// The fraction of test labels (>= 0) equal to the most frequent training label (>= 0; ties: the
/// lowest class); 0 without labelled rows.
inline double majority_rate(const std::vector<int>& train, const std::vector<int>& test,
                            std::size_t classes) {
  std::vector<std::size_t> count(classes, 0);
  for (int y : train)
    if (y >= 0) ++count[static_cast<std::size_t>(y)];
  const int top = static_cast<int>(std::max_element(count.begin(), count.end()) - count.begin());
  std::size_t hit = 0, labelled = 0;
  for (int y : test)
    if (y >= 0) {
      ++labelled;
      hit += y == top;
    }
  return labelled == 0 ? 0.0 : static_cast<double>(hit) / static_cast<double>(labelled);
}

inline double fit_and_score(const probe_rows& train, const probe_rows& test, std::size_t classes,
                            const linear_probe<float>::options& o) {
  if (train.y.empty() || test.y.empty()) return 0.0;
  linear_probe<float> p(train.x.shape()[1], classes, o);
  p.fit(train.x, train.y);
  return p.accuracy(test.x, test.y);
}
}  // namespace detail

/// Trains each probe on `train` features and reports its accuracy on `test` features.
/// Phone probes need alignments: without a labelled frame (label >= 0) in both sets the phone
/// probe is not run, `phone_frame` is 0 and `phone_labelled` false (print it as n/a, not as an
/// accuracy). Speaker labels are corpus speaker indices, so the train and test sets should hold
/// the same speakers; with fewer than 2 speakers in the training features the speaker probes are
/// not run (`speakers_probed` false). `s.phones` / `s.speakers` = false skip those probes.
/// Errors: `cpc::config_error` when the feature widths differ.
inline probe_report run_speech_probes(const speech_corpus& corpus, const utterance_features& train,
                                      const utterance_features& test, const probe_settings& s = {}) {
  if (train.dims != test.dims)
    throw config_error("run_speech_probes: train features have " + std::to_string(train.dims) +
                       " dims, test features " + std::to_string(test.dims));
  std::size_t train_frames = 0;
  for (const auto& r : train.rows) train_frames += r.shape()[0];
  const std::size_t step =
      s.max_train_frames == 0
          ? 1
          : std::max<std::size_t>(1, (train_frames + s.max_train_frames - 1) / s.max_train_frames);
  const auto phone = [&](std::size_t u, std::size_t t) {
    const auto& l = corpus[u].labels;
    return t < l.size() ? static_cast<int>(l[t]) : -1;
  };
  const auto speaker = [&](std::size_t u, std::size_t) { return static_cast<int>(corpus[u].speaker); };
  const std::size_t speakers = corpus.speakers().size();
  probe_report r;
  if (s.phones && corpus.has_alignments() && corpus.num_phones() > 0) {
    const auto phone_train = detail::frame_rows(train, step, phone);
    const auto phone_test = detail::frame_rows(test, 1, phone);
    const auto labelled = [](const probe_rows& rows) {
      return std::any_of(rows.y.begin(), rows.y.end(), [](int y) { return y >= 0; });
    };
    r.phone_labelled = labelled(phone_train) && labelled(phone_test);
    if (r.phone_labelled) {
      r.phone_frame = detail::fit_and_score(phone_train, phone_test, corpus.num_phones(), s.probe);
      r.phone_majority = detail::majority_rate(phone_train.y, phone_test.y, corpus.num_phones());
    }
  }
  std::vector<bool> seen(speakers, false);
  for (std::size_t u : train.utterances) seen[corpus[u].speaker] = true;
  r.speakers = static_cast<std::size_t>(std::count(seen.begin(), seen.end(), true));
  r.speakers_probed = s.speakers && r.speakers >= 2;
  if (!r.speakers_probed) return r;
  r.speaker_frame = detail::fit_and_score(detail::frame_rows(train, step, speaker),
                                          detail::frame_rows(test, 1, speaker), speakers, s.probe);
  r.speaker_short_mean =
      detail::fit_and_score(pooled_windows(corpus, train, s.short_window_frames, false),
                            pooled_windows(corpus, test, s.short_window_frames, false), speakers, s.probe);
  r.speaker_window_mean =
      detail::fit_and_score(pooled_windows(corpus, train, s.window_frames, false),
                            pooled_windows(corpus, test, s.window_frames, false), speakers, s.probe);
  r.speaker_window_last =
      detail::fit_and_score(pooled_windows(corpus, train, s.window_frames, true),
                            pooled_windows(corpus, test, s.window_frames, true), speakers, s.probe);
  return r;
}

/// The ABX error (`abx_error`) of frame features `f` over the triphones of their utterances:
/// labels from the corpus alignments, speakers from the corpus (`abx_items`). Shapes: `f.rows[i]`
/// `[frames, dims]` on the corpus's 10 ms frames. Errors: `cpc::config_error` when the utterances
/// have no labelled triphone (the corpus needs phone alignments); `abx_error`'s.
/// Source: the ZeroSpeech / Libri-light ABX (see cpc/eval/abx.hpp).
inline abx_result speech_abx(const speech_corpus& corpus, const utterance_features& f,
                             const abx_options& opt) {
  std::vector<std::vector<std::int32_t>> labels;
  std::vector<std::int64_t> speakers;
  for (std::size_t u : f.utterances) {
    labels.push_back(corpus[u].labels);
    speakers.push_back(static_cast<std::int64_t>(corpus[u].speaker));
  }
  const auto items = abx_items(labels, speakers);
  if (items.empty())
    throw config_error("abx: the utterances have no labelled triphones (the corpus needs phone alignments)");
  return abx_error(f.rows, items, opt);
}

}  // namespace cpc
