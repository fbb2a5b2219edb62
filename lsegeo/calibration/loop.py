"""Pipeline steps 4-6: emulate, optimise, iterate: the emulator-based calibration loop.

The method of Tang, Wood & Swenson (2025): starting from an ensemble (iteration 0), every
iteration

1. fits the emulator on all members simulated so far (the large-sample emulator, LSE, one
   model over every basin with basin attributes as features; or single-site emulators, SSE,
   one per basin), and measures its skill by cross-validation;
2. optimises the parameters of every basin on the emulator (GA for one objective, NSGA-II for
   two; all basins advance together, one emulator call per generation) and proposes
   ``proposals`` new members per basin;
3. runs the proposals through the process model and appends them to the ensemble;
4. records the best simulated score of every basin so far.

The calibration store (an ensemble store, see :mod:`lsegeo.ensembles.store`, that starts as a copy of
iteration 0) is the checkpoint. Every step's result is in it or beside it (emulators are saved
in ``<store>.emulators/iteration_<k>/`` in their libraries' own formats), and each step is
recognised as done from what is there, so a killed calibration resumes at the first unfinished
step and never redoes a finished one.

The calibrated parameters of a basin are those of its best *simulated* member, as in the study,
never the emulator's optimum.
"""

from __future__ import annotations

import json
import shutil
import time as _time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

from lsegeo import provenance
from lsegeo.parallel import dask_client
from lsegeo.config import Config
from lsegeo.ensembles.store import DONE, append_members, ensemble_progress, open_ensemble, run_ensemble
from lsegeo.errors import ConfigError, StoreError
from lsegeo.io.stores import atomic_store, consolidate
from lsegeo.locations import work_dir

__all__ = ["CalibrationPaths", "calibration_paths", "calibrate", "calibration_history", "calibration_training_set",
           "calibrated_parameters", "new_emulator", "truncate_members", "plot_calibration"]

_MARKER = "COMPLETE"
_SKILL = "calibration_skill.json"


@dataclass(frozen=True)
class CalibrationPaths:
    """Where a calibration keeps its state."""

    iteration0: Path
    store: Path
    basins_store: Path

    @property
    def emulators(self) -> Path:
        return self.store.with_name(self.store.name + ".emulators")

    def emulator(self, k: int) -> Path:
        return self.emulators / f"iteration_{k}"


def calibration_paths(cfg: Config) -> CalibrationPaths:
    """The stores of a configuration, defaults filled in."""
    from lsegeo.workflows.ensemble import ensemble_paths

    wd = cfg.work_dir or work_dir()
    basins_store, ens_store = ensemble_paths(cfg)
    cc = cfg.calibrate
    return CalibrationPaths(iteration0=Path(cc.ensemble_store or ens_store),
                            store=Path(cc.store or wd / f"calibration_{cc.emulator}.zarr"),
                            basins_store=Path(basins_store))


def _copy_iteration0(src: Path, dst: Path, overwrite: bool, job: dict[str, Any]) -> None:
    prog = ensemble_progress(src)
    if prog["pending"]:
        raise StoreError(f"iteration 0 in {src} has {prog['pending']} pending runs: finish it first "
                         "(run `lsegeo ensemble` with the same configuration again)")
    with atomic_store(dst, overwrite=overwrite) as tmp:
        shutil.copytree(src, tmp)
        root = zarr.open_group(str(tmp), mode="r+", use_consolidated=False)
        line = provenance.history_line("calibrate start", f"copy of iteration 0 {src}")
        root.attrs.update({**provenance.prepend_history(dict(root.attrs), line),
                           "lsegeo_calibration_sha256": provenance.sha256_json(job),
                           "lsegeo_calibration_config": json.dumps(job["calibrate"], sort_keys=True),
                           "lsegeo_iteration0_store": str(src.resolve()), "lsegeo_store_kind": "calibration"})
        consolidate(tmp)
    shutil.rmtree(dst.with_name(dst.name + ".emulators"), ignore_errors=True)


def truncate_members(path: Path, n_members: int) -> None:
    """Drop the members at index ``n_members`` and beyond (an append that was interrupted)."""
    g = zarr.open_group(str(path), path="ensemble", mode="r+", use_consolidated=False)
    for name in ("params", "scores", "status", "run", "qsim", "iteration", "member"):
        if name in g:
            arr = g[name]
            if name in ("iteration", "member"):
                arr.resize((n_members,))
            else:
                arr.resize((arr.shape[0], n_members, *arr.shape[2:]))
    consolidate(path)


def _members_of(path: Path) -> np.ndarray:
    g = zarr.open_group(str(path), path="ensemble", mode="r", use_consolidated=False)
    return g["iteration"][...]


def _fit_emulator(k: int, cfg: Config, paths: CalibrationPaths, client, log) -> Any:
    """Fit (or load, when already saved) the emulator of iteration ``k``."""
    from lsegeo import emulators

    out = paths.emulator(k)
    if (out / _MARKER).exists():
        log(f"iteration {k}: emulator already fitted ({out})")
        return emulators.load(out)
    cc = cfg.calibrate
    t0 = _time.perf_counter()
    ts = calibration_training_set(cfg, paths.store, paths.basins_store)
    factory = _emulator_factory(cfg, k)
    skill = emulators.cross_validate(factory, ts, n_folds=cc.cv_folds, seed=cc.seed + k,
                                     client=client) if cc.cv_folds else {}
    em = factory()
    if cc.emulator == "sse":
        em.fit(ts, client=client)
    else:
        em.fit(ts)
    em.skill.update(skill)
    em.skill["fit_seconds"] = _time.perf_counter() - t0
    em.skill["training_rows"] = int(len(ts.target))
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    em.save(tmp)
    (tmp / _SKILL).write_text(json.dumps(em.skill, default=float, indent=1))
    (tmp / _MARKER).write_text(json.dumps({"iteration": k, "rows": int(len(ts.target))}))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    if skill:
        log(emulators.format_skill(skill))
    log(f"iteration {k}: {cc.emulator.upper()} fitted on {len(ts.target)} rows in {em.skill['fit_seconds']:.1f} s")
    return em


def calibration_training_set(cfg: Config, ensemble_store: Path, basins_store: Path):
    """The emulator's training rows of an ensemble store, as ``cfg``'s calibration defines them
    (targets ``calibrate.objectives`` on ``calibrate.period``, attributes ``calibrate.attributes``)."""
    from lsegeo import emulators

    cc = cfg.calibrate
    return emulators.training_set(ensemble_store, basins_store, objectives=tuple(cc.objectives), period=cc.period,
                                  **({"attributes": cc.attributes} if cc.attributes else {}))


def new_emulator(cfg: Config, k: int):
    """The unfitted emulator that ``cfg``'s calibration fits at iteration ``k`` (kind, backend, seed)."""
    return _emulator_factory(cfg, k)()


def _emulator_factory(cfg: Config, k: int):
    from lsegeo import emulators

    cc = cfg.calibrate
    if cc.emulator == "lse":
        return lambda: emulators.LargeSampleEmulator(backend=cc.backend, seed=cc.seed + k, n_jobs=_threads(cfg))
    return lambda: emulators.SingleSiteEmulator(seed=cc.seed + k)


def _threads(cfg: Config) -> int:
    import os

    return max(1, os.cpu_count() or 1)


def _free_dims(cfg: Config, em, space, k: int, log) -> np.ndarray:
    """Mask (basins, params) of the parameters optimised per basin (others stay at default)."""
    cc = cfg.calibrate
    names = list(em.param_names)
    mask = np.ones((len(em.basins), len(names)), dtype=bool)
    if cc.parameters is not None:
        unknown = sorted(set(cc.parameters) - set(names))
        if unknown:
            raise ConfigError(f"calibrate.parameters: {unknown} are not parameters of the ensemble ({', '.join(names)})")
        mask[:] = np.isin(names, cc.parameters)
    if cc.screening_share is not None:
        from lsegeo import sensitivity

        s = sensitivity.sobol_on_emulator(em.predict, np.arange(len(em.basins)), names, seed=cc.seed + k)
        s = s.assign_coords(basin=np.asarray(em.basins, dtype=object))
        clusters = sensitivity.read_clusters(cfg.data_dir) if cc.screening_by == "cluster" else None
        chosen = sensitivity.select_parameters(s["S1"], share=cc.screening_share, by=cc.screening_by, clusters=clusters)
        for i, b in enumerate(em.basins):
            keep = chosen[b] if isinstance(chosen, dict) else chosen
            mask[i] &= np.isin(names, keep)
        log(f"iteration {k}: screening keeps {mask.sum(1).mean():.1f} of {len(names)} parameters per basin "
            f"on average ({cc.screening_share:.0%} of the first-order sensitivity, by {cc.screening_by})")
    return mask


def _propose(k: int, cfg: Config, paths: CalibrationPaths, em, client, log, progress: bool) -> None:
    """Optimise every basin on the emulator and append the proposals as iteration ``k``."""
    from lsegeo import emulators
    from lsegeo.emulators.features import space_from_store
    from lsegeo.optimise.proposals import propose_on_dask
    from lsegeo.metrics.scores import OBJECTIVES

    cc = cfg.calibrate
    ens = open_ensemble(paths.store)
    space = space_from_store(ens)
    store_basins = [str(b) for b in ens.basin.values]
    idx = {b: i for i, b in enumerate(em.basins)}
    missing = [b for b in store_basins if b not in idx]
    if missing:
        raise StoreError(f"the emulator of iteration {k} knows no basin {missing[:3]}: it had no simulated members")
    basin_idx = np.array([idx[b] for b in store_basins])
    done = ens["status"].values == DONE
    params_so_far = ens["params"].values  # read once: .values on the lazy array reads the store each time
    existing = [space.to_unit(params_so_far[i][done[i]]) for i in range(len(store_basins))]
    simulated = ens["scores"].sel(period=cc.period, objective=list(cc.objectives)).values  # (basin, member, T)
    existing_scores = [simulated[i][done[i]] for i in range(len(store_basins))]
    mask = _free_dims(cfg, em, space, k, log)[basin_idx]
    default_u = space.to_unit(space.default)
    senses = tuple(OBJECTIVES[o].sense for o in cc.objectives)
    t0 = _time.perf_counter()
    result = propose_on_dask(client, em.to_bytes(), emulators.load_bytes, basin_idx, len(space), senses,
                             cc.proposals, algorithm="ga" if len(senses) == 1 else "nsga2", pop_size=cc.pop_size,
                             n_gen=cc.generations, n_restarts=cc.restarts, seed=cc.seed + 1000 * k,
                             existing=existing, min_distance=cc.min_distance, fixed_mask=~mask, fixed_values=default_u,
                             existing_scores=existing_scores, local_share=cc.local_share,
                             local_anchors=cc.local_anchors, local_candidates=cc.local_candidates,
                             local_radius=cc.local_radius, progress=progress)
    u = np.where(mask[:, None, :], result.u, default_u)
    params = space.from_unit(np.clip(u, 0.0, 1.0))
    n_local = result.settings.get("local_proposals", 0)
    log(f"iteration {k}: {cc.proposals} proposals for {len(store_basins)} basins ({n_local} per basin from the "
        f"neighbourhood search) in {_time.perf_counter() - t0:.1f} s ({result.n_predict_calls} emulator calls)")
    append_members(paths.store, params, iteration=k, call=f"calibrate iteration {k}: proposals")


def calibration_history(path: Path, objective: str = "kgeprime", target: str | None = None) -> xr.Dataset:
    """Best simulated score of every basin after each iteration.

    The best member is chosen on the first target objective of the calibration period
    (``target``; default ``objective``) among the members of iterations up to k; its ``objective``
    score is reported on every period.

    Returns
    -------
    xarray.Dataset
        ``best_score(iteration, basin, period)``, ``best_member(iteration, basin)`` and
        ``runs(iteration)`` (members per basin simulated up to the iteration).
    """
    ens = open_ensemble(path)
    target = target or objective
    it = ens["iteration"].values
    ok = ens["status"].values == DONE
    sel = ens["scores"].sel(objective=target)
    cal = (sel.sel(period="calibration") if "calibration" in sel.period else sel.isel(period=0)).values
    sense = str(ens["objective_sense"].sel(objective=target).values)
    rep = ens["scores"].sel(objective=objective).values  # (basin, member, period)
    iterations = np.unique(it)
    best_score = np.full((len(iterations), ens.sizes["basin"], ens.sizes["period"]), np.nan)
    best_member = np.full((len(iterations), ens.sizes["basin"]), -1, dtype="int64")
    for j, k in enumerate(iterations):
        valid = ok & (it <= k)[None, :] & np.isfinite(cal)
        filled = np.where(valid, cal, -np.inf if sense == "max" else np.inf)
        m = filled.argmax(1) if sense == "max" else filled.argmin(1)
        has = valid.any(1)
        best_member[j] = np.where(has, m, -1)
        best_score[j] = np.where(has[:, None], rep[np.arange(len(m)), m], np.nan)
    return xr.Dataset(
        {"best_score": (("iteration", "basin", "period"), best_score, {"long_name": f"best simulated {objective}"}),
         "best_member": (("iteration", "basin"), best_member),
         "runs": ("iteration", np.array([(it <= k).sum() for k in iterations]),
                  {"long_name": "members per basin simulated up to the iteration"})},
        coords={"iteration": iterations, "basin": ens.basin.values, "period": ens.period.values},
        attrs={"objective": objective, "target": target})


def calibrated_parameters(path: Path, target: str = "nkgeprime") -> xr.Dataset:
    """Per basin, the parameters of the best simulated member (chosen on the calibration period)."""
    ens = open_ensemble(path)
    hist = calibration_history(path, objective=target, target=target)
    m = hist["best_member"].isel(iteration=-1)
    has = m >= 0
    params = ens["params"].isel(member=m.where(has, 0)).where(has)
    found_in = ens["iteration"].isel(member=m.where(has, 0)).where(has).drop_vars("member")
    return xr.Dataset({"params": params.drop_vars(["member", "iteration"], errors="ignore"),
                       "member": m.drop_vars("iteration", errors="ignore"),
                       "found_in_iteration": found_in.drop_vars("iteration", errors="ignore")},
                      attrs={"target": target})


def _record(cfg: Config, paths: CalibrationPaths, k: int, wall: float) -> None:
    """Write the derived summaries into group ``calibration`` of the store (recomputed each time)."""
    cc = cfg.calibrate
    target = cc.objectives[0]
    report = "kgeprime" if "kgeprime" in open_ensemble(paths.store).objective.values else target
    hist = calibration_history(paths.store, objective=report, target=target)
    cal = calibrated_parameters(paths.store, target=target)
    skills = {}
    for j in hist.iteration.values:
        f = paths.emulator(int(j)) / _SKILL
        if f.exists():
            skills[int(j)] = json.loads(f.read_text())
    out = xr.Dataset({"best_score": hist["best_score"], "best_member": hist["best_member"], "runs": hist["runs"],
                      "calibrated_params": cal["params"], "calibrated_member": cal["member"]})
    out.attrs = {"lsegeo_emulator_skill": json.dumps(skills), "lsegeo_last_iteration": int(k),
                 "lsegeo_emulator": cc.emulator, "target": target, "reported_objective": report}
    root = zarr.open_group(str(paths.store), mode="r+", use_consolidated=False)
    times = json.loads(root.attrs.get("lsegeo_iteration_seconds", "{}"))
    times[str(k)] = wall
    root.attrs["lsegeo_iteration_seconds"] = json.dumps(times)
    out.to_zarr(str(paths.store), group="calibration", mode="w", zarr_format=3, consolidated=False)
    consolidate(paths.store)


def _differences(made: str | None, now: dict[str, Any]) -> str:
    """The calibrate keys whose values differ from those a store was made with, as text."""
    if not made:
        return " (the iteration-0 part of the configuration, or a calibrate key, differs)"
    before = json.loads(made)
    keys = sorted(k for k in set(before) | set(now) if before.get(k, "(absent)") != now.get(k, "(absent)"))
    if not keys:
        return " (the iteration-0 part of the configuration differs: ensemble, data_dir or work_dir)"
    return " (" + ", ".join(f"calibrate.{k}: {before.get(k, '(absent)')!r} then, {now.get(k, '(absent)')!r} now"
                            for k in keys) + ")"


def calibrate(cfg: Config, *, client=None, progress: bool = True, call: str = "", log=print) -> Path:
    """Run (or resume) the calibration loop of ``cfg``; return the calibration store.

    Iteration 0 is the ensemble store of the ``ensemble`` section (run first when absent). A
    calibration store that exists and was made from the same configuration is resumed.
    """
    from lsegeo.workflows.ensemble import ensemble_job

    cc = cfg.calibrate
    paths = calibration_paths(cfg)
    job = cfg.model_dump(mode="json", exclude={"cluster": True, "calibrate": {"overwrite", "store"}})
    job_sha = provenance.sha256_json(job)
    with dask_client(cfg.cluster, client) as c:
        if not paths.iteration0.exists():
            log(f"iteration 0: {paths.iteration0} does not exist; running the ensemble first")
            ensemble_job(cfg, client=c, progress=progress, call=call)
        if paths.store.exists() and not cc.overwrite:
            attrs = zarr.open_group(str(paths.store), mode="r").attrs
            if attrs.get("lsegeo_calibration_sha256") != job_sha:
                raise ConfigError(f"calibrate.store: {paths.store} was made from another configuration"
                                  f"{_differences(attrs.get('lsegeo_calibration_config'), job['calibrate'])}; set "
                                  "calibrate.overwrite: true (or --overwrite), or choose another store")
            log(f"resuming {paths.store}")
        else:
            _copy_iteration0(paths.iteration0, paths.store, cc.overwrite, job)
        for k in range(1, cc.iterations + 1):
            t0 = _time.perf_counter()
            it = _members_of(paths.store)
            before = int((it < k).sum())
            have = int((it == k).sum())
            if have and have != cc.proposals:  # an append that was interrupted
                truncate_members(paths.store, before)
                have = 0
            if have == 0:
                em = _fit_emulator(k, cfg, paths, c, log)
                _propose(k, cfg, paths, em, c, log, progress)
            prog = ensemble_progress(paths.store)
            if prog["pending"]:
                stats = run_ensemble(paths.store, client=c, progress=progress, call=call or f"calibrate iteration {k}")
                log(f"iteration {k}: {stats['ran']} runs ({stats['failed']} failed) in {stats['wall']:.1f} s")
            _record(cfg, paths, k, _time.perf_counter() - t0)
            hist = calibration_history(paths.store, objective="kgeprime" if "kgeprime" in
                                       open_ensemble(paths.store).objective.values else cc.objectives[0],
                                       target=cc.objectives[0])
            med = hist["best_score"].isel(iteration=-1).median("basin")
            log(f"iteration {k}: median best {hist.attrs['objective']} over basins: "
                + ", ".join(f"{p} {float(med.sel(period=p)):.3f}" for p in med.period.values))
    return paths.store


def plot_calibration(path: Path, figure: Path, title: str = "") -> Path:
    """CDFs across basins of the best simulated KGE' after each iteration (calibration and test)."""
    from lsegeo.plots.summary import plot_score_cdf

    hist = calibration_history(path)
    curves = {}
    for p in hist.period.values:
        for k in hist.iteration.values:
            curves[f"{p}, iteration {int(k)} ({int(hist.runs.sel(iteration=k))} runs)"] = \
                hist["best_score"].sel(iteration=k, period=p).values
    return plot_score_cdf(curves, figure, xlabel=f"best simulated {hist.attrs['objective']}",
                          title=title or f"{Path(path).name}: best score per iteration", xlim=(-0.5, 1.0))
