#pragma once
/// A speech corpus in the LibriSpeech / CPC layout, loaded into memory:
///
///     <root>/<speaker>/<chapter or any sub-folders>/<utterance>.flac|.wav
///     <root>/alignments.txt   optional; one line per utterance: `utt_id c0 c1 c2 ...`, one phone
///                             class per 10 ms frame (160 samples at 16 kHz)
///     <root>/phones.txt       optional; one phone name per line, class index = line number (0-based)
///     <root>/train.txt        optional; utterance ids, one per line
///     <root>/test.txt         optional; utterance ids, one per line
///
/// The default file names are those the project's corpus generator (scripts/make-corpus*) writes.
/// LibriSpeech with the CPC paper's files (CPC_audio's `converted_aligned_phones.txt`,
/// `train_split.txt`, `test_split.txt`, 41 classes, no phone-name list) loads by naming them:
///
///     cpc::speech_corpus c("/data/LibriSpeech/train-clean-100",
///                          {.alignments = "/data/cpc/converted_aligned_phones.txt",
///                           .train_split = "/data/cpc/train_split.txt",
///                           .test_split = "/data/cpc/test_split.txt", .num_phones = 41});
///
/// Needs the `cpc::audio` target. Source: issue 4 "Corpora"; layout of LibriSpeech (Panayotov et
/// al. 2015) and of the CPC paper's phone labels (van den Oord et al. 2018, sec. 3.1).
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cpc/core/error.hpp"
#include "cpc/core/threads.hpp"
#include "cpc/data/audio_file.hpp"

namespace cpc {

/// One loaded utterance.
struct utterance {
  std::string id;                    ///< file stem, e.g. "103-1240-0000"
  std::size_t speaker = 0;           ///< index into `speech_corpus::speakers()`
  std::string chapter;               ///< folders between speaker and file ("" when none)
  std::filesystem::path path;        ///< the audio file
  std::vector<float> samples;        ///< `[samples]` mono, in [-1, 1], at the corpus rate
  std::vector<std::int32_t> labels;  ///< `[frames]` phone class per frame, -1 = unknown; empty: no alignment
};

/// A file the loader could not use, and why.
struct skipped_file {
  std::filesystem::path path;
  std::string reason;
};

/// Which utterances `speech_corpus::indices` returns.
enum class corpus_split { all, train, test };

/// Options of `speech_corpus`. A file option left unset (`std::nullopt`) uses the default name in the root
/// when that file exists and nothing otherwise; a given path (absolute, or relative to the
/// root) must exist; an empty path turns the file off.
struct corpus_options {
  std::optional<std::filesystem::path> alignments{};   ///< default "alignments.txt"
  std::optional<std::filesystem::path> phones{};       ///< default "phones.txt"
  std::optional<std::filesystem::path> train_split{};  ///< default "train.txt"
  std::optional<std::filesystem::path> test_split{};   ///< default "test.txt"
  /// Number of phone classes when there is no phone list (0: 1 + the largest label seen).
  /// With a phone list it must be 0 or equal to the list's length.
  std::size_t num_phones = 0;
  int sample_rate = 16000;              ///< Hz; audio at other rates is resampled
  std::size_t frame_length = 160;       ///< samples per label frame (10 ms at 16 kHz)
  std::size_t alignment_tolerance = 1;  ///< allowed |labels - frames|, in frames
  bool strict_audio = false;            ///< refuse audio that is not mono `sample_rate`
  resample_quality quality = resample_quality::medium;
  bool skip_bad_files = true;       ///< skip undecodable audio (warn + count) or throw
  bool strict_ids = false;          ///< unknown ids in alignments/splits: throw, not warn
  std::size_t max_per_speaker = 0;  ///< keep each speaker's first N files by path (0: all)
  std::vector<std::string> extensions{".flac", ".wav"};  ///< audio extensions (case-insensitive)
  std::ostream* log = &std::cerr;                        ///< warnings go here; nullptr silences them
};

/// Speech corpus in the LibriSpeech / CPC layout (see the file comment), fully loaded into memory
/// (4 bytes per sample: ~230 MB per hour of 16 kHz audio; `max_per_speaker` limits it).
///
/// Rules, checked on load:
/// - Speakers are the first-level folders under the root that hold at least one audio file,
///   sorted by name (byte order); a speaker's index is its position, so it does not depend on
///   which files fail to decode. Utterances are sorted by relative path. Files directly in the
///   root, hidden files/folders and other extensions are ignored. Two audio files with the same
///   stem are an error.
/// - Audio goes through `read_audio` (resampled/downmixed to mono `sample_rate` unless
///   `strict_audio`), all files in parallel (oneTBB). A file that fails is skipped with a
///   warning and listed in `skipped()` when `skip_bad_files`, else its `io_error` is thrown.
/// - Alignments: an utterance of n samples has floor(n / frame_length) frames. A label line may
///   differ from that by at most `alignment_tolerance` frames (default 1: label tools round the
///   last partial frame either way); longer lines are truncated, shorter ones padded with -1
///   (unknown: probes ignore those frames). A larger difference is an `io_error` naming the file,
///   line, utterance and both lengths - it means wrong files or a wrong sample rate. Labels must
///   be in [-1, num_phones); -1 marks an unknown frame. Utterances with no alignment line get
///   empty `labels` and a warning with their count.
/// - Ids in the alignment or split files that match no audio file are reported (a warning with
///   the count and the first few ids) or, with `strict_ids`, an `io_error`; ids of skipped files
///   and of files left out by `max_per_speaker` are dropped silently.
/// - Splits: `train` = the ids in the train file; when there is no train file, every utterance
///   not in `test`. `test` = the ids in the test file, or nothing. Indices are in corpus order.
class speech_corpus {
 public:
  /// Loader options (see `corpus_options`).
  using options = corpus_options;

  /// Loads the corpus under `root`.
  /// Errors: `cpc::io_error` when the root is not a folder, holds no audio, a named file is
  /// missing or malformed (message: "<file>:<line>: ..."), a label is out of range, an alignment
  /// length is off by more than the tolerance, ids are duplicated, a bad audio file is met with
  /// `skip_bad_files = false`, or unknown ids are met with `strict_ids`; `cpc::config_error` for
  /// inconsistent options.
  explicit speech_corpus(std::filesystem::path root, options opts = {});

  /// Number of loaded utterances.
  std::size_t size() const { return utterances_.size(); }
  /// The i-th utterance (corpus order: sorted by relative path).
  const utterance& operator[](std::size_t i) const { return utterances_.at(i); }
  const std::vector<utterance>& utterances() const { return utterances_; }
  /// Speaker names (folder names), sorted; `utterance::speaker` indexes this.
  const std::vector<std::string>& speakers() const { return speakers_; }
  /// Phone names from the phone list (empty when there is none).
  const std::vector<std::string>& phones() const { return phones_; }
  /// Number of phone classes (phone list length, `options::num_phones`, or 1 + max label; 0
  /// without alignments).
  std::size_t num_phones() const { return num_phones_; }
  /// Whether an alignment file was read.
  bool has_alignments() const { return has_alignments_; }
  /// Whether any frame of any utterance has a phone label (an alignment file with at least one
  /// label >= 0): what a phone probe needs.
  bool has_phone_labels() const {
    return has_alignments_ && num_phones_ > 0 &&
           std::any_of(utterances_.begin(), utterances_.end(), [](const utterance& u) {
             return std::any_of(u.labels.begin(), u.labels.end(), [](std::int32_t l) { return l >= 0; });
           });
  }
  /// Utterance indices of a split, ascending.
  const std::vector<std::size_t>& indices(corpus_split s) const {
    return s == corpus_split::train ? train_ : s == corpus_split::test ? test_ : all_;
  }
  /// Index of the utterance with id `id`, if loaded.
  std::optional<std::size_t> find(std::string_view id) const {
    auto it = by_id_.find(std::string(id));
    if (it == by_id_.end()) return std::nullopt;
    return it->second;
  }
  /// Audio files that were skipped, with the reason (the `io_error` message).
  const std::vector<skipped_file>& skipped() const { return skipped_; }
  /// Every warning the loader printed, in order.
  const std::vector<std::string>& warnings() const { return warnings_; }
  /// Sample rate of all loaded audio, Hz.
  int sample_rate() const { return opts_.sample_rate; }
  /// Samples per label frame.
  std::size_t frame_length() const { return opts_.frame_length; }
  /// Total duration of the loaded audio, seconds.
  double total_seconds() const {
    double n = 0;
    for (const auto& u : utterances_) n += static_cast<double>(u.samples.size());
    return n / opts_.sample_rate;
  }
  /// The corpus root.
  const std::filesystem::path& root() const { return root_; }

 private:
  using id_map = std::unordered_map<std::string, std::size_t>;

  void warn(std::string message) {
    if (opts_.log) *opts_.log << "cpc::speech_corpus: warning: " << message << '\n';
    warnings_.push_back(std::move(message));
  }
  std::optional<std::filesystem::path> resolve(const std::optional<std::filesystem::path>& given,
                                               const char* default_name, const char* what) const;
  static std::string read_text(const std::filesystem::path& path, const char* what);
  void report_unknown(const std::filesystem::path& file, const char* what, std::size_t count,
                      const std::vector<std::string>& examples);
  void scan_and_load();
  void read_phones(const std::filesystem::path& path);
  void read_alignments(const std::filesystem::path& path);
  std::vector<std::size_t> read_split(const std::filesystem::path& path);

  std::filesystem::path root_;
  options opts_;
  std::vector<utterance> utterances_;
  std::vector<std::string> speakers_;
  std::vector<std::string> phones_;
  std::size_t num_phones_ = 0;
  bool has_alignments_ = false;
  std::vector<std::size_t> all_, train_, test_;
  id_map by_id_;
  std::unordered_set<std::string> unloaded_ids_;  // skipped or over max_per_speaker
  std::vector<skipped_file> skipped_;
  std::vector<std::string> warnings_;
};

// ---------------------------------------------------------------------------------------------
// Implementation

namespace detail {

inline std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

/// Calls f(line_number (1-based), line) for each line of `text`, without the line break.
template <class F>
void for_each_line(std::string_view text, F&& f) {
  std::size_t line_no = 0, pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    f(++line_no, text.substr(pos, end - pos));
    pos = end + 1;
  }
}

}  // namespace detail

inline speech_corpus::speech_corpus(std::filesystem::path root, options opts)
    : root_(std::move(root)), opts_(std::move(opts)) {
  if (opts_.sample_rate <= 0 || opts_.frame_length == 0)
    throw config_error("speech_corpus: expected sample_rate > 0 and frame_length > 0, got " +
                       std::to_string(opts_.sample_rate) + " Hz and " + std::to_string(opts_.frame_length));
  std::error_code ec;
  if (!std::filesystem::is_directory(root_, ec))
    throw io_error("speech_corpus: root '" + root_.string() + "' is not a directory");
  const auto phones = resolve(opts_.phones, "phones.txt", "phone list");
  const auto alignments = resolve(opts_.alignments, "alignments.txt", "alignment file");
  const auto train = resolve(opts_.train_split, "train.txt", "train split");
  const auto test = resolve(opts_.test_split, "test.txt", "test split");

  scan_and_load();
  if (phones) read_phones(*phones);
  if (opts_.num_phones != 0) {
    if (!phones_.empty() && opts_.num_phones != phones_.size())
      throw config_error("speech_corpus: options.num_phones = " + std::to_string(opts_.num_phones) +
                         " but the phone list '" + phones->string() + "' has " +
                         std::to_string(phones_.size()) + " phones");
    num_phones_ = opts_.num_phones;
  }
  if (alignments) read_alignments(*alignments);

  all_.resize(utterances_.size());
  for (std::size_t i = 0; i < all_.size(); ++i) all_[i] = i;
  if (test) test_ = read_split(*test);
  if (train) {
    train_ = read_split(*train);
    std::vector<std::size_t> both;
    std::set_intersection(train_.begin(), train_.end(), test_.begin(), test_.end(), std::back_inserter(both));
    if (!both.empty())
      warn(std::to_string(both.size()) + " utterance(s) are in both the train and the test split, e.g. '" +
           utterances_[both.front()].id + "'");
  } else {
    std::set_difference(all_.begin(), all_.end(), test_.begin(), test_.end(), std::back_inserter(train_));
  }
}

inline std::optional<std::filesystem::path> speech_corpus::resolve(
    const std::optional<std::filesystem::path>& given, const char* default_name, const char* what) const {
  std::error_code ec;
  if (!given) {
    auto p = root_ / default_name;
    if (std::filesystem::is_regular_file(p, ec)) return p;
    return std::nullopt;
  }
  if (given->empty()) return std::nullopt;
  auto p = given->is_absolute() ? *given : root_ / *given;
  if (!std::filesystem::is_regular_file(p, ec))
    throw io_error(std::string("speech_corpus: ") + what + " '" + p.string() + "': no such file");
  return p;
}

inline std::string speech_corpus::read_text(const std::filesystem::path& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error(std::string("speech_corpus: cannot read ") + what + " '" + path.string() + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad())
    throw io_error(std::string("speech_corpus: error reading ") + what + " '" + path.string() + "'");
  return std::move(ss).str();
}

inline void speech_corpus::report_unknown(const std::filesystem::path& file, const char* what,
                                          std::size_t count, const std::vector<std::string>& examples) {
  if (count == 0) return;
  std::string msg = std::string(what) + " '" + file.string() + "' names " + std::to_string(count) +
                    " utterance id(s) with no audio file under '" + root_.string() + "', e.g.";
  for (const auto& e : examples) msg += " '" + e + "'";
  if (opts_.strict_ids) throw io_error("speech_corpus: " + msg);
  warn(std::move(msg));
}

inline void speech_corpus::scan_and_load() {
  struct found {
    std::filesystem::path rel;
    std::string speaker;
  };
  std::vector<std::string> exts;
  for (const auto& e : opts_.extensions) exts.push_back(detail::lower(e));
  std::vector<found> files;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(
           root_, std::filesystem::directory_options::follow_directory_symlink, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec) || it.depth() < 1) continue;
    if (std::find(exts.begin(), exts.end(), detail::lower(it->path().extension().string())) == exts.end())
      continue;
    auto rel = it->path().lexically_relative(root_);
    files.push_back({rel, rel.begin()->string()});
  }
  if (ec) throw io_error("speech_corpus: cannot list '" + root_.string() + "' (" + ec.message() + ")");
  if (files.empty())
    throw io_error("speech_corpus: no audio files (" +
                   [&] {
                     std::string s;
                     for (const auto& e : opts_.extensions) s += (s.empty() ? "" : ", ") + e;
                     return s;
                   }() +
                   ") under '" + root_.string() + "/<speaker>/...'");
  std::sort(files.begin(), files.end(), [](const found& a, const found& b) { return a.rel < b.rel; });

  for (const auto& f : files)
    if (speakers_.empty() || speakers_.back() != f.speaker) speakers_.push_back(f.speaker);
  std::sort(speakers_.begin(), speakers_.end());
  speakers_.erase(std::unique(speakers_.begin(), speakers_.end()), speakers_.end());
  std::map<std::string, std::size_t> speaker_index;
  for (std::size_t i = 0; i < speakers_.size(); ++i) speaker_index[speakers_[i]] = i;

  std::vector<utterance> candidates;
  std::unordered_map<std::string, std::filesystem::path> seen;
  std::vector<std::size_t> per_speaker(speakers_.size(), 0);
  for (const auto& f : files) {
    utterance u;
    u.id = f.rel.stem().string();
    u.speaker = speaker_index.at(f.speaker);
    u.path = root_ / f.rel;
    auto parent = f.rel.parent_path();
    u.chapter = parent.lexically_relative(f.speaker).generic_string();
    if (u.chapter == ".") u.chapter.clear();
    if (auto [it, inserted] = seen.emplace(u.id, u.path); !inserted)
      throw io_error("speech_corpus: duplicate utterance id '" + u.id + "': '" + it->second.string() +
                     "' and '" + u.path.string() + "'");
    if (opts_.max_per_speaker != 0 && per_speaker[u.speaker]++ >= opts_.max_per_speaker) {
      unloaded_ids_.insert(u.id);
      continue;
    }
    candidates.push_back(std::move(u));
  }

  std::vector<std::string> errors(candidates.size());
  const audio_read_options read_opts{
      .sample_rate = opts_.sample_rate, .strict = opts_.strict_audio, .quality = opts_.quality};
  parallel_for(0, candidates.size(), [&](std::size_t i) {
    try {
      candidates[i].samples = read_audio(candidates[i].path, read_opts);
    } catch (const error& e) {
      errors[i] = e.what();
    } catch (const std::exception& e) {
      errors[i] = std::string("audio file '") + candidates[i].path.string() + "': " + e.what();
    }
  });

  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if (errors[i].empty()) {
      by_id_.emplace(candidates[i].id, utterances_.size());
      utterances_.push_back(std::move(candidates[i]));
      continue;
    }
    if (!opts_.skip_bad_files) throw io_error("speech_corpus: " + errors[i]);
    warn("skipping " + errors[i]);
    unloaded_ids_.insert(candidates[i].id);
    skipped_.push_back({candidates[i].path, errors[i]});
  }
  if (!skipped_.empty())
    warn("skipped " + std::to_string(skipped_.size()) + " of " + std::to_string(candidates.size()) +
         " audio files under '" + root_.string() + "'");
  if (utterances_.empty())
    throw io_error("speech_corpus: none of the " + std::to_string(candidates.size()) +
                   " audio files under '" + root_.string() +
                   "' could be read; first error: " + skipped_.front().reason);
}

inline void speech_corpus::read_phones(const std::filesystem::path& path) {
  const std::string text = read_text(path, "phone list");
  std::vector<std::size_t> blank;
  detail::for_each_line(text, [&](std::size_t line_no, std::string_view line) {
    line = detail::trim(line);
    if (line.empty()) {
      blank.push_back(line_no);
      return;
    }
    if (!blank.empty())
      throw io_error(path.string() + ":" + std::to_string(blank.front()) +
                     ": empty line inside the phone list (class index = line number, so gaps are ambiguous)");
    phones_.emplace_back(line);
  });
  if (phones_.empty()) throw io_error(path.string() + ": the phone list is empty");
  num_phones_ = phones_.size();
}

inline void speech_corpus::read_alignments(const std::filesystem::path& path) {
  const std::string text = read_text(path, "alignment file");
  has_alignments_ = true;
  const std::string file = path.string();
  const std::size_t limit = num_phones_;  // 0: not known yet, checked after reading
  std::int32_t max_label = -1;
  std::vector<char> aligned(utterances_.size(), 0);
  std::size_t unknown = 0;
  std::vector<std::string> examples;
  std::vector<std::int32_t> labels;
  detail::for_each_line(text, [&](std::size_t line_no, std::string_view line) {
    const auto where = [&] { return file + ":" + std::to_string(line_no) + ": "; };
    line = detail::trim(line);
    if (line.empty()) return;
    const std::size_t id_end = line.find_first_of(" \t");
    const std::string id(line.substr(0, id_end));
    const auto it = by_id_.find(id);
    if (it == by_id_.end()) {
      if (!unloaded_ids_.count(id) && unknown++ < 5) examples.push_back(id);
      return;
    }
    const std::size_t u = it->second;
    if (aligned[u]) throw io_error(where() + "second alignment line for utterance '" + id + "'");
    aligned[u] = 1;
    labels.clear();
    const char* p = line.data() + (id_end == std::string_view::npos ? line.size() : id_end);
    const char* end = line.data() + line.size();
    while (true) {
      while (p < end && (*p == ' ' || *p == '\t')) ++p;
      if (p == end) break;
      std::int32_t v = 0;
      auto [next, ec] = std::from_chars(p, end, v);
      if (ec != std::errc() || (next != end && *next != ' ' && *next != '\t')) {
        const char* tok_end = p;
        while (tok_end < end && *tok_end != ' ' && *tok_end != '\t') ++tok_end;
        throw io_error(where() + "utterance '" + id + "': label " + std::to_string(labels.size()) + " is '" +
                       std::string(p, tok_end) + "', expected an integer class index");
      }
      if (v < -1 || (limit != 0 && v >= static_cast<std::int32_t>(limit)))
        throw io_error(where() + "utterance '" + id + "': label " + std::to_string(labels.size()) + " = " +
                       std::to_string(v) + " is outside [-1, " + std::to_string(limit) +
                       ") (number of phones)");
      max_label = std::max(max_label, v);
      labels.push_back(v);
      p = next;
    }
    auto& utt = utterances_[u];
    const std::size_t frames = utt.samples.size() / opts_.frame_length;
    const std::size_t diff = labels.size() > frames ? labels.size() - frames : frames - labels.size();
    if (diff > opts_.alignment_tolerance)
      throw io_error(where() + "utterance '" + id + "' has " + std::to_string(labels.size()) +
                     " labels but its audio has " + std::to_string(frames) + " frames (" +
                     std::to_string(utt.samples.size()) + " samples / " + std::to_string(opts_.frame_length) +
                     "); allowed difference: " + std::to_string(opts_.alignment_tolerance) + " frame(s)");
    utt.labels.assign(labels.begin(),
                      labels.begin() + static_cast<std::ptrdiff_t>(std::min(frames, labels.size())));
    utt.labels.resize(frames, -1);
  });
  // Widened before adding: a label of 2^31 - 1 must not overflow int32 (max_label = -1 gives 0).
  if (limit == 0) num_phones_ = static_cast<std::size_t>(static_cast<std::int64_t>(max_label) + 1);
  report_unknown(path, "alignment file", unknown, examples);
  const auto missing = static_cast<std::size_t>(std::count(aligned.begin(), aligned.end(), 0));
  if (missing != 0) {
    std::size_t first = 0;
    while (aligned[first]) ++first;
    warn(std::to_string(missing) + " of " + std::to_string(utterances_.size()) +
         " utterances have no line in the alignment file '" + file + "' (their labels are unknown), e.g. '" +
         utterances_[first].id + "'");
  }
}

inline std::vector<std::size_t> speech_corpus::read_split(const std::filesystem::path& path) {
  const std::string text = read_text(path, "split file");
  std::vector<std::size_t> out;
  std::size_t unknown = 0;
  std::vector<std::string> examples;
  detail::for_each_line(text, [&](std::size_t, std::string_view line) {
    line = detail::trim(line);
    if (line.empty()) return;
    const std::string id(line.substr(0, line.find_first_of(" \t")));
    if (auto it = by_id_.find(id); it != by_id_.end())
      out.push_back(it->second);
    else if (!unloaded_ids_.count(id) && unknown++ < 5)
      examples.push_back(id);
  });
  report_unknown(path, "split file", unknown, examples);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace cpc
