"""Tests for skxmc.datasets: XC-repo loader, bundled sample, synthetic generator."""

import gzip
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.utils._param_validation import InvalidParameterError

from skxmc.datasets import (
    _xmc_repo,
    load_debian_packages_sample,
    load_xc_repo,
    make_xmc_classification,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DIR = REPO_ROOT / "skxmc" / "datasets" / "data" / "debian_packages_sample"


def _labels_per_row(Y):
    return np.diff(Y.indptr)


def _positives_per_label(Y):
    return np.bincount(Y.indices, minlength=Y.shape[1])


def _assert_indicator(Y, shape):
    assert sp.issparse(Y) and Y.format == "csr"
    assert Y.dtype == np.float32
    assert Y.shape == shape
    np.testing.assert_array_equal(Y.data, 1.0)
    Y2 = Y.copy()
    Y2.sum_duplicates()
    assert Y2.nnz == Y.nnz  # no duplicate entries


# --------------------------------------------------------------------------- #
# load_xc_repo on the shared real data sets (counts from each SOURCE.md)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "name, n_features, n_labels, splits",
    [
        # split: (points, avg labels/point, avg nnz features/point, no-label points)
        (
            "Bibtex",
            1836,
            159,
            {"train": (4880, 2.3803, 68.49, 0), "test": (2515, 2.4437, 68.98, 0)},
        ),
        (
            "Delicious",
            500,
            983,
            {"train": (12920, 19.0471, 18.54, 10), "test": (3185, 18.9102, 17.29, 4)},
        ),
    ],
)
def test_bow_real_data_counts(shared_dir, name, n_features, n_labels, splits):
    data = load_xc_repo(shared_dir / "data" / name)
    assert data.n_labels == n_labels
    assert len(data.feature_names) == n_features
    assert len(data.label_text) == n_labels == len(data.label_title)
    assert all(text.startswith("TAG_") for text in data.label_text)
    assert data.text_train is None and data.label_uid is None
    assert data.filter_train is None and data.filter_test is None
    for split, (n_points, avg_labels, avg_nnz, n_empty) in splits.items():
        X, Y = data[f"X_{split}"], data[f"Y_{split}"]
        assert X.format == "csr" and X.dtype == np.float32
        assert X.shape == (n_points, n_features)
        _assert_indicator(Y, (n_points, n_labels))
        np.testing.assert_array_equal(X.data, 1.0)  # binary BoW values
        assert Y.nnz / n_points == pytest.approx(avg_labels, abs=5e-5)
        assert X.nnz / n_points == pytest.approx(avg_nnz, abs=5e-3)
        assert int(np.sum(_labels_per_row(Y) == 0)) == n_empty
    # "Every label has >= 1 train point."
    assert _positives_per_label(data.Y_train).min() >= 1
    n_all = data.Y_train.shape[0] + data.Y_test.shape[0]
    avg_all = (data.Y_train.nnz + data.Y_test.nnz) / n_all
    assert avg_all == pytest.approx(
        {"Bibtex": 2.4019, "Delicious": 19.02}[name], abs=5e-3
    )


@pytest.mark.parametrize("name", ["Bibtex", "Delicious"])
def test_bow_fast_parser_matches_exact_parser(shared_dir, name):
    # Two independent code paths (sklearn's Cython reader and our line parser).
    path = shared_dir / "data" / name / "train.txt.gz"
    raw = _xmc_repo._read_bytes(path)
    (n, f, m), body = _xmc_repo._parse_header(raw, path)
    fast = _xmc_repo._bow_fast(body, n, f, m)
    assert fast is not None
    X_exact, Y_exact = _xmc_repo._bow_exact(body, path, n, f, m)
    assert (fast[0] != X_exact).nnz == 0
    assert (fast[1] != Y_exact).nnz == 0
    # First data line checked by hand against the file.
    first = gzip.open(path, "rt").read().split("\n")[1].split()
    labels = [int(t) for t in first[0].split(",")] if ":" not in first[0] else []
    feats = [int(t.split(":")[0]) for t in first if ":" in t]
    assert Y_exact[0].indices.tolist() == sorted(labels)
    assert X_exact[0].indices.tolist() == sorted(feats)


@pytest.fixture(scope="module")
def debian(shared_dir):
    return load_xc_repo(shared_dir / "data" / "LF-DebianPackages")


def test_lf_debian_packages_counts(debian, shared_dir):
    data = debian
    n_labels = 42242
    assert data.n_labels == n_labels
    _assert_indicator(data.Y_train, (39815, n_labels))
    _assert_indicator(data.Y_test, (17063, n_labels))
    assert data.X_train is None and data.feature_names is None
    assert len(data.text_train) == len(data.title_train) == len(data.uid_train) == 39815
    assert len(data.label_text) == len(data.label_uid) == n_labels
    n_pos = data.Y_train.nnz + data.Y_test.nnz
    assert n_pos / (39815 + 17063) == pytest.approx(5.26, abs=5e-3)
    assert n_pos / n_labels == pytest.approx(7.08, abs=5e-3)
    positives = _positives_per_label(data.Y_train) + _positives_per_label(data.Y_test)
    assert positives[data.label_uid.index("libc6")] == 21810
    assert positives.min() >= 1
    assert (
        0.4 < np.mean(positives == 1) < 0.6
    )  # "half the labels have a single positive"
    assert _labels_per_row(data.Y_train).min() >= 1
    # Text = title + " " + content, checked on the raw first line.
    first = json.loads(
        gzip.open(shared_dir / "data/LF-DebianPackages/trn.json.gz").readline()
    )
    assert data.text_train[0] == first["title"] + " " + first["content"]
    assert data.title_train[0] == first["title"]
    assert sorted(data.Y_train[0].indices) == sorted(set(first["target_ind"]))
    # Filters: one line per pair in the files; each pair is (item, the item itself).
    for split, n_pairs in (("train", 27149), ("test", 11635)):
        F = data[f"filter_{split}"]
        _assert_indicator(F, data[f"Y_{split}"].shape)
        assert F.nnz == n_pairs
        coo = F.tocoo()
        uids = data[f"uid_{split}"]
        assert all(data.label_uid[c] == uids[r] for r, c in zip(coo.row, coo.col))


def test_reuters_modapte(shared_dir):
    data = load_xc_repo(shared_dir / "data" / "Reuters-21578" / "ModApte")
    assert data.n_labels == 90
    _assert_indicator(data.Y_train, (7770, 90))
    _assert_indicator(data.Y_test, (3019, 90))
    # One document per split repeats a label id (train NEWID 5467: 12 twice; test
    # NEWID 19918: 84 twice); Y merges them, so 1 positive less than the raw
    # target lists (SOURCE.md: 1.234 and 1.241 from the raw lists).
    assert data.Y_train.nnz == 9586 - 1 and data.Y_test.nnz == 3745 - 1
    assert data.Y_train.nnz / 7770 == pytest.approx(1.234, abs=5e-4)
    assert data.Y_test.nnz / 3019 == pytest.approx(1.241, abs=1e-3)
    row = data.uid_test.index("19918")
    assert data.Y_test[row].indices.tolist() == [84]
    assert data.label_uid[data.label_title.index("Mergers/Acquisitions")] == "acq"
    assert data.label_text == data.label_title  # lbl.json has no content
    # 710 train / 277 test documents have an empty body: their text is the title.
    for split, n_empty in (("train", 710), ("test", 277)):
        same = sum(
            t == u for t, u in zip(data[f"text_{split}"], data[f"title_{split}"])
        )
        assert same == n_empty
    assert _positives_per_label(data.Y_train).min() >= 1
    assert _positives_per_label(data.Y_test).min() >= 1


def test_amazon_float_filters(shared_dir):
    folder = shared_dir / "data" / "LF-AmazonTitles-131K_filters"
    data = load_xc_repo(folder)
    expected = {
        "train": (75144, 75144, 294803, 131072),
        "test": (73329, 33813, 134833, 131069),
    }
    for split, (n_pairs, n_docs, max_doc, max_label) in expected.items():
        coo = data[f"filter_{split}"].tocoo()
        assert coo.nnz == n_pairs
        assert len(np.unique(coo.row)) == n_docs
        assert coo.row.max() == max_doc and coo.col.max() == max_label
        # Without split files, rows = max doc id + 1; labels shared by both files.
        assert coo.shape == (max_doc + 1, 131073)
    assert data.n_labels == 131073
    assert data.Y_train is None and data.label_text is None
    # With the published number of labels, the columns follow it.
    data = load_xc_repo(
        {"filter_labels_test.txt": folder / "filter_labels_test.txt.gz"},
        n_labels=131073 + 5,
    )
    assert data.filter_test.shape == (134834, 131078) and data.filter_train is None
    with pytest.raises(ValueError, match=r"filter_labels_test.*line \d+: label id"):
        load_xc_repo([folder / "filter_labels_test.txt.gz"], n_labels=1000)


# --------------------------------------------------------------------------- #
# load_xc_repo on tiny hand-written files
# --------------------------------------------------------------------------- #
def _write(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_bow_tiny_hand_checked(tmp_path):
    # Empty label list (leading space), blank line (empty point), unsorted and
    # repeated feature ids (values add), CRLF, gzip, names files.
    _write(
        tmp_path / "train.txt.gz",
        "4 5 3\r\n2,0 4:0.5 1:2\r\n 3:1 3:1.5\r\n\r\n1\r\n",
    )
    _write(tmp_path / "Xf.txt", "a\nb\nc\nd\ne\n")
    _write(tmp_path / "Yf.txt", "x\ny\nz\n")
    data = load_xc_repo(tmp_path)
    np.testing.assert_allclose(
        data.X_train.toarray(),
        [[0, 2, 0, 0, 0.5], [0, 0, 0, 2.5, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
    )
    np.testing.assert_array_equal(
        data.Y_train.toarray(), [[1, 0, 1], [0, 0, 0], [0, 0, 0], [0, 1, 0]]
    )
    assert data.feature_names == list("abcde")
    assert data.label_text == ["x", "y", "z"] == data.label_title
    assert data.n_labels == 3 and data.X_test is None and data.text_train is None


def test_bow_fast_path_tiny(tmp_path):
    # Well-formed file: the fast reader is used and gives the hand-checked result.
    body = b"0,2 0:1 3:0.5\n 1:2\n1\n"
    X, Y = _xmc_repo._bow_fast(body, 3, 4, 3)
    np.testing.assert_allclose(X.toarray(), [[1, 0, 0, 0.5], [0, 2, 0, 0], [0] * 4])
    np.testing.assert_array_equal(Y.toarray(), [[1, 0, 1], [0, 0, 0], [0, 1, 0]])
    # Blank line (skipped by sklearn's reader) makes it defer to the exact parser.
    assert _xmc_repo._bow_fast(b"0 0:1\n\n1 1:1\n", 3, 2, 2) is None


def test_lf_json_tiny(tmp_path):
    _write(tmp_path / "lbl.json", '{"uid": "L0", "title": "zero"}\n'
           '{"uid": "L1", "title": "one", "content": "the first"}\n')  # fmt: skip
    _write(
        tmp_path / "trn.json.gz",
        '{"uid": 7, "title": "a", "content": "b c", "target_ind": [1, 0, 1]}\n'
        '{"uid": "8", "title": "d", "content": "", "target_ind": []}\n',
    )
    _write(tmp_path / "tst.json", '{"title": "e", "target_ind": [1]}\n')
    _write(tmp_path / "filter_labels_train.txt", "1 0\n0.0e+00 1.000e+00\n\n1 0\n")
    data = load_xc_repo(tmp_path)
    assert data.text_train == ["a b c", "d"] and data.title_train == ["a", "d"]
    assert data.uid_train == [7, "8"] and data.uid_test == [None]
    assert data.text_test == ["e"]
    assert data.label_text == ["zero", "one the first"]
    assert data.label_title == ["zero", "one"] and data.label_uid == ["L0", "L1"]
    np.testing.assert_array_equal(data.Y_train.toarray(), [[1, 1], [0, 0]])
    np.testing.assert_array_equal(data.Y_test.toarray(), [[0, 1]])
    np.testing.assert_array_equal(data.filter_train.toarray(), [[0, 1], [1, 0]])
    assert data.filter_test is None and data.n_labels == 2


def test_file_arguments(tmp_path):
    _write(tmp_path / "my_train.txt", "1 2 2\n1 0:1\n")
    _write(tmp_path / "test.txt", "1 2 2\n0 1:1\n")
    data = load_xc_repo({"train.txt": tmp_path / "my_train.txt", "Yf.txt": None})
    assert data.Y_train.toarray().tolist() == [[0, 1]] and data.Y_test is None
    data = load_xc_repo([tmp_path / "test.txt"])
    assert data.Y_test.toarray().tolist() == [[1, 0]] and data.Y_train is None
    data = load_xc_repo(str(tmp_path / "test.txt"))
    assert data.X_test.toarray().tolist() == [[0, 1]]
    with pytest.raises(ValueError, match="Cannot tell what"):
        load_xc_repo([tmp_path / "my_train.txt"])
    with pytest.raises(ValueError, match="Unknown key"):
        load_xc_repo({"training.txt": tmp_path / "my_train.txt"})
    with pytest.raises(FileNotFoundError, match="No such file"):
        load_xc_repo([tmp_path / "train.txt"])
    _write(tmp_path / "test.txt.gz", "1 2 2\n0 1:1\n")
    with pytest.raises(ValueError, match="Both"):
        load_xc_repo(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="No Extreme Classification"):
        load_xc_repo(empty)
    with pytest.raises(TypeError, match="path_or_files"):
        load_xc_repo(3)


_DOC = '{"title": "a", "target_ind": [0]}\n'


@pytest.mark.parametrize(
    "name, text, line, message",
    [
        ("train.txt", "3 4\n0 0:1\n", 1, "header"),
        ("train.txt", "a b c\n0 0:1\n", 1, "header"),
        ("train.txt", "3 4 2\n0 0:1\n1 1:1\n", 3, "ends after 2 data lines"),
        ("train.txt", "1 4 2\n0 0:1\n1 1:1\n", 3, "more data lines"),
        ("train.txt", "2 4 2\n0 0:1\n1,2 1:1\n", 3, "label id 2 out of range"),
        ("train.txt", "2 4 2\n0 0:1\nx 1:1\n", 3, "label id 'x' is not a number"),
        ("train.txt", "2 4 2\n0 0:1\n1.5 1:1\n", 3, "is not an integer"),
        ("train.txt", "2 4 2\n0 0:1\n1 1:y\n", 3, "feature value 'y'"),
        ("train.txt", "2 4 2\n0 0:1\n1 1:nan\n", 3, "not finite"),
        ("train.txt", "2 4 2\n0 0:1\n1 4:1\n", 3, "feature id 4 out of range"),
        ("train.txt", "2 4 2\n0 -1:1\n1 1:1\n", 2, "feature id '-1' is negative"),
        ("train.txt", "2 4 2\n0 0:1\n1 1:1 2\n", 3, "expected 'feature:value'"),
        ("train.txt", "2 4 2\n0 0:1 # note\n1 1:1\n", 2, "got '#'"),
        ("test.txt.gz", "2 4 2\n0 0:1\n1 5:1\n", 3, "feature id 5 out of range"),
        ("trn.json", _DOC + '{"title": \n', 2, "invalid JSON"),
        ("trn.json", _DOC + "[1]\n", 2, "JSON object"),
        ("trn.json", _DOC + '\n{"title": "b"}\n', 2, "empty line"),
        ("trn.json", '{"target_ind": [0]}\n', 1, "'title'"),
        ("trn.json", '{"title": "a", "content": 3}\n', 1, "'content'"),
        ("tst.json", _DOC + '{"title": "b"}\n', 2, "target_ind"),
        ("tst.json", '{"title": "a", "target_ind": [-1]}\n', 1, "target_ind"),
        ("tst.json", '{"title": "a", "target_ind": [true]}\n', 1, "target_ind"),
        ("lbl.json", '{"title": "a"}\n{"title": "b"\n', 2, "invalid JSON"),
        ("filter_labels_train.txt", "0 1\n1 2 3\n", 2, "expected two numbers"),
        ("filter_labels_train.txt", "0 1\n\n1 z\n", 3, "label id 'z'"),
        ("filter_labels_train.txt", "0 1\n1 -2\n", 2, "negative"),
        ("filter_labels_train.txt", "0 1\n1.5 2\n", 2, "not an integer"),
        ("Yf.txt", "ok\n\xff\n", 2, "UTF-8"),
    ],
)  # fmt: skip
def test_malformed_files(tmp_path, name, text, line, message):
    path = tmp_path / name
    if name == "Yf.txt":
        path.write_bytes(text.encode("latin-1"))
    else:
        _write(path, text)
    pattern = re.escape(f"{path}, line {line}:") + ".*" + re.escape(message)
    with pytest.raises(ValueError, match=pattern):
        load_xc_repo(tmp_path)


def test_out_of_range_ids_against_other_files(tmp_path):
    _write(tmp_path / "lbl.json", '{"title": "a"}\n{"title": "b"}\n')
    _write(tmp_path / "trn.json", '{"title": "x", "target_ind": [0]}\n'
           '{"title": "y", "target_ind": [1, 2]}\n')  # fmt: skip
    trn = tmp_path / "trn.json"
    with pytest.raises(ValueError, match=re.escape(f"{trn}, line 2:") + ".*label id 2"):
        load_xc_repo(tmp_path)
    _write(
        trn, '{"title": "x", "target_ind": [0]}\n{"title": "y", "target_ind": [1]}\n'
    )
    flt = _write(tmp_path / "filter_labels_train.txt", "0 0\n\n2 1\n")
    with pytest.raises(ValueError, match=re.escape(f"{flt}, line 3:") + ".*row"):
        load_xc_repo(tmp_path)
    _write(flt, "0 0\n1 2\n")
    with pytest.raises(ValueError, match=re.escape(f"{flt}, line 2:") + ".*label id 2"):
        load_xc_repo(tmp_path)


def test_inconsistent_counts(tmp_path):
    _write(tmp_path / "train.txt", "1 3 2\n0 0:1\n")
    _write(tmp_path / "Yf.txt", "a\nb\nc\n")
    with pytest.raises(ValueError, match="disagree on the number of labels"):
        load_xc_repo(tmp_path)
    _write(tmp_path / "Yf.txt", "a\nb\n")
    _write(tmp_path / "Xf.txt", "a\nb\n")
    with pytest.raises(ValueError, match="disagree on the number of features"):
        load_xc_repo(tmp_path)
    (tmp_path / "Xf.txt").unlink()
    _write(tmp_path / "trn.json", '{"title": "x", "target_ind": [0]}\n' * 2)
    with pytest.raises(ValueError, match="number of train documents"):
        load_xc_repo(tmp_path)
    _write(tmp_path / "trn.json", '{"title": "x", "target_ind": [1]}\n')
    with pytest.raises(ValueError, match=r"labels of .* differ"):
        load_xc_repo(tmp_path)
    _write(tmp_path / "trn.json", '{"title": "x", "target_ind": [0]}\n')
    data = load_xc_repo(tmp_path)
    assert data.text_train == ["x"] and data.X_train.shape == (1, 3)
    with pytest.raises(ValueError, match="n_labels argument: 5"):
        load_xc_repo(tmp_path, n_labels=5)


def test_n_labels_inferred_from_targets(tmp_path):
    _write(tmp_path / "trn.json", '{"title": "x", "target_ind": [4]}\n')
    _write(tmp_path / "tst.json", '{"title": "y", "target_ind": [6, 1]}\n')
    data = load_xc_repo(tmp_path)
    assert data.n_labels == 7
    assert data.Y_train.shape == (1, 7) and data.Y_test.shape == (1, 7)
    assert load_xc_repo(tmp_path, n_labels=9).Y_test.shape == (1, 9)
    with pytest.raises(ValueError, match="label id 6"):
        load_xc_repo(tmp_path, n_labels=6)


# --------------------------------------------------------------------------- #
# Bundled LF-DebianPackages sample
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def sample():
    return load_debian_packages_sample()


def test_sample_documented_counts(sample):
    # Counts documented in the docstring, DESCR.md and data/README.md.
    n_labels = 10776
    assert sample.n_labels == n_labels
    _assert_indicator(sample.Y_train, (4000, n_labels))
    _assert_indicator(sample.Y_test, (1500, n_labels))
    assert (sample.Y_train.nnz, sample.Y_test.nnz) == (22070, 7722)
    assert (sample.filter_train.nnz, sample.filter_test.nnz) == (726, 256)
    train_pos = _positives_per_label(sample.Y_train)
    test_pos = _positives_per_label(sample.Y_test)
    assert int(np.sum(train_pos == 0)) == 2060
    assert (train_pos + test_pos).min() >= 1  # only labels of sampled items
    assert _labels_per_row(sample.Y_train).min() >= 1
    assert _labels_per_row(sample.Y_test).min() >= 1
    for key in ("text_train", "title_train", "uid_train"):
        assert len(sample[key]) == 4000
    assert len(sample.label_text) == len(sample.label_uid) == n_labels
    assert len(set(sample.label_uid)) == n_labels
    assert sample.X_train is None and sample.feature_names is None
    for number in ("4000", "1500", "10776", "2060", "22070", "7722", "726", "256"):
        assert number in sample.DESCR
    readme = (REPO_ROOT / "skxmc" / "datasets" / "data" / "README.md").read_text()
    for number in ("4,000", "1,500", "10,776", "2,060", "22,070", "7,722"):
        assert number in readme
    assert sum(p.stat().st_size for p in SAMPLE_DIR.glob("*.gz")) < 3_000_000


def test_sample_filters_are_self_pairs(sample):
    for split in ("train", "test"):
        F = sample[f"filter_{split}"]
        assert F.shape == sample[f"Y_{split}"].shape
        coo = F.tocoo()
        uids = sample[f"uid_{split}"]
        assert all(sample.label_uid[c] == uids[r] for r, c in zip(coo.row, coo.col))
        # Every sampled item that is a kept label has its pair.
        position = {uid: j for j, uid in enumerate(sample.label_uid)}
        expected = {(r, position[u]) for r, u in enumerate(uids) if u in position}
        assert set(zip(coo.row.tolist(), coo.col.tolist())) == expected


def test_sample_is_a_subset_of_the_full_data(sample, debian):
    full_label = {uid: j for j, uid in enumerate(debian.label_uid)}
    kept = sorted(full_label[uid] for uid in sample.label_uid)
    for split in ("train", "test"):
        index = {uid: i for i, uid in enumerate(debian[f"uid_{split}"])}
        rows = [index[uid] for uid in sample[f"uid_{split}"]]
        assert rows == sorted(rows)  # original order kept
        Y_full = debian[f"Y_{split}"]
        for i, r in enumerate(rows):
            assert sample[f"title_{split}"][i] == debian[f"title_{split}"][r]
            assert debian[f"text_{split}"][r].startswith(sample[f"text_{split}"][i])
            got = {sample.label_uid[j] for j in sample[f"Y_{split}"][i].indices}
            want = {debian.label_uid[j] for j in Y_full[r].indices}
            assert got == want  # no target dropped
    # Labels: exactly the union of the sampled items' targets, in original order.
    union = set()
    for split in ("train", "test"):
        index = {uid: i for i, uid in enumerate(debian[f"uid_{split}"])}
        rows = [index[uid] for uid in sample[f"uid_{split}"]]
        union.update(debian[f"Y_{split}"][rows].indices.tolist())
    assert kept == sorted(union)
    assert [full_label[u] for u in sample.label_uid] == kept
    for j, uid in enumerate(sample.label_uid):
        full_text = debian.label_text[full_label[uid]]
        assert full_text.startswith(sample.label_text[j])
        assert len(sample.label_text[j]) <= len(sample.label_title[j]) + 1 + 2000


def test_sample_build_script_reproduces_the_shipped_files(shared_dir, tmp_path):
    spec = importlib.util.spec_from_file_location(
        "make_sample", REPO_ROOT / "tools" / "make_debian_packages_sample.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stats = module.build(shared_dir / "data" / "LF-DebianPackages", tmp_path)
    assert stats["n_labels"] == 10776
    for path in sorted(SAMPLE_DIR.iterdir()):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


# --------------------------------------------------------------------------- #
# make_xmc_classification
# --------------------------------------------------------------------------- #
def _check_invariants(X, Y, n_samples, n_labels, n_features):
    assert X.format == "csr" and X.dtype == np.float32
    assert X.shape == (n_samples, n_features)
    _assert_indicator(Y, (n_samples, n_labels))
    assert np.all(np.isfinite(X.data)) and np.all(X.data > 0)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms, 1.0, rtol=1e-5)
    assert _labels_per_row(Y).min() >= 1
    assert Y.indices.min() >= 0 and Y.indices.max() < n_labels
    assert X.indices.min() >= 0 and X.indices.max() < n_features
    if n_labels <= n_samples:
        assert _positives_per_label(Y).min() >= 1


def test_make_xmc_defaults_and_determinism():
    X, Y = make_xmc_classification(random_state=0)
    _check_invariants(X, Y, 100, 20, 100)
    X2, Y2 = make_xmc_classification(random_state=0)
    assert (X != X2).nnz == 0 and (Y != Y2).nnz == 0
    _X3, Y3 = make_xmc_classification(random_state=1)
    assert (Y != Y3).nnz > 0
    rs = np.random.RandomState(0)
    X4, _ = make_xmc_classification(random_state=rs)
    assert X4.shape == (100, 100)


def test_make_xmc_text_matches_features():
    # X must be the documented tf-idf of the returned text (brute-force oracle).
    n, m = 300, 40
    data = make_xmc_classification(
        n_samples=n, n_labels=30, n_features=m, return_text=True, random_state=3
    )
    counts = np.zeros((n, m))
    for i, doc in enumerate(data.text):
        for token in doc.split():
            counts[i, int(token[1:])] += 1
    df = (counts > 0).sum(axis=0)
    idf = np.log((1 + n) / (1 + df)) + 1
    tfidf = np.where(counts > 0, 1 + np.log(np.maximum(counts, 1)), 0) * idf
    tfidf /= np.linalg.norm(tfidf, axis=1, keepdims=True)
    np.testing.assert_allclose(data.X.toarray(), tfidf, rtol=1e-5, atol=1e-6)
    assert data.feature_names == [f"w{j}" for j in range(m)]
    assert len(data.label_text) == 30 and data.label_groups.shape == (30,)
    for text in data.label_text:
        words = text.split()
        assert len(words) == 5 == len(set(words))


def test_make_xmc_power_law():
    _, Y = make_xmc_classification(
        n_samples=5000, n_labels=1000, label_power_law=1.0, random_state=0
    )
    freq = _positives_per_label(Y)
    head, tail = freq[:10].mean(), freq[500:].mean()
    assert head > 20 * tail
    assert freq[0] == freq.max()
    # Flat popularity: no head.
    _, Y = make_xmc_classification(
        n_samples=5000, n_labels=1000, label_power_law=0.0, random_state=0
    )
    freq = _positives_per_label(Y)
    assert freq[:10].mean() < 3 * freq[500:].mean()


def test_make_xmc_labels_are_learnable():
    data = make_xmc_classification(
        n_samples=3000, n_labels=100, n_features=2000, return_text=True, random_state=0
    )
    present = (data.X > 0).toarray()
    Y = data.Y.toarray().astype(bool)
    wins = 0
    for j, text in enumerate(data.label_text):
        own = [int(w[1:]) for w in text.split()]
        rate = present[:, own].mean(axis=1)
        wins += rate[Y[:, j]].mean() > 5 * rate[~Y[:, j]].mean()
    assert wins >= 95


def test_make_xmc_label_correlation():
    def same_group_rate(correlation):
        data = make_xmc_classification(
            n_samples=2000,
            n_labels=200,
            n_label_groups=20,
            label_correlation=correlation,
            label_power_law=0.5,
            return_text=True,
            random_state=0,
        )
        coo = data.Y.tocoo()
        pairs = sp.csr_matrix(data.Y.T @ data.Y)
        pairs.setdiag(0)
        pairs.eliminate_zeros()
        p = pairs.tocoo()
        same = data.label_groups[p.row] == data.label_groups[p.col]
        assert np.bincount(data.label_groups).max() == 10 == coo.shape[1] // 20
        return np.sum(p.data * same) / np.sum(p.data)

    assert same_group_rate(0.0) < 0.1 < 0.6 < same_group_rate(0.9)


def test_make_xmc_mean_labels():
    _, Y = make_xmc_classification(
        n_samples=4000, n_labels=500, avg_labels_per_sample=4.0, random_state=0
    )
    assert Y.nnz / 4000 == pytest.approx(4.0, abs=0.2)
    _, Y = make_xmc_classification(
        n_samples=200, n_labels=3, avg_labels_per_sample=30.0, random_state=0
    )
    # 1 + Poisson(29) >= 3 except with probability ~1e-11: capped at n_labels, and
    # repeated draws are redrawn until the 3 labels are distinct.
    np.testing.assert_array_equal(_labels_per_row(Y), 3)


def test_make_xmc_more_labels_than_samples():
    X, Y = make_xmc_classification(n_samples=50, n_labels=5000, random_state=0)
    _check_invariants(X, Y, 50, 5000, 100)
    assert _positives_per_label(Y).min() == 0  # not every label can be covered


@pytest.mark.parametrize(
    "params",
    [
        {"avg_labels_per_sample": 0.5},
        {"n_samples": 0},
        {"noise": 1.5},
        {"label_correlation": -0.1},
        {"chunk_size": 0},
    ],
)
def test_make_xmc_invalid_params(params):
    with pytest.raises(InvalidParameterError):
        make_xmc_classification(**params)


@settings(max_examples=30, deadline=None)
@given(
    n_samples=st.integers(1, 60),
    n_labels=st.integers(1, 80),
    n_features=st.integers(1, 50),
    avg_labels=st.floats(1.0, 8.0),
    power=st.floats(0.0, 3.0),
    correlation=st.floats(0.0, 1.0),
    noise=st.floats(0.0, 1.0),
    chunk_size=st.integers(1, 70),
    seed=st.integers(0, 2**31 - 2),
)
def test_make_xmc_invariants_property(
    n_samples,
    n_labels,
    n_features,
    avg_labels,
    power,
    correlation,
    noise,
    chunk_size,
    seed,
):
    kwargs = {
        "avg_labels_per_sample": avg_labels,
        "label_power_law": power,
        "label_correlation": correlation,
        "noise": noise,
        "chunk_size": chunk_size,
        "return_text": True,
        "random_state": seed,
    }
    data = make_xmc_classification(n_samples, n_labels, n_features, **kwargs)
    _check_invariants(data.X, data.Y, n_samples, n_labels, n_features)
    assert len(data.text) == n_samples and len(data.label_text) == n_labels
    for doc, row in zip(data.text, data.X):
        assert sorted({int(t[1:]) for t in doc.split()}) == row.indices.tolist()
    again = make_xmc_classification(n_samples, n_labels, n_features, **kwargs)
    assert (again.Y != data.Y).nnz == 0 and again.text == data.text
