"""Optional dependencies: torch and transformers come with the ``deep`` extra."""

from __future__ import annotations

import importlib

__all__ = ["DEEP_INSTALL_HINT", "require_deep"]

#: How to install the deep estimators' dependencies, for error messages.
DEEP_INSTALL_HINT = (
    "pip install 'skxmc[deep]' (on a CPU-only machine, first: pip install torch "
    "--index-url https://download.pytorch.org/whl/cpu)"
)


def require_deep(what: str, modules: tuple[str, ...] = ("torch",)) -> None:
    """Import ``modules`` or raise a :class:`ModuleNotFoundError` saying how to
    install them.

    XR-Linear, the metrics, the data loaders and :func:`skxmc.save` /
    :func:`skxmc.load` need neither torch nor transformers; the deep
    estimators' packages (:mod:`skxmc.models`, :mod:`skxmc.nn`,
    :mod:`skxmc.training`) call this first.

    Parameters
    ----------
    what : str
        What needs the modules, for the message (e.g. ``"skxmc.models"``).
    modules : tuple of str, default=("torch",)
        The modules to import.

    Examples
    --------
    >>> from skxmc.utils._deps import require_deep
    >>> require_deep("this example", modules=("json",))
    """
    for name in modules:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.split(".")[0] != name:
                raise
            raise ModuleNotFoundError(
                f"{what} needs {name}, which is not installed: {DEEP_INSTALL_HINT}.",
                name=name,
            ) from exc
