#pragma once
/// Training checkpoints as safetensors files (readable by PyTorch's safetensors, or by
/// scripts/read_checkpoint.py with json + numpy alone).
///
/// Tensor names:
///   "model.<parameter name>"          every parameter's value, e.g. "model.encoder.conv0.weight"
///   "<optimizer state name>"          e.g. "adam.exp_avg.encoder.conv0.weight" (see cpc::adam)
///   "optimizer.steps"                 U64 `[1]`, the optimiser's step count
///   "rng.<name>"                      U64 `[4]`, xoshiro256** states ("rng.model" = the model's)
/// Metadata: "format" = "cpc-checkpoint-1", "step" (decimal), plus the caller's entries.
/// Written atomically (temporary file, fsync, rename): a crash leaves the old file or the new one.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "cpc/core/error.hpp"
#include "cpc/core/parameter.hpp"
#include "cpc/core/random.hpp"
#include "cpc/io/safetensors.hpp"

namespace cpc {

/// The format tag written to and required from a checkpoint's metadata.
inline constexpr const char* checkpoint_format = "cpc-checkpoint-1";

/// Generators saved with a checkpoint besides the model's own, by name (e.g. {"data", &sampler_rng}).
using named_generators = std::map<std::string, rng*>;

/// Saves `m`'s parameters, `opt`'s state and step count, `m.generator()` and `generators` to
/// `path` atomically, with `metadata` (e.g. {"model", "audio_paper"}).
/// Errors: `cpc::io_error` naming the path when it cannot be written (the old file is untouched).
template <class Model, class Optimizer>
void save_checkpoint(const std::filesystem::path& path, Model& m, const Optimizer& opt,
                     const named_generators& generators = {}, safetensors_metadata metadata = {}) {
  using T = typename Model::value_type;
  safetensors_writer w;
  m.for_each_parameter([&](const std::string& name, parameter<T>& p) { w.add("model." + name, p.value); });
  opt.for_each_state([&](const std::string& name, const auto& s) { w.add(name, s); });
  const std::uint64_t steps = opt.steps();
  w.add("optimizer.steps", {1}, &steps);
  w.add("rng.model", {4}, m.generator().state().data());
  for (const auto& [name, g] : generators) w.add("rng." + name, {4}, g->state().data());
  metadata["format"] = checkpoint_format;
  metadata["step"] = std::to_string(steps);
  for (const auto& [k, v] : metadata) w.set_metadata(k, v);
  w.save(path);
}

/// Loads a checkpoint written by `save_checkpoint` into `m`, `opt` and `generators`; returns the
/// file's metadata. Every tensor the model and optimiser expect must be present with the same
/// shape. Parameters and optimiser state may be stored as F32 or F64 whatever `T` is (converted,
/// rounding to nearest); the step count and generator states must be U64.
/// Errors: `cpc::io_error` "load_checkpoint: <path>: <reason>" for an unreadable, truncated
/// or corrupted file (see load_safetensors), a file of another format, a missing tensor, a
/// tensor of the wrong dtype, or a tensor whose shape does not match this model (a checkpoint of
/// another model); nothing is modified in that case.
template <class Model, class Optimizer>
safetensors_metadata load_checkpoint(const std::filesystem::path& path, Model& m, Optimizer& opt,
                                     const named_generators& generators = {}) {
  using T = typename Model::value_type;
  const safetensors_file f = load_safetensors(path);
  const auto fail = [&](const std::string& why) {
    return io_error("load_checkpoint: " + path.string() + ": " + why);
  };
  const auto fmt = f.metadata.find("format");
  if (fmt == f.metadata.end() || fmt->second != checkpoint_format)
    throw fail(std::string("not a cpc checkpoint (expected metadata format = ") + checkpoint_format + ")");
  // Validate everything before touching the model, so a bad file changes nothing.
  // Values must be F32 or F64 (converted to T), counters and generator states U64.
  const auto expect = [&](const std::string& name, const auto& shape, bool floating) {
    if (!f.contains(name)) throw fail("missing tensor '" + name + "' (a checkpoint of another model?)");
    const auto& t = f.at(name);
    if (floating ? !is_floating(t.type) : t.type != dtype::u64)
      throw fail("tensor '" + name + "': expected " + (floating ? "F32 or F64" : "U64") + " data, got " +
                 std::string(dtype_name(t.type)));
    if (!std::equal(shape.begin(), shape.end(), t.shape.begin(), t.shape.end()))
      throw fail("tensor '" + name + "': expected " + shape_string(shape) + ", got " + shape_string(t.shape) +
                 " (a checkpoint of another model?)");
  };
  m.for_each_parameter(
      [&](const std::string& name, parameter<T>& p) { expect("model." + name, p.value.shape(), true); });
  opt.for_each_state([&](const std::string& name, const auto& s) { expect(name, s.shape(), true); });
  const std::vector<std::size_t> one{1}, four{4};
  expect("optimizer.steps", one, false);
  expect("rng.model", four, false);
  for (const auto& [name, g] : generators) expect("rng." + name, four, false);
  const auto rng_state = [&](const std::string& name) {
    const auto v = f.at(name).values<std::uint64_t>();
    rng::state_type s{v[0], v[1], v[2], v[3]};
    if (s == rng::state_type{}) throw fail("tensor '" + name + "' is an all-zero generator state");
    return s;
  };
  const auto model_state = rng_state("rng.model");
  std::map<std::string, rng::state_type> other_states;
  for (const auto& [name, g] : generators) other_states[name] = rng_state("rng." + name);

  m.for_each_parameter([&](const std::string& name, parameter<T>& p) {
    load_into(f.at("model." + name), p.value, "model." + name);
  });
  opt.for_each_state([&](const std::string& name, auto& s) { load_into(f.at(name), s, name); });
  opt.set_steps(f.at("optimizer.steps").values<std::uint64_t>()[0]);
  m.generator().set_state(model_state);
  for (const auto& [name, g] : generators) g->set_state(other_states[name]);
  return f.metadata;
}

namespace detail {
/// An optimiser without state, so that `load_checkpoint` reads the model alone.
struct no_optimizer_state {
  template <class F>
  void for_each_state(F&&) {}
  std::uint64_t steps() const { return 0; }
  void set_steps(std::uint64_t) {}
};
}  // namespace detail

/// Loads only the model's parameters ("model.<name>") and generator from a checkpoint written by
/// `save_checkpoint` or by scripts/convert_cpc_audio.py, whatever optimiser state it holds (none
/// for a converted model); returns the file's metadata. Use it to encode or evaluate.
/// Errors: as `load_checkpoint` (a missing or mis-shaped parameter names the tensor; nothing is
/// modified then).
template <class Model>
safetensors_metadata load_weights(const std::filesystem::path& path, Model& m) {
  detail::no_optimizer_state none;
  return load_checkpoint(path, m, none);
}

}  // namespace cpc
