"""TunedThresholdXMC on LF-DebianPackages: ``predict()`` at a tuned threshold.

For each estimator, ``TunedThresholdXMC(estimator, target_precision=t,
k=k, top_k=n, calibration=c, random_state=0)`` is fitted on the full training
set (20% of the training rows held out to tune the threshold, the estimator
fitted on the other 80%), for t in 0.8, 0.9, c in None and "isotonic", and
(k, n) in (1, 10) (threshold tuned for coverage at 1, ``predict`` returns up to
10 labels), (None, 10) (tuned for the micro-precision of the top-10 label sets
``predict`` returns) and (1, 1) (tuned for coverage at 1, ``predict`` returns
at most the top-1 label)::

    python benchmarks/bench_thresholds.py --models xr-linear decaf

The estimator is fitted once per model: the first TunedThresholdXMC fits it;
the other settings wrap that fit in :class:`sklearn.frozen.FrozenEstimator`
(its ``fit`` does nothing) with the same ``random_state``, hence the same
held-out rows, which the fit never saw (checked), so each setting costs only
its tuning ("tune s").

Choice on the validation rows only: per target, the setting whose
``predict()`` label sets on the held-out rows reach the target
micro-precision and give a label to the most held-out rows (marked "<-").
With ``--confidence c`` every setting tunes its threshold with
``TunedThresholdXMC(confidence=c)`` and "reach" means that the one-sided
Clopper-Pearson lower bound (level ``c``) of the held-out micro-precision
reaches the target (``skxmc.metrics.precision_lower_bound``), so that the
test precision falls short with probability about ``1 - c`` rather than about
one half::

    python benchmarks/bench_thresholds.py --models decaf --load-dir D --confidence 0.95

Test columns for every setting:

- ``micro-P``: micro-precision of all the labels ``predict()`` returns;
  ``rows``: share of test rows with at least one label; ``labels/row``:
  mean number of labels per row (all rows). The LF filter protocol of the
  other benchmarks (``xmc_report(filter=filter_test)``: filter pairs skipped
  among the retrieved top-10 and removed from the truth) is applied to the
  label sets the same way: a predicted (row, label) pair of the filter is
  dropped from the prediction and from the truth. ``micro-P raw`` is without
  the filter;
- ``C@1``/``P(C@1)``: ``coverage_at_precision`` with the tuned threshold
  (share of rows whose top-1 score passes it, and the precision@1 among
  them), filter applied; ``P@1`` of the (calibrated) top-10.

The label sets are computed from the top-``top_k`` a setting's ``predict``
reads (one call per model and width, shared by the settings) and the setting's
calibrator and threshold; ``C@1`` and ``P@1`` are read from the same top-k.
For the validation-chosen settings the script also calls ``predict()`` itself
and prints the number of entries where it differs from the label sets scored
(0 expected). A deep model's top-1 at ``k=1`` need not be the first of its
top 10 (DecafClassifier's differs on a few rows), hence the separate
widths. The held-out columns use the top-k the tuning itself read. Data are
read from ``<repo>/../shared/data`` (or
``$SKXMC_SHARED_DIR/data``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import platform
import sys
import time
from datetime import datetime, timezone

import numpy as np
import scipy.sparse as sp
from sklearn.frozen import FrozenEstimator

from skxmc import LabelInfo, TunedThresholdXMC
from skxmc.metrics import coverage_at_precision, precision_lower_bound

from _common import (  # isort: skip (benchmarks/ is the script's own folder)
    DECAF_RUN_D,
    load_benchmark_data,
    print_table_header,
    print_table_row,
    protocol_report,
    subset,
)

TARGETS = (0.8, 0.9)
#: (k, top_k): the labels per row the threshold is tuned for, the labels per
#: row ``predict`` may return
KS = ((1, 10), (None, 10), (1, 1))
CALIBRATIONS = (None, "isotonic")
TOP_K = 10

COLUMNS = [
    "model", "target", "k", "top_k", "calibration", "chosen", "threshold",
    "val micro-P", "val rows", "test micro-P", "test rows", "labels/row",
    "micro-P raw", "C@1", "P(C@1)", "P@1", "fit s", "tune s",
]  # fmt: skip


def make_estimator(name: str, args):
    """The estimator of one model name (random_state=0, top_k=10)."""
    if name == "xr-linear":
        from skxmc import XRLinearClassifier

        # the label-text variant of bench_xr_linear.py (BENCHMARKS.md anchor)
        return XRLinearClassifier(
            branching_factor=16,
            max_leaf_size=100,
            negative_sampling="tfn+man",
            label_embedding="pifa_text_concat",
            beam_size=20,
            top_k=TOP_K,
            random_state=0,
        )
    from skxmc import DecafClassifier

    # Run D of benchmarks/results/decaf_cpu.txt
    return DecafClassifier(
        **DECAF_RUN_D, top_k=TOP_K, verbose=args.verbose, random_state=0
    )


class _MemoTopk(FrozenEstimator):
    """A frozen fit whose ``predict_topk`` answers a repeated question (same
    rows, same ``k``) from memory: the settings share the held-out rows, and a
    deep model's top-k of them takes minutes on shared cores."""

    def predict_topk(self, X, k):
        digest = hashlib.sha256()
        for part in (X.indptr, X.indices, X.data):
            digest.update(np.ascontiguousarray(part).tobytes())
        key = (X.shape, digest.hexdigest(), k)
        memo = self.__dict__.setdefault("_memo", {})
        if key not in memo:
            memo[key] = self.estimator.predict_topk(X, k)
        return memo[key]


def label_sets(clf, scores, indices) -> sp.csr_matrix:
    """What ``clf.predict`` returns for raw top-k ``(scores, indices)`` of its
    estimator (best first): the first ``clf.top_k`` retrieved labels whose
    (calibrated) score passes ``threshold_``, as a 0/1 CSR matrix."""
    scores, indices = scores[:, : clf.top_k], indices[:, : clf.top_k]
    if clf.calibrator_ is not None:
        scores = clf.calibrator_.transform(scores)
    keep = (indices >= 0) & (scores > clf.threshold_)
    rows = np.nonzero(keep)[0]
    return sp.csr_matrix(
        (np.ones(rows.size, dtype=np.float32), (rows, indices[keep])),
        shape=(indices.shape[0], clf.n_labels_),
    )


def set_metrics(pred, Y, filter=None) -> dict:
    """Micro-precision, share of rows with a label and labels per row of the
    0/1 label sets ``pred`` against ``Y``; ``filter`` pairs dropped from both."""
    pred = sp.csr_matrix(pred, dtype=np.float32)
    Y = sp.csr_matrix(Y, dtype=np.float32)
    if filter is not None:
        F = sp.csr_matrix(filter, dtype=np.float32)
        F.data[:] = 1
        pred = (pred - pred.multiply(F)).tocsr()
        Y = (Y - Y.multiply(F)).tocsr()
        pred.eliminate_zeros()
        Y.eliminate_zeros()
    n_pred = pred.nnz
    hits = pred.multiply(Y).nnz
    return {
        "hits": hits,
        "n_pred": n_pred,
        "micro_p": hits / n_pred if n_pred else float("nan"),
        "rows": float(np.mean(np.diff(pred.indptr) > 0)),
        "per_row": n_pred / pred.shape[0],
    }


def _reaches(metrics: dict, target: float, confidence) -> bool:
    """The held-out label sets reach the target (their precision, or with a
    ``confidence`` its lower bound)."""
    if not metrics["n_pred"]:
        return False
    if confidence is None:
        return metrics["micro_p"] >= target
    bound = precision_lower_bound(metrics["hits"], metrics["n_pred"], confidence)
    return bool(bound >= target)


def run_model(name: str, d: dict, args):
    """Fit once, tune every setting, yield one table row per setting."""
    label_info = LabelInfo(features=d["label_features"])
    X, Y = d["X_train"], d["Y_train"]
    first = TunedThresholdXMC(
        make_estimator(name, args),
        target_precision=TARGETS[0],
        k=KS[1][0],
        calibration=CALIBRATIONS[0],
        top_k=TOP_K,
        random_state=0,
    )
    if args.load_dir:
        with open(f"{args.load_dir}/{name}_fit.pkl", "rb") as f:
            first = pickle.load(f)
        fit_s = float("nan")
    else:
        start = time.perf_counter()
        first.fit(X, Y, label_info=label_info)
        fit_s = time.perf_counter() - start
    val = first.validation_indices_
    print(f"# {name}: fit {fit_s:.0f} s ({len(val)} rows held out)", flush=True)
    if args.save_dir:
        with open(f"{args.save_dir}/{name}_fit.pkl", "wb") as f:
            pickle.dump(first, f, protocol=4)
    frozen = _MemoTopk(first.estimator_)
    start = time.perf_counter()
    frozen.predict_topk(X[val], k=TOP_K)
    frozen.predict_topk(d["X_test"], k=TOP_K)
    print(
        f"# {name}: top-{TOP_K} of held-out + test rows in "
        f"{time.perf_counter() - start:.0f} s",
        flush=True,
    )
    for target in TARGETS:
        results = []
        for k, top_k in KS:
            for calibration in CALIBRATIONS:
                clf = TunedThresholdXMC(
                    frozen,
                    target_precision=target,
                    k=k,
                    calibration=calibration,
                    top_k=top_k,
                    confidence=args.confidence,
                    random_state=0,
                )
                start = time.perf_counter()
                clf.fit(X, Y, label_info=label_info)
                tune_s = time.perf_counter() - start
                width = max(top_k if k is None else k, top_k)
                # same held-out rows: the frozen fit never saw them
                assert np.array_equal(clf.validation_indices_, val)
                if (target, k, top_k, calibration, args.confidence) == (
                    TARGETS[0], *KS[1], CALIBRATIONS[0], None
                ):  # fmt: skip
                    assert clf.threshold_ == first.threshold_
                results.append(
                    {
                        "clf": clf,
                        "k": k,
                        "top_k": top_k,
                        "calibration": calibration,
                        "tune_s": tune_s,
                        # the top-k the tuning read (memo: no new prediction)
                        "val": set_metrics(
                            label_sets(clf, *frozen.predict_topk(X[val], k=width)),
                            Y[val],
                        ),
                    }
                )
        # the choice, on the held-out rows only
        reaching = [r for r in results if _reaches(r["val"], target, args.confidence)]
        chosen = max(reaching, key=lambda r: r["val"]["rows"]) if reaching else None
        for r in results:
            clf = r["clf"]
            # the top-k predict() reads: a model's top-1 at k=1 may differ
            # from the first of its top 10 (DECAF's does on a few rows)
            test_topk = frozen.predict_topk(d["X_test"], k=clf.top_k)
            pred = label_sets(clf, *test_topk)
            if r is chosen and args.check_predict:
                # predict() itself returns these label sets
                n_diff = (clf.predict(d["X_test"]) != pred).nnz
                print(f"# predict() vs the label sets scored: {n_diff} differences")
            test = set_metrics(pred, d["Y_test"], d["filter_test"])
            raw = set_metrics(pred, d["Y_test"])
            scores, indices = test_topk
            if clf.calibrator_ is not None:
                scores = clf.calibrator_.transform(scores)
            c1 = coverage_at_precision(
                d["Y_test"],
                (scores, indices),
                threshold=clf.threshold_,
                filter=d["filter_test"],
            )
            p1 = protocol_report(d, (scores, indices))["P@1"]
            yield [
                name,
                f"{target}",
                "1" if r["k"] == 1 else "None",
                str(r["top_k"]),
                str(r["calibration"]),
                "<-" if r is chosen else "",
                f"{clf.threshold_:.4g}",
                f"{100 * r['val']['micro_p']:.2f}",
                f"{100 * r['val']['rows']:.2f}",
                f"{100 * test['micro_p']:.2f}",
                f"{100 * test['rows']:.2f}",
                f"{test['per_row']:.2f}",
                f"{100 * raw['micro_p']:.2f}",
                f"{100 * c1.coverage:.2f}",
                f"{100 * c1.precision:.2f}",
                f"{100 * p1:.2f}",
                f"{fit_s:.0f}",
                f"{r['tune_s']:.1f}",
            ]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", choices=["xr-linear", "decaf"], default=["xr-linear"]
    )
    parser.add_argument("--data", choices=["debian", "debian-sample"], default="debian")
    parser.add_argument("--max-train", type=int, default=None)
    parser.add_argument("--max-test", type=int, default=None)
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument(
        "--no-check-predict",
        dest="check_predict",
        action="store_false",
        help="skip calling predict() on the test rows for the chosen settings",
    )
    parser.add_argument(
        "--confidence",
        type=float,
        default=None,
        help="TunedThresholdXMC(confidence=...) for every setting, and the choice "
        "on the lower bound of the held-out precision",
    )
    parser.add_argument(
        "--save-dir", default=None, help="pickle each first TunedThresholdXMC fit here"
    )
    parser.add_argument(
        "--load-dir",
        default=None,
        help="load the first fits pickled by --save-dir instead of fitting",
    )
    args = parser.parse_args(argv)
    print(f"# date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}")
    print(
        f"# machine: {platform.machine()}, {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}, load average {_load()} at start"
    )
    print(f"# command: python {' '.join(sys.argv)}")
    start = time.perf_counter()
    d = subset(load_benchmark_data(args.data), args.max_train, args.max_test)
    print(
        f"# {args.data}: {d['X_train'].shape[0]} train / {d['X_test'].shape[0]} "
        f"test docs, {d['Y_train'].shape[1]} labels, {d['X_train'].shape[1]} "
        f"TF-IDF features (load {time.perf_counter() - start:.0f} s)",
        flush=True,
    )
    print_table_header(COLUMNS)
    for name in args.models:
        for row in run_model(name, d, args):
            print_table_row(row)
        print(f"# after {name}: load average {_load()}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
