#!/usr/bin/env bash
# cpc-text end to end with a tiny budget (issue 16): demo (Bible text written by the `bible`
# program, SentencePiece vocabulary, training, checkpoint, probes, table), then probe again from
# the checkpoint alone - the same figures must come out. Not a test of accuracy. Exits 77 (ctest:
# skipped) when bible-kjv, wordnet-base or fortunes is not installed (scripts/install-deps.sh text).
# Usage: run_text_demo.sh CPC_TEXT_BINARY WORK_DIR
set -euo pipefail
bin=$1 work=$2
if ! command -v bible >/dev/null || [ ! -e /usr/share/wordnet/data.noun ] || [ ! -e /usr/share/games/fortunes/wisdom ]; then
  echo "text demo: bible-kjv, wordnet-base or fortunes missing (bash scripts/install-deps.sh text): skipped"
  exit 77
fi
fail() { echo "text demo: $*" >&2; exit 1; }
out=$work/run
rm -rf "$out"
mkdir -p "$work"
small=(--probe-train 300 --probe-epochs 2 --probe-updates 50 --threads 2)
"$bin" demo --out "$out" --steps 20 --minutes 2 --vocabulary 400 --embedding 16 --channels 32 --context 16 \
  --batch 8 --negatives 8 "${small[@]}" > "$work/demo.txt" 2> "$work/demo.err"
for f in kjv.txt tokenizer.model model.safetensors training.csv results.md probes.csv; do
  [ -s "$out/$f" ] || fail "missing $out/$f"
done
grep -q "31102 verses in 1189 chapters, 66 books" "$work/demo.txt" || fail "the Bible did not load whole"
grep -q "20 steps in" "$work/demo.txt" || fail "training did not run 20 steps"
for row in "CPC (20 steps" "random-init encoder" "bag of words (TF-IDF)" "majority class" "paper: CPC"; do
  grep -q "^| $row" "$out/results.md" || fail "results.md has no row '$row'"
done
grep -q "^| random-init encoder | [0-9.]* | [0-9.]* | [0-9.]* | [0-9.]* |" "$out/results.md" ||
  fail "the random-init row has no figures"
cp "$out/probes.csv" "$work/demo-probes.csv"
# probe reads the architecture (32 channels, vocabulary 400) from the checkpoint, not its defaults.
"$bin" probe --out "$out" "${small[@]}" > "$work/probe.txt"
cmp -s "$out/probes.csv" "$work/demo-probes.csv" || fail "probe from the checkpoint gave other figures"
# A file that is not a cpc-text checkpoint is refused, naming it.
echo "not a checkpoint" > "$work/bad.safetensors"
if "$bin" probe --out "$out" --checkpoint "$work/bad.safetensors" "${small[@]}" 2> "$work/bad.txt"; then
  fail "probe accepted a bad checkpoint"
fi
grep -q "bad.safetensors" "$work/bad.txt" || fail "the error does not name the file"
# Bad options are refused before any work, naming the option.
if "$bin" demo --out "$work/unused" --kernel 4 2> "$work/bad-option.txt"; then fail "--kernel 4 was accepted"; fi
grep -q -- "--kernel: expected an odd width, got 4" "$work/bad-option.txt" || fail "unclear --kernel error"
[ ! -e "$work/unused" ] || fail "a refused run created its output folder"
if "$bin" demo --out "$work/unused" --train-text bible+bible 2> "$work/bad-text.txt"; then
  fail "--train-text bible+bible was accepted"
fi
grep -q -- "--train-text: expected sources from bible, fortunes and wordnet joined by '+'" "$work/bad-text.txt" ||
  fail "unclear --train-text error"
echo "text demo: ok"
