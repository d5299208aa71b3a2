"""Would a frozen MiniLM move DECAF's P@1 / PSP@1 frontier? A probe of a saved fit.

Issue 12 asks for one operating point at P@1 >= 78.6 and PSP@1 >= 42.6 at once on
LF-DebianPackages. DECAF / ECLARE Run D reach either (P@1 79.4 at tilt 0, PSP@1
43.2 at tilt 0.4) but not both: the propensity tilt trades one for the other
along a frontier that passes ~5 P@1 below the target. Zero-shot MiniLM has the
best PSP@1 of every model (40.58) at a poor P@1 (32.02). This probe asks, before
anything is built into the estimators, whether giving DECAF's learned fusion
the frozen encoder's view moves that frontier, and by how much:

- ``base``: the saved model's shortlists and fusion features, the fusion refit
  on part A of its own held-out fusion rows (the rows its network, re-ranker
  and fusion did not train on);
- ``+cos``: the same plus one feature, the MiniLM cosine of document and label
  text (the fusion adds its within-row rank);
- ``+cos+ids``: also the ``--extra`` labels of highest MiniLM cosine added to
  every shortlist (what the encoder finds that DECAF's shortlists miss).

The operating point (variant, tilt) is chosen on part B of the fusion rows
(LF-filtered), by the rule "largest min(P@1 / 78.6, PSP@1 / 42.6)"; only then is
it read on the test set. The full test curve is printed too, for the record,
marked as not used for any choice. Embeddings: ``--embeddings`` holds
``labels.npy``, ``train.npy``, ``test.npy`` (unit rows of the frozen encoder,
mean pooling, max length 64), written first by ``--write-embeddings ENCODER``
(about 12 minutes on 2 cores for LF-DebianPackages):

    PYTHONPATH=. python benchmarks/bench_decaf_encoder_fusion.py --embeddings \\
        /tmp/minilm --write-embeddings ../shared/models/all-MiniLM-L6-v2-fp16

    PYTHONPATH=. python benchmarks/bench_decaf_encoder_fusion.py \\
        /work/models/decaf_runD_v2.pkl --embeddings /work/models/minilm
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_benchmark_data, machine_line

TARGET_P1, TARGET_PSP1 = 78.6, 42.6
TILTS = (0.0, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)


def write_embeddings(encoder: str, folder: Path) -> None:
    """``labels.npy``, ``train.npy``, ``test.npy``: float16 unit embeddings of
    LF-DebianPackages' label texts and documents by the frozen ``encoder``."""
    from _common import load_lf_debian

    from skxmc.models import EncoderComponent
    from skxmc.nn._text_encoder import read_pooling
    from skxmc.nn._transformer import load_encoder

    d = load_lf_debian()
    component = EncoderComponent(
        *load_encoder(encoder), pooling=read_pooling(encoder) or "cls", max_length=64
    )
    folder.mkdir(parents=True, exist_ok=True)
    for name, texts in (
        ("labels", d["label_text"]),
        ("test", d["text_test"]),
        ("train", d["text_train"]),
    ):
        start = time.perf_counter()
        np.save(folder / f"{name}.npy", component.encode(texts).astype(np.float16))
        print(f"# {name}: {len(texts)} texts in {time.perf_counter() - start:.0f} s")


def fit_seed(random_state: int) -> int:
    """The seed a skxmc estimator's fit draws from ``random_state``."""
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def encoder_top(doc: np.ndarray, labels: np.ndarray, m: int) -> np.ndarray:
    """The ``m`` labels of highest cosine for each document row (best first)."""
    out = np.empty((doc.shape[0], m), dtype=np.int64)
    L = torch.from_numpy(labels)
    for start in range(0, doc.shape[0], 512):
        sims = torch.from_numpy(doc[start : start + 512]) @ L.T
        out[start : start + 512] = torch.topk(sims, m, dim=1).indices.numpy()
    return out


class _FixedNeighbours:
    """Stands in for the engine's nearest-label index (``_ann``): answers the
    rows of the current block with precomputed label ids."""

    def __init__(self, ids):
        self.ids = ids

    def query(self, x, k):
        return None, self.ids[:, :k]


def pair_features(model, X, doc, labels, extra_ids=None):
    """``(features, candidates)`` of the saved model's fusion for the rows of
    ``X`` with the MiniLM cosine appended as the last feature; with
    ``extra_ids`` (one row per row of ``X``) those labels join each
    shortlist, through the engine's nearest-label step (``ann_shortlist_size``)."""
    from dataclasses import replace

    scoring = model.config.scoring
    if extra_ids is not None:
        scoring = replace(scoring, ann_shortlist_size=extra_ids.shape[1])
    feats, cands = [], []
    block = 256
    saved = model._ann
    try:
        for start in range(0, X.shape[0], block):
            stop = min(start + block, X.shape[0])
            if extra_ids is not None:
                model._ann = _FixedNeighbours(extra_ids[start:stop])
            f, c = model._pair_features(
                X[start:stop], torch.device("cpu"), scoring=scoring
            )
            safe = np.maximum(c, 0)
            columns = [f]
            for table in labels:  # one cosine column per label-side matrix
                cos = np.einsum("rd,rmd->rm", doc[start:stop], table[safe])
                cos[c < 0] = 0.0
                columns.append(cos[..., None].astype(np.float32))
            feats.append(np.concatenate(columns, axis=2))
            cands.append(c)
    finally:
        model._ann = saved
    width = max(c.shape[1] for c in cands)
    n_f = feats[0].shape[2]
    F = np.zeros((X.shape[0], width, n_f), np.float32)
    C = np.full((X.shape[0], width), -1, np.int64)
    row = 0
    for f, c in zip(feats, cands):
        F[row : row + len(c), : c.shape[1]] = f
        C[row : row + len(c), : c.shape[1]] = c
        row += len(c)
    return F, C


def topk_of(scores, model, C, tilt, k=5):
    """Top ``k`` of the fusion's pair ``scores`` times the tilt factors."""
    if tilt:
        scores = scores * model._tilt_factors(tilt)[np.maximum(C, 0)]
    scores = np.where(C >= 0, scores, -np.inf).astype(np.float32)
    s, pos = torch.topk(torch.from_numpy(scores), min(k, C.shape[1]), dim=1)
    ids = np.take_along_axis(C, pos.numpy(), axis=1)
    s = s.numpy()
    return s, np.where(np.isfinite(s), ids, -1)


def report(Y, topk, inv_p, filt):
    from skxmc.metrics import xmc_report

    r = xmc_report(Y, topk, k=(1, 5), inv_propensity=inv_p, filter=filt)
    return {key: 100 * r[key] for key in ("P@1", "P@5", "PSP@1", "PSP@5")}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "model", nargs="?", help="pickle written by bench_decaf.py --save"
    )
    parser.add_argument(
        "--write-embeddings",
        metavar="ENCODER",
        help="encode labels, training and test documents into --embeddings, then stop",
    )
    parser.add_argument("--embeddings", required=True)
    parser.add_argument("--extra", type=int, default=50)
    parser.add_argument("--validation-share", type=float, default=0.3)
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)
    from skxmc.indexing import ScoreFusion
    from skxmc.metrics import inverse_propensity

    if args.write_embeddings:
        write_embeddings(args.write_embeddings, Path(args.embeddings))
        return

    print(f"# date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"{machine_line()}, load average {os.getloadavg()[0]:.2f} at start")
    print(
        "# command: python benchmarks/bench_decaf_encoder_fusion.py "
        + " ".join(sys.argv[1:])
    )
    start = time.perf_counter()
    d = load_benchmark_data("debian")
    with open(args.model, "rb") as f:
        clf = pickle.load(f)
    model = clf.model_
    emb = Path(args.embeddings)
    labels = np.load(emb / "labels.npy").astype(np.float32)
    train = np.load(emb / "train.npy").astype(np.float32)
    test = np.load(emb / "test.npy").astype(np.float32)
    for a in (labels, train, test):
        a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)

    # the fit's own held-out fusion rows (DecafModel._fit's split)
    from skxmc.training._data import hold_out_rows

    seed = fit_seed(args.random_state)
    n = d["X_train"].shape[0]
    fusion_rows, rows = hold_out_rows(
        np.arange(n), model.config.fusion_fraction, seed + 1, "fusion_fraction"
    )
    counts = np.log1p(
        np.bincount(d["Y_train"][rows].indices, minlength=model.n_labels_)
    )
    if not np.array_equal(counts.astype(np.float32), model._log_frequency):
        raise SystemExit("the fusion rows do not match the saved fit's split")
    order = np.random.default_rng(seed + 2).permutation(fusion_rows)
    n_val = round(args.validation_share * len(order))
    val_rows, fit_rows = np.sort(order[:n_val]), np.sort(order[n_val:])
    print(
        f"# {type(clf).__name__} {args.model}; fusion rows of the fit: "
        f"{len(fusion_rows)} (A, fusion fit: {len(fit_rows)}; B, choice: "
        f"{len(val_rows)}); test {d['X_test'].shape[0]}; MiniLM extra candidates "
        f"{args.extra} (load {time.perf_counter() - start:.0f} s)"
    )
    # each label's centroid of the encoded documents its network trained on
    centroid = d["Y_train"][rows].T.tocsr().astype(np.float32) @ train[rows]
    centroid /= np.maximum(np.linalg.norm(centroid, axis=1, keepdims=True), 1e-12)
    tables = (labels, np.asarray(centroid, dtype=np.float32))
    inv_p = inverse_propensity(d["Y_train"], A=0.55, B=1.5)
    filt_train = d.get("filter_train")
    sets = {
        "A": (fit_rows, d["X_train"][fit_rows], train[fit_rows]),
        "B": (val_rows, d["X_train"][val_rows], train[val_rows]),
        "test": (None, d["X_test"], test),
    }
    feats = {}
    for name, (r, X, doc) in sets.items():
        t0 = time.perf_counter()
        plain = pair_features(model, X, doc, tables)
        extended = pair_features(
            model, X, doc, tables, encoder_top(doc, labels, args.extra)
        )
        feats[name] = {"plain": plain, "extended": extended}
        print(
            f"# pair features of {name}: {time.perf_counter() - t0:.0f} s; "
            "shortlist width "
            f"{plain[1].shape[1]} -> {extended[1].shape[1]}",
            flush=True,
        )

    variants = {  # (shortlists, encoder columns used)
        "base": ("plain", 0),
        "+cos": ("plain", 1),
        "+cos+ids": ("extended", 1),
        "+cos+ids+centroid": ("extended", 2),
    }
    truth = {
        "B": (
            d["Y_train"][val_rows],
            None if filt_train is None else filt_train[val_rows],
        ),
        "test": (d["Y_test"], d["filter_test"]),
    }
    # check: the shipped fusion on these features gives the saved fit's figures
    F, C = feats["test"]["plain"]
    top = topk_of(model.fusion_.predict(F[:, :, :-2], C), model, C, 0.0)
    r = report(d["Y_test"], top, inv_p, d["filter_test"])
    print(
        f"# the saved fit's own fusion, test, tilt 0: P@1 {r['P@1']:.2f}, "
        f"PSP@1 {r['PSP@1']:.2f} (its bench_decaf.py figures, if the features match)"
    )
    fitted, curves = {}, {}
    for name, (which, with_cos) in variants.items():
        F, C = feats["A"][which]
        cols = slice(0, F.shape[2] - 2 + with_cos)
        t0 = time.perf_counter()
        fitted[name] = ScoreFusion(random_state=seed).fit(
            F[:, :, cols], C, d["Y_train"][fit_rows]
        )
        fit_s = time.perf_counter() - t0
        for split in ("B", "test"):
            F, C = feats[split][which]
            scores = fitted[name].predict(F[:, :, cols], C)
            for tilt in TILTS:
                top = topk_of(scores, model, C, tilt)
                curves[name, split, tilt] = report(
                    *truth[split][:1], top, inv_p, truth[split][1]
                )
        print(f"# fusion {name}: fit {fit_s:.0f} s", flush=True)

    def balance(r):
        return min(r["P@1"] / TARGET_P1, r["PSP@1"] / TARGET_PSP1)

    print(
        "| split | variant | tilt | P@1 | P@5 | PSP@1 | PSP@5 "
        "| min(P@1/78.6, PSP@1/42.6) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for split in ("B", "test"):
        shown = "test (not used for choices)" if split == "test" else split
        for name in variants:
            for tilt in TILTS:
                r = curves[name, split, tilt]
                print(
                    f"| {shown} | {name} | {tilt:g} | {r['P@1']:.2f} | {r['P@5']:.2f} "
                    f"| {r['PSP@1']:.2f} | {r['PSP@5']:.2f} | {balance(r):.4f} |"
                )
    best = max(
        ((n, t) for n in variants for t in TILTS),
        key=lambda nt: balance(curves[nt[0], "B", nt[1]]),
    )
    for name in variants:
        own = max(TILTS, key=lambda t: balance(curves[name, "B", t]))
        r, rb = curves[name, "test", own], curves[name, "B", own]
        print(
            f"# {name}: tilt chosen on B {own:g} (B: P@1 {rb['P@1']:.2f}, PSP@1 "
            f"{rb['PSP@1']:.2f}) -> test P@1 {r['P@1']:.2f}, PSP@1 {r['PSP@1']:.2f}"
        )
    r = curves[best[0], "test", best[1]]
    met = r["P@1"] >= TARGET_P1 and r["PSP@1"] >= TARGET_PSP1
    print(
        f"# chosen on B: {best[0]} at tilt {best[1]:g} -> test P@1 {r['P@1']:.2f}, "
        f"PSP@1 {r['PSP@1']:.2f} (targets {TARGET_P1} / {TARGET_PSP1}: "
        f"{'both met' if met else 'not both met'})"
    )
    total = time.perf_counter() - start
    print(f"# load average at end: {os.getloadavg()[0]:.2f}; total {total:.0f} s")


if __name__ == "__main__":
    main()
