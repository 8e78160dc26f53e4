// cpc-speech: a command line over the library's speech path - trains CPC on a speech corpus
// (LibriSpeech / CPC layout, or the corpus made by scripts/make-corpus.sh) with cpc::train_speech
// and evaluates it with the paper's linear probes against MFCC and a randomly initialised encoder
// (van den Oord et al. 2018, section 3.1, Tables 1 and 2).
//
//   cpc-speech demo     --corpus DIR --out DIR [--minutes 12]    train, probe, print the table
//   cpc-speech train    --corpus DIR --out DIR [--minutes M | --steps N] [--resume]
//   cpc-speech probe    --corpus DIR (--checkpoint FILE | --features mfcc | --features random)
//   cpc-speech encode   --corpus DIR --checkpoint FILE --out FILE.safetensors [--split test]
//   cpc-speech abx      --corpus DIR (--checkpoint FILE | --features mfcc|random|all)
//   cpc-speech ablation --corpus DIR --out DIR --steps N          the paper's Table 2
//   mpirun -np N cpc-speech train ...                            the same training on N processes
//
// --checkpoint also takes a CPC_audio model converted by scripts/convert_cpc_audio.py (encode, abx).
//
// Every option is checked before any work (no corpus is loaded and no folder is made for a bad
// one); every error ends the program with one line "cpc-speech: <error type>: <message>" and
// exit status 2 (an option was refused before any work) or 1 (the run failed). Pictures:
// scripts/plot-demo.sh draws the files `demo` writes with gnuplot.
#include <CLI/CLI.hpp>

#include <cpc/audio.hpp>
#include <cpc/cpc.hpp>
#ifdef CPC_WITH_MPI
#include <cpc/dist/mpi.hpp>
#endif

#include "../common/cli_checks.hpp"
#include "abx_command.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------------------------
// Settings shared by the subcommands.

// The recipe `demo` and `train` use unless told otherwise (README "What the demo printed").
cpc::speech_recipe default_recipe() {
  return {};
}

struct settings {
  fs::path corpus;
  fs::path out = "runs/cpc-speech";
  cpc::speech_recipe recipe = default_recipe();
  // Recipe options given as words, parsed by check_options.
  std::string negatives{cpc::to_string(default_recipe().negatives)};
  std::string short_utterances{cpc::to_string(default_recipe().short_utterances)};
  std::string normalize{cpc::to_string(default_recipe().normalization)};
  double minutes = 0;
  std::uint64_t steps = 0;
  std::size_t threads = 0;
  std::string matmul_precision = "fp32";  // of the convolutions' products: fp32 or bf16 (AMX)
  bool resume = false, no_prefetch = false;
  double probe_minutes = 12;  // minutes of audio per split for the probes (0 = all)
  std::size_t probe_epochs = cpc::default_probe_options().epochs;
  std::size_t probe_updates = cpc::default_probe_options().min_updates;
  fs::path checkpoint;
  std::string features = "cpc";  // cpc | mfcc | random
  std::string split = "test";
  fs::path output;
  // Corpus files other than the defaults (e.g. LibriSpeech with the CPC paper's label files).
  std::optional<fs::path> alignments, train_split, test_split;
  std::size_t num_phones = 0;
  std::size_t abx_group = 20, abx_x = 5;  // abx: items per group, X speakers per cell
  std::vector<std::string> given;         // the options given on the command line, e.g. "--lr"
  bool is_given(const std::string& option) const {
    return std::find(given.begin(), given.end(), option) != given.end();
  }
  // Data-parallel training (`mpirun -np N cpc-speech train`): the group of ranks (null: one
  // process) and how long a rank waits for the others in one collective.
  cpc::communicator* comm = nullptr;
  double dist_timeout = 300;
};

// "rank r of N: " in front of this process's error line when several ranks train together.
std::string rank_label;

// Exit statuses (README "Bad input", `--help`).
constexpr int exit_failed = 1;   // the run failed (a file, a step); the message names it
constexpr int exit_refused = 2;  // an option was refused before any work

enum class command { demo, train, probe, encode, abx, ablation };

std::string number(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// Refuses option values outside their documented range, before anything is read or written;
// parses the recipe's words into s.recipe. Errors: cpc::config_error "<option>: expected <what is
// accepted>, got <value>".
void check_options(settings& s, command cmd) {
  const auto need = [](bool ok, const std::string& what) {
    if (!ok) throw cpc::config_error(what);
  };
  const bool training = cmd == command::demo || cmd == command::train || cmd == command::ablation;
  const bool probing = cmd != command::train && cmd != command::encode;
  s.recipe.negatives = cpc::parse_negative_policy(s.negatives, "--negatives");
  s.recipe.short_utterances = cpc::parse_short_utterance_policy(s.short_utterances, "--short-utterances");
  s.recipe.normalization = cpc::parse_input_normalization(s.normalize, "--normalize");
  if (cmd != command::encode) s.recipe.check();
  cpc_examples::apply_matmul_precision(s.matmul_precision);
  if (training) {
    need(!s.is_given("--minutes") || (std::isfinite(s.minutes) && s.minutes > 0),
         "--minutes: expected a finite time budget > 0 minutes, got " + number(s.minutes));
    need(!s.is_given("--steps") || s.steps >= 1, "--steps: expected at least 1 step, got 0");
    need(std::isfinite(s.dist_timeout) && s.dist_timeout > 0,
         "--dist-timeout: expected a time > 0 seconds, got " + number(s.dist_timeout));
  }
  if (cmd == command::ablation) {
    need(s.is_given("--steps"),
         "--steps: expected the step budget of every ablation row (e.g. --steps 300), got none");
    need(s.recipe.speakers_per_batch > 0,
         "--speakers-per-batch: expected speaker-balanced batches for the same-speaker rows (e.g. "
         "--speakers-per-batch "
         "2), got 0");
  }
  if (probing) {
    need(std::isfinite(s.probe_minutes) && s.probe_minutes >= 0,
         "--probe-minutes: expected minutes of audio >= 0 (0 = all), got " + number(s.probe_minutes));
    need(s.probe_epochs >= 1, "--probe-epochs: expected at least 1 epoch, got 0");
  }
  if (cmd == command::probe) {
    need(s.features == "cpc" || s.features == "mfcc" || s.features == "random",
         "--features: expected cpc, mfcc or random, got '" + s.features + "'");
    need(s.features != "cpc" || !s.checkpoint.empty(),
         "--checkpoint: expected a checkpoint file for --features cpc (the default), got none; "
         "or use --features mfcc or --features random");
    need(s.features == "cpc" || s.checkpoint.empty(),
         "--checkpoint: only used with --features cpc, got --features " + s.features);
  }
  if (cmd == command::abx) {
    need(s.features == "cpc" || s.features == "mfcc" || s.features == "random" || s.features == "all",
         "--features: expected cpc, mfcc, random or all, got '" + s.features + "'");
    need((s.features != "cpc" && s.features != "all") || !s.checkpoint.empty(),
         "--checkpoint: expected a checkpoint file for --features " + s.features +
             ", got none; or use --features mfcc or --features random");
  }
  if (cmd == command::encode || cmd == command::abx)
    need(s.split == "train" || s.split == "test" || s.split == "all",
         "--split: expected train, test or all, got '" + s.split + "'");
}

// A file must be writable in `dir` (which exists): creates and removes a probe file.
// Errors: cpc::io_error "<option>: cannot write into '<dir>' (<reason>)".
void check_writable(const std::string& option, const fs::path& dir) {
  const fs::path probe = dir / (".cpc-speech-write-check." + std::to_string(::getpid()));
  {
    std::ofstream f(probe);
    if (!f) {
      const int err = errno;
      throw cpc::io_error(option + ": cannot write into '" + dir.string() + "' (" + std::strerror(err) + ")");
    }
  }
  std::error_code ec;
  fs::remove(probe, ec);
}

// Makes the folder `dir` (and its parents) unless it exists, and checks that it is writable.
// Errors: cpc::io_error "<option>: cannot create the folder '<dir>': <reason>" or
// "<option>: '<dir>' exists and is not a folder", or check_writable's.
void prepare_folder(const std::string& option, const fs::path& dir) {
  std::error_code ec;
  const auto st = fs::status(dir, ec);
  if (fs::exists(st) && !fs::is_directory(st))
    throw cpc::io_error(option + ": '" + dir.string() + "' exists and is not a folder");
  if (!fs::exists(st)) {
    fs::create_directories(dir, ec);
    if (ec)
      throw cpc::io_error(option + ": cannot create the folder '" + dir.string() + "': " + ec.message());
  }
  check_writable(option, dir);
}

// Checks that `path` names an existing regular file. Errors: cpc::io_error naming the option.
void check_input_file(const std::string& option, const fs::path& path) {
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (!fs::exists(st)) throw cpc::io_error(option + ": no such file '" + path.string() + "'");
  if (!fs::is_regular_file(st))
    throw cpc::io_error(option + ": '" + path.string() + "' is not a regular file");
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void stage(const std::string& what) {
  std::cerr << "\n== " << what << '\n';
}

// Loads the corpus; `for_probes`: warn once when it has no phone labels (the phone column is n/a).
cpc::speech_corpus load_corpus(const settings& s, bool for_probes) {
  stage("loading corpus " + s.corpus.string());
  const auto t0 = std::chrono::steady_clock::now();
  cpc::speech_corpus corpus(s.corpus, {.alignments = s.alignments,
                                       .train_split = s.train_split,
                                       .test_split = s.test_split,
                                       .num_phones = s.num_phones});
  std::cerr << corpus.size() << " utterances, " << corpus.speakers().size() << " speakers, " << std::fixed
            << std::setprecision(1) << corpus.total_seconds() / 60 << " min of audio, " << corpus.num_phones()
            << " phone classes, train/test " << corpus.indices(cpc::corpus_split::train).size() << '/'
            << corpus.indices(cpc::corpus_split::test).size() << " utterances (" << seconds_since(t0)
            << " s)\n";
  if (corpus.indices(cpc::corpus_split::train).empty())
    throw cpc::config_error("the corpus has no train split (train.txt) - see README 'Speech data'");
  if (for_probes && !corpus.has_phone_labels())
    std::cerr
        << "cpc-speech: warning: the corpus has no phone labels (no alignments.txt and no --alignments): "
           "the phone probe reads n/a; the speaker probes run\n";
  return corpus;
}

// ---------------------------------------------------------------------------------------------
// Models: the preset (compile-time) is picked by name (cpc::presets::with_audio_preset), the
// rest by the recipe.

template <class Config>
using model_t = cpc::audio_model<Config>;

template <class Config>
typename model_t<Config>::options model_options(const cpc::speech_recipe& r) {
  typename model_t<Config>::options o;
  r.apply(o);
  return o;
}

// ", bf16 convolutions" when the convolutions' products run in bf16 (--matmul-precision), else "".
std::string bf16_label() {
  return cpc::get_matmul_precision() == cpc::matmul_precision::bf16 ? ", bf16 convolutions" : "";
}

template <class Config>
std::string describe_model(const cpc::speech_recipe& r) {
  std::ostringstream os;
  os << r.model << " model: encoder 5 strided convs x " << Config::latent_channels
     << " channels (kernels 10,8,4,4,4, strides 5,4,2,2,2), GRU " << Config::context_channels
     << ", N = " << Config::negatives << " negatives; recipe: " << r.describe(Config::prediction_steps);
  if (!bf16_label().empty()) os << "; the convolutions' products in bf16 (--matmul-precision bf16, AMX)";
  return os.str();
}

// What a training run did.
struct training_run {
  std::uint64_t steps = 0;
  double seconds = 0;
};

// Trains with the library's speech path and prints what happened. `run_dir` gets the checkpoint
// (model.safetensors) and the log (training.csv).
template <class Config>
training_run train_model(model_t<Config>& model, const cpc::speech_corpus& corpus, const settings& s,
                         const cpc::speech_recipe& recipe, const fs::path& run_dir, bool resume) {
  cpc::speech_run_options run;
  run.resume = resume;
  run.prefetch = !s.no_prefetch;
  run.train.max_steps = s.steps;
  if (s.is_given("--minutes")) run.train.max_seconds = s.minutes * 60;  // check_options: > 0
  if (s.steps == 0 && !s.is_given("--minutes")) run.train.max_seconds = 12 * 60;
  run.train.csv_path = run_dir / "training.csv";
  run.train.checkpoint_path = run_dir / "model.safetensors";
  run.train.checkpoint_every = 100;
  run.train.metadata = {{"description", describe_model<Config>(recipe)}};
  run.train.comm = s.comm;
  stage("training: " + describe_model<Config>(recipe) + "; batches prepared " +
        (run.prefetch ? "ahead (prefetching)" : "in the step (--no-prefetch)"));
  const std::size_t ranks = s.comm != nullptr ? s.comm->size() : 1;
  if (ranks > 1)
    std::cerr << "data parallel: " << s.comm->describe() << " x batch " << recipe.batch << " = "
              << ranks * recipe.batch << " windows per step; rank 0 writes " << run_dir << '\n';
  const auto summary = cpc::train_speech(model, corpus, recipe, run);
  if (resume)
    std::cerr << "resumed from " << run.train.checkpoint_path << " at step "
              << summary.steps - summary.steps_run << '\n';
  if (summary.steps_run == 0) {
    std::cerr << "nothing left to train: the checkpoint " << run.train.checkpoint_path << " is at step "
              << summary.steps << " and --steps is " << s.steps
              << "; it stays there (give a larger --steps to continue)\n";
    return {summary.steps, summary.seconds};
  }
  const double per_step = summary.seconds / std::max<double>(1, static_cast<double>(summary.steps_run));
  const double wait = summary.data_seconds / std::max<double>(1, static_cast<double>(summary.steps_run));
  std::cerr << "trained " << summary.steps_run << " steps in " << std::fixed << std::setprecision(0)
            << summary.seconds << " s (" << std::setprecision(2) << per_step << " s/step; waiting for data "
            << std::setprecision(2) << 1000 * wait << " ms/step = " << std::setprecision(3)
            << 100 * wait / std::max(per_step, 1e-12) << "% of the step); final loss " << std::setprecision(3)
            << summary.last.loss << " (chance " << summary.last.log_candidates
            << ")\naccuracy per prediction step:";
  for (std::size_t k = 0; k < summary.last.accuracy.size(); ++k)
    std::cerr << " k" << k + 1 << '=' << std::setprecision(3) << summary.last.accuracy[k];
  std::cerr << " (chance " << summary.last.chance << ")\n";
  if (ranks > 1)
    std::cerr << "gradient allreduce over " << ranks << " ranks: " << std::setprecision(1)
              << 1e3 * summary.allreduce_seconds / std::max<double>(1, summary.steps_run) << " ms per step ("
              << 100 * summary.allreduce_seconds / std::max(summary.seconds, 1e-9)
              << "% of the training time, waits for slower ranks included)\n";
  if (!summary.left_chance)
    std::cerr
        << "warning: the loss never went clearly below chance - train longer (--minutes) or raise --lr\n";
  return {summary.steps, summary.seconds};
}

// ---------------------------------------------------------------------------------------------
// Probes.

struct probe_sets {
  std::vector<std::size_t> train, test;
};

probe_sets probe_utterances(const cpc::speech_corpus& corpus, const settings& s) {
  return {cpc::balanced_subset(corpus, corpus.indices(cpc::corpus_split::train), s.probe_minutes * 60),
          cpc::balanced_subset(corpus, corpus.indices(cpc::corpus_split::test), s.probe_minutes * 60 / 2)};
}

cpc::probe_settings probe_config(const settings& s) {
  cpc::probe_settings p;
  p.probe.epochs = s.probe_epochs;
  p.probe.min_updates = s.probe_updates;
  return p;
}

template <class Config>
cpc::probe_report probe_model(model_t<Config>& model, const cpc::speech_corpus& corpus,
                              const probe_sets& sets, const cpc::probe_settings& p, float gain,
                              const std::string& name, cpc::utterance_features* keep_test = nullptr) {
  stage("probing " + name + " (" + std::to_string(sets.train.size()) + " train / " +
        std::to_string(sets.test.size()) + " test utterances)");
  const auto t0 = std::chrono::steady_clock::now();
  auto train = cpc::model_features(model, corpus, sets.train, Config::window_samples, gain);
  auto test = cpc::model_features(model, corpus, sets.test, Config::window_samples, gain);
  std::cerr << "features in " << std::fixed << std::setprecision(0) << seconds_since(t0) << " s\n";
  const auto r = cpc::run_speech_probes(corpus, train, test, p);
  std::cerr << "probes done in " << seconds_since(t0) << " s\n";
  if (keep_test != nullptr) *keep_test = std::move(test);
  return r;
}

cpc::probe_report probe_mfcc(const cpc::speech_corpus& corpus, const probe_sets& sets,
                             const cpc::probe_settings& p) {
  stage("probing MFCC (13 + deltas + delta-deltas)");
  return cpc::run_speech_probes(corpus, cpc::mfcc_features(corpus, sets.train),
                                cpc::mfcc_features(corpus, sets.test), p);
}

struct table_row {
  std::string name;
  cpc::probe_report r;
  std::string paper_phone, paper_speaker;
};

std::string pct(double v) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(1) << 100 * v;
  return os.str();
}

// The phone column: a percentage, or n/a when the probe had no labelled frames.
std::string phone_pct(const cpc::probe_report& r) {
  return r.phone_labelled ? pct(r.phone_frame) : "n/a (no phone labels)";
}

// A speaker column: a percentage, or n/a when fewer than 2 speakers were probed.
std::string speaker_pct(const cpc::probe_report& r, double v) {
  return r.speakers_probed
             ? pct(v)
             : "n/a (" + std::to_string(r.speakers) + " speaker" + (r.speakers == 1 ? "" : "s") + ")";
}

void print_table(const std::vector<table_row>& rows, std::ostream& os) {
  os << "\n| features | phone (frame) | speaker (frame) | speaker (0.25 s, mean) | speaker (1.28 s, mean) | "
        "speaker (1.28 s, last) | paper: phone | paper: speaker |\n"
        "|---|---|---|---|---|---|---|---|\n";
  for (const auto& row : rows)
    os << "| " << row.name << " | " << phone_pct(row.r) << " | " << speaker_pct(row.r, row.r.speaker_frame)
       << " | " << speaker_pct(row.r, row.r.speaker_short_mean) << " | "
       << speaker_pct(row.r, row.r.speaker_window_mean) << " | "
       << speaker_pct(row.r, row.r.speaker_window_last) << " | " << row.paper_phone << " | "
       << row.paper_speaker << " |\n";
  if (rows.empty()) return;
  // The chance line: majority phone class, 1 / speakers.
  const auto& r = rows.front().r;
  const std::string spk = r.speakers_probed ? pct(1.0 / static_cast<double>(r.speakers)) : speaker_pct(r, 0);
  os << "| chance (phone: majority class; speaker: 1/" << r.speakers << ") | "
     << (r.phone_labelled ? pct(r.phone_majority) : "n/a") << " | " << spk << " | " << spk << " | " << spk
     << " | " << spk << " | | |\n";
}

void write_probe_csv(const std::vector<table_row>& rows, const fs::path& path) {
  std::ofstream f(path);
  // Empty cells: the probe did not run (no phone labels; fewer than 2 speakers).
  f << "features,phone_frame,phone_majority,speaker_frame,speaker_0.25s_mean,speaker_1.28s_mean,speaker_1."
       "28s_last\n";
  for (const auto& row : rows) {
    const auto& r = row.r;
    const auto spk = [&](double v) { return r.speakers_probed ? number(v) : std::string(); };
    f << '"' << row.name << "\"," << (r.phone_labelled ? number(r.phone_frame) : "") << ','
      << (r.phone_labelled ? number(r.phone_majority) : "") << ',' << spk(r.speaker_frame) << ','
      << spk(r.speaker_short_mean) << ',' << spk(r.speaker_window_mean) << ',' << spk(r.speaker_window_last)
      << '\n';
  }
  if (!f) throw cpc::io_error("cannot write " + path.string());
}

// Mean-pooled 1.28 s windows of `f` on their first two principal components, for the picture
// (scripts/plots/contexts_pca.gp): rows "pc1 pc2 speaker".
void write_pca(const cpc::speech_corpus& corpus, const cpc::utterance_features& f, const fs::path& path) {
  const auto windows = cpc::pooled_windows(corpus, f, 128, false);
  std::ofstream out(path);
  if (windows.y.size() >= 3) {
    const auto p = cpc::principal_components(windows.x, 2);
    for (std::size_t i = 0; i < windows.y.size(); ++i)
      out << p(i, 0) << '\t' << p(i, 1) << '\t' << windows.y[i] << '\n';
  }
  if (!out) throw cpc::io_error("cannot write " + path.string());
}

// ---------------------------------------------------------------------------------------------
// Subcommands.

template <class Config>
int run_demo(settings& s) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto corpus = load_corpus(s, true);
  s.recipe.prepare(corpus);
  const auto sets = probe_utterances(corpus, s);
  const auto p = probe_config(s);
  model_t<Config> model(model_options<Config>(s.recipe));
  std::cerr << describe_model<Config>(s.recipe) << "; " << model.parameter_count() << " parameters\n";

  cpc::utterance_features random_test, cpc_test;
  std::vector<table_row> rows;
  rows.push_back(
      {"random init" + bf16_label(),
       probe_model<Config>(model, corpus, sets, p, s.recipe.gain, "the random-init model", &random_test),
       "27.6", "1.87"});
  print_table(rows, std::cerr);
  rows.push_back({"MFCC", probe_mfcc(corpus, sets, p), "39.7", "17.6"});
  print_table(rows, std::cerr);
  const auto run = train_model<Config>(model, corpus, s, s.recipe, s.out, false);
  std::ostringstream cpc_name;
  cpc_name << "CPC (" << run.steps << " steps in " << std::fixed << std::setprecision(1) << run.seconds / 60
           << " min" << bf16_label() << ")";
  rows.push_back({cpc_name.str(),
                  probe_model<Config>(model, corpus, sets, p, s.recipe.gain, "CPC", &cpc_test), "64.6",
                  "97.4"});

  stage("results");
  std::ostringstream table;
  table << "Linear probes on frozen features, test split of " << s.corpus.string() << " ("
        << corpus.speakers().size() << " speakers, "
        << (corpus.has_phone_labels() ? std::to_string(corpus.num_phones()) + " phone classes"
                                      : "no phone labels")
        << "); accuracy in %. Paper columns: LibriSpeech, van den Oord et al. 2018, Table 1.\nCPC: "
        << describe_model<Config>(s.recipe) << ".\n";
  print_table(rows, table);
  std::cout << table.str();
  std::ofstream(s.out / "results.md") << table.str();
  write_probe_csv(rows, s.out / "probes.csv");
  write_pca(corpus, random_test, s.out / "pca_random_init.tsv");
  write_pca(corpus, cpc_test, s.out / "pca_cpc.tsv");
  std::cerr << "wrote " << (s.out / "training.csv") << ", " << (s.out / "probes.csv") << ", "
            << (s.out / "results.md") << ", " << (s.out / "model.safetensors") << ", "
            << (s.out / "pca_*.tsv") << " (pictures: bash scripts/plot-demo.sh " << s.out.string()
            << ")\ntotal time " << std::fixed << std::setprecision(1) << seconds_since(t0) / 60 << " min\n";
  return 0;
}

template <class Config>
int run_train(settings& s) {
  const auto corpus = load_corpus(s, false);
  if (!s.resume) s.recipe.prepare(corpus);  // resumed: the checkpoint's gain (check_before_work)
  model_t<Config> model(model_options<Config>(s.recipe));
  train_model<Config>(model, corpus, s, s.recipe, s.out, s.resume);
  return 0;
}

template <class Config>
int run_probe(settings& s) {
  const auto corpus = load_corpus(s, true);
  const auto sets = probe_utterances(corpus, s);
  const auto p = probe_config(s);
  std::vector<table_row> rows;
  if (s.features == "mfcc") {
    rows.push_back({"MFCC", probe_mfcc(corpus, sets, p), "39.7", "17.6"});
  } else {
    if (s.features == "random") s.recipe.prepare(corpus);  // cpc: the checkpoint's recipe and gain
    model_t<Config> model(model_options<Config>(s.recipe));
    if (s.features == "cpc") cpc::load_weights(s.checkpoint, model);
    rows.push_back({s.features == "cpc" ? "CPC (" + s.checkpoint.string() + ")" : "random init",
                    probe_model<Config>(model, corpus, sets, p, s.recipe.gain, s.features),
                    s.features == "cpc" ? "64.6" : "27.6", s.features == "cpc" ? "97.4" : "1.87"});
  }
  print_table(rows, std::cout);
  return 0;
}

// The utterances of --split (train, test or all). Errors: cpc::config_error for an empty split.
std::vector<std::size_t> split_utterances(const cpc::speech_corpus& corpus, const settings& s) {
  const auto split = s.split == "train"  ? cpc::corpus_split::train
                     : s.split == "test" ? cpc::corpus_split::test
                                         : cpc::corpus_split::all;  // check_options: one of the three
  if (corpus.indices(split).empty())
    throw cpc::config_error("--split " + s.split + ": the corpus has no " + s.split +
                            " utterances (see --test-split / --train-split, README 'Speech data')");
  return corpus.indices(split);
}

template <class Config>
int run_encode(settings& s) {
  const auto corpus = load_corpus(s, false);
  model_t<Config> model(model_options<Config>(s.recipe));
  cpc::load_weights(s.checkpoint, model);
  const auto f =
      cpc::model_features(model, corpus, split_utterances(corpus, s), Config::window_samples, s.recipe.gain);
  cpc::safetensors_writer w;
  for (std::size_t i = 0; i < f.rows.size(); ++i) w.add("context." + corpus[f.utterances[i]].id, f.rows[i]);
  w.set_metadata("layout",
                 "context.<utterance id>: [frames, context] float32, frame f = samples [160 f, 160 f + 160)");
  w.set_metadata("checkpoint", s.checkpoint.string());
  w.save(s.output);
  std::cerr << "wrote " << f.rows.size() << " utterances' contexts to " << s.output << '\n';
  return 0;
}

// encode for a converted CPC_audio checkpoint: each utterance streamed whole.
int run_encode_cpc_audio(const settings& s) {
  const auto corpus = load_corpus(s, false);
  auto model = cpc_speech::load_cpc_audio(s.checkpoint, true);
  const auto f = cpc::streamed_features(*model, corpus, split_utterances(corpus, s), s.recipe.gain);
  cpc::safetensors_writer w;
  for (std::size_t i = 0; i < f.rows.size(); ++i) w.add("context." + corpus[f.utterances[i]].id, f.rows[i]);
  w.set_metadata("layout",
                 "context.<utterance id>: [frames, context] float32, frame f = samples [160 f, 160 f + "
                 "160), the whole utterance streamed from a zero state");
  w.set_metadata("checkpoint", s.checkpoint.string());
  w.save(s.output);
  std::cerr << "wrote " << f.rows.size() << " utterances' contexts to " << s.output << '\n';
  return 0;
}

// abx: the ABX error of random-init, MFCC and/or CPC features over the triphones of --split.
// `Config`: the preset of a cpc-speech model (any preset for a converted CPC_audio checkpoint).
template <class Config>
int run_abx(const settings& s) {
  const auto corpus = load_corpus(s, false);
  const auto utts = split_utterances(corpus, s);
  const cpc::abx_options opt{.max_group_size = s.abx_group, .max_x_across = s.abx_x, .seed = s.recipe.seed};
  const bool all = s.features == "all", converted = s.recipe.model == cpc::cpc_audio_model_name;
  std::vector<cpc_speech::abx_row> rows;
  const auto row = [&](const std::string& name, const cpc::utterance_features& f) {
    stage("ABX of " + name + " (" + std::to_string(f.utterances.size()) + " utterances)");
    rows.push_back({name, cpc_speech::corpus_abx(corpus, f, opt)});
    cpc_speech::print_abx_table(rows, std::cerr);
  };
  if (all || s.features == "random") {
    if (converted) {
      auto m = cpc_speech::load_cpc_audio(s.checkpoint, false, s.recipe.seed);
      row("random init (CPC_audio architecture)", cpc::streamed_features(*m, corpus, utts, 1.0f));
    } else {
      cpc::speech_recipe r = s.recipe;  // the checkpoint's gain stays for its own row
      r.prepare(corpus);
      model_t<Config> model(model_options<Config>(r));
      row("random init", cpc::model_features(model, corpus, utts, Config::window_samples, r.gain));
    }
  }
  if (all || s.features == "mfcc") row("MFCC", cpc::mfcc_features(corpus, utts));
  if (all || s.features == "cpc") {
    const std::string name = (converted ? "CPC_audio (" : "CPC (") + s.checkpoint.string() + ")";
    if (converted) {
      auto m = cpc_speech::load_cpc_audio(s.checkpoint, true);
      row(name, cpc::streamed_features(*m, corpus, utts, s.recipe.gain));
    } else {
      model_t<Config> model(model_options<Config>(s.recipe));
      cpc::load_weights(s.checkpoint, model);
      row(name, cpc::model_features(model, corpus, utts, Config::window_samples, s.recipe.gain));
    }
  }
  stage("results");
  std::cout
      << "ABX error rates on the " << s.split << " split of " << s.corpus.string()
      << " (triphones, angular distance, DTW; within / across speakers; lower is better, 50 = chance):\n";
  cpc_speech::print_abx_table(rows, std::cout);
  return 0;
}

// The paper's Table 2: phone accuracy for each negative-sampling source (K = 12) and for each K
// (mixed-speaker negatives), every row trained from the same seed for the same --steps. Each row
// trains in OUT/<row>/ and leaves OUT/<row>/phone.txt; a row whose phone.txt exists is not run
// again, so an interrupted ablation continues where it stopped.
template <class Config>
int run_ablation(settings& s) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto corpus = load_corpus(s, true);
  if (!corpus.has_phone_labels())
    throw cpc::config_error("ablation: the corpus has no phone labels; Table 2 is phone accuracy");
  s.recipe.prepare(corpus);
  const auto sets = probe_utterances(corpus, s);
  auto p = probe_config(s);
  p.speakers = false;  // Table 2 is phone accuracy
  struct row {
    std::string dir, label, paper;
    cpc::negative_policy negatives;
    std::size_t steps_ahead;
    double phone = 0;
  };
  using np = cpc::negative_policy;
  const std::size_t k = Config::prediction_steps;
  std::vector<row> rows{
      {"negatives-batch", "mixed speaker", "64.6", np::batch, k},
      {"negatives-same-speaker", "same speaker", "65.5", np::same_speaker, k},
      {"negatives-other-sequences", "mixed speaker, excluding the current sequence", "57.3",
       np::other_sequences, k},
      {"negatives-same-speaker-other-sequences", "same speaker, excluding the current sequence", "64.6",
       np::same_speaker_other_sequences, k},
      {"negatives-same-sequence", "current sequence only", "65.2", np::same_sequence, k},
      {"steps-2", "K = 2", "28.5", np::batch, 2},
      {"steps-4", "K = 4", "57.6", np::batch, 4},
      {"steps-8", "K = 8", "63.6", np::batch, 8},
      {"steps-16", "K = 16", "63.8", np::batch, 16}};
  for (auto& r : rows) {
    const fs::path dir = s.out / r.dir, done = dir / "phone.txt";
    if (std::ifstream in(done); in >> r.phone) {
      std::cerr << "\n== " << r.label << ": " << pct(r.phone) << "% (from " << done << ")\n";
      continue;
    }
    fs::create_directories(dir);
    cpc::speech_recipe recipe = s.recipe;
    recipe.negatives = r.negatives;
    recipe.steps_ahead = r.steps_ahead;
    model_t<Config> model(model_options<Config>(recipe));
    train_model<Config>(model, corpus, s, recipe, dir, false);
    r.phone = probe_model<Config>(model, corpus, sets, p, recipe.gain, r.label).phone_frame;
    std::ofstream(done) << r.phone << '\n';
  }
  const auto mfcc = probe_mfcc(corpus, sets, p);
  std::ostringstream table;
  table << "Phone accuracy (%, linear probe per 10 ms frame, test split of " << s.corpus.string()
        << ") after " << s.steps << " steps per row, seed " << s.recipe.seed
        << "; paper: LibriSpeech, van den Oord et al. 2018, "
        << "Table 2. Every row: " << describe_model<Config>(s.recipe) << ", but for its negatives or K.\n\n"
        << "| negative samples (K = " << k << ") | policy | phone | paper |\n|---|---|---|---|\n";
  for (std::size_t i = 0; i < 5; ++i)
    table << "| " << rows[i].label << " | " << cpc::to_string(rows[i].negatives) << " | "
          << pct(rows[i].phone) << " | " << rows[i].paper << " |\n";
  table << "\n| predicted steps (mixed speaker) | phone | paper |\n|---|---|---|\n";
  for (std::size_t kk : {2, 4, 8, 12, 16}) {
    const auto& r = kk == k ? rows[0] : *std::find_if(rows.begin() + 5, rows.end(), [&](const row& x) {
      return x.steps_ahead == kk;
    });
    table << "| K = " << kk << " | " << pct(r.phone) << " | " << (kk == k ? "64.6" : r.paper) << " |\n";
  }
  table << "\nFor reference on this corpus: MFCC " << pct(mfcc.phone_frame) << ", chance (majority class) "
        << pct(mfcc.phone_majority) << ".\n";
  std::cout << table.str();
  std::ofstream(s.out / "ablation.md") << table.str();
  std::ofstream csv(s.out / "ablation.csv");
  csv << "row,negatives,steps_ahead,steps,phone_frame\n";
  for (const auto& r : rows)
    csv << r.dir << ',' << cpc::to_string(r.negatives) << ',' << r.steps_ahead << ',' << s.steps << ','
        << r.phone << '\n';
  std::cerr << "wrote " << (s.out / "ablation.md") << ", " << (s.out / "ablation.csv") << "\ntotal time "
            << std::fixed << std::setprecision(1) << seconds_since(t0) / 60 << " min\n";
  return 0;
}

// The error type for the one-line message.
const char* error_kind(const std::exception& e) {
  if (dynamic_cast<const cpc::config_error*>(&e)) return "config_error";
  if (dynamic_cast<const cpc::io_error*>(&e)) return "io_error";
  if (dynamic_cast<const cpc::numeric_error*>(&e)) return "numeric_error";
  if (dynamic_cast<const cpc::shape_error*>(&e)) return "shape_error";
  if (dynamic_cast<const cpc::communication_error*>(&e)) return "communication_error";
  if (dynamic_cast<const cpc::error*>(&e)) return "error";
  if (dynamic_cast<const std::filesystem::filesystem_error*>(&e)) return "filesystem_error";
  return "unexpected error";
}

// Prints "cpc-speech: <type>: <message>" on one line (newlines in the message become spaces).
void report(const char* kind, std::string message) {
  std::replace(message.begin(), message.end(), '\n', ' ');
  std::cerr.clear();  // ranks other than 0 print nothing else
  std::cerr << "\ncpc-speech: " << rank_label << kind << ": " << message << '\n';
}

// Runs `f` and turns every exception into the one-line report and `status`.
template <class F>
int guarded(int status, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    report(error_kind(e), e.what());
  } catch (...) {
    report("unexpected error", "an exception that is not a std::exception");
  }
  return status;
}

// The recipe options a checkpoint fixes, by option name (= metadata key, speech_recipe::metadata).
// Not --batch: it is the batch of each rank, which a resumed run may change with the number of
// ranks (mpirun -np N) to keep N x --batch windows per step.
const std::vector<std::string>& recipe_options() {
  static const std::vector<std::string> names{"--model",
                                              "--steps-ahead",
                                              "--negatives",
                                              "--speakers-per-batch",
                                              "--short-utterances",
                                              "--normalize",
                                              "--lr",
                                              "--warmup",
                                              "--clip",
                                              "--head-std",
                                              "--seed"};
  return names;
}

// Replaces s.recipe by the checkpoint's (but for a given --batch), refusing recipe options given
// with other values. Errors: cpc::config_error "--<option>: the checkpoint '<path>' ... got
// --<option> <value>", or speech_recipe::check's for a --batch the checkpoint's recipe cannot use.
void take_recipe_from(settings& s, const fs::path& ckpt, const cpc::safetensors_metadata& metadata) {
  cpc::speech_recipe saved = cpc::speech_recipe::from_metadata(metadata, ckpt.string());
  const auto mine = s.recipe.metadata(), theirs = saved.metadata();
  for (const auto& option : recipe_options()) {
    const std::string key = option.substr(2);
    if (!s.is_given(option) || mine.at(key) == theirs.at(key)) continue;
    if (key == "model")
      throw cpc::config_error("--model: the checkpoint '" + ckpt.string() + "' holds a '" + saved.model +
                              "' model, got --model " + s.recipe.model + " (leave out --model)");
    throw cpc::config_error(option + ": the checkpoint '" + ckpt.string() + "' was trained with " + option +
                            " " + theirs.at(key) + ", got " + option + " " + mine.at(key) + " (leave out " +
                            option + " to continue its recipe)");
  }
  if (s.is_given("--batch")) {
    saved.batch = s.recipe.batch;
    saved.check();
  }
  s.recipe = saved;
}

// For a CPC_audio model converted by scripts/convert_cpc_audio.py: sets the model name and gain
// from its metadata. Errors: cpc::config_error for a command other than encode and abx, or a
// --model given; cpc::io_error for metadata that does not describe a converted model.
void take_cpc_audio_model(settings& s, const fs::path& ckpt, command cmd,
                          const cpc::safetensors_metadata& m) {
  if (cmd != command::encode && cmd != command::abx)
    throw cpc::config_error("--checkpoint: '" + ckpt.string() +
                            "' holds a converted CPC_audio model; cpc-speech encodes it (encode) and "
                            "evaluates it (abx)");
  if (s.is_given("--model"))
    throw cpc::config_error("--model: the checkpoint '" + ckpt.string() + "' holds a '" +
                            cpc::cpc_audio_model_name + "' model, got --model " + s.recipe.model +
                            " (leave out --model)");
  (void)cpc::cpc_audio_options<cpc_speech::cpc_audio_model_t::options>(m,
                                                                       ckpt.string());  // describes a model
  s.recipe.model = cpc::cpc_audio_model_name;
  const auto g = m.find("gain");
  float gain = 0;
  if (g == m.end() || !(std::istringstream(g->second) >> gain) || !(gain > 0 && gain < 1e30f))
    throw cpc::io_error(ckpt.string() + ": metadata 'gain': expected a number > 0, got '" +
                        (g == m.end() ? std::string() : g->second) + "'");
  s.recipe.gain = gain;  // the converter writes 1: CPC_audio reads raw samples
}

// Everything checked before any work: option values, then the files and folders they name.
// Takes the recipe from the checkpoint (probe, encode, train --resume). Throws the typed errors of
// check_options, take_recipe_from, check_input_file and prepare_folder.
void check_before_work(settings& s, command cmd) {
  check_options(s, cmd);
  // Corpus files: a relative path is taken from the current folder when it exists there, else from
  // the corpus root (the loader's rule); an empty path turns the file off.
  for (auto [option, file] :
       {std::pair{"--alignments", &s.alignments}, std::pair{"--train-split", &s.train_split},
        std::pair{"--test-split", &s.test_split}}) {
    if (!*file || (*file)->empty()) continue;
    const fs::path given = **file;
    std::error_code ec;
    if (given.is_relative() && fs::is_regular_file(given, ec))
      *file = fs::absolute(given);
    else if (!fs::is_regular_file(given.is_absolute() ? given : s.corpus / given, ec))
      throw cpc::io_error(std::string(option) + ": no such file '" + given.string() + "'" +
                          (given.is_relative() ? " (looked in the current folder and in --corpus)" : ""));
  }
  const fs::path resume_from = s.out / "model.safetensors";
  if (cmd == command::train && s.resume) {
    std::error_code ec;
    if (!fs::is_regular_file(resume_from, ec))
      throw cpc::config_error("--resume: expected a checkpoint to continue from at '" + resume_from.string() +
                              "' (--out), found none; leave out --resume to start from step 1");
  }
  const fs::path ckpt = cmd == command::train && s.resume ? resume_from : s.checkpoint;
  if (!ckpt.empty()) {
    check_input_file(cmd == command::train ? "--resume" : "--checkpoint", ckpt);
    const auto metadata = cpc::load_safetensors(ckpt).metadata;
    if (const auto m = metadata.find("model"); m != metadata.end() && m->second == cpc::cpc_audio_model_name)
      take_cpc_audio_model(s, ckpt, cmd, metadata);
    else
      take_recipe_from(s, ckpt, metadata);
  }
  if (cmd == command::demo || cmd == command::train || cmd == command::ablation)
    prepare_folder("--out", s.out);
  if (cmd == command::encode) {
    std::error_code ec;
    if (fs::is_directory(s.output, ec))
      throw cpc::io_error("--out: '" + s.output.string() +
                          "' is a folder; expected a .safetensors file name");
    prepare_folder("--out", s.output.has_parent_path() ? s.output.parent_path() : fs::path("."));
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cpc-speech: Contrastive Predictive Coding on speech, with the paper's linear probes"};
  app.footer(
      "Every option is checked before any work. Errors print one line 'cpc-speech: <type>: <message>'.\n"
      "Exit status: 0 done, 1 the run failed (the message names the file or step), 2 an option was\n"
      "refused before any work (nothing was read or written).");
  app.require_subcommand(1);
  settings s;
  const CLI::Validator whole_number = cpc_examples::whole_number();
  cpc::speech_recipe& r = s.recipe;
  const auto corpus_opt = [&](CLI::App* c, bool labels) {
    c->add_option("--corpus", s.corpus, "corpus root (LibriSpeech/CPC layout; see README)")
        ->required()
        ->check(CLI::ExistingDirectory);
    c->add_option("--threads", s.threads, "threads (0 = all cores)")
        ->check(whole_number)
        ->capture_default_str();
    cpc_examples::add_matmul_precision_option(c, s.matmul_precision);
    if (labels) {
      c->add_option(
          "--alignments", s.alignments,
          "phone alignment file (default CORPUS/alignments.txt; relative: to the current folder or CORPUS)");
      c->add_option("--num-phones", s.num_phones,
                    "phone classes when there is no phones.txt (CPC LibriSpeech: 41)")
          ->check(whole_number);
    }
    c->add_option(
        "--train-split", s.train_split,
        "train utterance ids (default CORPUS/train.txt; relative: to the current folder or CORPUS)");
    c->add_option("--test-split", s.test_split,
                  "test utterance ids (default CORPUS/test.txt; relative: to the current folder or CORPUS)");
  };
  const auto model_opts = [&](CLI::App* c, const std::string& note) {
    c->add_option("--model", r.model, "model size: paper (512 channels) or small (256 channels)" + note)
        ->capture_default_str();
    c->add_option("--seed", r.seed, "seed of weights, negatives and windows")
        ->check(whole_number)
        ->capture_default_str();
  };
  const auto train_opts = [&](CLI::App* c) {
    c->add_option("--out", s.out,
                  "output folder (checkpoint, CSV logs, tables, picture data); made if missing")
        ->capture_default_str();
    c->add_option("--minutes", s.minutes,
                  "training time budget in minutes, > 0 (default 12 when --steps is not given)");
    c->add_option("--steps", s.steps, "total training steps (optimiser updates), >= 1")->check(whole_number);
    c->add_option("--batch", r.batch, "windows of 1.28 s per batch, >= 1")
        ->check(whole_number)
        ->capture_default_str();
    c->add_option("--speakers-per-batch", r.speakers_per_batch,
                  "speaker-balanced batches: S speakers x batch/S windows each (0 = windows drawn uniformly)")
        ->check(whole_number)
        ->capture_default_str();
    c->add_option(
         "--negatives", s.negatives,
         "InfoNCE negatives from: batch (mixed speaker), same-sequence, other-sequences, same-speaker, "
         "same-speaker-other-sequences")
        ->capture_default_str();
    c->add_option("--steps-ahead", r.steps_ahead, "K, the predicted steps (0 = the model's, 12)")
        ->check(whole_number)
        ->capture_default_str();
    c->add_option("--short-utterances", s.short_utterances,
                  "utterances shorter than a window: skip, or pad (zero-padded, masked)")
        ->capture_default_str();
    c->add_option("--normalize", s.normalize,
                  "input normalisation: unit-rms (one gain from the train split) or none")
        ->capture_default_str();
    c->add_option("--lr", r.learning_rate, "Adam learning rate, > 0 (paper: 2e-4)")->capture_default_str();
    c->add_option("--warmup", r.warmup, "linear learning-rate warm-up steps")
        ->check(whole_number)
        ->capture_default_str();
    c->add_option("--clip", r.clip, "gradient-norm clipping (0 = off)")->capture_default_str();
    c->add_option("--head-std", r.head_std,
                  "std of the prediction heads' normal init (0 = the preset's 1/context)");
    c->add_flag("--no-prefetch", s.no_prefetch,
                "draw each batch inside the training step instead of preparing it ahead on a oneTBB task");
  };
  const auto probe_opts = [&](CLI::App* c) {
    c->add_option("--probe-minutes", s.probe_minutes,
                  "minutes of train audio for the probes (test: half; 0 = all)")
        ->capture_default_str();
    c->add_option("--probe-epochs", s.probe_epochs, "probe training epochs, >= 1 (at least)")
        ->check(whole_number)
        ->capture_default_str();
    c->add_option("--probe-updates", s.probe_updates, "probe Adam updates (at least; small sets converge)")
        ->check(whole_number)
        ->capture_default_str();
  };
  auto* demo = app.add_subcommand("demo", "train, then probe random init, MFCC and CPC; print the table");
  corpus_opt(demo, true);
  model_opts(demo, "");
  train_opts(demo);
  probe_opts(demo);
  auto* train = app.add_subcommand(
      "train", "train a CPC model (on N processes or machines: mpirun -np N cpc-speech train ...)");
  corpus_opt(train, false);
  model_opts(train, " (--resume: the checkpoint's)");
  train_opts(train);
  train->add_flag(
      "--resume", s.resume,
      "continue from OUT/model.safetensors (which must exist) with its recipe (--batch may change)");
  train
      ->add_option("--dist-timeout", s.dist_timeout,
                   "under mpirun: seconds a rank waits for the others (a step, a checkpoint write) before "
                   "ending the job, > 0")
      ->capture_default_str();
  // Appended to the exit-status footer that the subcommand inherits from `app`.
#ifdef CPC_WITH_MPI
  const char* mpi_build = "(this build has MPI): mpirun -np N cpc-speech train ... runs N ranks;";
#else
  const char* mpi_build =
      "(needs a build with -DCPC_WITH_MPI=ON): mpirun -np N cpc-speech train ... runs N ranks;";
#endif
  train->footer(
      train->get_footer() + "\n\nSeveral processes or machines " + mpi_build +
      "\neach draws --batch windows of its own per step, the gradients are averaged over the ranks and "
      "every\nrank takes the same Adam step (N x --batch windows per step). Rank 0 writes --out "
      "(checkpoint, CSV,\nprogress); --resume works with the same or another N. A rank that dies or "
      "hangs ends the job within\n--dist-timeout seconds, the last checkpoint intact. README \"Training "
      "on several machines\".");
  auto* probe = app.add_subcommand("probe", "linear probes on frozen features");
  corpus_opt(probe, true);
  model_opts(probe, " (--features cpc: the checkpoint's)");
  probe_opts(probe);
  probe->add_option("--checkpoint", s.checkpoint, "model checkpoint (needed by --features cpc)");
  probe->add_option("--features", s.features, "cpc, mfcc or random")->capture_default_str();
  auto* encode = app.add_subcommand(
      "encode",
      "write the contexts c_t of a split's utterances to a safetensors file (model: the checkpoint's)");
  corpus_opt(encode, false);
  encode->add_option("--checkpoint", s.checkpoint, "model checkpoint")->required();
  encode->add_option("--out,--output", s.output, "output .safetensors file (its folder is made if missing)")
      ->required();
  encode->add_option("--split", s.split, "train, test or all")->capture_default_str();
  auto* abx = app.add_subcommand(
      "abx", "ABX phone discriminability (triphones, within and across speakers) of frozen features");
  corpus_opt(abx, true);
  model_opts(abx, " (--checkpoint: the checkpoint's)");
  abx->add_option("--checkpoint", s.checkpoint,
                  "model checkpoint (cpc-speech's or a converted CPC_audio one; --features cpc or all)");
  abx->add_option("--features", s.features, "cpc, mfcc, random or all (random init, MFCC and the checkpoint)")
      ->capture_default_str();
  abx->add_option("--split", s.split, "utterances to evaluate: train, test or all")->capture_default_str();
  abx->add_option("--max-group", s.abx_group, "items drawn per (context, speaker, phone) group (0 = all)")
      ->check(whole_number)
      ->capture_default_str();
  abx->add_option("--max-x-across", s.abx_x, "X speakers drawn per cell across speakers (0 = all)")
      ->check(whole_number)
      ->capture_default_str();
  auto* ablation =
      app.add_subcommand("ablation",
                         "the paper's Table 2: phone accuracy for 5 negative-sampling sources and K = 2, 4, "
                         "8, 12, 16, each trained "
                         "--steps steps from --seed (rows already in OUT/<row>/phone.txt are kept)");
  corpus_opt(ablation, true);
  model_opts(ablation, "");
  train_opts(ablation);
  probe_opts(ablation);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    report("config_error", std::string(e.what()) + " (--help lists the options)");
    return exit_refused;
  }
  const command cmd = demo->parsed()       ? command::demo
                      : train->parsed()    ? command::train
                      : probe->parsed()    ? command::probe
                      : abx->parsed()      ? command::abx
                      : ablation->parsed() ? command::ablation
                                           : command::encode;
  CLI::App* sub = app.get_subcommands().front();
  for (const CLI::Option* o : sub->get_options())
    if (o->count() > 0) s.given.push_back(o->get_name());
  // train and encode use no phone labels: do not read them (an empty path turns the file off).
  if (cmd == command::train || cmd == command::encode) s.alignments = fs::path();
  cpc::warn_if_cpu_features_unused();
#ifdef CPC_WITH_MPI
  // Under mpirun: MPI for the life of main; with N > 1 ranks only `train` runs, rank 0 alone
  // prints, and a failing rank ends the whole job (finish: MPI_Abort) after its error line.
  std::optional<cpc::mpi_environment> mpi;
  std::optional<cpc::mpi_communicator> world;
  if (cpc::mpi_environment::launched()) {
    if (const int rc = guarded(exit_failed, [&] {
          mpi.emplace(&argc, &argv);
          return 0;
        }))
      return rc;
    if (mpi->size() > 1) {
      rank_label = "rank " + std::to_string(mpi->rank()) + " of " + std::to_string(mpi->size()) + ": ";
      if (cmd != command::train) {
        report("config_error", "only 'cpc-speech train' runs on several processes (mpirun -np " +
                                   std::to_string(mpi->size()) +
                                   "); run demo, probe, encode, abx and ablation as one process");
        return mpi->finish(exit_refused);
      }
      if (mpi->rank() != 0) {
        std::cerr.setstate(std::ios::badbit);
        std::cout.setstate(std::ios::badbit);
      }
    }
  }
  const auto finish = [&](int rc) { return mpi ? mpi->finish(rc) : rc; };
#else
  const auto finish = [](int rc) { return rc; };
#endif
  if (const int rc = guarded(exit_refused, [&] {
        check_before_work(s, cmd);
        return 0;
      }))
    return finish(rc);
#ifdef CPC_WITH_MPI
  if (mpi && mpi->size() > 1) {
    if (const int rc = guarded(exit_failed, [&] {
          world.emplace(
              MPI_COMM_WORLD,
              cpc::mpi_options{.timeout_seconds = s.dist_timeout,
                               .timeout_hint = "--dist-timeout; the checkpoint in " + s.out.string() +
                                               " is the last one written, intact"});
          return 0;
        }))
      return finish(rc);
    s.comm = &*world;
    cpc::mpi_environment::on_termination(
        "\ncpc-speech: " + rank_label +
        "ended by a signal from mpirun: another rank failed or was killed (its message is above), or the job "
        "was interrupted; the checkpoint in " +
        s.out.string() + " is the last one written, intact\n");
  }
#endif
  return finish(guarded(exit_failed, [&] {
    if (s.threads > 0) cpc::set_num_threads(s.threads);
    if (s.recipe.model == cpc::cpc_audio_model_name)  // a converted checkpoint: encode or abx
      return cmd == command::encode ? run_encode_cpc_audio(s) : run_abx<cpc::presets::audio_paper>(s);
    return cpc::presets::with_audio_preset(
        s.recipe.model,
        [&]<class C>(C) {
          switch (cmd) {
            case command::demo:
              return run_demo<C>(s);
            case command::train:
              return run_train<C>(s);
            case command::probe:
              return run_probe<C>(s);
            case command::encode:
              return run_encode<C>(s);
            case command::abx:
              return run_abx<C>(s);
            case command::ablation:
              return run_ablation<C>(s);
          }
          return 0;
        },
        "--model");
  }));
}
