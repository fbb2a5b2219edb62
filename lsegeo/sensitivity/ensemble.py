"""First-order indices estimated from an ensemble's members, and the check of an emulator's indices.

:func:`sensitivity_from_ensemble` estimates ``S1`` per basin directly from the simulated members
of an ensemble store (the Latin hypercube of iteration 0), with a given-data estimator of
:mod:`lsegeo.sensitivity.given_data`: no emulator is involved. :func:`check_against_ensemble`
uses it on a reproducible draw of basins to check the indices an emulator gives
(:func:`lsegeo.sensitivity.sobol.sobol_on_emulator`), through
:func:`lsegeo.sensitivity.agreement.compare_indices`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from lsegeo.conventions import BASIN, PARAM
from lsegeo.errors import UnknownBasinError
from lsegeo.sensitivity.agreement import compare_indices
from lsegeo.sensitivity.given_data import GivenDataOptions, first_order_given_data
from lsegeo.sensitivity.indices import as_indices, str_coord
from lsegeo.sensitivity.settings import SensitivitySettings

__all__ = ["sensitivity_from_ensemble", "check_against_ensemble"]

_DEFAULTS = SensitivitySettings()

#: how an estimator is described in the attributes of its indices
_LABELS = {
    "rbd_fast": "rbd_fast (SALib, M={M}, Tissot & Prieur bias correction)",
    "binned": "binned correlation ratio Var(E[Y|X_i])/Var(Y), equal-count bins, epsilon-squared bias correction",
}


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
    method: str = _DEFAULTS.check_estimator,
    iteration: int | None = 0,
    M: int = GivenDataOptions.M,
    n_bins: int | None = GivenDataOptions.n_bins,
    num_resamples: int = GivenDataOptions.num_resamples,
    conf_level: float = GivenDataOptions.conf_level,
    seed: int = GivenDataOptions.seed,
) -> xr.Dataset:
    """First-order indices of a score, estimated directly from an ensemble's members.

    An independent check of :func:`sobol_on_emulator`: no emulator, only the simulated members of
    each basin (the Latin hypercube of iteration 0), through
    :func:`~lsegeo.sensitivity.given_data.first_order_given_data`.

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
    method : str
        Estimator, a name of :data:`lsegeo.sensitivity.given_data.ESTIMATORS` (default RBD-FAST
        with ``M`` harmonics).
    iteration : int or None
        Use only the members of this iteration (0: the design of iteration 0; later iterations are
        optimiser proposals, not a space-filling sample); None uses every member.
    M, n_bins, num_resamples, conf_level, seed
        Passed to :func:`~lsegeo.sensitivity.given_data.first_order_given_data` (the seed of
        basin ``i`` is ``seed + i``).

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
    label = _LABELS.get(method, method).format(M=M)
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



def check_against_ensemble(
    indices: xr.Dataset | xr.DataArray,
    ensemble_store: str | Path | xr.Dataset,
    n_basins: int,
    *,
    objective: str = "nkgeprime",
    period: str = "calibration",
    seed: int = 0,
    top: int = _DEFAULTS.top,
    method: str = _DEFAULTS.check_estimator,
    num_resamples: int = _DEFAULTS.check_resamples,
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
    method : str
        Given-data estimator, a name of :data:`lsegeo.sensitivity.given_data.ESTIMATORS`.
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
    s1 = str_coord(str_coord(as_indices(indices), BASIN), PARAM).transpose(BASIN, PARAM)
    ens = _open_ensemble(ensemble_store)
    in_ens = {str(b) for b in ens["basin"].values}
    finite = np.isfinite(s1.values).all(axis=1)
    eligible = sorted(b for b, ok in zip(s1["basin"].values, finite, strict=True) if ok and b in in_ens)
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
