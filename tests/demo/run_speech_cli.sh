#!/usr/bin/env bash
# cpc-speech's command line as a new user meets it (issue 20), on a tiny unlabelled corpus that
# this script writes (2 speakers x 3 utterances of 1.5 s, no alignments; python3's wave module):
# - every bad option is refused before any work: exit status 2, one line
#   "cpc-speech: <error type>: <option>: ...", no corpus loaded, no output folder made, no crash;
# - a run that fails after starting exits 1 with one line;
# - train / resume / probe / encode / demo work without phone labels and print the phone
#   accuracy as "n/a (no phone labels)" after one warning.
# Usage: run_speech_cli.sh CPC_SPEECH_BINARY WORK_DIR
set -uo pipefail
bin=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
fail() {
  echo "speech cli: $*" >&2
  [ -f err.txt ] && sed 's/^/  stderr: /' err.txt >&2
  exit 1
}

python3 - <<'EOF' || fail "could not write the test corpus (python3)"
import math, os, random, struct, wave
rng = random.Random(1)
split = {"train": [], "test": []}
for s, f0 in (("s1", 180.0), ("s2", 320.0)):
    for i in range(3):
        uid = f"{s}-c-{i}"
        os.makedirs(f"corpus/{s}/c", exist_ok=True)
        pcm = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * f0 * (1 + 0.1 * i) * t / 16000)
                                            + rng.gauss(0, 800))) for t in range(24000))
        with wave.open(f"corpus/{s}/c/{uid}.wav", "wb") as w:
            w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000); w.writeframes(pcm)
        split["test" if i == 2 else "train"].append(uid)
for name, ids in split.items():
    with open(f"corpus/{name}.txt", "w") as f:
        f.write("\n".join(ids) + "\n")
EOF
touch empty.txt
echo "not a checkpoint" > bad.safetensors
mkdir -p a_folder

# run STATUS CMD...: runs cpc-speech, expects exit STATUS, at most one "cpc-speech: " error line
# and no crash (abort, uncaught exception).
run() {
  local want=$1
  shift
  "$bin" "$@" > out.txt 2> err.txt
  local rc=$?
  [ "$rc" -eq "$want" ] || fail "'$*': exit status $rc, expected $want"
  ! grep -qE "terminate called|what\(\)|Aborted|core dumped" err.txt || fail "'$*' crashed"
  [ "$(grep -c '^cpc-speech: ' err.txt)" -le 1 ] || fail "'$*': more than one error line"
}
# refused MESSAGE CMD...: exit 2 with MESSAGE on the error line, before the corpus is loaded.
refused() {
  local message=$1
  shift
  run 2 "$@"
  grep -qF -- "cpc-speech: $message" err.txt || fail "'$*': expected the line 'cpc-speech: $message...'"
  ! grep -q "loading corpus" err.txt || fail "'$*': loaded the corpus before refusing"
}
c=(--corpus corpus)

refused "config_error: --corpus: Directory does not exist: nowhere" train --corpus nowhere --out new
# --out that cannot be a folder: in /proc, below a file, an existing folder that takes no files.
refused "io_error: --out: cannot create the folder '/proc/cpc-speech-cli-test'" train "${c[@]}" --out /proc/cpc-speech-cli-test
refused "io_error: --out: cannot create the folder 'corpus/train.txt/run'" train "${c[@]}" --out corpus/train.txt/run
grep -q "Not a directory" err.txt || fail "the --out error does not give the reason"
refused "io_error: --out: cannot write into '/proc/self'" demo "${c[@]}" --out /proc/self
refused "io_error: --out: 'corpus/train.txt' exists and is not a folder" train "${c[@]}" --out corpus/train.txt
# A read-only file system (a read-only tmpfs in a private mount namespace, where unshare allows it).
if unshare --user --map-root-user --mount true 2> /dev/null; then
  mkdir -p ro
  ro_run() {
    unshare --user --map-root-user --mount sh -c 'mount -t tmpfs -o ro tmpfs ro && exec "$@"' sh "$bin" "$@" \
      > out.txt 2> err.txt
  }
  ro_run train "${c[@]}" --out ro/run
  [ $? -eq 2 ] && grep -qF "cpc-speech: io_error: --out: cannot create the folder 'ro/run': Read-only file system" err.txt ||
    fail "--out on a read-only file system: $(cat err.txt)"
  ro_run train "${c[@]}" --out ro
  [ $? -eq 2 ] && grep -qF "cpc-speech: io_error: --out: cannot write into 'ro' (Read-only file system)" err.txt ||
    fail "--out as a read-only folder: $(cat err.txt)"
else
  echo "speech cli: unshare not permitted here: the read-only file system case is skipped"
fi

# Option values out of range: refused before --out is made.
refused "config_error: --minutes: expected a finite time budget > 0 minutes, got -1" train "${c[@]}" --out new --minutes -1
refused "config_error: --minutes: expected a finite time budget > 0 minutes, got 0" train "${c[@]}" --out new --minutes 0
refused "config_error: --minutes: expected a finite time budget > 0 minutes, got nan" demo "${c[@]}" --out new --minutes nan
refused "config_error: --batch: expected at least 1 window per step, got 0" train "${c[@]}" --out new --batch 0
refused "config_error: --batch: expected a whole number >= 0, got '-1'" train "${c[@]}" --out new --batch -1
refused "config_error: --steps: expected at least 1 step, got 0" train "${c[@]}" --out new --steps 0
refused "config_error: --lr: expected a learning rate > 0, got 0" train "${c[@]}" --out new --lr 0
refused "config_error: --clip: expected a gradient-norm bound > 0, or 0 for no clipping, got -1" train "${c[@]}" --out new --clip -1
refused "config_error: --head-std: expected a standard deviation > 0, or 0 for the preset's, got -0.5" train "${c[@]}" --out new --head-std -0.5
refused "config_error: --model: expected paper or small, got 'huge'" demo "${c[@]}" --out new --model huge
refused "config_error: --negatives: expected batch, same-sequence, other-sequences, same-speaker or same-speaker-other-sequences, got 'mixed'" \
  train "${c[@]}" --out new --negatives mixed
refused "config_error: --speakers-per-batch: expected a divisor of --batch 8 (0 = uniform windows), got 3" train "${c[@]}" --out new --speakers-per-batch 3
refused "config_error: --negatives same-speaker-other-sequences: expected speaker-balanced batches with at least 2 windows per speaker" \
  train "${c[@]}" --out new --negatives same-speaker-other-sequences
refused "config_error: --short-utterances: expected skip or pad, got 'cut'" train "${c[@]}" --out new --short-utterances cut
refused "config_error: --normalize: expected none or unit-rms, got 'peak'" demo "${c[@]}" --out new --normalize peak
refused "config_error: --matmul-precision: expected fp32 or bf16, got 'fp16'" train "${c[@]}" --out new --matmul-precision fp16
refused "config_error: --steps: expected the step budget of every ablation row" ablation "${c[@]}" --out new --speakers-per-batch 2
refused "config_error: --speakers-per-batch: expected speaker-balanced batches for the same-speaker rows" ablation "${c[@]}" --out new --steps 2
refused "config_error: --probe-epochs: expected at least 1 epoch, got 0" demo "${c[@]}" --out new --probe-epochs 0
refused "config_error: --probe-minutes: expected minutes of audio >= 0 (0 = all), got -2" demo "${c[@]}" --out new --probe-minutes -2
refused "config_error: Could not convert: --minutes = soon" train "${c[@]}" --out new --minutes soon
refused "config_error: --resume: expected a checkpoint to continue from at 'new/model.safetensors' (--out), found none" \
  train "${c[@]}" --out new --resume
[ ! -e new ] || fail "a refused run created its --out folder"
refused "config_error: --features: expected cpc, mfcc or random, got 'lpc'" probe "${c[@]}" --features lpc
refused "config_error: --checkpoint: expected a checkpoint file for --features cpc" probe "${c[@]}"
refused "config_error: --checkpoint: only used with --features cpc, got --features mfcc" probe "${c[@]}" --features mfcc --checkpoint bad.safetensors
refused "io_error: --checkpoint: no such file 'missing.safetensors'" probe "${c[@]}" --checkpoint missing.safetensors
refused "io_error: --test-split: no such file 'nope.txt' (looked in the current folder and in --corpus)" probe "${c[@]}" --features mfcc --test-split nope.txt
refused "io_error: load_safetensors: bad.safetensors:" encode "${c[@]}" --checkpoint bad.safetensors --out ctx.safetensors
refused "config_error: --split: expected train, test or all, got 'dev'" encode "${c[@]}" --checkpoint bad.safetensors --out ctx.safetensors --split dev
# Options a subcommand does not use are not offered (encode takes the model from the checkpoint).
refused "config_error: The following arguments were not expected: small --model" encode "${c[@]}" --checkpoint bad.safetensors --out x --model small
refused "config_error: The following arguments were not expected: corpus/train.txt --alignments" train "${c[@]}" --alignments corpus/train.txt
run 0 train --help
grep -q "Exit status: 0 done, 1 the run failed" out.txt || fail "--help does not document the exit status"

# The working paths, without phone labels.
run 0 train "${c[@]}" --out run --model small --steps 2 --batch 2 --threads 2
[ -s run/model.safetensors ] && [ "$(wc -l < run/training.csv)" -eq 3 ] || fail "train wrote no checkpoint or log"
run 0 train "${c[@]}" --out run --steps 3 --batch 2 --resume
grep -q "resumed from \"run/model.safetensors\" at step 2" err.txt && grep -q "trained 1 steps" err.txt ||
  fail "train --resume did not continue at step 2"
refused "config_error: --model: the checkpoint 'run/model.safetensors' holds a 'small' model, got --model paper" \
  train "${c[@]}" --out run --steps 4 --resume --model paper
refused "config_error: --lr: the checkpoint 'run/model.safetensors' was trained with --lr 2e-04, got --lr 0.001 (leave out --lr to continue its recipe)" \
  train "${c[@]}" --out run --steps 4 --resume --lr 1e-3
# bf16 convolution products (AMX): a short training where the build and CPU have them; else
# refused before any work with the reason.
if "$bin" train "${c[@]}" --out run_bf16 --model small --steps 2 --batch 2 --matmul-precision bf16 > out.txt 2> err.txt; then
  [ -s run_bf16/model.safetensors ] || fail "train --matmul-precision bf16 wrote no checkpoint"
else
  grep -qF "cpc-speech: config_error: --matmul-precision: bf16 matmul precision is unavailable: " err.txt ||
    fail "--matmul-precision bf16 failed without naming why: $(cat err.txt)"
  [ ! -e run_bf16 ] || fail "a refused bf16 run created its --out folder"
fi
# Every recipe choice runs through the library: same-speaker negatives without the current
# sequence from speaker-balanced batches, short utterances padded, no prefetching.
run 0 train "${c[@]}" --out run2 --model small --steps 2 --batch 4 --speakers-per-batch 2 \
  --negatives same-speaker-other-sequences --short-utterances pad --no-prefetch --normalize none --steps-ahead 4
grep -qF "negatives same_speaker_other_sequences (same speaker, excluding the current sequence), 4 windows per step from 2 speakers x 2, short utterances padded and masked, K = 4" err.txt ||
  fail "train did not print its recipe"
grep -q "batches prepared in the step (--no-prefetch)" err.txt || fail "--no-prefetch not taken"
[ "$(head -n 1 run2/training.csv | tr ',' '\n' | grep -c '^accuracy_[0-9]')" -eq 4 ] || fail "--steps-ahead 4: expected 4 accuracy columns"
# encode: the folder of --out is made; --split picks the utterances; --output is the old name.
refused "io_error: --out: 'corpus/train.txt' exists and is not a folder" encode "${c[@]}" --checkpoint run/model.safetensors --out corpus/train.txt/ctx.safetensors
refused "io_error: --out: 'a_folder' is a folder; expected a .safetensors file name" encode "${c[@]}" --checkpoint run/model.safetensors --out a_folder
run 0 encode "${c[@]}" --checkpoint run/model.safetensors --out new_dir/sub/ctx.safetensors --split test
grep -q "wrote 2 utterances' contexts" err.txt && [ -s new_dir/sub/ctx.safetensors ] || fail "encode --split test"
run 0 encode "${c[@]}" --checkpoint run/model.safetensors --output all.safetensors --split all
grep -q "wrote 6 utterances' contexts" err.txt || fail "encode --split all"
# A run that fails after it started: exit 1, one line.
run 1 encode "${c[@]}" --checkpoint run/model.safetensors --out none.safetensors --test-split empty.txt
grep -qF "cpc-speech: config_error: --split test: the corpus has no test utterances" err.txt || fail "empty split: $(cat err.txt)"
# One speaker in the probe's training split: the speaker columns read n/a, not 100%.
printf 's1-c-0\ns1-c-1\n' > one_speaker.txt
run 0 probe "${c[@]}" --features mfcc --train-split one_speaker.txt --probe-epochs 1 --probe-updates 5 --probe-minutes 0
grep -q "^| MFCC | n/a (no phone labels) | n/a (1 speaker) | n/a (1 speaker) |" out.txt || fail "one speaker: $(cat out.txt)"
# probe and demo: phone accuracy n/a, one warning at load time.
warning="cpc-speech: warning: the corpus has no phone labels"
run 0 probe "${c[@]}" --checkpoint run/model.safetensors --probe-epochs 1 --probe-minutes 0
grep -q "^| CPC (run/model.safetensors) | n/a (no phone labels) | [0-9.]* |" out.txt || fail "probe: $(cat out.txt)"
[ "$(grep -c "$warning" err.txt)" -eq 1 ] || fail "probe: expected one warning about phone labels"
run 0 demo "${c[@]}" --out demo --model small --steps 2 --batch 2 --probe-epochs 1 --probe-minutes 0
for row in "random init" "MFCC" "CPC (2 steps"; do
  grep -qF "| $row" demo/results.md && grep -F "| $row" demo/results.md | grep -qF "| n/a (no phone labels) |" ||
    fail "demo: row '$row' without n/a"
done
awk -F, 'NR > 1 && $2 != "" { exit 1 }' demo/probes.csv || fail "probes.csv: phone_frame should be empty"
[ "$(grep -c "$warning" err.txt)" -eq 1 ] || fail "demo: expected one warning about phone labels"
echo "speech cli: every bad option refused before work, failures exit 1, unlabelled corpus reads n/a"
