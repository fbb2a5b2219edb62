"""Readers of the CAMELS text files: real files, and malformed copies that must be rejected."""

from __future__ import annotations

import numpy as np
import pytest

from lsegeo.errors import DataNotFoundError, InputFormatError, UnknownBasinError
from lsegeo.ingest.camels import select_basins
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
