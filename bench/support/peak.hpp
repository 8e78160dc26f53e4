#pragma once
// The machine's limits, measured in the benchmark's own process before the timed work: the
// fused multiply-add peak with 512-bit and 256-bit vectors (one thread and every hardware
// thread) and the memory bandwidth of a triad. Machines of this project differ (one measured
// 117 GFLOP/s per core, another 212), so every benchmark reports its GFLOP/s also as a fraction
// of the peak measured here, never of an assumed one.
//
// FMA peak: each thread runs 16 (512-bit) or 12 (256-bit) independent chains of vfmadd (more than latency x
// pipes on any x86 core we know: 4 cycles x 2 pipes) for about 10 ms; the best of several repetitions is
// kept. "all threads" runs that loop on std::thread::hardware_concurrency() threads at once. Rates are FLOPs
// per second of the thread's own CPU time (CLOCK_THREAD_CPUTIME_ID): on a machine shared with other processes
// a thread loses its core for part of the wall time, which says nothing about the core; "all threads" is the
// sum of the threads' rates. `cpu_share` says how much of the wall time the threads of the all-threads run
// actually held a core (1 = an idle machine).
//
// Triad: a[i] = b[i] + s * c[i] over three float arrays of 64 MiB each (larger than any cache of
// these machines), on one thread and split over every thread; bytes counted as STREAM does
// (12 per element: two reads, one write; the write-allocate read is not counted), per second of
// CPU time like the FMA rates. Arrays are allocated on 2 MiB boundaries with MADV_HUGEPAGE, so
// that first touch is not the measurement.
//
// Environment: CPC_BENCH_PEAK=skip skips the measurement (fractions are then not reported).
#include <immintrin.h>
#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace cpc::bench {

/// The measured limits (GFLOP/s, GB/s); 0 where not measured or not supported by the CPU.
struct peak_figures {
  unsigned threads = 1;  ///< hardware threads that "all" ran on
  double fma512_1 = 0, fma512_all = 0;
  double fma256_1 = 0, fma256_all = 0;
  double triad_1 = 0, triad_all = 0;
  double cpu_share = 1;  ///< CPU time / (wall time x threads) of the all-threads FMA runs

  /// Whether this binary's own kernels use 512-bit vectors (the build's instruction set).
  static constexpr bool binary_uses_512() {
#if defined(__AVX512F__)
    return true;
#else
    return false;
#endif
  }
  /// Name of the FMA peak that fractions refer to.
  static constexpr const char* isa() {
    return binary_uses_512() ? "avx512" : "avx2";
  }
  /// FMA peak in GFLOP/s with `t` threads for the vectors this binary uses: the one-thread
  /// figure for t = 1, the all-threads figure for t = threads, linear in between.
  double fma(std::size_t t) const {
    const double one = binary_uses_512() ? fma512_1 : fma256_1;
    const double all = binary_uses_512() ? fma512_all : fma256_all;
    if (t <= 1 || threads <= 1) return one;
    if (t >= threads) return all * double(t) / double(threads);
    return one + (all - one) * double(t - 1) / double(threads - 1);
  }
  bool measured() const {
    return fma(1) > 0;
  }
};

namespace peak_detail {

using clock = std::chrono::steady_clock;

// Independent FMA chains per loop: enough to cover latency x pipes (4 x 2) with room to spare, and
// few enough to stay in registers (the 256-bit loop may be compiled for AVX2's 16 registers).
constexpr int chains = 16, chains_256 = 12;

// One thread's FMA loop; returns a value that depends on every chain (so nothing is elided).
__attribute__((target("avx512f"))) inline float fma_loop_512(std::size_t iterations) {
  __m512 acc[chains];
  for (int j = 0; j < chains; ++j) acc[j] = _mm512_set1_ps(float(j) * 1e-3f);
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
  for (std::size_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < chains; ++j) acc[j] = _mm512_fmadd_ps(acc[j], m, c);
  }
  __m512 s = acc[0];
  for (int j = 1; j < chains; ++j) s = _mm512_add_ps(s, acc[j]);
  alignas(64) float out[16];
  _mm512_store_ps(out, s);
  return out[0] + out[15];
}

__attribute__((target("avx2,fma"))) inline float fma_loop_256(std::size_t iterations) {
  __m256 acc[chains_256];
  for (int j = 0; j < chains_256; ++j) acc[j] = _mm256_set1_ps(float(j) * 1e-3f);
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
  for (std::size_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < chains_256; ++j) acc[j] = _mm256_fmadd_ps(acc[j], m, c);
  }
  __m256 s = acc[0];
  for (int j = 1; j < chains_256; ++j) s = _mm256_add_ps(s, acc[j]);
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  return out[0] + out[7];
}

inline std::atomic<float> sink{0};

inline double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

inline double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

/// Wall and CPU seconds of each thread of one run_threads call.
struct thread_times {
  std::vector<double> wall, cpu;
  double max_wall() const { return *std::max_element(wall.begin(), wall.end()); }
};

// Runs work(thread index) on n threads started together; returns each thread's wall and CPU time.
template <class F>
thread_times run_threads(unsigned n, F&& work) {
  std::atomic<unsigned> ready{0};
  std::atomic<bool> go{false};
  thread_times times{std::vector<double>(n, 0.0), std::vector<double>(n, 0.0)};
  auto body = [&](unsigned t) {
    ready.fetch_add(1);
    while (!go.load(std::memory_order_acquire)) {
    }
    const auto t0 = clock::now();
    const double c0 = thread_cpu_seconds();
    work(t);
    times.cpu[t] = thread_cpu_seconds() - c0;
    times.wall[t] = std::chrono::duration<double>(clock::now() - t0).count();
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < n; ++t) pool.emplace_back(body, t);
  while (ready.load() + 1 < n) {
  }
  go.store(true, std::memory_order_release);
  body(0);
  for (auto& th : pool) th.join();
  return times;
}

// Sum over threads of units[t] / CPU seconds of thread t (a rate per second of core time).
inline double rate_per_cpu_second(const thread_times& t, double units_per_thread) {
  double r = 0;
  for (double c : t.cpu) r += units_per_thread / std::max(c, 1e-9);
  return r;
}

// Best GFLOP/s (per CPU second, summed over threads) of `reps` runs of the FMA loop of `bits`
// on n threads; `share` receives the threads' CPU time over their wall time, all runs together.
inline double fma_gflops(int bits, unsigned n, int reps, double* share = nullptr) {
  const int lanes = bits / 32;
  const std::size_t iterations = bits == 512 ? 1u << 19 : 1u << 20;  // ~5-10 ms at peak
  auto loop = [&](unsigned) {
    const float v = bits == 512 ? fma_loop_512(iterations) : fma_loop_256(iterations);
    sink.store(v, std::memory_order_relaxed);
  };
  run_threads(n, loop);  // warm-up (clock ramp, thread start)
  double best = 0, cpu = 0, wall = 0;
  for (int r = 0; r < reps; ++r) {
    const thread_times t = run_threads(n, loop);
    best = std::max(
        best, rate_per_cpu_second(t, double(iterations) * (bits == 512 ? chains : chains_256) * lanes * 2.0) *
                  1e-9);
    for (double c : t.cpu) cpu += c;
    wall += t.max_wall() * double(n);
  }
  if (share != nullptr) *share = cpu / wall;
  return best;
}

struct huge_array {
  float* p = nullptr;
  std::size_t n = 0;
  explicit huge_array(std::size_t count) : n(count) {
    constexpr std::size_t align = std::size_t(2) << 20;
    const std::size_t bytes = (count * sizeof(float) + align - 1) / align * align;
    p = static_cast<float*>(std::aligned_alloc(align, bytes));
    if (p != nullptr) madvise(p, bytes, MADV_HUGEPAGE);
  }
  ~huge_array() { std::free(p); }
  huge_array(const huge_array&) = delete;
  huge_array& operator=(const huge_array&) = delete;
};

// Best GB/s (per CPU second, summed over threads) of `reps` triads over arrays of n floats,
// split over `threads` threads.
inline double triad_gbs(std::size_t n, unsigned threads, int reps, huge_array& a, huge_array& b,
                        huge_array& c) {
  auto triad = [&](unsigned t) {
    const std::size_t i0 = n * t / threads, i1 = n * (t + 1) / threads;
    float* __restrict x = a.p;
    const float* __restrict y = b.p;
    const float* __restrict z = c.p;
    for (std::size_t i = i0; i < i1; ++i) x[i] = y[i] + 0.5f * z[i];
  };
  run_threads(threads, triad);  // warm-up
  double best = 0;
  for (int r = 0; r < reps; ++r)
    best =
        std::max(best, rate_per_cpu_second(run_threads(threads, triad), 12.0 * double(n) / threads) * 1e-9);
  return best;
}

inline peak_figures measure() {
  peak_figures f;
  f.threads = std::max(1u, std::thread::hardware_concurrency());
  constexpr int reps = 7;
  __builtin_cpu_init();
  // 256-bit first: once 512-bit code has left the upper halves of zmm16-31 dirty (vzeroupper
  // does not clear them), some cores run 256-bit FMAs on fewer ports, at about half rate.
  const bool avx512 = __builtin_cpu_supports("avx512f");
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    f.fma256_1 = fma_gflops(256, 1, reps);
    f.fma256_all = fma_gflops(256, f.threads, reps, avx512 ? nullptr : &f.cpu_share);
  }
  if (avx512) {
    f.fma512_1 = fma_gflops(512, 1, reps);
    f.fma512_all = fma_gflops(512, f.threads, reps, &f.cpu_share);
  }
  const std::size_t n = std::size_t(16) << 20;  // 64 MiB per array
  huge_array a(n), b(n), c(n);
  if (a.p != nullptr && b.p != nullptr && c.p != nullptr) {
    run_threads(f.threads, [&](unsigned t) {  // first touch, spread like the triad
      const std::size_t i0 = n * t / f.threads, i1 = n * (t + 1) / f.threads;
      std::fill(a.p + i0, a.p + i1, 0.0f);
      std::fill(b.p + i0, b.p + i1, 1.0f);
      std::fill(c.p + i0, c.p + i1, 2.0f);
    });
    f.triad_1 = triad_gbs(n, 1, 3, a, b, c);
    f.triad_all = triad_gbs(n, f.threads, 3, a, b, c);
  }
  return f;
}

/// The first three fields of /proc/loadavg ("?" where unreadable).
inline std::string load_average() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (f == nullptr) return "?";
  double a = 0, b = 0, c = 0;
  const int got = std::fscanf(f, "%lf %lf %lf", &a, &b, &c);
  std::fclose(f);
  if (got != 3) return "?";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %.2f %.2f", a, b, c);
  return buf;
}

inline peak_figures& storage() {
  static peak_figures f;
  return f;
}

}  // namespace peak_detail

/// Measures the machine's limits once per process (later calls return the same figures) and
/// prints them to stderr. CPC_BENCH_PEAK=skip leaves every figure 0.
inline const peak_figures& machine_peak() {
  static const bool done = [] {
    const char* env = std::getenv("CPC_BENCH_PEAK");
    if (env != nullptr && std::strcmp(env, "skip") == 0) return true;
    peak_detail::storage() = peak_detail::measure();
    const peak_figures& f = peak_detail::storage();
    std::fprintf(
        stderr,
        "machine peak (measured in this process, per second of CPU time): FMA avx512 %.1f GFLOP/s "
        "1 thread, %.1f on %u threads; FMA avx2 %.1f / %.1f; triad %.1f GB/s 1 thread, %.1f on %u "
        "threads; the threads held a core %.0f%% of the wall time (load average %s); fractions refer "
        "to %s\n",
        f.fma512_1, f.fma512_all, f.threads, f.fma256_1, f.fma256_all, f.triad_1, f.triad_all, f.threads,
        100.0 * f.cpu_share, peak_detail::load_average().c_str(), peak_figures::isa());
    return true;
  }();
  (void)done;
  return peak_detail::storage();
}

/// Adds the measured peak to Google Benchmark's context (printed in the header and in JSON).
template <class AddContext>
void add_peak_context(AddContext&& add) {
  const peak_figures& f = machine_peak();
  auto s = [](double v) { return std::to_string(v); };
  add("peak_isa", peak_figures::isa());
  add("peak_threads", std::to_string(f.threads));
  add("peak_fma512_gflops_1t", s(f.fma512_1));
  add("peak_fma512_gflops_all", s(f.fma512_all));
  add("peak_fma256_gflops_1t", s(f.fma256_1));
  add("peak_fma256_gflops_all", s(f.fma256_all));
  add("peak_triad_gbs_1t", s(f.triad_1));
  add("peak_triad_gbs_all", s(f.triad_all));
  add("peak_cpu_share", s(f.cpu_share));
  add("load_average_at_start", peak_detail::load_average());
}

}  // namespace cpc::bench
