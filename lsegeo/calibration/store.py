"""The calibration store: where the emulator loop keeps its state, and what is read back from it.

A calibration store is an ensemble store (:mod:`lsegeo.ensembles.store`) that starts as a copy
of iteration 0 (:func:`start_or_resume`) and grows by the members each iteration proposes. Beside
it, ``<store>.emulators/iteration_<k>/`` holds the emulator fitted in iteration ``k``, complete
when its :data:`MARKER` file is there (:func:`save_emulator`, :func:`load_emulator`). Every
location may be a local path or an fsspec URL (:mod:`lsegeo.io.urls`); at a URL the emulator
folder is a prefix of objects, uploaded with its marker object last. Everything the loop derives is
recomputed from the members: :func:`calibration_history` (the best simulated score of every
basin after each iteration), :func:`calibrated_parameters` (the parameters of the best simulated
member, never the emulator's optimum, as in Tang, Wood & Swenson 2025) and their copy in group
``calibration`` (:func:`record_summary`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
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
from lsegeo.io.stores import atomic_store, root_attrs
from lsegeo.io.urls import exists, filesystem, is_file, join, list_dir, location, read_text

__all__ = ["MARKER", "SKILL_FILE", "PROSPECTIVE_FILE", "SUMMARY_GROUP", "CalibrationPaths", "start_or_resume",
           "member_iterations", "save_emulator", "load_emulator", "saved_iterations", "calibration_history",
           "calibrated_parameters", "record_summary", "recorded_iterations"]

#: file that marks a saved emulator directory as complete
MARKER = "COMPLETE"
#: the emulator's fit information and cross-validated skill, saved beside it
SKILL_FILE = "calibration_skill.json"
#: the emulator's skill on the members it proposed, once they ran, saved beside it
PROSPECTIVE_FILE = "prospective_skill.json"
#: group of the store that holds the derived summaries
SUMMARY_GROUP = "calibration"


@dataclass(frozen=True)
class CalibrationPaths:
    """Where a calibration keeps its state.

    Each is a local path or a URL (:func:`lsegeo.io.urls.location`: a :class:`~pathlib.Path`
    or the URL text, whatever is given).

    Attributes
    ----------
    iteration0 : pathlib.Path or str
        The ensemble store of iteration 0.
    store : pathlib.Path or str
        The calibration store.
    basins_store : pathlib.Path or str
        The basins store (attributes of the large-sample emulator, forcing of the runs).
    """

    iteration0: Path | str
    store: Path | str
    basins_store: Path | str

    def __post_init__(self) -> None:
        for name in ("iteration0", "store", "basins_store"):
            object.__setattr__(self, name, location(getattr(self, name)))

    @property
    def emulators(self) -> Path | str:
        """The folder (or URL prefix) of the saved emulators, ``<store>.emulators``."""
        return _emulators_of(self.store)

    def emulator(self, k: int) -> Path | str:
        """The folder (or URL prefix) of the emulator of iteration ``k``."""
        return join(self.emulators, f"iteration_{k}")


def _emulators_of(store: Path | str) -> Path | str:
    store = location(store)
    return store.with_name(store.name + ".emulators") if isinstance(store, Path) else f"{store}.emulators"


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


def _download(url: str, local: Path) -> Path:
    """Copy every object under a URL prefix into the local folder ``local`` (created), names kept."""
    fs, root = filesystem(url)
    root = root.rstrip("/")
    names = [p[len(root) + 1:] for p in fs.find(root)]
    if not names:
        raise StoreError(f"nothing is at {url}")
    local.mkdir(parents=True, exist_ok=True)
    for folder in {(local / n).parent for n in names}:
        folder.mkdir(parents=True, exist_ok=True)
    fs.get([f"{root}/{n}" for n in names], [str(local / n) for n in names])
    return local


def _remove(loc: Path | str) -> None:
    """Remove a folder or the objects under a URL prefix, if any."""
    if isinstance(loc, Path):
        shutil.rmtree(loc, ignore_errors=True)
    elif exists(loc):
        fs, path = filesystem(loc)
        fs.rm(path, recursive=True)


def _copy_iteration0(src: Path | str, dst: Path | str, overwrite: bool, job: Mapping[str, Any]) -> None:
    """Start the calibration store ``dst`` as a copy of ``src`` (through a local staging folder for a URL)."""
    prog = ensemble_progress(src)
    if prog["pending"]:
        raise StoreError(f"iteration 0 in {src} has {prog['pending']} pending runs: finish it first "
                         "(run `lsegeo ensemble` with the same configuration again)")
    with atomic_store(dst, overwrite=overwrite) as tmp:  # a local folder: a URL's store is staged locally
        if isinstance(src, Path):
            shutil.copytree(src, tmp)
        else:
            _download(src, Path(tmp))
        line = provenance.history_line("calibrate start", f"copy of iteration 0 {src}")
        update_attrs(tmp, {**provenance.prepend_history(group_attrs(tmp), line),
                           "lsegeo_calibration_sha256": provenance.sha256_json(dict(job)),
                           "lsegeo_calibration_config": json.dumps(job["calibrate"], sort_keys=True),
                           "lsegeo_iteration0_store": str(src.resolve()) if isinstance(src, Path) else src,
                           "lsegeo_store_kind": "calibration"})
    _remove(_emulators_of(dst))


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
    if exists(paths.store) and not overwrite:
        attrs = root_attrs(paths.store)
        if attrs.get("lsegeo_calibration_sha256") != provenance.sha256_json(dict(job)):
            raise ConfigError(f"calibrate.store: {paths.store} was made from another configuration"
                              f"{_differences(attrs.get('lsegeo_calibration_config'), job['calibrate'])}; set "
                              "calibrate.overwrite: true (or --overwrite), or choose another store")
        return True
    _copy_iteration0(paths.iteration0, paths.store, overwrite, job)
    return False


def member_iterations(path: Path | str) -> np.ndarray:
    """The iteration of every member of a store, read from the arrays themselves.

    The consolidated metadata is not used, so a store whose last append was interrupted is read
    as it is on disk.
    """
    return StoreGroup(path, GROUP).read(ITERATION)


def _write_emulator(em: Any, folder: Path, iteration: int, rows: int) -> None:
    """The emulator, its skill and (last) its :data:`MARKER` file in a new local ``folder``."""
    em.save(folder)
    (folder / SKILL_FILE).write_text(json.dumps(em.skill, default=float, indent=1))
    (folder / MARKER).write_text(json.dumps({"iteration": int(iteration), "rows": int(rows)}))


def save_emulator(em: Any, directory: Path | str, *, iteration: int, rows: int) -> Path | str:
    """Save a fitted emulator and its skill in ``directory``, complete only once all is written.

    Locally the emulator is written to ``<directory>.partial`` and renamed into place. At a URL
    it is written to a local temporary folder and uploaded: first whatever an earlier,
    interrupted upload left under the prefix is removed, then every file goes up, the
    :data:`MARKER` object last. Either way the marker tells :func:`saved_iterations` (and a
    resumed loop) that the emulator is complete; a folder or prefix without it is ignored and
    replaced by the next save.

    Parameters
    ----------
    em : lsegeo.emulators.Emulator
        The fitted emulator (its ``skill`` goes to :data:`SKILL_FILE`).
    directory : pathlib.Path or str
        ``CalibrationPaths.emulator(iteration)``: a local folder or a URL prefix.
    iteration : int
        The calibration iteration.
    rows : int
        Training rows of the fit.

    Returns
    -------
    pathlib.Path or str
        ``directory``.
    """
    directory = location(directory)
    if isinstance(directory, Path):
        tmp = directory.with_name(directory.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        _write_emulator(em, tmp, iteration, rows)
        shutil.rmtree(directory, ignore_errors=True)
        tmp.rename(directory)
        return directory
    with tempfile.TemporaryDirectory(prefix="lsegeo-emulator-") as work:
        local = Path(work) / "em"
        _write_emulator(em, local, iteration, rows)
        _remove(directory)
        fs, root = filesystem(directory)
        root = root.rstrip("/")
        names = sorted(p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file() and p.name != MARKER)
        fs.put([str(local / n) for n in names], [f"{root}/{n}" for n in names])
        fs.put_file(str(local / MARKER), f"{root}/{MARKER}")  # last: the emulator is complete
    return directory


def load_emulator(directory: Path | str) -> Any:
    """Read back an emulator that :func:`save_emulator` saved (at a URL: downloaded to a temporary folder first).

    Parameters
    ----------
    directory : pathlib.Path or str
        ``CalibrationPaths.emulator(iteration)``.

    Returns
    -------
    lsegeo.emulators.Emulator

    Raises
    ------
    StoreError
        ``directory`` has no :data:`MARKER`: the emulator was not saved completely.
    FileNotFoundError, ValueError
        See :func:`lsegeo.emulators.archive.load`.
    """
    from lsegeo import emulators

    directory = location(directory)
    if not is_file(join(directory, MARKER)):
        raise StoreError(f"{directory} holds no completely saved emulator (no {MARKER} marker)")
    if isinstance(directory, Path):
        return emulators.load(directory)
    with tempfile.TemporaryDirectory(prefix="lsegeo-emulator-") as work:
        return emulators.load(_download(directory, Path(work) / "em"))


def saved_iterations(paths: CalibrationPaths) -> list[int]:
    """Iterations with a complete saved emulator (``iteration_<k>/`` with its marker), ascending."""
    found = []
    for name, is_dir in list_dir(paths.emulators):
        k = name.removeprefix("iteration_")
        if is_dir and name.startswith("iteration_") and k.isdigit() and is_file(join(paths.emulator(int(k)), MARKER)):
            found.append(int(k))
    return sorted(found)


def calibration_history(path: Path | str | xr.Dataset, objective: str = "kgeprime",
                        target: str | None = None) -> xr.Dataset:
    """Best simulated score of every basin after each iteration.

    The best member is chosen on the first target objective of the calibration period
    (``target``; default ``objective``) among the members of iterations up to k; its ``objective``
    score is reported on every period.

    Parameters
    ----------
    path : pathlib.Path, str or xarray.Dataset
        A calibration (or ensemble) store (a path or a URL), or its opened ``ensemble`` group.
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
    ens = path if isinstance(path, xr.Dataset) else open_ensemble(path)
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


def calibrated_parameters(path: Path | str | xr.Dataset, target: str = "nkgeprime") -> xr.Dataset:
    """Per basin, the parameters of the best simulated member (chosen on the calibration period).

    Parameters
    ----------
    path : pathlib.Path, str or xarray.Dataset
        A calibration store (a path or a URL), or its opened ``ensemble`` group.
    target : str
        The objective that chooses the best member.

    Returns
    -------
    xarray.Dataset
        ``params(basin, param)`` (NaN for a basin without a done member), ``member(basin)`` and
        ``found_in_iteration(basin)``.
    """
    ens = path if isinstance(path, xr.Dataset) else open_ensemble(path)
    hist = calibration_history(ens, objective=target, target=target)
    m = hist["best_member"].isel(iteration=-1)
    has = m >= 0
    params = ens["params"].isel(member=m.where(has, 0)).where(has)
    found_in = ens[ITERATION].isel(member=m.where(has, 0)).where(has).drop_vars("member")
    return xr.Dataset({"params": params.drop_vars(["member", ITERATION], errors="ignore"),
                       "member": m.drop_vars(ITERATION, errors="ignore"),
                       "found_in_iteration": found_in.drop_vars(ITERATION, errors="ignore")},
                      attrs={"target": target})


def recorded_iterations(path: Path | str) -> set[int]:
    """The iterations whose summary :func:`record_summary` finished (keys of ``lsegeo_iteration_seconds``)."""
    times = json.loads(group_attrs(path).get("lsegeo_iteration_seconds", "{}"))
    return {int(k) for k in times}


def record_summary(paths: CalibrationPaths, k: int, wall: float, *, target: str, emulator_kind: str) -> xr.Dataset:
    """Write the derived summaries into group ``calibration`` of the store (recomputed each time).

    The group holds the best score per iteration (KGE' when the store has it, else ``target``),
    the runs and the calibrated parameters; its attributes hold the saved emulators' skill
    (:data:`SKILL_FILE`, with the prospective skill of :data:`PROSPECTIVE_FILE` merged in). The
    wall time of iteration ``k`` is then added to the root attribute ``lsegeo_iteration_seconds``:
    written last, it tells a resumed loop that the iteration was summarised
    (:func:`recorded_iterations`).

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

    Returns
    -------
    xarray.Dataset
        The history written (:func:`calibration_history` of the reported objective, which its
        ``objective`` attribute names).

    Notes
    -----
    The members are read once (without simulated series), which matters for a store at a URL.
    """
    ens = open_ensemble(paths.store)
    ens = ens.drop_vars([v for v in ("qsim",) if v in ens]).load()
    report = "kgeprime" if "kgeprime" in ens.objective.values else target
    hist = calibration_history(ens, objective=report, target=target)
    cal = calibrated_parameters(ens, target=target)
    skills: dict[int, dict[str, Any]] = {}
    for j in hist.iteration.values:
        for name in (SKILL_FILE, PROSPECTIVE_FILE):
            f = join(paths.emulator(int(j)), name)
            if is_file(f):
                skills.setdefault(int(j), {}).update(json.loads(read_text(f)))
    out = xr.Dataset({"best_score": hist["best_score"], "best_member": hist["best_member"], "runs": hist["runs"],
                      "calibrated_params": cal["params"], "calibrated_member": cal["member"]})
    out.attrs = {"lsegeo_emulator_skill": json.dumps(skills), "lsegeo_last_iteration": int(k),
                 "lsegeo_emulator": emulator_kind, "target": target, "reported_objective": report}
    write_group(out, paths.store, SUMMARY_GROUP, mode="w")  # replaces this group only
    times = json.loads(group_attrs(paths.store).get("lsegeo_iteration_seconds", "{}"))
    times[str(k)] = wall
    update_attrs(paths.store, {"lsegeo_iteration_seconds": json.dumps(times)})  # and consolidates the store
    return hist
