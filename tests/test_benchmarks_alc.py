"""The read-outs of benchmarks/bench_alc.py against literal loops."""

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_alc  # benchmarks/ is no package


def _literal_curve(Y, scores, labels, F, shares):
    """Row by row: drop filtered and empty slots, keep the first two left."""
    Y, F = Y.toarray(), F.toarray()
    top1, margin, hit = [], [], []
    for i in range(len(labels)):
        left = [(s, j) for s, j in zip(scores[i], labels[i]) if j >= 0 and F[i, j] == 0]
        if not left:
            top1.append(-np.inf)
            margin.append(-np.inf)
            hit.append(False)
            continue
        top1.append(left[0][0])
        margin.append(left[0][0] - left[1][0] if len(left) > 1 else 2.0)
        hit.append(bool(Y[i, left[0][1]]))
    out = {}
    for name, confidence in (("cosine", top1), ("margin", margin)):
        first = sorted(range(len(hit)), key=lambda i: -confidence[i])  # stable
        out[name] = {
            q: np.mean([hit[i] for i in first[: max(1, int(np.ceil(q * len(hit))))]])
            for q in shares
        }
    return out


@pytest.mark.parametrize("seed", range(5))
def test_confident_precision_equals_a_literal_loop(seed):
    rng = np.random.default_rng(seed)
    n, n_labels, width = 40, 12, 4
    labels = np.stack([rng.permutation(n_labels)[:width] for _ in range(n)])
    labels[rng.random(labels.shape) < 0.15] = -1  # empty slots
    labels[rng.integers(n, size=3)] = -1  # rows with nothing retrieved
    # coarse scores: ties between rows, as cosines of near-duplicates have
    scores = -np.sort(-rng.integers(0, 5, labels.shape) / 4.0, axis=1)
    scores = np.where(labels >= 0, scores, -np.inf)
    Y = sp.csr_matrix(rng.random((n, n_labels)) < 0.3)
    F = sp.csr_matrix(rng.random((n, n_labels)) < 0.1)
    shares = (0.05, 0.3, 1.0)
    got = bench_alc.confident_precision(Y, (scores, labels), F, shares)
    want = _literal_curve(Y, scores, labels, F, shares)
    for name in ("cosine", "margin"):
        for q in shares:
            assert got[name][q] == pytest.approx(want[name][q])


def test_the_choice_on_held_out_rows_respects_the_p_at_1_floor():
    held_out = {
        "tcm": {"P@1": 0.50, "C@1 (p=0.8)": 0.0, "C@1 (p=0.9)": 0.00},
        "alc+tcm (beta 0.1)": {
            "P@1": 0.45,
            "C@1 (p=0.8)": 0.0,
            "C@1 (p=0.9)": 0.30,
        },  # too low
        "alc+tcm (beta 0.03)": {"P@1": 0.495, "C@1 (p=0.8)": 0.0, "C@1 (p=0.9)": 0.10},
        "alc+tcm (beta 0.01)": {"P@1": 0.50, "C@1 (p=0.8)": 0.0, "C@1 (p=0.9)": 0.05},
    }
    line = bench_alc.choose_on_held_out(held_out)
    assert line.startswith("chosen on the held-out rows: alc+tcm (beta 0.03)")
    del held_out["alc+tcm (beta 0.03)"], held_out["alc+tcm (beta 0.01)"]
    assert bench_alc.choose_on_held_out(held_out).startswith("no ALC fit")


def test_the_choice_reads_the_named_plain_fit_and_the_pair_scorings():
    held_out = {
        "contrastive": {"P@1": 0.40, "C@1 (p=0.8)": 0.0, "C@1 (p=0.9)": 0.00},
        "tcm": {"P@1": 0.46, "C@1 (p=0.8)": 0.0, "C@1 (p=0.9)": 0.00},
        "alc+tcm (beta 0.03)": {"P@1": 0.45, "C@1 (p=0.8)": 0.0, "C@1 (p=0.9)": 0.00},
        "alc+tcm (beta 0.03) + pair re-ranker": {
            "P@1": 0.44,
            "C@1 (p=0.8)": 0.0,
            "C@1 (p=0.9)": 0.02,
        },
    }
    line = bench_alc.choose_on_held_out(held_out, "contrastive")
    assert line.startswith(
        "chosen on the held-out rows: alc+tcm (beta 0.03) + pair re-ranker"
    )
    assert "vs contrastive 0.0" in line
    # against TCM the pair scoring is 2 points below: only the cosine is eligible
    line = bench_alc.choose_on_held_out(held_out, "tcm")
    assert line.startswith("chosen on the held-out rows: alc+tcm (beta 0.03) (")
    # the plain fit's reference is its own best held-out scoring (coverage first)
    held_out["contrastive + refined (1 ep, w 1)"] = {
        "P@1": 0.445, "C@1 (p=0.8)": 0.2, "C@1 (p=0.9)": 0.01,
    }  # fmt: skip
    line = bench_alc.choose_on_held_out(held_out, "contrastive")
    assert "vs contrastive + refined (1 ep, w 1) 1.0" in line
    assert line.startswith(
        "chosen on the held-out rows: alc+tcm (beta 0.03) + pair re-ranker"
    )
    held_out["contrastive + refined (1 ep, w 1)"]["P@1"] = 0.47  # floor 0.46
    assert bench_alc.choose_on_held_out(held_out, "contrastive").startswith(
        "no ALC fit"
    )
