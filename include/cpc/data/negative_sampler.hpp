#pragma once
/// Explicit, seeded negative sampling for InfoNCE (paper section 2 and Table 2: "mixed speaker",
/// "same speaker", "mixed speaker, excluding current sequence", "same speaker, excluding current
/// sequence", "current sequence only").
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cpc/core/batch_info.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/core/threads.hpp"

namespace cpc {

/// Where negatives come from. Candidates are always valid frames (t < length of their item);
/// padding is never drawn. For every anchor (b, t, k) the positive (b, t + k) is excluded exactly.
///  - `batch`: every valid frame of every item of the batch (the paper's "mixed speaker").
///  - `same_sequence`: valid frames of the anchor's own item only ("current sequence only").
///  - `other_sequences`: valid frames of every item except the anchor's ("excluding current
///    sequence"); the positive is never a candidate here.
///  - `same_speaker`: valid frames of every item whose speaker id equals the anchor's (the anchor's
///    own item included); needs `batch_info::speakers`.
///  - `same_speaker_other_sequences`: valid frames of the other items of the anchor's speaker (the
///    anchor's own item excluded; "same speaker, excluding current sequence"); needs
///    `batch_info::speakers` and at least two items per speaker (speaker-balanced batches).
/// Paper Table 2 rows: mixed speaker = `batch`, same speaker = `same_speaker`, mixed speaker
/// excluding the current sequence = `other_sequences`, same speaker excluding the current sequence
/// = `same_speaker_other_sequences`, current sequence only = `same_sequence`.
enum class negative_policy {
  batch,
  same_sequence,
  other_sequences,
  same_speaker,
  same_speaker_other_sequences
};

/// Whether each prediction step k draws its own negatives or all steps share one set per (b, t).
///  - `per_step` (default): one independent set per (k, b, t); only that step's positive
///    (b, t + k) is excluded, so every step sees exactly the InfoNCE estimator of eq. 4 with
///    negatives uniform over (candidates minus its positive).
///  - `shared`: one set per (b, t), reused for every k (as public CPC code does); it excludes all
///    of the anchor's positives (b, t + 1 .. t + K, those inside the item), so no step sees
///    another step's positive as a negative. Cost of drawing is K times lower.
/// In both cases the loss reads the same `[K, B, T, N]` index tensor.
enum class negative_sharing { per_step, shared };

/// The policy's name as written in code, e.g. "same_speaker".
inline std::string_view to_string(negative_policy p) {
  switch (p) {
    case negative_policy::batch:
      return "batch";
    case negative_policy::same_sequence:
      return "same_sequence";
    case negative_policy::other_sequences:
      return "other_sequences";
    case negative_policy::same_speaker:
      return "same_speaker";
    case negative_policy::same_speaker_other_sequences:
      return "same_speaker_other_sequences";
  }
  return "unknown";
}

/// Parses a policy name: `to_string`'s, or the same with '-' for '_' (command lines:
/// "same-speaker"). Errors: `cpc::config_error` "<what>: expected batch, same-sequence,
/// other-sequences, same-speaker or same-speaker-other-sequences, got '<s>'".
inline negative_policy parse_negative_policy(std::string_view s, std::string_view what = "negative policy") {
  std::string name(s);
  std::replace(name.begin(), name.end(), '-', '_');
  for (auto p : {negative_policy::batch, negative_policy::same_sequence, negative_policy::other_sequences,
                 negative_policy::same_speaker, negative_policy::same_speaker_other_sequences})
    if (name == to_string(p)) return p;
  throw config_error(std::string(what) +
                     ": expected batch, same-sequence, other-sequences, same-speaker or "
                     "same-speaker-other-sequences, got '" +
                     std::string(s) + "'");
}

/// Draws N negatives for every anchor (b, t, k) with t + k < length_b, k = 1..K.
/// Result: `indices()` of shape `[K, B, T, N]` (int32), entry [k-1, b, t, n] = flat frame index
/// b' * T + t' of the n-th negative of anchor (b, t, k); -1 where (b, t, k) has no term.
/// Sampling: i.i.d. uniform over the policy's candidates minus the excluded positive(s) - a draw
/// u from [0, M - E) over the M candidates (in flat-index order) is shifted past the E excluded
/// ones (a contiguous run), so exclusion is exact and the rest stay equally likely. Draws are with
/// replacement: duplicates can occur, and when fewer than N candidates exist they are certain
/// (no error). Determinism: one 64-bit seed is taken from the caller's `rng` per `sample` call;
/// fixed blocks (k, b) use streams derived from it, so the indices depend only on the seed, not on
/// the thread count. Errors: `cpc::config_error` naming the policy and the anchor when an anchor
/// has no candidate (e.g. `other_sequences` with one item), or for `same_speaker` without
/// speaker ids; see `resolve_lengths` for bad lengths.
class negative_sampler {
 public:
  /// Sampler settings; `steps` = K, `negatives` = N.
  struct options {
    negative_policy policy = negative_policy::batch;
    std::size_t negatives = 128;
    std::size_t steps = 12;
    negative_sharing sharing = negative_sharing::per_step;
  };

  /// Errors: `cpc::config_error` for zero steps or negatives.
  explicit negative_sampler(options opt) : opt_(opt) {
    if (opt.steps == 0 || opt.negatives == 0)
      throw config_error("negative_sampler: expected steps > 0 and negatives > 0");
  }

  const options& config() const { return opt_; }

  /// Draws all negatives of a `[batch, time]` frame grid into `indices()`.
  void sample(std::size_t batch, std::size_t time, const batch_info& info, rng& gen) {
    const auto len = resolve_lengths("negative_sampler", info, batch, time);
    const bool by_speaker = opt_.policy == negative_policy::same_speaker ||
                            opt_.policy == negative_policy::same_speaker_other_sequences;
    if (by_speaker && info.speakers.size() != batch)
      throw config_error("negative_sampler: policy " + std::string(to_string(opt_.policy)) + " needs " +
                         std::to_string(batch) + " speaker ids, got " + std::to_string(info.speakers.size()));
    const std::size_t K = opt_.steps, N = opt_.negatives;
    ensure_shape(indices_, std::array<std::size_t, 4>{K, batch, time, N});
    build_candidates(batch, time, len, info);
    // Check, in a fixed order, that every anchor has at least one candidate.
    for (std::size_t b = 0; b < batch; ++b) {
      if (len[b] < 2) continue;  // no anchor in this item
      const std::size_t excluded =
          own_offset_[b] < 0 ? 0 : (opt_.sharing == negative_sharing::shared ? std::min(K, len[b] - 1) : 1);
      if (count(b) <= excluded)
        throw config_error("negative_sampler: policy " + std::string(to_string(opt_.policy)) +
                           " has no negative candidate for anchor (b=" + std::to_string(b) +
                           ", t=0, k=1): " + std::to_string(count(b)) + " candidate frames, " +
                           std::to_string(excluded) + " excluded");
    }
    const std::uint64_t seed = gen.next();
    const std::size_t row = time * N;  // entries per (k, b)
    if (opt_.sharing == negative_sharing::per_step) {
      parallel_for(0, K * batch, [&](std::size_t blk) {
        const std::size_t k = blk / batch + 1, b = blk % batch;
        rng local(stream_seed(seed, blk));
        std::int32_t* out = indices_.data() + blk * row;
        for (std::size_t t = 0; t < time; ++t, out += N) {
          if (t + k >= len[b]) {
            std::fill(out, out + N, -1);
            continue;
          }
          draw(b, t + k, 1, N, local, out);
        }
      });
    } else {
      parallel_for(0, batch, [&](std::size_t b) {
        rng local(stream_seed(seed, b));
        std::int32_t* first = indices_.data() + b * row;  // k = 1 slice
        for (std::size_t t = 0; t < time; ++t) {
          std::int32_t* out = first + t * N;
          if (t + 1 >= len[b]) {
            std::fill(out, out + N, -1);
          } else {
            draw(b, t + 1, std::min(K, len[b] - 1 - t), N, local, out);
          }
          for (std::size_t k = 2; k <= K; ++k) {
            std::int32_t* dst = indices_.data() + ((k - 1) * batch + b) * row + t * N;
            if (t + k >= len[b])
              std::fill(dst, dst + N, -1);
            else
              std::copy(out, out + N, dst);
          }
        }
      });
    }
  }

  /// The last drawn indices `[K, B, T, N]` (see class comment). Mutable so tests and callers may
  /// inject their own negatives before handing them to the loss.
  const tensor<std::int32_t, 4>& indices() const { return indices_; }
  tensor<std::int32_t, 4>& indices() { return indices_; }

  /// Candidate frames (flat indices, ascending) of anchors in item b after the last `sample`,
  /// before excluding positives.
  std::vector<std::int32_t> candidates(std::size_t b) const {
    return {cand_.begin() + static_cast<std::ptrdiff_t>(start_[b]),
            cand_.begin() + static_cast<std::ptrdiff_t>(start_[b + 1])};
  }

 private:
  std::size_t count(std::size_t b) const { return start_[b + 1] - start_[b]; }

  static std::uint64_t stream_seed(std::uint64_t seed, std::uint64_t block) {
    std::uint64_t z = seed ^ ((block + 1) * 0xd1342543de82ef95ULL);
    z = (z ^ (z >> 32)) * 0xd6e8feb86659fd93ULL;
    z = (z ^ (z >> 32)) * 0xd6e8feb86659fd93ULL;
    return z ^ (z >> 32);
  }

  // Candidate lists depend only on the anchor's item: cand_[start_[b] .. start_[b+1]) holds the
  // flat indices in ascending order; own_offset_[b] is the rank of frame (b, 0) in it, or -1 when
  // the anchor's own item is not a candidate.
  void build_candidates(std::size_t batch, std::size_t time, const std::vector<std::size_t>& len,
                        const batch_info& info) {
    cand_.clear();
    start_.assign(batch + 1, 0);
    own_offset_.assign(batch, -1);
    for (std::size_t b = 0; b < batch; ++b) {
      start_[b] = cand_.size();
      for (std::size_t o = 0; o < batch; ++o) {
        bool use = false;
        switch (opt_.policy) {
          case negative_policy::batch:
            use = true;
            break;
          case negative_policy::same_sequence:
            use = o == b;
            break;
          case negative_policy::other_sequences:
            use = o != b;
            break;
          case negative_policy::same_speaker:
            use = info.speakers[o] == info.speakers[b];
            break;
          case negative_policy::same_speaker_other_sequences:
            use = o != b && info.speakers[o] == info.speakers[b];
            break;
        }
        if (!use) continue;
        if (o == b) own_offset_[b] = static_cast<std::ptrdiff_t>(cand_.size() - start_[b]);
        for (std::size_t t = 0; t < len[o]; ++t) cand_.push_back(static_cast<std::int32_t>(o * time + t));
      }
    }
    start_[batch] = cand_.size();
  }

  // N draws for item b, excluding the run of `excluded` own frames starting at frame `first`.
  void draw(std::size_t b, std::size_t first, std::size_t excluded, std::size_t n, rng& gen,
            std::int32_t* out) const {
    const std::int32_t* list = cand_.data() + start_[b];
    std::size_t lo = 0;
    if (own_offset_[b] < 0)
      excluded = 0;
    else
      lo = static_cast<std::size_t>(own_offset_[b]) + first;
    const std::size_t m = count(b) - excluded;
    for (std::size_t i = 0; i < n; ++i) {
      std::size_t r = gen.uniform_int(m);
      if (r >= lo) r += excluded;
      out[i] = list[r];
    }
  }

  options opt_;
  tensor<std::int32_t, 4> indices_;
  std::vector<std::int32_t> cand_;
  std::vector<std::size_t> start_;
  std::vector<std::ptrdiff_t> own_offset_;
};

}  // namespace cpc
