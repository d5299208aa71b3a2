"""Loader errors name the file (and line) instead of failing obscurely (issue 14)."""

import gzip
import re
from pathlib import Path

import pytest

from skxmc.datasets import load_xc_repo


def _write(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def _raises_at(path: Path, line: int, message: str):
    pattern = re.escape(f"{path}, line {line}:") + ".*" + re.escape(message)
    return pytest.raises(ValueError, match=pattern)


@pytest.mark.parametrize("value", ["1e39", "-1e39", "3.5e38", "1e400"])
@pytest.mark.parametrize("name", ["train.txt", "test.txt.gz"])
def test_a_value_overflowing_float32_names_file_and_line(tmp_path, name, value):
    path = _write(tmp_path / name, f"2 4 2\n0 0:1\n1 1:{value}\n")
    with _raises_at(path, 3, f"feature value '{value}'"):
        load_xc_repo(tmp_path)


def test_the_largest_float32_value_is_kept(tmp_path):
    _write(tmp_path / "train.txt", "1 2 1\n0 1:3.4e38\n")
    assert load_xc_repo(tmp_path).X_train[0, 1] == pytest.approx(3.4e38)


@pytest.mark.parametrize(
    "cut", [lambda b: b[: len(b) // 2], lambda b: b[:12] + b"\x00" * 20 + b[32:]]
)
@pytest.mark.parametrize("name", ["train.txt.gz", "trn.json.gz", "Yf.txt.gz"])
def test_a_truncated_or_corrupt_gzip_file_is_named(tmp_path, name, cut):
    text = {
        "train.txt.gz": "3 4 2\n" + "0 0:1 1:0.5 2:0.25\n" * 3,
        "trn.json.gz": '{"title": "a document", "target_ind": [0, 1]}\n' * 5,
        "Yf.txt.gz": "".join(f"label number {i}\n" for i in range(50)),
    }[name]
    path = tmp_path / name
    path.write_bytes(cut(gzip.compress(text.encode())))
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*gzip"):
        load_xc_repo(tmp_path)


@pytest.mark.parametrize("big", [2**63, 2**70])
def test_a_huge_target_id_is_a_clear_error(tmp_path, big):
    doc = f'{{"title": "a", "target_ind": [0, {big}]}}\n'
    path = _write(tmp_path / "trn.json", doc)
    with _raises_at(path, 1, "target_ind"):
        load_xc_repo(tmp_path)


@pytest.mark.parametrize("big", [2**63, 2**70])
def test_huge_ids_in_bag_of_words_and_filter_files(tmp_path, big):
    path = _write(tmp_path / "filter_labels_test.txt", f"0 1\n1 {big}\n")
    with _raises_at(path, 2, "label id"):
        load_xc_repo(tmp_path)
    path.unlink()
    path = _write(tmp_path / "train.txt", f"1 4 2\n{big} 0:1\n")
    with _raises_at(path, 2, "label id"):
        load_xc_repo(tmp_path)


@pytest.mark.parametrize("header", [f"1 {2**70} 2", f"{2**70} 4 2", f"1 4 {2**70}"])
def test_a_huge_header_count_is_a_clear_error(tmp_path, header):
    path = _write(tmp_path / "train.txt", f"{header}\n0 0:1\n")
    with _raises_at(path, 1, "header"):
        load_xc_repo(tmp_path)


def test_a_missing_folder_says_it_does_not_exist(tmp_path):
    missing = tmp_path / "no_such_folder"
    pattern = re.escape(str(missing)) + ".*not exist"
    with pytest.raises(FileNotFoundError, match=pattern):
        load_xc_repo(missing)
    with pytest.raises(FileNotFoundError, match="not exist"):
        load_xc_repo(str(missing))
