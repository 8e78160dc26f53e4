#!/usr/bin/env bash
# cpc-image end to end on Fashion-MNIST with a tiny budget: demo (train, checkpoint, probes,
# picture), then probe again from the checkpoint alone - the same table must come out. Not a
# test of accuracy. Exits 77 (ctest: skipped) when the dataset is not installed.
# Usage: run_image_demo.sh CPC_IMAGE_BINARY WORK_DIR [DATA_DIR]
set -euo pipefail
bin=$1 work=$2 data=${3:-/usr/share/datasets/fashion-mnist}
if [ ! -e "$data/train-images-idx3-ubyte.gz" ] && [ ! -e "$data/train-images-idx3-ubyte" ]; then
  echo "image demo: no Fashion-MNIST in $data (bash scripts/install-deps.sh images): skipped"
  exit 77
fi
fail() { echo "image demo: $*" >&2; exit 1; }
out=$work/run
rm -rf "$out"
mkdir -p "$work"
small=(--probe-train 500 --probe-test 500 --probe-epochs 2 --threads 2)
"$bin" demo --data "$data" --out "$out" --steps 5 --batch 8 --channels 8 "${small[@]}" > "$work/demo.txt"
for f in model.safetensors results.md neighbours.pgm; do [ -s "$out/$f" ] || fail "missing $out/$f"; done
head -c 2 "$out/neighbours.pgm" | grep -q P5 || fail "neighbours.pgm is not a PGM"
for row in "CPC encoder, patch latents mean-pooled" "random-init encoder, same pooling" "raw pixels"; do
  grep -q "| $row | [0-9]* | [0-9.]*% |" "$out/results.md" || fail "results.md has no row '$row'"
done
cp "$out/results.md" "$work/demo-results.md"
# probe reads the architecture (8 channels) from the checkpoint, not from its defaults.
"$bin" probe --data "$data" --out "$out" "${small[@]}" > "$work/probe.txt"
grep -q "model from the checkpoint: channels 8" "$work/probe.txt" || fail "probe did not read the architecture"
cmp -s "$out/results.md" "$work/demo-results.md" || fail "probe from the checkpoint gave another table"
# A file that is not a cpc-image checkpoint is refused with a clear error.
echo "not a checkpoint" > "$work/bad.safetensors"
if "$bin" probe --data "$data" --checkpoint "$work/bad.safetensors" "${small[@]}" 2> "$work/bad.txt"; then
  fail "probe accepted a bad checkpoint"
fi
grep -q "bad.safetensors" "$work/bad.txt" || fail "the error does not name the file"
# Bad options are refused before training starts, naming the option; nothing is written.
if "$bin" demo --data "$data" --out "$work/unused" --probe-epochs 0 2> "$work/bad-option.txt"; then
  fail "--probe-epochs 0 was accepted"
fi
grep -q -- "--probe-epochs: expected at least 1, got 0" "$work/bad-option.txt" || fail "unclear --probe-epochs error"
[ ! -e "$work/unused" ] || fail "a refused run created its output directory"
if "$bin" demo --data "$data" --out "$work/unused" --matmul-precision fp16 2> "$work/bad-precision.txt"; then
  fail "--matmul-precision fp16 was accepted"
fi
grep -q -- "--matmul-precision: expected fp32 or bf16, got 'fp16'" "$work/bad-precision.txt" || fail "unclear --matmul-precision error"
[ ! -e "$work/unused" ] || fail "a refused run created its output directory"
# An --out below a file fails before training, not after it (the run would be lost).
if "$bin" train --data "$data" --out "$out/results.md/sub" --steps 1000000 2> "$work/bad-out.txt"; then
  fail "an --out below a file was accepted"
fi
grep -q "results.md/sub" "$work/bad-out.txt" || fail "the --out error does not name the directory"
echo "image demo: train, checkpoint, probes and reload all produced the same well-formed output"
