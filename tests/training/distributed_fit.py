"""A fit run by tests/training/test_distributed.py, in one process or under torchrun.

``python distributed_fit.py {toy,decaf,eclare,elias,xr-transformer} OUT_DIR
[TINY_BERT_DIR]``: rank 0
writes ``OUT_DIR/result.npz`` (weights or top-k predictions, loss curve,
world size). Every rank runs the whole script, as a user's script would.
"""

import sys
from pathlib import Path

import numpy as np
import torch


def toy(out):
    """A sparse EmbeddingBag (SparseAdam) and a dense layer, 3 epochs."""
    from skxmc.training import Trainer, epoch_batches

    gen = torch.Generator().manual_seed(0)
    X = torch.randint(0, 50, (61, 4), generator=gen)
    y = torch.randn(61, generator=gen)
    torch.manual_seed(0)
    bag = torch.nn.EmbeddingBag(50, 8, mode="mean", sparse=True)
    head = torch.nn.Linear(8, 1)
    model = torch.nn.ModuleDict({"bag": bag, "head": head})

    def loss_fn(rows):
        out = head(bag(X[rows])).squeeze(1)
        return ((out - y[rows]) ** 2).mean()

    # 61 rows in batches of 16: the last batch (13 rows) shards unevenly;
    # micro-batches of 3 rows accumulate before the synchronised one
    trainer = Trainer(model, learning_rate=0.05, micro_batch_size=3)
    state = trainer.fit(loss_fn, epoch_batches(61, 16, seed=1), n_epochs=3)
    return {
        "bag": bag.weight.detach().numpy(),
        "head": head.weight.detach().numpy(),
        "loss": np.array(state.step_losses),
        "world_size": trainer.world_size,
    }


def decaf(out, estimator="DecafClassifier", **params):
    import skxmc
    from skxmc import LabelInfo
    from skxmc.datasets import make_xmc_classification

    d = make_xmc_classification(
        n_samples=300, n_labels=30, n_features=120, return_text=True, random_state=0
    )
    clf = getattr(skxmc, estimator)(
        embedding_dim=16,
        n_epochs=4,
        batch_size=32,
        learning_rate=0.02,
        dropout=0.0,
        max_leaf_size=4,
        beam_size=3,
        device="cpu",
        random_state=0,
        **params,
    ).fit(d.text[:240], d.Y[:240], label_info=LabelInfo(text=d.label_text))
    scores, indices = clf.predict_topk(d.text[240:], k=5)
    return {"scores": scores, "indices": indices, "loss": np.array(clf.loss_curve_)}


def _fit_keyword_docs(clf):
    """Fit ``clf`` on the keyword documents; its test top-5 and loss curve."""
    from skxmc.utils._testing import make_keyword_docs

    docs, Y = make_keyword_docs(64, seed=0)
    test_docs, _ = make_keyword_docs(32, seed=1)
    scores, indices = clf.fit(docs, Y).predict_topk(test_docs, k=5)
    return {"scores": scores, "indices": indices, "loss": np.array(clf.loss_curve_)}


# the settings the two transformer estimators share: short texts, small
# batches, one thread
ENCODER_PARAMS = {
    "max_length": 16,
    "pooling": "mean",
    "batch_size": 16,
    "learning_rate": 1e-3,
    "head_learning_rate": 5e-2,
    "top_k": 5,
    "device": "cpu",
    "n_jobs": 1,
    "random_state": 0,
}


def elias(out, bert):
    from skxmc import EliasClassifier

    clf = EliasClassifier(
        encoder=bert,
        dropout=0.0,
        max_leaf_size=2,
        kappa=3,
        beam_size=2,
        shortlist_size=5,
        n_epochs=(3, 2),
        **ENCODER_PARAMS,
    )
    return _fit_keyword_docs(clf)


def xr_transformer(out, bert):
    from skxmc import XRTransformerClassifier

    clf = XRTransformerClassifier(
        encoder=bert,
        branching_factor=2,
        max_leaf_size=2,
        n_steps=12,
        beam_size=4,
        embedding_weight=0.5,
        **ENCODER_PARAMS,
    )
    return _fit_keyword_docs(clf)


def main():
    import torch.distributed as dist

    kind, out = sys.argv[1], Path(sys.argv[2])
    if kind == "toy":
        result = toy(out)
    elif kind == "decaf":
        result = decaf(out)
    elif kind == "eclare":
        # the fixed fusion: the learned one (gradient-boosted trees fitted
        # on the network's scores) can turn the ranks' 1e-4 differences of
        # those scores into different splits (up to 0.24 on a probability)
        result = decaf(out, "EclareClassifier", fusion="weights", reranker=None)
    elif kind == "xr-transformer":
        result = xr_transformer(out, sys.argv[3])
    else:
        result = elias(out, sys.argv[3])
    world = dist.get_world_size() if dist.is_initialized() else 1
    result["world_size"] = world
    if not dist.is_initialized() or dist.get_rank() == 0:
        np.savez(out / "result.npz", **result)
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
