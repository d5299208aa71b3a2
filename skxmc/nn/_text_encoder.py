"""The text encoder of the transformer estimators, with cached frozen layers.

:class:`TextEncoder` wraps a pretrained transformer (``AutoModel``) and its
pooling. With ``trainable_layers=k`` only the top ``k`` transformer layers
(and what sits on the pooled embedding) are trained: the embeddings and the
layers below them are frozen, so their output on a training text never
changes during a fit. :meth:`TextEncoder.cache_states` computes it once for
every training text and keeps it (:class:`StateCache`: float16 token states,
in memory or in a memory-mapped file beyond a byte budget); an optimizer step
then runs only the top ``k`` layers (:meth:`TextEncoder.forward_cached`), so
an epoch costs ``k / n_layers`` of a forward pass plus its backward.
``trainable_layers=0`` caches the pooled output of the frozen encoder (the
heads train on fixed embeddings); ``None`` trains every layer (no cache).

A cache is reused across fits through ``memory`` (a :class:`joblib.Memory`
or a folder, as sklearn's ``Pipeline(memory=...)``): its key is a hash of the
frozen weights, the token ids, the number of frozen layers, the pooling and
the storage dtype.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from skxmc.nn._transformer import (
    POOLINGS,
    collate,
    map_batches_with_oom_backoff,
    pool,
    pooled_forward,
)

__all__ = [
    "DEFAULT_CACHE_BYTES",
    "StateCache",
    "TextEncoder",
    "read_pooling",
    "resolve_encoder_options",
    "resolve_trainable_layers",
    "static_term_embeddings",
]

#: Top layers fine-tuned on the CPU under ``trainable_layers="auto"``.
CPU_TRAINABLE_LAYERS = 2

#: Cached token states larger than this many bytes go to a memory-mapped file.
DEFAULT_CACHE_BYTES = 2 * 1024**3

#: sentence-transformers pooling modes (``1_Pooling/config.json``) -> ours.
_ST_POOLINGS = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean"}


def read_pooling(folder) -> str | None:
    """The pooling a sentence-transformers model folder asks for, if any.

    Reads the ``sentence_transformers.models.Pooling`` module of the
    folder's ``modules.json`` (``1_Pooling/config.json`` when there is no
    ``modules.json``).

    Parameters
    ----------
    folder : str or path-like
        A model folder (or a model name: then None).

    Returns
    -------
    pooling : {"cls", "mean"} or None
        None when the folder holds no pooling config.

    Raises
    ------
    ValueError
        If the config asks for a pooling other than CLS or mean (max,
        weighted mean, last token...), which skxmc does not implement.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> from skxmc.nn._text_encoder import read_pooling
    >>> folder = Path(tempfile.mkdtemp())
    >>> read_pooling(folder) is None
    True
    >>> (folder / "1_Pooling").mkdir()
    >>> _ = (folder / "1_Pooling" / "config.json").write_text(json.dumps(
    ...     {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True}))
    >>> read_pooling(folder)
    'mean'
    """
    try:
        folder = Path(folder)
    except TypeError:
        return None
    config_path = folder / "1_Pooling" / "config.json"
    modules = folder / "modules.json"
    if modules.is_file():
        try:
            entries = json.loads(modules.read_text())
        except (OSError, ValueError):
            entries = []
        paths = [
            e.get("path", "")
            for e in entries
            if isinstance(e, dict) and str(e.get("type", "")).endswith(".Pooling")
        ]
        if paths:
            config_path = folder / paths[0] / "config.json"
    if not config_path.is_file():
        return None
    config = json.loads(config_path.read_text())
    chosen = [
        name for key, name in _ST_POOLINGS.items() if config.get(key, False) is True
    ]
    others = [
        key
        for key, value in config.items()
        if key.startswith("pooling_mode_") and key not in _ST_POOLINGS and value
    ]
    if len(chosen) != 1 or others:
        modes = sorted(
            key for key, value in config.items()
            if key.startswith("pooling_mode_") and value
        )  # fmt: skip
        raise ValueError(
            f"The pooling config {str(config_path)!r} asks for {modes}; skxmc "
            f"pools with one of {POOLINGS}: set pooling explicitly."
        )
    return chosen[0]


def resolve_encoder_options(name_or_path, pooling, trainable_layers, device):
    """The estimators' ``pooling`` and ``trainable_layers`` with ``"auto"`` resolved.

    ``pooling="auto"``: the folder's sentence-transformers pooling
    (:func:`read_pooling`), else ``"cls"``. ``trainable_layers="auto"``:
    :data:`CPU_TRAINABLE_LAYERS` on the CPU, None (all) on an accelerator.

    Returns
    -------
    pooling : {"cls", "mean"}
    trainable_layers : int or None
    """
    if pooling == "auto":
        pooling = read_pooling(name_or_path) or "cls"
    return pooling, resolve_trainable_layers(
        trainable_layers, device, cpu_default=CPU_TRAINABLE_LAYERS
    )


def resolve_trainable_layers(trainable_layers, device, *, cpu_default=1):
    """``"auto"`` -> ``cpu_default`` on the CPU, None (all layers) elsewhere.

    Parameters
    ----------
    trainable_layers : int, None or "auto"
        The estimator's parameter.
    device : torch.device
        The (resolved) training device.
    cpu_default : int, default=1
        Layers trained on the CPU under ``"auto"``.

    Returns
    -------
    trainable_layers : int or None

    Examples
    --------
    >>> import torch
    >>> from skxmc.nn._text_encoder import resolve_trainable_layers
    >>> resolve_trainable_layers("auto", torch.device("cpu"), cpu_default=2)
    2
    >>> resolve_trainable_layers("auto", torch.device("cuda:0")) is None
    True
    >>> resolve_trainable_layers(0, torch.device("cuda:0"))
    0
    """
    if isinstance(trainable_layers, str):
        if trainable_layers != "auto":
            raise ValueError(
                "trainable_layers must be an int >= 0, None or 'auto', got "
                f"{trainable_layers!r}."
            )
        return cpu_default if torch.device(device).type == "cpu" else None
    return trainable_layers


class _PassThrough(nn.Module):
    """Stands in for the embedding layer: returns ``inputs_embeds`` as is."""

    def forward(self, *args, **kwargs):
        given = kwargs.get("inputs_embeds")
        if given is None:  # DistilBERT-style positional (input_ids, inputs_embeds)
            given = args[1]
        return given


class TextEncoder(nn.Module):
    """A pretrained transformer and its pooling, top ``k`` layers trainable.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        The encoder (``AutoModel``: embeddings, then a list of layers), used
        in place (not copied).
    pooling : {"cls", "mean"}, default="cls"
        Pooling of the last hidden states (:func:`~skxmc.nn._transformer.pool`).
    trainable_layers : int or None, default=None
        Transformer layers trained, from the top; the embeddings and the
        layers below are frozen (``requires_grad=False``, always in
        evaluation mode, so without dropout). None, or at least the number
        of layers, trains everything, embeddings included. 0 freezes the
        whole encoder.

    Attributes
    ----------
    n_layers : int
        Transformer layers of ``model``.
    n_frozen : int
        Layers below the trained ones (``n_layers`` when everything is
        frozen, 0 when everything trains).

    Examples
    --------
    >>> import numpy as np, torch, transformers
    >>> from skxmc.nn._text_encoder import TextEncoder
    >>> config = transformers.BertConfig(
    ...     vocab_size=10, hidden_size=8, num_hidden_layers=2,
    ...     num_attention_heads=2, intermediate_size=16)
    >>> encoder = TextEncoder(transformers.BertModel(config), trainable_layers=1)
    >>> encoder.n_layers, encoder.n_frozen
    (2, 1)
    >>> ids = [np.array([2, 5, 6, 3]), np.array([2, 7, 3])]
    >>> cache = encoder.cache_states(ids, pad_id=0)
    >>> encoder.forward_cached(cache, np.array([1, 0])).shape
    torch.Size([2, 8])
    """

    def __init__(self, model, *, pooling: str = "cls", trainable_layers=None):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(
                f"Unknown pooling {pooling!r}; expected one of {POOLINGS}."
            )
        self.model = model
        self.pooling = pooling
        self.n_layers = len(self._layers())
        if trainable_layers is None or trainable_layers >= self.n_layers:
            self.n_frozen = 0
        elif trainable_layers < 0:
            raise ValueError(f"trainable_layers must be >= 0, got {trainable_layers}.")
        else:
            self.n_frozen = self.n_layers - int(trainable_layers)
        for p in self._frozen_parameters():
            p.requires_grad_(False)
        self.train(model.training)

    # ------------------------------------------------------------ structure
    @property
    def config(self):
        return self.model.config

    @property
    def caches(self) -> bool:
        """Whether training reads cached states (some layers are frozen)."""
        return self.n_frozen > 0

    def _layer_owner(self) -> tuple[nn.Module, str]:
        for owner_name, attr in (("encoder", "layer"), ("transformer", "layer")):
            owner = getattr(self.model, owner_name, None)
            if isinstance(getattr(owner, attr, None), nn.ModuleList):
                return owner, attr
        raise ValueError(
            f"{type(self.model).__name__} has no encoder.layer / transformer.layer "
            "list of layers: trainable_layers needs a BERT-like encoder."
        )

    def _layers(self) -> nn.ModuleList:
        owner, attr = self._layer_owner()
        return getattr(owner, attr)

    def _frozen_modules(self) -> list[nn.Module]:
        if self.n_frozen == 0:
            return []
        return (
            [self.model, *self._layers()[: self.n_frozen]]
            if (self.n_frozen == self.n_layers)
            else [self.model.embeddings, *self._layers()[: self.n_frozen]]
        )

    def _frozen_parameters(self):
        seen = set()
        for module in self._frozen_modules():
            for p in module.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield p

    def train(self, mode: bool = True):
        """Set the training mode; frozen layers always stay in evaluation mode."""
        super().train(mode)
        for module in self._frozen_modules():
            module.eval()
        return self

    @contextmanager
    def _swapped(self, layers: Sequence[nn.Module], pass_through: bool):
        """Run ``model`` with only ``layers`` (and no embedding layer)."""
        owner, attr = self._layer_owner()
        saved_layers, saved_embeddings = getattr(owner, attr), self.model.embeddings
        try:
            setattr(owner, attr, nn.ModuleList(layers))
            if pass_through:
                self.model.embeddings = _PassThrough()
            yield
        finally:
            setattr(owner, attr, saved_layers)
            self.model.embeddings = saved_embeddings

    # -------------------------------------------------------------- forward
    def forward(self, input_ids, attention_mask) -> torch.Tensor:
        """Pooled embeddings of a padded batch (the full forward pass)."""
        return pooled_forward(self.model, input_ids, attention_mask, self.pooling)

    def lower_states(self, input_ids, attention_mask) -> torch.Tensor:
        """Hidden states below the trained layers (no gradient).

        Returns the token states after the embeddings and the ``n_frozen``
        lowest layers, or the pooled output when every layer is frozen.
        """
        with torch.no_grad():
            if self.n_frozen == self.n_layers:
                return self.forward(input_ids, attention_mask)
            layers = self._layers()[: self.n_frozen]
            with self._swapped(layers, pass_through=False):
                out = self.model(input_ids=input_ids, attention_mask=attention_mask)
            return out.last_hidden_state

    def upper_forward(self, states, attention_mask) -> torch.Tensor:
        """Pooled embeddings from :meth:`lower_states` (the trained layers)."""
        if self.n_frozen == self.n_layers:
            return states
        layers = self._layers()[self.n_frozen :]
        with self._swapped(layers, pass_through=True):
            out = self.model(inputs_embeds=states, attention_mask=attention_mask)
        return pool(out.last_hidden_state, attention_mask, self.pooling)

    def forward_cached(self, cache: StateCache, rows, device=None) -> torch.Tensor:
        """Pooled embeddings of the cached texts ``rows`` (trained layers only)."""
        if device is None:
            device = next(self.model.parameters()).device
        states, mask = cache.batch(rows, device)
        return self.upper_forward(states, mask)

    def encode_cached(
        self, cache: StateCache, *, batch_size: int = 128, device=None
    ) -> np.ndarray:
        """Pooled embeddings of every cached text, in evaluation mode.

        Returns
        -------
        embeddings : ndarray of shape (n_texts, hidden_size), dtype float32
        """
        from skxmc.nn._transformer import autocast_context

        device = torch.device(device or next(self.model.parameters()).device)
        dim = int(self.config.hidden_size)
        out = np.zeros((cache.n_texts, dim), dtype=np.float32)
        if cache.pooled:
            out[:] = cache.states
            return out
        order = np.argsort(-cache.lengths, kind="stable")
        was_training = self.training
        self.eval()

        def run(start, stop):
            rows = order[start:stop]
            with torch.inference_mode(), autocast_context(device):
                emb = self.forward_cached(cache, rows, device).float()
            out[rows] = emb.cpu().numpy()

        try:
            map_batches_with_oom_backoff(run, cache.n_texts, batch_size)
        finally:
            self.train(was_training)
        return out

    # ---------------------------------------------------------------- cache
    def fingerprint(self) -> str:
        """A hash of what the cached states depend on: the frozen weights,
        the config, ``n_frozen`` and ``pooling``."""
        digest = hashlib.sha256()
        digest.update(self.config.to_json_string().encode())
        digest.update(f"{self.n_frozen}/{self.n_layers}/{self.pooling}".encode())
        for module in self._frozen_modules():
            for name, tensor in module.state_dict().items():
                digest.update(name.encode())
                data = tensor.detach().cpu().contiguous()
                digest.update(str(data.dtype).encode())
                digest.update(data.view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()

    def cache_states(
        self,
        token_ids: Sequence[np.ndarray],
        *,
        pad_id: int,
        batch_size: int = 128,
        device=None,
        memory=None,
        dtype=np.float16,
        max_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> StateCache:
        """Compute (or load) the frozen part's output on every text.

        Parameters
        ----------
        token_ids : sequence of ndarray
            :func:`~skxmc.nn._transformer.tokenize` output.
        pad_id : int
            The padding token.
        batch_size : int, default=128
            Texts per forward pass (halved on out-of-memory).
        device : torch.device or str, default=None
            Where the forward passes run (default: where the model is).
        memory : str, path-like, joblib.Memory or None, default=None
            Caches the result across fits (sklearn's ``check_memory``).
        dtype : numpy dtype, default=np.float16
            Storage of token states (pooled embeddings of a fully frozen
            encoder are always float32).
        max_bytes : int, default=DEFAULT_CACHE_BYTES
            Token states larger than this go to a memory-mapped temporary
            file instead of memory.

        Returns
        -------
        cache : StateCache
        """
        from sklearn.utils.validation import check_memory

        if not self.caches:
            raise ValueError("Nothing is frozen: there are no states to cache.")
        if isinstance(memory, os.PathLike):
            memory = os.fspath(memory)
        memory = check_memory(memory)
        token_ids = [np.asarray(ids, dtype=np.int64) for ids in token_ids]
        texts = None  # the key of the texts: a digest, not the ids themselves
        if getattr(memory, "location", None) is not None:
            from joblib import hash as joblib_hash

            texts = joblib_hash(token_ids)
        compute = memory.cache(
            _compute_cache, ignore=["encoder", "token_ids", "batch_size", "device"]
        )
        return compute(
            self,
            token_ids,
            texts=texts,
            fingerprint=self.fingerprint(),
            pad_id=int(pad_id),
            batch_size=batch_size,
            device=device,
            dtype=np.dtype(dtype).name,
            max_bytes=int(max_bytes),
        )


def _compute_cache(
    encoder, token_ids, *, texts, fingerprint, pad_id, batch_size, device, dtype,
    max_bytes,
) -> StateCache:  # fmt: skip
    """:meth:`TextEncoder.cache_states` without the memory (cached by joblib;
    ``texts`` is the digest of ``token_ids``, the key)."""
    from skxmc.nn._transformer import autocast_context

    device = torch.device(device or next(encoder.model.parameters()).device)
    n = len(token_ids)
    lengths = np.fromiter((len(a) for a in token_ids), dtype=np.int64, count=n)
    dim = int(encoder.config.hidden_size)
    pooled = encoder.n_frozen == encoder.n_layers
    cache = StateCache.allocate(
        lengths, dim, pooled=pooled, dtype=dtype, max_bytes=max_bytes
    )
    order = np.argsort(-lengths, kind="stable")
    was_training = encoder.training
    encoder.to(device).eval()

    def run(start, stop):
        rows = order[start:stop]
        input_ids, mask = collate([token_ids[i] for i in rows], pad_id, device)
        with torch.inference_mode(), autocast_context(device):
            states = encoder.lower_states(input_ids, mask).float()
        cache.write(rows, states.cpu().numpy())

    try:
        map_batches_with_oom_backoff(run, n, batch_size)
    finally:
        encoder.train(was_training)
    cache.flush()
    return cache


class StateCache:
    """Frozen-encoder output of a set of texts: token states or pooled vectors.

    Token states are stored ragged: the states of text ``i`` are rows
    ``offsets[i]:offsets[i + 1]`` of :attr:`states` (one per token, no
    padding). Build one with :meth:`TextEncoder.cache_states`.

    Parameters
    ----------
    states : ndarray or numpy.memmap
        ``(n_tokens, dim)`` token states, or ``(n_texts, dim)`` pooled
        embeddings when ``pooled``.
    lengths : array-like of shape (n_texts,)
        Tokens per text.
    pooled : bool
        Whether ``states`` holds pooled embeddings.

    Attributes
    ----------
    states : ndarray or numpy.memmap
        ``(n_tokens, dim)`` token states, or ``(n_texts, dim)`` pooled
        embeddings when :attr:`pooled`.
    offsets : ndarray of shape (n_texts + 1,)
        Where each text's states start.
    lengths : ndarray of shape (n_texts,)
        Tokens per text.
    pooled : bool
        Whether :attr:`states` holds pooled embeddings.
    on_disk : bool
        Whether :attr:`states` is a memory-mapped temporary file.

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.nn import StateCache
    >>> cache = StateCache.allocate([2, 1], 3, pooled=False, dtype="float16",
    ...                             max_bytes=1024)
    >>> cache.write([0, 1], np.ones((2, 2, 3), dtype=np.float32))
    >>> states, mask = cache.batch([1, 0])
    >>> tuple(states.shape), mask.tolist()
    ((2, 2, 3), [[1, 0], [1, 1]])
    """

    def __init__(self, states, lengths, *, pooled: bool):
        self.states = states
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.pooled = bool(pooled)
        self._folder = None

    @classmethod
    def allocate(cls, lengths, dim, *, pooled, dtype, max_bytes) -> StateCache:
        """An empty cache; token states beyond ``max_bytes`` are memory-mapped."""
        lengths = np.asarray(lengths, dtype=np.int64)
        if pooled:
            return cls(np.zeros((len(lengths), dim), np.float32), lengths, pooled=True)
        shape = (int(lengths.sum()), dim)
        dtype = np.dtype(dtype)
        if shape[0] * dim * dtype.itemsize <= max_bytes:
            return cls(np.zeros(shape, dtype), lengths, pooled=False)
        folder = tempfile.mkdtemp(prefix="skxmc-states-")
        states = np.memmap(
            Path(folder) / "states.bin", dtype=dtype, mode="w+", shape=shape
        )
        cache = cls(states, lengths, pooled=False)
        cache._folder = folder
        weakref.finalize(cache, shutil.rmtree, folder, True)
        return cache

    @property
    def n_texts(self) -> int:
        return len(self.lengths)

    @property
    def on_disk(self) -> bool:
        return isinstance(self.states, np.memmap)

    @property
    def nbytes(self) -> int:
        return int(self.states.nbytes)

    def _positions(self, rows):
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        width = max(1, int(lengths.max(initial=0)))
        mask = np.arange(width) < lengths[:, None]
        index = (self.offsets[rows][:, None] + np.arange(width))[mask]
        return mask, index

    def write(self, rows, values: np.ndarray) -> None:
        """Store a padded batch ``values`` of the texts ``rows``."""
        if self.pooled:
            self.states[np.asarray(rows)] = values
            return
        mask, index = self._positions(rows)
        self.states[index] = values[:, : mask.shape[1]][mask]

    def flush(self) -> None:
        if self.on_disk:
            self.states.flush()

    def batch(self, rows, device=None):
        """The states of the texts ``rows``: padded float32 tensors.

        Returns
        -------
        states : Tensor of shape (batch, length, dim) or (batch, dim)
        attention_mask : Tensor of shape (batch, length), int64, or None
            None for pooled embeddings.
        """
        if self.pooled:
            values = np.asarray(self.states[np.asarray(rows)], dtype=np.float32)
            return torch.from_numpy(values).to(device), None
        mask, index = self._positions(rows)
        padded = np.zeros((*mask.shape, self.states.shape[1]), dtype=np.float32)
        padded[mask] = self.states[index]
        return (
            torch.from_numpy(padded).to(device),
            torch.from_numpy(mask.astype(np.int64)).to(device),
        )

    def __getstate__(self):
        state = dict(vars(self))
        state["states"] = np.asarray(self.states)  # a memmap pickles as its data
        state["_folder"] = None
        return state


def static_term_embeddings(
    encoder,
    terms: Sequence[str],
    *,
    n_components: int | None = None,
    pooling: str = "auto",
    max_length: int = 8,
    batch_size: int = 1024,
    device=None,
    memory=None,
    random_state=None,
) -> np.ndarray:
    """One static vector per vocabulary term from a pretrained text encoder.

    Each term (a word or an n-gram of a bag-of-words vocabulary) is encoded
    alone by the frozen encoder and pooled, as model2vec distils a sentence
    encoder into a static one; the vectors are reduced to ``n_components``
    by PCA and scaled to unit norm. A bag-of-words model initialised with
    them (``DecafClassifier(token_init=...)``) starts from the encoder's
    semantics at bag-of-words cost.

    Parameters
    ----------
    encoder : str or path-like
        A local transformers / sentence-transformers folder.
    terms : sequence of str
        The vocabulary, in the column order of the features.
    n_components : int or None, default=None
        PCA dimensions (at most the encoder's hidden size and the number of
        terms); None keeps the pooled vectors as they are.
    pooling : {"auto", "cls", "mean"}, default="auto"
        Pooling; ``"auto"`` reads a sentence-transformers folder's.
    max_length : int, default=8
        Tokens per term (special tokens included).
    batch_size : int, default=1024
        Terms per forward pass.
    device : torch.device or str, default=None
        Where the forward passes run (default: the CPU).
    memory : str, path-like, joblib.Memory or None, default=None
        Caches the pooled vectors across calls (as ``cache_states``).
    random_state : int, RandomState instance or None, default=None
        Seeds the PCA's solver.

    Returns
    -------
    embeddings : ndarray of shape (n_terms, n_components or hidden_size)
        Unit-norm rows, float32 (a term whose vector is 0 keeps 0).

    Examples
    --------
    >>> import tempfile
    >>> from skxmc.nn import static_term_embeddings
    >>> from skxmc.utils._testing import save_tiny_bert
    >>> folder = save_tiny_bert(tempfile.mkdtemp(), ["apt", "package", "kernel"])
    >>> E = static_term_embeddings(folder, ["apt", "kernel", "apt package"],
    ...                            n_components=2, random_state=0)
    >>> E.shape
    (3, 2)
    """
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import normalize

    from skxmc.nn._transformer import load_encoder, tokenize

    model, tokenizer = load_encoder(encoder)
    if pooling == "auto":
        pooling = read_pooling(encoder) or "cls"
    frozen = TextEncoder(model, pooling=pooling, trainable_layers=0)
    cache = frozen.cache_states(
        tokenize(tokenizer, list(terms), max_length),
        pad_id=tokenizer.pad_token_id or 0,
        batch_size=batch_size,
        device=device,
        memory=memory,
    )
    vectors = frozen.encode_cached(cache, batch_size=batch_size, device=device)
    if n_components is not None:
        n_components = min(int(n_components), *vectors.shape)
        vectors = PCA(n_components, random_state=random_state).fit_transform(vectors)
    return normalize(vectors).astype(np.float32)
