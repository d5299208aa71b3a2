"""Pretrained transformer encoders: loading, tokenisation, pooling, encoding.

Shared by the transformer-based estimators (XR-Transformer, later ELIAS).
``transformers`` is imported lazily, inside the functions that need it, so
that ``import skxmc`` stays light. Models are only read from local folders
(``save_pretrained`` output) or the local Hugging Face cache: nothing is ever
downloaded.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from skxmc.training._device import is_oom_error

__all__ = [
    "POOLINGS",
    "autocast_context",
    "check_max_length",
    "collate",
    "encode",
    "is_oom_error",
    "load_encoder",
    "map_batches_with_oom_backoff",
    "pool",
    "pooled_forward",
    "tokenize",
]

#: Pooling methods understood by :func:`pool`.
POOLINGS = ("cls", "mean")

#: Texts per tokenizer call in :func:`tokenize`. One call's transient output
#: (Python lists of ids, the fast tokenizer's encodings: ~5 KB per 24-token
#: text) is freed in pieces the allocator keeps resident, so one call over a
#: whole corpus left ~0.47 GB of RSS behind per 10^5 texts (for 26 MB of ids);
#: calls of this many texts bound it.
TOKENIZE_CHUNK = 4096


def load_encoder(name_or_path):
    """Load a pretrained transformer and its tokenizer from local files.

    Parameters
    ----------
    name_or_path : str or path-like
        A folder written by ``save_pretrained`` (model and tokenizer), or the
        name of a model already in the local Hugging Face cache.

    Returns
    -------
    model : transformers.PreTrainedModel
        The encoder (``AutoModel``) in float32 and evaluation mode, on the CPU.
    tokenizer : transformers.PreTrainedTokenizerBase
        Its tokenizer.

    Raises
    ------
    ValueError
        If nothing loadable is found at ``name_or_path``, or if its weights
        are a pickled ``.bin`` file holding more than tensors (refused: it
        could run code when unpickled).

    Notes
    -----
    Loading never touches the network: ``HF_HUB_OFFLINE`` is set (in the
    environment and in ``huggingface_hub``) while loading, and restored
    afterwards, so a model name is only looked up in the local cache. The
    tokenizer returned remembers how many positions the model can encode,
    and :func:`tokenize` refuses a larger ``max_length`` (see
    :func:`check_max_length`).

    Examples
    --------
    >>> from skxmc.nn._transformer import load_encoder
    >>> load_encoder("/no/such/model")
    Traceback (most recent call last):
    ...
    ValueError: Could not load a transformer encoder from '/no/such/model'...
    """
    try:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:  # pragma: no cover - transformers is installed
        raise ImportError(
            "Transformer encoders need the `transformers` package: "
            "pip install transformers"
        ) from exc
    path = str(name_or_path) if isinstance(name_or_path, Path) else name_or_path
    if not isinstance(path, str) or not path:
        raise ValueError(
            "encoder must be a local model folder or a cached model name, got "
            f"{name_or_path!r}."
        )
    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # no "weights not initialised" chatter
    hf_logging.disable_progress_bar()  # nor a "Loading weights" bar
    try:
        with _hub_offline():
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModel.from_pretrained(path, local_files_only=True)
    except (pickle.UnpicklingError, RuntimeError) as exc:
        if not isinstance(exc, pickle.UnpicklingError) and "weights_only" not in str(
            exc
        ):
            raise
        raise ValueError(
            f"Refused to load the weights of {path!r}: they are a pickled .bin "
            "file holding objects other than tensors, which could run code when "
            "unpickled, so they are read with torch.load(weights_only=True) and "
            "refused. Use a model saved as safetensors "
            "(save_pretrained(..., safe_serialization=True)); convert a .bin "
            "only if you trust where it comes from."
        ) from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"Could not load a transformer encoder from {path!r}: expected a "
            "folder written by save_pretrained (config, weights and tokenizer "
            "files) or the name of a model in the local Hugging Face cache "
            f"(nothing is downloaded). Cause: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    limit = _position_limit(model.config)
    if limit is not None:
        try:
            tokenizer._skxmc_position_limit = limit
        except AttributeError:  # pragma: no cover - tokenizers with __slots__
            pass
    return model.float().eval(), tokenizer


@contextmanager
def _hub_offline() -> Iterator[None]:
    """Hugging Face Hub offline mode for the duration of the block, then restored.

    ``huggingface_hub`` reads ``HF_HUB_OFFLINE`` once, at import, into
    ``huggingface_hub.constants.HF_HUB_OFFLINE`` (which its HTTP layer checks
    before every request): both it and the environment variable are set.
    """
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - a dependency of transformers
        constants = None
    saved_env = os.environ.get("HF_HUB_OFFLINE")
    saved_constant = getattr(constants, "HF_HUB_OFFLINE", None)
    os.environ["HF_HUB_OFFLINE"] = "1"
    if saved_constant is not None:
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if saved_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved_env
        if saved_constant is not None:
            constants.HF_HUB_OFFLINE = saved_constant


#: Model types whose position ids start after the padding index (RoBERTa's
#: ``create_position_ids_from_input_ids``): ``pad_token_id + 1`` positions of
#: ``max_position_embeddings`` are never used by tokens.
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "longformer", "ibert")


def _position_limit(config) -> int | None:
    """Tokens (special ones included) the model's position embeddings cover."""
    n_positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(n_positions, int) or isinstance(n_positions, bool):
        return None
    if getattr(config, "model_type", None) in _OFFSET_POSITIONS:
        n_positions -= int(getattr(config, "pad_token_id", 1) or 0) + 1
    return n_positions if n_positions > 0 else None


def check_max_length(model, max_length) -> int:
    """Check that ``model`` can encode ``max_length`` tokens; return it as an int.

    A transformer with learned absolute positions fails deep inside torch
    (an index error in the position embedding) on a sequence longer than its
    ``config.max_position_embeddings`` -- and only at predict time when the
    training texts happened to be short. Call this when the model is loaded
    (in ``fit``) to refuse such a ``max_length`` at once.

    Parameters
    ----------
    model : transformers.PreTrainedModel or transformers.PretrainedConfig
        The encoder (or its config).
    max_length : int
        Tokens per text, special tokens included.

    Returns
    -------
    max_length : int

    Raises
    ------
    ValueError
        If ``max_length`` is not a positive integer or exceeds the positions
        of the model (``max_position_embeddings``, less the padding offset
        of RoBERTa-like models). Models without that setting are not limited.

    Examples
    --------
    >>> import transformers
    >>> from skxmc.nn._transformer import check_max_length
    >>> config = transformers.BertConfig(max_position_embeddings=64)
    >>> check_max_length(config, 64)
    64
    >>> check_max_length(config, 128)
    Traceback (most recent call last):
    ...
    ValueError: max_length=128 exceeds the 64 positions the encoder can encode...
    """
    if (
        isinstance(max_length, bool)
        or not isinstance(max_length, (int, np.integer))
        or max_length < 1
    ):
        raise ValueError(f"max_length must be a positive integer, got {max_length!r}.")
    config = getattr(model, "config", model)
    limit = _position_limit(config)
    if limit is not None and max_length > limit:
        raise ValueError(
            f"max_length={int(max_length)} exceeds the {limit} positions the "
            "encoder can encode (its config.max_position_embeddings); a longer "
            f"text would crash inside the model. Use max_length <= {limit}."
        )
    return int(max_length)


# ------------------------------------------------------------ tokenisation
def tokenize(tokenizer, texts: Sequence[str], max_length: int) -> list[np.ndarray]:
    """Token ids of each text, truncated to ``max_length``, without padding.

    Parameters
    ----------
    tokenizer : transformers.PreTrainedTokenizerBase
        The tokenizer.
    texts : sequence of str
        The texts.
    max_length : int
        Maximum number of tokens per text, special tokens included. With a
        tokenizer from :func:`load_encoder`, a ``max_length`` above the
        positions of its model is a ValueError (:func:`check_max_length`).

    Returns
    -------
    ids : list of ndarray of dtype int64
        One array of token ids per text.

    Notes
    -----
    Lone surrogates (``"\\ud800"``: code points U+D800-U+DFFF, left in a str
    by a broken decoding) cannot be encoded as UTF-8 and crash the Rust
    tokenizers; they are replaced with U+FFFD, the replacement character,
    before tokenising. The estimators accept such text (as the TF-IDF
    vectorizers do), so this keeps every text estimator on the same input.

    The texts go to the tokenizer ``TOKENIZE_CHUNK`` at a time (the same
    ids as one call over all of them), so the memory left behind by its
    transient output does not grow with the corpus.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import transformers
    >>> from skxmc.nn._transformer import tokenize
    >>> vocab = Path(tempfile.mkdtemp()) / "vocab.txt"
    >>> _ = vocab.write_text("[PAD]\\n[UNK]\\n[CLS]\\n[SEP]\\n[MASK]\\nred\\n")
    >>> tokenizer = transformers.BertTokenizerFast(str(vocab))
    >>> [ids.tolist() for ids in tokenize(tokenizer, ["red", "red \\ud800"], 8)]
    [[2, 5, 3], [2, 5, 3]]
    """
    limit = getattr(tokenizer, "_skxmc_position_limit", None)
    if limit is not None and max_length > limit:
        raise ValueError(
            f"max_length={max_length} exceeds the {limit} positions the encoder "
            "can encode (its config.max_position_embeddings); a longer text "
            f"would crash inside the model. Use max_length <= {limit}."
        )
    ids: list[np.ndarray] = []
    remaining = iter(texts)
    while chunk := [
        _without_surrogates(text) for text in islice(remaining, TOKENIZE_CHUNK)
    ]:
        encoded = tokenizer(
            chunk,
            truncation=True,
            max_length=max_length,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        ids.extend(np.asarray(row, dtype=np.int64) for row in encoded)
    return ids


_SURROGATES = re.compile("[\ud800-\udfff]")


def _without_surrogates(text: str) -> str:
    """``text`` with its lone surrogates replaced by U+FFFD (fast for ASCII)."""
    if text.isascii():
        return text
    return _SURROGATES.sub("\ufffd", text)


def collate(ids: Sequence[np.ndarray], pad_id: int, device=None):
    """Pad a batch of token id arrays to its longest member (dynamic padding).

    Parameters
    ----------
    ids : sequence of ndarray
        Token ids, one array per text.
    pad_id : int
        Id of the padding token.
    device : torch.device or str, default=None
        Where to put the tensors.

    Returns
    -------
    input_ids : Tensor of shape (batch, length), dtype int64
    attention_mask : Tensor of shape (batch, length), dtype int64

    Examples
    --------
    >>> import numpy as np
    >>> from skxmc.nn._transformer import collate
    >>> input_ids, mask = collate([np.array([5, 6, 7]), np.array([5])], pad_id=0)
    >>> input_ids.tolist(), mask.tolist()
    ([[5, 6, 7], [5, 0, 0]], [[1, 1, 1], [1, 0, 0]])
    """
    length = max(1, max((len(a) for a in ids), default=1))
    input_ids = np.full((len(ids), length), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), length), dtype=np.int64)
    for i, a in enumerate(ids):
        input_ids[i, : len(a)] = a
        mask[i, : len(a)] = 1
    return (
        torch.from_numpy(input_ids).to(device),
        torch.from_numpy(mask).to(device),
    )


# ----------------------------------------------------------------- pooling
def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str = "cls"):
    """Pool token states into one vector per text.

    Parameters
    ----------
    hidden : Tensor of shape (batch, length, dim)
        Last hidden states.
    attention_mask : Tensor of shape (batch, length)
        1 for real tokens, 0 for padding.
    pooling : {"cls", "mean"}, default="cls"
        The first token's state, or the mean over real tokens.

    Returns
    -------
    pooled : Tensor of shape (batch, dim)

    Examples
    --------
    >>> import torch
    >>> from skxmc.nn._transformer import pool
    >>> hidden = torch.tensor([[[1.0], [3.0], [100.0]]])
    >>> mask = torch.tensor([[1, 1, 0]])
    >>> pool(hidden, mask, "cls").tolist(), pool(hidden, mask, "mean").tolist()
    ([[1.0]], [[2.0]])
    """
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "mean":
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)
    raise ValueError(f"Unknown pooling {pooling!r}; expected one of {POOLINGS}.")


def pooled_forward(model, input_ids, attention_mask, pooling: str = "cls"):
    """Run ``model`` on a padded batch and pool its last hidden states."""
    out = model(input_ids=input_ids, attention_mask=attention_mask)
    return pool(out.last_hidden_state, attention_mask, pooling)


def autocast_context(device, dtype: str | None = "auto"):
    """Mixed precision on CUDA only, by skxmc's one rule (:func:`amp_dtype`).

    Returns a null context on the CPU or with ``dtype=None``.
    """
    from skxmc.training._device import autocast

    return autocast(device, enabled=dtype is not None)


# --------------------------------------------------------- OOM and batches
def map_batches_with_oom_backoff(
    fn: Callable[[int, int], object],
    n_items: int,
    batch_size: int,
    *,
    on_oom: Callable[[int], None] | None = None,
) -> tuple[list, int]:
    """Apply ``fn(start, stop)`` to consecutive batches, halving them on OOM.

    When ``fn`` raises a CUDA out-of-memory error, the CUDA cache is emptied,
    the batch size is halved and the same items are tried again; later
    batches keep the smaller size. An OOM at batch size 1, and any other
    error, is re-raised.

    Parameters
    ----------
    fn : callable
        ``fn(start, stop)`` processes items ``start:stop`` and returns a result.
    n_items : int
        Number of items.
    batch_size : int
        Initial batch size.
    on_oom : callable, default=None
        Called with the new batch size after each halving (e.g. to warn).

    Returns
    -------
    results : list
        The results of ``fn``, in order; together they cover every item once.
    batch_size : int
        The batch size in use at the end.

    Examples
    --------
    >>> import torch
    >>> from skxmc.nn._transformer import map_batches_with_oom_backoff
    >>> def fn(start, stop):
    ...     if stop - start > 2:
    ...         raise torch.cuda.OutOfMemoryError("CUDA out of memory")
    ...     return list(range(start, stop))
    >>> map_batches_with_oom_backoff(fn, 5, batch_size=8)
    ([[0, 1], [2, 3], [4]], 2)
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    results = []
    start = 0
    while start < n_items:
        stop = min(start + batch_size, n_items)
        try:
            results.append(fn(start, stop))
        except RuntimeError as exc:  # torch.cuda.OutOfMemoryError is one
            if not is_oom_error(exc) or stop - start == 1:
                raise
            del exc
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            batch_size = max(1, (stop - start) // 2)
            if on_oom is not None:
                on_oom(batch_size)
            continue
        start = stop
    return results, batch_size


# ---------------------------------------------------------------- encoding
def encode(
    model,
    tokenizer,
    texts: Sequence[str],
    *,
    max_length: int = 64,
    batch_size: int = 64,
    device="cpu",
    pooling: str = "cls",
    normalize: bool = False,
    token_ids: Sequence[np.ndarray] | None = None,
    on_oom: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Embed texts with a transformer: one pooled vector per text.

    Texts are sorted by length and batched with dynamic padding (the output
    follows the order of ``texts``); inference runs under
    :func:`torch.inference_mode`, with bf16/fp16 autocast on CUDA only. A CUDA
    out-of-memory error halves the batch size and goes on
    (:func:`map_batches_with_oom_backoff`).

    Parameters
    ----------
    model : transformers.PreTrainedModel
        The encoder; it is moved to ``device`` (and left there).
    tokenizer : transformers.PreTrainedTokenizerBase
        Its tokenizer.
    texts : sequence of str
        The texts to embed.
    max_length : int, default=64
        Tokens per text, special tokens included.
    batch_size : int, default=64
        Texts per forward pass.
    device : str or torch.device, default="cpu"
        Where the forward passes run.
    pooling : {"cls", "mean"}, default="cls"
        See :func:`pool`.
    normalize : bool, default=False
        L2-normalise the embeddings.
    token_ids : sequence of ndarray, default=None
        Precomputed :func:`tokenize` output for ``texts`` (skips tokenising).
    on_oom : callable, default=None
        Called with the new batch size after an out-of-memory halving.

    Returns
    -------
    embeddings : ndarray of shape (n_texts, dim), dtype float32

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import transformers
    >>> from skxmc.nn._transformer import encode
    >>> vocab = Path(tempfile.mkdtemp()) / "vocab.txt"
    >>> _ = vocab.write_text("[PAD]\\n[UNK]\\n[CLS]\\n[SEP]\\n[MASK]\\nred\\nblue\\n")
    >>> tokenizer = transformers.BertTokenizerFast(str(vocab))
    >>> config = transformers.BertConfig(
    ...     vocab_size=7, hidden_size=8, num_hidden_layers=1,
    ...     num_attention_heads=2, intermediate_size=16)
    >>> model = transformers.BertModel(config)
    >>> encode(model, tokenizer, ["red blue", "blue"], pooling="mean").shape
    (2, 8)
    """
    device = torch.device(device)
    dim = int(model.config.hidden_size)
    if token_ids is None:
        token_ids = tokenize(tokenizer, texts, max_length)
    n = len(token_ids)
    out = np.zeros((n, dim), dtype=np.float32)
    if n == 0:
        return out
    order = np.argsort([-len(a) for a in token_ids], kind="stable")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    was_training = model.training
    model.to(device).eval()

    def run(start, stop):
        rows = order[start:stop]
        input_ids, mask = collate([token_ids[i] for i in rows], pad_id, device)
        with torch.inference_mode(), autocast_context(device):
            emb = pooled_forward(model, input_ids, mask, pooling).float()
            if normalize:
                emb = torch.nn.functional.normalize(emb, dim=-1)
        out[rows] = emb.cpu().numpy()

    try:
        map_batches_with_oom_backoff(run, n, batch_size, on_oom=on_oom)
    finally:
        model.train(was_training)
    return out
