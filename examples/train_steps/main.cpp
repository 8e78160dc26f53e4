// Trains the paper's audio model for a few steps on random audio, saves a checkpoint, resumes
// from it and prints per-step accuracies. Usage: cpc_train_steps [steps] [batch] [checkpoint path]
#include <cpc/cpc.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  cpc::warn_if_cpu_features_unused();  // once, when built without the CPU's AVX2/AVX-512/FMA
  const std::uint64_t steps = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 4;
  const std::size_t batch = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 2;
  const std::string path = argc > 3 ? argv[3] : "cpc_train_steps.safetensors";
  using model_t = cpc::audio_model<cpc::presets::audio_paper>;
  model_t::options o;
  o.seed = 42;
  model_t model(o);
  cpc::adam<float> opt(model.parameters(), {.learning_rate = 2e-4});
  cpc::rng data(7);
  auto next = [&](cpc::training_batch<float>& b) {
    b.audio.resize({batch, 20480});
    for (auto& v : b.audio) v = static_cast<float>(0.1 * data.normal());
  };
  std::printf("model: %zu parameters; training %llu steps at batch %zu on random audio\n",
              model.parameter_count(), static_cast<unsigned long long>(steps), batch);
  cpc::train_options t{.max_steps = steps, .checkpoint_path = path, .progress = false};
  t.generators = {{"data", &data}};
  cpc::train(model, opt, cpc::constant_lr{2e-4}, next, t);
  std::printf("saved %s after %llu steps\n", path.c_str(), static_cast<unsigned long long>(opt.steps()));

  // Resume in a fresh model and optimiser, then train `steps` more.
  model_t resumed(o);
  cpc::adam<float> opt2(resumed.parameters(), {.learning_rate = 2e-4});
  cpc::load_checkpoint(path, resumed, opt2, {{"data", &data}});
  std::printf("resumed at step %llu\n", static_cast<unsigned long long>(opt2.steps()));
  t.max_steps = 2 * steps;
  const auto s = cpc::train(resumed, opt2, cpc::constant_lr{2e-4}, next, t);
  std::printf("step %llu: loss %.4f (chance %.4f)\naccuracy per prediction step k:",
              static_cast<unsigned long long>(s.steps), s.last.loss, s.last.log_candidates);
  for (std::size_t k = 0; k < s.last.accuracy.size(); ++k)
    std::printf(" k%zu=%.4f", k + 1, s.last.accuracy[k]);
  std::printf("\n(chance level %.4f)\n", s.last.chance);
  return 0;
}
