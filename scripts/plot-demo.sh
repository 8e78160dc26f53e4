#!/usr/bin/env bash
# Draws the pictures of a `cpc-speech demo` run with gnuplot: RUN/training.png (loss and per-step
# accuracy, scripts/plots/training.gp) and RUN/contexts_pca.png (PCA of window contexts by speaker,
# scripts/plots/contexts_pca.gp). K is read from the CSV header. Exits 0 with a note when gnuplot
# is missing (bash scripts/install-deps.sh corpus installs gnuplot-nox).
# Usage: plot-demo.sh RUN_DIR
set -euo pipefail
run=${1:?usage: plot-demo.sh RUN_DIR}
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v gnuplot > /dev/null; then
  echo "plot-demo: gnuplot not found: pictures skipped (apt-get install gnuplot-nox)" >&2
  exit 0
fi
k=$(head -n 1 "$run/training.csv" | tr ',' '\n' | grep -c '^accuracy_[0-9]')
ks=$(for i in 1 2 4 8 12 16; do if [ "$i" -le "$k" ]; then printf '%s ' "$i"; fi; done)
gnuplot -e "dir='$run'; ks='${ks% }'" "$here/plots/training.gp"
drawn="$run/training.png"
if [ -s "$run/pca_cpc.tsv" ]; then
  gnuplot -e "dir='$run'" "$here/plots/contexts_pca.gp"
  drawn+=", $run/contexts_pca.png"
fi
echo "plot-demo: $drawn"
