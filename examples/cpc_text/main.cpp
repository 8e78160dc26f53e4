// cpc-text: CPC on text (van den Oord et al. 2018, section 3.3) at a small scale, from Debian
// packages only. Subcommands:
//   train  learns a SentencePiece vocabulary on the training text (by default the Bible's train
//          chapters, the train fortune quotations and the WordNet glosses not held out), trains the
//          text model
//          (sentence encoder, GRU, InfoNCE over up to 3 sentences ahead) and saves a checkpoint;
//   probe  loads a checkpoint and runs the linear probes on frozen sentence features: CPC, the
//          random-init encoder and TF-IDF, on the Bible (testament, book of a verse), WordNet
//          glosses (part of speech, lexicographer file) and fortune quotations (category);
//   demo   train then probe, printing the table in the form of the paper's Table 3.
// Data: the King James Bible as `bible -f gen1:1-rev22:21` prints it (Debian bible-kjv; written to
// <out>/kjv.txt when --bible is not given), fortune-mod's quotations (Debian fortunes) and WordNet's
// data files (Debian wordnet-base). Defaults (batch 64 x 8 sentences, Adam 3e-4, Bible + fortunes +
// WordNet):
// README "Text" gives the runs that chose them.
// A command line over the library: cpc::read_kjv_file, cpc::sentencepiece_tokenizer,
// cpc::text_sampler, cpc::train, cpc::encode_sentences, cpc::tfidf, cpc::linear_probe.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <cpc/core/allocator.hpp>
#include <cpc/core/cpu_features.hpp>
#include <cpc/core/threads.hpp>
#include <cpc/data/sentencepiece_tokenizer.hpp>
#include <cpc/data/text_corpus.hpp>
#include <cpc/eval/text_features.hpp>
#include <cpc/model/text_model.hpp>
#include <cpc/optim/adam.hpp>
#include <cpc/optim/schedule.hpp>
#include <cpc/train/checkpoint.hpp>
#include <cpc/train/trainer.hpp>

namespace fs = std::filesystem;
using preset = cpc::presets::text_small;
using model_t = cpc::cpc_text_model<preset>;
using clock_type = std::chrono::steady_clock;

namespace {

struct settings {
  std::string bible, wordnet = "/usr/share/wordnet", fortunes = "/usr/share/games/fortunes",
                     out = "cpc-text-out", checkpoint, negative_source = "batch",
                     train_text = "bible+fortunes+wordnet";
  // Architecture (defaults: cpc::presets::text_small); saved in and restored from checkpoints.
  std::size_t vocabulary = preset::vocabulary, embedding = preset::embedding_dim,
              channels = preset::latent_channels, kernel = preset::kernel, context = preset::context_channels,
              steps_ahead = preset::prediction_steps, negatives = preset::negatives, seed = 1;
  std::size_t batch = 64, sentences = 8, max_tokens = 64, steps = 0, warmup = 100, threads = 0;
  double minutes = 10.0, learning_rate = 3e-4;
  std::size_t probe_train = 10000, probe_epochs = 20, probe_updates = 4000;
};

std::vector<std::pair<std::string, std::size_t*>> architecture(settings& s) {
  return {{"vocabulary", &s.vocabulary}, {"embedding", &s.embedding}, {"channels", &s.channels},
          {"kernel", &s.kernel},         {"context", &s.context},     {"steps_ahead", &s.steps_ahead},
          {"negatives", &s.negatives},   {"seed", &s.seed},           {"max_tokens", &s.max_tokens}};
}

model_t::options model_options(const settings& s) {
  model_t::options o;
  o.encoder = {.vocabulary = s.vocabulary,
               .embedding_dim = s.embedding,
               .channels = s.channels,
               .kernel = s.kernel,
               .padding_id = 0};
  o.autoregressor.input_size = s.channels;
  o.autoregressor.hidden_size = s.context;
  o.loss.latent_dim = s.channels;
  o.loss.context_dim = s.context;
  o.loss.steps = s.steps_ahead;
  o.loss.negatives = s.negatives;
  o.loss.init_scale = 1.0 / static_cast<double>(s.context);
  o.loss.policy = cpc::parse_negative_policy(s.negative_source, "--negative-source");
  o.seed = s.seed;
  return o;
}

// The sources of --train-text ("bible+fortunes+wordnet"): each of bible, fortunes, wordnet at most
// once; empty when the text is not such a list.
std::vector<std::string> train_sources(const std::string& text) {
  std::vector<std::string> out;
  std::size_t begin = 0;
  while (begin <= text.size()) {
    const std::size_t end = std::min(text.find('+', begin), text.size());
    const std::string part = text.substr(begin, end - begin);
    if ((part != "bible" && part != "fortunes" && part != "wordnet") ||
        std::find(out.begin(), out.end(), part) != out.end())
      return {};
    out.push_back(part);
    begin = end + 1;
  }
  return out;
}

// Checks options before any work. Errors: cpc::config_error naming the option.
void check_settings(const settings& s, bool training) {
  const auto need = [](bool ok, const std::string& what) {
    if (!ok) throw cpc::config_error(what);
  };
  need(s.probe_train >= 10,
       "--probe-train: expected at least 10 sentences, got " + std::to_string(s.probe_train));
  need(s.max_tokens >= 1, "--max-tokens: expected at least 1");
  if (!training) return;
  need(s.vocabulary >= 100,
       "--vocabulary: expected at least 100 pieces, got " + std::to_string(s.vocabulary));
  need(s.batch >= 2, "--batch: expected at least 2 rows, got " + std::to_string(s.batch));
  need(s.sentences > s.steps_ahead, "--sentences: expected more than --steps-ahead (" +
                                        std::to_string(s.steps_ahead) + "), got " +
                                        std::to_string(s.sentences));
  need(s.kernel % 2 == 1, "--kernel: expected an odd width, got " + std::to_string(s.kernel));
  const auto policy = cpc::parse_negative_policy(s.negative_source, "--negative-source");
  need(policy == cpc::negative_policy::batch || policy == cpc::negative_policy::same_sequence ||
           policy == cpc::negative_policy::other_sequences,
       "--negative-source: expected batch, same-sequence or other-sequences (text rows have no speakers), "
       "got " +
           s.negative_source);
  need(std::isfinite(s.minutes) && s.minutes > 0, "--minutes: expected a time budget > 0");
  need(!train_sources(s.train_text).empty(),
       "--train-text: expected sources from bible, fortunes and wordnet joined by '+' (e.g. "
       "bible+fortunes+wordnet), got '" +
           s.train_text + "'");
}

// The Bible's text: --bible, or <out>/kjv.txt written by the `bible` program when missing.
cpc::text_corpus load_bible(settings& s) {
  if (s.bible.empty()) {
    s.bible = (fs::path(s.out) / "kjv.txt").string();
    if (!fs::exists(s.bible)) {
      fs::create_directories(s.out);
      const std::string cmd =
          "bible -f gen1:1-rev22:21 > '" + s.bible + ".part' && mv '" + s.bible + ".part' '" + s.bible + "'";
      std::printf("corpus: %s\n", cmd.c_str());
      std::fflush(stdout);
      if (std::system(cmd.c_str()) != 0)
        throw cpc::io_error("could not run `bible` (Debian: apt-get install bible-kjv) to write " + s.bible +
                            "; or pass --bible FILE");
    }
  }
  cpc::text_corpus c = cpc::read_kjv_file(s.bible);
  std::printf("bible: %s: %zu verses in %zu chapters, %zu books\n", s.bible.c_str(), c.sentences.size(),
              c.documents(), c.label_set("book").classes.size());
  return c;
}

// Every `stride`-th element of v so that at most `n` remain.
std::vector<std::size_t> thin(const std::vector<std::size_t>& v, std::size_t n) {
  if (v.size() <= n) return v;
  std::vector<std::size_t> out;
  const double stride = static_cast<double>(v.size()) / static_cast<double>(n);
  for (std::size_t i = 0; i < n; ++i)
    out.push_back(v[static_cast<std::size_t>(static_cast<double>(i) * stride)]);
  return out;
}

struct probe_task {
  std::string name;
  const std::vector<std::vector<std::int32_t>>* tokens;
  const cpc::text_label_set* labels;
  std::vector<std::size_t> train, test;
};

std::vector<int> labels_of(const cpc::text_label_set& l, const std::vector<std::size_t>& rows) {
  std::vector<int> y;
  for (std::size_t r : rows) y.push_back(l.of_sentence[r]);
  return y;
}

// Majority class of the train rows, scored on the test rows.
double majority(const probe_task& t) {
  std::vector<std::size_t> count(t.labels->classes.size(), 0);
  for (std::size_t r : t.train) ++count[static_cast<std::size_t>(t.labels->of_sentence[r])];
  const auto best = static_cast<int>(std::max_element(count.begin(), count.end()) - count.begin());
  std::size_t hit = 0;
  for (std::size_t r : t.test) hit += t.labels->of_sentence[r] == best;
  return static_cast<double>(hit) / static_cast<double>(t.test.size());
}

std::string pct(double v) {
  char b[16];
  std::snprintf(b, sizeof b, "%.1f", 100 * v);
  return b;
}

struct text_data {
  cpc::text_corpus bible, glosses, fortune_sentences, fortune_quotes;
};

// The running text CPC trains on (--train-text) and the indices of its training sentences: the
// Bible's train chapters (a chapter is a document), the train quotations of each fortune category
// file in file order (cut into sentences; a category file is a document) and the glosses of each
// WordNet data file in file order (a data file is a document; WordNet lists its synsets grouped by
// lexicographer file). Held-out chapters, quotations and glosses are never seen, and rows of the
// sampler never cross them: the split is made on each source's own documents.
struct training_text {
  cpc::text_corpus corpus;
  std::vector<std::size_t> train_sentences;
};

training_text make_training_text(const text_data& data, const std::vector<std::string>& sources) {
  training_text out;
  std::vector<cpc::text_corpus> merged;
  merged.reserve(sources.size());  // `parts` points into it
  std::vector<const cpc::text_corpus*> parts;
  std::size_t base = 0;
  for (const auto& name : sources) {
    const bool bible = name == "bible", fortunes = name == "fortunes";
    const cpc::text_corpus& source = bible ? data.bible : fortunes ? data.fortune_sentences : data.glosses;
    for (std::size_t i : cpc::split_sentences(source, false)) out.train_sentences.push_back(base + i);
    if (!bible)
      merged.push_back(cpc::merge_documents_by_label(source, fortunes ? "category" : "part of speech"));
    parts.push_back(bible ? &source : &merged.back());
    base += source.sentences.size();
  }
  out.corpus = cpc::concatenate_documents(parts);
  return out;
}

void probe(model_t& m, const cpc::sentencepiece_tokenizer& tok, const text_data& data, const settings& s,
           const std::string& trained) {
  const auto t0 = clock_type::now();
  const cpc::text_corpus &bible = data.bible, &glosses = data.glosses, &quotes = data.fortune_quotes;
  const auto bible_tokens = tok.encode_all(bible.sentences), gloss_tokens = tok.encode_all(glosses.sentences),
             quote_tokens = tok.encode_all(quotes.sentences);
  // Bible: verses of the train chapters (thinned) vs the test chapters (every tenth chapter).
  const auto btrain = thin(cpc::split_sentences(bible, false), s.probe_train),
             btest = cpc::split_sentences(bible, true);
  // WordNet: every tenth gloss is held out (training never sees it); probe_train glosses from the
  // others, probe_train / 4 from the held-out ones, each thinned by a fixed stride.
  const auto gtrain = thin(cpc::split_sentences(glosses, false), s.probe_train),
             gtest = thin(cpc::split_sentences(glosses, true), s.probe_train / 4);
  // Fortunes: whole quotations, every tenth in the test split (the quotations training never sees).
  const auto qtrain = thin(cpc::split_sentences(quotes, false), s.probe_train),
             qtest = cpc::split_sentences(quotes, true);
  std::vector<probe_task> tasks{
      {"Bible: testament", &bible_tokens, &bible.label_set("testament"), btrain, btest},
      {"Bible: book", &bible_tokens, &bible.label_set("book"), btrain, btest},
      {"WordNet gloss: part of speech", &gloss_tokens, &glosses.label_set("part of speech"), gtrain, gtest},
      {"WordNet gloss: lexicographer file", &gloss_tokens, &glosses.label_set("lexicographer file"), gtrain,
       gtest},
      {"fortune: category", &quote_tokens, &quotes.label_set("category"), qtrain, qtest}};
  std::printf(
      "linear probes on frozen sentence features (%zu / %zu Bible verses, %zu / %zu WordNet glosses, %zu / "
      "%zu "
      "fortune quotations; train / test)\n",
      btrain.size(), btest.size(), gtrain.size(), gtest.size(), qtrain.size(), qtest.size());
  model_t random_model(model_options(s));
  const auto probe_options = [&] {
    auto o = cpc::text_probe_options();
    o.epochs = s.probe_epochs;
    o.min_updates = s.probe_updates;
    return o;
  }();
  std::vector<std::vector<double>> acc(4);  // rows: CPC, random init, TF-IDF, majority
  for (const auto& t : tasks) {
    const auto ytr = labels_of(*t.labels, t.train), yte = labels_of(*t.labels, t.test);
    const std::size_t k = t.labels->classes.size();
    const auto run = [&](const cpc::tensor2<float>& xtr, const cpc::tensor2<float>& xte) {
      return cpc::probe_accuracy(xtr, ytr, xte, yte, k, probe_options);
    };
    acc[0].push_back(run(cpc::encode_sentences(m, *t.tokens, t.train, s.max_tokens),
                         cpc::encode_sentences(m, *t.tokens, t.test, s.max_tokens)));
    acc[1].push_back(run(cpc::encode_sentences(random_model, *t.tokens, t.train, s.max_tokens),
                         cpc::encode_sentences(random_model, *t.tokens, t.test, s.max_tokens)));
    const cpc::tfidf bow(*t.tokens, t.train, tok.vocabulary());
    acc[2].push_back(run(bow.transform(*t.tokens, t.train), bow.transform(*t.tokens, t.test)));
    acc[3].push_back(majority(t));
    std::printf("  %-34s CPC %5s  random init %5s  TF-IDF %5s  majority %5s (%zu classes)\n", t.name.c_str(),
                pct(acc[0].back()).c_str(), pct(acc[1].back()).c_str(), pct(acc[2].back()).c_str(),
                pct(acc[3].back()).c_str(), k);
    std::fflush(stdout);
  }
  std::string table =
      "| method | Bible: testament | Bible: book | WordNet: part of speech | WordNet: lexicographer file "
      "| fortune: category | MR | CR | Subj | MPQA | TREC |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
  const char* names[] = {"CPC (", "random-init encoder", "bag of words (TF-IDF)", "majority class"};
  for (std::size_t r = 0; r < 4; ++r) {
    std::string name = names[r];
    if (r == 0) name += trained + ")";
    table += "| " + name;
    for (double a : acc[r]) table += " | " + pct(a);
    table += " | | | | | |\n";
  }
  // van den Oord et al. 2018, Table 3 (accuracy %, 10-fold cross-validation; TREC: train/test split).
  table += "| paper: Paragraph-vector | | | | | | 74.8 | 78.1 | 90.5 | 74.2 | 91.8 |\n";
  table += "| paper: Skip-thought vector | | | | | | 75.5 | 79.3 | 92.1 | 86.9 | 91.4 |\n";
  table += "| paper: Skip-thought + LN | | | | | | 79.5 | 82.6 | 93.4 | 89.0 | - |\n";
  table += "| paper: CPC | | | | | | 76.9 | 80.1 | 91.2 | 87.7 | 96.8 |\n";
  std::printf("\n%s\n(probes took %.0f s)\n", table.c_str(),
              std::chrono::duration<double>(clock_type::now() - t0).count());
  fs::create_directories(s.out);
  const fs::path results = fs::path(s.out) / "results.md";
  std::ofstream(results) << table;
  std::ofstream csv(fs::path(s.out) / "probes.csv");
  csv << "task,classes,cpc,random_init,tfidf,majority\n";
  for (std::size_t t = 0; t < tasks.size(); ++t)
    csv << '"' << tasks[t].name << "\"," << tasks[t].labels->classes.size() << ',' << acc[0][t] << ','
        << acc[1][t] << ',' << acc[2][t] << ',' << acc[3][t] << '\n';
  std::printf("table: %s\n", results.string().c_str());
}

void read_architecture(const fs::path& ckpt, settings& s) {
  const auto meta = cpc::load_safetensors(ckpt).metadata;
  const auto fail = [&](const std::string& why) { return cpc::io_error(ckpt.string() + ": " + why); };
  if (auto it = meta.find("model"); it == meta.end() || it->second != "cpc-text")
    throw fail("not a cpc-text checkpoint (expected metadata model = cpc-text)");
  for (const auto& [key, field] : architecture(s)) {
    const auto it = meta.find(key);
    const char* end = it == meta.end() ? nullptr : it->second.data() + it->second.size();
    if (it == meta.end() || it->second.empty() || std::from_chars(it->second.data(), end, *field).ptr != end)
      throw fail("metadata " + key + " is missing or not a number");
  }
}

}  // namespace

int main(int argc, char** argv) {
  cpc::configure_allocator();
  settings s;
  CLI::App app{
      "CPC on text (paper section 3.3): King James Bible, fortunes and WordNet glosses from Debian; train, "
      "probe, demo"};
  app.option_defaults()->always_capture_default();
  app.require_subcommand(1);
  auto* train_cmd =
      app.add_subcommand("train", "learn the vocabulary, train CPC, save <out>/model.safetensors");
  auto* probe_cmd = app.add_subcommand("probe", "linear probes of a checkpoint vs random init and TF-IDF");
  auto* demo_cmd = app.add_subcommand("demo", "train (10 minutes by default), then probe, print the table");
  for (auto* c : {train_cmd, probe_cmd, demo_cmd}) {
    c->add_option("--bible", s.bible,
                  "the Bible as `bible -f gen1:1-rev22:21` prints it (default: <out>/kjv.txt, "
                  "written with the bible program when missing)");
    c->add_option("--wordnet", s.wordnet, "WordNet's dict folder (data.noun, ...)");
    c->add_option("--fortunes", s.fortunes, "fortune-mod's quotation files, one per category");
    c->add_option("--out", s.out,
                  "output folder (kjv.txt, tokenizer, checkpoint, training.csv, results.md, probes.csv)")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    c->add_option("--threads", s.threads, "threads (0: all cores)");
  }
  for (auto* c : {train_cmd, demo_cmd}) {
    c->add_option("--vocabulary", s.vocabulary, "SentencePiece pieces (id 0 = padding)");
    c->add_option("--embedding", s.embedding, "token embedding width");
    c->add_option("--channels", s.channels, "sentence latent width (convolution channels; the paper: 2400)");
    c->add_option("--kernel", s.kernel, "convolution width in tokens (odd)");
    c->add_option("--context", s.context, "GRU width");
    c->add_option("--steps-ahead", s.steps_ahead, "sentences predicted ahead (K)");
    c->add_option("--negatives", s.negatives, "negatives per prediction (N)");
    c->add_option("--train-text", s.train_text,
                  "running text CPC trains on, sources joined by '+': bible (train chapters), fortunes "
                  "(train quotations, a category file as one text), wordnet (glosses not held out, a data "
                  "file as one text)");
    c->add_option(
        "--negative-source", s.negative_source,
        "where negatives come from: batch (the paper's), same-sequence (the row's own sentences) or "
        "other-sequences");
    c->add_option("--batch", s.batch, "rows of consecutive sentences per step");
    c->add_option("--sentences", s.sentences, "sentences per row");
    c->add_option("--max-tokens", s.max_tokens, "tokens kept per sentence");
    c->add_option("--steps", s.steps, "maximum training steps (0: only the time budget)");
    c->add_option("--minutes", s.minutes, "training time budget in minutes");
    c->add_option("--lr", s.learning_rate, "Adam learning rate");
    c->add_option("--warmup", s.warmup, "linear warm-up steps");
    c->add_option("--seed", s.seed, "seed of weights, negatives and batches");
  }
  for (auto* c : {probe_cmd, demo_cmd}) {
    c->add_option("--probe-train", s.probe_train, "training sentences per probe (thinned by a fixed stride)");
    c->add_option("--probe-epochs", s.probe_epochs, "probe epochs, at least");
    c->add_option("--probe-updates", s.probe_updates, "probe Adam updates, at least");
  }
  probe_cmd->add_option("--checkpoint", s.checkpoint, "checkpoint (default <out>/model.safetensors)");
  CLI11_PARSE(app, argc, argv);
  cpc::warn_if_cpu_features_unused();
  const bool training = *train_cmd || *demo_cmd;
  try {
    if (s.threads > 0) cpc::set_num_threads(s.threads);
    const fs::path ckpt =
        s.checkpoint.empty() ? fs::path(s.out) / "model.safetensors" : fs::path(s.checkpoint);
    if (*probe_cmd) read_architecture(ckpt, s);
    check_settings(s, training);
    if (training) fs::create_directories(s.out);
    text_data data;
    data.bible = load_bible(s);
    // Read before training: a missing package fails now, not after it.
    data.fortune_sentences = cpc::read_fortunes_dir(s.fortunes, true);
    data.fortune_quotes = cpc::read_fortunes_dir(s.fortunes, false);
    std::printf("fortunes: %s: %zu quotations in %zu categories (%zu sentences)\n", s.fortunes.c_str(),
                data.fortune_quotes.sentences.size(), data.fortune_quotes.labels[0].classes.size(),
                data.fortune_sentences.sentences.size());
    const auto sources = train_sources(s.train_text);
    const auto uses = [&](const char* name) {
      return training && std::find(sources.begin(), sources.end(), name) != sources.end();
    };
    if (*probe_cmd || *demo_cmd || uses("wordnet")) {
      data.glosses = cpc::read_wordnet_glosses_dir(s.wordnet);
      std::printf("wordnet: %s: %zu glosses\n", s.wordnet.c_str(), data.glosses.sentences.size());
    }
    // The running text is assembled only when training (probe never reads it).
    const training_text text = training ? make_training_text(data, sources) : training_text{};
    const cpc::text_corpus& corpus = text.corpus;
    const std::vector<std::size_t>& train_sentences = text.train_sentences;
    const fs::path spm_prefix = ckpt.parent_path() / "tokenizer";
    if (training) {
      const auto t0 = clock_type::now();
      std::vector<std::string> train_text;
      for (std::size_t i : train_sentences) train_text.push_back(corpus.sentences[i]);
      cpc::sentencepiece_tokenizer::train(train_text, s.vocabulary, spm_prefix, 2);
      std::printf(
          "tokenizer: SentencePiece unigram, %zu pieces learned on %zu training sentences in %.1f s: "
          "%s.model\n",
          s.vocabulary, train_text.size(), std::chrono::duration<double>(clock_type::now() - t0).count(),
          spm_prefix.string().c_str());
    }
    const cpc::sentencepiece_tokenizer tok(spm_prefix.string() + ".model");
    model_t m(model_options(s));
    std::string trained = "checkpoint " + ckpt.filename().string();
    if (training) {
      cpc::text_sampler batches(corpus, tok.encode_all(corpus.sentences), train_sentences,
                                {.batch_size = s.batch,
                                 .sentences = s.sentences,
                                 .max_tokens = s.max_tokens,
                                 .seed = s.seed + 100});
      cpc::adam<float> opt(m.parameters(), {.learning_rate = s.learning_rate});
      cpc::train_options o;
      o.max_steps = s.steps;
      o.max_seconds = 60.0 * s.minutes;
      o.checkpoint_path = ckpt;
      o.checkpoint_every = 500;
      o.csv_path = fs::path(s.out) / "training.csv";
      o.progress_every = 100;
      o.generators = {{"data", &batches.generator()}};
      o.metadata = {{"model", "cpc-text"},
                    {"bible", s.bible},
                    {"negative_source", s.negative_source},
                    {"train_text", s.train_text}};
      for (const auto& [key, field] : architecture(s)) o.metadata[key] = std::to_string(*field);
      std::printf(
          "training on %s: %zu parameters, batch %zu x %zu sentences, K = %zu, N = %zu from %s, %.1f min",
          s.train_text.c_str(), m.parameter_count(), s.batch, s.sentences, s.steps_ahead, s.negatives,
          s.negative_source.c_str(), s.minutes);
      if (s.steps > 0) std::printf(" or %zu steps", s.steps);
      std::printf(" (progress on stderr)\n");
      std::fflush(stdout);
      const auto r = cpc::train(m, opt, cpc::linear_warmup{s.learning_rate, s.warmup}, batches, o);
      std::printf("  %llu steps in %.0f s (%.0f ms/step); last loss %.3f (chance %.3f), acc(k=1..%zu)",
                  static_cast<unsigned long long>(r.steps_run), r.seconds,
                  1000 * r.seconds / std::max<double>(1, static_cast<double>(r.steps_run)), r.last.loss,
                  r.last.log_candidates, r.last.accuracy.size());
      for (double a : r.last.accuracy) std::printf(" %.3f", a);
      std::printf(" (chance %.3f)\ncheckpoint: %s\n", r.last.chance, ckpt.string().c_str());
      char buf[96];
      std::snprintf(buf, sizeof buf, "%llu steps in %.1f min", static_cast<unsigned long long>(r.steps_run),
                    r.seconds / 60);
      trained = buf;
    } else {
      cpc::load_weights(ckpt, m);
    }
    if (*probe_cmd || *demo_cmd) probe(m, tok, data, s, trained);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cpc-text: %s\n", e.what());
    return 1;
  }
  return 0;
}
