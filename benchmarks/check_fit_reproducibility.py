"""Two fits with the same seed in one process: the same model, bit for bit?

Fits ``DecafClassifier`` (the Run D settings of ``results/decaf_cpu.txt`` with
``--epochs`` epochs per stage, the BENCHMARKS.md TF-IDF as its
``vectorizer``, raw text in; re-ranker and fusion off unless ``--full-model``)
``--repeats`` times on a shared LF data set with ``random_state=0`` and
reports, for every pair of fits, the network tensors that differ (and by how
much) and the test rows whose top 10 differ. On 2 CPU cores the answer
was "every tensor, by ~1e-7" until the Trainer ran its CPU steps under
torch's deterministic algorithms (results/reproducibility_cpu.txt)::

    PYTHONPATH=. python benchmarks/check_fit_reproducibility.py --data foldoc
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # isort: skip (benchmarks/ is the script's own folder)
    DECAF_RUN_D,
    SHARED,
    _lf_keys,
    benchmark_vectorizer,
    load_lf_debian,
    machine_line,
)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("foldoc", "debian"), default="foldoc")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--full-model",
        action="store_true",
        help="keep Run D's re-ranker and learned fusion",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args(argv)

    import torch

    from skxmc import DecafClassifier, LabelInfo
    from skxmc.datasets import load_xc_repo

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(
        f"{machine_line()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(
        "# command: python benchmarks/check_fit_reproducibility.py "
        + " ".join(sys.argv[1:])
    )
    if args.data == "debian":
        d = load_lf_debian()
    else:
        d = _lf_keys(load_xc_repo(SHARED / "data" / "LF-FOLDOC"))
    texts, Y = list(d["text_train"]), d["Y_train"].tocsr()
    info = LabelInfo(text=list(d["label_text"]))
    params = {
        **DECAF_RUN_D,
        "n_epochs": args.epochs,
        "vectorizer": benchmark_vectorizer(),
        "device": "cpu",
        "random_state": 0,
    }
    if not args.full_model:
        params.update(reranker=None, fusion="weights")
    fits = []
    for run in range(args.repeats):
        clf = DecafClassifier(**params)
        start = time.perf_counter()
        clf.fit(texts, Y, label_info=info)
        fit_s = time.perf_counter() - start
        state = {
            k: v.detach().clone() for k, v in clf.model_.network_.state_dict().items()
        }
        topk = clf.predict_topk(list(d["text_test"]), 10)[1]
        fits.append((state, topk))
        print(f"# fit {run}: {fit_s:.0f} s, loss curve {clf.loss_curve_}", flush=True)
    print(
        "| fits | network tensors differing (of all) | largest difference "
        "| test rows with another top 10 |"
    )
    print("|---|---|---|---|")
    for (i, (a, ta)), (j, (b, tb)) in itertools.combinations(enumerate(fits), 2):
        differing = [k for k in a if not torch.equal(a[k], b[k])]
        largest = max(
            (float((a[k].double() - b[k].double()).abs().max()) for k in differing),
            default=0.0,
        )
        rows = int((ta != tb).any(axis=1).sum())
        print(
            f"| {i} vs {j} | {len(differing)} of {len(a)} | {largest:.3g} "
            f"| {rows} of {len(ta)} |"
        )


if __name__ == "__main__":
    main()
