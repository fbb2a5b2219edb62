"""The settings of a DDS search that every caller shares: the perturbation size and the checks.

Pure Python with no imports from the steps, so that settings dataclasses
(:class:`lsegeo.calibration.direct_settings.DirectSettings`) and the algorithm
(:mod:`lsegeo.optimise.dds`) take the same default and the same rules from one place.

References
----------
Tolson, B. A. and Shoemaker, C. A. (2007). Dynamically dimensioned search algorithm for
computationally efficient watershed model calibration. *Water Resour. Res.* 43, W01413.
doi:10.1029/2005WR004723
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["DDS_R", "check_budget", "check_r", "checked_checkpoints"]

DDS_R = 0.2
"""DDS perturbation size, as a fraction of each dimension's range (Tolson & Shoemaker 2007)."""


def check_budget(budget: int, chains: int) -> None:
    """Check a budget of evaluations (the initial solution included) and a number of chains.

    Raises
    ------
    ValueError
        ``budget`` or ``chains`` is below 1.
    """
    if int(budget) < 1:
        raise ValueError(f"budget must be at least 1 model run (the initial solution), got {budget}")
    if int(chains) < 1:
        raise ValueError(f"chains must be at least 1, got {chains}")


def check_r(r: float) -> None:
    """Check a DDS perturbation size.

    Raises
    ------
    ValueError
        ``r`` is not in ``(0, 1]``.
    """
    if not 0.0 < r <= 1.0:
        raise ValueError(f"the DDS perturbation size r must be in (0, 1], got {r}")


def checked_checkpoints(checkpoints: Sequence[int], budget: int) -> list[int]:
    """Checkpoints as sorted distinct run numbers within the budget.

    Parameters
    ----------
    checkpoints : sequence of int
        Run numbers at which a search keeps its best solution so far.
    budget : int
        The search's budget.

    Returns
    -------
    list of int

    Raises
    ------
    ValueError
        A run number outside ``[1, budget]`` (the message lists them).
    """
    out = sorted({int(c) for c in checkpoints})
    bad = [c for c in out if not 1 <= c <= budget]
    if bad:
        raise ValueError(f"checkpoints must be run numbers from 1 to the budget ({budget}); got {bad}")
    return out
