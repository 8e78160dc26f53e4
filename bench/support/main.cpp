// main() of every benchmark binary: measures the machine's peak (support/peak.hpp) before any
// timed work, adds it to Google Benchmark's context, then runs the selected benchmarks.
//
// Transparent huge pages: unless CPC_BENCH_THP=0, the process re-executes itself once with
// GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (glibc >= 2.35: malloc advises its heap and mappings for
// transparent huge pages, which this machine grants only on request, THP mode "madvise"). The
// encoder's im2col views step through memory 4-8 KiB per row, a new 4 KiB page per row; with
// 2 MiB pages the training step of the paper model took 9% less time here (docs/performance.md).
// The context line "malloc_hugetlb" says which way a run went.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "support/peak.hpp"

namespace {

// Re-executes this program with glibc.malloc.hugetlb=1 added to GLIBC_TUNABLES, once.
void reexec_with_huge_pages(char** argv) {
  const char* off = std::getenv("CPC_BENCH_THP");
  if (off != nullptr && std::strcmp(off, "0") == 0) return;
  const char* t = std::getenv("GLIBC_TUNABLES");
  const std::string tunables = t != nullptr ? t : "";
  if (tunables.find("glibc.malloc.hugetlb") != std::string::npos) return;
  const std::string value = (tunables.empty() ? "" : tunables + ":") + "glibc.malloc.hugetlb=1";
  setenv("GLIBC_TUNABLES", value.c_str(), 1);
  execv("/proc/self/exe", argv);  // returns only on failure: then run as we are
}

}  // namespace

int main(int argc, char** argv) {
  reexec_with_huge_pages(argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  cpc::bench::add_peak_context(
      [](const std::string& key, const std::string& value) { benchmark::AddCustomContext(key, value); });
  const char* t = std::getenv("GLIBC_TUNABLES");
  benchmark::AddCustomContext(
      "malloc_hugetlb", t != nullptr && std::strstr(t, "glibc.malloc.hugetlb=1") != nullptr ? "1" : "0");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
