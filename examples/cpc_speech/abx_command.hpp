// cpc-speech's ABX command and its CPC_audio support, kept out of main.cpp: a converted CPC_audio
// checkpoint's model (scripts/convert_cpc_audio.py), the ABX run with its timing, and the table.
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

/// One row of the ABX table.
struct abx_row {
  std::string name;
  cpc::abx_result r;
};

/// `cpc::speech_abx` with the time it took on stderr.
inline cpc::abx_result corpus_abx(const cpc::speech_corpus& corpus, const cpc::utterance_features& f,
                                  const cpc::abx_options& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  auto r = cpc::speech_abx(corpus, f, opt);
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
