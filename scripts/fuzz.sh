#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan; the "fuzz" preset, build/fuzz) and runs each
# for SECONDS (default 60) on its committed seed corpus tests/fuzz/corpus/<target>/, one target at
# a time. Exits non-zero on any finding: crash, sanitizer report, leak, timeout (> 25 s on one
# input), out-of-memory (> 2 GB) or an escaped exception. Findings are kept in build/fuzz/findings/
# (copy one into tests/fuzz/corpus/<target>/regression-<what> once the bug is fixed).
# Installs clang and the libFuzzer runtime (scripts/install-deps.sh fuzz) when they are missing.
# Usage: scripts/fuzz.sh [SECONDS] [target...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
if ! command -v clang++ >/dev/null || ! compgen -G "/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a" >/dev/null; then
  bash scripts/install-deps.sh build fuzz
fi
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

findings=build/fuzz/findings
mkdir -p "$findings"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for bin in build/fuzz/tests/fuzz/fuzz_*; do targets+=("$(basename "$bin")"); done
fi
status=0
for name in "${targets[@]}"; do
  bin=build/fuzz/tests/fuzz/$name
  seeds=tests/fuzz/corpus/$name
  [ -x "$bin" ] && [ -d "$seeds" ] || { echo "fuzz.sh: no target $bin or seeds $seeds" >&2; exit 2; }
  mkdir -p "$scratch/$name"
  log=$scratch/$name.log
  # New inputs go to the scratch folder (first corpus argument); the committed seeds are only read.
  if "$bin" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$findings/$name-" "$scratch/$name" "$seeds" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz.sh: $name: ${runs:-?} executions in ${seconds} s, no findings"
  else
    status=1
    echo "fuzz.sh: $name: FINDING (input saved under $findings/):" >&2
    grep -E "ERROR|SUMMARY|runtime error|what\(\)|Test unit written" "$log" >&2 || tail -40 "$log" >&2
    tail -60 "$log" >"$findings/$name.log"
  fi
done
exit $status
