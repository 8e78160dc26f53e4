// libFuzzer target: the text corpus readers (cpc/data/text_corpus.hpp) on arbitrary content.
// Input: byte 0 selects the reader (even: read_kjv, the `bible` program's output; 1 mod 4:
// read_wordnet_glosses, a WordNet data file; 3 mod 4: read_fortunes, cut into sentences when
// 3 mod 8), the rest is the file. Only cpc::error may escape, and
// a corpus that loads must satisfy the documented invariants (checked below); a KJV corpus with at
// least two sentences also feeds text_sampler for one batch.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include <cpc/core/threads.hpp>
#include <cpc/data/text_corpus.hpp>

namespace {

void check_invariants(const cpc::text_corpus& c) {
  const std::size_t n = c.sentences.size();
  if (c.document_begin.size() != c.documents() + 1 || c.document_begin.front() != 0 ||
      c.document_begin.back() != n)
    __builtin_trap();
  for (std::size_t d = 0; d < c.documents(); ++d)
    if (c.document_begin[d + 1] <= c.document_begin[d]) __builtin_trap();  // no empty document
  for (const auto& s : c.sentences)
    if (s.empty()) __builtin_trap();
  for (const auto& l : c.labels) {
    if (l.of_sentence.size() != n) __builtin_trap();
    for (int y : l.of_sentence)
      if (y < 0 || static_cast<std::size_t>(y) >= l.classes.size()) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  static const bool single_thread = [] {
    cpc::set_num_threads(1);
    return true;
  }();
  (void)single_thread;
  std::istringstream in(std::string(reinterpret_cast<const char*>(data + 1), size - 1));
  try {
    if (data[0] % 2 == 0) {
      const cpc::text_corpus c = cpc::read_kjv(in, "fuzz");
      check_invariants(c);
      std::vector<std::vector<std::int32_t>> tokens(c.sentences.size());
      for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i].assign(1 + c.sentences[i].size() % 7, 1);
      std::vector<std::size_t> all(c.sentences.size());
      for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
      cpc::text_sampler sampler(c, tokens, all,
                                {.batch_size = 3, .sentences = 3, .max_tokens = 4, .seed = 1});
      cpc::text_batch b;
      sampler.next(b);
      for (std::size_t r = 0; r < 3; ++r)
        if (b.info.lengths[r] < 2 || b.info.lengths[r] > 3) __builtin_trap();
    } else if (data[0] % 4 == 1) {
      cpc::text_corpus c;
      cpc::read_wordnet_glosses(in, "fuzz", c);
      if (!c.sentences.empty()) check_invariants(c);
    } else {
      cpc::text_corpus c;
      cpc::read_fortunes(in, "fuzz", "category", c, data[0] % 8 == 3);
      if (!c.sentences.empty()) check_invariants(c);
    }
  } catch (const cpc::error&) {
  }
  return 0;
}
