// The reinforcement-learning environments (include/cpc/rl/env): observation and action spaces as
// documented, rewards and episode ends, replay from the same seed, and the batched vector_env.
#include <doctest/doctest.h>

#include <cpc/rl/env/cue_corridor.hpp>
#include <cpc/rl/env/memory_maze.hpp>
#include <cpc/rl/env/vector_env.hpp>

#include <deque>
#include <set>
#include <vector>

using namespace cpc;
using namespace cpc::rl;

namespace {

/// Shortest sequence of moves from the agent to `target` (breadth-first search over floor).
std::vector<int> path_to(const grid_world& g, std::pair<std::size_t, std::size_t> from,
                         std::pair<std::size_t, std::size_t> target) {
  const std::size_t n = g.rows() * g.cols();
  std::vector<int> how(n, -1);
  std::vector<std::size_t> prev(n, n);
  std::deque<std::size_t> queue{from.first * g.cols() + from.second};
  prev[queue.front()] = queue.front();
  while (!queue.empty()) {
    const std::size_t cell = queue.front();
    queue.pop_front();
    for (int a = 0; a < grid_moves; ++a) {
      std::size_t r = cell / g.cols(), c = cell % g.cols();
      g.move(r, c, a);
      const std::size_t to = r * g.cols() + c;
      if (prev[to] != n) continue;
      prev[to] = cell;
      how[to] = a;
      queue.push_back(to);
    }
  }
  std::vector<int> moves;
  std::size_t cell = target.first * g.cols() + target.second;
  if (prev[cell] == n) return {-1};  // unreachable
  while (cell != prev[cell]) {
    moves.insert(moves.begin(), how[cell]);
    cell = prev[cell];
  }
  return moves;
}

template <class Env>
std::vector<float> observation(const Env& e) {
  std::vector<float> o(e.spec().observation_size());
  e.observe(o.data());
  return o;
}

}  // namespace

TEST_CASE("memory_maze: spec, connected maze, goal reward and respawn, time limit") {
  memory_maze env(7);
  const env_spec s = env.spec();
  CHECK(s.name == "memory_maze");
  CHECK(s.height == 5);
  CHECK(s.width == 5);
  CHECK(s.channels == 3);
  CHECK(s.actions == 4);
  CHECK(s.max_steps == 100);
  const grid_world& g = env.grid();
  CHECK(g.rows() == 11);
  // Every floor square reachable from the agent; the goal is on floor; centre pixel is floor.
  for (std::size_t r = 0; r < g.rows(); ++r)
    for (std::size_t c = 0; c < g.cols(); ++c)
      if (!g.wall(static_cast<std::ptrdiff_t>(r), static_cast<std::ptrdiff_t>(c)))
        CHECK(path_to(g, env.agent(), {r, c}) != std::vector<int>{-1});
  CHECK(env.agent() != env.goal());
  auto o = observation(env);
  const std::size_t centre = (2 * 5 + 2) * 3;
  CHECK(o[centre] == 0.0f);       // the agent stands on floor
  CHECK(o[centre + 1] == 0.0f);   // not on the goal
  CHECK(o[centre + 2] >= 0.25f);  // floor texture in {0.25, 0.5, 0.75, 1}
  for (std::size_t i = 0; i < o.size(); i += 3)
    if (o[i] == 1.0f) CHECK(o[i + 2] == 0.0f);  // walls carry no texture

  // Walk to the goal: 0 reward on the way, +1 on arrival, then respawned elsewhere.
  const auto goal = env.goal();
  const auto moves = path_to(g, env.agent(), goal);
  REQUIRE(!moves.empty());
  std::size_t t = 0;
  for (std::size_t k = 0; k < moves.size(); ++k, ++t) {
    const auto near = env.agent();
    const step_result r = env.step(moves[k]);
    CHECK(r.done == false);
    if (k + 1 < moves.size()) {
      CHECK(r.reward == 0.0f);
      CHECK(env.agent() != near);
    } else {
      CHECK(r.reward == 1.0f);
      CHECK(env.agent() != goal);
    }
  }
  CHECK(env.goal() == goal);  // the goal stays for the whole episode
  // Into a wall: stays put. Then the time limit ends the episode at exactly max_steps.
  step_result r;
  while (t < s.max_steps) {
    r = env.step(0);
    ++t;
    if (t < s.max_steps) CHECK(!r.done);
  }
  CHECK(r.done);
  CHECK_THROWS_AS(env.step(4), config_error);
  CHECK_THROWS_AS(memory_maze(1, {.cells = 1}), config_error);
}

TEST_CASE(
    "memory_maze and cue_corridor: the same seed and actions replay identically, another seed differs") {
  auto trace = [](auto env) {
    rng actions(99);
    std::vector<float> out;
    for (int t = 0; t < 250; ++t) {
      const auto o = observation(env);
      out.insert(out.end(), o.begin(), o.end());
      const step_result r = env.step(static_cast<int>(actions.uniform_int(4)));
      out.push_back(r.reward);
      out.push_back(r.done ? 1.0f : 0.0f);
      if (r.done) env.reset();
    }
    return out;
  };
  CHECK(trace(memory_maze(5)) == trace(memory_maze(5)));
  CHECK(trace(memory_maze(5)) != trace(memory_maze(6)));
  CHECK(trace(cue_corridor(5)) == trace(cue_corridor(5)));
  CHECK(trace(cue_corridor(5)) != trace(cue_corridor(6)));
  // New mazes each episode.
  memory_maze m(3, {.max_steps = 1});
  std::set<std::vector<float>> views;
  for (int e = 0; e < 5; ++e) {
    views.insert(observation(m));
    m.reset();
  }
  CHECK(views.size() > 1);
}

TEST_CASE("cue_corridor: the cue is seen only near the start; +1 for the cued arm, -1 for the other") {
  cue_corridor env(11);
  const env_spec s = env.spec();
  CHECK(s.height == 5);
  CHECK(s.channels == 3);
  CHECK(s.actions == 4);
  int rewarded = 0, punished = 0, north = 0;
  for (int episode = 0; episode < 20; ++episode) {
    const bool cue_north = env.cue_north();
    north += cue_north ? 1 : 0;
    auto o = observation(env);
    const std::size_t centre = (2 * 5 + 2) * 3;
    CHECK(o[centre + 1] == (cue_north ? 1.0f : 0.0f));
    CHECK(o[centre + 2] == (cue_north ? 0.0f : 1.0f));
    CHECK(o[(2 * 5 + 1) * 3] == 1.0f);  // west of the start: outside, wall
    for (int k = 0; k < 7; ++k) CHECK(env.step(1).done == false);
    o = observation(env);
    float cue_seen = 0;
    for (std::size_t i = 0; i < o.size(); i += 3) cue_seen += o[i + 1] + o[i + 2];
    CHECK(cue_seen == 0.0f);           // at the junction the cue is out of view
    CHECK(o[centre - 5 * 3] == 0.0f);  // north arm open
    CHECK(o[centre + 5 * 3] == 0.0f);  // south arm open
    const bool go_north = episode % 2 == 0;
    const step_result r = env.step(go_north ? 0 : 2);
    CHECK(r.done);
    CHECK(r.reward == (go_north == cue_north ? 1.0f : -1.0f));
    (r.reward > 0 ? rewarded : punished) += 1;
    env.reset();
  }
  CHECK(rewarded + punished == 20);
  CHECK(north > 3);
  CHECK(north < 17);
  // Time limit: 30 steps against the west wall, done at the 30th with reward 0.
  for (int t = 1; t <= 30; ++t) {
    const step_result r = env.step(3);
    CHECK(r.reward == 0.0f);
    CHECK(r.done == (t == 30));
  }
}

TEST_CASE("vector_env: batched observations, auto-reset at episode ends, finished returns, replay") {
  auto run = [](std::uint64_t seed) {
    vector_env<cue_corridor> envs(3, seed, {.length = 2, .max_steps = 4});
    tensor4<float> obs;
    envs.observe(obs);
    CHECK(obs.shape(0) == 3);
    CHECK(obs.shape(3) == 3);
    std::vector<float> rewards, dones, trace;
    for (int t = 0; t < 3; ++t) {
      envs.step({1, 1, 3}, obs, rewards, dones);
      CHECK(dones[2] == 0.0f);
      trace.insert(trace.end(), obs.begin(), obs.end());
    }
    // Envs 0 and 1 stand at the junction (step 2) and went east into the wall (step 3).
    envs.step({0, 2, 3}, obs, rewards, dones);
    CHECK(dones == std::vector<float>{1, 1, 1});  // arms entered; env 2 hit the 4-step limit
    CHECK(std::abs(rewards[0]) == 1.0f);
    CHECK(std::abs(rewards[1]) == 1.0f);
    CHECK(rewards[2] == 0.0f);
    for (std::size_t i = 0; i < 3; ++i)
      CHECK(envs.env(i).agent() == std::pair<std::size_t, std::size_t>{1, 0});
    std::vector<std::size_t> lengths;
    const auto returns = envs.take_finished(&lengths);
    CHECK(returns.size() == 3);
    CHECK(lengths == std::vector<std::size_t>{4, 4, 4});
    CHECK(returns[0] == rewards[0]);
    CHECK(envs.take_finished().empty());
    CHECK_THROWS_AS(envs.step({0}, obs, rewards, dones), shape_error);
    trace.insert(trace.end(), rewards.begin(), rewards.end());
    return trace;
  };
  CHECK(run(1) == run(1));
  CHECK_THROWS_AS(vector_env<memory_maze>(0, 1), config_error);
}
