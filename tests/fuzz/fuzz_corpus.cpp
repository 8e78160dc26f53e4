// libFuzzer target: speech_corpus's text readers (phone list, alignments, train and test splits)
// on arbitrary content, over a fixed folder of four small WAV files (2 speakers):
//   s1/c1/u1.wav 480 samples (3 frames)   s1/c1/u2.wav 800 (5)
//   s2/u3.wav    160 (1)                   s2/c2/u4.wav 1600 (10)
// Input: byte 0 = flags (bit 0 strict_ids, bits 1-2 alignment_tolerance, bit 3 num_phones = 5,
// bit 4 max_per_speaker = 1), then up to four sections separated by NUL bytes: phones.txt,
// alignments.txt, train.txt, test.txt (a missing or empty section = no such file; empty files
// are covered by the unit tests). Only cpc::error may
// escape, and a loaded corpus must satisfy the documented invariants (checked below).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string_view>
#include <vector>

#include <cpc/core/threads.hpp>
#include <cpc/data/corpus.hpp>

#include "fuzz_util.hpp"

namespace {

const std::filesystem::path& corpus_root() {
  static const std::filesystem::path root = [] {
    cpc::set_num_threads(1);
    const auto r = cpc::fuzz::scratch_dir() / "corpus";
    const struct {
      const char* rel;
      std::size_t n;
    } files[] = {{"s1/c1/u1.wav", 480}, {"s1/c1/u2.wav", 800}, {"s2/u3.wav", 160}, {"s2/c2/u4.wav", 1600}};
    for (const auto& f : files) {
      std::filesystem::create_directories((r / f.rel).parent_path());
      std::vector<float> x(f.n);
      for (std::size_t i = 0; i < f.n; ++i) x[i] = static_cast<float>((i * 37 % 101) / 101.0 - 0.5);
      cpc::write_wav(r / f.rel, x, 16000);
    }
    return r;
  }();
  return root;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const auto& root = corpus_root();
  const char* names[] = {"phones.txt", "alignments.txt", "train.txt", "test.txt"};
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  for (const char* name : names) {
    std::error_code ec;
    std::filesystem::remove(root / name, ec);
  }
  for (std::size_t k = 0; k < 4 && !rest.empty(); ++k) {
    const std::size_t end = std::min(rest.find('\0'), rest.size());
    if (end > 0)
      cpc::fuzz::write_file(root / names[k], reinterpret_cast<const std::uint8_t*>(rest.data()), end);
    rest.remove_prefix(std::min(end + 1, rest.size()));
  }
  const std::uint8_t flags = data[0];
  cpc::corpus_options o;
  o.strict_ids = (flags & 1) != 0;
  o.alignment_tolerance = (flags >> 1) & 3;
  o.num_phones = (flags & 8) ? 5 : 0;
  o.max_per_speaker = (flags & 16) ? 1 : 0;
  o.log = nullptr;
  try {
    const cpc::speech_corpus c(root, o);
    for (const auto& u : c.utterances()) {
      const std::size_t frames = u.samples.size() / c.frame_length();
      if (!u.labels.empty() && u.labels.size() != frames) __builtin_trap();
      for (auto l : u.labels)
        if (l < -1 || (c.num_phones() != 0 && l >= 0 && static_cast<std::size_t>(l) >= c.num_phones()))
          __builtin_trap();
    }
    for (auto s : {cpc::corpus_split::all, cpc::corpus_split::train, cpc::corpus_split::test}) {
      const auto& idx = c.indices(s);
      if (!std::is_sorted(idx.begin(), idx.end()) || std::adjacent_find(idx.begin(), idx.end()) != idx.end())
        __builtin_trap();
      for (auto i : idx)
        if (i >= c.size()) __builtin_trap();
    }
  } catch (const cpc::error&) {
  }
  return 0;
}
