#pragma once
/// Random fixed-length training windows from a `speech_corpus`, with their frame labels, as in
/// the CPC paper's audio experiments (20480-sample windows, sec. 3.1 of van den Oord et al.
/// 2018) and CPC_audio's same-speaker negative sampling (speaker-balanced batches).
/// `prefetching_sampler` prepares the next batch on a oneTBB task while the caller trains.
/// Both yield `cpc::audio_batch<float>`, the batch `cpc::model` and `cpc::train` take.
/// Needs the `cpc::audio` target (through corpus.hpp). Source: issue 4 "Window sampling", issue 15.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <oneapi/tbb/task_group.h>

#include "cpc/core/batch.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/data/corpus.hpp"

namespace cpc {

/// How `window_sampler` chooses windows.
enum class window_sampling {
  /// Every (utterance, frame-aligned start) pair of the sampler's utterances is equally likely,
  /// so every second of audio is seen equally often whatever the utterance lengths (an
  /// utterance is picked with probability proportional to its number of window positions).
  uniform,
  /// `speakers` distinct speakers drawn uniformly, then `per_speaker` windows of each, drawn
  /// uniformly over that speaker's window positions (with replacement). Rows are speaker-major:
  /// rows [s * per_speaker, (s + 1) * per_speaker) share a speaker. For same-speaker negatives.
  speaker_balanced,
};

/// What `window_sampler` does with utterances shorter than a window.
enum class short_utterance_policy {
  skip,  ///< leave them out (counted in `window_sampler::skipped_short()`)
  pad,   ///< one window at start 0, zero-padded; `info.lengths` counts its real frames
};

/// The policy's name: "skip" or "pad".
inline std::string_view to_string(short_utterance_policy p) {
  return p == short_utterance_policy::skip ? "skip" : "pad";
}

/// Parses "skip" or "pad". Errors: `cpc::config_error` "<what>: expected skip or pad, got '<s>'".
inline short_utterance_policy parse_short_utterance_policy(std::string_view s,
                                                           std::string_view what = "short utterances") {
  if (s == "skip") return short_utterance_policy::skip;
  if (s == "pad") return short_utterance_policy::pad;
  throw config_error(std::string(what) + ": expected skip or pad, got '" + std::string(s) + "'");
}

/// Options of `window_sampler`.
struct window_sampler_options {
  /// Window length W in samples; a multiple of the corpus frame length (160). Paper: 20480.
  std::size_t window = 20480;
  window_sampling mode = window_sampling::uniform;
  /// Rows per batch in `uniform` mode.
  std::size_t batch_size = 8;
  /// `speaker_balanced` mode: S speakers x U windows per batch (batch size S * U).
  std::size_t speakers = 4;
  std::size_t per_speaker = 2;
  short_utterance_policy short_utterances = short_utterance_policy::skip;
  /// Input gain: every sample is multiplied by it (unitless; see `input_gain` in
  /// cpc/data/normalization.hpp for the library's input normalisation). 1 = samples as read.
  float gain = 1.0f;
  /// Seed of the sampler's `cpc::rng`: the same seed gives the same batches.
  std::uint64_t seed = 0;
};

/// Draws random windows of W samples that never cross utterance boundaries, with frame-aligned
/// labels (window starts are multiples of the frame length, so the labels line up exactly), into
/// `cpc::audio_batch<float>`: B = batch size rows, F = W / frame_length frames per row; row b
/// is `gain` x samples [starts[b], starts[b] + W) of utterance `utterances[b]` (zeros past its
/// end when padded), `labels(b, f)` that utterance's label at frame starts[b] / frame_length + f
/// (-1 past the end), `info.lengths[b]` its frames wholly inside the utterance (F unless padded),
/// `info.speakers[b]` its corpus speaker index.
/// Holds a reference to the corpus: the corpus must outlive the sampler. `draw` uses the
/// sampler's generator; `fill` is const and thread-safe.
class window_sampler {
 public:
  using options = window_sampler_options;

  /// One window position.
  struct window {
    std::size_t utterance = 0;  ///< corpus index
    std::size_t start = 0;      ///< first sample, a multiple of the frame length
  };

  /// Samples from the corpus utterances listed in `utterances` (e.g.
  /// `corpus.indices(corpus_split::train)`; order and repeats do not matter).
  /// Errors: `cpc::config_error` when W is 0 or not a multiple of the frame length, the batch
  /// is empty, an index is out of range, no utterance is long enough (with `skip`), or
  /// `speaker_balanced` asks for more speakers than have a usable utterance.
  window_sampler(const speech_corpus& corpus, const options& opts, std::vector<std::size_t> utterances);
  /// Samples from every utterance of the corpus.
  explicit window_sampler(const speech_corpus& corpus, const options& opts = {})
      : window_sampler(corpus, opts, corpus.indices(corpus_split::all)) {}

  /// Rows per batch (batch_size, or speakers x per_speaker).
  std::size_t batch_size() const {
    return opts_.mode == window_sampling::uniform ? opts_.batch_size : opts_.speakers * opts_.per_speaker;
  }
  /// Window length W in samples.
  std::size_t window_length() const { return opts_.window; }
  /// Frames per window, W / frame_length.
  std::size_t frames_per_window() const { return opts_.window / frame_; }
  /// Samples per frame (the corpus's frame length, 160 at 16 kHz).
  std::size_t frame_length() const { return frame_; }
  /// The options the sampler was built with.
  const options& config() const { return opts_; }
  /// Utterances windows are drawn from.
  const std::vector<std::size_t>& usable_utterances() const { return usable_; }
  /// How many of the given utterances were left out for being shorter than W (`skip` policy).
  std::size_t skipped_short() const { return skipped_short_; }
  /// Number of distinct window positions over the usable utterances.
  std::uint64_t num_positions() const { return cumulative_.empty() ? 0 : cumulative_.back(); }
  /// Speakers that have at least one usable utterance, ascending.
  const std::vector<std::size_t>& usable_speakers() const { return speaker_ids_; }
  /// The sampler's generator (e.g. to save its state in a checkpoint).
  rng& generator() { return gen_; }

  /// Draws the windows of the next batch (advances the generator).
  void draw(std::vector<window>& out);
  /// Fills `batch` (reusing its buffers) with the windows `plan`.
  void fill(const std::vector<window>& plan, audio_batch<float>& batch) const;
  /// Draws and fills the next batch into `batch` (a batch source for `cpc::train`).
  void next(audio_batch<float>& batch) {
    draw(plan_);
    fill(plan_, batch);
  }
  /// Draws and returns the next batch.
  audio_batch<float> next() {
    audio_batch<float> b;
    next(b);
    return b;
  }

 private:
  std::uint64_t positions(std::size_t utt) const {
    const std::size_t n = corpus_->utterances()[utt].samples.size();
    if (n < opts_.window) return 1;  // padded
    return (n - opts_.window) / frame_ + 1;
  }
  // Picks position r of the usable utterances [lo, hi) whose cumulative counts end at
  // cumulative_[lo..hi).
  window locate(std::size_t lo, std::size_t hi, std::uint64_t r) const {
    const auto begin = cumulative_.begin() + static_cast<std::ptrdiff_t>(lo);
    const auto it = std::upper_bound(begin, cumulative_.begin() + static_cast<std::ptrdiff_t>(hi), r);
    const auto k = static_cast<std::size_t>(it - cumulative_.begin());
    const std::uint64_t before = k == 0 ? 0 : cumulative_[k - 1];
    return {usable_[k], static_cast<std::size_t>(r - before) * frame_};
  }

  const speech_corpus* corpus_;
  options opts_;
  std::size_t frame_;
  rng gen_;
  std::vector<std::size_t> usable_;         // corpus indices, grouped by speaker, ascending within
  std::vector<std::uint64_t> cumulative_;   // running count of window positions over usable_
  std::vector<std::size_t> speaker_ids_;    // speakers with usable utterances
  std::vector<std::size_t> speaker_begin_;  // usable_[speaker_begin_[s] .. speaker_begin_[s+1])
  std::vector<std::size_t> speaker_order_;  // scratch for drawing distinct speakers
  std::size_t skipped_short_ = 0;
  std::vector<window> plan_;
};

/// Wraps a `window_sampler` and fills batch n + 1 on a oneTBB task (`tbb::task_group`) while the
/// caller uses batch n, so a training step need not wait for its data (`cpc::train` measures the
/// wait: `train_summary::data_seconds`). Gives exactly the batches of the wrapped sampler, in the
/// same order. The windows of batch n + 1 are drawn on the calling thread (the generator is never
/// touched by the task); only copying them into the batch runs concurrently. Not copyable or
/// movable (a task may be writing into it); the destructor waits for the task. Not thread-safe:
/// call `next` from one thread.
class prefetching_sampler {
 public:
  explicit prefetching_sampler(window_sampler sampler)
      : sampler_(std::move(sampler)), resume_(sampler_.generator()) {}
  prefetching_sampler(const prefetching_sampler&) = delete;
  prefetching_sampler& operator=(const prefetching_sampler&) = delete;
  ~prefetching_sampler() {
    try {
      group_.wait();
    } catch (...) {  // an error nobody asked for any more
    }
  }

  /// Puts the next batch into `out` (its previous buffers are recycled for a later batch) and
  /// starts preparing the one after.
  /// Errors: rethrows what preparing the batch threw.
  void next(audio_batch<float>& out) {
    if (!started_) {
      sampler_.generator().set_state(resume_.state());
      sampler_.next(pending_);
      started_ = true;
    } else {
      group_.wait();
    }
    std::swap(out, pending_);
    resume_.set_state(sampler_.generator().state());
    sampler_.draw(plan_);
    group_.run([this] { sampler_.fill(plan_, pending_); });
  }
  /// Returns the next batch.
  audio_batch<float> next() {
    audio_batch<float> b;
    next(b);
    return b;
  }
  /// The wrapped sampler (do not draw from it).
  const window_sampler& sampler() const { return sampler_; }
  /// A generator whose state is always the one the next `next()` call's batch is drawn from (the
  /// batch prepared ahead does not count), as a plain `window_sampler`'s generator: save it in
  /// checkpoints; set its state before the first `next()` to resume a run.
  rng& generator() { return resume_; }

 private:
  window_sampler sampler_;
  rng resume_;
  audio_batch<float> pending_;
  std::vector<window_sampler::window> plan_;
  bool started_ = false;
  tbb::task_group group_;
};

// ---------------------------------------------------------------------------------------------
// Implementation

inline window_sampler::window_sampler(const speech_corpus& corpus, const options& opts,
                                      std::vector<std::size_t> utterances)
    : corpus_(&corpus), opts_(opts), frame_(corpus.frame_length()), gen_(opts.seed) {
  if (opts_.window == 0 || opts_.window % frame_ != 0)
    throw config_error("window_sampler: expected a window that is a positive multiple of " +
                       std::to_string(frame_) + " samples, got " + std::to_string(opts_.window));
  if (batch_size() == 0)
    throw config_error(opts_.mode == window_sampling::uniform
                           ? std::string("window_sampler: expected batch_size > 0, got 0")
                           : "window_sampler: expected speakers > 0 and per_speaker > 0, got " +
                                 std::to_string(opts_.speakers) + " and " +
                                 std::to_string(opts_.per_speaker));
  for (auto u : utterances)
    if (u >= corpus.size())
      throw config_error("window_sampler: utterance index " + std::to_string(u) +
                         " out of range (corpus has " + std::to_string(corpus.size()) + ")");
  std::sort(utterances.begin(), utterances.end());
  utterances.erase(std::unique(utterances.begin(), utterances.end()), utterances.end());

  // Group by speaker so each speaker's positions are one contiguous range of `cumulative_`.
  std::stable_sort(utterances.begin(), utterances.end(), [&](std::size_t a, std::size_t b) {
    return corpus.utterances()[a].speaker < corpus.utterances()[b].speaker;
  });
  std::uint64_t total = 0;
  for (auto u : utterances) {
    const auto& utt = corpus.utterances()[u];
    if (utt.samples.size() < opts_.window && opts_.short_utterances == short_utterance_policy::skip) {
      ++skipped_short_;
      continue;
    }
    if (speaker_ids_.empty() || speaker_ids_.back() != utt.speaker) {
      speaker_ids_.push_back(utt.speaker);
      speaker_begin_.push_back(usable_.size());
    }
    usable_.push_back(u);
    total += positions(u);
    cumulative_.push_back(total);
  }
  speaker_begin_.push_back(usable_.size());
  if (usable_.empty())
    throw config_error("window_sampler: none of the " + std::to_string(utterances.size()) +
                       " utterances has " + std::to_string(opts_.window) +
                       " samples or more; use a shorter window or short_utterance_policy::pad");
  if (opts_.mode == window_sampling::speaker_balanced && opts_.speakers > speaker_ids_.size())
    throw config_error("window_sampler: speaker_balanced mode asks for " + std::to_string(opts_.speakers) +
                       " speakers per batch but only " + std::to_string(speaker_ids_.size()) +
                       " speakers have an utterance of at least " + std::to_string(opts_.window) +
                       " samples");
}

inline void window_sampler::draw(std::vector<window>& out) {
  out.clear();
  if (opts_.mode == window_sampling::uniform) {
    for (std::size_t b = 0; b < opts_.batch_size; ++b)
      out.push_back(locate(0, usable_.size(), gen_.uniform_int(cumulative_.back())));
    return;
  }
  // Partial Fisher-Yates over the usable speakers: the first S entries are distinct speakers.
  const std::size_t n = speaker_ids_.size();
  speaker_order_.resize(n);
  for (std::size_t i = 0; i < n; ++i) speaker_order_[i] = i;
  for (std::size_t i = 0; i < opts_.speakers; ++i)
    std::swap(speaker_order_[i], speaker_order_[i + static_cast<std::size_t>(gen_.uniform_int(n - i))]);
  for (std::size_t i = 0; i < opts_.speakers; ++i) {
    const std::size_t s = speaker_order_[i];
    const std::size_t lo = speaker_begin_[s], hi = speaker_begin_[s + 1];
    const std::uint64_t before = lo == 0 ? 0 : cumulative_[lo - 1];
    const std::uint64_t count = cumulative_[hi - 1] - before;
    for (std::size_t j = 0; j < opts_.per_speaker; ++j)
      out.push_back(locate(lo, hi, before + gen_.uniform_int(count)));
  }
}

inline void window_sampler::fill(const std::vector<window>& plan, audio_batch<float>& batch) const {
  const std::size_t rows = plan.size(), w = opts_.window, frames = w / frame_;
  const float gain = opts_.gain;
  ensure_shape(batch.audio, std::array<std::size_t, 2>{rows, w});
  ensure_shape(batch.labels, std::array<std::size_t, 2>{rows, frames});
  batch.info.lengths.resize(rows);
  batch.info.speakers.resize(rows);
  batch.utterances.resize(rows);
  batch.starts.resize(rows);
  for (std::size_t b = 0; b < rows; ++b) {
    const auto& utt = corpus_->utterances().at(plan[b].utterance);
    const std::size_t start = plan[b].start, n = utt.samples.size();
    const std::size_t len = start < n ? std::min(w, n - start) : 0;
    float* row = batch.audio.data() + b * w;
    std::transform(utt.samples.data() + start, utt.samples.data() + start + len, row,
                   [gain](float v) { return gain * v; });
    std::fill(row + len, row + w, 0.0f);
    const std::size_t first = start / frame_, valid = len / frame_;  // frames wholly inside
    for (std::size_t f = 0; f < frames; ++f) {
      const std::size_t g = first + f;
      batch.labels(b, f) = f < valid && g < utt.labels.size() ? utt.labels[g] : -1;
    }
    batch.info.lengths[b] = valid;
    batch.info.speakers[b] = static_cast<std::int64_t>(utt.speaker);
    batch.utterances[b] = plan[b].utterance;
    batch.starts[b] = start;
  }
}

}  // namespace cpc
