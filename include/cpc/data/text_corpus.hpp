#pragma once
/// Text corpora for CPC's text model (van den Oord et al. 2018, section 3.3) from Debian packages,
/// without downloads: the King James Bible as the `bible` program of bible-kjv prints it (running
/// text: documents = chapters, sentences = verses; labels: book and testament), and WordNet's
/// glosses (wordnet-base's data.noun / data.verb / data.adj / data.adv; one gloss per document;
/// labels: part of speech and lexicographer file). Also the fixed splits and `text_sampler`, which
/// draws `cpc::text_batch`es of consecutive tokenised sentences.
#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <istream>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cpc/core/batch.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"

namespace cpc {

/// One labelling of a corpus' sentences: `name` (e.g. "testament"), class names, and the class
/// of every sentence (index into `classes`).
struct text_label_set {
  std::string name;
  std::vector<std::string> classes;
  std::vector<int> of_sentence;  ///< `[sentences]`, in [0, classes.size())
};

/// Sentences grouped into documents, with label sets. Invariants (every reader guarantees them):
/// `document_begin` has documents + 1 non-decreasing offsets from 0 to sentences.size(), every
/// document has at least one sentence, every sentence is non-empty, and every label set has one
/// class per sentence, in range.
struct text_corpus {
  std::vector<std::string> sentences;       ///< every sentence, in document order
  std::vector<std::size_t> document_begin;  ///< `[documents + 1]` first sentence of each document
  std::vector<std::string> document_names;  ///< `[documents]`, e.g. "Ge 1" (a chapter)
  std::vector<text_label_set> labels;       ///< e.g. "book", "testament"

  /// Number of documents.
  std::size_t documents() const { return document_names.size(); }
  /// The label set called `name`. Errors: `cpc::config_error` naming the sets there are.
  const text_label_set& label_set(std::string_view name) const {
    std::string have;
    for (const auto& l : labels) {
      if (l.name == name) return l;
      have += (have.empty() ? "" : ", ") + l.name;
    }
    throw config_error("text_corpus: no label set '" + std::string(name) + "' (have: " + have + ")");
  }
};

namespace detail {
/// `s` without leading and trailing white space (any std::isspace character, line breaks included).
inline std::string_view trim_space(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}
inline bool all_digits(std::string_view s) {
  return !s.empty() && s.size() <= 9 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) != 0;
  });
}
}  // namespace detail

/// The 27 book codes of the New Testament as the `bible` program (bible-kjv 4.38) prints them.
inline constexpr std::array<std::string_view, 27> kjv_new_testament_books{
    "Mat",  "Mark", "Luke",  "John", "Acts", "Rom", "1Cor", "2Cor", "Gal", "Eph", "Phi", "Col",  "1Th", "2Th",
    "1Tim", "2Tim", "Titus", "Phmn", "Heb",  "Jas", "1Pet", "2Pet", "1Jn", "2Jn", "3Jn", "Jude", "Rev"};

/// Reads the King James Bible as printed by `bible -f gen1:1-rev22:21` (Debian bible-kjv): one verse
/// per line, "<book><chapter>:<verse> <text>", e.g. "Ge1:1 In the beginning God created ...";
/// <book> is an optional digit then letters ("1Sm", "Psa"). Documents are chapters, in order of
/// appearance (a new document starts when book or chapter changes); sentences are verses. Label
/// sets: "book" (classes: book codes in order of first appearance) and "testament" ("Old", "New":
/// New for the 27 codes of `kjv_new_testament_books`). Empty lines are skipped. `source` names the
/// input in errors.
/// Errors: `cpc::io_error` "<source>:<line>: ..." for a line that is not a verse (naming what was
/// expected and quoting the start of the line), an empty verse text, or an input without verses.
inline text_corpus read_kjv(std::istream& in, std::string_view source) {
  text_corpus c;
  text_label_set book{"book", {}, {}}, testament{"testament", {"Old", "New"}, {}};
  std::map<std::string, int, std::less<>> book_index;
  std::string line, current;
  std::size_t line_no = 0;
  const auto fail = [&](const std::string& why) {
    return io_error(std::string(source) + ":" + std::to_string(line_no) + ": " + why + " in '" +
                    line.substr(0, 40) + "'");
  };
  while (std::getline(in, line)) {
    ++line_no;
    const std::string_view l = detail::trim_space(line);
    if (l.empty()) continue;
    std::size_t i = 0;
    if (std::isdigit(static_cast<unsigned char>(l[0])) != 0) ++i;
    const std::size_t letters = i;
    while (i < l.size() && std::isalpha(static_cast<unsigned char>(l[i])) != 0) ++i;
    if (i == letters) throw fail("expected '<book><chapter>:<verse> <text>' (a book code such as Ge or 1Sm)");
    const std::string code(l.substr(0, i));
    const std::size_t colon = l.find(':', i), space = l.find(' ', i);
    if (colon == std::string_view::npos || space == std::string_view::npos || colon > space ||
        !detail::all_digits(l.substr(i, colon - i)) ||
        !detail::all_digits(l.substr(colon + 1, space - colon - 1)))
      throw fail("expected '<book><chapter>:<verse> <text>' with a numeric chapter and verse");
    const std::string_view text = detail::trim_space(l.substr(space + 1));
    if (text.empty()) throw fail("expected verse text after the reference");
    const std::string chapter = code + " " + std::string(l.substr(i, colon - i));
    if (chapter != current) {
      c.document_begin.push_back(c.sentences.size());
      c.document_names.push_back(chapter);
      current = chapter;
    }
    auto [it, added] = book_index.try_emplace(code, static_cast<int>(book.classes.size()));
    if (added) book.classes.push_back(code);
    c.sentences.emplace_back(text);
    book.of_sentence.push_back(it->second);
    const bool is_new = std::find(kjv_new_testament_books.begin(), kjv_new_testament_books.end(), code) !=
                        kjv_new_testament_books.end();
    testament.of_sentence.push_back(is_new ? 1 : 0);
  }
  if (c.sentences.empty())
    throw io_error(std::string(source) +
                   ": expected verses '<book><chapter>:<verse> <text>' (the output of "
                   "`bible -f gen1:1-rev22:21`, Debian bible-kjv), found none");
  c.document_begin.push_back(c.sentences.size());
  c.labels = {std::move(book), std::move(testament)};
  return c;
}

/// `read_kjv` on a file. Errors: `cpc::io_error` naming the file when it cannot be opened, and
/// `read_kjv`'s.
inline text_corpus read_kjv_file(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    throw io_error(path + ": cannot open (make it with `bible -f gen1:1-rev22:21 > " + path +
                   "`; Debian: apt-get install bible-kjv)");
  return read_kjv(in, path);
}

/// WordNet 3.0's 45 lexicographer files (lexnames(5)), by number.
inline constexpr std::array<std::string_view, 45> wordnet_lexicographer_files{
    "adj.all",          "adj.pert",           "adv.all",
    "noun.Tops",        "noun.act",           "noun.animal",
    "noun.artifact",    "noun.attribute",     "noun.body",
    "noun.cognition",   "noun.communication", "noun.event",
    "noun.feeling",     "noun.food",          "noun.group",
    "noun.location",    "noun.motive",        "noun.object",
    "noun.person",      "noun.phenomenon",    "noun.plant",
    "noun.possession",  "noun.process",       "noun.quantity",
    "noun.relation",    "noun.shape",         "noun.state",
    "noun.substance",   "noun.time",          "verb.body",
    "verb.change",      "verb.cognition",     "verb.communication",
    "verb.competition", "verb.consumption",   "verb.contact",
    "verb.creation",    "verb.emotion",       "verb.motion",
    "verb.perception",  "verb.possession",    "verb.social",
    "verb.stative",     "verb.weather",       "adj.ppl"};

/// Appends the glosses of one WordNet data file (wndb(5): "<offset> <lex_filenum> <ss_type> ... |
/// <gloss>") to `c`, one document of one sentence per synset: the gloss's definition, the text
/// before its first quoted example (trailing ';' removed; a gloss that is only examples keeps them).
/// Label sets "part of speech" (noun, verb, adjective, adverb; satellites 's' count as adjectives)
/// and "lexicographer file" (`wordnet_lexicographer_files`) are created on the first call. Lines
/// that start with a space (the licence header) are skipped. `source` names the input in errors.
/// Errors: `cpc::io_error` "<source>:<line>: ..." for a line without the fields or the '|', a
/// lexicographer file outside 0..44, an unknown synset type, or an empty gloss.
inline void read_wordnet_glosses(std::istream& in, std::string_view source, text_corpus& c) {
  if (c.labels.empty()) {
    c.labels.push_back({"part of speech", {"noun", "verb", "adjective", "adverb"}, {}});
    c.labels.push_back(
        {"lexicographer file",
         std::vector<std::string>(wordnet_lexicographer_files.begin(), wordnet_lexicographer_files.end()),
         {}});
  }
  if (c.labels.size() != 2 || c.labels[0].name != "part of speech" ||
      c.labels[1].name != "lexicographer file")
    throw config_error("read_wordnet_glosses: expected an empty corpus or one of WordNet glosses");
  if (c.document_begin.empty()) c.document_begin.push_back(0);
  std::string line;
  std::size_t line_no = 0;
  const auto fail = [&](const std::string& why) {
    return io_error(std::string(source) + ":" + std::to_string(line_no) + ": " + why + " in '" +
                    line.substr(0, 40) + "'");
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == ' ') continue;
    const std::size_t bar = line.find(" | ");
    if (bar == std::string::npos) throw fail("expected '<offset> <lex_filenum> <ss_type> ... | <gloss>'");
    const std::string_view head(line.data(), bar);
    const std::size_t s1 = head.find(' '), s2 = s1 == std::string_view::npos ? s1 : head.find(' ', s1 + 1),
                      s3 = s2 == std::string_view::npos ? s2 : head.find(' ', s2 + 1);
    if (s3 == std::string_view::npos || !detail::all_digits(head.substr(0, s1)))
      throw fail("expected '<offset> <lex_filenum> <ss_type> ...' before the gloss");
    const std::string_view lex = head.substr(s1 + 1, s2 - s1 - 1), type = head.substr(s2 + 1, s3 - s2 - 1);
    if (!detail::all_digits(lex) || std::stoul(std::string(lex)) >= wordnet_lexicographer_files.size())
      throw fail("expected a lexicographer file number 00..44, got '" + std::string(lex) + "'");
    int pos = -1;
    if (type == "n") pos = 0;
    if (type == "v") pos = 1;
    if (type == "a" || type == "s") pos = 2;
    if (type == "r") pos = 3;
    if (pos < 0) throw fail("expected a synset type n, v, a, s or r, got '" + std::string(type) + "'");
    std::string_view gloss = detail::trim_space(std::string_view(line).substr(bar + 3));
    const std::size_t quote = gloss.find('"');
    std::string_view definition = detail::trim_space(gloss.substr(0, quote));
    while (!definition.empty() && definition.back() == ';')
      definition = detail::trim_space(definition.substr(0, definition.size() - 1));
    if (!definition.empty()) gloss = definition;
    if (gloss.empty()) throw fail("expected a gloss after '|'");
    c.sentences.emplace_back(gloss);
    c.document_names.emplace_back(head.substr(0, s1));
    c.document_begin.push_back(c.sentences.size());
    c.labels[0].of_sentence.push_back(pos);
    c.labels[1].of_sentence.push_back(static_cast<int>(std::stoul(std::string(lex))));
  }
}

/// WordNet's glosses from `dir` (Debian wordnet-base: /usr/share/wordnet): data.noun, data.verb,
/// data.adj and data.adv in that order, through `read_wordnet_glosses`.
/// Errors: `cpc::io_error` naming a file that cannot be opened, and the reader's.
inline text_corpus read_wordnet_glosses_dir(const std::string& dir) {
  text_corpus c;
  for (const char* name : {"data.noun", "data.verb", "data.adj", "data.adv"}) {
    const std::string path = dir + "/" + name;
    std::ifstream in(path);
    if (!in) throw io_error(path + ": cannot open (Debian: apt-get install wordnet-base)");
    read_wordnet_glosses(in, path, c);
  }
  if (c.sentences.empty()) throw io_error(dir + ": no WordNet glosses in data.noun/verb/adj/adv");
  return c;
}

/// Cuts running text into sentences: after '.', '!' or '?' (and any closing quotes or brackets
/// right after it) followed by whitespace; whitespace runs become one space. Never returns an
/// empty sentence.
inline std::vector<std::string> split_into_sentences(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  const auto flush = [&] {
    const std::string_view t = detail::trim_space(cur);
    if (!t.empty()) out.emplace_back(t);
    cur.clear();
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (std::isspace(static_cast<unsigned char>(ch)) != 0) {
      if (!cur.empty() && cur.back() != ' ') cur += ' ';
      continue;
    }
    cur += ch;
    if (ch == '.' || ch == '!' || ch == '?') {
      while (i + 1 < text.size() && (text[i + 1] == '"' || text[i + 1] == '\'' || text[i + 1] == ')'))
        cur += text[++i];
      if (i + 1 == text.size() || std::isspace(static_cast<unsigned char>(text[i + 1])) != 0) flush();
    }
  }
  flush();
  return out;
}

/// Appends the quotations of one fortune-mod file (Debian fortunes: /usr/share/games/fortunes/<category>;
/// quotations separated by lines "%") to `c`, one document per quotation, with the label set
/// "category" (created on the first call) naming `category`. Attribution lines (starting, after
/// whitespace, with "--") are dropped. `sentences`: the quotation cut into sentences
/// (`split_into_sentences`, running text for training); otherwise the whole quotation is one
/// sentence (a probe item). Quotations with no text are skipped.
/// Errors: `cpc::config_error` when `c` holds another kind of corpus; `cpc::io_error`
/// "<source>:<line>: ..." for a NUL byte (a binary file, e.g. the .dat index) or a quotation
/// longer than 64 KiB.
inline void read_fortunes(std::istream& in, std::string_view source, std::string_view category,
                          text_corpus& c, bool sentences) {
  if (c.labels.empty()) c.labels.push_back({"category", {}, {}});
  if (c.labels.size() != 1 || c.labels[0].name != "category")
    throw config_error("read_fortunes: expected an empty corpus or one of fortune quotations");
  if (c.document_begin.empty()) c.document_begin.push_back(0);
  auto& classes = c.labels[0].classes;
  auto found = std::find(classes.begin(), classes.end(), category);
  const int label = static_cast<int>(found - classes.begin());
  if (found == classes.end()) classes.emplace_back(category);
  std::string line, quote;
  std::size_t line_no = 0, quotes = 0;
  const auto finish = [&] {
    std::vector<std::string> parts;
    if (sentences) {
      parts = split_into_sentences(quote);
    } else {
      auto one = split_into_sentences(quote);
      std::string joined;
      for (const auto& p : one) joined += (joined.empty() ? "" : " ") + p;
      if (!joined.empty()) parts.push_back(joined);
    }
    quote.clear();
    if (parts.empty()) return;
    for (auto& p : parts) {
      c.sentences.push_back(std::move(p));
      c.labels[0].of_sentence.push_back(label);
    }
    c.document_names.push_back(std::string(category) + " " + std::to_string(quotes++));
    c.document_begin.push_back(c.sentences.size());
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find('\0') != std::string::npos)
      throw io_error(std::string(source) + ":" + std::to_string(line_no) +
                     ": expected text (quotations separated by lines '%'), found a NUL byte");
    if (detail::trim_space(line) == "%") {
      finish();
      continue;
    }
    if (detail::trim_space(line).substr(0, 2) == "--") continue;  // attribution
    quote += line;
    quote += '\n';
    if (quote.size() > 65536)
      throw io_error(std::string(source) + ":" + std::to_string(line_no) +
                     ": a quotation longer than 64 KiB (expected quotations separated by lines '%')");
  }
  finish();
}

/// Every category file of a fortune-mod folder (Debian fortunes: /usr/share/games/fortunes; the
/// files without an extension), in name order, through `read_fortunes`.
/// Errors: `cpc::io_error` when the folder has no category file or one cannot be opened.
inline text_corpus read_fortunes_dir(const std::string& dir, bool sentences) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.is_regular_file() && !e.path().has_extension()) files.push_back(e.path());
  if (files.empty()) throw io_error(dir + ": no fortune files (Debian: apt-get install fortunes)");
  std::sort(files.begin(), files.end());
  text_corpus c;
  for (const auto& f : files) {
    std::ifstream in(f);
    if (!in) throw io_error(f.string() + ": cannot open");
    read_fortunes(in, f.string(), f.filename().string(), c, sentences);
  }
  return c;
}

/// The documents of several corpora in one corpus without labels (e.g. the training text of
/// several sources); document names are kept.
inline text_corpus concatenate_documents(const std::vector<const text_corpus*>& parts) {
  text_corpus out;
  out.document_begin.push_back(0);
  for (const text_corpus* p : parts) {
    out.sentences.insert(out.sentences.end(), p->sentences.begin(), p->sentences.end());
    out.document_names.insert(out.document_names.end(), p->document_names.begin(), p->document_names.end());
    const std::size_t base = out.document_begin.back();
    for (std::size_t d = 1; d < p->document_begin.size(); ++d)
      out.document_begin.push_back(base + p->document_begin[d]);
  }
  return out;
}

/// `c` with consecutive documents merged while the class of label set `label` stays the same
/// (compared on each document's first sentence); sentences, their order and their indices are
/// kept, so splits made on `c` (`split_sentences`) still apply. Used to read a source as running
/// text: a fortune category file's quotations (label "category") or a WordNet data file's glosses
/// (label "part of speech": one document per data file, whose synsets WordNet lists grouped by
/// lexicographer file). A merged document keeps its first document's name; label sets are kept.
/// Errors: `cpc::config_error` naming the sets there are, when `c` has no label set `label`.
inline text_corpus merge_documents_by_label(const text_corpus& c, std::string_view label) {
  const text_label_set& l = c.label_set(label);
  if (c.documents() == 0) return c;
  text_corpus out;
  out.sentences = c.sentences;
  out.labels = c.labels;
  out.document_begin.push_back(0);
  for (std::size_t d = 0; d < c.documents(); ++d) {
    const std::size_t first = c.document_begin[d];
    if (d > 0 && l.of_sentence[first] == l.of_sentence[c.document_begin[d - 1]]) continue;
    if (d > 0) out.document_begin.push_back(first);
    out.document_names.push_back(c.document_names[d]);
  }
  out.document_begin.push_back(c.sentences.size());
  return out;
}

/// The fixed document split of a corpus: document d is in the test split when d % every == offset,
/// else in the train split (the Bible: every tenth chapter, `every` = 10, `offset` = 9). Returns
/// the sentence indices of the chosen split, in order.
/// Errors: `cpc::config_error` for every = 0 or offset >= every.
inline std::vector<std::size_t> split_sentences(const text_corpus& c, bool test, std::size_t every = 10,
                                                std::size_t offset = 9) {
  if (every == 0 || offset >= every)
    throw config_error("split_sentences: expected 0 <= offset < every, got offset " + std::to_string(offset) +
                       ", every " + std::to_string(every));
  std::vector<std::size_t> out;
  for (std::size_t d = 0; d < c.documents(); ++d)
    if ((d % every == offset) == test)
      for (std::size_t s = c.document_begin[d]; s < c.document_begin[d + 1]; ++s) out.push_back(s);
  return out;
}

/// Settings of `cpc::text_sampler`.
struct text_sampler_options {
  std::size_t batch_size = 32;  ///< rows per batch
  std::size_t sentences = 8;    ///< S consecutive sentences per row
  std::size_t max_tokens = 64;  ///< tokens kept per sentence (the rest is cut)
  std::uint64_t seed = 1;
};

/// Draws `cpc::text_batch`es: each row is S consecutive sentences of one document, starting at a
/// sentence drawn uniformly among the allowed ones that have at least one more sentence after them
/// in their document (a row needs 2 sentences for a prediction); a row that reaches its document's
/// end has fewer real sentences (`info.lengths`), its other slots all padding. Token ids come
/// from `tokens` (one vector per corpus sentence, ids > 0; 0 is the padding id), cut to
/// `max_tokens`; L = the longest sentence of the batch. Seeded: the same options give the same
/// batches. Errors: `cpc::config_error` for zero sizes, a token list of the wrong size, an empty
/// tokenised sentence or a padding id in one, or no allowed start.
class text_sampler {
 public:
  /// `allowed[i]` = whether sentence i may be in a row (e.g. the train split); rows never cross a
  /// document boundary or a disallowed sentence.
  text_sampler(const text_corpus& corpus, std::vector<std::vector<std::int32_t>> tokens,
               const std::vector<std::size_t>& allowed_sentences, text_sampler_options opt)
      : opt_(opt), tokens_(std::move(tokens)), gen_(opt.seed) {
    if (opt.batch_size == 0 || opt.sentences < 2 || opt.max_tokens == 0)
      throw config_error("text_sampler: expected batch_size >= 1, sentences >= 2, max_tokens >= 1");
    if (tokens_.size() != corpus.sentences.size())
      throw config_error("text_sampler: expected " + std::to_string(corpus.sentences.size()) +
                         " tokenised sentences, got " + std::to_string(tokens_.size()));
    std::vector<char> ok(corpus.sentences.size(), 0);
    for (std::size_t s : allowed_sentences)
      if (s < ok.size()) ok[s] = 1;
    run_end_.assign(corpus.sentences.size(), 0);
    for (std::size_t d = 0; d < corpus.documents(); ++d) {
      std::size_t end = corpus.document_begin[d + 1];
      for (std::size_t s = end; s-- > corpus.document_begin[d];) {
        if (!ok[s]) {
          end = s;
          continue;
        }
        if (tokens_[s].empty())
          throw config_error("text_sampler: sentence " + std::to_string(s) + " has no tokens");
        if (std::find(tokens_[s].begin(), tokens_[s].end(), 0) != tokens_[s].end())
          throw config_error("text_sampler: sentence " + std::to_string(s) + " contains the padding id 0");
        run_end_[s] = end;
        if (end - s >= 2) starts_.push_back(s);
      }
    }
    std::reverse(starts_.begin(), starts_.end());
    if (starts_.empty())
      throw config_error("text_sampler: no two consecutive allowed sentences in one document");
  }

  /// Fills `b` with the next batch (buffers reused).
  void next(text_batch& b) {
    const std::size_t B = opt_.batch_size, S = opt_.sentences;
    b.documents.assign(B, 0);
    b.starts.resize(B);
    b.info.lengths.resize(B);
    b.info.speakers.clear();
    std::size_t L = 1;
    for (std::size_t r = 0; r < B; ++r) {
      const std::size_t s0 = starts_[gen_.uniform_int(starts_.size())];
      b.starts[r] = s0;
      b.info.lengths[r] = std::min(S, run_end_[s0] - s0);
      for (std::size_t j = 0; j < b.info.lengths[r]; ++j)
        L = std::max(L, std::min(opt_.max_tokens, tokens_[s0 + j].size()));
    }
    ensure_shape(b.ids, std::array<std::size_t, 3>{B, S, L});
    b.ids.fill(0);
    for (std::size_t r = 0; r < B; ++r)
      for (std::size_t j = 0; j < b.info.lengths[r]; ++j) {
        const auto& t = tokens_[b.starts[r] + j];
        std::copy_n(t.begin(), std::min(L, t.size()), &b.ids(r, j, 0));
      }
  }

  /// The generator of the draws (save it with checkpoints to resume the same stream).
  rng& generator() { return gen_; }
  /// Number of allowed row starts.
  std::size_t starts() const { return starts_.size(); }
  const text_sampler_options& config() const { return opt_; }

 private:
  text_sampler_options opt_;
  std::vector<std::vector<std::int32_t>> tokens_;
  std::vector<std::size_t> run_end_, starts_;
  rng gen_;
};

/// Token ids `[N, 1, L]` of the sentences `which` (each cut to `max_tokens`, padded with 0), the
/// input of `text_model::encode_latents` for sentence features. L = the longest kept sentence (>= 1).
inline tensor3<std::int32_t> sentence_ids(const std::vector<std::vector<std::int32_t>>& tokens,
                                          std::span<const std::size_t> which, std::size_t max_tokens) {
  std::size_t L = 1;
  for (std::size_t i : which) L = std::max(L, std::min(max_tokens, tokens.at(i).size()));
  tensor3<std::int32_t> ids = xt::zeros<std::int32_t>({which.size(), std::size_t{1}, L});
  for (std::size_t n = 0; n < which.size(); ++n) {
    const auto& t = tokens[which[n]];
    std::copy_n(t.begin(), std::min(L, t.size()), &ids(n, 0, 0));
  }
  return ids;
}

}  // namespace cpc
