"""Engine ``"pymoo"`` (pymoo algorithm objects driven through ask/tell) and the per-basin loop.

:func:`run_pymoo` sets up one pymoo GA / NSGA-II per basin and restart (seeded by
:func:`~lsegeo.optimise.problem.run_seed`) and advances them together: in every generation the
offspring of all runs are stacked and scored by *one* emulator call, then told back to their
runs. pymoo's own Python overhead (about 4 ms per run and generation on one core) then dominates
the cost, which is why the numpy engine exists (:mod:`lsegeo.optimise.numpy_ga`).

:func:`propose_loop` is the straightforward baseline, one ``pymoo.optimize.minimize`` per basin and
restart, each calling the emulator for its basin alone; with the same seed it gives exactly the
result of engine ``"pymoo"`` (same runs, only the emulator calls are batched differently).

This module imports pymoo (extra ``ml``); it is loaded only when the engine is chosen.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pymoo.core.evaluator import Evaluator
from pymoo.core.problem import Problem
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.sampling.lhs import LHS
from pymoo.operators.sampling.rnd import FloatRandomSampling
from pymoo.problems.static import StaticProblem

from lsegeo.optimise.archive import Archive, archive_size
from lsegeo.optimise.candidates import Proposals, empty_proposals, finish, stack_candidates
from lsegeo.optimise.problem import PredictCounter, Setup, make_setup, objectives, run_seed
from lsegeo.optimise.settings import ProposalSettings

__all__ = ["propose_loop", "pymoo_algorithm", "run_pymoo"]

_DEFAULTS = ProposalSettings()
#: pymoo's initial populations, by the names of :data:`lsegeo.optimise.algorithms.SAMPLINGS`.
_SAMPLINGS = {"random": FloatRandomSampling, "lhs": LHS}


def pymoo_algorithm(s: Setup) -> Any:
    """A fresh pymoo algorithm object with the settings of ``s.algo`` (the study's).

    Returns
    -------
    pymoo.core.algorithm.Algorithm
        ``GA`` or ``NSGA2`` with SBX, polynomial mutation, duplicate elimination and the
        initial population ``s.sampling``.
    """
    module, attr = s.algo.pymoo_class.split(":")
    cls = getattr(importlib.import_module(module), attr)
    return cls(pop_size=s.pop_size, sampling=_SAMPLINGS[s.sampling](), eliminate_duplicates=True,
               crossover=SBX(prob=s.ops["sbx_prob"], eta=s.ops["sbx_eta"]), mutation=PM(eta=s.ops["pm_eta"]))


def _unit_problem(s: Setup, b: int, evaluate: Callable | None = None) -> Problem:
    """The pymoo problem of basin position ``b``: the unit cube, frozen dimensions with xl = xu."""

    class _UnitCube(Problem):
        def __init__(self) -> None:
            super().__init__(n_var=s.n_params, n_obj=s.n_targets, xl=s.xl[b].copy(), xu=s.xu[b].copy())

        def _evaluate(self, X, out, *args, **kwargs):
            if evaluate is None:
                raise RuntimeError("this problem is evaluated in batches by lsegeo.optimise.pymoo_engine.run_pymoo")
            out["F"] = evaluate(X)

    return _UnitCube()


def run_pymoo(predict: Callable[..., np.ndarray], s: Setup) -> Proposals:
    """The optimiser's proposals of every basin, pymoo runs advanced together by ask/tell.

    Parameters
    ----------
    predict : callable
        The emulator, ``predict(basin_idx, u, **predict_kwargs) -> (n, n_targets)``; called once
        per generation with the offspring of every run (pymoo may make fewer than ``pop_size``
        offspring of a run when duplicates leave it short, and ends a run that makes none).
    s : Setup

    Returns
    -------
    Proposals
        ``s.n_proposals`` per basin; ``n_predict_calls`` is ``n_gen``.
    """
    counter = PredictCounter()
    archive = Archive(len(s.basin_idx) * s.n_restarts, archive_size(s), s.n_params, s.min_distance)
    runs = []   # (basin position, algorithm)
    for b, basin in enumerate(s.basin_idx):
        problem = _unit_problem(s, b)
        for k in range(s.n_restarts):
            alg = pymoo_algorithm(s)
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
        F = objectives(predict, basins, X, s, counter)
        start = 0
        for (_, alg, pop), r in zip(asked, run_of, strict=True):
            n = len(pop)
            evaluator.eval(StaticProblem(alg.problem, F=F[start:start + n]), pop)
            archive.update([r], X[None, start:start + n], F[None, start:start + n, 0])
            alg.tell(infills=pop)
            start += n
    finals = [(b, alg.pop.get("X"), alg.pop.get("F")) for b, alg in runs]
    finals += [(b, *archive.points(r)) for r, (b, _) in enumerate(runs)]
    Xc, Fc = stack_candidates(finals, s)
    return finish(s, Xc, Fc, counter, "pymoo")


def propose_loop(predict: Callable[..., np.ndarray], basin_idx: np.ndarray, n_params: int,
                 senses: Sequence[str], n_proposals: int = _DEFAULTS.n_proposals, *,
                 algorithm: str = _DEFAULTS.algorithm, pop_size: int = _DEFAULTS.pop_size,
                 n_gen: int = _DEFAULTS.n_gen, n_restarts: int = _DEFAULTS.n_restarts, seed: int,
                 existing: Sequence[np.ndarray | None] | None = None,
                 min_distance: float = _DEFAULTS.min_distance,
                 fixed_mask: np.ndarray | None = None, fixed_values: np.ndarray | None = None,
                 sampling: str | None = _DEFAULTS.sampling,
                 predict_kwargs: Mapping[str, Any] | None = None) -> Proposals:
    """The straightforward baseline: one ``pymoo.optimize.minimize`` per basin and restart.

    Each run has its own vectorised pymoo problem that calls ``predict`` for its basin alone, so
    a whole optimisation costs ``n_gen * n_basins * n_restarts`` emulator calls. Settings, seeds
    and the choice of proposals are those of :func:`~lsegeo.optimise.proposals.propose` with
    ``engine="pymoo"`` and no neighbourhood search, which gives the same result. Meant for
    benchmarks and as a reference; the arguments are those of
    :func:`~lsegeo.optimise.proposals.propose`.

    Returns
    -------
    Proposals
        ``(n_basins, n_proposals, n_params)`` proposals; ``settings["engine"]`` is ``"loop"``.

    Raises
    ------
    ValueError
        On inconsistent arguments, or when the emulator returns the wrong shape.
    """
    from pymoo.optimize import minimize

    s = make_setup(basin_idx, n_params, senses, n_proposals, algorithm=algorithm, pop_size=pop_size, n_gen=n_gen,
                   n_restarts=n_restarts, seed=seed, existing=existing, min_distance=min_distance,
                   fixed_mask=fixed_mask, fixed_values=fixed_values, sampling=sampling,
                   predict_kwargs=predict_kwargs, local_share=0.0)
    if len(s.basin_idx) == 0:
        return empty_proposals(s, "loop", s.n_proposals)
    counter = PredictCounter()
    archive = Archive(len(s.basin_idx) * s.n_restarts, archive_size(s), s.n_params, s.min_distance)
    finals, archived = [], []
    current = [0]                                    # the run being optimised
    for b, basin in enumerate(s.basin_idx):
        def evaluate(X, basin=basin):
            F = objectives(predict, np.full(len(X), basin), X, s, counter)
            archive.update([current[0]], X[None], F[None, :, 0])
            return F

        problem = _unit_problem(s, b, evaluate)
        for k in range(s.n_restarts):
            current[0] = b * s.n_restarts + k
            res = minimize(problem, pymoo_algorithm(s), termination=("n_gen", s.n_gen),
                           seed=run_seed(s.seed, basin, k), verbose=False)
            finals.append((b, res.pop.get("X"), res.pop.get("F")))
            archived.append((b, *archive.points(current[0])))
    Xc, Fc = stack_candidates(finals + archived, s)
    return finish(s, Xc, Fc, counter, "loop")
