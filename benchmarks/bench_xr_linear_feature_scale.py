"""XRLinearClassifier accuracy on differently scaled features of the bundled sample.

The LF-DebianPackages sample (:func:`skxmc.datasets.load_debian_packages_sample`)
with the protocol's TF-IDF (fitted on train documents + label texts), then the
same features times 30, ``TfidfVectorizer(norm=None)`` and raw counts. A
scale-robust ranker scores all four alike (issue 14)::

    python benchmarks/bench_xr_linear_feature_scale.py
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _common import (
    METRIC_COLUMNS,
    machine_line,
    print_table_header,
    print_table_row,
    protocol_report,
)
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

FEATURES = ("tfidf", "tfidf_x30", "tfidf_norm_none", "counts")


def features(data, kind: str):
    options = {"ngram_range": (1, 2), "min_df": 2, "dtype": np.float32}
    if kind == "counts":
        vectorizer = CountVectorizer(**options)
    else:
        vectorizer = TfidfVectorizer(
            sublinear_tf=True,
            norm=None if kind == "tfidf_norm_none" else "l2",
            **options,
        )
    vectorizer.fit(list(data.text_train) + list(data.label_text))
    X_train = vectorizer.transform(data.text_train).astype(np.float32)
    X_test = vectorizer.transform(data.text_test).astype(np.float32)
    if kind == "tfidf_x30":
        X_train, X_test = X_train * 30, X_test * 30
    return X_train, X_test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--features", nargs="+", default=list(FEATURES))
    args = parser.parse_args()

    from skxmc import XRLinearClassifier
    from skxmc.datasets import load_debian_packages_sample

    data = load_debian_packages_sample()
    d = {
        "Y_train": data.Y_train,
        "Y_test": data.Y_test,
        "filter_test": data.filter_test,
    }
    print(machine_line())
    print_table_header(["features", *METRIC_COLUMNS[:4], "weights kept", "fit s"])
    for kind in args.features:
        X_train, X_test = features(data, kind)
        clf = XRLinearClassifier(random_state=0)
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            clf.fit(X_train, data.Y_train)
        fit_s = time.perf_counter() - start
        for w in caught:
            if "weight_threshold" in str(w.message):
                print(f"# {kind}: {w.message}")
        report = protocol_report(d, clf.predict_topk(X_test, k=5))
        n_weights = sum(
            clf.model_.weights(t)[0].nnz for t in range(1, clf.label_tree_.n_levels + 1)
        )
        print_table_row(
            [
                kind,
                *(f"{100 * report[m]:.2f}" for m in METRIC_COLUMNS[:4]),
                str(n_weights),
                f"{fit_s:.1f}",
            ]
        )


if __name__ == "__main__":
    main()
