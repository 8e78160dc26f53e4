#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cpc/core/error.hpp"
#include "cpc/core/random.hpp"
#include "cpc/rl/env/grid.hpp"

namespace cpc::rl {

/// Options of `memory_maze`; defaults give a 11 x 11 maze, a 5 x 5 view and 100-step episodes.
struct memory_maze_options {
  std::size_t cells = 5;           // lattice cells per side (maze side = 2 cells + 1)
  std::size_t extra_openings = 6;  // walls knocked out after carving (loops)
  std::size_t view_radius = 2;     // view side = 2 view_radius + 1
  std::size_t max_steps = 100;     // episode length
};

/// A partially observed maze whose goal must be found and then remembered, after DeepMind Lab's
/// explore_goal_locations (the paper's section 3.4 tasks; Beattie et al. 2016).
///
/// Each episode draws a new maze: a perfect maze on a `cells` x `cells` lattice (depth-first
/// carving, grid of 2 cells + 1 squares), then `extra_openings` further walls between lattice
/// cells knocked out so that loops exist. Every floor square gets a random texture value from
/// {0.25, 0.5, 0.75, 1} (landmarks for localisation). The goal sits on a random floor square, the
/// agent starts on another.
///
/// Observation `[2 view_radius + 1, 2 view_radius + 1, 3]` (north up, centred on the agent; the
/// agent is the centre pixel): channel 0 wall (1) or floor (0), outside the maze reads as wall;
/// channel 1 the goal (1 on its square); channel 2 the floor texture.
/// Actions: 4, move north / east / south / west (`grid_moves`); a move into a wall stays put.
/// Reward: +1 for each step that enters the goal square; the agent is then respawned on a random
/// floor square other than the goal (so returning to a remembered goal pays again).
/// Episode end: after `max_steps` steps (a time limit only).
/// Determinism: everything random comes from the generator seeded at construction, so the same
/// seed and actions replay the same episodes.
class memory_maze {
 public:
  /// Options (see `memory_maze_options`).
  using options = memory_maze_options;

  /// Errors: `cpc::config_error` for cells < 2, view_radius < 1 or max_steps < 1.
  explicit memory_maze(std::uint64_t seed, options opt = {})
      : opt_(opt), gen_(seed), grid_(2 * opt.cells + 1, 2 * opt.cells + 1, 2) {
    if (opt.cells < 2)
      throw config_error("memory_maze: expected cells >= 2, got " + std::to_string(opt.cells));
    if (opt.view_radius < 1)
      throw config_error("memory_maze: expected view_radius >= 1, got " + std::to_string(opt.view_radius));
    if (opt.max_steps < 1)
      throw config_error("memory_maze: expected max_steps >= 1, got " + std::to_string(opt.max_steps));
    reset();
  }

  /// Observation shape, 4 actions, the episode length.
  env_spec spec() const {
    const std::size_t side = 2 * opt_.view_radius + 1;
    return {"memory_maze", side, side, 3, grid_moves, opt_.max_steps};
  }

  /// Starts a new episode: new maze, goal and start.
  void reset() {
    carve();
    goal_ = random_floor(nullptr);
    grid_.paint(goal_.first, goal_.second, 0) = 1.0f;
    respawn();
    t_ = 0;
  }

  /// Writes the current observation (`spec().observation_size()` floats, `[h, w, 3]`) to `out`.
  void observe(float* out) const { grid_.render(row_, col_, opt_.view_radius, out); }

  /// Moves by `action`; +1 and a respawn when the goal is entered; done at the time limit.
  /// Does not reset: call `reset()` after `done`.
  /// Errors: `cpc::config_error` for an action outside [0, 4).
  step_result step(int action) {
    grid_.move(row_, col_, action);
    step_result r;
    if (row_ == goal_.first && col_ == goal_.second) {
      r.reward = 1.0f;
      respawn();
    }
    r.done = ++t_ >= opt_.max_steps;
    return r;
  }

  /// The agent's square (row, column) and the goal's, for tests and displays.
  std::pair<std::size_t, std::size_t> agent() const { return {row_, col_}; }
  std::pair<std::size_t, std::size_t> goal() const { return goal_; }
  /// The maze, for tests and displays.
  const grid_world& grid() const { return grid_; }

 private:
  void carve() {
    grid_.fill_walls();
    const std::size_t n = opt_.cells;
    std::vector<unsigned char> seen(n * n, 0);
    std::vector<std::size_t> stack{gen_.uniform_int(n * n)};
    seen[stack.back()] = 1;
    auto open = [&](std::size_t cell) { grid_.set_wall(2 * (cell / n) + 1, 2 * (cell % n) + 1, false); };
    open(stack.back());
    while (!stack.empty()) {
      const std::size_t cell = stack.back(), r = cell / n, c = cell % n;
      std::size_t next[4];
      std::size_t count = 0;
      if (r > 0 && !seen[cell - n]) next[count++] = cell - n;
      if (c + 1 < n && !seen[cell + 1]) next[count++] = cell + 1;
      if (r + 1 < n && !seen[cell + n]) next[count++] = cell + n;
      if (c > 0 && !seen[cell - 1]) next[count++] = cell - 1;
      if (count == 0) {
        stack.pop_back();
        continue;
      }
      const std::size_t to = next[gen_.uniform_int(count)];
      seen[to] = 1;
      open(to);
      grid_.set_wall(r + to / n + 1, c + to % n + 1,
                     false);  // the wall between (2r+1, 2c+1) and its neighbour
      stack.push_back(to);
    }
    // Loops: knock out random interior walls that separate two lattice cells.
    for (std::size_t k = 0; k < opt_.extra_openings; ++k) {
      for (int attempt = 0; attempt < 100; ++attempt) {
        const std::size_t r = 1 + gen_.uniform_int(2 * n - 1), c = 1 + gen_.uniform_int(2 * n - 1);
        const bool between = (r % 2 == 1) != (c % 2 == 1);  // odd row, even column or vice versa
        if (between && grid_.wall(static_cast<std::ptrdiff_t>(r), static_cast<std::ptrdiff_t>(c))) {
          grid_.set_wall(r, c, false);
          break;
        }
      }
    }
    for (std::size_t r = 0; r < grid_.rows(); ++r)
      for (std::size_t c = 0; c < grid_.cols(); ++c)
        if (!grid_.wall(static_cast<std::ptrdiff_t>(r), static_cast<std::ptrdiff_t>(c)))
          grid_.paint(r, c, 1) = 0.25f * static_cast<float>(1 + gen_.uniform_int(4));
  }

  /// A uniformly random floor square, other than `avoid` when given.
  std::pair<std::size_t, std::size_t> random_floor(const std::pair<std::size_t, std::size_t>* avoid) {
    for (;;) {
      const std::size_t r = gen_.uniform_int(grid_.rows()), c = gen_.uniform_int(grid_.cols());
      if (grid_.wall(static_cast<std::ptrdiff_t>(r), static_cast<std::ptrdiff_t>(c))) continue;
      if (avoid != nullptr && avoid->first == r && avoid->second == c) continue;
      return {r, c};
    }
  }

  void respawn() {
    const auto p = random_floor(&goal_);
    row_ = p.first;
    col_ = p.second;
  }

  options opt_;
  rng gen_;
  grid_world grid_;
  std::pair<std::size_t, std::size_t> goal_{0, 0};
  std::size_t row_ = 0, col_ = 0, t_ = 0;
};

}  // namespace cpc::rl
