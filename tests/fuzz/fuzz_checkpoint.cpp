// libFuzzer target: load_checkpoint on arbitrary bytes into a small model + Adam + a data
// generator. Only cpc::error may escape; a load that fails must leave the model, optimiser and
// generators untouched (the documented "nothing is modified" guarantee), checked bit for bit.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include <cpc/train/checkpoint.hpp>

#include "fuzz_util.hpp"

namespace {

struct state {
  cpc::fuzz::micro_model m{};
  cpc::adam<float> opt{m.parameters(), {}};
  cpc::rng data{7};

  std::vector<float> snapshot() {
    std::vector<float> out;
    m.for_each_parameter([&](const std::string&, cpc::parameter<float>& p) {
      out.insert(out.end(), p.value.begin(), p.value.end());
    });
    opt.for_each_state([&](const std::string&, const auto& s) { out.insert(out.end(), s.begin(), s.end()); });
    return out;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static state s;
  static const auto path = cpc::fuzz::scratch_dir() / "input.ckpt";
  cpc::fuzz::write_file(path, data, size);
  const auto before = s.snapshot();
  const auto model_rng = s.m.generator().state(), data_rng = s.data.state();
  const auto steps = s.opt.steps();
  try {
    (void)cpc::load_checkpoint(path, s.m, s.opt, {{"data", &s.data}});
  } catch (const cpc::error&) {
    const auto after = s.snapshot();
    if (after.size() != before.size() ||
        std::memcmp(after.data(), before.data(), after.size() * sizeof(float)) != 0 ||
        s.m.generator().state() != model_rng || s.data.state() != data_rng || s.opt.steps() != steps)
      __builtin_trap();
  }
  return 0;
}
