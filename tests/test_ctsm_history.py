"""CTSM daily history files: reading, cells to basin, noleap to standard calendar, bad files."""

from __future__ import annotations

import datetime as dt

import netCDF4
import numpy as np
import pandas as pd
import pytest

from lsegeo.errors import DataNotFoundError, InputFormatError
from lsegeo.io.ctsm_history import read_history_runoff, write_history_file
from lsegeo.models.ctsm.history import align_to_days, basin_daily_runoff, basin_runoff, cell_weights
from lsegeo.testing.ctsm_standin import noleap_days

AREA, LANDFRAC = (100.0, 300.0, 50.0), (1.0, 0.5, 0.0)
LON, LAT = (-70.0, -69.9, -69.8), (45.0, 45.0, 45.0)


def _write(path, start, values, *, reference=dt.date(2000, 1, 1), **kw):
    return write_history_file(path, start=start, values_mm_s=values, reference=reference, area_km2=AREA,
                              landfrac=LANDFRAC, lon=LON, lat=LAT, **kw)


def _series(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(1e-6, 5e-5, size=(n, 3))  # mm/s


@pytest.fixture
def two_years(tmp_path):
    """Noleap h1 files for 2000 and 2001 (365 days each), reference 2000-01-01."""
    values = _series(730)
    f1 = _write(tmp_path / "case.clm2.h1.2000-01-01-00000.nc", dt.date(2000, 1, 1), values[:365])
    f2 = _write(tmp_path / "case.clm2.h1.2001-01-01-00000.nc", dt.date(2001, 1, 1), values[365:])
    return [f2, f1], values  # out of order on purpose


def test_written_file_has_ctsm_layout(two_years):
    (f2, f1), _ = two_years
    with netCDF4.Dataset(f1) as nc:
        assert nc.data_model == "NETCDF4_CLASSIC"
        assert nc.variables["time"].calendar == "noleap"
        assert nc.variables["time"].units == "days since 2000-01-01 00:00:00"
        assert nc.variables["QRUNOFF"].dtype == np.float32 and nc.variables["QRUNOFF"].units == "mm/s"
        assert nc.variables["QRUNOFF"].dimensions == ("time", "lndgrid")
        assert nc.variables["time"][0] == 1.0  # the first mean is stamped at the end of its day
        assert list(nc.variables["time_bounds"][0]) == [0.0, 1.0]
        assert nc.variables["mcdate"][59] == 20000301  # day 60 of a noleap year is 1 March


def test_read_orders_files_and_dates_are_interval_starts(two_years):
    files, values = two_years
    h = read_history_runoff(files)
    assert h.files[0].endswith("2000-01-01-00000.nc") and h.calendar == "noleap" and h.n_cells == 3
    assert len(h.dates) == 730 and h.dates[0] == pd.Timestamp("2000-01-01")
    assert h.dates[-1] == pd.Timestamp("2001-12-31")
    assert pd.Timestamp("2000-02-29") not in h.dates and h.dates[59] == pd.Timestamp("2000-03-01")
    np.testing.assert_allclose(h.values, values.astype("float32"), rtol=0)
    np.testing.assert_allclose(h.area, AREA) and np.testing.assert_allclose(h.landfrac, LANDFRAC)


def test_basin_runoff_weights_units_and_leap_day(two_years):
    files, values = two_years
    h = read_history_runoff(files)
    w = cell_weights(h)
    np.testing.assert_allclose(w, [100 / 250, 150 / 250, 0.0])  # area x landfrac, normalised
    s = basin_daily_runoff(h)
    v32 = values.astype("float32").astype("float64")
    np.testing.assert_allclose(s.to_numpy(), (v32 * w).sum(axis=1) * 86400.0, rtol=1e-12)
    days = pd.date_range("2000-02-27", "2000-03-02")
    q = align_to_days(s, days, "noleap")
    assert np.isnan(q[2]) and np.isfinite(np.delete(q, 2)).all()  # 29 February: not simulated -> NaN
    assert q[3] == s[pd.Timestamp("2000-03-01")] == s.iloc[59]  # 1 March is the noleap day of the same name
    given = basin_runoff(files, days, weights=[0.0, 0.0, 1.0])  # a cell of no land, by the caller's weights
    np.testing.assert_allclose(given[[0, 1, 3, 4]], v32[[57, 58, 59, 60], 2] * 86400.0)


def test_fill_values_in_a_weighted_cell_give_nan_not_a_partial_mean(tmp_path):
    values = _series(10)
    values[4, 1] = np.nan  # weighted cell
    values[:, 2] = np.nan  # a cell without land: weight 0, ignored
    f = _write(tmp_path / "h.nc", dt.date(2000, 1, 1), values)
    s = basin_daily_runoff(read_history_runoff(f))
    assert np.isnan(s.iloc[4]) and np.isfinite(s.drop(s.index[4])).all()


def test_standard_calendar_keeps_feb_29(tmp_path):
    f = _write(tmp_path / "h.nc", dt.date(2000, 2, 27), _series(5), calendar="standard")
    days = pd.date_range("2000-02-27", "2000-03-02")
    q = basin_runoff(f, days)
    assert np.isfinite(q).all()


@pytest.mark.parametrize("kind, match", [
    ("variable", "no variable 'QRUNOFF'"),
    ("units", "units 'm3/s'; expected a water flux in mm/s"),
    ("calendar", "calendar 'julian'; expected one of noleap"),
])
def test_bad_files_are_named_with_what_was_expected(tmp_path, kind, match):
    kw = {"variable": {"variable": "QOVER"}, "units": {"units": "m3/s"}, "calendar": {"calendar": "julian"}}[kind]
    f = _write(tmp_path / f"bad_{kind}.nc", dt.date(2000, 1, 1), _series(5), **kw)
    with pytest.raises(InputFormatError, match=match) as err:
        read_history_runoff(f)
    assert str(f) in str(err.value)


def test_gaps_overlaps_and_short_runs_are_errors(tmp_path):
    a = _write(tmp_path / "a.nc", dt.date(2000, 1, 1), _series(10))
    gap = _write(tmp_path / "gap.nc", dt.date(2000, 1, 12), _series(5))  # 11 January missing
    with pytest.raises(InputFormatError, match="a gap") as err:
        read_history_runoff([a, gap])
    assert "gap.nc" in str(err.value)
    over = _write(tmp_path / "over.nc", dt.date(2000, 1, 10), _series(5))
    with pytest.raises(InputFormatError, match="overlapping days"):
        read_history_runoff([a, over])
    other_ref = _write(tmp_path / "b.nc", dt.date(2000, 1, 11), _series(3), reference=dt.date(1990, 6, 1))
    assert len(read_history_runoff([a, other_ref]).dates) == 13  # different 'days since' line up by date
    with pytest.raises(InputFormatError, match=r"does not cover 2 of the 12 days .* first 2000-01-11, 2000-01-12"):
        basin_runoff(a, pd.date_range("2000-01-01", "2000-01-12"))
    with pytest.raises(DataNotFoundError, match="not found"):
        read_history_runoff([tmp_path / "absent.nc"])
    with pytest.raises(InputFormatError, match="3 grid cells"):
        basin_runoff(a, pd.date_range("2000-01-01", "2000-01-05"), weights=[1.0, 1.0])


def test_repeated_day_inside_one_file_is_an_error(tmp_path):
    f = _write(tmp_path / "rep.nc", dt.date(2000, 1, 1), _series(4))
    with netCDF4.Dataset(f, "a") as nc:
        nc.variables["time_bounds"][2, :] = [1.0, 2.0]  # the third mean claims the second day again
    with pytest.raises(InputFormatError, match="not consecutive days of the noleap calendar"):
        read_history_runoff(f)


def test_noleap_days_skip_feb_29():
    d = noleap_days("2000-02-27", "2000-03-01")
    assert list(d.strftime("%m-%d")) == ["02-27", "02-28", "03-01"]
