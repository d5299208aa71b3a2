"""The CPU work of a DECAF / ECLARE fit before its first epoch, stage by stage.

Times, on LF-DebianPackages (or the sample shipped with skxmc), the stages a
:class:`~skxmc.models.DecafModel` runs before training: the PIFA + label-text
embedding, ECLARE's label graph and its smoothing of the embedding, the
label tree, and DECAF's training text shortlist (the ``k`` label texts of
highest cosine with every training row). Two stages are timed twice, the way
they were computed before (the product formed, the similarity densified
block by block) and the way the engine computes them now, and the two
results are compared entry by entry::

    python benchmarks/bench_decaf_pretrain.py --data debian-sample
    python benchmarks/bench_decaf_pretrain.py --data debian --text-rows 4000

Features are those of ``bench_decaf.py`` (BENCHMARKS.md TF-IDF).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime, timezone

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from skxmc.indexing import (
    LabelShortlist,
    hierarchical_kmeans,
    label_correlation_graph,
    label_embedding,
    smooth_over_graph,
)
from skxmc.utils import csr_row_topk, topk_to_csr
from skxmc.utils._threads import effective_n_jobs

from _common import load_benchmark_data  # isort: skip (the script's own folder)


def _formed_smoothing(Z, graph, max_features=1000, chunk_size=1024):
    """smooth_over_graph as it was: each chunk's product formed, then its
    row top-k (the reference for the engine's)."""
    Z = sp.csr_matrix(Z, dtype=np.float32)
    graph = sp.csr_matrix(graph, dtype=np.float32)
    blocks = []
    for start in range(0, Z.shape[0], chunk_size):
        product = sp.csr_matrix(graph[start : start + chunk_size] @ Z)
        scores, indices = csr_row_topk(product, max_features)
        blocks.append(topk_to_csr(scores, indices, Z.shape[1]))
    return normalize(sp.vstack(blocks, format="csr")).astype(np.float32)


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["debian", "debian-sample"], default="debian")
    parser.add_argument(
        "--text-rows", type=int, default=None, help="training rows of the text stage"
    )
    parser.add_argument("--text-k", type=int, default=50)
    parser.add_argument("--max-leaf-size", type=int, default=8)
    args = parser.parse_args(argv)

    print(f"# date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}")
    load = "/".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"# machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPU "
        f"cores ({effective_n_jobs(None)} numba threads), load average {load} at start"
    )
    print(f"# command: python {' '.join(sys.argv)}")
    d = load_benchmark_data(args.data)
    X = sp.csr_matrix(d["X_train"], dtype=np.float32)
    Y = sp.csr_matrix(d["Y_train"], dtype=np.float32)
    Z = sp.csr_matrix(d["label_features"], dtype=np.float32)
    print(
        f"# {args.data}: {X.shape[0]} train docs, {Y.shape[1]} labels, "
        f"{X.shape[1]} features"
    )
    print("| stage | before s | now s | identical |")
    print("|---|---|---|---|")

    def row(stage, before, now, same=""):
        before = "" if before is None else f"{before:.2f}"
        print(f"| {stage} | {before} | {now:.2f} | {same} |", flush=True)

    embedding, seconds = _timed(
        lambda: label_embedding(X, Y, method="pifa_text_concat", label_features=Z)
    )
    row("label embedding (PIFA + text)", None, seconds)
    graph, seconds = _timed(
        lambda: label_correlation_graph(Y, label_features=Z, random_state=0)
    )
    row("ECLARE label graph (random walks)", None, seconds)
    formed, before = _timed(lambda: _formed_smoothing(embedding, graph))
    smoothed, now = _timed(lambda: smooth_over_graph(embedding, graph))
    row("ECLARE smoothing over the graph", before, now, (formed != smoothed).nnz == 0)
    _, seconds = _timed(
        lambda: hierarchical_kmeans(
            smoothed, max_leaf_size=args.max_leaf_size, random_state=0
        )
    )
    row(f"label tree (leaves <= {args.max_leaf_size})", None, seconds)
    rows = X if args.text_rows is None else X[: args.text_rows]
    index = LabelShortlist(method="exact").fit(Z)
    k = min(args.text_k, Z.shape[0] - 1)
    prepared, transposed = index._prepare(rows), index._labels_transposed()
    dense, before = _timed(lambda: index._exact_dense(prepared, transposed, k))
    for n_jobs in (1, None):
        index.n_jobs = n_jobs
        sparse, now = _timed(lambda: index.query(rows, k=k))
        same = np.array_equal(dense[0], sparse[0]) and np.array_equal(
            dense[1], sparse[1]
        )
        threads = effective_n_jobs(n_jobs)
        row(
            f"DECAF text shortlist, {rows.shape[0]} rows, k={k} ({threads} threads)",
            before,
            now,
            same,
        )
    load = "/".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"# load average {load} at the end")


if __name__ == "__main__":
    main()
