"""The validated problem of one proposal step, the run seeds and the emulator call.

:func:`make_setup` checks the arguments of :func:`lsegeo.optimise.proposals.propose` once and
turns them into a :class:`Setup`: the basins' emulator indices, the box of every basin in the
unit cube (frozen dimensions have ``xl = xu``, as the study froze its attribute dimensions), the
existing (simulated) points and their scores, the chosen algorithm and the split of the
proposals between the optimiser and the neighbourhood search. Every engine and the
neighbourhood search read that object.

:func:`objectives` is the one place that calls the emulator: it checks the shape of its answer,
counts calls and rows, and turns predictions into objectives to minimise (``max`` targets are
negated; NaN becomes the worst value).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lsegeo.optimise.algorithms import ALGORITHMS, SAMPLINGS, Algorithm, algorithm_for
from lsegeo.optimise.settings import ProposalSettings

__all__ = ["BIG", "PredictCounter", "Setup", "make_setup", "objectives", "orient", "run_seed", "unorient"]

#: Stands in for NaN / inf predictions (the worst value when minimising); candidates whose
#: objective is infinite (padding) are never proposed.
BIG = 1.0e300

_DEFAULTS = ProposalSettings()


def run_seed(seed: int, basin: int, restart: int) -> int:
    """The seed of one optimisation run, derived from ``(seed, basin, restart)``.

    Parameters
    ----------
    seed : int
        The seed of the whole optimisation (non-negative).
    basin : int
        The basin's emulator index (not its position in a group).
    restart : int
        The restart number, from 0 (the neighbourhood search of a basin uses ``n_restarts``).

    Returns
    -------
    int
        A 63-bit seed, passed to :func:`numpy.random.default_rng` (engine ``"numpy"``, the
        neighbourhood search) or to pymoo's ``Algorithm.setup(seed=...)`` (engine ``"pymoo"``).

    Raises
    ------
    ValueError
        A negative argument.
    """
    if seed < 0 or basin < 0 or restart < 0:
        raise ValueError(f"seed, basin and restart must be non-negative, got {seed}, {basin}, {restart}")
    state = np.random.SeedSequence([int(seed), int(basin), int(restart)]).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


@dataclass
class Setup:
    """Validated arguments of one proposal step.

    Shapes: ``B`` basins, ``D`` parameters, ``T`` targets, ``k_b`` existing points of basin ``b``.
    """

    basin_idx: np.ndarray          # (B,) int64
    n_params: int
    senses: tuple[str, ...]
    sign: np.ndarray               # (T,) +1 for "min", -1 for "max": F = sign * prediction
    algo: Algorithm
    n_proposals: int               # proposals of the optimiser (the rest: neighbourhood search)
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
    existing_scores: list[np.ndarray] | None = None   # B arrays (k_b, T), simulated target values
    n_local: int = 0                                  # proposals of the neighbourhood search
    local: dict[str, float] = field(default_factory=dict)

    @property
    def algorithm(self) -> str:
        """Name of the algorithm (``"ga"``, ``"nsga2"``)."""
        return self.algo.name

    @property
    def n_targets(self) -> int:
        """Number of emulator targets, ``T``."""
        return len(self.senses)

    @property
    def ops(self) -> dict[str, float]:
        """Operator settings of the algorithm (SBX and polynomial mutation)."""
        return self.algo.ops

    def settings(self, engine: str) -> dict[str, Any]:
        """What :attr:`Proposals.settings` records."""
        return {"engine": engine, "pop_size": self.pop_size, "n_gen": self.n_gen, "n_restarts": self.n_restarts,
                "seed": self.seed, "sampling": self.sampling, "min_distance": self.min_distance, **self.ops,
                "optimiser_proposals": self.n_proposals, "local_proposals": self.n_local,
                **{f"local_{k}": v for k, v in self.local.items()}}


def _algorithm(name: str, senses: tuple[str, ...]) -> Algorithm:
    algo = ALGORITHMS.get(name)
    if len(senses) != algo.n_targets:
        try:
            hint = f"; use algorithm={algorithm_for(len(senses))!r} for {len(senses)}"
        except ValueError:
            hint = ""
        words = {1: "one target", 2: "two targets"}
        raise ValueError(f"the {algo.label} optimises {words.get(algo.n_targets, f'{algo.n_targets} targets')}, "
                         f"got {len(senses)} senses {senses}{hint}")
    return algo


def _existing(existing, existing_scores, n_basins: int, n_params: int, n_targets: int):
    """Existing points and their scores per basin, rows with non-finite coordinates dropped."""
    if existing_scores is not None and existing is None:
        raise ValueError("existing_scores needs existing: the points the scores belong to")
    if existing_scores is not None and len(existing_scores) != n_basins:
        raise ValueError(f"existing_scores has {len(existing_scores)} entries, one per basin ({n_basins}) expected")
    if existing is None:
        return [np.empty((0, n_params))] * n_basins, [np.empty((0, n_targets))] * n_basins
    if len(existing) != n_basins:
        raise ValueError(f"existing has {len(existing)} entries, one per basin ({n_basins}) expected")
    ex: list[np.ndarray] = []
    ex_f: list[np.ndarray] = []
    for b, e in enumerate(existing):
        a = np.empty((0, n_params)) if e is None else np.asarray(e, dtype=np.float64).reshape(-1, n_params)
        f = np.full((len(a), n_targets), np.nan)
        if existing_scores is not None and existing_scores[b] is not None:
            given = np.asarray(existing_scores[b], dtype=np.float64)
            f = given[:, None] if given.ndim == 1 and n_targets == 1 else given
            if f.shape != (len(a), n_targets):
                raise ValueError(f"existing_scores[{b}] has shape {given.shape}; expected ({len(a)}, "
                                 f"{n_targets}): one value per existing point and target")
        ok = np.all(np.isfinite(a), axis=1)
        ex.append(a[ok])
        ex_f.append(f[ok])
    return ex, ex_f


def _bounds(fixed_mask, fixed_values, n_basins: int, n_params: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-basin box ``(xl, xu)`` in the unit cube; frozen dimensions have ``xl = xu``."""
    xl = np.zeros((n_basins, n_params))
    xu = np.ones((n_basins, n_params))
    if fixed_mask is None:
        return xl, xu
    mask = np.broadcast_to(np.asarray(fixed_mask, dtype=bool), (n_basins, n_params))
    if fixed_values is None:
        raise ValueError("fixed_mask needs fixed_values")
    values = np.broadcast_to(np.asarray(fixed_values, dtype=np.float64), (n_basins, n_params))
    held = values[mask]
    if np.any(~np.isfinite(held)) or np.any(held < 0) or np.any(held > 1):
        raise ValueError("fixed_values must lie in the unit cube [0, 1] where fixed_mask is True")
    return np.where(mask, values, xl), np.where(mask, values, xu)


def make_setup(basin_idx, n_params: int, senses: Sequence[str], n_proposals: int, *, seed: int | None,
               algorithm: str = _DEFAULTS.algorithm, pop_size: int = _DEFAULTS.pop_size,
               n_gen: int = _DEFAULTS.n_gen, n_restarts: int = _DEFAULTS.n_restarts,
               existing: Sequence[np.ndarray | None] | None = None,
               min_distance: float = _DEFAULTS.min_distance, fixed_mask=None, fixed_values=None,
               sampling: str | None = _DEFAULTS.sampling, predict_kwargs: Mapping[str, Any] | None = None,
               existing_scores: Sequence[np.ndarray | None] | None = None,
               local_share: float = _DEFAULTS.local_share, local_anchors: int = _DEFAULTS.local_anchors,
               local_candidates: int = _DEFAULTS.local_candidates,
               local_radius: float = _DEFAULTS.local_radius) -> Setup:
    """Check the arguments of :func:`~lsegeo.optimise.proposals.propose` and build a :class:`Setup`.

    The arguments are those of :func:`~lsegeo.optimise.proposals.propose`.

    Raises
    ------
    ValueError
        On inconsistent arguments; the message names the argument.
    UnknownNameError
        ``algorithm`` is not in :data:`~lsegeo.optimise.algorithms.ALGORITHMS`.
    """
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
    algo = _algorithm(algorithm, senses)
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
    sampling = sampling or algo.sampling
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {', '.join(map(repr, SAMPLINGS))}, got {sampling!r}")

    xl, xu = _bounds(fixed_mask, fixed_values, n_basins, n_params)
    ex, ex_f = _existing(existing, existing_scores, n_basins, n_params, len(senses))
    if n_local and existing_scores is None:
        raise ValueError(f"local_share={local_share} proposes around the best simulated points: "
                         "pass existing and existing_scores (or local_share=0)")
    local = {"share": float(local_share), "anchors": int(local_anchors), "candidates": int(local_candidates),
             "radius": float(local_radius)} if n_local else {}
    return Setup(basin_idx=basin_idx, n_params=n_params, senses=senses,
                 sign=np.array([1.0 if s == "min" else -1.0 for s in senses]), algo=algo,
                 n_proposals=n_opt, pop_size=int(pop_size), n_gen=int(n_gen),
                 n_restarts=int(n_restarts), seed=int(seed), sampling=sampling, xl=xl, xu=xu, existing=ex,
                 min_distance=float(min_distance), predict_kwargs=dict(predict_kwargs or {}),
                 existing_scores=ex_f if existing_scores is not None else None, n_local=n_local, local=local)


class PredictCounter:
    """Counts emulator calls and the rows predicted."""

    def __init__(self) -> None:
        self.calls = 0
        self.rows = 0


def objectives(predict: Callable[..., np.ndarray], basins: np.ndarray, u: np.ndarray, s: Setup,
               counter: PredictCounter) -> np.ndarray:
    """Call the emulator once and return the objectives to minimise.

    Parameters
    ----------
    predict : callable
        ``predict(basin_idx, u, **s.predict_kwargs) -> (n, n_targets)`` (or ``(n,)`` for one target).
    basins : numpy.ndarray
        ``(n,)`` emulator index of every row.
    u : numpy.ndarray
        ``(n, n_params)`` unit-cube parameters.
    s : Setup
    counter : PredictCounter
        Incremented by one call and ``n`` rows.

    Returns
    -------
    numpy.ndarray
        ``(n, n_targets)`` objectives: the predictions times ``s.sign``, NaN as :data:`BIG`.

    Raises
    ------
    ValueError
        The emulator returned another shape.
    """
    pred = np.asarray(predict(basins, u, **s.predict_kwargs), dtype=np.float64)
    if pred.ndim == 1 and s.n_targets == 1:
        pred = pred[:, None]
    if pred.shape != (len(u), s.n_targets):
        raise ValueError(f"the emulator returned shape {pred.shape} for {len(u)} rows, expected "
                         f"({len(u)}, {s.n_targets}): one column per sense {s.senses}")
    counter.calls += 1
    counter.rows += len(u)
    return orient(pred, s.sign)


def orient(pred: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """Predictions to objectives to minimise; NaN and inf become the worst / best finite values."""
    f = pred * sign
    f = np.where(np.isnan(f), BIG, f)
    return np.clip(f, -BIG, BIG)


def unorient(f: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """Objectives back to predictions (NaN where the prediction was not finite)."""
    return np.where(np.abs(f) >= BIG, np.nan, f * sign)
