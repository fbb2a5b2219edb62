"""Pipeline steps 4-6: emulate, optimise, iterate: the emulator-based calibration loop.

The method of Tang, Wood & Swenson (2025): starting from an ensemble (iteration 0), every
iteration

1. fits the emulator on all members simulated so far (the large-sample emulator, LSE, one
   model over every basin with basin attributes as features; or single-site emulators, SSE,
   one per basin), and, when ``cv_folds`` asks for it, measures its skill by cross-validation;
2. optimises the parameters of every basin on the emulator (GA for one objective, NSGA-II for
   two; all basins advance together, one emulator call per generation) and proposes
   ``proposals`` new members per basin;
3. runs the proposals through the process model and appends them to the ensemble;
4. measures the emulator's *prospective* skill: how well it predicted the scores of the members
   it proposed, which it was not trained on (:func:`prospective_skill`; an out-of-sample check
   that costs one prediction, where a cross-validation refits the emulator once per fold);
5. records the best simulated score of every basin so far.

The calibration store (:mod:`lsegeo.calibration.store`) is the checkpoint. Every step's result
is in it or beside it, and each step is recognised as done from what is there, so a killed
calibration resumes at the first unfinished step and never redoes a finished one. The stores
may be local paths or fsspec URLs (:mod:`lsegeo.io.urls`); the checks are the same on both.

The calibrated parameters of a basin are those of its best *simulated* member, as in the study,
never the emulator's optimum.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lsegeo.calibration.settings import CalibrationSettings
from lsegeo.calibration.store import (
    MARKER,
    PROSPECTIVE_FILE,
    CalibrationPaths,
    load_emulator,
    member_iterations,
    record_summary,
    recorded_iterations,
    save_emulator,
    start_or_resume,
)
from lsegeo.emulators.settings import EmulatorSettings
from lsegeo.ensembles.store import DONE, append_members, ensemble_progress, open_ensemble, truncate_members
from lsegeo.errors import ConfigError, StoreError
from lsegeo.io.urls import is_file, join, write_text

__all__ = ["run_calibration", "propose_iteration", "prospective_skill", "calibration_training_set", "new_emulator",
           "free_parameters"]

logger = logging.getLogger(__name__)


def calibration_training_set(settings: CalibrationSettings, ensemble_store: Path | str, basins_store: Path | str):
    """The emulator's training rows of an ensemble store, as a calibration defines them.

    Parameters
    ----------
    settings : CalibrationSettings
        Its ``objectives`` (the targets) on its ``period``, with its basin ``attributes``.
    ensemble_store, basins_store : pathlib.Path or str
        The members (an ensemble or calibration store) and the basin attributes (paths or URLs).

    Returns
    -------
    lsegeo.emulators.TrainingSet
    """
    from lsegeo import emulators

    return emulators.training_set(ensemble_store, basins_store, objectives=settings.objectives,
                                  period=settings.period,
                                  **({"attributes": list(settings.attributes)} if settings.attributes else {}))


def new_emulator(settings: EmulatorSettings, k: int):
    """The unfitted emulator that a calibration fits in iteration ``k`` (seed ``settings.seed + k``).

    The kind is looked up in :data:`lsegeo.emulators.registry.EMULATORS`
    (:func:`lsegeo.emulators.create_emulator`).

    Raises
    ------
    lsegeo.errors.UnknownNameError
        The kind is not registered.
    """
    from lsegeo.emulators import create_emulator

    return create_emulator(settings.with_seed(settings.seed + k))


def _fit_emulator(k: int, settings: CalibrationSettings, paths: CalibrationPaths, client) -> Any:
    """Fit (or load, when already saved) the emulator of iteration ``k``."""
    from lsegeo import emulators

    out = paths.emulator(k)
    if is_file(join(out, MARKER)):
        logger.info("iteration %d: emulator already fitted (%s)", k, out)
        return load_emulator(out)
    es = settings.emulator
    t0 = time.perf_counter()
    ts = calibration_training_set(settings, paths.store, paths.basins_store)
    skill = emulators.cross_validate(lambda: new_emulator(es, k), ts, n_folds=es.cv_folds, seed=es.seed + k,
                                     client=client) if es.cv_folds else {}
    em = new_emulator(es, k)
    em.fit(ts, client=client)
    em.skill.update(skill)
    em.skill["fit_seconds"] = time.perf_counter() - t0
    em.skill["training_rows"] = int(len(ts.target))
    save_emulator(em, out, iteration=k, rows=len(ts.target))
    if skill:
        logger.info("%s", emulators.format_skill(skill))
    logger.info("iteration %d: %s fitted on %d rows in %.1f s", k, es.kind.upper(), len(ts.target),
                em.skill["fit_seconds"])
    return em


def free_parameters(em, settings: CalibrationSettings, k: int, clusters: pd.Series | None = None) -> np.ndarray:
    """Mask ``(basins, params)`` of the parameters optimised per basin (the others stay at default).

    Parameters
    ----------
    em : lsegeo.emulators.Emulator
        The emulator of iteration ``k`` (its basins and parameters; the screening evaluates it).
    settings : CalibrationSettings
        ``parameters`` restricts the mask; ``screening_share`` screens on the emulator's Sobol'
        first-order indices (:func:`lsegeo.sensitivity.sobol.sobol_on_emulator`, seed
        ``emulator.seed + k``) with :func:`lsegeo.sensitivity.selection.select_parameters`.
    k : int
        The iteration.
    clusters : pandas.Series, optional
        Flood-generation cluster of each gauge, for ``screening_by="cluster"``.

    Returns
    -------
    numpy.ndarray
        ``(n_basins, n_params)`` bool, basins in the emulator's order.

    Raises
    ------
    ConfigError
        ``parameters`` names a parameter the emulator does not have.
    """
    names = list(em.param_names)
    mask = np.ones((len(em.basins), len(names)), dtype=bool)
    if settings.parameters is not None:
        unknown = sorted(set(settings.parameters) - set(names))
        if unknown:
            raise ConfigError(f"calibrate.parameters: {unknown} are not parameters of the ensemble "
                              f"({', '.join(names)})")
        mask[:] = np.isin(names, settings.parameters)
    if settings.screening_share is not None:
        from lsegeo.sensitivity.selection import select_parameters
        from lsegeo.sensitivity.sobol import sobol_on_emulator

        s = sobol_on_emulator(em.predict, np.arange(len(em.basins)), names, seed=settings.emulator.seed + k)
        s = s.assign_coords(basin=np.asarray(em.basins, dtype=object))
        chosen = select_parameters(s["S1"], share=settings.screening_share, by=settings.screening_by,
                                   clusters=clusters)
        for i, b in enumerate(em.basins):
            keep = chosen[b] if isinstance(chosen, dict) else chosen
            mask[i] &= np.isin(names, keep)
        logger.info("iteration %d: screening keeps %.1f of %d parameters per basin on average (%.0f%% of the "
                    "first-order sensitivity, by %s)", k, mask.sum(1).mean(), len(names),
                    100 * settings.screening_share, settings.screening_by)
    return mask


def _propose(k: int, settings: CalibrationSettings, paths: CalibrationPaths, em, client, progress: bool,
             clusters: pd.Series | None) -> None:
    """Optimise every basin on the emulator and append the proposals as iteration ``k``."""
    from lsegeo import emulators
    from lsegeo.emulators.features import space_from_store
    from lsegeo.metrics.objectives import OBJECTIVES
    from lsegeo.optimise.fanout import propose_on_dask

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
    simulated = ens["scores"].sel(period=settings.period, objective=list(settings.objectives)).values
    existing_scores = [simulated[i][done[i]] for i in range(len(store_basins))]
    mask = free_parameters(em, settings, k, clusters)[basin_idx]
    default_u = space.to_unit(space.default)
    senses = tuple(OBJECTIVES[o].sense for o in settings.objectives)
    ps = replace(settings.proposal, seed=settings.proposal.seed + 1000 * k)
    kwargs = ps.kwargs()
    n_proposals = kwargs.pop("n_proposals")
    t0 = time.perf_counter()
    result = propose_on_dask(client, em.to_bytes(), emulators.load_bytes, basin_idx, len(space), senses,
                             n_proposals, existing=existing, existing_scores=existing_scores, fixed_mask=~mask,
                             fixed_values=default_u, progress=progress, **kwargs)
    u = np.where(mask[:, None, :], result.u, default_u)
    # inside the bounds: exp(log(upper)) of a log-scale parameter can miss its bound by an ulp
    params = np.clip(space.from_unit(np.clip(u, 0.0, 1.0)), space.lower, space.upper)
    n_local = result.settings.get("local_proposals", 0)
    logger.info("iteration %d: %d proposals for %d basins (%d per basin from the neighbourhood search) in %.1f s "
                "(%d emulator calls)", k, n_proposals, len(store_basins), n_local, time.perf_counter() - t0,
                result.n_predict_calls)
    append_members(paths.store, params, iteration=k, call=f"calibrate iteration {k}: proposals")


def propose_iteration(k: int, settings: CalibrationSettings, paths: CalibrationPaths, *, client, progress: bool = True,
                      clusters: pd.Series | None = None) -> None:
    """Fit the emulator of iteration ``k`` (or load the saved one) and append its proposals as pending members.

    Steps 1-2 of an iteration, without running the proposals: the embedded loop runs them
    next; for a model that runs elsewhere (CTSM on HPC, :mod:`lsegeo.calibration.hpc`) they are
    written out as case inputs instead.

    Raises
    ------
    StoreError
        The emulator knows no basin of the store.
    """
    em = _fit_emulator(k, settings, paths, client)
    _propose(k, settings, paths, em, client, progress, clusters)


def prospective_skill(k: int, settings: CalibrationSettings, paths: CalibrationPaths, em=None) -> dict[str, Any]:
    """Skill of the emulator of iteration ``k`` on the members it proposed, once they ran.

    The emulator was fitted on the members of iterations before ``k``; the members of iteration
    ``k`` are new to it, so comparing its predictions of them with their simulated scores is an
    out-of-sample check, at the cost of one prediction. It is also the check that matters to the
    loop: how well the emulator ranks the points it chose itself, where an optimiser seeks out
    the emulator's errors. Tang, Wood & Swenson (2025) measure skill by cross-validation instead
    (``cv_folds``), which refits the emulator once per fold.

    Parameters
    ----------
    k : int
        The iteration, 1 or more; its members must have run (members not done are left out).
    settings : CalibrationSettings
        The targets (``objectives``) and their ``period``.
    paths : CalibrationPaths
        The calibration store and the saved emulators.
    em : lsegeo.emulators.Emulator, optional
        The emulator of iteration ``k``; default: the one saved in ``paths.emulator(k)``.

    Returns
    -------
    dict
        ``prospective_rows`` (members scored), ``prospective_basins`` and
        ``prospective_targets``: per target the metrics of
        :func:`lsegeo.emulators.skill_metrics` (within-basin correlation over the basin's new
        members, summarised over basins; RMSE; ``median_bias``, the emulator's optimism). Empty
        ``prospective_targets`` when no member of iteration ``k`` is done.

    Raises
    ------
    StoreError
        The emulator does not know a basin of the store, or is not completely saved.
    """
    from lsegeo.conventions import ITERATION
    from lsegeo.emulators import skill_metrics
    from lsegeo.emulators.features import space_from_store

    ens = open_ensemble(paths.store)
    cols = np.flatnonzero(ens[ITERATION].values == k)
    new = ens.isel(member=cols)
    done = new["status"].values == DONE
    basin_rows, member_rows = np.nonzero(done)
    out: dict[str, Any] = {"prospective_iteration": int(k), "prospective_rows": int(len(basin_rows)),
                           "prospective_basins": int(done.any(1).sum()), "prospective_targets": {}}
    if not len(basin_rows):
        return out
    em = em if em is not None else load_emulator(paths.emulator(k))
    position = {b: i for i, b in enumerate(em.basins)}
    names = [str(b) for b in new.basin.values]
    unknown = sorted({names[b] for b in basin_rows} - set(position))
    if unknown:
        raise StoreError(f"the emulator of iteration {k} knows no basin {unknown[:3]}")
    space = space_from_store(ens)
    params = new["params"].values[basin_rows, member_rows]
    actual = new["scores"].sel(period=settings.period, objective=list(settings.objectives)).values
    predicted = em.predict(np.array([position[names[b]] for b in basin_rows]), space.to_unit(params))
    out["prospective_targets"] = skill_metrics(basin_rows, actual[basin_rows, member_rows], predicted,
                                               list(settings.objectives))
    return out


def _record_prospective_skill(k: int, settings: CalibrationSettings, paths: CalibrationPaths, em=None) -> None:
    """Measure :func:`prospective_skill` and save it beside the emulator (:data:`PROSPECTIVE_FILE`)."""
    import json

    from lsegeo.emulators import format_skill

    skill = prospective_skill(k, settings, paths, em)
    write_text(join(paths.emulator(k), PROSPECTIVE_FILE), json.dumps(skill, default=float, indent=1))
    logger.info("iteration %d: %s", k, format_skill(skill))


def run_calibration(paths: CalibrationPaths, settings: CalibrationSettings, *, client, job: Mapping[str, Any],
                    overwrite: bool = False, clusters: pd.Series | None = None, progress: bool = True,
                    call: str = "") -> Path | str:
    """Run (or resume) the calibration loop; return the calibration store.

    Parameters
    ----------
    paths : CalibrationPaths
        Iteration 0 (an ensemble store whose runs are all finished), the calibration store and
        the basins store: local paths or URLs, in any mix.
    settings : CalibrationSettings
        What the loop does.
    client : distributed.Client
        Where the cross-validation, the proposals and the model runs go.
    job : mapping
        What defines the calibration, JSON values (its sha256 decides whether an existing store
        is resumed; ``job["calibrate"]`` is stored with it); see
        :func:`lsegeo.calibration.store.start_or_resume`.
    overwrite : bool
        Start the store afresh from iteration 0.
    clusters : pandas.Series, optional
        Flood-generation cluster of each gauge, for the screening by cluster.
    progress : bool
        Progress bars of the proposals and the runs.
    call : str
        The command line, for the stores' ``history``.

    Returns
    -------
    pathlib.Path or str
        The calibration store (its URL when it is at one).

    Raises
    ------
    ConfigError
        The store exists and was made from another job (without ``overwrite``).
    StoreError
        Iteration 0 has pending runs, or an emulator does not know a basin of the store.
    """
    from lsegeo.ensembles.runner import run_ensemble

    if start_or_resume(paths, job, overwrite=overwrite):
        logger.info("resuming %s", paths.store)
    per_iteration = settings.proposal.n_proposals
    for k in range(1, settings.iterations + 1):
        t0 = time.perf_counter()
        it = member_iterations(paths.store)
        before = int((it < k).sum())
        have = int((it == k).sum())
        if have and have != per_iteration:  # an append that was interrupted
            truncate_members(paths.store, before)
            have = 0
        worked = have == 0
        em = None
        if have == 0:
            em = _fit_emulator(k, settings, paths, client)
            _propose(k, settings, paths, em, client, progress, clusters)
        if ensemble_progress(paths.store)["pending"]:
            worked = True
            stats = run_ensemble(paths.store, client=client, progress=progress, call=call or f"calibrate iteration {k}")
            logger.info("iteration %d: %d runs (%d failed) in %.1f s", k, stats["ran"], stats["failed"], stats["wall"])
        if not worked and k in recorded_iterations(paths.store):
            continue  # finished and summarised before: its summary and wall time stay as they are
        _record_prospective_skill(k, settings, paths, em)
        hist = record_summary(paths, k, time.perf_counter() - t0, target=settings.target,
                              emulator_kind=settings.emulator.kind)
        med = hist["best_score"].isel(iteration=-1).median("basin")
        logger.info("iteration %d: median best %s over basins: %s", k, hist.attrs["objective"],
                    ", ".join(f"{p} {float(med.sel(period=p)):.3f}" for p in med.period.values))
    return paths.store
