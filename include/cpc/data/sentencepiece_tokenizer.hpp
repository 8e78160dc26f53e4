#pragma once
/// Subword tokenisation for the text model with SentencePiece (Kudo and Richardson 2018; Debian
/// libsentencepiece-dev, linked through the project's cpc_text target): a unigram vocabulary
/// learned on the training split, with id 0 reserved for padding.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include "cpc/core/error.hpp"

namespace cpc {

/// A SentencePiece model: id 0 = padding ("<pad>", never produced by `encode`), id 1 = unknown,
/// no begin/end-of-sentence ids; pieces 2 .. vocabulary - 1. Encoding is deterministic.
/// Errors: `cpc::io_error` carrying SentencePiece's message when training, loading or encoding fails.
class sentencepiece_tokenizer {
 public:
  /// Loads a model file (`<prefix>.model` written by `train`).
  explicit sentencepiece_tokenizer(const std::filesystem::path& model) {
    const auto st = sp_.Load(model.string());
    if (!st.ok()) throw io_error(model.string() + ": cannot load the SentencePiece model: " + st.ToString());
  }

  /// Learns a unigram vocabulary of `vocabulary` pieces from `sentences` (written one per line to
  /// `<prefix>.txt`) and writes `<prefix>.model` and `<prefix>.vocab`; returns the model's path.
  /// Fixed settings: character coverage 1.0, input in file order (no sampling); `threads` are
  /// SentencePiece's own trainer threads.
  /// Errors: `cpc::io_error` when the text cannot be written or training fails (e.g. a vocabulary
  /// larger than the text allows).
  static std::filesystem::path train(const std::vector<std::string>& sentences, std::size_t vocabulary,
                                     const std::filesystem::path& prefix, int threads = 1) {
    const std::string text = prefix.string() + ".txt";
    {
      std::ofstream out(text);
      for (const auto& s : sentences) out << s << '\n';
      if (!out) throw io_error(text + ": cannot write the tokeniser's training text");
    }
    const std::string args =
        "--input=" + text + " --model_prefix=" + prefix.string() +
        " --vocab_size=" + std::to_string(vocabulary) +
        " --model_type=unigram --character_coverage=1.0 --pad_id=0 --unk_id=1"
        " --bos_id=-1 --eos_id=-1 --input_sentence_size=1000000 --shuffle_input_sentence=false"
        " --num_threads=" +
        std::to_string(threads) + " --minloglevel=2";
    const auto st = sentencepiece::SentencePieceTrainer::Train(args);
    if (!st.ok()) throw io_error(prefix.string() + ": SentencePiece training failed: " + st.ToString());
    return prefix.string() + ".model";
  }

  /// Number of ids (pieces, padding and unknown included).
  std::size_t vocabulary() const { return static_cast<std::size_t>(sp_.GetPieceSize()); }

  /// Token ids of `text` (each in [1, vocabulary)).
  std::vector<std::int32_t> encode(const std::string& text) const {
    std::vector<int> ids;
    const auto st = sp_.Encode(text, &ids);
    if (!st.ok()) throw io_error("SentencePiece encode failed: " + st.ToString());
    return {ids.begin(), ids.end()};
  }

  /// `encode` of each sentence.
  std::vector<std::vector<std::int32_t>> encode_all(const std::vector<std::string>& sentences) const {
    std::vector<std::vector<std::int32_t>> out;
    out.reserve(sentences.size());
    for (const auto& s : sentences) out.push_back(encode(s));
    return out;
  }

  /// The piece of an id (e.g. "▁the").
  std::string piece(std::int32_t id) const { return sp_.IdToPiece(id); }

 private:
  sentencepiece::SentencePieceProcessor sp_;
};

}  // namespace cpc
