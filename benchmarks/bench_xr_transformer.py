"""XRTransformerClassifier vs XRLinearClassifier on LF-DebianPackages or LF-FOLDOC.

Same machine, same run, same metrics code (skxmc.metrics, LF filter protocol,
PSP with A=0.55, B=1.5). XR-Transformer fine-tunes all-MiniLM-L6-v2 (fp16
weights, trained in fp32 with bf16 autocast on CUDA) on the document text,
truncated to 64 tokens; XR-Linear reads the BENCHMARKS.md TF-IDF. Meant for a
GPU machine::

    python benchmarks/bench_xr_transformer.py

The full data on 2 CPU cores with the estimator's CPU defaults (top 2 layers
over cached states, 1 epoch per level; ``--epochs`` is the estimator's
``n_epochs``, 1 unless given)::

    python benchmarks/bench_xr_transformer.py --device cpu
    python benchmarks/bench_xr_transformer.py --device cpu --data foldoc

A CPU smoke run on a subset::

    python benchmarks/bench_xr_transformer.py --max-train 500 --max-test 200 \
        --steps 5 --device cpu
"""

from __future__ import annotations

import argparse
import datetime
import os
import time

import numpy as np

from skxmc import XRTransformerClassifier

from _common import (  # isort: skip (benchmarks/ is the script's own folder)
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


def run_xr_transformer(d: dict, args) -> dict:
    clf = XRTransformerClassifier(
        encoder=args.encoder,
        max_length=64,
        pooling=args.pooling,
        branching_factor=16,
        max_leaf_size=100,
        n_epochs=args.epochs,
        n_steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        head_learning_rate=args.head_lr,
        label_text_init=args.label_text_init,
        beam_size=args.beam,
        top_k=args.k,
        device=args.device,
        random_state=args.seed,
        verbose=args.verbose,
    )
    start = time.perf_counter()
    clf.fit(d["text_train"], d["Y_train"], label_info=list(d["label_text"]))
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    topk = clf.predict_topk(list(d["text_test"]), k=args.k)
    predict_s = time.perf_counter() - start
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in clf.fit_times_.items())
    curves, start = [], 0
    for n in clf.n_epochs_:  # loss_curve_: epoch means, the levels in turn
        curves.append(clf.loss_curve_[start : start + n])
        start += n
    losses = ", ".join(
        f"L{t + 1} {'->'.join(f'{v:.3f}' for v in c)}" if c else f"L{t + 1} -"
        for t, c in enumerate(curves)
    )
    print(f"# XR-Transformer stages: {stages}", flush=True)
    print(f"# XR-Transformer epoch losses: {losses}", flush=True)
    print(f"# XR-Transformer matcher tree: {clf.matcher_tree_.n_nodes}", flush=True)
    return {"topk": topk, "fit_s": fit_s, "predict_s": predict_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", default=str(ENCODER))
    parser.add_argument(
        "--data", default="debian", choices=["debian", "foldoc"], help="LF data set"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--pooling", default="mean", choices=["cls", "mean"])
    parser.add_argument(
        "--epochs", type=int, default=1, help="per level (the estimator's default)"
    )
    parser.add_argument(
        "--steps", type=int, nargs="*", default=None, help="steps per level"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--head-lr", type=float, default=1e-3)
    parser.add_argument("--label-text-init", action="store_true")
    parser.add_argument("--beam", type=int, default=10)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--max-train", type=int, default=None)
    parser.add_argument("--max-test", type=int, default=None)
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0, help="its random_state")
    args = parser.parse_args()
    if args.steps is not None and len(args.steps) == 1:
        args.steps = args.steps[0]

    print(f"# date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"# load average at start: {os.getloadavg()}")
    print(machine_line())
    d = subset(load_benchmark_data(args.data), args.max_train, args.max_test)
    name = {"debian": "LF-DebianPackages", "foldoc": "LF-FOLDOC"}[args.data]
    print(
        f"# {name}: {d['Y_train'].shape[0]} train, "
        f"{d['Y_test'].shape[0]} test, {d['Y_train'].shape[1]} labels; "
        f"encoder {args.encoder}, max_length 64, device {args.device}",
        flush=True,
    )
    n_test = d["Y_test"].shape[0]
    print_table_header(["method", *METRIC_COLUMNS, "fit s", "predict ms/q"])
    for title, run in (
        (
            "XRLinearClassifier (TF-IDF)",
            lambda d, args: run_xr_linear_baseline(d, beam_size=args.beam, k=args.k),
        ),
        ("XRTransformerClassifier", run_xr_transformer),
    ):
        r = run(d, args)
        m = protocol_report(d, r["topk"])
        cells = [title, *(f"{100 * m[c]:.2f}" for c in METRIC_COLUMNS)]
        cells += [f"{r['fit_s']:.1f}", f"{1000 * r['predict_s'] / n_test:.3f}"]
        print_table_row(cells)
    np.testing.assert_equal(n_test, r["topk"][1].shape[0])
    print(f"# load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
