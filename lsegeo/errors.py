"""The exception tree of lsegeo.

Every error that lsegeo raises on purpose derives from :class:`LsegeoError`, so a caller can
catch all of them at once; each one says which file, variable or value was wrong and what was
expected instead.
"""

from __future__ import annotations

__all__ = [
    "LsegeoError",
    "DataNotFoundError",
    "InputFormatError",
    "UnknownBasinError",
    "ConfigError",
    "StoreError",
    "UnknownNameError",
    "MissingDependencyError",
]


class LsegeoError(Exception):
    """Base class of every error raised on purpose by lsegeo."""


class DataNotFoundError(LsegeoError, FileNotFoundError):
    """An input file or directory that lsegeo needs is absent.

    The message names every path that was searched and the file that was expected there.
    """


class InputFormatError(LsegeoError, ValueError):
    """An input file does not have the expected format.

    Parameters
    ----------
    path : str
        The file.
    line : int or None
        1-based line number in the (decompressed) file, when the problem is on one line.
    reason : str
        What is wrong and what was expected.
    """

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")

    def __reduce__(self):  # keep the fields when the error crosses a dask worker boundary
        return (type(self), (self.path, self.line, self.reason))


class UnknownBasinError(LsegeoError, KeyError):
    """A basin (gauge) id that is not in the data set was asked for."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(LsegeoError, ValueError):
    """A configuration file or value is invalid; the message points at the bad key."""


class StoreError(LsegeoError):
    """A zarr store is missing, incomplete or not the kind of store that was expected."""


class UnknownNameError(LsegeoError, KeyError):
    """A name that no registry entry has was asked for (a model, objective, backend, ...).

    Parameters
    ----------
    kind : str
        What was looked up, in the singular (``"model"``).
    name : str
        The name asked for.
    known : list of str
        The registered names, listed in the message.
    """

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind, self.name, self.known = kind, name, list(known)
        super().__init__(f"unknown {kind} {name!r}; known {kind}s: {', '.join(known) or '(none)'}")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])

    def __reduce__(self):  # keep the fields when the error crosses a dask worker boundary
        return (type(self), (self.kind, self.name, self.known))


class MissingDependencyError(LsegeoError, ImportError):
    """An optional package that the chosen plug-in needs is not installed; the message names it."""
