#!/usr/bin/env bash
# The XR-Linear row of benchmarks/results/xr_linear_cpu.txt ("skxmc XRLinearClassifier",
# pifa and pifa+text, debian), reproduced through the command line only:
#
#     bash benchmarks/cli_xr_linear.sh [WORKDIR] > benchmarks/results/cli_xr_linear_cpu.txt
#
# `features` writes the BENCHMARKS.md TF-IDF (the one benchmarks/_common.py
# tfidf_features computes) as XC-repository split files; the estimator
# parameters are those of bench_xr_linear.py's run_skxmc.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${SKXMC_SHARED_DIR:-../shared}/data/LF-DebianPackages"
WORK="${1:-$(mktemp -d)}"
PARAMS=(--param branching_factor=16 --param max_leaf_size=100
        --param negative_sampling=tfn+man --param beam_size=20 --param top_k=10
        --param random_state=0)
run() { echo "\$ $*"; local t0=$SECONDS; "$@"; echo "# ($((SECONDS - t0)) s)"; }
echo "# cli_xr_linear.sh, $(date -u)"
echo "# machine: $(uname -m), $(nproc) cores, $(python --version), 2 shared cores under load:" \
     "$(uptime | sed 's/.*load/load/')"
run python -m skxmc -v features "$DATA" "$WORK/feats"
F="$WORK/feats"
for variant in pifa pifa+text; do
  echo "## $variant"
  extra=()
  if [ "$variant" = "pifa+text" ]; then
    extra=(--label-features "$F/lbl_X_Xf.txt" --param label_embedding=pifa_text_concat)
  fi
  run python -m skxmc -v fit "$F/trn_X_Xf.txt" "$F/trn_X_Y.txt" -o "$WORK/model-$variant" \
      --overwrite "${PARAMS[@]}" "${extra[@]}"
  run python -m skxmc -v predict "$WORK/model-$variant" "$F/tst_X_Xf.txt" \
      -o "$WORK/pred-$variant.txt" -k 10
  run python -m skxmc evaluate "$WORK/pred-$variant.txt" "$F/tst_X_Y.txt" \
      --train-labels "$F/trn_X_Y.txt" --filter "$F/filter_labels_test.txt" -A 0.55 -B 1.5
done
echo "# load at the end: $(uptime | sed 's/.*load/load/'), $(date -u)"
