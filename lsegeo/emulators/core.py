"""What the large-sample and the single-site emulator share.

:class:`EmulatorCore` holds the basins, parameters and targets an emulator was fitted on, its
parameter space, evaluation period and skill; it looks basins up by gauge id, writes and reads
the metadata common to every kind, and zips a saved emulator (:meth:`EmulatorCore.to_bytes`).
:func:`check_rows` validates the inputs of ``predict``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lsegeo.design import ParameterSpace
from lsegeo.emulators.archive import read_meta, to_bytes
from lsegeo.errors import UnknownBasinError

__all__ = ["EmulatorCore", "check_rows"]


class EmulatorCore:
    """Base of the emulator classes: fitted-on data, skill, basin lookup, common metadata.

    A subclass sets ``kind`` (its name in :data:`lsegeo.emulators.registry.EMULATORS`), calls
    :meth:`_init_core` in its ``__init__``, :meth:`_fitted_on` when it fits and
    :meth:`_read_core` when it loads, says with :meth:`_is_fitted` whether it has, and writes
    :meth:`_core_meta` into its ``emulator.json``.
    """

    kind = ""
    #: completes "basins [...] ..." in the error for an unknown gauge id
    _unknown_basins = "are not known to the emulator"

    def _init_core(self, seed: int, n_jobs: int) -> None:
        self.seed = int(seed)
        self.n_jobs = max(1, int(n_jobs))
        self._basins: list[str] = []
        self._params: list[str] = []
        self._targets: list[str] = []
        self._senses: list[str] = []
        self._space: Any = None
        self._period = ""
        self._skill: dict[str, Any] = {}

    def _is_fitted(self) -> bool:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not self._is_fitted():
            raise RuntimeError("the emulator is not fitted (call fit) or loaded")

    # -- what it was fitted on ----------------------------------------------------------------
    @property
    def basins(self) -> list[str]:
        """Gauge ids of the basins the emulator knows (``basin_idx`` indexes this list)."""
        return list(self._basins)

    @property
    def param_names(self) -> list[str]:
        """Parameter names, the columns of ``u``."""
        return list(self._params)

    @property
    def target_names(self) -> list[str]:
        """Objective names, the columns of the predictions."""
        return list(self._targets)

    @property
    def target_senses(self) -> list[str]:
        """``"max"`` or ``"min"`` for each target (empty when unknown)."""
        return list(self._senses)

    @property
    def space(self) -> ParameterSpace:
        """The parameter space (:class:`~lsegeo.design.ParameterSpace`) of the unit-cube mapping."""
        self._check_fitted()
        return self._space

    @property
    def skill(self) -> dict[str, Any]:
        """Fit information and cross-validated skill (JSON-serialisable; callers may add to it)."""
        return self._skill

    def basin_index(self, basins: Any) -> np.ndarray:
        """Indices into :attr:`basins` of gauge ids.

        Raises
        ------
        lsegeo.errors.UnknownBasinError
            A gauge id is not one of :attr:`basins`.
        """
        pos = {b: i for i, b in enumerate(self._basins)}
        names = [str(b) for b in np.atleast_1d(basins)]
        unknown = [b for b in names if b not in pos]
        if unknown:
            raise UnknownBasinError(f"basins {unknown[:5]} {self._unknown_basins}")
        return np.array([pos[b] for b in names], dtype=np.int64)

    def _fitted_on(self, ts: Any, basins: list[str]) -> None:
        """Record the basins, parameters, targets, space and period of a training set."""
        self._basins = [str(b) for b in basins]
        self._params = list(ts.param_names)
        self._targets = list(ts.target_names)
        self._senses = list(ts.target_senses)
        self._space = ts.space
        self._period = ts.period

    # -- saving -------------------------------------------------------------------------------
    def _core_meta(self) -> dict[str, Any]:
        """The metadata every kind saves in ``emulator.json``."""
        return {"kind": self.kind, "seed": self.seed, "n_jobs": self.n_jobs, "basins": self._basins,
                "param_names": self._params, "target_names": self._targets, "target_senses": self._senses,
                "period": self._period, "space": self._space.to_dict(), "skill": self._skill}

    @classmethod
    def _read_own_meta(cls, directory: str | Path) -> dict[str, Any]:
        """``emulator.json`` of ``directory``, checked to be of this class's kind."""
        meta = read_meta(directory)
        if meta["kind"] != cls.kind:
            raise ValueError(f"{directory} holds a {meta['kind']!r} emulator, not {cls.kind!r}")
        return meta

    def _read_core(self, meta: dict[str, Any]) -> None:
        """Set what :meth:`_core_meta` saved."""
        self._basins = [str(b) for b in meta["basins"]]
        self._params = list(meta["param_names"])
        self._targets = list(meta["target_names"])
        self._senses = list(meta.get("target_senses", []))
        self._period = meta.get("period", "")
        self._space = ParameterSpace.from_dict(meta["space"])
        self._skill = dict(meta.get("skill", {}))

    def save(self, directory: str | Path) -> Path:
        """Write the emulator into ``directory`` (created) and return it.

        Each emulator kind (LSE, SSE) implements this in its own native formats; the shared core
        does not, and raises.

        Raises
        ------
        NotImplementedError
            Always, on the core itself.
        """
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """The saved directory as a zip archive (:func:`lsegeo.emulators.archive.load_bytes` reads it)."""
        return to_bytes(self)  # type: ignore[arg-type]

    # -- printing -----------------------------------------------------------------------------
    def _repr_head(self) -> str:
        return ""

    def __repr__(self) -> str:
        state = (f"{len(self._basins)} basins, {len(self._params)} parameters, targets {self._targets}"
                 if self._is_fitted() else "not fitted")
        return f"{type(self).__name__}({self._repr_head()}, {state})"

    def describe(self) -> str:
        """Fit information and skill, printable."""
        from lsegeo.emulators.skill import format_skill

        return f"{self!r}\n{format_skill(self._skill)}"


def check_rows(basin_idx: Any, u: Any, n_basins: int, n_params: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate the inputs of ``predict``.

    Parameters
    ----------
    basin_idx : array-like of int
        ``(n,)`` indices into the emulator's basins, or one index for every row.
    u : array-like
        ``(n, n_params)`` unit-cube parameters, or one row ``(n_params,)``.
    n_basins, n_params : int
        The emulator's basins and parameters.

    Returns
    -------
    basin_idx : numpy.ndarray
        ``(n,)`` int64.
    u : numpy.ndarray
        ``(n, n_params)`` float64.

    Raises
    ------
    ValueError
        Shapes do not match.
    TypeError
        ``basin_idx`` is not integer.
    IndexError
        An index is outside ``[0, n_basins)``.
    """
    u = np.asarray(u, dtype=np.float64)
    if u.ndim == 1:
        u = u[None, :]
    if u.ndim != 2 or u.shape[1] != n_params:
        raise ValueError(f"u must be (n, {n_params}) parameters in the unit cube, got shape {u.shape}")
    b = np.asarray(basin_idx)
    if b.ndim == 0:
        b = np.full(len(u), int(b))
    if b.shape != (len(u),):
        raise ValueError(f"basin_idx must be ({len(u)},) like the rows of u, got shape {b.shape}")
    if b.size and not np.issubdtype(b.dtype, np.integer):
        raise TypeError(f"basin_idx must be integers (indices into .basins), got dtype {b.dtype}")
    b = b.astype(np.int64, copy=False)
    if b.size and (b.min() < 0 or b.max() >= n_basins):
        raise IndexError(f"basin_idx must lie in [0, {n_basins}), got values from {b.min()} to {b.max()}")
    return b, u
