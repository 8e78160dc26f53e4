#pragma once
/// Learning-rate schedules as plain value types with `double lr_at(std::uint64_t step) const`,
/// where `step` is the number of optimiser steps already taken (0 for the first update). Apply one
/// before each update with `cpc::apply_schedule(schedule, optimiser)`.
/// Warm-up exists because the paper-sized audio model can sit at chance for hundreds of steps
/// without it (REFERENCE.md, "Measured on the default-style corpus").
#include <cmath>
#include <cstdint>
#include <string>

#include "cpc/core/error.hpp"

namespace cpc {

/// A fixed learning rate.
struct constant_lr {
  double base_lr = 2e-4;
  double lr_at(std::uint64_t /*step*/) const { return base_lr; }
};

/// Linear warm-up: lr = base_lr * (step + 1) / warmup_steps for step < warmup_steps, then base_lr.
/// The first update uses base_lr / warmup_steps, update number warmup_steps (step = warmup_steps - 1)
/// the full rate; warmup_steps = 0 means no warm-up.
/// Source: torch.optim.lr_scheduler.LinearLR(start_factor = 1 / W, end_factor = 1, total_iters = W - 1).
struct linear_warmup {
  double base_lr = 2e-4;
  std::uint64_t warmup_steps = 0;
  double lr_at(std::uint64_t step) const {
    if (step >= warmup_steps) return base_lr;
    return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  }
};

/// Step decay: lr = base_lr * gamma^floor(step / step_size).
/// Errors: `lr_at` throws `cpc::config_error` when step_size == 0.
/// Source: torch.optim.lr_scheduler.StepLR.
struct step_decay {
  double base_lr = 2e-4;
  std::uint64_t step_size = 1;
  double gamma = 0.1;
  double lr_at(std::uint64_t step) const {
    if (step_size == 0) throw config_error("step_decay: expected step_size > 0, got 0");
    // Integer division on purpose: StepLR's exponent is floor(step / step_size).
    // NOLINTNEXTLINE(bugprone-integer-division)
    return base_lr * std::pow(gamma, static_cast<double>(step / step_size));
  }
};

/// Linear warm-up over `warmup_steps`, then step decay counted from the end of the warm-up:
/// lr_at(s) = linear_warmup(s) for s < W, else base_lr * gamma^floor((s - W) / step_size).
/// Errors: `lr_at` throws `cpc::config_error` when step_size == 0.
/// Source: torch.optim.lr_scheduler.SequentialLR([LinearLR, StepLR], milestones = [W]).
struct warmup_step_decay {
  double base_lr = 2e-4;
  std::uint64_t warmup_steps = 0;
  std::uint64_t step_size = 1;
  double gamma = 0.1;
  double lr_at(std::uint64_t step) const {
    if (step < warmup_steps) return linear_warmup{base_lr, warmup_steps}.lr_at(step);
    return step_decay{base_lr, step_size, gamma}.lr_at(step - warmup_steps);
  }
};

/// Cosine annealing from base_lr to 0 over `total_steps` updates:
/// lr_at(s) = base_lr * (1 + cos(pi * s / total_steps)) / 2 for s < total_steps, then 0. The first
/// update uses base_lr, the last (s = total_steps - 1) about base_lr * (pi / total_steps)^2 / 4.
/// total_steps = 0 means a constant base_lr. Used by `cpc::linear_probe`, so that a probe's final
/// weights settle instead of wandering with the last minibatches.
/// Source: torch.optim.lr_scheduler.CosineAnnealingLR(T_max = total_steps, eta_min = 0).
struct cosine_annealing {
  double base_lr = 1e-3;
  std::uint64_t total_steps = 0;
  double lr_at(std::uint64_t step) const {
    if (total_steps == 0) return base_lr;
    if (step >= total_steps) return 0.0;
    const double pi = 3.14159265358979323846;
    return base_lr * 0.5 *
           (1.0 + std::cos(pi * static_cast<double>(step) / static_cast<double>(total_steps)));
  }
};

/// Sets the optimiser's learning rate for its next update: `opt.set_learning_rate(s.lr_at(opt.steps()))`.
/// Returns the rate set. Errors: those of `lr_at` and `set_learning_rate`.
template <class Schedule, class Optimizer>
double apply_schedule(const Schedule& s, Optimizer& opt) {
  const double lr = s.lr_at(opt.steps());
  opt.set_learning_rate(lr);
  return lr;
}

}  // namespace cpc
