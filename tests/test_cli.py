"""The command line (python -m skxmc) and the single-file XC formats it reads."""

import gzip
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from skxmc import XRLinearClassifier
from skxmc._cli import main
from skxmc.datasets import (
    dump_xc_file,
    dump_xc_matrix,
    load_xc_file,
    load_xc_matrix,
    make_xmc_classification,
)
from skxmc.metrics import inverse_propensity, xmc_report

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- #
# file formats
# --------------------------------------------------------------------------- #
@st.composite
def _sparse(draw, dtype=np.float32):
    n_rows = draw(st.integers(0, 6))
    n_cols = draw(st.integers(1, 7))
    density = draw(st.floats(0, 1))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    mask = rng.random((n_rows, n_cols)) < density
    values = rng.standard_normal((n_rows, n_cols)) * 10.0 ** rng.integers(-8, 8)
    dense = np.where(mask, values, 0).astype(dtype)
    return sp.csr_matrix(dense)


@settings(max_examples=40, deadline=None)
@given(m=_sparse(), dtype=st.sampled_from([np.float32, np.float64]))
def test_matrix_round_trip_is_exact(tmp_path_factory, m, dtype):
    path = tmp_path_factory.mktemp("m") / "trn_X_Xf.txt"
    m = m.astype(dtype)
    dump_xc_matrix(m, path)
    back = load_xc_matrix(path, dtype=dtype)
    assert back.shape == m.shape and back.dtype == dtype
    assert np.array_equal(back.toarray(), m.toarray())
    assert back.nnz == m.nnz


def test_matrix_keeps_explicit_zeros_and_score_order(tmp_path):
    scores = sp.csr_matrix(
        (np.array([0.0, 0.5, 0.9, 0.5], np.float32), [0, 1, 3, 4], [0, 4, 4]),
        shape=(2, 5),
    )
    path = tmp_path / "pred.txt"
    dump_xc_matrix(scores, path, order="score")
    lines = path.read_text().splitlines()
    # best first, the tie 0.5 going to the lower label, the zero kept last
    assert lines == ["2 5", "3:0.899999976 1:0.5 4:0.5 0:0", ""]
    back = load_xc_matrix(path)
    assert back.nnz == 4 and np.array_equal(back.toarray(), scores.toarray())


def test_integer_matrix_written_as_integers(tmp_path):
    Y = sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 0]], dtype=np.int8))
    dump_xc_matrix(Y, tmp_path / "Y.txt")
    assert (tmp_path / "Y.txt").read_text() == "2 3\n0:1 2:1\n\n"


@settings(max_examples=30, deadline=None)
@given(X=_sparse(), seed=st.integers(0, 2**31), n_labels=st.integers(1, 5))
def test_single_file_round_trip(tmp_path_factory, X, seed, n_labels):
    rng = np.random.default_rng(seed)
    Y = sp.csr_matrix((rng.random((X.shape[0], n_labels)) < 0.4).astype(np.float32))
    path = tmp_path_factory.mktemp("f") / "train.txt"
    dump_xc_file(X, Y, path)
    X2, Y2 = load_xc_file(path)
    assert np.array_equal(X2.toarray(), X.toarray())
    assert np.array_equal(Y2.toarray(), Y.toarray())


def test_single_file_layout(tmp_path):
    X = np.array([[0.5, 0, 1], [0, 2, 0], [0, 0, 0], [0, 0, 0]], np.float32)
    Y = np.array([[0, 1], [0, 0], [1, 1], [0, 0]])
    dump_xc_file(X, Y, tmp_path / "t.txt")
    assert (tmp_path / "t.txt").read_text().splitlines() == [
        "4 3 2",
        "1 0:0.5 2:1",
        " 1:2",
        "0,1",
        " ",
    ]


def _raises_at(path, line, message):
    pattern = re.escape(f"{path}, line {line}:") + ".*" + re.escape(message)
    return pytest.raises(ValueError, match=pattern)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("2\n0:1\n\n", 1, "expected the header 'n_rows n_columns'"),
        ("2 3 4\n0:1\n\n", 1, "read it with load_xc_file"),
        ("two 3\n0:1\n\n", 1, "expected the header"),
        ("2 3\n0:1\n3:1\n", 3, "column id 3 out of range"),
        ("2 3\n0:1\n1:x\n", 3, "value 'x' is not a number"),
        ("2 3\n0:1 2\n1:1\n", 2, "expected 'column:value', got '2'"),
        ("2 3\n0:1\n1:nan\n", 3, "is not finite"),
        ("3 3\n0:1\n1:1\n", 3, "ends after 2 data lines"),
        ("1 3\n0:1\n1:1\n", 3, "more data lines than the 1 rows"),
        ("1 3\n-1:1\n", 2, "column id '-1' is negative"),
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_malformed_matrix_names_file_and_line(tmp_path, text, line, message, gz):
    path = tmp_path / ("m.txt.gz" if gz else "m.txt")
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    with _raises_at(path, line, message):
        load_xc_matrix(path)


def test_single_file_with_a_matrix_header_says_which_reader(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("1 3\n0:1\n")
    with _raises_at(path, 1, "read it with load_xc_matrix"):
        load_xc_file(path)


# --------------------------------------------------------------------------- #
# the command line
# --------------------------------------------------------------------------- #
PARAMS = ["--param", "max_leaf_size=4", "--param", "random_state=0"]


@pytest.fixture
def data(tmp_path):
    X, Y = make_xmc_classification(
        n_samples=160, n_labels=24, n_features=60, random_state=0
    )
    Xtr, Ytr, Xte, Yte = X[:120], Y[:120], X[120:], Y[120:]
    dump_xc_file(Xtr, Ytr, tmp_path / "train.txt")
    dump_xc_file(Xte, Yte, tmp_path / "test.txt")
    for name, m in [
        ("trn_X_Xf", Xtr),
        ("trn_X_Y", Ytr),
        ("tst_X_Xf", Xte),
        ("tst_X_Y", Yte),
    ]:
        dump_xc_matrix(m, tmp_path / f"{name}.txt")
    # the filter drops each test row's first true label (like reciprocal pairs)
    rows = np.arange(Yte.shape[0])
    first = Yte.indices[Yte.indptr[:-1]]
    np.savetxt(tmp_path / "filter.txt", np.column_stack([rows, first]), fmt="%d")
    return {"dir": tmp_path, "Xtr": Xtr, "Ytr": Ytr, "Xte": Xte, "Yte": Yte}


def _cli(*args, capsys):
    status = main([str(a) for a in args])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_fit_predict_evaluate_match_the_library(data, capsys):
    d = data["dir"]
    assert (
        _cli("fit", d / "train.txt", "-o", d / "model", *PARAMS, capsys=capsys)[0] == 0
    )
    assert (
        _cli(
            "predict", d / "model", d / "test.txt", "-o", d / "pred.txt", "-k", 5,
            capsys=capsys,
        )[0]
        == 0
    )  # fmt: skip
    status, out, _ = _cli(
        "evaluate", d / "pred.txt", d / "test.txt", "--train-labels",
        d / "train.txt", "--filter", d / "filter.txt", "-k", 1, 3, "--json",
        capsys=capsys,
    )  # fmt: skip
    assert status == 0
    got = json.loads(out)
    # the oracle: the same estimator fitted and scored in memory
    clf = XRLinearClassifier(max_leaf_size=4, random_state=0)
    topk = clf.fit(data["Xtr"], data["Ytr"]).predict_topk(data["Xte"], k=5)
    rows = np.arange(data["Yte"].shape[0])
    first = data["Yte"].indices[data["Yte"].indptr[:-1]]
    filt = sp.csr_matrix((np.ones(len(rows)), (rows, first)), shape=data["Yte"].shape)
    expected = xmc_report(
        data["Yte"],
        topk,
        k=(1, 3),
        inv_propensity=inverse_propensity(data["Ytr"], A=0.55, B=1.5),
        filter=filt,
    )
    assert set(got) == {"P@1", "P@3", "nDCG@1", "nDCG@3", "PSP@1", "PSP@3"}
    for key, value in got.items():
        assert value == pytest.approx(expected[key], abs=1e-12), key
    # the prediction file: header, k labels per row best first, the model's scores
    lines = (d / "pred.txt").read_text().splitlines()
    assert lines[0] == f"{data['Xte'].shape[0]} {data['Ytr'].shape[1]}"
    for line, scores, labels in zip(lines[1:], *topk):
        pairs = [p.split(":") for p in line.split()]
        assert [int(p[0]) for p in pairs] == [int(i) for i in labels if i >= 0]
        assert np.allclose([float(p[1]) for p in pairs], scores[labels >= 0])
        assert all(float(a[1]) >= float(b[1]) for a, b in itertools.pairwise(pairs))


def test_split_format_gives_the_same_model(data, capsys):
    d = data["dir"]
    _cli("fit", d / "train.txt", "-o", d / "m1", *PARAMS, capsys=capsys)
    status, _, err = _cli(
        "fit", d / "trn_X_Xf.txt", d / "trn_X_Y.txt", "-o", d / "m2", *PARAMS,
        capsys=capsys,
    )  # fmt: skip
    assert status == 0, err
    _cli("predict", d / "m1", d / "test.txt", "-o", d / "p1.txt", capsys=capsys)
    _cli("predict", d / "m2", d / "tst_X_Xf.txt", "-o", d / "p2.txt", capsys=capsys)
    assert (d / "p1.txt").read_text() == (d / "p2.txt").read_text()
    a = _cli("evaluate", d / "p1.txt", d / "test.txt", "--json", capsys=capsys)[1]
    b = _cli("evaluate", d / "p2.txt", d / "tst_X_Y.txt", "--json", capsys=capsys)[1]
    assert a == b and "PSP@1" not in json.loads(a)  # PSP needs --train-labels


def test_evaluate_literal_values(tmp_path, capsys):
    # two rows, three labels; row 0 ranks 1 > 2, row 1 ranks 0
    (tmp_path / "p.txt").write_text("2 3\n1:0.9 2:0.5\n0:0.2\n")
    (tmp_path / "y.txt").write_text("2 3\n2:1\n0:1 1:1\n")
    (tmp_path / "trn.txt").write_text("4 3\n0:1\n0:1\n0:1 1:1\n2:1\n")
    (tmp_path / "f.txt").write_text("0 1\n")  # removes label 1 from row 0
    args = [tmp_path / "p.txt", tmp_path / "y.txt", "-k", 1, "--json"]
    got = json.loads(_cli("evaluate", *args, capsys=capsys)[1])
    assert got["P@1"] == pytest.approx((0 + 1) / 2)
    got = json.loads(
        _cli("evaluate", *args, "--filter", tmp_path / "f.txt", capsys=capsys)[1]
    )
    assert got["P@1"] == pytest.approx((1 + 1) / 2)  # row 0's best is now label 2
    A, B, n = 0.55, 1.5, 4
    counts = np.array([3, 1, 1])
    C = (np.log(n) - 1) * (B + 1) ** A
    inv_p = 1 + C * (counts + B) ** -A
    got = json.loads(
        _cli(
            "evaluate", *args, "--filter", tmp_path / "f.txt",
            "--train-labels", tmp_path / "trn.txt", capsys=capsys,
        )[1]
    )  # fmt: skip
    # PSP@1: sum of hit propensity gains over the best achievable ones
    gains = inv_p[2] + inv_p[0]
    ideal = inv_p[2] + max(inv_p[0], inv_p[1])
    assert got["PSP@1"] == pytest.approx(gains / ideal)


def test_features_follow_the_benchmark_recipe(tmp_path, capsys):
    lf = tmp_path / "lf"
    lf.mkdir()
    docs = ["red apple pie", "green apple", "red wine", "apple wine red"]
    labels = ["apple fruit", "red colour", "wine drink"]
    targets = [[0, 1], [0], [1, 2], [0, 2]]

    def lines(texts, tgts=None):
        return "".join(
            json.dumps(
                {"uid": str(i), "title": t, **({"target_ind": tgts[i]} if tgts else {})}
            )
            + "\n"
            for i, t in enumerate(texts)
        )

    (lf / "trn.json").write_text(lines(docs[:3], targets[:3]))
    (lf / "tst.json").write_text(lines(docs[3:], targets[3:]))
    (lf / "lbl.json").write_text(lines(labels))
    (lf / "filter_labels_test.txt").write_text("0 2\n")
    out = tmp_path / "feats"
    assert _cli("features", lf, out, "--min-df", 1, capsys=capsys)[0] == 0
    vec = TfidfVectorizer(
        sublinear_tf=True, ngram_range=(1, 2), min_df=1, dtype=np.float32
    ).fit(docs[:3] + labels)
    for name, texts in [("trn", docs[:3]), ("tst", docs[3:]), ("lbl", labels)]:
        got = load_xc_matrix(out / f"{name}_X_Xf.txt")
        assert np.array_equal(got.toarray(), vec.transform(texts).toarray())
    Y = load_xc_matrix(out / "trn_X_Y.txt").toarray()
    assert Y.tolist() == [[1, 1, 0], [1, 0, 0], [0, 1, 1]]
    assert (out / "filter_labels_test.txt").read_text().split() == ["0", "2"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fit", "{d}/train.txt", "-o", "{d}/m", "--param", "beam=3"], "no parameter"),
        (["fit", "{d}/train.txt", "-o", "{d}/m", "--param", "x"], "key=value"),
        (
            ["fit", "{d}/train.txt", "-o", "{d}/m", "--param", "beam_size=-1"],
            "beam_size",
        ),
        (["fit", "{d}/bad.txt", "-o", "{d}/m"], "bad.txt, line 3:"),
        (["fit", "{d}/trn_X_Xf.txt", "{d}/tst_X_Y.txt", "-o", "{d}/m"], "same rows"),
        (["fit", "{d}/missing.txt", "-o", "{d}/m"], "missing.txt"),
        (["fit", "{d}/trn_X_Xf.txt", "-o", "{d}/m"], "give its labels file"),
        (["evaluate", "{d}/tst_X_Y.txt", "{d}/trn_X_Y.txt"], "one prediction row"),
        (["predict", "{d}/nomodel", "{d}/test.txt", "-o", "{d}/p"], "skxmc.save"),
    ],
)
def test_input_errors_exit_2_with_one_line(data, capsys, args, message):
    d = data["dir"]
    (d / "bad.txt").write_text("2 3 2\n0 0:1\n1 7:1\n")
    (d / "nomodel").mkdir()
    status, _, err = _cli(*[a.format(d=d) for a in args], capsys=capsys)
    assert status == 2
    assert err.startswith("python -m skxmc ") and message in err
    assert "Traceback" not in err


def test_predict_refuses_features_of_another_width(data, capsys):
    d = data["dir"]
    _cli("fit", d / "train.txt", "-o", d / "m", *PARAMS, capsys=capsys)
    dump_xc_matrix(sp.csr_matrix((3, 7), dtype=np.float32), d / "narrow.txt")
    status, _, err = _cli(
        "predict", d / "m", d / "narrow.txt", "-o", d / "p", capsys=capsys
    )
    assert status == 2 and "has 7 features but the model was fitted on 60" in err


def test_fit_refuses_to_overwrite_without_flag(data, capsys):
    d = data["dir"]
    assert _cli("fit", d / "train.txt", "-o", d / "m", *PARAMS, capsys=capsys)[0] == 0
    status, _, err = _cli("fit", d / "train.txt", "-o", d / "m", capsys=capsys)
    assert status == 2 and "--overwrite" in err
    args = ("fit", d / "train.txt", "-o", d / "m", "--overwrite", *PARAMS)
    assert _cli(*args, capsys=capsys)[0] == 0


def test_python_dash_m_runs(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "skxmc", "evaluate", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--train-labels" in result.stdout and "--filter" in result.stdout
