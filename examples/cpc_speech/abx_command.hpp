// cpc-speech's ABX evaluation and its CPC_audio support, kept out of main.cpp: the ABX error of
// frame features over a corpus split's triphones (cpc/eval/abx.hpp), the features of a converted
// CPC_audio checkpoint (scripts/convert_cpc_audio.py), and the table both print.
#pragma once

#include <cpc/audio.hpp>
#include <cpc/cpc.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace cpc_speech {

/// The model a converted CPC_audio checkpoint holds (its sizes come from the file's metadata).
using cpc_audio_model_t = cpc::cpc_audio_model<>;

/// Builds the model a converted CPC_audio checkpoint describes; with `load`, loads its weights
/// (else the model keeps a random init drawn from `seed`: the "random init" baseline of that
/// architecture). Errors: cpc::io_error naming the file (metadata or tensors).
inline std::unique_ptr<cpc_audio_model_t> load_cpc_audio(const std::filesystem::path& path, bool load,
                                                         std::uint64_t seed = 1) {
  const auto md = cpc::load_safetensors(path).metadata;
  auto opt = cpc::cpc_audio_options<cpc_audio_model_t::options>(md, path.string());
  opt.seed = seed;
  auto m = std::make_unique<cpc_audio_model_t>(opt);
  if (load) cpc::load_weights(path, *m);
  return m;
}

/// Contexts of a CPC_audio model for each utterance, each whole utterance at once through
/// cpc::context_stream (the LSTM runs over the whole utterance from a zero state, as CPC_audio's
/// feature extraction does for files up to 4 s). Samples are multiplied by `gain`.
/// Shapes: rows `[frames, context]` with frames = the encoder's frames for the utterance.
template <class Model>
cpc::utterance_features streamed_features(Model& m, const cpc::speech_corpus& corpus,
                                          const std::vector<std::size_t>& utterances, float gain) {
  cpc::utterance_features f;
  f.utterances = utterances;
  f.dims = m.config().loss.context_dim;
  f.rows.resize(utterances.size());
  for (std::size_t i = 0; i < utterances.size(); ++i) {
    const auto& s = corpus[utterances[i]].samples;
    cpc::tensor2<float> audio = cpc::tensor2<float>::from_shape({1, s.size()});
    for (std::size_t k = 0; k < s.size(); ++k) audio(0, k) = gain * s[k];
    cpc::context_stream<Model> stream(m);
    cpc::tensor3<float> head, tail;
    stream.push(audio, head);
    stream.finish(tail);
    const std::size_t n = head.shape()[1] + tail.shape()[1];
    f.rows[i] = cpc::tensor2<float>::from_shape({n, f.dims});
    for (std::size_t t = 0; t < n; ++t)
      for (std::size_t d = 0; d < f.dims; ++d)
        f.rows[i](t, d) = t < head.shape()[1] ? head(0, t, d) : tail(0, t - head.shape()[1], d);
  }
  return f;
}

/// One row of the ABX table.
struct abx_row {
  std::string name;
  cpc::abx_result r;
};

/// The ABX error of `f` over the triphones of its utterances (labels from the corpus alignments,
/// silence never the central phone). Errors: cpc::config_error when no utterance has phone labels.
inline cpc::abx_result corpus_abx(const cpc::speech_corpus& corpus, const cpc::utterance_features& f,
                                  const cpc::abx_options& opt) {
  std::vector<std::vector<std::int32_t>> labels;
  std::vector<std::int64_t> speakers;
  for (std::size_t u : f.utterances) {
    labels.push_back(corpus[u].labels);
    speakers.push_back(static_cast<std::int64_t>(corpus[u].speaker));
  }
  const auto items = cpc::abx_items(labels, speakers);
  if (items.empty())
    throw cpc::config_error(
        "abx: the utterances have no labelled triphones (the corpus needs phone alignments)");
  const auto t0 = std::chrono::steady_clock::now();
  auto r = cpc::abx_error(f.rows, items, opt);
  std::cerr << "ABX over " << r.items << " triphones: " << r.within_cells << " within / " << r.across_cells
            << " across cells in " << std::fixed << std::setprecision(0)
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s\n";
  return r;
}

inline std::string abx_pct(double v) {
  if (std::isnan(v)) return "n/a";
  std::ostringstream os;
  os << std::fixed << std::setprecision(1) << 100 * v;
  return os.str();
}

/// Prints the ABX table (error rates in %, lower is better, 50 = chance).
inline void print_abx_table(const std::vector<abx_row>& rows, std::ostream& os) {
  os << "\n| features | ABX within speaker (%) | ABX across speakers (%) | phone pairs (within / across) |\n"
        "|---|---|---|---|\n";
  for (const auto& row : rows)
    os << "| " << row.name << " | " << abx_pct(row.r.within) << " | " << abx_pct(row.r.across) << " | "
       << row.r.within_pairs << " / " << row.r.across_pairs << " |\n";
}

}  // namespace cpc_speech
