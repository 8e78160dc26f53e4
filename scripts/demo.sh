#!/usr/bin/env bash
# The README's main job: installs what is missing, builds cpc-speech, generates the default
# speech corpus (24 synthetic-voice speakers, 41 phone classes; once, into ./corpus), trains the
# paper's audio model for about 12 minutes, runs the linear probes for random init, MFCC and
# CPC, prints the table and writes CSVs and pictures (scripts/plot-demo.sh, gnuplot) to ./runs/demo.
# Extra arguments go to `cpc-speech demo`, e.g. `bash scripts/demo.sh --minutes 30`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh build corpus
cmake --preset demo
cmake --build --preset demo --target cpc-speech
if [ ! -f corpus/.complete ]; then
  bash scripts/make-corpus.sh corpus --size "${CPC_CORPUS_SIZE:-default}"
  touch corpus/.complete
fi
build/demo/examples/cpc_speech/cpc-speech demo --corpus corpus --out runs/demo "$@"
bash scripts/plot-demo.sh runs/demo
