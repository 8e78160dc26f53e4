// The paper's audio model end to end (cpc::audio_model<presets::audio_paper>: 5 strided
// convolutions with channel norm + ReLU, 512 channels, GRU 256, K = 12 linear heads without bias,
// N = 128 negatives from the batch, windows of 20480 samples = 128 frames).
//   bm_train_step/<batch>/<threads>: compute_gradients + one Adam step, batch 8, 16, 32.
//   bm_encode/<batch>/<threads>:     encode (encoder + GRU forward, no gradients), batch 32.
//   bm_train_phases/8/1:             the train step phase by phase, CPU seconds of each phase and
//                                    its analytic FLOPs per CPU second over one core's peak (_frac).
//
// FLOPs are counted analytically (2 per multiply-add) from the shapes, per batch item, with
// S = 20480 samples, C = 512 channels, H = 256, T = 128 frames, K = 12, N = 128:
//   conv forward   F_conv = 2 * C * sum_i T_i * C_in,i * k_i
//                  (T_i = 4096, 1024, 512, 256, 128; C_in = 1, 512, 512, 512, 512;
//                   k = 10, 8, 4, 4, 4)                                      = 6.21 GFLOP
//   conv backward  d weight = F_conv, d input = F_conv - layer 0's share     = 12.39 GFLOP
//   GRU forward    F_gru = 2 * T * 3H * (C + H)                              = 0.151 GFLOP
//   GRU backward   2 * F_gru (d weights, d input / d h)                      = 0.302 GFLOP
//   heads          2 * K * T * H * C forward, twice that backward (d W, d c) = 1.208 GFLOP
//   InfoNCE scores 2 * sum_{k=1..K} (T - k) * (N + 1) * C forward; twice that backward
//                  (dP gather, dz scatter)                                   = 0.578 GFLOP
// Element-wise work (norms, ReLU, gates, softmax, Adam) is not counted. Train step at batch B:
// B * 20.84 GFLOP (166.8 GFLOP at B = 8). Encode: B * (F_conv + F_gru) = B * 6.37 GFLOP.
//
// Counters: GFLOP/s (the analytic count per second), peak-frac (GFLOP/s over the FMA peak of that
// many threads, measured in this process before the timed work: support/peak.hpp), cpu-frac (the
// count per CPU second over one core's peak), audio-s/s (seconds of 16 kHz audio per
// second), peak-RSS (the process's peak resident set, getrusage ru_maxrss, bytes; it only grows,
// so run one benchmark per process to read one configuration's peak, e.g. with
// --benchmark_filter). cpc::configure_allocator() is called first, as a program should; set the
// environment variable CPC_BENCH_MALLOC=default to keep glibc's defaults (to measure its effect).
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <time.h>

#include <array>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "support/bf16.hpp"
#include "support/flops.hpp"

#include <cpc/core/allocator.hpp>
#include <cpc/model/model.hpp>
#include <cpc/optim/adam.hpp>

namespace {

constexpr std::size_t samples = 20480, channels = 512, hidden = 256, frames = 128, steps = 12,
                      negatives = 128;
constexpr double sample_rate = 16000.0;
constexpr std::array<std::size_t, 5> kernels{10, 8, 4, 4, 4}, strides{5, 4, 2, 2, 2}, paddings{3, 2, 1, 1, 1};

double conv_forward_flops() {
  double total = 0;
  std::size_t t = samples;
  for (std::size_t i = 0; i < kernels.size(); ++i) {
    t = (t + 2 * paddings[i] - kernels[i]) / strides[i] + 1;
    total += 2.0 * double(channels) * double(t) * double(i == 0 ? 1 : channels) * double(kernels[i]);
  }
  return total;
}

double conv_first_layer_flops() {
  const std::size_t t = (samples + 2 * paddings[0] - kernels[0]) / strides[0] + 1;
  return 2.0 * double(channels) * double(t) * double(kernels[0]);
}

double gru_forward_flops() {
  return 2.0 * frames * 3 * hidden * double(channels + hidden);
}

double head_forward_flops() {
  return 2.0 * steps * frames * hidden * channels;
}

double score_forward_flops() {
  double f = 0;
  for (std::size_t k = 1; k <= steps; ++k) f += 2.0 * double(frames - k) * (negatives + 1) * channels;
  return f;
}

/// Analytic FLOPs of one training step per batch item (see the file comment).
double train_flops_per_item() {
  const double conv = conv_forward_flops();
  return conv + (2 * conv - conv_first_layer_flops()) + 3 * gru_forward_flops() + 3 * head_forward_flops() +
         3 * score_forward_flops();
}

/// Analytic FLOPs of encode per batch item.
double encode_flops_per_item() {
  return conv_forward_flops() + gru_forward_flops();
}

void setup_allocator() {
  const char* env = std::getenv("CPC_BENCH_MALLOC");
  if (env == nullptr || std::string_view(env) != "default") cpc::configure_allocator();
}

double peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) * 1024.0;  // Linux reports KiB
}

cpc::tensor2<float> random_audio(std::size_t batch, cpc::rng& gen) {
  cpc::tensor2<float> a = cpc::tensor2<float>::from_shape({batch, samples});
  for (auto& v : a) v = gen.uniform(-0.5f, 0.5f);
  return a;
}

// GFLOP/s, peak-frac, cpu-frac (support/flops.hpp; cpu_seconds: process CPU time of the timed
// loop), audio-s/s and peak-RSS.
void set_counters(benchmark::State& state, std::size_t batch, double flops_per_item, double cpu_seconds) {
  const double it = static_cast<double>(state.iterations());
  cpc::bench::flops_counters(state, it * double(batch) * flops_per_item,
                             static_cast<std::size_t>(state.range(1)), cpu_seconds);
  state.counters["audio-s/s"] =
      benchmark::Counter(it * double(batch * samples) / sample_rate, benchmark::Counter::kIsRate);
  state.counters["peak-RSS"] =
      benchmark::Counter(peak_rss_bytes(), benchmark::Counter::kDefaults, benchmark::Counter::kIs1024);
}

/// What the training benchmarks start from: the paper model with its Adam optimiser and a batch of
/// range(0) random windows `[batch, 20480]`, after setting the allocator and the thread count
/// (range(1)).
struct paper_setup {
  std::size_t batch;
  std::unique_ptr<cpc::audio_model<cpc::presets::audio_paper>> model;  // on the heap: opt points into it
  cpc::adam<float> opt;
  cpc::tensor2<float> audio;
};

paper_setup make_paper_setup(benchmark::State& state) {
  setup_allocator();
  cpc::set_num_threads(static_cast<std::size_t>(state.range(1)));
  const auto batch = static_cast<std::size_t>(state.range(0));
  auto model = std::make_unique<cpc::audio_model<cpc::presets::audio_paper>>();
  cpc::adam<float> opt(model->parameters(), {});
  cpc::rng gen(7);
  auto audio = random_audio(batch, gen);
  return {batch, std::move(model), std::move(opt), std::move(audio)};
}

void bm_train_step(benchmark::State& state) {
  auto [batch, model, opt, audio] = make_paper_setup(state);
  model->train_step(audio, opt);  // warm-up: sizes every buffer
  const cpc::bench::cpu_timer cpu;
  for (auto _ : state) {
    const auto r = model->train_step(audio, opt);
    benchmark::DoNotOptimize(r.loss);
  }
  set_counters(state, batch, train_flops_per_item(), cpu.seconds());
}

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

/// The train step of bm_train_step phase by phase (the same calls as model::compute_gradients and
/// adam::step), reporting each phase's process CPU seconds per step: where the time goes.
void bm_train_phases(benchmark::State& state) {
  auto [batch, model, opt, audio] = make_paper_setup(state);
  cpc::tensor3<float> z, c, dz, dc, dz_ar;
  constexpr std::size_t phases = 7;
  const std::array<const char*, phases> names{"zero_grad", "encoder_fwd", "gru_fwd", "loss_fwd_bwd",
                                              "gru_bwd",   "encoder_bwd", "adam"};
  std::array<double, phases> total{};
  model->train_step(audio, opt);  // warm-up: sizes every buffer
  const cpc::bench::cpu_timer cpu;
  for (auto _ : state) {
    std::array<double, phases + 1> t{};
    t[0] = cpu_seconds();
    cpc::zero_grad<float>(*model);
    t[1] = cpu_seconds();
    model->encoder().forward(audio, z);
    t[2] = cpu_seconds();
    model->autoregressor().forward(z, c);
    t[3] = cpu_seconds();
    const auto r = model->loss().compute(z, c, {}, model->generator(), &dz, &dc);
    benchmark::DoNotOptimize(r.loss);
    t[4] = cpu_seconds();
    model->autoregressor().backward(z, c, dc, &dz_ar);
    dz += dz_ar;
    t[5] = cpu_seconds();
    model->encoder().backward(dz);
    t[6] = cpu_seconds();
    opt.step();
    t[7] = cpu_seconds();
    for (std::size_t i = 0; i < phases; ++i) total[i] += t[i + 1] - t[i];
  }
  // Analytic FLOPs of each phase per batch item (see the file comment).
  const std::array<double, phases> flops{0,
                                         conv_forward_flops(),
                                         gru_forward_flops(),
                                         3 * head_forward_flops() + 3 * score_forward_flops(),
                                         2 * gru_forward_flops(),
                                         2 * conv_forward_flops() - conv_first_layer_flops(),
                                         0};
  const double it = static_cast<double>(state.iterations()), peak = cpc::bench::machine_peak().fma(1);
  for (std::size_t i = 0; i < phases; ++i) {
    const double s = total[i] / it;
    state.counters[std::string(names[i]) + "_cpu_s"] = s;
    if (flops[i] > 0 && peak > 0)
      state.counters[std::string(names[i]) + "_frac"] = double(batch) * flops[i] / s / (peak * 1e9);
  }
  set_counters(state, batch, train_flops_per_item(), cpu.seconds());
}

void bm_encode(benchmark::State& state) {
  setup_allocator();
  const auto batch = static_cast<std::size_t>(state.range(0));
  cpc::set_num_threads(static_cast<std::size_t>(state.range(1)));
  auto model = std::make_unique<cpc::audio_model<cpc::presets::audio_paper>>();  // no optimiser: peak RSS of
                                                                                 // encode alone
  cpc::rng gen(7);
  const auto audio = random_audio(batch, gen);
  cpc::tensor3<float> z, c;
  model->encode(audio, z, c);
  const cpc::bench::cpu_timer cpu;
  for (auto _ : state) {
    model->encode(audio, z, c);
    benchmark::DoNotOptimize(c.data());
  }
  set_counters(state, batch, encode_flops_per_item(), cpu.seconds());
}

}  // namespace

BENCHMARK(cpc::bench::in_bf16<bm_train_step>)
    ->Name("bm_train_step_bf16")
    ->ArgNames({"batch", "threads"})
    ->ArgsProduct({{8, 32}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();
BENCHMARK(cpc::bench::in_bf16<bm_train_phases>)
    ->Name("bm_train_phases_bf16")
    ->ArgNames({"batch", "threads"})
    ->Args({8, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();
BENCHMARK(cpc::bench::in_bf16<bm_encode>)
    ->Name("bm_encode_bf16")
    ->ArgNames({"batch", "threads"})
    ->ArgsProduct({{32}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();
BENCHMARK(bm_train_step)
    ->ArgNames({"batch", "threads"})
    ->ArgsProduct({{8, 16, 32}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();
BENCHMARK(bm_train_phases)
    ->ArgNames({"batch", "threads"})
    ->Args({8, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();
BENCHMARK(bm_encode)
    ->ArgNames({"batch", "threads"})
    ->ArgsProduct({{32}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();
