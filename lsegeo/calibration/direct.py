"""Direct calibration: each basin calibrated with the process model itself, by DDS.

This is the reference optimum that emulator-based calibration (:mod:`lsegeo.calibration.loop`) is
measured against: every candidate parameter set is a real model run over the whole simulation
window (warm-up, test and calibration periods, e.g. 7,305 days), scored on the calibration
period only, with a large budget (2,000 runs per basin by default).

Dynamically Dimensioned Search (DDS)
------------------------------------
The search is DDS (Tolson & Shoemaker 2007), written here from the paper's algorithm:

1. start from an initial solution (here the parameter space's default set, as the Ostrich/DDS
   benchmark of the study did) and evaluate it;
2. for candidate ``i = 1, ..., m - 1`` (``m`` evaluations in all) perturb each dimension of the
   current best solution with probability ``P(i) = 1 - ln(i) / ln(m)``, and one dimension chosen
   at random when none is selected;
3. a perturbed dimension moves by ``r * N(0, 1)`` times its range (``r = 0.2``); a value that
   leaves the box is reflected at the bound it crossed, and set to that bound if the
   reflection leaves the box again (:func:`lsegeo.design.reflect_unit`);
4. greedy acceptance: the candidate replaces the current best when it is at least as good.

The search works in the unit cube of the :class:`~lsegeo.design.ParameterSpace`
(:meth:`~lsegeo.design.ParameterSpace.to_unit` / ``from_unit``), so the range of a parameter on
a log scale (HBV's FC and K2) is its range in log space, and ``r`` is a fraction of that. The
default set is the starting point; parameters left out of the calibrated space stay at their
defaults.

Chains and the budget
---------------------
A basin's budget of ``budget`` model runs is spent as: run 1, the default parameter set
(evaluated once and shared by every chain as its starting point), then ``budget - 1``
candidates spread over ``chains`` independent DDS chains that advance in lock-step. Step ``s``
(1-based) evaluates candidate ``s`` of chains ``0, ..., chains - 1``, which are runs
``2 + (s - 1) * chains + c``; the last step evaluates only the chains still needed, so a basin
makes exactly ``budget`` runs. A chain with ``n`` candidates uses ``m = n + 1`` in ``P(i)``
(its own search length, the shared start included). With the defaults (2,000 runs, 4 chains)
chains 0-2 make 500 candidates and chain 3 makes 499: 1 + 500 + 500 + 500 + 499 = 2,000.
``history(basin, run)`` is the best calibration score over runs ``1..run`` in that order, so
``history[..., n - 1]`` is the best score after ``n`` runs: the same searches seen at equal
budgets (a truncation of the full-budget search, whose perturbation probabilities are
scheduled for the full budget, not a separate search with a budget of ``n``). The final run of
the best parameters over the full window, to score every period, is not counted in ``runs``.

Speed
-----
The model runs of a chain step are one call of the numba kernel per basin with the ``chains``
candidates as its members (:func:`lsegeo.models.hbv.model.hbv_kernel` directly, without the
adapter's checks, for the embedded HBV model; the adapter's ``run`` for any other model), and
each dask task steps the DDS of its whole chunk of basins together: proposals for every
(basin, chain) are drawn in one vectorised numpy operation and all the chunk's candidates are
scored in one :func:`lsegeo.metrics.scores.score_all` call. Only the days up to the end of the
calibration period are simulated during the search.

Reproducibility
---------------
Every basin draws its random numbers from its own generator, seeded with ``(seed,
crc32(basin id))`` (:func:`basin_seed`) and consumed in a fixed order, so a basin's search does
not depend on which other basins share its chunk, on the chunk size or on the number of
workers: :func:`dds_basin` with ``seed=basin_seed(seed, basin)`` repeats what
:func:`calibrate_direct` did for that basin.

References
----------
Tolson, B. A. and Shoemaker, C. A. (2007). Dynamically dimensioned search algorithm for
computationally efficient watershed model calibration. *Water Resour. Res.* 43, W01413.
doi:10.1029/2005WR004723
"""

from __future__ import annotations

import json
import math
import sys
import time as _time
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import zarr

from lsegeo import provenance
from lsegeo.parallel import dask_client
from lsegeo.config import ClusterConfig
from lsegeo.design import ParameterSpace, reflect_unit
from lsegeo.ensembles.store import _periods_json
from lsegeo.errors import StoreError
from lsegeo.io.stores import PROV_ATTR, atomic_store, consolidate, load_basin_inputs, open_store
from lsegeo.periods import (
    DEFAULT_PERIODS,
    DEFAULT_WARMUP_DAYS,
    Period,
    period_slices,
    simulation_window,
)
from lsegeo.metrics.scores import DEFAULT_MIN_VALID, get_objective, score_all

__all__ = [
    "DDS_R",
    "DDS_REFERENCE",
    "basin_seed",
    "calibrate_direct",
    "dds",
    "dds_basin",
    "dds_budget_split",
    "open_direct",
]

DDS_R = 0.2
"""DDS perturbation size, as a fraction of each dimension's range (Tolson & Shoemaker 2007)."""

DDS_REFERENCE = ("Tolson, B. A. and Shoemaker, C. A. (2007), Dynamically dimensioned search algorithm "
                 "for computationally efficient watershed model calibration, Water Resour. Res. 43, "
                 "W01413, doi:10.1029/2005WR004723")
"""Citation of the search algorithm, recorded in the products."""

_GROUP = "direct"


# ---------------------------------------------------------------------------------------------
# DDS engine (lock-step chains of many independent problems)
# ---------------------------------------------------------------------------------------------


def basin_seed(seed: int, basin: str) -> list[int]:
    """The seed entropy of one basin's search: ``[seed, crc32(basin id)]``.

    Parameters
    ----------
    seed : int
        The run's seed.
    basin : str
        The basin (gauge) id.

    Returns
    -------
    list of int
        Entropy for :class:`numpy.random.SeedSequence`; pass it as ``seed`` to
        :func:`dds_basin` to repeat a basin of :func:`calibrate_direct`.
    """
    return [int(seed), zlib.crc32(str(basin).encode())]


def dds_budget_split(budget: int, chains: int) -> tuple[int, np.ndarray]:
    """How a budget of model runs is split over DDS chains.

    Parameters
    ----------
    budget : int
        Model runs in all, the shared initial solution included (``>= 1``).
    chains : int
        Independent chains (``>= 1``).

    Returns
    -------
    steps : int
        Lock-step iterations: ``ceil((budget - 1) / chains)``.
    candidates : numpy.ndarray
        ``(chains,)`` candidates evaluated by each chain; they sum to ``budget - 1``.
    """
    budget, chains = int(budget), int(chains)
    if budget < 1:
        raise ValueError(f"budget must be at least 1 model run (the initial solution), got {budget}")
    if chains < 1:
        raise ValueError(f"chains must be at least 1, got {chains}")
    n = budget - 1
    steps = -(-n // chains)
    candidates = np.array([len(range(c, n, chains)) for c in range(chains)], dtype=np.int64)
    return steps, candidates


def _draws(entropy, steps: int, chains: int, dims: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All random numbers of one problem's search, drawn in a fixed order."""
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    select = rng.random((steps, chains, dims))
    normal = rng.standard_normal((steps, chains, dims))
    pick = rng.integers(0, dims, size=(steps, chains)) if dims else np.zeros((steps, chains), dtype=np.int64)
    return select, normal, pick


def _dds_engine(evaluate: Callable[[np.ndarray], np.ndarray], u0: np.ndarray, f0: np.ndarray, budget: int,
                chains: int, r: float, entropies: Sequence, checkpoints: Sequence[int] = ()) -> dict[str, np.ndarray]:
    """Minimise ``evaluate`` for ``P`` independent problems with ``chains`` DDS chains each.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(u)`` with ``u`` of shape ``(P, k, D)`` in the unit cube returns ``(P, k)``
        losses to minimise; NaN counts as worst.
    u0 : numpy.ndarray
        ``(P, D)`` initial solutions (already evaluated).
    f0 : numpy.ndarray
        ``(P,)`` their losses (run 1).
    budget, chains, r
        See :func:`dds_budget_split`; ``r`` is the perturbation size.
    entropies : sequence
        One seed entropy per problem.
    checkpoints : sequence of int
        Run numbers (1 to ``budget``) at which to keep the best solution so far.

    Returns
    -------
    dict
        ``u`` ``(P, D)`` best solutions, ``f`` ``(P,)`` their losses (inf where no run gave a
        number), ``history`` ``(P, budget)`` best loss after each run, ``chain_f`` ``(P, chains)``
        best loss of each chain, ``chain_u`` ``(P, chains, D)``, ``checkpoint_u``
        ``(P, len(checkpoints), D)`` the best solution after each checkpoint run.
    """
    u0 = np.asarray(u0, dtype=np.float64)
    n_p, n_d = u0.shape
    steps, cand = dds_budget_split(budget, chains)
    draws = [_draws(e, steps, chains, n_d) for e in entropies]
    select = np.stack([d[0] for d in draws]) if n_p else np.zeros((0, steps, chains, n_d))
    normal = np.stack([d[1] for d in draws]) if n_p else np.zeros((0, steps, chains, n_d))
    pick = np.stack([d[2] for d in draws]) if n_p else np.zeros((0, steps, chains), dtype=np.int64)
    f0 = np.where(np.isnan(f0), np.inf, np.asarray(f0, dtype=np.float64))
    xb = np.repeat(u0[:, None, :], chains, axis=1)
    fb = np.repeat(f0[:, None], chains, axis=1)
    hist = np.empty((n_p, budget))
    hist[:, 0] = f0
    best = f0.copy()
    best_u = u0.copy()                                   # the best solution so far, over every chain
    checkpoints = [int(c) for c in checkpoints]
    if any(c < 1 or c > budget for c in checkpoints):
        raise ValueError(f"checkpoints must be run numbers from 1 to the budget {budget}, got {checkpoints}")
    ck_u = np.empty((n_p, len(checkpoints), n_d))
    ck_u[:, [ci for ci, c in enumerate(checkpoints) if c == 1]] = u0[:, None, :]
    with np.errstate(divide="ignore"):
        log_m = np.log(cand + 1.0)  # m of each chain: its candidates plus the shared start
    for s in range(steps):
        k = min(chains, budget - 1 - s * chains)
        i = s + 1
        p = 1.0 - math.log(i) / log_m[:k]  # (k,); every active chain has m >= i + 1 >= 2
        sel = select[:, s, :k, :] < p[None, :, None]
        none = ~sel.any(axis=-1)
        if none.any():
            pb, pc = np.nonzero(none)
            sel[pb, pc, pick[pb, s, pc]] = True
        u = np.where(sel, xb[:, :k] + r * normal[:, s, :k, :], xb[:, :k])
        u = reflect_unit(u)
        f = np.asarray(evaluate(u), dtype=np.float64).reshape(n_p, k)
        f = np.where(np.isnan(f), np.inf, f)
        take = f <= fb[:, :k]
        xb[:, :k] = np.where(take[..., None], u, xb[:, :k])
        fb[:, :k] = np.where(take, f, fb[:, :k])
        run = np.minimum.accumulate(np.concatenate([best[:, None], f], axis=1), axis=1)[:, 1:]
        hist[:, 1 + s * chains:1 + s * chains + k] = run
        first = 2 + s * chains                                # the run number of this step's first candidate
        for ci, c in enumerate(checkpoints):
            if first <= c < first + k:                        # best of the runs up to c, earlier runs first
                j = np.argmin(f[:, : c - first + 1], axis=1)
                better = f[np.arange(n_p), j] < best
                ck_u[:, ci] = np.where(better[:, None], u[np.arange(n_p), j], best_u)
        j = np.argmin(f, axis=1)
        better = f[np.arange(n_p), j] < best
        best_u = np.where(better[:, None], u[np.arange(n_p), j], best_u)
        best = run[:, -1]
    c_best = np.argmin(fb, axis=1) if n_p else np.zeros(0, dtype=np.int64)
    # the overall best is the first chain reaching the lowest loss; the default when nothing beat it
    u_best = xb[np.arange(n_p), c_best] if n_p else np.zeros((0, n_d))
    improved = fb[np.arange(n_p), c_best] < f0 if n_p else np.zeros(0, dtype=bool)
    u_best = np.where(improved[:, None], u_best, u0)
    return {"u": u_best, "f": np.where(improved, fb[np.arange(n_p), c_best], f0), "history": hist,
            "chain_f": fb, "chain_u": xb, "checkpoint_u": ck_u}


def dds(fun: Callable[[np.ndarray], np.ndarray], x0, lower, upper, *, budget: int = 1000, chains: int = 1,
        r: float = DDS_R, seed=0) -> dict[str, Any]:
    """Minimise a function over a box with DDS (Tolson & Shoemaker 2007).

    The search runs in the unit cube of the box, linearly scaled; see the module notes for the
    algorithm and how ``budget`` is split over ``chains``.

    Parameters
    ----------
    fun : callable
        Vectorised objective: ``fun(X)`` with ``X`` of shape ``(n, D)`` returns ``(n,)`` values
        to minimise. NaN counts as worst.
    x0 : array_like
        ``(D,)`` initial solution, within the box.
    lower, upper : array_like
        ``(D,)`` bounds, ``lower < upper``.
    budget : int
        Evaluations in all, ``x0`` included.
    chains : int
        Independent chains advanced in lock-step (each call of ``fun`` evaluates one candidate
        of each chain).
    r : float
        Perturbation size as a fraction of each range, in ``(0, 1]``.
    seed : int or sequence of int
        Seed entropy (:class:`numpy.random.SeedSequence`); the same seed gives the same search.

    Returns
    -------
    dict
        ``x`` the best solution, ``f`` its value, ``history`` ``(budget,)`` the best value after
        each evaluation, ``runs`` the evaluations made, ``chain_f`` ``(chains,)`` each chain's
        best value.
    """
    lo, hi = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    x0 = np.asarray(x0, dtype=np.float64)
    if lo.shape != hi.shape or x0.shape != lo.shape or lo.ndim != 1:
        raise ValueError(f"x0, lower and upper must be (D,) arrays of one length; got {x0.shape}, {lo.shape}, "
                         f"{hi.shape}")
    if not (lo < hi).all():
        raise ValueError("every lower bound must be below its upper bound")
    if ((x0 < lo) | (x0 > hi)).any():
        raise ValueError("x0 is outside the box")
    _check_r(r)
    span = hi - lo

    def to_x(u):
        return np.clip(lo + u * span, lo, hi)

    f0 = np.asarray(fun(x0[None, :]), dtype=np.float64).reshape(1)
    out = _dds_engine(lambda u: np.asarray(fun(to_x(u[0])), dtype=np.float64)[None, :],
                      ((x0 - lo) / span)[None, :], f0, budget, chains, r, [seed])
    hist = out["history"][0]
    return {"x": to_x(out["u"][0]), "f": float(out["f"][0]), "history": np.where(np.isinf(hist), np.nan, hist),
            "runs": int(budget), "chain_f": out["chain_f"][0]}


def _checked_checkpoints(checkpoints: Sequence[int], budget: int) -> list[int]:
    """Sorted distinct run numbers within the budget, or a ValueError naming the bad one."""
    out = sorted({int(c) for c in checkpoints})
    bad = [c for c in out if not 1 <= c <= budget]
    if bad:
        raise ValueError(f"checkpoints must be run numbers from 1 to the budget ({budget}); got {bad}")
    return out


def _check_r(r: float) -> None:
    if not 0.0 < r <= 1.0:
        raise ValueError(f"the DDS perturbation size r must be in (0, 1], got {r}")


# ---------------------------------------------------------------------------------------------
# one or many basins with a process model
# ---------------------------------------------------------------------------------------------


def _resolve_model(model):
    from lsegeo.models.protocol import get_model

    return get_model(model) if isinstance(model, str) else model


def _columns(model, space: ParameterSpace | None) -> tuple[ParameterSpace, np.ndarray]:
    """The calibrated space and the column of each of its parameters in the model's space."""
    space = model.space if space is None else space
    names = model.space.names
    unknown = [n for n in space.names if n not in names]
    if unknown:
        raise KeyError(f"parameters {unknown} are not parameters of model {model.name!r} ({', '.join(names)})")
    return space, np.array([names.index(n) for n in space.names], dtype=np.int64)


def _is_hbv(model) -> bool:
    from lsegeo.models.hbv.model import HBVModel

    return isinstance(model, HBVModel)


class _Problem:
    """One basin: forcing, observations and the bookkeeping of its search."""

    def __init__(self, name: str, forcing: Mapping[str, np.ndarray], obs: np.ndarray, entropy) -> None:
        self.name = name
        self.forcing = forcing
        self.obs = obs
        self.entropy = entropy
        self.seconds = 0.0
        self.note = ""


def _score(q: np.ndarray, obs: np.ndarray, sl: slice, month: np.ndarray | None, objective: str) -> np.ndarray:
    m = month[sl] if (month is not None and get_objective(objective).needs_month) else None
    return score_all(q[..., sl], obs[..., sl], m, [objective], min_valid=DEFAULT_MIN_VALID)[objective]


def _calibrate_many(problems: list[_Problem], model, space: ParameterSpace | None, slices: Mapping[str, slice],
                    calibration: str, month: np.ndarray | None, budget: int, chains: int, objective: str,
                    r: float, checkpoints: Sequence[int] = ()) -> list[dict[str, Any]]:
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
    _check_r(r)
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
        n_valid = int(np.count_nonzero(~np.isnan(obs[csl])))
        if n_valid < DEFAULT_MIN_VALID:
            res["note"] = (f"skipped: {n_valid} observed day(s) in the {calibration} period "
                           f"(at least {DEFAULT_MIN_VALID} needed)")
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
        default_scores.append({p: float(_score(q, obs, sl, month, objective)[0]) for p, sl in slices.items()})
        f0.append(sign * default_scores[-1][calibration])
        ok.append(i)

    n_p = len(ok)
    if n_p == 0:
        return results
    sub = [problems[i] for i in ok]
    fast = _is_hbv(model)
    if fast:
        from lsegeo.models.hbv.model import hbv_kernel

        ism = float(model.initial_soil_moisture)
        forc = []
        for pb in sub:
            pr = np.ascontiguousarray(np.asarray(pb.forcing["prcp"], dtype=np.float64)[:c1])
            temp = 0.5 * (np.asarray(pb.forcing["tmax"], dtype=np.float64) + np.asarray(pb.forcing["tmin"],
                                                                                       dtype=np.float64))
            pet = np.ascontiguousarray(np.asarray(pb.forcing["pet"], dtype=np.float64)[:c1])
            forc.append((pr, np.ascontiguousarray(temp[:c1]), pet))
        scratch = np.empty((chains, max(c0, 1)))
    qbuf = np.empty((n_p, chains, c1 - c0))
    obs_cal = np.stack([pb.obs[c0:c1] for pb in sub])[:, None, :] if n_p else np.zeros((0, 1, c1 - c0))
    cal_month = month[c0:c1] if (month is not None and obj.needs_month) else None
    if obj.needs_month and cal_month is None:
        raise ValueError(f"objective {objective!r} needs the month of each day (month=...)")

    def evaluate(u: np.ndarray) -> np.ndarray:
        k = u.shape[1]
        x = full_params(u)
        for b, pb in enumerate(sub):
            t = _time.perf_counter()
            if fast:
                pr, temp, pet = forc[b]
                p = np.ascontiguousarray(x[b])
                states = np.zeros((11, k))
                states[2] = ism * p[:, 5]
                totals = np.zeros((3, k))
                if c0:
                    hbv_kernel(pr[:c0], temp[:c0], pet[:c0], p, states, scratch[:k, :c0], totals)
                hbv_kernel(pr[c0:c1], temp[c0:c1], pet[c0:c1], p, states, qbuf[b, :k], totals)
            else:
                try:
                    qbuf[b, :k] = np.asarray(model.run(pb.forcing, x[b]), dtype=np.float64)[:, c0:c1]
                except (ValueError, FloatingPointError):
                    qbuf[b, :k] = np.nan
            pb.seconds += _time.perf_counter() - t
        return sign * score_all(qbuf[:, :k], obs_cal, cal_month, [objective],
                                min_valid=DEFAULT_MIN_VALID)[objective]

    t_all = _time.perf_counter()
    own0 = sum(pb.seconds for pb in sub)
    out = _dds_engine(evaluate, np.repeat(u0[None, :], n_p, axis=0), np.array(f0, dtype=np.float64),
                      budget, chains, r, [pb.entropy for pb in sub], checkpoints)
    shared = (_time.perf_counter() - t_all) - (sum(pb.seconds for pb in sub) - own0)
    for j, (i, pb) in enumerate(zip(ok, sub)):
        res = results[i]
        pb.seconds += shared / n_p
        best = full_params(out["u"][j])
        ck = full_params(out["checkpoint_u"][j])
        t0 = _time.perf_counter()  # the best set (and those of the checkpoints) over the full window
        q = np.asarray(model.run(pb.forcing, np.concatenate([best[None, :], ck])), dtype=np.float64)
        pb.seconds += _time.perf_counter() - t0
        if len(ck):
            res["checkpoint_params"] = ck
            res["checkpoint_score"] = {p: _score(q[1:], pb.obs, sl, month, objective) for p, sl in slices.items()}
        q = q[:1]
        hist = out["history"][j]
        res.update({
            "best_params": best,
            "best_unit": np.asarray(out["u"][j]),
            "best_score": {p: float(_score(q, pb.obs, sl, month, objective)[0]) for p, sl in slices.items()},
            "default_score": default_scores[j],
            "history": np.where(np.isinf(hist), np.nan, sign * hist),
            "chain_score": np.where(np.isinf(out["chain_f"][j]), np.nan, sign * out["chain_f"][j]),
            "runs": int(budget),
            "steps": int(steps),
            "wall_seconds": pb.seconds,
        })
    return results


def dds_basin(forcing: Mapping[str, np.ndarray], obs, space: ParameterSpace | None = None, model="hbv", *,
              slices: Mapping[str, slice], calibration: str = "calibration", month=None, budget: int = 2000,
              chains: int = 4, objective: str = "kgeprime", r: float = DDS_R, seed=0,
              checkpoints: Sequence[int] = ()) -> dict[str, Any]:
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
        A registered model name or an adapter instance (``"hbv"`` by default). The embedded HBV
        model runs through its numba kernel directly.
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
        Key of :data:`lsegeo.metrics.scores.OBJECTIVES`; maximised or minimised as its sense says.
    r : float
        DDS perturbation size (fraction of the unit-cube range).
    seed : int or sequence of int
        Seed entropy; :func:`basin_seed` gives the one :func:`calibrate_direct` uses.
    checkpoints : sequence of int
        Run numbers at which the best set so far is also kept and scored on every period.

    Returns
    -------
    dict
        ``best_params`` ``(len(model.space),)`` (all the model's parameters, in its order),
        ``best_unit`` (the calibrated ones in the unit cube), ``best_score`` and
        ``default_score`` (``{period: score}`` from a run over the whole window),
        ``history`` ``(budget,)`` best calibration score after each run, ``chain_score``
        ``(chains,)``, ``runs``, ``steps``, ``wall_seconds``, ``note``; with checkpoints,
        ``checkpoint_params`` ``(len(checkpoints), len(model.space))`` and ``checkpoint_score``
        (``{period: (len(checkpoints),) scores}``).

    Raises
    ------
    ValueError
        The basin has fewer than 2 observed days in the calibration period, or the model
        fails with the default parameters (e.g. NaN forcing).
    """
    model = _resolve_model(model)
    n = np.asarray(obs).shape[-1]
    month = None if month is None else np.asarray(month)
    pb = _Problem("basin", forcing, np.asarray(obs, dtype=np.float64), seed)
    for name, sl in slices.items():
        if not 0 <= sl.start < sl.stop <= n:
            raise ValueError(f"period {name!r} slice {sl} is outside the {n}-day window")
    res = _calibrate_many([pb], model, space, slices, calibration, month, budget, chains, objective, r,
                          _checked_checkpoints(checkpoints, budget))[0]
    if "best_params" not in res:
        raise ValueError(res["note"])
    res.pop("basin")
    return res


# ---------------------------------------------------------------------------------------------
# many basins on dask
# ---------------------------------------------------------------------------------------------


def _direct_chunk(basins_store: str, basins: list[str], spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Calibrate a chunk of basins (one dask task): read their forcing and observations, run DDS."""

    from lsegeo.models.protocol import get_model

    periods = [Period(d["name"], pd.Timestamp(d["start"]).date(), pd.Timestamp(d["end"]).date())
               for d in json.loads(spec["periods"])]
    window = simulation_window(periods, spec["warmup_days"])
    slices = period_slices(window, periods)
    month = window.month.to_numpy()
    model = get_model(spec["model"])
    space = model.space if spec["parameters"] is None else model.space.subset(spec["parameters"])
    forcing, observed = load_basin_inputs(basins_store, basins, model.forcing_variables, window,
                                          observed=("qobs", "has_observations"))
    problems, skipped = [], {}
    for b in basins:
        if not bool(observed["has_observations"].sel(basin=b)):
            skipped[b] = "skipped: no observed streamflow (has_observations = False: withheld or absent)"
            continue
        inputs = {v: forcing[v].sel(basin=b).values.astype("float64") for v in model.forcing_variables}
        problems.append(_Problem(b, inputs, observed["qobs"].sel(basin=b).values.astype("float64"),
                                 basin_seed(spec["seed"], b)))
    done = {r["basin"]: r for r in _calibrate_many(
        problems, model, space, slices, spec["calibration"], month, spec["budget"], spec["chains"],
        spec["objective"], spec["r"], spec["checkpoints"])}
    return [done.get(b, {"basin": b, "note": skipped.get(b, ""), "runs": 0}) for b in basins]


def _resolve_basins(basins_store: Path, basins) -> list[str]:
    observed = open_store(basins_store, "observed")
    ids = [str(b) for b in observed.basin.values]
    if isinstance(basins, str):
        if basins == "all":
            return ids
        if basins == "observed":
            return [b for b, h in zip(ids, observed["has_observations"].values) if h]
        basins = [basins]
    basins = [str(b) for b in basins]
    missing = [b for b in basins if b not in ids]
    if missing:
        raise StoreError(f"basins {missing[:5]}{'...' if len(missing) > 5 else ''} are not in {basins_store}")
    if len(set(basins)) != len(basins):
        raise ValueError("basins are repeated in the list")
    return basins


def calibrate_direct(basins_store: str | Path, basins: str | Sequence[str] = "observed", *, budget: int = 2000,
                     chains: int = 4, objective: str = "kgeprime", periods: Sequence[Period] = DEFAULT_PERIODS,
                     warmup_days: int = DEFAULT_WARMUP_DAYS, model: str = "hbv",
                     parameters: Sequence[str] | None = None, r: float = DDS_R, seed: int = 0,
                     chunk_basins: int = 8, client=None, cluster: ClusterConfig | None = None,
                     store: str | Path | None = None, overwrite: bool = False, progress: bool = True,
                     call: str = "", checkpoints: Sequence[int] = ()) -> xr.Dataset:
    """Calibrate many basins directly with the process model (DDS), on a dask cluster.

    Parameters
    ----------
    basins_store : path-like
        The basins store (``forcing`` and ``observed`` groups).
    basins : {"observed", "all"} or sequence of str
        Gauge ids, or every basin with observations, or every basin of the store. Basins
        without observations are kept in the result with NaN and a note.
    budget : int
        Model runs per basin, the default parameter set included.
    chains : int
        Independent DDS chains per basin sharing the budget (module notes).
    objective : str
        Key of :data:`lsegeo.metrics.scores.OBJECTIVES`, scored on the calibration period.
    periods : sequence of Period
        Evaluation periods; the one named ``"calibration"`` (the first when none is) is
        calibrated on, every period is scored with the best parameters. The simulation covers
        them all plus ``warmup_days`` before the earliest.
    warmup_days : int
        Days simulated before the earliest period and never scored.
    model : str
        Registered model adapter.
    parameters : sequence of str, optional
        Parameters to calibrate (the others stay at their defaults); all by default.
    r : float
        DDS perturbation size.
    seed : int
        Seed of the run; each basin's search is seeded with :func:`basin_seed`.
    chunk_basins : int
        Basins per dask task.
    client : distributed.Client, optional
        Run on this client; otherwise a cluster is started from ``cluster`` (default: local).
    cluster : ClusterConfig, optional
        The cluster to start when no client is given.
    store : path-like, optional
        Also write the result there (zarr v3, group ``direct``), atomically, with provenance.
    overwrite : bool
        Replace an existing ``store``.
    progress : bool
        Show a progress bar (in basins) on standard error.
    call : str
        The command, for ``history``.
    checkpoints : sequence of int
        Run numbers (e.g. the budgets of an emulator loop: 200, 250, ...) at which the best set
        so far is kept and scored on every period, so that the search can be compared at equal
        budgets on the test period too.

    Returns
    -------
    xarray.Dataset
        ``best_params(basin, param)``, ``best_score(basin, period)`` and
        ``default_score(basin, period)`` (objective ``objective``), ``history(basin, run)``
        (best calibration score after each run), ``chain_score(basin, chain)``, ``runs(basin)``,
        ``wall_seconds(basin)``, ``note(basin)`` (why a basin was skipped), the parameter space
        (``param_lower`` ...), and provenance attributes; with checkpoints also
        ``checkpoint_params(basin, checkpoint, param)`` and ``checkpoint_score(basin, checkpoint,
        period)``.
    """
    from distributed import as_completed
    from tqdm.auto import tqdm

    from lsegeo.models.protocol import get_model

    t_start = _time.perf_counter()
    basins_store = Path(basins_store)
    mdl = get_model(model)
    space = mdl.space if parameters is None else mdl.space.subset(parameters)
    obj = get_objective(objective)
    steps, _ = dds_budget_split(budget, chains)
    _check_r(r)
    checkpoints = _checked_checkpoints(checkpoints, budget)
    if chunk_basins < 1:
        raise ValueError(f"chunk_basins must be at least 1, got {chunk_basins}")
    periods = list(periods)
    names = [p.name for p in periods]
    calibration = "calibration" if "calibration" in names else names[0]
    ids = _resolve_basins(basins_store, basins)
    window = simulation_window(periods, warmup_days)
    have = pd.DatetimeIndex(open_store(basins_store, "forcing").time.values)
    if window[0] < have[0] or window[-1] > have[-1]:
        raise StoreError(f"the simulation window {window[0].date()} to {window[-1].date()} (periods plus "
                         f"{warmup_days} warm-up days) is not covered by {basins_store} "
                         f"({have[0].date()} to {have[-1].date()})")
    if store is not None and Path(store).exists() and not overwrite:
        raise StoreError(f"{store} already exists; pass overwrite=True to replace it")
    spec = {"model": model, "parameters": None if parameters is None else list(space.names),
            "periods": _periods_json(periods), "warmup_days": int(warmup_days), "calibration": calibration,
            "objective": objective, "budget": int(budget), "chains": int(chains), "r": float(r),
            "seed": int(seed), "checkpoints": checkpoints}
    nb, npar = len(ids), len(mdl.space)
    best_params = np.full((nb, npar), np.nan)
    best_score = np.full((nb, len(periods)), np.nan)
    default_score = np.full((nb, len(periods)), np.nan)
    history = np.full((nb, budget), np.nan)
    chain_score = np.full((nb, chains), np.nan)
    ck_params = np.full((nb, len(checkpoints), npar), np.nan)
    ck_score = np.full((nb, len(checkpoints), len(periods)), np.nan)
    runs = np.zeros(nb, dtype=np.int32)
    wall = np.full(nb, np.nan)
    notes = np.full(nb, "", dtype=object)
    index = {b: i for i, b in enumerate(ids)}
    chunks = [ids[i:i + chunk_basins] for i in range(0, nb, chunk_basins)]
    key = uuid.uuid4().hex[:8]
    with dask_client(cluster, client) as c, \
            tqdm(total=nb, unit="basin", desc="direct DDS", disable=not progress, file=sys.stderr) as bar:
        futures = [c.submit(_direct_chunk, str(basins_store), chunk, spec, pure=False, retries=1,
                            key=f"direct-{j}-{key}") for j, chunk in enumerate(chunks)]
        try:
            for fut in as_completed(futures):
                for res in fut.result():
                    i = index[res["basin"]]
                    notes[i] = res["note"]
                    runs[i] = res["runs"]
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
                bar.update(len(fut.result()))
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
                            "objective": objective}),
            "default_score": (("basin", "period"), default_score,
                              {"long_name": f"{obj.long_name} of the default parameter set (run 1)",
                               "units": obj.units, "objective": objective}),
            "history": (("basin", "run"), history,
                        {"long_name": f"best {calibration}-period {objective} after each model run",
                         "units": obj.units}),
            "chain_score": (("basin", "chain"), chain_score,
                            {"long_name": f"best {calibration}-period {objective} of each DDS chain",
                             "units": obj.units}),
            "runs": ("basin", runs, {"long_name": "model runs of the search (the default set included; "
                                                  "0 when skipped)"}),
            "wall_seconds": ("basin", wall,
                             {"long_name": "worker seconds spent on the basin", "units": "s",
                              "comment": "the basin's own model runs timed one by one, plus an equal share "
                                         "of its chunk's batched proposal and scoring time"}),
            "note": ("basin", notes, {"long_name": "why the basin was skipped (empty when it was calibrated)"}),
            "calibrated": ("param", np.array([n in space.names for n in mdl.space.names]),
                           {"long_name": "whether the parameter was calibrated"}),
            "checkpoint_params": (("basin", "checkpoint", "param"), ck_params,
                                  {"long_name": "best parameter set after the checkpoint's number of runs"}),
            "checkpoint_score": (("basin", "checkpoint", "period"), ck_score,
                                 {"long_name": f"{obj.long_name} of the best set after the checkpoint's number "
                                               "of runs", "units": obj.units, "objective": objective}),
        },
        coords={
            "basin": ("basin", np.array(ids, dtype=object), {"long_name": "gauge id"}),
            "param": ("param", np.array(mdl.space.names, dtype=object)),
            "period": ("period", np.array(names, dtype=object)),
            "run": ("run", np.arange(1, budget + 1, dtype=np.int64), {"long_name": "model run number"}),
            "chain": ("chain", np.arange(chains, dtype=np.int64)),
            "checkpoint": ("checkpoint", np.array(checkpoints, dtype=np.int64),
                           {"long_name": "model runs of the search so far (checkpoint)"}),
        },
    )
    for name in ("lower", "upper", "default"):
        ds[f"param_{name}"] = ("param", getattr(mdl.space, name), {"long_name": f"{name} of the parameter's range"})
    ds["param_scale"] = ("param", np.array([p.scale for p in mdl.space.parameters], dtype=object))
    ds["param_units"] = ("param", np.array([p.units for p in mdl.space.parameters], dtype=object))
    basins_attrs = dict(zarr.open_group(str(basins_store), mode="r").attrs)
    calibrated = int((runs > 0).sum())
    config = {**spec, "basins": ids if len(ids) <= 50 else f"{len(ids)} basins", "n_basins": nb,
              "basins_store": str(basins_store.resolve()), "chunk_basins": int(chunk_basins)}
    attrs = provenance.product_attrs(
        title=f"lsegeo direct calibration: {model} by DDS over {nb} basins",
        summary=(f"Each basin calibrated with the {model} model itself by dynamically dimensioned search "
                 f"(DDS, r={r}), {budget} model runs per basin in {chains} chain(s) from the default "
                 f"parameter set, {'maximising' if obj.sense == 'max' else 'minimising'} {objective} on the "
                 f"{calibration} period; {calibrated} basins calibrated, {nb - calibrated} skipped."),
        step="direct calibration", call=call or "lsegeo.calibration.direct.calibrate_direct", config=config,
        inputs={str(basins_store): basins_attrs.get("lsegeo_inputs_sha256", "")},
        references=DDS_REFERENCE,
        extra={"lsegeo_store_kind": "direct", "lsegeo_model": model, "lsegeo_objective": objective,
               "lsegeo_objective_sense": obj.sense, "lsegeo_calibration_period": calibration,
               "lsegeo_budget": int(budget), "lsegeo_chains": int(chains), "lsegeo_steps": int(steps),
               "lsegeo_dds_r": float(r), "lsegeo_seed": int(seed),
               "lsegeo_basins_store": str(basins_store.resolve()),
               "lsegeo_basins_store_id": basins_attrs.get("id", ""), "lsegeo_periods": spec["periods"],
               "lsegeo_warmup_days": int(warmup_days), "lsegeo_window": f"{window[0].date()}/{window[-1].date()}",
               "lsegeo_wall_seconds": float(elapsed), "lsegeo_chunk_basins": int(chunk_basins)})
    ds.attrs = attrs
    if store is not None:
        _write(ds, Path(store), overwrite, basins_store)
    return ds


def _write(ds: xr.Dataset, path: Path, overwrite: bool, basins_store: Path) -> None:
    nb, budget = ds.sizes["basin"], ds.sizes["run"]
    cb = max(1, min(nb, 64))
    encoding = {"best_params": {"chunks": (cb, ds.sizes["param"])},
                "best_score": {"chunks": (cb, ds.sizes["period"])},
                "default_score": {"chunks": (cb, ds.sizes["period"])},
                "history": {"chunks": (cb, budget)}, "chain_score": {"chunks": (cb, ds.sizes["chain"])},
                "runs": {"chunks": (cb,)}, "wall_seconds": {"chunks": (cb,)}, "note": {"chunks": (cb,)},
                "checkpoint_params": {"chunks": (cb, max(1, ds.sizes["checkpoint"]), ds.sizes["param"])},
                "checkpoint_score": {"chunks": (cb, max(1, ds.sizes["checkpoint"]), ds.sizes["period"])}}
    attrs = dict(ds.attrs)
    with atomic_store(path, overwrite=overwrite) as tmp:
        ds.to_zarr(tmp, group=_GROUP, mode="w", zarr_format=3, consolidated=False, encoding=encoding)
        root = zarr.open_group(str(tmp), mode="r+")
        root.attrs.update({**attrs, PROV_ATTR: provenance.prov_json(
            attrs, {str(basins_store): attrs["lsegeo_inputs_sha256"]}, str(path))})
        consolidate(tmp)


def open_direct(path: str | Path) -> xr.Dataset:
    """Open a direct-calibration store (written by :func:`calibrate_direct`) lazily."""
    from lsegeo.io.stores import store_groups

    if _GROUP not in store_groups(path):
        raise StoreError(f"{path} is not a direct-calibration store (it has no {_GROUP!r} group)")
    return open_store(path, _GROUP)
