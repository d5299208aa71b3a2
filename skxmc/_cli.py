"""The command line: ``python -m skxmc features|fit|predict|evaluate``.

Works on the files of the Extreme Classification Repository, like the command
lines of PECOS and napkinXC:

* ``features``: TF-IDF features of an "LF" data set (``trn.json``,
  ``tst.json``, ``lbl.json``), written as split sparse files
  (``trn_X_Xf.txt``, ``trn_X_Y.txt``, ``tst_X_Xf.txt``, ``tst_X_Y.txt``,
  ``lbl_X_Xf.txt``) plus the filter files; the recipe of the project's
  benchmarks (1-2 grams, sublinear tf, ``min_df=2``, at most 200,000 features,
  fitted on the train documents and the label texts);
* ``fit``: train an estimator on a single-file data set (``train.txt``) or on a
  features file and a labels file, and save it with :func:`skxmc.save`;
* ``predict``: top-k predictions of a saved model, written in the repository's
  sparse score format (header ``n_rows n_labels``, lines ``label:score ...``,
  best first);
* ``evaluate``: P@k, nDCG@k and PSP@k of a prediction file, with the
  repository's reciprocal-pair filter files and Jain et al. propensities.

Example, on LF-DebianPackages (the benchmark row of XR-Linear)::

    python -m skxmc features ../shared/data/LF-DebianPackages feats/
    python -m skxmc fit feats/trn_X_Xf.txt feats/trn_X_Y.txt -o model/
    python -m skxmc predict model/ feats/tst_X_Xf.txt -o pred.txt -k 10
    python -m skxmc evaluate pred.txt feats/tst_X_Y.txt \
        --train-labels feats/trn_X_Y.txt --filter feats/filter_labels_test.txt

Each sub-command has ``--help``. Errors in the input (a malformed file, an
unknown parameter) end the program with status 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main"]


def _info(args, message: str) -> None:
    """Progress on the ``skxmc`` logger (standard error) when ``-v`` is given."""
    from skxmc.utils._logging import log

    log(message, verbose=args.verbose)


#: Estimators the ``fit`` sub-command can build, by class name.
ESTIMATORS = (
    "XRLinearClassifier",
    "XRTransformerClassifier",
    "DecafClassifier",
    "EclareClassifier",
    "EliasClassifier",
)

_TFIDF_DEFAULTS = {"ngram_max": 2, "min_df": 2, "max_features": 200_000}


class CLIError(Exception):
    """An error in the command line's input: printed without a traceback."""


# --------------------------------------------------------------------------- #
# reading inputs in either format
# --------------------------------------------------------------------------- #
def _read_features(path: str):
    """X from a features file (2-field header) or a single-file data set."""
    from skxmc.datasets._xc_files import header_fields, load_xc_file, load_xc_matrix

    if header_fields(path) == 3:
        return load_xc_file(path)[0]
    return load_xc_matrix(path)


def _read_labels(path: str):
    """Y from a labels file (2-field header) or a single-file data set."""
    from skxmc.datasets._xc_files import header_fields, load_xc_file, load_xc_matrix

    if header_fields(path) == 3:
        return load_xc_file(path)[1]
    Y = load_xc_matrix(path)
    Y.eliminate_zeros()
    Y.data[:] = 1.0
    return Y


def _read_filter(path: str, shape: tuple[int, int]):
    from skxmc.datasets._xmc_repo import _pairs_to_csr, _read_pairs

    return _pairs_to_csr(_read_pairs(Path(path)), Path(path), *shape)


def _parse_param(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise CLIError(f"--param expects key=value, got {text!r}.")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value  # a bare word: a string such as tfn+man
    return key.strip(), parsed


# --------------------------------------------------------------------------- #
# sub-commands
# --------------------------------------------------------------------------- #
def _cmd_features(args) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from skxmc.datasets import dump_xc_matrix, load_xc_repo
    from skxmc.utils import fit_stable_vocabulary

    data = load_xc_repo(args.data)
    if data.text_train is None:
        raise CLIError(
            f"{args.data} holds no trn.json: the features sub-command builds "
            "TF-IDF features from the text of an LF data set."
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    vectorizer = TfidfVectorizer(
        sublinear_tf=True,
        ngram_range=(1, args.ngram_max),
        min_df=args.min_df,
        max_features=args.max_features,
        dtype=np.float32,
    )
    corpus = list(data.text_train) + list(data.label_text or [])
    start = time.perf_counter()
    # the same terms on every machine (ties at the max_features cut)
    vectorizer = fit_stable_vocabulary(vectorizer, corpus)
    _info(
        args,
        f"TF-IDF: {len(vectorizer.vocabulary_)} features from {len(corpus)} "
        f"texts in {time.perf_counter() - start:.1f} s",
    )
    written = []
    for prefix, text, Y in (
        ("trn", data.text_train, data.Y_train),
        ("tst", data.text_test, data.Y_test),
    ):
        if text is None:
            continue
        dump_xc_matrix(vectorizer.transform(text), out / f"{prefix}_X_Xf.txt")
        dump_xc_matrix(Y.astype(np.int8), out / f"{prefix}_X_Y.txt")
        written += [f"{prefix}_X_Xf.txt", f"{prefix}_X_Y.txt"]
    if data.label_text is not None:
        dump_xc_matrix(vectorizer.transform(data.label_text), out / "lbl_X_Xf.txt")
        written.append("lbl_X_Xf.txt")
    for split in ("train", "test"):
        matrix = data[f"filter_{split}"]
        if matrix is not None:
            rows, cols = matrix.nonzero()
            np.savetxt(
                out / f"filter_labels_{split}.txt",
                np.column_stack([rows, cols]),
                fmt="%d",
            )
            written.append(f"filter_labels_{split}.txt")
    _info(args, f"wrote {', '.join(written)} to {out}")


def _build_estimator(name: str, params: list[str]):
    import skxmc

    if name not in ESTIMATORS:
        raise CLIError(
            f"Unknown estimator {name!r}; choose one of: {', '.join(ESTIMATORS)}."
        )
    estimator = getattr(skxmc, name)()
    parsed = dict(_parse_param(p) for p in params)
    unknown = sorted(set(parsed) - set(estimator.get_params()))
    if unknown:
        raise CLIError(
            f"{name} has no parameter {', '.join(map(repr, unknown))}; its "
            f"parameters are: {', '.join(sorted(estimator.get_params()))}."
        )
    return estimator.set_params(**parsed)


def _cmd_fit(args) -> None:
    import skxmc
    from skxmc.datasets import load_xc_file, load_xc_matrix

    out = Path(args.output)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not args.overwrite:
            raise CLIError(f"{out} exists and is not empty; pass --overwrite.")
        shutil.rmtree(out)
    estimator = _build_estimator(args.estimator, args.param)
    if args.labels is None:
        from skxmc.datasets._xc_files import header_fields

        if header_fields(args.train) == 2:
            raise CLIError(
                f"{args.train} has a two-number header (a features file such as "
                "trn_X_Xf.txt): give its labels file (trn_X_Y.txt) as the second "
                "argument."
            )
        X, Y = load_xc_file(args.train)
    else:
        X, Y = _read_features(args.train), _read_labels(args.labels)
    if X.shape[0] != Y.shape[0]:
        raise CLIError(
            f"{args.train} has {X.shape[0]} rows and {args.labels} has "
            f"{Y.shape[0]}: features and labels must describe the same rows."
        )
    fit_params = {}
    if args.label_features is not None:
        features = load_xc_matrix(args.label_features)
        if features.shape[0] != Y.shape[1]:
            raise CLIError(
                f"{args.label_features} has {features.shape[0]} rows but there "
                f"are {Y.shape[1]} labels (one row per label expected)."
            )
        fit_params["label_info"] = skxmc.LabelInfo(features=features)
    _info(args, f"fitting {estimator!r} on {Y.shape[0]} rows, {Y.shape[1]} labels")
    start = time.perf_counter()
    estimator.fit(X, Y, **fit_params)
    _info(args, f"fitted in {time.perf_counter() - start:.1f} s")
    skxmc.save(estimator, out)
    _info(args, f"saved to {out}")


def _cmd_predict(args) -> None:
    import skxmc
    from skxmc.datasets import dump_xc_matrix
    from skxmc.utils._sparse import topk_to_csr

    model = skxmc.load(args.model)
    X = _read_features(args.data)
    expected = getattr(model, "n_features_in_", None)
    if expected is not None and X.shape[1] != expected:
        raise CLIError(
            f"{args.data} has {X.shape[1]} features but the model was fitted "
            f"on {expected}."
        )
    start = time.perf_counter()
    scores, indices = model.predict_topk(X, k=args.k)
    _info(args, f"predicted {X.shape[0]} rows in {time.perf_counter() - start:.1f} s")
    n_labels = model.n_labels_
    dump_xc_matrix(
        topk_to_csr(np.asarray(scores, np.float32), indices, n_labels),
        args.output,
        order="score",
    )


def _cmd_evaluate(args) -> None:
    from skxmc.datasets import load_xc_matrix
    from skxmc.metrics import inverse_propensity, xmc_report

    pred = load_xc_matrix(args.predictions, dtype=np.float64)
    Y = _read_labels(args.labels)
    if pred.shape != Y.shape:
        raise CLIError(
            f"{args.predictions} has shape {pred.shape} but {args.labels} has "
            f"shape {Y.shape}: one prediction row per test row and the same "
            "number of labels expected."
        )
    inv_p = None
    if args.train_labels is not None:
        Y_train = _read_labels(args.train_labels)
        if Y_train.shape[1] != Y.shape[1]:
            raise CLIError(
                f"{args.train_labels} has {Y_train.shape[1]} labels but "
                f"{args.labels} has {Y.shape[1]}."
            )
        inv_p = inverse_propensity(Y_train, A=args.A, B=args.B)
    filt = None if args.filter is None else _read_filter(args.filter, Y.shape)
    report = xmc_report(Y, pred, k=tuple(args.k), inv_propensity=inv_p, filter=filt)
    names = [f"{m}@{k}" for m in ("P", "nDCG") for k in args.k]
    if inv_p is not None:
        names += [f"PSP@{k}" for k in args.k]
    values = {name: float(report[name]) for name in names}
    if args.json:
        sys.stdout.write(json.dumps(values) + "\n")
        return
    sys.stdout.write("| " + " | ".join(names) + " |\n")
    sys.stdout.write("|" + "---|" * len(names) + "\n")
    sys.stdout.write(
        "| " + " | ".join(f"{100 * values[n]:.2f}" for n in names) + " |\n"
    )


# --------------------------------------------------------------------------- #
# argument parser
# --------------------------------------------------------------------------- #
def build_parser() -> argparse.ArgumentParser:
    """The ``python -m skxmc`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m skxmc",
        description="Extreme multi-label classification on Extreme Classification "
        "Repository files.",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log progress to stderr"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "features",
        help="TF-IDF features of an LF data set (trn.json, tst.json, lbl.json)",
        description="Write TF-IDF features of an LF data set folder as split "
        "sparse files (trn_X_Xf.txt, trn_X_Y.txt, tst_X_Xf.txt, tst_X_Y.txt, "
        "lbl_X_Xf.txt) and its filter files. The vectorizer is fitted on the "
        "train documents and the label texts.",
    )
    p.add_argument("data", help="folder with trn.json[.gz], tst.json, lbl.json")
    p.add_argument("out", help="folder to write (created if missing)")
    p.add_argument("--ngram-max", type=int, default=_TFIDF_DEFAULTS["ngram_max"])
    p.add_argument("--min-df", type=int, default=_TFIDF_DEFAULTS["min_df"])
    p.add_argument("--max-features", type=int, default=_TFIDF_DEFAULTS["max_features"])
    p.set_defaults(func=_cmd_features)

    p = sub.add_parser(
        "fit",
        help="train an estimator and save it",
        description="Fit an estimator on a single-file data set (header "
        "'n_rows n_features n_labels'), or on a features file and a labels "
        "file (header 'n_rows n_columns'), and save it with skxmc.save.",
    )
    p.add_argument("train", help="train.txt, or the features file (trn_X_Xf.txt)")
    p.add_argument(
        "labels", nargs="?", help="the labels file (trn_X_Y.txt) of split data"
    )
    p.add_argument("-o", "--output", required=True, help="model folder to write")
    p.add_argument("--estimator", default="XRLinearClassifier", choices=ESTIMATORS)
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="estimator parameter (repeatable); VALUE is a Python literal or "
        "a bare string, e.g. --param beam_size=20 --param "
        "negative_sampling=tfn+man",
    )
    p.add_argument(
        "--label-features",
        help="label features file (lbl_X_Xf.txt), passed as LabelInfo(features=...)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing model folder"
    )
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser(
        "predict",
        help="write top-k predictions in the repository's score format",
        description="Write the top-k labels of each row, best first, as "
        "'label:score' pairs under a header 'n_rows n_labels'.",
    )
    p.add_argument("model", help="model folder written by fit")
    p.add_argument("data", help="features file (tst_X_Xf.txt) or test.txt")
    p.add_argument("-o", "--output", required=True, help="prediction file to write")
    p.add_argument("-k", type=int, default=10, help="labels per row (default 10)")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser(
        "evaluate",
        help="P@k, nDCG@k and PSP@k of a prediction file",
        description="Score a prediction file against the true labels. PSP@k "
        "needs --train-labels (propensities of Jain et al., 2016).",
    )
    p.add_argument("predictions", help="prediction file written by predict")
    p.add_argument("labels", help="true labels: tst_X_Y.txt or test.txt")
    p.add_argument(
        "--train-labels", help="train labels (trn_X_Y.txt or train.txt) for PSP@k"
    )
    p.add_argument("-A", type=float, default=0.55, help="propensity A (0.55)")
    p.add_argument("-B", type=float, default=1.5, help="propensity B (1.5)")
    p.add_argument(
        "--filter",
        help="filter file of 'row label' pairs removed from predictions and "
        "truth before scoring (filter_labels_test.txt of LF data sets)",
    )
    p.add_argument("-k", type=int, nargs="+", default=[1, 3, 5], help="cut-offs")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.set_defaults(func=_cmd_evaluate)
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments (``sys.argv[1:]`` when None).

    Returns
    -------
    status : int
        0 on success, 2 for an error in the input.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skxmc._cli import main
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (tmp / "pred.txt").write_text("2 3\\n1:0.9 2:0.5\\n0:0.2\\n")
    >>> _ = (tmp / "true.txt").write_text("2 3\\n1:1\\n2:1\\n")
    >>> main(["evaluate", str(tmp / "pred.txt"), str(tmp / "true.txt"), "-k", "1"])
    | P@1 | nDCG@1 |
    |---|---|
    | 50.00 | 50.00 |
    0
    """
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (CLIError, ValueError, FileNotFoundError, FileExistsError) as exc:
        sys.stderr.write(f"python -m skxmc {args.command}: error: {exc}\n")
        return 2
    return 0
