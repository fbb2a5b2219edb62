"""Parameter screening: global sensitivity of the score to each parameter, per basin.

As the study did before calibrating (Tang, Wood & Swenson 2025), the sensitivity of a basin's
score to each parameter is computed cheaply on the fitted large-sample emulator, checked against
the iteration-0 ensemble, aggregated over clusters of basins, and turned into a selection of the
parameters to calibrate.

* :func:`sobol_on_emulator`: variance-based (Sobol') first-order and total indices, ``S1`` and
  ``ST``, per basin, from one Saltelli sample of the unit cube of the parameter space
  (:func:`SALib.sample.sobol.sample`, :func:`SALib.analyze.sobol.analyze`). The sample is the same
  for every basin, so the emulator is evaluated for all basins in a few stacked ``predict`` calls.
* :func:`sensitivity_from_ensemble`: first-order indices estimated directly from the ensemble's
  members (a given-data estimate: no model, any sample such as the Latin hypercube of iteration 0),
  with RBD-FAST (:func:`SALib.analyze.rbd_fast.analyze`) or a binned conditional-variance
  estimator; :func:`compare_indices` compares them with the emulator's.
* :func:`read_clusters`, :func:`aggregate_by_cluster`: the 15 flood-generation clusters of the
  CAMELS basins (Brunner et al. 2020) and the mean normalised ``S1`` per cluster.
* :func:`select_parameters`: the smallest set of parameters that carries a share (85 % in the
  study, per cluster) of the summed first-order sensitivity.
* :func:`write_sensitivity`, :func:`read_sensitivity`, :func:`plot_sensitivity_map`,
  :func:`plot_cluster_heatmap`: the product (zarr, with provenance) and its figures.
* :func:`sensitivity_job` (what ``lsegeo sensitivity CONFIG`` runs): the indices of every basin
  on the LSE of a configuration's calibration (:func:`calibration_emulator`), written as a
  product, with the optional figures (:func:`sensitivity_figures`), check against the ensemble
  (:func:`check_against_ensemble`, :func:`format_agreement`) and selection per cluster
  (:func:`format_selection`).

Every index is on the unit cube of the parameter space: a parameter on a ``log`` scale is uniform
in its logarithm, as in the designs (:mod:`lsegeo.design`).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from lsegeo.errors import ConfigError, InputFormatError, StoreError, UnknownBasinError
from lsegeo.plots.summary import save_figure

__all__ = [
    "CLUSTERS_FILE",
    "LSEChoice",
    "SensitivityJob",
    "aggregate_by_cluster",
    "calibration_emulator",
    "check_against_ensemble",
    "compare_indices",
    "first_order_given_data",
    "format_agreement",
    "format_selection",
    "normalise_indices",
    "plot_cluster_heatmap",
    "plot_sensitivity_map",
    "read_clusters",
    "read_sensitivity",
    "select_parameters",
    "sensitivity_figures",
    "sensitivity_from_ensemble",
    "sensitivity_job",
    "sobol_on_emulator",
    "write_sensitivity",
]

#: the cluster table, relative to the lsegeo data directory
CLUSTERS_FILE = "ctsm_camels/flood_clusters_brunner2020.txt"

#: zarr group of a sensitivity store
_GROUP = "sensitivity"

_REFERENCES = ("Tang, Wood & Swenson (2025) doi:10.1029/2024WR039525; "
               "Saltelli et al. (2010) doi:10.1016/j.cpc.2009.09.018; "
               "Tissot & Prieur (2012) doi:10.1016/j.ress.2012.06.010; "
               "Herman & Usher (2017) SALib doi:10.21105/joss.00097; "
               "Brunner et al. (2020) doi:10.1029/2020GL088000")


# --------------------------------------------------------------------------------------------
# Sobol' indices on an emulator
# --------------------------------------------------------------------------------------------

def _unit_problem(names: Sequence[str]) -> dict:
    """A SALib problem over the unit cube."""
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
    n_base: int = 512,
    target: int | str = 0,
    seed: int = 0,
    second_order: bool = False,
    num_resamples: int = 100,
    conf_level: float = 0.95,
    max_rows: int = 2 ** 20,
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
        predictions are not all finite, or constant, has NaN indices.
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

    problem = _unit_problem(names)
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
    ymean = np.array([yi[f].mean() if f.any() else np.nan for yi, f in zip(y, finite)])
    ystd = np.array([yi[f].std() if f.any() else np.nan for yi, f in zip(y, finite)])

    bcoord = np.array([str(b) for b in basins], dtype=object) if basins is not None else idx
    dims = ("basin", "param")
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


# --------------------------------------------------------------------------------------------
# First-order indices from a given sample (the ensemble)
# --------------------------------------------------------------------------------------------

def _binned_s1(x: np.ndarray, y: np.ndarray, n_bins: int) -> float:
    """Bias-corrected correlation ratio of ``y`` on equal-count bins of ``x``."""
    n = y.size
    order = np.argsort(x, kind="stable")
    g = np.empty(n, dtype=np.int64)
    g[order] = np.arange(n) * n_bins // n
    cnt = np.bincount(g, minlength=n_bins)
    means = np.bincount(g, y, minlength=n_bins) / cnt
    ym = y.mean()
    sst = float(((y - ym) ** 2).sum())
    ssb = float((cnt * (means - ym) ** 2).sum())
    msw = (sst - ssb) / (n - n_bins)
    return (ssb - (n_bins - 1) * msw) / sst


def first_order_given_data(
    u: np.ndarray,
    y: np.ndarray,
    param_names: Sequence[str] | None = None,
    *,
    method: Literal["rbd_fast", "binned"] = "rbd_fast",
    M: int = 6,
    n_bins: int | None = None,
    num_resamples: int = 30,
    conf_level: float = 0.95,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """First-order sensitivity indices estimated from a given sample, without a model.

    Parameters
    ----------
    u : numpy.ndarray
        ``(n, D)`` inputs (any sample: Latin hypercube, random, ...). Both estimators use only
        the ranks of each column, so the scale of the inputs does not matter.
    y : numpy.ndarray
        ``(n,)`` outputs. Rows with a non-finite output are dropped.
    param_names : sequence of str, optional
        Names of the ``D`` inputs (for SALib).
    method : {"rbd_fast", "binned"}
        ``"rbd_fast"``: :func:`SALib.analyze.rbd_fast.analyze` (random balance design FAST of
        Plischke 2010 on the given data, bias-corrected after Tissot & Prieur 2012), with ``M``
        harmonics and a bootstrap interval. ``"binned"``: the correlation ratio
        ``Var(E[Y | X_i]) / Var(Y)`` on ``n_bins`` equal-count bins of ``X_i``, bias-corrected as
        ``(SSB - (B - 1) MSW) / SST`` (epsilon-squared of a one-way ANOVA); no interval.
    M : int
        Harmonics of RBD-FAST. 6 suits samples of 100-1000 members: it has a lower error than
        SALib's default 10 on 200-member samples of the Ishigami function.
    n_bins : int, optional
        Bins of the binned estimator; default ``round(sqrt(n))``, at least 4.
    num_resamples : int
        Bootstrap resamples of the RBD-FAST interval; 0 skips it (NaN intervals, faster).
    conf_level : float
        Level of the interval.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    S1, S1_conf : numpy.ndarray
        ``(D,)`` each. An input that does not vary, or too few finite rows (fewer than
        ``max(2 M + 2, 8)``), gives NaN.
    """
    u = np.asarray(u, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    if u.ndim != 2 or u.shape[0] != y.size:
        raise ValueError(f"u must be (n, D) and y (n,), got {u.shape} and {y.shape}")
    d = u.shape[1]
    names = [str(p) for p in param_names] if param_names is not None else [f"x{i}" for i in range(d)]
    keep = np.isfinite(y) & np.all(np.isfinite(u), axis=1)
    u, y = u[keep], y[keep]
    n = y.size
    s1 = np.full(d, np.nan)
    conf = np.full(d, np.nan)
    if n < max(2 * M + 2, 8) or np.std(y) == 0:
        return s1, conf
    varied = np.ptp(u, axis=0) > 0
    if method == "rbd_fast":
        from SALib.analyze import rbd_fast

        cols = np.flatnonzero(varied)
        if cols.size:
            problem = _unit_problem([names[j] for j in cols])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                r = rbd_fast.analyze(problem, u[:, cols], y, M=M, num_resamples=max(2, num_resamples),
                                     conf_level=conf_level, seed=int(seed))
            s1[cols] = r["S1"]
            if num_resamples >= 2:
                conf[cols] = r["S1_conf"]
    elif method == "binned":
        b = n_bins if n_bins is not None else max(4, round(math.sqrt(n)))
        if not 2 <= b < n:
            raise ValueError(f"n_bins must be in [2, n) = [2, {n}), got {b}")
        for j in np.flatnonzero(varied):
            s1[j] = _binned_s1(u[:, j], y, b)
    else:
        raise ValueError(f"method must be 'rbd_fast' or 'binned', got {method!r}")
    return s1, conf


def _open_ensemble(ensemble_store: str | Path | xr.Dataset) -> xr.Dataset:
    if isinstance(ensemble_store, xr.Dataset):
        return ensemble_store
    from lsegeo.io.stores import open_store

    return open_store(ensemble_store, "ensemble")


def _unit_from_store(ens: xr.Dataset, params: np.ndarray, names: list[str]) -> np.ndarray:
    """Map parameter values to the unit cube with the space stored beside them (when it is)."""
    if not all(v in ens for v in ("param_lower", "param_upper")):
        return params
    sub = ens[["param_lower", "param_upper"] + (["param_scale"] if "param_scale" in ens else [])].sel(param=names)
    lo, hi = sub["param_lower"].values.astype(float), sub["param_upper"].values.astype(float)
    scale = [str(s) for s in sub["param_scale"].values] if "param_scale" in sub else ["linear"] * len(names)
    u = np.empty_like(params)
    for j, sc in enumerate(scale):
        if sc == "log":
            u[..., j] = (np.log(params[..., j]) - np.log(lo[j])) / (np.log(hi[j]) - np.log(lo[j]))
        else:
            u[..., j] = (params[..., j] - lo[j]) / (hi[j] - lo[j])
    return u


def sensitivity_from_ensemble(
    ensemble_store: str | Path | xr.Dataset,
    basins: Sequence[str] | None = None,
    param_names: Sequence[str] | None = None,
    objective: str = "nkgeprime",
    period: str = "calibration",
    *,
    method: Literal["rbd_fast", "binned"] = "rbd_fast",
    iteration: int | None = 0,
    M: int = 6,
    n_bins: int | None = None,
    num_resamples: int = 30,
    conf_level: float = 0.95,
    seed: int = 0,
) -> xr.Dataset:
    """First-order indices of a score, estimated directly from an ensemble's members.

    An independent check of :func:`sobol_on_emulator`: no emulator, only the simulated members of
    each basin (the Latin hypercube of iteration 0), through :func:`first_order_given_data`.

    Parameters
    ----------
    ensemble_store : path-like or xarray.Dataset
        An ensemble store (:mod:`lsegeo.ensembles.store`), or its ``ensemble`` group already open (any
        Dataset with ``params(basin, member, param)`` and ``scores(basin, member, period,
        objective)``; ``status``, ``iteration`` and ``param_lower``/``param_upper``/``param_scale``
        are used when present).
    basins : sequence of str, optional
        Gauge ids; default every basin of the store.
    param_names : sequence of str, optional
        Parameters; default every parameter of the store, in its order.
    objective, period : str
        The score analysed.
    method : {"rbd_fast", "binned"}
        Estimator, see :func:`first_order_given_data` (default RBD-FAST with ``M`` harmonics).
    iteration : int or None
        Use only the members of this iteration (0: the design of iteration 0; later iterations are
        optimiser proposals, not a space-filling sample); None uses every member.
    M, n_bins, num_resamples, conf_level, seed
        Passed to :func:`first_order_given_data` (the seed of basin ``i`` is ``seed + i``).

    Notes
    -----
    On the 535 x 200 iteration-0 HBV ensemble, RBD-FAST with 30 bootstrap resamples takes about
    23 s on one core (the bootstrap dominates; ``num_resamples=0`` skips it) and the binned
    estimator under 1 s. The two estimators agree closely there (median Spearman correlation of
    the parameter rankings 0.82; the same most sensitive parameter in 91 % of the basins).

    Returns
    -------
    xarray.Dataset
        ``S1(basin, param)``, ``S1_conf(basin, param)`` and ``n_members(basin)``, the members used
        (done, with a finite score). A parameter that the ensemble did not vary has NaN.
    """
    ens = _open_ensemble(ensemble_store)
    for v in ("params", "scores"):
        if v not in ens:
            raise ValueError(f"the ensemble has no variable {v!r}")
    store_basins = [str(b) for b in ens["basin"].values]
    if basins is None:
        basins = store_basins
    basins = [str(b) for b in basins]
    missing = sorted(set(basins) - set(store_basins))
    if missing:
        raise UnknownBasinError(f"basins {missing[:5]}{' ...' if len(missing) > 5 else ''} are not in the ensemble "
                                f"({len(missing)} of {len(basins)})")
    store_params = [str(p) for p in ens["param"].values]
    names = store_params if param_names is None else [str(p) for p in param_names]
    unknown = sorted(set(names) - set(store_params))
    if unknown:
        raise ValueError(f"parameters {unknown} are not in the ensemble; it has {', '.join(store_params)}")
    objectives = [str(o) for o in ens["objective"].values]
    periods = [str(p) for p in ens["period"].values]
    if objective not in objectives:
        raise ValueError(f"objective {objective!r} is not in the ensemble; it has {', '.join(objectives)}")
    if period not in periods:
        raise ValueError(f"period {period!r} is not in the ensemble; it has {', '.join(periods)}")

    bpos = [store_basins.index(b) for b in basins]
    ppos = [store_params.index(p) for p in names]
    members = np.arange(ens.sizes["member"])
    if iteration is not None and "iteration" in ens:
        members = members[np.asarray(ens["iteration"].values) == iteration]
        if members.size == 0:
            raise ValueError(f"the ensemble has no member of iteration {iteration}")
    params = ens["params"].isel(basin=bpos, member=members, param=ppos).values.astype(np.float64)
    y = ens["scores"].isel(basin=bpos, member=members, period=periods.index(period),
                           objective=objectives.index(objective)).values.astype(np.float64)
    if "status" in ens:
        from lsegeo.ensembles.store import DONE

        done = ens["status"].isel(basin=bpos, member=members).values == DONE
        y = np.where(done, y, np.nan)
    u = _unit_from_store(ens, params, names)

    nb, d = len(basins), len(names)
    s1 = np.full((nb, d), np.nan)
    conf = np.full((nb, d), np.nan)
    n_used = np.isfinite(y).sum(axis=1)
    for i in range(nb):
        s1[i], conf[i] = first_order_given_data(u[i], y[i], names, method=method, M=M, n_bins=n_bins,
                                                num_resamples=num_resamples, conf_level=conf_level,
                                                seed=seed + i)
    label = (f"rbd_fast (SALib, M={M}, Tissot & Prieur bias correction)" if method == "rbd_fast" else
             "binned correlation ratio Var(E[Y|X_i])/Var(Y), equal-count bins, epsilon-squared bias correction")
    return xr.Dataset(
        {"S1": (("basin", "param"), s1, {"long_name": "first-order index estimated from the ensemble members"}),
         "S1_conf": (("basin", "param"), conf,
                     {"long_name": f"half-width of the {conf_level:.0%} bootstrap interval of S1"}),
         "n_members": ("basin", n_used.astype(np.int64), {"long_name": "members used (done, finite score)"})},
        coords={"basin": ("basin", np.array(basins, dtype=object), {"long_name": "gauge id"}),
                "param": ("param", np.array(names, dtype=object))},
        attrs={"lsegeo_sensitivity_method": label, "lsegeo_sensitivity_source": "ensemble",
               "lsegeo_objective": objective, "lsegeo_period": period,
               "lsegeo_iteration": -1 if iteration is None else int(iteration), "lsegeo_seed": int(seed)},
    )


def _as_s1(S: xr.Dataset | xr.DataArray, var: str = "S1") -> xr.DataArray:
    if isinstance(S, xr.Dataset):
        if var not in S:
            raise ValueError(f"the dataset has no variable {var!r}")
        S = S[var]
    if not isinstance(S, xr.DataArray):
        raise TypeError(f"expected an xarray Dataset or DataArray, got {type(S).__name__}")
    if "param" not in S.dims:
        raise ValueError(f"the indices need a 'param' dimension, got dims {S.dims}")
    return S


def _str_coord(da: xr.DataArray, dim: str) -> xr.DataArray:
    """The same array with its ``dim`` coordinate as Python strings (zarr stores give StringDType)."""
    return da.assign_coords({dim: np.array([str(v) for v in da[dim].values], dtype=object)})


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return float("nan")
    return float(spearmanr(a[ok], b[ok]).statistic)


def _top(v: np.ndarray, k: int) -> set[int]:
    v = np.where(np.isfinite(v), v, -np.inf)
    return set(np.argsort(-v, kind="stable")[:k].tolist())


def compare_indices(emulator_S1: xr.Dataset | xr.DataArray, ensemble_S1: xr.Dataset | xr.DataArray,
                    top: int = 3) -> xr.Dataset:
    """Agreement, per basin, of two sets of first-order indices (emulator vs ensemble).

    Parameters
    ----------
    emulator_S1, ensemble_S1 : xarray.Dataset or xarray.DataArray
        ``S1(basin, param)`` (a Dataset's ``S1``), e.g. from :func:`sobol_on_emulator` and
        :func:`sensitivity_from_ensemble`. They are compared on their common basins and
        parameters.
    top : int
        Size of the sets of top parameters compared.

    Returns
    -------
    xarray.Dataset
        Over ``basin``: ``spearman`` (rank correlation of the parameters' indices, over the
        parameters finite in both), ``top_overlap`` (share of the ``top`` parameters of the
        emulator that are also among the ensemble's ``top``), ``top1_agree`` (the most sensitive
        parameter is the same), ``top_emulator`` and ``top_ensemble`` (the top parameters,
        comma-separated). Attributes hold the medians over basins.
    """
    a = _str_coord(_str_coord(_as_s1(emulator_S1), "param"), "basin")
    b = _str_coord(_str_coord(_as_s1(ensemble_S1), "param"), "basin")
    params = [p for p in a["param"].values if p in set(b["param"].values)]
    basins = [x for x in a["basin"].values if x in set(b["basin"].values)]
    if not params or not basins:
        raise ValueError("the two sets of indices share no basin or no parameter")
    k = max(1, min(int(top), len(params)))
    va = a.sel(basin=basins, param=params).transpose("basin", "param").values
    vb = b.sel(basin=basins, param=params).transpose("basin", "param").values
    rho = np.array([_spearman(x, y) for x, y in zip(va, vb)])
    ta = [_top(x, k) for x in va]
    tb = [_top(y, k) for y in vb]
    overlap = np.array([len(x & y) / k for x, y in zip(ta, tb)])
    top1 = np.array([_top(x, 1) == _top(y, 1) for x, y in zip(va, vb)])
    valid = np.isfinite(va).any(axis=1) & np.isfinite(vb).any(axis=1)
    overlap = np.where(valid, overlap, np.nan)

    def names_of(v: np.ndarray) -> str:
        order = np.argsort(-np.where(np.isfinite(v), v, -np.inf), kind="stable")[:k]
        return ",".join(params[j] for j in order)

    return xr.Dataset(
        {"spearman": ("basin", rho, {"long_name": "Spearman rank correlation of the parameters' S1"}),
         "top_overlap": ("basin", overlap, {"long_name": f"share of the top {k} parameters in common"}),
         "top1_agree": ("basin", top1 & valid, {"long_name": "same most sensitive parameter"}),
         "top_emulator": ("basin", np.array([names_of(v) for v in va], dtype=object)),
         "top_ensemble": ("basin", np.array([names_of(v) for v in vb], dtype=object))},
        coords={"basin": np.array(basins, dtype=object)},
        attrs={"top": k, "median_spearman": float(np.nanmedian(rho)) if np.isfinite(rho).any() else float("nan"),
               "median_top_overlap": float(np.nanmedian(overlap)) if np.isfinite(overlap).any() else float("nan"),
               "share_top1_agree": float(top1[valid].mean()) if valid.any() else float("nan"),
               "n_params": len(params)},
    )


# --------------------------------------------------------------------------------------------
# Clusters
# --------------------------------------------------------------------------------------------

def read_clusters(data_dir: str | Path | None = None) -> pd.Series:
    """The flood-generation cluster of each CAMELS basin (Brunner et al. 2020).

    Reads ``ctsm_camels/flood_clusters_brunner2020.txt`` of the lsegeo data directory: a header
    line, then ``gauge_id,cluster`` per line.

    Parameters
    ----------
    data_dir : path-like, optional
        The data directory; found as :func:`lsegeo.locations.resolve_data_dir` does by default.

    Returns
    -------
    pandas.Series
        Cluster number (int) indexed by gauge id (8-character strings with leading zeros),
        named ``cluster``, index named ``basin``.

    Raises
    ------
    DataNotFoundError
        When the data directory or the file is absent (names the paths searched / the file).
    InputFormatError
        When the file is malformed (names the file and the line).
    """
    from lsegeo.locations import require_file, resolve_data_dir

    root = resolve_data_dir(data_dir, expect=CLUSTERS_FILE.split("/")[0])
    path = require_file(root / CLUSTERS_FILE, "the flood-cluster table of Brunner et al. (2020)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise InputFormatError(str(path), None, f"not a UTF-8 text file ({e})") from None
    if not lines or not lines[0].strip():
        raise InputFormatError(str(path), 1, "empty file or empty header; expected a header "
                                             "'Camels_IDs,flood_cluster'")
    header = [h.strip() for h in lines[0].split(",")]
    if len(header) != 2 or any(h.lstrip("-").isdigit() for h in header):
        raise InputFormatError(str(path), 1, f"expected a header of two column names "
                                             f"('Camels_IDs,flood_cluster'), got {lines[0]!r}")
    ids: list[str] = []
    cl: list[int] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 2:
            raise InputFormatError(str(path), n, f"expected 2 comma-separated fields (gauge id, cluster), "
                                                 f"got {len(fields)}: {line!r}")
        gid, c = fields
        if not gid.isdigit() or len(gid) > 8:
            raise InputFormatError(str(path), n, f"gauge id must be up to 8 digits, got {gid!r}")
        try:
            c_int = int(c)
        except ValueError:
            raise InputFormatError(str(path), n, f"cluster must be an integer, got {c!r}") from None
        gid = gid.zfill(8)
        if gid in seen:
            raise InputFormatError(str(path), n, f"gauge {gid} is listed twice (first on line {seen[gid]})")
        seen[gid] = n
        ids.append(gid)
        cl.append(c_int)
    if not ids:
        raise InputFormatError(str(path), None, "no data line after the header")
    return pd.Series(np.array(cl, dtype=np.int64), index=pd.Index(ids, name="basin", dtype=object), name="cluster")


def normalise_indices(S1: xr.Dataset | xr.DataArray) -> xr.DataArray:
    """First-order indices clipped at 0 and divided by their sum over parameters.

    Estimates of a non-influential parameter's index scatter around 0; clipping keeps them from
    cancelling real sensitivity.

    Parameters
    ----------
    S1 : xarray.Dataset or xarray.DataArray
        Indices with a ``param`` dimension (a Dataset's ``S1``).

    Returns
    -------
    xarray.DataArray
        ``S1_norm``, summing to 1 over ``param``; NaN where the clipped indices sum to 0 or any
        of them is NaN.
    """
    s = _as_s1(S1).clip(min=0)
    total = s.sum("param", skipna=False)
    return (s / total.where(total > 0)).rename("S1_norm")


def aggregate_by_cluster(S: xr.Dataset | xr.DataArray, clusters: pd.Series, var: str = "S1") -> xr.Dataset:
    """Mean normalised first-order index per cluster of basins and parameter.

    Parameters
    ----------
    S : xarray.Dataset or xarray.DataArray
        Indices over ``basin`` and ``param`` (a Dataset's ``var``).
    clusters : pandas.Series
        Cluster of each gauge id (:func:`read_clusters`).
    var : str
        The variable of a Dataset to aggregate.

    Returns
    -------
    xarray.Dataset
        Over ``cluster`` and ``param``: ``S1_norm`` (mean over the cluster's basins of the indices
        normalised by :func:`normalise_indices`), ``S1_norm_std``, and ``n_basins(cluster)`` (basins
        with finite indices). Basins without a cluster are left out (with a warning).
    """
    s = _str_coord(_str_coord(normalise_indices(_as_s1(S, var)), "basin"), "param").transpose("basin", "param")
    cl = pd.Series(clusters)
    cl.index = [str(i).zfill(8) for i in cl.index]
    basins = list(s["basin"].values)
    have = [b for b in basins if b in cl.index]
    if len(have) < len(basins):
        lost = [b for b in basins if b not in cl.index]
        warnings.warn(f"{len(lost)} basins have no cluster and are left out: {lost[:5]}", RuntimeWarning,
                      stacklevel=2)
    if not have:
        raise ValueError("no basin of the indices has a cluster")
    s = s.sel(basin=have)
    labels = cl.loc[have].to_numpy()
    ids = np.unique(labels)
    vals = s.values
    mean = np.full((ids.size, vals.shape[1]), np.nan)
    std = mean.copy()
    count = np.zeros(ids.size, dtype=np.int64)
    for k, c in enumerate(ids):
        rows = vals[labels == c]
        rows = rows[np.isfinite(rows).all(axis=1)]
        count[k] = rows.shape[0]
        if rows.shape[0]:
            mean[k], std[k] = rows.mean(axis=0), rows.std(axis=0)
    return xr.Dataset(
        {"S1_norm": (("cluster", "param"), mean, {"long_name": "mean normalised first-order index of the cluster"}),
         "S1_norm_std": (("cluster", "param"), std, {"long_name": "standard deviation over the cluster's basins"}),
         "n_basins": ("cluster", count, {"long_name": "basins with finite indices"})},
        coords={"cluster": ids, "param": s["param"].values},
        attrs={"lsegeo_aggregated": var},
    )


# --------------------------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------------------------

def _pick(v: np.ndarray, names: list[str], share: float) -> list[str]:
    """Smallest set of names whose clipped, normalised values reach ``share``; in ``names`` order."""
    w = np.clip(np.asarray(v, dtype=np.float64), 0, None)
    total = w.sum()
    if not np.isfinite(total) or total <= 0:
        return list(names)  # no information: screen nothing out
    w = w / total
    order = np.argsort(-w, kind="stable")
    cum = np.cumsum(w[order])
    k = int(np.searchsorted(cum, share * (1 - 1e-12))) + 1
    chosen = set(order[:min(k, len(names))].tolist())
    return [n for j, n in enumerate(names) if j in chosen]


def select_parameters(
    S1: xr.Dataset | xr.DataArray | pd.Series | pd.DataFrame,
    share: float = 0.85,
    by: Literal["basin", "cluster", "all"] = "cluster",
    clusters: pd.Series | None = None,
    *,
    keyed_by: Literal["basin", "cluster"] = "basin",
) -> dict[Any, list[str]] | list[str]:
    """The smallest set of parameters carrying ``share`` of the summed first-order sensitivity.

    Indices are clipped at 0 and normalised to sum to 1 per basin (:func:`normalise_indices`);
    the parameters are taken in decreasing order of (mean) normalised index until their sum
    reaches ``share``.

    Parameters
    ----------
    S1 : xarray.Dataset, xarray.DataArray, pandas.Series or pandas.DataFrame
        ``S1(basin, param)`` (a Dataset's ``S1``; a DataFrame with basins as rows and parameters as
        columns), or one vector over ``param`` (a 1-D DataArray, or a Series indexed by name).
    share : float
        Share in (0, 1] of the summed sensitivity to reach (0.85 per cluster in the study).
    by : {"basin", "cluster", "all"}
        Select per basin, per cluster (on the cluster's mean normalised indices,
        :func:`aggregate_by_cluster`) or once for all basins (their mean normalised indices). A
        single vector needs ``"all"``.
    clusters : pandas.Series, optional
        Cluster of each gauge id, for ``by="cluster"``; default :func:`read_clusters`.
    keyed_by : {"basin", "cluster"}
        With ``by="cluster"``: key the result by basin (each basin gets its cluster's set; a
        basin without a cluster gets its own per-basin set) or by cluster number.

    Returns
    -------
    dict or list
        ``{basin: [names]}`` (or ``{cluster: [names]}``) for ``"basin"`` and ``"cluster"``,
        ``[names]`` for ``"all"``; names always in the order of the ``param`` coordinate (the
        parameter space's order). A basin or cluster without usable indices (all NaN or not
        positive) keeps every parameter.
    """
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    if by not in ("basin", "cluster", "all"):
        raise ValueError(f"by must be 'basin', 'cluster' or 'all', got {by!r}")
    if isinstance(S1, pd.Series):
        S1 = xr.DataArray(S1.to_numpy(dtype=float), dims=("param",), coords={"param": [str(i) for i in S1.index]})
    elif isinstance(S1, pd.DataFrame):
        S1 = xr.DataArray(S1.to_numpy(dtype=float), dims=("basin", "param"),
                          coords={"basin": [str(i) for i in S1.index], "param": [str(c) for c in S1.columns]})
    da = _str_coord(_as_s1(S1), "param")
    names = list(da["param"].values)
    if da.ndim == 1:
        if by != "all":
            raise ValueError(f"a single vector of indices needs by='all', got by={by!r}")
        return _pick(da.values, names, share)
    if da.ndim != 2 or "basin" not in da.dims:
        raise ValueError(f"expected indices over (basin, param), got dims {da.dims}")
    da = _str_coord(da, "basin").transpose("basin", "param")
    if by == "all":
        norm = normalise_indices(da).values
        ok = np.isfinite(norm).all(axis=1)
        return _pick(norm[ok].mean(axis=0) if ok.any() else np.full(len(names), np.nan), names, share)
    per_basin = {b: _pick(v, names, share) for b, v in zip(da["basin"].values, normalise_indices(da).values)}
    if by == "basin":
        return per_basin
    if clusters is None:
        clusters = read_clusters()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        agg = aggregate_by_cluster(da, clusters)
    per_cluster = {int(c): _pick(v, names, share) for c, v in zip(agg["cluster"].values, agg["S1_norm"].values)}
    if keyed_by == "cluster":
        return per_cluster
    if keyed_by != "basin":
        raise ValueError(f"keyed_by must be 'basin' or 'cluster', got {keyed_by!r}")
    cl = pd.Series(clusters)
    cl.index = [str(i).zfill(8) for i in cl.index]
    return {b: per_cluster[int(cl[b])] if b in cl.index else per_basin[b] for b in per_basin}


# --------------------------------------------------------------------------------------------
# Product and figures
# --------------------------------------------------------------------------------------------

def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_jsonable(x) for x in np.asarray(v, dtype=object).tolist()]
    return json.dumps(v, default=str) if isinstance(v, dict) else str(v)


def _for_zarr(ds: xr.Dataset) -> xr.Dataset:
    """Strings as object arrays, attributes as JSON values."""
    out = ds.copy()
    for name in list(out.variables):
        var = out[name]
        if var.dtype.kind in ("U", "T", "O") or str(var.dtype).startswith("StringDType"):
            vals = np.array([str(x) for x in np.asarray(var.values).ravel()], dtype=object).reshape(var.shape)
            if name in out.coords:
                out = out.assign_coords({name: (var.dims, vals, var.attrs)})
            else:
                out[name] = (var.dims, vals, var.attrs)
    out.attrs = {k: _jsonable(v) for k, v in out.attrs.items()}
    for name in out.variables:
        out[name].attrs = {k: _jsonable(v) for k, v in out[name].attrs.items()}
        out[name].encoding = {}
    return out


def write_sensitivity(
    ds: xr.Dataset,
    path: str | Path,
    *,
    overwrite: bool = False,
    call: str | None = None,
    config: dict | None = None,
    inputs: dict[str, str] | None = None,
    title: str | None = None,
) -> Path:
    """Write a sensitivity Dataset to a zarr v3 store, atomically, with provenance.

    Parameters
    ----------
    ds : xarray.Dataset
        Indices, e.g. from :func:`sobol_on_emulator`, :func:`sensitivity_from_ensemble` or
        :func:`aggregate_by_cluster` (written to group ``sensitivity``).
    path : path-like
        The store; built beside it and renamed into place (:func:`lsegeo.io.stores.atomic_store`).
    overwrite : bool
        Replace an existing store.
    call : str, optional
        The call or command that made the indices (first ``history`` line).
    config : dict, optional
        Settings of the analysis, stored with their sha256; by default the Dataset's ``lsegeo_``
        attributes.
    inputs : dict of str to str, optional
        Inputs (e.g. the emulator's directory, the ensemble store) to their sha256 or id.
    title : str, optional
        ACDD title.

    Returns
    -------
    pathlib.Path
        The store.
    """
    import zarr

    from lsegeo import provenance
    from lsegeo.io.stores import PROV_ATTR, atomic_store, consolidate

    path = Path(path)
    out = _for_zarr(ds)
    settings = {k: v for k, v in out.attrs.items() if k.startswith("lsegeo_")}
    n_b = out.sizes.get("basin", out.sizes.get("cluster", 0))
    attrs = provenance.product_attrs(
        title=title or f"lsegeo parameter sensitivity over {n_b} {'basins' if 'basin' in out.dims else 'clusters'}",
        summary=(f"Global sensitivity indices ({', '.join(v for v in out.data_vars)}) of the score to "
                 f"{out.sizes.get('param', 0)} parameters ({settings.get('lsegeo_sensitivity_method', 'unknown method')})."),
        step="sensitivity", call=call or "lsegeo.sensitivity.sobol.write_sensitivity",
        config=config if config is not None else settings, inputs=inputs, references=_REFERENCES,
        extra={"lsegeo_store_kind": "sensitivity", **settings},
    )
    with atomic_store(path, overwrite=overwrite) as tmp:
        out.attrs = attrs
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*vlen-utf8.*")
            warnings.filterwarnings("ignore", category=FutureWarning)
            out.to_zarr(tmp, group=_GROUP, mode="w", zarr_format=3, consolidated=False)
        root = zarr.open_group(str(tmp), mode="r+")
        root.attrs.update({**attrs, PROV_ATTR: provenance.prov_json(attrs, dict(inputs or {}), str(path))})
        consolidate(tmp)
    return path


def read_sensitivity(path: str | Path) -> xr.Dataset:
    """Open a store written by :func:`write_sensitivity`.

    Parameters
    ----------
    path : path-like
        The store.

    Returns
    -------
    xarray.Dataset
        Its ``sensitivity`` group, lazily (dask-backed), with the provenance attributes.
    """
    from lsegeo.io.stores import open_store

    return open_store(path, _GROUP)


def _basin_coords(attrs_ds: xr.Dataset | str | Path, basins: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude of the basins (NaN when the attributes do not know a basin)."""
    if not isinstance(attrs_ds, xr.Dataset):
        from lsegeo.io.stores import open_store

        attrs_ds = open_store(attrs_ds, "attributes")
    for v in ("lat", "lon"):
        if v not in attrs_ds.variables:
            raise ValueError(f"the basin attributes have no {v!r} coordinate")
    known = {str(b): i for i, b in enumerate(attrs_ds["basin"].values)}
    lat_all = np.asarray(attrs_ds["lat"].values, dtype=float)
    lon_all = np.asarray(attrs_ds["lon"].values, dtype=float)
    pos = np.array([known.get(b, -1) for b in basins])
    lat = np.where(pos >= 0, lat_all[np.maximum(pos, 0)], np.nan)
    lon = np.where(pos >= 0, lon_all[np.maximum(pos, 0)], np.nan)
    return lon, lat


def plot_sensitivity_map(ds: xr.Dataset, attrs_ds: xr.Dataset | str | Path, param: str, path: str | Path,
                         index: str = "S1") -> Path:
    """Map of one parameter's sensitivity index over the basins; saved as PNG.

    Parameters
    ----------
    ds : xarray.Dataset
        Indices over ``basin`` and ``param`` (:func:`sobol_on_emulator`).
    attrs_ds : xarray.Dataset or path-like
        The ``attributes`` group of the basins store (coordinates ``lat``, ``lon`` over ``basin``),
        or the basins store itself.
    param : str
        The parameter.
    path : path-like
        Output PNG.
    index : str
        The variable drawn, ``"S1"`` or ``"ST"``.

    Returns
    -------
    pathlib.Path
        The figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if index not in ds:
        raise ValueError(f"the dataset has no index {index!r}; it has {', '.join(ds.data_vars)}")
    da = _str_coord(_str_coord(ds[index], "param"), "basin")
    if param not in list(da["param"].values):
        raise ValueError(f"parameter {param!r} is not in the dataset; it has {', '.join(da['param'].values)}")
    basins = list(da["basin"].values)
    v = da.sel(param=param).values.astype(float)
    lon, lat = _basin_coords(attrs_ds, basins)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.all():
        warnings.warn(f"{(~ok).sum()} basins have no coordinates in the attributes and are not drawn",
                      RuntimeWarning, stacklevel=2)
    fin = ok & np.isfinite(v)
    vmax = max(float(np.nanpercentile(v[fin], 98)) if fin.any() else 1.0, 0.05)
    fig, ax = plt.subplots(figsize=(9, 5))
    sc = ax.scatter(lon[fin], lat[fin], c=np.clip(v[fin], 0, None), s=16, cmap="viridis", vmin=0, vmax=vmax,
                    edgecolors="none")
    nan = ok & ~np.isfinite(v)
    if nan.any():
        ax.scatter(lon[nan], lat[nan], marker="x", s=14, c="crimson", label=f"no index ({nan.sum()})")
        ax.legend(loc="lower left", fontsize=8)
    fig.colorbar(sc, ax=ax, label=f"{index} of {param}")
    src = ds.attrs.get("lsegeo_sensitivity_source", "")
    ax.set(title=f"{index} of {param} over {fin.sum()} basins{f' ({src})' if src else ''}; "
                 f"median {np.nanmedian(v[fin]) if fin.any() else float('nan'):.3f}",
           xlabel="longitude", ylabel="latitude")
    ax.set_aspect(1.2)
    return save_figure(fig, path)


def plot_cluster_heatmap(agg: xr.Dataset | xr.DataArray, path: str | Path, title: str | None = None) -> Path:
    """Heat map of the mean normalised first-order index per cluster and parameter; saved as PNG.

    Parameters
    ----------
    agg : xarray.Dataset or xarray.DataArray
        :func:`aggregate_by_cluster`'s result (its ``S1_norm``), over ``cluster`` and ``param``.
    path : path-like
        Output PNG.
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
        The figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    da = agg["S1_norm"] if isinstance(agg, xr.Dataset) else agg
    da = _str_coord(da, "param").transpose("cluster", "param")
    vals = da.values.astype(float)
    params = list(da["param"].values)
    clusters = list(da["cluster"].values)
    counts = agg["n_basins"].values if isinstance(agg, xr.Dataset) and "n_basins" in agg else None
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(params) + 2.5), max(3.5, 0.38 * len(clusters) + 1.5)))
    im = ax.imshow(vals, aspect="auto", cmap="magma_r", vmin=0, vmax=max(float(np.nanmax(vals)) if np.isfinite(vals).any()
                                                                      else 1.0, 0.05))
    ax.set_xticks(range(len(params)), params, rotation=60, ha="right")
    ylab = [f"{c} (n={n})" for c, n in zip(clusters, counts)] if counts is not None else [str(c) for c in clusters]
    ax.set_yticks(range(len(clusters)), ylab)
    for i in range(vals.shape[0]):
        for j in range(vals.shape[1]):
            if np.isfinite(vals[i, j]):
                ax.text(j, i, f"{vals[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if vals[i, j] > 0.6 * np.nanmax(vals) else "black")
    fig.colorbar(im, ax=ax, label="mean normalised S1")
    ax.set(xlabel="parameter", ylabel="cluster", title=title or "mean normalised first-order index per cluster")
    return save_figure(fig, path)


# --------------------------------------------------------------------------------------------
# The job: `lsegeo sensitivity CONFIG`
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LSEChoice:
    """The large-sample emulator that a sensitivity job analyses, and where it came from.

    Attributes
    ----------
    emulator : LargeSampleEmulator
        The fitted emulator.
    iteration : int
        The calibration iteration whose emulator it is. An emulator fitted here on the
        iteration-0 ensemble counts as iteration 1 (the emulator of iteration ``k`` is fitted on
        the members of the iterations before ``k``).
    directory : pathlib.Path or None
        The saved emulator (``<calibration store>.emulators/iteration_<k>``); None when it was
        fitted here.
    description : str
        One line saying which emulator it is (printed, and stored with the indices).
    inputs : dict of str to str
        The inputs of the emulator (files to their sha256, stores to their id) for provenance.
    """

    emulator: Any
    iteration: int
    directory: Path | None
    description: str
    inputs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SensitivityJob:
    """What :func:`sensitivity_job` made.

    Attributes
    ----------
    store : pathlib.Path
        The sensitivity store (:func:`write_sensitivity`).
    indices : xarray.Dataset
        The indices written there (:func:`sobol_on_emulator`, with the job's attributes).
    emulator : LSEChoice
        The emulator analysed.
    figures : list of pathlib.Path
        Figures saved (empty without ``figures``).
    agreement : xarray.Dataset or None
        :func:`check_against_ensemble`'s result, with ``check``.
    selection : dict or None
        ``{cluster: [parameters]}`` of :func:`select_parameters`, with ``share``.
    """

    store: Path
    indices: xr.Dataset
    emulator: LSEChoice
    figures: list[Path] = field(default_factory=list)
    agreement: xr.Dataset | None = None
    selection: dict[int, list[str]] | None = None


def _saved_iterations(emulators_dir: Path, marker: str) -> list[int]:
    """Iterations with a completed emulator directory ``iteration_<k>/<marker>``, ascending."""
    if not emulators_dir.is_dir():
        return []
    found = []
    for d in emulators_dir.glob("iteration_*"):
        k = d.name.removeprefix("iteration_")
        if k.isdigit() and (d / marker).exists():
            found.append(int(k))
    return sorted(found)


def _store_id(path: Path) -> str:
    """The ``id`` (or job digest) of an lsegeo store, for provenance."""
    import zarr

    attrs = zarr.open_group(str(path), mode="r").attrs
    return str(attrs.get("id") or attrs.get("lsegeo_job_sha256") or "unknown")


def calibration_emulator(cfg: Any, iteration: int | None = None, *, log: Callable[[str], Any] = print) -> LSEChoice:
    """The large-sample emulator of a configuration's calibration.

    Parameters
    ----------
    cfg : lsegeo.config.Config
        The configuration; its ``calibrate`` section names the calibration store (default
        ``<work_dir>/calibration_lse.zarr``), the iteration-0 ensemble, the targets and the
        attributes (:func:`lsegeo.calibration.loop.calibration_paths`).
    iteration : int, optional
        Load the emulator saved for this calibration iteration
        (``<store>.emulators/iteration_<k>/`` with its ``COMPLETE`` marker). By default the
        latest completed one; when the calibration has saved none, a
        :class:`~lsegeo.emulators.LargeSampleEmulator` is fitted here on the iteration-0
        ensemble, exactly as ``lsegeo calibrate`` fits the emulator of iteration 1 (same
        backend, targets, period, attributes and seed ``calibrate.seed + 1``), and not saved.
    log : callable
        Receives one line per step.

    Returns
    -------
    LSEChoice

    Raises
    ------
    ConfigError
        When ``calibrate.emulator`` is ``sse``: Sobol' screening runs on the large-sample
        emulator only.
    StoreError
        When ``iteration`` has no completed emulator (the message lists those that have one),
        when a saved emulator is not an LSE, or when an emulator must be fitted and the
        iteration-0 ensemble or the basins store does not exist.
    """
    from lsegeo import emulators
    from lsegeo.calibration.loop import _MARKER, calibration_paths, calibration_training_set, new_emulator
    from lsegeo.emulators.base import read_meta
    from lsegeo.provenance import sha256_file

    cc = cfg.calibrate
    if cc.emulator != "lse":
        raise ConfigError(f"calibrate.emulator is {cc.emulator!r}: Sobol' screening evaluates the emulator at "
                          "n_base x (D + 2) parameter sets per basin for every basin at once, which is what the "
                          "large-sample emulator (one model over all basins) is for; single-site emulators are not "
                          "supported. Set calibrate.emulator: lse (and calibrate.store to an LSE calibration, or "
                          "leave it unset to fit an LSE on the iteration-0 ensemble)")
    paths = calibration_paths(cfg)
    saved = _saved_iterations(paths.emulators, _MARKER)
    if iteration is not None:
        if iteration not in saved:
            have = (f"the completed iterations there are {', '.join(map(str, saved))}" if saved else
                    "it has none; leave out the iteration to fit an LSE on the iteration-0 ensemble "
                    f"{paths.iteration0}")
            raise StoreError(f"iteration {iteration}: {paths.emulator(iteration)} holds no completed emulator "
                             f"(expected a directory with a {_MARKER} marker in {paths.emulators}); {have}")
        k = iteration
    elif saved:
        k = saved[-1]
    else:
        k = None
    if k is not None:
        directory = paths.emulator(k)
        meta = read_meta(directory)
        if meta.get("kind") != "lse":
            raise StoreError(f"{directory} holds a {meta.get('kind')!r} emulator; Sobol' screening needs a "
                             "large-sample emulator (kind 'lse')")
        em = emulators.load(directory)
        inputs = {str(f): sha256_file(f) for f in sorted(directory.iterdir()) if f.is_file()}
        desc = f"LSE of calibration iteration {k} ({directory}; {len(em.basins)} basins, {em.backend})"
        log(f"emulator: {desc}")
        return LSEChoice(em, k, directory, desc, inputs)

    for what, path in (("iteration-0 ensemble", paths.iteration0), ("basins store", paths.basins_store)):
        if not Path(path).exists():
            raise StoreError(f"the calibration store {paths.store} has no saved LSE (no {paths.emulators}/"
                             f"iteration_<k>/{_MARKER}), so one must be fitted, but the {what} {path} does not "
                             "exist: run `lsegeo ensemble CONFIG` (or `lsegeo calibrate CONFIG`) first")
    log(f"emulator: the calibration store {paths.store} has no saved LSE; fitting one on the iteration-0 "
        f"ensemble {paths.iteration0} (as calibration iteration 1 would, not saved)")
    t0 = time.perf_counter()
    ts = calibration_training_set(cfg, paths.iteration0, paths.basins_store)
    em = new_emulator(cfg, 1).fit(ts)
    desc = (f"LSE fitted on the iteration-0 ensemble {paths.iteration0} ({len(ts.target)} rows, "
            f"{len(em.basins)} basins, {em.backend}, seed {cc.seed + 1})")
    log(f"emulator: fitted on {len(ts.target)} rows of {len(em.basins)} basins in {time.perf_counter() - t0:.1f} s")
    inputs = {str(paths.iteration0): _store_id(Path(paths.iteration0)),
              str(paths.basins_store): _store_id(Path(paths.basins_store))}
    return LSEChoice(em, 1, None, desc, inputs)


def check_against_ensemble(
    indices: xr.Dataset | xr.DataArray,
    ensemble_store: str | Path | xr.Dataset,
    n_basins: int,
    *,
    objective: str = "nkgeprime",
    period: str = "calibration",
    seed: int = 0,
    top: int = 3,
    method: Literal["rbd_fast", "binned"] = "rbd_fast",
    num_resamples: int = 30,
) -> xr.Dataset:
    """Compare emulator indices with first-order indices estimated from the ensemble's members.

    ``n_basins`` basins are drawn reproducibly (``numpy.random.default_rng(seed)``, without
    replacement) from those that are both in the ensemble and have finite indices, and their
    ``S1`` is estimated from the members of iteration 0 by :func:`sensitivity_from_ensemble`
    (no emulator involved), then compared by :func:`compare_indices`.

    Parameters
    ----------
    indices : xarray.Dataset or xarray.DataArray
        ``S1(basin, param)`` on the emulator (:func:`sobol_on_emulator`).
    ensemble_store : path-like or xarray.Dataset
        The iteration-0 ensemble store (or its ``ensemble`` group).
    n_basins : int
        Basins to check (all eligible basins when there are fewer).
    objective, period : str
        The score, as the emulator's target.
    seed : int
        Seed of the draw and of the estimator's bootstrap.
    top : int
        Size of the sets of top parameters compared.
    method : {"rbd_fast", "binned"}
        Given-data estimator (:func:`first_order_given_data`).
    num_resamples : int
        Bootstrap resamples of the RBD-FAST interval.

    Returns
    -------
    xarray.Dataset
        :func:`compare_indices`' result over the drawn basins (sorted), plus ``S1_ensemble``
        and ``S1_emulator`` over ``basin`` and ``param``; attributes add ``n_members`` (the
        median members used per basin), ``method`` and ``seed``.

    Raises
    ------
    ValueError
        When ``n_basins`` is not positive or no basin is eligible.
    """
    if n_basins < 1:
        raise ValueError(f"n_basins must be at least 1, got {n_basins}")
    s1 = _str_coord(_str_coord(_as_s1(indices), "basin"), "param").transpose("basin", "param")
    ens = _open_ensemble(ensemble_store)
    in_ens = {str(b) for b in ens["basin"].values}
    finite = np.isfinite(s1.values).all(axis=1)
    eligible = sorted(b for b, ok in zip(s1["basin"].values, finite) if ok and b in in_ens)
    if not eligible:
        raise ValueError("no basin has both finite emulator indices and members in the ensemble")
    rng = np.random.default_rng(seed)
    pick = sorted(eligible[i] for i in rng.choice(len(eligible), size=min(n_basins, len(eligible)), replace=False))
    est = sensitivity_from_ensemble(ens, pick, list(s1["param"].values), objective=objective, period=period,
                                    method=method, num_resamples=num_resamples, seed=seed)
    emu = s1.sel(basin=pick)
    cmp = compare_indices(emu, est, top=top)
    cmp["S1_emulator"] = emu.drop_vars([c for c in emu.coords if c not in ("basin", "param")])
    cmp["S1_ensemble"] = est["S1"]
    cmp.attrs.update({"n_members": float(np.median(est["n_members"].values)), "method": est.attrs[
        "lsegeo_sensitivity_method"], "seed": int(seed), "objective": objective, "period": period})
    return cmp


def format_agreement(cmp: xr.Dataset, per_basin: bool = True) -> list[str]:
    """Printable lines of :func:`check_against_ensemble`'s (or :func:`compare_indices`') result.

    Parameters
    ----------
    cmp : xarray.Dataset
        Agreement per basin.
    per_basin : bool
        One line per basin before the summary line.

    Returns
    -------
    list of str
    """
    k = int(cmp.attrs["top"])
    lines = []
    if per_basin:
        lines.append(f"  {'basin':8s}  {'Spearman':>8s}  {f'top-{k}':>6s}  top-1  top {k} on the emulator / "
                     "from the ensemble")
        for b in cmp["basin"].values:
            r = cmp.sel(basin=b)
            ov = float(r["top_overlap"])
            lines.append(f"  {b!s:8s}  {float(r['spearman']):8.2f}  "
                         f"{(f'{round(ov * k)}/{k}' if np.isfinite(ov) else 'n/a'):>6s}  "
                         f"{'same ' if bool(r['top1_agree']) else 'other'}  {r['top_emulator'].item()} / "
                         f"{r['top_ensemble'].item()}")
    lines.append(f"agreement over {cmp.sizes['basin']} basins ({cmp.attrs['n_params']} parameters): median "
                 f"Spearman {cmp.attrs['median_spearman']:.2f}, median top-{k} overlap "
                 f"{cmp.attrs['median_top_overlap']:.2f}, same most influential parameter in "
                 f"{cmp.attrs['share_top1_agree']:.0%} of the basins")
    return lines


def format_selection(selection: dict[Any, list[str]], param_names: Sequence[str],
                     counts: dict[Any, int] | None = None) -> list[str]:
    """Printable lines of a selection per cluster (:func:`select_parameters` with ``keyed_by="cluster"``).

    Parameters
    ----------
    selection : dict
        ``{cluster: [parameters]}``.
    param_names : sequence of str
        Every parameter (the count that is kept is out of these).
    counts : dict, optional
        Basins per cluster, shown when given.

    Returns
    -------
    list of str
    """
    d = len(param_names)
    lines = []
    for c, names in selection.items():
        n = f" ({counts[c]} basins)" if counts and c in counts else ""
        lines.append(f"  cluster {c!s:>2s}{n:14s} {len(names):2d} of {d}: {', '.join(names)}")
    return lines


def sensitivity_figures(indices: xr.Dataset, basins_store: str | Path | xr.Dataset, directory: str | Path,
                        clusters: pd.Series | None = None, n_maps: int = 4) -> list[Path]:
    """Figures of a sensitivity product: cluster heat map and maps of the most influential parameters.

    Parameters
    ----------
    indices : xarray.Dataset
        ``S1(basin, param)`` (:func:`sobol_on_emulator`).
    basins_store : path-like or xarray.Dataset
        The basins store, or its ``attributes`` group (basin coordinates of the maps).
    directory : path-like
        Where the PNGs go (created): ``sensitivity_clusters.png`` (:func:`plot_cluster_heatmap`
        of :func:`aggregate_by_cluster`, with ``clusters``) and ``sensitivity_S1_<param>.png``
        (:func:`plot_sensitivity_map`) for the ``n_maps`` parameters of largest mean normalised
        ``S1`` over the basins.
    clusters : pandas.Series, optional
        Cluster of each gauge id (:func:`read_clusters`); without it there is no heat map.
    n_maps : int
        Parameters mapped.

    Returns
    -------
    list of pathlib.Path
        The figures, heat map first.
    """
    from lsegeo.io.stores import open_store

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    if clusters is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # basins without a cluster: counted by the caller
            agg = aggregate_by_cluster(indices, clusters)
        n = int(agg["n_basins"].sum())
        out.append(plot_cluster_heatmap(agg, directory / "sensitivity_clusters.png",
                                        title=f"mean normalised S1 per flood-generation cluster ({n} basins)"))
    attrs = basins_store if isinstance(basins_store, xr.Dataset) else open_store(basins_store, "attributes")
    mean = normalise_indices(indices).mean("basin", skipna=True)
    order = np.argsort(-np.nan_to_num(mean.values, nan=-1.0), kind="stable")[:max(0, int(n_maps))]
    params = [str(p) for p in indices["param"].values]
    for j in order:
        out.append(plot_sensitivity_map(indices, attrs, params[j], directory / f"sensitivity_S1_{params[j]}.png"))
    return out


def sensitivity_job(
    cfg: Any,
    *,
    iteration: int | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    n_base: int = 512,
    seed: int | None = None,
    target: str | None = None,
    figures: str | Path | None = None,
    n_maps: int = 4,
    check: int = 0,
    share: float | None = None,
    num_resamples: int = 100,
    call: str = "",
    log: Callable[[str], Any] = print,
) -> SensitivityJob:
    """Sobol' ``S1`` and ``ST`` of the calibration target to every parameter, per basin, on the LSE.

    What ``lsegeo sensitivity CONFIG`` runs: the emulator of :func:`calibration_emulator` is
    analysed by :func:`sobol_on_emulator` for every basin it knows, the indices are written with
    :func:`write_sensitivity` (provenance: the emulator's files and their sha256, the settings,
    the command), and optionally drawn, checked against the ensemble and turned into a selection
    of parameters per cluster.

    Parameters
    ----------
    cfg : lsegeo.config.Config
        The configuration (sections ``calibrate`` and ``ensemble``; ``work_dir``, ``data_dir``).
    iteration : int, optional
        Calibration iteration whose saved emulator is analysed; default the latest completed
        one, or an LSE fitted on iteration 0 when none is saved (:func:`calibration_emulator`).
    out : path-like, optional
        The sensitivity store; default ``<work_dir>/sensitivity_lse.zarr``.
    overwrite : bool
        Replace an existing store (otherwise an existing one is an error, raised before any work).
    n_base : int
        Base sample size of the Saltelli design, a power of 2: ``n_base x (D + 2)`` emulator
        evaluations per basin.
    seed : int, optional
        Seed of the sample, the bootstraps and the check; default ``calibrate.seed + k`` for the
        emulator of iteration ``k``, the seed of the calibration's own screening
        (``calibrate.screening_share``), so both give the same indices.
    target : str, optional
        Emulator target analysed; default the first of ``calibrate.objectives``.
    figures : path-like, optional
        Directory of the figures (:func:`sensitivity_figures`); none without it.
    n_maps : int
        Parameters mapped with ``figures``.
    check : int
        When positive, the number of basins checked against the iteration-0 ensemble
        (:func:`check_against_ensemble`, RBD-FAST).
    share : float, optional
        When given (e.g. 0.85), the parameters carrying this share of the summed ``S1`` per
        cluster (:func:`select_parameters`) are logged and returned.
    num_resamples : int
        Bootstrap resamples of the Sobol' confidence intervals.
    call : str
        The command line, for the ``history`` of the product.
    log : callable
        Receives one line per step.

    Returns
    -------
    SensitivityJob

    Raises
    ------
    ConfigError
        ``calibrate.emulator`` is ``sse``, or ``target`` is not a target of the emulator.
    StoreError
        The output store exists (without ``overwrite``), the iteration has no saved emulator,
        or a store that is needed is absent.
    DataNotFoundError
        ``figures`` or ``share`` need the cluster table and it is absent.
    ValueError
        ``n_base`` is not a power of 2, ``share`` not in (0, 1] or ``check`` negative.
    """
    from lsegeo.calibration.loop import calibration_paths
    from lsegeo.locations import work_dir

    if n_base < 2 or n_base & (n_base - 1):
        raise ValueError(f"n_base must be a power of 2 (Sobol' sequence balance), got {n_base}")
    if share is not None and not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    if check < 0:
        raise ValueError(f"check must be a number of basins >= 0, got {check}")
    out = Path(out) if out is not None else Path(cfg.work_dir or work_dir()) / "sensitivity_lse.zarr"
    if out.exists() and not overwrite:
        raise StoreError(f"{out} already exists; pass overwrite=True (--overwrite) to replace it, or choose "
                         "another output (--out)")
    paths = calibration_paths(cfg)
    clusters = read_clusters(cfg.data_dir) if (figures is not None or share is not None) else None
    if check and not Path(paths.iteration0).exists():
        raise StoreError(f"the check needs the iteration-0 ensemble {paths.iteration0}, which does not exist")

    choice = calibration_emulator(cfg, iteration, log=log)
    em = choice.emulator
    target = target or cfg.calibrate.objectives[0]
    if target not in em.target_names:
        raise ConfigError(f"target {target!r} is not a target of the emulator ({choice.directory or 'fitted here'}); "
                          f"it has {', '.join(em.target_names)}")
    seed = cfg.calibrate.seed + choice.iteration if seed is None else int(seed)
    period = str(em.skill.get("period") or cfg.calibrate.period)
    names = list(em.param_names)
    nb, d = len(em.basins), len(names)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        ds = sobol_on_emulator(em, np.arange(nb), names, n_base=n_base, target=target, seed=seed,
                               num_resamples=num_resamples)
    for w in caught:
        log(f"warning: {w.message}")
    log(f"Sobol' S1/ST of {target} ({period} period) for {nb} basins x "
        f"{d} parameters: {ds.attrs['lsegeo_n_evaluations']} emulator evaluations per basin, "
        f"{ds.attrs['lsegeo_n_predict_calls']} predict calls, {time.perf_counter() - t0:.1f} s (seed {seed})")
    ds.attrs.update({
        "lsegeo_emulator": choice.description,
        "lsegeo_emulator_iteration": int(choice.iteration),
        "lsegeo_emulator_dir": str(choice.directory) if choice.directory else "",
        "lsegeo_emulator_backend": em.backend,
        "lsegeo_emulator_skill": json.dumps(em.skill, default=float, sort_keys=True),
        "lsegeo_calibration_store": str(paths.store),
        "lsegeo_period": period,
        "lsegeo_calibrate_config": json.dumps(cfg.calibrate.model_dump(mode="json"), sort_keys=True),
    })
    store = write_sensitivity(ds, out, overwrite=overwrite, call=call or "lsegeo.sensitivity.sobol.sensitivity_job",
                              inputs=choice.inputs,
                              title=f"lsegeo Sobol' sensitivity of {target} to {d} parameters over {nb} basins (LSE)")
    log(f"sensitivity store   {store} (group '{_GROUP}': S1, ST, S1_conf, ST_conf, y_mean, y_std over basin x param)")

    med = ds["S1"].median("basin", skipna=True)
    order = np.argsort(-np.nan_to_num(med.values, nan=-1.0), kind="stable")
    log("median S1 over basins: " + ", ".join(f"{names[j]} {float(med.values[j]):.3f}" for j in order[:6])
        + (", ..." if d > 6 else ""))
    total = ds["S1"].sum("param", skipna=False)
    log(f"median over basins of the sum of S1 {float(total.median()):.2f} (1 - sum S1: the share of the variance "
        f"due to interactions); median ST of {names[order[0]]} {float(np.nanmedian(ds['ST'].values[:, order[0]])):.3f}")

    counts = None
    if clusters is not None:
        cl = pd.Series(clusters)
        cl.index = [str(i).zfill(8) for i in cl.index]
        basins = [str(b) for b in ds["basin"].values]
        lost = [b for b in basins if b not in cl.index]
        if lost:
            log(f"{len(lost)} basins have no flood-generation cluster ({', '.join(lost[:5])}"
                f"{' ...' if len(lost) > 5 else ''}): left out of the cluster figures and selected per basin")
        have = [b for b in basins if b in cl.index]
        counts = {int(c): int(n) for c, n in cl.loc[have].value_counts().sort_index().items()}

    made: list[Path] = []
    if figures is not None:
        made = sensitivity_figures(ds, paths.basins_store, figures, clusters, n_maps=n_maps)
        for f in made:
            log(f"figure: {f}")

    agreement = None
    if check:
        t0 = time.perf_counter()
        agreement = check_against_ensemble(ds, paths.iteration0, check, objective=target,
                                           period=period, seed=seed)
        log(f"check: S1 estimated directly from the {agreement.attrs['n_members']:.0f} iteration-0 members of "
            f"{agreement.sizes['basin']} basins (RBD-FAST, no emulator) in {time.perf_counter() - t0:.1f} s")
        for line in format_agreement(agreement):
            log(line)

    selection = None
    if share is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            selection = select_parameters(ds["S1"], share, by="cluster", clusters=clusters, keyed_by="cluster")
            per_basin = select_parameters(ds["S1"], share, by="cluster", clusters=clusters, keyed_by="basin")
        log(f"parameters carrying {share:.0%} of the summed S1, per cluster (Brunner et al. 2020):")
        for line in format_selection(selection, names, counts):
            log(line)
        kept = np.mean([len(v) for v in per_basin.values()])
        log(f"kept on average {kept:.1f} of {d} parameters per basin")
    return SensitivityJob(store, ds, choice, made, agreement, selection)
