#!/usr/bin/env bash
# Copies the build dependencies that the GPU machine lacks (it reaches no package registry) into
# .deps/ of this checkout, ignored by git: Eigen, xtensor, xtl, xsimd, nlohmann-json, doctest
# (headers and CMake configs) and oneTBB (headers, CMake config and libtbb.so), as Debian installs
# them. scripts/cuda-device-check.sh uses .deps/usr as CMAKE_PREFIX_PATH when it exists.
# Run here (Debian, packages from scripts/install-deps.sh build), then hand ".deps" to the device
# tool's `carry`. About 25 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(libeigen3-dev libxtensor-dev xtl-dev libxsimd-dev nlohmann-json3-dev doctest-dev libtbb-dev libtbb12
          libtbbmalloc2 libtbbbind-2-5)
rm -rf .deps
mkdir -p .deps
exclude="$(git rev-parse --git-common-dir)/info/exclude"
mkdir -p "$(dirname "$exclude")"
grep -qx '/.deps/' "$exclude" 2>/dev/null || echo '/.deps/' >>"$exclude"
for p in "${packages[@]}"; do
  if ! dpkg -s "$p" >/dev/null 2>&1; then
    echo "cuda-pack-deps: $p is not installed (bash scripts/install-deps.sh build)" >&2
    continue
  fi
  dpkg -L "$p" | while IFS= read -r f; do
    case "$f" in /usr/share/doc/*|/usr/share/man/*|/usr/share/lintian/*) continue ;; esac
    if [ -f "$f" ] || [ -L "$f" ]; then
      mkdir -p ".deps$(dirname "$f")"
      cp -a "$f" ".deps$f"
    fi
  done
done
echo "cuda-pack-deps: $(du -sh .deps | cut -f1) in .deps (carry it: carry [\".deps\"])"
