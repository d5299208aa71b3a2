"""Scaling out: fit time and peak memory per process against the number of labels.

Synthetic power-law data from :func:`skxmc.datasets.make_xmc_classification`
with ``--rows-per-label`` training rows per label (default 2; rows grow with
labels, so an object of size n_labels x n_rows would grow quadratically and
show), 3 labels per row:

- ``xr-linear``: :class:`~skxmc.XRLinearClassifier` in one process, then under
  joblib's ``"dask"`` backend on a 2-worker ``LocalCluster`` (worker
  *processes*, one thread each);
- ``decaf`` and ``elias`` (tiny BERT of :func:`skxmc.utils._testing.tiny_bert_dir`,
  one epoch per stage): one process, then ``torchrun --nproc_per_node=2``
  (gloo, CPU), the same global batch.

Every fit runs in fresh processes; peak memory is ``ru_maxrss`` of each
process (data generation included), the largest one reported. From the
measured sizes, memory is fitted as ``a + b * n_labels`` (least squares) and
time as ``c * n_labels ** p`` (the last two sizes), and both projected to
10^7 labels::

    python benchmarks/bench_scaling.py --n-labels 2000 6000 20000

``--project FILE ...`` measures nothing: it reads the result rows of earlier
outputs of this script (the markdown tables) and prints the projection over
all of them, one fit per estimator, mode and rows per label, so that sizes
measured in separate runs with the same settings are fitted together.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _data(n_labels: int, rows_per_label: int, seed: int, text: bool):
    from skxmc.datasets import make_xmc_classification

    return make_xmc_classification(
        n_samples=rows_per_label * n_labels,
        n_labels=n_labels,
        n_features=max(2000, n_labels // 5),
        avg_labels_per_sample=3.0,
        return_text=text,
        random_state=seed,
    )


def _deep(kind: str, n_labels: int, rows_per_label: int, seed: int):
    from skxmc import DecafClassifier, EliasClassifier, LabelInfo
    from skxmc.utils._testing import tiny_bert_dir

    d = _data(n_labels, rows_per_label, seed, text=True)
    if kind == "decaf":
        clf = DecafClassifier(
            embedding_dim=32, n_epochs=1, batch_size=256, device="cpu",
            random_state=seed,
        )  # fmt: skip
        fit = lambda: clf.fit(d.text, d.Y, label_info=LabelInfo(text=d.label_text))  # noqa: E731
    else:
        clf = EliasClassifier(
            encoder=tiny_bert_dir(), max_length=24, n_epochs=(1, 1), batch_size=128,
            device="cpu", n_jobs=1, random_state=seed,
        )  # fmt: skip
        fit = lambda: clf.fit(d.text, d.Y)  # noqa: E731
    start = time.perf_counter()
    fit()
    return time.perf_counter() - start


def worker(args) -> None:
    """One fit (a rank of it under torchrun); writes its numbers as JSON."""
    import torch.distributed as dist

    record = {"rank": int(os.environ.get("RANK", "0"))}
    if args.worker == "xr-linear":
        import warnings

        import joblib

        from skxmc import XRLinearClassifier

        warnings.simplefilter("ignore")
        X, Y = _data(args.n_labels[0], args.rows_per_label, args.seed, text=False)
        clf = XRLinearClassifier(random_state=args.seed)
        if args.dask:
            import distributed

            cluster = distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True,
                dashboard_address=None,
            )  # fmt: skip
            client = distributed.Client(cluster)
            start = time.perf_counter()
            with joblib.parallel_config(backend="dask"):
                clf.fit(X, Y)
            record["fit_s"] = time.perf_counter() - start
            workers = client.run(_peak_gb)
            record["worker_peak_gb"] = max(workers.values())
            client.close()
            cluster.close()
        else:
            start = time.perf_counter()
            clf.fit(X, Y)
            record["fit_s"] = time.perf_counter() - start
    else:
        record["fit_s"] = _deep(
            args.worker, args.n_labels[0], args.rows_per_label, args.seed
        )
    record["peak_gb"] = _peak_gb()
    Path(args.out, f"rank{record['rank']}.json").write_text(json.dumps(record))
    if dist.is_initialized():
        dist.destroy_process_group()


def measure(
    kind: str, n_labels: int, rows_per_label: int, scale_out: bool, seed: int
) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as out:
        launcher = [sys.executable]
        if scale_out and kind != "xr-linear":
            launcher += ["-m", "torch.distributed.run", "--standalone",
                         "--nproc_per_node=2"]  # fmt: skip
        cmd = [
            *launcher, str(HERE), "--worker", kind, "--n-labels", str(n_labels),
            "--rows-per-label", str(rows_per_label), "--seed", str(seed),
            "--out", out,
        ]  # fmt: skip
        if scale_out and kind == "xr-linear":
            cmd.append("--dask")
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-3000:])
        ranks = [json.loads(p.read_text()) for p in Path(out).glob("rank*.json")]
    peak = max(max(r["peak_gb"], r.get("worker_peak_gb", 0.0)) for r in ranks)
    return {"fit_s": max(r["fit_s"] for r in ranks), "peak_gb": peak}


MODES = {
    "xr-linear": ("local", "dask 2 workers"),
    "decaf": ("1 process", "torchrun 2 (gloo)"),
    "elias": ("1 process", "torchrun 2 (gloo)"),
}


def read_rows(paths) -> list[tuple[str, str, int, int, dict]]:
    """The result rows ``(estimator, mode, labels, train rows, record)`` of
    earlier outputs of this script (their markdown tables); ``record["run"]``
    numbers the runs (each starts at a ``# command:`` line)."""
    rows = []
    run = 0
    for path in paths:
        for line in Path(path).read_text().splitlines():
            run += line.startswith("# command:")
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if (
                len(cells) != 6
                or cells[0] not in MODES
                or cells[1] not in MODES[cells[0]]
            ):
                continue
            kind, mode, n, m, fit_s, peak = cells
            record = {"fit_s": float(fit_s), "peak_gb": float(peak), "run": run}
            rows.append(
                (kind, mode, int(n.replace(",", "")), int(m.replace(",", "")), record)
            )
    return rows


def project(rows) -> None:
    """Print the linear memory fit and the 10^7-label projection of ``rows``."""
    print("Projection to 10^7 labels (same rows per label): memory a + b*L (least")
    print("squares over all sizes), time c*L^p through the two largest sizes (marked")
    print("'2 runs' when they come from two runs, whose loads differ);")
    print("increments = memory growth per 1k labels between consecutive sizes (about")
    print("equal when memory is linear in labels, growing when an object of")
    print("labels x rows or labels^2 exists).")
    print()
    print(
        "| estimator | mode | rows/label | sizes | MB per 1k labels "
        "| increments MB/1k | time exponent p | projected GB | projected fit h |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    groups = collections.defaultdict(dict)
    for kind, mode, n, m, r in rows:
        groups[kind, mode, m / n][n] = r  # a later row of a size replaces it
    for (kind, mode, ratio), by_size in groups.items():
        if len(by_size) < 2:
            continue
        L = np.array(sorted(by_size), dtype=float)
        mem = np.array([by_size[n]["peak_gb"] for n in sorted(by_size)])
        t = np.array([by_size[n]["fit_s"] for n in sorted(by_size)])
        b, a = np.polyfit(L, mem, 1)
        steps = np.diff(mem) / np.diff(L) * 1000 * 1024
        last, before = (by_size[int(n)].get("run") for n in L[-2:])
        p = np.log(t[-1] / t[-2]) / np.log(L[-1] / L[-2])
        hours = t[-1] * (1e7 / L[-1]) ** p / 3600
        mark = "" if last == before else " (2 runs)"
        sizes = ", ".join(f"{n / 1000:g}k" for n in L)
        print(
            f"| {kind} | {mode} | {ratio:g} | {sizes} | {b * 1000 * 1024:.2f} | "
            f"{', '.join(f'{s:.2f}' for s in steps)} | {p:.2f}{mark} | "
            f"{a + b * 1e7:.1f} | {hours:.1f}{mark} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-labels", type=int, nargs="+", default=[2000, 6000, 20000])
    parser.add_argument(
        "--estimators", nargs="+", default=["xr-linear", "decaf", "elias"]
    )
    parser.add_argument("--rows-per-label", type=int, default=2)
    parser.add_argument(
        "--modes", choices=["both", "single", "scale-out"], default="both",
        help="one process (local), two (torchrun / Dask), or both",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--project", nargs="+", default=None, metavar="FILE",
        help="fit and project the result rows of these earlier outputs",
    )  # fmt: skip
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--dask", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if args.project:
        print(f"# command: python benchmarks/bench_scaling.py {' '.join(sys.argv[1:])}")
        project(read_rows(args.project))
        return
    from _common import machine_line

    print(time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime()))
    print(f"# command: python benchmarks/bench_scaling.py {' '.join(sys.argv[1:])}")
    print(machine_line())
    print(f"# load average at start: {os.getloadavg()}", flush=True)
    print("| estimator | mode | labels | train rows | fit s | peak GB / process |")
    print("|---|---|---|---|---|---|")
    rows = []
    for kind in args.estimators:
        for scale_out, mode in enumerate(MODES[kind]):
            if args.modes != "both" and scale_out != (args.modes == "scale-out"):
                continue
            for n in args.n_labels:
                m = args.rows_per_label * n
                r = measure(kind, n, args.rows_per_label, bool(scale_out), args.seed)
                rows.append((kind, mode, n, m, r))
                print(
                    f"| {kind} | {mode} | {n:,} | {m:,} | {r['fit_s']:.1f} | "
                    f"{r['peak_gb']:.3f} |",
                    flush=True,
                )
    print()
    project(rows)
    print(f"# load average at end: {os.getloadavg()}")
    print(time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime()))


if __name__ == "__main__":
    main()
