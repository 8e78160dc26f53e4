#pragma once
/// The training loop of every model (audio, images, and the text and reinforcement-learning models
/// to come): batches from a source, schedule, gradients, finiteness checks, clipping, optimiser
/// step, a one-line progress display, a CSV log, periodic atomic checkpoints, and how long each
/// step waited for its data.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>

#include "cpc/core/error.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/data/negative_sampler.hpp"
#include "cpc/loss/info_nce.hpp"
#include "cpc/optim/clip.hpp"
#include "cpc/optim/schedule.hpp"
#include "cpc/train/checkpoint.hpp"
#include "cpc/train/distributed.hpp"

namespace cpc {

/// What `cpc::train` needs of a model: its batch type (`Model::batch_type`, e.g.
/// `cpc::audio_batch<T>` for `cpc::model`, `cpc::image_batch<T>` for `cpc::image_model`), the
/// gradients of one batch as an `info_nce_result`, its parameters, and its loss's K (`config().loss`).
template <class M>
concept trainable_model = requires(M m, const typename M::batch_type& b) {
  typename M::value_type;
  typename M::backend_type;
  { m.compute_gradients(b) } -> std::same_as<info_nce_result>;
  m.parameters();
  m.config().loss.steps;
  m.config().loss.reduction;
};

/// Where `cpc::train` takes its batches from: an object with `next(Batch&)` (`cpc::window_sampler`,
/// `cpc::prefetching_sampler`, `cpc::image_sampler`) or a callable `f(Batch&)`. Either refills the
/// batch it is given (the trainer reuses one instance, so buffers are reused).
template <class S, class Batch>
concept batch_source = requires(S& s, Batch& b) {
  s.next(b);
}
|| std::invocable<S&, Batch&>;

/// Settings of `train`. A run stops after `max_steps` optimiser steps in total (counting those of
/// a resumed run) or after `max_seconds` of wall time in this call, whichever comes first (0 = no
/// limit; at least one of them must be set).
struct train_options {
  std::uint64_t max_steps = 0;
  double max_seconds = 0;
  double clip_norm = 0;                     ///< gradient-norm clipping threshold; 0 = off
  std::filesystem::path csv_path{};         ///< per-step CSV log (a line flushed per step); empty = none
  std::filesystem::path checkpoint_path{};  ///< empty = no checkpoints
  std::uint64_t checkpoint_every = 0;       ///< steps between checkpoints (0 = only at the end)
  bool progress = true;                     ///< the one-line progress display on `out`
  std::ostream* out = &std::cerr;
  /// Warn once when, after this many steps, the loss is still within `chance_margin` (relative)
  /// of the chance loss: the model has not left chance (REFERENCE.md: warm-up and head init fix it).
  std::uint64_t chance_warning_after = 200;
  double chance_margin = 0.02;
  /// Without a terminal, a progress line every this many steps (and at step 1).
  std::uint64_t progress_every = 10;
  named_generators generators{};  ///< saved in checkpoints with the model's own (e.g. the data sampler's)
  safetensors_metadata metadata{};
  /// Data-parallel training (cpc/train/distributed.hpp): the group of processes that train this
  /// model together, each on its own batches; null (or a group of one) = this process alone. Every
  /// rank calls `train` with the same options; only rank 0 writes the CSV, the checkpoint and the
  /// progress line.
  communicator* comm = nullptr;
};

/// What a `train` call did.
struct train_summary {
  std::uint64_t steps = 0;      ///< total optimiser steps after the call
  std::uint64_t steps_run = 0;  ///< steps run in this call
  double seconds = 0;
  /// Seconds this call's steps spent waiting for the batch source (the rest of `seconds` is
  /// training and logging); near 0 when batches are prepared ahead (`cpc::prefetching_sampler`).
  double data_seconds = 0;
  info_nce_result last;          ///< the last step's result
  bool left_chance = false;      ///< whether the loss went below (1 - chance_margin) x chance
  double allreduce_seconds = 0;  ///< time spent averaging gradients over the ranks (waits included)
};

namespace detail {
inline std::string format_duration(double s) {
  const long total = std::lround(std::max(0.0, s));
  std::ostringstream os;
  if (total >= 3600) os << total / 3600 << 'h';
  if (total >= 60) os << (total / 60) % 60 << 'm';
  os << total % 60 << 's';
  return os.str();
}

/// The chance-level value of `r.loss`: log(N + 1), times K when the steps are summed.
inline double chance_loss(const info_nce_result& r, bool summed) {
  return summed ? r.log_candidates * static_cast<double>(r.accuracy.size()) : r.log_candidates;
}

inline double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}
}  // namespace detail

/// Trains `m` with `opt` on batches of `Model::batch_type` from `source` (a `batch_source`)
/// until `o.max_steps` or `o.max_seconds`. Before each step the learning rate is
/// `schedule.lr_at(opt.steps())`, so a resumed run continues its schedule. CSV columns: step,
/// seconds (since the call began), lr, loss, accuracy_mean, grad_norm, data_seconds (this step's
/// wait for its batch), accuracy_1..accuracy_K (appended when the file exists and a run resumes).
/// Errors: `cpc::numeric_error` "training step <n>: ..." when the loss or a gradient is not finite
/// (no optimiser step is taken, and the last checkpoint on disk stays intact); `cpc::config_error`
/// when neither limit is set; `cpc::io_error` when the CSV or a checkpoint cannot be written (the
/// checkpoint is first written before step 1, so a bad path fails at once);
/// errors of the model and the batch source. With `o.comm`: losses, accuracies and gradients are
/// the means over the ranks (so every rank throws the same numeric_error at the same step), rank
/// 0's write errors are every rank's, and `cpc::communication_error` when a rank died or hangs.
template <trainable_model Model, class Optimizer, class Schedule,
          batch_source<typename Model::batch_type> Source>
train_summary train(Model& m, Optimizer& opt, const Schedule& schedule, Source&& source,
                    const train_options& o) {
  using backend = typename Model::backend_type;
  using T = typename Model::value_type;
  if (o.max_steps == 0 && o.max_seconds <= 0)
    throw config_error("train: expected max_steps > 0 or max_seconds > 0");
  const bool lead = detail::leads(o.comm);
  std::ofstream csv;
  if (!o.csv_path.empty() && lead) {
    const bool append = opt.steps() > 0 && std::filesystem::exists(o.csv_path);
    csv.open(o.csv_path, append ? std::ios::app : std::ios::trunc);
    if (!csv) throw io_error("train: cannot write the CSV log " + o.csv_path.string());
    if (!append) {
      csv << "step,seconds,lr,loss,accuracy_mean,grad_norm,data_seconds";
      for (std::size_t k = 1; k <= m.config().loss.steps; ++k) csv << ",accuracy_" << k;
      csv << '\n';
    }
  }
  const bool progress = o.progress && lead;
  const bool tty = progress && o.out == &std::cerr && isatty(STDERR_FILENO);
  const bool summed = m.config().loss.reduction == step_reduction::sum;
  const auto& params = m.parameters();
  typename Model::batch_type batch;
  train_summary s;
  bool warned = false;
  const auto t0 = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  const auto save = [&] {
    detail::save_replicated(o.comm, o.checkpoint_path, m, opt, o.generators, o.metadata);
  };
  if (detail::distributed(o.comm)) detail::start_replicas(*o.comm, m, opt, o.generators);
  // Save once before the first step: an unwritable checkpoint path fails now, not after the run.
  save();
  while (detail::lead_decides(
      o.comm,
      (o.max_steps == 0 || opt.steps() < o.max_steps) && (o.max_seconds <= 0 || elapsed() < o.max_seconds),
      o.max_seconds > 0)) {
    const std::uint64_t step = opt.steps() + 1;
    const double lr = apply_schedule(schedule, opt);
    const double before_data = elapsed();
    if constexpr (requires { source.next(batch); })
      source.next(batch);
    else
      source(batch);
    const double waited = elapsed() - before_data;
    s.data_seconds += waited;
    info_nce_result r = m.compute_gradients(batch);
    if (detail::distributed(o.comm))
      s.allreduce_seconds += detail::average_replicas<T, backend>(*o.comm, params, r);
    if (!std::isfinite(r.loss))
      throw numeric_error("training step " + std::to_string(step) + ": the loss is " +
                          std::to_string(r.loss) +
                          " (lower the learning rate or enable clipping; the last checkpoint is intact)");
    if (const auto bad = find_nonfinite_gradient<T, backend>(params); bad.found)
      throw numeric_error("training step " + std::to_string(step) + ": non-finite gradient in '" +
                          params[bad.param].first + "' (the last checkpoint is intact)");
    const double norm =
        o.clip_norm > 0 ? clip_grad_norm<T, backend>(params, o.clip_norm) : gradient_norm<T, backend>(params);
    opt.step();
    ++s.steps_run;
    s.last = r;
    const double chance = detail::chance_loss(r, summed);
    if (r.loss < (1 - o.chance_margin) * chance) s.left_chance = true;
    const double t = elapsed();
    const double acc = detail::mean_of(r.accuracy);
    if (csv) {
      csv << step << ',' << t << ',' << lr << ',' << r.loss << ',' << acc << ',' << norm << ',' << waited;
      for (double a : r.accuracy) csv << ',' << a;
      csv << std::endl;  // each step's line on disk at once: `tail -f`, and a killed run loses none
    }
    if (progress) {
      const double rate = static_cast<double>(s.steps_run) / std::max(t, 1e-9);
      double eta = 0;
      if (o.max_steps > 0) eta = static_cast<double>(o.max_steps - step) / rate;
      if (o.max_seconds > 0) eta = o.max_steps > 0 ? std::min(eta, o.max_seconds - t) : o.max_seconds - t;
      std::ostringstream line;
      line << "step " << step;
      if (o.max_steps > 0) line << '/' << o.max_steps;
      line << std::fixed << std::setprecision(2) << " | " << rate << " steps/s | loss "
           << std::setprecision(3) << r.loss << " (chance " << chance << ") | acc " << acc << " | data wait "
           << std::setprecision(1) << 1000 * s.data_seconds / static_cast<double>(s.steps_run)
           << " ms/step | lr " << std::scientific << std::setprecision(1) << lr << " | ETA "
           << detail::format_duration(eta);
      if (tty)
        *o.out << '\r' << line.str() << "\033[K" << std::flush;
      else if (step == 1 || (o.progress_every > 0 && step % o.progress_every == 0))
        *o.out << line.str() << '\n';
    }
    if (!warned && !s.left_chance && s.steps_run >= o.chance_warning_after && lead) {
      warned = true;
      *o.out << (tty ? "\n" : "") << "warning: after " << s.steps_run << " steps the loss " << r.loss
             << " is still within " << 100 * o.chance_margin << "% of chance (" << chance
             << "): the model has not left chance - use a learning-rate warm-up, predictor_init::normal,"
                " or a larger learning rate\n";
    }
    if (o.checkpoint_every > 0 && step % o.checkpoint_every == 0) save();
  }
  if (tty) *o.out << '\n';
  save();
  s.steps = opt.steps();
  s.seconds = elapsed();
  return s;
}

}  // namespace cpc
