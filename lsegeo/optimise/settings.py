"""Settings of the proposal step: the one place that holds their defaults.

:class:`ProposalSettings` owns the default of every setting of
:func:`lsegeo.optimise.proposals.propose` (and :func:`~lsegeo.optimise.fanout.propose_on_dask`):
the keyword arguments of those functions and the ``calibrate`` section of the configuration
(:class:`lsegeo.config.CalibrateConfig`) both take their defaults from it, so a default is
written once. The module imports nothing heavy, so the configuration can read it cheaply.

The GA / NSGA-II sizes are those of Tang, Wood & Swenson (2025, section 1.7): population 100,
100 generations, 3 restarts. ``min_distance`` (0.1) and the neighbourhood search
(``local_share`` 1: every proposal) are lsegeo's choices: on the CAMELS loop the GA's proposals
gave a basin's best new member in 2-14% of the basins when 10 of the 50 came from it, and cost
most of an iteration's time (``docs/benchmarks.md``). The study's own scheme is
``local_share=0, min_distance=0.01`` (``docs/calibration.md``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ProposalSettings"]


@dataclass(frozen=True)
class ProposalSettings:
    """Settings of one proposal step (the optimisation of every basin on an emulator).

    Attributes
    ----------
    n_proposals : int
        New parameter sets per basin.
    pop_size : int
        Population size of every GA / NSGA-II run.
    n_gen : int
        Generations of every run; the initial population counts as the first.
    n_restarts : int
        Independent runs per basin.
    algorithm : str
        ``"ga"`` (one target) or ``"nsga2"`` (two targets); see
        :data:`lsegeo.optimise.algorithms.ALGORITHMS`.
    engine : str
        ``"numpy"`` or ``"pymoo"``; see :data:`lsegeo.optimise.proposals.ENGINES`.
    sampling : str or None
        Initial population, ``"random"`` or ``"lhs"``; None takes the algorithm's own
        (random for the GA, a Latin hypercube for NSGA-II).
    min_distance : float
        Least Euclidean distance (unit cube) between two proposals of a basin, and between a
        proposal and a member already simulated.
    local_share : float
        Share of the proposals that come from the emulator-screened neighbourhood search
        (:mod:`lsegeo.optimise.neighbourhood`) instead of from the GA / NSGA-II; 0 is the
        study's scheme.
    local_anchors : int
        Best simulated points per basin that the neighbourhood search perturbs.
    local_candidates : int
        Perturbations per basin that the emulator screens.
    local_radius : float
        Standard deviation of a perturbation, unit cube.
    seed : int
        Seed of the calibration's optimisations (the calibration loop adds ``1000 * k`` in
        iteration ``k``). :func:`~lsegeo.optimise.proposals.propose` itself asks for a seed.
    """

    n_proposals: int = 50
    pop_size: int = 100
    n_gen: int = 100
    n_restarts: int = 3
    algorithm: str = "ga"
    engine: str = "numpy"
    sampling: str | None = None
    min_distance: float = 0.1
    local_share: float = 1.0
    local_anchors: int = 10
    local_candidates: int = 5000
    local_radius: float = 0.2
    seed: int = 20250702

    def kwargs(self) -> dict[str, Any]:
        """The settings as keyword arguments of :func:`~lsegeo.optimise.proposals.propose`.

        Returns
        -------
        dict
            Every attribute, by name (``n_proposals`` may be passed by keyword as well).
        """
        return asdict(self)
