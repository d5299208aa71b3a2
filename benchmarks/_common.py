"""What the benchmark scripts share: data per BENCHMARKS.md, metrics, timing, tables."""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import platform
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from skxmc.datasets import load_xc_repo
from skxmc.utils import fit_stable_vocabulary

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SKXMC_SHARED_DIR", ROOT.parent / "shared"))
# Columns of xmc_report printed by the accuracy benchmarks, as percentages.
METRIC_COLUMNS = ["P@1", "P@3", "P@5", "nDCG@5", "PSP@1", "PSP@3", "PSP@5"]
# What the benchmarks read of an LF data set (texts, then 0/1 matrices).
LF_KEYS = ("text_train", "text_test", "label_text", "Y_train", "Y_test", "filter_test")
_TEXT_KEYS = LF_KEYS[:3]
_MATRIX_KEYS = LF_KEYS[3:]
#: Carried (and fingerprinted) where the data have it: the training rows'
#: reciprocal pairs, removed from held-out training rows as the test filter
#: is from the test rows. Bundles written before it read as before.
_OPTIONAL_MATRIX_KEYS = ("filter_train",)


#: DECAF "Run D" of results/decaf_cpu.txt (2+2 epochs on 2 CPU cores): the
#: settings of every benchmark that fits DECAF / ECLARE at its best.
DECAF_RUN_D = {
    "embedding_dim": 256,
    "n_epochs": 2,
    "batch_size": 512,
    "learning_rate": 0.02,
    "max_leaf_size": 8,
    "beam_size": 32,
    "text_shortlist_size": 50,
    "max_label_tokens": 32,
    "fusion": "learned",
    "fusion_fraction": 0.1,
    "reranker": "xr-linear",
    "rerank_size": 50,
}


#: The BENCHMARKS.md TF-IDF beyond sublinear tf and float32 (the defaults of
#: the encoder engines' own TF-IDF, whose ``tfidf_params`` take this dict).
BENCHMARK_TFIDF_PARAMS = {"ngram_range": (1, 2), "min_df": 2, "max_features": 200_000}


def benchmark_vectorizer() -> TfidfVectorizer:
    """The BENCHMARKS.md TF-IDF, unfitted: 1-2 grams, sublinear tf, min_df=2,
    at most 200,000 features."""
    return TfidfVectorizer(
        sublinear_tf=True, dtype=np.float32, **BENCHMARK_TFIDF_PARAMS
    )


def tfidf_features(d: dict, fit=fit_stable_vocabulary) -> dict:
    """``d`` plus the BENCHMARKS.md TF-IDF of its documents and label texts.

    ``X_train``, ``X_test`` and ``label_features``: :func:`benchmark_vectorizer`
    fitted on the train documents and the label texts by ``fit(vectorizer,
    texts)`` (by default the 200,000-term cut through tied counts that is the
    same on every machine; check_tfidf_ties.py compares scikit-learn's own);
    ``feature_names``: the terms of the columns.
    """
    vectorizer = fit(
        benchmark_vectorizer(), list(d["text_train"]) + list(d["label_text"])
    )
    return {
        **d,
        "X_train": vectorizer.transform(d["text_train"]),
        "X_test": vectorizer.transform(d["text_test"]),
        "label_features": vectorizer.transform(d["label_text"]),
        "feature_names": vectorizer.get_feature_names_out(),
    }


def _lf_keys(data) -> dict:
    """What the benchmarks read of an LF data set (a ``load_xc_repo`` Bunch)."""
    out = {key: data[key] for key in LF_KEYS}
    for key in _OPTIONAL_MATRIX_KEYS:
        if data.get(key) is not None:
            out[key] = data[key]
    return out


def load_lf_debian(bundle: str | os.PathLike | None = None) -> dict:
    """LF-DebianPackages' texts, labels and test filter (no features).

    From ``<shared>/data/LF-DebianPackages``, or from a bundle folder written
    by :func:`write_lf_bundle` (``<bundle>/lf_debian``), whose content is
    checked against the fingerprint stored beside it.
    """
    if bundle is not None:
        return read_lf_bundle(Path(bundle) / "lf_debian")
    return _lf_keys(load_xc_repo(SHARED / "data" / "LF-DebianPackages"))


def load_debian_sample() -> dict:
    """The LF-DebianPackages sample shipped with skxmc, as :func:`load_lf_debian`."""
    from skxmc.datasets import load_debian_packages_sample

    return _lf_keys(load_debian_packages_sample())


def load_benchmark_data(name: str, bundle=None) -> dict:
    """Features per BENCHMARKS.md: TF-IDF for LF data, L2-normalised BoW for Mulan.

    ``name`` is "debian" (LF-DebianPackages, with raw and label text; read
    from ``bundle`` when given, see :func:`load_lf_debian`), "debian-sample"
    (the sample shipped with skxmc), "foldoc" (LF-FOLDOC), "bibtex" or
    "delicious".
    """
    if name == "debian":
        return tfidf_features(load_lf_debian(bundle))
    if name == "foldoc":
        return tfidf_features(_lf_keys(load_xc_repo(SHARED / "data" / "LF-FOLDOC")))
    if name == "debian-sample":
        return tfidf_features(load_debian_sample())
    folder = {"bibtex": "Bibtex", "delicious": "Delicious"}[name]
    data = load_xc_repo(SHARED / "data" / folder)
    return {
        "X_train": normalize(data.X_train).astype(np.float32),
        "X_test": normalize(data.X_test).astype(np.float32),
        "Y_train": data.Y_train,
        "Y_test": data.Y_test,
        "label_features": None,
        "filter_test": None,
    }


# --------------------------------------------------------------------------- #
# A compact copy of an LF data set, for a machine without ../shared
# --------------------------------------------------------------------------- #


def lf_fingerprint(d: dict) -> dict:
    """Shapes, counts and SHA-256 digests of the :data:`LF_KEYS` of ``d``.

    Two data dicts with equal fingerprints hold the same texts and the same
    0/1 matrices (CSR structure and values, indices sorted first).
    """
    out = {}
    for key in _TEXT_KEYS:
        blob = json.dumps(list(d[key]), ensure_ascii=False).encode()
        out[key] = {"n": len(d[key]), "sha256": hashlib.sha256(blob).hexdigest()}
    for key in _matrix_keys(d):
        m = sp.csr_matrix(d[key], copy=True)
        m.sort_indices()
        digest = hashlib.sha256()
        for part in (m.indptr.astype(np.int64), m.indices.astype(np.int64), m.data):
            digest.update(np.ascontiguousarray(part).tobytes())
        out[key] = {
            "shape": list(m.shape),
            "nnz": int(m.nnz),
            "dtype": str(m.dtype),
            "sha256": digest.hexdigest(),
        }
    return out


def write_lf_bundle(d: dict, folder) -> dict:
    """Store the :data:`LF_KEYS` of ``d`` compactly in ``folder``.

    ``text.json.xz`` holds the three text lists (xz, about 7.7 MB for
    LF-DebianPackages against 12.6 MB for its gzip'ed JSON lines),
    ``labels.npz`` the CSR parts of the matrices, ``fingerprint.json`` their
    :func:`lf_fingerprint`. Returns the fingerprint.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    texts = {key: list(d[key]) for key in _TEXT_KEYS}
    with lzma.open(folder / "text.json.xz", "wb", preset=9) as f:
        f.write(json.dumps(texts, ensure_ascii=False).encode())
    arrays = {}
    for key in _matrix_keys(d):
        m = sp.csr_matrix(d[key])
        arrays.update(
            {
                f"{key}.indptr": m.indptr,
                f"{key}.indices": m.indices,
                f"{key}.data": m.data,
                f"{key}.shape": np.asarray(m.shape),
            }
        )
    np.savez_compressed(folder / "labels.npz", **arrays)
    fingerprint = lf_fingerprint(d)
    (folder / "fingerprint.json").write_text(json.dumps(fingerprint, indent=1))
    return fingerprint


def _matrix_keys(d: dict) -> tuple[str, ...]:
    """The matrix keys of ``d`` that are stored: the required and the
    optional ones it holds."""
    optional = (k for k in _OPTIONAL_MATRIX_KEYS if d.get(k) is not None)
    return (*_MATRIX_KEYS, *optional)


def read_lf_bundle(folder) -> dict:
    """The data written by :func:`write_lf_bundle`, checked against its fingerprint."""
    folder = Path(folder)
    with lzma.open(folder / "text.json.xz", "rb") as f:
        d = json.loads(f.read().decode())
    with np.load(folder / "labels.npz") as z:
        stored = {name.split(".")[0] for name in z.files}
        for key in (*_MATRIX_KEYS, *(k for k in _OPTIONAL_MATRIX_KEYS if k in stored)):
            d[key] = sp.csr_matrix(
                (z[f"{key}.data"], z[f"{key}.indices"], z[f"{key}.indptr"]),
                shape=tuple(z[f"{key}.shape"]),
            )
    expected = json.loads((folder / "fingerprint.json").read_text())
    if lf_fingerprint(d) != expected:
        raise ValueError(f"{folder}: the data differ from fingerprint.json")
    return d


def subset(d: dict, max_train: int | None, max_test: int | None) -> dict:
    """The first ``max_train`` / ``max_test`` rows of a benchmark data set."""
    d = dict(d)
    if max_train is not None:
        for key in ("X_train", "Y_train", "text_train", "filter_train"):
            if d.get(key) is not None:
                d[key] = d[key][:max_train]
    if max_test is not None:
        for key in ("X_test", "Y_test", "text_test", "filter_test"):
            if d.get(key) is not None:
                d[key] = d[key][:max_test]
    return d


def protocol_report(d: dict, topk) -> dict:
    """BENCHMARKS.md metrics of a ``(scores, indices)`` pair on ``d``'s test set.

    LF filter pairs removed (when ``d`` has them), PSP with Jain et al.
    propensities A=0.55, B=1.5 on the training labels (computed once per data
    set and kept in ``d``).
    """
    from skxmc.metrics import inverse_propensity, xmc_report

    if "inv_propensity" not in d:
        d["inv_propensity"] = inverse_propensity(d["Y_train"], A=0.55, B=1.5)
    return xmc_report(
        d["Y_test"],
        topk,
        k=(1, 3, 5),
        inv_propensity=d["inv_propensity"],
        filter=d["filter_test"],
    )


def time_predictions(clf, X, *, k: int, n_single: int) -> dict:
    """Top-``k`` of all rows of ``X`` in one call, then ``n_single`` one-row calls.

    ``X`` is a sparse matrix or a list of texts. Returns ``topk`` (the
    ``(scores, indices)`` of the batch call), ``batch_ms`` (its time per row)
    and ``single_ms`` (mean time of one call on one row, the serving path;
    rows 0, 1, ...; the batch call has warmed the model up).
    """
    n = X.shape[0] if hasattr(X, "shape") else len(X)
    start = time.perf_counter()
    topk = clf.predict_topk(X, k=k)
    batch_s = time.perf_counter() - start
    n_single = min(n_single, n)
    start = time.perf_counter()
    for i in range(n_single):
        clf.predict_topk(X[i : i + 1], k=k)
    single_s = time.perf_counter() - start
    return {
        "topk": topk,
        "batch_ms": 1000 * batch_s / n,
        "single_ms": 1000 * single_s / max(n_single, 1),
    }


def run_xr_linear_baseline(d: dict, *, beam_size: int, k: int) -> dict:
    """Fit and time the XRLinearClassifier row that deep benchmarks print beside."""
    from skxmc import XRLinearClassifier

    clf = XRLinearClassifier(
        branching_factor=16, max_leaf_size=100, beam_size=beam_size, random_state=0
    )
    start = time.perf_counter()
    clf.fit(d["X_train"], d["Y_train"])
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    topk = clf.predict_topk(d["X_test"], k=k)
    predict_s = time.perf_counter() - start
    return {"topk": topk, "fit_s": fit_s, "predict_s": predict_s}


def machine_line() -> str:
    return (
        f"# machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )


def print_table_header(columns: list[str]) -> None:
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns), flush=True)


def print_table_row(cells: list[str]) -> None:
    print("| " + " | ".join(cells) + " |", flush=True)
