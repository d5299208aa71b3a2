"""
Fine-tuning a transformer for extreme classification: XR-Transformer
====================================================================

:class:`~skxmc.XRTransformerClassifier` reads raw text. It fine-tunes a
pretrained transformer coarse to fine on a label tree built from TF-IDF
features, then trains an XR-Linear ranker on TF-IDF features concatenated with
the fine-tuned embeddings. This example runs a very short fine-tuning (a few
optimizer steps per tree level) on a small slice of the LF-DebianPackages
sample bundled with skxmc, restricted to the labels seen in that slice, side by
side with :class:`~skxmc.XRLinearClassifier` on TF-IDF alone, so that it runs
in under a minute on two CPU cores.

It uses the ``all-MiniLM-L6-v2`` encoder from the project's shared folder when
present (nothing is downloaded), and a tiny randomly initialised BERT built on
the spot otherwise (its numbers then only show that the pipeline runs). With so
few steps and documents the numbers show the workflow, not the method's
accuracy: the full recipe is meant for a GPU
(``benchmarks/bench_xr_transformer.py``).
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

from skxmc import XRLinearClassifier, XRTransformerClassifier
from skxmc.datasets import load_debian_packages_sample
from skxmc.metrics import inverse_propensity, xmc_report

data = load_debian_packages_sample()
n_train, n_test = 400, 150
docs_train = list(data.text_train[:n_train])
docs_test = list(data.text_test[:n_test])
# the labels with a training item in the slice: fewer labels, a smaller tree
seen = np.flatnonzero(data.Y_train[:n_train].getnnz(axis=0))
Y_train, Y_test = data.Y_train[:n_train, seen], data.Y_test[:n_test, seen]
filter_test = data.filter_test[:n_test, seen]
print(f"{n_train} train / {n_test} test items, {len(seen)} labels")
inv_p = inverse_propensity(Y_train, A=0.55, B=1.5)

# %%
# The encoder: a local pretrained model, or a tiny random BERT
# ------------------------------------------------------------
shared = Path.cwd().resolve()
candidates = [
    p / "shared" / "models" / "all-MiniLM-L6-v2-fp16" for p in [shared, *shared.parents]
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
topks = {}
models = {
    "XR-Linear (TF-IDF)": XRLinearClassifier(max_leaf_size=100, random_state=0),
    "XR-Transformer": XRTransformerClassifier(
        encoder=encoder,
        max_length=32,
        max_leaf_size=100,
        n_steps=4,
        batch_size=16,
        learning_rate=1e-4,
        head_learning_rate=1e-3,
        random_state=0,
    ),
}
for name, clf in models.items():
    start = time.perf_counter()
    if name.startswith("XR-Linear"):
        tfidf = TfidfVectorizer(sublinear_tf=True, dtype=np.float32).fit(docs_train)
        clf.fit(tfidf.transform(docs_train), Y_train)
        topk = clf.predict_topk(tfidf.transform(docs_test), k=5)
    else:
        clf.fit(docs_train, Y_train)
        topk = clf.predict_topk(docs_test, k=5)
    seconds = time.perf_counter() - start
    topks[name] = topk
    report = xmc_report(
        Y_test, topk, k=(1, 3, 5), inv_propensity=inv_p, filter=filter_test
    )
    print(
        f"{name:20s} P@1 {100 * report['P@1']:.1f}  P@5 {100 * report['P@5']:.1f}  "
        f"PSP@5 {100 * report['PSP@5']:.1f}  ({seconds:.0f} s)"
    )

# %%
# Fine-tuning losses per tree level (coarse to fine)
# --------------------------------------------------
xrt = models["XR-Transformer"]
# ``loss_curve_`` holds the mean loss of every epoch, the levels in turn;
# ``n_epochs_`` says how many epochs each level ran.
start = 0
for level, n_epochs in enumerate(xrt.n_epochs_, start=1):
    curve = xrt.loss_curve_[start : start + n_epochs]
    start += n_epochs
    if curve:
        print(f"level {level}: epoch loss {curve[0]:.3f} -> {curve[-1]:.3f}")
print("stage seconds:", {k: round(v, 1) for k, v in xrt.fit_times_.items()})

# %%
# From head to tail labels
# ------------------------
# :class:`~skxmc.metrics.LabelFrequencyDisplay`: the fraction of the true test
# pairs found in the top 5, per bucket of labels of decreasing training
# frequency (each bucket holds the same number of training items).
import matplotlib.pyplot as plt

from skxmc.metrics import LabelFrequencyDisplay

_, ax = plt.subplots(figsize=(7, 4))
for name, topk in topks.items():
    LabelFrequencyDisplay.from_predictions(
        Y_test, topk, y_train=Y_train, k=5, n_buckets=4, metric="recall",
        filter=filter_test, name=name, ax=ax,
    )  # fmt: skip
plt.tight_layout()
