"""Warnings and errors raised by skxmc."""

__all__ = ["UnsafeModelError", "XMCDataWarning"]


class XMCDataWarning(UserWarning):
    """Training data that is legal but probably not what the user meant.

    Raised, for example, when some training rows have no positive label (they are
    kept and used as negatives only) or some labels have no positive training row
    (they are kept in ``classes_`` and can only be reached through label data).
    """


class UnsafeModelError(ValueError):
    """A folder given to :func:`skxmc.load` that it refuses to read.

    Raised when the folder names a type outside the loader's allowlist, carries
    pickled Python objects, or is malformed. Nothing from the folder has been
    executed when it is raised.
    """
