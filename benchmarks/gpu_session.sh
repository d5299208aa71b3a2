#!/usr/bin/env bash
# The GPU suite's steps side by side, in one device call of about 9 minutes.
#
# One H100 session has 15 minutes of device time, machine start included, and
# the suite's steps one after the other take longer than one 10-minute call
# (results/gpu_suite_h100.md). Here every step runs in its own process with
# its own share of the 16 cores (OpenMP, MKL, numba and joblib pools capped),
# all on the one GPU, each under the same deadline; beside them two
# bench_alc.py processes fit the dual encoder with TCM and with ALC+TCM at a
# few loss weights (issue 13: the weights chosen on held-out training rows).
# Timings are therefore taken under load: compare them within this run only.
#
# Usage (run tool, carry .gpu_bundle, made by gpu_suite.py --prepare):
#     bash benchmarks/gpu_session.sh "$OUT" 540
set -u
out=${1:?usage: gpu_session.sh OUT [SECONDS]}
budget=${2:-540}
mkdir -p "$out"
export PYTHONUNBUFFERED=1

capped() {  # capped N command...: the command with N threads per pool
    local n=$1
    shift
    env OMP_NUM_THREADS="$n" MKL_NUM_THREADS="$n" NUMBA_NUM_THREADS="$n" \
        LOKY_MAX_CPU_COUNT="$n" "$@"
}
suite() {  # suite N NAME ARGS...: gpu_suite.py steps into $out/NAME
    local n=$1 name=$2
    shift 2
    capped "$n" python3 benchmarks/gpu_suite.py --bundle .gpu_bundle \
        --budget "$budget" --out "$out/$name" "$@" >"$out/$name.txt" 2>&1
}
alc() {  # alc NAME ARGS...: bench_alc.py on the full data set
    local name=$1
    shift
    PYTHONPATH=. capped 2 timeout "$budget" python3 benchmarks/bench_alc.py --bundle .gpu_bundle \
        --device cuda --epochs 3 --max-length 64 --batch-size 64 \
        --inference-batch-size 512 "$@" >"$out/$name.txt" 2>&1
}

started=$(date +%s)
suite 2 tests --only tests --pytest-limit 300 &
suite 4 decaf --only decaf --model-limit "$budget" &
suite 4 eclare --only eclare --model-limit "$budget" &
suite 2 elias --only elias --model-limit "$budget" &
suite 2 xr_transformer --only xr_transformer --model-limit "$budget" &
alc alc_a --losses tcm alc+tcm --betas 0.03 &
alc alc_b --losses alc+tcm --betas 0.01 0.1 &
wait
echo "gpu_session.sh: all steps ended after $(($(date +%s) - started)) s" | tee "$out/session.txt"
