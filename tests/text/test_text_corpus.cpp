// The text data path (issue 16): the King James Bible, WordNet gloss and fortune readers (values
// and typed errors), the sentence splitter, the fixed split, text_sampler's batches, the SentencePiece
// tokenizer (trained here on a small text) and the TF-IDF baseline. The last case reads the Debian packages
// when installed.
#include <doctest/doctest.h>

#include <cpc/data/sentencepiece_tokenizer.hpp>
#include <cpc/data/text_corpus.hpp>
#include <cpc/eval/text_features.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

using namespace cpc;

namespace {
const char* kjv_sample =
    "Ge1:1 In the beginning God created the heaven and the earth.\n"
    "Ge1:2 And the earth was without form, and void.\n"
    "\n"
    "Ge2:1 Thus the heavens and the earth were finished.\n"
    "1Sm1:1 Now there was a certain man.\n"
    "Mat1:1 The book of the generation of Jesus Christ.\n"
    "Mat1:2 Abraham begat Isaac.\n";

text_corpus kjv(const std::string& s) {
  std::istringstream in(s);
  return read_kjv(in, "kjv");
}
}  // namespace

TEST_CASE("read_kjv: chapters as documents, verses as sentences, book and testament labels") {
  const auto c = kjv(kjv_sample);
  CHECK(c.sentences.size() == 6);
  CHECK(c.documents() == 4);
  CHECK(c.document_names == std::vector<std::string>{"Ge 1", "Ge 2", "1Sm 1", "Mat 1"});
  CHECK(c.document_begin == std::vector<std::size_t>{0, 2, 3, 4, 6});
  CHECK(c.sentences[1] == "And the earth was without form, and void.");
  CHECK(c.label_set("book").classes == std::vector<std::string>{"Ge", "1Sm", "Mat"});
  CHECK(c.label_set("book").of_sentence == std::vector<int>{0, 0, 0, 1, 2, 2});
  CHECK(c.label_set("testament").of_sentence == std::vector<int>{0, 0, 0, 0, 1, 1});
  CHECK_THROWS_WITH_AS(c.label_set("genre"), "text_corpus: no label set 'genre' (have: book, testament)",
                       config_error);
}

TEST_CASE("read_kjv: typed errors name the line and what was expected") {
  CHECK_THROWS_WITH_AS(
      kjv("Ge1:1 ok\nGe1 no colon\n"),
      "kjv:2: expected '<book><chapter>:<verse> <text>' with a numeric chapter and verse in 'Ge1 no "
      "colon'",
      io_error);
  CHECK_THROWS_WITH_AS(
      kjv("1:1 text\n"),
      "kjv:1: expected '<book><chapter>:<verse> <text>' (a book code such as Ge or 1Sm) in '1:1 text'",
      io_error);
  CHECK_THROWS_AS(kjv("Ge1:x text\n"), io_error);
  CHECK_THROWS_WITH_AS(kjv("Ge1:1   \n"),
                       "kjv:1: expected '<book><chapter>:<verse> <text>' with a numeric chapter and "
                       "verse in 'Ge1:1   '",
                       io_error);
  CHECK_THROWS_AS(kjv("Ge1:1 \tx\nGe1:2\t\n"), io_error);
  CHECK_THROWS_WITH_AS(kjv("\n\n"),
                       "kjv: expected verses '<book><chapter>:<verse> <text>' (the output of `bible -f "
                       "gen1:1-rev22:21`, Debian bible-kjv), found none",
                       io_error);
  CHECK_THROWS_AS(read_kjv_file("/nonexistent/kjv.txt"), io_error);
}

TEST_CASE(
    "read_wordnet_glosses: definitions, part of speech (satellites as adjectives), lexicographer file") {
  std::istringstream in(
      "  1 This software and database is being provided\n"
      "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 | that which is perceived; \"an entity\"\n"
      "00002098 00 s 01 able 0 000 | (usually followed by `to') having the necessary means; \"able to "
      "swim\"\n"
      "00002099 44 v 01 run 0 000 | \"only an example\"\n");
  text_corpus c;
  read_wordnet_glosses(in, "data", c);
  CHECK(c.sentences == std::vector<std::string>{"that which is perceived",
                                                "(usually followed by `to') having the necessary means",
                                                "\"only an example\""});
  CHECK(c.label_set("part of speech").of_sentence == std::vector<int>{0, 2, 1});
  CHECK(c.label_set("lexicographer file").of_sentence == std::vector<int>{3, 0, 44});
  CHECK(c.label_set("lexicographer file").classes[3] == "noun.Tops");
  CHECK(c.documents() == 3);
  CHECK(c.document_begin == std::vector<std::size_t>{0, 1, 2, 3});
  const auto bad = [](const std::string& line) {
    std::istringstream s(line);
    text_corpus t;
    read_wordnet_glosses(s, "data", t);
  };
  CHECK_THROWS_WITH_AS(
      bad("00001740 03 n 01 entity 0 000 no bar\n"),
      "data:1: expected '<offset> <lex_filenum> <ss_type> ... | <gloss>' in '00001740 03 n 01 entity "
      "0 000 no bar'",
      io_error);
  CHECK_THROWS_WITH_AS(
      bad("00001740 45 n 01 x 0 000 | g\n"),
      "data:1: expected a lexicographer file number 00..44, got '45' in '00001740 45 n 01 x 0 000 | g'",
      io_error);
  CHECK_THROWS_AS(bad("00001740 03 q 01 x 0 000 | g\n"), io_error);
  CHECK_THROWS_AS(bad("00001740 03 n 01 x 0 000 |   \n"), io_error);
  CHECK_THROWS_AS(read_wordnet_glosses_dir("/nonexistent"), io_error);
}

TEST_CASE(
    "split_into_sentences and read_fortunes: quotations as documents, attributions dropped, category "
    "labels") {
  CHECK(split_into_sentences("One.  Two!\tThree? \"Four.\" five") ==
        std::vector<std::string>{"One.", "Two!", "Three?", "\"Four.\"", "five"});
  CHECK(split_into_sentences("  \n ").empty());
  CHECK(split_into_sentences("3.14 is pi.") == std::vector<std::string>{"3.14 is pi."});
  const char* file =
      "A clash of doctrine is not a disaster.  It is an\nopportunity.\n%\n"
      "A dream will always triumph.\n\t\t-- Stanislaw Lem\n%\n"
      "   \n%\n"
      "Last one\n";
  text_corpus c;
  std::istringstream a(file), b("Other.\n");
  read_fortunes(a, "wisdom", "wisdom", c, true);
  read_fortunes(b, "art", "art", c, true);
  CHECK(c.sentences == std::vector<std::string>{"A clash of doctrine is not a disaster.",
                                                "It is an opportunity.", "A dream will always triumph.",
                                                "Last one", "Other."});
  CHECK(c.document_begin == std::vector<std::size_t>{0, 2, 3, 4, 5});
  CHECK(c.label_set("category").classes == std::vector<std::string>{"wisdom", "art"});
  CHECK(c.label_set("category").of_sentence == std::vector<int>{0, 0, 0, 0, 1});
  text_corpus q;
  std::istringstream a2(file);
  read_fortunes(a2, "wisdom", "wisdom", q, false);
  CHECK(q.sentences ==
        std::vector<std::string>{"A clash of doctrine is not a disaster. It is an opportunity.",
                                 "A dream will always triumph.", "Last one"});
  std::istringstream bin(std::string("abc\0def\n", 8));
  text_corpus z;
  CHECK_THROWS_WITH_AS(read_fortunes(bin, "x.dat", "x", z, true),
                       "x.dat:1: expected text (quotations separated by lines '%'), found a NUL byte",
                       io_error);
  text_corpus wrong = kjv("Ge1:1 x\n");
  std::istringstream ok("q\n");
  CHECK_THROWS_AS(read_fortunes(ok, "f", "f", wrong, true), config_error);
  CHECK_THROWS_AS(read_fortunes_dir("/nonexistent", true), io_error);
  const auto both = concatenate_documents({&c, &q});
  CHECK(both.sentences.size() == 8);
  CHECK(both.document_begin == std::vector<std::size_t>{0, 2, 3, 4, 5, 6, 7, 8});
  CHECK(both.labels.empty());
  // A category's quotations as one running text: documents merge while the category stays, the
  // sentences and their indices do not move.
  const auto running = merge_documents_by_label(c, "category");
  CHECK(running.sentences == c.sentences);
  CHECK(running.document_begin == std::vector<std::size_t>{0, 4, 5});
  CHECK(running.document_names == std::vector<std::string>{"wisdom 0", "art 0"});
  CHECK(running.label_set("category").of_sentence == c.label_set("category").of_sentence);
  CHECK_THROWS_WITH_AS(merge_documents_by_label(c, "book"),
                       "text_corpus: no label set 'book' (have: category)", config_error);
  CHECK(
      merge_documents_by_label(text_corpus{{}, {0}, {}, {{"category", {}, {}}}}, "category").document_begin ==
      std::vector<std::size_t>{0});
}

TEST_CASE("split_sentences and text_sampler: rows of consecutive sentences inside one document and split") {
  std::string text;
  for (int ch = 1; ch <= 20; ++ch)
    for (int v = 1; v <= 3 + ch % 4; ++v)
      text += "Ge" + std::to_string(ch) + ":" + std::to_string(v) + " verse\n";
  const auto c = kjv(text);
  const auto train = split_sentences(c, false), test = split_sentences(c, true);
  CHECK(train.size() + test.size() == c.sentences.size());
  for (std::size_t s : test) {
    const auto d = static_cast<std::size_t>(
        std::upper_bound(c.document_begin.begin(), c.document_begin.end(), s) - c.document_begin.begin() - 1);
    CHECK(d % 10 == 9);
  }
  CHECK_THROWS_AS(split_sentences(c, true, 3, 3), config_error);
  std::vector<std::vector<std::int32_t>> tokens(c.sentences.size());
  for (std::size_t i = 0; i < tokens.size(); ++i)
    tokens[i].assign(1 + i % 5, static_cast<std::int32_t>(i + 1));
  text_sampler a(c, tokens, train, {.batch_size = 16, .sentences = 4, .max_tokens = 3, .seed = 2});
  text_sampler b(c, tokens, train, {.batch_size = 16, .sentences = 4, .max_tokens = 3, .seed = 2});
  text_batch x, y;
  for (int round = 0; round < 20; ++round) {
    a.next(x);
    b.next(y);
    CHECK(x.ids == y.ids);  // seeded
    REQUIRE(x.ids.shape()[0] == 16);
    CHECK(x.ids.shape()[1] == 4);
    CHECK(x.ids.shape()[2] <= 3);
    for (std::size_t r = 0; r < 16; ++r) {
      const std::size_t s0 = x.starts[r], len = x.info.lengths[r];
      CHECK(len >= 2);
      const auto d = std::upper_bound(c.document_begin.begin(), c.document_begin.end(), s0) - 1;
      CHECK(s0 + len <= *(d + 1));                                              // inside the document
      CHECK(static_cast<std::size_t>(d - c.document_begin.begin()) % 10 != 9);  // train chapters only
      for (std::size_t j = 0; j < 4; ++j) {
        const std::int32_t first = x.ids(r, j, 0);
        CHECK(first == (j < len ? static_cast<std::int32_t>(s0 + j + 1) : 0));
      }
    }
  }
  tokens[0].clear();
  CHECK_THROWS_AS(text_sampler(c, tokens, train, {}), config_error);
  tokens[0] = {0};
  CHECK_THROWS_WITH_AS(text_sampler(c, tokens, train, {}),
                       "text_sampler: sentence 0 contains the padding id 0", config_error);
  CHECK_THROWS_AS(text_sampler(c, tokens, {}, {}), config_error);
}

TEST_CASE("tfidf: scikit-learn's smooth idf and l2 rows") {
  const std::vector<std::vector<std::int32_t>> tokens{{1, 1, 2}, {2, 3}, {}};
  const std::vector<std::size_t> rows{0, 1, 2};
  const tfidf t(tokens, rows, 4);
  CHECK(t.idf()[1] == doctest::Approx(std::log(4.0 / 2.0) + 1));
  CHECK(t.idf()[2] == doctest::Approx(std::log(4.0 / 3.0) + 1));
  CHECK(t.idf()[0] == doctest::Approx(std::log(4.0) + 1));
  const auto x = t.transform(tokens, rows);
  const double a = 2 * t.idf()[1], b = t.idf()[2], n = std::sqrt(a * a + b * b);
  CHECK(x(0, 1) == doctest::Approx(a / n));
  CHECK(x(0, 2) == doctest::Approx(b / n));
  CHECK(x(2, 0) == 0.0f);
  const std::vector<std::vector<std::int32_t>> bad{{7}};
  const std::vector<std::size_t> one{0};
  CHECK_THROWS_AS(tfidf(bad, one, 4), config_error);
}

TEST_CASE("sentencepiece_tokenizer: learns a vocabulary, id 0 stays padding, encoding is deterministic") {
  const auto dir = std::filesystem::temp_directory_path() / "cpc_test_text_spm";
  std::filesystem::create_directories(dir);
  std::vector<std::string> text;
  for (int i = 0; i < 400; ++i)
    text.push_back("and the lord spake unto moses saying number " + std::to_string(i % 37) +
                   " of the children");
  const auto model = sentencepiece_tokenizer::train(text, 36, dir / "spm");
  const sentencepiece_tokenizer tok(model);
  CHECK(tok.vocabulary() == 36);
  CHECK(tok.piece(0) == "<pad>");
  const auto ids = tok.encode("and the lord spake unto moses");
  CHECK(!ids.empty());
  for (auto id : ids) CHECK((id > 0 && id < 36));
  CHECK(tok.encode("and the lord spake unto moses") == ids);
  CHECK_THROWS_AS(sentencepiece_tokenizer(dir / "missing.model"), io_error);
  CHECK_THROWS_AS(sentencepiece_tokenizer::train(text, 100000, dir / "too_big"), io_error);
  std::filesystem::remove_all(dir);
}

TEST_CASE("the Debian packages: the whole Bible (bible-kjv) and WordNet's glosses (wordnet-base)") {
  const auto dir = std::filesystem::temp_directory_path() / "cpc_test_text_kjv";
  std::filesystem::create_directories(dir);
  const auto path = (dir / "kjv.txt").string();
  if (std::system(("bible -f gen1:1-rev22:21 > " + path + " 2>/dev/null").c_str()) == 0) {
    const auto c = read_kjv_file(path);
    CHECK(c.sentences.size() == 31102);
    CHECK(c.documents() == 1189);
    CHECK(c.label_set("book").classes.size() == 66);
    CHECK(c.label_set("book").classes[39] == "Mat");
    std::size_t new_testament = 0;
    for (int t : c.label_set("testament").of_sentence) new_testament += t;
    CHECK(new_testament == 7957);
  } else {
    MESSAGE("bible-kjv not installed: the Bible check is skipped (scripts/install-deps.sh text)");
  }
  std::filesystem::remove_all(dir);
  if (std::filesystem::exists("/usr/share/games/fortunes/wisdom")) {
    const auto q = read_fortunes_dir("/usr/share/games/fortunes", false);
    CHECK(q.labels[0].classes.size() >= 40);
    CHECK(q.sentences.size() > 10000);
  } else {
    MESSAGE("fortunes not installed: the fortune check is skipped");
  }
  if (std::filesystem::exists("/usr/share/wordnet/data.noun")) {
    const auto g = read_wordnet_glosses_dir("/usr/share/wordnet");
    CHECK(g.sentences.size() == 117659);
    CHECK(g.label_set("part of speech").classes.size() == 4);
  } else {
    MESSAGE("wordnet-base not installed: the WordNet check is skipped");
  }
}
