"""DecafClassifier / EclareClassifier on LF-DebianPackages (BENCHMARKS.md protocol).

Features are the recipe of ``bench_xr_linear.py`` (TF-IDF, 1-2 grams,
sublinear, min_df=2, 200k features, fitted on document and label text), the
label features are the TF-IDF of the label text, and the metrics are
``skxmc.metrics.xmc_report`` with the LF filter pairs removed and PSP
propensities A=0.55, B=1.5 on the training labels::

    python benchmarks/bench_decaf.py --embedding-dim 256 --n-epochs 5
    python benchmarks/bench_decaf.py --model eclare --embedding-dim 256 --n-epochs 5

Several settings can be given at once (``--embedding-dim 256 512``); each
row is one fit. ``--save PATH`` pickles the fit, ``--load PATH`` evaluates
such a pickle instead of fitting (give the same model settings). Single-query
times: ``predict_topk`` on one test row at a time (rows sliced beforehand),
after 5 untimed warm-up queries; mean, median and 90th percentile. Data are
read from ``<repo>/../shared/data`` (or ``$SKXMC_SHARED_DIR/data``).
"""

from __future__ import annotations

import argparse
import itertools
import os
import pickle
import platform
import sys
import time
from datetime import datetime, timezone

import numpy as np
import torch

from skxmc import DecafClassifier, EclareClassifier, LabelInfo
from skxmc.training import resolve_device

from _common import (  # isort: skip (benchmarks/ is the script's own folder)
    METRIC_COLUMNS as COLUMNS,
    load_benchmark_data,
    protocol_report,
)


#: Single queries answered before the timed ones (first-call caches).
N_WARMUP = 5


def run(
    d: dict, model, params: dict, settings, *, k: int, n_single: int, save=None,
    load=None,
):  # fmt: skip
    """Fit once, then evaluate every prediction setting (a set_params dict).

    ``save``: a path to pickle the fitted model to (for later probes).
    ``load``: a path to such a pickle, evaluated instead of a fit (``fit_s``
    is then NaN).
    """
    if load:
        with open(load, "rb") as f:
            clf = pickle.load(f)
        fit_s = float("nan")
    else:
        clf = model(**params, top_k=k, random_state=0)
        start = time.perf_counter()
        clf.fit(
            d["X_train"],
            d["Y_train"],
            label_info=LabelInfo(features=d["label_features"]),
        )
        fit_s = time.perf_counter() - start
    if save:
        with open(save, "wb") as f:
            pickle.dump(clf, f, protocol=4)
    n = min(n_single, d["X_test"].shape[0] - N_WARMUP)
    # the rows as a server receives them (slicing is not part of the query)
    rows = [d["X_test"][i] for i in range(n + N_WARMUP)]
    for setting in settings:
        clf.set_params(**setting)
        start = time.perf_counter()
        topk = clf.predict_topk(d["X_test"], k=k)
        predict_s = time.perf_counter() - start
        for row in rows[:N_WARMUP]:
            clf.predict_topk(row, k=k)
        single = []
        for row in rows[N_WARMUP:]:
            start = time.perf_counter()
            clf.predict_topk(row, k=k)
            single.append(1000 * (time.perf_counter() - start))
        yield {
            "report": protocol_report(d, topk),
            "fit_s": fit_s,
            "batch_ms": 1000 * predict_s / d["X_test"].shape[0],
            "single_ms": float(np.mean(single)),
            "single_p50": float(np.median(single)),
            "single_p90": float(np.percentile(single, 90)),
            "topk": topk,
            "losses": clf.loss_curve_,
            "n_clusters": clf.n_clusters_,
            "setting": setting,
        }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["decaf", "eclare"], default="decaf")
    parser.add_argument(
        "--graph-shortlist-size", type=int, default=32, help="ECLARE only"
    )
    parser.add_argument("--embedding-dim", type=int, nargs="+", default=[256])
    parser.add_argument("--n-epochs", type=int, nargs="+", default=[5])
    parser.add_argument("--max-leaf-size", type=int, nargs="+", default=[8])
    parser.add_argument("--beam-size", type=int, nargs="+", default=[32])
    parser.add_argument(
        "--fusions",
        nargs="+",
        default=["0.5,0"],
        help="meta_weight,text_weight pairs evaluated on the same fit",
    )
    parser.add_argument(
        "--fusion",
        choices=["weights", "learned"],
        default="weights",
        help="'learned': gradient-boosted fusion on held-out rows (--fusions unused)",
    )
    parser.add_argument("--fusion-fraction", type=float, default=0.1)
    parser.add_argument(
        "--reranker",
        choices=["shortlist", "xr-linear"],
        default=None,
        help="sparse re-ranker whose scores are a fusion feature (needs --fusion "
        "learned)",
    )
    parser.add_argument("--rerank-size", type=int, default=100)
    parser.add_argument(
        "--tilts",
        type=float,
        nargs="+",
        default=[0.0],
        help="propensity_tilt values evaluated on the same fit",
    )
    parser.add_argument("--text-shortlist-size", type=int, default=0)
    parser.add_argument("--max-label-tokens", type=int, default=None)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--ann-shortlist-size", type=int, default=0)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--n-single", type=int, default=200)
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument(
        "--device", default="auto", help='"auto", "cpu", "cuda" or "cuda:N"'
    )
    parser.add_argument(
        "--save", default=None, help="pickle the fitted model there (one setting)"
    )
    parser.add_argument(
        "--topk-out",
        default=None,
        help="save each setting's test (scores, indices) to PREFIX_tilt<t>.npz "
        "(to compare two versions of the code)",
    )
    parser.add_argument(
        "--load",
        default=None,
        help="evaluate this pickled fit (from --save) instead of fitting; the "
        "model settings given must describe it",
    )
    args = parser.parse_args(argv)

    print(f"# date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}")
    device = resolve_device(args.device)
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(
        f"# machine: {platform.node()} {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), device {device}{gpu}, "
        f"load average {_load()} at start"
    )
    print(f"# command: python {' '.join(sys.argv)}")
    tic = time.perf_counter()
    d = load_benchmark_data("debian")
    load_s = time.perf_counter() - tic
    print(
        f"# LF-DebianPackages: {d['X_train'].shape[0]} train / "
        f"{d['X_test'].shape[0]} test docs, {d['Y_train'].shape[1]} labels, "
        f"{d['X_train'].shape[1]} TF-IDF features (load {load_s:.0f} s)"
    )
    header = (
        "| setting | " + " | ".join(COLUMNS) + " | fit s | predict ms/query (batch) "
        "| predict ms/query (single) | single p50 ms | single p90 ms |"
    )
    print(header)
    print("|" + "---|" * (len(COLUMNS) + 6))
    if args.fusion == "learned":
        weightings = [{}]
    else:
        weightings = [
            dict(zip(("meta_weight", "text_weight"), map(float, f.split(","))))
            for f in args.fusions
        ]
    settings = [
        {**w, "propensity_tilt": tilt} for w in weightings for tilt in args.tilts
    ]
    for dim, epochs, leaf, beam in itertools.product(
        args.embedding_dim, args.n_epochs, args.max_leaf_size, args.beam_size
    ):
        params = {
            "embedding_dim": dim,
            "n_epochs": epochs,
            "max_leaf_size": leaf,
            "beam_size": beam,
            "text_shortlist_size": args.text_shortlist_size,
            "max_label_tokens": args.max_label_tokens,
            "learning_rate": args.learning_rate,
            "batch_size": args.batch_size,
            "dropout": args.dropout,
            "ann_shortlist_size": args.ann_shortlist_size,
            "fusion": args.fusion,
            "fusion_fraction": args.fusion_fraction,
            "reranker": args.reranker,
            "rerank_size": args.rerank_size,
            "verbose": args.verbose,
            "device": args.device,
        }
        model = DecafClassifier
        if args.model == "eclare":
            model = EclareClassifier
            params["graph_shortlist_size"] = args.graph_shortlist_size
        results = run(
            d, model, params, settings, k=args.k, n_single=args.n_single,
            save=args.save, load=args.load,
        )  # fmt: skip
        for result in results:
            r = result["report"]
            if args.topk_out:
                tilt = result["setting"]["propensity_tilt"]
                scores, indices = result["topk"]
                np.savez(
                    f"{args.topk_out}_tilt{tilt}.npz", scores=scores, indices=indices
                )
            if args.fusion == "learned":
                scoring = f"learned fusion ({args.fusion_fraction} held out)"
                if args.reranker:
                    scoring += f" + {args.reranker} re-ranker ({args.rerank_size})"
            else:
                scoring = ", ".join(
                    f"{name} {result['setting'][name]}"
                    for name in ("meta_weight", "text_weight")
                )
            tilt = result["setting"]["propensity_tilt"]
            setting = (
                f"{args.model.upper()} dim {dim}, {epochs}+{epochs} epochs, "
                f"batch {args.batch_size}, "
                f"leaf {leaf} ({result['n_clusters']} clusters), beam {beam}, "
                f"text shortlist {args.text_shortlist_size}, "
                f"label tokens {args.max_label_tokens}, "
                f"{scoring}, tilt {tilt}"
            )
            print(
                f"| {setting} | "
                + " | ".join(f"{100 * r[c]:.2f}" for c in COLUMNS)
                + f" | {result['fit_s']:.0f} | {result['batch_ms']:.2f} "
                f"| {result['single_ms']:.2f} | {result['single_p50']:.2f} "
                f"| {result['single_p90']:.2f} |",
                flush=True,
            )
        losses = ", ".join(f"{v:.4f}" for v in result["losses"])
        print(f"#   epoch losses: {losses}", flush=True)
    print(f"# load average {_load()} at the end", flush=True)


def _load() -> str:
    """The 1/5/15-minute load averages (timings on shared cores need them)."""
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


if __name__ == "__main__":
    main()
