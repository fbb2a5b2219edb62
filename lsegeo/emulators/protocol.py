"""The interfaces of the emulate step: :class:`Emulator` and the LSE's :class:`Backend`.

An emulator predicts the scores of (basin, parameter vector) rows::

    em.predict(basin_idx, u) -> (n, n_targets)

with ``basin_idx`` an index into ``em.basins`` and ``u`` the parameters in the unit cube of the
ensemble's parameter space (:func:`lsegeo.emulators.features.space_from_store`). The optimiser,
the sensitivity analysis and the calibration loop use nothing else.

A :class:`Backend` is the regression model inside the large-sample emulator: features
``(n, n_params + n_attr)`` to targets ``(n, n_targets)``. Backends are found by name in
:data:`lsegeo.emulators.registry.BACKENDS`.

This module imports numpy only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Emulator", "Backend"]


@runtime_checkable
class Emulator(Protocol):
    """The interface of every lsegeo emulator (large-sample or single-site).

    Attributes
    ----------
    kind : str
        The name of the emulator class in :data:`lsegeo.emulators.registry.EMULATORS`
        (``"lse"`` or ``"sse"``); saved with it, so that :func:`lsegeo.emulators.archive.load`
        knows which class reads it back.
    """

    kind: str

    @property
    def basins(self) -> list[str]:
        """Gauge ids; ``basin_idx`` of :meth:`predict` indexes this list."""

    @property
    def param_names(self) -> list[str]:
        """Parameter names, the columns of ``u``."""

    @property
    def target_names(self) -> list[str]:
        """Objective names, the columns of the predictions."""

    @property
    def skill(self) -> dict[str, Any]:
        """Fit information and cross-validated skill (JSON-serialisable, mutable)."""

    def predict(self, basin_idx: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Predicted scores of rows ``(basin_idx[i], u[i])``.

        Parameters
        ----------
        basin_idx : numpy.ndarray
            ``(n,)`` int indices into :attr:`basins`.
        u : numpy.ndarray
            ``(n, n_params)`` parameters in the unit cube.

        Returns
        -------
        numpy.ndarray
            ``(n, n_targets)`` float64.
        """

    def predict_features(self, attr_rows: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Predicted scores from encoded attribute rows ``(n, n_attr)`` (LSE only)."""

    def save(self, directory: str | Path) -> Path:
        """Write the emulator into ``directory`` (created) and return it."""

    @classmethod
    def load(cls, directory: str | Path, n_jobs: int | None = None) -> Emulator:
        """Read an emulator written by :meth:`save`."""

    def to_bytes(self) -> bytes:
        """The saved directory as one zip archive."""


class Backend(Protocol):
    """A regression model of the large-sample emulator: features -> targets.

    Built by ``factory(seed=int, n_jobs=int, **options)``; ``config()`` returns the options
    that rebuild it (saved as JSON with the emulator).
    """

    name: str

    def fit(self, X: np.ndarray, Y: np.ndarray) -> Backend:
        """Fit on features ``X`` ``(n, n_features)`` and targets ``Y`` ``(n, n_targets)``."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``(n, n_targets)`` float64 predictions of features ``X`` ``(n, n_features)``."""

    def save(self, directory: Path) -> None:
        """Write the fitted model into ``directory`` in its library's own format (no pickle)."""

    def load(self, directory: Path, n_targets: int) -> None:
        """Read what :meth:`save` wrote."""

    def set_threads(self, n_jobs: int) -> None:
        """Threads used by :meth:`predict`."""

    def config(self) -> dict[str, Any]:
        """Options that rebuild this backend (JSON)."""
