// cpc-image: CPC on 28x28 grey images (Fashion-MNIST, MNIST) - van den Oord et al. 2018, section 3.2,
// at a small scale. Subcommands:
//   train  trains the image model on the training split and saves a checkpoint;
//   probe  loads a checkpoint and runs the linear probes (CPC features, random encoder, raw pixels);
//   demo   train then probe in one run, with a picture of nearest neighbours in feature space.
// Data: a directory with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; the default is the
// Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).
// A command line over the library: batches from cpc::image_sampler, training by cpc::train (the
// same trainer as the audio model), features by cpc::encode_image_latents, probes by
// cpc::linear_probe, neighbours by cpc::nearest_neighbours.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <cpc/core/allocator.hpp>
#include <cpc/core/cpu_features.hpp>
#include <cpc/data/idx_gzip.hpp>
#include <cpc/data/image_sampler.hpp>
#include <cpc/eval/image_features.hpp>
#include <cpc/eval/linear_probe.hpp>
#include <cpc/model/image_model.hpp>
#include <cpc/optim/adam.hpp>
#include <cpc/optim/schedule.hpp>
#include <cpc/train/checkpoint.hpp>
#include <cpc/train/trainer.hpp>

#include "../common/cli_checks.hpp"

namespace fs = std::filesystem;
using preset = cpc::presets::image_small;
using model_t = cpc::cpc_image_model<preset>;
using clock_type = std::chrono::steady_clock;

namespace {

struct settings {
  std::string data = "/usr/share/datasets/fashion-mnist";
  std::string out = "cpc-image-out";
  std::string checkpoint;
  // Architecture (defaults: cpc::presets::image_small); saved in and restored from checkpoints.
  std::size_t channels = preset::latent_channels, blocks = preset::encoder_blocks,
              stem_stride = preset::stem_stride, ar_layers = preset::autoregressor_layers,
              steps_ahead = preset::prediction_steps, negatives = preset::negatives;
  std::string matmul_precision = "fp32";           // of the convolutions' products: fp32 or bf16 (AMX)
  std::size_t batch = 32, steps = 0, threads = 0;  // steps 0: only the time budget stops training
  double minutes = 5.0, learning_rate = 1e-3;
  std::size_t probe_train = 10000, probe_test = 10000, probe_epochs = 30;
  std::size_t seed = 1;
};

struct split {
  cpc::tensor4<float> images;  // [N, 28, 28, 1], pixel / 255
  std::vector<int> labels;
};

std::string find_file(const std::string& dir, const std::string& stem) {
  for (const std::string& name : {stem, stem + ".gz"})
    if (fs::exists(fs::path(dir) / name)) return (fs::path(dir) / name).string();
  throw cpc::io_error(dir + " has no " + stem + "[.gz]. Fashion-MNIST: apt-get install " +
                      "dataset-fashion-mnist (files in /usr/share/datasets/fashion-mnist); MNIST: " +
                      "scripts/fetch-mnist.sh, then --data <its directory>");
}

split load_split(const std::string& dir, const std::string& prefix) {
  split s;
  cpc::idx_images(cpc::read_idx_gzip(find_file(dir, prefix + "-images-idx3-ubyte")), s.images);
  s.labels = cpc::idx_labels(cpc::read_idx_gzip(find_file(dir, prefix + "-labels-idx1-ubyte")));
  if (s.labels.size() != s.images.shape()[0])
    throw cpc::io_error(prefix + ": " + std::to_string(s.images.shape()[0]) + " images but " +
                        std::to_string(s.labels.size()) + " labels");
  return s;
}

// The architecture and seed, by metadata key: written to checkpoints, read back by `probe`.
std::vector<std::pair<std::string, std::size_t*>> architecture(settings& s) {
  return {{"channels", &s.channels},
          {"blocks", &s.blocks},
          {"stem_stride", &s.stem_stride},
          {"ar_layers", &s.ar_layers},
          {"steps_ahead", &s.steps_ahead},
          {"negatives", &s.negatives},
          {"seed", &s.seed}};
}

// Sets the architecture and seed from a checkpoint's metadata, and the data directory it was
// trained on when `use_its_data`. Errors: cpc::io_error for a file that is not a cpc-image
// checkpoint or lacks an entry.
void read_architecture(const fs::path& ckpt, settings& s, bool use_its_data) {
  const auto meta = cpc::load_safetensors(ckpt).metadata;
  const auto fail = [&](const std::string& why) { return cpc::io_error(ckpt.string() + ": " + why); };
  if (auto it = meta.find("model"); it == meta.end() || it->second != "cpc-image")
    throw fail("not a cpc-image checkpoint (expected metadata model = cpc-image)");
  std::printf("model from the checkpoint:");
  for (const auto& [key, field] : architecture(s)) {
    const auto it = meta.find(key);
    const char* end = it == meta.end() ? nullptr : it->second.data() + it->second.size();
    if (it == meta.end() || it->second.empty() || std::from_chars(it->second.data(), end, *field).ptr != end)
      throw fail("metadata " + key + " is missing or not a number");
    std::printf(" %s %zu", key.c_str(), *field);
  }
  std::printf("\n");
  if (const auto it = meta.find("data"); use_its_data && it != meta.end()) s.data = it->second;
}

model_t::options model_options(const settings& s) {
  model_t::options o;
  o.encoder.channels = s.channels;
  o.encoder.blocks = s.blocks;
  o.encoder.stem_stride = s.stem_stride;
  o.autoregressor.input_size = s.channels;
  o.autoregressor.hidden_size = s.channels;
  o.autoregressor.layers = s.ar_layers;
  o.loss.latent_dim = s.channels;
  o.loss.context_dim = s.channels;
  o.loss.steps = s.steps_ahead;
  o.loss.negatives = s.negatives;
  o.seed = s.seed;
  return o;
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Rejects settings that would fail late or silently (after minutes of training, or a table of
// chance). Errors: cpc::config_error naming the option, what was expected and what came.
void check_settings(const settings& s, std::size_t grid_rows, bool training) {
  const auto need = [](bool ok, const std::string& what) {
    if (!ok) throw cpc::config_error(what);
  };
  need(s.probe_train >= 10,
       "--probe-train: expected at least 10 images, got " + std::to_string(s.probe_train));
  need(s.probe_test >= 1, "--probe-test: expected at least 1 image, got 0");
  need(s.probe_epochs >= 1, "--probe-epochs: expected at least 1, got 0");
  if (!training) return;
  need(s.batch >= 1, "--batch: expected at least 1 image per step, got 0");
  need(std::isfinite(s.minutes) && s.minutes > 0,
       "--minutes: expected a time budget > 0, got " + number(s.minutes));
  need(s.steps_ahead < grid_rows, "--steps-ahead: expected fewer than the " + std::to_string(grid_rows) +
                                      " rows of the patch grid, got " + std::to_string(s.steps_ahead));
}

// Trains with cpc::train on batches from cpc::image_sampler until the time budget (or s.steps) runs
// out, saving the checkpoint `ckpt` (with `meta`) every 1000 steps and at the end.
void train(model_t& m, cpc::adam<float>& opt, const split& data, const settings& s, const fs::path& ckpt,
           const cpc::safetensors_metadata& meta) {
  cpc::image_sampler batches(data.images, {.batch_size = s.batch, .seed = s.seed + 100});
  cpc::train_options o;
  o.max_steps = s.steps;
  o.max_seconds = 60.0 * s.minutes;
  o.checkpoint_path = ckpt;
  o.checkpoint_every = 1000;
  o.progress_every = 100;
  o.metadata = meta;
  o.generators = {{"data", &batches.generator()}};
  std::printf("training: %zu parameters, batch %zu, %.1f min", m.parameter_count(), s.batch, s.minutes);
  if (s.steps > 0) std::printf(" or %zu steps", s.steps);
  std::printf(" (progress on stderr)\n");
  std::fflush(stdout);
  const auto r = cpc::train(m, opt, cpc::constant_lr{s.learning_rate}, batches, o);
  std::printf(
      "  %llu steps in %.0f s (%.1f img/s, waiting for data %.1f ms/step); last loss %.3f (chance %.3f), "
      "acc(k=1..%zu)",
      static_cast<unsigned long long>(r.steps_run), r.seconds,
      static_cast<double>(r.steps_run * s.batch) / std::max(r.seconds, 1e-9),
      1000 * r.data_seconds / std::max<double>(1, static_cast<double>(r.steps_run)), r.last.loss,
      r.last.log_candidates, r.last.accuracy.size());
  for (double a : r.last.accuracy) std::printf(" %.3f", a);
  std::printf(" (chance %.3f)\n", r.last.chance);
}

double probe_accuracy(const cpc::tensor2<float>& xtr, std::span<const int> ytr,
                      const cpc::tensor2<float>& xte, std::span<const int> yte, const settings& s) {
  cpc::linear_probe<float> p(xtr.shape()[1], 10,
                             {.epochs = s.probe_epochs, .learning_rate = 1e-3, .seed = s.seed});
  p.fit(xtr, ytr);
  return p.accuracy(xte, yte);
}

// Writes a PGM: each row is a test query followed by its nearest probe-training images
// (cpc::nearest_neighbours: cosine similarity of standardised features).
void neighbours_picture(const std::string& path, const cpc::tensor2<float>& ftr, const split& train,
                        const cpc::tensor2<float>& fte, const split& test, std::size_t queries,
                        std::size_t k) {
  cpc::tensor2<float> query = xt::zeros<float>({queries, fte.shape()[1]});
  std::vector<std::size_t> picked(queries);
  for (std::size_t q = 0; q < queries; ++q) {
    picked[q] = q * (fte.shape()[0] / queries);
    std::copy_n(fte.data() + picked[q] * fte.shape()[1], fte.shape()[1], query.data() + q * fte.shape()[1]);
  }
  const auto nn = cpc::nearest_neighbours(ftr, query, k);
  k = nn.empty() ? 0 : nn.front().size();
  const std::size_t cell = 30, W = (k + 1) * cell, H = queries * cell;
  std::vector<unsigned char> img(W * H, 255);
  auto put = [&](const cpc::tensor4<float>& src, std::size_t n, std::size_t row, std::size_t col) {
    for (std::size_t y = 0; y < 28; ++y)
      for (std::size_t x = 0; x < 28; ++x)
        img[(row * cell + 1 + y) * W + col * cell + 1 + x] =
            static_cast<unsigned char>(255 - std::clamp(src(n, y, x, 0), 0.f, 1.f) * 255);
  };
  for (std::size_t q = 0; q < queries; ++q) {
    put(test.images, picked[q], q, 0);
    for (std::size_t j = 0; j < k; ++j) put(train.images, nn[q][j], q, j + 1);
  }
  std::ofstream out(path, std::ios::binary);
  out << "P5\n" << W << " " << H << "\n255\n";
  out.write(reinterpret_cast<const char*>(img.data()), static_cast<std::streamsize>(img.size()));
  if (!out) throw cpc::io_error("cannot write " + path);
}

void probe(model_t& m, const split& train, const split& test, const settings& s) {
  const std::size_t ntr = std::min(s.probe_train, train.labels.size());
  const std::size_t nte = std::min(s.probe_test, test.labels.size());
  std::span<const int> ytr(train.labels.data(), ntr), yte(test.labels.data(), nte);
  std::printf("linear probes: softmax classifier on %zu training images, accuracy on %zu test images\n", ntr,
              nte);
  const auto t0 = clock_type::now();
  const auto ftr = cpc::encode_image_latents(m, train.images, ntr),
             fte = cpc::encode_image_latents(m, test.images, nte);
  const double cpc_acc = probe_accuracy(ftr.mean, ytr, fte.mean, yte, s);
  const double cpc_grid = probe_accuracy(ftr.grid, ytr, fte.grid, yte, s);
  model_t random_model(model_options(s));  // same architecture and seed, untrained
  const auto rtr = cpc::encode_image_latents(random_model, train.images, ntr),
             rte = cpc::encode_image_latents(random_model, test.images, nte);
  const double random_acc = probe_accuracy(rtr.mean, ytr, rte.mean, yte, s);
  const double random_grid = probe_accuracy(rtr.grid, ytr, rte.grid, yte, s);
  const double raw_acc =
      probe_accuracy(cpc::image_pixels(train.images, ntr), ytr, cpc::image_pixels(test.images, nte), yte, s);
  std::string table = "| features | dims | test accuracy |\n|---|---|---|\n";
  const auto row = [&](const std::string& name, std::size_t dims, double acc) {
    char line[160];
    std::snprintf(line, sizeof line, "| %s | %zu | %.2f%% |\n", name.c_str(), dims, 100 * acc);
    table += line;
  };
  const std::string grid = std::to_string(ftr.grid.shape()[1] / ftr.mean.shape()[1]) + " patch latents";
  row("CPC encoder, patch latents mean-pooled", ftr.mean.shape()[1], cpc_acc);
  row("random-init encoder, same pooling", rtr.mean.shape()[1], random_acc);
  row("CPC encoder, all " + grid, ftr.grid.shape()[1], cpc_grid);
  row("random-init encoder, all " + grid, rtr.grid.shape()[1], random_grid);
  row("raw pixels", train.images.size() / train.images.shape()[0], raw_acc);
  table += "| chance | | 10.00% |\n";
  std::printf("\n%s(probes took %.0f s)\n", table.c_str(),
              std::chrono::duration<double>(clock_type::now() - t0).count());
  fs::create_directories(s.out);
  const fs::path results = fs::path(s.out) / "results.md";
  std::ofstream(results) << table;
  std::printf("table: %s\n", results.string().c_str());
  const std::string path = (fs::path(s.out) / "neighbours.pgm").string();
  neighbours_picture(path, ftr.mean, train, fte.mean, test, 10, 9);
  std::printf("  nearest neighbours in CPC feature space (query left, 9 training neighbours): %s\n",
              path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  cpc::configure_allocator();
  settings s;
  CLI::App app{"CPC on 28x28 grey images (Fashion-MNIST / MNIST): train, probe, demo"};
  app.option_defaults()->always_capture_default();
  app.require_subcommand(1);
  auto common = [&](CLI::App* c) {
    c->add_option("--data", s.data,
                  "directory with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (probe: the "
                  "checkpoint's data unless given)");
    c->add_option("--out", s.out, "output directory (checkpoint, results.md, neighbours.pgm)");
    c->add_option("--threads", s.threads, "threads (0: all cores)");
    cpc_examples::add_matmul_precision_option(c, s.matmul_precision);
  };
  auto probing = [&](CLI::App* c) {
    c->add_option("--probe-train", s.probe_train, "training images used to fit the probes");
    c->add_option("--probe-test", s.probe_test, "test images the probes are scored on");
    c->add_option("--probe-epochs", s.probe_epochs, "probe training epochs");
  };
  auto training = [&](CLI::App* c) {  // the architecture is saved in the checkpoint, which probe reads
    c->add_option("--channels", s.channels, "encoder and autoregressor width");
    c->add_option("--blocks", s.blocks, "residual blocks in the patch encoder");
    c->add_option("--stem-stride", s.stem_stride,
                  "stride of the encoder's first convolution (2: 4x fewer MACs)");
    c->add_option("--ar-layers", s.ar_layers, "masked convolution layers");
    c->add_option("--steps-ahead", s.steps_ahead, "rows predicted below each context (K)");
    c->add_option("--negatives", s.negatives, "negatives per prediction (N)");
    c->add_option("--seed", s.seed, "seed of weights, negatives and batches");
    c->add_option("--batch", s.batch, "images per step");
    c->add_option("--steps", s.steps, "maximum training steps (0: only the time budget)");
    c->add_option("--minutes", s.minutes, "training time budget in minutes");
    c->add_option("--lr", s.learning_rate, "Adam learning rate");
  };
  auto* train_cmd = app.add_subcommand("train", "train CPC and save a checkpoint to <out>/model.safetensors");
  auto* probe_cmd =
      app.add_subcommand("probe", "linear probes of a checkpoint vs random encoder and raw pixels");
  auto* demo_cmd = app.add_subcommand("demo", "train, then probe, on Fashion-MNIST by default");
  for (auto* c : {train_cmd, probe_cmd, demo_cmd}) common(c);
  training(train_cmd);
  training(demo_cmd);
  probing(probe_cmd);
  probing(demo_cmd);
  probe_cmd->add_option("--checkpoint", s.checkpoint, "checkpoint (default <out>/model.safetensors)");
  CLI11_PARSE(app, argc, argv);
  cpc::warn_if_cpu_features_unused();  // once, when built without the CPU's AVX2/AVX-512/FMA
  const bool training_run = *train_cmd || *demo_cmd;
  try {
    if (s.threads > 0) cpc::set_num_threads(s.threads);
    cpc_examples::apply_matmul_precision(s.matmul_precision);
    const fs::path ckpt =
        s.checkpoint.empty() ? fs::path(s.out) / "model.safetensors" : fs::path(s.checkpoint);
    if (*probe_cmd) read_architecture(ckpt, s, probe_cmd->count("--data") == 0);
    std::printf("data: %s\n", s.data.c_str());
    const split train_set = load_split(s.data, "train"), test_set = load_split(s.data, "t10k");
    std::printf("  %zu training and %zu test images of %zux%zu\n", train_set.labels.size(),
                test_set.labels.size(), train_set.images.shape()[1], train_set.images.shape()[2]);
    model_t m(model_options(s));
    check_settings(s, m.encoder().grid_size(train_set.images.shape()[1]), training_run);
    if (training_run) fs::create_directories(s.out);  // fails now, not after training
    cpc::adam<float> opt(m.parameters(), {.learning_rate = s.learning_rate});
    if (training_run) {
      cpc::safetensors_metadata meta{{"model", "cpc-image"}, {"data", s.data}};
      for (const auto& [key, field] : architecture(s)) meta[key] = std::to_string(*field);
      train(m, opt, train_set, s, ckpt, meta);
      std::printf("checkpoint: %s\n", ckpt.string().c_str());
    } else {
      cpc::load_checkpoint(ckpt, m, opt);
    }
    if (*probe_cmd || *demo_cmd) probe(m, train_set, test_set, s);
  } catch (const std::exception& e) {  // cpc::error, and std::filesystem errors for --out
    std::fprintf(stderr, "cpc-image: %s\n", e.what());
    return 1;
  }
  return 0;
}
