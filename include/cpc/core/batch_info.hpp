#pragma once
/// What a batch says about its items besides the input itself: valid lengths (padding) and
/// speaker ids. Shared by samplers, losses, models and the trainer.
/// Source: project convention; padding masks per REFERENCE.md pitfall 11.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cpc/core/error.hpp"

namespace cpc {

/// Per-batch side information. `lengths[b]`: valid frames of item b (frames t >= lengths[b] are
/// padding: never a negative, never an anchor or target); empty means every item has T frames.
/// `speakers[b]`: speaker id of item b, needed by `negative_policy::same_speaker`.
struct batch_info {
  std::vector<std::size_t> lengths{};
  std::vector<std::int64_t> speakers{};
};

/// Checks `info` against a batch of `batch` items of `time` frames and returns the lengths
/// (filled with `time` when empty). Errors: `cpc::config_error` for a wrong number of lengths or
/// speakers, or a length above `time`.
inline std::vector<std::size_t> resolve_lengths(std::string_view where, const batch_info& info,
                                                std::size_t batch, std::size_t time) {
  if (!info.speakers.empty() && info.speakers.size() != batch)
    throw config_error(std::string(where) + ": expected " + std::to_string(batch) + " speaker ids, got " +
                       std::to_string(info.speakers.size()));
  if (info.lengths.empty()) return std::vector<std::size_t>(batch, time);
  if (info.lengths.size() != batch)
    throw config_error(std::string(where) + ": expected " + std::to_string(batch) + " lengths, got " +
                       std::to_string(info.lengths.size()));
  for (std::size_t b = 0; b < batch; ++b)
    if (info.lengths[b] > time)
      throw config_error(std::string(where) + ": length of item " + std::to_string(b) + " is " +
                         std::to_string(info.lengths[b]) + ", expected <= " + std::to_string(time));
  return info.lengths;
}

}  // namespace cpc
