"""Labels added after the fit (``add_labels``) under DECAF's default scoring.

DECAF's default scoring is a learned fusion (gradient-boosted trees) over the
network's label and cluster scores, the label-text cosine, the label frequency
and the XR-Linear re-ranker's score. A label added by its text has no
training frequency and no re-ranker model: it gets frequency 0 and the
re-ranker's "no support" score, and the fusion ranks it low (``add_labels``
warns). This script measures that trade-off against plain DECAF scoring.

On the LF-DebianPackages sample: the ``--n-new`` labels with the most test
items (among those with training items) are removed from the training
targets, the model is fitted, and they are added back by their text, all at
once. Two fits, same data and seed:

- ``default``: the learned fusion with the XR-Linear re-ranker;
- ``plain``: ``fusion="weights", reranker=None`` (what the docs advise for
  zero-shot labels).

Hiding the frequency and the re-ranker score from the fusion on a share of
its training pairs (so that a new label's could be "missing") did not help:
``benchmarks/results/zero_shot_mask_experiment_cpu.txt``.

Columns: for the new labels, the share of their test items that rank them in
the top 10 and the median rank a query made of the label's own text gives it;
for all test items and labels, P@1, P@5 and PSP@1 (LF protocol)::

    python benchmarks/bench_zero_shot.py
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone

import numpy as np

from skxmc import DecafClassifier, LabelInfo
from skxmc.datasets import load_debian_packages_sample
from skxmc.metrics import inverse_propensity, xmc_report

from _common import (  # isort: skip (benchmarks/ is the script's own folder)
    machine_line,
    print_table_header,
    print_table_row,
)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-train", type=int, default=1000)
    parser.add_argument("--n-new", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import os

    print(f"# date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(machine_line())
    print(f"# load average at start: {os.getloadavg()}")
    data = load_debian_packages_sample()
    n = min(args.max_train, len(data.text_train))
    docs, Y = data.text_train[:n], data.Y_train[:n]
    trained = np.asarray(Y.sum(axis=0)).ravel() > 0
    test_count = np.asarray(data.Y_test.sum(axis=0)).ravel() * trained
    new = np.sort(np.argsort(-test_count, kind="stable")[: args.n_new])
    keep = np.setdiff1d(np.arange(data.n_labels), new)
    order = np.concatenate([keep, new])  # model's label ids -> sample's labels
    Y_test = data.Y_test[:, order]
    filter_test = data.filter_test[:, order]
    inv_p = inverse_propensity(Y[:, order], A=0.55, B=1.5)
    print(
        f"# LF-DebianPackages sample: {n} training items, {Y_test.shape[0]} test "
        f"items, {data.n_labels} labels of which {len(new)} added after the fit "
        f"({int(data.Y_test[:, new].sum())} test (item, new label) pairs)"
    )
    params = {
        "embedding_dim": 32,
        "n_epochs": 2,
        "learning_rate": 0.05,
        "max_label_tokens": 32,
        "text_shortlist_size": 30,
        "rerank_size": 50,
        "device": "cpu",
        "random_state": args.seed,
    }
    columns = [
        "scoring", "new labels: test items with it in top 10 %",
        "new labels: median own-text rank", "P@1", "P@5", "PSP@1", "fit s",
    ]  # fmt: skip
    print_table_header(columns)
    for name in ("default", "plain"):
        extra = {"fusion": "weights", "reranker": None} if name == "plain" else {}
        clf = DecafClassifier(**params, **extra)
        label_text = [data.label_text[j] for j in keep]
        tic = time.perf_counter()
        clf.fit(docs, Y[:, keep], label_info=LabelInfo(text=label_text))
        fit_s = time.perf_counter() - tic
        clf.add_labels([data.label_text[j] for j in new])
        new_ids = np.arange(len(keep), len(order))
        topk = clf.predict_topk(data.text_test, k=10)
        rows, cols = Y_test[:, new_ids].nonzero()
        found = [new_ids[c] in topk[1][r] for r, c in zip(rows, cols)]
        _, own = clf.predict_topk([data.label_text[j] for j in new], k=clf.n_labels_)
        ranks = [
            int(np.flatnonzero(own[i] == new_ids[i])[0]) + 1 for i in range(len(new))
        ]
        report = xmc_report(Y_test, topk, inv_propensity=inv_p, filter=filter_test)
        print_table_row([
            name, f"{100 * np.mean(found):.1f}", f"{np.median(ranks):.0f}",
            f"{100 * report['P@1']:.2f}", f"{100 * report['P@5']:.2f}",
            f"{100 * report['PSP@1']:.2f}", f"{fit_s:.0f}",
        ])  # fmt: skip
    print(f"# load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
