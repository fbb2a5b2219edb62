r"""Analytic emulators: the emulator interface with a score that is a known function of the inputs.

:class:`QuadraticBowl` predicts, for basin ``b`` with attribute row ``a_b`` and unit-cube
parameters ``u``,

.. math::

    y(b, u) = y_{max} - \sum_j w_j (u_j - c_j(a_b))^2, \qquad
    c(a) = c_{lo} + (c_{hi} - c_{lo}) \sigma(W^T z(a)),

a bowl whose optimum ``c(a_b)`` (in the unit cube, ``y = y_max`` there) depends on the basin's
attributes through a fixed random linear map ``W`` of the standardised attributes ``z`` and the
logistic function ``sigma``. The optimiser's result, the regionalization of an optimum to an
unseen basin (:meth:`QuadraticBowl.predict_features`) and the Sobol' indices of the score
(:meth:`QuadraticBowl.sobol_indices`, closed form) are therefore all known exactly.

It has what the optimiser (:func:`lsegeo.optimise.proposals.propose`), the sensitivity analysis
(:func:`lsegeo.sensitivity.sobol.sobol_on_emulator`) and the calibration use of an emulator:
``basins``, ``param_names``, ``target_names``, ``target_senses``, ``skill``, ``predict``,
``predict_features``, ``save`` / ``load`` and ``to_bytes``, with :func:`load_bytes` as its
module-level loader (importable on dask workers).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["QuadraticBowl", "load_bytes", "bowl_variance_terms"]

_META = "analytic.json"
_ARRAYS = "analytic.npz"


def bowl_variance_terms(centre: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Variance of each term ``w_j (u_j - c_j)^2`` for ``u_j ~ U(0, 1)``.

    With ``m2 = E[(u - c)^2] = ((1 - c)^3 + c^3) / 3`` and ``m4 = E[(u - c)^4] = ((1 - c)^5 + c^5) / 5``
    the variance is ``w^2 (m4 - m2^2)``.

    Parameters
    ----------
    centre : numpy.ndarray
        ``(..., D)`` centres in the unit cube.
    weights : numpy.ndarray
        ``(D,)`` weights.

    Returns
    -------
    numpy.ndarray
        ``(..., D)`` variances.
    """
    c = np.asarray(centre, dtype=np.float64)
    m2 = ((1.0 - c) ** 3 + c ** 3) / 3.0
    m4 = ((1.0 - c) ** 5 + c ** 5) / 5.0
    return np.asarray(weights, dtype=np.float64) ** 2 * (m4 - m2 ** 2)


class QuadraticBowl:
    """Per-basin quadratic bowls whose optima depend on the basins' attributes.

    Parameters
    ----------
    attributes : numpy.ndarray
        ``(n_basins, n_attributes)`` attribute rows (e.g. ``TrainingSet.attributes``).
    param_names : sequence of str
        The ``D`` parameters (columns of ``u``).
    basins : sequence of str, optional
        Gauge ids; default ``"0"``, ``"1"``, ...
    weights : array-like, optional
        ``(D,)`` positive weights ``w``; default ``1, 2, ..., D`` scaled to sum to ``D``, so the
        parameters differ in importance.
    peak : float
        ``y_max``, the score at every basin's optimum.
    centre_range : (float, float)
        ``(c_lo, c_hi)``: the optima lie inside this part of the unit cube.
    seed : int
        Seed of the linear map ``W`` from attributes to optima.
    target : str
        Name of the single target (its sense is ``"max"``).
    """

    kind = "analytic"

    def __init__(self, attributes: np.ndarray, param_names: Sequence[str], *, basins: Sequence[str] | None = None,
                 weights: Sequence[float] | None = None, peak: float = 1.0,
                 centre_range: tuple[float, float] = (0.2, 0.8), seed: int = 0, target: str = "nkgeprime") -> None:
        a = np.atleast_2d(np.asarray(attributes, dtype=np.float64))
        d = len(param_names)
        self._attributes = a
        self._params = [str(p) for p in param_names]
        self._basins = [str(b) for b in (basins if basins is not None else range(len(a)))]
        if len(self._basins) != len(a):
            raise ValueError(f"{len(self._basins)} basins for {len(a)} attribute rows")
        w = np.arange(1.0, d + 1.0) if weights is None else np.asarray(weights, dtype=np.float64)
        self.weights = w * (d / w.sum()) if weights is None else w
        if self.weights.shape != (d,) or (self.weights <= 0).any():
            raise ValueError(f"weights must be {d} positive numbers, got {self.weights}")
        self.peak = float(peak)
        self.centre_range = (float(centre_range[0]), float(centre_range[1]))
        self.seed = int(seed)
        self._target = str(target)
        self._mean = a.mean(axis=0)
        sd = a.std(axis=0)
        self._scale = np.where(sd > 0, sd, 1.0)
        self._map = np.random.default_rng(seed).normal(0.0, 1.0 / np.sqrt(max(a.shape[1], 1)), (a.shape[1], d))
        self.skill: dict[str, Any] = {"kind": "analytic", "note": "exact: no fitting"}

    # -- the emulator interface -------------------------------------------------------------
    @property
    def basins(self) -> list[str]:
        """Gauge ids; ``basin_idx`` of :meth:`predict` indexes this list."""
        return list(self._basins)

    @property
    def param_names(self) -> list[str]:
        """Parameter names, the columns of ``u``."""
        return list(self._params)

    @property
    def target_names(self) -> list[str]:
        """The one target."""
        return [self._target]

    @property
    def target_senses(self) -> list[str]:
        """``["max"]``: the score is to be maximised."""
        return ["max"]

    def centres_of(self, attr_rows: np.ndarray) -> np.ndarray:
        """Optima ``c(a)`` ``(n, D)`` in the unit cube of attribute rows ``(n, n_attributes)``."""
        z = (np.atleast_2d(np.asarray(attr_rows, dtype=np.float64)) - self._mean) / self._scale
        lo, hi = self.centre_range
        return lo + (hi - lo) / (1.0 + np.exp(-(z @ self._map)))

    @property
    def centres(self) -> np.ndarray:
        """Every basin's optimum, ``(n_basins, D)``."""
        return self.centres_of(self._attributes)

    def predict_features(self, attr_rows: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Scores ``(n, 1)`` of rows ``(attr_rows[i], u[i])``; works for basins never seen."""
        u = np.atleast_2d(np.asarray(u, dtype=np.float64))
        if u.shape[1] != len(self._params):
            raise ValueError(f"u must be (n, {len(self._params)}), got {u.shape}")
        c = self.centres_of(attr_rows)
        return (self.peak - ((u - c) ** 2 * self.weights).sum(axis=1))[:, None]

    def predict(self, basin_idx: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Scores ``(n, 1)`` of rows ``(basin_idx[i], u[i])``, ``u`` in the unit cube.

        Raises
        ------
        ValueError
            ``u`` does not have ``D`` columns or ``basin_idx`` not one index per row.
        IndexError
            An index is outside ``0 .. n_basins - 1``.
        """
        from lsegeo.emulators.core import check_rows

        b, u = check_rows(basin_idx, u, len(self._basins), len(self._params))
        return self.predict_features(self._attributes[b], u)

    # -- known answers ----------------------------------------------------------------------
    def optimum(self, basin_idx: int) -> np.ndarray:
        """The maximiser ``(D,)`` of basin ``basin_idx``'s score (its value is :attr:`peak`)."""
        return self.centres[int(basin_idx)]

    def sobol_indices(self, basin_idx: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact first- and total-order Sobol' indices ``(S1, ST)`` of basin ``basin_idx``'s score.

        The score is a sum of one-parameter terms, so ``S1 = ST`` and each is the share of the
        variance of its term (:func:`bowl_variance_terms`) in their sum (Sobol' 1993).
        """
        v = bowl_variance_terms(self.optimum(basin_idx), self.weights)
        s = v / v.sum()
        return s, s.copy()

    # -- saving -------------------------------------------------------------------------------
    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {"kind": self.kind, "param_names": self._params, "basins": self._basins, "peak": self.peak,
                "centre_range": list(self.centre_range), "seed": self.seed, "target": self._target}
        return meta, {"attributes": self._attributes, "weights": self.weights}

    @classmethod
    def _from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> QuadraticBowl:
        return cls(arrays["attributes"], meta["param_names"], basins=meta["basins"], weights=arrays["weights"],
                   peak=meta["peak"], centre_range=tuple(meta["centre_range"]), seed=meta["seed"],
                   target=meta["target"])

    def save(self, directory: str | Path) -> Path:
        """Write the emulator into ``directory`` (JSON and ``.npz``, nothing pickled)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta, arrays = self._state()
        (directory / _META).write_text(json.dumps(meta))
        np.savez(directory / _ARRAYS, **arrays)
        return directory

    @classmethod
    def load(cls, directory: str | Path, n_jobs: int | None = None) -> QuadraticBowl:
        """Read an emulator written by :meth:`save` (``n_jobs`` is accepted and ignored)."""
        directory = Path(directory)
        with np.load(directory / _ARRAYS, allow_pickle=False) as z:
            arrays = {k: np.array(z[k]) for k in z.files}
        return cls._from_state(json.loads((directory / _META).read_text()), arrays)

    def to_bytes(self) -> bytes:
        """The emulator as one ``.npz`` blob, read back by :func:`load_bytes`."""
        meta, arrays = self._state()
        buf = io.BytesIO()
        np.savez(buf, meta=np.array(json.dumps(meta)), **arrays)
        return buf.getvalue()


def load_bytes(blob: bytes, n_jobs: int | None = 1) -> QuadraticBowl:
    """Read a :class:`QuadraticBowl` from :meth:`QuadraticBowl.to_bytes` (the loader for dask workers)."""
    with np.load(io.BytesIO(bytes(blob)), allow_pickle=False) as z:
        arrays = {k: np.array(z[k]) for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    return QuadraticBowl._from_state(meta, arrays)
