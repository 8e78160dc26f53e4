#!/usr/bin/env bash
# cpc-speech abx and the converted CPC_audio checkpoint in cpc-speech, on a tiny labelled corpus
# that this script writes (python3's wave module): 2 speakers x 4 utterances of 2 s, "phones" 1-5
# as tones (a speaker-dependent pitch factor) between silences (class 0), 10 ms labels.
# - abx --features mfcc prints the table, and tones are told apart (error < 30%);
# - abx --features all with tests/golden/cpc_audio_tiny.safetensors (a converted CPC_audio model)
#   prints random init, MFCC and CPC_audio rows; encode writes its contexts; abx of a checkpoint
#   of cpc-speech's own model (one training step) prints its row;
# - bad options are refused before work (exit 2, one line); probe and train refuse a converted
#   model; an unlabelled split fails with exit 1.
# Usage: run_speech_abx.sh CPC_SPEECH_BINARY SOURCE_DIR WORK_DIR
set -uo pipefail
bin=$1 src=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
fail() {
  echo "speech abx: $*" >&2
  [ -f err.txt ] && sed 's/^/  stderr: /' err.txt >&2
  exit 1
}

python3 - <<'EOF2' || fail "could not write the test corpus (python3)"
import math, os, random, struct, wave
rng = random.Random(4)
split = {"train": [], "test": []}
phones = ["sil", "p1", "p2", "p3", "p4", "p5"]
align = []
for s, pitch in (("s1", 1.0), ("s2", 1.06)):
    for i in range(4):
        uid = f"{s}-c-{i}"
        os.makedirs(f"corpus/{s}/c", exist_ok=True)
        labels, pcm, t = [], [], 0
        while len(labels) < 200:
            p = 0 if labels and labels[-1] != 0 and rng.random() < 0.3 else rng.randint(1, 5)
            for _ in range(rng.randint(5, 12)):
                labels.append(p)
                for k in range(160):
                    f0 = 150.0 * pitch * (1 + 0.5 * p)
                    v = 0.0 if p == 0 else 0.3 * math.sin(2 * math.pi * f0 * t / 16000) + 0.1 * math.sin(4 * math.pi * f0 * t / 16000)
                    pcm.append(int(32767 * (v + rng.gauss(0, 0.01))))
                    t += 1
        with wave.open(f"corpus/{s}/c/{uid}.wav", "wb") as w:
            w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
            w.writeframes(b"".join(struct.pack("<h", max(-32768, min(32767, x))) for x in pcm))
        align.append(uid + " " + " ".join(map(str, labels)))
        split["test" if i >= 2 else "train"].append(uid)
for name, ids in split.items():
    with open(f"corpus/{name}.txt", "w") as f:
        f.write("\n".join(ids) + "\n")
with open("corpus/alignments.txt", "w") as f:
    f.write("\n".join(align) + "\n")
with open("corpus/phones.txt", "w") as f:
    f.write("\n".join(phones) + "\n")
EOF2
touch empty.txt
converted=$src/tests/golden/cpc_audio_tiny.safetensors

run() {  # run STATUS CMD...: expects exit STATUS, at most one error line, no crash
  local want=$1
  shift
  "$bin" "$@" > out.txt 2> err.txt
  local rc=$?
  [ "$rc" -eq "$want" ] || fail "'$*': exit status $rc, expected $want"
  ! grep -qE "terminate called|what\(\)|Aborted|core dumped" err.txt || fail "'$*' crashed"
  [ "$(grep -c '^cpc-speech: ' err.txt)" -le 1 ] || fail "'$*': more than one error line"
}
refused() {  # refused MESSAGE CMD...: exit 2 with MESSAGE, before the corpus is loaded
  local message=$1
  shift
  run 2 "$@"
  grep -qF -- "cpc-speech: $message" err.txt || fail "'$*': expected the line 'cpc-speech: $message...'"
  ! grep -q "loading corpus" err.txt || fail "'$*': loaded the corpus before refusing"
}
c=(--corpus corpus)

refused "config_error: --features: expected cpc, mfcc, random or all, got 'lpc'" abx "${c[@]}" --features lpc
refused "config_error: --checkpoint: expected a checkpoint file for --features cpc" abx "${c[@]}"
refused "config_error: --checkpoint: expected a checkpoint file for --features all" abx "${c[@]}" --features all
refused "config_error: --split: expected train, test or all, got 'dev'" abx "${c[@]}" --features mfcc --split dev
refused "config_error: --max-group: expected a whole number >= 0, got '-1'" abx "${c[@]}" --features mfcc --max-group -1
refused "config_error: --checkpoint: '$converted' holds a converted CPC_audio model" probe "${c[@]}" --checkpoint "$converted"
refused "config_error: --model: the checkpoint '$converted' holds a 'cpc_audio' model, got --model small" \
  abx "${c[@]}" --checkpoint "$converted" --model small

run 0 abx "${c[@]}" --features mfcc --split all
mfcc=$(grep "^| MFCC |" out.txt) || fail "abx mfcc: no MFCC row: $(cat out.txt)"
awk -F'|' '{ w = $3 + 0; a = $4 + 0; exit !(w < 30 && a < 30) }' <<< "$mfcc" || fail "abx mfcc: tones not told apart: $mfcc"

run 0 abx "${c[@]}" --checkpoint "$converted" --features all --split all
for row in "random init (CPC_audio architecture)" "MFCC" "CPC_audio ($converted)"; do
  grep -qF "| $row | " out.txt || fail "abx all: no row '$row': $(cat out.txt)"
done
run 0 encode "${c[@]}" --checkpoint "$converted" --out ctx.safetensors --split test
grep -q "wrote 4 utterances' contexts" err.txt && [ -s ctx.safetensors ] || fail "encode of a converted model"

# A checkpoint of cpc-speech's own model (one step of the small model).
run 0 train "${c[@]}" --out run --model small --steps 1 --batch 2 --threads 2
run 0 abx "${c[@]}" --checkpoint run/model.safetensors --split all
grep -qE "^\| CPC \(run/model.safetensors\) \| [0-9.]+ \| [0-9.]+ \|" out.txt || fail "abx cpc: $(cat out.txt)"

run 1 abx "${c[@]}" --features mfcc --test-split empty.txt
grep -qF "cpc-speech: config_error: --split test: the corpus has no test utterances" err.txt || fail "empty split"
echo "speech abx: tables printed, converted CPC_audio model encoded and evaluated, bad options refused"
