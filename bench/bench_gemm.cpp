// The GEMM engine (backend/cpu/gemm.hpp) on the audio encoder's shapes: the paper model at batch 8,
// convolution layers 1-4 (kernels 8, 4, 4, 4, strides 4, 2, 2, 2, 512 -> 512 channels, 1024, 512,
// 256, 128 output frames), each in the three products its training step runs:
//   fwd  y = im2col(x) W            [B*T_out, K*512] x [K*512, 512]
//   din  dx_k = dy W_k (one tap)    [B*T_out, 512]   x [512, 512], accumulated into dx
//   dw   dW = im2col(x)^T dy        [K*512, B*T_out] x [B*T_out, 512] (A transposed)
// Benchmarks, named <impl>/conv<layer>_<pass>/threads:<n>, each shape's three next to each other:
//   gemm_cpc/<case>          cpc::ops::gemm (cpu) on plain row-major operands (A transposed for dw)
//   gemm_openblas/<case>     cblas_sgemm on the same operands, when OpenBLAS was found at configure
//                            time (it is linked into this benchmark only). OpenBLAS picks its
//                            kernels when it is loaded: run with OPENBLAS_CORETYPE unset
//                            (env -u OPENBLAS_CORETYPE) to get its AVX-512 kernels; the context
//                            line "openblas_core" says which it used.
//   conv_op/<case>           the conv1d op as the encoder calls it (strided im2col views of x,
//                            weights packed per call, bias; din runs all K taps into strided
//                            views of dx, so K times the one-tap FLOPs; dw one GEMM per batch item)
//   conv_op_bf16/<case>      the same op with cpc::matmul_precision::bf16 (AMX tiles; skipped
//                            with the reason where unavailable); peak-frac still over fp32 FMAs
// Counters (support/flops.hpp): GFLOP/s (2 per multiply-add, wall time), peak-frac (that over the
// FMA peak measured in this process for the thread count and the vectors of this build) and
// cpu-frac (FLOPs per CPU second of the process over one core's peak: the figure that stays
// meaningful when other processes share the machine).
#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdlib>
#include <string>
#include <vector>

#include <cpc/backend/ops.hpp>
#include <cpc/core/random.hpp>

#include "support/bf16.hpp"
#include "support/flops.hpp"

#if defined(CPC_BENCH_HAVE_OPENBLAS)
extern "C" {
// The CBLAS entry points of OpenBLAS (declared here so that no cblas.h is needed).
void cblas_sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a,
                 int lda, const float* b, int ldb, float beta, float* c, int ldc);
void openblas_set_num_threads(int n);
char* openblas_get_corename();
char* openblas_get_config();
}
#endif

namespace {

constexpr std::size_t batch = 8, channels = 512;
constexpr std::array<std::size_t, 4> kernels{8, 4, 4, 4}, strides{4, 2, 2, 2}, paddings{2, 1, 1, 1},
    t_in{4096, 1024, 512, 256};

enum class pass { fwd = 0, din = 1, dw = 2 };

struct gemm_case {
  std::size_t m, k, n;
  bool transposed_a;  // A given as its transpose [k, m] (dw)
};

std::size_t t_out(std::size_t layer) {
  return (t_in[layer] + 2 * paddings[layer] - kernels[layer]) / strides[layer] + 1;
}

gemm_case case_of(std::size_t layer, pass p) {
  const std::size_t frames = batch * t_out(layer), window = kernels[layer] * channels;
  switch (p) {
    case pass::fwd:
      return {frames, window, channels, false};
    case pass::din:
      return {frames, channels, channels, false};
    case pass::dw:
      return {window, frames, channels, true};
  }
  return {};
}

double flops_of(const gemm_case& g) {
  return 2.0 * double(g.m) * double(g.k) * double(g.n);
}

std::vector<float> random_vector(std::size_t n, unsigned seed) {
  cpc::rng gen(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = gen.uniform(-1.0f, 1.0f);
  return v;
}

struct operands {
  gemm_case g;
  std::vector<float> a, b, c;
  explicit operands(const gemm_case& gc)
      : g(gc), a(random_vector(gc.m * gc.k, 1)), b(random_vector(gc.k * gc.n, 2)), c(gc.m * gc.n, 0.0f) {}
};

void label(benchmark::State& state, std::size_t layer, pass p) {
  static const std::array<const char*, 3> names{"fwd", "din", "dw"};
  const gemm_case g = case_of(layer, p);
  state.SetLabel("conv" + std::to_string(layer + 1) + " " + names[static_cast<std::size_t>(p)] + " " +
                 std::to_string(g.m) + "x" + std::to_string(g.k) + "x" + std::to_string(g.n));
}

void bm_gemm_cpc(benchmark::State& state) {
  const auto layer = static_cast<std::size_t>(state.range(0));
  const auto p = static_cast<pass>(state.range(1));
  const auto threads = static_cast<std::size_t>(state.range(2));
  cpc::set_num_threads(threads);
  operands o(case_of(layer, p));
  const gemm_case& g = o.g;
  cpc::ops::gemm_args<float> args{.m = g.m,
                                  .n = g.n,
                                  .k = g.k,
                                  .a = o.a.data(),
                                  .a_row_stride = g.transposed_a ? 1 : static_cast<std::ptrdiff_t>(g.k),
                                  .a_depth_stride = g.transposed_a ? static_cast<std::ptrdiff_t>(g.m) : 1,
                                  .b = o.b.data(),
                                  .b_row_stride = static_cast<std::ptrdiff_t>(g.n),
                                  .b_col_stride = 1,
                                  .c = o.c.data(),
                                  .ldc = static_cast<std::ptrdiff_t>(g.n),
                                  .accumulate = p == pass::din};
  cpc::ops::gemm_workspace<cpc::cpu, float> ws;
  cpc::ops::gemm<cpc::cpu>(args, ws);  // warm-up: sizes the workspace
  const cpc::bench::cpu_timer cpu;
  for (auto _ : state) {
    cpc::ops::gemm<cpc::cpu>(args, ws);
    benchmark::ClobberMemory();
  }
  label(state, layer, p);
  cpc::bench::flops_counters(state, flops_of(g) * double(state.iterations()), threads, cpu.seconds());
}

#if defined(CPC_BENCH_HAVE_OPENBLAS)
void bm_gemm_openblas(benchmark::State& state) {
  const auto layer = static_cast<std::size_t>(state.range(0));
  const auto p = static_cast<pass>(state.range(1));
  const auto threads = static_cast<std::size_t>(state.range(2));
  openblas_set_num_threads(static_cast<int>(threads));
  operands o(case_of(layer, p));
  const gemm_case& g = o.g;
  constexpr int row_major = 101, no_trans = 111, trans = 112;
  auto call = [&] {
    cblas_sgemm(row_major, g.transposed_a ? trans : no_trans, no_trans, static_cast<int>(g.m),
                static_cast<int>(g.n), static_cast<int>(g.k), 1.0f, o.a.data(),
                static_cast<int>(g.transposed_a ? g.m : g.k), o.b.data(), static_cast<int>(g.n),
                p == pass::din ? 1.0f : 0.0f, o.c.data(), static_cast<int>(g.n));
  };
  call();
  const cpc::bench::cpu_timer cpu;
  for (auto _ : state) {
    call();
    benchmark::ClobberMemory();
  }
  label(state, layer, p);
  cpc::bench::flops_counters(state, flops_of(g) * double(state.iterations()), threads, cpu.seconds());
}
#endif

// The conv1d op of layer `layer` in pass p, as the encoder calls it: fwd and dw FLOPs equal the
// GEMM cases; din runs all K taps (K times the one-tap case).
void bm_conv_op(benchmark::State& state) {
  const auto layer = static_cast<std::size_t>(state.range(0));
  const auto p = static_cast<pass>(state.range(1));
  const auto threads = static_cast<std::size_t>(state.range(2));
  cpc::set_num_threads(threads);
  const cpc::ops::conv1d_shape s{.batch = batch,
                                 .t_in = t_in[layer],
                                 .c_in = channels,
                                 .c_out = channels,
                                 .kernel = kernels[layer],
                                 .stride = strides[layer],
                                 .padding = paddings[layer]};
  const auto x = random_vector(batch * s.t_in * channels, 1);
  const auto w = random_vector(channels * channels * s.kernel, 2);
  const auto bias = random_vector(channels, 3);
  const auto dy = random_vector(batch * s.t_out() * channels, 4);
  std::vector<float> y(batch * s.t_out() * channels), dx(x.size()), dw(w.size()), db(channels);
  cpc::ops::conv1d_workspace<cpc::cpu, float> ws;
  auto call = [&] {
    switch (p) {
      case pass::fwd:
        cpc::ops::conv1d_forward<cpc::cpu>(
            cpc::ops::conv1d_forward_args<float>{s, x.data(), w.data(), bias.data(), y.data()}, ws);
        break;
      case pass::din:
        cpc::ops::conv1d_backward_input<cpc::cpu>(
            cpc::ops::conv1d_backward_input_args<float>{s, dy.data(), w.data(), dx.data()}, ws);
        break;
      case pass::dw:
        cpc::ops::conv1d_backward_params<cpc::cpu>(
            cpc::ops::conv1d_backward_params_args<float>{s, x.data(), dy.data(), dw.data(), db.data()}, ws);
        break;
    }
  };
  call();
  const cpc::bench::cpu_timer cpu;
  for (auto _ : state) {
    call();
    benchmark::ClobberMemory();
  }
  label(state, layer, p);
  const double f = flops_of(case_of(layer, p)) * (p == pass::din ? double(s.kernel) : 1.0);
  cpc::bench::flops_counters(state, f * double(state.iterations()), threads, cpu.seconds());
}

// Registers, for each thread count, layer and pass, the cpc GEMM, OpenBLAS and the conv op next
// to each other (so that a run interleaves them shape by shape).
[[maybe_unused]] const bool registered = [] {
  static const std::array<const char*, 3> names{"fwd", "din", "dw"};
  for (int threads : {1, 2})
    for (int layer = 0; layer < 4; ++layer)
      for (int p = 0; p < 3; ++p) {
        const std::string tail = "/conv" + std::to_string(layer + 1) + "_" +
                                 names[static_cast<std::size_t>(p)] + "/threads:" + std::to_string(threads);
        auto add = [&](const std::string& name, void (*fn)(benchmark::State&)) {
          benchmark::RegisterBenchmark((name + tail).c_str(), fn)
              ->Args({layer, p, threads})
              ->Unit(benchmark::kMillisecond)
              ->UseRealTime();
        };
        add("gemm_cpc", bm_gemm_cpc);
#if defined(CPC_BENCH_HAVE_OPENBLAS)
        add("gemm_openblas", bm_gemm_openblas);
#endif
        add("conv_op", bm_conv_op);
        add("conv_op_bf16", cpc::bench::in_bf16<bm_conv_op>);
      }
  return true;
}();

[[maybe_unused]] const bool context = [] {
#if defined(CPC_BENCH_HAVE_OPENBLAS)
  const char* env = std::getenv("OPENBLAS_CORETYPE");
  benchmark::AddCustomContext("openblas_core", openblas_get_corename());
  benchmark::AddCustomContext("openblas_config", openblas_get_config());
  benchmark::AddCustomContext("OPENBLAS_CORETYPE",
                              env != nullptr ? env : "(unset: OpenBLAS detects the CPU)");
#else
  benchmark::AddCustomContext("openblas", "not found at configure time: gemm_openblas skipped");
#endif
  return true;
}();

}  // namespace
