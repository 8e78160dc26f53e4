#!/usr/bin/env bash
# `cpc-rl demo` end to end with a tiny budget (issue 17): the table with both variants of both
# environments, the curve and summary CSVs, the picture when gnuplot is installed, the same table
# again from a second run (deterministic per seed), and refusals of bad options. Not a test of
# learning.
# Usage: run_rl_demo.sh CPC_RL_BINARY WORK_DIR
set -euo pipefail
bin=$1 work=$2
fail() { echo "rl demo: $*" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work"
args=(demo --steps 3000 --seeds 2 --points 5 --jobs 2 --rollout 10 --cpc-steps 5)
"$bin" "${args[@]}" --out "$work/a" > "$work/a.txt"
cat "$work/a.txt"
for env in cue_corridor memory_maze; do
  for variant in "a2c     " "a2c\\+cpc "; do
    grep -Eq "^$env +$variant +2 +-?[0-9.]+ \+- [0-9.]+ +-?[0-9.]+ \+- [0-9.]+$" "$work/a.txt" ||
      fail "no table row for $env $variant"
  done
  [ "$(wc -l < "$work/a/${env}_mean.csv")" -eq 6 ] || fail "${env}_mean.csv should have a header and 5 points"
done
[ "$(wc -l < "$work/a/curves.csv")" -eq $((1 + 2 * 2 * 2 * 5)) ] || fail "curves.csv should have 40 rows"
[ "$(wc -l < "$work/a/summary.csv")" -eq 5 ] || fail "summary.csv should have 4 rows"
if command -v gnuplot > /dev/null; then
  [ -s "$work/a/returns.png" ] || fail "missing returns.png"
  head -c 4 "$work/a/returns.png" | grep -q PNG || fail "returns.png is not a PNG"
fi
"$bin" "${args[@]}" --out "$work/b" > "$work/b.txt"
cmp -s "$work/a/summary.csv" "$work/b/summary.csv" || fail "a second run gave another summary"
if "$bin" demo --envs nowhere --out "$work/c" 2> "$work/c.txt"; then fail "an unknown environment was accepted"; fi
grep -q "expected environments among cue_corridor, memory_maze, got 'nowhere'" "$work/c.txt" ||
  fail "unclear refusal: $(cat "$work/c.txt")"
# Bad options: one line naming the option and what was expected, exit status 2, nothing trained.
refuse() {  # refuse EXPECTED_PART ARGS...
  local want=$1
  shift
  if "$bin" demo "$@" > /dev/null 2> "$work/r.txt"; then fail "accepted: $*"; fi
  grep -qF -- "$want" "$work/r.txt" || fail "unclear refusal of '$*': $(cat "$work/r.txt")"
  [ "$(wc -l < "$work/r.txt")" -eq 1 ] || fail "more than one line for '$*': $(cat "$work/r.txt")"
}
refuse "expected a whole number >= 1, got '0'" --seeds 0 --out "$work/r"
refuse "--cpc-steps: expected at most --rollout - 1 = 19, got 25" --cpc-steps 25 --out "$work/r"
refuse "--steps: expected at least one update's --parallel-envs x --rollout = 320 environment steps, got 10" \
  --steps 10 --out "$work/r"
refuse "--out: cannot make the folder '$work/b/summary.csv'" --out "$work/b/summary.csv"
echo "rl demo: ok"
