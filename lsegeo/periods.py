"""Evaluation periods: the calibration and independent test periods, with warm-up and coverage.

The defaults follow the CAMELS split of Kratzert et al. (2019, HESS 23, 5089-5110,
doi:10.5194/hess-23-5089-2019): calibration on water years 2000-2008 (1999-10-01 to
2008-09-30) and an independent test on water years 1990-1999 (1989-10-01 to 1999-09-30). The
two share no day. A simulation covering several periods starts one warm-up length (default
365 days) before the earliest of them; scores only look at the days of each period, so the
warm-up is never scored.

Periods that overlap are not independent: :func:`check_overlap` refuses them unless the caller
allows it explicitly (``allow_overlap``).

Coverage
--------
The *coverage* of a period by a basin's observations is the share of the period's days with an
observed value (:func:`period_coverage`). A score from less than :data:`DEFAULT_MIN_COVERAGE`
(0.8, the share of valid daily streamflow that Tang et al. (2025) require of their calibration
windows, ``decide_CalibValid_periods.py`` of NCAR/CTSM_calibration) is not a score of the period:
the ensemble runner and the direct calibration give NaN for every objective on that (basin,
period), record the coverage, and say why (:func:`coverage_note`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Period", "DEFAULT_PERIODS", "DEFAULT_WARMUP_DAYS", "DEFAULT_MIN_COVERAGE", "simulation_window",
           "period_slices", "periods_json", "periods_from_json", "period_overlaps", "check_overlap",
           "check_min_coverage", "period_coverage", "covered", "coverage_note"]

#: days simulated before the earliest period and never scored
DEFAULT_WARMUP_DAYS = 365
#: least share of a period's days with an observation for the period to be scored (Tang et al. 2025)
DEFAULT_MIN_COVERAGE = 0.8


@dataclass(frozen=True)
class Period:
    """A named, inclusive range of days."""

    name: str
    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"period {self.name!r}: end {self.end} is before start {self.start}")


#: the split of Kratzert et al. (2019): calibration WY 2000-2008, test WY 1990-1999 (no shared day)
DEFAULT_PERIODS = (
    Period("calibration", dt.date(1999, 10, 1), dt.date(2008, 9, 30)),
    Period("test", dt.date(1989, 10, 1), dt.date(1999, 9, 30)),
)


def periods_json(periods: Sequence[Period]) -> str:
    """Periods as a JSON list of ``{"name", "start", "end"}`` (ISO dates), for store attributes."""
    return json.dumps([{"name": p.name, "start": str(p.start), "end": str(p.end)} for p in periods])


def periods_from_json(text: str) -> list[Period]:
    """The periods written by :func:`periods_json`."""
    return [Period(d["name"], pd.Timestamp(d["start"]).date(), pd.Timestamp(d["end"]).date())
            for d in json.loads(text)]


def simulation_window(periods: Sequence[Period], warmup_days: int = DEFAULT_WARMUP_DAYS) -> pd.DatetimeIndex:
    """The days a simulation must cover: warm-up before the earliest period, to the latest end.

    Parameters
    ----------
    periods : sequence of Period
        At least one period.
    warmup_days : int
        Days simulated before the earliest period start and never scored.

    Returns
    -------
    pandas.DatetimeIndex
        Daily dates, ``warmup_days`` before the earliest start to the latest end, inclusive.

    Raises
    ------
    ValueError
        ``warmup_days`` is negative.
    """
    if warmup_days < 0:
        raise ValueError(f"warmup_days must be >= 0, got {warmup_days}")
    start = min(p.start for p in periods) - dt.timedelta(days=warmup_days)
    end = max(p.end for p in periods)
    return pd.date_range(start, end, freq="D", name="time")


def period_slices(time: pd.DatetimeIndex, periods: Sequence[Period]) -> Mapping[str, slice]:
    """Index slices of each period within a simulation's time axis.

    Parameters
    ----------
    time : pandas.DatetimeIndex
        The simulation's days (e.g. :func:`simulation_window`).
    periods : sequence of Period
        The periods to locate.

    Returns
    -------
    mapping of str to slice
        Period name -> positions of its days in ``time``.

    Raises
    ------
    ValueError
        A period has no day in ``time``.
    """
    out = {}
    t = time.values
    for p in periods:
        i0 = int(np.searchsorted(t, np.datetime64(p.start)))
        i1 = int(np.searchsorted(t, np.datetime64(p.end), side="right"))
        if i0 >= i1:
            raise ValueError(f"period {p.name!r} ({p.start} to {p.end}) is outside the simulation window")
        out[p.name] = slice(i0, i1)
    return out


def period_overlaps(periods: Sequence[Period]) -> list[tuple[Period, Period, dt.date, dt.date]]:
    """Every pair of periods that share a day, with the first and last shared day.

    Parameters
    ----------
    periods : sequence of Period
        The periods (inclusive ranges of days).

    Returns
    -------
    list of (Period, Period, datetime.date, datetime.date)
        ``(a, b, first, last)`` for each overlapping pair, in the order of ``periods``; empty when
        no two periods share a day.
    """
    out = []
    for i, a in enumerate(periods):
        for b in periods[i + 1:]:
            first, last = max(a.start, b.start), min(a.end, b.end)
            if first <= last:
                out.append((a, b, first, last))
    return out


def check_overlap(periods: Sequence[Period], allow_overlap: bool = False) -> None:
    """Refuse periods that share days, unless ``allow_overlap``.

    A test period that shares days with the calibration period is not an independent test
    (the old default shared water year 1999, 10% of the test period).

    Parameters
    ----------
    periods : sequence of Period
        The periods.
    allow_overlap : bool
        Accept overlapping periods (e.g. a sub-period scored on its own).

    Raises
    ------
    ValueError
        Two periods overlap and ``allow_overlap`` is false; the message names both periods,
        their dates and the shared days.
    """
    if allow_overlap:
        return
    found = period_overlaps(list(periods))
    if found:
        text = "; ".join(
            f"period {a.name!r} ({a.start} to {a.end}) and period {b.name!r} ({b.start} to {b.end}) overlap "
            f"from {first} to {last} ({(last - first).days + 1} days)" for a, b, first, last in found)
        raise ValueError(f"{text}: periods must not share days (set allow_overlap: true to allow it)")


def check_min_coverage(value: float) -> float:
    """``value`` as a float if it is a share in [0, 1]; a ``ValueError`` naming it otherwise."""
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"min_coverage is a share of a period's days, in [0, 1]; got {value}")
    return value


def period_coverage(obs: np.ndarray, slices: Mapping[str, slice]) -> np.ndarray:
    """Share of each period's days with an observation.

    Parameters
    ----------
    obs : numpy.ndarray
        ``(..., time)`` observed values on the simulation's days; NaN marks a missing day.
    slices : mapping of str to slice
        Period name -> its days in the time axis (:func:`period_slices`).

    Returns
    -------
    numpy.ndarray
        ``(..., period)`` float64 in [0, 1], periods in ``slices`` order: observed days / days of
        the period (units 1).
    """
    obs = np.asarray(obs, dtype=np.float64)
    out = [np.count_nonzero(~np.isnan(obs[..., sl]), axis=-1) / max(1, sl.stop - sl.start)
           for sl in slices.values()]
    return np.stack(out, axis=-1).astype(np.float64)


def covered(coverage, min_coverage: float):
    """True where ``coverage`` reaches ``min_coverage`` (to round-off: 292 of 365 days is 0.8).

    Parameters
    ----------
    coverage : float or numpy.ndarray
        Coverages (:func:`period_coverage`).
    min_coverage : float
        The least coverage scored.

    Returns
    -------
    bool or numpy.ndarray of bool
        Whether the period is scored.
    """
    return np.asarray(coverage) >= min_coverage - 1e-12


def coverage_note(period: str, coverage: float, n_days: int, min_coverage: float) -> str:
    """Why a period is not scored (empty when its coverage reaches ``min_coverage``).

    Parameters
    ----------
    period : str
        The period's name.
    coverage : float
        Its coverage (:func:`period_coverage`).
    n_days : int
        Days in the period.
    min_coverage : float
        The least coverage scored.

    Returns
    -------
    str
        ``""`` when ``coverage >= min_coverage``, otherwise e.g. ``"not scored: 17 observed
        day(s) of 365 in the calibration period (coverage 0.047 < min_coverage 0.8)"``.
    """
    if covered(coverage, min_coverage):
        return ""
    return (f"not scored: {int(round(coverage * n_days))} observed day(s) of {n_days} in the {period} period "
            f"(coverage {coverage:.3f} < min_coverage {min_coverage:g})")
