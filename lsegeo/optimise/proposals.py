"""Pipeline step 5, *optimise*: new parameter proposals for every basin, found on an emulator.

An emulator predicts the scores of many (basin, parameter vector) rows in one call,
``predict(basin_idx, u) -> (n, n_targets)``, with ``u`` in the unit cube. This module searches,
for every basin, the parameter vectors that the emulator predicts to be good, with the settings
of Tang, Wood & Swenson (2025), section 1.7:

* one target: a GA (pymoo ``GA``: random initial population, SBX crossover ``prob=0.9,
  eta=15``, polynomial mutation ``eta=20``, binary tournament on fitness, duplicates
  eliminated, elitist survival of the best ``pop_size`` of parents and offspring);
* two targets: NSGA-II (Latin hypercube initial population, SBX ``prob=0.9, eta=20``,
  polynomial mutation ``eta=20``, binary tournament by dominance then crowding distance,
  survival by non-dominated rank then crowding distance).

**All basins advance together.** Every basin has ``n_restarts`` independent runs; in every
generation the offspring of all runs of all basins are stacked and scored by *one* emulator call,
so a whole optimisation costs ``n_gen`` calls, whatever the number of basins and restarts. Two
engines run that scheme:

``engine="numpy"`` (default)
    The GA / NSGA-II operators written as array operations over a leading run axis: one set
    of numpy operations per generation for all runs. Same operators and settings as pymoo's,
    not the same random numbers.
``engine="pymoo"``
    One pymoo algorithm object per run, driven through pymoo's ask/tell interface. pymoo's own
    Python overhead (about 4 ms per run and generation on one core) then dominates the cost.

:func:`propose_loop` is the straightforward baseline, one ``pymoo.optimize.minimize`` per basin and
restart, each calling the emulator for its basin alone; with the same seed it gives exactly the
result of ``engine="pymoo"`` (same runs, only the emulator calls are batched differently).

**Seeds.** The run of basin ``b`` and restart ``k`` has its own random stream, derived from
``(seed, b, k)`` by :func:`run_seed` (``b`` is the basin's emulator index, not its position), so a
basin's proposals do not depend on which other basins are optimised with it, in what order, or
on how :func:`propose_on_dask` splits the basins into tasks (as long as the emulator predicts
each row independently of the rest of its batch, as tree ensembles and networks in eval mode do).

**Proposals.** A basin's candidates are the final populations of its restarts and, for the GA,
an archive per run of well-spread good points: the best evaluated point of each cell of a grid of
side ``min_distance``, for the ``2 * pop_size`` best cells (a converged GA population alone is
often packed much tighter than ``min_distance``). Candidates are ordered by predicted value (GA)
or by non-dominated rank, then descending crowding distance (NSGA-II), and taken in that order,
skipping any point closer than ``min_distance`` (Euclidean, unit cube) to one already taken or to
the basin's ``existing`` points (members already simulated). When too few points remain,
``min_distance`` is halved until enough do, and the result says so (:attr:`Proposals.relaxed`,
:attr:`Proposals.min_distance`).

**Neighbourhood search.** With ``local_share > 0``, that share of a basin's proposals comes
instead from perturbations of its best simulated points, screened by the emulator in one call
for all basins (DDS-style moves, DYCORS-style screening; see :func:`propose`). The optimum of
an emulator is where its error is largest, and the GA's proposals all sit there; on CAMELS
with the embedded model the neighbourhood search improves far more basins per iteration
(``docs/calibration.md``).

**Frozen dimensions.** ``fixed_mask`` / ``fixed_values`` hold chosen parameters of chosen basins at
a value by setting both bounds to it, as the study froze the attribute dimensions (``xl = xu``);
crossover and mutation leave such dimensions alone.

:func:`propose_on_dask` runs :func:`propose` on dask workers, one task per group of basins, with
the emulator shipped to every worker once (as bytes, scattered with ``broadcast=True``) and
loaded once per worker process (cached by a hash of the bytes).
"""

from __future__ import annotations

import hashlib
import importlib
import math
import sys
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from lsegeo.design import reflect_unit

__all__ = [
    "GA_SETTINGS",
    "LOCAL_SETTINGS",
    "NSGA2_SETTINGS",
    "Proposals",
    "emulator_cache_info",
    "propose",
    "propose_loop",
    "propose_on_dask",
    "run_seed",
]

#: Operator settings of the single-objective GA (Tang et al. 2025, section 1.7).
GA_SETTINGS: dict[str, float] = {"sbx_prob": 0.9, "sbx_eta": 15.0, "pm_eta": 20.0}
#: Operator settings of NSGA-II (MO-ASMO, as used by Tang et al. 2025, section 1.7).
NSGA2_SETTINGS: dict[str, float] = {"sbx_prob": 0.9, "sbx_eta": 20.0, "pm_eta": 20.0}
#: Defaults of the emulator-screened neighbourhood search (see :func:`propose`, ``local_share``):
#: anchors (best simulated points) per basin, candidates per basin, perturbation size (unit cube).
LOCAL_SETTINGS: dict[str, Any] = {"anchors": 10, "candidates": 5000, "radius": 0.2}

# pymoo's fixed operator details, kept here so that both engines share them
_SBX_PROB_VAR = 0.5      # probability that a variable of a crossed pair is recombined
_SBX_EPS = 1.0e-14       # parents closer than this in a variable are not recombined in it
_PM_PROB = 0.9           # probability that an individual is mutated (pymoo PM default)
_CAND_FACTOR = 1.1       # numpy engine: offspring candidates drawn per generation / pop_size
_DUP_ROUNDS = 20         # numpy engine: extra mating rounds when duplicates leave too few
_ARCHIVE_CELL = 1.0      # GA archive: cell side / min_distance
_ARCHIVE_SIZE = 2        # GA archive: cells kept per run / pop_size
_BIG = 1.0e300           # stands in for NaN / inf predictions (the worst value when minimising)
_LOCAL_DIMS = 4.0        # neighbourhood search: dimensions perturbed per candidate, on average


# ------------------------------------------------------------------------------------------------
# result
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proposals:
    """New parameter proposals of a set of basins.

    Attributes
    ----------
    u : numpy.ndarray
        ``(n_basins, n_proposals, n_params)`` proposals in the unit cube, best first.
    predicted : numpy.ndarray
        ``(n_basins, n_proposals, n_targets)`` the emulator's prediction for each proposal, in
        the emulator's own orientation (not negated).
    n_evaluations : int
        Rows predicted by the emulator during the optimisation, all basins together.
    n_predict_calls : int
        Calls of the emulator (``n_gen`` for :func:`propose`; summed over tasks for
        :func:`propose_on_dask`; ``n_gen * n_basins * n_restarts`` for :func:`propose_loop`).
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
        Engine, population size, generations, restarts, seed, sampling, operator settings.
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
        return int(self.u.shape[0])

    @staticmethod
    def concatenate(parts: Sequence[Proposals]) -> Proposals:
        """Join the proposals of groups of basins, in the order given."""
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


# ------------------------------------------------------------------------------------------------
# shared helpers
# ------------------------------------------------------------------------------------------------


def run_seed(seed: int, basin: int, restart: int) -> int:
    """The seed of one optimisation run, derived from ``(seed, basin, restart)``.

    Parameters
    ----------
    seed : int
        The seed of the whole optimisation (non-negative).
    basin : int
        The basin's emulator index (not its position in a group).
    restart : int
        The restart number, from 0.

    Returns
    -------
    int
        A 63-bit seed, passed to :func:`numpy.random.default_rng` (``engine="numpy"``) or to
        pymoo's ``Algorithm.setup(seed=...)`` (``engine="pymoo"`` and :func:`propose_loop`).
    """
    if seed < 0 or basin < 0 or restart < 0:
        raise ValueError(f"seed, basin and restart must be non-negative, got {seed}, {basin}, {restart}")
    state = np.random.SeedSequence([int(seed), int(basin), int(restart)]).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


@dataclass
class _Setup:
    """Validated arguments of an optimisation."""

    basin_idx: np.ndarray          # (B,) int64
    n_params: int
    senses: tuple[str, ...]
    sign: np.ndarray               # (T,) +1 for "min", -1 for "max": F = sign * prediction
    algorithm: str
    n_proposals: int
    pop_size: int
    n_gen: int
    n_restarts: int
    seed: int
    sampling: str
    xl: np.ndarray                 # (B, D)
    xu: np.ndarray                 # (B, D)
    existing: list[np.ndarray]     # B arrays (k_b, D)
    min_distance: float
    predict_kwargs: dict[str, Any]
    ops: dict[str, float]
    existing_scores: list[np.ndarray] | None = None   # B arrays (k_b, T), simulated target values
    n_local: int = 0                                  # proposals of the neighbourhood search
    local: dict[str, float] = field(default_factory=dict)

    @property
    def n_targets(self) -> int:
        return len(self.senses)

    def settings(self, engine: str) -> dict[str, Any]:
        return {"engine": engine, "pop_size": self.pop_size, "n_gen": self.n_gen, "n_restarts": self.n_restarts,
                "seed": self.seed, "sampling": self.sampling, "min_distance": self.min_distance, **self.ops,
                "optimiser_proposals": self.n_proposals, "local_proposals": self.n_local,
                **{f"local_{k}": v for k, v in self.local.items()}}


def _setup(basin_idx, n_params, senses, n_proposals, *, algorithm, pop_size, n_gen, n_restarts, seed,
           existing, min_distance, fixed_mask, fixed_values, sampling, predict_kwargs, existing_scores=None,
           local_share=0.0, local_anchors=LOCAL_SETTINGS["anchors"], local_candidates=LOCAL_SETTINGS["candidates"],
           local_radius=LOCAL_SETTINGS["radius"]) -> _Setup:
    basin_idx = np.asarray(basin_idx)
    if basin_idx.ndim != 1 or not np.issubdtype(basin_idx.dtype, np.integer):
        raise ValueError(f"basin_idx must be a 1-d integer array, got dtype {basin_idx.dtype} "
                         f"and shape {basin_idx.shape}")
    basin_idx = basin_idx.astype(np.int64)
    if np.any(basin_idx < 0):
        raise ValueError("basin_idx must be non-negative emulator indices")
    n_basins, n_params = len(basin_idx), int(n_params)
    if n_params < 1:
        raise ValueError(f"n_params must be at least 1, got {n_params}")
    senses = tuple(str(s) for s in senses)
    if any(s not in ("max", "min") for s in senses):
        raise ValueError(f"senses must be 'max' or 'min' per target, got {senses}")
    if algorithm not in ("ga", "nsga2"):
        raise ValueError(f"algorithm must be 'ga' or 'nsga2', got {algorithm!r}")
    if algorithm == "ga" and len(senses) != 1:
        raise ValueError(f"the GA optimises one target, got {len(senses)} senses {senses}; "
                         "use algorithm='nsga2' for two")
    if algorithm == "nsga2" and len(senses) != 2:
        raise ValueError(f"NSGA-II here optimises two targets, got {len(senses)} senses {senses}")
    if pop_size < 4 or n_gen < 1 or n_restarts < 1 or n_proposals < 1:
        raise ValueError(f"need pop_size >= 4, n_gen >= 1, n_restarts >= 1, n_proposals >= 1; got "
                         f"{pop_size}, {n_gen}, {n_restarts}, {n_proposals}")
    if not 0.0 <= local_share <= 1.0:
        raise ValueError(f"local_share must lie in [0, 1], got {local_share}")
    n_local = int(round(local_share * n_proposals))
    if n_local:
        if not 0.0 < local_radius <= 1.0:
            raise ValueError(f"local_radius must lie in (0, 1], got {local_radius}")
        if local_anchors < 1 or local_candidates < n_local:
            raise ValueError(f"need local_anchors >= 1 and local_candidates >= the {n_local} local proposals; "
                             f"got {local_anchors} and {local_candidates}")
    n_opt = int(n_proposals) - n_local
    if n_opt > pop_size * n_restarts:
        raise ValueError(f"{n_opt} optimiser proposals per basin need at least as many candidates, but the "
                         f"final populations hold pop_size * n_restarts = {pop_size * n_restarts}")
    if seed is None or int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if min_distance < 0:
        raise ValueError(f"min_distance must be >= 0, got {min_distance}")
    sampling = sampling or ("random" if algorithm == "ga" else "lhs")
    if sampling not in ("random", "lhs"):
        raise ValueError(f"sampling must be 'random' or 'lhs', got {sampling!r}")

    xl = np.zeros((n_basins, n_params))
    xu = np.ones((n_basins, n_params))
    if fixed_mask is not None:
        mask = np.broadcast_to(np.asarray(fixed_mask, dtype=bool), (n_basins, n_params))
        if fixed_values is None:
            raise ValueError("fixed_mask needs fixed_values")
        values = np.broadcast_to(np.asarray(fixed_values, dtype=np.float64), (n_basins, n_params))
        held = values[mask]
        if np.any(~np.isfinite(held)) or np.any(held < 0) or np.any(held > 1):
            raise ValueError("fixed_values must lie in the unit cube [0, 1] where fixed_mask is True")
        xl = np.where(mask, values, xl)
        xu = np.where(mask, values, xu)

    if existing_scores is not None and existing is None:
        raise ValueError("existing_scores needs existing: the points the scores belong to")
    if existing_scores is not None and len(existing_scores) != n_basins:
        raise ValueError(f"existing_scores has {len(existing_scores)} entries, one per basin ({n_basins}) expected")
    ex: list[np.ndarray] = []
    ex_f: list[np.ndarray] = []
    if existing is None:
        ex = [np.empty((0, n_params))] * n_basins
        ex_f = [np.empty((0, len(senses)))] * n_basins
    else:
        if len(existing) != n_basins:
            raise ValueError(f"existing has {len(existing)} entries, one per basin ({n_basins}) expected")
        for b, e in enumerate(existing):
            a = np.empty((0, n_params)) if e is None else np.asarray(e, dtype=np.float64).reshape(-1, n_params)
            f = np.full((len(a), len(senses)), np.nan)
            if existing_scores is not None and existing_scores[b] is not None:
                given = np.asarray(existing_scores[b], dtype=np.float64)
                f = given[:, None] if given.ndim == 1 and len(senses) == 1 else given
                if f.shape != (len(a), len(senses)):
                    raise ValueError(f"existing_scores[{b}] has shape {given.shape}; expected ({len(a)}, "
                                     f"{len(senses)}): one value per existing point and target")
            ok = np.all(np.isfinite(a), axis=1)
            ex.append(a[ok])
            ex_f.append(f[ok])
    if n_local and existing_scores is None:
        raise ValueError(f"local_share={local_share} proposes around the best simulated points: "
                         "pass existing and existing_scores")
    ops = dict(GA_SETTINGS if algorithm == "ga" else NSGA2_SETTINGS)
    local = {"share": float(local_share), "anchors": int(local_anchors), "candidates": int(local_candidates),
             "radius": float(local_radius)} if n_local else {}
    return _Setup(basin_idx=basin_idx, n_params=n_params, senses=senses,
                  sign=np.array([1.0 if s == "min" else -1.0 for s in senses]), algorithm=algorithm,
                  n_proposals=n_opt, pop_size=int(pop_size), n_gen=int(n_gen),
                  n_restarts=int(n_restarts), seed=int(seed), sampling=sampling, xl=xl, xu=xu, existing=ex,
                  min_distance=float(min_distance), predict_kwargs=dict(predict_kwargs or {}), ops=ops,
                  existing_scores=ex_f if existing_scores is not None else None, n_local=n_local, local=local)


class _Counter:
    """Counts emulator calls and rows."""

    def __init__(self) -> None:
        self.calls = 0
        self.rows = 0


def _objectives(predict, basins: np.ndarray, u: np.ndarray, s: _Setup, counter: _Counter) -> np.ndarray:
    """Call the emulator once and return the objectives to minimise, ``(n, n_targets)``."""
    pred = np.asarray(predict(basins, u, **s.predict_kwargs), dtype=np.float64)
    if pred.ndim == 1 and s.n_targets == 1:
        pred = pred[:, None]
    if pred.shape != (len(u), s.n_targets):
        raise ValueError(f"the emulator returned shape {pred.shape} for {len(u)} rows, expected "
                         f"({len(u)}, {s.n_targets}): one column per sense {s.senses}")
    counter.calls += 1
    counter.rows += len(u)
    return _orient(pred, s.sign)


def _orient(pred: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """Predictions to objectives to minimise; NaN and inf become the worst / best finite values."""
    f = pred * sign
    f = np.where(np.isnan(f), _BIG, f)
    return np.clip(f, -_BIG, _BIG)


def _unorient(f: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """Objectives back to predictions (NaN where the prediction was not finite)."""
    return np.where(np.abs(f) >= _BIG, np.nan, f * sign)


# ------------------------------------------------------------------------------------------------
# choosing the proposals among the candidates
# ------------------------------------------------------------------------------------------------


def _candidate_order(F: np.ndarray, algorithm: str) -> np.ndarray:
    """Order of candidates, best first: by objective (GA) or by rank, then crowding (NSGA-II)."""
    if algorithm == "ga":
        return np.argsort(F[:, 0], kind="stable")
    from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    rank = np.empty(len(F), dtype=np.int64)
    cd = np.empty(len(F))
    for k, front in enumerate(NonDominatedSorting().do(F)):
        rank[front] = k
        cd[front] = np.inf if len(front) <= 2 else calc_crowding_distance(F[front])
    return np.lexsort((-cd, rank))


def _greedy(X: np.ndarray, order: np.ndarray, existing: np.ndarray, n: int, md: float) -> list[int]:
    """Take candidates in ``order`` that keep a distance >= md (and > 0) from those taken and existing."""
    dmin = np.full(len(X), np.inf)
    if len(existing):
        d2 = (np.square(X).sum(1)[:, None] - 2.0 * X @ existing.T + np.square(existing).sum(1)[None, :])
        dmin = np.sqrt(np.maximum(d2.min(1), 0.0))
        # exact re-check of the near ones (the expansion above loses precision at tiny distances)
        near = np.flatnonzero(dmin < max(md, 1e-6) * 2)
        for i in near:
            dmin[i] = np.sqrt(np.square(existing - X[i]).sum(1)).min()
    taken: list[int] = []
    for i in order:
        if dmin[i] >= md and dmin[i] > 0.0:
            taken.append(int(i))
            if len(taken) == n:
                break
            dmin = np.minimum(dmin, np.sqrt(np.square(X - X[i]).sum(1)))
    return taken


def _select(X: np.ndarray, F: np.ndarray, existing: np.ndarray, n: int, min_distance: float,
            algorithm: str) -> tuple[np.ndarray, float, bool]:
    """Indices of ``n`` distinct proposals among candidates ``X``, the distance enforced, relaxed.

    Candidates with infinite objectives (padding) are never taken.
    """
    order = _candidate_order(F, algorithm)
    order = order[np.all(np.isfinite(F[order]), axis=1)]
    taken = _greedy(X, order, existing, n, min_distance)
    if len(taken) == n:
        return np.array(taken), min_distance, False
    # halve the distance as often as needed: min_distance / 2**j, then 0; the first j that gives
    # n points is found by bisection (the count grows as the distance shrinks)
    mds = [min_distance / 2.0 ** j for j in range(1, 64) if min_distance / 2.0 ** j > 1e-9] + [0.0]
    lo, hi = 0, len(mds) - 1
    best: tuple[list[int], int] | None = None
    while lo <= hi:
        mid = (lo + hi) // 2
        t = _greedy(X, order, existing, n, mds[mid])
        if len(t) == n:
            best, hi = (t, mid), mid - 1
        else:
            lo = mid + 1
    if best is not None:
        return np.array(best[0]), mds[best[1]], True
    taken = _greedy(X, order, existing, n, 0.0)
    # not even n distinct points: repeat the best candidates
    chosen = set(taken)
    rest = [int(i) for i in order if i not in chosen]
    taken = (taken + rest)[:n]
    while len(taken) < n:
        taken.append(taken[len(taken) % max(1, len(taken))])
    return np.array(taken), 0.0, True


def _finish(s: _Setup, Xc: np.ndarray, Fc: np.ndarray, counter: _Counter, engine: str) -> Proposals:
    """Proposals from the final populations: ``Xc`` (B, C, D), ``Fc`` (B, C, T)."""
    B = len(s.basin_idx)
    u = np.empty((B, s.n_proposals, s.n_params))
    predicted = np.empty((B, s.n_proposals, s.n_targets))
    relaxed = np.zeros(B, dtype=bool)
    used = np.empty(B)
    for b in range(B):
        idx, used[b], relaxed[b] = _select(Xc[b], Fc[b], s.existing[b], s.n_proposals, s.min_distance,
                                           s.algorithm)
        u[b] = Xc[b, idx]
        predicted[b] = _unorient(Fc[b, idx], s.sign)
    return Proposals(u=u, predicted=predicted, n_evaluations=counter.rows, n_predict_calls=counter.calls,
                     relaxed=relaxed, min_distance=used, basin_idx=s.basin_idx.copy(), senses=s.senses,
                     algorithm=s.algorithm, settings=s.settings(engine))


def _empty(s: _Setup, engine: str, n: int) -> Proposals:
    """``n`` proposals of every basin when ``n`` is 0 or there are no basins (no emulator call)."""
    B = len(s.basin_idx)
    return Proposals(u=np.empty((B, n, s.n_params)), predicted=np.empty((B, n, s.n_targets)),
                     n_evaluations=0, n_predict_calls=0, relaxed=np.zeros(B, dtype=bool),
                     min_distance=np.full(B, s.min_distance), basin_idx=s.basin_idx.copy(), senses=s.senses,
                     algorithm=s.algorithm, settings=s.settings(engine))


def _anchors(s: _Setup, b: int, fallback: np.ndarray) -> np.ndarray:
    """The best simulated points of basin ``b`` (at most ``local.anchors``), best first.

    Where no existing point has a finite score, the optimiser's proposals (``fallback``) stand in;
    where there are none either, the middle of the basin's box.
    """
    f = s.existing_scores[b] if s.existing_scores is not None else np.empty((0, s.n_targets))
    ok = np.all(np.isfinite(f), axis=1)
    if ok.any():
        order = _candidate_order(f[ok] * s.sign, s.algorithm)
        return s.existing[b][ok][order[: s.local["anchors"]]]
    if len(fallback):
        return fallback[: s.local["anchors"]]
    return (0.5 * (s.xl[b] + s.xu[b]))[None, :]


def _neighbourhood(s: _Setup, b: int, anchors: np.ndarray) -> np.ndarray:
    """``local.candidates`` DDS-style perturbations of the anchors of basin ``b``, in its box."""
    rng = np.random.default_rng(run_seed(s.seed, int(s.basin_idx[b]), s.n_restarts))
    C, D = s.local["candidates"], s.n_params
    free = s.xu[b] > s.xl[b]
    n_free = int(free.sum())
    x = anchors[rng.integers(0, len(anchors), C)]
    if n_free == 0:
        return x
    sel = (rng.random((C, D)) < min(1.0, _LOCAL_DIMS / n_free)) & free
    none = ~sel.any(axis=1)
    sel[none, np.flatnonzero(free)[rng.integers(0, n_free, int(none.sum()))]] = True
    x = x + np.where(sel, s.local["radius"] * rng.standard_normal((C, D)), 0.0)
    return np.clip(reflect_unit(x), s.xl[b], s.xu[b])


def _add_local(predict, s: _Setup, opt: Proposals) -> Proposals:
    """Append ``s.n_local`` proposals per basin from the emulator-screened neighbourhood search."""
    B, C, D = len(s.basin_idx), s.local["candidates"], s.n_params
    counter = _Counter()
    X = np.stack([_neighbourhood(s, b, _anchors(s, b, opt.u[b])) for b in range(B)])
    F = _objectives(predict, np.repeat(s.basin_idx, C), X.reshape(-1, D), s, counter).reshape(B, C, -1)
    u = np.empty((B, s.n_local, D))
    predicted = np.empty((B, s.n_local, s.n_targets))
    relaxed = opt.relaxed.copy()
    used = opt.min_distance.copy()
    for b in range(B):
        taken = np.concatenate([s.existing[b], opt.u[b]])
        idx, md, rel = _select(X[b], F[b], taken, s.n_local, s.min_distance, s.algorithm)
        u[b], predicted[b] = X[b, idx], _unorient(F[b, idx], s.sign)
        relaxed[b] |= rel
        used[b] = min(used[b], md)
    return Proposals(u=np.concatenate([opt.u, u], axis=1), predicted=np.concatenate([opt.predicted, predicted], axis=1),
                     n_evaluations=opt.n_evaluations + counter.rows, n_predict_calls=opt.n_predict_calls + counter.calls,
                     relaxed=relaxed, min_distance=used, basin_idx=opt.basin_idx, senses=opt.senses,
                     algorithm=opt.algorithm, settings=opt.settings)


class _Archive:
    """Per GA run, the best point of each grid cell, for the ``A`` best cells seen so far.

    A converged GA population is often packed tighter than ``min_distance``; the archive keeps
    good points that are spread out: every evaluated point falls in a cell of side
    ``_ARCHIVE_CELL * min_distance``, only the best point of a cell is kept, and of those the ``A``
    best. At the end the archive joins the final population as candidates. Disabled (``A = 0``)
    for NSGA-II, whose population is spread by crowding, and when ``min_distance`` is 0.
    """

    def __init__(self, n_runs: int, size: int, n_params: int, min_distance: float) -> None:
        self.A = size if min_distance > 0 else 0
        self.cell = _ARCHIVE_CELL * min_distance if min_distance > 0 else 1.0
        self.X = np.zeros((n_runs, self.A, n_params))
        self.F = np.full((n_runs, self.A), np.inf)            # inf: empty slot
        self.H = np.full((n_runs, self.A), np.nan)              # cell key of each slot
        self.w = 1.0 + np.random.default_rng(0xA5C).random(n_params)

    def update(self, runs: np.ndarray | slice | list[int], X: np.ndarray, F: np.ndarray) -> None:
        """Add evaluated points ``X`` (R', n, D) with objectives ``F`` (R', n) to ``runs``."""
        if self.A == 0:
            return
        A = self.A
        H = (np.floor(X * (1.0 / self.cell)) * self.w).sum(-1)       # cell key, equal within a cell
        Hm = np.concatenate([self.H[runs], H], axis=1)
        Fm = np.concatenate([self.F[runs], F], axis=1)
        o = np.argsort(Fm, axis=1)                                     # by objective ...
        o = np.take_along_axis(o, np.argsort(np.take_along_axis(Hm, o, 1), axis=1, kind="stable"), 1)
        hs = np.take_along_axis(Hm, o, 1)                              # ... within cells
        first = np.ones(hs.shape, dtype=bool)
        first[:, 1:] = hs[:, 1:] != hs[:, :-1]
        Fs = np.where(first, np.take_along_axis(Fm, o, 1), np.inf)     # the best of each cell
        top = np.argpartition(Fs, A - 1, axis=1)[:, :A] if Fs.shape[1] > A else np.argsort(Fs, axis=1)
        kept = np.zeros(Fm.shape, dtype=bool)
        np.put_along_axis(kept, np.take_along_axis(o, top, 1), np.isfinite(np.take_along_axis(Fs, top, 1)), 1)
        # slots of archived points not kept are freed; the kept new points fill the first of them
        rows = np.arange(self.F.shape[0])[runs]
        freed = ~kept[:, :A]
        enter = kept[:, A:]
        fr, fs = np.nonzero(freed)
        self.F[rows[fr], fs] = np.inf
        self.H[rows[fr], fs] = np.nan
        fr, fs = np.nonzero(freed & (np.cumsum(freed, 1) <= enter.sum(1)[:, None]))
        er, ei = np.nonzero(enter)
        self.X[rows[fr], fs] = X[er, ei]
        self.F[rows[fr], fs] = F[er, ei]
        self.H[rows[fr], fs] = H[er, ei]

    def points(self, run: int) -> tuple[np.ndarray, np.ndarray]:
        ok = np.isfinite(self.F[run])
        return self.X[run][ok], self.F[run][ok][:, None]


# ------------------------------------------------------------------------------------------------
# engine "pymoo": one pymoo algorithm per run, ask/tell, one emulator call per generation
# ------------------------------------------------------------------------------------------------


def _pymoo_algorithm(s: _Setup):
    """A fresh pymoo GA / NSGA-II with the study's settings."""
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.sampling.lhs import LHS
    from pymoo.operators.sampling.rnd import FloatRandomSampling

    sampling = FloatRandomSampling() if s.sampling == "random" else LHS()
    kw = {"pop_size": s.pop_size, "sampling": sampling, "eliminate_duplicates": True,
          "crossover": SBX(prob=s.ops["sbx_prob"], eta=s.ops["sbx_eta"]), "mutation": PM(eta=s.ops["pm_eta"])}
    if s.algorithm == "ga":
        from pymoo.algorithms.soo.nonconvex.ga import GA

        return GA(**kw)
    from pymoo.algorithms.moo.nsga2 import NSGA2

    return NSGA2(**kw)


def _unit_problem(s: _Setup, b: int, evaluate: Callable | None = None):
    """The pymoo problem of basin position ``b``: the unit cube, frozen dimensions with xl = xu."""
    from pymoo.core.problem import Problem

    class _UnitCube(Problem):
        def __init__(self) -> None:
            super().__init__(n_var=s.n_params, n_obj=s.n_targets, xl=s.xl[b].copy(), xu=s.xu[b].copy())

        def _evaluate(self, X, out, *args, **kwargs):
            if evaluate is None:
                raise RuntimeError("this problem is evaluated in batches by lsegeo.optimise.proposals.propose")
            out["F"] = evaluate(X)

    return _UnitCube()


def _run_pymoo(predict, s: _Setup) -> Proposals:
    from pymoo.core.evaluator import Evaluator
    from pymoo.problems.static import StaticProblem

    counter = _Counter()
    archive = _Archive(len(s.basin_idx) * s.n_restarts, _ARCHIVE_SIZE * s.pop_size if s.algorithm == "ga" else 0,
                       s.n_params, s.min_distance)
    runs = []   # (basin position, algorithm)
    for b, basin in enumerate(s.basin_idx):
        problem = _unit_problem(s, b)
        for k in range(s.n_restarts):
            alg = _pymoo_algorithm(s)
            alg.setup(problem, termination=("n_gen", s.n_gen), seed=run_seed(s.seed, basin, k), verbose=False)
            runs.append((b, alg))
    evaluator = Evaluator()
    while True:
        asked, run_of = [], []
        for r, (b, alg) in enumerate(runs):
            if not alg.has_next():
                continue
            pop = alg.ask()
            if pop is None or len(pop) == 0:   # mating found no new point: pymoo ends the run
                alg.termination.force_termination = True
                continue
            asked.append((b, alg, pop))
            run_of.append(r)
        if not asked:
            break
        X = np.concatenate([pop.get("X") for _, _, pop in asked])
        basins = np.concatenate([np.full(len(pop), s.basin_idx[b]) for b, _, pop in asked])
        F = _objectives(predict, basins, X, s, counter)
        start = 0
        for (_, alg, pop), r in zip(asked, run_of):
            n = len(pop)
            evaluator.eval(StaticProblem(alg.problem, F=F[start:start + n]), pop)
            archive.update([r], X[None, start:start + n], F[None, start:start + n, 0])
            alg.tell(infills=pop)
            start += n
    finals = [(b, alg.pop.get("X"), alg.pop.get("F")) for b, alg in runs]
    finals += [(b, *archive.points(r)) for r, (b, _) in enumerate(runs)]
    Xc, Fc = _stack_final(finals, s)
    return _finish(s, Xc, Fc, counter, "pymoo")


def _stack_final(finals: list[tuple[int, np.ndarray, np.ndarray]], s: _Setup) -> tuple[np.ndarray, np.ndarray]:
    """Candidates per basin from the final populations of its runs (runs may hold fewer points)."""
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
        if len(X) < C:   # pad; candidates with infinite objectives are never proposed
            X = np.concatenate([X, np.repeat(X[-1:], C - len(X), 0)])
            F = np.concatenate([F, np.full((C - len(F), F.shape[1]), np.inf)])
        Xc[b], Fc[b] = X, F
    return Xc, Fc


# ------------------------------------------------------------------------------------------------
# engine "numpy": the same operators as array operations over all runs at once
# ------------------------------------------------------------------------------------------------


class _Layout:
    """Where each operator finds its uniform random numbers in a run's per-generation block.

    A variable is recombined when its ``cvar`` uniform is below 0.5 and mutated when its ``mvar``
    uniform is below ``1 / n_params``; given that, the uniform divided by the threshold is again
    uniform on [0, 1) and serves as the SBX spread / mutation draw of that variable.
    """

    def __init__(self, P: int, O: int, D: int, survival_ties: bool) -> None:
        self.P, self.O, self.D = P, O, D
        n_cand = 2 * math.ceil(_CAND_FACTOR * O / 2)
        self.M = n_cand // 2                                   # matings
        self.C = n_cand                                        # candidate children
        self.n_perms = math.ceil(4 * self.M / P)               # permutations for 2M binary tournaments
        sizes = {"perm": self.n_perms * P, "tie": 2 * self.M, "cross": self.M, "cvar": self.M * D,
                 "exch": self.M * D, "mut": self.C, "mvar": self.C * D, "surv": (P + O) if survival_ties else 0}
        self.slices: dict[str, slice] = {}
        start = 0
        for k, n in sizes.items():
            self.slices[k] = slice(start, start + n)
            start += n
        self.size = start

    def get(self, U: np.ndarray, name: str, *shape: int) -> np.ndarray:
        return U[:, self.slices[name]].reshape(len(U), *shape)

    def flat(self, U: np.ndarray, name: str, k: np.ndarray) -> np.ndarray:
        """Entries ``k`` of the field (flat indices over (R, field size)), without copying the field."""
        sl = self.slices[name]
        n = sl.stop - sl.start
        return U.reshape(-1)[(k // n) * U.shape[1] + sl.start + k % n]


def _draw(gens: list[np.random.Generator], n: int) -> np.ndarray:
    """One block of ``n`` uniforms per run, each from the run's own generator (float32, enough for
    the operators' coin flips and shape draws, and twice as fast to make)."""
    U = np.empty((len(gens), n), dtype=np.float32)
    for i, g in enumerate(gens):
        g.random(out=U[i], dtype=np.float32)
    return U


def _take(A: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``A[r, idx[r, j]]`` for every run ``r``; ``A`` (R, N, ...) and ``idx`` (R, J)."""
    R, N = A.shape[:2]
    flat = (idx + (np.arange(R) * N)[:, None]).reshape(-1)
    return np.take(A.reshape(R * N, *A.shape[2:]), flat, axis=0).reshape(*idx.shape, *A.shape[2:])


def _tournament(F: np.ndarray, rank: np.ndarray | None, cd: np.ndarray | None, L: _Layout,
                U: np.ndarray) -> np.ndarray:
    """Parents (R, 2M) by binary tournaments (pymoo's ``TournamentSelection``, pressure 2)."""
    R, P = F.shape[:2]
    keys = L.get(U, "perm", L.n_perms, P)
    perms = np.argsort(keys, axis=2).reshape(R, L.n_perms * P)[:, :4 * L.M]
    a, b = perms[:, 0::2], perms[:, 1::2]                  # (R, 2M) competitors
    Fa, Fb = _take(F, a), _take(F, b)                      # (R, 2M, T)
    coin = L.get(U, "tie", 2 * L.M) < 0.5
    if rank is None:                                       # GA: smaller objective wins
        fa, fb = Fa[..., 0], Fb[..., 0]
        a_wins = (fa < fb) | ((fa == fb) & coin)
    else:                                                  # NSGA-II: dominance, then crowding
        a_dom = np.all(Fa <= Fb, -1) & np.any(Fa < Fb, -1)
        b_dom = np.all(Fb <= Fa, -1) & np.any(Fb < Fa, -1)
        ca, cb = _take(cd, a), _take(cd, b)
        a_wins = a_dom | (~b_dom & ((ca > cb) | ((ca == cb) & coin)))
    return np.where(a_wins, a, b)


def _sbx_betaq(beta: np.ndarray, rand: np.ndarray, eta: float) -> np.ndarray:
    alpha = 2.0 - beta ** -(eta + 1.0)
    inner = np.where(rand <= 1.0 / alpha, rand * alpha, 1.0 / (2.0 - rand * alpha))
    return inner ** (1.0 / (eta + 1.0))


def _offspring(X: np.ndarray, F: np.ndarray, rank, cd, xl: np.ndarray, xu: np.ndarray, L: _Layout,
               U: np.ndarray, ops: dict[str, float]) -> np.ndarray:
    """Candidate children (R, C, D): tournament, SBX, polynomial mutation, as pymoo does them.

    Children ``j`` and ``M + j`` come from mating ``j``. The arithmetic runs on the recombined /
    mutated variables only (about 45 % and 6 % of them), at flat indices.
    """
    D = X.shape[2]
    M, MD = L.M, L.M * D
    sel = _tournament(F, rank, cd, L, U)                            # (R, 2M): pairs (2j, 2j + 1)
    C = _take(X, np.concatenate([sel[:, 0::2], sel[:, 1::2]], axis=1))   # parents, then children
    flatC = C.reshape(-1)
    xl_f, xu_f = xl.reshape(-1), xu.reshape(-1)

    # simulated binary crossover
    u_var = L.get(U, "cvar", M, D)
    cvar = (L.get(U, "cross", M) < ops["sbx_prob"])[..., None] & (u_var < _SBX_PROB_VAR)
    k = np.flatnonzero(cvar)                                        # over (R, M, D)
    r_i = k // MD
    i1 = k + r_i * MD                                               # parent / child 1 in (R, 2M, D)
    i2 = i1 + MD                                                    # parent / child 2
    p1, p2 = flatC[i1], flatC[i2]
    rd = r_i * D + k % D
    lo, hi = xl_f[rd], xu_f[rd]
    ok = (np.abs(p1 - p2) > _SBX_EPS) & (hi > lo)
    if not ok.all():
        k, i1, i2, p1, p2, lo, hi = k[ok], i1[ok], i2[ok], p1[ok], p2[ok], lo[ok], hi[ok]
    y1, y2 = np.minimum(p1, p2), np.maximum(p1, p2)
    delta = y2 - y1
    rand = L.flat(U, "cvar", k) / _SBX_PROB_VAR
    eta = ops["sbx_eta"]
    c1 = np.clip(0.5 * ((y1 + y2) - _sbx_betaq(1.0 + 2.0 * (y1 - lo) / delta, rand, eta) * delta), lo, hi)
    c2 = np.clip(0.5 * ((y1 + y2) + _sbx_betaq(1.0 + 2.0 * (hi - y2) / delta, rand, eta) * delta), lo, hi)
    swap = L.flat(U, "exch", k) < 0.5
    flatC[i1] = np.where(swap, c2, c1)
    flatC[i2] = np.where(swap, c1, c2)

    # polynomial mutation
    eta = ops["pm_eta"]
    p_var = min(0.5, 1.0 / D)
    mvar = (L.get(U, "mut", L.C) <= _PM_PROB)[..., None] & (L.get(U, "mvar", L.C, D) < p_var)
    k = np.flatnonzero(mvar)                                        # over (R, C, D)
    rd = (k // (L.C * D)) * D + k % D
    lo, hi = xl_f[rd], xu_f[rd]
    free = hi > lo
    if not free.all():
        k, lo, hi = k[free], lo[free], hi[free]
    x = flatC[k]
    span = hi - lo
    r = L.flat(U, "mvar", k) / p_var
    mp = 1.0 / (eta + 1.0)
    left = (2.0 * r + (1.0 - 2.0 * r) * (1.0 - (x - lo) / span) ** (eta + 1.0)) ** mp - 1.0
    right = 1.0 - (2.0 * (1.0 - r) + 2.0 * (r - 0.5) * (1.0 - (hi - x) / span) ** (eta + 1.0)) ** mp
    flatC[k] = np.clip(x + np.where(r <= 0.5, left, right) * span, lo, hi)
    return C


def _row_hash(A: np.ndarray, w: np.ndarray) -> np.ndarray:
    """A float per row, equal for equal rows (a fixed reduction along the last axis)."""
    return (A * w).sum(-1)


def _duplicates(hX: np.ndarray, C: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(R, C) True where a child equals a population member (row hashes ``hX``) or an earlier
    child (pymoo's rule, exact equality)."""
    h = np.concatenate([hX, _row_hash(C, w)], axis=1)
    order = np.argsort(h, axis=1, kind="stable")
    hs = np.take_along_axis(h, order, axis=1)
    dup_sorted = np.zeros_like(hs, dtype=bool)
    dup_sorted[:, 1:] = hs[:, 1:] == hs[:, :-1]
    dup = np.empty_like(dup_sorted)
    np.put_along_axis(dup, order, dup_sorted, axis=1)
    return dup[:, hX.shape[1]:]


def _choose_children(X, F, rank, cd, xl, xu, L, U, ops, gens, w) -> np.ndarray:
    """The ``O`` first non-duplicate children of every run, (R, O, D)."""
    C = _offspring(X, F, rank, cd, xl, xu, L, U, ops)
    hX = _row_hash(X, w)
    dup = _duplicates(hX, C, w)
    short = np.flatnonzero((~dup).sum(1) < L.O)
    free_runs = np.any(xu > xl, axis=1)
    for _ in range(_DUP_ROUNDS):
        short = short[free_runs[short]]            # nothing new can come from runs without free dims
        if len(short) == 0:
            break
        # another mating round for the runs still short of unique children, from their own streams
        sub = [gens[i] for i in short]
        C2 = _offspring(X[short], F[short], None if rank is None else rank[short],
                        None if cd is None else cd[short], xl[short], xu[short], L, _draw(sub, L.size), ops)
        keep = np.argsort(dup[short], axis=1, kind="stable")            # unique children first
        merged = np.concatenate([_take(C[short], keep), C2], axis=1)
        dup2 = _duplicates(hX[short], merged, w)
        order = np.argsort(dup2, axis=1, kind="stable")[:, :L.C]
        C[short] = _take(merged, order)
        dup[short] = np.take_along_axis(dup2, order, axis=1)
        short = short[(~dup[short]).sum(1) < L.O]
    order = np.argsort(dup, axis=1, kind="stable")[:, :L.O]
    return _take(C, order)


def _rank_crowding(F: np.ndarray, n_survive: int, tie: np.ndarray):
    """Non-dominated rank and crowding distance of two objectives, for all runs at once.

    Ranks are assigned front by front until every run has ``n_survive`` ranked points; the
    others get rank ``N``. Returns survivors (R, n_survive) ordered by rank, then descending
    crowding distance, then ``tie``; and the rank and crowding distance of all points (R, N).
    """
    R, N, T = F.shape
    f1, f2 = F[..., 0], F[..., 1]
    order = np.lexsort((f2, f1), axis=1)
    g1, g2 = np.take_along_axis(f1, order, 1), np.take_along_axis(f2, order, 1)
    pos = np.broadcast_to(np.arange(N), (R, N))
    new = np.ones((R, N), dtype=bool)
    new[:, 1:] = (g1[:, 1:] != g1[:, :-1]) | (g2[:, 1:] != g2[:, :-1])
    group_start = np.maximum.accumulate(np.where(new, pos, 0), axis=1)
    rank_s = np.full((R, N), N, dtype=np.int64)
    remaining = np.ones((R, N), dtype=bool)
    rows = np.arange(R)[:, None]
    for k in range(N):
        if not np.any(remaining) or np.all((rank_s < N).sum(1) >= min(n_survive, N)):
            break
        vals = np.where(remaining, g2, np.inf)
        prefix = np.empty((R, N))
        prefix[:, 0] = np.inf
        prefix[:, 1:] = np.minimum.accumulate(vals, axis=1)[:, :-1]
        # a point is dominated iff an earlier remaining point, not identical to it, has f2 <= its f2
        front = remaining & (prefix[rows, group_start] > g2)
        rank_s[front] = k
        remaining &= ~front
    rank = np.empty_like(rank_s)
    np.put_along_axis(rank, order, rank_s, axis=1)

    cd = np.zeros((R, N))
    for j in range(T):
        o = np.lexsort((F[..., j], rank), axis=1)
        sr, sf = np.take_along_axis(rank, o, 1), np.take_along_axis(F[..., j], o, 1)
        same = sr[:, 1:] == sr[:, :-1]
        gap_prev = np.full((R, N), np.inf)
        gap_next = np.full((R, N), np.inf)
        gap_prev[:, 1:] = np.where(same, sf[:, 1:] - sf[:, :-1], np.inf)
        gap_next[:, :-1] = np.where(same, sf[:, 1:] - sf[:, :-1], np.inf)
        first = np.ones((R, N), dtype=bool)
        first[:, 1:] = ~same
        last = np.ones((R, N), dtype=bool)
        last[:, :-1] = ~same
        start = np.maximum.accumulate(np.where(first, pos, 0), axis=1)
        end = np.minimum.accumulate(np.where(last, pos, N - 1)[:, ::-1], axis=1)[:, ::-1]
        norm = sf[rows, end] - sf[rows, start]
        with np.errstate(invalid="ignore", divide="ignore"):
            part = np.where(norm > 0, (gap_prev + gap_next) / np.where(norm > 0, norm, 1.0), 0.0)
        part = np.where(end - start + 1 <= 2, np.inf, part)      # fronts of 1-2 points: inf (pymoo)
        contrib = np.empty((R, N))
        np.put_along_axis(contrib, o, part, axis=1)
        cd += contrib
    cd /= T
    cd = np.where(rank < N, cd, 0.0)
    survivors = np.lexsort((tie, -cd, rank), axis=1)[:, :n_survive]
    return survivors, rank, cd


def _initial(s: _Setup, gens, xl, xu) -> np.ndarray:
    R, D, P = len(gens), s.n_params, s.pop_size
    if s.sampling == "random":
        U = _draw(gens, P * D).reshape(R, P, D)
    else:
        U2 = _draw(gens, 2 * P * D)
        perm = np.argsort(U2[:, :P * D].reshape(R, D, P), axis=2).transpose(0, 2, 1)
        U = (perm + U2[:, P * D:].reshape(R, P, D)) / P
    return xl[:, None, :] + U * (xu - xl)[:, None, :]


def _run_numpy(predict, s: _Setup) -> Proposals:
    counter = _Counter()
    B, K, P, D = len(s.basin_idx), s.n_restarts, s.pop_size, s.n_params
    R = B * K
    run_basin = np.repeat(s.basin_idx, K)                      # runs are basin-major
    run_pos = np.repeat(np.arange(B), K)
    gens = [np.random.default_rng(run_seed(s.seed, b, k)) for b in s.basin_idx for k in range(K)]
    xl, xu = s.xl[run_pos], s.xu[run_pos]
    w = 1.0 + np.random.default_rng(0x5EED).random(D)          # row hash weights
    L = _Layout(P, P, D, survival_ties=s.algorithm == "nsga2")
    nsga2 = s.algorithm == "nsga2"

    archive = _Archive(R, 0 if nsga2 else _ARCHIVE_SIZE * P, D, s.min_distance)
    X = _initial(s, gens, xl, xu)
    F = _objectives(predict, np.repeat(run_basin, P), X.reshape(-1, D), s, counter).reshape(R, P, -1)
    archive.update(slice(None), X, F[..., 0])
    rank = cd = None
    if nsga2:
        surv, rank, cd = _rank_crowding(F, P, _draw(gens, P))
        X, F, rank, cd = _take(X, surv), _take(F, surv), _take(rank, surv), _take(cd, surv)
    for _ in range(s.n_gen - 1):
        U = _draw(gens, L.size)
        Ch = _choose_children(X, F, rank, cd, xl, xu, L, U, s.ops, gens, w)
        Fch = _objectives(predict, np.repeat(run_basin, L.O), Ch.reshape(-1, D), s, counter).reshape(R, L.O, -1)
        archive.update(slice(None), Ch, Fch[..., 0])
        Xa, Fa = np.concatenate([X, Ch], axis=1), np.concatenate([F, Fch], axis=1)
        if nsga2:
            surv, rank_a, cd_a = _rank_crowding(Fa, P, L.get(U, "surv", P + L.O))
            rank, cd = _take(rank_a, surv), _take(cd_a, surv)
        else:
            surv = np.argpartition(Fa[..., 0], P - 1, axis=1)[:, :P]      # the P best, in any order
        X, F = _take(Xa, surv), _take(Fa, surv)
    if archive.A:
        finals = [(int(run_pos[r]), X[r], F[r]) for r in range(R)]
        finals += [(int(run_pos[r]), *archive.points(r)) for r in range(R)]
        Xc, Fc = _stack_final(finals, s)
    else:
        Xc, Fc = X.reshape(B, K * P, D), F.reshape(B, K * P, -1)
    return _finish(s, Xc, Fc, counter, "numpy")


# ------------------------------------------------------------------------------------------------
# public API
# ------------------------------------------------------------------------------------------------


def propose(predict: Callable[..., np.ndarray], basin_idx: np.ndarray, n_params: int, senses: Sequence[str],
            n_proposals: int, *, algorithm: Literal["ga", "nsga2"] = "ga", pop_size: int = 100, n_gen: int = 100,
            n_restarts: int = 3, seed: int, existing: Sequence[np.ndarray | None] | None = None,
            min_distance: float = 0.01, fixed_mask: np.ndarray | None = None,
            fixed_values: np.ndarray | None = None, sampling: Literal["random", "lhs"] | None = None,
            engine: Literal["numpy", "pymoo"] = "numpy",
            predict_kwargs: Mapping[str, Any] | None = None,
            existing_scores: Sequence[np.ndarray | None] | None = None, local_share: float = 0.0,
            local_anchors: int = LOCAL_SETTINGS["anchors"], local_candidates: int = LOCAL_SETTINGS["candidates"],
            local_radius: float = LOCAL_SETTINGS["radius"]) -> Proposals:
    """Optimise every basin on the emulator, all basins together, and propose new parameter sets.

    Parameters
    ----------
    predict : callable
        ``predict(basin_idx, u, **predict_kwargs) -> (n, n_targets)``: the emulator's prediction
        for rows of basin indices ``(n,)`` and unit-cube parameters ``(n, n_params)``.
    basin_idx : array of int, shape (n_basins,)
        Emulator index of every basin to optimise. It also keys the random streams (see
        :func:`run_seed`).
    n_params : int
        Number of parameters (dimensions of the unit cube).
    senses : sequence of {"max", "min"}
        Orientation of each emulator target: one for the GA, two for NSGA-II.
    n_proposals : int
        Proposals per basin; at most ``pop_size * n_restarts``.
    algorithm : {"ga", "nsga2"}
        GA (one target) or NSGA-II (two targets).
    pop_size, n_gen, n_restarts : int
        Population size, generations (the initial population counts as the first) and
        independent runs per basin. The study: 100, 100, 3 (x50 runs of 1 kept point each in its
        SSE variant).
    seed : int
        Seed of the whole optimisation; run ``(basin, restart)`` uses ``run_seed(seed, basin, restart)``.
    existing : sequence of arrays, optional
        Per basin, ``(k, n_params)`` unit-cube points already simulated (or None); proposals keep
        ``min_distance`` from them.
    min_distance : float
        Least Euclidean distance (unit cube) between two proposals of a basin and between a
        proposal and an existing point. Halved as often as needed when too few candidates keep
        it (reported in the result).
    fixed_mask : bool array, broadcastable to (n_basins, n_params), optional
        Dimensions held at ``fixed_values`` (both bounds set to the value).
    fixed_values : array, broadcastable to (n_basins, n_params), optional
        Unit-cube values of the held dimensions.
    sampling : {"random", "lhs"}, optional
        Initial population; default random for the GA and a Latin hypercube for NSGA-II.
    engine : {"numpy", "pymoo"}
        ``"numpy"``: the operators as array operations over all runs; ``"pymoo"``: pymoo algorithm
        objects through ask/tell. Both make one emulator call per generation.
    predict_kwargs : mapping, optional
        Extra keyword arguments of every ``predict`` call.
    existing_scores : sequence of arrays, optional
        Per basin, ``(k, n_targets)`` simulated values of the emulator's targets at the
        ``existing`` points (NaN where unknown), in the targets' own orientation. Needed when
        ``local_share > 0``.
    local_share : float
        Share of the proposals that come from an emulator-screened neighbourhood search around
        the basin's best simulated points instead of from the GA / NSGA-II (0, the study's
        scheme, by default; see Notes).
    local_anchors, local_candidates, local_radius
        The neighbourhood search: how many of the best existing points serve as anchors, how
        many perturbed candidates per basin the emulator screens (one emulator call for all
        basins), and the standard deviation of a perturbation in the unit cube.

    Returns
    -------
    Proposals
        ``u`` (n_basins, n_proposals, n_params): the optimiser's proposals, best first, then the
        neighbourhood search's, best first; ``predicted``, ``n_evaluations``,
        ``n_predict_calls`` (``n_gen``, plus one with a neighbourhood search), ``relaxed`` ...

    Notes
    -----
    Each generation predicts ``n_basins * n_restarts * pop_size`` rows in one call (30,000 for
    100 basins with the study's settings), so the emulator's throughput on large batches sets
    the cost. ``benchmarks/bench_optimise.py`` compares the engines and :func:`propose_loop`.

    **Neighbourhood search** (``local_share > 0``). The optimum of an emulator is where its error
    is largest (a maximum of the prediction is often an over-prediction), and a converged GA puts
    all its proposals there. The neighbourhood search instead perturbs the basin's best simulated
    points (the ``local_anchors`` best by ``existing_scores``; by non-dominated rank, then
    crowding, for two targets) the way DDS does (Tolson & Shoemaker 2007): about
    ``_LOCAL_DIMS = 4`` of the free dimensions of an anchor move by ``local_radius * N(0, 1)``,
    reflected at the bounds. The emulator scores all ``local_candidates`` perturbations of every
    basin in one call and the best that keep ``min_distance`` from every existing point and
    every other proposal are taken, as in the candidate-screening step of DYCORS (Regis &
    Shoemaker 2013). Each basin's perturbations come from its own random stream,
    ``run_seed(seed, basin, n_restarts)``. Where a basin has no scored point the optimiser's
    proposals serve as anchors.

    Raises
    ------
    ValueError
        On inconsistent arguments, or when the emulator returns the wrong shape.
    """
    s = _setup(basin_idx, n_params, senses, n_proposals, algorithm=algorithm, pop_size=pop_size, n_gen=n_gen,
               n_restarts=n_restarts, seed=seed, existing=existing, min_distance=min_distance,
               fixed_mask=fixed_mask, fixed_values=fixed_values, sampling=sampling,
               predict_kwargs=predict_kwargs, existing_scores=existing_scores, local_share=local_share,
               local_anchors=local_anchors, local_candidates=local_candidates, local_radius=local_radius)
    if engine not in ("numpy", "pymoo"):
        raise ValueError(f"engine must be 'numpy' or 'pymoo', got {engine!r}")
    if len(s.basin_idx) == 0:
        return _empty(s, engine, s.n_proposals + s.n_local)
    if s.n_proposals == 0:
        opt = _empty(s, engine, 0)
    elif engine == "numpy":
        opt = _run_numpy(predict, s)
    else:
        opt = _run_pymoo(predict, s)
    return _add_local(predict, s, opt) if s.n_local else opt


def propose_loop(predict: Callable[..., np.ndarray], basin_idx: np.ndarray, n_params: int,
                 senses: Sequence[str], n_proposals: int, *, algorithm: Literal["ga", "nsga2"] = "ga",
                 pop_size: int = 100, n_gen: int = 100, n_restarts: int = 3, seed: int,
                 existing: Sequence[np.ndarray | None] | None = None, min_distance: float = 0.01,
                 fixed_mask: np.ndarray | None = None, fixed_values: np.ndarray | None = None,
                 sampling: Literal["random", "lhs"] | None = None,
                 predict_kwargs: Mapping[str, Any] | None = None) -> Proposals:
    """The straightforward baseline: one ``pymoo.optimize.minimize`` per basin and restart.

    Each run has its own vectorised pymoo problem that calls ``predict`` for its basin alone, so
    a whole optimisation costs ``n_gen * n_basins * n_restarts`` emulator calls. Settings, seeds
    and the choice of proposals are those of :func:`propose` with ``engine="pymoo"``, which gives
    the same result. Meant for benchmarks and as a reference; the arguments are those of
    :func:`propose`.

    Returns
    -------
    Proposals
    """
    from pymoo.optimize import minimize

    s = _setup(basin_idx, n_params, senses, n_proposals, algorithm=algorithm, pop_size=pop_size, n_gen=n_gen,
               n_restarts=n_restarts, seed=seed, existing=existing, min_distance=min_distance,
               fixed_mask=fixed_mask, fixed_values=fixed_values, sampling=sampling,
               predict_kwargs=predict_kwargs)
    if len(s.basin_idx) == 0:
        return _empty(s, "loop", s.n_proposals)
    counter = _Counter()
    archive = _Archive(len(s.basin_idx) * s.n_restarts, _ARCHIVE_SIZE * s.pop_size if s.algorithm == "ga" else 0,
                       s.n_params, s.min_distance)
    finals, archived = [], []
    current = [0]                                    # the run being optimised
    for b, basin in enumerate(s.basin_idx):
        def evaluate(X, basin=basin):
            F = _objectives(predict, np.full(len(X), basin), X, s, counter)
            archive.update([current[0]], X[None], F[None, :, 0])
            return F

        problem = _unit_problem(s, b, evaluate)
        for k in range(s.n_restarts):
            current[0] = b * s.n_restarts + k
            res = minimize(problem, _pymoo_algorithm(s), termination=("n_gen", s.n_gen),
                           seed=run_seed(s.seed, basin, k), verbose=False)
            finals.append((b, res.pop.get("X"), res.pop.get("F")))
            archived.append((b, *archive.points(current[0])))
    Xc, Fc = _stack_final(finals + archived, s)
    return _finish(s, Xc, Fc, counter, "loop")


# ------------------------------------------------------------------------------------------------
# dask
# ------------------------------------------------------------------------------------------------

_CACHE_SIZE = 2                                    # emulators kept per worker process
_CACHE: OrderedDict[str, Any] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_LOADS: Counter = Counter()


def emulator_cache_info() -> dict[str, int]:
    """How often each emulator was loaded in this process, by cache key.

    Run it on the workers with ``client.run(emulator_cache_info)`` to check that an emulator
    shipped by :func:`propose_on_dask` was loaded once per worker process.
    """
    with _CACHE_LOCK:
        return dict(_LOADS)


def _resolve_loader(loader: Callable[[bytes], Any] | str) -> Callable[[bytes], Any]:
    if callable(loader):
        return loader
    if isinstance(loader, str) and ":" in loader:
        module, _, name = loader.partition(":")
        obj: Any = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
        if not callable(obj):
            raise TypeError(f"loader {loader!r} is not callable")
        return obj
    raise ValueError(f"loader must be a callable or a 'module:function' string, got {loader!r}")


def _loader_name(loader: Callable[[bytes], Any] | str) -> str:
    if isinstance(loader, str):
        return loader
    return f"{getattr(loader, '__module__', '?')}:{getattr(loader, '__qualname__', repr(loader))}"


def _cached_emulator(key: str, blob: bytes, loader: Callable[[bytes], Any] | str) -> Any:
    """The emulator of ``key``, loaded from ``blob`` the first time in this process."""
    with _CACHE_LOCK:   # held while loading, so concurrent tasks of a worker load it once
        em = _CACHE.get(key)
        if em is None:
            em = _resolve_loader(loader)(blob)
            _CACHE[key] = em
            _LOADS[key] += 1
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
        else:
            _CACHE.move_to_end(key)
        return em


def _propose_task(blob: bytes, key: str, loader, basin_idx: np.ndarray, n_params: int, senses: tuple[str, ...],
                  n_proposals: int, kwargs: dict[str, Any]) -> Proposals:
    em = _cached_emulator(key, blob, loader)
    return propose(em.predict, basin_idx, n_params, senses, n_proposals, **kwargs)


def propose_on_dask(client, emulator_blob: bytes, loader: Callable[[bytes], Any] | str, basin_idx: np.ndarray,
                    n_params: int, senses: Sequence[str], n_proposals: int, *, basins_per_task: int | None = None,
                    progress: bool = True, existing: Sequence[np.ndarray | None] | None = None,
                    existing_scores: Sequence[np.ndarray | None] | None = None,
                    fixed_mask: np.ndarray | None = None, fixed_values: np.ndarray | None = None,
                    **kwargs: Any) -> Proposals:
    """:func:`propose` on dask workers: one task per group of basins, the emulator shipped once.

    The emulator's bytes are scattered to every worker once (``broadcast=True``); each worker
    process loads them once with ``loader`` and keeps the emulator (keyed by a hash of the bytes
    and the loader) for all its tasks and later calls. The result equals that of :func:`propose`
    on all basins at once (the random streams depend on the basin, not on the group), except
    ``n_predict_calls``, which is summed over the tasks.

    Parameters
    ----------
    client : distributed.Client
    emulator_blob : bytes
        The emulator, as ``emulator.to_bytes()`` gives it.
    loader : callable or str
        Rebuilds the emulator from the bytes on a worker: a picklable function, or
        ``"module:function"`` (e.g. ``"lsegeo.emulators:load_bytes"``) imported on the worker.
        The emulator must have ``predict(basin_idx, u)``.
    basin_idx, n_params, senses, n_proposals
        As for :func:`propose`.
    basins_per_task : int, optional
        Basins per task; default about two tasks per worker thread.
    progress : bool
        Show a progress bar (tqdm, on stderr) over the basins done.
    existing, existing_scores, fixed_mask, fixed_values
        As for :func:`propose`, split by basin into the tasks.
    **kwargs
        Further keyword arguments of :func:`propose` (``algorithm``, ``pop_size``, ``n_gen``,
        ``n_restarts``, ``seed``, ``min_distance``, ``sampling``, ``engine``,
        ``predict_kwargs``, ``local_share``, ``local_anchors``, ``local_candidates``,
        ``local_radius``).

    Returns
    -------
    Proposals
        For the basins in the order given.

    Notes
    -----
    The tasks of a worker share its emulator; with several threads per worker they call
    ``predict`` concurrently, so the emulator must allow that (XGBoost ``inplace_predict``,
    scikit-learn and PyTorch inference do).
    """
    from distributed import as_completed
    from tqdm.auto import tqdm

    basin_idx = np.asarray(basin_idx)
    n = len(basin_idx)
    local_keys = ("local_share", "local_anchors", "local_candidates", "local_radius")
    unknown = set(kwargs) - {"algorithm", "pop_size", "n_gen", "n_restarts", "seed", "min_distance", "sampling",
                             "engine", "predict_kwargs", *local_keys}
    if unknown:
        raise TypeError(f"propose_on_dask got unexpected keyword arguments {sorted(unknown)}")
    # validate everything here, before anything is shipped
    s = _setup(basin_idx, n_params, senses, n_proposals, algorithm=kwargs.get("algorithm", "ga"),
               pop_size=kwargs.get("pop_size", 100), n_gen=kwargs.get("n_gen", 100),
               n_restarts=kwargs.get("n_restarts", 3), seed=kwargs.get("seed"), existing=existing,
               min_distance=kwargs.get("min_distance", 0.01), fixed_mask=fixed_mask, fixed_values=fixed_values,
               sampling=kwargs.get("sampling"), predict_kwargs=kwargs.get("predict_kwargs"),
               existing_scores=existing_scores, **{k: kwargs[k] for k in local_keys if k in kwargs})
    if kwargs.get("engine", "numpy") not in ("numpy", "pymoo"):
        raise ValueError(f"engine must be 'numpy' or 'pymoo', got {kwargs['engine']!r}")
    if n == 0:
        return _empty(s, kwargs.get("engine", "numpy"), s.n_proposals + s.n_local)
    if basins_per_task is None:
        threads = sum(client.nthreads().values()) or 1
        basins_per_task = max(1, math.ceil(n / (2 * threads)))
    if basins_per_task < 1:
        raise ValueError(f"basins_per_task must be at least 1, got {basins_per_task}")

    if isinstance(emulator_blob, memoryview | bytearray):
        emulator_blob = bytes(emulator_blob)
    key = f"{_loader_name(loader)}:{hashlib.blake2b(emulator_blob, digest_size=20).hexdigest()}"
    blob_future = client.scatter(emulator_blob, broadcast=True)
    mask = None if fixed_mask is None else np.broadcast_to(np.asarray(fixed_mask, bool), (n, int(n_params)))
    values = None if fixed_values is None else np.broadcast_to(np.asarray(fixed_values, float), (n, int(n_params)))

    groups = [np.arange(i, min(i + basins_per_task, n)) for i in range(0, n, basins_per_task)]
    futures = {}
    for g, pos in enumerate(groups):
        kw = dict(kwargs)
        if existing is not None:
            kw["existing"] = [existing[i] for i in pos]
        if existing_scores is not None:
            kw["existing_scores"] = [existing_scores[i] for i in pos]
        if mask is not None:
            kw["fixed_mask"] = np.ascontiguousarray(mask[pos])
        if values is not None:
            kw["fixed_values"] = np.ascontiguousarray(values[pos])
        fut = client.submit(_propose_task, blob_future, key, loader, basin_idx[pos], int(n_params),
                            tuple(senses), int(n_proposals), kw, pure=False)
        futures[fut] = g
    results: list[Proposals | None] = [None] * len(groups)
    try:
        with tqdm(total=n, unit="basin", desc="optimising", file=sys.stderr, disable=not progress) as bar:
            for fut in as_completed(list(futures)):
                g = futures[fut]
                results[g] = fut.result()
                bar.update(len(groups[g]))
    finally:
        for fut in futures:
            fut.release()
        blob_future.release()
    return Proposals.concatenate(results)  # type: ignore[arg-type]
