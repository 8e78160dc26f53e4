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
# The library's options through the command line: same-speaker negatives from speaker-balanced
# batches, short utterances padded (prefetching is on by default).
"$bin" demo --corpus "$corpus" --out "$out" --model small --steps 3 --batch 4 --speakers-per-batch 2 \
  --negatives same-speaker --short-utterances pad --probe-minutes 1 --probe-epochs 2 --probe-updates 20 \
  > "$work/stdout.txt" 2> "$work/stderr.txt"
fail() { echo "demo pipeline: $*" >&2; exit 1; }
for f in training.csv probes.csv results.md model.safetensors pca_cpc.tsv pca_random_init.tsv; do
  [ -s "$out/$f" ] || fail "missing $out/$f"
done
# training.csv: a header and 3 steps, 7 + K columns each (K = 12).
[ "$(wc -l < "$out/training.csv")" -eq 4 ] || fail "training.csv should have a header and 3 rows"
awk -F, 'NR == 1 && ($1 != "step" || $7 != "data_seconds") { exit 1 } NF != 19 { exit 1 }' "$out/training.csv" ||
  fail "training.csv columns"
# probes.csv: three feature rows, accuracies and the phone chance line in [0, 1].
[ "$(wc -l < "$out/probes.csv")" -eq 4 ] || fail "probes.csv should have 3 rows"
awk -F, 'NR > 1 { for (i = 2; i <= 7; i++) if ($i == "" || $i < 0 || $i > 1) exit 1 }' "$out/probes.csv" ||
  fail "probe accuracies out of [0, 1]"
for row in "random init" "MFCC" "CPC (" "chance (phone: majority class; speaker: 1/"; do
  grep -qF "| $row" "$work/stdout.txt" || fail "table row '$row' missing"
done
# The output says which model and recipe ran; the checkpoint carries the recipe.
grep -qF "recipe: negatives same_speaker (same speaker), 4 windows per step from 2 speakers x 2, short utterances padded and masked, K = 12" \
  "$out/results.md" || fail "results.md does not name the recipe"
meta() {  # the safetensors header's metadata entry $2 of file $1 (json and struct only)
  python3 -c 'import json, struct, sys; b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]
print(json.loads(b[8:8 + n])["__metadata__"][sys.argv[2]])' "$1" "$2"
}
[ "$(meta "$out/model.safetensors" negatives)" = same_speaker ] && [ "$(meta "$out/model.safetensors" speakers-per-batch)" = 2 ] ||
  fail "the checkpoint's metadata has no recipe"
grep -q "waiting for data" "$work/stderr.txt" || fail "the data wait is not reported"
# Pictures: gnuplot scripts under scripts/plots.
bash "$src/scripts/plot-demo.sh" "$out"
if command -v gnuplot >/dev/null; then
  for f in training.png contexts_pca.png; do
    head -c 8 "$out/$f" | od -An -c | grep -q 'P   N   G' || fail "$f is not a PNG"
  done
fi
# The checkpoint reloads: encode from it (the model and gain come from its recipe).
"$bin" encode --corpus "$corpus" --checkpoint "$out/model.safetensors" --out "$out/contexts.safetensors" --split test
[ -s "$out/contexts.safetensors" ] || fail "encode wrote nothing"
# The ablation (paper Table 2) with a tiny budget: 9 rows, then a second call reuses every row.
abl=$work/ablation
rm -rf "$abl"
small=(--model small --steps 2 --batch 4 --speakers-per-batch 2 --probe-minutes 0.5 --probe-epochs 1 --probe-updates 10)
"$bin" ablation --corpus "$corpus" --out "$abl" "${small[@]}" > "$work/ablation.txt" 2> "$work/ablation-err.txt" ||
  fail "ablation failed: $(tail -3 "$work/ablation-err.txt")"
for row in "mixed speaker" "same speaker" "mixed speaker, excluding the current sequence" \
  "same speaker, excluding the current sequence" "current sequence only" "K = 2" "K = 4" "K = 8" "K = 12" "K = 16"; do
  grep -qF "| $row |" "$abl/ablation.md" || fail "ablation.md has no row '$row'"
done
[ "$(ls "$abl"/*/phone.txt | wc -l)" -eq 9 ] || fail "ablation: expected 9 trained rows"
"$bin" ablation --corpus "$corpus" --out "$abl" "${small[@]}" > "$work/ablation2.txt" 2> "$work/ablation2-err.txt"
[ "$(grep -c "(from " "$work/ablation2-err.txt")" -eq 9 ] || fail "ablation: a second call trained again"
cmp -s "$work/ablation.txt" "$work/ablation2.txt" || fail "ablation: the second call printed another table"
echo "demo pipeline: all stages produced well-formed output"
