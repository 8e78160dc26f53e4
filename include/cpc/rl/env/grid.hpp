#pragma once
/// What the reinforcement-learning environments of cpc::rl share (issue 17, paper section 3.4):
/// the description of an environment's observation and actions, one step's outcome, and a grid
/// world rendered as a partial, agent-centred pixel view. Observations follow the library's image
/// layout (`[height, width, channels]` per environment, `[envs, height, width, channels]` batched,
/// as `cpc::conv2d` takes them), one pixel per grid cell.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cpc/core/error.hpp"

namespace cpc::rl {

/// An environment's observation shape `[height, width, channels]`, its number of discrete actions
/// and its episode length limit in steps.
struct env_spec {
  std::string name;
  std::size_t height = 0, width = 0, channels = 0;
  std::size_t actions = 0;
  std::size_t max_steps = 0;
  /// Scalars per observation (height * width * channels).
  std::size_t observation_size() const { return height * width * channels; }
};

/// One step's outcome: the reward it earned and whether the episode ended with it.
struct step_result {
  float reward = 0;
  bool done = false;
};

/// The four moves of the grid environments: 0 north (row - 1), 1 east (column + 1), 2 south
/// (row + 1), 3 west (column - 1).
inline constexpr int grid_moves = 4;

/// A rectangular grid of cells, each a wall or floor, with per-cell colour channels; the outside
/// of the grid reads as wall. Used by `memory_maze` and `cue_corridor`.
class grid_world {
 public:
  /// Cell channels of the rendered view: 0 wall, then `extra` channels the environment paints.
  grid_world(std::size_t rows, std::size_t cols, std::size_t extra_channels)
      : rows_(rows),
        cols_(cols),
        channels_(1 + extra_channels),
        wall_(rows * cols, 1),
        paint_(rows * cols * extra_channels, 0.0f) {}

  std::size_t rows() const { return rows_; }
  std::size_t cols() const { return cols_; }
  /// Channels of a rendered pixel (wall + the extra ones).
  std::size_t channels() const { return channels_; }
  /// Whether (r, c) is a wall; outside the grid is wall.
  bool wall(std::ptrdiff_t r, std::ptrdiff_t c) const {
    if (r < 0 || c < 0 || r >= static_cast<std::ptrdiff_t>(rows_) || c >= static_cast<std::ptrdiff_t>(cols_))
      return true;
    return wall_[static_cast<std::size_t>(r) * cols_ + static_cast<std::size_t>(c)] != 0;
  }
  void set_wall(std::size_t r, std::size_t c, bool w) { wall_[r * cols_ + c] = w ? 1 : 0; }
  /// Extra channel k (0-based, rendered as channel k + 1) of cell (r, c).
  float& paint(std::size_t r, std::size_t c, std::size_t k) {
    return paint_[(r * cols_ + c) * (channels_ - 1) + k];
  }
  /// Clears every extra channel.
  void clear_paint() { std::fill(paint_.begin(), paint_.end(), 0.0f); }
  /// Makes every cell a wall and clears the paint.
  void fill_walls() {
    std::fill(wall_.begin(), wall_.end(), 1);
    clear_paint();
  }

  /// The cell one move away from (r, c), or (r, c) itself when that cell is a wall.
  /// Errors: `cpc::config_error` for a move outside [0, 4).
  void move(std::size_t& r, std::size_t& c, int action) const {
    static constexpr int dr[4] = {-1, 0, 1, 0}, dc[4] = {0, 1, 0, -1};
    if (action < 0 || action >= grid_moves)
      throw config_error("grid_world: expected an action in [0, 4), got " + std::to_string(action));
    const std::ptrdiff_t nr = static_cast<std::ptrdiff_t>(r) + dr[action];
    const std::ptrdiff_t nc = static_cast<std::ptrdiff_t>(c) + dc[action];
    if (wall(nr, nc)) return;
    r = static_cast<std::size_t>(nr);
    c = static_cast<std::size_t>(nc);
  }

  /// Renders the (2 radius + 1)^2 cells centred on (r, c), north up, into `out`
  /// `[2 radius + 1, 2 radius + 1, channels()]`: channel 0 is 1 for walls (and outside the grid),
  /// the extra channels carry the paint of floor and wall cells alike.
  void render(std::size_t r, std::size_t c, std::size_t radius, float* out) const {
    const std::ptrdiff_t rad = static_cast<std::ptrdiff_t>(radius);
    for (std::ptrdiff_t i = -rad; i <= rad; ++i)
      for (std::ptrdiff_t j = -rad; j <= rad; ++j) {
        const std::ptrdiff_t rr = static_cast<std::ptrdiff_t>(r) + i, cc = static_cast<std::ptrdiff_t>(c) + j;
        const bool inside = rr >= 0 && cc >= 0 && rr < static_cast<std::ptrdiff_t>(rows_) &&
                            cc < static_cast<std::ptrdiff_t>(cols_);
        *out++ = wall(rr, cc) ? 1.0f : 0.0f;
        for (std::size_t k = 0; k + 1 < channels_; ++k)
          *out++ = inside ? paint_[(static_cast<std::size_t>(rr) * cols_ + static_cast<std::size_t>(cc)) *
                                       (channels_ - 1) +
                                   k]
                          : 0.0f;
      }
  }

 private:
  std::size_t rows_, cols_, channels_;
  std::vector<unsigned char> wall_;
  std::vector<float> paint_;
};

}  // namespace cpc::rl
