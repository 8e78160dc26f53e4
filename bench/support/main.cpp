// main() of every benchmark binary: measures the machine's peak (support/peak.hpp) before any
// timed work, adds it to Google Benchmark's context, then runs the selected benchmarks.
#include <benchmark/benchmark.h>

#include <string>

#include "support/peak.hpp"

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  cpc::bench::add_peak_context(
      [](const std::string& key, const std::string& value) { benchmark::AddCustomContext(key, value); });
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
