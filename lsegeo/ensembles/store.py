"""Pipeline step 3, *simulate*: the ensemble store, its creation and its growth.

The ensemble store (zarr v3, group ``ensemble``) is the checkpoint of everything that is run:

``params(basin, member, param)``
    Parameter values of every member of every basin (members may differ between basins once
    the calibration proposes basin-specific members).
``scores(basin, member, period, objective)``
    Scores of the simulated flow against observations, for each evaluation period
    (:mod:`lsegeo.periods`) and objective (:data:`lsegeo.metrics.objectives.OBJECTIVES`). NaN
    where the run failed or the period's coverage is below ``lsegeo_min_coverage``.
``coverage(basin, period)``, ``score_note(basin, period)``
    Share of the period's days with an observation (units 1; NaN until the basin has run), and
    why the (basin, period) is not scored (empty when it is).
``status(basin, member)``
    ``0`` pending, ``1`` done, ``2`` failed (a failed run is a recorded failure with NaN scores,
    never a missing row); ``status_message(basin)`` says why a basin's runs failed.
``iteration(member)``, ``run(basin, member)``
    The calibration iteration that proposed the member, and which launch of the runner
    simulated it (``0`` before it has run).
``qsim(basin, member, time)``
    Simulated flow, only when the store was created with ``keep_series=True``.

The root attributes say how to run the members (``lsegeo_model``, ``lsegeo_basins_store``,
``lsegeo_periods``, ``lsegeo_warmup_days``, ``lsegeo_min_coverage``, ``lsegeo_chunk_basins``) and
how often the runner was launched (``lsegeo_runs``). Running the pending members is
:mod:`lsegeo.ensembles.runner`'s job.
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
from lsegeo.io.urls import is_url, location
from lsegeo.periods import Period, check_min_coverage, periods_json, simulation_window

__all__ = [
    "PENDING", "DONE", "FAILED", "GROUP", "MEMBER_ARRAYS",
    "create_ensemble", "open_ensemble", "append_members", "truncate_members", "ensemble_progress",
    "recheck_results",
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
                  warmup_days: int, basins_group: str = "forcing") -> pd.DatetimeIndex:
    """Raise when the basins, objectives or simulation window do not fit the basins store."""
    from lsegeo.metrics.objectives import OBJECTIVES

    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown:
        raise KeyError(f"unknown objective(s) {unknown}; known: {', '.join(sorted(OBJECTIVES))}")
    forcing = open_store(basins_store, "forcing")
    group = forcing if basins_group == "forcing" else open_store(basins_store, basins_group)
    have_basins = group.basin.values
    missing = sorted(set(basins) - {str(b) for b in have_basins})
    if missing:
        raise StoreError(f"basins {missing[:5]}{'...' if len(missing) > 5 else ''} are not in the {basins_group} "
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
        In memory; ``scores`` and ``coverage`` NaN, ``status`` pending, ``run`` 0,
        ``status_message`` and ``score_note`` empty.
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
            "coverage": (("basin", "period"), np.full((nb, len(periods)), np.nan),
                         {"long_name": "share of the period's days with an observed flow", "units": "1"}),
            "score_note": (("basin", "period"), np.full((nb, len(periods)), "", dtype=object),
                           {"long_name": "why the basin is not scored on the period (empty when it is)"}),
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
    min_coverage: float = _DEFAULTS.min_coverage,
    overwrite: bool = False,
    config: dict[str, Any] | None = None,
    job_sha256: str = "",
    call: str = "",
    variables: dict[str, Any] | None = None,
    extra_inputs: dict[str, str] | None = None,
    extra_attrs: dict[str, Any] | None = None,
    basins_group: str = "forcing",
) -> Path:
    """Create an ensemble store with every member pending (or with results run elsewhere).

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
    min_coverage : float
        Least share of a period's days with an observation for a basin to be scored on it
        (recorded as ``lsegeo_min_coverage``; :data:`lsegeo.periods.DEFAULT_MIN_COVERAGE`).
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
    variables : dict, optional
        Variables of the ``ensemble`` group set before the store is written, for an ensemble
        run elsewhere (:mod:`lsegeo.ingest.table`): a name of :func:`ensemble_dataset` with an
        array of its shape (``scores``, ``status``, ``status_message``, ...), or a new variable
        as ``(dims, values, attrs)``. The store is still written in one atomic step.
    extra_inputs : dict, optional
        More input files (name -> sha256) for the provenance record.
    extra_attrs : dict, optional
        More root attributes (citation, ``references``, source description).
    basins_group : str
        The group of the basins store every basin must be in (default ``forcing``, the runs'
        inputs; an ensemble run elsewhere needs only ``attributes``).

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
        ``params`` has the wrong shape, or ``min_coverage`` is outside [0, 1].
    """
    basins = [str(b) for b in basins]
    window = _check_inputs(basins_store, basins, periods, objectives, warmup_days, basins_group)
    params = np.asarray(params, dtype="float64")
    if params.ndim == 2:
        params = np.broadcast_to(params, (len(basins), *params.shape))
    if params.ndim != 3 or params.shape[0] != len(basins) or params.shape[2] != len(space):
        raise ValueError(f"params must be (member, {len(space)}) or ({len(basins)}, member, {len(space)}), "
                         f"got {params.shape}")
    nb, nm = params.shape[:2]
    ds = ensemble_dataset(basins, space, params, periods, objectives, iteration)
    for name, value in (variables or {}).items():
        if name in ds and not isinstance(value, tuple):
            if np.shape(value) != ds[name].shape:
                raise ValueError(f"variables[{name!r}] has shape {np.shape(value)}, the store's {ds[name].shape}")
            ds[name] = ds[name].copy(data=np.asarray(value, dtype=ds[name].dtype))
        else:
            ds[name] = value
    encoding = {"params": {"chunks": (chunk_basins, nm, len(space))},
                "scores": {"chunks": (chunk_basins, nm, len(periods), len(objectives))},
                "status": {"chunks": (chunk_basins, nm)},
                "run": {"chunks": (chunk_basins, nm)},
                "status_message": {"chunks": (chunk_basins,)},
                "coverage": {"chunks": (chunk_basins, len(periods))},
                "score_note": {"chunks": (chunk_basins, len(periods))},
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
    inputs = {provenance.portable_path(basins_store): basins_attrs.get("lsegeo_inputs_sha256", ""),
              **(extra_inputs or {})}
    attrs = provenance.product_attrs(
        title=f"lsegeo ensemble: {model} over {nb} basins",
        summary=(f"{nm} members per basin of the {model} model over {nb} basins, scored with "
                 f"{', '.join(objectives)} on periods {', '.join(p.name for p in periods)}."),
        step="ensemble create", call=call or "lsegeo.ensembles.store.create_ensemble",
        config=provenance.portable_config(dict(config or {})), inputs=inputs,
        extra={"lsegeo_store_kind": "ensemble", "lsegeo_model": model,
               "lsegeo_basins_store": str(basins_store) if is_url(basins_store) else str(Path(basins_store).resolve()),
               "lsegeo_basins_store_id": basins_attrs.get("id", ""),
               "lsegeo_periods": periods_json(periods), "lsegeo_warmup_days": int(warmup_days),
               "lsegeo_min_coverage": check_min_coverage(min_coverage),
               "lsegeo_window": f"{window[0].date()}/{window[-1].date()}",
               "lsegeo_keep_series": bool(keep_series), "lsegeo_chunk_basins": int(chunk_basins),
               "lsegeo_runs": 0, "lsegeo_job_sha256": job_sha256, **(extra_attrs or {})})
    write_store(ds, path, group=GROUP, attrs=attrs, inputs=inputs, overwrite=overwrite, encoding=encoding)
    logger.info("created %s: %d basins x %d members of %s%s", path, nb, nm, model,
                ", with results set" if variables else ", all pending")
    return location(path)


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


#: arrays the runner writes for every (basin, member) it runs; their chunks are checked on resume
RESULT_ARRAYS = ("scores", "run", "qsim")


def recheck_results(path: str | Path) -> dict[str, Any]:
    """Set back to pending the finished runs whose results cannot be read (the resume's consistency pass).

    The runner writes every chunk of its results, even one of NaN only, so each chunk of
    ``scores``, ``run`` (and ``qsim``) that holds a done or failed (basin, member) has a file.
    A chunk whose file is missing (it would read as fill values: NaN scores) or, for ``scores``
    and ``run``, cannot be decoded (truncated, garbled) makes every finished run in it pending
    again, so the next launch runs it again; an undecodable chunk is deleted first, and so is an
    undecodable ``status`` chunk (its runs read as pending). ``qsim`` chunks are only looked
    for, not decoded (they are large); a damaged one is reported when it is read.

    Parameters
    ----------
    path : path-like
        The ensemble store.

    Returns
    -------
    dict
        ``reset``: the number of (basin, member) runs set back to pending; ``reasons``: one line
        per damaged chunk (``"scores chunk (0, 0, 0, 0) missing"``).
    """
    import itertools

    g = StoreGroup(path, GROUP, writable=True)

    def grid(name: str) -> list[tuple[int, ...]]:
        shape, chunks = g.shape(name), g.chunk_shape(name)
        return list(itertools.product(*(range(-(-n // c)) for n, c in zip(shape, chunks, strict=True))))

    reasons = []
    for coords, why in g.chunk_problems("status", grid("status")).items():
        if why != "missing":  # a missing status chunk reads as pending: nothing is counted as done
            g.drop_chunk("status", coords)
            reasons.append(f"status chunk {coords} {why}")
    status = g.read("status")
    reset = np.zeros(status.shape, dtype=bool)
    for name in (n for n in RESULT_ARRAYS if n in g):
        c0, c1 = g.chunk_shape(name)[:2]
        blocks = {k: np.s_[k[0] * c0:(k[0] + 1) * c0, k[1] * c1:(k[1] + 1) * c1] for k in grid(name)}
        blocks = {k: b for k, b in blocks.items() if (status[b] != PENDING).any()}
        for coords, why in g.chunk_problems(name, blocks, decode=name != "qsim").items():
            reset[blocks[coords]] |= status[blocks[coords]] != PENDING
            if why != "missing":
                g.drop_chunk(name, coords)
            reasons.append(f"{name} chunk {coords} {why}")
    n = int(reset.sum())
    if n:
        g.write("status", ..., np.where(reset, PENDING, status).astype(status.dtype))
    if reasons:
        logger.warning("%s: %d finished run(s) set back to pending because their results cannot be read (%s); "
                       "they run again", path, n, "; ".join(reasons))
    return {"reset": n, "reasons": reasons}
