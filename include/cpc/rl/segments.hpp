#pragma once
/// Episode segments of a rollout: how cpc::rl cuts a `[time, envs]` rollout at episode ends so
/// that the recurrent core restarts from a zero state at every episode start and the CPC
/// auxiliary loss never predicts across an episode boundary (paper section 3.4). Each segment
/// becomes one row of a packed `[segments, time, channels]` batch, zero-padded after its length;
/// the segment lengths are then the `batch_info::lengths` that `cpc::info_nce` masks with.
#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "cpc/core/error.hpp"
#include "cpc/core/tensor.hpp"

namespace cpc::rl {

/// Steps [start, start + length) of environment `env` within one rollout, all in one episode.
struct rollout_segment {
  std::size_t env = 0;
  std::size_t start = 0;
  std::size_t length = 0;
};

/// Cuts a rollout at episode ends: dones `[time, envs]`, 1 where the episode ended with that step
/// (the next step is a new episode's first). Segments are ordered by environment, then by start;
/// the first of each environment starts at 0 (it continues the episode of the previous rollout).
/// Errors: none.
template <class T>
std::vector<rollout_segment> episode_segments(const tensor<T, 2>& dones) {
  const std::size_t steps = dones.shape(0), envs = dones.shape(1);
  std::vector<rollout_segment> out;
  for (std::size_t e = 0; e < envs; ++e) {
    std::size_t start = 0;
    for (std::size_t t = 0; t < steps; ++t)
      if (dones(t, e) != T(0) || t + 1 == steps) {
        out.push_back({e, start, t + 1 - start});
        start = t + 1;
      }
  }
  return out;
}

/// The segment lengths, in order (`batch_info::lengths` of the packed batch).
inline std::vector<std::size_t> segment_lengths(const std::vector<rollout_segment>& segments) {
  std::vector<std::size_t> out;
  out.reserve(segments.size());
  for (const auto& s : segments) out.push_back(s.length);
  return out;
}

/// Packs time-major frames `[time * envs, channels]` (frame t * envs + e; any tensor of that many
/// rows, as a pointer) into `packed` `[segments, time, channels]`, zero after each segment's length.
/// Errors: `cpc::shape_error` when a segment runs past `steps`.
template <class T>
void pack_segments(const T* frames, std::size_t steps, std::size_t envs, std::size_t channels,
                   const std::vector<rollout_segment>& segments, tensor3<T>& packed) {
  ensure_shape(packed, std::array<std::size_t, 3>{segments.size(), steps, channels});
  packed.fill(T(0));
  for (std::size_t r = 0; r < segments.size(); ++r) {
    const rollout_segment& s = segments[r];
    if (s.start + s.length > steps || s.env >= envs)
      throw shape_error("pack_segments: segment " + std::to_string(r) + " (env " + std::to_string(s.env) +
                        ", steps " + std::to_string(s.start) + " + " + std::to_string(s.length) +
                        ") outside a rollout of " + std::to_string(steps) + " steps and " +
                        std::to_string(envs) + " envs");
    for (std::size_t j = 0; j < s.length; ++j) {
      const T* src = frames + ((s.start + j) * envs + s.env) * channels;
      std::copy(src, src + channels, &packed(r, j, 0));
    }
  }
}

/// The inverse of `pack_segments`: writes each segment row of `packed` `[segments, time, channels]`
/// back to its frames of `frames` `[time * envs, channels]` (padding is dropped). When the
/// segments cover the rollout (as `episode_segments` makes them), every frame is written.
template <class T>
void unpack_segments(const tensor3<T>& packed, std::size_t envs, const std::vector<rollout_segment>& segments,
                     T* frames) {
  const std::size_t channels = packed.shape(2);
  for (std::size_t r = 0; r < segments.size(); ++r) {
    const rollout_segment& s = segments[r];
    for (std::size_t j = 0; j < s.length; ++j) {
      const T* src = &packed(r, j, 0);
      std::copy(src, src + channels, frames + ((s.start + j) * envs + s.env) * channels);
    }
  }
}

}  // namespace cpc::rl
