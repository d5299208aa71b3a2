"""What every benchmark script shares: data per BENCHMARKS.md, the table printer."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from skxmc.datasets import load_xc_repo

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SKXMC_SHARED_DIR", ROOT.parent / "shared"))
# Columns of xmc_report printed by the accuracy benchmarks, as percentages.
METRIC_COLUMNS = ["P@1", "P@3", "P@5", "nDCG@5", "PSP@1", "PSP@3", "PSP@5"]


def load_benchmark_data(name: str) -> dict:
    """Features per BENCHMARKS.md: TF-IDF for LF data, L2-normalised BoW for Mulan.

    ``name`` is "debian" (LF-DebianPackages, with raw and label text),
    "bibtex" or "delicious".
    """
    if name == "debian":
        data = load_xc_repo(SHARED / "data" / "LF-DebianPackages")
        vectorizer = TfidfVectorizer(
            sublinear_tf=True,
            ngram_range=(1, 2),
            min_df=2,
            max_features=200_000,
            dtype=np.float32,
        )
        vectorizer.fit(list(data.text_train) + list(data.label_text))
        return {
            "X_train": vectorizer.transform(data.text_train),
            "X_test": vectorizer.transform(data.text_test),
            "Y_train": data.Y_train,
            "Y_test": data.Y_test,
            "label_features": vectorizer.transform(data.label_text),
            "filter_test": data.filter_test,
            "text_train": data.text_train,
            "text_test": data.text_test,
            "label_text": data.label_text,
        }
    folder = {"bibtex": "Bibtex", "delicious": "Delicious"}[name]
    data = load_xc_repo(SHARED / "data" / folder)
    return {
        "X_train": normalize(data.X_train).astype(np.float32),
        "X_test": normalize(data.X_test).astype(np.float32),
        "Y_train": data.Y_train,
        "Y_test": data.Y_test,
        "label_features": None,
        "filter_test": None,
    }


def subset(d: dict, max_train: int | None, max_test: int | None) -> dict:
    """The first ``max_train`` / ``max_test`` rows of a benchmark data set."""
    d = dict(d)
    if max_train is not None:
        for key in ("X_train", "Y_train", "text_train"):
            if d.get(key) is not None:
                d[key] = d[key][:max_train]
    if max_test is not None:
        for key in ("X_test", "Y_test", "text_test", "filter_test"):
            if d.get(key) is not None:
                d[key] = d[key][:max_test]
    return d


def protocol_report(d: dict, topk) -> dict:
    """BENCHMARKS.md metrics of a ``(scores, indices)`` pair on ``d``'s test set.

    LF filter pairs removed (when ``d`` has them), PSP with Jain et al.
    propensities A=0.55, B=1.5 on the training labels (computed once per data
    set and kept in ``d``).
    """
    from skxmc.metrics import inverse_propensity, xmc_report

    if "inv_propensity" not in d:
        d["inv_propensity"] = inverse_propensity(d["Y_train"], A=0.55, B=1.5)
    return xmc_report(
        d["Y_test"],
        topk,
        k=(1, 3, 5),
        inv_propensity=d["inv_propensity"],
        filter=d["filter_test"],
    )


def run_xr_linear_baseline(d: dict, *, beam_size: int, k: int) -> dict:
    """Fit and time the XRLinearClassifier row that deep benchmarks print beside."""
    import time

    from skxmc import XRLinearClassifier

    clf = XRLinearClassifier(
        branching_factor=16, max_leaf_size=100, beam_size=beam_size, random_state=0
    )
    start = time.perf_counter()
    clf.fit(d["X_train"], d["Y_train"])
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    topk = clf.predict_topk(d["X_test"], k=k)
    predict_s = time.perf_counter() - start
    return {"topk": topk, "fit_s": fit_s, "predict_s": predict_s}


def machine_line() -> str:
    return (
        f"# machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )


def print_table_header(columns: list[str]) -> None:
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns), flush=True)


def print_table_row(cells: list[str]) -> None:
    print("| " + " | ".join(cells) + " |", flush=True)
