#!/usr/bin/env bash
# The GPU suite's steps side by side, in one device call of about 9 minutes.
#
# One H100 session has 15 minutes of device time, machine start included, and
# the suite's steps one after the other take longer than one 10-minute call
# (results/gpu_suite_h100.md). Here every step runs in its own process with
# its own share of the 16 cores (OpenMP, MKL, numba and joblib pools capped),
# all on the one GPU, each under the same deadline. With ALC=1, two
# bench_alc.py processes beside them fit the dual encoder plain (contrastive),
# with TCM and with ALC+TCM at two loss weights, each ALC fit scored by its
# cosine and by its pair classifier (issue 13 must-show 2: every choice on
# held-out training rows; session 8 ran an earlier set, with 2 threads for
# XR-Transformer, which then did not finish its validation fits in 500 s).
# Timings are taken under load: compare them within one run only.
#
# Usage (run tool, carry .gpu_bundle, made by gpu_suite.py --prepare):
#     bash benchmarks/gpu_session.sh "$OUT" 540
#     ALC=1 bash benchmarks/gpu_session.sh "$OUT" 540
#     STEPS="tests:1 decaf_encoder:5 elias_cpu:4" bash benchmarks/gpu_session.sh "$OUT" 540
# STEPS names the suite steps (gpu_suite.py --only) and each one's thread share;
# without it the default steps run with the shares below.
# It leaves two files in OUT (the device tool returns only a few): summary.txt
# (each step's table rows, also printed) and session_files.tar.gz (every
# step's stdout, tables, logs and pytest output).
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
if [ "${ALC:-0}" = 1 ]; then
    xrt_threads=2
    # issue 13 must-show 2: the plain (contrastive) fit against ALC+TCM, each
    # ALC fit also scored by its pair classifier (reranker="pair")
    alc alc_a --losses contrastive alc+tcm --betas 0.03 --pair-reranker &
    alc alc_b --losses tcm alc+tcm --betas 0.01 --pair-reranker &
else
    xrt_threads=6  # its embedding-weight choice fits XR-Linear rankers on the CPU
fi
if [ -z "${STEPS:-}" ]; then
    STEPS="tests:1 decaf:3 eclare:3 elias:2 xr_transformer:$xrt_threads"
fi
for step in $STEPS; do
    name=${step%%:*}
    threads=${step##*:}
    if [ "$name" = tests ]; then
        suite "$threads" tests --only tests --pytest-limit 300 &
    else
        suite "$threads" "$name" --only "$name" --model-limit "$budget" &
    fi
done
wait
summary=$(mktemp)
{
    echo "gpu_session.sh: all steps ended after $(($(date +%s) - started)) s"
    grep -h "^pytest -m gpu:\|fit stages\|^| [A-Za-z]*Classifier \|^| [a-z+]* \|chosen on the held-out" \
        "$out"/*.txt | grep -v "^| model \|^| loss "
} >"$summary"
mv "$summary" "$out/summary.txt"
# the device tool returns a handful of files: everything else travels in one archive
(cd "$out" && tar -czf session_files.tar.gz --exclude=summary.txt -- */ *.txt &&
    find . -mindepth 1 -maxdepth 1 ! -name session_files.tar.gz ! -name summary.txt \
        -exec rm -rf {} +)
cat "$out/summary.txt"
