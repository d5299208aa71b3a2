"""Time skxmc.metrics on an extreme-scale synthetic evaluation.

Builds 1,000,000 test rows x 100,000 labels: about 5 true labels per row and
100 retrieved labels per row, as a CSR score matrix (what ``decision_function``
returns), as a (scores, indices) pair of the same 100 entries in storage order
and as a sorted top-5 pair (what ``predict_topk`` returns). Prints one table;
writes nothing. Run from the repository root::

    python benchmarks/bench_metrics.py > benchmarks/results/metrics_cpu.txt

Timings are the best of ``--repeat`` runs, single-threaded kernels.
"""

import argparse
import os
import platform
import resource
import sys
import time

import numba
import numpy as np
import scipy
import scipy.sparse as sp

from skxmc.metrics import (
    inverse_propensity,
    ndcg_at_k,
    precision_at_k,
    psp_at_k,
    xmc_report,
)
from skxmc.utils._sparse import csr_row_topk


def make_case(n_rows, n_labels, per_row, seed=0):
    """Stratified synthetic case: every row retrieves one label per stratum.

    The labels are cut into ``per_row`` strata of equal width; row ``i``
    retrieves one random label in each stratum (sorted, distinct). Its 5 true
    labels sit in strata ``p, p + s, ..., p + 4 s`` (``s = per_row // 5``):
    the first 3 are retrieved labels (given a +0.3 score bonus), the last 2
    are neighbours of retrieved labels, so never retrieved.
    """
    rng = np.random.default_rng(seed)
    width = n_labels // per_row
    cols = np.arange(per_row, dtype=np.int64) * width + rng.integers(
        0, width, size=(n_rows, per_row)
    )
    scores = rng.random((n_rows, per_row), dtype=np.float32)
    step = per_row // 5
    first = rng.integers(0, step, size=n_rows)
    positions = first[:, None] + step * np.arange(5)
    true_cols = np.take_along_axis(cols, positions, axis=1)
    true_cols[:, 3:] += np.where(true_cols[:, 3:] % width < width - 1, 1, -1)
    rows = np.arange(n_rows)[:, None]
    scores[rows, positions[:, :3]] += 0.3
    indptr = np.arange(n_rows + 1, dtype=np.int64)
    y_true = sp.csr_matrix(
        (np.ones(5 * n_rows, dtype=np.float32), true_cols.ravel(), indptr * 5),
        shape=(n_rows, n_labels),
    )
    y_score = sp.csr_matrix(
        (scores.ravel(), cols.ravel().astype(np.int32), indptr * per_row),
        shape=(n_rows, n_labels),
    )
    # reciprocal-pair style filter: one true pair per row
    filter = sp.csr_matrix(
        (np.ones(n_rows, dtype=np.float32), true_cols[:, 0], indptr),
        shape=(n_rows, n_labels),
    )
    return y_true, y_score, (scores, cols), filter


def best_time(function, repeat):
    best, result = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-rows", type=int, default=1_000_000)
    parser.add_argument("--n-labels", type=int, default=100_000)
    parser.add_argument("--per-row", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    print("skxmc.metrics benchmark")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs visible "
        f"(shared with other jobs: timings are indicative), {platform.system()}"
    )
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, numba {numba.__version__}"
    )
    print(
        f"case: {args.n_rows:,} rows x {args.n_labels:,} labels, 5 true labels/row, "
        f"{args.per_row} retrieved labels/row; best of {args.repeat} runs"
    )

    # compile (or load the cached) numba kernels outside the timings
    warm = make_case(50, 1000, 10)
    xmc_report(warm[0], warm[1], inv_propensity=inverse_propensity(warm[0]))
    xmc_report(warm[0], warm[2], filter=warm[3])

    start = time.perf_counter()
    y_true, y_score, pair, filter = make_case(args.n_rows, args.n_labels, args.per_row)
    print(f"data generation: {time.perf_counter() - start:.1f} s")
    top5 = csr_row_topk(y_score, 5)

    rows = []

    def timed(name, form, function):
        seconds, value = best_time(function, args.repeat)
        rows.append((name, form, seconds, value))

    timed("inverse_propensity(y_true)", "-", lambda: inverse_propensity(y_true))
    w = rows[-1][3]
    timed("csr_row_topk(k=5)", "CSR", lambda: csr_row_topk(y_score, 5))
    forms = [
        ("CSR", y_score),
        (f"pair ({args.per_row}/row)", pair),
        ("pair (top-5)", top5),
    ]
    for form, scores in forms:
        timed("precision_at_k(k=5)", form, lambda s=scores: precision_at_k(y_true, s))
    timed("ndcg_at_k(k=5)", "CSR", lambda: ndcg_at_k(y_true, y_score))
    timed("psp_at_k(k=5)", "CSR", lambda: psp_at_k(y_true, y_score, w))
    timed(
        "precision_at_k(k=5, filter)",
        "CSR",
        lambda: precision_at_k(y_true, y_score, filter=filter),
    )
    for form, scores in forms[:2]:
        timed(
            "xmc_report(k=1,3,5, inv_p)",
            form,
            lambda s=scores: xmc_report(y_true, s, inv_propensity=w),
        )
    timed(
        "xmc_report(k=1,3,5, inv_p, filter)",
        "CSR",
        lambda: xmc_report(y_true, y_score, inv_propensity=w, filter=filter),
    )

    print()
    print(f"{'operation':<36} {'y_score form':<16} {'seconds':>8}  value")
    print("-" * 76)
    for name, form, seconds, value in rows:
        shown = f"{value:.4f}" if isinstance(value, float) else ""
        print(f"{name:<36} {form:<16} {seconds:>8.2f}  {shown}")
    print()
    report = rows[-3][3]
    print("xmc_report (CSR):", ", ".join(f"{k} {v:.4f}" for k, v in report.items()))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    print(f"peak resident memory: {peak * scale / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
