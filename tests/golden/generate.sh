#!/usr/bin/env bash
# Regenerates every golden fixture from PyTorch (Debian python3-torch). CI does not run this;
# it reads the committed fixtures.
set -euo pipefail
cd "$(dirname "$0")"
for g in gen_*.py; do
  echo "== $g"
  /usr/bin/python3 "$g"
done
