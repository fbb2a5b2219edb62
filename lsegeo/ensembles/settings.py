"""Settings of the ensemble step: the one place that holds their defaults.

:class:`EnsembleSettings` owns the defaults of :func:`lsegeo.ensembles.store.create_ensemble`
and of the ``ensemble`` section of the configuration (:class:`lsegeo.config.EnsembleConfig`).
The design is the default member and a Latin hypercube (McKay, Beckman & Conover 1979,
:func:`lsegeo.design.latin_hypercube`); the one-year warm-up is
:data:`lsegeo.periods.DEFAULT_WARMUP_DAYS`; a period is scored only where at least
:data:`lsegeo.periods.DEFAULT_MIN_COVERAGE` (0.8, Tang et al. 2025) of its days are observed.
"""

from __future__ import annotations

from dataclasses import dataclass

from lsegeo.periods import DEFAULT_MIN_COVERAGE, DEFAULT_WARMUP_DAYS, check_min_coverage

__all__ = ["EnsembleSettings"]


@dataclass(frozen=True)
class EnsembleSettings:
    """Settings of one ensemble: a design of members run over basins and scored on periods.

    Attributes
    ----------
    model : str
        Registered model adapter (:func:`lsegeo.models.registry.get_model`).
    basins : str
        ``"observed"`` (basins with streamflow) or ``"all"``; a list of gauge ids in a config.
    n_members : int
        Members per basin, the default member included.
    seed : int
        Seed of the Latin hypercube design.
    warmup_days : int
        Days simulated before the earliest period and never scored.
    keep_series : bool
        Also store the simulated flow of every member.
    chunk_basins : int
        Basins per zarr chunk and per dask task.
    min_coverage : float
        Least share of a period's days with an observation for a basin to be scored on it; below
        it every score of the (basin, period) is NaN, with a ``score_note`` saying why.
    allow_overlap : bool
        Accept evaluation periods that share days (refused by default: the test period would not
        be independent).

    Raises
    ------
    ValueError
        ``min_coverage`` outside [0, 1].
    """

    model: str = "hbv"
    basins: str = "observed"
    n_members: int = 200
    seed: int = 20250701
    warmup_days: int = DEFAULT_WARMUP_DAYS
    keep_series: bool = False
    chunk_basins: int = 8
    min_coverage: float = DEFAULT_MIN_COVERAGE
    allow_overlap: bool = False

    def __post_init__(self) -> None:
        check_min_coverage(self.min_coverage)
