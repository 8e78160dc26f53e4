#!/usr/bin/env bash
# Installs the Debian 12 packages cpc needs, only those that are missing. Run as root (or with
# sudo available). Groups: build (compiler, cmake, libraries), corpus (speech synthesizers),
# images (Fashion-MNIST), mpi (Open MPI: multi-process training, `mpirun`),
# text (SentencePiece, the King James Bible, WordNet, fortunes: cpc-text), rl (gnuplot: cpc-rl's picture),
# torch (PyTorch for golden fixtures and side-by-side benchmarks), fuzz (clang + libFuzzer runtime,
# clang-tidy). Usage: install-deps.sh [group...]
set -euo pipefail
groups=("${@:-build}")
pkgs=()
for g in "${groups[@]}"; do
  case "$g" in
    build) pkgs+=(g++ cmake make pkg-config git ca-certificates libeigen3-dev libxtensor-dev libxsimd-dev
                  libtbb-dev nlohmann-json3-dev doctest-dev libbenchmark-dev libsndfile1-dev
                  libsamplerate0-dev libfftw3-dev libcli11-dev zlib1g-dev python3 python3-numpy) ;;
    images) pkgs+=(dataset-fashion-mnist) ;;
    text) pkgs+=(libsentencepiece-dev bible-kjv bible-kjv-text wordnet-base fortunes) ;;
    mpi) pkgs+=(libopenmpi-dev openmpi-bin) ;;
    rl) pkgs+=(gnuplot-nox) ;;
    corpus) pkgs+=(festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts flite espeak-ng
                   libespeak-ng-dev sox wordnet-base gnuplot-nox) ;;
    torch) pkgs+=(python3-torch libopenblas0-pthread libjemalloc2) ;;
    fuzz) pkgs+=(clang libclang-rt-14-dev llvm clang-tidy) ;;
    format) pkgs+=(clang-format) ;;
    *) echo "install-deps.sh: unknown group '$g' (expected build, corpus, images, text, mpi, rl, torch, fuzz or format)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps.sh: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
