"""Settings of the parameter screening, with their defaults (the one place that holds them).

:class:`SensitivitySettings` is what ``lsegeo sensitivity`` runs with; the ``sensitivity``
section of the configuration (:class:`lsegeo.config.SensitivityConfig`) and the keyword
defaults of the library functions take their defaults from it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SensitivitySettings"]


@dataclass(frozen=True)
class SensitivitySettings:
    """How the Sobol' indices are computed, checked and turned into a selection.

    Attributes
    ----------
    n_base : int
        Base sample ``N`` of the Saltelli design, a power of 2: ``N (D + 2)`` emulator
        evaluations per basin (``N (2 D + 2)`` with second-order indices).
    num_resamples : int
        Bootstrap resamples of the Sobol' confidence intervals.
    conf_level : float
        Level of the confidence intervals.
    max_rows : int
        Most rows of one emulator ``predict`` call (bounds its memory).
    n_maps : int
        Parameters mapped with the figures (those of largest mean normalised ``S1``).
    check : int
        Basins whose ``S1`` is also estimated from the iteration-0 members (0: no check).
    check_estimator : str
        Given-data estimator of the check, a name of
        :data:`lsegeo.sensitivity.given_data.ESTIMATORS` (``rbd_fast`` or ``binned``).
    check_resamples : int
        Bootstrap resamples of the check's RBD-FAST interval.
    top : int
        Size of the sets of most influential parameters compared by the check.
    share : float or None
        Share in (0, 1] of the summed first-order sensitivity that the selection per cluster
        keeps (0.85 in Tang, Wood & Swenson 2025); None: no selection.
    """

    n_base: int = 512
    num_resamples: int = 100
    conf_level: float = 0.95
    max_rows: int = 2 ** 20
    n_maps: int = 4
    check: int = 0
    check_estimator: str = "rbd_fast"
    check_resamples: int = 30
    top: int = 3
    share: float | None = None

    def __post_init__(self) -> None:
        if self.n_base < 2 or self.n_base & (self.n_base - 1):
            raise ValueError(f"n_base must be a power of 2 (Sobol' sequence balance), got {self.n_base}")
        if self.share is not None and not 0 < self.share <= 1:
            raise ValueError(f"share must be in (0, 1], got {self.share}")
        if self.check < 0:
            raise ValueError(f"check must be a number of basins >= 0, got {self.check}")
