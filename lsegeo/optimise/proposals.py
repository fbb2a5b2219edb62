"""Pipeline step 5, *optimise*: new parameter proposals for every basin, found on an emulator.

An emulator predicts the scores of many (basin, parameter vector) rows in one call,
``predict(basin_idx, u) -> (n, n_targets)``, with ``u`` in the unit cube. :func:`propose`
searches, for every basin, the parameter vectors that the emulator predicts to be good, with the
settings of Tang, Wood & Swenson (2025, section 1.7): a GA for one target, NSGA-II for two
(:mod:`lsegeo.optimise.algorithms`).

**All basins advance together.** Every basin has ``n_restarts`` independent runs; in every
generation the offspring of all runs of all basins are stacked and scored by *one* emulator call,
so a whole optimisation costs ``n_gen`` calls, whatever the number of basins and restarts. The
engines of :data:`ENGINES` run that scheme:

``"numpy"`` (default, :mod:`lsegeo.optimise.numpy_ga`)
    The GA / NSGA-II operators written as array operations over a leading run axis. Same
    operators and settings as pymoo's, not the same random numbers.
``"pymoo"`` (:mod:`lsegeo.optimise.pymoo_engine`)
    One pymoo algorithm object per run, driven through pymoo's ask/tell interface; it gives
    exactly the result of the per-basin loop baseline
    :func:`~lsegeo.optimise.pymoo_engine.propose_loop`.

**Seeds.** The run of basin ``b`` and restart ``k`` has its own random stream, derived from
``(seed, b, k)`` by :func:`~lsegeo.optimise.problem.run_seed` (``b`` is the basin's emulator
index, not its position), so a basin's proposals do not depend on which other basins are
optimised with it, in what order, or on how :func:`~lsegeo.optimise.fanout.propose_on_dask`
splits the basins into tasks.

**Proposals** are chosen among the final populations (and, for the GA, an archive of well-spread
good points) at least ``min_distance`` apart and from the basin's existing points
(:mod:`lsegeo.optimise.candidates`, :mod:`lsegeo.optimise.archive`).

**Neighbourhood search.** With ``local_share > 0`` (lsegeo's default, 1: all of them) that share of a
basin's proposals comes instead from perturbations of its best simulated points, screened by the
emulator in one call for all basins (:mod:`lsegeo.optimise.neighbourhood`).

**Frozen dimensions.** ``fixed_mask`` / ``fixed_values`` hold chosen parameters of chosen basins at
a value by setting both bounds to it, as the study froze the attribute dimensions (``xl = xu``);
crossover and mutation leave such dimensions alone.

Defaults of every setting: :class:`~lsegeo.optimise.settings.ProposalSettings`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from lsegeo.optimise.candidates import Proposals, empty_proposals
from lsegeo.optimise.neighbourhood import add_local
from lsegeo.optimise.problem import Setup, make_setup
from lsegeo.optimise.settings import ProposalSettings
from lsegeo.registry import Registry

__all__ = ["ENGINES", "propose"]

logger = logging.getLogger(__name__)

_DEFAULTS = ProposalSettings()

#: Optimiser engines by name: ``run(predict, setup) -> Proposals`` (the optimiser's part only),
#: imported when chosen.
ENGINES: Registry[Callable[[Callable[..., np.ndarray], Setup], Proposals]] = Registry(
    "optimiser engine",
    {"numpy": "lsegeo.optimise.numpy_ga:run_numpy", "pymoo": "lsegeo.optimise.pymoo_engine:run_pymoo"},
    extras={"pymoo": "ml"})


def propose(predict: Callable[..., np.ndarray], basin_idx: np.ndarray, n_params: int, senses: Sequence[str],
            n_proposals: int = _DEFAULTS.n_proposals, *, algorithm: str = _DEFAULTS.algorithm,
            pop_size: int = _DEFAULTS.pop_size, n_gen: int = _DEFAULTS.n_gen,
            n_restarts: int = _DEFAULTS.n_restarts, seed: int,
            existing: Sequence[np.ndarray | None] | None = None, min_distance: float = _DEFAULTS.min_distance,
            fixed_mask: np.ndarray | None = None, fixed_values: np.ndarray | None = None,
            sampling: str | None = _DEFAULTS.sampling, engine: str = _DEFAULTS.engine,
            predict_kwargs: Mapping[str, Any] | None = None,
            existing_scores: Sequence[np.ndarray | None] | None = None,
            local_share: float = _DEFAULTS.local_share, local_anchors: int = _DEFAULTS.local_anchors,
            local_candidates: int = _DEFAULTS.local_candidates,
            local_radius: float = _DEFAULTS.local_radius) -> Proposals:
    """Optimise every basin on the emulator, all basins together, and propose new parameter sets.

    Defaults of the settings are those of :class:`~lsegeo.optimise.settings.ProposalSettings`
    (``ProposalSettings().kwargs()`` gives them all as keyword arguments).

    Parameters
    ----------
    predict : callable
        ``predict(basin_idx, u, **predict_kwargs) -> (n, n_targets)``: the emulator's prediction
        for rows of basin indices ``(n,)`` and unit-cube parameters ``(n, n_params)``.
    basin_idx : array of int, shape (n_basins,)
        Emulator index of every basin to optimise. It also keys the random streams (see
        :func:`~lsegeo.optimise.problem.run_seed`).
    n_params : int
        Number of parameters (dimensions of the unit cube).
    senses : sequence of {"max", "min"}
        Orientation of each emulator target: one for the GA, two for NSGA-II.
    n_proposals : int
        Proposals per basin (50); the optimiser's share of them at most ``pop_size * n_restarts``.
    algorithm : {"ga", "nsga2"}
        GA (one target) or NSGA-II (two targets), from
        :data:`~lsegeo.optimise.algorithms.ALGORITHMS`.
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
        proposal and an existing point (0.1). Halved as often as needed when too few candidates
        keep it (reported in the result).
    fixed_mask : bool array, broadcastable to (n_basins, n_params), optional
        Dimensions held at ``fixed_values`` (both bounds set to the value).
    fixed_values : array, broadcastable to (n_basins, n_params), optional
        Unit-cube values of the held dimensions.
    sampling : {"random", "lhs"}, optional
        Initial population; default random for the GA and a Latin hypercube for NSGA-II.
    engine : {"numpy", "pymoo"}
        An entry of :data:`ENGINES`. ``"numpy"``: the operators as array operations over all
        runs; ``"pymoo"``: pymoo algorithm objects through ask/tell. Both make one emulator call
        per generation.
    predict_kwargs : mapping, optional
        Extra keyword arguments of every ``predict`` call.
    existing_scores : sequence of arrays, optional
        Per basin, ``(k, n_targets)`` simulated values of the emulator's targets at the
        ``existing`` points (NaN where unknown), in the targets' own orientation. Needed when
        ``local_share > 0``.
    local_share : float
        Share of the proposals that come from the emulator-screened neighbourhood search around
        the basin's best simulated points instead of from the GA / NSGA-II (1: all of them, and
        the GA does not run; 0 is the study's scheme; see Notes).
    local_anchors, local_candidates, local_radius
        The neighbourhood search: how many of the best existing points serve as anchors (10),
        how many perturbed candidates per basin the emulator screens (5000; one emulator call
        for all basins), and the standard deviation of a perturbation in the unit cube (0.2).

    Returns
    -------
    Proposals
        ``u`` (n_basins, n_proposals, n_params): the optimiser's proposals, best first, then the
        neighbourhood search's, best first; ``predicted`` (n_basins, n_proposals, n_targets),
        ``n_evaluations``, ``n_predict_calls`` (``n_gen``, plus one with a neighbourhood
        search), ``relaxed``, ``min_distance`` (n_basins,) ...

    Raises
    ------
    ValueError
        On inconsistent arguments (among them ``local_share > 0`` without ``existing_scores``),
        or when the emulator returns the wrong shape.
    UnknownNameError
        ``algorithm`` or ``engine`` is not registered; the message lists the known names.
    MissingDependencyError
        The engine needs a package that is not installed (``"pymoo"``: extra ``ml``).

    Notes
    -----
    Each generation predicts ``n_basins * n_restarts * pop_size`` rows in one call (30,000 for
    100 basins with the study's settings), so the emulator's throughput on large batches sets
    the cost. ``benchmarks/bench_optimise.py`` compares the engines and the per-basin loop.

    **Neighbourhood search** (``local_share > 0``; :mod:`lsegeo.optimise.neighbourhood`). The
    optimum of an emulator is where its error is largest (a maximum of the prediction is often
    an over-prediction), and a converged GA puts all its proposals there. The neighbourhood
    search instead perturbs the basin's best simulated points (the ``local_anchors`` best by
    ``existing_scores``; by non-dominated rank, then crowding, for two targets) the way DDS does
    (Tolson & Shoemaker 2007): about 4 of the free dimensions of an anchor move by
    ``local_radius * N(0, 1)``, reflected at the bounds. The emulator scores all
    ``local_candidates`` perturbations of every basin in one call and the best that keep
    ``min_distance`` from every existing point and every other proposal are taken: candidate
    screening as in Regis & Shoemaker (2007), with the sparse perturbations of DYCORS (Regis &
    Shoemaker 2013). Each basin's perturbations come from its own random stream,
    ``run_seed(seed, basin, n_restarts)``. Where a basin has no scored point the optimiser's
    proposals serve as anchors.
    """
    s = make_setup(basin_idx, n_params, senses, n_proposals, algorithm=algorithm, pop_size=pop_size, n_gen=n_gen,
                   n_restarts=n_restarts, seed=seed, existing=existing, min_distance=min_distance,
                   fixed_mask=fixed_mask, fixed_values=fixed_values, sampling=sampling,
                   predict_kwargs=predict_kwargs, existing_scores=existing_scores, local_share=local_share,
                   local_anchors=local_anchors, local_candidates=local_candidates, local_radius=local_radius)
    run = ENGINES.get(engine)
    if len(s.basin_idx) == 0:
        return empty_proposals(s, engine, s.n_proposals + s.n_local)
    opt = run(predict, s) if s.n_proposals else empty_proposals(s, engine, 0)
    res = add_local(predict, s, opt) if s.n_local else opt
    logger.debug("%s proposals for %d basins (%d from the %s, %d from the neighbourhood search): "
                 "%d emulator calls, %d rows", s.n_proposals + s.n_local, len(s.basin_idx), s.n_proposals,
                 s.algo.label, s.n_local, res.n_predict_calls, res.n_evaluations)
    if res.relaxed.any():
        logger.info("min_distance %g relaxed for %d of %d basins (least distance kept %g)", s.min_distance,
                    int(res.relaxed.sum()), len(s.basin_idx), float(res.min_distance.min()))
    return res
