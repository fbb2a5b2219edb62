"""The next calibration iteration for a model that runs on HPC (CTSM): propose, write case inputs, collect.

The embedded loop (:mod:`lsegeo.calibration.loop`) proposes members and runs them at once. CTSM
runs elsewhere, so an iteration is split in two commands with a manifest between them:

1. :func:`propose_hpc_iteration`: the calibration store starts as a copy of iteration 0 (e.g.
   the ingested CTSM ensemble, :mod:`lsegeo.ingest.table`); the LSE is fitted on every finished
   member and the proposals of iteration ``k`` are appended as **pending** members, exactly as
   the loop does (:func:`lsegeo.calibration.loop.propose_iteration`). Each pending (basin,
   member) then gets its CTSM case inputs, written by
   :func:`lsegeo.models.ctsm.inputs.write_member_inputs` into its own folder
   ``<root>/iteration_<k>/<basin>/member_<m>/`` (edited parameter file, surface dataset,
   ``user_nl_clm``), and ``<root>/iteration_<k>/manifest.json`` lists them: basin, member,
   iteration, folder, and the history files expected (a glob below the folder). The manifest is
   written last, so its presence says every folder is complete; a killed run is resumed (the
   proposals are kept, finished folders are skipped).
2. Run the cases on the HPC system (each case's ``user_nl_clm`` gets the folder's lines; the
   daily ``h1`` history with ``QRUNOFF`` goes to the folder's ``output/``, or wherever the
   manifest's glob says).
3. :func:`collect_iteration`: the manifest drives reading the history files that have arrived
   (:func:`lsegeo.models.ctsm.history.basin_runoff`: mm/s to mm/day, cells weighted, noleap
   calendar on the observation days) and scoring them with the embedded runner's scoring
   (:func:`lsegeo.ensembles.runner.score_members`). A member whose history is missing stays
   pending (collect again later); an unusable history (no ``QRUNOFF``, another calendar, gaps,
   NaN or negative runoff) makes the member ``FAILED`` with the reason in ``status_message``.
   Basins without observations in the basins store, and basins whose ``has_scores`` is false
   (withheld for regionalization: their streamflow is never used), are ``DONE`` with NaN scores
   and a ``score_note``.

Values are checked against the store's own bounds (the space the ensemble was sampled in),
which may be wider than the registry's calibration bounds (zbedrock's sampled [8.5, 12.8] m).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lsegeo import provenance
from lsegeo.calibration.loop import propose_iteration
from lsegeo.calibration.settings import CalibrationSettings
from lsegeo.calibration.store import CalibrationPaths, member_iterations, start_or_resume
from lsegeo.ensembles.store import DONE, FAILED, GROUP, PENDING, ensemble_progress, open_ensemble, truncate_members
from lsegeo.errors import StoreError
from lsegeo.io.groups import StoreGroup, add_history, group_attrs, update_attrs
from lsegeo.io.stores import root_attrs
from lsegeo.periods import DEFAULT_MIN_COVERAGE, periods_from_json, simulation_window

__all__ = ["MANIFEST", "CtsmCase", "hpc_root", "propose_hpc_iteration", "read_manifest", "collect_iteration"]

logger = logging.getLogger(__name__)

#: the manifest of an iteration's case inputs, in ``<root>/iteration_<k>/``
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class CtsmCase:
    """How the members' CTSM inputs are written.

    Parameters
    ----------
    base_paramfile, base_surfdata : str or None
        The cases' parameter file and surface dataset; ``{basin}`` is replaced by the gauge id
        (one surface dataset per basin: ``surfdata_{basin}.nc``).
    version : str
        CTSM layout or tag (:func:`lsegeo.models.ctsm.parameters.layout_of`).
    history_glob : str
        Where a member's daily history files will be, relative to its folder.
    pft_mean : {"all", "vegetated"}
        PFT entries of a per-PFT field's mean (:func:`~lsegeo.models.ctsm.inputs.write_member_inputs`).
    """

    base_paramfile: str | None
    base_surfdata: str | None
    version: str = "5.1"
    history_glob: str = "output/*.clm2.h1.*.nc"
    pft_mean: str = "all"


def hpc_root(store: str | Path) -> Path:
    """Default folder of a calibration store's case inputs: ``<store>.hpc`` beside it."""
    store = Path(store)
    return store.with_name(store.name + ".hpc")


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def _write_case_inputs(store: Path, k: int, case: CtsmCase, root: Path) -> Path:
    """Case inputs of every pending member of iteration ``k``, then the manifest; return its path."""
    from lsegeo.emulators.features import space_from_store
    from lsegeo.models.ctsm.inputs import write_member_inputs
    from lsegeo.models.ctsm.parameters import load_registry

    ens = open_ensemble(store)
    space = space_from_store(ens)
    reg = load_registry().with_bounds({n: (space[n].lower, space[n].upper) for n in space.names}, "the store")
    g = StoreGroup(store, GROUP)
    status, params, iteration = g.read("status"), g.read("params"), g.read("iteration")
    basins = [str(b) for b in ens.basin.values]
    folder_k = root / f"iteration_{k}"
    rows = []
    for b, m in zip(*np.nonzero((status == PENDING) & (iteration == k)[None, :]), strict=True):
        basin = basins[b]
        folder = folder_k / basin / f"member_{int(m):05d}"
        if not folder.exists():  # each folder is written atomically: one that exists is complete
            write_member_inputs(case.base_paramfile and case.base_paramfile.format(basin=basin),
                                case.base_surfdata and case.base_surfdata.format(basin=basin),
                                dict(zip(space.names, params[b, m].tolist(), strict=True)), case.version, folder,
                                registry=reg, pft_mean=case.pft_mean)  # type: ignore[arg-type]
        rows.append({"basin": basin, "member": int(m), "iteration": int(k),
                     "folder": str(folder.resolve()), "history": case.history_glob,
                     "user_nl_clm": str((folder / "user_nl_clm").resolve())})
    attrs = root_attrs(store)
    manifest = {"store": str(Path(store).resolve()), "store_id": str(attrs.get("id", "")), "iteration": int(k),
                "ctsm_version": case.version, "history_glob": case.history_glob,
                "base_paramfile": case.base_paramfile, "base_surfdata": case.base_surfdata,
                "created": provenance.history_line("calibrate propose hpc", f"iteration {k}"), "members": rows}
    path = folder_k / MANIFEST
    folder_k.mkdir(parents=True, exist_ok=True)
    _write_json(path, manifest)
    logger.info("iteration %d: case inputs of %d members in %s", k, len(rows), folder_k)
    return path


def propose_hpc_iteration(paths: CalibrationPaths, settings: CalibrationSettings, case: CtsmCase, *, client,
                          job: Mapping[str, Any], root: str | Path | None = None, overwrite: bool = False,
                          progress: bool = False) -> Path:
    """Propose the next iteration's members and write them as CTSM case inputs with a manifest.

    Parameters
    ----------
    paths : CalibrationPaths
        Iteration 0 (an ensemble store without pending members, e.g. the ingested CTSM
        ensemble), the calibration store (made as its copy when absent) and the basins store.
    settings : CalibrationSettings
        Emulator, proposals (``proposal.n_proposals`` per basin), objectives and period.
    case : CtsmCase
        Base files, CTSM version and the expected history files.
    client : distributed.Client
        Where the emulator fit and the proposals run.
    job : mapping
        What defines the calibration (JSON values; its digest decides whether the store resumes).
    root : path-like, optional
        Folder of the case inputs (default :func:`hpc_root` of the calibration store).
    overwrite : bool
        Start the calibration store afresh from iteration 0.
    progress : bool
        Progress bar of the proposals.

    Returns
    -------
    pathlib.Path
        The manifest of the iteration. When the store's last iteration still has pending members
        and its manifest exists, that manifest is returned and nothing is proposed: collect it
        first.
    """
    root = Path(root) if root else hpc_root(paths.store)
    start_or_resume(paths, job, overwrite=overwrite)
    it = member_iterations(paths.store)
    last = int(it.max())
    pending = (StoreGroup(paths.store, GROUP).read("status") == PENDING).any(axis=0)
    if pending.any():
        k = int(it[pending].max())
        manifest = root / f"iteration_{k}" / MANIFEST
        if manifest.exists():
            logger.info("iteration %d already proposed (%s); collect its history files first", k, manifest)
            return manifest
        have = int((it == k).sum())
        if k == last and have != settings.proposal.n_proposals:  # an append that was interrupted
            truncate_members(paths.store, int((it < k).sum()))
            propose_iteration(k, settings, paths, client=client, progress=progress)
    else:
        k = last + 1
        propose_iteration(k, settings, paths, client=client, progress=progress)
    return _write_case_inputs(paths.store, k, case, root)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Read an iteration's manifest (see the module docstring).

    Raises
    ------
    StoreError
        The file is missing or lacks ``store``, ``iteration`` or ``members``.
    """
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"no manifest {path}")
    m = json.loads(path.read_text())
    missing = [k for k in ("store", "iteration", "members") if k not in m]
    if missing:
        raise StoreError(f"{path} is not an lsegeo iteration manifest (no {missing})")
    return m


def _observed(basins_store: str, basins: Sequence[str], window) -> dict[str, np.ndarray]:
    """Observed flow of the basins that the basins store observes, on the window."""
    from lsegeo.io.basin_inputs import load_basin_inputs
    from lsegeo.io.stores import open_store

    have = {str(b) for b in open_store(basins_store, "observed").basin.values}
    chosen = [b for b in dict.fromkeys(basins) if b in have]
    if not chosen:
        return {}
    _, obs = load_basin_inputs(basins_store, chosen, ("prcp",), window)
    return {b: obs["qobs"].sel(basin=b).values.astype("float64") for b in chosen}


def collect_iteration(manifest: str | Path, *, weights: Mapping[str, Sequence[float]] | None = None,
                      call: str = "") -> dict[str, int]:
    """Score the members of a manifest whose history files have arrived into the calibration store.

    Parameters
    ----------
    manifest : path-like
        The iteration's ``manifest.json``.
    weights : mapping of str to sequence of float, optional
        Grid-cell weights per basin (default ``area x landfrac`` of the history).
    call : str
        The command, for ``history``.

    Returns
    -------
    dict
        ``done``, ``failed`` (in this collect), ``missing`` (no history yet: still pending),
        ``already`` (finished before), and the store's ``pending`` count.

    Raises
    ------
    StoreError
        The manifest's store is missing or was replaced (another ``id``), or names a member the
        store does not have.
    """
    import pandas as pd

    from lsegeo.ensembles.runner import score_members
    from lsegeo.models.ctsm.history import basin_runoff
    from lsegeo.periods import coverage_note, period_coverage, period_slices

    m = read_manifest(manifest)
    store = Path(m["store"])
    attrs = group_attrs(store)
    if m.get("store_id") and str(attrs.get("id", "")) != m["store_id"]:
        raise StoreError(f"{manifest} was written for store id {m['store_id']}, but {store} has id {attrs.get('id')}")
    ens = open_ensemble(store)
    periods = periods_from_json(str(attrs["lsegeo_periods"]))
    window = simulation_window(periods, int(attrs["lsegeo_warmup_days"]))
    slices = period_slices(window, periods)
    month = pd.DatetimeIndex(window).month.to_numpy()
    objectives = [str(o) for o in ens.objective.values]
    min_cov = float(attrs.get("lsegeo_min_coverage", DEFAULT_MIN_COVERAGE))
    pos = {str(b): i for i, b in enumerate(ens.basin.values)}
    g = StoreGroup(store, GROUP, writable=True)
    status, messages = g.read("status"), [str(s) for s in g.read("status_message")]
    bad = [(r["basin"], r["member"]) for r in m["members"] if r["basin"] not in pos or r["member"] >= status.shape[1]]
    if bad:
        raise StoreError(f"{manifest} names members that {store} does not have: {bad[:5]}")
    launch = int(attrs.get("lsegeo_runs", 0)) + 1
    todo = [r for r in m["members"] if status[pos[r["basin"]], r["member"]] == PENDING]
    scored = g.read("has_scores") if "has_scores" in g else np.ones(len(pos), dtype=bool)
    obs = _observed(str(attrs["lsegeo_basins_store"]), [r["basin"] for r in todo if scored[pos[r["basin"]]]], window)
    feb29 = (window.month == 2) & (window.day == 29)
    counts = {"done": 0, "failed": 0, "missing": 0, "already": len(m["members"]) - len(todo)}
    for r in todo:
        b, mem = pos[r["basin"]], int(r["member"])
        files = sorted(Path(r["folder"]).glob(r.get("history", m.get("history_glob", ""))))
        if not files:
            counts["missing"] += 1
            continue
        why = ""
        try:
            q = basin_runoff(files, window, weights=(weights or {}).get(r["basin"]))
            if (~np.isfinite(q[~feb29])).any() or (q[np.isfinite(q)] < 0).any():
                why = "the runoff has NaN or negative days"
        except Exception as err:  # an unusable history is this member's failure, named in the store
            why = f"{type(err).__name__}: {err}"
        if why:
            line = f"member {mem} (collect {launch}): {why}"
            messages[b] = f"{messages[b]}\n{line}" if messages[b] else line
            g.write("status_message", b, messages[b])
            g.write("run", (b, mem), launch)
            g.write("status", (b, mem), FAILED)
            counts["failed"] += 1
            continue
        o = obs.get(r["basin"])
        scores = (score_members(q[None, :], o, month, slices, objectives, min_cov)[0] if o is not None
                  else np.full((len(periods), len(objectives)), np.nan))
        cov = period_coverage(o[None, :], slices)[0] if o is not None else np.zeros(len(periods))
        days = [sl.stop - sl.start for sl in slices.values()]
        notes = [coverage_note(p, c, n, min_cov) for p, c, n in zip(slices, cov, days, strict=True)]
        if "coverage" in g and scored[b]:  # a basin without scores (withheld) keeps its note
            g.write("coverage", b, cov)
            g.write("score_note", b, np.array(notes, dtype=object))
        g.write("scores", (b, mem), scores)
        g.write("run", (b, mem), launch)
        g.write("status", (b, mem), DONE)  # last: a collect killed before this line leaves the member pending
        counts["done"] += 1
    if counts["done"] or counts["failed"]:
        update_attrs(store, {"lsegeo_runs": launch})
        add_history(store, provenance.history_line("calibrate collect hpc", call or f"collect {manifest}"))
    counts["pending"] = ensemble_progress(store)["pending"]
    logger.info("collect %s: %d done, %d failed, %d without history (pending)", manifest, counts["done"],
                counts["failed"], counts["missing"])
    return counts
