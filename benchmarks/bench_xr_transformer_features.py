"""Why XR-Transformer's ranker on [TF-IDF, embedding] can lose to TF-IDF alone.

XR-Transformer's last stage is an XR-Linear ranker on
``normalize([normalize(tfidf), w * embedding])`` (w = 1 until issue 12). This
script holds the encoder fixed (all-MiniLM-L6-v2, frozen: the
``trainable_layers=0`` mode, mean pooling, max length 64) and varies only the
ranker's features on LF-FOLDOC, with XR-Transformer's own TF-IDF (unigrams,
sublinear tf) and XR-Linear's default settings:

- ``tfidf``: XR-Linear on the TF-IDF alone (the reference of issue 12's
  must-show 0);
- ``concat w``: the concatenation with the embedding block weighted ``w``
  (tree and ranker on those features);
- each with XR-Transformer's ranker ``weight_threshold`` (0.001), and the
  TF-IDF alone also with XR-Linear's (0.1).

Every variant is scored on a validation split of the training rows (20%,
seed 0; fitted on the other 80%) and on the test set (fitted on all training
rows). Settings are chosen on the validation rows only. Run::

    nice -n 10 python benchmarks/bench_xr_transformer_features.py
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict

import numpy as np
import scipy.sparse as sp
from _common import (
    SHARED,
    machine_line,
    print_table_header,
    print_table_row,
    protocol_report,
)
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from skxmc.datasets import load_xc_repo
from skxmc.indexing import XRLinearModel, hierarchical_kmeans, pifa_embedding
from skxmc.models._xr_transformer import RankerParams

ENCODER = SHARED / "models" / "all-MiniLM-L6-v2-fp16"
COLUMNS = ["P@1", "P@3", "P@5", "PSP@1", "PSP@5"]


def embed(texts, args, memory):
    """Frozen, mean-pooled, L2-normalised encoder embeddings (cached on disk)."""
    from skxmc.nn._text_encoder import TextEncoder
    from skxmc.nn._transformer import load_encoder, tokenize

    model, tokenizer = load_encoder(args.encoder)
    encoder = TextEncoder(model, pooling="mean", trainable_layers=0)
    cache = encoder.cache_states(
        tokenize(tokenizer, texts, 64),
        pad_id=tokenizer.pad_token_id,
        batch_size=64,
        memory=memory,
    )
    return normalize(encoder.encode_cached(cache))


def features(tfidf, emb, weight):
    if weight == 0:
        return normalize(tfidf).astype(np.float32)
    block = sp.csr_matrix(weight * emb)
    return normalize(sp.hstack([normalize(tfidf), block], format="csr")).astype(
        np.float32
    )


def fit_predict(F_train, Y_train, F_test, *, threshold, k=10):
    tree = hierarchical_kmeans(pifa_embedding(F_train, Y_train), random_state=0)
    params = {**asdict(RankerParams()), "weight_threshold": threshold}
    ranker = XRLinearModel.train(F_train, Y_train, tree, **params)
    return ranker.predict_topk(F_test, k, beam_size=10, post_processor="l3-hinge")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", default=str(ENCODER))
    parser.add_argument("--data", default=str(SHARED / "data" / "LF-FOLDOC"))
    parser.add_argument(
        "--weights", type=float, nargs="*", default=[0, 1.0, 0.5, 0.3, 0.2, 0.1]
    )
    parser.add_argument("--memory", default=os.environ.get("TMPDIR", "/tmp"))
    args = parser.parse_args()
    print(machine_line())
    print(f"# load average at start: {os.getloadavg()}")
    data = load_xc_repo(args.data)
    texts_train, texts_test = list(data.text_train), list(data.text_test)
    n = len(texts_train)
    rng = np.random.default_rng(0)
    val = np.sort(rng.choice(n, size=n // 5, replace=False))
    fit_rows = np.setdiff1d(np.arange(n), val)
    print(
        f"# {args.data}: {n} train ({len(fit_rows)} fit + {len(val)} validation), "
        f"{len(texts_test)} test, {data.Y_train.shape[1]} labels"
    )
    start = time.perf_counter()
    memory = os.path.join(args.memory, "skxmc-bench-states")
    emb_train = embed(texts_train, args, memory)
    emb_test = embed(texts_test, args, memory)
    print(f"# encoding (frozen MiniLM, cached in {memory}): "
          f"{time.perf_counter() - start:.1f} s")  # fmt: skip

    def tfidf_of(train_texts, test_texts):
        vectorizer = TfidfVectorizer(sublinear_tf=True, dtype=np.float32)
        return vectorizer.fit_transform(train_texts), vectorizer.transform(test_texts)

    splits = {
        "validation": (
            fit_rows, val,
            {"Y_train": data.Y_train[fit_rows], "Y_test": data.Y_train[val],
             "filter_test": None},
        ),
        "test": (
            np.arange(n), None,
            {"Y_train": data.Y_train, "Y_test": data.Y_test,
             "filter_test": data.filter_test},
        ),
    }  # fmt: skip
    print_table_header(["split", "features", *COLUMNS, "fit+predict s"])
    for split, (rows, held, d) in splits.items():
        held_texts = [texts_train[i] for i in held] if held is not None else texts_test
        T_train, T_test = tfidf_of([texts_train[i] for i in rows], held_texts)
        E_train = emb_train[rows]
        E_test = emb_train[held] if held is not None else emb_test
        variants = [(0, 0.1)] + [
            (w, RankerParams().weight_threshold) for w in args.weights
        ]
        for w, threshold in variants:
            start = time.perf_counter()
            topk = fit_predict(
                features(T_train, E_train, w),
                d["Y_train"],
                features(T_test, E_test, w),
                threshold=threshold,
            )
            seconds = time.perf_counter() - start
            m = protocol_report(d, topk)
            name = "tfidf" if w == 0 else f"concat w={w:g}"
            name += f", weight_threshold {threshold:g}"
            cells = [split, name, *(f"{100 * m[c]:.2f}" for c in COLUMNS)]
            print_table_row([*cells, f"{seconds:.1f}"])
    print(f"# load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
