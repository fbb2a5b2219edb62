"""The plug-ins of the emulate step: emulator kinds, LSE backends, SSE candidates, CV fold schemes.

Each is a :class:`lsegeo.registry.Registry` of ``"module:attribute"`` entries, so this module
imports nothing heavy: xgboost, torch and scikit-learn are imported only when an entry that
needs them is chosen.

* :data:`EMULATORS` -- emulator classes by their ``kind`` (``lse``, ``sse``); each class has
  ``load(directory, n_jobs=)`` and ``from_settings(settings)``.
* :data:`BACKENDS` -- regression backends of the large-sample emulator, called as
  ``factory(seed=int, n_jobs=int, **options)``; the result follows
  :class:`lsegeo.emulators.protocol.Backend`.
* :data:`SSE_CANDIDATES` -- the surrogates a single-site emulator chooses between per basin.
* :data:`FOLD_SCHEMES` -- ``folds(ts, n_folds, seed) -> [(train_rows, test_rows), ...]``.

:func:`register_backend` and :func:`make_backend` are the backend registry's public face, kept
for code (and benchmarks) that plug in their own backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lsegeo.registry import Registry

__all__ = ["EMULATORS", "BACKENDS", "SSE_CANDIDATES", "FOLD_SCHEMES", "DEFAULT_FOLD_SCHEME", "register_backend",
           "make_backend", "create_emulator"]

#: Emulator classes by kind.
EMULATORS: Registry[type] = Registry("emulator", {
    "lse": "lsegeo.emulators.lse:LargeSampleEmulator",
    "sse": "lsegeo.emulators.sse:SingleSiteEmulator",
})

#: LSE backends by name: ``factory(seed=int, n_jobs=int, **options) -> Backend``.
BACKENDS: Registry[Callable[..., Any]] = Registry("emulator backend", {
    "xgboost": "lsegeo.emulators.backends.trees:XGBoostBackend",
    "random_forest": "lsegeo.emulators.backends.trees:XGBRandomForestBackend",
    "torch_mlp": "lsegeo.emulators.backends.torch_mlp:TorchMLPBackend",
}, extras={"xgboost": "ml", "random_forest": "ml", "torch_mlp": "torch"})

#: Candidate surrogates of the single-site emulator by name.
SSE_CANDIDATES: Registry[type] = Registry("SSE candidate", {
    "gp": "lsegeo.emulators.surrogates:GPCandidate",
    "rf": "lsegeo.emulators.surrogates:RFCandidate",
}, extras={"gp": "ml", "rf": "ml"})

#: Cross-validation fold schemes by name (:mod:`lsegeo.emulators.skill`).
FOLD_SCHEMES: Registry[Callable[..., Any]] = Registry("CV scheme", {
    "grouped": "lsegeo.emulators.skill:grouped_folds",
    "within_basin": "lsegeo.emulators.skill:within_basin_folds",
})

#: The fold scheme of each emulator kind when none is asked for.
DEFAULT_FOLD_SCHEME: dict[str, str] = {"lse": "grouped", "sse": "within_basin"}


def register_backend(name: str, factory: Callable[..., Any], *, replace: bool = False) -> None:
    """Add an LSE backend under ``name``.

    Parameters
    ----------
    name : str
        The name that ``LargeSampleEmulator(backend=name)`` takes.
    factory : callable
        ``factory(seed=int, n_jobs=int, **options)`` returning a new unfitted backend
        (:class:`~lsegeo.emulators.protocol.Backend`), or a ``"module:attribute"`` text naming one.
    replace : bool
        Replace an entry of the same name instead of raising.

    Raises
    ------
    ValueError
        ``name`` is registered already and ``replace`` is false.
    """
    BACKENDS.add(name, factory, replace=replace)


def make_backend(name: str, *, seed: int, n_jobs: int, **options: Any) -> Any:
    """A new (unfitted) backend of :data:`BACKENDS`.

    Raises
    ------
    lsegeo.errors.UnknownNameError
        ``name`` is not registered (a :class:`KeyError`); the message lists the known backends.
    lsegeo.errors.MissingDependencyError
        The backend's library (xgboost, torch) is not installed.
    """
    return BACKENDS.create(name, seed=seed, n_jobs=n_jobs, **options)


def create_emulator(settings: Any) -> Any:
    """The unfitted emulator that an :class:`~lsegeo.emulators.settings.EmulatorSettings` describes.

    Parameters
    ----------
    settings : EmulatorSettings
        Its ``kind`` chooses the class in :data:`EMULATORS`; the class's ``from_settings``
        takes the rest.

    Returns
    -------
    Emulator
        A :class:`~lsegeo.emulators.lse.LargeSampleEmulator` or
        :class:`~lsegeo.emulators.sse.SingleSiteEmulator` (or a registered kind), not fitted.
    """
    return EMULATORS.get(settings.kind).from_settings(settings)
