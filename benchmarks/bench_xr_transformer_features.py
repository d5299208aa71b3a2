"""Why XR-Transformer's ranker on [TF-IDF, embedding] lost to TF-IDF alone.

XR-Transformer's last stage is an XR-Linear ranker on TF-IDF plus the
encoder's embedding. Until issue 12 the features were
``normalize([normalize(tfidf), e])``: TF-IDF and the 384 dense embedding
columns at equal weight. The ranker is row-scale robust (it trains on
``X / feature_scale(X)``), so the re-normalisation itself changes nothing:
that recipe scores exactly as ``[normalize(tfidf), 1 * e]``. What matters
is the weight of the embedding block. Since issue 12 the features are
``[normalize(tfidf), w * e]`` (PECOS's ``concat_features``) with ``w``
chosen on validation rows among ``EMBEDDING_WEIGHTS`` (0 = TF-IDF alone,
exactly XR-Linear on the same TF-IDF).

This script holds the encoder fixed (all-MiniLM-L6-v2, frozen: the
``trainable_layers=0`` mode, mean pooling, max length 64) and varies only
the ranker's features on LF-FOLDOC, with XR-Transformer's own TF-IDF
(unigrams, sublinear tf) and ranker settings (``RankerParams``), tree and
ranker from the engine's own functions. Every variant is scored on a
validation split of the training rows (20%, seed 0; fitted on the other
80%); the weight is chosen there (mean of P@1, P@3, P@5, as the estimator
does), and the test set (fit on all training rows) is read for the TF-IDF
alone, the old recipe and the chosen weight. Run::

    nice -n 10 python benchmarks/bench_xr_transformer_features.py \
        --embeddings /tmp/minilm-foldoc
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from _common import (
    SHARED,
    machine_line,
    print_table_header,
    print_table_row,
    protocol_report,
)
from sklearn.preprocessing import normalize

from skxmc.datasets import load_xc_repo
from skxmc.indexing import XRLinearModel, pifa_embedding
from skxmc.models._text_features import fit_tfidf
from skxmc.models._xr_transformer import (
    EMBEDDING_WEIGHTS,
    RankerParams,
    TreeParams,
    _build_tree,
    _concat_features,
)

ENCODER = SHARED / "models" / "all-MiniLM-L6-v2-fp16"
COLUMNS = ["P@1", "P@3", "P@5", "PSP@1", "PSP@5"]
OLD = None  # _concat_features' weight for the recipe before issue 12


def embed(texts, args, name):
    """Frozen, mean-pooled, L2-normalised embeddings (kept in --embeddings)."""
    path = Path(args.embeddings) / f"minilm_frozen_{name}.npy"
    if path.is_file():
        return np.load(path)
    from skxmc.nn._text_encoder import TextEncoder
    from skxmc.nn._transformer import load_encoder, tokenize

    model, tokenizer = load_encoder(args.encoder)
    encoder = TextEncoder(model, pooling="mean", trainable_layers=0)
    cache = encoder.cache_states(
        tokenize(tokenizer, texts, 64), pad_id=tokenizer.pad_token_id, batch_size=64
    )
    emb = normalize(encoder.encode_cached(cache))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, emb)
    return emb


def fit_predict(F_train, Y_train, F_test, k=10, weight_threshold=None):
    ranker_params = RankerParams()
    if weight_threshold is not None:
        ranker_params = replace(ranker_params, weight_threshold=weight_threshold)
    tree = _build_tree(pifa_embedding(F_train, Y_train), TreeParams(), 0, None)
    ranker = XRLinearModel.train(F_train, Y_train, tree, **asdict(ranker_params))
    return ranker.predict_topk(
        F_test, k, beam_size=ranker_params.beam_size, post_processor="l3-hinge"
    )


def name_of(weight):
    if weight is OLD:
        return "old: normalize([tfidf, e])"
    if weight == 0:
        return "tfidf alone (w=0)"
    return f"new: [tfidf, {weight:g} e]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", default=str(ENCODER))
    parser.add_argument("--data", default=str(SHARED / "data" / "LF-FOLDOC"))
    parser.add_argument("--embeddings", default="/tmp/skxmc-minilm-foldoc")
    parser.add_argument(
        "--weights",
        type=float,
        nargs="*",
        default=list(EMBEDDING_WEIGHTS),
        help="embedding weights tried on the validation rows (0 always is)",
    )
    parser.add_argument(
        "--weight-threshold",
        type=float,
        default=None,
        help="the ranker's weight_threshold (default: RankerParams')",
    )
    parser.add_argument("--skip-test", action="store_true", help="validation rows only")
    parser.add_argument(
        "--tfidf-only",
        action="store_true",
        help="no encoder: the TF-IDF alone (w=0), i.e. XR-Linear on "
        "XR-Transformer's TF-IDF, on the validation rows and the test set",
    )
    parser.add_argument(
        "--skip-old-validation",
        action="store_true",
        help="do not score the old recipe on the validation rows",
    )
    args = parser.parse_args()
    print(machine_line())
    print(f"# load average at start: {os.getloadavg()}")
    threshold = args.weight_threshold
    if threshold is None:
        threshold = RankerParams().weight_threshold
    print(f"# ranker weight_threshold: {threshold:g}")
    data = load_xc_repo(args.data)
    texts_train, texts_test = list(data.text_train), list(data.text_test)
    n = len(texts_train)
    val = np.sort(np.random.default_rng(0).choice(n, size=n // 5, replace=False))
    fit_rows = np.setdiff1d(np.arange(n), val)
    print(
        f"# {args.data}: {n} train ({len(fit_rows)} fit + {len(val)} validation), "
        f"{len(texts_test)} test, {data.Y_train.shape[1]} labels"
    )
    start = time.perf_counter()
    if args.tfidf_only:  # w=0 never reads the embeddings
        emb_train = np.zeros((n, 1), np.float32)
        emb_test = np.zeros((len(texts_test), 1), np.float32)
    else:
        emb_train = embed(texts_train, args, "train")
        emb_test = embed(texts_test, args, "test")
    print(f"# embeddings: {time.perf_counter() - start:.1f} s (0 if read back)")

    def tfidf_of(train_texts, test_texts):
        vectorizer, X_train = fit_tfidf(train_texts)  # XR-Transformer's own
        return X_train, vectorizer.transform(test_texts)

    print_table_header(["split", "ranker features", *COLUMNS, "fit+predict s"])

    def run(split, T_train, E_train, Y_train, T_test, E_test, d, weight):
        start = time.perf_counter()
        topk = fit_predict(
            _concat_features(T_train, E_train, weight),
            Y_train,
            _concat_features(T_test, E_test, weight),
            weight_threshold=args.weight_threshold,
        )
        seconds = time.perf_counter() - start
        m = protocol_report(d, topk)
        cells = [split, name_of(weight), *(f"{100 * m[c]:.2f}" for c in COLUMNS)]
        print_table_row([*cells, f"{seconds:.1f}"])
        return m

    # validation: fit on 80% of the training rows, score the other 20%
    T_fit, T_val = tfidf_of(
        [texts_train[i] for i in fit_rows], [texts_train[i] for i in val]
    )
    d_val = {
        "Y_train": data.Y_train[fit_rows],
        "Y_test": data.Y_train[val],
        "filter_test": None,
    }
    selection = {}
    weights = [0.0] if args.tfidf_only else sorted({0.0, *args.weights})
    old = [] if args.skip_old_validation or args.tfidf_only else [OLD]
    for weight in old + weights:
        m = run(
            "validation", T_fit, emb_train[fit_rows], data.Y_train[fit_rows],
            T_val, emb_train[val], d_val, weight,
        )  # fmt: skip
        if weight is not OLD:
            selection[weight] = np.mean([m["P@1"], m["P@3"], m["P@5"]])
    chosen = max(selection, key=lambda w: (selection[w], -w))
    print(f"# chosen on validation (mean of P@1, P@3, P@5): w = {chosen:g}")
    if args.skip_test:
        print(f"# load average at end: {os.getloadavg()}")
        return

    # test: fit on all training rows
    T_train, T_test = tfidf_of(texts_train, texts_test)
    d_test = {
        "Y_train": data.Y_train,
        "Y_test": data.Y_test,
        "filter_test": data.filter_test,
    }
    for weight in dict.fromkeys((0.0, chosen) + (() if args.tfidf_only else (OLD,))):
        run("test", T_train, emb_train, data.Y_train, T_test, emb_test, d_test, weight)
    print(f"# load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
