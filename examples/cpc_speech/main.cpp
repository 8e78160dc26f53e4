// cpc-speech: trains CPC on a speech corpus (LibriSpeech / CPC layout, or the corpus made by
// scripts/make-corpus.sh) and evaluates it with the paper's linear probes against MFCC and a
// randomly initialised encoder (van den Oord et al. 2018, section 3.1, Table 1).
//
//   cpc-speech demo   --corpus DIR --out DIR [--minutes 12]    everything below, then a table
//   cpc-speech train  --corpus DIR --out DIR [--minutes M | --steps N] [--resume]
//   cpc-speech probe  --corpus DIR (--checkpoint FILE | --features mfcc | --features random)
//   cpc-speech encode --corpus DIR --checkpoint FILE --out FILE.safetensors [--split test]
//
// Every option is checked before any work (no corpus is loaded and no folder is made for a bad
// one); every error ends the program with one line "cpc-speech: <error type>: <message>" and
// exit status 2 (an option was refused before any work) or 1 (the run failed).
#include <CLI/CLI.hpp>
#include <Eigen/Eigenvalues>

#include <cpc/audio.hpp>
#include <cpc/cpc.hpp>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
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

struct settings {
  fs::path corpus;
  fs::path out = "runs/cpc-speech";
  std::string model = "paper";  // paper | small
  double minutes = 0;
  std::uint64_t steps = 0;
  std::size_t batch = 8;
  double lr = 2e-4;
  std::uint64_t warmup = 100;
  double head_std = 0;  // 0: the preset's (1 / context channels)
  double clip = 0;
  std::uint64_t seed = 1;
  std::size_t threads = 0;
  bool resume = false;
  double probe_minutes = 12;  // minutes of audio per split for the probes (0 = all)
  std::size_t probe_epochs = 20;
  fs::path checkpoint;
  std::string features = "cpc";  // cpc | mfcc | random
  std::string split = "test";
  fs::path output;
  // Corpus files other than the defaults (e.g. LibriSpeech with the CPC paper's label files).
  std::optional<fs::path> alignments, train_split, test_split;
  std::size_t num_phones = 0;
  bool minutes_given = false, steps_given = false, model_given = false;
};

// Exit statuses (README "Bad input", `--help`).
constexpr int exit_failed = 1;   // the run failed (a file, a step); the message names it
constexpr int exit_refused = 2;  // an option was refused before any work

enum class command { demo, train, probe, encode };

std::string number(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// Refuses option values outside their documented range, before anything is read or written.
// Errors: cpc::config_error "<option>: expected <what is accepted>, got <value>".
void check_options(const settings& s, command cmd) {
  const auto need = [](bool ok, const std::string& what) {
    if (!ok) throw cpc::config_error(what);
  };
  const bool training = cmd == command::demo || cmd == command::train;
  const bool probing = cmd == command::demo || cmd == command::probe;
  if (cmd != command::encode)
    need(s.model == "paper" || s.model == "small", "--model: expected paper or small, got '" + s.model + "'");
  if (training) {
    need(s.batch >= 1, "--batch: expected at least 1 window per step, got 0");
    need(!s.minutes_given || (std::isfinite(s.minutes) && s.minutes > 0),
         "--minutes: expected a finite time budget > 0 minutes, got " + number(s.minutes));
    need(!s.steps_given || s.steps >= 1, "--steps: expected at least 1 step, got 0");
    need(std::isfinite(s.lr) && s.lr > 0, "--lr: expected a learning rate > 0, got " + number(s.lr));
    need(std::isfinite(s.clip) && s.clip >= 0,
         "--clip: expected a gradient-norm bound > 0, or 0 for no clipping, got " + number(s.clip));
    need(std::isfinite(s.head_std) && s.head_std >= 0,
         "--head-std: expected a standard deviation > 0, or 0 for the preset's, got " + number(s.head_std));
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
  if (cmd == command::encode)
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

// Whether any frame of the corpus has a phone label (an alignment file with at least one label >= 0).
bool has_phone_labels(const cpc::speech_corpus& corpus) {
  return corpus.has_alignments() && corpus.num_phones() > 0 &&
         std::any_of(corpus.utterances().begin(), corpus.utterances().end(), [](const cpc::utterance& u) {
           return std::any_of(u.labels.begin(), u.labels.end(), [](std::int32_t l) { return l >= 0; });
         });
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
  if (for_probes && !has_phone_labels(corpus))
    std::cerr
        << "cpc-speech: warning: the corpus has no phone labels (no alignments.txt and no --alignments): "
           "the phone probe reads n/a; the speaker probes run\n";
  return corpus;
}

// A fixed input gain that brings the train split to unit RMS: causal (no per-window statistics)
// and identical for training and encoding. Saved in the checkpoint.
float input_gain(const cpc::speech_corpus& corpus) {
  double sum = 0, n = 0;
  for (std::size_t u : corpus.indices(cpc::corpus_split::train)) {
    for (float v : corpus[u].samples) sum += static_cast<double>(v) * v;
    n += static_cast<double>(corpus[u].samples.size());
  }
  const double rms = std::sqrt(sum / std::max(n, 1.0));
  return rms > 0 ? static_cast<float>(1.0 / rms) : 1.0f;
}

// ---------------------------------------------------------------------------------------------
// Models. The configuration is compile-time; the command line picks one of two.

template <class Config>
using model_t = cpc::audio_model<Config>;

template <class Config>
typename model_t<Config>::options model_options(const settings& s) {
  typename model_t<Config>::options o;
  o.seed = s.seed;
  // The preset's heads are small normal (std 1 / context channels; see cpc/model/presets.hpp).
  if (s.head_std > 0) o.loss.init_scale = s.head_std;
  return o;
}

template <class Config>
std::string describe() {
  std::ostringstream os;
  os << "encoder 5 strided convs x " << Config::latent_channels
     << " channels (kernels 10,8,4,4,4, strides 5,4,2,2,2), "
     << "GRU " << Config::context_channels << ", K = " << Config::prediction_steps
     << ", N = " << Config::negatives << " negatives from the batch";
  return os.str();
}

// Everything `train` needs besides the model: the sampler over the train split and the gain.
struct training_run {
  std::uint64_t steps = 0;
  double seconds = 0;
  bool left_chance = false;
  cpc::info_nce_result last;
};

template <class Config>
training_run train_model(model_t<Config>& model, const cpc::speech_corpus& corpus, const settings& s,
                         float gain) {
  fs::create_directories(s.out);
  cpc::window_sampler_options so;
  so.window = Config::window_samples;
  so.batch_size = s.batch;
  so.seed = s.seed + 1;
  cpc::window_sampler sampler(corpus, so, corpus.indices(cpc::corpus_split::train));
  if (sampler.skipped_short() > 0)
    std::cerr << sampler.skipped_short()
              << " train utterances are shorter than a window and are not used for training\n";
  cpc::adam<float> opt(model.parameters(), {.learning_rate = s.lr});
  const fs::path ckpt = s.out / "model.safetensors";
  if (s.resume) {  // main() checked that the checkpoint exists
    cpc::load_checkpoint(ckpt, model, opt, {{"data", &sampler.generator()}});
    std::cerr << "resumed from " << ckpt << " at step " << opt.steps() << '\n';
  }
  cpc::window_batch wb;
  auto next = [&](cpc::training_batch<float>& b) {
    sampler.sample(wb);
    cpc::ensure_shape(b.audio, wb.audio.shape());
    std::transform(wb.audio.begin(), wb.audio.end(), b.audio.begin(), [gain](float v) { return gain * v; });
  };
  cpc::train_options t;
  t.max_steps = s.steps > 0 ? opt.steps() * 0 + s.steps : 0;
  if (s.minutes_given) t.max_seconds = s.minutes * 60;  // check_options: > 0
  if (t.max_steps == 0 && !s.minutes_given) t.max_seconds = 12 * 60;
  t.clip_norm = s.clip;
  t.csv_path = s.out / "training.csv";
  t.checkpoint_path = ckpt;
  t.checkpoint_every = 100;
  t.generators = {{"data", &sampler.generator()}};
  t.metadata = {{"model", s.model}, {"gain", std::to_string(gain)}, {"description", describe<Config>()}};
  stage("training: " + describe<Config>() + "; batch " + std::to_string(s.batch) + ", Adam lr " +
        std::to_string(s.lr) + " with " + std::to_string(s.warmup) + " warm-up steps");
  const auto summary = cpc::train(model, opt, cpc::linear_warmup{s.lr, s.warmup}, next, t);
  std::cerr << "trained " << summary.steps_run << " steps in " << std::fixed << std::setprecision(0)
            << summary.seconds << " s (" << std::setprecision(2)
            << summary.seconds / std::max<double>(1, summary.steps_run) << " s/step); final loss "
            << std::setprecision(3) << summary.last.loss << " (chance " << summary.last.log_candidates
            << ")\naccuracy per prediction step:";
  for (std::size_t k = 0; k < summary.last.accuracy.size(); ++k)
    std::cerr << " k" << k + 1 << '=' << std::setprecision(3) << summary.last.accuracy[k];
  std::cerr << " (chance " << summary.last.chance << ")\n";
  if (!summary.left_chance)
    std::cerr
        << "warning: the loss never went clearly below chance - train longer (--minutes) or raise --lr\n";
  return {summary.steps, summary.seconds, summary.left_chance, summary.last};
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
  p.probe.seed = 7;
  return p;
}

template <class Config>
cpc::probe_report probe_model(model_t<Config>& model, const cpc::speech_corpus& corpus,
                              const probe_sets& sets, const settings& s, float gain, const std::string& name,
                              cpc::utterance_features* keep_test = nullptr) {
  stage("probing " + name + " (" + std::to_string(sets.train.size()) + " train / " +
        std::to_string(sets.test.size()) + " test utterances)");
  const auto t0 = std::chrono::steady_clock::now();
  auto train = cpc::model_features(model, corpus, sets.train, Config::window_samples, gain);
  auto test = cpc::model_features(model, corpus, sets.test, Config::window_samples, gain);
  std::cerr << "features in " << std::fixed << std::setprecision(0) << seconds_since(t0) << " s\n";
  const auto r = cpc::run_speech_probes(corpus, train, test, probe_config(s));
  std::cerr << "probes done in " << seconds_since(t0) << " s\n";
  if (keep_test != nullptr) *keep_test = std::move(test);
  return r;
}

cpc::probe_report probe_mfcc(const cpc::speech_corpus& corpus, const probe_sets& sets, const settings& s,
                             cpc::utterance_features* keep_test = nullptr) {
  stage("probing MFCC (13 + deltas + delta-deltas)");
  auto train = cpc::mfcc_features(corpus, sets.train);
  auto test = cpc::mfcc_features(corpus, sets.test);
  const auto r = cpc::run_speech_probes(corpus, train, test, probe_config(s));
  if (keep_test != nullptr) *keep_test = std::move(test);
  return r;
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

void print_table(const std::vector<table_row>& rows, std::ostream& os) {
  os << "\n| features | phone (frame) | speaker (frame) | speaker (0.25 s, mean) | speaker (1.28 s, mean) | "
        "speaker (1.28 s, last) | paper: phone | paper: speaker |\n"
        "|---|---|---|---|---|---|---|---|\n";
  for (const auto& row : rows)
    os << "| " << row.name << " | " << phone_pct(row.r) << " | " << pct(row.r.speaker_frame) << " | "
       << pct(row.r.speaker_short_mean) << " | " << pct(row.r.speaker_window_mean) << " | "
       << pct(row.r.speaker_window_last) << " | " << row.paper_phone << " | " << row.paper_speaker << " |\n";
}

void write_probe_csv(const std::vector<table_row>& rows, const fs::path& path) {
  std::ofstream f(path);
  // phone_frame is empty when the probe had no phone labels.
  f << "features,phone_frame,speaker_frame,speaker_0.25s_mean,speaker_1.28s_mean,speaker_1.28s_last\n";
  for (const auto& row : rows)
    f << '"' << row.name << "\"," << (row.r.phone_labelled ? number(row.r.phone_frame) : "") << ','
      << row.r.speaker_frame << ',' << row.r.speaker_short_mean << ',' << row.r.speaker_window_mean << ','
      << row.r.speaker_window_last << '\n';
  if (!f) throw cpc::io_error("cannot write " + path.string());
}

// ---------------------------------------------------------------------------------------------
// Pictures (gnuplot): training curves, and a PCA of window-level contexts coloured by speaker
// (the paper's Figure 2 uses t-SNE; PCA is linear, like the probes).

// Mean-pooled 1.28 s windows projected on their first two principal components: rows x, y, speaker.
std::vector<std::array<double, 3>> pca_windows(const cpc::speech_corpus& corpus,
                                               const cpc::utterance_features& f, std::size_t window_frames) {
  std::vector<Eigen::VectorXd> xs;
  std::vector<double> spk;
  for (std::size_t i = 0; i < f.rows.size(); ++i)
    for (std::size_t s = 0; s + window_frames <= f.rows[i].shape()[0]; s += window_frames) {
      Eigen::VectorXd v = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(f.dims));
      for (std::size_t t = s; t < s + window_frames; ++t)
        for (std::size_t d = 0; d < f.dims; ++d) v[static_cast<Eigen::Index>(d)] += f.rows[i](t, d);
      xs.push_back(v / static_cast<double>(window_frames));
      spk.push_back(static_cast<double>(corpus[f.utterances[i]].speaker));
    }
  std::vector<std::array<double, 3>> out;
  if (xs.size() < 3) return out;
  Eigen::MatrixXd X(static_cast<Eigen::Index>(xs.size()), static_cast<Eigen::Index>(f.dims));
  for (std::size_t i = 0; i < xs.size(); ++i) X.row(static_cast<Eigen::Index>(i)) = xs[i].transpose();
  X.rowwise() -= X.colwise().mean();
  // Standardise so that the projection is not dominated by a few large dimensions.
  const Eigen::RowVectorXd sd = (X.array().square().colwise().mean()).sqrt().max(1e-12);
  X = X.array().rowwise() / sd.array();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(X.transpose() * X);
  const auto n = eig.eigenvectors().cols();
  const Eigen::MatrixXd P = X * eig.eigenvectors().rightCols(2);
  for (Eigen::Index i = 0; i < P.rows(); ++i)
    out.push_back({P(i, 1), P(i, 0), spk[static_cast<std::size_t>(i)]});
  (void)n;
  return out;
}

bool have_gnuplot() {
  return std::system("command -v gnuplot >/dev/null 2>&1") == 0;
}

void draw_pictures(const fs::path& out, std::size_t steps_k,
                   const std::vector<std::pair<std::string, std::vector<std::array<double, 3>>>>& pcas) {
  if (!have_gnuplot()) {
    std::cerr << "gnuplot not found: pictures skipped (apt-get install gnuplot-nox)\n";
    return;
  }
  for (const auto& [name, pts] : pcas) {
    std::ofstream f(out / ("pca_" + name + ".tsv"));
    for (const auto& p : pts) f << p[0] << '\t' << p[1] << '\t' << p[2] << '\n';
  }
  std::ofstream g(out / "plots.gp");
  g << "set terminal pngcairo size 1200,500 font 'sans,10'\nset datafile separator ','\n"
       "set output '"
    << (out / "training.png").string()
    << "'\nset multiplot layout 1,2\n"
       "set title 'InfoNCE loss (chance = log(N+1))'\nset xlabel 'step'\nset key top right\n"
       "plot '"
    << (out / "training.csv").string()
    << "' using 1:4 with lines lw 1 title 'loss'\n"
       "set title 'prediction accuracy per step k (chance = 1/(N+1))'\nset key top left\n"
       "plot ";
  const std::size_t ks[] = {1, 2, 4, 8, 12};
  bool first = true;
  for (std::size_t k : ks) {
    if (k > steps_k) continue;
    g << (first ? "" : ", ") << "'" << (out / "training.csv").string() << "' using 1:" << 6 + k
      << " with lines title 'k = " << k << "'";
    first = false;
  }
  g << "\nunset multiplot\nset datafile separator '\\t'\n"
       "set terminal pngcairo size "
    << 600 * pcas.size()
    << ",560 font 'sans,10'\n"
       "set output '"
    << (out / "contexts_pca.png").string() << "'\nset multiplot layout 1," << pcas.size()
    << "\n"
       "unset key\nset palette defined (0 '#1f77b4', 1 '#ff7f0e', 2 '#2ca02c', 3 '#d62728', 4 '#9467bd', 5 "
       "'#8c564b', "
       "6 '#e377c2', 7 '#7f7f7f', 8 '#bcbd22', 9 '#17becf')\nunset colorbox\nset xlabel 'PC 1'\nset ylabel "
       "'PC 2'\n";
  for (const auto& [name, pts] : pcas)
    g << "set title '" << name << ": 1.28 s windows (test split), one colour per speaker'\n"
      << "plot '" << (out / ("pca_" + name + ".tsv")).string()
      << "' using 1:2:3 with points pt 7 ps 0.6 palette\n";
  g << "unset multiplot\n";
  g.close();
  const std::string cmd = "gnuplot '" + (out / "plots.gp").string() + "'";
  if (std::system(cmd.c_str()) != 0)
    std::cerr << "gnuplot failed; see " << (out / "plots.gp") << '\n';
  else
    std::cerr << "pictures: " << (out / "training.png") << ", " << (out / "contexts_pca.png") << '\n';
}

// ---------------------------------------------------------------------------------------------
// Subcommands.

template <class Config>
int run_demo(const settings& s) {
  const auto t0 = std::chrono::steady_clock::now();
  fs::create_directories(s.out);
  const auto corpus = load_corpus(s, true);
  const float gain = input_gain(corpus);
  const auto sets = probe_utterances(corpus, s);
  model_t<Config> model(model_options<Config>(s));
  std::cerr << "model: " << describe<Config>() << "; " << model.parameter_count() << " parameters\n";

  cpc::utterance_features random_test, mfcc_test, cpc_test;
  std::vector<table_row> rows;
  rows.push_back({"random init",
                  probe_model<Config>(model, corpus, sets, s, gain, "the random-init model", &random_test),
                  "27.6", "1.87"});
  print_table(rows, std::cerr);
  rows.push_back({"MFCC", probe_mfcc(corpus, sets, s, &mfcc_test), "39.7", "17.6"});
  print_table(rows, std::cerr);
  const auto run = train_model<Config>(model, corpus, s, gain);
  std::ostringstream cpc_name;
  cpc_name << "CPC (" << run.steps << " steps in " << std::fixed << std::setprecision(1) << run.seconds / 60
           << " min)";
  rows.push_back(
      {cpc_name.str(), probe_model<Config>(model, corpus, sets, s, gain, "CPC", &cpc_test), "64.6", "97.4"});

  stage("results");
  std::ostringstream table;
  table << "Linear probes on frozen features, test split of " << s.corpus.string() << " ("
        << corpus.speakers().size() << " speakers, "
        << (has_phone_labels(corpus) ? std::to_string(corpus.num_phones()) + " phone classes"
                                     : "no phone labels")
        << "); accuracy in %. Paper columns: LibriSpeech, van den Oord et al. 2018, Table 1.";
  print_table(rows, table);
  table << "\nChance: phone (majority class) depends on the corpus; speaker 1/" << corpus.speakers().size()
        << " = " << pct(1.0 / static_cast<double>(corpus.speakers().size())) << "%.\n";
  std::cout << table.str();
  std::ofstream(s.out / "results.md") << table.str();
  write_probe_csv(rows, s.out / "probes.csv");
  draw_pictures(
      s.out, Config::prediction_steps,
      {{"random init", pca_windows(corpus, random_test, 128)}, {"CPC", pca_windows(corpus, cpc_test, 128)}});
  std::cerr << "wrote " << (s.out / "training.csv") << ", " << (s.out / "probes.csv") << ", "
            << (s.out / "results.md") << ", " << (s.out / "model.safetensors") << "\ntotal time "
            << std::fixed << std::setprecision(1) << seconds_since(t0) / 60 << " min\n";
  return 0;
}

template <class Config>
int run_train(const settings& s) {
  const auto corpus = load_corpus(s, false);
  model_t<Config> model(model_options<Config>(s));
  train_model<Config>(model, corpus, s, input_gain(corpus));
  return 0;
}

// Reads the model name and input gain a checkpoint was trained with.
std::pair<std::string, float> checkpoint_model(const fs::path& path) {
  const auto f = cpc::load_safetensors(path);
  const auto m = f.metadata.find("model");
  const auto g = f.metadata.find("gain");
  if (m == f.metadata.end() || g == f.metadata.end())
    throw cpc::io_error(path.string() +
                        ": not a cpc-speech checkpoint (metadata 'model' and 'gain' missing)");
  float gain = 0;
  try {
    gain = std::stof(g->second);
  } catch (const std::exception&) {
    throw cpc::io_error(path.string() + ": metadata 'gain': expected a number, got '" + g->second + "'");
  }
  if (!std::isfinite(gain) || gain <= 0)
    throw cpc::io_error(path.string() + ": metadata 'gain': expected a number > 0, got '" + g->second + "'");
  return {m->second, gain};
}

template <class Config>
void load_weights(model_t<Config>& model, const fs::path& path) {
  cpc::adam<float> opt(model.parameters(), {});
  cpc::load_checkpoint(path, model, opt);
}

template <class Config>
int run_probe(const settings& s) {
  const auto corpus = load_corpus(s, true);
  const auto sets = probe_utterances(corpus, s);
  std::vector<table_row> rows;
  if (s.features == "mfcc") {
    rows.push_back({"MFCC", probe_mfcc(corpus, sets, s), "39.7", "17.6"});
  } else {
    model_t<Config> model(model_options<Config>(s));
    float gain = input_gain(corpus);
    if (s.features == "cpc") {  // check_options: --checkpoint is given
      gain = checkpoint_model(s.checkpoint).second;
      load_weights<Config>(model, s.checkpoint);
    }
    rows.push_back({s.features == "cpc" ? "CPC (" + s.checkpoint.string() + ")" : "random init",
                    probe_model<Config>(model, corpus, sets, s, gain, s.features),
                    s.features == "cpc" ? "64.6" : "27.6", s.features == "cpc" ? "97.4" : "1.87"});
  }
  print_table(rows, std::cout);
  return 0;
}

template <class Config>
int run_encode(const settings& s) {
  const auto corpus = load_corpus(s, false);
  model_t<Config> model(model_options<Config>(s));
  const float gain = checkpoint_model(s.checkpoint).second;
  load_weights<Config>(model, s.checkpoint);
  const auto split = s.split == "train"  ? cpc::corpus_split::train
                     : s.split == "test" ? cpc::corpus_split::test
                                         : cpc::corpus_split::all;  // check_options: one of the three
  if (corpus.indices(split).empty())
    throw cpc::config_error("--split " + s.split + ": the corpus has no " + s.split +
                            " utterances (see --test-split / --train-split, README 'Speech data')");
  const auto f = cpc::model_features(model, corpus, corpus.indices(split), Config::window_samples, gain);
  cpc::safetensors_writer w;
  for (std::size_t i = 0; i < f.rows.size(); ++i) w.add("context." + corpus[f.utterances[i]].id, f.rows[i]);
  w.set_metadata("layout",
                 "context.<utterance id>: [frames, context] float32, frame f = samples [160 f, 160 f + 160)");
  w.set_metadata("checkpoint", s.checkpoint.string());
  w.save(s.output);
  std::cerr << "wrote " << f.rows.size() << " utterances' contexts to " << s.output << '\n';
  return 0;
}

// Calls command(preset{}) with the preset type that --model names.
template <class Command>
int dispatch(const settings& s, Command&& command) {
  if (s.model == "paper") return command(cpc::presets::audio_paper{});
  if (s.model == "small") return command(cpc::presets::audio_small{});
  throw cpc::config_error("--model: expected 'paper' or 'small', got '" + s.model + "'");
}

// The error type for the one-line message.
const char* error_kind(const std::exception& e) {
  if (dynamic_cast<const cpc::config_error*>(&e)) return "config_error";
  if (dynamic_cast<const cpc::io_error*>(&e)) return "io_error";
  if (dynamic_cast<const cpc::numeric_error*>(&e)) return "numeric_error";
  if (dynamic_cast<const cpc::shape_error*>(&e)) return "shape_error";
  if (dynamic_cast<const cpc::error*>(&e)) return "error";
  if (dynamic_cast<const std::filesystem::filesystem_error*>(&e)) return "filesystem_error";
  return "unexpected error";
}

// Prints "cpc-speech: <type>: <message>" on one line (newlines in the message become spaces).
void report(const char* kind, std::string message) {
  std::replace(message.begin(), message.end(), '\n', ' ');
  std::cerr << "\ncpc-speech: " << kind << ": " << message << '\n';
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

// Everything checked before any work: option values, then the files and folders they name.
// Sets s.model from the checkpoint (probe, encode, train --resume). Throws the typed errors of
// check_options, checkpoint_model, check_input_file and prepare_folder.
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
    const std::string option = cmd == command::train ? "--resume" : "--checkpoint";
    check_input_file(option, ckpt);
    const std::string model = checkpoint_model(ckpt).first;
    if (s.model_given && model != s.model)
      throw cpc::config_error("--model: the checkpoint '" + ckpt.string() + "' holds a '" + model +
                              "' model, got --model " + s.model + " (leave out --model)");
    if (model != "paper" && model != "small")
      throw cpc::io_error(ckpt.string() + ": metadata 'model': expected paper or small, got '" + model + "'");
    s.model = model;
  }
  if (cmd == command::demo || cmd == command::train) prepare_folder("--out", s.out);
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
  // CLI11 2.1 reads "-1" into an unsigned option as 2^64 - 1: refuse signs in whole numbers.
  const CLI::Validator whole_number(
      [](std::string& v) -> std::string {
        if (v.find_first_not_of("0123456789") != std::string::npos || v.empty())
          return "expected a whole number >= 0, got '" + v + "'";
        return {};
      },
      "UINT");
  const auto corpus_opt = [&](CLI::App* c, bool labels) {
    c->add_option("--corpus", s.corpus, "corpus root (LibriSpeech/CPC layout; see README)")
        ->required()
        ->check(CLI::ExistingDirectory);
    c->add_option("--threads", s.threads, "threads (0 = all cores)")
        ->check(whole_number)
        ->capture_default_str();
    if (labels) {
      c->add_option(
          "--alignments", s.alignments,
          "phone alignment file (default CORPUS/alignments.txt; relative: to the current folder or CORPUS)");
      c->add_option("--num-phones", s.num_phones,
                    "phone classes when there is no phones.txt (CPC LibriSpeech: 41)")
          ->check(whole_number);
    }
    c->add_option("--train-split", s.train_split,
                  "train utterance ids (default CORPUS/train.txt; relative: as --alignments)");
    c->add_option("--test-split", s.test_split,
                  "test utterance ids (default CORPUS/test.txt; relative: as --alignments)");
  };
  const auto model_opts = [&](CLI::App* c, const std::string& note) {
    c->add_option("--model", s.model, "model size: paper (512 channels) or small (256 channels)" + note)
        ->capture_default_str();
    c->add_option("--seed", s.seed, "seed of weights, negatives and windows")
        ->check(whole_number)
        ->capture_default_str();
  };
  const auto train_opts = [&](CLI::App* c) {
    c->add_option("--out", s.out, "output folder (checkpoint, CSV logs, pictures); made if missing")
        ->capture_default_str();
    c->add_option("--minutes", s.minutes,
                  "training time budget in minutes, > 0 (default 12 when --steps is not given)");
    c->add_option("--steps", s.steps, "total training steps (optimiser updates), >= 1")->check(whole_number);
    c->add_option("--batch", s.batch, "windows of 1.28 s per batch, >= 1")
        ->check(whole_number)
        ->capture_default_str();
    c->add_option("--lr", s.lr, "Adam learning rate, > 0 (paper: 2e-4)")->capture_default_str();
    c->add_option("--warmup", s.warmup, "linear learning-rate warm-up steps")
        ->check(whole_number)
        ->capture_default_str();
    c->add_option("--clip", s.clip, "gradient-norm clipping (0 = off)")->capture_default_str();
    c->add_option("--head-std", s.head_std,
                  "std of the prediction heads' normal init (0 = the preset's 1/context)");
  };
  const auto probe_opts = [&](CLI::App* c) {
    c->add_option("--probe-minutes", s.probe_minutes,
                  "minutes of train audio for the probes (test: half; 0 = all)")
        ->capture_default_str();
    c->add_option("--probe-epochs", s.probe_epochs, "probe training epochs, >= 1")
        ->check(whole_number)
        ->capture_default_str();
  };
  auto* demo = app.add_subcommand("demo", "train, then probe random init, MFCC and CPC; print the table");
  corpus_opt(demo, true);
  model_opts(demo, "");
  train_opts(demo);
  probe_opts(demo);
  auto* train = app.add_subcommand("train", "train a CPC model");
  corpus_opt(train, false);
  model_opts(train, " (--resume: the checkpoint's)");
  train_opts(train);
  train->add_flag("--resume", s.resume, "continue from OUT/model.safetensors (which must exist)");
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    report("config_error", std::string(e.what()) + " (--help lists the options)");
    return exit_refused;
  }
  const command cmd = demo->parsed()    ? command::demo
                      : train->parsed() ? command::train
                      : probe->parsed() ? command::probe
                                        : command::encode;
  CLI::App* sub = app.get_subcommands().front();
  const auto given = [&](const char* name) {
    const CLI::Option* o = sub->get_option_no_throw(name);
    return o != nullptr && o->count() > 0;
  };
  s.minutes_given = given("--minutes");
  s.steps_given = given("--steps");
  s.model_given = given("--model");
  // train and encode use no phone labels: do not read them (an empty path turns the file off).
  if (cmd == command::train || cmd == command::encode) s.alignments = fs::path();
  cpc::warn_if_cpu_features_unused();
  if (const int rc = guarded(exit_refused, [&] {
        check_before_work(s, cmd);
        return 0;
      }))
    return rc;
  return guarded(exit_failed, [&] {
    if (s.threads > 0) cpc::set_num_threads(s.threads);
    switch (cmd) {
      case command::demo:
        return dispatch(s, [&]<class C>(C) { return run_demo<C>(s); });
      case command::train:
        return dispatch(s, [&]<class C>(C) { return run_train<C>(s); });
      case command::probe:
        return dispatch(s, [&]<class C>(C) { return run_probe<C>(s); });
      case command::encode:
        return dispatch(s, [&]<class C>(C) { return run_encode<C>(s); });
    }
    return 0;
  });
}
