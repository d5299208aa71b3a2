"""DECAF with token embeddings distilled from a pretrained encoder (issue 12).

``DecafClassifier(token_init=...)`` starts the bag-of-words token table from
static term embeddings of a frozen sentence encoder
(:func:`skxmc.nn.static_term_embeddings`: every one of the 200,000 TF-IDF
terms encoded alone by all-MiniLM-L6-v2, PCA to ``embedding_dim``, unit
rows) instead of random vectors. Everything else is DECAF "Run D" of
``results/decaf_cpu.txt`` (2+2 epochs, learned fusion, XR-Linear re-ranker).

The choice is made on validation rows only: both variants are fitted on 80%
of the LF-DebianPackages training rows (seed 0) and scored on the other 20%
(P@1/3/5, PSP@1/3/5 with the training rows' propensities); the test set is
read only with ``--test``, for the variant the validation rows chose, fitted
on all training rows::

    python benchmarks/bench_decaf_token_init.py --memory /tmp/skxmc-memory
    python benchmarks/bench_decaf_token_init.py --memory /tmp/skxmc-memory \\
        --variants minilm --test

``--memory`` caches the encoder's term vectors across runs (joblib). A
zero-shot probe of the static embeddings alone is printed first: documents
and labels as the TF-IDF-weighted sums of their terms' vectors, ranked by
cosine (no training).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone

import numpy as np
from sklearn.preprocessing import normalize

from skxmc import DecafClassifier, LabelInfo
from skxmc.nn import static_term_embeddings

from _common import (  # isort: skip (benchmarks/ is the script's own folder)
    DECAF_RUN_D,
    METRIC_COLUMNS,
    SHARED,
    load_benchmark_data,
    machine_line,
    print_table_header,
    print_table_row,
    protocol_report,
)

ENCODER = SHARED / "models" / "all-MiniLM-L6-v2-fp16"
RUN_D = {**DECAF_RUN_D, "random_state": 0}
K = 10


def zero_shot(E, X, Z, k=K):
    """Top-k labels by cosine of TF-IDF-weighted sums of term vectors."""
    D, L = normalize(X @ E), normalize(Z @ E)
    scores = np.empty((D.shape[0], k), np.float32)
    ids = np.empty((D.shape[0], k), np.int64)
    for s in range(0, D.shape[0], 2000):
        S = D[s : s + 2000] @ L.T
        top = np.argpartition(-S, k, axis=1)[:, :k]
        v = np.take_along_axis(S, top, 1)
        order = np.argsort(-v, axis=1)
        ids[s : s + 2000] = np.take_along_axis(top, order, 1)
        scores[s : s + 2000] = np.take_along_axis(v, order, 1)
    return scores, ids


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default=str(ENCODER))
    parser.add_argument("--memory", default=None, help="joblib cache folder")
    variants = ["random", "minilm"]
    parser.add_argument("--variants", nargs="+", choices=variants, default=variants)
    parser.add_argument(
        "--test", action="store_true", help="fit on all rows, score the test set"
    )
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"# date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}")
    print(machine_line())
    print(f"# load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"# command: python {' '.join(sys.argv)}")
    d = load_benchmark_data("debian")
    start = time.perf_counter()
    E = static_term_embeddings(
        args.encoder,
        d["feature_names"],
        n_components=RUN_D["embedding_dim"],
        memory=args.memory,
        random_state=0,
    )
    print(f"# static term embeddings {E.shape}: {time.perf_counter() - start:.0f} s")
    n = d["X_train"].shape[0]
    val = np.sort(np.random.default_rng(0).choice(n, size=n // 5, replace=False))
    fit_rows = np.setdiff1d(np.arange(n), val)
    if args.test:
        split = "test"
        X_fit, Y_fit, X_eval = d["X_train"], d["Y_train"], d["X_test"]
        ref = d
    else:
        split = "validation"
        X_fit, Y_fit = d["X_train"][fit_rows], d["Y_train"][fit_rows]
        X_eval = d["X_train"][val]
        ref = {"Y_train": Y_fit, "Y_test": d["Y_train"][val], "filter_test": None}
    print(f"# {split}: fitted on {X_fit.shape[0]} rows, scored on {X_eval.shape[0]}")
    print_table_header(["split", "token init", *METRIC_COLUMNS, "fit s"])
    if not args.test:
        m = protocol_report(ref, zero_shot(E, X_eval, d["label_features"]))
        cells = [split, "minilm static, zero-shot (no training)"]
        print_table_row([*cells, *(f"{100 * m[c]:.2f}" for c in METRIC_COLUMNS), "0"])
    for variant in args.variants:
        clf = DecafClassifier(
            **RUN_D, token_init=E if variant == "minilm" else None, verbose=args.verbose
        )
        start = time.perf_counter()
        clf.fit(X_fit, Y_fit, label_info=LabelInfo(features=d["label_features"]))
        fit_s = time.perf_counter() - start
        m = protocol_report(ref, clf.predict_topk(X_eval, k=K))
        cells = [split, variant, *(f"{100 * m[c]:.2f}" for c in METRIC_COLUMNS)]
        print_table_row([*cells, f"{fit_s:.0f}"])
    print(f"# load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
