#!/usr/bin/env bash
# Generates cpc's default speech corpus on this machine, from Debian's speech synthesizers: 24
# distinct speakers (festival kal, ked, slt; flite awb, rms; 19 espeak-ng voice variants across 8
# English accents), each reading different WordNet example sentences, with 10 ms phone labels.
#
# Usage: scripts/make-corpus.sh OUT_DIR [--size ci|default] [--jobs N] [--no-check] [--keep-work]
#   --size ci        24 speakers x 10 sentences (about 10 minutes of audio; under a minute)
#   --size default   24 speakers x 100 sentences (about 100 minutes of audio; a few minutes)
#   --jobs N         parallel synthesis jobs (default: number of cores)
#   --no-check       skip the label-alignment check (examples/corpus_check, compiled on first use
#                    into ~/.cache/cpc; CPC_CORPUS_CHECK=/path/to/corpus_check uses a built one)
#   --keep-work      keep OUT_DIR/.work (sentence lists, job list) for debugging
# Installs its Debian packages when missing (scripts/install-deps.sh build corpus; needs root or
# sudo). Deterministic: the same command on the same Debian release gives byte-identical files.
#
# Layout of OUT_DIR (LibriSpeech / CPC style; what cpc's corpus loader reads):
#   <speaker>/1/<utt_id>.wav  16 kHz mono signed 16-bit WAV; utt_id = "<speaker>-1-<nnnn>"
#   phones.txt       41 class names, one per line; class index = line number - 1. Line 1 is "sil",
#                    then the 39 CMU/ARPAbet phones and "ax" (schwa), lower case.
#   alignments.txt   one line per utterance: "<utt_id> c0 c1 ... c{F-1}", one class index per 10 ms
#                    frame. Frame f covers samples [160 f, 160 f + 160) and is labelled with the
#                    phone at its centre (sample 160 f + 80); F = floor(samples / 160), so the
#                    labels never run past the audio (up to 159 trailing samples have no label).
#   train.txt, test.txt  utterance ids, one per line; the split is within each speaker (every
#                    fifth utterance, index % 5 == 4, is test), so speaker probes see every speaker
#                    in both.
#   speakers.txt     "<speaker> <engine:voice> <sex> <accent>" per line.
# Phone names of each synthesizer are mapped onto the 41 classes by scripts/corpus/phones.map.
# Timings come from festival's segment relation (utt.save.segs), flite's -psdur, and espeak-ng's
# phoneme events through a small C program (scripts/corpus/espeak_phones.c). At the end the
# labels are checked: a frame-level linear phone probe on log-mel features, trained per speaker
# with labels shifted by -3..+3 frames, must be most accurate at shift 0 for every speaker.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
usage() { sed -n '6,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

out="" size=default jobs=$(nproc) check=1 keep=0
while [ $# -gt 0 ]; do
  case $1 in
    --size) size=${2:?--size needs ci or default}; shift 2 ;;
    --size=*) size=${1#--size=}; shift ;;
    --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
    --jobs=*) jobs=${1#--jobs=}; shift ;;
    --no-check) check=0; shift ;;
    --keep-work) keep=1; shift ;;
    -h|--help) usage ;;
    -*) echo "make-corpus: unknown option '$1'" >&2; usage ;;
    *) [ -z "$out" ] || usage; out=$1; shift ;;
  esac
done
[ -n "$out" ] || usage
[[ $out != *[[:space:]]* ]] || { echo "make-corpus: OUT_DIR must not contain spaces, got '$out'" >&2; exit 2; }
case $size in
  ci) per_speaker=10 ;;
  default) per_speaker=100 ;;
  *) echo "make-corpus: --size must be ci or default, got '$size'" >&2; exit 2 ;;
esac
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { echo "make-corpus: --jobs must be a positive integer, got '$jobs'" >&2; exit 2; }
start=$(date +%s)

bash "$here/install-deps.sh" build corpus

# The speakers: id, engine, voice, sex, accent, label offset. espeak-ng voices are
# "<accent voice>+<variant>" with a different variant (pitch, formants, voice quality) for every
# speaker; flite's kal16 and slt are festival's kal and slt, so they are not used.
# The offset (ms, added to every phone boundary; positive moves labels later) corrects each
# synthesizer's systematic timing error as measured by examples/corpus_check on the default corpus
# (sub-frame peak of the shifted-label probe without offsets: espeak-ng voices +2.3..+4.3 ms late,
# kal 7.9 ms early, ked 2.7, slt 4.3 ms early, awb +0.4, rms +2.1 ms late).
speakers=$(cat <<'EOF'
kal         festival voice_kal_diphone            M US            8
ked         festival voice_ked_diphone            M US            3
slt         festival voice_cmu_us_slt_arctic_hts  F US            4
awb         flite    awb                          M Scottish      0
rms         flite    rms                          M US            -2
us_m1       espeak   en-us+m1                     M US            -3
us_f2       espeak   en-us+f2                     F US            -3
gb_m3       espeak   en+m3                        M British       -3
rp_f4       espeak   en-gb-x-rp+f4                F British-RP    -3
sc_m7       espeak   en-gb-scotland+m7            M Scottish      -3
car_klatt4  espeak   en-029+klatt4                M Caribbean     -3
nyc_m2      espeak   en-us-nyc+m2                 M US-NewYork    -3
gb_f1       espeak   en+f1                        F British       -3
lan_m4      espeak   en-gb-x-gbclan+m4            M Lancashire    -3
wmd_f3      espeak   en-gb-x-gbcwmd+f3            F West-Midlands -3
us_m5       espeak   en-us+m5                     M US            -3
rp_m6       espeak   en-gb-x-rp+m6                M British-RP    -3
car_f5      espeak   en-029+f5                    F Caribbean     -3
sc_annie    espeak   en-gb-scotland+Annie         F Scottish      -3
us_m8       espeak   en-us+m8                     M US            -3
lan_linda   espeak   en-gb-x-gbclan+linda         F Lancashire    -3
wmd_robert  espeak   en-gb-x-gbcwmd+robert        M West-Midlands -3
nyc_steph   espeak   en-us-nyc+steph              F US-NewYork    -3
gb_paul     espeak   en+paul                      M British       -3
EOF
)
num_speakers=$(echo "$speakers" | wc -l)

# OUT_DIR must be new, empty, or a corpus this script made (marked by .cpc-corpus).
if [ -e "$out" ] && [ -n "$(ls -A "$out")" ] && [ ! -e "$out/.cpc-corpus" ]; then
  echo "make-corpus: $out is not empty and not a corpus made by this script; refusing to overwrite" >&2
  exit 1
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
echo "$speakers" | while read -r id _; do rm -rf "${out:?}/$id"; done
rm -f "$out"/{phones,alignments,train,test,speakers}.txt
touch "$out/.cpc-corpus"
work=$out/.work
rm -rf "$work"
mkdir -p "$work/lists" "$work/chunks"

echo "make-corpus: $num_speakers speakers x $per_speaker sentences -> $out ($jobs jobs)"

# Phone classes.
printf '%s\n' sil aa ae ah ao aw ax ay b ch d dh eh er ey f g hh ih iy jh k l m n ng ow oy p r s sh \
  t th uh uw v w y z zh > "$work/phones.txt"

# Sentences: WordNet's example sentences (the quoted parts of its glosses) of 6-14 words in plain
# letters and punctuation, unique, byte-sorted. Speaker s reads sentences k * S + s (k = 0, 1, ...)
# of a fixed permutation of that list, so no two speakers share a sentence.
cat /usr/share/wordnet/data.{noun,verb,adj,adv} | grep -v '^  ' | sed -n 's/^[^|]*| //p' |
  grep -o '"[^"]*"' | tr -d '"' | awk 'NF >= 6 && NF <= 14' | grep -E "^[A-Za-z][A-Za-z ,.'?!;:-]*$" |
  LC_ALL=C sort -u > "$work/sentences.txt"
num_sentences=$(wc -l < "$work/sentences.txt")
[ "$num_sentences" -ge $((num_speakers * per_speaker)) ] ||
  { echo "make-corpus: only $num_sentences WordNet sentences, need $((num_speakers * per_speaker))" >&2; exit 1; }
echo "$speakers" | awk -v S="$num_speakers" -v P="$per_speaker" -v work="$work" '
  function gcd(a, b) { while (b) { t = b; b = a % b; a = t } return a }
  NR == FNR { sent[NR - 1] = $0; N = NR; next }
  {
    s = FNR - 1
    step = 7919
    while (gcd(step, N) != 1) step += 2
    for (k = 0; k < P; k++) {
      j = ((k * S + s) * step + 1) % N
      printf "%s-1-%04d\t%s\n", $1, k, sent[j] > (work "/lists/" $1)
    }
  }' "$work/sentences.txt" -

# Jobs: chunks of up to 10 utterances (festival pays its start-up once per chunk).
echo "$speakers" | while read -r id engine voice _ _ offset; do
  split -l 10 -d -a 3 "$work/lists/$id" "$work/chunks/$id."
  for c in "$work/chunks/$id".*; do echo "$id $engine $voice $offset $c"; done
done > "$work/jobs"
num_jobs=$(wc -l < "$work/jobs")
total=$((num_speakers * per_speaker))

gcc -O2 -o "$work/espeak_phones" "$here/corpus/espeak_phones.c" -lespeak-ng

export work out total
progress() { echo "  [$(ls "$work/ali" 2>/dev/null | wc -l)/$total] $1" >&2; }
export -f progress
echo "make-corpus: synthesising $total utterances in $num_jobs jobs"
# shellcheck disable=SC2016
xargs -P "$jobs" -L 1 bash -c 'bash "$0/corpus/synth-chunk.sh" "$work" "$out" "$1" "$2" "$3" "$4" "$5" &&
  progress "$1 $(basename "$5")"' "$here" < "$work/jobs"

# Drop the raw files; gather the labels, lengths and splits in utterance-id order.
dropped=$(find "$work/dropped" -type f | wc -l)
if [ "$dropped" -gt 0 ]; then
  echo "make-corpus: dropped $dropped utterances with unmapped phones:" >&2
  cat "$work/dropped"/* | sort | uniq -c | sort -rn | head -20 >&2
fi
( cd "$work/ali" && find . -type f -printf "%f\n" | LC_ALL=C sort | xargs cat ) > "$out/alignments.txt"
cut -d' ' -f1 "$out/alignments.txt" | awk -v test="$out/test.txt" -v train="$out/train.txt" \
  '{ k = $0; sub(/.*-/, "", k); print > (k % 5 == 4 ? test : train) }'
cp "$work/phones.txt" "$out/phones.txt"
echo "$speakers" | awk '{ print $1, $2 ":" $3, $4, $5 }' > "$out/speakers.txt"
samples=$(cat "$work/len"/* | awk '{ s += $1 } END { print s }')
utts=$(wc -l < "$out/alignments.txt")
minutes=$(awk -v s="$samples" 'BEGIN { printf "%.1f", s / 16000 / 60 }')
echo "make-corpus: $utts utterances, $minutes minutes of audio, $num_speakers speakers," \
  "$(wc -l < "$out/train.txt") train / $(wc -l < "$out/test.txt") test, in $(($(date +%s) - start)) s"

if [ "$check" = 1 ]; then
  # The check program (examples/corpus_check) is header-only cpc code: compile it directly, cached
  # by a hash of its sources, unless CPC_CORPUS_CHECK names an already built binary.
  checker=${CPC_CORPUS_CHECK:-}
  if [ -z "$checker" ]; then
    flags=(-std=c++20 -O2 -DNDEBUG -I"$repo/include" -isystem /usr/include/eigen3)
    src=$repo/examples/corpus_check/corpus_check.cpp
    # shellcheck disable=SC2046
    hash=$( (echo "${flags[*]}"; cat $(g++ "${flags[@]}" -MM "$src" | tr -d '\\\n' | cut -d: -f2-)) |
      sha1sum | cut -c1-12)
    cache=${XDG_CACHE_HOME:-$HOME/.cache}/cpc
    checker=$cache/corpus_check-$hash
    if [ ! -x "$checker" ]; then
      echo "make-corpus: compiling the label check (examples/corpus_check, once; about a minute)"
      mkdir -p "$cache"
      rm -f "$cache"/corpus_check-*  # older builds
      g++ "${flags[@]}" -o "$checker.tmp" "$src" -lsndfile -lsamplerate -lfftw3f -ltbb
      mv "$checker.tmp" "$checker"
    fi
  fi
  echo "make-corpus: checking label alignment (frame-level phone probe on shifted labels)"
  if ! "$checker" "$out"; then
    echo "make-corpus: the label check failed; the corpus is in $out but its labels are suspect" >&2
    exit 1
  fi
fi
[ "$keep" = 1 ] || rm -rf "$work"
echo "make-corpus: done in $(($(date +%s) - start)) s: $out"
