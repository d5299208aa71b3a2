"""The compact data bundle of benchmarks/gpu_suite.py reads back what was written."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _common  # benchmarks/ is no package


@pytest.fixture(scope="module")
def small_lf():
    """A slice of the bundled sample: 50 / 20 documents, 300 labels."""
    d = _common.load_debian_sample()
    return {
        "text_train": d["text_train"][:50],
        "text_test": d["text_test"][:20],
        "label_text": d["label_text"][:300],
        "Y_train": d["Y_train"][:50, :300],
        "Y_test": d["Y_test"][:20, :300],
        "filter_test": d["filter_test"][:20, :300],
    }


def test_bundle_round_trip_gives_the_same_texts_and_matrices(small_lf, tmp_path):
    fingerprint = _common.write_lf_bundle(small_lf, tmp_path)
    got = _common.read_lf_bundle(tmp_path)
    for key in ("text_train", "text_test", "label_text"):
        assert list(got[key]) == list(small_lf[key])
    for key in ("Y_train", "Y_test", "filter_test"):
        assert got[key].dtype == small_lf[key].dtype
        assert got[key].shape == small_lf[key].shape
        np.testing.assert_array_equal(got[key].toarray(), small_lf[key].toarray())
    assert _common.lf_fingerprint(got) == fingerprint


def test_fingerprint_sees_a_changed_label_or_text(small_lf):
    base = _common.lf_fingerprint(small_lf)
    Y = small_lf["Y_train"].tolil()
    Y[0, 0] = 1 - Y[0, 0]
    assert _common.lf_fingerprint({**small_lf, "Y_train": Y.tocsr()}) != base
    texts = [*small_lf["text_test"][:-1], small_lf["text_test"][-1] + " "]
    assert _common.lf_fingerprint({**small_lf, "text_test": texts}) != base


def test_read_rejects_a_bundle_that_differs_from_its_fingerprint(small_lf, tmp_path):
    _common.write_lf_bundle(small_lf, tmp_path)
    other = {**small_lf, "text_train": ["changed", *small_lf["text_train"][1:]]}
    (tmp_path / "fingerprint.json").write_text(
        json.dumps(_common.lf_fingerprint(other))
    )
    with pytest.raises(ValueError, match="differ from fingerprint"):
        _common.read_lf_bundle(tmp_path)


def test_bundle_carries_the_training_filter_and_reads_older_bundles(small_lf, tmp_path):
    sample = _common.load_debian_sample()
    with_filter = {**small_lf, "filter_train": sample["filter_train"][:50, :300]}
    fingerprint = _common.write_lf_bundle(with_filter, tmp_path / "new")
    got = _common.read_lf_bundle(tmp_path / "new")
    assert "filter_train" in fingerprint
    np.testing.assert_array_equal(
        got["filter_train"].toarray(), with_filter["filter_train"].toarray()
    )
    # a bundle written without it (before it was carried) reads as before
    _common.write_lf_bundle(small_lf, tmp_path / "old")
    assert "filter_train" not in _common.read_lf_bundle(tmp_path / "old")
    # and the training filter is part of what the fingerprint checks
    other = with_filter["filter_train"].tolil()
    other[0, 0] = 1 - other[0, 0]
    assert _common.lf_fingerprint({**with_filter, "filter_train": other.tocsr()}) != (
        fingerprint
    )
