"""Running the pending members of an ensemble store with an external model (CTSM, any executable).

The embedded model runs in the worker (:mod:`lsegeo.ensembles.runner`); an external model runs
as a separate process per member, prepared, launched and collected by
:mod:`lsegeo.models.external`. :func:`run_external_ensemble` makes one dask task per pending
(basin, member), on whatever cluster is configured (local processes, a running scheduler, Slurm
or PBS jobs through dask-jobqueue). Each task

1. prepares the member's working folder from the store's parameter values (idempotent; a
   folder whose command already finished with exit status 0 for the same inputs is collected
   without running it again);
2. runs the command rendered from the template, without a shell, with a timeout;
3. reads the member's daily history files (``QRUNOFF`` in mm/s, noleap calendar), makes the
   basin's runoff in mm/day on the simulation window's days (NaN on 29 February,
   :mod:`lsegeo.models.ctsm.history`);
4. scores it against the basin's observations with the embedded runner's scoring
   (:func:`lsegeo.ensembles.runner.score_members`: the same objectives, periods and coverage
   rule).

The task returns its record and the launching process writes it into the ensemble store as
soon as it arrives (``scores``, ``run``, ``qsim`` if kept, then ``status`` last). One process
writes, so members of the same zarr chunk never race; a launch killed at any point leaves every
member whose status was not written pending, and the next launch runs only those (and, of
those, re-runs a command only where its folder has no successful run record).

A member fails (status ``FAILED``, NaN scores) when its inputs cannot be written, its command
exits non-zero, is not found or times out, it leaves no history file, the history is unusable
(no ``QRUNOFF``, another calendar, gaps, too short) or the runoff is negative or NaN on a day
other than 29 February. The basin's ``status_message`` gets one line per failed member:
``member 3 (launch 1): exit status 2: <last log lines joined by ' | '>``; the whole log stays
in the member's folder.
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
from lsegeo.ensembles.store import DONE, FAILED, GROUP, PENDING, ensemble_progress, open_ensemble
from lsegeo.io.groups import StoreGroup, add_history, group_attrs, update_attrs
from lsegeo.models.external_settings import ExternalModelSettings
from lsegeo.parallel import ClusterSettings, dask_client
from lsegeo.periods import DEFAULT_MIN_COVERAGE, periods_from_json, simulation_window

__all__ = ["run_external_ensemble", "run_member", "STATIC_FIELDS"]

logger = logging.getLogger(__name__)

#: placeholders of the command template that every member has (the inputs writer adds its own)
STATIC_FIELDS = ("member_dir", "output_dir", "case", "basin", "member", "launch", "start", "end",
                 "basins_store", "python")


def _failure(basin: str, member: int, message: str, exit_status: int | None = None, tail=(), **extra) -> dict:
    return {"basin": basin, "member": member, "status": FAILED, "message": message, "exit_status": exit_status,
            "tail": list(tail), **extra}


def run_member(*, basin: str, member: int, values: Mapping[str, float], launch: int, basins_store: str,
               periods_json: str, warmup_days: int, objectives: Sequence[str], min_coverage: float,
               settings: ExternalModelSettings, weights: Sequence[float] | None = None,
               keep_series: bool = False, bounds: Mapping[str, Sequence[float]] | None = None) -> dict[str, Any]:
    """Prepare, run, collect and score one (basin, member) (one dask task).

    Parameters
    ----------
    basin : str
        Gauge id.
    member : int
        Member index in the store.
    values : mapping of str to float
        The member's parameter values.
    launch : int
        Number of this launch (the ``{launch}`` placeholder; recorded in ``run``).
    basins_store : str
        The basins store with the basin's observations (``{basins_store}``).
    periods_json, warmup_days :
        The store's periods and warm-up, which give the simulation window (``{start}``, ``{end}``).
    objectives : sequence of str
        Objectives to score.
    min_coverage : float
        Least share of observed days for a period to be scored.
    settings : ExternalModelSettings
        Command template, working root, timeout, history glob, inputs writer.
    weights : sequence of float, optional
        Grid-cell weights of the basin (default ``area x landfrac`` from the history).
    keep_series : bool
        Return the simulated series too.
    bounds : mapping of str to (float, float), optional
        The store's parameter bounds, for an inputs writer that checks values against them
        (:func:`lsegeo.models.external.prepare_member`).

    Returns
    -------
    dict
        ``basin``, ``member``, ``status`` (done or failed), ``scores`` ``(period, objective)``,
        ``exit_status``, ``tail`` (last log lines), ``message`` (why it failed), ``reused``
        (collected from an earlier finished run), ``seconds``, ``qsim`` when ``keep_series``.
        Failures are returned, never raised.
    """
    import pandas as pd

    from lsegeo.ensembles.runner import score_members
    from lsegeo.io.basin_inputs import load_basin_inputs
    from lsegeo.models.ctsm.history import basin_runoff
    from lsegeo.models.external import (
        OUTPUT_DIR,
        member_folder,
        prepare_member,
        render_command,
        run_command,
        write_run_record,
    )
    from lsegeo.periods import period_slices

    t0 = _time.perf_counter()
    periods = periods_from_json(periods_json)
    window = simulation_window(periods, warmup_days)
    folder = member_folder(settings.work_root, basin, member).resolve()
    try:
        paths, digest, reused = prepare_member(folder, basin=basin, member=member, values=values,
                                               writer=settings.inputs_writer, writer_options=settings.writer_options,
                                               command=settings.command, bounds=bounds)
    except Exception as err:  # a member whose inputs cannot be written fails; the others go on
        return _failure(basin, member, f"inputs not written: {type(err).__name__}: {err}")
    fields = {"member_dir": str(folder), "output_dir": str(folder / OUTPUT_DIR), "basin": basin,
              "member": int(member), "launch": int(launch), "start": window[0].date().isoformat(),
              "end": window[-1].date().isoformat(), "basins_store": str(basins_store), "python": sys.executable,
              **paths}
    fields["case"] = settings.case_name.format_map(fields)
    tail: tuple[str, ...] = ()
    if not reused:
        try:
            argv = render_command(settings.command, fields)
        except ValueError as err:
            return _failure(basin, member, str(err))
        result = run_command(argv, folder, timeout_s=settings.timeout_s, tail_lines=settings.log_tail_lines)
        write_run_record(folder, result, digest, paths)
        tail = result.tail
        if not result.ok:
            why = (f"timed out after {settings.timeout_s:g} s" if result.timed_out
                   else f"exit status {result.returncode}")
            return _failure(basin, member, why, result.returncode, tail, reused=False)
    files = sorted(folder.glob(settings.history_glob))
    if not files:
        return _failure(basin, member, f"no history file matches {settings.history_glob!r} in {folder}", 0, tail,
                        reused=reused)
    try:
        q = basin_runoff(files, window, weights=weights, variable=settings.runoff_variable)
    except Exception as err:  # an unusable history is this member's failure
        return _failure(basin, member, f"{type(err).__name__}: {err}", 0, tail, reused=reused)
    feb29 = (window.month == 2) & (window.day == 29)
    if (~np.isfinite(q[~feb29])).any() or (q[np.isfinite(q)] < 0).any():
        return _failure(basin, member, "the runoff has NaN or negative days", 0, tail, reused=reused)
    _, observed = load_basin_inputs(basins_store, [basin], ("prcp",), window)
    obs = observed["qobs"].sel(basin=basin).values.astype("float64")
    slices = period_slices(window, periods)
    scores = score_members(q[None, :], obs, pd.DatetimeIndex(window).month.to_numpy(), slices, objectives,
                           min_coverage)[0]
    out = {"basin": basin, "member": member, "status": DONE, "scores": scores, "exit_status": 0, "tail": list(tail),
           "message": "", "reused": reused, "seconds": _time.perf_counter() - t0}
    if keep_series:
        out["qsim"] = q.astype("float32")
    return out


def _failure_line(r: Mapping[str, Any], launch: int) -> str:
    line = f"member {r['member']} (launch {launch}): {r['message']}"
    if r.get("tail"):
        line += ": " + " | ".join(r["tail"])
    return line


def _coverage(basins_store: str, basins: Sequence[str], periods_json: str, warmup_days: int,
              min_coverage: float) -> tuple[np.ndarray, np.ndarray]:
    """``coverage(basin, period)`` and ``score_note(basin, period)`` of the embedded runner, for these basins."""
    from lsegeo.io.basin_inputs import load_basin_inputs
    from lsegeo.periods import coverage_note, period_coverage, period_slices

    periods = periods_from_json(periods_json)
    window = simulation_window(periods, warmup_days)
    slices = period_slices(window, periods)
    _, observed = load_basin_inputs(basins_store, list(basins), ("prcp",), window)
    cov = period_coverage(observed["qobs"].sel(basin=list(basins)).values.astype("float64"), slices)
    days = [sl.stop - sl.start for sl in slices.values()]
    notes = np.array([[coverage_note(p, c, n, min_coverage) for p, c, n in zip(slices, row, days, strict=True)]
                      for row in cov], dtype=object)
    return cov, notes


def run_external_ensemble(path: str | Path, settings: ExternalModelSettings, *, client=None,
                          cluster: ClusterSettings | None = None,
                          weights: Mapping[str, Sequence[float]] | None = None, progress: bool = True,
                          call: str = "") -> dict[str, Any]:
    """Run every pending member of an ensemble store as an external command, one dask task each.

    Parameters
    ----------
    path : path-like
        The ensemble store (:func:`lsegeo.ensembles.store.create_ensemble`; its ``lsegeo_model``
        is recorded, not imported).
    settings : ExternalModelSettings
        The command template, working root, timeout, log tail, history glob and inputs writer.
    client : distributed.Client, optional
        Run on this client; otherwise a cluster is started from ``cluster``.
    cluster : ClusterSettings, optional
        The cluster to start when no ``client`` is given (default a local one).
    weights : mapping of str to sequence of float, optional
        Grid-cell weights per basin (default ``area x landfrac`` of each history file).
    progress : bool
        Show a progress bar (members) on standard error.
    call : str
        The command, for ``history``.

    Returns
    -------
    dict
        ``ran`` (done in this launch), ``failed`` (failed in this launch), ``reused`` (collected
        from a finished run of an earlier, killed launch), ``launch``, ``wall`` seconds and the
        store's counts (:func:`lsegeo.ensembles.store.ensemble_progress`: ``pending``, ``done``,
        ``total``, and its ``failed`` as ``failed_total``).

    Raises
    ------
    StoreError
        ``path`` is not an ensemble store.
    ValueError
        The command template is empty, or (with the default inputs writer) uses an unknown
        placeholder.
    """
    from distributed import as_completed
    from tqdm.auto import tqdm

    from lsegeo.models.external import split_template, template_fields

    path = Path(path)
    ens = open_ensemble(path)
    split_template(settings.command)
    if settings.inputs_writer == ExternalModelSettings.inputs_writer:
        unknown = template_fields(settings.command) - set(STATIC_FIELDS) - {"member_file"}
        if unknown:
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)} in the command template; known: "
                             f"{', '.join(sorted({*STATIC_FIELDS, 'member_file'}))}")
    attrs = group_attrs(path)
    launch = int(attrs.get("lsegeo_runs", 0)) + 1
    update_attrs(path, {"lsegeo_runs": launch, "lsegeo_external_command": list(split_template(settings.command)),
                        "lsegeo_external_work_root": str(Path(settings.work_root).resolve())})
    g = StoreGroup(path, GROUP, writable=True)
    status = g.read("status")
    params = g.read("params")
    basins = [str(b) for b in ens.basin.values]
    names = [str(p) for p in ens.param.values]
    objectives = [str(o) for o in ens.objective.values]
    common = {"launch": launch, "basins_store": str(attrs["lsegeo_basins_store"]),
              "periods_json": str(attrs["lsegeo_periods"]), "warmup_days": int(attrs["lsegeo_warmup_days"]),
              "objectives": objectives, "settings": settings, "keep_series": "qsim" in g,
              "min_coverage": float(attrs.get("lsegeo_min_coverage", DEFAULT_MIN_COVERAGE)),
              "bounds": {n: (float(lo), float(hi)) for n, lo, hi in
                         zip(names, ens["param_lower"].values, ens["param_upper"].values, strict=True)}}
    todo = [(b, m) for b, m in zip(*np.nonzero(status == PENDING), strict=True)]
    if todo and "coverage" in g:
        rows = sorted({b for b, _ in todo})
        cov, notes = _coverage(common["basins_store"], [basins[b] for b in rows], common["periods_json"],
                               common["warmup_days"], common["min_coverage"])
        for k, b in enumerate(rows):
            g.write("coverage", b, cov[k])
            g.write("score_note", b, notes[k])
    messages = {b: str(m) for b, m in enumerate(g.read("status_message"))}
    t0 = _time.perf_counter()
    ran = failed = reused = 0
    key = uuid.uuid4().hex[:8]
    weights = dict(weights or {})
    with dask_client(cluster, client) as c, \
            tqdm(total=len(todo), unit="member", desc="external", disable=not progress, file=sys.stderr) as bar:
        futures = {c.submit(run_member, basin=basins[b], member=int(m),
                            values=dict(zip(names, params[b, m].tolist(), strict=True)),
                            weights=weights.get(basins[b]), **common, pure=False,
                            key=f"external-{basins[b]}-{int(m)}-{key}"): (int(b), int(m)) for b, m in todo}
        try:
            for fut in as_completed(list(futures)):
                b, m = futures[fut]
                r = fut.result()
                if r["status"] == DONE:
                    g.write("scores", (b, m), r["scores"])
                    if "qsim" in r:
                        g.write("qsim", (b, m), r["qsim"])
                    ran += 1
                    reused += int(bool(r.get("reused")))
                else:
                    failed += 1
                    line = _failure_line(r, launch)
                    messages[b] = f"{messages[b]}\n{line}" if messages[b] else line
                    g.write("status_message", b, messages[b])
                    logger.warning("basin %s: %s", basins[b], line)
                g.write("run", (b, m), launch)
                g.write("status", (b, m), r["status"])  # last: a launch killed before this line leaves it pending
                bar.update(1)
        except BaseException:
            c.cancel(list(futures))
            raise
    wall = _time.perf_counter() - t0
    add_history(path, provenance.history_line("ensemble run external",
                                              call or f"run_external_ensemble(launch={launch})"))
    logger.info("launch %d of %s: %d members done (%d collected from earlier runs), %d failed in %.1f s",
                launch, path, ran, reused, failed, wall)
    counts = ensemble_progress(path)
    return {**counts, "failed_total": counts["failed"], "ran": ran, "failed": failed, "reused": reused,
            "launch": launch, "wall": wall}
