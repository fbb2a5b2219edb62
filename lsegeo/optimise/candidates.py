"""From candidates to proposals: the :class:`Proposals` result and the choice of distinct points.

A basin's candidates are the final populations of its runs and, for the GA, the archive of
well-spread good points of every run (:mod:`lsegeo.optimise.archive`); for the neighbourhood
search, its screened perturbations. They are ordered by the algorithm (GA: predicted value;
NSGA-II: non-dominated rank, then descending crowding distance) and taken in that order,
skipping any point closer than ``min_distance`` (Euclidean, unit cube) to one already taken or to
the basin's existing points (members already simulated). When too few points remain,
``min_distance`` is halved until enough do, and the result says so
(:attr:`Proposals.relaxed`, :attr:`Proposals.min_distance`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lsegeo.optimise.problem import PredictCounter, Setup, unorient

__all__ = ["Proposals", "empty_proposals", "finish", "greedy", "select", "stack_candidates"]


@dataclass(frozen=True)
class Proposals:
    """New parameter proposals of a set of basins.

    Attributes
    ----------
    u : numpy.ndarray
        ``(n_basins, n_proposals, n_params)`` proposals in the unit cube: the optimiser's, best
        first, then the neighbourhood search's, best first.
    predicted : numpy.ndarray
        ``(n_basins, n_proposals, n_targets)`` the emulator's prediction for each proposal, in
        the emulator's own orientation (not negated).
    n_evaluations : int
        Rows predicted by the emulator, all basins together.
    n_predict_calls : int
        Calls of the emulator (``n_gen`` for :func:`~lsegeo.optimise.proposals.propose`, plus one
        with a neighbourhood search; summed over tasks for
        :func:`~lsegeo.optimise.fanout.propose_on_dask`; ``n_gen * n_basins * n_restarts`` for
        :func:`~lsegeo.optimise.pymoo_engine.propose_loop`).
    relaxed : numpy.ndarray
        ``(n_basins,)`` bool: True where ``min_distance`` had to be reduced to find enough
        distinct proposals.
    min_distance : numpy.ndarray
        ``(n_basins,)`` the least distance actually enforced (0 where even distinct points ran
        short and the best candidates were repeated).
    basin_idx : numpy.ndarray
        ``(n_basins,)`` emulator index of each basin, as given.
    senses : tuple of str
        ``"max"`` / ``"min"`` per target.
    algorithm : str
        ``"ga"`` or ``"nsga2"``.
    settings : dict
        Engine, population size, generations, restarts, seed, sampling, operator settings, and
        the split of the proposals (``optimiser_proposals``, ``local_proposals``, ``local_*``).
    """

    u: np.ndarray
    predicted: np.ndarray
    n_evaluations: int
    n_predict_calls: int
    relaxed: np.ndarray
    min_distance: np.ndarray
    basin_idx: np.ndarray
    senses: tuple[str, ...]
    algorithm: str
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def n_basins(self) -> int:
        """Number of basins."""
        return int(self.u.shape[0])

    @staticmethod
    def concatenate(parts: Sequence[Proposals]) -> Proposals:
        """Join the proposals of groups of basins, in the order given.

        Raises
        ------
        ValueError
            ``parts`` is empty.
        """
        if not parts:
            raise ValueError("nothing to concatenate")
        first = parts[0]
        return Proposals(u=np.concatenate([p.u for p in parts]),
                         predicted=np.concatenate([p.predicted for p in parts]),
                         n_evaluations=sum(p.n_evaluations for p in parts),
                         n_predict_calls=sum(p.n_predict_calls for p in parts),
                         relaxed=np.concatenate([p.relaxed for p in parts]),
                         min_distance=np.concatenate([p.min_distance for p in parts]),
                         basin_idx=np.concatenate([p.basin_idx for p in parts]),
                         senses=first.senses, algorithm=first.algorithm, settings=dict(first.settings))


#: distances (to 0 or to ``min_distance``) within which :func:`greedy` computes them exactly
_EXACT_BELOW = 1e-6


def greedy(X: np.ndarray, order: np.ndarray, existing: np.ndarray, n: int, md: float) -> list[int]:
    """Take candidates in ``order`` that keep a distance ``>= md`` (and ``> 0``) from the rest.

    The distance counts to the candidates taken before and to the existing points.

    Parameters
    ----------
    X : numpy.ndarray
        ``(C, D)`` candidates.
    order : numpy.ndarray
        Candidate indices, best first.
    existing : numpy.ndarray
        ``(k, D)`` points to keep away from.
    n : int
        Points wanted.
    md : float
        Least Euclidean distance.

    Returns
    -------
    list of int
        At most ``n`` indices into ``X``, in the order taken.
    """
    dmin = np.full(len(X), np.inf)
    if len(existing):
        d2 = (np.square(X).sum(1)[:, None] - 2.0 * X @ existing.T + np.square(existing).sum(1)[None, :])
        dmin = np.sqrt(np.maximum(d2.min(1), 0.0))
        # The expansion errs by about 1e-14 in d2: 1e-7 in d at a zero distance, far less near md.
        # Only the comparisons with md and with 0 use dmin, so the candidates within 1e-6 of either
        # are re-checked exactly (in blocks: the same sums as one candidate at a time), and every
        # decision is the one exact distances give.
        near = np.flatnonzero((dmin < _EXACT_BELOW) | (np.abs(dmin - md) < _EXACT_BELOW))
        step = max(1, 2**20 // max(1, existing.size))
        for j in range(0, len(near), step):
            rows = near[j:j + step]
            dmin[rows] = np.sqrt(np.square(existing[None, :, :] - X[rows][:, None, :]).sum(2)).min(1)
    taken: list[int] = []
    for i in order:
        if dmin[i] >= md and dmin[i] > 0.0:
            taken.append(int(i))
            if len(taken) == n:
                break
            dmin = np.minimum(dmin, np.sqrt(np.square(X - X[i]).sum(1)))
    return taken


def select(X: np.ndarray, F: np.ndarray, existing: np.ndarray, n: int, min_distance: float,
           order: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, float, bool]:
    """Choose ``n`` distinct proposals among candidates, relaxing the distance when needed.

    Parameters
    ----------
    X : numpy.ndarray
        ``(C, D)`` candidates.
    F : numpy.ndarray
        ``(C, T)`` their objectives (to minimise); candidates with an infinite objective
        (padding) are never taken.
    existing : numpy.ndarray
        ``(k, D)`` points already simulated.
    n : int
        Proposals wanted.
    min_distance : float
        The distance to keep; halved (``min_distance / 2**j``, then 0) until ``n`` points keep it.
    order : callable
        The algorithm's candidate order, ``order(F) -> indices`` best first.

    Returns
    -------
    indices : numpy.ndarray
        ``(n,)`` indices into ``X`` (the best candidates repeated when not even ``n`` distinct
        points exist).
    distance : float
        The distance enforced.
    relaxed : bool
        Whether it is less than ``min_distance``.
    """
    ranked = order(F)
    ranked = ranked[np.all(np.isfinite(F[ranked]), axis=1)]
    taken = greedy(X, ranked, existing, n, min_distance)
    if len(taken) == n:
        return np.array(taken), min_distance, False
    # halve the distance as often as needed: min_distance / 2**j, then 0; the first j that gives
    # n points is found by bisection (the count grows as the distance shrinks)
    mds = [min_distance / 2.0 ** j for j in range(1, 64) if min_distance / 2.0 ** j > 1e-9] + [0.0]
    lo, hi = 0, len(mds) - 1
    best: tuple[list[int], int] | None = None
    while lo <= hi:
        mid = (lo + hi) // 2
        t = greedy(X, ranked, existing, n, mds[mid])
        if len(t) == n:
            best, hi = (t, mid), mid - 1
        else:
            lo = mid + 1
    if best is not None:
        return np.array(best[0]), mds[best[1]], True
    taken = greedy(X, ranked, existing, n, 0.0)
    # not even n distinct points: repeat the best candidates
    chosen = set(taken)
    rest = [int(i) for i in ranked if i not in chosen]
    taken = (taken + rest)[:n]
    while len(taken) < n:
        taken.append(taken[len(taken) % max(1, len(taken))])
    return np.array(taken), 0.0, True


def finish(s: Setup, Xc: np.ndarray, Fc: np.ndarray, counter: PredictCounter, engine: str) -> Proposals:
    """The optimiser's proposals of every basin from its candidates.

    Parameters
    ----------
    s : Setup
    Xc : numpy.ndarray
        ``(B, C, D)`` candidates per basin.
    Fc : numpy.ndarray
        ``(B, C, T)`` their objectives.
    counter : PredictCounter
        The emulator calls of the optimisation.
    engine : str
        Recorded in :attr:`Proposals.settings`.

    Returns
    -------
    Proposals
        ``s.n_proposals`` per basin.
    """
    B = len(s.basin_idx)
    u = np.empty((B, s.n_proposals, s.n_params))
    predicted = np.empty((B, s.n_proposals, s.n_targets))
    relaxed = np.zeros(B, dtype=bool)
    used = np.empty(B)
    for b in range(B):
        idx, used[b], relaxed[b] = select(Xc[b], Fc[b], s.existing[b], s.n_proposals, s.min_distance,
                                          s.algo.order)
        u[b] = Xc[b, idx]
        predicted[b] = unorient(Fc[b, idx], s.sign)
    return Proposals(u=u, predicted=predicted, n_evaluations=counter.rows, n_predict_calls=counter.calls,
                     relaxed=relaxed, min_distance=used, basin_idx=s.basin_idx.copy(), senses=s.senses,
                     algorithm=s.algorithm, settings=s.settings(engine))


def empty_proposals(s: Setup, engine: str, n: int) -> Proposals:
    """``n`` proposals of every basin when ``n`` is 0 or there are no basins (no emulator call)."""
    B = len(s.basin_idx)
    return Proposals(u=np.empty((B, n, s.n_params)), predicted=np.empty((B, n, s.n_targets)),
                     n_evaluations=0, n_predict_calls=0, relaxed=np.zeros(B, dtype=bool),
                     min_distance=np.full(B, s.min_distance), basin_idx=s.basin_idx.copy(), senses=s.senses,
                     algorithm=s.algorithm, settings=s.settings(engine))


def stack_candidates(finals: list[tuple[int, np.ndarray, np.ndarray]], s: Setup) -> tuple[np.ndarray, np.ndarray]:
    """Candidates per basin from the final populations (and archives) of its runs.

    Parameters
    ----------
    finals : list of (int, numpy.ndarray, numpy.ndarray)
        ``(basin position, X (n, D), F (n, T))`` per run; runs may hold different numbers of
        points.
    s : Setup

    Returns
    -------
    Xc, Fc : numpy.ndarray
        ``(B, C, D)`` and ``(B, C, T)``; basins with fewer than ``C`` candidates are padded with
        copies of their last point with infinite objectives (never proposed).
    """
    B = len(s.basin_idx)
    per: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(B)]
    for b, X, F in finals:
        if len(X) == 0:
            continue
        per[b].append((np.asarray(X, dtype=np.float64), np.asarray(F, dtype=np.float64).reshape(len(X), -1)))
    C = max(sum(len(x) for x, _ in p) for p in per)
    Xc = np.empty((B, C, s.n_params))
    Fc = np.empty((B, C, s.n_targets))
    for b, p in enumerate(per):
        X = np.concatenate([x for x, _ in p])
        F = np.concatenate([f for _, f in p])
        if len(X) < C:
            X = np.concatenate([X, np.repeat(X[-1:], C - len(X), 0)])
            F = np.concatenate([F, np.full((C - len(F), F.shape[1]), np.inf)])
        Xc[b], Fc[b] = X, F
    return Xc, Fc
