"""CTSM daily runoff to basin runoff in mm/day on the observation days of the basins store.

The file reading (variables, units, calendar, gaps) is :func:`lsegeo.io.ctsm_history.read_history_runoff`;
this module turns its ``(time, cell)`` values into one basin series:

1. **Units.** ``QRUNOFF`` is a mean flux in mm/s over the land of a cell; a daily mean times
   86400 s is the day's runoff depth in mm/day (:data:`SECONDS_PER_DAY`).
2. **Cells to basin.** A basin covered by several grid cells (or a gridded run cut to a basin)
   is the weighted mean of its cells, each weighted by ``area x landfrac`` (the land area that
   produced the runoff) read from the file, or by weights the caller gives (e.g. the share of
   the basin polygon in each cell, times its land area). Cells with zero weight are ignored; on
   a day when a weighted cell has no value (fill value) the basin has none either (NaN), never
   a mean over the remaining cells.
3. **Calendar.** CTSM runs on the ``noleap`` (``365_day``) calendar: its years have no
   29 February, so its day ``YYYY-MM-DD`` is the standard calendar's day of the same name. The
   basins store uses the standard calendar, so the series is put on the observation days by
   date; **on 29 February of a leap year the simulated flow is NaN**, so that day is not scored
   (scores use only days where both series have a value, :mod:`lsegeo.metrics.kernels`). No
   value is interpolated or moved: every other day compares the simulation of that date with
   the observation of that date. Files on the ``standard``/``gregorian`` calendar are aligned
   the same way and have their 29 February.
4. **Coverage.** The history must cover every asked day (bar 29 February of a noleap file);
   a shorter run is an error that says which days are missing, not a silently shorter score.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from lsegeo.errors import InputFormatError
from lsegeo.io.ctsm_history import HistoryRunoff, read_history_runoff

__all__ = ["SECONDS_PER_DAY", "NOLEAP_CALENDARS", "cell_weights", "basin_daily_runoff", "align_to_days",
           "basin_runoff"]

#: seconds in a day: mm/s x 86400 = mm/day
SECONDS_PER_DAY = 86400.0
#: calendars without 29 February
NOLEAP_CALENDARS = ("noleap", "365_day")


def cell_weights(history: HistoryRunoff, weights: Sequence[float] | None = None) -> np.ndarray:
    """Weights of the cells of a history, summing to 1.

    Parameters
    ----------
    history : HistoryRunoff
        From :func:`lsegeo.io.ctsm_history.read_history_runoff`.
    weights : sequence of float, optional
        ``(cell,)`` non-negative weights (any scale); default ``area x landfrac`` from the file.

    Returns
    -------
    numpy.ndarray
        ``(cell,)`` float64 weights summing to 1.

    Raises
    ------
    InputFormatError
        No ``weights`` given and the file lacks ``area`` or ``landfrac`` (and has more than one
        cell); weights of the wrong length, negative, NaN or all zero.
    """
    where = history.files[0]
    if weights is None:
        if history.n_cells == 1:
            return np.ones(1)
        if history.area is None or history.landfrac is None:
            raise InputFormatError(where, None, f"{history.n_cells} grid cells but no 'area' and 'landfrac' to weight "
                                                "them; give the cell weights")
        w = history.area * history.landfrac
        w = np.where(np.isfinite(w), w, 0.0)  # cells without land (fill values) weigh nothing
    else:
        w = np.asarray(weights, dtype="float64").reshape(-1)
        if w.size != history.n_cells:
            raise InputFormatError(where, None, f"{w.size} cell weights given for {history.n_cells} grid cells")
        if not np.isfinite(w).all() or (w < 0).any():
            raise InputFormatError(where, None, f"cell weights must be finite and >= 0, got {w.tolist()}")
    total = float(w.sum())
    if total <= 0:
        raise InputFormatError(where, None, "the cell weights (area x landfrac) are all zero: no land in the basin")
    return w / total


def basin_daily_runoff(history: HistoryRunoff, weights: Sequence[float] | None = None) -> pd.Series:
    """The basin's daily runoff in mm/day, on the history's own days.

    Parameters
    ----------
    history : HistoryRunoff
        Daily means of a water flux in mm/s.
    weights : sequence of float, optional
        Cell weights (:func:`cell_weights`; default ``area x landfrac``).

    Returns
    -------
    pandas.Series
        Runoff [mm day-1] indexed by the days of the history (no 29 February in a noleap file);
        NaN on a day when a weighted cell has no value.
    """
    w = cell_weights(history, weights)
    used = w > 0
    vals = history.values[:, used]
    q = (vals * w[used]).sum(axis=1) * SECONDS_PER_DAY
    q[~np.isfinite(vals).all(axis=1)] = np.nan
    return pd.Series(q, index=history.dates, name="runoff")


def align_to_days(series: pd.Series, days: pd.DatetimeIndex, calendar: str, where: str = "history") -> np.ndarray:
    """Put a basin series of a model calendar on days of the standard calendar.

    Parameters
    ----------
    series : pandas.Series
        Daily values indexed by date (:func:`basin_daily_runoff`).
    days : pandas.DatetimeIndex
        The days wanted (the ensemble's simulation window, the observation days).
    calendar : str
        The calendar of ``series``' model (one of :data:`lsegeo.io.ctsm_history.CALENDARS`).
    where : str
        The files, for messages.

    Returns
    -------
    numpy.ndarray
        ``(len(days),)`` float64; NaN on 29 February when ``calendar`` is noleap/365_day.

    Raises
    ------
    InputFormatError
        A day of ``days`` (other than a noleap calendar's missing 29 February) is not in the
        series; the message gives the series' span and the first missing days.
    """
    days = pd.DatetimeIndex(days).normalize()
    out = series.reindex(days).to_numpy(dtype="float64")
    absent = ~days.isin(series.index)
    if calendar in NOLEAP_CALENDARS:
        absent &= ~((days.month == 2) & (days.day == 29))
    if absent.any():
        first = [d.date().isoformat() for d in days[absent][:3]]
        span = (f"{series.index[0].date()} to {series.index[-1].date()}" if len(series) else "no days")
        raise InputFormatError(where, None, f"the history ({span}) does not cover {int(absent.sum())} of the "
                                            f"{len(days)} days asked for ({days[0].date()} to {days[-1].date()}), "
                                            f"first {', '.join(first)}")
    return out


def basin_runoff(paths: str | os.PathLike | Sequence[str | os.PathLike], days: pd.DatetimeIndex, *,
                 weights: Sequence[float] | None = None, variable: str = "QRUNOFF") -> np.ndarray:
    """Basin runoff [mm day-1] from CTSM daily history files, on the given standard-calendar days.

    Parameters
    ----------
    paths : path-like or sequence of path-like
        The history files of one run (e.g. its ``*.clm2.h1.*.nc``).
    days : pandas.DatetimeIndex
        The days wanted, e.g. the simulation window of an ensemble store.
    weights : sequence of float, optional
        Cell weights; default ``area x landfrac`` from the file.
    variable : str
        The runoff variable (mm/s).

    Returns
    -------
    numpy.ndarray
        ``(len(days),)`` float64 runoff [mm day-1]; NaN on 29 February for a noleap run.

    Raises
    ------
    lsegeo.errors.DataNotFoundError
        A file is missing.
    InputFormatError
        A bad file (:func:`lsegeo.io.ctsm_history.read_history_runoff`), bad weights, or days
        not covered.
    """
    history = read_history_runoff(paths, variable)
    series = basin_daily_runoff(history, weights)
    where = history.files[0] if len(history.files) == 1 else f"{history.files[0]} (+{len(history.files) - 1} files)"
    return align_to_days(series, days, history.calendar, where)
