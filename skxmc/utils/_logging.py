"""One logger for skxmc: ``logging.getLogger("skxmc")``."""

from __future__ import annotations

import logging
import os

__all__ = ["log", "logger"]

logger = logging.getLogger("skxmc")


def log(message: str, *, verbose: int | bool, level: int = logging.INFO) -> None:
    """Log ``message`` on the ``skxmc`` logger when ``verbose`` is set.

    ``verbose`` is the estimator's parameter: 0 says nothing. When nobody has
    configured logging (no handler on the ``skxmc`` logger or the root), a
    handler writing to standard error is added once, so that ``verbose=1``
    shows progress without any set-up; an application's own logging
    configuration takes over as soon as it exists. In a ``torchrun`` launch
    only rank 0 (the ``RANK`` variable) logs.

    Parameters
    ----------
    message : str
        The message.
    verbose : int or bool
        The estimator's verbosity.
    level : int, default=logging.INFO
        The record's level.

    Examples
    --------
    >>> from skxmc.utils._logging import log
    >>> log("not shown", verbose=0)
    """
    if not verbose or os.environ.get("RANK", "0") != "0":
        return
    if not logger.hasHandlers():
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[skxmc] %(message)s"))
        logger.addHandler(handler)
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    logger.log(level, message)
