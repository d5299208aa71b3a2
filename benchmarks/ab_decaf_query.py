"""Single-query latency of two versions of skxmc, interleaved (an A/B test).

Each version runs in its own process (``PYTHONPATH`` set to its source tree)
with the same pickled model and test rows; the processes take turns, a
round of ``--round`` queries each, so that both see the same load on shared
cores. Prints, per version, the median and 90th percentile of the wall time
of one ``predict_topk`` call (one row; with ``--batch``, the time per row of
a call on ``--round`` rows), and checks that both return the same top ``k``
for every row::

    python benchmarks/ab_decaf_query.py /work/models/decaf_runD_v2.pkl \\
        --a /tmp/base --b . --features-cache /work/models/debian_X_test.npz
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np


def worker(
    model: str, cache: str, k: int, tilt: float, aside: str, repeat: int
) -> None:
    """Answer ``[start, stop)`` requests on stdin with the query times."""
    import pickle

    import scipy.sparse as sp

    import skxmc

    if aside == "off":
        from skxmc.utils import _threads

        _threads.ASIDE_ENABLED = False

    with open(model, "rb") as f:
        clf = pickle.load(f)
    clf.set_params(propensity_tilt=tilt)
    X = sp.load_npz(cache).tocsr()
    rows = {}
    for i in range(5):  # caches, numba loading
        clf.predict_topk(X[i], k=k)
    print(json.dumps({"ready": skxmc.__file__}), flush=True)
    for line in sys.stdin:
        start, stop, batch = json.loads(line)
        times, ids = [], []
        if batch:  # one call for all the rows: ms per row
            begin = time.perf_counter()
            _, labels = clf.predict_topk(X[start:stop], k=k)
            times.append(1000 * (time.perf_counter() - begin) / (stop - start))
            print(json.dumps({"times": times, "ids": labels.tolist()}), flush=True)
            continue
        for i in range(start, stop):
            row = rows.setdefault(i, X[i])
            best = np.inf
            for _ in range(repeat):  # the fastest of the repeats
                begin = time.perf_counter()
                _, labels = clf.predict_topk(row, k=k)
                best = min(best, 1000 * (time.perf_counter() - begin))
            times.append(best)
            ids.append(labels[0].tolist())
        print(json.dumps({"times": times, "ids": ids}), flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="pickle written by bench_decaf.py --save")
    parser.add_argument("--a", required=True, help="source tree of version A")
    parser.add_argument("--b", required=True, help="source tree of version B")
    parser.add_argument("--features-cache", required=True, help=".npz of X_test")
    parser.add_argument("--n-queries", type=int, default=400)
    parser.add_argument("--first-row", type=int, default=5)
    parser.add_argument("--round", type=int, default=20, help="queries per turn")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="answer each single query this many times and keep the fastest "
        "(an estimate of the time on quiet cores when others share them)",
    )
    parser.add_argument(
        "--batch",
        action="store_true",
        help="each turn answers its --round rows in one predict_topk call "
        "(times are then ms per row of each call)",
    )
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--tilt", type=float, default=0.0)
    for name in ("a", "b"):
        parser.add_argument(
            f"--aside-{name}",
            choices=("on", "off"),
            default="on",
            help=f"version {name.upper()}'s helper thread of single queries",
        )
    parser.add_argument("--aside", default="on", help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(
            args.model, args.features_cache, args.k, args.tilt, args.aside, args.repeat
        )
        return

    print(f"# date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}")
    print(
        f"# machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPU "
        f"cores, load average {os.getloadavg()[0]:.2f} at start"
    )
    print(f"# command: python {' '.join(sys.argv)}")
    procs = {}
    for name, tree, aside in (("A", args.a, args.aside_a), ("B", args.b, args.aside_b)):
        env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve()))
        procs[name] = subprocess.Popen(
            [sys.executable, __file__, args.model, "--a", args.a, "--b", args.b,
             "--features-cache", args.features_cache, "--k", str(args.k),
             "--tilt", str(args.tilt), "--aside", aside, "--repeat",
             str(args.repeat), "--worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
    for name, proc in procs.items():
        ready = json.loads(proc.stdout.readline())
        aside = args.aside_a if name == "A" else args.aside_b
        print(f"# {name}: {ready['ready']}, helper thread {aside}")
    times = {name: [] for name in procs}
    ids = {name: [] for name in procs}
    loads = []
    stop = args.first_row + args.n_queries
    for start in range(args.first_row, stop, args.round):
        end = min(start + args.round, stop)
        loads.append(os.getloadavg()[0])
        for name, proc in procs.items():  # turns: A then B on the same rows
            proc.stdin.write(json.dumps([start, end, args.batch]) + "\n")
            proc.stdin.flush()
            answer = json.loads(proc.stdout.readline())
            times[name] += answer["times"]
            ids[name] += answer["ids"]
    for proc in procs.values():
        proc.stdin.close()
        proc.wait()
    same = sum(a == b for a, b in zip(ids["A"], ids["B"]))
    what = "rows in batches" if args.batch else "single queries"
    if args.repeat > 1 and not args.batch:
        what += f" (fastest of {args.repeat} runs each)"
    print(
        f"# {args.n_queries} {what} (rows {args.first_row}-{stop - 1}), "
        f"turns of {args.round}; load average during the run: median "
        f"{np.median(loads):.2f}, max {max(loads):.2f}"
    )
    if args.batch:
        print("# batch: ms per row of each predict_topk call of --round rows")
    print("| version | median ms | p90 ms | mean ms |")
    print("|---|---|---|---|")
    for name in procs:
        values = np.asarray(times[name])
        print(
            f"| {name} | {np.median(values):.2f} | {np.percentile(values, 90):.2f} "
            f"| {values.mean():.2f} |"
        )
    print(f"# same top-{args.k} labels in {same} of {len(ids['A'])} rows")


if __name__ == "__main__":
    main()
