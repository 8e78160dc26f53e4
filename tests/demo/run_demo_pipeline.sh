#!/usr/bin/env bash
# The demo pipeline on the CI-sized corpus with a tiny step budget: every stage must produce
# well-formed output (not a timed test, and not a test of accuracy).
# Usage: run_demo_pipeline.sh CPC_SPEECH_BINARY SOURCE_DIR WORK_DIR
set -euo pipefail
bin=$1 src=$2 work=$3
mkdir -p "$work"
corpus=$work/corpus
if [ ! -f "$corpus/.complete" ]; then
  rm -rf "$corpus"
  bash "$src/scripts/make-corpus.sh" "$corpus" --size ci
  touch "$corpus/.complete"
fi
out=$work/run
rm -rf "$out"
"$bin" demo --corpus "$corpus" --out "$out" --model small --steps 3 --batch 4 --probe-minutes 1 --probe-epochs 2 \
  > "$work/stdout.txt"
fail() { echo "demo pipeline: $*" >&2; exit 1; }
for f in training.csv probes.csv results.md model.safetensors; do [ -s "$out/$f" ] || fail "missing $out/$f"; done
# training.csv: a header and 3 steps, 6 + K columns each.
[ "$(wc -l < "$out/training.csv")" -eq 4 ] || fail "training.csv should have a header and 3 rows"
awk -F, 'NR == 1 && $1 != "step" { exit 1 } NF != 18 { exit 1 }' "$out/training.csv" || fail "training.csv columns"
# probes.csv: three feature rows, accuracies in [0, 1].
[ "$(wc -l < "$out/probes.csv")" -eq 4 ] || fail "probes.csv should have 3 rows"
awk -F, 'NR > 1 { for (i = 2; i <= 6; i++) if ($i < 0 || $i > 1) exit 1 }' "$out/probes.csv" || fail "probe accuracies out of [0, 1]"
for row in "random init" "MFCC" "CPC ("; do grep -q "| $row" "$work/stdout.txt" || fail "table row '$row' missing"; done
if command -v gnuplot >/dev/null; then
  for f in training.png contexts_pca.png; do
    head -c 8 "$out/$f" | od -An -c | grep -q 'P   N   G' || fail "$f is not a PNG"
  done
fi
# The checkpoint reloads: probe and encode from it.
"$bin" encode --corpus "$corpus" --checkpoint "$out/model.safetensors" --out "$out/contexts.safetensors" --split test
[ -s "$out/contexts.safetensors" ] || fail "encode wrote nothing"
echo "demo pipeline: all stages produced well-formed output"
