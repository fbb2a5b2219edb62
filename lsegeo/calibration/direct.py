"""Direct calibration: each basin calibrated with the process model itself, by DDS.

This is the reference optimum that emulator-based calibration (:mod:`lsegeo.calibration.loop`) is
measured against: every candidate parameter set is a real model run over the simulation window
(warm-up and the days up to the end of the calibration period), scored on the calibration
period only, with a large budget (2,000 runs per basin by default,
:class:`~lsegeo.calibration.direct_settings.DirectSettings`).

The search is DDS (Tolson & Shoemaker 2007; :mod:`lsegeo.optimise.dds` holds the algorithm, the
split of the budget over lock-step chains and the per-basin seeds). It runs in the unit cube
of the :class:`~lsegeo.design.ParameterSpace`, from the default parameter set (run 1, shared by
every chain); parameters left out of the calibrated space stay at their defaults.
``history(basin, run)`` is the best calibration score over runs ``1..run``. The final run of
the best parameters over the full window, to score every period, is not counted in ``runs``.

The model and its fast path
---------------------------
The model is reached only through its adapter (:mod:`lsegeo.models.protocol`): run 1 is
``model.run`` over the whole window (which also checks the forcing); the search asks the
adapter for a batch runner per basin (``model.runner(forcing, warmup_days=...)``) and, at
every DDS step, submits the ``chains`` candidates of every basin of the dask task before it
collects any (an external model's jobs then run side by side). Whatever the model keeps
between batches (HBV: its checked forcing; an external model: its cases) stays in the runner;
this module never touches a model's states. All candidates of a step are scored in one
:func:`lsegeo.metrics.kernels.score_all` call.

Reproducibility
---------------
Each basin's search is seeded with :func:`lsegeo.optimise.dds.basin_seed` and does not depend
on which other basins share its dask task, on the chunk size or on the number of workers:
:func:`dds_basin` with ``seed=basin_seed(seed, basin)`` repeats what :func:`calibrate_direct`
did for that basin.

References
----------
Tolson, B. A. and Shoemaker, C. A. (2007). Dynamically dimensioned search algorithm for
computationally efficient watershed model calibration. *Water Resour. Res.* 43, W01413.
doi:10.1029/2005WR004723
"""

from __future__ import annotations

import dataclasses
import sys
import time as _time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from lsegeo import provenance
from lsegeo.calibration.direct_settings import DirectSettings
from lsegeo.calibration.direct_store import open_direct, write_direct
from lsegeo.design import ParameterSpace
from lsegeo.errors import StoreError
from lsegeo.io.basin_inputs import load_basin_inputs
from lsegeo.io.stores import open_store, root_attrs
from lsegeo.metrics.kernels import DEFAULT_MIN_VALID, score_all
from lsegeo.metrics.objectives import get_objective
from lsegeo.models.protocol import ModelAdapter
from lsegeo.models.registry import get_model
from lsegeo.optimise.dds import DDS_REFERENCE, basin_seed, dds_budget_split, dds_engine
from lsegeo.optimise.dds_settings import checked_checkpoints
from lsegeo.parallel import dask_client, submit_task, task_result
from lsegeo.periods import (
    DEFAULT_MIN_COVERAGE,
    coverage_note,
    period_coverage,
    period_slices,
    periods_json,
    simulation_window,
)

__all__ = ["calibrate_direct", "dds_basin", "open_direct"]


# ---------------------------------------------------------------------------------------------
# one or many basins with a process model
# ---------------------------------------------------------------------------------------------


def _resolve_model(model: str | ModelAdapter) -> ModelAdapter:
    return get_model(model) if isinstance(model, str) else model


def _columns(model, space: ParameterSpace | None) -> tuple[ParameterSpace, np.ndarray]:
    """The calibrated space and the column of each of its parameters in the model's space."""
    space = model.space if space is None else space
    names = model.space.names
    unknown = [n for n in space.names if n not in names]
    if unknown:
        raise KeyError(f"parameters {unknown} are not parameters of model {model.name!r} ({', '.join(names)})")
    return space, np.array([names.index(n) for n in space.names], dtype=np.int64)


class _Problem:
    """One basin: forcing, observations and the bookkeeping of its search."""

    def __init__(self, name: str, forcing: Mapping[str, np.ndarray], obs: np.ndarray, entropy) -> None:
        self.name = name
        self.forcing = forcing
        self.obs = obs
        self.entropy = entropy
        self.seconds = 0.0
        self.note = ""


def _score(q: np.ndarray, obs: np.ndarray, sl: slice, month: np.ndarray | None, objective: str,
           note: str = "") -> np.ndarray:
    if note:  # the period's coverage is below min_coverage: not scored
        return np.full(q.shape[:-1], np.nan)
    m = month[sl] if (month is not None and get_objective(objective).needs_month) else None
    return score_all(q[..., sl], obs[..., sl], m, [objective], min_valid=DEFAULT_MIN_VALID)[objective]


def _collect(runs: list, sub: list[_Problem], qbuf: np.ndarray, k: int) -> None:
    """Wait for each basin's submitted batch and copy its flow into ``qbuf``; NaN where it failed."""
    for b, (pb, run) in enumerate(zip(sub, runs, strict=True)):
        t = _time.perf_counter()
        try:
            if run is None:
                raise ValueError("not submitted")
            qbuf[b, :k] = run.result()
        except (ValueError, FloatingPointError):
            qbuf[b, :k] = np.nan
        pb.seconds += _time.perf_counter() - t


def _calibrate_many(problems: list[_Problem], model: ModelAdapter, space: ParameterSpace | None,
                    slices: Mapping[str, slice], calibration: str, month: np.ndarray | None, budget: int,
                    chains: int, objective: str, r: float, checkpoints: Sequence[int] = (),
                    min_coverage: float = DEFAULT_MIN_COVERAGE) -> list[dict[str, Any]]:
    """DDS of several basins stepped together; one result dict per problem (NaN and a note if skipped)."""
    obj = get_objective(objective)
    sign = -1.0 if obj.sense == "max" else 1.0
    space, cols = _columns(model, space)
    full_default = np.asarray(model.space.default, dtype=np.float64)
    n_full = full_default.size
    lo, hi = space.lower, space.upper
    if calibration not in slices:
        raise KeyError(f"no period {calibration!r} among the periods {list(slices)}")
    csl = slices[calibration]
    c0, c1 = csl.start, csl.stop
    steps, _ = dds_budget_split(budget, chains)

    def full_params(u: np.ndarray) -> np.ndarray:
        x = np.broadcast_to(full_default, (*u.shape[:-1], n_full)).copy()
        x[..., cols] = np.clip(space.from_unit(u), lo, hi)
        return x

    results: list[dict[str, Any]] = []
    ok: list[int] = []
    u0 = np.asarray(space.to_unit(full_default[cols]), dtype=np.float64)
    f0 = []
    default_scores = []
    for i, pb in enumerate(problems):
        res = {"basin": pb.name, "note": "", "runs": 0}
        results.append(res)
        obs = np.asarray(pb.obs, dtype=np.float64)
        if obs.ndim != 1:
            raise ValueError(f"basin {pb.name}: obs must be a (time,) array, got shape {obs.shape}")
        pb.obs = obs
        cov = period_coverage(obs, slices)
        res["coverage"] = dict(zip(slices, cov.tolist(), strict=True))
        notes = res["score_note"] = {p: coverage_note(p, c, sl.stop - sl.start, min_coverage)
                                     for (p, sl), c in zip(slices.items(), cov, strict=True)}
        n_valid = int(np.count_nonzero(~np.isnan(obs[csl])))
        if notes[calibration] or n_valid < DEFAULT_MIN_VALID:
            res["note"] = "skipped: " + (notes[calibration].removeprefix("not scored: ") or (
                f"{n_valid} observed day(s) in the {calibration} period (at least {DEFAULT_MIN_VALID} needed)"))
            continue
        t0 = _time.perf_counter()
        try:  # run 1, the default set, through the adapter: it also checks the forcing
            q = np.asarray(model.run(pb.forcing, full_default[None, :]), dtype=np.float64)
            if q.shape != (1, obs.shape[0]):
                raise ValueError(f"the model returned flow of shape {q.shape}, expected (1, {obs.shape[0]}) "
                                 "like the observations")
        except (ValueError, KeyError) as err:
            res["note"] = f"skipped: the model failed with the default parameters: {type(err).__name__}: {err}"
            continue
        pb.seconds += _time.perf_counter() - t0
        default_scores.append({p: float(_score(q, obs, sl, month, objective, notes[p])[0])
                               for p, sl in slices.items()})
        f0.append(sign * default_scores[-1][calibration])
        ok.append(i)

    n_p = len(ok)
    if n_p == 0:
        return results
    sub = [problems[i] for i in ok]
    # the model's own fast path: a batch runner per basin over the days up to the calibration period's end
    runners = [model.runner({v: np.asarray(a)[..., :c1] for v, a in pb.forcing.items()}, warmup_days=c0)
               for pb in sub]
    qbuf = np.empty((n_p, chains, c1 - c0))
    obs_cal = np.stack([pb.obs[c0:c1] for pb in sub])[:, None, :]
    cal_month = month[c0:c1] if (month is not None and obj.needs_month) else None
    if obj.needs_month and cal_month is None:
        raise ValueError(f"objective {objective!r} needs the month of each day (month=...)")

    def evaluate(u: np.ndarray) -> np.ndarray:
        k = u.shape[1]
        x = full_params(u)
        runs = []
        for b, (pb, runner) in enumerate(zip(sub, runners, strict=True)):  # submit every basin, then wait
            t = _time.perf_counter()
            try:
                runs.append(runner.submit(x[b]))
            except (ValueError, FloatingPointError):
                runs.append(None)
            pb.seconds += _time.perf_counter() - t
        _collect(runs, sub, qbuf, k)
        return sign * score_all(qbuf[:, :k], obs_cal, cal_month, [objective],
                                min_valid=DEFAULT_MIN_VALID)[objective]

    t_all = _time.perf_counter()
    own0 = sum(pb.seconds for pb in sub)
    out = dds_engine(evaluate, np.repeat(u0[None, :], n_p, axis=0), np.array(f0, dtype=np.float64),
                     budget, chains, r, [pb.entropy for pb in sub], checkpoints)
    shared = (_time.perf_counter() - t_all) - (sum(pb.seconds for pb in sub) - own0)
    for j, (i, pb) in enumerate(zip(ok, sub, strict=True)):
        res = results[i]
        pb.seconds += shared / n_p
        best = full_params(out["u"][j])
        ck = full_params(out["checkpoint_u"][j])
        t0 = _time.perf_counter()  # the best set (and those of the checkpoints) over the full window
        q = np.asarray(model.run(pb.forcing, np.concatenate([best[None, :], ck])), dtype=np.float64)
        pb.seconds += _time.perf_counter() - t0
        if len(ck):
            res["checkpoint_params"] = ck
            res["checkpoint_score"] = {p: _score(q[1:], pb.obs, sl, month, objective, res["score_note"][p])
                                       for p, sl in slices.items()}
        q = q[:1]
        hist = out["history"][j]
        res.update({
            "best_params": best,
            "best_unit": np.asarray(out["u"][j]),
            "best_score": {p: float(_score(q, pb.obs, sl, month, objective, res["score_note"][p])[0])
                           for p, sl in slices.items()},
            "default_score": default_scores[j],
            "history": np.where(np.isinf(hist), np.nan, sign * hist),
            "chain_score": np.where(np.isinf(out["chain_f"][j]), np.nan, sign * out["chain_f"][j]),
            "runs": int(budget),
            "steps": int(steps),
            "wall_seconds": pb.seconds,
        })
    return results


def dds_basin(forcing: Mapping[str, np.ndarray], obs, space: ParameterSpace | None = None,
              model: str | ModelAdapter = DirectSettings.model, *, slices: Mapping[str, slice],
              calibration: str = DirectSettings.period, month=None, budget: int = DirectSettings.budget,
              chains: int = DirectSettings.chains, objective: str = DirectSettings.objective,
              r: float = DirectSettings.r, seed=DirectSettings.seed, checkpoints: Sequence[int] = (),
              min_coverage: float = DirectSettings.min_coverage) -> dict[str, Any]:
    """Calibrate one basin with DDS on the process model.

    Parameters
    ----------
    forcing : mapping of str to numpy.ndarray
        The model's forcing variables (``model.forcing_variables``), each ``(time,)`` over the
        whole simulation window, warm-up included.
    obs : array_like
        ``(time,)`` observed flow over the same window (NaN for missing days).
    space : ParameterSpace, optional
        The calibrated parameters, a subset of ``model.space`` (the others stay at their
        defaults); all of the model's parameters by default.
    model : str or ModelAdapter
        A registered model name or an adapter instance (``"hbv"`` by default). The search runs
        the model through the adapter's batch runner (``model.runner``).
    slices : mapping of str to slice
        Index slices of the evaluation periods within the window
        (:func:`lsegeo.periods.period_slices`); days outside every slice (the warm-up) are
        never scored.
    calibration : str
        The key of ``slices`` whose days the search scores.
    month : array_like of int, optional
        ``(time,)`` calendar month of each day, needed by the monthly objective only.
    budget : int
        Model runs of the search, the default parameter set included.
    chains : int
        Independent DDS chains sharing the budget (see the module notes).
    objective : str
        Key of :data:`lsegeo.metrics.objectives.OBJECTIVES`; maximised or minimised as its sense says.
    r : float
        DDS perturbation size (fraction of the unit-cube range).
    seed : int or sequence of int
        Seed entropy; :func:`lsegeo.optimise.dds.basin_seed` gives the one :func:`calibrate_direct` uses.
    checkpoints : sequence of int
        Run numbers at which the best set so far is also kept and scored on every period.
    min_coverage : float
        Least share of a period's days with an observation: below it on the calibration period
        the basin is refused; on another period its scores are NaN, with a ``score_note``.

    Returns
    -------
    dict
        ``best_params`` ``(len(model.space),)`` (all the model's parameters, in its order),
        ``best_unit`` (the calibrated ones in the unit cube), ``best_score`` and
        ``default_score`` (``{period: score}`` from a run over the whole window),
        ``history`` ``(budget,)`` best calibration score after each run, ``chain_score``
        ``(chains,)``, ``runs``, ``steps``, ``wall_seconds``, ``note``, ``coverage`` and
        ``score_note`` (``{period: share of days observed}``, ``{period: why not scored}``); with checkpoints,
        ``checkpoint_params`` ``(len(checkpoints), len(model.space))`` and ``checkpoint_score``
        (``{period: (len(checkpoints),) scores}``).

    Raises
    ------
    ValueError
        The calibration period's coverage is below ``min_coverage`` (or under 2 observed days), the model fails
        with the default parameters (e.g. NaN forcing), a period's slice leaves the window, or
        a DDS setting is invalid.
    """
    model = _resolve_model(model)
    n = np.asarray(obs).shape[-1]
    month = None if month is None else np.asarray(month)
    pb = _Problem("basin", forcing, np.asarray(obs, dtype=np.float64), seed)
    for name, sl in slices.items():
        if not 0 <= sl.start < sl.stop <= n:
            raise ValueError(f"period {name!r} slice {sl} is outside the {n}-day window")
    res = _calibrate_many([pb], model, space, slices, calibration, month, budget, chains, objective, r,
                          checked_checkpoints(checkpoints, budget), min_coverage)[0]
    if "best_params" not in res:
        raise ValueError(res["note"])
    res.pop("basin")
    return res


# ---------------------------------------------------------------------------------------------
# many basins on dask
# ---------------------------------------------------------------------------------------------


def _direct_chunk(basins_store: str, basins: list[str], st: DirectSettings) -> list[dict[str, Any]]:
    """Calibrate a chunk of basins (one dask task): read their forcing and observations, run DDS."""
    window = simulation_window(st.periods, st.warmup_days)
    slices = period_slices(window, st.periods)
    month = window.month.to_numpy()
    model = get_model(st.model)
    space = model.space if st.parameters is None else model.space.subset(st.parameters)
    forcing, observed = load_basin_inputs(basins_store, basins, model.forcing_variables, window,
                                          observed=("qobs", "has_observations"))
    problems, skipped = [], {}
    for b in basins:
        if not bool(observed["has_observations"].sel(basin=b)):
            skipped[b] = "skipped: no observed streamflow (has_observations = False: withheld or absent)"
            continue
        inputs = {v: forcing[v].sel(basin=b).values.astype("float64") for v in model.forcing_variables}
        problems.append(_Problem(b, inputs, observed["qobs"].sel(basin=b).values.astype("float64"),
                                 basin_seed(st.seed, b)))
    done = {r["basin"]: r for r in _calibrate_many(
        problems, model, space, slices, st.calibration_period, month, st.budget, st.chains, st.objective, st.r,
        st.checkpoints, st.min_coverage)}
    cov = period_coverage(observed["qobs"].sel(basin=basins).values, slices)  # the basins without observations: 0
    return [done.get(b, {"basin": b, "note": skipped.get(b, ""), "runs": 0,
                         "coverage": dict(zip(slices, cov[i].tolist(), strict=True))}) for i, b in enumerate(basins)]


def _resolve_basins(basins_store: Path, basins) -> list[str]:
    """Gauge ids of ``basins`` (``"observed"``, ``"all"``, an id or a list of ids) in the store."""
    observed = open_store(basins_store, "observed")
    ids = [str(b) for b in observed.basin.values]
    if isinstance(basins, str):
        if basins == "all":
            return ids
        if basins == "observed":
            return [b for b, h in zip(ids, observed["has_observations"].values, strict=True) if h]
        basins = [basins]
    basins = [str(b) for b in basins]
    missing = [b for b in basins if b not in ids]
    if missing:
        raise StoreError(f"basins {missing[:5]}{'...' if len(missing) > 5 else ''} are not in {basins_store}")
    if len(set(basins)) != len(basins):
        raise ValueError("basins are repeated in the list")
    return basins


def calibrate_direct(basins_store: str | Path, basins: str | Sequence[str] = "observed", *,
                     settings: DirectSettings | None = None, client=None, cluster=None,
                     store: str | Path | None = None, overwrite: bool = False, progress: bool = True,
                     call: str = "", **overrides: Any) -> xr.Dataset:
    """Calibrate many basins directly with the process model (DDS), on a dask cluster.

    Parameters
    ----------
    basins_store : path-like
        The basins store (``forcing`` and ``observed`` groups).
    basins : {"observed", "all"} or sequence of str
        Gauge ids, or every basin with observations, or every basin of the store. Basins
        without observations are kept in the result with NaN and a note.
    settings : DirectSettings, optional
        The search: model, objective, calibration period, periods, warm-up, budget, chains,
        ``r``, seed, calibrated parameters, checkpoints, basins per dask task; the defaults of
        :class:`~lsegeo.calibration.direct_settings.DirectSettings` when not given.
    client : distributed.Client, optional
        Run on this client; otherwise a cluster is started from ``cluster`` (default: local).
    cluster : lsegeo.parallel.ClusterSettings, optional
        The cluster to start when no client is given (the configuration's ``cluster`` section
        works too).
    store : path-like, optional
        Also write the result there (zarr v3, group ``direct``), atomically, with provenance
        (:func:`lsegeo.io.stores.write_store`).
    overwrite : bool
        Replace an existing ``store``.
    progress : bool
        Show a progress bar (in basins) on standard error.
    call : str
        The command, for ``history``.
    **overrides
        Fields of :class:`~lsegeo.calibration.direct_settings.DirectSettings` to replace in
        ``settings`` (``budget=200, chains=4, periods=..., checkpoints=[50, 100]``, ...).
        Checkpoints are run numbers (e.g. the budgets of an emulator loop: 200, 250, ...) at which
        the best set so far is kept and scored on every period, so that the search can be
        compared at equal budgets on the test period too.

    Returns
    -------
    xarray.Dataset
        ``best_params(basin, param)``, ``best_score(basin, period)`` and
        ``default_score(basin, period)`` (the settings' objective), ``history(basin, run)``
        (best calibration score after each run), ``chain_score(basin, chain)``, ``runs(basin)``,
        ``wall_seconds(basin)``, ``note(basin)`` (why a basin was skipped), the parameter space
        (``param_lower`` ...), and provenance attributes; with checkpoints also
        ``checkpoint_params(basin, checkpoint, param)`` and ``checkpoint_score(basin, checkpoint,
        period)``.

    Raises
    ------
    ValueError
        An invalid setting (budget, chains, ``r``, checkpoints outside the budget, ...).
    TypeError
        An override that is not a field of the settings.
    lsegeo.errors.UnknownNameError
        An unknown model or objective.
    StoreError
        The basins store does not cover the simulation window, a basin is not in it, or
        ``store`` exists and ``overwrite`` is false.
    """
    from distributed import as_completed
    from tqdm.auto import tqdm

    t_start = _time.perf_counter()
    basins_store = Path(basins_store)
    st = dataclasses.replace(settings or DirectSettings(), **overrides)
    mdl = get_model(st.model)
    space = mdl.space if st.parameters is None else mdl.space.subset(st.parameters)
    obj = get_objective(st.objective)
    steps, _ = dds_budget_split(st.budget, st.chains)
    checkpoints = list(st.checkpoints)
    names = [p.name for p in st.periods]
    calibration = st.calibration_period
    ids = _resolve_basins(basins_store, basins)
    window = simulation_window(st.periods, st.warmup_days)
    have = pd.DatetimeIndex(open_store(basins_store, "forcing").time.values)
    if window[0] < have[0] or window[-1] > have[-1]:
        raise StoreError(f"the simulation window {window[0].date()} to {window[-1].date()} (periods plus "
                         f"{st.warmup_days} warm-up days) is not covered by {basins_store} "
                         f"({have[0].date()} to {have[-1].date()})")
    if store is not None and Path(store).exists() and not overwrite:
        raise StoreError(f"{store} already exists; pass overwrite=True to replace it")
    spec = {"model": st.model, "parameters": None if st.parameters is None else list(space.names),
            "periods": periods_json(st.periods), "warmup_days": int(st.warmup_days), "calibration": calibration,
            "objective": st.objective, "budget": int(st.budget), "chains": int(st.chains), "r": float(st.r),
            "seed": int(st.seed), "checkpoints": checkpoints, "min_coverage": float(st.min_coverage)}
    nb, npar = len(ids), len(mdl.space)
    best_params = np.full((nb, npar), np.nan)
    best_score = np.full((nb, len(st.periods)), np.nan)
    default_score = np.full((nb, len(st.periods)), np.nan)
    history = np.full((nb, st.budget), np.nan)
    chain_score = np.full((nb, st.chains), np.nan)
    ck_params = np.full((nb, len(checkpoints), npar), np.nan)
    ck_score = np.full((nb, len(checkpoints), len(st.periods)), np.nan)
    runs = np.zeros(nb, dtype=np.int32)
    wall = np.full(nb, np.nan)
    notes = np.full(nb, "", dtype=object)
    coverage = np.full((nb, len(st.periods)), np.nan)
    score_note = np.full((nb, len(st.periods)), "", dtype=object)
    index = {b: i for i, b in enumerate(ids)}
    chunks = [ids[i:i + st.chunk_basins] for i in range(0, nb, st.chunk_basins)]
    key = uuid.uuid4().hex[:8]
    with dask_client(cluster, client) as c, \
            tqdm(total=nb, unit="basin", desc="direct DDS", disable=not progress, file=sys.stderr) as bar:
        futures = [submit_task(c, _direct_chunk, str(basins_store), chunk, st,  # not retried: errors reported once
                               key=f"direct-{j}-{key}") for j, chunk in enumerate(chunks)]
        try:
            for fut in as_completed(futures):
                for res in task_result(fut):
                    i = index[res["basin"]]
                    notes[i] = res["note"]
                    runs[i] = res["runs"]
                    coverage[i] = [res["coverage"][p.name] for p in st.periods]
                    score_note[i] = [coverage_note(p.name, c, (p.end - p.start).days + 1, st.min_coverage)
                                     for p, c in zip(st.periods, coverage[i], strict=True)]
                    if "best_params" in res:
                        best_params[i] = res["best_params"]
                        best_score[i] = [res["best_score"][p] for p in names]
                        default_score[i] = [res["default_score"][p] for p in names]
                        history[i] = res["history"]
                        chain_score[i] = res["chain_score"]
                        wall[i] = res["wall_seconds"]
                        if checkpoints:
                            ck_params[i] = res["checkpoint_params"]
                            ck_score[i] = np.stack([res["checkpoint_score"][p] for p in names], axis=-1)
                bar.update(len(task_result(fut)))
        except BaseException:
            c.cancel(futures)
            raise
    elapsed = _time.perf_counter() - t_start

    ds = xr.Dataset(
        {
            "best_params": (("basin", "param"), best_params,
                            {"long_name": "best parameter set found by DDS (uncalibrated parameters at their "
                                          "defaults)"}),
            "best_score": (("basin", "period"), best_score,
                           {"long_name": f"{obj.long_name} of the best parameter set", "units": obj.units,
                            "objective": st.objective}),
            "default_score": (("basin", "period"), default_score,
                              {"long_name": f"{obj.long_name} of the default parameter set (run 1)",
                               "units": obj.units, "objective": st.objective}),
            "history": (("basin", "run"), history,
                        {"long_name": f"best {calibration}-period {st.objective} after each model run",
                         "units": obj.units}),
            "chain_score": (("basin", "chain"), chain_score,
                            {"long_name": f"best {calibration}-period {st.objective} of each DDS chain",
                             "units": obj.units}),
            "runs": ("basin", runs, {"long_name": "model runs of the search (the default set included; "
                                                  "0 when skipped)"}),
            "wall_seconds": ("basin", wall,
                             {"long_name": "worker seconds spent on the basin", "units": "s",
                              "comment": "the basin's own model runs timed one by one, plus an equal share "
                                         "of its chunk's batched proposal and scoring time"}),
            "note": ("basin", notes, {"long_name": "why the basin was skipped (empty when it was calibrated)"}),
            "coverage": (("basin", "period"), coverage,
                         {"long_name": "share of the period's days with an observed flow", "units": "1"}),
            "score_note": (("basin", "period"), score_note,
                           {"long_name": "why the basin is not scored on the period (empty when it is)"}),
            "calibrated": ("param", np.array([n in space.names for n in mdl.space.names]),
                           {"long_name": "whether the parameter was calibrated"}),
            "checkpoint_params": (("basin", "checkpoint", "param"), ck_params,
                                  {"long_name": "best parameter set after the checkpoint's number of runs"}),
            "checkpoint_score": (("basin", "checkpoint", "period"), ck_score,
                                 {"long_name": f"{obj.long_name} of the best set after the checkpoint's number "
                                               "of runs", "units": obj.units, "objective": st.objective}),
        },
        coords={
            "basin": ("basin", np.array(ids, dtype=object), {"long_name": "gauge id"}),
            "param": ("param", np.array(mdl.space.names, dtype=object)),
            "period": ("period", np.array(names, dtype=object)),
            "run": ("run", np.arange(1, st.budget + 1, dtype=np.int64), {"long_name": "model run number"}),
            "chain": ("chain", np.arange(st.chains, dtype=np.int64)),
            "checkpoint": ("checkpoint", np.array(checkpoints, dtype=np.int64),
                           {"long_name": "model runs of the search so far (checkpoint)"}),
        },
    )
    for name in ("lower", "upper", "default"):
        ds[f"param_{name}"] = ("param", getattr(mdl.space, name), {"long_name": f"{name} of the parameter's range"})
    ds["param_scale"] = ("param", np.array([p.scale for p in mdl.space.parameters], dtype=object))
    ds["param_units"] = ("param", np.array([p.units for p in mdl.space.parameters], dtype=object))
    basins_attrs = root_attrs(basins_store)
    calibrated = int((runs > 0).sum())
    config = {**spec, "basins": ids if len(ids) <= 50 else f"{len(ids)} basins", "n_basins": nb,
              "basins_store": str(basins_store.resolve()), "chunk_basins": int(st.chunk_basins)}
    attrs = provenance.product_attrs(
        title=f"lsegeo direct calibration: {st.model} by DDS over {nb} basins",
        summary=(f"Each basin calibrated with the {st.model} model itself by dynamically dimensioned search "
                 f"(DDS, r={st.r}), {st.budget} model runs per basin in {st.chains} chain(s) from the default "
                 f"parameter set, {'maximising' if obj.sense == 'max' else 'minimising'} {st.objective} on the "
                 f"{calibration} period; {calibrated} basins calibrated, {nb - calibrated} skipped."),
        step="direct calibration", call=call or "lsegeo.calibration.direct.calibrate_direct", config=config,
        inputs={str(basins_store): basins_attrs.get("lsegeo_inputs_sha256", "")},
        references=DDS_REFERENCE,
        extra={"lsegeo_store_kind": "direct", "lsegeo_model": st.model, "lsegeo_objective": st.objective,
               "lsegeo_objective_sense": obj.sense, "lsegeo_calibration_period": calibration,
               "lsegeo_budget": int(st.budget), "lsegeo_chains": int(st.chains), "lsegeo_steps": int(steps),
               "lsegeo_dds_r": float(st.r), "lsegeo_seed": int(st.seed),
               "lsegeo_basins_store": str(basins_store.resolve()),
               "lsegeo_basins_store_id": basins_attrs.get("id", ""), "lsegeo_periods": spec["periods"],
               "lsegeo_min_coverage": float(st.min_coverage),
               "lsegeo_warmup_days": int(st.warmup_days), "lsegeo_window": f"{window[0].date()}/{window[-1].date()}",
               "lsegeo_wall_seconds": float(elapsed), "lsegeo_chunk_basins": int(st.chunk_basins)})
    ds.attrs = attrs
    if store is not None:
        write_direct(ds, Path(store), overwrite, basins_store)
    return ds
