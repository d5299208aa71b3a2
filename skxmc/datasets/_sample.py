"""The small LF-DebianPackages sample shipped inside the package."""

from __future__ import annotations

from pathlib import Path

from skxmc.datasets._xmc_repo import load_xc_repo

__all__ = ["load_debian_packages_sample"]

_SAMPLE_DIR = Path(__file__).resolve().parent / "data" / "debian_packages_sample"


def load_debian_packages_sample():
    """Load the bundled sample of LF-DebianPackages (package -> related packages).

    A fixed subset of LF-DebianPackages-42K, a real label-feature ("LF") extreme
    multi-label data set with text on both sides, built from the Debian 12
    archive index: items are Debian packages described by their name and
    description, labels are the packages they depend on, recommend or suggest,
    with the same kind of text. The sample ships with skxmc, so it needs no
    download.

    =============================  ============
    train items                    4000
    test items                     1500
    labels                         10776
    labels with no train positive  2060
    positives (train / test)       22070 / 7722
    filter pairs (train / test)    726 / 256
    =============================  ============

    Items were sampled uniformly at random (seed 0); the labels are exactly
    those that are a target of at least one sampled item, so no item and no
    target is dropped. Long descriptions (over 2000 characters: 10 items, 37
    labels) are cut at a word boundary. The ``DESCR`` key and
    ``tools/make_debian_packages_sample.py`` give the details.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        The keys of :func:`load_xc_repo`: ``text_train``, ``title_train``,
        ``uid_train``, ``Y_train`` (csr_matrix of shape (4000, 10776), float32),
        the same for ``test``, ``label_text``, ``label_title``, ``label_uid``,
        ``filter_train``, ``filter_test`` and ``n_labels``; the bag-of-words
        keys (``X_train``, ``X_test``, ``feature_names``) are ``None``. Plus
        ``DESCR``, a description of the sample (str).

    See Also
    --------
    load_xc_repo : Load a data set in the Extreme Classification Repository formats.

    Notes
    -----
    The Debian archive index is freely redistributable; package descriptions are
    written by Debian maintainers. Cite "Debian 12 archive index" when reporting
    numbers.

    Examples
    --------
    >>> from skxmc.datasets import load_debian_packages_sample
    >>> data = load_debian_packages_sample()
    >>> data.Y_train.shape, data.Y_test.shape
    ((4000, 10776), (1500, 10776))
    >>> data.title_train[0]
    '389-ds-base-dev: 389 Directory Server suite - development files'
    """
    data = load_xc_repo(_SAMPLE_DIR)
    data.DESCR = (_SAMPLE_DIR / "DESCR.md").read_text(encoding="utf-8")
    return data
