"""A frozen pretrained text encoder as a component of the DECAF engine."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["EncoderComponent"]


class EncoderComponent:
    """A frozen sentence encoder beside DECAF's bag-of-words network.

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

    The encoder is never trained: label texts are encoded once in
    :meth:`fit`, documents at each prediction (:meth:`encode`). (A second
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

    Attributes
    ----------
    shortlist_ : LabelShortlist
        The exact cosine index of the label-text embeddings (the one the
        dual encoder retrieves with).

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
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.max_length = max_length
        self.batch_size = batch_size
        self.shortlist_ = None

    # ------------------------------------------------------------------ fit
    def fit(self, label_texts: Sequence[str], *, device="cpu") -> EncoderComponent:
        """Encode the label texts.

        Parameters
        ----------
        label_texts : sequence of str
            One text per label.
        device : str or torch.device, default="cpu"
            Where the encoder runs.

        Returns
        -------
        self : EncoderComponent
            With :attr:`shortlist_`.
        """
        self._index(self.encode(label_texts, device=device))
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
