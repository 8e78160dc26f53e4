#include <doctest/doctest.h>

#include <cpc/core/cpu_features.hpp>

#include <cstdlib>
#include <sstream>

using cpc::cpu_features;

TEST_CASE("cpu_features: unused extensions are listed widest first, only those the CPU has") {
  const cpu_features none{}, all{.avx512f = true, .avx2 = true, .fma = true};
  CHECK(cpc::unused_cpu_features(none, all) == "AVX-512F, AVX2, FMA");
  CHECK(cpc::unused_cpu_features(all, all).empty());
  CHECK(cpc::unused_cpu_features(none, none).empty());
  // Built for AVX2 + FMA (e.g. -march=haswell) on an AVX-512 machine.
  CHECK(cpc::unused_cpu_features({.avx2 = true, .fma = true}, all) == "AVX-512F");
  // Built for more than the CPU has (it would not run; not this check's business): nothing unused.
  CHECK(cpc::unused_cpu_features(all, {.avx2 = true}).empty());
  CHECK(cpc::unused_cpu_features({.avx2 = true}, {.avx2 = true, .fma = true}) == "FMA");
}

TEST_CASE("cpu_features: the warning names the extensions, the flag to add and how to silence it") {
  const cpu_features all{.avx512f = true, .avx2 = true, .fma = true};
  const std::string w = cpc::cpu_features_warning({}, all);
  CHECK(w.find("compiled without AVX-512F, AVX2, FMA, which this CPU has") != std::string::npos);
  CHECK(w.find("-march=native") != std::string::npos);
  CHECK(w.find("cpc::native") != std::string::npos);
  CHECK(w.find("CPC_NO_CPU_WARNING=1") != std::string::npos);
  CHECK(w.find('\n') == std::string::npos);
  CHECK(cpc::cpu_features_warning(all, all).empty());
}

TEST_CASE("cpu_features: this test binary's build matches what the running CPU supports") {
  const cpu_features compiled = cpc::compiled_cpu_features(), cpu = cpc::running_cpu_features();
#if defined(__AVX2__)
  CHECK(compiled.avx2);
#else
  CHECK_FALSE(compiled.avx2);
#endif
#if defined(__x86_64__)
  // Whatever this binary was compiled for, the CPU running it has (or it would have crashed).
  CHECK((!compiled.avx512f || cpu.avx512f));
  CHECK((!compiled.avx2 || cpu.avx2));
  CHECK((!compiled.fma || cpu.fma));
  // x86-64 CPUs with AVX2 and without FMA do not exist in practice (Haswell and later, Zen).
  CHECK(cpu.avx2 == cpu.fma);
#endif
}

TEST_CASE("cpu_features: the warning is printed once per state, never when silenced or nothing is unused") {
  const cpu_features all{.avx512f = true, .avx2 = true, .fma = true};
  ::unsetenv("CPC_NO_CPU_WARNING");
  {
    std::atomic<bool> done{false};
    std::ostringstream os;
    CHECK(cpc::detail::warn_once(done, os, {}, all));
    CHECK_FALSE(cpc::detail::warn_once(done, os, {}, all));
    CHECK(os.str() == cpc::cpu_features_warning({}, all) + "\n");
  }
  {
    std::atomic<bool> done{false};
    std::ostringstream os;
    CHECK_FALSE(cpc::detail::warn_once(done, os, all, all));  // nothing unused: nothing printed
    CHECK(os.str().empty());
    CHECK(cpc::detail::warn_once(done, os, {}, all));  // and the once-flag was not used up
  }
  for (const char* value : {"1", "yes"}) {
    ::setenv("CPC_NO_CPU_WARNING", value, 1);
    std::atomic<bool> done{false};
    std::ostringstream os;
    CHECK_FALSE(cpc::detail::warn_once(done, os, {}, all));
    CHECK(os.str().empty());
  }
  for (const char* value : {"0", ""}) {  // "0" and "" do not silence
    ::setenv("CPC_NO_CPU_WARNING", value, 1);
    std::atomic<bool> done{false};
    std::ostringstream os;
    CHECK(cpc::detail::warn_once(done, os, {}, all));
  }
  ::unsetenv("CPC_NO_CPU_WARNING");
}

TEST_CASE("cpu_features: silence_cpu_warning turns the process-wide warning off") {
  cpc::silence_cpu_warning();
  std::ostringstream os;
  CHECK_FALSE(cpc::warn_if_cpu_features_unused(os));
  CHECK(os.str().empty());
}
