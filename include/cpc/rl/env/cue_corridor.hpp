#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "cpc/core/error.hpp"
#include "cpc/core/random.hpp"
#include "cpc/rl/env/grid.hpp"

namespace cpc::rl {

/// Options of `cue_corridor`; defaults give a corridor of 8 squares, a 5 x 5 view and 30-step episodes.
struct cue_corridor_options {
  std::size_t length = 7;
  std::size_t view_radius = 2;
  std::size_t max_steps = 30;
};

/// A T-maze whose rewarded arm is shown only at the start (Bakker 2002's T-maze; the memory
/// component of DeepMind Lab's tasks in the paper's section 3.4).
///
/// Layout: a corridor of `length` + 1 floor squares (row 1, columns 0..length) with two arm
/// squares at its far end, north (0, length) and south (2, length); everything else is wall. The
/// agent starts at (1, 0). Each episode draws the rewarded arm; the start square shows the cue:
/// channel 1 set for north, channel 2 for south. With `length` > 2 `view_radius` the cue and the
/// junction are never in view together, so the cue must be remembered.
///
/// Observation `[2 view_radius + 1, 2 view_radius + 1, 3]` (north up, centred on the agent):
/// channel 0 wall (outside the grid reads as wall), channel 1 north cue, channel 2 south cue.
/// Actions: 4, move north / east / south / west (`grid_moves`); a move into a wall stays put.
/// Reward: +1 for entering the cued arm, -1 for entering the other; 0 otherwise.
/// Episode end: on entering either arm, or after `max_steps` steps.
/// Determinism: the cue sequence comes from the generator seeded at construction.
class cue_corridor {
 public:
  /// Options (see `cue_corridor_options`).
  using options = cue_corridor_options;

  /// Errors: `cpc::config_error` for length < 1, view_radius < 1 or max_steps < 1.
  explicit cue_corridor(std::uint64_t seed, options opt = {})
      : opt_(opt), gen_(seed), grid_(3, opt.length + 1, 2) {
    if (opt.length < 1)
      throw config_error("cue_corridor: expected length >= 1, got " + std::to_string(opt.length));
    if (opt.view_radius < 1)
      throw config_error("cue_corridor: expected view_radius >= 1, got " + std::to_string(opt.view_radius));
    if (opt.max_steps < 1)
      throw config_error("cue_corridor: expected max_steps >= 1, got " + std::to_string(opt.max_steps));
    for (std::size_t c = 0; c <= opt.length; ++c) grid_.set_wall(1, c, false);
    grid_.set_wall(0, opt.length, false);
    grid_.set_wall(2, opt.length, false);
    reset();
  }

  /// Observation shape, 4 actions, the episode length.
  env_spec spec() const {
    const std::size_t side = 2 * opt_.view_radius + 1;
    return {"cue_corridor", side, side, 3, grid_moves, opt_.max_steps};
  }

  /// Starts a new episode: draws the cued arm, puts the agent at the start.
  void reset() {
    north_ = gen_.uniform_int(2) == 0;
    grid_.clear_paint();
    grid_.paint(1, 0, north_ ? 0 : 1) = 1.0f;
    row_ = 1;
    col_ = 0;
    t_ = 0;
  }

  /// Writes the current observation (`spec().observation_size()` floats, `[h, w, 3]`) to `out`.
  void observe(float* out) const { grid_.render(row_, col_, opt_.view_radius, out); }

  /// Moves by `action`; +1 / -1 and done on entering the cued / other arm; done at the time limit.
  /// Does not reset: call `reset()` after `done`.
  /// Errors: `cpc::config_error` for an action outside [0, 4).
  step_result step(int action) {
    grid_.move(row_, col_, action);
    step_result r;
    if (row_ != 1) {
      r.reward = (row_ == 0) == north_ ? 1.0f : -1.0f;
      r.done = true;
    }
    if (++t_ >= opt_.max_steps) r.done = true;
    return r;
  }

  /// Whether this episode's cued arm is the north one.
  bool cue_north() const { return north_; }
  /// The agent's square (row, column).
  std::pair<std::size_t, std::size_t> agent() const { return {row_, col_}; }

 private:
  options opt_;
  rng gen_;
  grid_world grid_;
  bool north_ = true;
  std::size_t row_ = 1, col_ = 0, t_ = 0;
};

}  // namespace cpc::rl
