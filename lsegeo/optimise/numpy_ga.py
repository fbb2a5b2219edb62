"""Engine ``"numpy"``: pymoo's GA / NSGA-II operators as array operations over all runs at once.

Every basin has ``n_restarts`` independent runs; the runs of all basins are stacked along a
leading run axis ``R = n_basins * n_restarts`` and every operator works on that axis at once, so
one generation costs one set of numpy operations and *one* emulator call, whatever the number of
basins. The operators and their settings are pymoo's (version 0.6), not its random numbers:

* binary tournament selection (pressure 2): the smaller objective wins (GA); domination, then
  larger crowding distance (NSGA-II); ties by a coin flip;
* simulated binary crossover, SBX (Deb & Agrawal 1995), with pymoo's bounded form: a mating pair
  is crossed with probability ``sbx_prob``, each variable of a crossed pair with probability
  0.5, and the two children are exchanged with probability 0.5;
* polynomial mutation (Deb & Goyal 1996), bounded form: an individual is mutated with
  probability 0.9, each variable with probability ``min(0.5, 1 / n_params)``;
* elimination of duplicates (exact equality with a parent or an earlier child), with extra
  mating rounds when too few distinct children remain;
* survival: the best ``pop_size`` of parents and children (GA); non-dominated rank, then
  descending crowding distance (NSGA-II, Deb et al. 2002).

Each run draws its uniforms from its own generator, seeded by
:func:`~lsegeo.optimise.problem.run_seed`, so a basin's result does not depend on the other
basins of the call. Frozen dimensions (``xl = xu``) are left alone by crossover and mutation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lsegeo.optimise.archive import Archive, archive_size
from lsegeo.optimise.candidates import Proposals, finish, stack_candidates
from lsegeo.optimise.problem import PredictCounter, Setup, objectives, run_seed

__all__ = ["run_numpy"]

# pymoo's fixed operator details
_SBX_PROB_VAR = 0.5      # probability that a variable of a crossed pair is recombined
_SBX_EPS = 1.0e-14       # parents closer than this in a variable are not recombined in it
_PM_PROB = 0.9           # probability that an individual is mutated (pymoo PM default)
# this engine's own
_CAND_FACTOR = 1.1       # offspring candidates drawn per generation / pop_size
_DUP_ROUNDS = 20         # extra mating rounds when duplicates leave too few


class _Layout:
    """Where each operator finds its uniform random numbers in a run's per-generation block.

    A variable is recombined when its ``cvar`` uniform is below 0.5 and mutated when its ``mvar``
    uniform is below ``1 / n_params``; given that, the uniform divided by the threshold is again
    uniform on [0, 1) and serves as the SBX spread / mutation draw of that variable.
    """

    def __init__(self, P: int, O: int, D: int, survival_ties: bool) -> None:  # noqa: E741 (P, O, D: sizes)
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
    """One block of ``n`` uniforms per run, ``(R, n)``, each row from the run's own generator.

    float32: enough for the operators' coin flips and shape draws, and twice as fast to make.
    """
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
    """``(R, C)`` True where a child is a duplicate (pymoo's rule, exact equality).

    A child is a duplicate when it equals a population member (row hashes ``hX``) or an earlier
    child.
    """
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




def _random_population(gens: list[np.random.Generator], P: int, D: int) -> np.ndarray:
    """(R, P, D) uniform points of the unit cube."""
    return _draw(gens, P * D).reshape(len(gens), P, D)


def _lhs_population(gens: list[np.random.Generator], P: int, D: int) -> np.ndarray:
    """(R, P, D) Latin hypercube samples of the unit cube (one random permutation per dimension)."""
    R = len(gens)
    U2 = _draw(gens, 2 * P * D)
    perm = np.argsort(U2[:, :P * D].reshape(R, D, P), axis=2).transpose(0, 2, 1)
    return (perm + U2[:, P * D:].reshape(R, P, D)) / P


#: The initial populations, by the names of :data:`lsegeo.optimise.algorithms.SAMPLINGS`.
_SAMPLINGS: dict[str, Callable[[list[np.random.Generator], int, int], np.ndarray]] = {
    "random": _random_population, "lhs": _lhs_population}


@dataclass(frozen=True)
class _Survival:
    """How the runs of one algorithm keep their points from one generation to the next.

    ``keep(F, P, tie) -> (survivors (R, P), rank, crowding)``; ``rank`` and ``crowding`` are None
    where the algorithm has none (the GA's tournament then compares objectives). ``ties``: the
    survival draws tie-breaking uniforms; ``rank_initial``: the initial population is ranked.
    """

    keep: Callable[..., tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]
    ties: bool
    rank_initial: bool


def _keep_best(F: np.ndarray, P: int, tie: np.ndarray | None):
    """The ``P`` smallest objectives of every run, in any order (GA)."""
    return np.argpartition(F[..., 0], P - 1, axis=1)[:, :P], None, None


#: Survival per algorithm name: GA (elitist, best ``pop_size``), NSGA-II (rank, then crowding).
_SURVIVAL = {"ga": _Survival(ties=False, keep=_keep_best, rank_initial=False),
             "nsga2": _Survival(ties=True, keep=_rank_crowding, rank_initial=True)}


def run_numpy(predict: Callable[..., np.ndarray], s: Setup) -> Proposals:
    """The optimiser's proposals of every basin, all runs advanced together as array operations.

    Parameters
    ----------
    predict : callable
        The emulator, ``predict(basin_idx, u, **predict_kwargs) -> (n, n_targets)``; called
        ``n_gen`` times, each with ``n_basins * n_restarts * pop_size`` rows.
    s : Setup

    Returns
    -------
    Proposals
        ``s.n_proposals`` per basin, chosen among the final populations (and, for the GA, the
        archives) of its runs.

    Raises
    ------
    ValueError
        This engine has no survival for ``s.algorithm``, or the emulator returns the wrong shape.
    """
    survival = _SURVIVAL.get(s.algorithm)
    if survival is None:
        raise ValueError(f"engine 'numpy' has no survival for algorithm {s.algorithm!r}; "
                         f"it runs {', '.join(sorted(_SURVIVAL))}")
    counter = PredictCounter()
    B, K, P, D = len(s.basin_idx), s.n_restarts, s.pop_size, s.n_params
    R = B * K
    run_basin = np.repeat(s.basin_idx, K)                      # runs are basin-major
    run_pos = np.repeat(np.arange(B), K)
    gens = [np.random.default_rng(run_seed(s.seed, b, k)) for b in s.basin_idx for k in range(K)]
    xl, xu = s.xl[run_pos], s.xu[run_pos]
    w = 1.0 + np.random.default_rng(0x5EED).random(D)          # row hash weights
    L = _Layout(P, P, D, survival_ties=survival.ties)

    archive = Archive(R, archive_size(s), D, s.min_distance)
    X = xl[:, None, :] + _SAMPLINGS[s.sampling](gens, P, D) * (xu - xl)[:, None, :]
    F = objectives(predict, np.repeat(run_basin, P), X.reshape(-1, D), s, counter).reshape(R, P, -1)
    archive.update(slice(None), X, F[..., 0])
    rank = cd = None
    if survival.rank_initial:
        surv, rank, cd = survival.keep(F, P, _draw(gens, P))
        X, F, rank, cd = _take(X, surv), _take(F, surv), _take(rank, surv), _take(cd, surv)
    for _ in range(s.n_gen - 1):
        U = _draw(gens, L.size)
        Ch = _choose_children(X, F, rank, cd, xl, xu, L, U, s.ops, gens, w)
        Fch = objectives(predict, np.repeat(run_basin, L.O), Ch.reshape(-1, D), s, counter).reshape(R, L.O, -1)
        archive.update(slice(None), Ch, Fch[..., 0])
        Xa, Fa = np.concatenate([X, Ch], axis=1), np.concatenate([F, Fch], axis=1)
        surv, rank_a, cd_a = survival.keep(Fa, P, L.get(U, "surv", P + L.O) if survival.ties else None)
        if rank_a is not None:
            rank, cd = _take(rank_a, surv), _take(cd_a, surv)
        X, F = _take(Xa, surv), _take(Fa, surv)
    if archive.A:
        finals = [(int(run_pos[r]), X[r], F[r]) for r in range(R)]
        finals += [(int(run_pos[r]), *archive.points(r)) for r in range(R)]
        Xc, Fc = stack_candidates(finals, s)
    else:
        Xc, Fc = X.reshape(B, K * P, D), F.reshape(B, K * P, -1)
    return finish(s, Xc, Fc, counter, "numpy")
