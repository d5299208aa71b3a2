"""
Quickstart: related Debian packages with XRLinearClassifier
===========================================================

Train :class:`~skxmc.XRLinearClassifier` on the sample of LF-DebianPackages
bundled with skxmc. Each item is a Debian package described by its name and
description, and its labels are the packages it depends on, recommends or
suggests. Labels have text of their own (their name and description), which
XR-Linear can fold into its label tree.

The script prints the Extreme Classification Repository metrics under the LF
protocol: the reciprocal "filter" pairs are removed from predictions and ground
truth before the top-k is taken, and PSP@k uses Jain et al. propensities
(A=0.55, B=1.5) computed on the training labels. As a reference point it also
scores a model with no training at all: cosine similarity between a document's
TF-IDF and each label's text. XR-Linear learns which labels are popular (head,
P@k); text similarity is better at rare labels (tail, PSP@k).
"""

# %%
# Load the data and build one TF-IDF space for documents and label text
# ---------------------------------------------------------------------
import time

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from skxmc import LabelInfo, XRLinearClassifier
from skxmc.datasets import load_debian_packages_sample
from skxmc.metrics import inverse_propensity, xmc_report
from skxmc.utils import csr_row_topk, labels_to_classes

start = time.perf_counter()
data = load_debian_packages_sample()
print(
    f"{data.Y_train.shape[0]} train / {data.Y_test.shape[0]} test items, "
    f"{data.n_labels} labels"
)
vectorizer = TfidfVectorizer(
    sublinear_tf=True, ngram_range=(1, 2), min_df=2, dtype=np.float32
)
vectorizer.fit(list(data.text_train) + list(data.label_text))
X_train = vectorizer.transform(data.text_train)
X_test = vectorizer.transform(data.text_test)
label_features = vectorizer.transform(data.label_text)

# %%
# Fit XR-Linear, with and without label text
# ------------------------------------------
# ``label_embedding="pifa_text_concat"`` clusters labels on the concatenation of
# their PIFA embedding (the normalised sum of their training documents) and their
# own text. Label data goes to ``fit`` wrapped in :class:`~skxmc.LabelInfo`, which
# cross-validation never splits.
inv_p = inverse_propensity(data.Y_train, A=0.55, B=1.5)
rows = {}
for name, embedding in [
    ("XR-Linear (PIFA)", "pifa"),
    ("XR-Linear (PIFA + label text)", "pifa_text_concat"),
]:
    clf = XRLinearClassifier(label_embedding=embedding, random_state=0)
    tic = time.perf_counter()
    clf.fit(X_train, data.Y_train, label_info=LabelInfo(features=label_features))
    fit_s = time.perf_counter() - tic
    tic = time.perf_counter()
    topk = clf.predict_topk(X_test, k=10)
    ms = 1000 * (time.perf_counter() - tic) / X_test.shape[0]
    report = xmc_report(
        data.Y_test, topk, inv_propensity=inv_p, filter=data.filter_test
    )
    rows[name] = (report, f"{fit_s:.1f} s", f"{ms:.2f} ms/query")

# %%
# A baseline with no training: document-to-label-text cosine similarity
tic = time.perf_counter()
similarity = (X_test @ label_features.T).tocsr()
cosine_topk = csr_row_topk(similarity, 10)
ms = 1000 * (time.perf_counter() - tic) / X_test.shape[0]
report = xmc_report(
    data.Y_test, cosine_topk, inv_propensity=inv_p, filter=data.filter_test
)
rows["TF-IDF label-text cosine (no training)"] = (report, "0 s", f"{ms:.2f} ms/query")

# %%
# The metrics table
# -----------------
columns = ["P@1", "P@3", "P@5", "nDCG@5", "PSP@1", "PSP@3", "PSP@5"]
print(
    f"\n{'method':40s}" + "".join(f"{c:>8s}" for c in columns) + "       fit    predict"
)
for name, (report, fit, predict) in rows.items():
    cells = "".join(f"{100 * report[c]:8.2f}" for c in columns)
    print(f"{name:40s}{cells}  {fit:>8s}  {predict}")

# %%
# Head to tail: recall by label-frequency bucket
# ----------------------------------------------
# :class:`~skxmc.metrics.LabelFrequencyDisplay` sorts the labels by their
# number of training items and cuts them into buckets holding the same number
# of training items each: the first bucket has a few very popular labels, the
# last thousands of rare ones (and those never seen in training). For each
# bucket it shows the fraction of the true test pairs found in the top 5.
# XR-Linear learns the head; label text alone reaches further into the tail.
import matplotlib.pyplot as plt

from skxmc.metrics import LabelFrequencyDisplay, ThresholdDisplay

_, ax = plt.subplots(figsize=(7, 4))
for name, topk in [("XR-Linear (PIFA + label text)", clf.predict_topk(X_test, k=5)),
                   ("label-text cosine", cosine_topk)]:  # fmt: skip
    LabelFrequencyDisplay.from_predictions(
        data.Y_test, topk, y_train=data.Y_train, k=5, metric="recall",
        filter=data.filter_test, name=name, ax=ax,
    )  # fmt: skip
ax.set_title("R@5 by label bucket, LF-DebianPackages sample")
plt.tight_layout()

# %%
# Choosing a threshold for ``predict``
# ------------------------------------
# ``predict`` keeps the labels scoring above ``threshold`` among the ``top_k``
# best. :class:`~skxmc.metrics.ThresholdDisplay` shows what a threshold costs:
# the precision of the kept labels rises with it, the share of packages that
# get any label at all (coverage) falls.
display = ThresholdDisplay.from_estimator(
    clf, X_test, data.Y_test, filter=data.filter_test, name="XR-Linear"
)
display.ax_.set_title("precision and coverage of predict, by threshold")
plt.tight_layout()

# %%
# What the model predicts for one package
# ---------------------------------------
# the first test package with several true labels whose best guess is right
scores, labels = clf.predict_topk(X_test, k=5)
n_true = np.diff(data.Y_test.indptr)
i = next(
    r
    for r in range(X_test.shape[0])
    if n_true[r] >= 3 and labels[r, 0] in set(data.Y_test[r].indices)
)
scores, labels = scores[i : i + 1], labels[i : i + 1]
print(f"\n{data.title_test[i]}")
truth = set(data.Y_test[i].indices)
# labels_to_classes, not label_title[label]: -1 pads rows with fewer than k
# retrieved labels, and a plain index would read it as the last label
names = labels_to_classes(data.label_title, labels[0])
for score, label, name in zip(scores[0], labels[0], names):
    if name is None:
        break
    mark = "*" if label in truth else " "
    print(f"  {mark} {score:.3f}  {name}")
print(f"\n(* = a true label) total time {time.perf_counter() - start:.1f} s")
