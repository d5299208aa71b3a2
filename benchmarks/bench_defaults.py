"""Each estimator's previous default against its current default, in one run.

On the LF-DebianPackages sample bundled with skxmc (4,000 train / 1,500 test
documents, 10,776 labels). A share of the training rows
(``--validation-fraction``, 10% by default; seed 0) is held out as a
validation split: every configuration is fitted once on the other rows and
scored on both the validation rows and the test rows. Settings are *chosen*
on the validation columns; the test columns are reported, never used to
choose. Metrics: P@1 and PSP@1 (LF protocol: filter pairs removed, Jain et al.
propensities A=0.55, B=1.5 on the fitting rows), fit time in seconds::

    python benchmarks/bench_defaults.py
    python benchmarks/bench_defaults.py --estimators decaf eclare

Each configuration row is one fit; ``(default)`` marks the configuration equal
to the estimator's current default (its ``get_params()`` on construction).
XR-Linear reads the sample's TF-IDF (1-2 grams as in the other benchmarks);
DECAF and ECLARE read raw text and label text; XR-Transformer and ELIAS read
raw text with the ``all-MiniLM-L6-v2`` encoder from ``<shared>/models``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import datetime, timezone

import numpy as np
import torch

from skxmc import (
    DecafClassifier,
    EclareClassifier,
    EliasClassifier,
    LabelInfo,
    XRLinearClassifier,
    XRTransformerClassifier,
)
from skxmc.datasets import load_debian_packages_sample
from skxmc.metrics import inverse_propensity, xmc_report

from _common import (  # isort: skip (benchmarks/ is the script's own folder)
    SHARED,
    machine_line,
    print_table_header,
    print_table_row,
    tfidf_features,
)

ENCODER = SHARED / "models" / "all-MiniLM-L6-v2-fp16"

#: The defaults before issue 16 (at 563ef91), spelled out: the parameters
#: that changed since. XR-Transformer and ELIAS fine-tuned every layer
#: (``trainable_layers=None`` now). XR-Transformer's ranker then read
#: ``normalize([normalize(tfidf), e])``, which no public parameter spells any
#: more; ``embedding_weight=1.0`` reads ``[normalize(tfidf), e]``, the same
#: features up to one global factor 1/sqrt(2) (issue 12 dropped the outer
#: normalisation). Its ranker prunes weights below 0.001 (spelled out, as
#: the one run that tried XR-Linear's 0.1 as the default lost on validation).
DECAF_OLD = {"fusion": "weights", "reranker": None, "n_epochs": 10}
XRT_OLD = {
    "pooling": "cls",
    "trainable_layers": None,
    "embedding_weight": 1.0,
    "weight_threshold": 0.001,
}
ELIAS_OLD = {"pooling": "cls", "trainable_layers": None, "reranker": None}

#: estimator name -> (class, [(row name, parameters)]): the previous default
#: first, then the current default (empty parameters: ``Estimator()`` with
#: only the fixed, data-dependent settings of :func:`fixed_params`).
CONFIGS = {
    "xr-linear": (XRLinearClassifier, [("unchanged", {})]),
    "decaf": (
        DecafClassifier,
        [
            ("previous default: weights fusion, 10+10 epochs", DECAF_OLD),
            ("learned fusion + xr-linear, 5+5 epochs", {}),
        ],
    ),
    "eclare": (
        EclareClassifier,
        [
            ("previous default: weights fusion, 10+10 epochs", DECAF_OLD),
            ("learned fusion + xr-linear, 5+5 epochs", {}),
        ],
    ),
    "xr-transformer": (
        XRTransformerClassifier,
        [
            (
                "previous default: cls pooling, all layers trained, embedding weight 1",
                XRT_OLD,
            ),
            ("pooling, trainable_layers, embedding_weight auto", {}),
        ],
    ),
    "elias": (
        EliasClassifier,
        [
            (
                "previous default: cls pooling, all layers trained, no re-ranker",
                ELIAS_OLD,
            ),
            ("pooling, trainable_layers auto + shortlist re-ranker", {}),
        ],
    ),
}
#: Fitted attributes that say what an ``"auto"`` parameter resolved to.
RESOLVED = ("pooling_", "trainable_layers_", "embedding_weight_")
TEXT_ESTIMATORS = {"decaf", "eclare"}
ENCODER_ESTIMATORS = {"xr-transformer", "elias"}


def split(data, validation_fraction: float, seed: int):
    """Fitting rows and validation rows of the training set."""
    n = data.Y_train.shape[0]
    order = np.random.default_rng(seed).permutation(n)
    n_val = round(validation_fraction * n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def fixed_params(name: str, encoder: str) -> dict:
    """Settings every row of ``name`` shares: the seed, the data's encoder, CPU."""
    fixed = {"random_state": 0}
    if name in ENCODER_ESTIMATORS:
        fixed["encoder"] = encoder
    if name in TEXT_ESTIMATORS or name in ENCODER_ESTIMATORS:
        fixed["device"] = "cpu"
    return fixed


def resolved(clf) -> str:
    """What the fitted ``clf``'s ``"auto"`` parameters resolved to."""
    parts = [
        f"{attr[:-1]}={getattr(clf, attr)}" for attr in RESOLVED if hasattr(clf, attr)
    ]
    return f" [{', '.join(parts)}]" if parts else ""


def is_default(cls, params: dict, fixed: dict) -> bool:
    """Whether ``cls(**fixed)`` already has ``params``."""
    defaults = cls(**fixed).get_params()
    return all(defaults[key] == value for key, value in params.items())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--estimators", nargs="+", choices=list(CONFIGS), default=list(CONFIGS)
    )
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-train",
        type=int,
        default=None,
        help="use only the first MAX_TRAIN training rows of the sample (then split)",
    )
    parser.add_argument("--encoder", default=str(ENCODER))
    args = parser.parse_args(argv)

    data = load_debian_packages_sample()
    if args.max_train is not None:
        for key in ("Y_train", "text_train", "filter_train"):
            data[key] = data[key][: args.max_train]
    fit_rows, val_rows = split(data, args.validation_fraction, args.seed)
    text_train = [data.text_train[i] for i in fit_rows]
    text_val = [data.text_train[i] for i in val_rows]
    text_test = list(data.text_test)
    Y_fit = data.Y_train[fit_rows]
    inv_p = inverse_propensity(Y_fit, A=0.55, B=1.5)
    targets = {
        "val": (data.Y_train[val_rows], data.filter_train[val_rows]),
        "test": (data.Y_test, data.filter_test),
    }
    tfidf = tfidf_features(
        {
            "text_train": text_train,
            "text_test": text_val + text_test,
            "label_text": data.label_text,
        }
    )
    X_fit, X_rest = tfidf["X_train"], tfidf["X_test"]
    X_val, X_test = X_rest[: len(val_rows)], X_rest[len(val_rows) :]

    load = os.getloadavg()
    print(f"# {__doc__.splitlines()[0]}")
    print(f"# date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(machine_line() + f", torch {torch.__version__} ({torch.get_num_threads()} "
          f"threads), CPU only")  # fmt: skip
    print(f"# load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"({os.cpu_count()} cores, shared with other jobs)")  # fmt: skip
    extra = "" if args.max_train is None else f" --max-train {args.max_train}"
    extra += f" --validation-fraction {args.validation_fraction}"
    print(f"# command: python benchmarks/bench_defaults.py --estimators "
          f"{' '.join(args.estimators)}{extra}")  # fmt: skip
    print(
        f"# LF-DebianPackages sample: {len(fit_rows)} fitting rows, "
        f"{len(val_rows)} validation rows (of the training set, seed {args.seed}), "
        f"{len(text_test)} test rows, {data.n_labels} labels; "
        f"platform {platform.platform()}"
    )
    for name in args.estimators:
        previous = CONFIGS[name][1][0][1]
        print(f"# {name}: previous default = current default with {previous}, "
              f"fixed {fixed_params(name, '<encoder>')}")  # fmt: skip
    print_table_header(
        [
            "estimator",
            "setting",
            "val P@1",
            "val PSP@1",
            "test P@1",
            "test PSP@1",
            "test P@5",
            "test PSP@5",
            "fit s",
        ]
    )
    for name in args.estimators:
        cls, rows = CONFIGS[name]
        fixed = fixed_params(name, args.encoder)
        for setting, params in rows:
            clf = cls(**fixed, **params)
            start = time.perf_counter()
            if name == "xr-linear":
                clf.fit(X_fit, Y_fit)
                inputs = {"val": X_val, "test": X_test}
            elif name in TEXT_ESTIMATORS:
                clf.fit(text_train, Y_fit, label_info=LabelInfo(text=data.label_text))
                inputs = {"val": text_val, "test": text_test}
            else:
                clf.fit(text_train, Y_fit)
                inputs = {"val": text_val, "test": text_test}
            fit_s = time.perf_counter() - start
            reports = {}
            for part, (Y, F) in targets.items():
                topk = clf.predict_topk(inputs[part], k=5)
                reports[part] = xmc_report(
                    Y, topk, k=(1, 5), inv_propensity=inv_p, filter=F
                )
            mark = resolved(clf)
            mark += " (default)" if is_default(cls, params, fixed) else ""
            cells = [
                f"{100 * reports[part][metric]:.2f}"
                for part, metric in [
                    ("val", "P@1"),
                    ("val", "PSP@1"),
                    ("test", "P@1"),
                    ("test", "PSP@1"),
                    ("test", "P@5"),
                    ("test", "PSP@5"),
                ]
            ]
            print_table_row([name, setting + mark, *cells, f"{fit_s:.0f}"])
            stages = getattr(clf, "fit_times_", {})
            if stages:
                parts = ", ".join(f"{k} {v:.0f}" for k, v in stages.items())
                print(f"# {name} fit stages (s): {parts}")
    load = os.getloadavg()
    print(f"# load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
