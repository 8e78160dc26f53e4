// cpc-speech: trains CPC on a speech corpus (LibriSpeech / CPC layout, or the corpus made by
// scripts/make-corpus.sh) and evaluates it with the paper's linear probes against MFCC and a
// randomly initialised encoder (van den Oord et al. 2018, section 3.1, Table 1).
//
//   cpc-speech demo   --corpus DIR --out DIR [--minutes 12]    everything below, then a table
//   cpc-speech train  --corpus DIR --out DIR [--minutes M | --steps N] [--resume]
//   cpc-speech probe  --corpus DIR (--checkpoint FILE | --features mfcc | --features random)
//   cpc-speech encode --corpus DIR --checkpoint FILE --output FILE.safetensors [--split test]
#include <CLI/CLI.hpp>
#include <Eigen/Eigenvalues>

#include <cpc/audio.hpp>
#include <cpc/cpc.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
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
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void stage(const std::string& what) {
  std::cerr << "\n== " << what << '\n';
}

cpc::speech_corpus load_corpus(const settings& s) {
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
  if (s.resume && fs::exists(ckpt)) {
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
  t.max_seconds = s.minutes * 60;
  if (t.max_steps == 0 && t.max_seconds <= 0) t.max_seconds = 12 * 60;
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

void print_table(const std::vector<table_row>& rows, std::ostream& os) {
  os << "\n| features | phone (frame) | speaker (frame) | speaker (0.25 s, mean) | speaker (1.28 s, mean) | "
        "speaker (1.28 s, last) | paper: phone | paper: speaker |\n"
        "|---|---|---|---|---|---|---|---|\n";
  for (const auto& row : rows)
    os << "| " << row.name << " | " << pct(row.r.phone_frame) << " | " << pct(row.r.speaker_frame) << " | "
       << pct(row.r.speaker_short_mean) << " | " << pct(row.r.speaker_window_mean) << " | "
       << pct(row.r.speaker_window_last) << " | " << row.paper_phone << " | " << row.paper_speaker << " |\n";
}

void write_probe_csv(const std::vector<table_row>& rows, const fs::path& path) {
  std::ofstream f(path);
  f << "features,phone_frame,speaker_frame,speaker_0.25s_mean,speaker_1.28s_mean,speaker_1.28s_last\n";
  for (const auto& row : rows)
    f << '"' << row.name << "\"," << row.r.phone_frame << ',' << row.r.speaker_frame << ','
      << row.r.speaker_short_mean << ',' << row.r.speaker_window_mean << ',' << row.r.speaker_window_last
      << '\n';
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
  const auto corpus = load_corpus(s);
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
        << corpus.speakers().size() << " speakers, " << corpus.num_phones()
        << " phone classes); accuracy in %. Paper columns: LibriSpeech, van den Oord et al. 2018, Table 1.";
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
  const auto corpus = load_corpus(s);
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
  return {m->second, std::stof(g->second)};
}

template <class Config>
void load_weights(model_t<Config>& model, const fs::path& path) {
  cpc::adam<float> opt(model.parameters(), {});
  cpc::load_checkpoint(path, model, opt);
}

template <class Config>
int run_probe(const settings& s) {
  const auto corpus = load_corpus(s);
  const auto sets = probe_utterances(corpus, s);
  std::vector<table_row> rows;
  if (s.features == "mfcc") {
    rows.push_back({"MFCC", probe_mfcc(corpus, sets, s), "39.7", "17.6"});
  } else {
    model_t<Config> model(model_options<Config>(s));
    float gain = input_gain(corpus);
    if (s.features == "cpc") {
      if (s.checkpoint.empty()) throw cpc::config_error("probe --features cpc needs --checkpoint FILE");
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
  const auto corpus = load_corpus(s);
  model_t<Config> model(model_options<Config>(s));
  const float gain = checkpoint_model(s.checkpoint).second;
  load_weights<Config>(model, s.checkpoint);
  const auto split = s.split == "train"  ? cpc::corpus_split::train
                     : s.split == "test" ? cpc::corpus_split::test
                                         : cpc::corpus_split::all;
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cpc-speech: Contrastive Predictive Coding on speech, with the paper's linear probes"};
  app.require_subcommand(1);
  settings s;
  const auto corpus_opt = [&](CLI::App* c) {
    c->add_option("--corpus", s.corpus, "corpus root (LibriSpeech/CPC layout; see README)")
        ->required()
        ->check(CLI::ExistingDirectory);
    c->add_option("--model", s.model, "model size: paper (512 channels) or small (256 channels)")
        ->capture_default_str();
    c->add_option("--seed", s.seed, "seed of weights, negatives and windows")->capture_default_str();
    c->add_option("--threads", s.threads, "threads (0 = all cores)")->capture_default_str();
    c->add_option("--alignments", s.alignments, "phone alignment file (default CORPUS/alignments.txt)");
    c->add_option("--train-split", s.train_split, "train utterance ids (default CORPUS/train.txt)");
    c->add_option("--test-split", s.test_split, "test utterance ids (default CORPUS/test.txt)");
    c->add_option("--num-phones", s.num_phones,
                  "phone classes when there is no phones.txt (CPC LibriSpeech: 41)");
  };
  const auto train_opts = [&](CLI::App* c) {
    c->add_option("--out", s.out, "output folder (checkpoint, CSV logs, pictures)")->capture_default_str();
    c->add_option("--minutes", s.minutes,
                  "training time budget in minutes (default 12 when --steps is not given)");
    c->add_option("--steps", s.steps, "total training steps (optimiser updates)");
    c->add_option("--batch", s.batch, "windows of 1.28 s per batch")->capture_default_str();
    c->add_option("--lr", s.lr, "Adam learning rate (paper: 2e-4)")->capture_default_str();
    c->add_option("--warmup", s.warmup, "linear learning-rate warm-up steps")->capture_default_str();
    c->add_option("--clip", s.clip, "gradient-norm clipping (0 = off)")->capture_default_str();
    c->add_option("--head-std", s.head_std,
                  "std of the prediction heads' normal init (0 = the preset's 1/context)");
  };
  const auto probe_opts = [&](CLI::App* c) {
    c->add_option("--probe-minutes", s.probe_minutes,
                  "minutes of train audio for the probes (test: half; 0 = all)")
        ->capture_default_str();
    c->add_option("--probe-epochs", s.probe_epochs, "probe training epochs")->capture_default_str();
  };
  auto* demo = app.add_subcommand("demo", "train, then probe random init, MFCC and CPC; print the table");
  corpus_opt(demo);
  train_opts(demo);
  probe_opts(demo);
  auto* train = app.add_subcommand("train", "train a CPC model");
  corpus_opt(train);
  train_opts(train);
  train->add_flag("--resume", s.resume, "continue from OUT/model.safetensors");
  auto* probe = app.add_subcommand("probe", "linear probes on frozen features");
  corpus_opt(probe);
  probe_opts(probe);
  probe->add_option("--checkpoint", s.checkpoint, "model checkpoint (for --features cpc)");
  probe->add_option("--features", s.features, "cpc, mfcc or random")->capture_default_str();
  auto* encode = app.add_subcommand("encode", "write contexts c_t of every utterance to a safetensors file");
  corpus_opt(encode);
  encode->add_option("--checkpoint", s.checkpoint, "model checkpoint")->required();
  encode->add_option("--output", s.output, "output .safetensors file")->required();
  encode->add_option("--split", s.split, "train, test or all")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    if (s.threads > 0) cpc::set_num_threads(s.threads);
    if (!s.checkpoint.empty() && (encode->parsed() || probe->parsed()))
      s.model = checkpoint_model(s.checkpoint).first;
    if (demo->parsed()) return dispatch(s, [&]<class C>(C) { return run_demo<C>(s); });
    if (train->parsed()) return dispatch(s, [&]<class C>(C) { return run_train<C>(s); });
    if (probe->parsed()) return dispatch(s, [&]<class C>(C) { return run_probe<C>(s); });
    if (encode->parsed()) return dispatch(s, [&]<class C>(C) { return run_encode<C>(s); });
  } catch (const cpc::error& e) {
    std::cerr << "\ncpc-speech: error: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
