#!/usr/bin/env bash
# scripts/convert_cpc_audio.py refuses what cpc does not implement, with exit status 1 and one line
# naming the setting, before reading the checkpoint (so this runs without PyTorch; the conversion
# itself: convert_cpc_audio_fixture.sh, and tests/unit/test_cpc_audio.cpp on the converted fixture).
# Usage: convert_cpc_audio_refusals.sh SOURCE_DIR WORK_DIR. Exit 77 (skipped) without python3 + numpy.
set -uo pipefail
src=$1
work=$2
py=
for candidate in python3 /usr/bin/python3; do  # the first Python 3 with numpy
  if command -v "$candidate" >/dev/null && "$candidate" -c 'import numpy' 2>/dev/null; then
    py=$candidate
    break
  fi
done
[[ -n "$py" ]] || exit 77
rm -rf "$work" && mkdir -p "$work"
touch "$work/checkpoint_3.pt"
fail=0
expect() {  # expect ARGS_JSON MESSAGE_PART [extra converter args]
  local json=$1 want=$2
  shift 2
  printf '%s' "$json" > "$work/checkpoint_args.json"
  out=$("$py" "$src/scripts/convert_cpc_audio.py" "$work/checkpoint_3.pt" "$work/out.safetensors" "$@" 2>&1)
  rc=$?
  if [[ $rc -ne 1 || "$out" != "convert_cpc_audio: error: "*"$want"* || $(printf '%s\n' "$out" | wc -l) -ne 1 ]]; then
    echo "FAIL: args $json: expected exit 1 and one line containing '$want', got $rc: $out"
    fail=1
  fi
}
expect '{"arMode": "GRU"}' "arMode 'GRU' (cpc implements 'LSTM')"
expect '{"rnnMode": "linear"}' "rnnMode 'linear'"
expect '{"normMode": "batchNorm"}' "normMode 'batchNorm'"
expect '{"encoder_type": "mfcc"}' "encoder_type 'mfcc'"
expect '{"cpc_mode": "reverse"}' "cpc_mode 'reverse'"
expect '{"abspos": true}' "abspos"
expect '{"speakerEmbedding": 16}' "speakerEmbedding 16"
expect '{"hiddenGar": 512}' "hiddenEncoder 256 != hiddenGar 512"
expect '{"nLevelsGRU": 0}' "nLevelsGRU = 0"
expect '[1, 2]' "expected a JSON object of training arguments"
expect '{' "not valid JSON"
rm "$work/checkpoint_args.json"
out=$("$py" "$src/scripts/convert_cpc_audio.py" "$work/checkpoint_3.pt" "$work/out.safetensors" 2>&1)
[[ $? -eq 1 && "$out" == *"no training arguments at"*"checkpoint_args.json"* ]] || { echo "FAIL: missing args: $out"; fail=1; }
printf '{}' > "$work/args.json"
out=$("$py" "$src/scripts/convert_cpc_audio.py" "$work/missing.pt" "$work/out.safetensors" --args "$work/args.json" 2>&1)
[[ $? -eq 1 && "$out" == *"no checkpoint file at"* ]] || { echo "FAIL: missing checkpoint: $out"; fail=1; }
[[ ! -e "$work/out.safetensors" ]] || { echo "FAIL: an output was written"; fail=1; }
[[ $fail -eq 0 ]] && echo "all refusals as expected"
exit $fail
