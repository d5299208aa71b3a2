"""Safe persistence: :func:`save` and :func:`load` without pickle.

Design
------
A fitted estimator is an object tree: the estimator's ``__dict__``, the skxmc
engines and indexes it holds, a few scikit-learn objects (``TfidfVectorizer``,
``HistGradientBoostingClassifier`` inside :class:`skxmc.indexing.ScoreFusion`),
torch modules and tensors, Hugging Face models and tokenizers, numpy and scipy
arrays. :func:`save` walks that tree with the state protocol pickle uses
(``__getstate__`` where a class defines one, else ``__dict__``) and writes a
folder:

- ``skxmc_model.json``: the tree, the library versions and the format version.
  Each object is a class reference (module and name) plus its encoded state;
  objects referenced twice are written once and referenced by number.
- ``arrays.npz``: numpy arrays and the parts of scipy sparse matrices, written
  and read with ``allow_pickle=False`` (object arrays are kept out of it: an
  array of ``str`` or numbers is written element-wise into the JSON).
- ``tensors.safetensors``: every torch tensor, on the CPU.
- ``hf/<n>/``: each transformers model and tokenizer, through
  ``save_pretrained`` (safetensors) and ``from_pretrained(...,
  local_files_only=True)``.

:func:`load` executes no code from the folder. No pickle is read anywhere;
objects are rebuilt with ``cls.__new__(cls)`` and their state restored with the
class's own ``__setstate__`` (or a ``__dict__`` update; for skxmc estimators,
scikit-learn's, so the pickle branch of ``BaseXMCClassifier.__setstate__`` is
never reached: a state that names its key is refused, since ``pickle.loads``
reads any buffer, numpy arrays included), and ``cls`` must be on
an allowlist: every class defined under ``skxmc.`` (checked on the resolved
class's ``__module__``, so attribute chains like ``skxmc.x.np.load`` are
refused), the torch modules under ``torch.nn.modules.``, the transformers
models and tokenizers (looked up by name on the ``transformers`` package and
checked to subclass ``PreTrainedModel`` / ``PreTrainedTokenizerBase``), and the
explicit list of scikit-learn classes in :data:`SKLEARN_CLASSES`. Anything
else is a :class:`skxmc.exceptions.UnsafeModelError` naming the type; no module
outside ``skxmc`` is imported on the folder's say-so. Tensors always load on
the CPU, so a model fitted on a GPU loads on a machine without one.

Why not skops? skops (0.x) solves this for scikit-learn objects with
per-type loaders and a ``trusted=`` list, but it has no loaders for torch
tensors and modules or transformers models, and no public way to register
them; most of our state is exactly that. Depending on it would add a
dependency and still leave us a second serializer for the half it cannot do.
Our tree is small and regular (objects with a ``__dict__``), so one generic
walker with an allowlist covers it, and works unchanged when an estimator's
internals move (the allowlist is by module prefix, not by attribute layout).

Version policy
--------------
A folder records the versions of skxmc, scikit-learn, torch, numpy,
transformers and Python. :func:`load` refuses (``ValueError`` naming both
versions) a folder written by a different skxmc ``major.minor`` or a different
scikit-learn ``major.minor``: their objects' attributes change between minor
releases. torch, numpy, transformers and Python may differ: safetensors and
``.npz`` files do not depend on them.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import json
import re
import sys
from collections import OrderedDict
from contextlib import contextmanager
from enum import Enum
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from skxmc.exceptions import UnsafeModelError

FORMAT = "skxmc-model"
FORMAT_VERSION = 1
_JSON = "skxmc_model.json"
_NPZ = "arrays.npz"
_SAFETENSORS = "tensors.safetensors"

#: Third-party classes (``module.qualname``) that :func:`load` may rebuild,
#: besides skxmc's own classes and the torch/transformers classes described in
#: the module docstring: the scikit-learn objects our estimators hold.
SKLEARN_CLASSES = frozenset(
    {
        "sklearn.feature_extraction.text.TfidfVectorizer",
        "sklearn.feature_extraction.text.TfidfTransformer",
        "sklearn.feature_extraction.text.CountVectorizer",
        "sklearn.feature_extraction.text.HashingVectorizer",
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._label.LabelBinarizer",
        "sklearn.preprocessing._label.LabelEncoder",
        "sklearn.preprocessing._label.MultiLabelBinarizer",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting."
        "HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss.loss.HalfMultinomialLoss",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn._loss._loss.CyHalfMultinomialLoss",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.MultinomialLogit",
        "sklearn._loss.link.IdentityLink",
        "sklearn._loss.link.Interval",
    }
)

#: Non-class globals a state may refer to (numpy scalar types as ``dtype``
#: parameters, builtin types).
_GLOBALS = {
    **{
        f"numpy.{name}": getattr(np, name)
        for name in (
            "float16",
            "float32",
            "float64",
            "int8",
            "int16",
            "int32",
            "int64",
            "uint8",
            "uint16",
            "uint32",
            "uint64",
            "bool_",
            "str_",
        )
    },
    "builtins.float": float,
    "builtins.int": int,
    "builtins.bool": bool,
    "builtins.str": str,
}

_SPARSE = {
    "csr_matrix": sp.csr_matrix,
    "csc_matrix": sp.csc_matrix,
    "coo_matrix": sp.coo_matrix,
    "csr_array": sp.csr_array,
    "csc_array": sp.csc_array,
    "coo_array": sp.coo_array,
}
_BIT_GENERATORS = {
    name: getattr(np.random, name)
    for name in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


# ------------------------------------------------------------------ versions
def _versions() -> dict:
    import sklearn

    import skxmc

    versions = {
        "skxmc": skxmc.__version__,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "python": ".".join(map(str, sys.version_info[:3])),
    }
    for name in ("torch", "transformers"):
        # Read from the installed metadata: importing torch just to record its
        # version would cost seconds, and XR-Linear runs without it.
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = module.__version__
            continue
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _minor(version: str) -> tuple:
    parts = re.findall(r"\d+", version)[:2]
    return tuple(int(p) for p in parts)


def _check_versions(saved: dict) -> None:
    current = _versions()
    for name, label in (("skxmc", "skxmc"), ("sklearn", "scikit-learn")):
        old, new = str(saved.get(name, "unknown")), current[name]
        if old == "unknown" or _minor(old) != _minor(new):
            raise ValueError(
                f"This model was saved with {label} {old} and this is {label} "
                f"{new}: skxmc.load reads only folders written by the same "
                f"{label} major.minor version. Load it with {label} "
                f"{'.'.join(re.findall(r'[0-9]+', old)[:2]) or old}.* and refit "
                "or save it again."
            )


# ------------------------------------------------------------- class refs
def _class_name(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_hf_model(obj) -> bool:
    transformers = sys.modules.get("transformers")
    return transformers is not None and isinstance(obj, transformers.PreTrainedModel)


def _is_hf_tokenizer(obj) -> bool:
    transformers = sys.modules.get("transformers")
    return transformers is not None and isinstance(
        obj, transformers.PreTrainedTokenizerBase
    )


def _allowed_on_save(cls) -> bool:
    module = cls.__module__
    return (
        module == "skxmc"
        or module.startswith("skxmc.")
        or module.startswith("torch.nn.modules.")
        or _class_name(cls) in SKLEARN_CLASSES
    )


def _resolve_class(module: str, name: str):
    """The class ``module.name`` if it is on the allowlist; never imports a
    module outside skxmc, torch.nn and the listed scikit-learn modules."""
    full = f"{module}.{name}"
    if not (isinstance(module, str) and isinstance(name, str)) or not (
        _NAME.match(module) and _NAME.match(name)
    ):
        raise UnsafeModelError(f"Invalid type name {full!r} in the saved model.")
    prefix_ok = module == "skxmc" or module.startswith(("skxmc.", "torch.nn.modules."))
    if not prefix_ok and full not in SKLEARN_CLASSES:
        raise UnsafeModelError(
            f"The saved model refers to the type {full!r}, which is not on "
            "skxmc.load's allowlist (skxmc classes, torch.nn modules, the "
            "scikit-learn classes in skxmc._persistence.SKLEARN_CLASSES); "
            "refusing to load it."
        )
    try:
        obj = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise UnsafeModelError(
            f"The saved model refers to the type {full!r}, which does not exist "
            "in this installation."
        ) from exc
    if not isinstance(obj, type) or _class_name(obj) != full:
        raise UnsafeModelError(
            f"The saved model refers to {full!r}, which is not a class defined "
            "there; refusing to load it."
        )
    return obj


@contextmanager
def _quiet_hf():
    """No transformers progress bars or warnings, Hub offline, then restored."""
    from transformers.utils import logging as hf_logging

    from skxmc.nn._transformer import _hub_offline

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with _hub_offline():
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


# ------------------------------------------------------------------ saving
class _Writer:
    def __init__(self, folder: Path):
        self.folder = folder
        self.arrays: dict[str, np.ndarray] = {}
        self.tensors: dict = {}
        self.memo: dict[int, int] = {}
        self.keep: list = []  # keeps memoized objects alive during the walk
        self.n_hf = 0

    def array(self, a: np.ndarray) -> str:
        key = f"a{len(self.arrays)}"
        self.arrays[key] = np.ascontiguousarray(a)
        return key

    def encode(self, obj):
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if type(obj) in (int, float):
            return obj
        if isinstance(obj, np.generic):
            if obj.dtype.hasobject:
                raise TypeError("Cannot save a numpy object scalar.")
            return {"__npscalar__": self.array(np.asarray(obj))}
        if type(obj) is list:
            return [self.encode(v) for v in obj]
        if type(obj) is tuple:
            return {"__tuple__": [self.encode(v) for v in obj]}
        if type(obj) in (set, frozenset):
            items = [self.encode(v) for v in obj]
            return {"__set__": items, "frozen": type(obj) is frozenset}
        if type(obj) in (dict, OrderedDict):
            ordered = type(obj) is OrderedDict
            if all(type(k) is str for k in obj):
                return {
                    "__dict__": {k: self.encode(v) for k, v in obj.items()},
                    "ordered": ordered,
                }
            return {
                "__items__": [[self.encode(k), self.encode(v)] for k, v in obj.items()],
                "ordered": ordered,
            }
        for name, value in _GLOBALS.items():
            if obj is value:
                return {"__global__": name}
        if isinstance(obj, np.dtype):
            if obj.fields is not None:
                raise TypeError(f"Cannot save the numpy dtype {obj!r}.")
            return {"__dtype__": obj.str}
        if type(obj) in (complex, bytes, range, slice):
            raise TypeError(f"Cannot save a value of type {type(obj).__name__}.")
        # Identity-memoized values from here on.
        if id(obj) in self.memo:
            return {"__ref__": self.memo[id(obj)]}
        ref = len(self.memo)
        self.memo[id(obj)] = ref
        self.keep.append(obj)
        out = self._encode_object(obj)
        out["id"] = ref
        return out

    def _encode_object(self, obj):
        if isinstance(obj, np.ndarray):
            if type(obj) is not np.ndarray:
                raise TypeError(f"Cannot save the ndarray subclass {type(obj)!r}.")
            if obj.dtype.hasobject:
                return {
                    "__objarray__": [self.encode(v) for v in obj.ravel().tolist()],
                    "shape": list(obj.shape),
                }
            return {"__ndarray__": self.array(obj)}
        if sp.issparse(obj):
            fmt = type(obj).__name__
            if fmt not in _SPARSE:
                obj, fmt = obj.tocsr(), "csr_matrix"
            if fmt.startswith("coo"):
                parts = {"data": obj.data, "row": obj.coords[0], "col": obj.coords[1]}
            else:
                parts = {"data": obj.data, "indices": obj.indices, "indptr": obj.indptr}
            return {
                "__sparse__": fmt,
                "shape": list(obj.shape),
                **{k: self.array(v) for k, v in parts.items()},
            }
        torch = sys.modules.get("torch")
        if torch is not None:
            if isinstance(obj, torch.Tensor):
                return self._tensor(obj, torch)
            if isinstance(obj, torch.device):
                return {"__torch_device__": str(obj)}
            if isinstance(obj, torch.dtype):
                return {"__torch_dtype__": str(obj).removeprefix("torch.")}
        if _is_hf_model(obj) or _is_hf_tokenizer(obj):
            return self._hf(obj)
        if isinstance(obj, np.random.Generator):
            bit = obj.bit_generator
            if type(bit).__name__ not in _BIT_GENERATORS:
                raise TypeError(f"Cannot save the bit generator {type(bit)!r}.")
            return {"__np_generator__": self.encode(bit.state)}
        if isinstance(obj, np.random.RandomState):
            return {"__np_randomstate__": self.encode(obj.get_state(legacy=False))}
        if isinstance(obj, Enum):
            cls = type(obj)
            self._check_save(cls)
            return {"__enum__": [cls.__module__, cls.__qualname__], "value": obj.value}
        if isinstance(obj, type):
            raise TypeError(f"Cannot save the class {_class_name(obj)}.")
        return self._object(obj)

    def _tensor(self, t, torch):
        if t.layout == torch.sparse_coo:
            t = t.detach()
            coalesced = t.is_coalesced()
            return {
                "__sparse_tensor__": "coo",
                "size": list(t.shape),
                "coalesced": coalesced,
                "indices": self._tensor(t._indices(), torch),
                "values": self._tensor(t._values(), torch),
                "requires_grad": bool(t.requires_grad),
            }
        if t.layout == torch.sparse_csr:
            t = t.detach()
            return {
                "__sparse_tensor__": "csr",
                "size": list(t.shape),
                "crow": self._tensor(t.crow_indices(), torch),
                "col": self._tensor(t.col_indices(), torch),
                "values": self._tensor(t.values(), torch),
                "requires_grad": bool(t.requires_grad),
            }
        if t.layout != torch.strided:
            raise TypeError(f"Cannot save a torch tensor with layout {t.layout}.")
        key = f"t{len(self.tensors)}"
        self.tensors[key] = t.detach().to("cpu", copy=True).contiguous()
        return {
            "__tensor__": key,
            "parameter": isinstance(t, torch.nn.Parameter),
            "requires_grad": bool(t.requires_grad),
        }

    def _hf(self, obj):
        sub = f"hf/{self.n_hf}"
        self.n_hf += 1
        cls = type(obj)
        if _is_hf_model(obj):
            with _quiet_hf():
                obj.save_pretrained(self.folder / sub, safe_serialization=True)
            dtype = str(next(obj.parameters()).dtype).removeprefix("torch.")
            return {
                "__hf_model__": sub,
                "class": cls.__name__,
                "training": bool(obj.training),
                "dtype": dtype,
            }
        with _quiet_hf():
            obj.save_pretrained(self.folder / sub)
        return {"__hf_tokenizer__": sub, "class": cls.__name__}

    def _check_save(self, cls):
        if not _allowed_on_save(cls):
            raise TypeError(
                f"skxmc.save cannot write an object of type {_class_name(cls)!r}: "
                "it is not on skxmc.load's allowlist. Use pickle or joblib for "
                "models that hold it."
            )

    def _object(self, obj):
        cls = type(obj)
        self._check_save(cls)
        from skxmc.base import BaseXMCClassifier

        if isinstance(obj, BaseXMCClassifier):
            # BaseXMCClassifier.__getstate__ pickles; take the plain state.
            from sklearn.base import BaseEstimator

            state = BaseEstimator.__getstate__(obj)
            state = {k: v for k, v in state.items() if k not in obj._DEVICE_CACHES}
        elif isinstance(obj, tuple) and hasattr(cls, "_fields"):
            return {
                "__namedtuple__": [cls.__module__, cls.__qualname__],
                "items": [self.encode(v) for v in obj],
            }
        elif cls.__getstate__ is not object.__getstate__:
            state = obj.__getstate__()
        elif hasattr(obj, "__dict__"):
            state = dict(vars(obj))
        else:
            state = None
        slots = {}
        for klass in cls.__mro__:
            for name in getattr(klass, "__slots__", ()):
                if name not in ("__dict__", "__weakref__") and hasattr(obj, name):
                    slots[name] = getattr(obj, name)
        if state is not None and not isinstance(state, dict):
            raise TypeError(
                f"skxmc.save cannot write {_class_name(cls)}: its state is a "
                f"{type(state).__name__}, not a dict."
            )
        return {
            "__object__": [cls.__module__, cls.__qualname__],
            "state": None if state is None else self.encode(state),
            "slots": self.encode(slots) if slots else None,
        }


def save(model, path) -> None:
    """Save a fitted (or unfitted) skxmc estimator to a folder, without pickle.

    Writes ``path/skxmc_model.json`` (the object tree, its parameters, classes,
    fitted attributes and the library versions), ``arrays.npz`` (numpy and scipy
    arrays, no pickled objects), ``tensors.safetensors`` (torch tensors, on the
    CPU) and a ``hf/`` subfolder per transformers model or tokenizer. The
    folder loads with :func:`skxmc.load` on any machine, with or without a GPU,
    and loading it runs no code from the folder.

    Pickle (``pickle``/``joblib``) stays supported, but unpickling runs
    arbitrary code: load pickles only from sources you trust. Prefer this
    function to share models.

    Parameters
    ----------
    model : object
        An skxmc estimator or pipeline; may hold scikit-learn vectorizers,
        torch modules and transformers models.
    path : str or path-like
        The folder to write; created if missing, and must be empty if present.

    Raises
    ------
    FileExistsError
        If ``path`` is a non-empty folder or a file.
    TypeError
        If the model holds an object :func:`skxmc.load` would refuse.

    See Also
    --------
    load : Load a folder written by this function.

    Examples
    --------
    >>> import tempfile
    >>> import skxmc
    >>> from skxmc import XRLinearClassifier
    >>> from skxmc.datasets import make_xmc_classification
    >>> X, Y = make_xmc_classification(n_samples=60, n_labels=12, random_state=0)
    >>> clf = XRLinearClassifier(max_leaf_size=4).fit(X, Y)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     skxmc.save(clf, f"{tmp}/model")
    ...     loaded = skxmc.load(f"{tmp}/model")
    >>> bool((loaded.predict_topk(X, 3)[1] == clf.predict_topk(X, 3)[1]).all())
    True
    """
    folder = Path(path)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise FileExistsError(f"{folder} exists and is not an empty folder.")
    folder.mkdir(parents=True, exist_ok=True)
    writer = _Writer(folder)
    root = writer.encode(model)
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "versions": _versions(),
        "root": root,
    }
    if "allow_pickle" in inspect.signature(np.savez).parameters:  # numpy >= 2.1
        np.savez(folder / _NPZ, allow_pickle=False, **writer.arrays)
    else:  # pragma: no cover - object arrays never reach the npz anyway
        np.savez(folder / _NPZ, **writer.arrays)
    if writer.tensors:
        from safetensors.torch import save_file

        save_file(writer.tensors, str(folder / _SAFETENSORS))
    (folder / _JSON).write_text(json.dumps(document))


# ----------------------------------------------------------------- loading
class _Reader:
    def __init__(self, folder: Path):
        self.folder = folder
        self.memo: dict[int, object] = {}
        try:
            self.arrays = np.load(folder / _NPZ, allow_pickle=False)
        except FileNotFoundError:
            self.arrays = {}
        except Exception as exc:
            message = f"{folder / _NPZ} is not a valid .npz file."
            raise UnsafeModelError(message) from exc
        self.tensors = None

    def array(self, key):
        if not isinstance(key, str) or key not in self.arrays:
            raise UnsafeModelError(f"Array {key!r} is missing from {_NPZ}.")
        try:
            return self.arrays[key]
        except ValueError as exc:  # "Object arrays cannot be loaded ..."
            raise UnsafeModelError(
                f"Array {key!r} of {self.folder / _NPZ} holds pickled Python "
                "objects; skxmc.load never unpickles. Refusing to load it."
            ) from exc

    def tensor(self, key):
        if self.tensors is None:
            from safetensors.torch import load_file

            try:
                self.tensors = load_file(str(self.folder / _SAFETENSORS), device="cpu")
            except Exception as exc:
                raise UnsafeModelError(
                    f"{self.folder / _SAFETENSORS} is not a valid safetensors file."
                ) from exc
        if key not in self.tensors:
            raise UnsafeModelError(f"Tensor {key!r} is missing from {_SAFETENSORS}.")
        return self.tensors[key]

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict):
            raise UnsafeModelError(f"Unexpected JSON value {node!r}.")
        if "__ref__" in node:
            if node["__ref__"] not in self.memo:
                raise UnsafeModelError(f"Dangling reference {node['__ref__']!r}.")
            return self.memo[node["__ref__"]]
        if "__tuple__" in node:
            return tuple(self.decode(v) for v in node["__tuple__"])
        if "__set__" in node:
            items = [self.decode(v) for v in node["__set__"]]
            return frozenset(items) if node.get("frozen") else set(items)
        if "__dict__" in node:
            kind = OrderedDict if node.get("ordered") else dict
            return kind((k, self.decode(v)) for k, v in node["__dict__"].items())
        if "__items__" in node:
            kind = OrderedDict if node.get("ordered") else dict
            return kind((self.decode(k), self.decode(v)) for k, v in node["__items__"])
        if "__npscalar__" in node:
            return self.array(node["__npscalar__"])[()]
        if "__global__" in node:
            name = node["__global__"]
            if name not in _GLOBALS:
                raise UnsafeModelError(
                    f"The saved model refers to {name!r}, which is not on "
                    "skxmc.load's allowlist; refusing to load it."
                )
            return _GLOBALS[name]
        if "__dtype__" in node:
            # A dtype object only describes data: "O" is harmless here (object
            # arrays themselves never reach the npz).
            try:
                return np.dtype(str(node["__dtype__"]))
            except TypeError as exc:
                raise UnsafeModelError(f"Invalid dtype {node['__dtype__']!r}.") from exc
        if "id" not in node:
            raise UnsafeModelError(
                f"Unknown entry {sorted(node)!r} in the saved model; refusing to "
                "load it."
            )
        return self._decode_object(node)

    def _remember(self, node, obj):
        self.memo[node["id"]] = obj
        return obj

    def _decode_object(self, node):
        if "__ndarray__" in node:
            return self._remember(node, self.array(node["__ndarray__"]))
        if "__objarray__" in node:
            items = [self.decode(v) for v in node["__objarray__"]]
            out = np.empty(len(items), dtype=object)
            for i, item in enumerate(items):
                out[i] = item
            return self._remember(node, out.reshape([int(s) for s in node["shape"]]))
        if "__sparse__" in node:
            fmt = node["__sparse__"]
            if fmt not in _SPARSE:
                raise UnsafeModelError(f"Unknown sparse format {fmt!r}.")
            shape = tuple(int(s) for s in node["shape"])
            data = self.array(node["data"])
            if fmt.startswith("coo"):
                args = (data, (self.array(node["row"]), self.array(node["col"])))
            else:
                args = (data, self.array(node["indices"]), self.array(node["indptr"]))
            return self._remember(node, _SPARSE[fmt](args, shape=shape))
        if "__tensor__" in node:
            import torch

            t = self.tensor(node["__tensor__"])
            if node.get("parameter"):
                t = torch.nn.Parameter(t, requires_grad=bool(node["requires_grad"]))
            else:
                t.requires_grad_(bool(node["requires_grad"]))
            return self._remember(node, t)
        if "__sparse_tensor__" in node:
            return self._remember(node, self._sparse_tensor(node))
        if "__torch_device__" in node:
            import torch

            return self._remember(node, torch.device(str(node["__torch_device__"])))
        if "__torch_dtype__" in node:
            import torch

            dtype = getattr(torch, str(node["__torch_dtype__"]), None)
            if not isinstance(dtype, torch.dtype):
                name = node["__torch_dtype__"]
                raise UnsafeModelError(f"Unknown torch dtype {name!r}.")
            return self._remember(node, dtype)
        if "__hf_model__" in node or "__hf_tokenizer__" in node:
            return self._remember(node, self._hf(node))
        if "__np_generator__" in node:
            state = self.decode(node["__np_generator__"])
            name = state.get("bit_generator") if isinstance(state, dict) else None
            if name not in _BIT_GENERATORS:
                raise UnsafeModelError(f"Unknown numpy bit generator {name!r}.")
            bit = _BIT_GENERATORS[name]()
            bit.state = state
            return self._remember(node, np.random.Generator(bit))
        if "__np_randomstate__" in node:
            rs = np.random.RandomState()
            rs.set_state(self.decode(node["__np_randomstate__"]))
            return self._remember(node, rs)
        if "__enum__" in node:
            cls = _resolve_class(*node["__enum__"])
            if not issubclass(cls, Enum):
                raise UnsafeModelError(f"{_class_name(cls)} is not an Enum.")
            return self._remember(node, cls(node["value"]))
        if "__namedtuple__" in node:
            cls = _resolve_class(*node["__namedtuple__"])
            if not (issubclass(cls, tuple) and hasattr(cls, "_fields")):
                raise UnsafeModelError(f"{_class_name(cls)} is not a namedtuple.")
            items = [self.decode(v) for v in node["items"]]
            return self._remember(node, tuple.__new__(cls, items))
        if "__object__" in node:
            ref = node["__object__"]
            if not (isinstance(ref, list) and len(ref) == 2):
                raise UnsafeModelError(f"Invalid type reference {ref!r}.")
            cls = _resolve_class(*ref)
            obj = self._remember(node, cls.__new__(cls))
            state = self.decode(node.get("state"))
            slots = self.decode(node.get("slots"))
            if state is not None:
                if not isinstance(state, dict):
                    raise UnsafeModelError("An object state must be a dict.")
                self._set_state(cls, obj, state)
            if not isinstance(slots, (dict, type(None))):
                raise UnsafeModelError("Object slots must be a dict.")
            for name, value in (slots or {}).items():
                object.__setattr__(obj, name, value)
            return obj
        raise UnsafeModelError(
            f"Unknown entry {sorted(node)!r} in the saved model; refusing to load it."
        )

    @staticmethod
    def _set_state(cls, obj, state):
        from sklearn.base import BaseEstimator

        from skxmc.base import BaseXMCClassifier

        if "_skxmc_cpu_state" in state:
            # BaseXMCClassifier.__setstate__ unpickles this key (and pickle
            # reads any buffer, numpy arrays included): never let it through.
            raise UnsafeModelError(
                "The saved model carries a pickled estimator state "
                "('_skxmc_cpu_state'); skxmc.load never unpickles."
            )
        if issubclass(cls, BaseXMCClassifier):
            from skxmc.base import fill_missing_params

            BaseEstimator.__setstate__(obj, state)  # skip the pickle branch
            fill_missing_params(obj)
        elif hasattr(cls, "__setstate__"):
            obj.__setstate__(state)
        else:
            obj.__dict__.update(state)

    def _sparse_tensor(self, node):
        import torch

        def part(name):
            sub = node.get(name)
            if not (isinstance(sub, dict) and "__tensor__" in sub):
                raise UnsafeModelError("Malformed sparse tensor entry.")
            return self.tensor(sub["__tensor__"])

        size = [int(s) for s in node["size"]]
        kind = node["__sparse_tensor__"]
        if kind == "coo":
            t = torch.sparse_coo_tensor(
                part("indices"),
                part("values"),
                size,
                is_coalesced=bool(node.get("coalesced")),
                check_invariants=True,
            )
        elif kind == "csr":
            t = torch.sparse_csr_tensor(
                part("crow"), part("col"), part("values"), size, check_invariants=True
            )
        else:
            raise UnsafeModelError(f"Unknown sparse tensor layout {kind!r}.")
        return t.requires_grad_(bool(node.get("requires_grad")))

    def _hf(self, node):
        import transformers

        is_model = "__hf_model__" in node
        sub = node["__hf_model__" if is_model else "__hf_tokenizer__"]
        name = node.get("class")
        if not (isinstance(sub, str) and re.fullmatch(r"hf/[0-9]+", sub)):
            raise UnsafeModelError(f"Invalid subfolder {sub!r} in the saved model.")
        base = (
            transformers.PreTrainedModel
            if is_model
            else transformers.PreTrainedTokenizerBase
        )
        cls = None
        if isinstance(name, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            cls = getattr(transformers, name, None)
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise UnsafeModelError(
                f"The saved model refers to the transformers class {name!r}, which "
                f"is not a {base.__name__} of transformers; refusing to load it."
            )
        folder = self.folder / sub
        if is_model:
            with _quiet_hf():
                model = cls.from_pretrained(
                    folder, local_files_only=True, use_safetensors=True
                )
            import torch

            dtype = getattr(torch, str(node.get("dtype", "float32")), None)
            if isinstance(dtype, torch.dtype):
                model = model.to(dtype)
            model.train(bool(node.get("training")))
            return model
        with _quiet_hf():
            return cls.from_pretrained(folder, local_files_only=True)


def load(path):
    """Load a model saved by :func:`skxmc.save`, without running its code.

    No pickle is read: arrays come from ``.npz`` (``allow_pickle=False``) and
    safetensors files, and objects are rebuilt only from an allowlist of types
    (skxmc's classes, ``torch.nn`` modules, transformers models and tokenizers,
    and the scikit-learn classes our estimators hold). Tensors land on the CPU,
    so a model fitted on a GPU loads on a machine without one; estimators move
    them to their ``device`` on first use.

    By contrast, ``pickle.load``/``joblib.load`` run arbitrary code from the
    file: use them only for files you trust.

    Parameters
    ----------
    path : str or path-like
        A folder written by :func:`skxmc.save`.

    Returns
    -------
    model : object
        The saved estimator.

    Raises
    ------
    skxmc.exceptions.UnsafeModelError
        (a ``ValueError``) If the folder names a type outside the allowlist,
        holds pickled objects, or is malformed. Nothing from it is executed.
    ValueError
        If the folder was written by a different skxmc ``major.minor`` or
        scikit-learn ``major.minor`` version (the message names both).

    See Also
    --------
    save : Write a model to a folder.

    Examples
    --------
    >>> import tempfile
    >>> import skxmc
    >>> from skxmc import XRLinearClassifier
    >>> from skxmc.datasets import make_xmc_classification
    >>> X, Y = make_xmc_classification(n_samples=60, n_labels=12, random_state=0)
    >>> clf = XRLinearClassifier(max_leaf_size=4).fit(X, Y)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     skxmc.save(clf, f"{tmp}/model")
    ...     loaded = skxmc.load(f"{tmp}/model")
    >>> loaded.n_labels_
    12
    """
    folder = Path(path)
    try:
        document = json.loads((folder / _JSON).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{folder} holds no {_JSON}: not a folder written by skxmc.save."
        ) from None
    except ValueError as exc:
        raise UnsafeModelError(f"{folder / _JSON} is not valid JSON.") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise UnsafeModelError(f"{folder / _JSON} is not an skxmc model description.")
    if document.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{folder} uses skxmc model format version "
            f"{document.get('format_version')!r}; this skxmc reads version "
            f"{FORMAT_VERSION}."
        )
    versions = document.get("versions")
    if not isinstance(versions, dict):
        raise UnsafeModelError(f"{folder / _JSON} records no library versions.")
    _check_versions(versions)
    reader = _Reader(folder)
    try:
        return reader.decode(document.get("root"))
    finally:
        if hasattr(reader.arrays, "close"):
            reader.arrays.close()
