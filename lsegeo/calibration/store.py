"""The calibration store: where the emulator loop keeps its state, and what is read back from it.

A calibration store is an ensemble store (:mod:`lsegeo.ensembles.store`) that starts as a copy
of iteration 0 (:func:`start_or_resume`) and grows by the members each iteration proposes. Beside
it, ``<store>.emulators/iteration_<k>/`` holds the emulator fitted in iteration ``k``, complete
when its :data:`MARKER` file is there (:func:`save_emulator`). Everything the loop derives is
recomputed from the members: :func:`calibration_history` (the best simulated score of every
basin after each iteration), :func:`calibrated_parameters` (the parameters of the best simulated
member, never the emulator's optimum, as in Tang, Wood & Swenson 2025) and their copy in group
``calibration`` (:func:`record_summary`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from lsegeo import provenance
from lsegeo.conventions import BASIN, ITERATION, PERIOD
from lsegeo.ensembles.store import DONE, GROUP, ensemble_progress, open_ensemble
from lsegeo.errors import ConfigError, StoreError
from lsegeo.io.groups import StoreGroup, group_attrs, update_attrs, write_group
from lsegeo.io.stores import atomic_store, consolidate, root_attrs

__all__ = ["MARKER", "SKILL_FILE", "SUMMARY_GROUP", "CalibrationPaths", "start_or_resume", "member_iterations",
           "save_emulator", "saved_iterations", "calibration_history", "calibrated_parameters", "record_summary"]

#: file that marks a saved emulator directory as complete
MARKER = "COMPLETE"
#: the emulator's fit information and cross-validated skill, saved beside it
SKILL_FILE = "calibration_skill.json"
#: group of the store that holds the derived summaries
SUMMARY_GROUP = "calibration"


@dataclass(frozen=True)
class CalibrationPaths:
    """Where a calibration keeps its state.

    Attributes
    ----------
    iteration0 : pathlib.Path
        The ensemble store of iteration 0.
    store : pathlib.Path
        The calibration store.
    basins_store : pathlib.Path
        The basins store (attributes of the large-sample emulator, forcing of the runs).
    """

    iteration0: Path
    store: Path
    basins_store: Path

    @property
    def emulators(self) -> Path:
        """The directory of the saved emulators, ``<store>.emulators``."""
        return self.store.with_name(self.store.name + ".emulators")

    def emulator(self, k: int) -> Path:
        """The directory of the emulator of iteration ``k``."""
        return self.emulators / f"iteration_{k}"


def _differences(made: str | None, now: Mapping[str, Any]) -> str:
    """The calibrate keys whose values differ from those a store was made with, as text."""
    if not made:
        return " (the iteration-0 part of the configuration, or a calibrate key, differs)"
    before = json.loads(made)
    keys = sorted(k for k in set(before) | set(now) if before.get(k, "(absent)") != now.get(k, "(absent)"))
    if not keys:
        return " (the iteration-0 part of the configuration differs: ensemble, data_dir or work_dir)"
    return " (" + ", ".join(f"calibrate.{k}: {before.get(k, '(absent)')!r} then, {now.get(k, '(absent)')!r} now"
                            for k in keys) + ")"


def _copy_iteration0(src: Path, dst: Path, overwrite: bool, job: Mapping[str, Any]) -> None:
    prog = ensemble_progress(src)
    if prog["pending"]:
        raise StoreError(f"iteration 0 in {src} has {prog['pending']} pending runs: finish it first "
                         "(run `lsegeo ensemble` with the same configuration again)")
    with atomic_store(dst, overwrite=overwrite) as tmp:
        shutil.copytree(src, tmp)
        line = provenance.history_line("calibrate start", f"copy of iteration 0 {src}")
        update_attrs(tmp, {**provenance.prepend_history(group_attrs(tmp), line),
                           "lsegeo_calibration_sha256": provenance.sha256_json(dict(job)),
                           "lsegeo_calibration_config": json.dumps(job["calibrate"], sort_keys=True),
                           "lsegeo_iteration0_store": str(src.resolve()), "lsegeo_store_kind": "calibration"})
    shutil.rmtree(dst.with_name(dst.name + ".emulators"), ignore_errors=True)


def start_or_resume(paths: CalibrationPaths, job: Mapping[str, Any], *, overwrite: bool = False) -> bool:
    """Resume the calibration store of ``job``, or start it as a copy of iteration 0.

    Parameters
    ----------
    paths : CalibrationPaths
        The stores.
    job : mapping
        What defines the calibration (JSON values): its sha256 is stored in the calibration
        store, and a store is resumed only when that digest is the same. ``job["calibrate"]``
        (the calibration's own settings) is stored as well, to say which keys differ.
    overwrite : bool
        Start afresh even when the store exists (its saved emulators are removed).

    Returns
    -------
    bool
        True when an existing store is resumed.

    Raises
    ------
    ConfigError
        The store exists, was made from another job, and ``overwrite`` is false; the message
        names the keys that differ.
    StoreError
        Iteration 0 still has pending runs.
    """
    if paths.store.exists() and not overwrite:
        attrs = root_attrs(paths.store)
        if attrs.get("lsegeo_calibration_sha256") != provenance.sha256_json(dict(job)):
            raise ConfigError(f"calibrate.store: {paths.store} was made from another configuration"
                              f"{_differences(attrs.get('lsegeo_calibration_config'), job['calibrate'])}; set "
                              "calibrate.overwrite: true (or --overwrite), or choose another store")
        return True
    _copy_iteration0(paths.iteration0, paths.store, overwrite, job)
    return False


def member_iterations(path: Path) -> np.ndarray:
    """The iteration of every member of a store, read from the arrays themselves.

    The consolidated metadata is not used, so a store whose last append was interrupted is read
    as it is on disk.
    """
    return StoreGroup(path, GROUP).read(ITERATION)


def save_emulator(em: Any, directory: Path, *, iteration: int, rows: int) -> Path:
    """Save a fitted emulator and its skill in ``directory``, complete only once all is written.

    The emulator is written to ``<directory>.partial`` and renamed into place; the
    :data:`MARKER` file, written last, tells :func:`saved_iterations` (and a resumed loop) that
    it is complete.

    Parameters
    ----------
    em : lsegeo.emulators.Emulator
        The fitted emulator (its ``skill`` goes to :data:`SKILL_FILE`).
    directory : pathlib.Path
        ``CalibrationPaths.emulator(iteration)``.
    iteration : int
        The calibration iteration.
    rows : int
        Training rows of the fit.

    Returns
    -------
    pathlib.Path
        ``directory``.
    """
    tmp = directory.with_name(directory.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    em.save(tmp)
    (tmp / SKILL_FILE).write_text(json.dumps(em.skill, default=float, indent=1))
    (tmp / MARKER).write_text(json.dumps({"iteration": int(iteration), "rows": int(rows)}))
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)
    return directory


def saved_iterations(paths: CalibrationPaths) -> list[int]:
    """Iterations with a complete saved emulator (``iteration_<k>/`` with its marker), ascending."""
    if not paths.emulators.is_dir():
        return []
    found = []
    for d in paths.emulators.glob("iteration_*"):
        k = d.name.removeprefix("iteration_")
        if k.isdigit() and (d / MARKER).exists():
            found.append(int(k))
    return sorted(found)


def calibration_history(path: Path, objective: str = "kgeprime", target: str | None = None) -> xr.Dataset:
    """Best simulated score of every basin after each iteration.

    The best member is chosen on the first target objective of the calibration period
    (``target``; default ``objective``) among the members of iterations up to k; its ``objective``
    score is reported on every period.

    Parameters
    ----------
    path : pathlib.Path
        A calibration (or ensemble) store.
    objective : str
        The score reported.
    target : str, optional
        The score that chooses the best member (its sense, max or min, is the store's).

    Returns
    -------
    xarray.Dataset
        ``best_score(iteration, basin, period)``, ``best_member(iteration, basin)`` (-1 for a
        basin without a done member) and ``runs(iteration)`` (members per basin simulated up to
        the iteration).

    Raises
    ------
    lsegeo.errors.StoreError
        ``path`` is not an ensemble store.
    """
    ens = open_ensemble(path)
    target = target or objective
    it = ens[ITERATION].values
    ok = ens["status"].values == DONE
    sel = ens["scores"].sel(objective=target)
    cal = (sel.sel(period="calibration") if "calibration" in sel.period else sel.isel(period=0)).values
    sense = str(ens["objective_sense"].sel(objective=target).values)
    rep = ens["scores"].sel(objective=objective).values  # (basin, member, period)
    iterations = np.unique(it)
    best_score = np.full((len(iterations), ens.sizes[BASIN], ens.sizes[PERIOD]), np.nan)
    best_member = np.full((len(iterations), ens.sizes[BASIN]), -1, dtype="int64")
    for j, k in enumerate(iterations):
        valid = ok & (it <= k)[None, :] & np.isfinite(cal)
        filled = np.where(valid, cal, -np.inf if sense == "max" else np.inf)
        m = filled.argmax(1) if sense == "max" else filled.argmin(1)
        has = valid.any(1)
        best_member[j] = np.where(has, m, -1)
        best_score[j] = np.where(has[:, None], rep[np.arange(len(m)), m], np.nan)
    return xr.Dataset(
        {"best_score": ((ITERATION, BASIN, PERIOD), best_score, {"long_name": f"best simulated {objective}"}),
         "best_member": ((ITERATION, BASIN), best_member),
         "runs": (ITERATION, np.array([(it <= k).sum() for k in iterations]),
                  {"long_name": "members per basin simulated up to the iteration"})},
        coords={ITERATION: iterations, BASIN: ens.basin.values, PERIOD: ens.period.values},
        attrs={"objective": objective, "target": target})


def calibrated_parameters(path: Path, target: str = "nkgeprime") -> xr.Dataset:
    """Per basin, the parameters of the best simulated member (chosen on the calibration period).

    Parameters
    ----------
    path : pathlib.Path
        A calibration store.
    target : str
        The objective that chooses the best member.

    Returns
    -------
    xarray.Dataset
        ``params(basin, param)`` (NaN for a basin without a done member), ``member(basin)`` and
        ``found_in_iteration(basin)``.
    """
    ens = open_ensemble(path)
    hist = calibration_history(path, objective=target, target=target)
    m = hist["best_member"].isel(iteration=-1)
    has = m >= 0
    params = ens["params"].isel(member=m.where(has, 0)).where(has)
    found_in = ens[ITERATION].isel(member=m.where(has, 0)).where(has).drop_vars("member")
    return xr.Dataset({"params": params.drop_vars(["member", ITERATION], errors="ignore"),
                       "member": m.drop_vars(ITERATION, errors="ignore"),
                       "found_in_iteration": found_in.drop_vars(ITERATION, errors="ignore")},
                      attrs={"target": target})


def record_summary(paths: CalibrationPaths, k: int, wall: float, *, target: str, emulator_kind: str) -> None:
    """Write the derived summaries into group ``calibration`` of the store (recomputed each time).

    The group holds the best score per iteration (KGE' when the store has it, else ``target``),
    the runs and the calibrated parameters; its attributes hold the saved emulators' skill. The
    wall time of iteration ``k`` is added to the root attribute ``lsegeo_iteration_seconds``.

    Parameters
    ----------
    paths : CalibrationPaths
        The stores.
    k : int
        The iteration just finished.
    wall : float
        Its wall time, s.
    target : str
        The objective that chooses the best members.
    emulator_kind : str
        The kind of emulator the loop fits (recorded).
    """
    report = "kgeprime" if "kgeprime" in open_ensemble(paths.store).objective.values else target
    hist = calibration_history(paths.store, objective=report, target=target)
    cal = calibrated_parameters(paths.store, target=target)
    skills = {}
    for j in hist.iteration.values:
        f = paths.emulator(int(j)) / SKILL_FILE
        if f.exists():
            skills[int(j)] = json.loads(f.read_text())
    out = xr.Dataset({"best_score": hist["best_score"], "best_member": hist["best_member"], "runs": hist["runs"],
                      "calibrated_params": cal["params"], "calibrated_member": cal["member"]})
    out.attrs = {"lsegeo_emulator_skill": json.dumps(skills), "lsegeo_last_iteration": int(k),
                 "lsegeo_emulator": emulator_kind, "target": target, "reported_objective": report}
    times = json.loads(group_attrs(paths.store).get("lsegeo_iteration_seconds", "{}"))
    times[str(k)] = wall
    update_attrs(paths.store, {"lsegeo_iteration_seconds": json.dumps(times)})
    write_group(out, paths.store, SUMMARY_GROUP, mode="w")  # replaces this group only
    consolidate(paths.store)
