"""The evolutionary algorithms of the proposal step, GA and NSGA-II, as a table of settings.

Each entry of :data:`ALGORITHMS` says how many targets the algorithm optimises, its operator
settings, its initial population, whether it keeps an archive of well-spread good points, how
its candidates are ranked when proposals are chosen, and which pymoo class runs it. The engines
(:mod:`lsegeo.optimise.numpy_ga`, :mod:`lsegeo.optimise.pymoo_engine`) read these entries, so no
step switches on the algorithm's name.

Settings of Tang, Wood & Swenson (2025, section 1.7):

* ``"ga"``, one target: random initial population, SBX crossover ``prob=0.9, eta=15``
  (Deb & Agrawal 1995), polynomial mutation ``eta=20`` (Deb & Goyal 1996), binary tournament on
  fitness, duplicates eliminated, elitist survival of the best ``pop_size`` of parents and
  offspring;
* ``"nsga2"``, two targets (NSGA-II, Deb et al. 2002, as in MO-ASMO): Latin hypercube initial
  population, SBX ``prob=0.9, eta=20``, polynomial mutation ``eta=20``, binary tournament by
  dominance then crowding distance, survival by non-dominated rank then crowding distance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lsegeo.registry import Registry

__all__ = ["ALGORITHMS", "Algorithm", "SAMPLINGS", "algorithm_for", "order_by_rank_and_crowding", "order_by_value"]

#: Initial populations that both engines can draw.
SAMPLINGS: tuple[str, ...] = ("random", "lhs")


def order_by_value(F: np.ndarray) -> np.ndarray:
    """Order of candidates by their one objective, smallest (best) first.

    Parameters
    ----------
    F : numpy.ndarray
        ``(n, 1)`` objectives to minimise.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` indices; ties keep their order (stable sort).
    """
    return np.argsort(F[:, 0], kind="stable")


def order_by_rank_and_crowding(F: np.ndarray) -> np.ndarray:
    """Order of candidates by non-dominated rank, then by descending crowding distance.

    The ranking and crowding distance of NSGA-II (Deb et al. 2002), computed with pymoo's
    ``NonDominatedSorting`` and ``calc_crowding_distance``; the points of a front of one or two
    points get an infinite crowding distance.

    Parameters
    ----------
    F : numpy.ndarray
        ``(n, n_targets)`` objectives to minimise.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` indices, best first.
    """
    from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    rank = np.empty(len(F), dtype=np.int64)
    cd = np.empty(len(F))
    for k, front in enumerate(NonDominatedSorting().do(F)):
        rank[front] = k
        cd[front] = np.inf if len(front) <= 2 else calc_crowding_distance(F[front])
    return np.lexsort((-cd, rank))


@dataclass(frozen=True)
class Algorithm:
    """One evolutionary algorithm of the proposal step.

    Attributes
    ----------
    name : str
        Its name in :data:`ALGORITHMS` (``"ga"``).
    label : str
        Its name in messages (``"GA"``).
    n_targets : int
        Number of emulator targets it optimises.
    sbx_prob, sbx_eta : float
        Probability that a mating pair is crossed, and the distribution index of SBX.
    pm_eta : float
        Distribution index of the polynomial mutation.
    sampling : str
        Its initial population, one of :data:`SAMPLINGS`.
    archive : bool
        Whether the runs keep an archive of the best point per grid cell
        (:class:`lsegeo.optimise.archive.Archive`): a converged GA population is packed far
        tighter than ``min_distance``; an NSGA-II population is spread by crowding.
    order : callable
        ``order(F) -> indices``: the candidates' order, best first, when proposals are chosen.
    pymoo_class : str
        ``"module:attribute"`` of the pymoo algorithm class that runs it (engine ``"pymoo"``).
    """

    name: str
    label: str
    n_targets: int
    sbx_prob: float
    sbx_eta: float
    pm_eta: float
    sampling: str
    archive: bool
    order: Callable[[np.ndarray], np.ndarray]
    pymoo_class: str

    @property
    def ops(self) -> dict[str, float]:
        """The operator settings: ``sbx_prob``, ``sbx_eta``, ``pm_eta``."""
        return {"sbx_prob": self.sbx_prob, "sbx_eta": self.sbx_eta, "pm_eta": self.pm_eta}


#: The algorithms of the proposal step, by name.
ALGORITHMS: Registry[Algorithm] = Registry("optimiser algorithm", {
    "ga": Algorithm(name="ga", label="GA", n_targets=1, sbx_prob=0.9, sbx_eta=15.0, pm_eta=20.0,
                    sampling="random", archive=True, order=order_by_value,
                    pymoo_class="pymoo.algorithms.soo.nonconvex.ga:GA"),
    "nsga2": Algorithm(name="nsga2", label="NSGA-II", n_targets=2, sbx_prob=0.9, sbx_eta=20.0, pm_eta=20.0,
                       sampling="lhs", archive=False, order=order_by_rank_and_crowding,
                       pymoo_class="pymoo.algorithms.moo.nsga2:NSGA2"),
})


def algorithm_for(n_targets: int) -> str:
    """The name of the registered algorithm that optimises ``n_targets`` targets.

    Parameters
    ----------
    n_targets : int
        Number of emulator targets (objectives).

    Returns
    -------
    str
        ``"ga"`` for one, ``"nsga2"`` for two.

    Raises
    ------
    ValueError
        No registered algorithm optimises that many targets.
    """
    for name in ALGORITHMS.names():
        if ALGORITHMS.get(name).n_targets == n_targets:
            return name
    known = ", ".join(f"{n} ({ALGORITHMS.get(n).n_targets})" for n in ALGORITHMS.names())
    raise ValueError(f"no optimiser algorithm optimises {n_targets} targets; known (targets): {known}")
