"""Dynamically Dimensioned Search (DDS): the algorithm, in lock-step chains over many problems.

DDS (Tolson & Shoemaker 2007) is written here from the paper's algorithm:

1. start from an initial solution and evaluate it (direct calibration starts from the parameter
   space's default set, as the Ostrich/DDS benchmark of the study did);
2. for candidate ``i = 1, ..., m - 1`` (``m`` evaluations in all) perturb each dimension of the
   current best solution with probability ``P(i) = 1 - ln(i) / ln(m)``, and one dimension chosen
   at random when none is selected;
3. a perturbed dimension moves by ``r * N(0, 1)`` times its range (``r = 0.2``,
   :data:`lsegeo.optimise.dds_settings.DDS_R`);
   a value that leaves the box is reflected at the bound it crossed, and set to that bound if
   the reflection leaves the box again (:func:`lsegeo.design.reflect_unit`);
4. greedy acceptance: the candidate replaces the current best when it is at least as good.

The search works in the unit cube; :func:`dds` maps a box onto it linearly, and direct
calibration through the parameter space's own scales (a log-scaled parameter's range is its
range in log space, and ``r`` is a fraction of that).

Chains and the budget
---------------------
A budget of ``budget`` evaluations is spent as: evaluation 1, the initial solution (shared by
every chain as its starting point), then ``budget - 1`` candidates spread over ``chains``
independent chains that advance in lock-step (:func:`dds_budget_split`). Step ``s`` (1-based)
evaluates candidate ``s`` of chains ``0, ..., chains - 1``, which are evaluations
``2 + (s - 1) * chains + c``; the last step evaluates only the chains still needed, so exactly
``budget`` evaluations are made. A chain with ``n`` candidates uses ``m = n + 1`` in ``P(i)`` (its
own search length, the shared start included). With 2,000 evaluations and 4 chains, chains 0-2
make 500 candidates and chain 3 makes 499: 1 + 500 + 500 + 500 + 499 = 2,000. The history (best
value after each evaluation, in that order) of a full-budget search truncated at ``n`` is the
same search seen at ``n`` evaluations, not a separate search with a budget of ``n`` (whose
perturbation probabilities would be scheduled differently).

:func:`dds_engine` minimises ``P`` independent problems at once (direct calibration: the basins
of one dask task): each step draws the proposals of every (problem, chain) in one vectorised
numpy operation and evaluates them in one call.

Reproducibility
---------------
Every problem draws its random numbers from its own generator, seeded with its own entropy
(for a basin, :func:`basin_seed`: ``(seed, crc32(basin id))``) and consumed in a fixed order
(:func:`dds_draws`), so a problem's search does not depend on which other problems share its
call.

References
----------
Tolson, B. A. and Shoemaker, C. A. (2007). Dynamically dimensioned search algorithm for
computationally efficient watershed model calibration. *Water Resour. Res.* 43, W01413.
doi:10.1029/2005WR004723
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lsegeo.design import reflect_unit
from lsegeo.optimise.dds_settings import DDS_R, check_budget, check_r

__all__ = [
    "DDS_REFERENCE",
    "basin_seed",
    "dds",
    "dds_budget_split",
    "dds_draws",
    "dds_engine",
]

DDS_REFERENCE = ("Tolson, B. A. and Shoemaker, C. A. (2007), Dynamically dimensioned search algorithm "
                 "for computationally efficient watershed model calibration, Water Resour. Res. 43, "
                 "W01413, doi:10.1029/2005WR004723")
"""Citation of the search algorithm, recorded in the products."""


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
        :func:`lsegeo.calibration.direct.dds_basin` to repeat a basin of
        :func:`lsegeo.calibration.direct.calibrate_direct`.
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
    check_budget(budget, chains)
    n = budget - 1
    steps = -(-n // chains)
    candidates = np.array([len(range(c, n, chains)) for c in range(chains)], dtype=np.int64)
    return steps, candidates


def dds_draws(entropy, steps: int, chains: int, dims: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All random numbers of one problem's search, drawn in a fixed order.

    Parameters
    ----------
    entropy : int or sequence of int
        Seed entropy of the problem (:class:`numpy.random.SeedSequence`).
    steps, chains, dims : int
        Lock-step iterations (:func:`dds_budget_split`), chains and dimensions.

    Returns
    -------
    select : numpy.ndarray
        ``(steps, chains, dims)`` uniform numbers that select the perturbed dimensions.
    normal : numpy.ndarray
        ``(steps, chains, dims)`` standard normal perturbations.
    pick : numpy.ndarray
        ``(steps, chains)`` the dimension perturbed when none is selected.
    """
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    select = rng.random((steps, chains, dims))
    normal = rng.standard_normal((steps, chains, dims))
    pick = rng.integers(0, dims, size=(steps, chains)) if dims else np.zeros((steps, chains), dtype=np.int64)
    return select, normal, pick


def dds_engine(evaluate: Callable[[np.ndarray], np.ndarray], u0: np.ndarray, f0: np.ndarray, budget: int,
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

    Raises
    ------
    ValueError
        ``budget`` or ``chains`` below 1, ``r`` outside ``(0, 1]``, or a checkpoint outside
        ``[1, budget]``.
    """
    check_r(r)
    u0 = np.asarray(u0, dtype=np.float64)
    n_p, n_d = u0.shape
    steps, cand = dds_budget_split(budget, chains)
    draws = [dds_draws(e, steps, chains, n_d) for e in entropies]
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
    check_r(r)
    span = hi - lo

    def to_x(u):
        return np.clip(lo + u * span, lo, hi)

    f0 = np.asarray(fun(x0[None, :]), dtype=np.float64).reshape(1)
    out = dds_engine(lambda u: np.asarray(fun(to_x(u[0])), dtype=np.float64)[None, :],
                      ((x0 - lo) / span)[None, :], f0, budget, chains, r, [seed])
    hist = out["history"][0]
    return {"x": to_x(out["u"][0]), "f": float(out["f"][0]), "history": np.where(np.isinf(hist), np.nan, hist),
            "runs": int(budget), "chain_f": out["chain_f"][0]}
