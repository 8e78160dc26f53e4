#pragma once
/// facebookresearch/CPC_audio's models in cpc ("modified CPC", Rivière et al. 2020; the ZeroSpeech
/// 2021 baselines CPC-small and CPC-big): the composition, and the options a converted checkpoint
/// (scripts/convert_cpc_audio.py) carries in its metadata.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpc/core/error.hpp"
#include "cpc/io/safetensors.hpp"
#include "cpc/layers/lstm.hpp"
#include "cpc/loss/transformer_info_nce.hpp"
#include "cpc/model/model.hpp"
#include "cpc/model/presets.hpp"

namespace cpc {

/// CPC_audio's model: strided convolutions with channel norm (`strided_conv_encoder`), a
/// multi-layer LSTM autoregressor (`lstm`), InfoNCE with transformer prediction heads
/// (`transformer_info_nce`). Parameter names: "encoder.conv{i}.*", "encoder.norm{i}.*",
/// "autoregressor.{weight,bias}_{ih,hh}_l{k}", "loss.predictor.{k}.<transformer_layer names>".
template <class Config = presets::cpc_audio_small, class T = float, class Backend = cpu>
using cpc_audio_model = model<Config, strided_conv_encoder, lstm, transformer_info_nce, T, Backend>;

/// The metadata key of a converted checkpoint that holds its architecture (a JSON object), and the
/// value of its "model" key.
inline constexpr const char* cpc_audio_metadata_key = "cpc_audio";
inline constexpr const char* cpc_audio_model_name = "cpc_audio";

/// The options of a `cpc_audio_model` for a checkpoint written by scripts/convert_cpc_audio.py, from
/// its metadata "cpc_audio": {"encoder_channels", "kernels", "strides", "paddings", "norm_eps",
/// "ar_mode": "LSTM", "ar_hidden", "ar_layers", "prediction": "transformer", "steps", "negatives",
/// "heads", "ff_dim", "max_time"}. `Options` is `cpc_audio_model<...>::options`; the seed is 0.
/// Errors: `cpc::io_error` "<where>: metadata 'cpc_audio': <what>" when the key is missing, is not
/// valid JSON, lacks a field, has a field of the wrong type, or names another architecture.
template <class Options>
Options cpc_audio_options(const safetensors_metadata& metadata, std::string_view where) {
  const auto fail = [&](const std::string& what) {
    return io_error(std::string(where) + ": metadata '" + cpc_audio_metadata_key + "': " + what);
  };
  const auto it = metadata.find(cpc_audio_metadata_key);
  if (it == metadata.end())
    throw io_error(std::string(where) + ": no metadata '" + cpc_audio_metadata_key +
                   "' (not a checkpoint converted by scripts/convert_cpc_audio.py)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) throw fail("expected a JSON object");
  const auto size = [&](const char* key) -> std::size_t {
    if (!j.contains(key) || !j[key].is_number_unsigned() || j[key].get<std::size_t>() == 0)
      throw fail(std::string("expected '") + key + "' as a whole number > 0");
    return j[key].get<std::size_t>();
  };
  const auto sizes = [&](const char* key) {
    std::vector<std::size_t> v;
    if (!j.contains(key) || !j[key].is_array()) throw fail(std::string("expected '") + key + "' as a list");
    for (const auto& e : j[key]) {
      if (!e.is_number_unsigned()) throw fail(std::string("expected '") + key + "' as whole numbers");
      v.push_back(e.get<std::size_t>());
    }
    return v;
  };
  const auto text = [&](const char* key, const char* expected) {
    if (!j.contains(key) || !j[key].is_string() || j[key].get<std::string>() != expected)
      throw fail(std::string("expected '") + key + "' = \"" + expected + "\", got " +
                 (j.contains(key) ? j[key].dump() : std::string("none")));
  };
  text("ar_mode", "LSTM");
  text("prediction", "transformer");
  if (!j.contains("norm_eps") || !j["norm_eps"].is_number() || !(j["norm_eps"].get<double>() >= 0))
    throw fail("expected 'norm_eps' as a number >= 0");
  Options o;
  o.encoder.channels = size("encoder_channels");
  o.encoder.kernels = sizes("kernels");
  o.encoder.strides = sizes("strides");
  o.encoder.paddings = sizes("paddings");
  o.encoder.normalisation = encoder_normalisation::channel_norm;
  o.encoder.norm_eps = j["norm_eps"].get<double>();
  o.autoregressor.input_size = o.encoder.channels;
  o.autoregressor.hidden_size = size("ar_hidden");
  o.autoregressor.num_layers = size("ar_layers");
  o.loss.latent_dim = o.encoder.channels;
  o.loss.context_dim = o.autoregressor.hidden_size;
  o.loss.steps = size("steps");
  o.loss.negatives = size("negatives");
  o.loss.heads = size("heads");
  o.loss.ff_dim = size("ff_dim");
  o.loss.max_time = size("max_time");
  o.loss.scale = score_scale::inv_dim;
  return o;
}

}  // namespace cpc
