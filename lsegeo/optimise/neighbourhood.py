"""The emulator-screened neighbourhood search around each basin's best simulated points.

The optimum of an emulator is where its error is largest (a maximum of the prediction is often
an over-prediction), and a converged GA puts all its proposals there. The neighbourhood search
instead perturbs the basin's best simulated points (anchors) the way DDS perturbs its current
best (Tolson & Shoemaker 2007): about :data:`N_DIMS` of the free dimensions of an anchor move by
``radius * N(0, 1)``, reflected at the bounds. The emulator scores all perturbations of every
basin in one call, and the best that keep ``min_distance`` from every existing point and every
other proposal are taken: the candidate screening of the stochastic RBF method (Regis &
Shoemaker 2007), with the sparse coordinate perturbations of DYCORS (Regis & Shoemaker 2013).
On CAMELS with the embedded model it improves far more basins per iteration than the GA's
proposals (``docs/calibration.md``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lsegeo.design import reflect_unit
from lsegeo.optimise.candidates import Proposals, select
from lsegeo.optimise.problem import PredictCounter, Setup, objectives, run_seed, unorient

__all__ = ["N_DIMS", "add_local", "anchors", "perturbations"]

#: Dimensions perturbed per candidate, on average.
N_DIMS = 4.0


def anchors(s: Setup, b: int, fallback: np.ndarray) -> np.ndarray:
    """The best simulated points of basin position ``b`` (at most ``local_anchors``), best first.

    Parameters
    ----------
    s : Setup
    b : int
        Position of the basin in ``s.basin_idx``.
    fallback : numpy.ndarray
        ``(n, D)`` points that stand in where no existing point has a finite score (the
        optimiser's proposals); where there are none either, the middle of the basin's box.

    Returns
    -------
    numpy.ndarray
        ``(a, D)`` anchors; ranked by the algorithm's order (value, or non-dominated rank then
        crowding distance for two targets).
    """
    f = s.existing_scores[b] if s.existing_scores is not None else np.empty((0, s.n_targets))
    ok = np.all(np.isfinite(f), axis=1)
    if ok.any():
        order = s.algo.order(f[ok] * s.sign)
        return s.existing[b][ok][order[: s.local["anchors"]]]
    if len(fallback):
        return fallback[: s.local["anchors"]]
    return (0.5 * (s.xl[b] + s.xu[b]))[None, :]


def perturbations(s: Setup, b: int, points: np.ndarray) -> np.ndarray:
    """``local_candidates`` DDS-style perturbations of the anchors of basin position ``b``.

    Each candidate starts from an anchor drawn at random; each free dimension moves with
    probability ``min(1, N_DIMS / n_free)`` (at least one moves) by ``local_radius * N(0, 1)``,
    reflected into the unit cube and clipped to the basin's box. The draws come from the
    basin's own stream, ``run_seed(seed, basin, n_restarts)``.

    Parameters
    ----------
    s : Setup
    b : int
        Position of the basin in ``s.basin_idx``.
    points : numpy.ndarray
        ``(a, D)`` anchors.

    Returns
    -------
    numpy.ndarray
        ``(local_candidates, D)`` candidates.
    """
    rng = np.random.default_rng(run_seed(s.seed, int(s.basin_idx[b]), s.n_restarts))
    C, D = s.local["candidates"], s.n_params
    free = s.xu[b] > s.xl[b]
    n_free = int(free.sum())
    x = points[rng.integers(0, len(points), C)]
    if n_free == 0:
        return x
    sel = (rng.random((C, D)) < min(1.0, N_DIMS / n_free)) & free
    none = ~sel.any(axis=1)
    sel[none, np.flatnonzero(free)[rng.integers(0, n_free, int(none.sum()))]] = True
    x = x + np.where(sel, s.local["radius"] * rng.standard_normal((C, D)), 0.0)
    return np.clip(reflect_unit(x), s.xl[b], s.xu[b])


def add_local(predict: Callable[..., np.ndarray], s: Setup, opt: Proposals) -> Proposals:
    """Append ``s.n_local`` proposals per basin from the emulator-screened neighbourhood search.

    Parameters
    ----------
    predict : callable
        The emulator, ``predict(basin_idx, u, **predict_kwargs) -> (n, n_targets)``; called once
        with ``B * local_candidates`` rows.
    s : Setup
    opt : Proposals
        The optimiser's proposals (possibly none per basin); the new ones keep ``min_distance``
        from them and from the existing points.

    Returns
    -------
    Proposals
        ``opt``'s proposals followed by the neighbourhood's, best first; counts include the
        extra emulator call.
    """
    B, C, D = len(s.basin_idx), s.local["candidates"], s.n_params
    counter = PredictCounter()
    X = np.stack([perturbations(s, b, anchors(s, b, opt.u[b])) for b in range(B)])
    F = objectives(predict, np.repeat(s.basin_idx, C), X.reshape(-1, D), s, counter).reshape(B, C, -1)
    u = np.empty((B, s.n_local, D))
    predicted = np.empty((B, s.n_local, s.n_targets))
    relaxed = opt.relaxed.copy()
    used = opt.min_distance.copy()
    for b in range(B):
        taken = np.concatenate([s.existing[b], opt.u[b]])
        idx, md, rel = select(X[b], F[b], taken, s.n_local, s.min_distance, s.algo.order)
        u[b], predicted[b] = X[b, idx], unorient(F[b, idx], s.sign)
        relaxed[b] |= rel
        used[b] = min(used[b], md)
    return Proposals(u=np.concatenate([opt.u, u], axis=1),
                     predicted=np.concatenate([opt.predicted, predicted], axis=1),
                     n_evaluations=opt.n_evaluations + counter.rows,
                     n_predict_calls=opt.n_predict_calls + counter.calls,
                     relaxed=relaxed, min_distance=used, basin_idx=opt.basin_idx, senses=opt.senses,
                     algorithm=opt.algorithm, settings=opt.settings)
