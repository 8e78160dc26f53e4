// Trains the paper's audio model and the small image model for a few steps from fixed seeds and
// prints a 64-bit FNV-1a hash of every parameter's bytes, the losses, and the optimiser's state.
// Used to show that a refactor keeps training bit-identical on a backend (same build flags, same
// machine): run it before and after (scripts/train-hash.sh) and compare the printed hashes.
// Usage: train_hash [audio steps] [image steps] [batch]
#include <cpc/cpc.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

struct fnv1a {
  std::uint64_t h = 1469598103934665603ull;
  void add(const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) {
      h ^= b[i];
      h *= 1099511628211ull;
    }
  }
};

template <class Model>
std::uint64_t hash_parameters(Model& m) {
  fnv1a f;
  m.for_each_parameter([&](const std::string& name, auto& p) {
    f.add(name.data(), name.size());
    f.add(p.value.data(), p.value.size() * sizeof(float));
  });
  return f.h;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t audio_steps = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 3;
  const std::size_t image_steps = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 3;
  const std::size_t batch = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 4;
  {
    using model_t = cpc::audio_model<cpc::presets::audio_paper>;
    model_t::options o;
    o.seed = 42;
    model_t model(o);
    cpc::adam<float> opt(model.parameters(), {.learning_rate = 2e-4});
    cpc::rng data(7);
    cpc::tensor2<float> audio = cpc::tensor2<float>::from_shape({batch, 20480});
    for (std::size_t s = 0; s < audio_steps; ++s) {
      for (auto& v : audio) v = static_cast<float>(0.1 * data.normal());
      const auto r = model.train_step(audio, opt);
      std::printf("audio step %zu: loss %.9g acc1 %.9g\n", s + 1, r.loss, r.accuracy[0]);
    }
    std::printf("audio parameters hash %016llx\n", static_cast<unsigned long long>(hash_parameters(model)));
  }
  {
    cpc::cpc_image_model<cpc::presets::image_small> net;
    cpc::adam<float> opt(net.parameters(), {.learning_rate = 1e-3});
    cpc::rng data(9);
    cpc::tensor4<float> images = cpc::tensor4<float>::from_shape({2 * batch, 28, 28, 1});
    for (std::size_t s = 0; s < image_steps; ++s) {
      for (auto& v : images) v = static_cast<float>(data.uniform(0.0, 1.0));
      const auto r = net.train_step(images, opt);
      std::printf("image step %zu: loss %.9g acc1 %.9g\n", s + 1, r.loss, r.accuracy[0]);
    }
    std::printf("image parameters hash %016llx\n", static_cast<unsigned long long>(hash_parameters(net)));
  }
  return 0;
}
