#include <doctest/doctest.h>

#include <cpc/data/corpus.hpp>

#include <sstream>

#include "audio_test_util.hpp"

using namespace cpc;
using namespace cpc::testing;

namespace {

// Utterances in corpus order (sorted by relative path) and their frame counts at 16 kHz.
struct spec {
  fake_utterance u;
  std::size_t frames;
};
const std::vector<spec> good = {
    {{"103", "1240", "103-1240-0000", 12000}, 75},
    {{"103", "1241", "103-1241-0000", 4800, 16000, ".wav"}, 30},
    {{"1034", "121119", "1034-121119-0000", 20000}, 125},
    {{"19", "198", "19-198-0000", 16000}, 100},
    {{"19", "198", "19-198-0001", 8080}, 50},          // 50.5 frames -> 50
    {{"7", "1", "7-1-0000", 4000, 8000, ".wav"}, 50},  // 8 kHz: 8000 samples after resampling
};

std::int32_t label_of(std::size_t utt, std::size_t frame) {
  return static_cast<std::int32_t>((frame / 3 + utt) % 5);
}

std::string label_line(std::size_t utt, std::size_t count) {
  std::string s = good[utt].u.id;
  for (std::size_t f = 0; f < count; ++f) {
    s += ' ';
    s += std::to_string(label_of(utt, f));
  }
  return s + "\n";
}

// A LibriSpeech-layout folder: 4 speakers, 6 good files (FLAC and WAV, one at 8 kHz), one bad
// file, stray files that must be ignored, phone list, alignments and splits.
struct corpus_dir {
  temp_dir dir;
  corpus_dir() {
    for (const auto& g : good) write_fake_utterance(dir.path(), g.u);
    write_bytes(dir / "1034/121119/1034-121119-0001.flac", "not a flac file\n");
    write_bytes(dir / "README.TXT", "LibriSpeech-like test corpus\n");
    write_bytes(dir / "19/198/19-198.trans.txt", "19-198-0000 SOME WORDS\n");
    write_fake_utterance(dir.path(), {".hidden", "x", "hidden-0000", 1600});
    write_fake_utterance(dir / "103",
                         {"", "", "root-level-in-speaker", 1600});      // depth 1: speaker-level file
    write_wav(dir / "top.wav", std::vector<float>(1600, 0.0f), 16000);  // in the root: ignored
    write_bytes(dir / "phones.txt", "sil\naa\nb\nk\ns\n");
    std::string al;
    al += label_line(0, 75);
    al += label_line(1, 31);   // one label too many: truncated
    al += label_line(2, 124);  // one too few: padded with -1
    al += label_line(3, 100);
    al += "1034-121119-0001 0 1 2\n";  // the bad file: ignored without a warning
    al += "9999-1-0000 1 2 3\n";       // unknown: warned about
    al += label_line(4, 50);
    // 7-1-0000 has no line.
    write_bytes(dir / "alignments.txt", al);
    write_bytes(dir / "train.txt", "103-1240-0000\n103-1241-0000\n19-198-0000\n7-1-0000\n8888-0-0000\n");
    write_bytes(dir / "test.txt", "1034-121119-0000\n19-198-0001\n\n");
  }
};

}  // namespace

TEST_CASE("speech_corpus: loads a LibriSpeech-layout folder with labels, splits and a bad file") {
  corpus_dir c;
  std::ostringstream log;
  speech_corpus corpus(c.dir.path(), {.log = &log});

  CHECK(corpus.speakers() == std::vector<std::string>{"103", "1034", "19", "7"});
  // "root-level-in-speaker" sits directly in a speaker folder: it is an utterance with no chapter.
  REQUIRE(corpus.size() == good.size() + 1);
  const auto extra = corpus.find("root-level-in-speaker");
  REQUIRE(extra.has_value());
  CHECK(corpus[*extra].chapter.empty());
  CHECK(corpus[*extra].speaker == 0);
  CHECK(corpus.find("hidden-0000") == std::nullopt);
  CHECK(corpus.find("top") == std::nullopt);

  CHECK(corpus.phones() == std::vector<std::string>{"sil", "aa", "b", "k", "s"});
  CHECK(corpus.num_phones() == 5);
  CHECK(corpus.has_alignments());
  CHECK(corpus.has_phone_labels());

  const std::vector<std::size_t> speaker_of = {0, 0, 1, 2, 2, 3};
  for (std::size_t k = 0; k < good.size(); ++k) {
    CAPTURE(k);
    const auto idx = corpus.find(good[k].u.id);
    REQUIRE(idx.has_value());
    const auto& u = corpus[*idx];
    CHECK(u.id == good[k].u.id);
    CHECK(u.speaker == speaker_of[k]);
    CHECK(u.chapter == good[k].u.chapter);
    const std::size_t n = good[k].u.samples * 16000 / static_cast<std::size_t>(good[k].u.rate);
    CHECK(u.samples.size() == n);
    CHECK(u.samples.size() / 160 == good[k].frames);
    if (k == 5) {
      CHECK(u.labels.empty());  // no alignment line
      continue;
    }
    REQUIRE(u.labels.size() == good[k].frames);
    const std::size_t given = k == 2 ? 124 : good[k].frames;
    for (std::size_t f = 0; f < given; ++f) CHECK(u.labels[f] == label_of(k, f));
    if (k == 2) CHECK(u.labels[124] == -1);
  }
  // Speaker folders are sorted as names, so indices are stable.
  CHECK(corpus[0].id == "103-1240-0000");

  REQUIRE(corpus.skipped().size() == 1);
  CHECK(corpus.skipped()[0].path.filename() == "1034-121119-0001.flac");
  CHECK(corpus.skipped()[0].reason.find("1034-121119-0001.flac': cannot open") != std::string::npos);

  const std::string text = log.str();
  CHECK(text.find("skipping audio file") != std::string::npos);
  CHECK(text.find("skipped 1 of 8 audio files") != std::string::npos);
  CHECK(text.find("names 1 utterance id(s) with no audio file") != std::string::npos);
  CHECK(text.find("'9999-1-0000'") != std::string::npos);
  CHECK(text.find("'8888-0-0000'") != std::string::npos);
  CHECK(text.find("2 of 7 utterances have no line in the alignment file") != std::string::npos);
  CHECK(text.find("'1034-121119-0001'") == std::string::npos);
  CHECK(corpus.warnings().size() == 5);

  auto ids = [&](corpus_split s) {
    std::vector<std::string> out;
    for (auto i : corpus.indices(s)) out.push_back(corpus[i].id);
    return out;
  };
  CHECK(ids(corpus_split::train) ==
        std::vector<std::string>{"103-1240-0000", "103-1241-0000", "19-198-0000", "7-1-0000"});
  CHECK(ids(corpus_split::test) == std::vector<std::string>{"1034-121119-0000", "19-198-0001"});
  CHECK(corpus.indices(corpus_split::all).size() == corpus.size());
  CHECK(corpus.total_seconds() ==
        doctest::Approx((12000 + 4800 + 20000 + 16000 + 8080 + 8000 + 1600) / 16000.0));
}

TEST_CASE("speech_corpus: skip_bad_files = false throws on the bad file") {
  corpus_dir c;
  CHECK_THROWS_WITH_AS(speech_corpus(c.dir.path(), {.skip_bad_files = false, .log = nullptr}),
                       doctest::Contains("1034-121119-0001.flac': cannot open (Format not recognised"),
                       io_error);
}

TEST_CASE("speech_corpus: alignment length beyond one frame is an error naming file, line and utterance") {
  corpus_dir c;
  write_bytes(c.dir / "bad_len.txt", label_line(0, 75) + label_line(3, 102));
  CHECK_THROWS_WITH_AS(
      speech_corpus(c.dir.path(), {.alignments = "bad_len.txt", .log = nullptr}),
      doctest::Contains("bad_len.txt:2: utterance '19-198-0000' has 102 labels but its audio has 100 frames "
                        "(16000 samples / 160); allowed difference: 1 frame(s)"),
      io_error);
  // Two frames short, too.
  write_bytes(c.dir / "short.txt", label_line(3, 98));
  CHECK_THROWS_WITH_AS(speech_corpus(c.dir.path(), {.alignments = "short.txt", .log = nullptr}),
                       doctest::Contains("has 98 labels but its audio has 100 frames"), io_error);
  // A wider tolerance accepts it and pads.
  speech_corpus ok(c.dir.path(), {.alignments = "short.txt", .alignment_tolerance = 2, .log = nullptr});
  const auto& u = ok[*ok.find("19-198-0000")];
  CHECK(u.labels.size() == 100);
  CHECK(u.labels[97] == label_of(3, 97));
  CHECK(u.labels[98] == -1);
  CHECK(u.labels[99] == -1);
}

TEST_CASE("speech_corpus: labels out of range, non-numeric labels and duplicates are errors") {
  corpus_dir c;
  std::string line = label_line(4, 50);
  line.replace(line.size() - 2, 1, "5");  // last label: 5 with 5 phones
  write_bytes(c.dir / "range.txt", label_line(0, 75) + line);
  CHECK_THROWS_WITH_AS(
      speech_corpus(c.dir.path(), {.alignments = "range.txt", .log = nullptr}),
      doctest::Contains("range.txt:2: utterance '19-198-0001': label 49 = 5 is outside [-1, 5) "
                        "(number of phones)"),
      io_error);
  write_bytes(c.dir / "neg.txt", "19-198-0001 0 -2 1\n");
  CHECK_THROWS_WITH_AS(speech_corpus(c.dir.path(), {.alignments = "neg.txt", .log = nullptr}),
                       doctest::Contains("label 1 = -2 is outside"), io_error);
  write_bytes(c.dir / "word.txt", "19-198-0001 0 1 aa 2\n");
  CHECK_THROWS_WITH_AS(
      speech_corpus(c.dir.path(), {.alignments = "word.txt", .log = nullptr}),
      doctest::Contains("word.txt:1: utterance '19-198-0001': label 2 is 'aa', expected an integer"),
      io_error);
  write_bytes(c.dir / "dup.txt", label_line(0, 75) + label_line(0, 75));
  CHECK_THROWS_WITH_AS(speech_corpus(c.dir.path(), {.alignments = "dup.txt", .log = nullptr}),
                       doctest::Contains("dup.txt:2: second alignment line for utterance '103-1240-0000'"),
                       io_error);
  // Without the phone list the range is 1 + the largest label unless num_phones says otherwise.
  CHECK(speech_corpus(c.dir.path(), {.alignments = "range.txt", .phones = "", .log = nullptr}).num_phones() ==
        6);
  CHECK_THROWS_WITH_AS(
      speech_corpus(c.dir.path(), {.alignments = "range.txt", .phones = "", .num_phones = 5, .log = nullptr}),
      doctest::Contains("is outside [-1, 5)"), io_error);
  CHECK_THROWS_AS(speech_corpus(c.dir.path(), {.num_phones = 41, .log = nullptr}), config_error);
}

TEST_CASE("speech_corpus: CPC-style file names (converted_aligned_phones.txt, *_split.txt) load when named") {
  corpus_dir c;
  std::filesystem::rename(c.dir / "alignments.txt", c.dir / "converted_aligned_phones.txt");
  std::filesystem::rename(c.dir / "train.txt", c.dir / "train_split.txt");
  std::filesystem::rename(c.dir / "test.txt", c.dir / "test_split.txt");
  std::filesystem::remove(c.dir / "phones.txt");
  {
    // Without names: no labels, every utterance in train.
    speech_corpus plain(c.dir.path(), {.log = nullptr});
    CHECK_FALSE(plain.has_alignments());
    CHECK_FALSE(plain.has_phone_labels());
    CHECK(plain.num_phones() == 0);
    CHECK(plain.indices(corpus_split::train).size() == plain.size());
    CHECK(plain.indices(corpus_split::test).empty());
  }
  const auto meta = c.dir.path();  // absolute paths work as well as relative ones
  speech_corpus corpus(c.dir.path(), {.alignments = meta / "converted_aligned_phones.txt",
                                      .train_split = "train_split.txt",
                                      .test_split = meta / "test_split.txt",
                                      .num_phones = 41,
                                      .log = nullptr});
  CHECK(corpus.num_phones() == 41);
  CHECK(corpus.phones().empty());
  CHECK(corpus.indices(corpus_split::train).size() == 4);
  CHECK(corpus.indices(corpus_split::test).size() == 2);
  CHECK(corpus[*corpus.find("19-198-0000")].labels[7] == label_of(3, 7));
}

TEST_CASE("speech_corpus: missing named files, strict ids, duplicates, empty roots") {
  corpus_dir c;
  CHECK_THROWS_WITH_AS(speech_corpus(c.dir.path(), {.alignments = "nope.txt", .log = nullptr}),
                       doctest::Contains(doctest::String(
                           ("alignment file '" + (c.dir / "nope.txt").string() + "': no such file").c_str())),
                       io_error);
  CHECK_THROWS_WITH_AS(speech_corpus(c.dir.path(), {.strict_ids = true, .log = nullptr}),
                       doctest::Contains("names 1 utterance id(s) with no audio file"), io_error);
  CHECK_THROWS_WITH_AS(speech_corpus(c.dir / "none", {.log = nullptr}),
                       doctest::Contains("is not a directory"), io_error);
  temp_dir empty;
  CHECK_THROWS_WITH_AS(speech_corpus(empty.path(), {.log = nullptr}), doctest::Contains("no audio files"),
                       io_error);
  // Strict audio: the 8 kHz file is skipped (with skip_bad_files) like any bad file.
  speech_corpus strict(c.dir.path(), {.strict_audio = true, .log = nullptr});
  CHECK(strict.skipped().size() == 2);
  CHECK(strict.find("7-1-0000") == std::nullopt);
  // Same stem twice.
  write_fake_utterance(c.dir.path(), {"19", "other", "103-1240-0000", 1600, 16000, ".wav"});
  CHECK_THROWS_WITH_AS(speech_corpus(c.dir.path(), {.log = nullptr}),
                       doctest::Contains("duplicate utterance id '103-1240-0000'"), io_error);
}

TEST_CASE("speech_corpus: max_per_speaker keeps each speaker's first files and drops their ids quietly") {
  corpus_dir c;
  std::ostringstream log;
  speech_corpus corpus(c.dir.path(), {.max_per_speaker = 1, .log = &log});
  std::vector<std::string> ids;
  for (const auto& u : corpus.utterances()) ids.push_back(u.id);
  CHECK(ids == std::vector<std::string>{"103-1240-0000", "1034-121119-0000", "19-198-0000", "7-1-0000"});
  CHECK(corpus.skipped().empty());  // the bad file was the speaker's second
  CHECK(log.str().find("'19-198-0001'") == std::string::npos);
}
