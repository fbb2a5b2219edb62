"""CTSM history files of daily output: reading the runoff of every grid cell, and writing such files.

CTSM writes its history streams (``<case>.clm2.h0.*.nc``, ``h1``, ...) from
``src/main/histFileMod.F90``. A daily stream (``hist_nhtfrq = -24``, e.g. ``h1`` with
``hist_mfilt = 365``: one file per year) has

* ``time(time)``: ``units = "days since YYYY-MM-DD hh:mm:ss"``, ``calendar = "noleap"``, the
  stamp at the *end* of each averaging interval (the mean of 1 January carries the stamp of
  2 January 00:00), and ``time_bounds(time, hist_interval)`` with the interval's start and end;
* the grid: ``lndgrid`` (single-point, regional 1-D and unstructured output) or ``lat``/``lon``;
  ``area(grid)`` in km^2 and ``landfrac(grid)`` (the land fraction of the cell);
* ``QRUNOFF(time, grid)``: float32, ``units = "mm/s"``, total liquid runoff (not routed), the
  ``_FillValue`` 1e36 over cells without land.

:func:`read_history_runoff` reads one variable of one or several such files (concatenated in
time) into plain arrays, and says clearly what is wrong with a file that does not fit (no such
variable, units other than a water flux in mm/s, a calendar other than noleap/365_day/standard/
gregorian, days missing or repeated). Turning the cells into one basin series on the
observation days is :mod:`lsegeo.models.ctsm.history`'s job.

:func:`write_history_file` writes a file of the same layout (used by the test stand-in of an
external model, :mod:`lsegeo.testing.ctsm_standin`, and by tests of bad files).

The day a mean belongs to
-------------------------
A daily mean belongs to the day its averaging interval *starts*: the lower ``time_bounds``
where the file has them, else the time stamp less half a day (right for both end-of-interval
and mid-interval stamps). This is the one-day shift that analyses comparing CTSM's raw time
stamps with observations have to make by hand (``shift(time=-1)``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lsegeo.errors import DataNotFoundError, InputFormatError

__all__ = ["CALENDARS", "FLUX_UNITS", "HistoryRunoff", "read_history_runoff", "write_history_file"]

#: calendars whose dates lsegeo turns into the standard calendar of the basins store
CALENDARS = ("noleap", "365_day", "standard", "gregorian", "proleptic_gregorian")
#: units accepted for a water flux in mm/s (1 mm of water over 1 m^2 is 1 kg)
FLUX_UNITS = ("mm/s", "mm s-1", "mm s^-1", "mm/sec", "kg/m2/s", "kg m-2 s-1", "kg/m^2/s")
_GRID_DIMS = (("lndgrid",), ("lat", "lon"), ("gridcell",))


@dataclass(frozen=True)
class HistoryRunoff:
    """Daily values of one history variable per grid cell, read from one or several files.

    Attributes
    ----------
    files : tuple of str
        The files, in time order.
    variable : str
        The variable read (e.g. ``QRUNOFF``).
    units : str
        Its ``units`` attribute as written (a water flux in mm/s).
    calendar : str
        The calendar of the time axis (lower case).
    dates : pandas.DatetimeIndex
        ``(time,)`` the day each mean belongs to (its interval start, see the module notes),
        consecutive days of ``calendar`` (in a noleap file no 29 February ever occurs).
    values : numpy.ndarray
        ``(time, cell)`` float64 values in the file's units; NaN where the file holds its fill value.
    area : numpy.ndarray or None
        ``(cell,)`` grid-cell area [km^2] (``area``), None when the file has none.
    landfrac : numpy.ndarray or None
        ``(cell,)`` land fraction [1] (``landfrac``), None when the file has none.
    lon, lat : numpy.ndarray or None
        ``(cell,)`` cell centres [degrees east, degrees north], None when absent.
    grid_dims : tuple of str
        The file's grid dimensions, flattened into ``cell`` (C order).
    """

    files: tuple[str, ...]
    variable: str
    units: str
    calendar: str
    dates: pd.DatetimeIndex
    values: np.ndarray
    area: np.ndarray | None
    landfrac: np.ndarray | None
    lon: np.ndarray | None
    lat: np.ndarray | None
    grid_dims: tuple[str, ...]

    @property
    def n_cells(self) -> int:
        """Number of grid cells."""
        return int(self.values.shape[1])


def _grid_dims(path: str, dims: tuple[str, ...], variable: str) -> tuple[str, ...]:
    if not dims or dims[0] != "time":
        raise InputFormatError(path, None, f"{variable} has dimensions {dims}; expected time first, then "
                                           "the grid (lndgrid, or lat and lon)")
    grid = tuple(dims[1:])
    if grid not in _GRID_DIMS:
        raise InputFormatError(path, None, f"{variable} has dimensions {dims}; expected (time, lndgrid), "
                                           "(time, lat, lon) or (time, gridcell)")
    return grid


def _cell_field(nc, name: str, grid: tuple[str, ...]) -> np.ndarray | None:
    """A per-cell field (``area``, ``landfrac``) flattened, or None when absent; 1-D lat/lon are broadcast."""
    if name not in nc.variables:
        return None
    var = nc.variables[name]
    data = np.ma.filled(np.ma.asarray(var[...], dtype="float64"), np.nan)
    if tuple(var.dimensions) == grid:
        return data.reshape(-1)
    if grid == ("lat", "lon") and tuple(var.dimensions) in (("lat",), ("lon",)):
        nlat, nlon = len(nc.dimensions["lat"]), len(nc.dimensions["lon"])
        full = np.broadcast_to(data[:, None], (nlat, nlon)) if var.dimensions == ("lat",) else \
            np.broadcast_to(data[None, :], (nlat, nlon))
        return np.ascontiguousarray(full).reshape(-1)
    return None


def _interval_starts(path: str, nc) -> tuple[np.ndarray, str, str]:
    """Days (in the file's calendar and units) at which each mean's interval starts, the units, the calendar."""
    if "time" not in nc.variables:
        raise InputFormatError(path, None, "no time variable; expected time(time) with units 'days since ...'")
    tvar = nc.variables["time"]
    units = str(getattr(tvar, "units", ""))
    if not units.lower().startswith("days since"):
        raise InputFormatError(path, None, f"time has units {units!r}; expected 'days since YYYY-MM-DD ...'")
    calendar = str(getattr(tvar, "calendar", "standard")).lower()
    if calendar not in CALENDARS:
        raise InputFormatError(path, None, f"time has calendar {calendar!r}; expected one of {', '.join(CALENDARS)} "
                                           "(CTSM writes 'noleap')")
    stamps = np.asarray(tvar[...], dtype="float64").reshape(-1)
    bounds_name = getattr(tvar, "bounds", None) or next((b for b in ("time_bounds", "time_bnds")
                                                         if b in nc.variables), None)
    if bounds_name and bounds_name in nc.variables:
        starts = np.asarray(nc.variables[bounds_name][...], dtype="float64").reshape(len(stamps), -1)[:, 0]
    else:
        starts = stamps - 0.5
    return np.floor(starts + 1e-6), units, calendar


def _to_dates(path: str, days: np.ndarray, units: str, calendar: str) -> pd.DatetimeIndex:
    import cftime

    dates = cftime.num2date(days, units, calendar=calendar)
    return pd.DatetimeIndex([dt.datetime(d.year, d.month, d.day) for d in np.atleast_1d(dates)])


def _read_one(path: str, variable: str) -> dict:
    import netCDF4

    try:
        nc = netCDF4.Dataset(path, "r")
    except OSError as err:
        raise InputFormatError(path, None, f"not a readable netCDF file ({err})") from err
    with nc:
        if variable not in nc.variables:
            raise InputFormatError(path, None, f"no variable {variable!r}; expected {variable}(time, lndgrid) in "
                                               "mm/s in a CTSM history file (add it with hist_fincl)")
        var = nc.variables[variable]
        units = str(getattr(var, "units", ""))
        if units.strip() not in FLUX_UNITS:
            raise InputFormatError(path, None, f"{variable} has units {units!r}; expected a water flux in mm/s "
                                               f"(one of {', '.join(FLUX_UNITS)})")
        grid = _grid_dims(path, tuple(var.dimensions), variable)
        days, tunits, calendar = _interval_starts(path, nc)
        values = np.ma.filled(np.ma.asarray(var[...], dtype="float64"), np.nan).reshape(len(days), -1)
        values[np.abs(values) >= 1e30] = np.nan  # CTSM's fill value where the mask was not set
        return {"days": days, "units": tunits, "calendar": calendar, "values": values, "var_units": units,
                "grid": grid, "area": _cell_field(nc, "area", grid), "landfrac": _cell_field(nc, "landfrac", grid),
                "lon": _cell_field(nc, "lon", grid), "lat": _cell_field(nc, "lat", grid)}


def read_history_runoff(paths: str | os.PathLike | Sequence[str | os.PathLike],
                        variable: str = "QRUNOFF") -> HistoryRunoff:
    """Read one daily variable of CTSM history files into ``(time, cell)`` values.

    Parameters
    ----------
    paths : path-like or sequence of path-like
        One file, or several files of the same stream (e.g. one ``h1`` file per year); they are
        put in time order by their first day.
    variable : str
        The variable, a water flux in mm/s (default ``QRUNOFF``, total liquid runoff).

    Returns
    -------
    HistoryRunoff
        Values in the file's units (mm/s), dates of the interval starts, cell areas and land
        fractions.

    Raises
    ------
    DataNotFoundError
        No file given, or a file does not exist.
    InputFormatError
        Naming the file: not netCDF; no ``variable``; its units are not mm/s; it is not
        ``(time, lndgrid)``, ``(time, lat, lon)`` or ``(time, gridcell)``; no ``time`` in
        ``days since ...``; a calendar not in :data:`CALENDARS`; files with different grids or
        calendars; days missing (a gap) or repeated within or between files.
    """
    files = [str(paths)] if isinstance(paths, (str, os.PathLike)) else [str(p) for p in paths]
    if not files:
        raise DataNotFoundError(f"no history files given for {variable}")
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise DataNotFoundError(f"history file(s) not found: {', '.join(missing)}")
    parts = [(f, _read_one(f, variable)) for f in files]
    first_file, first = parts[0]
    for f, p in parts[1:]:
        if p["calendar"] != first["calendar"]:
            raise InputFormatError(f, None, f"calendar {p['calendar']!r} differs from {first['calendar']!r} of "
                                            f"{first_file}")
        if p["values"].shape[1] != first["values"].shape[1] or p["grid"] != first["grid"]:
            raise InputFormatError(f, None, f"grid {p['grid']} of {p['values'].shape[1]} cells differs from "
                                            f"{first['grid']} of {first['values'].shape[1]} cells in {first_file}")
    import cftime

    ref = "days since 0001-01-01 00:00:00"
    for f, p in parts:  # every file on one day count, so files with different reference dates line up
        dates = cftime.num2date(p["days"], p["units"], calendar=p["calendar"])
        p["abs"] = np.round(np.asarray(cftime.date2num(np.atleast_1d(dates), ref, calendar=p["calendar"]),
                                       dtype="float64")).astype("int64")
        if p["abs"].size and (np.diff(p["abs"]) != 1).any():
            k = int(np.flatnonzero(np.diff(p["abs"]) != 1)[0])
            raise InputFormatError(f, None, f"time is not consecutive days of the {p['calendar']} calendar: after "
                                            f"{dates[k]} comes {dates[k + 1]} (a gap or a repeated day)")
    parts.sort(key=lambda fp: int(fp[1]["abs"][0]) if fp[1]["abs"].size else 0)
    for (f0, p0), (f1, p1) in zip(parts, parts[1:], strict=False):
        if p0["abs"].size and p1["abs"].size and p1["abs"][0] != p0["abs"][-1] + 1:
            what = "a gap" if p1["abs"][0] > p0["abs"][-1] + 1 else "overlapping days"
            raise InputFormatError(f1, None, f"does not continue {f0} day by day ({what} between the files)")
    calendar = first["calendar"]
    all_days = np.concatenate([p["abs"] for _, p in parts]).astype("float64")
    return HistoryRunoff(
        files=tuple(f for f, _ in parts), variable=variable, units=first["var_units"], calendar=calendar,
        dates=_to_dates(first_file, all_days, ref, calendar),
        values=np.concatenate([p["values"] for _, p in parts], axis=0),
        area=first["area"], landfrac=first["landfrac"], lon=first["lon"], lat=first["lat"], grid_dims=first["grid"])


def write_history_file(path: str | os.PathLike, *, start: dt.date, values_mm_s: np.ndarray, reference: dt.date,
                       area_km2: Sequence[float], landfrac: Sequence[float], lon: Sequence[float],
                       lat: Sequence[float], variable: str = "QRUNOFF", units: str = "mm/s",
                       calendar: str = "noleap", case: str = "lsegeo", attrs: dict | None = None) -> Path:
    """Write a daily CTSM-style history file (``lndgrid`` layout) of one runoff variable.

    Parameters
    ----------
    path : path-like
        The file to write (netCDF-4 classic model, as CTSM's default ``pio`` output); written
        under a temporary name and renamed, so a reader never sees half a file.
    start : datetime.date
        The first day of ``values_mm_s`` (a date of ``calendar``).
    values_mm_s : numpy.ndarray
        ``(time, lndgrid)`` daily means, written as float32 with the fill value 1e36 for NaN.
    reference : datetime.date
        The date in ``time:units = "days since <reference> 00:00:00"`` (CTSM: the run's start).
    area_km2, landfrac, lon, lat : sequence of float
        ``(lndgrid,)`` cell area [km^2], land fraction [1] and centre [degrees].
    variable, units, calendar : str
        Name, units and time calendar written (tests write wrong ones on purpose).
    case : str
        ``case_id`` global attribute.
    attrs : dict, optional
        More global attributes.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import cftime
    import netCDF4

    values = np.asarray(values_mm_s, dtype="float64")
    nt, ncell = values.shape
    units_t = f"days since {reference.isoformat()} 00:00:00"
    t0 = float(cftime.date2num(cftime.datetime(start.year, start.month, start.day, calendar=calendar),
                               units_t, calendar=calendar))
    lower = t0 + np.arange(nt, dtype="float64")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with netCDF4.Dataset(tmp, "w", format="NETCDF4_CLASSIC") as nc:
        nc.createDimension("time", None)
        nc.createDimension("lndgrid", ncell)
        nc.createDimension("hist_interval", 2)
        nc.setncatts({"Conventions": "CF-1.0", "source": "Community Terrestrial Systems Model", "case_id": case,
                      "title": "CLM History file information", **dict(attrs or {})})
        t = nc.createVariable("time", "f8", ("time",))
        t.setncatts({"long_name": "time", "units": units_t, "calendar": calendar, "bounds": "time_bounds"})
        t[:] = lower + 1.0  # CTSM stamps a mean at the end of its interval
        tb = nc.createVariable("time_bounds", "f8", ("time", "hist_interval"))
        tb.setncatts({"long_name": "history time interval endpoints"})
        tb[:] = np.stack([lower, lower + 1.0], axis=1)
        dates = cftime.num2date(lower, units_t, calendar=calendar)
        mc = nc.createVariable("mcdate", "i4", ("time",))
        mc.long_name = "current date (YYYYMMDD)"
        mc[:] = np.array([d.year * 10000 + d.month * 100 + d.day for d in np.atleast_1d(dates)], dtype="int32")
        for name, data, u, long_name in (("lon", lon, "degrees_east", "coordinate longitude"),
                                         ("lat", lat, "degrees_north", "coordinate latitude"),
                                         ("area", area_km2, "km^2", "grid cell areas"),
                                         ("landfrac", landfrac, "1", "land fraction")):
            v = nc.createVariable(name, "f4", ("lndgrid",), fill_value=np.float32(1e36))
            v.setncatts({"long_name": long_name, "units": u})
            v[:] = np.asarray(data, dtype="float32")
        q = nc.createVariable(variable, "f4", ("time", "lndgrid"), fill_value=np.float32(1e36))
        q.setncatts({"long_name": "total liquid runoff not including correction for land use change",
                     "units": units, "cell_methods": "time: mean"})
        q[:] = np.ma.masked_invalid(values.astype("float32"))
    os.replace(tmp, path)
    return path
