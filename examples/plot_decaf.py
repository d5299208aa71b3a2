"""
DECAF: label text inside a deep extreme classifier, and zero-shot labels
========================================================================

:class:`~skxmc.DecafClassifier` (DECAF, Mittal et al., WSDM 2021) builds every
label's weight vector from the label's own text, embedded with the same token
embeddings as the documents, plus a free per-label vector. Labels are grouped
into clusters; a meta-classifier picks the best clusters and only their labels
are scored, in training as in prediction.

This script trains it on the sample of LF-DebianPackages bundled with skxmc
(raw text in, one TF-IDF space for documents and label text built inside),
prints the Extreme Classification Repository metrics under the LF protocol,
and then adds a label the model never saw, by its text alone.
"""

# %%
# Load the data
# -------------
import time

import numpy as np

from skxmc import DecafClassifier, EclareClassifier, LabelInfo
from skxmc.datasets import load_debian_packages_sample
from skxmc.metrics import inverse_propensity, xmc_report

data = load_debian_packages_sample()
print(
    f"{data.Y_train.shape[0]} train / {data.Y_test.shape[0]} test items, "
    f"{data.n_labels} labels"
)

# %%
# Hold one label out of training
# ------------------------------
# The most frequent test label is removed from the training targets; it is
# added back later from its text only.
held_out = int(np.argmax(np.asarray(data.Y_test.sum(axis=0)).ravel()))
keep = np.setdiff1d(np.arange(data.n_labels), [held_out])
label_text = [data.label_text[j] for j in keep]

# %%
# Fit DECAF on raw text
# ---------------------
# ``text_shortlist_size`` adds the labels whose text is closest to the document
# to the cluster shortlist; ``text_weight`` adds that text similarity to the
# score (``text_weight=0`` is plain DECAF scoring).
clf = DecafClassifier(
    embedding_dim=32,
    n_epochs=4,
    batch_size=256,
    learning_rate=0.05,
    max_leaf_size=8,
    beam_size=32,
    max_label_tokens=32,
    text_shortlist_size=30,
    meta_weight=0.2,
    text_weight=0.5,
    device="cpu",
    random_state=0,
)
tic = time.perf_counter()
clf.fit(data.text_train, data.Y_train[:, keep], label_info=LabelInfo(text=label_text))
print(f"fit: {time.perf_counter() - tic:.1f} s, {clf.n_clusters_} label clusters")

# %%
# Metrics on the test set (LF protocol: filter pairs removed, PSP with A=0.55,
# B=1.5). Columns of the held-out label are dropped from the ground truth.
scores, labels = clf.predict_topk(data.text_test, k=10)
inv_p = inverse_propensity(data.Y_train[:, keep], A=0.55, B=1.5)
report = xmc_report(
    data.Y_test[:, keep],
    (scores, labels),
    inv_propensity=inv_p,
    filter=data.filter_test[:, keep],
)
print("  ".join(f"{k} {100 * v:.2f}" for k, v in report.items() if "@" in k))

# %%
# ECLARE: the same model plus a label graph
# -----------------------------------------
# :class:`~skxmc.EclareClassifier` builds a label correlation graph from random
# walks over labels and training documents, mixes each label's text embedding
# with its graph neighbours' (learned attention), smooths the label clustering
# over the graph, and widens the shortlist with graph neighbours at prediction.
eclare = EclareClassifier(**clf.get_params(), graph_shortlist_size=32)
tic = time.perf_counter()
eclare.fit(
    data.text_train, data.Y_train[:, keep], label_info=LabelInfo(text=label_text)
)
print(f"fit: {time.perf_counter() - tic:.1f} s, graph: {eclare.label_graph_.nnz} edges")
report = xmc_report(
    data.Y_test[:, keep],
    eclare.predict_topk(data.text_test, k=10),
    inv_propensity=inv_p,
    filter=data.filter_test[:, keep],
)
print("  ".join(f"{k} {100 * v:.2f}" for k, v in report.items() if "@" in k))

# %%
# A learned fusion, and the head-tail trade-off
# ---------------------------------------------
# The fixed weights above mix the label score, the cluster score and the
# label-text cosine the same way for every pair. With ``fusion="learned"``,
# 10% of the training items are held out of the network's training and a
# gradient-boosted model learns from them how much to trust each score, for
# instance the label text for labels seen rarely or never.
# ``reranker="xr-linear"`` adds a sparse linear ranker (XR-Linear, trained on
# the same TF-IDF features) whose best labels join the shortlists and whose
# score is one more input of the fusion: the linear model is strong on frequent
# labels, the label text on rare ones. ``propensity_tilt`` then multiplies
# every score by a power of the label's inverse propensity: rare labels move up
# (PSP@k rises) at some cost in P@k.
fused = DecafClassifier(
    **{**clf.get_params(), "fusion": "learned", "reranker": "xr-linear"}
)
fused.fit(data.text_train, data.Y_train[:, keep], label_info=LabelInfo(text=label_text))
for tilt in (0.0, 0.25):
    fused.set_params(propensity_tilt=tilt)
    report = xmc_report(
        data.Y_test[:, keep],
        fused.predict_topk(data.text_test, k=10),
        inv_propensity=inv_p,
        filter=data.filter_test[:, keep],
    )
    print(
        f"learned fusion, tilt {tilt}: P@1 {100 * report['P@1']:.2f}  "
        f"PSP@1 {100 * report['PSP@1']:.2f}  PSP@5 {100 * report['PSP@5']:.2f}"
    )

# %%
# A zero-shot label
# -----------------
# ``add_labels`` gives the held-out label a weight vector computed from its text
# and puts it in the nearest cluster; no retraining. A query made of the label's
# own text retrieves it; the share of its true test items that rank it in their
# top 10 shows how far label text alone goes for this (very popular) label.
clf.add_labels([data.label_text[held_out]])
new_id = clf.n_labels_ - 1
_, labels = clf.predict_topk([data.label_text[held_out]], k=10)
print(f"label {data.label_title[held_out]!r}: rank for its own text:", end=" ")
print(int(np.flatnonzero(labels[0] == new_id)[0]) + 1 if new_id in labels else "-")
rows = np.flatnonzero(data.Y_test[:, held_out].toarray().ravel())
_, labels = clf.predict_topk([data.text_test[i] for i in rows], k=10)
hit = np.mean([new_id in row for row in labels])
print(f"in the top 10 of {100 * hit:.0f}% of its {len(rows)} test items")
