"""Where a single DECAF / ECLARE query spends its time (a saved fit, one row at a time).

Loads a model pickled by ``bench_decaf.py --save`` and the LF-DebianPackages
test features (the recipe of ``bench_decaf.py``), then answers ``--n-queries``
test rows one by one with ``predict_topk`` and reports, per stage, the median
and 90th percentile of the time spent (exclusive: a stage's time does not
include the stages nested in it), plus a cProfile of the same calls::

    python benchmarks/profile_decaf_query.py /work/models/decaf_runD.pkl

Stages are measured by wrapping the functions the prediction path calls
(module attributes and methods, restored afterwards), with the stages run one
after the other in one thread (no helper thread); "predict glue" is the code
between them (the network's cluster scores, topk and table gather, the topk of
the final scores). The unwrapped timing after it is the real one.
``--timeline`` also times the real path (the helper thread on): when each
stage starts and ends, and on which thread (the critical path of a query).
``--save-topk PATH`` also predicts the whole test set in one call and saves
the batch and single-query ``(scores, indices)`` to an ``.npz``; ``--compare
PATH`` compares with such a file (two versions of the code).
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
import threading
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


class Timeline:
    """When each wrapped stage starts and ends, on which thread, in the real
    path (the helper thread on): a stage's first start and last end in a
    query, relative to the query's start."""

    def __init__(self):
        self.events: list[tuple] = []
        self._caller = threading.get_ident()

    def wrap(self, fn, name, inherit=False):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                on_caller = threading.get_ident() == self._caller
                self.events.append((name, on_caller, start, time.perf_counter()))

        return wrapper

    def query(self, clf, row, k) -> dict:
        """``{(stage, thread): (start, end)}`` in ms of one timed query."""
        self.events = []
        begin = time.perf_counter()
        clf.predict_topk(row, k=k)
        spans: dict = {}
        for name, on_caller, start, end in self.events:
            key = (name, "caller" if on_caller else "helper")
            first, last = spans.get(key, (np.inf, -np.inf))
            spans[key] = (min(first, start - begin), max(last, end - begin))
        return {key: (1000 * a, 1000 * b) for key, (a, b) in spans.items()}


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
    """(owner, attribute, stage name) of the prediction path of ``clf``.

    The estimator hands the query to its engine (``clf.model_``, a
    :class:`~skxmc.models.DecafModel`); the engine module imported its
    helpers by name, so they are wrapped there.
    """
    import skxmc.indexing._fusion as fusion_module
    import skxmc.models._decaf as engine_module
    from skxmc.base import BaseXMCClassifier

    model = clf.model_
    engine = type(model)
    targets = [
        (BaseXMCClassifier, "predict_topk", "total"),
        (BaseXMCClassifier, "_validate_X", "validation"),
        (type(clf), "_transform", "as_float32_csr"),
        (type(clf), "_predict_topk", "predict glue"),
        (engine, "predict_topk", "predict glue", "inherit"),
        (engine, "_predict_features", "predict glue", "inherit"),
        (engine_module, "csr_to_bag", "network forward"),
        (type(model.network_), "__call__", "network forward"),
        (engine_module, "score_pairs", "label scores (network)"),
        (engine_module, "dedup_rows", "shortlist merge"),
        (engine, "_extra_candidates", "graph shortlist (ECLARE)"),
        (engine, "_rerank_scores", "re-ranker pair scores"),
        (engine_module, "l2_normalize_csr", "text cosines"),
        (engine_module, "sparse_pair_scores", "text cosines", "inherit"),
        (engine, "_extra_parts", "graph score (ECLARE)"),
        (engine, "_fusion_inputs", "fusion features"),
        (engine, "_final_scores", "tilt + final scores"),
        (engine, "_text_shortlist", "text shortlist"),
        (engine, "_rerank_proposals", "re-ranker proposals"),
    ]
    if model._text_index is not None:
        targets.append(
            (type(model._text_index), "similarity_topk", "text shortlist", "inherit")
        )
    if model.reranker_ is not None:
        targets.append(
            (type(model.reranker_), "predict_topk", "re-ranker proposals", "inherit")
        )
    if model.fusion_ is not None:
        targets.append((fusion_module.ScoreFusion, "predict", "fusion predict"))
    return targets


def _set_aside(enabled: bool) -> bool:
    """Turn the helper thread of single queries on or off (where the code has
    one); returns the previous setting."""
    try:
        from skxmc.utils import _threads
    except ImportError:
        return enabled
    previous = getattr(_threads, "ASIDE_ENABLED", enabled)
    _threads.ASIDE_ENABLED = enabled
    return previous


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
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="answer each query this many times and keep each stage's fastest "
        "(an estimate of the time on quiet cores when others share them)",
    )
    parser.add_argument(
        "--ab-aside",
        action="store_true",
        help="time every query with the helper thread on and off, interleaved",
    )
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--tilt", type=float, default=0.0)
    parser.add_argument("--features-cache", default=None, help=".npz of X_test")
    parser.add_argument("--save-topk", default=None)
    parser.add_argument("--compare", default=None)
    parser.add_argument("--cprofile", type=int, default=25, help="rows printed")
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="also time the stages in the real path (helper thread on): when "
        "each starts and ends, and on which thread",
    )
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
    aside = _set_aside(False)  # stages one after the other, in this thread
    with patched(stage_targets(clf), timer):
        for row in rows:
            best: dict[str, float] = {}
            for _ in range(args.repeat):  # per stage, the fastest of the repeats
                timer.totals = {}
                start = time.perf_counter()
                clf.predict_topk(row, k=args.k)
                timer.totals["predict_topk (timed, all stages)"] = (
                    time.perf_counter() - start
                )
                for name, seconds in timer.totals.items():
                    best[name] = min(best.get(name, np.inf), seconds)
            for name, seconds in best.items():
                per_query.setdefault(name, []).append(1000 * seconds)
    repeats = f", fastest of {args.repeat} runs per query" if args.repeat > 1 else ""
    print(
        f"# {type(clf).__name__}, tilt {args.tilt}, {len(rows)} single queries "
        f"(after {args.warmup} warm-up){repeats}, exclusive ms per query"
    )
    print("| stage | median ms | p90 ms | mean ms |")
    print("|---|---|---|---|")
    order = sorted(per_query, key=lambda s: (s in _LAST, -np.median(per_query[s])))
    for name in order:
        values = np.asarray(per_query[name])
        label = "predict_topk's own code" if name == "total" else name
        print(
            f"| {label} | {np.median(values):.3f} | {np.percentile(values, 90):.3f} "
            f"| {values.mean():.3f} |"
        )
    _set_aside(aside)
    # untimed latency (no wrappers)
    times, singles = [], []
    for row in rows:
        start = time.perf_counter()
        singles.append(clf.predict_topk(row, k=args.k))
        times.append(1000 * (time.perf_counter() - start))
    print(
        f"# unwrapped predict_topk (once per query): median {np.median(times):.2f} ms, "
        f"p90 {np.percentile(times, 90):.2f} ms, mean {np.mean(times):.2f} ms"
    )
    if args.timeline:
        timeline = Timeline()
        spans: dict = {}
        with patched(stage_targets(clf), timeline):
            for row in rows:
                for key, span in timeline.query(clf, row, args.k).items():
                    spans.setdefault(key, []).append(span)
        print(
            "# timeline, helper thread on (as shipped): medians over the queries of "
            "each stage's start, time and end, ms from the call (wrapped calls: "
            "slower than unwrapped)"
        )
        print("| stage | thread | start | duration | end | queries |")
        print("|---|---|---|---|---|---|")
        for (name, thread), values in sorted(
            spans.items(), key=lambda kv: np.median([a for a, _ in kv[1]])
        ):
            starts, ends = np.asarray(values).T
            label = "predict_topk's own code" if name == "total" else name
            print(
                f"| {label} | {thread} | {np.median(starts):.3f} | "
                f"{np.median(ends - starts):.3f} | {np.median(ends):.3f} | "
                f"{len(values)} |"
            )
    if args.ab_aside:
        # the helper thread on and off, query by query (the same load on both)
        ab: dict[bool, list[float]] = {True: [], False: []}
        for row in rows:
            for enabled in (True, False):
                _set_aside(enabled)
                start = time.perf_counter()
                clf.predict_topk(row, k=args.k)
                ab[enabled].append(1000 * (time.perf_counter() - start))
        _set_aside(aside)
        for enabled, values in ab.items():
            print(
                f"# helper thread {'on ' if enabled else 'off'}: median "
                f"{np.median(values):.2f} ms, p90 {np.percentile(values, 90):.2f} ms"
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
        single_scores = np.concatenate([s for s, _ in singles])
        single_ids = np.concatenate([j for _, j in singles])
        if args.save_topk:
            np.savez(
                args.save_topk,
                scores=scores,
                indices=ids,
                single_scores=single_scores,
                single_indices=single_ids,
                single_first_row=args.warmup,
            )
        if args.compare:
            ref = np.load(args.compare)
            compare(ref["scores"], ref["indices"], scores, ids, "batch")
            if int(ref["single_first_row"]) == args.warmup:
                n = min(len(single_ids), len(ref["single_indices"]))
                compare(
                    ref["single_scores"][:n],
                    ref["single_indices"][:n],
                    single_scores[:n],
                    single_ids[:n],
                    f"{n} single queries",
                )


def compare(ref_scores, ref_ids, scores, ids, what: str) -> None:
    """Print how two top-k results differ (label slots, scores)."""
    same = ref_ids == ids
    finite = np.isfinite(ref_scores) & np.isfinite(scores)
    gap = np.abs(ref_scores - scores)[finite].max(initial=0.0)
    print(
        f"# {what} vs the reference: {int((~same).sum())} of {ids.size} label "
        f"slots differ, in {int((~same.all(1)).sum())} rows; scores identical: "
        f"{np.array_equal(ref_scores, scores)}; max |score difference| {gap:.3g}"
    )


if __name__ == "__main__":
    main()
