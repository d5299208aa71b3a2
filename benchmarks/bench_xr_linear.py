"""XRLinearClassifier vs libpecos XR-Linear vs napkinXC PLT, side by side.

Same machine, same run, same TF-IDF features (BENCHMARKS.md recipe), same
metrics code (skxmc.metrics, LF filter protocol, PSP with A=0.55, B=1.5)::

    python benchmarks/bench_xr_linear.py --datasets debian bibtex delicious \
        --competitor-python /opt/xmc-bench/bin/python

The competitors run in their own environment (libpecos pins numpy<2; see
benchmarks/README.md); without ``--competitor-python`` only skxmc runs. Data sets
are read from ``<repo>/../shared/data`` (or ``$SKXMC_SHARED_DIR/data``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from skxmc import LabelInfo, XRLinearClassifier
from skxmc.metrics import inverse_propensity, xmc_report

from _common import (  # isort: skip (benchmarks/ is the script's own folder)
    METRIC_COLUMNS,
    ROOT,
    load_benchmark_data,
    machine_line,
    print_table_header,
    print_table_row,
)


def run_skxmc(d: dict, *, label_text: bool, k: int, beam: int, n_single: int) -> dict:
    clf = XRLinearClassifier(
        branching_factor=16,
        max_leaf_size=100,
        negative_sampling="tfn+man",
        label_embedding="pifa_text_concat" if label_text else "pifa",
        beam_size=beam,
        top_k=k,
        random_state=0,
    )
    info = LabelInfo(features=d["label_features"]) if label_text else None
    start = time.perf_counter()
    clf.fit(d["X_train"], d["Y_train"], label_info=info)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    scores, indices = clf.predict_topk(d["X_test"], k=k)
    predict_s = time.perf_counter() - start
    n = min(n_single, d["X_test"].shape[0])
    start = time.perf_counter()
    for i in range(n):
        clf.predict_topk(d["X_test"][i], k=k)
    single_ms = 1000 * (time.perf_counter() - start) / n
    return {
        "topk": (scores, indices),
        "fit_s": fit_s,
        "predict_s": predict_s,
        "single_ms": single_ms,
    }


def _save_features(d: dict, path: Path) -> None:
    arrays = {}
    for name in ("X_train", "X_test", "Y_train", "label_features"):
        if d[name] is None:
            continue
        m = sp.csr_matrix(d[name], dtype=np.float32)
        arrays.update(
            {
                f"{name}_data": m.data,
                f"{name}_indices": m.indices,
                f"{name}_indptr": m.indptr,
                f"{name}_shape": np.array(m.shape),
            }
        )
    np.savez(path, **arrays)


def run_competitor(
    python: str,
    method: str,
    d: dict,
    *,
    label_text: bool,
    k: int,
    beam: int,
    n_single: int,
    workdir: Path,
) -> dict:
    features, out = workdir / "features.npz", workdir / f"{method}.npz"
    if not features.exists():
        _save_features(d, features)
    cmd = [
        python,
        str(ROOT / "benchmarks" / "_competitors.py"),
        method,
        str(features),
        str(out),
        "--k",
        str(k),
        "--beam",
        str(beam),
        "--n-single",
        str(n_single),
    ]
    if label_text:
        cmd.append("--label-features")
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    result = np.load(out)
    timings = json.loads(str(result["timings"]))
    return {"topk": (result["scores"], result["indices"]), **timings}


def _runs(d: dict, args, *, label_text: bool, workdir: Path) -> dict:
    """The methods to compare on one data set and label-embedding variant."""
    runs = {
        "skxmc XRLinearClassifier": lambda: run_skxmc(
            d, label_text=label_text, k=args.k, beam=args.beam, n_single=args.n_single
        )
    }
    if not args.competitor_python:
        return runs
    workdir.mkdir(exist_ok=True)
    competitors = [("pecos", "libpecos XR-Linear")]
    if not label_text:  # napkinXC has no label-feature option
        competitors.append(("napkinxc", "napkinXC PLT"))
    for method, title in competitors:
        runs[title] = lambda method=method: run_competitor(
            args.competitor_python,
            method,
            d,
            label_text=label_text,
            k=args.k,
            beam=args.beam,
            n_single=args.n_single,
            workdir=workdir,
        )
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets", nargs="+", default=["debian", "bibtex", "delicious"]
    )
    parser.add_argument("--competitor-python", default=None)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--beam", type=int, default=20)
    parser.add_argument("--n-single", type=int, default=500)
    args = parser.parse_args()
    print(machine_line())
    print_table_header(
        [
            "data",
            "method",
            *METRIC_COLUMNS,
            "fit s",
            "predict ms/q (batch)",
            "predict ms/q (single)",
        ]
    )
    for name in args.datasets:
        d = load_benchmark_data(name)
        inv_p = inverse_propensity(d["Y_train"], A=0.55, B=1.5)
        n_test = d["X_test"].shape[0]
        variants = [("pifa", False)]
        if d["label_features"] is not None:
            variants.append(("pifa+text", True))
        with tempfile.TemporaryDirectory() as tmp:
            for variant, label_text in variants:
                workdir = Path(tmp) / variant
                runs = _runs(d, args, label_text=label_text, workdir=workdir)
                for title, run in runs.items():
                    r = run()
                    m = xmc_report(
                        d["Y_test"],
                        r["topk"],
                        k=(1, 3, 5),
                        inv_propensity=inv_p,
                        filter=d["filter_test"],
                    )
                    cells = [name, f"{title} ({variant})"]
                    cells += [f"{100 * m[c]:.2f}" for c in METRIC_COLUMNS]
                    cells += [
                        f"{r['fit_s']:.1f}",
                        f"{1000 * r['predict_s'] / n_test:.3f}",
                        f"{r['single_ms']:.3f}",
                    ]
                    print_table_row(cells)


if __name__ == "__main__":
    sys.exit(main())
