#pragma once
/// ABX phone discriminability of frame features (ZeroSpeech 2017 / 2021, Libri-light's ABX as in
/// facebookresearch/CPC_audio's cpc/eval/ABX): can a triphone X be told to be closer to a triphone
/// A of its own central phone than to a triphone B that differs only in its central phone (same
/// context, e.g. "beg" vs "bag")? Distances between segments are frame-wise angular distances
/// aligned by dynamic time warping (DTW). "Within speaker": A, B and X come from one speaker;
/// "across speakers": A and B from one speaker, X from another. The score is an error rate in [0, 1]
/// (0.5 = chance), averaged over contexts, then speakers, then phone pairs, as ZeroSpeech does.
/// Sources: Schatz et al. 2013 (ABX discriminability); Dunbar et al. 2017 (ZeroSpeech 2017);
/// Nguyen et al. 2020 (ZeroSpeech 2021); Kahn et al. 2020 (Libri-light ABX: the averaging and the
/// path-length-normalised DTW).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <numbers>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "cpc/backend/cpu/eigen.hpp"
#include "cpc/core/error.hpp"
#include "cpc/core/random.hpp"
#include "cpc/core/tensor.hpp"
#include "cpc/core/threads.hpp"

namespace cpc {

/// One ABX item: frames [begin, end) of utterance `utterance` (an index into the features list),
/// its central phone, its context (an id for the pair of neighbouring phones) and its speaker.
struct abx_item {
  std::size_t utterance = 0;
  std::size_t begin = 0, end = 0;
  std::int64_t phone = 0;
  std::int64_t context = 0;
  std::int64_t speaker = 0;
};

/// What frames an item covers: the whole triphone (ZeroSpeech's items: previous, central and next
/// phone) or the central phone alone (its context still groups the items).
enum class abx_segment { triphone, phone };

/// How `abx_items` cuts frame labels into items.
struct abx_item_options {
  abx_segment segment = abx_segment::triphone;
  /// Classes that are never the central phone (e.g. silence, class 0 in cpc's corpora); they may be
  /// a context. Frames labelled < 0 (unknown) end a run and are never part of an item.
  std::vector<std::int32_t> excluded_phones{0};
};

/// The triphone items of labelled utterances. `labels[u]` holds one phone class per frame of
/// utterance u (< 0 = unknown), `speakers[u]` its speaker. The labels are cut into runs of equal
/// classes; every run with a labelled run right before and after it (no unknown frame between)
/// whose class is not excluded gives one item with context (previous class, next class), encoded
/// as previous * 2^32 + next. Items are in utterance, then frame order.
/// Errors: `cpc::shape_error` when labels and speakers differ in length.
inline std::vector<abx_item> abx_items(const std::vector<std::vector<std::int32_t>>& labels,
                                       const std::vector<std::int64_t>& speakers,
                                       const abx_item_options& opt = {}) {
  if (labels.size() != speakers.size())
    throw shape_error("abx_items: expected one speaker per utterance, got " + std::to_string(labels.size()) +
                      " label sequences and " + std::to_string(speakers.size()) + " speakers");
  std::vector<abx_item> items;
  for (std::size_t u = 0; u < labels.size(); ++u) {
    const auto& l = labels[u];
    struct run {
      std::size_t begin, end;
      std::int32_t phone;
    };
    std::vector<run> runs;
    for (std::size_t f = 0; f < l.size();) {
      std::size_t g = f;
      while (g < l.size() && l[g] == l[f]) ++g;
      runs.push_back({f, g, l[f]});
      f = g;
    }
    for (std::size_t r = 1; r + 1 < runs.size(); ++r) {
      const run &prev = runs[r - 1], &mid = runs[r], &next = runs[r + 1];
      if (prev.phone < 0 || mid.phone < 0 || next.phone < 0) continue;
      if (std::find(opt.excluded_phones.begin(), opt.excluded_phones.end(), mid.phone) !=
          opt.excluded_phones.end())
        continue;
      const bool tri = opt.segment == abx_segment::triphone;
      items.push_back({.utterance = u,
                       .begin = tri ? prev.begin : mid.begin,
                       .end = tri ? next.end : mid.end,
                       .phone = mid.phone,
                       .context = (static_cast<std::int64_t>(prev.phone) << 32) + next.phone,
                       .speaker = speakers[u]});
    }
  }
  return items;
}

/// Frame distance of `abx_error`: `angular` = arccos(a . b / (|a| |b|)) / pi in [0, 1] (ZeroSpeech's
/// "cosine"; a zero frame is at distance 1 from every other frame and 0 from another zero frame),
/// `euclidean` = |a - b|.
enum class abx_distance { angular, euclidean };

/// Settings of `abx_error`. Defaults as Libri-light's ABX evaluation (CPC_audio's eval_ABX.py).
struct abx_options {
  abx_distance distance = abx_distance::angular;
  std::size_t max_group_size = 20;  ///< items per (context, speaker, phone) group, drawn at random (0 = all)
  std::size_t max_x_across = 5;     ///< X speakers per (context, speaker, phone) across speakers (0 = all)
  std::uint64_t seed = 0;           ///< draws of the groups and X speakers
};

/// ABX error rates in [0, 1] (NaN where no triplet exists) and what they average.
struct abx_result {
  double within = std::numeric_limits<double>::quiet_NaN();
  double across = std::numeric_limits<double>::quiet_NaN();
  std::size_t within_cells = 0, across_cells = 0;  ///< (context, speaker(s), phone pair) cells scored
  std::size_t within_pairs = 0, across_pairs = 0;  ///< (phone A, phone B) pairs in the final average
  std::size_t items = 0;                           ///< items with at least one frame
};

/// DTW distance of two segments given their frame distance matrix `d` `[n, m]` (row-major), n, m >= 1:
/// the cheapest monotone path from (0, 0) to (n-1, m-1) with steps (1, 0), (0, 1), (1, 1), its cost
/// (sum of d over the path) divided by the length of the path found by backtracking from (n-1, m-1)
/// (diagonal first on ties, then the column step). Source: Libri-light's / CPC_audio's ABX dtw.
inline double abx_dtw(const double* d, std::size_t n, std::size_t m) {
  std::vector<double> cost(n * m);
  cost[0] = d[0];
  for (std::size_t i = 1; i < n; ++i) cost[i * m] = d[i * m] + cost[(i - 1) * m];
  for (std::size_t j = 1; j < m; ++j) cost[j] = d[j] + cost[j - 1];
  for (std::size_t i = 1; i < n; ++i)
    for (std::size_t j = 1; j < m; ++j)
      cost[i * m + j] =
          d[i * m + j] + std::min({cost[(i - 1) * m + j], cost[(i - 1) * m + j - 1], cost[i * m + j - 1]});
  std::size_t i = n - 1, j = m - 1, length = 1;
  while (i > 0 && j > 0) {
    const double up = cost[(i - 1) * m + j], left = cost[i * m + j - 1], diag = cost[(i - 1) * m + j - 1];
    if (diag <= left && diag <= up) {
      --i;
      --j;
    } else if (left <= up) {
      --j;
    } else {
      --i;
    }
    ++length;
  }
  length += i + j;  // the rest of the path runs along the first row or column
  return cost[n * m - 1] / static_cast<double>(length);
}

namespace detail {

/// Frames of every item, normalised for the distance, in one buffer.
class abx_frames {
 public:
  abx_frames(const std::vector<tensor2<float>>& features, const std::vector<abx_item>& items,
             abx_distance dist)
      : dist_(dist) {
    dims_ = features.empty() ? 0 : features.front().shape()[1];
    offset_.resize(items.size() + 1, 0);
    for (std::size_t i = 0; i < items.size(); ++i) {
      const auto& it = items[i];
      if (it.utterance >= features.size())
        throw shape_error("abx_error: item " + std::to_string(i) + " names utterance " +
                          std::to_string(it.utterance) + ", expected < " + std::to_string(features.size()));
      const auto& f = features[it.utterance];
      if (f.shape()[1] != dims_)
        throw shape_error("abx_error: expected features of " + std::to_string(dims_) + " dimensions, got " +
                          shape_string(f.shape()) + " for utterance " + std::to_string(it.utterance));
      const std::size_t end = std::min(it.end, f.shape()[0]);
      offset_[i + 1] = offset_[i] + (end > it.begin ? end - it.begin : 0);
    }
    data_.resize(offset_.back() * dims_);
    zero_.assign(offset_.back(), 0);
    for (std::size_t i = 0; i < items.size(); ++i) {
      const float* src = features[items[i].utterance].data() + items[i].begin * dims_;
      for (std::size_t r = offset_[i]; r < offset_[i + 1]; ++r, src += dims_) {
        double norm = 0;
        for (std::size_t c = 0; c < dims_; ++c) norm += static_cast<double>(src[c]) * src[c];
        const double scale = dist_ == abx_distance::angular ? (norm > 0 ? 1.0 / std::sqrt(norm) : 0.0) : 1.0;
        zero_[r] = norm == 0;
        for (std::size_t c = 0; c < dims_; ++c) data_[r * dims_ + c] = src[c] * scale;
      }
    }
  }

  std::size_t frames(std::size_t item) const { return offset_[item + 1] - offset_[item]; }

  /// DTW distance between items a and b (both with frames).
  double distance(std::size_t a, std::size_t b, std::vector<double>& d) const {
    const std::size_t n = frames(a), m = frames(b);
    d.resize(n * m);
    using cpu_kernels::matrix_map;
    const auto A = matrix_map(data_.data() + offset_[a] * dims_, static_cast<std::ptrdiff_t>(n),
                              static_cast<std::ptrdiff_t>(dims_));
    const auto B = matrix_map(data_.data() + offset_[b] * dims_, static_cast<std::ptrdiff_t>(m),
                              static_cast<std::ptrdiff_t>(dims_));
    auto D = matrix_map(d.data(), static_cast<std::ptrdiff_t>(n), static_cast<std::ptrdiff_t>(m));
    D.noalias() = A * B.transpose();
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < m; ++j) {
        double& v = d[i * m + j];
        if (dist_ == abx_distance::angular) {
          const bool za = zero_[offset_[a] + i], zb = zero_[offset_[b] + j];
          v = za || zb ? (za && zb ? 0.0 : 1.0) : std::acos(std::clamp(v, -1.0, 1.0)) / std::numbers::pi;
        } else {
          const double na = A.row(static_cast<std::ptrdiff_t>(i)).squaredNorm(),
                       nb = B.row(static_cast<std::ptrdiff_t>(j)).squaredNorm();
          v = std::sqrt(std::max(na + nb - 2 * v, 0.0));
        }
      }
    return abx_dtw(d.data(), n, m);
  }

 private:
  abx_distance dist_;
  std::size_t dims_ = 0;
  std::vector<std::size_t> offset_;
  std::vector<double> data_;
  std::vector<unsigned char> zero_;
};

/// 1 - P(d(a, x) < d(b, x)) - P(=) / 2 over the given triplets (x != a when `within`).
inline double abx_cell_error(const abx_frames& fr, const std::vector<std::size_t>& A,
                             const std::vector<std::size_t>& B, const std::vector<std::size_t>& X,
                             bool within, std::vector<double>& work) {
  std::vector<double> dax(A.size() * X.size()), dbx(B.size() * X.size());
  for (std::size_t x = 0; x < X.size(); ++x) {
    for (std::size_t a = 0; a < A.size(); ++a)
      dax[x * A.size() + a] = within && A[a] == X[x] ? 0.0 : fr.distance(X[x], A[a], work);
    for (std::size_t b = 0; b < B.size(); ++b) dbx[x * B.size() + b] = fr.distance(X[x], B[b], work);
  }
  double score = 0;
  std::size_t n = 0;
  for (std::size_t x = 0; x < X.size(); ++x)
    for (std::size_t a = 0; a < A.size(); ++a) {
      if (within && A[a] == X[x]) continue;
      for (std::size_t b = 0; b < B.size(); ++b, ++n) {
        const double da = dax[x * A.size() + a], db = dbx[x * B.size() + b];
        score += da < db ? 1.0 : da == db ? 0.5 : 0.0;
      }
    }
  return 1.0 - score / static_cast<double>(n);
}

}  // namespace detail

/// ABX error rates of frame features. `features[u]` is utterance u's `[frames, dims]` (frames
/// aligned with the labels the items came from; item frames past the end are cut off, items
/// without frames ignored). Items are grouped by (context, speaker, phone); each group keeps at
/// most `max_group_size` items drawn at random.
///   within: for every context and speaker with two phones p != q, the cell error over
///     A = X = the (c, s, p) group (x != a, groups of >= 2) and B = the (c, s, q) group;
///   across: A, B from speaker s as above and X the (c, s', p) group of up to `max_x_across`
///     other speakers s' drawn at random, one cell per s'.
/// A cell's error is 1 - [#(d(a,x) < d(b,x)) + #(d(a,x) = d(b,x)) / 2] / #triplets, d the DTW
/// distance (`abx_dtw`) over frame distances (`abx_distance`). The score averages the cells over
/// contexts, then over speakers (within: s; across: pairs (s, s')), then over phone pairs (p, q).
/// Deterministic for a seed, whatever the thread count (contexts run in parallel, each with its own
/// generator). Errors: `cpc::shape_error` when an item names an utterance outside `features`, or
/// features differ in their number of dimensions.
inline abx_result abx_error(const std::vector<tensor2<float>>& features, const std::vector<abx_item>& items,
                            const abx_options& opt = {}) {
  const detail::abx_frames fr(features, items, opt.distance);
  abx_result res;
  // Groups: context -> speaker -> phone -> items (with frames), in increasing key order.
  using phone_groups = std::map<std::int64_t, std::vector<std::size_t>>;
  std::map<std::int64_t, std::map<std::int64_t, phone_groups>> groups;
  for (std::size_t i = 0; i < items.size(); ++i)
    if (fr.frames(i) > 0) {
      groups[items[i].context][items[i].speaker][items[i].phone].push_back(i);
      ++res.items;
    }
  std::vector<const std::pair<const std::int64_t, std::map<std::int64_t, phone_groups>>*> contexts;
  for (auto& c : groups) contexts.push_back(&c);
  struct cell {
    std::int64_t s, p, q, s_x;
    double error;
  };
  std::vector<std::vector<cell>> within(contexts.size()), across(contexts.size());
  parallel_for(0, contexts.size(), [&](std::size_t ci) {
    const auto& [context, speakers] = *contexts[ci];
    rng gen(opt.seed ^ (0x9E3779B97F4A7C15ull * (static_cast<std::uint64_t>(context) + 1)));
    // Draw at most max_group_size items per group.
    std::map<std::int64_t, phone_groups> drawn = speakers;
    for (auto& sp : drawn)
      for (auto& pg : sp.second) {
        auto& v = pg.second;
        if (opt.max_group_size > 0 && v.size() > opt.max_group_size) {
          for (std::size_t k = 0; k < opt.max_group_size; ++k)
            std::swap(v[k], v[k + static_cast<std::size_t>(gen.uniform_int(v.size() - k))]);
          v.resize(opt.max_group_size);
          std::sort(v.begin(), v.end());
        }
      }
    std::vector<double> work;
    for (const auto& [s, phones] : drawn) {
      if (phones.size() < 2) continue;
      for (const auto& [p, A] : phones) {
        // X speakers for the across cells: others with phone p in this context.
        std::vector<std::int64_t> others;
        for (const auto& [s2, phones2] : drawn)
          if (s2 != s && phones2.count(p)) others.push_back(s2);
        if (opt.max_x_across > 0 && others.size() > opt.max_x_across) {
          for (std::size_t k = 0; k < opt.max_x_across; ++k)
            std::swap(others[k], others[k + static_cast<std::size_t>(gen.uniform_int(others.size() - k))]);
          others.resize(opt.max_x_across);
        }
        for (const auto& [q, B] : phones) {
          if (q == p) continue;
          if (A.size() >= 2)
            within[ci].push_back({s, p, q, s, detail::abx_cell_error(fr, A, B, A, true, work)});
          for (std::int64_t s2 : others)
            across[ci].push_back(
                {s, p, q, s2, detail::abx_cell_error(fr, A, B, drawn.at(s2).at(p), false, work)});
        }
      }
    }
  });
  // Mean over contexts, then speakers (or speaker pairs), then phone pairs.
  const auto reduce = [](const std::vector<std::vector<cell>>& cells, std::size_t& n_cells,
                         std::size_t& n_pairs) {
    std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t>,
             std::pair<double, std::size_t>>
        by_s;
    for (const auto& per_context : cells)
      for (const cell& c : per_context) {
        auto& e = by_s[{c.p, c.q, c.s, c.s_x}];
        e.first += c.error;
        ++e.second;
        ++n_cells;
      }
    std::map<std::pair<std::int64_t, std::int64_t>, std::pair<double, std::size_t>> by_pair;
    for (const auto& [key, e] : by_s) {
      auto& pe = by_pair[{std::get<0>(key), std::get<1>(key)}];
      pe.first += e.first / static_cast<double>(e.second);
      ++pe.second;
    }
    double total = 0;
    for (const auto& [key, e] : by_pair) total += e.first / static_cast<double>(e.second);
    n_pairs = by_pair.size();
    return by_pair.empty() ? std::numeric_limits<double>::quiet_NaN()
                           : total / static_cast<double>(by_pair.size());
  };
  res.within = reduce(within, res.within_cells, res.within_pairs);
  res.across = reduce(across, res.across_cells, res.across_pairs);
  return res;
}

}  // namespace cpc
