"""
Learning the label index end to end: ELIAS
==========================================

``EliasClassifier`` reads raw text. A transformer embeds each document, a
cluster scorer routes it to a few label clusters, and a sparse, learnable
cluster-to-label adjacency turns the cluster scores into a shortlist of labels
that per-label classifiers re-score. Stage 1 trains with the k-means
clustering as the index; the adjacency is then re-estimated from the stage-1
model's own routing and learned in stage 2; a sparse linear re-ranker then
re-scores the shortlist. This example runs both stages for one epoch each on a
small slice of the LF-DebianPackages sample bundled with skxmc, restricted to
the labels seen in that slice, side by side with
:class:`~skxmc.XRLinearClassifier` on TF-IDF alone, so that it runs in under a
minute on two CPU cores.

It uses the ``all-MiniLM-L6-v2`` encoder from the project's shared folder when
present (nothing is downloaded), and a tiny randomly initialised BERT built on
the spot otherwise (its numbers then only show that the pipeline runs). With so
little training the numbers show the workflow, not the method's accuracy: the
full recipe is meant for a GPU (``benchmarks/bench_elias.py``).
"""

# %%
# Data: a slice of the bundled sample, and the labels it uses
# -----------------------------------------------------------
import tempfile
import time
from pathlib import Path

import numpy as np
import transformers
from sklearn.feature_extraction.text import TfidfVectorizer

from skxmc import EliasClassifier, XRLinearClassifier
from skxmc.datasets import load_debian_packages_sample
from skxmc.metrics import inverse_propensity, recall_at_k, xmc_report

data = load_debian_packages_sample()
n_train, n_test = 400, 150
docs_train = list(data.text_train[:n_train])
docs_test = list(data.text_test[:n_test])
# the labels with a training item in the slice: fewer labels, fewer clusters
seen = np.flatnonzero(data.Y_train[:n_train].getnnz(axis=0))
Y_train, Y_test = data.Y_train[:n_train, seen], data.Y_test[:n_test, seen]
filter_test = data.filter_test[:n_test, seen]
print(f"{n_train} train / {n_test} test items, {len(seen)} labels")
inv_p = inverse_propensity(Y_train, A=0.55, B=1.5)

# %%
# The encoder: a local pretrained model, or a tiny random BERT
# ------------------------------------------------------------
here = Path.cwd().resolve()
candidates = [
    p / "shared" / "models" / "all-MiniLM-L6-v2-fp16" for p in [here, *here.parents]
]
encoder = next((str(p) for p in candidates if p.is_dir()), None)
if encoder is None:
    folder = Path(tempfile.mkdtemp())
    words = TfidfVectorizer(max_features=2000).fit(docs_train).get_feature_names_out()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    (folder / "vocab.txt").write_text("\n".join([*specials, *words]) + "\n")
    transformers.BertTokenizerFast(str(folder / "vocab.txt")).save_pretrained(folder)
    config = transformers.BertConfig(
        vocab_size=len(specials) + len(words),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    transformers.BertModel(config).save_pretrained(folder)
    encoder = str(folder)
print("encoder:", encoder)

# %%
# Fit both models and compare
# ---------------------------
elias = EliasClassifier(
    encoder=encoder,
    max_length=32,
    max_leaf_size=100,
    kappa=300,
    beam_size=5,
    shortlist_size=300,
    n_epochs=(1, 1),
    batch_size=32,
    random_state=0,
)
tfidf = TfidfVectorizer(sublinear_tf=True, dtype=np.float32).fit(docs_train)
xr_linear = XRLinearClassifier(max_leaf_size=100, random_state=0)
topks = {}
for name, clf in {"XR-Linear (TF-IDF)": xr_linear, "ELIAS": elias}.items():
    start = time.perf_counter()
    if clf is xr_linear:
        clf.fit(tfidf.transform(docs_train), Y_train)
        topk = clf.predict_topk(tfidf.transform(docs_test), k=100)
    else:
        clf.fit(docs_train, Y_train)
        topk = clf.predict_topk(docs_test, k=100)
    seconds = time.perf_counter() - start
    topks[name] = topk
    report = xmc_report(
        Y_test, topk, k=(1, 3, 5), inv_propensity=inv_p, filter=filter_test
    )
    recall = recall_at_k(Y_test, topk, k=100, filter=filter_test)
    print(
        f"{name:20s} P@1 {100 * report['P@1']:.1f}  P@5 {100 * report['P@5']:.1f}  "
        f"PSP@5 {100 * report['PSP@5']:.1f}  R@100 {100 * recall:.1f}  "
        f"({seconds:.0f} s)"
    )

# %%
# The learned index
# -----------------
# Each of the ``C`` cluster rows keeps exactly ``kappa`` labels: a ``(C, kappa)``
# tensor of label ids and a ``(C, kappa)`` tensor of learned parameters, never a
# dense ``C x n_labels`` matrix.
net = elias.network_
print("clusters:", elias.n_clusters_, "index shape:", tuple(net.adjacency_index.shape))
# one mean loss per epoch: stage 1 (1 epoch here), then stage 2
for stage, loss in enumerate(elias.loss_curve_, start=1):
    print(f"stage {stage}: mean loss {loss:.4f}")
print("seconds:", {k: round(v, 1) for k, v in elias.fit_times_.items()})

# %%
# Precision and coverage against a threshold
# ------------------------------------------
# ``predict`` keeps the labels scoring above ``threshold`` among the ``top_k``
# best; :class:`~skxmc.metrics.ThresholdDisplay` shows the precision of what is
# kept and the share of documents that keep any label, for each threshold.
import matplotlib.pyplot as plt

from skxmc.metrics import LabelFrequencyDisplay, ThresholdDisplay

ThresholdDisplay.from_predictions(
    Y_test, topks["ELIAS"], filter=filter_test, name="ELIAS"
)
plt.tight_layout()

# %%
# From head to tail labels
# ------------------------
_, ax = plt.subplots(figsize=(7, 4))
for name, topk in topks.items():
    LabelFrequencyDisplay.from_predictions(
        Y_test, topk, y_train=Y_train, k=5, n_buckets=4, metric="recall",
        filter=filter_test, name=name, ax=ax,
    )  # fmt: skip
plt.tight_layout()
