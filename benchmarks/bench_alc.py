"""The dual encoder with each coverage loss: contrastive, TCM, ALC, ALC+TCM.

Same encoder (all-MiniLM-L6-v2), schedule, seed and data for every loss; an
untrained (zero-shot) row as reference. The training rows are split (seed 0)
into a fit part and ``--validation`` held-out rows; the thresholds for the
target precisions 0.8 and 0.9 are chosen on the held-out rows
(:func:`skxmc.metrics.precision_threshold`, top-1 rule) and applied to the
test rows (:func:`skxmc.metrics.coverage_at_precision`). Columns: P@1, P@5,
PSP@1, PSP@5 (LF filter, propensities A=0.55, B=1.5 on the training rows),
C@1 and the precision reached on test at each target, the oracle C@1 at 0.9
(threshold tuned on test), OPIS of the test top-5 (far_range (1e-3, 1e-1)),
fit seconds.

A CPU smoke run on the first rows of the shipped LF-DebianPackages sample,
with the label space cut to the labels of those rows (the protocol runs all
42,242 labels on a GPU)::

    PYTHONPATH=. python benchmarks/bench_alc.py --max-train 600 --max-test 300
"""

from __future__ import annotations

import argparse
import datetime
import os
import time
import warnings

import numpy as np

from skxmc import DualEncoderClassifier, LabelInfo
from skxmc.exceptions import XMCDataWarning
from skxmc.metrics import (
    coverage_at_precision,
    inverse_propensity,
    opis,
    precision_threshold,
    xmc_report,
)

from _common import (  # isort: skip (benchmarks/ is the script's own folder)
    SHARED,
    load_debian_sample,
    machine_line,
    print_table_header,
    print_table_row,
)

ENCODER = SHARED / "models" / "all-MiniLM-L6-v2-fp16"
TARGETS = (0.8, 0.9)


def restrict(d: dict, max_train: int, max_test: int) -> dict:
    """First rows, and only the labels with a positive among them."""
    Y_train, Y_test = d["Y_train"][:max_train], d["Y_test"][:max_test]
    used = np.flatnonzero(
        (np.asarray(Y_train.sum(0)).ravel() + np.asarray(Y_test.sum(0)).ravel()) > 0
    )
    return {
        "text_train": list(d["text_train"][:max_train]),
        "text_test": list(d["text_test"][:max_test]),
        "label_text": [d["label_text"][j] for j in used],
        "Y_train": Y_train[:, used].tocsr(),
        "Y_test": Y_test[:, used].tocsr(),
        "filter_test": d["filter_test"][:max_test][:, used].tocsr(),
    }


def run(loss: str, d: dict, fit_rows, val_rows, args) -> list[str]:
    clf = DualEncoderClassifier(
        encoder=args.encoder,
        max_length=args.max_length,
        label_max_length=args.max_length,
        loss=loss if loss != "zero-shot" else "contrastive",
        n_epochs=0 if loss == "zero-shot" else args.epochs,
        batch_size=args.batch_size,
        cluster_size=args.cluster_size,
        n_hard_negatives=args.hard_negatives,
        learning_rate=args.lr,
        inference_batch_size=128,
        device="cpu",
        top_k=5,
        random_state=args.seed,
    )
    texts = d["text_train"]
    start = time.perf_counter()
    clf.fit(
        [texts[i] for i in fit_rows],
        d["Y_train"][fit_rows],
        label_info=LabelInfo(text=d["label_text"]),
    )
    fit_s = time.perf_counter() - start
    val = clf.predict_topk([texts[i] for i in val_rows], 5)
    test = clf.predict_topk(d["text_test"], 5)
    report = xmc_report(
        d["Y_test"], test, k=(1, 5), inv_propensity=d["inv_p"], filter=d["filter_test"]
    )
    cells = [loss] + [
        f"{100 * report[m]:.2f}" for m in ("P@1", "P@5", "PSP@1", "PSP@5")
    ]
    for target in TARGETS:
        tau = precision_threshold(d["Y_train"][val_rows], val, target_precision=target)
        got = coverage_at_precision(
            d["Y_test"], test, threshold=tau, filter=d["filter_test"]
        )
        cells += [f"{100 * got.coverage:.1f}", f"{100 * got.precision:.1f}"]
    oracle = coverage_at_precision(
        d["Y_test"], test, target_precision=0.9, filter=d["filter_test"]
    )
    cells += [
        f"{100 * oracle.coverage:.1f}",
        f"{opis(d['Y_test'], test):.4f}",
        f"{fit_s:.0f}",
    ]
    losses = ", ".join(f"{v:.4f}" for v in clf.loss_curve_)
    print(f"# {loss}: epoch losses [{losses}], fit parts {clf.fit_times_}", flush=True)
    return cells


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-train", type=int, default=600)
    parser.add_argument("--max-test", type=int, default=300)
    parser.add_argument("--validation", type=float, default=0.2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--cluster-size", type=int, default=8)
    parser.add_argument("--hard-negatives", type=int, default=1)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--encoder", default=str(ENCODER))
    parser.add_argument(
        "--losses",
        nargs="+",
        default=["zero-shot", "contrastive", "tcm", "alc", "alc+tcm"],
    )
    args = parser.parse_args()
    # labels of the test rows only: kept, reachable through their text
    warnings.simplefilter("ignore", XMCDataWarning)
    d = restrict(load_debian_sample(), args.max_train, args.max_test)
    d["inv_p"] = inverse_propensity(d["Y_train"], A=0.55, B=1.5)
    n = len(d["text_train"])
    order = np.random.default_rng(0).permutation(n)
    n_val = round(args.validation * n)
    val_rows, fit_rows = np.sort(order[:n_val]), np.sort(order[n_val:])
    print(f"# date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"# load average at start: {os.getloadavg()}")
    print(machine_line())
    print(
        f"# LF-DebianPackages sample: {len(fit_rows)} fit + {len(val_rows)} held-out "
        f"train rows, {len(d['text_test'])} test rows, {len(d['label_text'])} labels "
        f"(those of these rows); {args}"
    )
    columns = ["loss", "P@1", "P@5", "PSP@1", "PSP@5"]
    for t in TARGETS:
        columns += [f"C@1 (p={t})", f"prec. (p={t})"]
    columns += ["oracle C@1 (p=0.9)", "OPIS", "fit s"]
    print_table_header(columns)
    for loss in args.losses:
        print_table_row(run(loss, d, fit_rows, val_rows, args))
    print(f"# load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
