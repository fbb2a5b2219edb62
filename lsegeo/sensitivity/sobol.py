"""Variance-based (Sobol') sensitivity of an emulated score to every parameter, per basin.

:func:`sobol_on_emulator` computes the first-order and total indices ``S1`` and ``ST`` of one
target of an emulator (:mod:`lsegeo.emulators`) from one Saltelli sample of the unit cube of the
parameter space (:func:`SALib.sample.sobol.sample`, :func:`SALib.analyze.sobol.analyze`). The
sample is the same for every basin, so the emulator is evaluated for all basins in a few stacked
``predict`` calls; this is what makes screening every basin on the large-sample emulator cheap
(Tang, Wood & Swenson 2025).

Every index is on the unit cube of the parameter space: a parameter on a ``log`` scale is uniform
in its logarithm, as in the designs (:mod:`lsegeo.design`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from lsegeo.conventions import BASIN, PARAM
from lsegeo.sensitivity.settings import SensitivitySettings

__all__ = ["sobol_on_emulator", "unit_problem"]

_DEFAULTS = SensitivitySettings()


def unit_problem(names: Sequence[str]) -> dict:
    """A SALib problem over the unit cube of ``names`` (bounds ``[0, 1]`` each)."""
    return {"num_vars": len(names), "names": list(names), "bounds": [[0.0, 1.0]] * len(names)}


def _salib_seed(seed: int) -> int:
    """SALib's Sobol' analysis treats seed 0 as no seed; shift to keep every seed reproducible."""
    return int(seed) + 1 if int(seed) >= 0 else int(seed)


def _resolve_emulator(predict: Any) -> tuple[Callable, Any]:
    """The predict callable and the emulator object behind it (None when unknown)."""
    if hasattr(predict, "predict") and callable(predict.predict):
        return predict.predict, predict
    if not callable(predict):
        raise TypeError(f"predict must be a callable predict(basin_idx, u) or an emulator with .predict, "
                        f"got {type(predict).__name__}")
    return predict, getattr(predict, "__self__", None)


def _target_column(target: int | str, em: Any) -> int:
    if isinstance(target, (int, np.integer)):
        return int(target)
    for attr in ("targets", "objectives", "target_names"):
        names = getattr(em, attr, None)
        if names is not None and target in list(names):
            return list(names).index(target)
    raise ValueError(f"target {target!r} is a name, but the emulator has no list of targets that holds it; "
                     "pass the column index instead")


def sobol_on_emulator(
    predict: Callable[[np.ndarray, np.ndarray], np.ndarray] | Any,
    basin_idx: Sequence[int] | np.ndarray,
    param_names: Sequence[str] | None = None,
    *,
    basins: Sequence[str] | None = None,
    n_base: int = _DEFAULTS.n_base,
    target: int | str = 0,
    seed: int = 0,
    second_order: bool = False,
    num_resamples: int = _DEFAULTS.num_resamples,
    conf_level: float = _DEFAULTS.conf_level,
    max_rows: int = _DEFAULTS.max_rows,
) -> xr.Dataset:
    """Sobol' indices of an emulated score to every parameter, per basin.

    One Saltelli sample of ``n_base * (D + 2)`` points (``n_base * (2 D + 2)`` with
    ``second_order``) of the unit cube is drawn with :func:`SALib.sample.sobol.sample` (scrambled
    Sobol' sequence, bounds ``[0, 1]`` for every parameter); the same sample serves every basin.
    The rows of all basins are stacked, basin after basin, and evaluated in
    ``ceil(n_basins * n_points / max_rows)`` calls of ``predict``; each basin is then analysed
    with :func:`SALib.analyze.sobol.analyze` (Saltelli 2010 first-order and Jansen total-order
    estimators, bootstrap confidence intervals).

    Parameters
    ----------
    predict : callable or emulator
        ``predict(basin_idx, u) -> (n,)`` or ``(n, n_targets)`` array, with ``basin_idx`` an
        ``(n,)`` integer array and ``u`` an ``(n, D)`` array in the unit cube (the emulators of
        :mod:`lsegeo.emulators`); or an object with such a ``predict`` method (its ``basins`` and
        ``param_names`` then fill in ``basins`` and ``param_names``).
    basin_idx : array-like of int
        The basins to analyse, as the emulator indexes them.
    param_names : sequence of str, optional
        The ``D`` parameters, in the order of the columns of ``u``; by default the emulator's
        ``param_names``.
    basins : sequence of str, optional
        Gauge ids of the basins in ``basin_idx`` (the ``basin`` coordinate); by default
        ``emulator.basins[basin_idx]`` when known, else the indices.
    n_base : int
        Base sample size ``N`` of the Saltelli design, a power of 2.
    target : int or str
        Column of the predictions to analyse (a name when the emulator lists its targets).
    seed : int
        Seed of the scrambled Sobol' sequence and of the bootstrap.
    second_order : bool
        Also compute the second-order indices ``S2`` (doubles the sample).
    num_resamples : int
        Bootstrap resamples of the confidence intervals.
    conf_level : float
        Level of the confidence intervals.
    max_rows : int
        Most rows passed to one ``predict`` call (bounds the memory of a call).

    Returns
    -------
    xarray.Dataset
        Over ``basin`` and ``param``: ``S1``, ``S1_conf``, ``ST``, ``ST_conf`` (half-widths of the
        confidence intervals), ``y_mean`` and ``y_std`` (mean and standard deviation of the
        emulated score over the sample, per basin); ``S2`` and ``S2_conf`` over ``basin``,
        ``param``, ``param_2`` with ``second_order``. Coordinate ``basin_idx``; attributes
        ``lsegeo_n_predict_calls``, ``lsegeo_n_evaluations`` and the settings. A basin whose
        predictions are not all finite, or constant, has NaN indices (with a ``RuntimeWarning``).

    Raises
    ------
    ValueError
        ``n_base`` is not a power of 2, ``max_rows`` is not positive, ``basin_idx`` or the
        parameters are empty, ``basins`` does not match ``basin_idx``, the target is unknown,
        or ``predict`` returns an array of the wrong shape.
    TypeError
        ``predict`` is neither callable nor an emulator with a ``predict`` method.
    """
    fn, em = _resolve_emulator(predict)
    if param_names is None:
        param_names = getattr(em, "param_names", None)
        if param_names is None:
            raise ValueError("param_names must be given when predict is not an emulator with param_names")
    names = [str(p) for p in param_names]
    d = len(names)
    if d < 1:
        raise ValueError("param_names is empty")
    if n_base < 2 or n_base & (n_base - 1):
        raise ValueError(f"n_base must be a power of 2 (Sobol' sequence balance), got {n_base}")
    if max_rows < 1:
        raise ValueError(f"max_rows must be positive, got {max_rows}")
    idx = np.asarray(basin_idx, dtype=np.int64).ravel()
    nb = idx.size
    if nb == 0:
        raise ValueError("basin_idx is empty")
    if basins is None and em is not None and getattr(em, "basins", None) is not None:
        basins = [str(b) for b in np.asarray(em.basins, dtype=object)[idx]]
    if basins is not None and len(basins) != nb:
        raise ValueError(f"basins has {len(basins)} ids for {nb} basin indices")
    col = _target_column(target, em)

    from SALib.analyze import sobol as sobol_analyze
    from SALib.sample import sobol as sobol_sample

    problem = unit_problem(names)
    x = sobol_sample.sample(problem, n_base, calc_second_order=second_order, seed=int(seed))
    ns = x.shape[0]

    # evaluate every basin on the same sample, stacked basin-major, in chunks of max_rows rows
    total = nb * ns
    y = np.empty(total, dtype=np.float64)
    n_calls = 0
    for r0 in range(0, total, max_rows):
        r1 = min(total, r0 + max_rows)
        rows = np.arange(r0, r1)
        out = np.asarray(fn(idx[rows // ns], x[rows % ns]))
        n_calls += 1
        if out.ndim == 2:
            if not -out.shape[1] <= col < out.shape[1]:
                raise ValueError(f"target column {col} is out of range: predict returned {out.shape[1]} targets")
            out = out[:, col]
        if out.shape != (r1 - r0,):
            raise ValueError(f"predict returned shape {out.shape} for {r1 - r0} rows")
        y[r0:r1] = out
    y = y.reshape(nb, ns)

    s1 = np.full((nb, d), np.nan)
    st, s1c, stc = s1.copy(), s1.copy(), s1.copy()
    s2 = np.full((nb, d, d), np.nan) if second_order else None
    s2c = s2.copy() if second_order else None
    bad = 0
    for i in range(nb):
        yi = y[i]
        if not np.all(np.isfinite(yi)) or np.std(yi) == 0:
            bad += 1
            continue
        r = sobol_analyze.analyze(problem, yi, calc_second_order=second_order, num_resamples=num_resamples,
                                  conf_level=conf_level, seed=_salib_seed(seed))
        s1[i], st[i], s1c[i], stc[i] = r["S1"], r["ST"], r["S1_conf"], r["ST_conf"]
        if second_order:
            s2[i], s2c[i] = r["S2"], r["S2_conf"]
    if bad:
        warnings.warn(f"{bad} of {nb} basins have non-finite or constant emulated scores: their indices are NaN",
                      RuntimeWarning, stacklevel=2)
    finite = np.isfinite(y)
    ymean = np.array([yi[f].mean() if f.any() else np.nan for yi, f in zip(y, finite, strict=True)])
    ystd = np.array([yi[f].std() if f.any() else np.nan for yi, f in zip(y, finite, strict=True)])

    bcoord = np.array([str(b) for b in basins], dtype=object) if basins is not None else idx
    dims = (BASIN, PARAM)
    ds = xr.Dataset(
        {
            "S1": (dims, s1, {"long_name": "first-order Sobol' index"}),
            "S1_conf": (dims, s1c, {"long_name": f"half-width of the {conf_level:.0%} bootstrap interval of S1"}),
            "ST": (dims, st, {"long_name": "total-order Sobol' index"}),
            "ST_conf": (dims, stc, {"long_name": f"half-width of the {conf_level:.0%} bootstrap interval of ST"}),
            "y_mean": ("basin", ymean, {"long_name": "mean emulated score over the Saltelli sample"}),
            "y_std": ("basin", ystd, {"long_name": "standard deviation of the emulated score over the sample"}),
        },
        coords={"basin": ("basin", bcoord, {"long_name": "gauge id"}),
                "basin_idx": ("basin", idx, {"long_name": "index of the basin in the emulator"}),
                "param": ("param", np.array(names, dtype=object))},
    )
    if second_order:
        ds = ds.assign_coords(param_2=("param_2", np.array(names, dtype=object)))
        ds["S2"] = (("basin", "param", "param_2"), s2, {"long_name": "second-order Sobol' index (upper triangle)"})
        ds["S2_conf"] = (("basin", "param", "param_2"), s2c,
                         {"long_name": f"half-width of the {conf_level:.0%} bootstrap interval of S2"})
    ds.attrs = {
        "lsegeo_sensitivity_method": "sobol (SALib: Saltelli sample, Saltelli 2010 S1 / Jansen ST estimators)",
        "lsegeo_sensitivity_source": "emulator",
        "lsegeo_target": str(target),
        "lsegeo_n_base": int(n_base),
        "lsegeo_n_evaluations": int(ns),
        "lsegeo_second_order": int(bool(second_order)),
        "lsegeo_seed": int(seed),
        "lsegeo_num_resamples": int(num_resamples),
        "lsegeo_conf_level": float(conf_level),
        "lsegeo_n_predict_calls": int(n_calls),
        "lsegeo_space": "unit cube of the parameter space",
    }
    return ds
