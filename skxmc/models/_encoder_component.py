"""A pretrained text encoder, frozen or fine-tuned, as a DECAF engine component."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["EncoderComponent"]


class EncoderComponent:
    """A sentence encoder beside DECAF's bag-of-words network.

    DECAF reads documents and label texts as bags of words; a pretrained
    sentence encoder (for example all-MiniLM-L6-v2) reads them as sentences
    and is strongest where DECAF is weakest, on the tail: on
    LF-DebianPackages its zero-shot cosine has the best PSP@1 of every anchor
    (40.58) at a P@1 (32.02) far below DECAF's. Handed to
    :meth:`DecafModel.train <skxmc.models.DecafModel.train>`, it acts on:

    - shortlists (:meth:`candidates`): the ``shortlist_size`` labels of
      highest cosine between document and label text join each shortlist;
    - the learned fusion (:meth:`fusion_parts`): each pair's cosine of
      document and label text (``"encoder"``).

    By default the encoder is not trained: label texts are encoded once in
    :meth:`fit`, documents at each prediction (:meth:`encode`). With
    ``training``, :meth:`fit` first fine-tunes it as a dual encoder
    (:class:`~skxmc.models.DualEncoderModel`: the same encoder for documents
    and label texts, cosine scores, the loss and schedule of ``training``)
    on the documents and labels it is given, which DECAF takes from the
    network's own training rows, never from the fusion's held-out rows (the
    fusion must learn how far to trust the cosine on rows the encoder did
    not see). (A second
    fusion feature, the cosine with the centroid of each label's encoded
    training documents, was measured and not kept: on held-out training
    rows of LF-DebianPackages it did not help, and it costs an encoding of
    every training document; ``benchmarks/results/decaf_encoder_cpu.txt``.)

    Parameters
    ----------
    model : transformers.PreTrainedModel
        The encoder (float32, on the CPU until used).
    tokenizer : transformers.PreTrainedTokenizerBase
        Its tokenizer.
    pooling : {"cls", "mean"}, default="mean"
        Pooling of the last hidden states.
    max_length : int, default=64
        Tokens per text, special tokens included.
    batch_size : int, default=256
        Texts per forward pass.
    training : DualEncoderConfig or None, default=None
        Fine-tune the encoder in :meth:`fit` with these hyper-parameters
        (its ``max_length``, ``label_max_length`` and ``pooling`` are this
        component's); None: frozen.

    Attributes
    ----------
    shortlist_ : LabelShortlist
        The exact cosine index of the label-text embeddings (the one the
        dual encoder retrieves with).
    loss_curve_ : list of float
        With ``training``: the fine-tuning's mean loss per epoch.

    Examples
    --------
    >>> from skxmc.models import EncoderComponent
    >>> from skxmc.nn._transformer import load_encoder
    >>> from skxmc.utils._testing import tiny_bert_dir
    >>> component = EncoderComponent(*load_encoder(tiny_bert_dir()))
    >>> component = component.fit(["w1 w2", "w3"])
    >>> doc = component.encode(["w1 w2 w5"])
    >>> component.candidates(doc, 2).shape
    (1, 2)
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        pooling: str = "mean",
        max_length: int = 64,
        batch_size: int = 256,
        training=None,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.max_length = max_length
        self.batch_size = batch_size
        self.training = training
        self.shortlist_ = None
        self.loss_curve_ = []

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        label_texts: Sequence[str],
        *,
        device="cpu",
        texts: Sequence[str] | None = None,
        Y=None,
        seed: int = 0,
        verbose: int = 0,
    ) -> EncoderComponent:
        """Fine-tune the encoder (with ``training``), then encode the label texts.

        Parameters
        ----------
        label_texts : sequence of str
            One text per label.
        device : str or torch.device, default="cpu"
            Where the encoder runs.
        texts : sequence of str, default=None
            The documents to fine-tune on (required with ``training``).
        Y : sparse matrix of shape (n_texts, n_labels), default=None
            Their labels (required with ``training``).
        seed : int, default=0
            Seeds the fine-tuning.
        verbose : int, default=0
            The fine-tuning's progress output.

        Returns
        -------
        self : EncoderComponent
            With :attr:`shortlist_`.
        """
        if self.training is None:
            self._index(self.encode(label_texts, device=device))
            return self
        if texts is None or Y is None:
            raise ValueError("A fine-tuned encoder needs the documents and Y.")
        from dataclasses import replace

        from skxmc.models._dual_encoder import DualEncoderModel

        config = replace(
            self.training,
            max_length=self.max_length,
            label_max_length=self.max_length,
            pooling=self.pooling,
            inference_batch_size=self.batch_size,
        )
        dual = DualEncoderModel.train(
            list(texts), Y, list(label_texts), encoder=self.model,
            tokenizer=self.tokenizer, config=config, seed=seed, device=device,
            verbose=verbose,
        )  # fmt: skip
        self.model = dual.network.encoder  # the fine-tuned weights, on the CPU
        self.loss_curve_ = list(dual.loss_curve)
        # the label texts encoded by the final weights, as encode() would
        self._index(dual.label_embeddings)
        return self

    def _index(self, label_embeddings: np.ndarray) -> None:
        from skxmc.indexing import LabelShortlist

        self.shortlist_ = LabelShortlist(method="exact").fit(label_embeddings)

    @property
    def label_embeddings_(self) -> np.ndarray:
        """Unit embeddings of the label texts, shape ``(n_labels, dim)``."""
        return self.shortlist_.labels_

    def encode(self, texts: Sequence[str], *, device="cpu") -> np.ndarray:
        """Unit embeddings of ``texts``, shape ``(n_texts, dim)``, float32."""
        from skxmc.nn._transformer import encode

        return encode(
            self.model,
            self.tokenizer,
            list(texts),
            max_length=self.max_length,
            batch_size=self.batch_size,
            device=device,
            pooling=self.pooling,
            normalize=True,
        )

    # ------------------------------------------------------------- predict
    def candidates(self, docs: np.ndarray, size: int) -> np.ndarray:
        """The ``size`` labels of highest cosine with each row of ``docs``
        (best first; ties by the lower id), shape ``(n_rows, size)``."""
        size = min(int(size), self.shortlist_.n_labels_)
        return self.shortlist_.query(docs, size)[1]

    def fusion_parts(self, ids: np.ndarray, docs: np.ndarray) -> dict:
        """The encoder's pair scores of a block, learned-fusion inputs.

        Parameters
        ----------
        ids : ndarray of shape (n_rows, m)
            The block's shortlisted label ids, ``-1`` padded.
        docs : ndarray of shape (n_rows, dim)
            The block's document embeddings (:meth:`encode`).

        Returns
        -------
        parts : dict
            ``{"encoder": cosines}``, a float32 array of the shape of ``ids``,
            0 on padding.
        """
        table = self.label_embeddings_[np.maximum(ids, 0)]
        cosines = np.einsum("rd,rmd->rm", docs, table).astype(np.float32)
        cosines[ids < 0] = 0.0
        return {"encoder": cosines}

    def add_labels(self, label_texts: Sequence[str], *, device="cpu") -> None:
        """Encode new labels' texts (zero-shot)."""
        new = self.encode(label_texts, device=device)
        self._index(np.vstack([self.label_embeddings_, new]))
