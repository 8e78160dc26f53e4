#pragma once
/// Data-parallel training over a `cpc::communicator` (issue 18): what `cpc::train` does when
/// `train_options::comm` names a group of more than one process, and the checkpoint loader for
/// such a group.
///
/// Every rank holds a replica of the model and the optimiser. At the start rank 0's weights,
/// optimiser state and step count are copied to every rank; each step every rank computes
/// gradients on its own batch, the group averages them (one allreduce over the flat gradient
/// buffer), and every rank takes the same optimiser step, so the replicas stay bit-identical
/// (checked at every checkpoint). Only rank 0 writes the checkpoint, the CSV and the progress line.
///
/// Generators: each rank draws its own windows and negatives. When the ranks start with equal
/// generator states (built from the same seeds, or loaded from one rank's states), rank r's
/// generators (the model's and `train_options::generators`) jump r x 2^128 draws ahead
/// (`rng::jump`): non-overlapping streams. Checkpoints store rank 0's states under the usual names
/// ("rng.model", "rng.<name>") and rank r's as "rng.rank<r>.model", "rng.rank<r>.<name>", with
/// metadata "ranks" = N. Resuming with the same N restores every rank's states (the run continues
/// bit-identically); with another number of ranks (or in one process) weights, optimiser state
/// and step count carry over, rank 0 continues its streams and rank r takes rank 0's jumped r
/// times.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "cpc/core/error.hpp"
#include "cpc/core/loss_result.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"
#include "cpc/dist/communicator.hpp"
#include "cpc/io/safetensors.hpp"
#include "cpc/train/checkpoint.hpp"

namespace cpc {

namespace detail {

/// Whether this process writes the checkpoint, the CSV and the progress line: rank 0 of the
/// group, or the process alone.
inline bool leads(const communicator* c) {
  return c == nullptr || c->rank() == 0;
}
/// Whether `c` names a group of more than one process.
inline bool distributed(const communicator* c) {
  return c != nullptr && c->size() > 1;
}

/// The error types that cross ranks (`on_lead`).
enum class error_kind : std::uint64_t { none, config, io, numeric, shape, communication, other };

inline error_kind kind_of(const std::exception& e) {
  if (dynamic_cast<const config_error*>(&e)) return error_kind::config;
  if (dynamic_cast<const io_error*>(&e)) return error_kind::io;
  if (dynamic_cast<const numeric_error*>(&e)) return error_kind::numeric;
  if (dynamic_cast<const shape_error*>(&e)) return error_kind::shape;
  if (dynamic_cast<const communication_error*>(&e)) return error_kind::communication;
  return error_kind::other;
}

[[noreturn]] inline void throw_error(error_kind k, const std::string& message) {
  switch (k) {
    case error_kind::config:
      throw config_error(message);
    case error_kind::io:
      throw io_error(message);
    case error_kind::numeric:
      throw numeric_error(message);
    case error_kind::shape:
      throw shape_error(message);
    case error_kind::communication:
      throw communication_error(message);
    default:
      throw error(message);
  }
}

/// Runs `f` on rank 0 alone and gives its outcome to every rank: when `f` throws, rank 0 rethrows
/// its exception and every other rank throws one of the same cpc type, "rank 0: <what>: <message>",
/// so that no rank goes on to wait for rank 0 in the next collective.
template <class F>
void on_lead(communicator& c, const std::string& what, F&& f) {
  std::array<std::uint64_t, 2> head{};  // error kind, message length
  std::string message;
  std::exception_ptr failure;
  if (c.rank() == 0) {
    try {
      f();
    } catch (const std::exception& e) {
      head[0] = static_cast<std::uint64_t>(kind_of(e));
      message = e.what();
      failure = std::current_exception();
    } catch (...) {
      head[0] = static_cast<std::uint64_t>(error_kind::other);
      message = "an exception that is not a std::exception";
      failure = std::current_exception();
    }
    head[1] = message.size();
  }
  c.broadcast(head.data(), sizeof head, 0);
  if (head[0] == 0) return;
  message.resize(head[1]);
  c.broadcast(message.data(), message.size(), 0);
  if (failure) std::rethrow_exception(failure);
  throw_error(static_cast<error_kind>(head[0]), "rank 0: " + what + ": " + message);
}

/// The generators a replica draws from, in checkpoint order: the model's ("model"), then the
/// named ones (a std::map, so the same order on every rank).
template <class Model>
std::vector<std::pair<std::string, rng*>> replica_generators(Model& m, const named_generators& g) {
  std::vector<std::pair<std::string, rng*>> out{{"model", &m.generator()}};
  for (const auto& [name, p] : g) out.emplace_back(name, p);
  return out;
}

/// Copies rank 0's weights, optimiser state and step count to every rank.
template <class Model, class Optimizer>
void broadcast_training_state(communicator& c, Model& m, Optimizer& opt) {
  using T = typename Model::value_type;
  const auto& params = m.parameters();
  if (params.flat) {
    c.broadcast(params.flat.values, params.flat.size * sizeof(T), 0);
  } else {
    for (const auto& [name, p] : params) c.broadcast(p->value.data(), p->size() * sizeof(T), 0);
  }
  opt.for_each_state([&](const std::string&, auto& s) { c.broadcast(s.data(), s.size() * sizeof(T), 0); });
  std::uint64_t steps = opt.steps();
  c.broadcast(&steps, sizeof steps, 0);
  opt.set_steps(steps);
}

/// Gives each rank its own generator streams: when every rank holds the same states, rank r's
/// generators jump r times; when all ranks differ, nothing changes.
/// Errors: `cpc::config_error` when some ranks share states and others do not.
inline void split_generators(communicator& c, const std::vector<std::pair<std::string, rng*>>& gens) {
  std::vector<std::uint64_t> words;
  for (const auto& [name, g] : gens) words.insert(words.end(), g->state().begin(), g->state().end());
  const std::uint64_t mine = fingerprint(words.data(), words.size() * sizeof(std::uint64_t));
  std::vector<std::uint64_t> all(c.size());
  c.allgather(&mine, all.data(), sizeof mine);
  if (std::all_of(all.begin(), all.end(), [&](std::uint64_t f) { return f == all[0]; })) {
    for (const auto& [name, g] : gens)
      for (std::size_t r = 0; r < c.rank(); ++r) g->jump();
    return;
  }
  for (std::size_t a = 0; a < all.size(); ++a)
    for (std::size_t b = a + 1; b < all.size(); ++b)
      if (all[a] == all[b])
        throw config_error("train: ranks " + std::to_string(a) + " and " + std::to_string(b) +
                           " hold the same generator states but other ranks do not, so they would draw the "
                           "same windows and negatives: build every rank's model and sampler from the same "
                           "seeds (train gives each rank its own streams) or give every rank distinct ones");
}

/// Rank 0's weights, optimiser state and step count on every rank, and distinct generator streams.
template <class Model, class Optimizer>
void start_replicas(communicator& c, Model& m, Optimizer& opt, const named_generators& g) {
  broadcast_training_state(c, m, opt);
  split_generators(c, replica_generators(m, g));
}

/// Checks that every replica holds the same weights (bit for bit) after `step` steps.
/// Errors: `cpc::communication_error` naming the first rank that differs from rank 0.
template <class Model>
void check_replicas(communicator& c, Model& m, std::uint64_t step) {
  using T = typename Model::value_type;
  const auto& params = m.parameters();
  std::uint64_t mine = 0;
  if (params.flat) {
    mine = fingerprint(params.flat.values, params.flat.size * sizeof(T));
  } else {
    std::vector<std::uint64_t> each;
    for (const auto& [name, p] : params) each.push_back(fingerprint(p->value.data(), p->size() * sizeof(T)));
    mine = fingerprint(each.data(), each.size() * sizeof(std::uint64_t));
  }
  std::vector<std::uint64_t> all(c.size());
  c.allgather(&mine, all.data(), sizeof mine);
  for (std::size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0])
      throw communication_error("train: after step " + std::to_string(step) + " the weights of rank " +
                                std::to_string(r) +
                                " differ from rank 0's: the gradient sums were not "
                                "identical on every rank (the transport's allreduce)");
}

/// Averages the gradients of `params` (one allreduce over the flat gradient buffer) and the
/// statistics of `r` (loss, loss and accuracy per step: means; terms: sums) over the ranks.
/// Returns the seconds it took (waiting for slower ranks included).
template <class T, class Backend>
double average_replicas(communicator& c, const named_parameter_list<T>& params, info_nce_result& r) {
  const auto t0 = std::chrono::steady_clock::now();
  if (params.flat) {
    allreduce_mean<T, Backend>(c, params.flat.grads, params.flat.size);
  } else {
    for (const auto& [name, p] : params) allreduce_mean<T, Backend>(c, p->grad.data(), p->size());
  }
  std::vector<double> stats{r.loss};
  stats.insert(stats.end(), r.loss_per_step.begin(), r.loss_per_step.end());
  stats.insert(stats.end(), r.accuracy.begin(), r.accuracy.end());
  for (std::size_t t : r.terms) stats.push_back(static_cast<double>(t));
  c.allreduce_sum(stats.data(), stats.size());
  const double n = static_cast<double>(c.size());
  std::size_t i = 0;
  r.loss = stats[i++] / n;
  for (double& v : r.loss_per_step) v = stats[i++] / n;
  for (double& v : r.accuracy) v = stats[i++] / n;
  for (std::size_t& t : r.terms) t = static_cast<std::size_t>(stats[i++]);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Whether the training loop goes on: `go` as rank 0 sees it when `timed` (its clock decides a time
/// budget for every rank); otherwise `go` (a step count is the same on every rank).
inline bool lead_decides(communicator* c, bool go, bool timed) {
  if (!distributed(c) || !timed) return go;
  unsigned char flag = go ? 1 : 0;
  c->broadcast(&flag, 1, 0);
  return flag != 0;
}

/// `save_checkpoint` for a group: checks that the replicas agree, gathers every rank's generator
/// states, and rank 0 writes them all (see the file comment); a failed write is every rank's error.
template <class Model, class Optimizer>
void save_replicated(communicator* c, const std::filesystem::path& path, Model& m, const Optimizer& opt,
                     const named_generators& generators, safetensors_metadata metadata) {
  if (path.empty()) return;
  if (!distributed(c)) {
    save_checkpoint(path, m, opt, generators, std::move(metadata));
    return;
  }
  check_replicas(*c, m, opt.steps());
  const auto gens = replica_generators(m, generators);
  std::vector<std::uint64_t> mine;
  for (const auto& [name, g] : gens) mine.insert(mine.end(), g->state().begin(), g->state().end());
  std::vector<std::uint64_t> all(mine.size() * c->size());
  c->allgather(mine.data(), all.data(), mine.size() * sizeof(std::uint64_t));
  on_lead(*c, "writing the checkpoint " + path.string(), [&] {
    std::vector<rng> others(gens.size() * (c->size() - 1));
    named_generators every = generators;
    for (std::size_t r = 1; r < c->size(); ++r)
      for (std::size_t k = 0; k < gens.size(); ++k) {
        rng& g = others[(r - 1) * gens.size() + k];
        const std::uint64_t* s = all.data() + (r * gens.size() + k) * 4;
        g.set_state({s[0], s[1], s[2], s[3]});
        every["rank" + std::to_string(r) + "." + gens[k].first] = &g;
      }
    metadata["ranks"] = std::to_string(c->size());
    save_checkpoint(path, m, opt, every, metadata);
  });
}

inline std::string pack_metadata(const safetensors_metadata& m) {
  std::string out;
  const auto put = [&](const std::string& s) {
    const std::uint64_t n = s.size();
    out.append(reinterpret_cast<const char*>(&n), sizeof n);
    out += s;
  };
  for (const auto& [k, v] : m) {
    put(k);
    put(v);
  }
  return out;
}

inline safetensors_metadata unpack_metadata(const std::string& blob) {
  safetensors_metadata m;
  std::size_t i = 0;
  const auto get = [&] {
    std::uint64_t n = 0;
    std::memcpy(&n, blob.data() + i, sizeof n);
    i += sizeof n;
    std::string s = blob.substr(i, n);
    i += n;
    return s;
  };
  while (i < blob.size()) {
    std::string k = get();
    m[k] = get();
  }
  return m;
}

}  // namespace detail

/// Loads a checkpoint into every rank of `c`: rank 0 reads and checks `path` (as
/// `load_checkpoint(path, m, opt, generators)`), then sends the weights, the optimiser state, the
/// step count and the metadata to every rank. Generators: when the file was written by a group of
/// `c.size()` ranks (metadata "ranks"), rank r gets its own saved states; otherwise rank 0 gets
/// the saved "rng.model" / "rng.<name>" and rank r those jumped r times (see the file comment).
/// Only rank 0 needs to see the file. Returns the file's metadata on every rank.
/// Errors: rank 0's `cpc::io_error` (as `load_checkpoint`, or "rng.rank<r>.<name>" missing or
/// malformed in a checkpoint of N ranks) on every rank, "rank 0: loading the checkpoint ...";
/// nothing is modified then. `cpc::communication_error` from the transport.
template <class Model, class Optimizer>
safetensors_metadata load_checkpoint(const std::filesystem::path& path, Model& m, Optimizer& opt,
                                     const named_generators& generators, communicator& c) {
  if (c.size() == 1) return load_checkpoint(path, m, opt, generators);
  const auto gens = detail::replica_generators(m, generators);
  const std::size_t n = c.size(), g = gens.size();
  std::vector<std::uint64_t> table(n * g * 4);  // [rank][generator][4]
  std::uint64_t saved_ranks = 1;
  std::string blob;
  detail::on_lead(c, "loading the checkpoint " + path.string(), [&] {
    const safetensors_file f = load_safetensors(path);
    const auto fail = [&](const std::string& why) {
      return io_error("load_checkpoint: " + path.string() + ": " + why);
    };
    if (const auto it = f.metadata.find("ranks"); it != f.metadata.end()) {
      const std::string& v = it->second;
      if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos ||
          std::stoul(v) == 0)
        throw fail("metadata 'ranks': expected a whole number >= 1, got '" + v + "'");
      saved_ranks = std::stoul(v);
    }
    std::vector<std::uint64_t> rows;
    if (saved_ranks == n) {  // rank r's own states, checked before anything changes
      for (std::size_t r = 1; r < n; ++r)
        for (const auto& [name, p] : gens) {
          const std::string t = "rng.rank" + std::to_string(r) + "." + name;
          if (!f.contains(t))
            throw fail("missing tensor '" + t + "' (a checkpoint of " + std::to_string(n) + " ranks)");
          const auto& x = f.at(t);
          if (x.type != dtype::u64 || x.shape != std::vector<std::size_t>{4})
            throw fail("tensor '" + t + "': expected U64 [4], got " + std::string(dtype_name(x.type)) + " " +
                       shape_string(x.shape));
          const auto s = x.values<std::uint64_t>();
          if (std::all_of(s.begin(), s.end(), [](std::uint64_t w) { return w == 0; }))
            throw fail("tensor '" + t + "' is an all-zero generator state");
          rows.insert(rows.end(), s.begin(), s.end());
        }
    }
    const safetensors_metadata meta = load_checkpoint(path, m, opt, generators);
    for (std::size_t k = 0; k < g; ++k)
      std::copy_n(gens[k].second->state().begin(), 4, table.begin() + k * 4);
    std::copy(rows.begin(), rows.end(), table.begin() + g * 4);
    blob = detail::pack_metadata(meta);
  });
  detail::broadcast_training_state(c, m, opt);
  c.broadcast(&saved_ranks, sizeof saved_ranks, 0);
  c.broadcast(table.data(), table.size() * sizeof(std::uint64_t), 0);
  std::uint64_t blob_size = blob.size();
  c.broadcast(&blob_size, sizeof blob_size, 0);
  blob.resize(blob_size);
  c.broadcast(blob.data(), blob.size(), 0);
  const std::size_t row = saved_ranks == n ? c.rank() : 0;
  for (std::size_t k = 0; k < g; ++k) {
    const std::uint64_t* s = table.data() + (row * g + k) * 4;
    gens[k].second->set_state({s[0], s[1], s[2], s[3]});
    if (saved_ranks != n)
      for (std::size_t r = 0; r < c.rank(); ++r) gens[k].second->jump();
  }
  return detail::unpack_metadata(blob);
}

}  // namespace cpc
