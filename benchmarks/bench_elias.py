"""EliasClassifier vs XRLinearClassifier on LF-DebianPackages.

Same machine, same run, same metrics code (skxmc.metrics, LF filter protocol,
PSP with A=0.55, B=1.5, recall@100). ELIAS fine-tunes all-MiniLM-L6-v2 (fp16
weights, trained in fp32 with bf16 autocast on CUDA) on the document text,
truncated to 32 tokens; XR-Linear reads the BENCHMARKS.md TF-IDF. Meant for a
GPU machine::

    python benchmarks/bench_elias.py

A CPU smoke run on a subset (about a minute on 2 cores)::

    python benchmarks/bench_elias.py --max-train 500 --max-test 200 \
        --epochs 1 1 --device cpu

``--reranker`` also trains the sparse re-ranker (``--reranker xr-linear``:
an XR-Linear ranker on the TF-IDF) and prints one row per ``--rerank-weights``
value (0 is ELIAS's own ranking of the same fit). ``--fusion learned`` holds
``--fusion-fraction`` of the training rows out of the fit and learns the
fusion of the pair scores on them (rows: ELIAS's own ranking of the same fit,
then the fused one); ``--benchmark-tfidf`` gives ELIAS (its clustering and
re-ranker) the BENCHMARKS.md TF-IDF recipe instead of its default unigrams.
The schedule a CPU affords (issue 12 must-show 2; 2 cores)::

    python benchmarks/bench_elias.py --device cpu --max-length 64 \
        --epochs 3 3 --trainable-layers 2 --reranker xr-linear \
        --fusion learned --benchmark-tfidf --memory /tmp/elias_mem
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from skxmc import EliasClassifier
from skxmc.metrics import recall_at_k

from _common import (  # isort: skip (benchmarks/ is the script's own folder)
    BENCHMARK_TFIDF_PARAMS,
    METRIC_COLUMNS,
    SHARED,
    load_benchmark_data,
    protocol_report,
    run_xr_linear_baseline,
    subset,
    machine_line,
    print_table_header,
    print_table_row,
)

ENCODER = SHARED / "models" / "all-MiniLM-L6-v2-fp16"
RECALL_K = 100


def run_elias(d: dict, args) -> dict:
    import torch

    from skxmc.nn._transformer import tokenize

    optional = {}
    if args.trainable_layers is not None:
        optional["trainable_layers"] = args.trainable_layers
    if args.benchmark_tfidf:
        optional["tfidf_params"] = BENCHMARK_TFIDF_PARAMS
    clf = EliasClassifier(
        encoder=args.encoder,
        max_length=args.max_length,
        pooling=args.pooling,
        max_leaf_size=args.max_leaf_size,
        kappa=args.kappa,
        beam_size=args.beam,
        shortlist_size=args.shortlist,
        n_epochs=tuple(args.epochs),
        batch_size=args.batch_size,
        learning_rate=tuple(args.lr),
        head_learning_rate=args.head_lr,
        swa=args.swa,
        reranker=args.reranker,
        rerank_size=RECALL_K,
        fusion=args.fusion,
        fusion_fraction=args.fusion_fraction,
        memory=args.memory,
        top_k=args.k,
        device=args.device,
        random_state=0,
        verbose=args.verbose,
        **optional,
    )
    cuda = torch.cuda.is_available() and args.device != "cpu"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    clf.fit(d["text_train"], d["Y_train"])
    fit_s = time.perf_counter() - start
    rows = {}
    texts = list(d["text_test"])
    if args.fusion == "learned":
        start = time.perf_counter()
        token_ids = tokenize(clf.tokenizer_, texts, clf.max_length)
        rows["ELIAS alone (same fit)"] = {
            "topk": clf.model_.elias_topk(token_ids, RECALL_K),
            "fit_s": fit_s,
            "predict_s": time.perf_counter() - start,
        }
    # (title, rerank_weight to set or None) of each scoring of the fit
    scorings = [("EliasClassifier", None)]
    if args.fusion == "learned":
        title = "EliasClassifier + learned fusion"
        if args.reranker:
            title += f" ({args.reranker} re-ranker)"
        scorings = [(title, None)]
    elif args.reranker:
        scorings = [
            (
                f"EliasClassifier + {args.reranker} re-ranker (weight {weight})"
                if weight
                else "EliasClassifier",
                weight,
            )
            for weight in args.rerank_weights
        ]
    for title, weight in scorings:
        if weight is not None:
            clf.set_params(rerank_weight=weight)
        start = time.perf_counter()
        topk = clf.predict_topk(texts, k=RECALL_K)
        rows[title] = {
            "topk": topk,
            "fit_s": fit_s,
            "predict_s": time.perf_counter() - start,
        }
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in clf.fit_times_.items())
    n_first = args.epochs[0]
    curves = (clf.loss_curve_[:n_first], clf.loss_curve_[n_first:])
    losses = ", ".join(
        f"stage {t + 1} " + ("->".join(f"{v:.4f}" for v in h) if h else "-")
        for t, h in enumerate(curves)
    )
    print(f"# ELIAS stages: {stages}", flush=True)
    print(f"# ELIAS epoch losses (mean per epoch): {losses}", flush=True)
    print(f"# ELIAS: {clf.n_clusters_} clusters, kappa {clf.kappa_}", flush=True)
    if cuda:
        peak = torch.cuda.max_memory_allocated() / 2**30
        print(f"# ELIAS peak GPU memory: {peak:.2f} GiB", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", default=str(ENCODER))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--pooling", default="mean", choices=["cls", "mean"])
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--max-leaf-size", type=int, default=100)
    parser.add_argument("--kappa", type=int, default=1000)
    parser.add_argument("--beam", type=int, default=20)
    parser.add_argument("--shortlist", type=int, default=2000)
    parser.add_argument(
        "--epochs", type=int, nargs=2, default=[10, 10], help="stage 1, stage 2"
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--lr", type=float, nargs=2, default=[2e-4, 3e-5], help="encoder lr/stage"
    )
    parser.add_argument("--head-lr", type=float, default=5e-3)
    parser.add_argument("--swa", action="store_true")
    parser.add_argument(
        "--reranker",
        nargs="?",
        const="shortlist",
        default=None,
        choices=["shortlist", "xr-linear"],
        help=f"train a sparse re-ranker (alone: 'shortlist', on the top {RECALL_K} "
        "labels)",
    )
    parser.add_argument("--fusion", choices=["weights", "learned"], default="weights")
    parser.add_argument("--fusion-fraction", type=float, default=0.1)
    parser.add_argument("--benchmark-tfidf", action="store_true")
    parser.add_argument("--trainable-layers", type=int, default=None)
    parser.add_argument(
        "--memory", default=None, help="cache the frozen layers' states there"
    )
    parser.add_argument(
        "--rerank-weights",
        type=float,
        nargs="+",
        default=[0.0, 0.5],
        help="re-ranker weights to report (0 = ELIAS's own ranking)",
    )
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--max-train", type=int, default=None)
    parser.add_argument("--max-test", type=int, default=None)
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args()

    print(machine_line())
    d = subset(load_benchmark_data("debian"), args.max_train, args.max_test)
    print(
        f"# LF-DebianPackages: {d['Y_train'].shape[0]} train, "
        f"{d['Y_test'].shape[0]} test, {d['Y_train'].shape[1]} labels; "
        f"encoder {args.encoder}, max_length {args.max_length}, "
        f"device {args.device}; {vars(args)}",
        flush=True,
    )
    n_test = d["Y_test"].shape[0]
    columns = [*METRIC_COLUMNS, f"R@{RECALL_K}"]
    print_table_header(["method", *columns, "fit s", "predict ms/q"])
    results = {
        "XRLinearClassifier (TF-IDF)": run_xr_linear_baseline(
            d, beam_size=10, k=RECALL_K
        )
    }
    results.update(run_elias(d, args))
    for title, r in results.items():
        m = protocol_report(d, r["topk"])
        m[f"R@{RECALL_K}"] = recall_at_k(
            d["Y_test"], r["topk"], k=RECALL_K, filter=d["filter_test"]
        )
        cells = [title, *(f"{100 * m[c]:.2f}" for c in columns)]
        cells += [f"{r['fit_s']:.1f}", f"{1000 * r['predict_s'] / n_test:.3f}"]
        print_table_row(cells)
    np.testing.assert_equal(n_test, r["topk"][1].shape[0])


if __name__ == "__main__":
    main()
