#pragma once
/// Input normalisation for speech: how raw samples are scaled before they reach a model, the
/// same way in training (`window_sampler_options::gain`) and in encoding for probes
/// (`model_features`'s gain). Needs the `cpc::audio` target (through corpus.hpp).
/// Source: REFERENCE.md "Audio model" - normalise without looking at the future: a fixed gain
/// uses no statistics of the window it scales.
#include <cmath>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "cpc/core/error.hpp"
#include "cpc/data/corpus.hpp"

namespace cpc {

/// How audio is scaled before the encoder.
///  - `none`: samples as read, in [-1, 1] (gain 1).
///  - `unit_rms`: one fixed gain for the whole corpus, 1 / RMS over the samples of the training
///    utterances, so the training audio has unit RMS. The gain is a constant: causal, identical
///    for every window in training and encoding, saved in checkpoints (metadata "gain").
enum class input_normalization { none, unit_rms };

/// The name used on command lines and in checkpoints: "none" or "unit-rms".
inline std::string_view to_string(input_normalization n) {
  return n == input_normalization::none ? "none" : "unit-rms";
}

/// Parses "none" or "unit-rms". Errors: `cpc::config_error` "<what>: expected none or unit-rms, got '<s>'".
inline input_normalization parse_input_normalization(std::string_view s,
                                                     std::string_view what = "input normalization") {
  if (s == "none") return input_normalization::none;
  if (s == "unit-rms") return input_normalization::unit_rms;
  throw config_error(std::string(what) + ": expected none or unit-rms, got '" + std::string(s) + "'");
}

/// The gain that `n` applies to the corpus utterances `utterances` (usually the train split):
/// 1 for `none`; 1 / RMS of all their samples for `unit_rms` (1 when they are all silent or
/// there are none). Unitless; multiply samples by it.
inline float input_gain(const speech_corpus& corpus, const std::vector<std::size_t>& utterances,
                        input_normalization n) {
  if (n == input_normalization::none) return 1.0f;
  double sum = 0, count = 0;
  for (std::size_t u : utterances) {
    for (float v : corpus[u].samples) sum += static_cast<double>(v) * v;
    count += static_cast<double>(corpus[u].samples.size());
  }
  const double rms = std::sqrt(sum / std::max(count, 1.0));
  return rms > 0 ? static_cast<float>(1.0 / rms) : 1.0f;
}

}  // namespace cpc
