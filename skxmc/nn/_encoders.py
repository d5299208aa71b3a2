"""Bag-of-words document encoders (DECAF/ECLARE style) on sparse TF-IDF input."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BagOfWordsEncoder", "ResidualBlock", "SpectralNormLinear"]


class SpectralNormLinear(nn.Module):
    """A linear layer whose weight is divided by its largest singular value.

    The spectral norm is estimated by one power iteration per training forward
    pass (Miyato et al., 2018); the singular vectors ``u`` and ``v`` are buffers,
    so they are saved in the ``state_dict`` and a resumed fit continues exactly.
    Written here rather than with ``torch.nn.utils.parametrizations`` because
    parametrized modules cannot be pickled, and fitted estimators must be.

    Parameters
    ----------
    in_features, out_features : int
        Input and output sizes.
    identity_init : bool, default=True
        Initialise the weight to the identity (needs ``in_features ==
        out_features``) and the bias to zero, so the layer starts as ``x -> x``.

    Examples
    --------
    >>> import torch
    >>> from skxmc.nn import SpectralNormLinear
    >>> layer = SpectralNormLinear(3, 3).eval()
    >>> x = torch.randn(2, 3)
    >>> bool(torch.allclose(layer(x), x))
    True
    """

    def __init__(self, in_features: int, out_features: int, identity_init: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        if identity_init:
            if in_features != out_features:
                raise ValueError("identity_init needs in_features == out_features.")
            nn.init.eye_(self.weight)
        else:
            nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        u = F.normalize(torch.randn(out_features), dim=0)
        self.register_buffer("u", u)
        self.register_buffer("v", F.normalize(self.weight.detach().T @ u, dim=0))

    def _power_iteration(self) -> None:
        with torch.no_grad():
            w = self.weight.detach().float()
            v = F.normalize(w.T @ self.u, dim=0, eps=1e-12)
            u = F.normalize(w @ v, dim=0, eps=1e-12)
            self.u.copy_(u)
            self.v.copy_(v)

    def normalized_weight(self) -> torch.Tensor:
        """The weight divided by its estimated spectral norm.

        Without gradients outside training (prediction), it is computed once
        per state of the weight and of the power-iteration vectors and kept:
        the same tensor, not three passes over the weight per query.
        """
        if self.training or torch.is_grad_enabled():
            return self._normalized_weight()
        key = tuple(
            (t.data_ptr(), t._version, t.dtype, t.device)
            for t in (self.weight, self.u, self.v)
        )
        cached = self.__dict__.get("_eval_weight")
        if cached is None or cached[0] != key:
            cached = self.__dict__["_eval_weight"] = (key, self._normalized_weight())
        return cached[1]

    def _normalized_weight(self) -> torch.Tensor:
        # Clones: the buffers are updated in place by the next training forward,
        # which must not invalidate the graph of this one.
        sigma = torch.dot(self.u.clone(), self.weight.float() @ self.v.clone())
        return self.weight / sigma.clamp_min(1e-12)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_eval_weight", None)  # a cache, rebuilt on demand
        return state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self._power_iteration()
        return F.linear(x, self.normalized_weight(), self.bias)


class ResidualBlock(nn.Module):
    """DECAF's gated residual block ``R(v)``.

    ``R(v) = sigmoid(a) * SNLinear(Dropout(ReLU(v))) + sigmoid(b) * v`` with a
    spectral-norm linear layer initialised to the identity and D-dim gates
    ``a = b = 0`` (each gate starts at 0.5).

    Parameters
    ----------
    dim : int
        Size of the vectors.
    dropout : float, default=0.2
        Dropout before the linear layer.

    Examples
    --------
    >>> import torch
    >>> from skxmc.nn import ResidualBlock
    >>> block = ResidualBlock(4).eval()
    >>> v = torch.tensor([[1.0, -2.0, 3.0, 0.0]])
    >>> block(v).round(decimals=4).tolist()  # 0.5 * relu(v) + 0.5 * v at init
    [[1.0, -1.0, 3.0, 0.0]]
    """

    def __init__(self, dim: int, dropout: float = 0.2):
        super().__init__()
        self.linear = SpectralNormLinear(dim, dim, identity_init=True)
        self.dropout = nn.Dropout(dropout)
        self.gate_transform = nn.Parameter(torch.zeros(dim))
        self.gate_skip = nn.Parameter(torch.zeros(dim))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        transformed = self.linear(self.dropout(F.relu(v)))
        return (
            torch.sigmoid(self.gate_transform) * transformed
            + torch.sigmoid(self.gate_skip) * v
        )


class BagOfWordsEncoder(nn.Module):
    """Document encoder ``x -> Dropout(ReLU(R(E x)))`` over sparse features.

    ``E x`` is the feature-weighted sum of token embeddings, computed by an
    :class:`torch.nn.EmbeddingBag` in ``"sum"`` mode with the TF-IDF values as
    ``per_sample_weights``: the input is a CSR matrix given as its
    ``(indices, offsets, weights)`` (see
    :func:`skxmc.training.csr_to_bag`), never densified.

    Parameters
    ----------
    n_features : int
        Vocabulary size (columns of the TF-IDF matrix).
    embedding_dim : int, default=300
        Size of the token embeddings and of the document vectors.
    dropout : float, default=0.2
        Dropout inside the residual block and on the output.
    sparse : bool, default=True
        Sparse gradients for the token embeddings (use
        :class:`torch.optim.SparseAdam` for them): a step only touches the
        rows of the tokens in the batch.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> import torch
    >>> from skxmc.nn import BagOfWordsEncoder
    >>> from skxmc.training import csr_to_bag
    >>> X = sp.csr_matrix([[0.6, 0.0, 0.8], [0.0, 1.0, 0.0]])
    >>> encoder = BagOfWordsEncoder(n_features=3, embedding_dim=5)
    >>> encoder(*csr_to_bag(X)).shape
    torch.Size([2, 5])
    """

    def __init__(
        self,
        n_features: int,
        embedding_dim: int = 300,
        dropout: float = 0.2,
        sparse: bool = True,
    ):
        super().__init__()
        self.embedding = nn.EmbeddingBag(
            n_features, embedding_dim, mode="sum", sparse=sparse
        )
        nn.init.normal_(self.embedding.weight, std=1.0 / math.sqrt(embedding_dim))
        self.transform = ResidualBlock(embedding_dim, dropout)
        self.dropout = nn.Dropout(dropout)

    @property
    def embedding_dim(self) -> int:
        return self.embedding.embedding_dim

    def embed(
        self, indices: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """``E x``: the weighted sum of the token embeddings of each row."""
        return self.embedding(indices, offsets, per_sample_weights=weights)

    def forward(
        self, indices: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        return self.dropout(
            F.relu(self.transform(self.embed(indices, offsets, weights)))
        )
