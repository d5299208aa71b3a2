"""How much XR-Linear's test metrics move with its seed alone (LF data sets).

XR-Transformer's final ranker with the embedding weight 0 (what its
validation rows chose on LF-FOLDOC) is ``XRLinearClassifier`` on
XR-Transformer's own TF-IDF with the same ``random_state`` (since session 8;
before, its tree was seeded through the estimator's own seed sequence, so
the two differed by the seed alone). This script fits ``XRLinearClassifier``
with ``--seeds`` seeds on one set of features and prints the BENCHMARKS.md
metrics of each and their spread, so a gap between two such models can be
read against it::

    python benchmarks/bench_xr_linear_seeds.py --data foldoc --features xr-transformer

``--features xr-transformer``: ``TfidfVectorizer(sublinear_tf=True)`` fitted
on the training documents (XR-Transformer's default recipe);
``benchmark``: the BENCHMARKS.md 1-2-gram TF-IDF.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time

import numpy as np

from skxmc import XRLinearClassifier
from skxmc.models._text_features import fit_tfidf

from _common import (  # isort: skip (benchmarks/ is the script's own folder)
    METRIC_COLUMNS,
    load_benchmark_data,
    machine_line,
    print_table_header,
    print_table_row,
    protocol_report,
)


def xr_transformer_tfidf(d: dict) -> dict:
    """``d`` with XR-Transformer's default TF-IDF (its own function: unigrams,
    sublinear tf, fitted on the training documents) in place of the
    benchmark's."""
    vectorizer, X_train = fit_tfidf(d["text_train"])
    return {**d, "X_train": X_train, "X_test": vectorizer.transform(d["text_test"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("foldoc", "debian"), default="foldoc")
    parser.add_argument(
        "--features", choices=("xr-transformer", "benchmark"), default="xr-transformer"
    )
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--weight-threshold", type=float, default=0.1)
    parser.add_argument("--beam", type=int, default=10)
    args = parser.parse_args()

    print(f"# date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"# load average at start: {os.getloadavg()}")
    print(machine_line())
    print(f"# command: python {' '.join(sys.argv)}")
    d = load_benchmark_data(args.data)
    if args.features == "xr-transformer":
        d = xr_transformer_tfidf(d)
    print(
        f"# {args.data}: {d['Y_train'].shape[0]} train, {d['Y_test'].shape[0]} test, "
        f"{d['Y_train'].shape[1]} labels, {d['X_train'].shape[1]} features "
        f"({args.features}); XRLinearClassifier(branching_factor=16, "
        f"max_leaf_size=100, beam_size={args.beam}, "
        f"weight_threshold={args.weight_threshold})",
        flush=True,
    )
    print_table_header(["random_state", *METRIC_COLUMNS, "fit s"])
    rows = []
    for seed in range(args.seeds):
        clf = XRLinearClassifier(
            branching_factor=16,
            max_leaf_size=100,
            beam_size=args.beam,
            weight_threshold=args.weight_threshold,
            random_state=seed,
        )
        start = time.perf_counter()
        clf.fit(d["X_train"], d["Y_train"])
        fit_s = time.perf_counter() - start
        m = protocol_report(d, clf.predict_topk(d["X_test"], k=10))
        rows.append([100 * m[c] for c in METRIC_COLUMNS])
        print_table_row([str(seed), *(f"{v:.2f}" for v in rows[-1]), f"{fit_s:.1f}"])
    values = np.asarray(rows)
    for name, stat in (
        ("mean", values.mean(0)),
        ("std", values.std(0, ddof=1)),
        ("min", values.min(0)),
        ("max", values.max(0)),
    ):
        print_table_row([name, *(f"{v:.2f}" for v in stat), ""])
    print(f"# load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
