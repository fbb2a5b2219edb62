"""Running the pending members of an ensemble store on dask, and scoring them.

Runs are dask tasks, one per chunk of ``lsegeo_chunk_basins`` basins (the store's zarr chunk
along ``basin``). Each task reads its basins' forcing and observations from the basins store,
runs the pending members of each basin through the model adapter
(:func:`lsegeo.models.registry.get_model`), scores them on every period, and writes its own
chunk of every variable, ``status`` last: tasks never share a zarr chunk, so the writes need no
lock, and a task killed half-way leaves its members pending. Running the store again completes
the pending members only.

A model failure (an exception, NaN or negative flow) is recorded as status ``FAILED`` with NaN
scores and a ``status_message``; the other basins go on.

A period is scored only where the basin's observations cover at least ``lsegeo_min_coverage`` of
its days (:data:`lsegeo.periods.DEFAULT_MIN_COVERAGE`, 0.8): below it every objective's score of
that (basin, period) is NaN. Each task records ``coverage(basin, period)`` and, for a period not
scored, ``score_note(basin, period)`` (e.g. "not scored: 17 observed day(s) of 365 in the
calibration period (coverage 0.047 < min_coverage 0.8)"). The member's status is still done: the
run succeeded, and its NaN scores are the rule, not a loss.
"""

from __future__ import annotations

import logging
import sys
import time as _time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lsegeo import provenance
from lsegeo.ensembles.store import DONE, FAILED, GROUP, PENDING, ensemble_progress, open_ensemble, recheck_results
from lsegeo.io.basin_inputs import load_basin_inputs
from lsegeo.io.groups import StoreGroup, add_history, group_attrs, update_attrs
from lsegeo.io.urls import location
from lsegeo.parallel import ClusterSettings, dask_client, submit_task, task_result
from lsegeo.periods import (
    DEFAULT_MIN_COVERAGE,
    coverage_note,
    covered,
    period_coverage,
    period_slices,
    periods_from_json,
    simulation_window,
)

__all__ = ["run_ensemble", "score_members", "bad_members"]

logger = logging.getLogger(__name__)


def score_members(q: np.ndarray, obs: np.ndarray, month: np.ndarray, slices: Mapping[str, slice],
                  objectives: Sequence[str], min_coverage: float = DEFAULT_MIN_COVERAGE) -> np.ndarray:
    """Score simulated flow of several members on several periods.

    Parameters
    ----------
    q : numpy.ndarray
        ``(member, time)`` simulated flow [mm day-1], warm-up included.
    obs : numpy.ndarray
        ``(time,)`` observed flow [mm day-1] on the same days; NaN days are left out.
    month : numpy.ndarray
        ``(time,)`` calendar month of each day (for the monthly objective).
    slices : mapping of str to slice
        Period name -> its days in the time axis (:func:`lsegeo.periods.period_slices`).
    objectives : sequence of str
        Registered objectives (:data:`lsegeo.metrics.objectives.OBJECTIVES`).
    min_coverage : float
        Least share of a period's days with an observation (:func:`lsegeo.periods.period_coverage`);
        a period covered less is not scored.

    Returns
    -------
    numpy.ndarray
        ``(member, period, objective)`` scores, periods in ``slices`` order; NaN for every
        objective on a period whose coverage is below ``min_coverage`` (and where the kernels
        give NaN, :func:`lsegeo.metrics.kernels.score_all`).

    Notes
    -----
    Objectives that the fused kernel computes (:data:`lsegeo.metrics.fused.FUSED_NAMES`) are
    scored by :func:`lsegeo.metrics.fused.score_periods`, one compiled pass per (member,
    period); any other objective by the numpy reference :func:`lsegeo.metrics.kernels.score_all`.
    Both give the same scores (to floating-point reassociation, the same NaN).
    """
    from lsegeo.metrics.fused import FUSED_NAMES, score_periods
    from lsegeo.metrics.kernels import score_all

    ok = covered(period_coverage(obs, slices), min_coverage)
    out = np.full((q.shape[0], len(slices), len(objectives)), np.nan)
    if all(o in FUSED_NAMES for o in objectives):
        kept = [k for k in range(len(slices)) if ok[k]]
        if kept and len(objectives):
            sls = list(slices.values())
            out[:, kept, :] = score_periods(q, obs, month, [sls[k] for k in kept], list(objectives))
        return out
    for k, sl in enumerate(slices.values()):
        if not ok[k]:
            continue
        res = score_all(q[:, sl], obs[sl], month[sl], list(objectives))
        out[:, k, :] = np.stack([res[o] for o in objectives], axis=-1)
    return out


def bad_members(q: np.ndarray) -> np.ndarray:
    """``(member,)`` True where simulated flow ``q (member, time)`` has a NaN or a negative value."""
    return ~np.isfinite(q).all(axis=1) | (q < 0).any(axis=1)


def _simulate_chunk(path: str, b0: int, b1: int, launch: int) -> dict[str, Any]:
    """Run the pending members of basins ``b0:b1`` and write their region (one dask task)."""
    from lsegeo.models.registry import get_model

    g = StoreGroup(path, GROUP, writable=True)
    rows = np.s_[b0:b1]
    status = g.read("status", rows)
    if not (status == PENDING).any():
        return {"basins": b1 - b0, "ran": 0, "failed": 0, "seconds": 0.0}
    t0 = _time.perf_counter()
    attrs = group_attrs(path)
    periods = periods_from_json(attrs["lsegeo_periods"])
    window = simulation_window(periods, int(attrs["lsegeo_warmup_days"]))
    slices = period_slices(window, periods)
    month = window.month.to_numpy()
    model = get_model(str(attrs["lsegeo_model"]), **dict(attrs.get("lsegeo_model_options") or {}))
    basins = [str(b) for b in g.read("basin", rows)]
    objectives = [str(o) for o in g.read("objective")]
    params, scores, runs = g.read("params", rows), g.read("scores", rows), g.read("run", rows)
    messages = [str(m) for m in g.read("status_message", rows)]
    keep = "qsim" in g
    forcing, observed = load_basin_inputs(str(attrs["lsegeo_basins_store"]), basins, model.forcing_variables, window)
    min_coverage = float(attrs.get("lsegeo_min_coverage", DEFAULT_MIN_COVERAGE))
    coverage = period_coverage(observed["qobs"].sel(basin=basins).values.astype("float64"), slices)
    days = [sl.stop - sl.start for sl in slices.values()]
    notes = np.array([[coverage_note(p, c, n, min_coverage) for p, c, n in zip(slices, row, days, strict=True)]
                      for row in coverage], dtype=object)
    ran = failed = 0
    m_lo, m_hi = status.shape[1], 0
    for i, basin in enumerate(basins):
        todo = np.flatnonzero(status[i] == PENDING)
        if todo.size == 0:
            continue
        m_lo, m_hi = min(m_lo, int(todo[0])), max(m_hi, int(todo[-1]) + 1)
        runs[i, todo] = launch
        try:
            inputs = {v: forcing[v].sel(basin=basin).values.astype("float64") for v in model.forcing_variables}
            q = model.run(inputs, params[i, todo])
        except Exception as err:  # a model failure is recorded, not raised: the other basins go on
            status[i, todo] = FAILED
            messages[i] = f"{type(err).__name__}: {err}"
            failed += todo.size
            logger.warning("basin %s: %d member(s) failed: %s", basin, todo.size, messages[i])
            continue
        bad = bad_members(q)
        obs = observed["qobs"].sel(basin=basin).values.astype("float64")
        scores[i, todo] = score_members(q, obs, month, slices, objectives, min_coverage)
        scores[i, todo[bad]] = np.nan
        status[i, todo] = np.where(bad, FAILED, DONE)
        if bad.any():
            messages[i] = f"{int(bad.sum())} member(s) gave NaN or negative flow"
        if keep:
            span = (b0 + i, slice(int(todo[0]), int(todo[-1]) + 1))
            series = g.read("qsim", span).astype("float32")
            series[todo - todo[0]] = q.astype("float32")
            g.write("qsim", span, series)
        ran += todo.size - int(bad.sum())
        failed += int(bad.sum())
    # status last: a task killed before this line leaves its members pending
    cols = np.s_[b0:b1, m_lo:m_hi]
    g.write("scores", cols, scores[:, m_lo:m_hi])
    g.write("run", cols, runs[:, m_lo:m_hi])
    g.write("status_message", rows, np.array(messages, dtype=object))
    if "coverage" in g:  # stores made before the coverage rule have no such variables
        g.write("coverage", rows, coverage)
        g.write("score_note", rows, notes)
    g.write("status", cols, status[:, m_lo:m_hi])
    return {"basins": b1 - b0, "ran": ran, "failed": failed, "seconds": _time.perf_counter() - t0,
            "basin_member_days": (ran + failed) * len(window)}


def _pending_chunks(path: Path, step: int) -> tuple[list[tuple[int, int]], int]:
    """The ``(b0, b1)`` basin ranges of the chunks with a pending member, and the number of basins."""
    status = StoreGroup(path, GROUP).read("status")
    nb = status.shape[0]
    return [(b0, min(b0 + step, nb)) for b0 in range(0, nb, step) if (status[b0:b0 + step] == PENDING).any()], nb


def run_ensemble(path: str | Path, *, client=None, cluster: ClusterSettings | None = None,
                 progress: bool = True, call: str = "") -> dict[str, Any]:
    """Run every pending member of an ensemble store on dask.

    Parameters
    ----------
    path : path-like
        The ensemble store (see :func:`lsegeo.ensembles.store.create_ensemble`).
    client : distributed.Client, optional
        Run on this client; otherwise a cluster is started from ``cluster``.
    cluster : ClusterSettings, optional
        The cluster to start when no ``client`` is given (:func:`lsegeo.parallel.dask_client`;
        default a local cluster); a ``cluster`` configuration section works too.
    progress : bool
        Show a progress bar (in basins) on standard error.
    call : str
        The command, for ``history``.

    Returns
    -------
    dict
        ``ran`` and ``failed`` member runs of this launch, ``chunks`` run and ``skipped_chunks``
        (already complete), ``wall`` seconds, ``throughput`` in basin-member-days per second of
        wall time, ``launch`` (this launch's number), ``rerun_unreadable`` (finished runs whose
        results could not be read, set back to pending and run again:
        :func:`lsegeo.ensembles.store.recheck_results`) and the store's counts
        (:func:`lsegeo.ensembles.store.ensemble_progress`).

    Raises
    ------
    StoreError
        ``path`` is not an ensemble store.
    """
    from distributed import as_completed
    from tqdm.auto import tqdm

    path = location(path)
    open_ensemble(path)
    attrs = group_attrs(path)
    launch = int(attrs.get("lsegeo_runs", 0)) + 1
    update_attrs(path, {"lsegeo_runs": launch})  # consolidated at once: a killed run must not leave it stale
    step = int(attrs["lsegeo_chunk_basins"])
    rechecked = recheck_results(path)  # finished runs whose results cannot be read run again
    todo, nb = _pending_chunks(path, step)
    t0 = _time.perf_counter()
    ran = failed = bmd = 0
    key = uuid.uuid4().hex[:8]  # keys unique to this launch: a client may still know an earlier one's
    with dask_client(cluster, client) as c, \
            tqdm(total=sum(b1 - b0 for b0, b1 in todo), unit="basin", desc="ensemble", disable=not progress,
                 file=sys.stderr) as bar:
        futures = [submit_task(c, _simulate_chunk, str(path), b0, b1, launch,  # not retried: errors reported once
                               key=f"ensemble-{b0}-{key}") for b0, b1 in todo]
        try:
            for fut in as_completed(futures):
                r = task_result(fut)
                ran, failed, bmd = ran + r["ran"], failed + r["failed"], bmd + r.get("basin_member_days", 0)
                bar.update(r["basins"])
        except BaseException:
            c.cancel(futures)
            raise
    wall = _time.perf_counter() - t0
    add_history(path, provenance.history_line("ensemble run", call or f"run_ensemble(launch={launch})"))
    logger.info("launch %d of %s: %d members run, %d failed, %d chunks (%d complete already) in %.1f s",
                launch, path, ran, failed, len(todo), -(-nb // step) - len(todo), wall)
    return {"ran": ran, "failed": failed, "chunks": len(todo), "skipped_chunks": -(-nb // step) - len(todo),
            "wall": wall, "throughput": bmd / wall if wall > 0 else float("nan"), "launch": launch,
            "rerun_unreadable": rechecked["reset"], **ensemble_progress(path)}
