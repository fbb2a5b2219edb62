"""Pipeline step 3, *simulate*: the ensemble store and running its members on dask.

The ensemble store (zarr v3) is the checkpoint of everything that is run:

``params(basin, member, param)``
    Parameter values of every member of every basin (members may differ between basins once
    the calibration proposes basin-specific members).
``scores(basin, member, period, objective)``
    Scores of the simulated flow against observations, for each evaluation period
    (:mod:`lsegeo.periods`) and objective (:mod:`lsegeo.metrics.scores`). NaN where the basin has no
    observations in the period or the run failed.
``status(basin, member)``
    ``0`` pending, ``1`` done, ``2`` failed (a failed run is a recorded failure with NaN scores,
    never a missing row); ``status_message(basin)`` says why a basin's runs failed.
``iteration(member)``, ``run(basin, member)``
    The calibration iteration that proposed the member, and which launch of the runner
    simulated it (``0`` before it has run).
``qsim(basin, member, time)``
    Simulated flow, only when the store was created with ``keep_series=True``.

Runs are dask tasks, one per chunk of basins; each task owns its chunk of every variable, so
concurrent writes never touch the same zarr chunk, and it writes ``status`` last: a task killed
half-way leaves its members pending, and running the store again completes the pending
members only.
"""

from __future__ import annotations

import json
import sys
import time as _time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import zarr

from lsegeo import provenance
from lsegeo.parallel import dask_client
from lsegeo.config import ClusterConfig
from lsegeo.design import ParameterSpace
from lsegeo.errors import StoreError
from lsegeo.io.stores import PROV_ATTR, atomic_store, consolidate, load_basin_inputs, open_store, store_groups
from lsegeo.periods import DEFAULT_WARMUP_DAYS, Period, period_slices, simulation_window

__all__ = [
    "PENDING", "DONE", "FAILED",
    "create_ensemble", "append_members", "run_ensemble", "open_ensemble", "ensemble_progress",
]

PENDING, DONE, FAILED = 0, 1, 2
_GROUP = "ensemble"


def _periods_json(periods: Sequence[Period]) -> str:
    return json.dumps([{"name": p.name, "start": str(p.start), "end": str(p.end)} for p in periods])


def _periods_from_attrs(attrs) -> list[Period]:
    return [Period(d["name"], pd.Timestamp(d["start"]).date(), pd.Timestamp(d["end"]).date())
            for d in json.loads(attrs["lsegeo_periods"])]


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
    warmup_days: int = DEFAULT_WARMUP_DAYS,
    iteration: int = 0,
    keep_series: bool = False,
    chunk_basins: int = 8,
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
        The basins store whose forcing and observations the members will be run with.
    basins : sequence of str
        Gauge ids, all present in the basins store's ``forcing`` group.
    model : str
        Registered model adapter name (:func:`lsegeo.models.protocol.get_model`).
    space : ParameterSpace
        The model's parameter space (recorded with the store).
    params : numpy.ndarray
        ``(member, param)`` values shared by every basin, or ``(basin, member, param)``.
    periods : sequence of Period
        Evaluation periods; the simulation covers them all plus ``warmup_days`` before.
    objectives : sequence of str
        Names in :data:`lsegeo.metrics.scores.OBJECTIVES`.
    warmup_days : int
        Days simulated before the earliest period and never scored.
    iteration : int
        Iteration number recorded for these members.
    keep_series : bool
        Also store simulated flow ``qsim(basin, member, time)`` (float32).
    chunk_basins : int
        Basins per zarr chunk and per dask task.
    overwrite : bool
        Replace an existing store.
    config : dict, optional
        Configuration recorded with the store (and hashed).
    job_sha256 : str
        Digest of the job that made the store, so that a rerun of the same job resumes it.
    call : str
        The command that created the store, for ``history``.
    """
    from lsegeo.metrics.scores import OBJECTIVES

    basins = [str(b) for b in basins]
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
    params = np.asarray(params, dtype="float64")
    if params.ndim == 2:
        params = np.broadcast_to(params, (len(basins), *params.shape))
    if params.shape[0] != len(basins) or params.shape[2] != len(space):
        raise ValueError(f"params must be (member, {len(space)}) or ({len(basins)}, member, {len(space)}), "
                         f"got {params.shape}")
    nb, nm = params.shape[:2]
    member_chunk = nm
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
            "basin": ("basin", np.array(basins, dtype=object), {"long_name": "gauge id"}),
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
    encoding = {"params": {"chunks": (chunk_basins, member_chunk, len(space))},
                "scores": {"chunks": (chunk_basins, member_chunk, len(periods), len(objectives))},
                "status": {"chunks": (chunk_basins, member_chunk)},
                "run": {"chunks": (chunk_basins, member_chunk)},
                "status_message": {"chunks": (chunk_basins,)},
                "iteration": {"chunks": (member_chunk,)}}
    if keep_series:
        ds = ds.assign_coords(time=("time", window))
        ds["qsim"] = (("basin", "member", "time"),
                      _lazy_nan((nb, nm, len(window)), (chunk_basins, member_chunk, len(window))),
                      {"units": "mm day-1", "long_name": "simulated streamflow"})
        encoding["qsim"] = {"chunks": (chunk_basins, member_chunk, len(window))}
    basins_attrs = dict(zarr.open_group(str(basins_store), mode="r").attrs)
    cfg = dict(config or {})
    attrs = provenance.product_attrs(
        title=f"lsegeo ensemble: {model} over {nb} basins",
        summary=(f"{nm} members per basin of the {model} model over {nb} basins, scored with "
                 f"{', '.join(objectives)} on periods {', '.join(p.name for p in periods)}."),
        step="ensemble create", call=call or "lsegeo.ensembles.store.create_ensemble", config=cfg,
        inputs={str(basins_store): basins_attrs.get("lsegeo_inputs_sha256", "")},
        extra={"lsegeo_store_kind": "ensemble", "lsegeo_model": model,
               "lsegeo_basins_store": str(Path(basins_store).resolve()),
               "lsegeo_basins_store_id": basins_attrs.get("id", ""),
               "lsegeo_periods": _periods_json(periods), "lsegeo_warmup_days": int(warmup_days),
               "lsegeo_window": f"{window[0].date()}/{window[-1].date()}",
               "lsegeo_keep_series": bool(keep_series), "lsegeo_chunk_basins": int(chunk_basins),
               "lsegeo_runs": 0, "lsegeo_job_sha256": job_sha256})
    path = Path(path)
    with atomic_store(path, overwrite=overwrite) as tmp:
        ds.attrs = attrs
        ds.to_zarr(tmp, group=_GROUP, mode="w", zarr_format=3, consolidated=False, encoding=encoding)
        root = zarr.open_group(str(tmp), mode="r+")
        root.attrs.update({**attrs, PROV_ATTR: provenance.prov_json(attrs, {str(basins_store): attrs["lsegeo_inputs_sha256"]}, str(path))})
        consolidate(tmp)
    return path


def _lazy_nan(shape, chunks):
    import dask.array as da

    return da.full(shape, np.nan, dtype="float32", chunks=chunks)


def open_ensemble(path: str | Path) -> xr.Dataset:
    """Open an ensemble store lazily."""
    if "ensemble" not in store_groups(path):
        raise StoreError(f"{path} is not an ensemble store (it has no 'ensemble' group)")
    return open_store(path, _GROUP)


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

    Returns
    -------
    slice
        The member indices of the new members.
    """
    ens = open_ensemble(path)
    nb, nm, npar = ens.sizes["basin"], ens.sizes["member"], ens.sizes["param"]
    params = np.asarray(params, dtype="float64")
    if params.ndim != 3 or params.shape[0] != nb or params.shape[2] != npar:
        raise ValueError(f"params must be ({nb}, new members, {npar}), got {params.shape}")
    k = params.shape[1]
    g = zarr.open_group(str(path), path=_GROUP, mode="r+", use_consolidated=False)
    for name, value in (("params", params),
                        ("scores", np.full((nb, k, ens.sizes["period"], ens.sizes["objective"]), np.nan)),
                        ("status", np.zeros((nb, k), dtype="int8")), ("run", np.zeros((nb, k), dtype="int32"))):
        arr = g[name]
        arr.resize((arr.shape[0], nm + k, *arr.shape[2:]))
        arr[:, nm:nm + k] = value
    if "qsim" in g:
        arr = g["qsim"]
        arr.resize((nb, nm + k, arr.shape[2]))
    for name, value in (("iteration", np.full(k, iteration, dtype="int32")), ("member", np.arange(nm, nm + k))):
        arr = g[name]
        arr.resize((nm + k,))
        arr[nm:] = value
    root = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    line = provenance.history_line("ensemble append", call or f"append_members(iteration={iteration}, members={k})")
    for grp in (root, g):
        grp.attrs.update(provenance.prepend_history(dict(grp.attrs), line))
    consolidate(path)
    return slice(nm, nm + k)


def ensemble_progress(path: str | Path) -> dict[str, int]:
    """Counts of pending, done and failed (basin, member) runs."""
    status = zarr.open_group(str(path), path=_GROUP, mode="r", use_consolidated=False)["status"][...]
    return {"pending": int((status == PENDING).sum()), "done": int((status == DONE).sum()),
            "failed": int((status == FAILED).sum()), "total": int(status.size)}


def _simulate_chunk(path: str, b0: int, b1: int, launch: int) -> dict[str, Any]:
    """Run the pending members of basins ``b0:b1`` and write their region (one dask task)."""
    from lsegeo.models.protocol import get_model
    from lsegeo.metrics.scores import score_all

    root = zarr.open_group(path, mode="r", use_consolidated=False)
    attrs = root.attrs
    g = zarr.open_group(path, path=_GROUP, mode="r+", use_consolidated=False)
    status = g["status"][b0:b1]
    if not (status == PENDING).any():
        return {"basins": b1 - b0, "ran": 0, "failed": 0, "seconds": 0.0}
    t0 = _time.perf_counter()
    basins = list(g["basin"][b0:b1])
    objectives = [str(o) for o in g["objective"][...]]
    periods = _periods_from_attrs(attrs)
    window = simulation_window(periods, int(attrs["lsegeo_warmup_days"]))
    slices = period_slices(window, periods)
    month = window.month.to_numpy()
    model = get_model(str(attrs["lsegeo_model"]))
    params = g["params"][b0:b1]
    scores = g["scores"][b0:b1]
    runs = g["run"][b0:b1]
    messages = list(g["status_message"][b0:b1])
    keep = "qsim" in g
    store = str(attrs["lsegeo_basins_store"])
    forcing, obs_ds = load_basin_inputs(store, basins, model.forcing_variables, window)
    observed = obs_ds["qobs"]
    ran = failed = 0
    m_lo, m_hi = None, None
    for i, basin in enumerate(basins):
        todo = np.flatnonzero(status[i] == PENDING)
        if todo.size == 0:
            continue
        m_lo = int(todo[0]) if m_lo is None else min(m_lo, int(todo[0]))
        m_hi = int(todo[-1]) + 1 if m_hi is None else max(m_hi, int(todo[-1]) + 1)
        try:
            inputs = {v: forcing[v].sel(basin=basin).values.astype("float64") for v in model.forcing_variables}
            q = model.run(inputs, params[i, todo])
        except Exception as err:  # a model failure is recorded, not raised: the other basins go on
            status[i, todo] = FAILED
            runs[i, todo] = launch
            messages[i] = f"{type(err).__name__}: {err}"
            failed += todo.size
            continue
        bad = ~np.isfinite(q).all(axis=1) | (q < 0).any(axis=1)
        obs = observed.sel(basin=basin).values.astype("float64")
        for k, p in enumerate(periods):
            sl = slices[p.name]
            res = score_all(q[:, sl], obs[sl], month[sl], objectives)
            scores[i, todo, k, :] = np.stack([res[o] for o in objectives], axis=-1)
        scores[i, todo[bad]] = np.nan
        status[i, todo] = np.where(bad, FAILED, DONE)
        runs[i, todo] = launch
        if bad.any():
            messages[i] = f"{int(bad.sum())} member(s) gave NaN or negative flow"
        if keep:
            g["qsim"][b0 + i, todo[0]:todo[-1] + 1] = _fill(q, todo, g["qsim"][b0 + i, todo[0]:todo[-1] + 1])
        ran += todo.size - int(bad.sum())
        failed += int(bad.sum())
    # status last: a task killed before this line leaves its members pending
    g["scores"][b0:b1, m_lo:m_hi] = scores[:, m_lo:m_hi]
    g["run"][b0:b1, m_lo:m_hi] = runs[:, m_lo:m_hi]
    g["status_message"][b0:b1] = np.array(messages, dtype=object)
    g["status"][b0:b1, m_lo:m_hi] = status[:, m_lo:m_hi]
    return {"basins": b1 - b0, "ran": ran, "failed": failed, "seconds": _time.perf_counter() - t0,
            "basin_member_days": (ran + failed) * len(window)}


def _fill(q: np.ndarray, todo: np.ndarray, current: np.ndarray) -> np.ndarray:
    out = np.array(current, dtype="float32")
    out[todo - todo[0]] = q.astype("float32")
    return out


def run_ensemble(path: str | Path, *, client=None, cluster: ClusterConfig | None = None,
                 progress: bool = True, call: str = "") -> dict[str, Any]:
    """Run every pending member of an ensemble store on dask.

    Parameters
    ----------
    path : path-like
        The ensemble store (see :func:`create_ensemble`).
    client : distributed.Client, optional
        Run on this client; otherwise a cluster is started from ``cluster`` (default: local).
    progress : bool
        Show a progress bar (in basins) on standard error.
    call : str
        The command, for ``history``.

    Returns
    -------
    dict
        ``ran`` and ``failed`` member runs, ``skipped_chunks`` (already complete), ``wall`` seconds,
        ``throughput`` in basin-member-days per second of wall time, and the store's counts.
    """
    from distributed import as_completed
    from tqdm.auto import tqdm

    path = Path(path)
    open_ensemble(path)
    root = zarr.open_group(str(path), mode="r+", use_consolidated=False)
    launch = int(root.attrs.get("lsegeo_runs", 0)) + 1
    root.attrs["lsegeo_runs"] = launch
    consolidate(path)  # the attribute write dropped the consolidated metadata; a killed run must not
    g = zarr.open_group(str(path), path=_GROUP, mode="r", use_consolidated=False)
    status = g["status"][...]
    nb = status.shape[0]
    step = int(root.attrs["lsegeo_chunk_basins"])
    todo = [(b0, min(b0 + step, nb)) for b0 in range(0, nb, step) if (status[b0:b0 + step] == PENDING).any()]
    t0 = _time.perf_counter()
    ran = failed = bmd = 0
    key = uuid.uuid4().hex[:8]
    with dask_client(cluster, client) as c, \
            tqdm(total=sum(b1 - b0 for b0, b1 in todo), unit="basin", desc="ensemble", disable=not progress,
                 file=sys.stderr) as bar:
        futures = [c.submit(_simulate_chunk, str(path), b0, b1, launch, pure=False, retries=1,
                            key=f"ensemble-{b0}-{key}") for b0, b1 in todo]
        try:
            for fut in as_completed(futures):
                r = fut.result()
                ran, failed, bmd = ran + r["ran"], failed + r["failed"], bmd + r.get("basin_member_days", 0)
                bar.update(r["basins"])
        except BaseException:
            c.cancel(futures)
            raise
    wall = _time.perf_counter() - t0
    line = provenance.history_line("ensemble run", call or f"run_ensemble(launch={launch})")
    root.attrs.update(provenance.prepend_history(dict(root.attrs), line))
    consolidate(path)
    return {"ran": ran, "failed": failed, "chunks": len(todo), "skipped_chunks": -(-nb // step) - len(todo),
            "wall": wall, "throughput": bmd / wall if wall > 0 else float("nan"), "launch": launch,
            **ensemble_progress(path)}
