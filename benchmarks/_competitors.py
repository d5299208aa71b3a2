"""Train and time libpecos XR-Linear or napkinXC PLT on features saved by a benchmark.

Run inside the separate competitor environment (libpecos pins numpy<2), e.g.::

    /opt/xmc-bench/bin/python benchmarks/_competitors.py pecos features.npz out.npz

It needs only numpy, scipy and the competitor library; it writes the top-k
predictions (scores, indices) and the timings to ``out.npz`` so that the calling
benchmark scores every method with the same skxmc.metrics code.
"""

import argparse
import json
import tempfile
import time

import numpy as np
import scipy.sparse as sp


def _load(path):
    data = np.load(path, allow_pickle=False)

    def csr(prefix):
        return sp.csr_matrix(
            (
                data[f"{prefix}_data"],
                data[f"{prefix}_indices"],
                data[f"{prefix}_indptr"],
            ),
            shape=tuple(data[f"{prefix}_shape"]),
        )

    names = {k.rsplit("_", 1)[0] for k in data.files if k.endswith("_shape")}
    return {name: csr(name) for name in names}


def _topk_from_csr(P, k):
    n = P.shape[0]
    scores = np.full((n, k), -np.inf, np.float32)
    indices = np.full((n, k), -1, np.int64)
    for i in range(n):
        row = slice(P.indptr[i], P.indptr[i + 1])
        order = np.argsort(-P.data[row], kind="stable")[:k]
        scores[i, : len(order)] = P.data[row][order]
        indices[i, : len(order)] = P.indices[row][order]
    return scores, indices


def run_pecos(d, args):
    from pecos.xmc import Indexer, LabelEmbeddingFactory
    from pecos.xmc.xlinear.model import XLinearModel

    X, Y, Xt = d["X_train"], d["Y_train"], d["X_test"]
    start = time.perf_counter()
    if args.label_features:
        Z = LabelEmbeddingFactory.create(
            Y, X, Z=d["label_features"], method="pifa_lf_concat"
        )
    else:
        Z = LabelEmbeddingFactory.create(Y, X, method="pifa")
    C = Indexer.gen(
        Z, indexer_type="hierarchicalkmeans", nr_splits=16, max_leaf_size=100, seed=0
    )
    model = XLinearModel.train(
        X, Y, C=C, threshold=0.1, Cp=1.0, Cn=1.0, negative_sampling_scheme="tfn+man"
    )
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    P = model.predict(
        Xt, beam_size=args.beam, only_topk=args.k, post_processor="l3-hinge"
    )
    predict_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        model.save(tmp)
        fast = XLinearModel.load(tmp, is_predict_only=True)
        n_single = min(args.n_single, Xt.shape[0])
        start = time.perf_counter()
        for i in range(n_single):
            fast.predict(
                Xt[i],
                beam_size=args.beam,
                only_topk=args.k,
                post_processor="l3-hinge",
                threads=1,
            )
        single_s = (time.perf_counter() - start) / n_single
    return _topk_from_csr(P.tocsr(), args.k), fit_s, predict_s, single_s


def run_napkinxc(d, args):
    from napkinxc.models import PLT

    X, Y, Xt = d["X_train"], d["Y_train"], d["X_test"]
    labels = [
        Y.indices[Y.indptr[i] : Y.indptr[i + 1]].tolist() for i in range(Y.shape[0])
    ]
    with tempfile.TemporaryDirectory() as tmp:
        model = PLT(
            tmp,
            tree_type="hierarchicalKmeans",
            arity=2,
            max_leaves=100,
            liblinear_c=10,
            threads=args.threads,
        )
        start = time.perf_counter()
        model.fit(X, labels)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        pred = model.predict_proba(Xt, top_k=args.k)
        predict_s = time.perf_counter() - start
        n_single = min(args.n_single, Xt.shape[0])
        start = time.perf_counter()
        for i in range(n_single):
            model.predict_proba(Xt[i], top_k=args.k)
        single_s = (time.perf_counter() - start) / n_single
    scores = np.full((Xt.shape[0], args.k), -np.inf, np.float32)
    indices = np.full((Xt.shape[0], args.k), -1, np.int64)
    for i, row in enumerate(pred):
        for j, (label, prob) in enumerate(row[: args.k]):
            scores[i, j], indices[i, j] = prob, label
    return (scores, indices), fit_s, predict_s, single_s


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("method", choices=["pecos", "napkinxc"])
    parser.add_argument("features")
    parser.add_argument("out")
    parser.add_argument("--label-features", action="store_true")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--beam", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-single", type=int, default=500)
    args = parser.parse_args()
    d = _load(args.features)
    runner = run_pecos if args.method == "pecos" else run_napkinxc
    (scores, indices), fit_s, predict_s, single_s = runner(d, args)
    timings = {"fit_s": fit_s, "predict_s": predict_s, "single_ms": 1000 * single_s}
    np.savez(args.out, scores=scores, indices=indices, timings=json.dumps(timings))
    print(json.dumps(timings))


if __name__ == "__main__":
    main()
