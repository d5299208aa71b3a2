"""Build the small LF-DebianPackages sample bundled in ``skxmc.datasets``.

Usage (from the repository root)::

    python tools/make_debian_packages_sample.py [--source DIR] [--out DIR]

``--source`` defaults to ``$SKXMC_SHARED_DIR/data/LF-DebianPackages`` or
``../shared/data/LF-DebianPackages``; ``--out`` to
``skxmc/datasets/data/debian_packages_sample``. The output is deterministic
(seeded sampling, gzip headers without time stamps): running the script twice
gives byte-identical files.

What the sample keeps (see also ``skxmc/datasets/data/README.md``):

1. ``N_TRAIN`` train items and ``N_TEST`` test items drawn uniformly without
   replacement (``numpy.random.default_rng(SEED)``, train first), kept in their
   original order.
2. Labels: exactly the labels that are a target of at least one sampled item
   (train or test), in their original order, re-indexed 0..n_labels-1. So no
   target of a sampled item is dropped and no item is dropped; some labels have
   test positives only, as in the full data set.
3. Filter pairs ``(row, label)`` whose row is a sampled item and whose label is
   kept, re-indexed.
4. ``content`` longer than ``MAX_CONTENT_CHARS`` characters (items and labels)
   is cut at the last whitespace before that length (or at that length when
   there is none in its second half); titles and uids are never changed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
from pathlib import Path

import numpy as np

SEED = 0
N_TRAIN = 4000
N_TEST = 1500
MAX_CONTENT_CHARS = 2000

REPO_ROOT = Path(__file__).resolve().parents[1]

DESCR = """\
# LF-DebianPackages sample (bundled with skxmc)

A small, fixed subset of LF-DebianPackages-42K, a label-feature ("LF") extreme
multi-label data set built from the Debian 12 "bookworm" archive index (section
main, amd64): each item is a binary package, its text is "name: short
description" plus the long description, and its targets are the packages it
depends on, recommends or suggests. Labels are packages, with the same kind of
text. Files use the layout of the Extreme Classification Repository LF sets
(trn.json.gz, tst.json.gz, lbl.json.gz, filter_labels_train.txt.gz,
filter_labels_test.txt.gz) and are read by `skxmc.datasets.load_xc_repo`.

Built by `tools/make_debian_packages_sample.py` (seed {seed}):

- {n_train} train and {n_test} test items drawn uniformly at random without
  replacement from the 39,815 train and 17,063 test items, original order kept.
- Labels: exactly the {n_labels} labels that are a target of at least one sampled
  item, in their original order, re-indexed. No item and no target of a sampled
  item is dropped; {n_labels_without_train_positive} labels have test positives
  only (as in the full set, where 6,970 of 42,242 labels have no train positive).
- Positives: {n_positives_train} in train, {n_positives_test} in test.
- Filter pairs (the item itself where it is also a label): the pairs of the full
  set whose item is sampled and whose label is kept, re-indexed:
  {n_filter_train} in train, {n_filter_test} in test.
- `content` longer than {max_chars} characters is cut at the last whitespace
  before that length: {n_truncated_items} items and {n_truncated_labels} labels.
  Titles and uids are unchanged.

Source and licence: the Packages and Translation-en index files of Debian 12
bookworm/main; package descriptions are written by Debian maintainers and
distributed with the archive, which is freely redistributable. Cite "Debian 12
archive index" when reporting numbers.
"""


def _default_source() -> Path:
    shared = Path(os.environ.get("SKXMC_SHARED_DIR", REPO_ROOT.parent / "shared"))
    return shared / "data" / "LF-DebianPackages"


def read_json_lines(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_pairs(path: Path) -> np.ndarray:
    with gzip.open(path, "rt") as f:
        rows = [
            tuple(int(float(x)) for x in line.split()) for line in f if line.strip()
        ]
    return np.asarray(rows, dtype=np.int64).reshape(-1, 2)


def truncate(text: str, limit: int = MAX_CONTENT_CHARS) -> tuple[str, bool]:
    """Cut ``text`` to at most ``limit`` characters at a whitespace boundary."""
    if len(text) <= limit:
        return text, False
    cut = max(text.rfind(" ", 0, limit + 1), text.rfind("\n", 0, limit + 1))
    if cut < limit // 2:
        cut = limit
    return text[:cut].rstrip(), True


def write_gz(path: Path, text: str) -> None:
    path.write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))


def build(source: Path, out: Path) -> dict:
    trn = read_json_lines(source / "trn.json.gz")
    tst = read_json_lines(source / "tst.json.gz")
    lbl = read_json_lines(source / "lbl.json.gz")
    filters = {
        "train": read_pairs(source / "filter_labels_train.txt.gz"),
        "test": read_pairs(source / "filter_labels_test.txt.gz"),
    }

    rng = np.random.default_rng(SEED)
    rows = {
        "train": np.sort(rng.choice(len(trn), size=N_TRAIN, replace=False)),
        "test": np.sort(rng.choice(len(tst), size=N_TEST, replace=False)),
    }
    items = {"train": trn, "test": tst}

    kept = sorted(
        {
            t
            for split in rows
            for i in rows[split]
            for t in items[split][i]["target_ind"]
        }
    )
    new_label = np.full(len(lbl), -1, dtype=np.int64)
    new_label[kept] = np.arange(len(kept))

    stats = {"n_truncated_items": 0, "n_truncated_labels": 0}
    out.mkdir(parents=True, exist_ok=True)
    for split, fname in (("train", "trn.json.gz"), ("test", "tst.json.gz")):
        lines = []
        for i in rows[split]:
            record = items[split][i]
            content, cut = truncate(record.get("content") or "")
            stats["n_truncated_items"] += cut
            targets = sorted(int(new_label[t]) for t in record["target_ind"])
            new = {
                "uid": record["uid"],
                "title": record["title"],
                "content": content,
                "target_ind": targets,
            }
            lines.append(json.dumps(new, ensure_ascii=False))
        write_gz(out / fname, "\n".join(lines) + "\n")

    lines = []
    for j in kept:
        content, cut = truncate(lbl[j].get("content") or "")
        stats["n_truncated_labels"] += cut
        new = {"uid": lbl[j]["uid"], "title": lbl[j]["title"], "content": content}
        lines.append(json.dumps(new, ensure_ascii=False))
    write_gz(out / "lbl.json.gz", "\n".join(lines) + "\n")

    for split in ("train", "test"):
        new_row = np.full(len(items[split]), -1, dtype=np.int64)
        new_row[rows[split]] = np.arange(len(rows[split]))
        pairs = filters[split]
        r, c = new_row[pairs[:, 0]], new_label[pairs[:, 1]]
        keep = (r >= 0) & (c >= 0)
        new_pairs = sorted(zip(r[keep].tolist(), c[keep].tolist()))
        write_gz(
            out / f"filter_labels_{split}.txt.gz",
            "".join(f"{a} {b}\n" for a, b in new_pairs),
        )
        stats[f"n_filter_{split}"] = len(new_pairs)

    positives = {
        split: [len(items[split][i]["target_ind"]) for i in rows[split]]
        for split in rows
    }
    train_labels = {t for i in rows["train"] for t in trn[i]["target_ind"]}
    stats.update(
        seed=SEED,
        max_chars=MAX_CONTENT_CHARS,
        n_train=N_TRAIN,
        n_test=N_TEST,
        n_labels=len(kept),
        n_labels_without_train_positive=len(kept) - len(train_labels),
        n_positives_train=int(sum(positives["train"])),
        n_positives_test=int(sum(positives["test"])),
        bytes={p.name: p.stat().st_size for p in sorted(out.glob("*.gz"))},
    )
    stats["total_bytes"] = sum(stats["bytes"].values())
    (out / "DESCR.md").write_text(DESCR.format(**stats), encoding="utf-8")
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=_default_source())
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / "skxmc" / "datasets" / "data" / "debian_packages_sample",
    )
    args = parser.parse_args()
    stats = build(args.source, args.out)
    print(json.dumps(stats, indent=2))


if __name__ == "__main__":
    main()
