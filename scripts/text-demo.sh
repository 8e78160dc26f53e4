#!/usr/bin/env bash
# Text CPC (paper section 3.3) on the King James Bible, fortune's quotations and WordNet's glosses (--train-text):
# installs what is missing (Debian's libsentencepiece-dev, bible-kjv, wordnet-base, fortunes
# included), builds cpc-text, writes the Bible's text with the `bible` program, learns a
# SentencePiece vocabulary, trains for 10 minutes, runs the linear probes (CPC vs random-init
# encoder vs TF-IDF on the Bible, WordNet glosses and fortune categories) and writes
# the checkpoint, training.csv, probes.csv and results.md to ./runs/text. Extra arguments go to
# `cpc-text demo` (a later --out wins), e.g. `bash scripts/text-demo.sh --minutes 20`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh build text
cmake --preset demo
cmake --build --preset demo --target cpc-text
exec build/demo/examples/cpc_text/cpc-text demo --out runs/text "$@"
