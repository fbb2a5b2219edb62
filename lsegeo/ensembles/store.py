"""Pipeline step 3, *simulate*: the ensemble store, its creation and its growth.

The ensemble store (zarr v3, group ``ensemble``) is the checkpoint of everything that is run:

``params(basin, member, param)``
    Parameter values of every member of every basin (members may differ between basins once
    the calibration proposes basin-specific members).
``scores(basin, member, period, objective)``
    Scores of the simulated flow against observations, for each evaluation period
    (:mod:`lsegeo.periods`) and objective (:data:`lsegeo.metrics.objectives.OBJECTIVES`). NaN
    where the basin has no observations in the period or the run failed.
``status(basin, member)``
    ``0`` pending, ``1`` done, ``2`` failed (a failed run is a recorded failure with NaN scores,
    never a missing row); ``status_message(basin)`` says why a basin's runs failed.
``iteration(member)``, ``run(basin, member)``
    The calibration iteration that proposed the member, and which launch of the runner
    simulated it (``0`` before it has run).
``qsim(basin, member, time)``
    Simulated flow, only when the store was created with ``keep_series=True``.

The root attributes say how to run the members (``lsegeo_model``, ``lsegeo_basins_store``,
``lsegeo_periods``, ``lsegeo_warmup_days``, ``lsegeo_chunk_basins``) and how often the runner was
launched (``lsegeo_runs``). Running the pending members is :mod:`lsegeo.ensembles.runner`'s job.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from lsegeo import provenance
from lsegeo.design import ParameterSpace
from lsegeo.ensembles.settings import EnsembleSettings
from lsegeo.errors import StoreError
from lsegeo.io.groups import StoreGroup, add_history
from lsegeo.io.stores import consolidate, open_store, root_attrs, store_groups, write_store
from lsegeo.periods import Period, periods_json, simulation_window

__all__ = [
    "PENDING", "DONE", "FAILED", "GROUP", "MEMBER_ARRAYS",
    "create_ensemble", "open_ensemble", "append_members", "truncate_members", "ensemble_progress",
]

logger = logging.getLogger(__name__)

#: run status of a (basin, member): not run yet, scored, failed (NaN scores)
PENDING, DONE, FAILED = 0, 1, 2
#: the group of an ensemble store that holds the members
GROUP = "ensemble"
#: arrays with a ``member`` dimension, and the axis it is on
MEMBER_ARRAYS = {"params": 1, "scores": 1, "status": 1, "run": 1, "qsim": 1, "iteration": 0, "member": 0}

_DEFAULTS = EnsembleSettings()


def _check_inputs(basins_store: str | Path, basins: list[str], periods: Sequence[Period], objectives: Sequence[str],
                  warmup_days: int) -> pd.DatetimeIndex:
    """Raise when the basins, objectives or simulation window do not fit the basins store."""
    from lsegeo.metrics.objectives import OBJECTIVES

    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown:
        raise KeyError(f"unknown objective(s) {unknown}; known: {', '.join(sorted(OBJECTIVES))}")
    forcing = open_store(basins_store, "forcing")
    missing = sorted(set(basins) - set(forcing.basin.values))
    if missing:
        raise StoreError(f"basins {missing[:5]}{'...' if len(missing) > 5 else ''} are not in the forcing "
                         f"group of {basins_store}")
    window = simulation_window(periods, warmup_days)
    have = pd.DatetimeIndex(forcing.time.values)
    if window[0] < have[0] or window[-1] > have[-1]:
        raise StoreError(f"the simulation window {window[0].date()} to {window[-1].date()} (periods plus "
                         f"{warmup_days} warm-up days) is not covered by {basins_store} "
                         f"({have[0].date()} to {have[-1].date()})")
    return window


def ensemble_dataset(basins: Sequence[str], space: ParameterSpace, params: np.ndarray, periods: Sequence[Period],
                     objectives: Sequence[str], iteration: int = 0) -> xr.Dataset:
    """The ``ensemble`` group of a new store, every member pending.

    Parameters
    ----------
    basins : sequence of str
        Gauge ids, ``nb`` of them.
    space : ParameterSpace
        The model's parameter space (``npar`` parameters), stored as ``param_*`` variables.
    params : numpy.ndarray
        ``(nb, nm, npar)`` parameter values.
    periods : sequence of Period
        Evaluation periods.
    objectives : sequence of str
        Registered objective names.
    iteration : int
        Iteration number of every member.

    Returns
    -------
    xarray.Dataset
        In memory; ``scores`` NaN, ``status`` pending, ``run`` 0, ``status_message`` empty.
    """
    from lsegeo.metrics.objectives import OBJECTIVES

    nb, nm = params.shape[:2]
    ds = xr.Dataset(
        {
            "params": (("basin", "member", "param"), np.ascontiguousarray(params),
                       {"long_name": "parameter values of each member"}),
            "scores": (("basin", "member", "period", "objective"),
                       np.full((nb, nm, len(periods), len(objectives)), np.nan),
                       {"long_name": "score of the simulated flow against observations"}),
            "status": (("basin", "member"), np.zeros((nb, nm), dtype="int8"),
                       {"long_name": "run status", "flag_values": [PENDING, DONE, FAILED],
                        "flag_meanings": "pending done failed"}),
            "run": (("basin", "member"), np.zeros((nb, nm), dtype="int32"),
                    {"long_name": "launch of the runner that simulated the member (0: not yet)"}),
            "iteration": ("member", np.full(nm, iteration, dtype="int32"),
                          {"long_name": "calibration iteration that proposed the member"}),
            "status_message": ("basin", np.full(nb, "", dtype=object),
                               {"long_name": "why runs of the basin failed (empty when none did)"}),
        },
        coords={
            "basin": ("basin", np.array(list(basins), dtype=object), {"long_name": "gauge id"}),
            "member": ("member", np.arange(nm, dtype="int64")),
            "param": ("param", np.array(space.names, dtype=object)),
            "period": ("period", np.array([p.name for p in periods], dtype=object)),
            "objective": ("objective", np.array(list(objectives), dtype=object)),
        },
    )
    for name in ("lower", "upper", "default"):
        ds[f"param_{name}"] = ("param", getattr(space, name), {"long_name": f"{name} of the parameter's range"})
    ds["param_scale"] = ("param", np.array([p.scale for p in space.parameters], dtype=object))
    ds["param_units"] = ("param", np.array([p.units for p in space.parameters], dtype=object))
    ds["objective_sense"] = ("objective", np.array([OBJECTIVES[o].sense for o in objectives], dtype=object))
    return ds


def create_ensemble(
    path: str | Path,
    *,
    basins_store: str | Path,
    basins: Sequence[str],
    model: str,
    space: ParameterSpace,
    params: np.ndarray,
    periods: Sequence[Period],
    objectives: Sequence[str],
    warmup_days: int = _DEFAULTS.warmup_days,
    iteration: int = 0,
    keep_series: bool = _DEFAULTS.keep_series,
    chunk_basins: int = _DEFAULTS.chunk_basins,
    overwrite: bool = False,
    config: dict[str, Any] | None = None,
    job_sha256: str = "",
    call: str = "",
) -> Path:
    """Create an ensemble store with every member pending.

    Parameters
    ----------
    path : path-like
        The store to create (atomically: it appears complete or not at all).
    basins_store : path-like
        The basins store whose forcing and observations the members will be run with; its
        resolved path is recorded (``lsegeo_basins_store``) for the runner.
    basins : sequence of str
        Gauge ids, all present in the basins store's ``forcing`` group.
    model : str
        Registered model adapter name (:func:`lsegeo.models.registry.get_model`).
    space : ParameterSpace
        The model's parameter space (recorded with the store).
    params : numpy.ndarray
        ``(member, param)`` values shared by every basin, or ``(basin, member, param)``.
    periods : sequence of Period
        Evaluation periods; the simulation covers them all plus ``warmup_days`` before.
    objectives : sequence of str
        Names in :data:`lsegeo.metrics.objectives.OBJECTIVES`.
    warmup_days : int
        Days simulated before the earliest period and never scored.
    iteration : int
        Iteration number recorded for these members.
    keep_series : bool
        Also store simulated flow ``qsim(basin, member, time)`` (float32, mm day-1).
    chunk_basins : int
        Basins per zarr chunk and per dask task.
    overwrite : bool
        Replace an existing store.
    config : dict, optional
        Configuration recorded with the store and hashed (``lsegeo_config_sha256``); its path
        values are recorded by content identity (:func:`lsegeo.provenance.portable_config`), so
        the digest is the same on every machine.
    job_sha256 : str
        Digest of the job that made the store, so that a rerun of the same job resumes it.
    call : str
        The command that created the store, for ``history``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    KeyError
        An objective is not registered.
    StoreError
        A basin is not in the basins store, the store does not cover the simulation window, or
        ``path`` exists and ``overwrite`` is false.
    ValueError
        ``params`` has the wrong shape.
    """
    basins = [str(b) for b in basins]
    window = _check_inputs(basins_store, basins, periods, objectives, warmup_days)
    params = np.asarray(params, dtype="float64")
    if params.ndim == 2:
        params = np.broadcast_to(params, (len(basins), *params.shape))
    if params.ndim != 3 or params.shape[0] != len(basins) or params.shape[2] != len(space):
        raise ValueError(f"params must be (member, {len(space)}) or ({len(basins)}, member, {len(space)}), "
                         f"got {params.shape}")
    nb, nm = params.shape[:2]
    ds = ensemble_dataset(basins, space, params, periods, objectives, iteration)
    encoding = {"params": {"chunks": (chunk_basins, nm, len(space))},
                "scores": {"chunks": (chunk_basins, nm, len(periods), len(objectives))},
                "status": {"chunks": (chunk_basins, nm)},
                "run": {"chunks": (chunk_basins, nm)},
                "status_message": {"chunks": (chunk_basins,)},
                "iteration": {"chunks": (nm,)}}
    if keep_series:
        import dask.array as da

        ds = ds.assign_coords(time=("time", window))
        ds["qsim"] = (("basin", "member", "time"),
                      da.full((nb, nm, len(window)), np.nan, dtype="float32",
                              chunks=(chunk_basins, nm, len(window))),
                      {"units": "mm day-1", "long_name": "simulated streamflow"})
        encoding["qsim"] = {"chunks": (chunk_basins, nm, len(window))}
    basins_attrs = root_attrs(basins_store)
    inputs = {provenance.portable_path(basins_store): basins_attrs.get("lsegeo_inputs_sha256", "")}
    attrs = provenance.product_attrs(
        title=f"lsegeo ensemble: {model} over {nb} basins",
        summary=(f"{nm} members per basin of the {model} model over {nb} basins, scored with "
                 f"{', '.join(objectives)} on periods {', '.join(p.name for p in periods)}."),
        step="ensemble create", call=call or "lsegeo.ensembles.store.create_ensemble",
        config=provenance.portable_config(dict(config or {})), inputs=inputs,
        extra={"lsegeo_store_kind": "ensemble", "lsegeo_model": model,
               "lsegeo_basins_store": str(Path(basins_store).resolve()),
               "lsegeo_basins_store_id": basins_attrs.get("id", ""),
               "lsegeo_periods": periods_json(periods), "lsegeo_warmup_days": int(warmup_days),
               "lsegeo_window": f"{window[0].date()}/{window[-1].date()}",
               "lsegeo_keep_series": bool(keep_series), "lsegeo_chunk_basins": int(chunk_basins),
               "lsegeo_runs": 0, "lsegeo_job_sha256": job_sha256})
    write_store(ds, path, group=GROUP, attrs=attrs, inputs=inputs, overwrite=overwrite, encoding=encoding)
    logger.info("created %s: %d basins x %d members of %s, all pending", path, nb, nm, model)
    return Path(path)


def open_ensemble(path: str | Path) -> xr.Dataset:
    """Open the ``ensemble`` group of an ensemble store lazily (dask-backed).

    Raises
    ------
    StoreError
        ``path`` is not a zarr v3 store, or has no ``ensemble`` group.
    """
    if GROUP not in store_groups(path):
        raise StoreError(f"{path} is not an ensemble store (it has no {GROUP!r} group)")
    return open_store(path, GROUP)


def append_members(path: str | Path, params: np.ndarray, iteration: int, call: str = "") -> slice:
    """Append pending members to every basin of an ensemble store.

    Parameters
    ----------
    path : path-like
        The ensemble store.
    params : numpy.ndarray
        ``(basin, new_member, param)`` values, basins in the store's order.
    iteration : int
        Iteration number of the new members.
    call : str
        The call, for ``history``.

    Returns
    -------
    slice
        The member indices of the new members.

    Raises
    ------
    ValueError
        ``params`` does not have the store's basins and parameters.
    """
    ens = open_ensemble(path)
    nb, nm, npar = ens.sizes["basin"], ens.sizes["member"], ens.sizes["param"]
    params = np.asarray(params, dtype="float64")
    if params.ndim != 3 or params.shape[0] != nb or params.shape[2] != npar:
        raise ValueError(f"params must be ({nb}, new members, {npar}), got {params.shape}")
    k = params.shape[1]
    g = StoreGroup(path, GROUP, writable=True)
    g.grow("params", 1, params)
    g.grow("scores", 1, np.full((nb, k, ens.sizes["period"], ens.sizes["objective"]), np.nan))
    g.grow("status", 1, np.full((nb, k), PENDING, dtype="int8"))
    g.grow("run", 1, np.zeros((nb, k), dtype="int32"))
    if "qsim" in g:
        g.grow("qsim", 1, n=k)  # NaN (the fill value) until run
    g.grow("iteration", 0, np.full(k, iteration, dtype="int32"))
    g.grow("member", 0, np.arange(nm, nm + k))
    line = provenance.history_line("ensemble append", call or f"append_members(iteration={iteration}, members={k})")
    add_history(path, line, groups=(None, GROUP))
    logger.info("appended %d pending members (iteration %d) to %s", k, iteration, path)
    return slice(nm, nm + k)


def truncate_members(path: str | Path, n_members: int) -> None:
    """Drop the members at index ``n_members`` and beyond (e.g. an append that was interrupted).

    Parameters
    ----------
    path : path-like
        The ensemble store.
    n_members : int
        Members to keep.
    """
    g = StoreGroup(path, GROUP, writable=True)
    for name, axis in MEMBER_ARRAYS.items():
        if name in g:
            g.resize(name, axis, n_members)
    consolidate(path)


def ensemble_progress(path: str | Path) -> dict[str, int]:
    """Counts of ``pending``, ``done`` and ``failed`` (basin, member) runs, and their ``total``."""
    status = StoreGroup(path, GROUP).read("status")
    return {"pending": int((status == PENDING).sum()), "done": int((status == DONE).sum()),
            "failed": int((status == FAILED).sum()), "total": int(status.size)}
