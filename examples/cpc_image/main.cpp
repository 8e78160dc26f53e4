// cpc-image: CPC on 28x28 grey images (Fashion-MNIST, MNIST) - van den Oord et al. 2018, section 3.2,
// at a small scale. Subcommands:
//   train  trains the image model on the training split and saves a checkpoint;
//   probe  loads a checkpoint and runs the linear probes (CPC features, random encoder, raw pixels);
//   demo   train then probe in one run, with a picture of nearest neighbours in feature space.
// Data: a directory with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; the default is the
// Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <cpc/core/allocator.hpp>
#include <cpc/core/cpu_features.hpp>
#include <cpc/data/idx_gzip.hpp>
#include <cpc/eval/linear_probe.hpp>
#include <cpc/model/image_model.hpp>
#include <cpc/optim/adam.hpp>
#include <cpc/train/checkpoint.hpp>

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

void copy_images(const cpc::tensor4<float>& src, const std::vector<std::size_t>& idx, std::size_t first,
                 std::size_t n, cpc::tensor4<float>& dst) {
  const std::size_t per = src.shape()[1] * src.shape()[2] * src.shape()[3];
  cpc::ensure_shape(dst, std::array<std::size_t, 4>{n, src.shape()[1], src.shape()[2], src.shape()[3]});
  for (std::size_t i = 0; i < n; ++i)
    std::copy_n(src.data() + idx[first + i] * per, per, dst.data() + i * per);
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

// Trains until the time budget (or s.steps) runs out; calls save(step) every `save_every` steps.
template <class Save>
void train(model_t& m, cpc::adam<float>& opt, const split& data, const settings& s, Save&& save) {
  constexpr std::size_t save_every = 1000;
  cpc::rng order(s.seed + 100);
  std::vector<std::size_t> idx(data.labels.size());
  std::iota(idx.begin(), idx.end(), 0);
  cpc::tensor4<float> batch;
  const auto t0 = clock_type::now();
  double loss_avg = 0;
  std::vector<double> acc_avg(s.steps_ahead, 0.0);
  std::size_t pos = idx.size(), window = 0;
  std::printf("training: %zu parameters, batch %zu, %.1f min", m.parameter_count(), s.batch, s.minutes);
  if (s.steps > 0) std::printf(" or %zu steps", s.steps);
  std::printf("\n");
  for (std::size_t step = 1; s.steps == 0 || step <= s.steps; ++step) {
    if (pos + s.batch > idx.size()) {
      for (std::size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[order.uniform_int(i)]);
      pos = 0;
    }
    copy_images(data.images, idx, pos, s.batch, batch);
    pos += s.batch;
    const auto r = m.train_step(batch, opt);
    if (!std::isfinite(r.loss))
      throw cpc::numeric_error("loss is not finite at step " + std::to_string(step));
    loss_avg += r.loss;
    for (std::size_t k = 0; k < acc_avg.size(); ++k) acc_avg[k] += r.accuracy[k];
    ++window;
    const double elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();
    const bool out_of_time = elapsed > 60.0 * s.minutes;
    if (step % 100 == 0 || step == s.steps || out_of_time) {
      const auto n = static_cast<double>(window);
      std::printf("  step %5zu  loss %.3f (chance %.3f)  acc(k=1..%zu)", step, loss_avg / n, r.log_candidates,
                  acc_avg.size());
      for (double& a : acc_avg) std::printf(" %.3f", a / n);
      std::printf(" (chance %.3f)  %.1f img/s\n", r.chance, static_cast<double>(step * s.batch) / elapsed);
      std::fflush(stdout);
      loss_avg = 0;
      std::fill(acc_avg.begin(), acc_avg.end(), 0.0);
      window = 0;
    }
    if (step % save_every == 0) save(step);
    if (out_of_time) {
      std::printf("  time budget reached after %zu steps\n", step);
      break;
    }
  }
}

// Patch latents of n images: mean over the grid [N, channels] and the whole grid [N, cells * channels].
struct image_features {
  cpc::tensor2<float> mean, grid;
};
image_features features(model_t& m, const cpc::tensor4<float>& images, std::size_t n) {
  const std::size_t D = m.config().encoder.channels, chunk = 256;
  image_features out;
  std::vector<std::size_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  cpc::tensor4<float> batch, z;
  for (std::size_t b0 = 0; b0 < n; b0 += chunk) {
    const std::size_t nb = std::min(chunk, n - b0);
    copy_images(images, idx, b0, nb, batch);
    m.encode_latents(batch, z);
    const std::size_t cells = z.shape()[1] * z.shape()[2];
    if (b0 == 0) {
      out.mean = xt::zeros<float>({n, D});
      out.grid = xt::zeros<float>({n, cells * D});
    }
    std::copy_n(z.data(), nb * cells * D, out.grid.data() + b0 * cells * D);
    for (std::size_t b = 0; b < nb; ++b)
      for (std::size_t q = 0; q < cells; ++q)
        for (std::size_t d = 0; d < D; ++d)
          out.mean(b0 + b, d) += z.data()[(b * cells + q) * D + d] / static_cast<float>(cells);
  }
  return out;
}

cpc::tensor2<float> raw_pixels(const cpc::tensor4<float>& images, std::size_t n) {
  const std::size_t per = images.size() / images.shape()[0];
  cpc::tensor2<float> out = xt::zeros<float>({n, per});
  std::copy_n(images.data(), n * per, out.data());
  return out;
}

double probe_accuracy(const cpc::tensor2<float>& xtr, std::span<const int> ytr,
                      const cpc::tensor2<float>& xte, std::span<const int> yte, const settings& s) {
  cpc::linear_probe<float> p(xtr.shape()[1], 10,
                             {.epochs = s.probe_epochs, .learning_rate = 1e-3, .seed = s.seed});
  p.fit(xtr, ytr);
  return p.accuracy(xte, yte);
}

// Writes a PGM: each row is a test query followed by its nearest probe-training images (cosine
// similarity of standardised features).
void neighbours_picture(const std::string& path, const cpc::tensor2<float>& ftr, const split& train,
                        const cpc::tensor2<float>& fte, const split& test, std::size_t queries,
                        std::size_t k) {
  const std::size_t D = ftr.shape()[1], ntr = ftr.shape()[0];
  k = std::min(k, ntr);
  std::vector<double> mean(D, 0), sd(D, 0);
  for (std::size_t i = 0; i < ntr; ++i)
    for (std::size_t d = 0; d < D; ++d) mean[d] += ftr(i, d) / static_cast<double>(ntr);
  for (std::size_t i = 0; i < ntr; ++i)
    for (std::size_t d = 0; d < D; ++d) sd[d] += std::pow(ftr(i, d) - mean[d], 2) / static_cast<double>(ntr);
  auto norm_row = [&](const cpc::tensor2<float>& f, std::size_t i) {
    std::vector<double> v(D);
    double n2 = 1e-12;
    for (std::size_t d = 0; d < D; ++d) {
      v[d] = (f(i, d) - mean[d]) / std::sqrt(sd[d] + 1e-12);
      n2 += v[d] * v[d];
    }
    for (auto& x : v) x /= std::sqrt(n2);
    return v;
  };
  std::vector<std::vector<double>> tr(ntr);
  for (std::size_t i = 0; i < ntr; ++i) tr[i] = norm_row(ftr, i);
  const std::size_t cell = 30, W = (k + 1) * cell, H = queries * cell;
  std::vector<unsigned char> img(W * H, 255);
  auto put = [&](const cpc::tensor4<float>& src, std::size_t n, std::size_t row, std::size_t col) {
    for (std::size_t y = 0; y < 28; ++y)
      for (std::size_t x = 0; x < 28; ++x)
        img[(row * cell + 1 + y) * W + col * cell + 1 + x] =
            static_cast<unsigned char>(255 - std::clamp(src(n, y, x, 0), 0.f, 1.f) * 255);
  };
  for (std::size_t q = 0; q < queries; ++q) {
    const std::size_t qi = q * (fte.shape()[0] / queries);
    const auto v = norm_row(fte, qi);
    std::vector<std::pair<double, std::size_t>> sim(ntr);
    for (std::size_t i = 0; i < ntr; ++i)
      sim[i] = {-std::inner_product(v.begin(), v.end(), tr[i].begin(), 0.0), i};
    std::partial_sort(sim.begin(), sim.begin() + static_cast<std::ptrdiff_t>(k), sim.end());
    put(test.images, qi, q, 0);
    for (std::size_t j = 0; j < k; ++j) put(train.images, sim[j].second, q, j + 1);
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
  const auto ftr = features(m, train.images, ntr), fte = features(m, test.images, nte);
  const double cpc_acc = probe_accuracy(ftr.mean, ytr, fte.mean, yte, s);
  const double cpc_grid = probe_accuracy(ftr.grid, ytr, fte.grid, yte, s);
  model_t random_model(model_options(s));  // same architecture and seed, untrained
  const auto rtr = features(random_model, train.images, ntr), rte = features(random_model, test.images, nte);
  const double random_acc = probe_accuracy(rtr.mean, ytr, rte.mean, yte, s);
  const double random_grid = probe_accuracy(rtr.grid, ytr, rte.grid, yte, s);
  const double raw_acc =
      probe_accuracy(raw_pixels(train.images, ntr), ytr, raw_pixels(test.images, nte), yte, s);
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
      const auto save = [&](std::size_t) { cpc::save_checkpoint(ckpt, m, opt, {}, meta); };
      train(m, opt, train_set, s, save);
      save(0);
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
