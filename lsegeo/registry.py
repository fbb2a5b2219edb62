"""One registry mechanism for every kind of plug-in.

Models, emulator kinds and backends, objectives, optimiser engines, cluster kinds, sensitivity
estimators (and, later, regionalization methods and product kinds) are each a :class:`Registry`:
a name maps to ``"module:attribute"`` text, imported only when that name is chosen, or to an
object registered in code. Listing a registry imports nothing, so heavy or optional libraries
(xgboost, torch, dask-jobqueue, ...) are loaded only by the runs that use them.

Examples
--------
>>> MODELS = Registry("model", {"hbv": "lsegeo.models.hbv.adapter:HBVModel"})
>>> MODELS.names()
['hbv']
>>> @MODELS.register("bucket")
... class Bucket: ...
>>> MODELS.get("nope")  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
UnknownNameError: unknown model 'nope'; known models: bucket, hbv
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from lsegeo.errors import MissingDependencyError, UnknownNameError

__all__ = ["Registry", "Entry", "lazy_exports"]

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """One registered plug-in.

    Attributes
    ----------
    target : str or object
        ``"module:attribute"`` (imported on first use) or the object itself.
    extra : str
        The optional-dependency group of the package that provides what the entry needs
        (``pip install 'lsegeo[EXTRA]'``), named in the error when an import fails.
    """

    target: Any
    extra: str = ""


class Registry(Generic[T]):
    """Plug-ins of one kind, by name.

    Parameters
    ----------
    kind : str
        What the entries are, in the singular (``"model"``, ``"objective"``): used in errors.
    entries : mapping of str to str or object, optional
        Initial entries: ``name -> "module:attribute"`` or ``name -> object``.
    extras : mapping of str to str, optional
        ``name -> extra`` for the initial entries that need an optional dependency group.
    """

    def __init__(self, kind: str, entries: Mapping[str, Any] | None = None,
                 extras: Mapping[str, str] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self._loaded: dict[str, T] = {}
        for name, target in (entries or {}).items():
            self.add(name, target, extra=(extras or {}).get(name, ""))

    # -- registration -----------------------------------------------------------------------
    def add(self, name: str, target: Any, *, extra: str = "", replace: bool = False) -> None:
        """Register ``target`` (``"module:attribute"`` or an object) under ``name``.

        Raises
        ------
        ValueError
            ``name`` is taken and ``replace`` is false, or a text target is not of the form
            ``"module:attribute"``.
        """
        if name in self._entries and not replace:
            raise ValueError(f"{self.kind} {name!r} is already registered; pass replace=True to replace it")
        if isinstance(target, str) and target.count(":") != 1:
            raise ValueError(f"{self.kind} {name!r}: a text entry must read 'module:attribute', got {target!r}")
        self._entries[name] = Entry(target, extra)
        self._loaded.pop(name, None)

    def register(self, name: str, *, extra: str = "", replace: bool = False) -> Callable[[T], T]:
        """Decorator form of :meth:`add`: ``@REGISTRY.register("name")``."""

        def deco(obj: T) -> T:
            self.add(name, obj, extra=extra, replace=replace)
            return obj

        return deco

    # -- look-up ----------------------------------------------------------------------------
    def names(self) -> list[str]:
        """The registered names, sorted; imports nothing."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def check(self, name: str) -> str:
        """Return ``name`` if it is registered, else raise :class:`UnknownNameError`.

        Used by config validation: it imports nothing.
        """
        if name not in self._entries:
            raise UnknownNameError(self.kind, name, self.names())
        return name

    def get(self, name: str) -> T:
        """The object registered as ``name``, imported on first use.

        Raises
        ------
        UnknownNameError
            ``name`` is not registered; the message lists the registered names.
        MissingDependencyError
            Importing the entry failed for want of a package outside lsegeo; the message names
            the package and the extra that provides it.
        """
        if name in self._loaded:
            return self._loaded[name]
        entry = self._entries.get(name)
        if entry is None:
            raise UnknownNameError(self.kind, name, self.names())
        obj = entry.target
        if isinstance(obj, str):
            module, attr = obj.split(":")
            try:
                obj = getattr(importlib.import_module(module), attr)
            except ModuleNotFoundError as err:
                missing = (err.name or "").split(".")[0]
                if not missing or missing == "lsegeo":
                    raise
                hint = f"pip install 'lsegeo[{entry.extra}]'" if entry.extra else f"pip install {missing}"
                raise MissingDependencyError(
                    f"{self.kind} {name!r} needs the package {missing!r}, which is not installed: {hint}"
                ) from err
        self._loaded[name] = obj
        return obj

    def create(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call the entry registered as ``name`` (a class or factory) with the arguments."""
        return self.get(name)(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` that import its public names on first use.

    The same idea as the registries, for a package's own API: ``import lsegeo.emulators.settings``
    (as the configuration does) must not load xarray or an emulator library just because the
    package ``lsegeo.emulators`` re-exports them.

    Parameters
    ----------
    package : str
        The package's dotted name, for the error message.
    exports : mapping of str to str
        Public name -> the module that defines it.

    Returns
    -------
    (callable, callable)
        Assign them to the package's ``__getattr__`` and ``__dir__`` (PEP 562).
    """
    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        vars(importlib.import_module(package))[name] = value  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(importlib.import_module(package))) | set(exports))

    return __getattr__, __dir__
