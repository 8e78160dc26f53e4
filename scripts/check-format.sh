#!/usr/bin/env bash
# Fails when a tracked C++ file differs from what clang-format (the repo's .clang-format) makes
# of it. Installs clang-format when missing. Fix with: clang-format -i <files>.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || bash scripts/install-deps.sh format
bad=()
while IFS= read -r f; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done < <(git ls-files '*.hpp' '*.cpp' '*.cuh' '*.cu')
if [ ${#bad[@]} -gt 0 ]; then
  echo "check-format: not clang-formatted: ${bad[*]}" >&2
  exit 1
fi
echo "check-format: all C++ files are clang-formatted"
