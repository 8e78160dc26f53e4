// Bad inputs that have no test elsewhere (README.md "Bad input" lists every row and where it is
// tested): wrong shapes and dtypes at the model/checkpoint level, an empty batch, checkpoints
// of another model, truncated or corrupt checkpoints, an unwritable output directory, a full
// disk during a save, and NaN/Inf reaching the trainer.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cpc/model/model.hpp>
#include <cpc/optim/adam.hpp>
#include <cpc/train/checkpoint.hpp>
#include <cpc/train/trainer.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

using namespace cpc;
namespace fs = std::filesystem;

namespace {

using tiny_f = model<presets::audio_tiny, strided_conv_encoder, gru, info_nce, float>;
using tiny_d = model<presets::audio_tiny, strided_conv_encoder, gru, info_nce, double>;
using tiny_lstm = model<presets::audio_tiny, strided_conv_encoder, lstm, info_nce, float>;

/// audio_tiny with 12 latent channels instead of 16: same names, other shapes.
struct narrow_tiny : presets::audio_tiny {
  static constexpr std::size_t latent_channels = 12;
};
using narrow_f = model<narrow_tiny, strided_conv_encoder, gru, info_nce, float>;

struct temp_dir {
  fs::path path;
  temp_dir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("cpc_test_bad_inputs_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path, ec);
  }
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

/// The message of the exception of type E that `f` throws ("" if it throws nothing).
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// Every parameter value and optimiser state element, in visiting order.
template <class Model, class Opt>
std::vector<double> snapshot(Model& m, const Opt& opt) {
  using T = typename Model::value_type;
  std::vector<double> out;
  m.for_each_parameter(
      [&](const std::string&, parameter<T>& p) { out.insert(out.end(), p.value.begin(), p.value.end()); });
  opt.for_each_state([&](const std::string&, const auto& s) { out.insert(out.end(), s.begin(), s.end()); });
  return out;
}

/// A batch source of `batch` rows of 512 samples of N(0, 0.1^2) noise from `gen`.
auto noise_batches(rng& gen, std::size_t batch = 4) {
  return [&gen, batch](training_batch<float>& b) {
    b.audio.resize({batch, std::size_t{512}});
    for (auto& v : b.audio) v = static_cast<float>(0.1 * gen.normal());
  };
}

train_options quiet(std::uint64_t steps, fs::path checkpoint = {}) {
  train_options o;
  o.max_steps = steps;
  o.checkpoint_path = std::move(checkpoint);
  o.progress = false;
  return o;
}

/// A directory this process cannot create files in: a 0555 folder, or /sys when running as root
/// (root ignores permission bits; sysfs refuses new files to everyone).
fs::path unwritable_dir(const temp_dir& dir) {
  if (::geteuid() != 0) {
    auto p = dir.path / "read-only";
    fs::create_directories(p);
    fs::permissions(p, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                           fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
    return p;
  }
  return "/sys";
}

}  // namespace

TEST_CASE("bad input: wrong audio shapes reach the model as shape_error naming both shapes") {
  tiny_f m;
  const std::size_t min = m.encoder().min_samples();
  REQUIRE(m.frames(min) == 1);
  tensor2<float> too_short = xt::zeros<float>({std::size_t{2}, min - 1});
  CHECK_THROWS_WITH_AS(m.compute_gradients(too_short),
                       ("strided_conv_encoder forward audio: expected [*, >= " + std::to_string(min) +
                        "] samples, got [2, " + std::to_string(min - 1) + "]")
                           .c_str(),
                       shape_error);
  // One frame: no (t, k) pair to predict.
  tensor2<float> one_frame = xt::zeros<float>({std::size_t{2}, min});
  CHECK_THROWS_WITH_AS(m.compute_gradients(one_frame),
                       doctest::Contains("items need at least 2 valid frames"), config_error);
  tensor2<float> ok = xt::zeros<float>({std::size_t{2}, std::size_t{512}});
  CHECK_THROWS_WITH_AS(m.compute_gradients(ok, {.lengths = {16}}), doctest::Contains("lengths"),
                       config_error);
  CHECK(std::isfinite(m.compute_gradients(ok).loss));
}

TEST_CASE("bad input: an empty batch is a shape_error, not a crash or a NaN loss") {
  tiny_f m;
  adam<float> opt(m.parameters(), {});
  const auto before = snapshot(m, opt);
  tensor2<float> empty = xt::zeros<float>({std::size_t{0}, std::size_t{512}});
  CHECK_THROWS_WITH_AS(m.compute_gradients(empty),
                       "cpc::model: expected a non-empty batch [>= 1, samples], got [0, 512]", shape_error);
  CHECK_THROWS_AS(m.evaluate(empty), shape_error);
  rng gen(1);
  std::size_t calls = 0;
  auto empty_batches = [&](training_batch<float>& b) {
    ++calls;
    b.audio.resize({std::size_t{0}, std::size_t{512}});
  };
  CHECK_THROWS_AS(train(m, opt, constant_lr{1e-3}, empty_batches, quiet(3)), shape_error);
  CHECK(calls == 1);
  CHECK(opt.steps() == 0);
  CHECK(snapshot(m, opt) == before);
}

TEST_CASE(
    "bad input: checkpoint dtypes - F64 into a float model converts, integers and floats are not mixed") {
  temp_dir dir;
  const auto path = dir.path / "d.ckpt";
  tiny_d md({.seed = 3});
  adam<double> od(md.parameters(), {});
  save_checkpoint(path, md, od);

  // F64 parameters load into a float model, rounded to nearest.
  tiny_f mf({.seed = 99});
  adam<float> of(mf.parameters(), {});
  load_checkpoint(path, mf, of);
  std::vector<double> expected;
  md.for_each_parameter([&](const std::string&, parameter<double>& p) {
    for (double v : p.value) expected.push_back(static_cast<float>(v));
  });
  std::vector<double> got;
  mf.for_each_parameter([&](const std::string&, parameter<float>& p) {
    got.insert(got.end(), p.value.begin(), p.value.end());
  });
  CHECK(got == expected);
  CHECK(mf.generator().state() == md.generator().state());

  // Parameters stored as integers, or the step count stored as a float: io_error, nothing changes.
  const auto f = load_safetensors(path);
  const auto rewrite = [&](const std::string& victim, dtype as) {
    std::vector<tensor_ref> refs;
    std::vector<std::vector<std::byte>> keep;
    for (const auto& [name, t] : f.tensors) {
      if (name != victim) {
        refs.push_back({name, t.type, t.shape, t.bytes.data()});
        continue;
      }
      keep.emplace_back(t.size() * dtype_size(as), std::byte{0});
      refs.push_back({name, as, t.shape, keep.back().data()});
    }
    save_safetensors(path, refs, f.metadata);
  };
  const auto before = snapshot(mf, of);
  rewrite("model.encoder.conv0.weight", dtype::i32);
  CHECK_THROWS_WITH_AS(load_checkpoint(path, mf, of),
                       ("load_checkpoint: " + path.string() +
                        ": tensor 'model.encoder.conv0.weight': expected F32 or F64 data, got I32")
                           .c_str(),
                       io_error);
  rewrite("model.encoder.conv0.weight", dtype::f32);
  rewrite("optimizer.steps", dtype::f32);
  CHECK_THROWS_WITH_AS(load_checkpoint(path, mf, of),
                       doctest::Contains("tensor 'optimizer.steps': expected U64 data, got F32"), io_error);
  CHECK(snapshot(mf, of) == before);
  // The raw accessor refuses the float -> integer cast too (it is undefined for NaN or -1.0).
  CHECK_THROWS_WITH_AS(load_safetensors(path).at("optimizer.steps").values<std::uint64_t>(),
                       "safetensors: cannot convert F32 data to integers", io_error);
}

TEST_CASE("bad input: the fuzzer's float-to-integer regression file loads without undefined behaviour") {
  // tests/fuzz/corpus/fuzz_safetensors/regression-float-to-integer-cast: a valid file whose F32
  // tensors hold -1.0; values<std::uint64_t>() on them was a float-cast-overflow.
  const fs::path p =
      fs::path(CPC_SOURCE_DIR) / "tests/fuzz/corpus/fuzz_safetensors/regression-float-to-integer-cast";
  const auto f = load_safetensors(p);
  std::size_t refused = 0;
  for (const auto& [name, t] : f.tensors) {
    if (!is_floating(t.type)) continue;
    CHECK_THROWS_AS(t.values<std::uint64_t>(), io_error);
    ++refused;
    CHECK(t.values<double>().size() == t.size());
  }
  CHECK(refused > 0);
}

TEST_CASE("bad input: a checkpoint of another model is refused by name and shape; nothing changes") {
  temp_dir dir;
  const auto path = dir.path / "tiny.ckpt";
  tiny_f m({.seed = 1});
  adam<float> opt(m.parameters(), {});
  save_checkpoint(path, m, opt);

  narrow_f narrow({.seed = 2});
  adam<float> narrow_opt(narrow.parameters(), {});
  const auto before = snapshot(narrow, narrow_opt);
  CHECK_THROWS_WITH_AS(
      load_checkpoint(path, narrow, narrow_opt),
      ("load_checkpoint: " + path.string() +
       ": tensor 'model.encoder.conv0.weight': expected [12, 1, 4], got [16, 1, 4] (a checkpoint "
       "of another model?)")
          .c_str(),
      io_error);
  CHECK(snapshot(narrow, narrow_opt) == before);

  tiny_lstm other({.seed = 2});
  adam<float> other_opt(other.parameters(), {});
  CHECK_THROWS_WITH_AS(load_checkpoint(path, other, other_opt),
                       doctest::Contains("(a checkpoint of another model?)"), io_error);

  // A generator the file does not hold (e.g. resuming with a data sampler that was not saved).
  rng data(5);
  CHECK_THROWS_WITH_AS(load_checkpoint(path, m, opt, {{"data", &data}}),
                       doctest::Contains("missing tensor 'rng.data'"), io_error);
  // A safetensors file that is not a checkpoint.
  const auto plain = dir.path / "plain.safetensors";
  const float x[2] = {1, 2};
  save_safetensors(plain, {make_tensor_ref("x", {2}, x)});
  CHECK_THROWS_WITH_AS(load_checkpoint(plain, m, opt),
                       ("load_checkpoint: " + plain.string() +
                        ": not a cpc checkpoint (expected metadata format = cpc-checkpoint-1)")
                           .c_str(),
                       io_error);
}

TEST_CASE(
    "bad input: every truncation and a flipped byte of a checkpoint are io_error; the model is unchanged") {
  temp_dir dir;
  const auto path = dir.path / "tiny.ckpt";
  tiny_f m({.seed = 1});
  adam<float> opt(m.parameters(), {});
  save_checkpoint(path, m, opt);
  const std::string bytes = read_bytes(path);
  REQUIRE(bytes.size() > 1000);

  tiny_f target({.seed = 2});
  adam<float> target_opt(target.parameters(), {});
  const auto before = snapshot(target, target_opt);
  const auto cut = dir.path / "cut.ckpt";
  std::size_t refused = 0, cuts = 0;
  // Every length up to the end of the header, then every 37th byte through the data.
  std::uint64_t header = 0;
  for (int i = 7; i >= 0; --i)
    header = (header << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  for (std::size_t n = 0; n < bytes.size(); n += (n < 8 + header + 8 ? 1 : 37)) {
    write_bytes(cut, bytes.substr(0, n));
    ++cuts;
    try {
      load_checkpoint(cut, target, target_opt);
    } catch (const io_error& e) {
      ++refused;
      CHECK(std::string(e.what()).starts_with("load_"));
    }
  }
  CHECK(refused == cuts);
  CHECK(snapshot(target, target_opt) == before);
  write_bytes(cut, bytes.substr(0, bytes.size() / 2));
  const std::string half = message_of<io_error>([&] { load_checkpoint(cut, target, target_opt); });
  CHECK(half.starts_with("load_safetensors: " + cut.string() + ": "));
  CHECK((half.find("exceeds the") != std::string::npos ||
         half.find("lie beyond the data section") != std::string::npos));

  // A flipped byte in the JSON header.
  std::string flipped = bytes;
  flipped[8] = '#';  // the opening brace
  write_bytes(cut, flipped);
  CHECK_THROWS_WITH_AS(load_checkpoint(cut, target, target_opt),
                       doctest::Contains("header is not valid JSON"), io_error);
  CHECK(snapshot(target, target_opt) == before);
  load_checkpoint(path, target, target_opt);  // the intact file still loads
  CHECK(snapshot(target, target_opt) == snapshot(m, opt));
}

TEST_CASE("bad input: an unwritable output directory is io_error; the CSV log is checked before training") {
  temp_dir dir;
  const fs::path ro = unwritable_dir(dir);
  tiny_f m({.seed = 1});
  adam<float> opt(m.parameters(), {});
  CHECK_THROWS_WITH_AS(save_checkpoint(ro / "ckpt.safetensors", m, opt),
                       doctest::Contains(("write_file_atomically: " + (ro / "ckpt.safetensors").string() +
                                          ": cannot create temporary file")
                                             .c_str()),
                       io_error);
  rng gen(3);
  auto o = quiet(2);
  o.csv_path = ro / "log.csv";
  CHECK_THROWS_WITH_AS(train(m, opt, constant_lr{1e-3}, noise_batches(gen), o),
                       ("train: cannot write the CSV log " + (ro / "log.csv").string()).c_str(), io_error);
  CHECK(opt.steps() == 0);
  // A checkpoint path there: the trainer writes a checkpoint before the first step, so the run
  // stops at once with io_error instead of losing its work at the first save.
  CHECK_THROWS_AS(train(m, opt, constant_lr{1e-3}, noise_batches(gen), quiet(2, ro / "ckpt.safetensors")),
                  io_error);
  CHECK(opt.steps() == 0);
}

TEST_CASE("bad input: a full disk during a save (RLIMIT_FSIZE) is io_error; the old checkpoint survives") {
  temp_dir dir;
  const auto path = dir.path / "ckpt.safetensors";
  tiny_f m({.seed = 1});
  adam<float> opt(m.parameters(), {});
  save_checkpoint(path, m, opt);
  const std::string old = read_bytes(path);
  REQUIRE(old.size() > 4096);

  rng gen(4);
  train(m, opt, constant_lr{1e-3}, noise_batches(gen), quiet(1));
  // Writes past 4 KiB now fail with EFBIG, as they would with ENOSPC on a full disk.
  // SIGXFSZ is ignored so the write returns the error instead of killing the process.
  struct sigaction ignore {
  }, previous{};
  ignore.sa_handler = SIG_IGN;
  REQUIRE(::sigaction(SIGXFSZ, &ignore, &previous) == 0);
  rlimit saved{};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
  rlimit small = saved;
  small.rlim_cur = 4096;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  std::string message;
  try {
    save_checkpoint(path, m, opt);
  } catch (const io_error& e) {
    message = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::sigaction(SIGXFSZ, &previous, nullptr);
  CHECK(message.starts_with("write_file_atomically: " + path.string() + ": cannot write temporary file '"));
  CHECK(message.ends_with("File too large"));
  CHECK(read_bytes(path) == old);
  CHECK(dir.listing() == std::vector<std::string>{"ckpt.safetensors"});
  tiny_f fresh;
  adam<float> fresh_opt(fresh.parameters(), {});
  load_checkpoint(path, fresh, fresh_opt);
  CHECK(fresh_opt.steps() == 0);
  // With the limit lifted the same save succeeds.
  save_checkpoint(path, m, opt);
  load_checkpoint(path, fresh, fresh_opt);
  CHECK(fresh_opt.steps() == 1);
}

TEST_CASE(
    "bad input: NaN or Inf in training throws numeric_error naming the step; the last checkpoint stays") {
  temp_dir dir;
  const auto path = dir.path / "ckpt.safetensors";
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    tiny_f m({.seed = 1});
    adam<float> opt(m.parameters(), {});
    rng gen(2);
    std::size_t calls = 0;
    auto batches = [&](training_batch<float>& b) {
      noise_batches(gen)(b);
      if (++calls == 5) b.audio(1, 100) = bad;  // step 5 sees one bad sample
    };
    auto o = quiet(10, path);
    o.checkpoint_every = 2;
    const std::string msg = message_of<numeric_error>([&] { train(m, opt, constant_lr{1e-3}, batches, o); });
    CHECK(msg.starts_with("training step 5: the loss is "));
    CHECK(msg.ends_with("the last checkpoint is intact)"));
    CHECK(opt.steps() == 4);  // no update from the bad step
    for (auto& [name, p] : m.parameters())
      for (float v : p->value) REQUIRE(std::isfinite(v));
    tiny_f resumed;
    adam<float> resumed_opt(resumed.parameters(), {});
    const auto meta = load_checkpoint(path, resumed, resumed_opt);
    CHECK(meta.at("step") == "4");
    CHECK(resumed_opt.steps() == 4);
    CHECK(snapshot(resumed, resumed_opt) == snapshot(m, opt));
  }
}

TEST_CASE("bad input: a JSON number too large for a double in a checkpoint header is io_error, not a crash") {
  // tests/fuzz/corpus/fuzz_safetensors/regression-json-number-overflow (found by fuzz_safetensors
  // and fuzz_checkpoint): nlohmann::json throws out_of_range, not parse_error, for 1E999, and it
  // escaped load_safetensors as a foreign exception.
  const fs::path p =
      fs::path(CPC_SOURCE_DIR) / "tests/fuzz/corpus/fuzz_safetensors/regression-json-number-overflow";
  CHECK_THROWS_WITH_AS(load_safetensors(p),
                       doctest::Contains("header is not valid JSON ([json.exception.out_of_range.406]"),
                       io_error);
  temp_dir dir;
  const std::string header = R"({"__metadata__": {"format": "cpc-checkpoint-1"}, "x": 1E999})";
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i)
    bytes[static_cast<std::size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  write_bytes(dir.path / "big.ckpt", bytes + header);
  tiny_f m;
  adam<float> opt(m.parameters(), {});
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.path / "big.ckpt", m, opt), doctest::Contains("number overflow"),
                       io_error);
}
