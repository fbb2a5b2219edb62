"""Evaluation periods: the calibration and independent test periods, with warm-up.

The defaults follow the CAMELS split of Kratzert et al. (2019, HESS 23, 5089): calibration on
water years 1999-2008 (1998-10-01 to 2008-09-30) and an independent test on water years
1990-1999 (1989-10-01 to 1999-09-30). A simulation covering several periods starts one warm-up
length (default 365 days) before the earliest of them; scores only look at the days of each
period, so the warm-up is never scored.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Period", "DEFAULT_PERIODS", "DEFAULT_WARMUP_DAYS", "simulation_window", "period_slices",
           "periods_json", "periods_from_json"]

DEFAULT_WARMUP_DAYS = 365


@dataclass(frozen=True)
class Period:
    """A named, inclusive range of days."""

    name: str
    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"period {self.name!r}: end {self.end} is before start {self.start}")


DEFAULT_PERIODS = (
    Period("calibration", dt.date(1998, 10, 1), dt.date(2008, 9, 30)),
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
