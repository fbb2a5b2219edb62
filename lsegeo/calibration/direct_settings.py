"""Settings of direct calibration (DDS on the process model): the one place that holds their defaults.

:class:`DirectSettings` owns the defaults of :func:`lsegeo.calibration.direct.calibrate_direct`
and :func:`lsegeo.calibration.direct.dds_basin`, and of the ``direct`` section of the
configuration (:class:`lsegeo.config.DirectConfig`). The search is DDS (Tolson & Shoemaker 2007,
:mod:`lsegeo.optimise.dds`) with its published perturbation size ``r = 0.2``
(:data:`lsegeo.optimise.dds_settings.DDS_R`); the budget of 2,000
model runs per basin and the start from the default parameter set are those of the study's
Ostrich/DDS benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass

from lsegeo.optimise.dds_settings import DDS_R, check_budget, check_r, checked_checkpoints
from lsegeo.periods import (
    DEFAULT_MIN_COVERAGE,
    DEFAULT_PERIODS,
    DEFAULT_WARMUP_DAYS,
    Period,
    check_min_coverage,
    check_overlap,
)

__all__ = ["DirectSettings"]


@dataclass(frozen=True)
class DirectSettings:
    """Settings of one direct calibration.

    Attributes
    ----------
    model : str
        Registered model adapter (:data:`lsegeo.models.registry.MODELS`).
    objective : str
        Registered objective (:data:`lsegeo.metrics.objectives.OBJECTIVES`), maximised or
        minimised as its sense says.
    period : str
        The period calibrated on; when no period has that name, the first one.
    periods : tuple of Period
        Periods scored with the best parameters (the calibration period among them).
    warmup_days : int
        Days simulated before the earliest period and never scored.
    budget : int
        Model runs per basin, the default parameter set included.
    chains : int
        Independent DDS chains per basin sharing the budget.
    r : float
        DDS perturbation size, a fraction of each parameter's unit-cube range, in (0, 1].
    seed : int
        Seed of the run; each basin's search is seeded with ``(seed, crc32(basin id))``.
    parameters : tuple of str or None
        Parameters to calibrate (the others stay at their defaults); None for all.
    checkpoints : tuple of int
        Run numbers at which the best set so far is kept and scored on every period (sorted,
        distinct, within the budget).
    chunk_basins : int
        Basins per dask task.
    min_coverage : float
        Least share of a period's days with an observation: a basin below it on the calibration
        period is not calibrated, and its scores on any period below it are NaN with a note
        (:data:`lsegeo.periods.DEFAULT_MIN_COVERAGE`, 0.8 as Tang et al. 2025).
    allow_overlap : bool
        Accept periods that share days (refused by default).

    Raises
    ------
    ValueError
        A budget or chains below 1, ``r`` outside (0, 1], a checkpoint outside the budget,
        ``chunk_basins`` below 1, a negative warm-up, no periods, ``min_coverage`` outside
        [0, 1], or periods that overlap without ``allow_overlap``.
    """

    model: str = "hbv"
    objective: str = "kgeprime"
    period: str = "calibration"
    periods: tuple[Period, ...] = DEFAULT_PERIODS
    warmup_days: int = DEFAULT_WARMUP_DAYS
    budget: int = 2000
    chains: int = 4
    r: float = DDS_R
    seed: int = 0
    parameters: tuple[str, ...] | None = None
    checkpoints: tuple[int, ...] = ()
    chunk_basins: int = 8
    min_coverage: float = DEFAULT_MIN_COVERAGE
    allow_overlap: bool = False

    def __post_init__(self) -> None:
        check_budget(self.budget, self.chains)
        check_r(self.r)
        if self.chunk_basins < 1:
            raise ValueError(f"chunk_basins must be at least 1, got {self.chunk_basins}")
        if self.warmup_days < 0:
            raise ValueError(f"warmup_days must be >= 0, got {self.warmup_days}")
        if not self.periods:
            raise ValueError("at least one period is needed")
        object.__setattr__(self, "periods", tuple(self.periods))
        check_overlap(self.periods, self.allow_overlap)
        object.__setattr__(self, "min_coverage", check_min_coverage(self.min_coverage))
        object.__setattr__(self, "checkpoints", tuple(checked_checkpoints(self.checkpoints, self.budget)))
        if self.parameters is not None:
            object.__setattr__(self, "parameters", tuple(self.parameters))

    @property
    def calibration_period(self) -> str:
        """The name of the period the search scores: :attr:`period`, or the first period's."""
        names = [p.name for p in self.periods]
        return self.period if self.period in names else names[0]
