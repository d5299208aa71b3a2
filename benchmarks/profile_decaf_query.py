"""Where a single DECAF / ECLARE query spends its time (a saved fit, one row at a time).

Loads a model pickled by ``bench_decaf.py --save`` and the LF-DebianPackages
test features (the recipe of ``bench_decaf.py``), then answers ``--n-queries``
test rows one by one with ``predict_topk`` and reports, per stage, the median
and 90th percentile of the time spent (exclusive: a stage's time does not
include the stages nested in it), plus a cProfile of the same calls::

    python benchmarks/profile_decaf_query.py /work/models/decaf_runD.pkl

Stages are measured by wrapping the functions the prediction path calls
(module attributes and methods, restored afterwards); the time of the code
between them is "other" (the cluster shortlist's topk and table gather, the
shortlist merge, the topk of the final scores). ``--save-topk PATH`` also
predicts the whole test set in one call and saves ``(scores, indices)`` to an
``.npz`` (to compare two versions of the code); ``--compare PATH`` compares
with such a file.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pickle
import platform
import pstats
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import scipy.sparse as sp

#: Stages that do not claim the helpers called inside them (see StageTimer.wrap).
_OUTER = ("total", "predict glue")
_LAST = ("predict_topk (timed, all stages)",)


class StageTimer:
    """Exclusive wall time per stage of nested, wrapped calls."""

    def __init__(self):
        self.totals: dict[str, float] = {}
        self._stack: list[list] = []  # [name, start, child time]

    def wrap(self, fn, name, inherit=False):
        """``inherit``: inside another timed stage, count as that stage."""

        def wrapper(*args, **kwargs):
            stage = name
            if inherit and self._stack and self._stack[-1][0] not in _OUTER:
                stage = self._stack[-1][0]
            self._stack.append([stage, time.perf_counter(), 0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                stage, start, children = self._stack.pop()
                elapsed = time.perf_counter() - start
                self.totals[stage] = self.totals.get(stage, 0.0) + elapsed - children
                if self._stack:
                    self._stack[-1][2] += elapsed

        return wrapper


@contextlib.contextmanager
def patched(targets, timer):
    """Replace ``getattr(owner, attr)`` by a timed wrapper for every target."""
    saved = []
    try:
        for owner, attr, name, *inherit in targets:
            if not hasattr(owner, attr):  # another version of the code
                continue
            original = owner.__dict__[attr] if attr in vars(owner) else None
            saved.append((owner, attr, original))
            wrapper = timer.wrap(getattr(owner, attr), name, bool(inherit))
            setattr(owner, attr, wrapper)
        yield
    finally:
        for owner, attr, original in reversed(saved):
            if original is None:
                delattr(owner, attr)
            else:
                setattr(owner, attr, original)


def stage_targets(clf):
    """(owner, attribute, stage name) of the prediction path of ``clf``."""
    import skxmc.indexing._fusion as fusion_module
    import skxmc.nn
    import skxmc.training._data as data_module
    import skxmc.utils
    from skxmc.base import BaseXMCClassifier

    targets = [
        (BaseXMCClassifier, "predict_topk", "total"),
        (BaseXMCClassifier, "_validate_X", "validation"),
        (type(clf), "_transform", "as_float32_csr"),
        (type(clf), "_predict_topk", "predict glue"),
        (data_module, "csr_to_bag", "network forward"),
        (type(clf.network_), "__call__", "network forward"),
        (skxmc.nn, "score_pairs", "label scores (network)"),
        (type(clf), "_text_similarity", "text shortlist"),
        (type(clf), "_text_shortlist", "text shortlist"),
        (skxmc.utils, "csr_row_topk", "text shortlist", "inherit"),
        (data_module, "dedup_rows", "shortlist merge"),
        (type(clf), "_extra_candidates", "graph shortlist (ECLARE)"),
        (type(clf), "_rerank_scores", "re-ranker pair scores"),
        (skxmc.utils, "sparse_pair_scores", "text cosines", "inherit"),
        (type(clf), "_extra_parts", "graph score (ECLARE)"),
        (type(clf), "_fusion_inputs", "fusion features"),
        (type(clf), "_final_scores", "tilt + final scores"),
    ]
    if clf.reranker_ is not None:
        targets.append((type(clf.reranker_), "predict_topk", "re-ranker proposals"))
    if clf.fusion_ is not None:
        targets.append((fusion_module.ScoreFusion, "predict", "fusion predict"))
    return targets


def load_test_features(cache: str | None):
    """Test TF-IDF rows of LF-DebianPackages (cached in an .npz if asked)."""
    if cache and Path(cache).exists():
        return sp.load_npz(cache).tocsr()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import load_benchmark_data

    X = load_benchmark_data("debian")["X_test"].tocsr()
    if cache:
        sp.save_npz(cache, X)
    return X


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="pickle written by bench_decaf.py --save")
    parser.add_argument("--n-queries", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--tilt", type=float, default=0.0)
    parser.add_argument("--features-cache", default=None, help=".npz of X_test")
    parser.add_argument("--save-topk", default=None)
    parser.add_argument("--compare", default=None)
    parser.add_argument("--cprofile", type=int, default=25, help="rows printed")
    args = parser.parse_args(argv)

    import torch

    print(f"# date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}")
    print(
        f"# machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPU "
        f"cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )
    print(f"# command: python {' '.join(sys.argv)}")
    with open(args.model, "rb") as f:
        clf = pickle.load(f)
    clf.set_params(propensity_tilt=args.tilt)
    X = load_test_features(args.features_cache)
    rows = [X[i] for i in range(min(args.n_queries + args.warmup, X.shape[0]))]
    for row in rows[: args.warmup]:  # caches, numba loading
        clf.predict_topk(row, k=args.k)
    rows = rows[args.warmup :]

    timer = StageTimer()
    per_query: dict[str, list[float]] = {}
    inclusive = []
    with patched(stage_targets(clf), timer):
        for row in rows:
            timer.totals = {}
            start = time.perf_counter()
            clf.predict_topk(row, k=args.k)
            inclusive.append(1000 * (time.perf_counter() - start))
            for name, seconds in timer.totals.items():
                per_query.setdefault(name, []).append(1000 * seconds)
    print(
        f"# {type(clf).__name__}, tilt {args.tilt}, {len(rows)} single queries "
        f"(after {args.warmup} warm-up), exclusive ms per query"
    )
    print("| stage | median ms | p90 ms | mean ms |")
    print("|---|---|---|---|")
    per_query["predict_topk (timed, all stages)"] = inclusive
    order = sorted(per_query, key=lambda s: (s in _LAST, -np.median(per_query[s])))
    for name in order:
        values = np.asarray(per_query[name])
        label = "predict_topk's own code" if name == "total" else name
        print(
            f"| {label} | {np.median(values):.3f} | {np.percentile(values, 90):.3f} "
            f"| {values.mean():.3f} |"
        )
    # untimed latency (no wrappers)
    times, singles = [], []
    for row in rows:
        start = time.perf_counter()
        singles.append(clf.predict_topk(row, k=args.k))
        times.append(1000 * (time.perf_counter() - start))
    print(
        f"# unwrapped predict_topk: median {np.median(times):.2f} ms, "
        f"p90 {np.percentile(times, 90):.2f} ms, mean {np.mean(times):.2f} ms"
    )
    if args.cprofile:
        profile = cProfile.Profile()
        profile.enable()
        for row in rows:
            clf.predict_topk(row, k=args.k)
        profile.disable()
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(
            args.cprofile
        )
        print("# cProfile, sorted by tottime:")
        for line in out.getvalue().splitlines():
            if line.strip():
                print("#   " + line.rstrip())
    if args.save_topk or args.compare:
        start = time.perf_counter()
        scores, ids = clf.predict_topk(X, k=args.k)
        batch_s = time.perf_counter() - start
        print(f"# batch predict_topk: {1000 * batch_s / X.shape[0]:.3f} ms/query")
        if args.save_topk:
            np.savez(args.save_topk, scores=scores, indices=ids)
        if args.compare:
            ref = np.load(args.compare)
            first = args.warmup + len(singles)
            one_by_one = all(
                np.array_equal(s[0], ref["scores"][i])
                and np.array_equal(j[0], ref["indices"][i])
                for i, (s, j) in zip(range(args.warmup, first), singles)
            )
            print(
                f"# the {len(singles)} single queries equal rows {args.warmup}:{first} "
                f"of {args.compare} exactly: {one_by_one}"
            )
            same = ref["indices"] == ids
            finite = np.isfinite(ref["scores"]) & np.isfinite(scores)
            gap = np.abs(ref["scores"] - scores)[finite].max(initial=0.0)
            print(
                f"# compared with {args.compare}: {int((~same).sum())} of {ids.size} "
                f"label slots differ in {int((~same.all(1)).sum())} rows; scores "
                f"identical: {np.array_equal(ref['scores'], scores)}; max |score "
                f"difference| {gap:.3g}"
            )


if __name__ == "__main__":
    main()
