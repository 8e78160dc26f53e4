#pragma once
/// Training the audio model on a speech corpus: the recipe (every choice besides the model's
/// preset that decides the result), and the one path from corpus to `cpc::train` - the window
/// sampler over the train split (speaker-balanced or uniform batches, short utterances skipped or
/// padded, the input gain), prefetching, Adam with a linear warm-up, checkpoints that carry the
/// recipe. `cpc-speech` is a command line over this header. Needs the `cpc::audio` target.
/// Source: the paper's section 3.1 (van den Oord et al. 2018) and issue 15.
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>

#include "cpc/core/error.hpp"
#include "cpc/data/corpus.hpp"
#include "cpc/data/negative_sampler.hpp"
#include "cpc/data/normalization.hpp"
#include "cpc/data/window_sampler.hpp"
#include "cpc/eval/speech_probes.hpp"
#include "cpc/io/safetensors.hpp"
#include "cpc/model/context_stream.hpp"
#include "cpc/model/presets.hpp"
#include "cpc/optim/adam.hpp"
#include "cpc/optim/schedule.hpp"
#include "cpc/train/checkpoint.hpp"
#include "cpc/train/distributed.hpp"
#include "cpc/train/trainer.hpp"

namespace cpc {

/// How an audio model is trained on a speech corpus. Saved in the checkpoint's metadata (one key
/// per field, named as `cpc-speech`'s option without "--"), so a run states which recipe ran and
/// `probe`, `encode` and `--resume` rebuild the same model. The defaults are the paper's
/// (section 3.1): mixed-speaker negatives from uniformly drawn windows, batch 8, Adam 2e-4, with
/// the library's warm-up and input normalisation.
struct speech_recipe {
  std::string model = "paper";  ///< audio preset (`presets::with_audio_preset`): "paper" or "small"
  std::size_t steps_ahead = 0;  ///< K, the prediction steps; 0 = the preset's (12)
  negative_policy negatives = negative_policy::batch;  ///< where InfoNCE's negatives come from
  std::size_t batch = 8;                               ///< windows per step
  /// 0: windows drawn uniformly over the train split; S > 0: speaker-balanced batches of S
  /// speakers x batch / S windows each (`window_sampling::speaker_balanced`).
  std::size_t speakers_per_batch = 0;
  short_utterance_policy short_utterances =
      short_utterance_policy::skip;                                   ///< utterances shorter than a window
  input_normalization normalization = input_normalization::unit_rms;  ///< see `input_gain`
  float gain = 1.0f;            ///< the gain `normalization` gave on the train split (set by `prepare`)
  double learning_rate = 2e-4;  ///< Adam's rate after the warm-up
  std::uint64_t warmup = 100;   ///< linear warm-up steps (`cpc::linear_warmup`)
  double clip = 0;              ///< gradient-norm clipping (0 = off)
  double head_std = 0;          ///< std of the normal prediction-head init (0 = the preset's, 1 / context)
  std::uint64_t seed = 1;       ///< weights and negatives; the windows use seed + 1

  /// Checks the recipe against itself (not against a corpus).
  /// Errors: `cpc::config_error` "--<option>: expected ..., got ..." naming the first bad field:
  /// batch 0, speakers_per_batch not dividing batch, same_speaker_other_sequences without
  /// speaker-balanced batches of at least 2 windows per speaker, a learning rate <= 0, a negative
  /// clip or head_std, an unknown model.
  void check() const {
    const auto need = [](bool ok, const std::string& what) {
      if (!ok) throw config_error(what);
    };
    need(model == "paper" || model == "small", "--model: expected paper or small, got '" + model + "'");
    need(batch >= 1, "--batch: expected at least 1 window per step, got 0");
    need(speakers_per_batch == 0 || batch % speakers_per_batch == 0,
         "--speakers-per-batch: expected a divisor of --batch " + std::to_string(batch) +
             " (0 = uniform windows), got " + std::to_string(speakers_per_batch));
    need(negatives != negative_policy::same_speaker_other_sequences ||
             (speakers_per_batch > 0 && batch / speakers_per_batch >= 2),
         "--negatives same-speaker-other-sequences: expected speaker-balanced batches with at least 2 "
         "windows per "
         "speaker (--speakers-per-batch S with --batch >= 2 S), got --batch " +
             std::to_string(batch) + " --speakers-per-batch " + std::to_string(speakers_per_batch));
    need(learning_rate > 0 && learning_rate < 1e300,
         "--lr: expected a learning rate > 0, got " + number(learning_rate));
    need(clip >= 0 && clip < 1e300,
         "--clip: expected a gradient-norm bound > 0, or 0 for no clipping, got " + number(clip));
    need(head_std >= 0 && head_std < 1e300,
         "--head-std: expected a standard deviation > 0, or 0 for the preset's, got " + number(head_std));
  }

  /// The recipe as checkpoint metadata: keys model, steps-ahead, negatives, batch,
  /// speakers-per-batch, short-utterances, normalize, gain, lr, warmup, clip, head-std, seed;
  /// numbers in their shortest round-trip decimal form.
  safetensors_metadata metadata() const {
    return {{"model", model},
            {"steps-ahead", std::to_string(steps_ahead)},
            {"negatives", std::string(to_string(negatives))},
            {"batch", std::to_string(batch)},
            {"speakers-per-batch", std::to_string(speakers_per_batch)},
            {"short-utterances", std::string(to_string(short_utterances))},
            {"normalize", std::string(to_string(normalization))},
            {"gain", number(gain)},
            {"lr", number(learning_rate)},
            {"warmup", std::to_string(warmup)},
            {"clip", number(clip)},
            {"head-std", number(head_std)},
            {"seed", std::to_string(seed)}};
  }

  /// A recipe from checkpoint metadata (see `metadata`). "model" and "gain" are required (the
  /// checkpoints of earlier versions hold only those two); a missing key keeps the default
  /// field, except that an old checkpoint without "normalize" counts as unit-rms.
  /// Errors: `cpc::io_error` "<where>: metadata '<key>': expected <what>, got '<value>'" for a
  /// missing model or gain, or a value that does not parse.
  static speech_recipe from_metadata(const safetensors_metadata& m, const std::string& where) {
    speech_recipe r;
    const auto fail = [&](const std::string& key, const std::string& what, const std::string& value) {
      return io_error(where + ": metadata '" + key + "': expected " + what + ", got '" + value + "'");
    };
    if (!m.contains("model") || !m.contains("gain"))
      throw io_error(where + ": not a cpc-speech checkpoint (metadata 'model' and 'gain' missing)");
    const auto text = [&](const char* key, auto&& set) {
      if (const auto it = m.find(key); it != m.end()) {
        try {
          set(it->second);
        } catch (const config_error& e) {
          throw fail(key, e.what(), it->second);
        }
      }
    };
    const auto whole = [&](const char* key, auto& field) {
      text(key, [&](const std::string& v) {
        if (!parse_number(v, field)) throw config_error("a whole number");
      });
    };
    const auto real = [&](const char* key, auto& field) {
      text(key, [&](const std::string& v) {
        if (!parse_number(v, field)) throw config_error("a number");
      });
    };
    text("model", [&](const std::string& v) { r.model = v; });
    whole("steps-ahead", r.steps_ahead);
    text("negatives", [&](const std::string& v) { r.negatives = parse_negative_policy(v); });
    whole("batch", r.batch);
    whole("speakers-per-batch", r.speakers_per_batch);
    text("short-utterances",
         [&](const std::string& v) { r.short_utterances = parse_short_utterance_policy(v); });
    text("normalize", [&](const std::string& v) { r.normalization = parse_input_normalization(v); });
    real("gain", r.gain);
    real("lr", r.learning_rate);
    whole("warmup", r.warmup);
    real("clip", r.clip);
    real("head-std", r.head_std);
    whole("seed", r.seed);
    if (!(r.gain > 0 && r.gain < 1e30f)) throw fail("gain", "a number > 0", m.at("gain"));
    if (r.model != "paper" && r.model != "small") throw fail("model", "paper or small", r.model);
    return r;
  }

  /// One line naming every choice, e.g. "negatives batch (mixed speaker), 8 windows per step drawn
  /// uniformly, short utterances skipped, K = 12, Adam lr 0.0002 with 100 warm-up steps, input
  /// unit-rms (gain 8.43), seed 1". `preset_steps` is the preset's K (shown when steps_ahead = 0).
  std::string describe(std::size_t preset_steps) const {
    std::ostringstream os;
    os << "negatives " << to_string(negatives) << " (" << paper_name(negatives) << "), " << batch
       << " windows per step ";
    if (speakers_per_batch == 0)
      os << "drawn uniformly";
    else
      os << "from " << speakers_per_batch << " speakers x " << batch / speakers_per_batch;
    os << ", short utterances "
       << (short_utterances == short_utterance_policy::skip ? "skipped" : "padded and masked")
       << ", K = " << (steps_ahead > 0 ? steps_ahead : preset_steps) << ", Adam lr " << number(learning_rate)
       << " with " << warmup << " warm-up steps";
    if (clip > 0) os << ", clip " << number(clip);
    if (head_std > 0) os << ", head std " << number(head_std);
    os << ", input " << to_string(normalization) << " (gain " << number(gain) << "), seed " << seed;
    return os.str();
  }

  /// Sets the recipe's model choices in a `cpc::model` options object: seed, K (when
  /// steps_ahead > 0), the negative policy and the prediction heads' init std (when head_std > 0).
  template <class Options>
  void apply(Options& o) const {
    o.seed = seed;
    if (steps_ahead > 0) o.loss.steps = steps_ahead;
    o.loss.policy = negatives;
    if (head_std > 0) o.loss.init_scale = head_std;
  }

  /// The window sampler's options for windows of `window` samples: batch, speaker balance, short
  /// utterances, gain, and seed + 1.
  window_sampler_options sampler_options(std::size_t window) const {
    window_sampler_options o;
    o.window = window;
    o.mode = speakers_per_batch > 0 ? window_sampling::speaker_balanced : window_sampling::uniform;
    o.batch_size = batch;
    o.speakers = speakers_per_batch;
    o.per_speaker = speakers_per_batch > 0 ? batch / speakers_per_batch : 0;
    o.short_utterances = short_utterances;
    o.gain = gain;
    o.seed = seed + 1;
    return o;
  }

  /// Sets `gain` from the corpus's train split by `normalization` (`input_gain`): call once before
  /// training from scratch (a resumed run keeps the checkpoint's gain).
  void prepare(const speech_corpus& corpus) {
    gain = input_gain(corpus, corpus.indices(corpus_split::train), normalization);
  }

  /// The paper's Table 2 name of a negative policy, e.g. "mixed speaker" for `batch`.
  static std::string_view paper_name(negative_policy p) {
    switch (p) {
      case negative_policy::batch:
        return "mixed speaker";
      case negative_policy::same_speaker:
        return "same speaker";
      case negative_policy::other_sequences:
        return "mixed speaker, excluding the current sequence";
      case negative_policy::same_speaker_other_sequences:
        return "same speaker, excluding the current sequence";
      case negative_policy::same_sequence:
        return "current sequence only";
    }
    return "unknown";
  }

  /// Shortest decimal form that reads back as the same value (float or double).
  template <class N>
  static std::string number(N v) {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
  }

 private:
  template <class N>
  static bool parse_number(const std::string& s, N& out) {
    const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    return r.ec == std::errc() && r.ptr == s.data() + s.size();
  }
};

/// Reads the recipe saved in a checkpoint (see `speech_recipe::from_metadata`).
/// Errors: `load_safetensors`'s `cpc::io_error` for an unreadable file; `from_metadata`'s.
inline speech_recipe read_speech_recipe(const std::filesystem::path& checkpoint) {
  return speech_recipe::from_metadata(load_safetensors(checkpoint).metadata, checkpoint.string());
}

/// How `train_speech` runs: the trainer's options (limits, CSV, checkpoint path and interval,
/// progress; the generators, metadata and clip are set from the recipe), whether to resume from
/// `train.checkpoint_path`, and whether batches are prepared ahead on a oneTBB task (the default).
struct speech_run_options {
  train_options train{};
  bool resume = false;
  bool prefetch = true;
};

/// Trains audio model `m` on the train split of `corpus` with `recipe` (its gain already set:
/// `speech_recipe::prepare`, or read from the checkpoint to resume): windows of the preset's
/// length from a `window_sampler` (wrapped in a `prefetching_sampler` unless `run.prefetch` is
/// false), Adam with `linear_warmup{recipe.learning_rate, recipe.warmup}`, gradient clipping
/// `recipe.clip`, checkpoints with the recipe in their metadata (plus `run.train.metadata`) and
/// the sampler's generator as "rng.data". With `run.resume`, first loads the checkpoint at
/// `run.train.checkpoint_path` into the model, optimiser and sampler, and continues its schedule.
/// With `run.train.comm` (data-parallel training, cpc/train/distributed.hpp) every rank calls this
/// with the same arguments: each draws its own windows, rank 0 alone reads the checkpoint to
/// resume and writes. Prints how many train utterances were too short to `run.train.out` (rank 0).
/// Errors: `cpc::config_error` when the model's frames per window differ from the corpus's label
/// frames (window / frame_length) - lengths and labels would not line up - or from the recipe
/// (`check`) and the sampler; `cpc::train`'s and `load_checkpoint`'s errors.
template <class Model>
train_summary train_speech(Model& m, const speech_corpus& corpus, const speech_recipe& recipe,
                           speech_run_options run) {
  using config = typename Model::config_type;
  recipe.check();
  const std::size_t window = config::window_samples;
  if (m.frames(window) != window / corpus.frame_length() || window % corpus.frame_length() != 0)
    throw config_error("train_speech: the model makes " + std::to_string(m.frames(window)) + " frames of a " +
                       std::to_string(window) + "-sample window, expected one per corpus frame of " +
                       std::to_string(corpus.frame_length()) + " samples (" +
                       std::to_string(window / corpus.frame_length()) + ")");
  window_sampler sampler(corpus, recipe.sampler_options(window), corpus.indices(corpus_split::train));
  if (sampler.skipped_short() > 0 && run.train.out != nullptr && detail::leads(run.train.comm))
    *run.train.out << sampler.skipped_short()
                   << " train utterances are shorter than a window and are not used for training "
                      "(--short-utterances pad uses them, zero-padded and masked)\n";
  adam<typename Model::value_type, typename Model::backend_type> opt(m.parameters(),
                                                                     {.learning_rate = recipe.learning_rate});
  std::unique_ptr<prefetching_sampler> ahead;
  if (run.prefetch) ahead = std::make_unique<prefetching_sampler>(std::move(sampler));
  rng& data = ahead ? ahead->generator() : sampler.generator();
  if (run.resume && run.train.comm != nullptr)  // rank 0 reads the file for every rank
    load_checkpoint(run.train.checkpoint_path, m, opt, {{"data", &data}}, *run.train.comm);
  else if (run.resume)
    load_checkpoint(run.train.checkpoint_path, m, opt, {{"data", &data}});
  run.train.generators["data"] = &data;
  for (const auto& [k, v] : recipe.metadata()) run.train.metadata[k] = v;
  run.train.clip_norm = recipe.clip;
  const linear_warmup schedule{recipe.learning_rate, recipe.warmup};
  return ahead ? train(m, opt, schedule, *ahead, run.train) : train(m, opt, schedule, sampler, run.train);
}

/// Contexts c_t of `m` for each utterance, each whole utterance streamed at once through
/// `context_stream` from a zero state (CPC_audio's feature extraction runs its LSTM over whole
/// files the same way). Samples are multiplied by `gain` first. Shapes: rows `[frames, context]`,
/// frames = the encoder's frames for the utterance (frame f = samples [160 f, 160 f + 160)).
/// `Model` is a float cpc::model. Errors: `context_stream`'s.
template <class Model>
utterance_features streamed_features(Model& m, const speech_corpus& corpus,
                                     const std::vector<std::size_t>& utterances, float gain = 1.0f) {
  utterance_features f;
  f.utterances = utterances;
  f.dims = m.config().loss.context_dim;
  f.rows.resize(utterances.size());
  for (std::size_t i = 0; i < utterances.size(); ++i) {
    const auto& s = corpus[utterances[i]].samples;
    tensor2<float> audio = tensor2<float>::from_shape({1, s.size()});
    for (std::size_t k = 0; k < s.size(); ++k) audio(0, k) = gain * s[k];
    context_stream<Model> stream(m);
    tensor3<float> head, tail;
    stream.push(audio, head);
    stream.finish(tail);
    const std::size_t nh = head.shape()[1], n = nh + tail.shape()[1];
    f.rows[i] = tensor2<float>::from_shape({n, f.dims});
    for (std::size_t t = 0; t < n; ++t)
      for (std::size_t d = 0; d < f.dims; ++d) f.rows[i](t, d) = t < nh ? head(0, t, d) : tail(0, t - nh, d);
  }
  return f;
}

}  // namespace cpc
