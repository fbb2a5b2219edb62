"""Readers of the CAMELS text files: real files, and malformed copies that must be rejected."""

from __future__ import annotations

import bz2

import numpy as np
import pytest

from lsegeo.errors import DataNotFoundError, InputFormatError, UnknownBasinError
from lsegeo.ingest.camels import area_disagreement, check_areas, select_basins
from lsegeo.io.camels import CamelsLayout, read_attributes, read_forcing, read_streamflow
from tests.conftest import forcing_lines, write_forcing_lines


def test_read_real_forcing_file(camels):
    f = read_forcing(camels.forcing_path("01013500"))
    assert (f.lat, f.elev, f.area_m2) == (46.84, 353.0, 2260093113.0)
    assert f.data.index[0].date().isoformat() == "1980-01-01"
    assert f.data.index[-1].date().isoformat() == "2014-12-31"
    assert len(f.data) == 12784
    assert f.data.loc["1980-01-01", "tmin"] == -16.30
    assert list(f.data.columns) == ["prcp", "tmax", "tmin", "srad", "vp", "dayl"]


@pytest.fixture
def good_lines(camels):
    return forcing_lines(camels, "01022500", 40)


def _bad(tmp_path, lines):
    return write_forcing_lines(tmp_path / "01022500_lump_cida_forcing_leap.txt.bz2", lines)


@pytest.mark.parametrize(
    "edit, line, words",
    [
        (lambda L: L.__setitem__(9, L[9] + " 1.0"), 10, "found 12"),
        (lambda L: L.__setitem__(12, " ".join(L[12].split()[:-1])), 13, "found 10"),
        (lambda L: L.__setitem__(15, L[15].replace(L[15].split()[5], "abc", 1)), 16, "'abc' in column 'prcp(mm/day)'"),
        (lambda L: L.__setitem__(7, L[7].replace(L[7].split()[8], "nan", 1)), 8, "not a finite number"),
        (lambda L: L.pop(20), 21, "date gap: 1980-01-18 follows 1980-01-16"),
        (lambda L: L.insert(21, L[20]), 22, "duplicate date 1980-01-17"),
        (lambda L: L.__setitem__(1, "high"), 2, "expected the elevation as a number"),
        (lambda L: L.__setitem__(3, L[3].replace("prcp", "precip")), 4, "expected the column header"),
        (lambda L: L.__setitem__(25, L[25].replace(" 01 ", " 13 ", 1)), 26, "do not form a valid date"),
    ],
    ids=["extra-column", "missing-column", "non-numeric", "nan-cell", "gap", "duplicate", "header-value",
         "column-header", "invalid-date"],
)
def test_malformed_forcing_names_file_and_line(tmp_path, good_lines, edit, line, words):
    lines = list(good_lines)
    edit(lines)
    path = _bad(tmp_path, lines)
    with pytest.raises(InputFormatError) as info:
        read_forcing(path)
    assert info.value.path == str(path)
    assert info.value.line == line
    assert words in str(info.value)
    assert f"{path}, line {line}" in str(info.value)


def test_truncated_forcing_file(tmp_path, good_lines):
    with pytest.raises(InputFormatError, match="expected 3 header values"):
        read_forcing(_bad(tmp_path, good_lines[:3]))


def test_attributes_all_gauges_typed(camels):
    a = read_attributes(camels)
    assert len(a) == 671 and a.index.is_unique
    assert all(len(g) == 8 for g in a.index)
    assert a.loc["01013500", "dom_land_cover"] == "Mixed Forests"  # leading blanks stripped
    assert a.loc["01013500", "huc_02"] == "01"
    assert a["geol_1st_class"].map(type).eq(str).all()
    assert np.isnan(a.loc["01013500", "q_mean"])  # withheld gauge: no signatures
    assert a["p_mean"].dtype == np.float64 and not a["p_mean"].isna().any()
    assert a.attrs["table"]["geol_porostiy"] == "geol"


def test_streamflow_masks_missing(camels):
    q = read_streamflow(camels)
    assert q.shape == (12784, 536)
    assert (q.min() >= 0).all()
    assert q.isna().sum().sum() > 0  # -999 and empty cells became NaN
    assert "01013500" not in q.columns  # withheld


def test_unknown_gauge_ids(camels):
    a = read_attributes(camels)
    with pytest.raises(UnknownBasinError, match="unknown gauge id '99999999'"):
        select_basins(camels, a, ["01013500", "99999999"])
    with pytest.raises(UnknownBasinError, match="8-digit"):
        select_basins(camels, a, ["1013500"])
    with pytest.raises(DataNotFoundError, match="02464000_lump_cida_forcing_leap.txt.bz2"):
        select_basins(camels, a, ["02464000"])  # streamflow but no forcing


def test_forcing_file_of_unknown_gauge(tmp_path, mini_source, camels, good_lines):
    root = tmp_path / "camels_us"
    (root / "forcing" / "daymet").mkdir(parents=True)
    (root / "attributes").symlink_to(mini_source / "camels_us" / "attributes")
    write_forcing_lines(root / "forcing" / "daymet" / "12345678_lump_cida_forcing_leap.txt.bz2", good_lines)
    layout = CamelsLayout(root)
    with pytest.raises(UnknownBasinError, match="unknown gauge id '12345678'"):
        select_basins(layout, read_attributes(layout), None)


def test_missing_data_dir_names_paths(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        CamelsLayout.find(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)
    assert "camels_us" in str(info.value)


# -- numbers that cannot be: physically impossible forcing values, short rows, missing gauges ---------

_COL = {"dayl": 4, "prcp": 5, "srad": 6, "tmax": 8, "tmin": 9, "vp": 10}


def _set_cells(lines, i, **values):
    """Set cells of line index ``i`` (0-based: line ``i + 1`` of the file) by variable name."""
    cells = lines[i].split()
    for v, x in values.items():
        cells[_COL[v]] = x
    lines[i] = " ".join(cells)


@pytest.mark.parametrize(
    "i, values, variable, shown, words",
    [
        (17, {"tmax": "-999.00", "tmin": "-999.00"}, "tmax", "-999", "missing-value code"),
        (9, {"tmin": "-9999"}, "tmin", "-9999", "missing-value code"),
        (22, {"tmax": "75.30"}, "tmax", "75.3", "expected -90 to 60 degC"),
        (30, {"tmin": "-95.00"}, "tmin", "-95", "expected -90 to 60 degC"),
        (11, {"prcp": "-0.50"}, "prcp", "-0.5", "expected 0 to inf mm day-1"),
        (13, {"srad": "-12.00"}, "srad", "-12", "expected 0 to 1361 W m-2"),
        (14, {"vp": "-3.00"}, "vp", "-3", "expected 0 to 20000 Pa"),
        (15, {"dayl": "90000.00"}, "dayl", "90000", "expected 0 to 86400 s"),
    ],
    ids=["tmax-tmin-999", "tmin-9999", "tmax-75", "tmin-minus95", "prcp-negative", "srad-negative",
         "vp-negative", "dayl-over-a-day"],
)
def test_impossible_forcing_value_names_file_line_variable_value(tmp_path, good_lines, i, values, variable,
                                                                 shown, words):
    lines = list(good_lines)
    _set_cells(lines, i, **values)
    path = _bad(tmp_path, lines)
    with pytest.raises(InputFormatError) as info:
        read_forcing(path)
    assert info.value.path == str(path)
    assert info.value.line == i + 1
    message = str(info.value)
    assert f"{path}, line {i + 1}: {variable} " in message
    assert f"= {shown} " in message and "not physically possible" in message
    assert words in message


def test_impossible_values_reported_first_by_line_and_counted(tmp_path, good_lines):
    lines = list(good_lines)
    _set_cells(lines, 30, prcp="-1.00")
    _set_cells(lines, 20, srad="-2.00", vp="-1.00")
    with pytest.raises(InputFormatError) as info:
        read_forcing(_bad(tmp_path, lines))
    assert info.value.line == 21 and "3 value(s) of this file are outside their ranges" in str(info.value)


def test_tmin_above_tmax_is_read_as_is(tmp_path, good_lines):
    """The reader keeps tmin > tmax (it occurs in real Daymet files); the ingest repairs and counts it."""
    lines = list(good_lines)
    _set_cells(lines, 10, tmax="-3.00", tmin="1.50")
    f = read_forcing(_bad(tmp_path, lines))
    assert (f.data["tmax"].iloc[6], f.data["tmin"].iloc[6]) == (-3.0, 1.5)


def test_real_forcing_has_tmin_above_tmax(camels):
    """12048000 is one of 98 CAMELS basins whose Daymet file has days with tmin > tmax (741 days)."""
    f = read_forcing(camels.forcing_path("12048000"))
    assert int((f.data["tmin"] > f.data["tmax"]).sum()) == 741


def _flow_layout(tmp_path, camels, edit=None, n_rows=40):
    """A camels_us tree whose streamflow table is the first ``n_rows`` days of the real one, edited."""
    root = tmp_path / "camels_us"
    (root / "streamflow").mkdir(parents=True)
    with bz2.open(camels.streamflow_table, "rt") as f:
        lines = [next(f).rstrip("\n") for _ in range(n_rows + 1)]
    if edit:
        edit(lines)
    path = root / "streamflow" / camels.streamflow_table.name
    with bz2.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    return CamelsLayout(root), path


def _cells(line, j, value):
    cells = line.split(",")
    cells[j] = value
    return ",".join(cells)


@pytest.mark.parametrize(
    "edit, line, words",
    [
        (lambda L: L.__setitem__(12, ",".join(L[12].split(",")[:200])), 13,
         "found 200 comma-separated cell(s), expected 537 as in the header (date and 536 gauges); "
         "the row is cut short"),
        (lambda L: L.__setitem__(7, L[7] + ",1.0"), 8, "found 538 comma-separated cell(s)"),
        (lambda L: L.__setitem__(20, _cells(L[20], 3, "-5.00")), 21, "is -5 cfs: a flow cannot be negative"),
        (lambda L: L.__setitem__(25, _cells(L[25], 3, "-9999.00")), 26, "only missing-value code is -999"),
        (lambda L: L.__setitem__(18, _cells(L[18], 2, "NA")), 19, "cell 'NA' of gauge"),
        (lambda L: L.insert(10, ""), 11, "found 1 comma-separated cell(s)"),
    ],
    ids=["short-row", "long-row", "negative", "other-code", "NA-text", "empty-line"],
)
def test_malformed_streamflow_names_file_and_line(tmp_path, camels, edit, line, words):
    layout, path = _flow_layout(tmp_path, camels, edit)
    with pytest.raises(InputFormatError) as info:
        read_streamflow(layout)
    assert info.value.path == str(path) and info.value.line == line
    assert words in str(info.value)


def test_streamflow_missing_code_and_empty_cells_masked(tmp_path, camels):
    gauges = None

    def edit(lines):
        nonlocal gauges
        gauges = lines[0].split(",")
        lines[5] = _cells(lines[5], 1, "-999.00")
        lines[6] = _cells(lines[6], 1, "")
        lines[6] = _cells(lines[6], 2, "-999.00")

    layout, _ = _flow_layout(tmp_path, camels, edit)
    q, code = read_streamflow(layout, with_codes=True)
    q0, code0 = read_streamflow(_flow_layout(tmp_path / "as_is", camels)[0], with_codes=True)
    assert q.shape == (40, 536) and code.shape == q.shape
    assert np.isnan(q[gauges[1]].iloc[4]) and np.isnan(q[gauges[1]].iloc[5]) and np.isnan(q[gauges[2]].iloc[5])
    assert bool(code[gauges[1]].iloc[4]) and not bool(code[gauges[1]].iloc[5]) and bool(code[gauges[2]].iloc[5])
    assert int(code.to_numpy().sum()) == int(code0.to_numpy().sum()) + 2
    assert int(q.isna().to_numpy().sum()) == int(q0.isna().to_numpy().sum()) + 3
    assert (read_streamflow(layout).fillna(-1) == q.fillna(-1)).all().all()


def _attributes_layout(tmp_path, camels, table, edit):
    """A camels_us tree whose attribute table ``table`` is the real one, edited line by line."""
    root = tmp_path / "camels_us"
    (root / "attributes").mkdir(parents=True)
    for f in camels.attributes_dir.glob("camels_*.txt"):
        (root / "attributes" / f.name).symlink_to(f)
    target = root / "attributes" / f"camels_{table}.txt"
    lines = target.read_text().splitlines()
    target.unlink()
    edit(lines)
    target.write_text("\n".join(lines) + "\n")
    return CamelsLayout(root), target


def test_gauge_missing_from_topo_names_gauge_and_file(tmp_path, camels):
    layout, path = _attributes_layout(tmp_path, camels, "topo", lambda L: L.pop(3))  # 01030500
    with pytest.raises(InputFormatError) as info:
        read_attributes(layout)
    assert info.value.path == str(path)
    assert "gauge 01030500 of camels_name.txt has no row here" in str(info.value)


def test_withheld_gauges_may_lack_hydro_rows(camels):
    a = read_attributes(camels)
    assert a["q_mean"].isna().sum() == 135 and not a["area_gages2"].isna().any()
    assert a.attrs["line"]["topo"]["01013500"] == 2 and a.attrs["line"]["topo"]["01030500"] == 4


def test_missing_area_gages2_names_gauge_line_and_file(tmp_path, camels):
    def edit(lines):
        cells = lines[3].split(";")  # 01030500
        cells[5] = "NA"
        lines[3] = ";".join(cells)

    layout, path = _attributes_layout(tmp_path, camels, "topo", edit)
    a = read_attributes(layout)
    np.testing.assert_allclose(check_areas(layout, a, ["01022500", "01031500"]), [573.6, 769.05])
    with pytest.raises(InputFormatError) as info:
        check_areas(layout, a, ["01022500", "01030500"])
    assert info.value.path == str(path) and info.value.line == 4
    assert "gauge 01030500 has area_gages2 = nan: expected a positive area in km2" in str(info.value)


def test_area_disagreement():
    rel = area_disagreement(np.array([100.0, 100.0, 100.0]), np.array([104.0, 60.0, np.nan]),
                            np.array([97.0, 101.0, np.nan]))
    np.testing.assert_allclose(rel[:2], [0.04, 0.40])
    assert np.isnan(rel[2])
