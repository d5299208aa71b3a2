"""XRLinearClassifier fit/predict time and peak memory from 10^4 to 10^6 labels.

Synthetic power-law data from :func:`skxmc.datasets.make_xmc_classification`
(twice as many training rows as labels up to 10^5, then as many, so that every
label has a positive; 3 labels per row on average; 20 tokens per row)::

    python benchmarks/bench_xr_linear_scaling.py --n-labels 10000 100000 1000000

Each size runs in a fresh subprocess so that its peak resident memory (the
``ru_maxrss`` of that process: data generation included) is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from _common import machine_line, print_table_header, print_table_row


def run_one(n_labels: int, n_test: int, seed: int) -> dict:
    from skxmc import XRLinearClassifier
    from skxmc.datasets import make_xmc_classification
    from skxmc.metrics import precision_at_k

    n_train = 2 * n_labels if n_labels <= 100_000 else n_labels
    start = time.perf_counter()
    X, Y = make_xmc_classification(
        n_samples=n_train + n_test,
        n_labels=n_labels,
        n_features=max(20_000, n_labels // 5),
        avg_labels_per_sample=3.0,
        random_state=seed,
    )
    gen_s = time.perf_counter() - start
    X_train, Y_train = X[:n_train], Y[:n_train]
    X_test, Y_test = X[n_train:], Y[n_train:]
    clf = XRLinearClassifier(random_state=seed)
    start = time.perf_counter()
    clf.fit(X_train, Y_train)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    topk = clf.predict_topk(X_test, k=5)
    predict_s = time.perf_counter() - start
    # Labels never seen in training cannot be predicted; score on classes_.
    Y_test = Y_test[:, clf.classes_]
    return {
        "n_labels": n_labels,
        "n_train": n_train,
        "n_features": X.shape[1],
        "nnz_X_train": int(X_train.nnz),
        "gen_s": gen_s,
        "fit_s": fit_s,
        "predict_ms": 1000 * predict_s / n_test,
        "p_at_1": precision_at_k(Y_test, topk, k=1),
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n-labels", nargs="+", type=int, default=[10_000, 100_000, 1_000_000]
    )
    parser.add_argument("--n-test", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.n_test, args.seed)))
        return
    print(machine_line())
    print_table_header(
        [
            "labels",
            "train rows",
            "features",
            "nnz(X_train)",
            "generate s",
            "fit s",
            "predict ms/q (batch)",
            "P@1",
            "peak RSS GB",
        ]
    )
    for n_labels in args.n_labels:
        command = [sys.executable, __file__, "--one", str(n_labels)]
        command += ["--n-test", str(args.n_test), "--seed", str(args.seed)]
        out = subprocess.run(command, check=True, capture_output=True, text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        cells = [
            f"{r['n_labels']:,}",
            f"{r['n_train']:,}",
            f"{r['n_features']:,}",
            f"{r['nnz_X_train']:,}",
            f"{r['gen_s']:.1f}",
            f"{r['fit_s']:.1f}",
            f"{r['predict_ms']:.3f}",
            f"{100 * r['p_at_1']:.2f}",
            f"{r['peak_gb']:.2f}",
        ]
        print_table_row(cells)


if __name__ == "__main__":
    main()
