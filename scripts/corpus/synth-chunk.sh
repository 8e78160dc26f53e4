#!/usr/bin/env bash
# Synthesises one chunk of utterances for one speaker; called by make-corpus.sh through xargs.
# Usage: synth-chunk.sh WORK OUT SPEAKER ENGINE VOICE OFFSET_MS CHUNK_FILE
#   CHUNK_FILE lines: "<utt_id><TAB><text>"; ENGINE: festival | flite | espeak.
# Writes OUT/SPEAKER/1/<utt>.wav (16 kHz mono 16-bit, resampled with `sox -D`, no dither, so the
# bytes are the same on every run), WORK/ali/<utt> (its alignment line) and WORK/len/<utt>
# (its sample count). An utterance with an unmapped phone goes to WORK/dropped/<utt> instead.
set -euo pipefail
work=$1 out=$2 spk=$3 engine=$4 voice=$5 offset_ms=$6 chunk=$7
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
raw=$work/raw/$spk
mkdir -p "$raw" "$out/$spk/1" "$work/ali" "$work/len" "$work/dropped"

# 1. Synthesise: raw audio at the engine's rate, and "<end_seconds> <phone>" segments in $raw/<utt>.seg.
case $engine in
  festival)
    scm=$raw/$(basename "$chunk").scm
    {
      echo "($voice)"
      while IFS=$'\t' read -r utt text; do
        # A literal string: festival speaks a variable's name if the text is passed through one.
        text=${text//\"/}
        text=${text//\\/}
        echo "(set! u (utt.synth (Utterance Text \"$text\")))"
        echo "(utt.save.wave u \"$raw/$utt.wav\" 'riff)"
        echo "(utt.save.segs u \"$raw/$utt.segs\")"
      done < "$chunk"
    } > "$scm"
    festival -b "$scm" > "$raw/$(basename "$chunk").log" 2>&1 ||
      { echo "synth-chunk: festival failed for $chunk (log: $raw/$(basename "$chunk").log)" >&2; exit 1; }
    while IFS=$'\t' read -r utt text; do
      awk 'seen && NF == 3 { print $1, $3 } $1 == "#" { seen = 1 }' "$raw/$utt.segs" > "$raw/$utt.seg"
    done < "$chunk"
    ;;
  flite)
    while IFS=$'\t' read -r utt text; do
      flite -voice "$voice" -psdur -t "$text" -o "$raw/$utt.wav" > "$raw/$utt.psdur"
      tr ' ' '\n' < "$raw/$utt.psdur" | awk -F: 'NF == 2 { print $2, $1 }' > "$raw/$utt.seg"
    done < "$chunk"
    ;;
  espeak)
    rate=$("$work/espeak_phones" "$voice" "$raw" < "$chunk" | awk '$1 == "rate" { print $2 }')
    while IFS=$'\t' read -r utt text; do
      # Events give phone starts in samples; segment i ends where segment i + 1 starts.
      awk -v rate="$rate" 'NR == 1 { print $1 / rate, "_" } NR > 1 { print $1 / rate, prev } { prev = $2 }' \
        "$raw/$utt.pho" > "$raw/$utt.seg"
      sox -t raw -r "$rate" -e signed-integer -b 16 -c 1 "$raw/$utt.raw" "$raw/$utt.wav"
    done < "$chunk"
    ;;
  *) echo "synth-chunk: unknown engine '$engine'" >&2; exit 2 ;;
esac

# 2. Resample to 16 kHz mono 16-bit (-D: no dither, -G: guard against clipping) and label 10 ms frames.
source=arpa
[ "$engine" = espeak ] && source=espeak
offset=$(awk -v ms="$offset_ms" 'BEGIN { print ms / 1000 }')
while IFS=$'\t' read -r utt text; do
  wav=$out/$spk/1/$utt.wav
  sox -D -G -V1 "$raw/$utt.wav" -r 16000 -c 1 -b 16 -e signed-integer "$wav"
  samples=$(soxi -s "$wav")
  if awk -v map="$here/phones.map" -v source="$source" -v phones="$work/phones.txt" -v utt="$utt" \
       -v samples="$samples" -v offset="$offset" -f "$here/labels.awk" "$raw/$utt.seg" \
       > "$work/ali/$utt" 2> "$work/dropped/$utt"; then
    rm -f "$work/dropped/$utt"
    echo "$samples" > "$work/len/$utt"
  else
    rm -f "$work/ali/$utt" "$wav"
  fi
  rm -f "$raw/$utt".*
done < "$chunk"
