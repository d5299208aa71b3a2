"""
DECAF: label text inside a deep extreme classifier, and zero-shot labels
========================================================================

:class:`~skxmc.DecafClassifier` (DECAF, Mittal et al., WSDM 2021) builds every
label's weight vector from the label's own text, embedded with the same token
embeddings as the documents, plus a free per-label vector. Labels are grouped
into clusters; a meta-classifier picks the best clusters and only their labels
are scored, in training as in prediction.

This script trains small models on a slice of the LF-DebianPackages sample
bundled with skxmc (raw text in, one TF-IDF space for documents and label
text built inside) so that it runs in well under a minute; it plots how the
propensity tilt trades head for tail labels and how accuracy falls from head
to tail, and then adds a label the model never saw, by its text alone. The
full-size runs live in ``benchmarks/bench_decaf.py``.
"""

# %%
# Load a slice of the data
# ------------------------
import time

import matplotlib.pyplot as plt
import numpy as np

from skxmc import DecafClassifier, EclareClassifier, LabelInfo
from skxmc.datasets import load_debian_packages_sample
from skxmc.metrics import (
    LabelFrequencyDisplay,
    PropensityTiltDisplay,
    inverse_propensity,
    xmc_report,
)

data = load_debian_packages_sample()
n_train, n_test = 500, 200
docs_train, docs_test = data.text_train[:n_train], data.text_test[:n_test]
Y_train, Y_test = data.Y_train[:n_train], data.Y_test[:n_test]
filter_test = data.filter_test[:n_test]
print(f"{n_train} train / {n_test} test items, {data.n_labels} labels")

# %%
# Hold one label out of training
# ------------------------------
# The most frequent test label is removed from the training targets; it is
# added back later from its text only.
held_out = int(np.argmax(np.asarray(Y_test.sum(axis=0)).ravel()))
keep = np.setdiff1d(np.arange(data.n_labels), [held_out])
label_text = [data.label_text[j] for j in keep]
inv_p = inverse_propensity(Y_train[:, keep], A=0.55, B=1.5)


topks = {}


def report(clf, name):
    """LF protocol: filter pairs removed, PSP with A=0.55, B=1.5."""
    topks[name] = clf.predict_topk(docs_test, k=5)
    scores = xmc_report(
        Y_test[:, keep],
        topks[name],
        inv_propensity=inv_p,
        filter=filter_test[:, keep],
    )
    return "  ".join(f"{k} {100 * scores[k]:.2f}" for k in ("P@1", "P@5", "PSP@1"))


# %%
# Fit DECAF on raw text
# ---------------------
# The defaults fuse the scores with a learned model: 10% of the training items
# are held out of the network's training and a gradient-boosted model learns
# from them how much to trust the label score, the cluster score, the
# label-text cosine (``text_shortlist_size`` adds the labels whose text is
# closest to the document to the shortlist) and a sparse linear XR-Linear
# ranker (``reranker="xr-linear"``): the linear model is strong on frequent
# labels, the label text on rare ones. Small sizes here, for speed.
small = {
    "embedding_dim": 32,
    "n_epochs": 2,
    "learning_rate": 0.05,
    "max_label_tokens": 32,
    "text_shortlist_size": 30,
    "rerank_size": 50,
    "device": "cpu",
    "random_state": 0,
}
clf = DecafClassifier(**small)
tic = time.perf_counter()
clf.fit(docs_train, Y_train[:, keep], label_info=LabelInfo(text=label_text))
print(f"DECAF  fit {time.perf_counter() - tic:.1f} s:  {report(clf, 'DECAF')}")

# %%
# ECLARE: the same model plus a label graph
# -----------------------------------------
# :class:`~skxmc.EclareClassifier` builds a label correlation graph from random
# walks over labels and training documents, mixes each label's text embedding
# with its graph neighbours' (learned attention), smooths the label clustering
# over the graph, and widens the shortlist with graph neighbours at prediction.
eclare = EclareClassifier(**small)
tic = time.perf_counter()
eclare.fit(docs_train, Y_train[:, keep], label_info=LabelInfo(text=label_text))
print(f"ECLARE fit {time.perf_counter() - tic:.1f} s:  {report(eclare, 'ECLARE')}")

# %%
# The head-tail trade-off of ``propensity_tilt``
# ----------------------------------------------
# ``propensity_tilt`` multiplies every score by a power of the label's inverse
# propensity at prediction time: rare labels move up (PSP@k rises) at some
# cost in P@k. :class:`~skxmc.metrics.PropensityTiltDisplay` predicts at several
# tilts with one fit and draws PSP@1 against P@1.
_, ax = plt.subplots(figsize=(6, 4))
for model, name in [(clf, "DECAF"), (eclare, "ECLARE")]:
    PropensityTiltDisplay.from_estimator(
        model, docs_test, Y_test[:, keep], inv_propensity=inv_p,
        tilts=[0, 0.2, 0.4], k=1, filter=filter_test[:, keep],
        name=name, ax=ax,
    )  # fmt: skip
plt.tight_layout()

# %%
# From head to tail labels
# ------------------------
# The share of P@5 that each label-frequency bucket contributes: the buckets
# hold the same number of training items each, so the first has a few popular
# labels and the last thousands of rare ones.
_, ax = plt.subplots(figsize=(7, 4))
for name, topk in topks.items():  # the predictions made above, at tilt 0
    LabelFrequencyDisplay.from_predictions(
        Y_test[:, keep], topk, y_train=Y_train[:, keep], k=5,
        filter=filter_test[:, keep], name=name, ax=ax,
    )  # fmt: skip
plt.tight_layout()

# %%
# A zero-shot label
# -----------------
# ``add_labels`` gives the held-out label a weight vector computed from its text
# and puts it in the nearest cluster; no retraining. The learned fusion above
# was trained with the XR-Linear re-ranker's score as a feature, and a label
# added later has no re-ranker model, so it would rank low (``add_labels``
# warns). Zero-shot labels therefore go with plain scoring:
# ``fusion="weights", reranker=None``. A query made of the label's own text
# retrieves it; the share of its true test items that rank it in their top 10
# shows how far label text alone goes for this (very popular) label.
plain = DecafClassifier(**small, fusion="weights", reranker=None)
plain.fit(docs_train, Y_train[:, keep], label_info=LabelInfo(text=label_text))
plain.add_labels([data.label_text[held_out]])
new_id = plain.n_labels_ - 1
_, labels = plain.predict_topk([data.label_text[held_out]], k=10)
print(f"label {data.label_title[held_out]!r}: rank for its own text:", end=" ")
print(int(np.flatnonzero(labels[0] == new_id)[0]) + 1 if new_id in labels else "-")
rows = np.flatnonzero(Y_test[:, held_out].toarray().ravel())
_, labels = plain.predict_topk([docs_test[i] for i in rows], k=10)
hit = np.mean([new_id in row for row in labels])
print(f"in the top 10 of {100 * hit:.0f}% of its {len(rows)} test items")
