"""Peak memory of each stage of an ELIAS fit (issue 15): where does RSS grow?

One :class:`~skxmc.EliasClassifier` fit with ``bench_scaling.py``'s ELIAS
settings (tiny random BERT of :func:`skxmc.utils._testing.tiny_bert_dir`,
max_length 24, one epoch per stage, batch 128, one row per label) on
:func:`skxmc.datasets.make_xmc_classification`. Every stage (TF-IDF, k-means,
tokenisation, each training stage, the cluster-score matrix M, the adjacency
re-estimation, the re-ranker and its two parts) prints its RSS before and
after and its own peak RSS: the peak is reset on entry by writing ``5`` to
``/proc/self/clear_refs`` (Linux), and a nested stage's peak counts towards
its parent's. The end prints the largest stage peak (the fit's peak RSS:
resetting the peak also resets ``ru_maxrss``) and the RSS after
``malloc_trim(0)`` (glibc): memory freed but kept by the allocator::

    python benchmarks/profile_elias_memory.py --n-labels 50000
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import threading
import time


def _rss() -> dict[str, float]:
    """Current (``VmRSS``) and peak (``VmHWM``) resident memory in GB."""
    out = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmHWM", "VmRSS")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) / 2**20
    return out


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


_open_peaks: list[float] = []  # running peak of every stage in progress
_fit_peak = [0.0]  # the largest peak of any stage


def _watch(owner, name: str, label: str) -> None:
    """Replace ``owner.name`` by a wrapper that prints the stage's memory."""
    inner = getattr(owner, name)

    @functools.wraps(inner)
    def stage(*args, **kwargs):
        now = _rss()
        if _open_peaks:
            _open_peaks[-1] = max(_open_peaks[-1], now["VmHWM"])
        _reset_peak()
        _open_peaks.append(now["VmRSS"])
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            peak = max(_open_peaks.pop(), _rss()["VmHWM"])
            if _open_peaks:
                _open_peaks[-1] = max(_open_peaks[-1], peak)
            _fit_peak[0] = max(_fit_peak[0], peak)
            after = _rss()["VmRSS"]
            print(
                f"| {label} | {len(_open_peaks)} | {now['VmRSS']:.3f} | "
                f"{after:.3f} | {peak:.3f} | {time.perf_counter() - start:.1f} |",
                flush=True,
            )

    setattr(owner, name, stage)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-labels", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from sklearn.feature_extraction.text import TfidfVectorizer

    import skxmc.indexing as indexing
    import skxmc.indexing._rerank as rerank
    import skxmc.models._elias as engine
    import skxmc.nn._transformer as transformer
    from skxmc import EliasClassifier
    from skxmc.datasets import make_xmc_classification
    from skxmc.utils._testing import tiny_bert_dir

    for owner, name, label in [
        (TfidfVectorizer, "fit_transform", "tfidf"),
        (indexing, "hierarchical_kmeans", "k-means"),
        (transformer, "tokenize", "tokenize"),
        (engine, "_train_stage", "training stage"),
        (engine, "_cluster_scores_matrix", "M"),
        (indexing, "reestimate_adjacency", "re-estimation"),
        (engine.EliasModel, "_train_reranker", "re-ranker"),
        (engine.EliasModel, "elias_topk", "elias_topk"),
        (rerank.ShortlistReranker, "train", "re-ranker train"),
    ]:
        _watch(owner, name, label)

    def sample() -> None:  # shows growth inside a long stage
        while True:
            time.sleep(60)
            print(f"# sample: RSS {_rss()['VmRSS']:.3f} GB", flush=True)

    threading.Thread(target=sample, daemon=True).start()
    n = args.n_labels
    d = make_xmc_classification(
        n_samples=n, n_labels=n, n_features=max(2000, n // 5),
        avg_labels_per_sample=3.0, return_text=True, random_state=args.seed,
    )  # fmt: skip
    print(f"# {n} labels and rows; after the data: RSS {_rss()['VmRSS']:.3f} GB")
    print("| stage | depth | RSS before GB | RSS after GB | peak GB | s |")
    print("|---|---|---|---|---|---|")
    clf = EliasClassifier(
        encoder=tiny_bert_dir(), max_length=24, n_epochs=(1, 1), batch_size=128,
        device="cpu", n_jobs=1, random_state=args.seed,
    )  # fmt: skip
    start = time.perf_counter()
    clf.fit(d.text, d.Y)
    # clear_refs also resets ru_maxrss: the process peak is the stages' largest
    peak = max(_fit_peak[0], _rss()["VmHWM"])
    print(
        f"# fit {time.perf_counter() - start:.1f} s; peak RSS of the fit {peak:.3f} GB"
    )
    weights = clf.reranker_.weights
    print(f"# re-ranker weights {weights.shape}, {weights.nnz} stored")
    print(f"# RSS at the end {_rss()['VmRSS']:.3f} GB", end="")
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    print(f", after malloc_trim(0) {_rss()['VmRSS']:.3f} GB")


if __name__ == "__main__":
    main()
