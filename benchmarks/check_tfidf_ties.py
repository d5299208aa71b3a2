"""How much the benchmark TF-IDF depends on the machine's sort kernel.

BENCHMARKS.md's TF-IDF keeps the 200,000 terms of highest count
(``TfidfVectorizer(max_features=200_000)``); scikit-learn ranks them with
NumPy's default ``argsort``, whose order of equal counts depends on the SIMD
sort kernel NumPy picks for the CPU. This prints how many terms tie at the
cut, how many of the kept terms change between two tie orders (NumPy's
default and a stable sort, i.e. alphabetical), and, with ``--fit``, the
first epoch losses and test accuracy of DECAF (Run D settings, ``--n-epochs``
per stage) on the features of one tie order::

    PYTHONPATH=. python benchmarks/check_tfidf_ties.py
    PYTHONPATH=. python benchmarks/check_tfidf_ties.py --fit --vocabulary stable

``--vocabulary default`` is scikit-learn's own fit (this machine's tie order),
``stable`` is :func:`skxmc.utils.fit_stable_vocabulary` (the same terms on
every machine).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys
import time
from datetime import datetime, timezone

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer

from skxmc import DecafClassifier, LabelInfo

from _common import (  # isort: skip (benchmarks/ is the script's own folder)
    DECAF_RUN_D,
    METRIC_COLUMNS,
    benchmark_vectorizer,
    load_lf_debian,
    protocol_report,
    tfidf_features,
)

LIMIT = 200_000


def tie_report(corpus) -> None:
    """Counts at the cut, and the kept terms under two tie orders."""
    params = benchmark_vectorizer().get_params()
    counter = CountVectorizer(
        ngram_range=params["ngram_range"], min_df=params["min_df"], dtype=np.int64
    )
    totals = np.asarray(counter.fit_transform(corpus).sum(axis=0)).ravel()
    cut = np.sort(totals)[::-1][LIMIT - 1]
    kept = {
        kind: set((-totals).argsort(kind=kind)[:LIMIT].tolist())
        for kind in ("quicksort", "stable")
    }
    print(
        f"terms (min_df 2): {len(totals)}; count at place {LIMIT}: {cut}; terms "
        f"with that count: {int((totals == cut).sum())}, of which kept: "
        f"{LIMIT - int((totals > cut).sum())}"
    )
    print(
        "kept terms that differ between NumPy's default argsort and a stable "
        f"one: {len(kept['quicksort'] ^ kept['stable']) // 2}"
    )


def features(d: dict, vocabulary: str) -> dict:
    """The benchmark TF-IDF of ``d`` with one tie order at the cut."""
    if vocabulary == "stable":
        d = tfidf_features(d)
    else:  # scikit-learn's own cut: this machine's tie order
        d = tfidf_features(d, fit=lambda vectorizer, texts: vectorizer.fit(texts))
    names = d["feature_names"]
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
    print(f"vocabulary {vocabulary}: {len(names)} terms, sha256 {digest}", flush=True)
    return d


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="also fit DECAF")
    parser.add_argument(
        "--vocabulary", choices=["default", "stable"], default="default"
    )
    parser.add_argument("--n-epochs", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as cpu
    except ImportError:  # NumPy 1.x
        from numpy.core._multiarray_umath import __cpu_features__ as cpu

    simd = [name for name in ("AVX512_SKX", "AVX2") if cpu.get(name)]
    print(f"# date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}")
    print(
        f"# machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"numpy {np.__version__} (SIMD: {', '.join(simd) or 'none'}), "
        f"load average {'/'.join(f'{v:.1f}' for v in os.getloadavg())}"
    )
    print(f"# command: python {' '.join(sys.argv)}", flush=True)
    d = load_lf_debian()
    if not args.fit:
        tie_report(list(d["text_train"]) + list(d["label_text"]))
        return
    d = features(d, args.vocabulary)
    clf = DecafClassifier(
        **{**DECAF_RUN_D, "n_epochs": args.n_epochs}, random_state=0, top_k=10
    )
    start = time.perf_counter()
    clf.fit(
        d["X_train"], d["Y_train"], label_info=LabelInfo(features=d["label_features"])
    )
    fit_s = time.perf_counter() - start
    report = protocol_report(d, clf.predict_topk(d["X_test"], 10))
    losses = ", ".join(f"{v:.4f}" for v in clf.loss_curve_)
    print(f"epoch losses: {losses}; fit {fit_s:.0f} s")
    print("| vocabulary | " + " | ".join(METRIC_COLUMNS) + " |")
    print("|---" * (len(METRIC_COLUMNS) + 1) + "|")
    row = " | ".join(f"{100 * report[c]:.2f}" for c in METRIC_COLUMNS)
    print(f"| {args.vocabulary} | {row} |", flush=True)


if __name__ == "__main__":
    main()
