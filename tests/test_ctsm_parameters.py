"""The CTSM parameter registry: the shipped table against the study's tables, layouts, validation."""

from __future__ import annotations

import csv
import math

import numpy as np
import pandas as pd
import pytest

from lsegeo.design import latin_hypercube
from lsegeo.errors import InputFormatError
from lsegeo.models.ctsm.parameters import LAYOUTS, layout_of, load_registry, read_registry

MOVED_5_3 = ("interception_fraction", "maximum_leaf_wetted_fraction", "upplim_destruct_metamorph")
MOVED_5_4 = ("baseflow_scalar", "precip_repartition_nonglc_all_rain_t", "precip_repartition_glc_all_rain_t",
             "precip_repartition_glc_all_snow_t", "precip_repartition_nonglc_all_snow_t")


@pytest.fixture(scope="module")
def reg():
    return load_registry()


def test_registry_holds_27_free_and_3_bound_parameters(reg):
    assert len(reg) == 30 and len(reg.free) == 27
    bound = [p.name for p in reg.parameters if p.bound_to]
    assert sorted(bound) == ["precip_repartition_glc_all_rain_t", "precip_repartition_glc_all_snow_t",
                             "precip_repartition_nonglc_all_snow_t"]
    assert {p.bound_to for p in reg.parameters if p.bound_to} == {"precip_repartition_nonglc_all_rain_t"}
    assert len(reg.final16) == 16


def test_log_scale_where_the_range_spans_two_decades(reg):
    for p in reg.parameters:
        spans = p.lower > 0 and p.upper / p.lower >= 100
        assert (p.scale == "log") == spans, p.name
    assert reg["baseflow_scalar"].scale == reg["fff"].scale == reg["hksat_sf"].scale == "log"


def test_table_matches_the_study_tables(reg, data_dir):
    sa = pd.read_csv(data_dir / "ctsm_camels" / "sa_parameter_table.csv")
    for row in sa.itertuples():
        p = reg[row.parameter]
        kind = {"Param": "param", "Namelist": "namelist", "Surfdata": "surfdata"}[row.source]
        assert p.location("5.1").kind == kind, row.parameter
        if pd.notna(row.default):
            assert math.isclose(p.default, float(row.default), rel_tol=1e-9)
            assert math.isclose(p.sa_lower, float(row.lower), rel_tol=1e-9)
            assert math.isclose(p.sa_upper, float(row.upper), rel_tol=1e-9)
    calib = pd.read_csv(data_dir / "ctsm_camels" / "calib_parameter_table_2410.csv", encoding="utf-8-sig")
    assert sorted(reg.final16) == sorted(calib["Parameter"])
    for row in calib.itertuples():
        p = reg[row.Parameter]
        assert (p.lower, p.upper) == (pytest.approx(row.Lower), pytest.approx(row.Upper))
        assert p.perturbation == row.Method.lower()
        assert p.rank2410 == row.Rank2410
    sets = pd.read_csv(data_dir / "ctsm_camels" / "sa_parameter_sets.csv").set_index("trial")
    space = reg.space(list(sets.columns), "5.1", bounds="sensitivity")
    x = sets.to_numpy()
    assert x.shape == (201, 27)
    assert np.all((x >= space.lower - 1e-12 * abs(space.lower)) & (x <= space.upper + 1e-12 * abs(space.upper)))


def test_locations_move_between_layouts(reg):
    for name in MOVED_5_3:
        assert [reg[name].location(v).kind for v in LAYOUTS] == ["namelist", "param", "param"]
    for name in MOVED_5_4:
        assert [reg[name].location(v).kind for v in LAYOUTS] == ["namelist", "namelist", "param"]
    assert reg["kmax"].location("5.4").dims == ("segment", "pft")
    assert reg["medlynslope"].location("5.1").dims == ("pft",)
    assert reg["fff"].location("5.3").dims == ()
    assert str(reg["FMAX"].location("5.4")) == "surfdata:FMAX"
    assert reg["baseflow_scalar"].location("ctsm5.4.024").kind == "namelist"
    assert reg["baseflow_scalar"].location("ctsm5.4.025").kind == "param"


@pytest.mark.parametrize(("tag", "layout"), [("5.1", "5.1"), ("ctsm5.1.dev120", None), ("ctsm5.2.005", "5.1"),
                                              ("ctsm5.3.009", "5.1"), ("ctsm5.3.010", "5.3"), ("5.4.024", "5.3"),
                                              ("ctsm5.4.025", "5.4"), ("ctsm6.0.000", "5.4"), ("ctsm5.0.000", None)])
def test_layout_of_tags(tag, layout):
    if layout is None:
        with pytest.raises(ValueError, match="CTSM version"):
            layout_of(tag)
    else:
        assert layout_of(tag) == layout


def test_parameter_space_for_a_subset_and_version(reg):
    space = reg.space(reg.final16, "ctsm5.4.030")
    assert space.name == "ctsm5.4-calibration" and space.names == reg.final16
    assert space["zbedrock"].default == 10.0          # the per-cell default 10.64 m, clipped
    assert space["fff"].scale == "log" and space["FMAX"].scale == "linear"
    assert "param:baseflow_scalar" in space["baseflow_scalar"].description
    assert "namelist:baseflow_scalar" in reg.space(["baseflow_scalar"], "5.1")["baseflow_scalar"].description
    x = latin_hypercube(space, 20, seed=1)
    assert np.all((x >= space.lower) & (x <= space.upper))
    sa = reg.space(version="5.1", bounds="sensitivity")
    assert len(sa) == 27 and sa["bsw_sf"].lower == 0.8
    with pytest.raises(ValueError, match="bound to"):
        reg.space(["precip_repartition_glc_all_snow_t"])
    with pytest.raises(KeyError, match="not a CTSM parameter"):
        reg.space(["nope"])


def test_check_value(reg):
    assert reg.check_value("fff", 2) == 2.0
    with pytest.raises(ValueError, match=r"outside its bounds \[0.001, 20.0\]"):
        reg.check_value("fff", 25.0)
    with pytest.raises(ValueError, match="bound to"):
        reg.check_value("precip_repartition_glc_all_rain_t", 0.0)
    # exp(log(upper)) of a log-scale parameter misses its bound by an ulp: taken as the bound
    wide = reg.with_bounds({"baseflow_scalar": (0.0005, 0.1)}, "a store")
    assert wide.check_value("baseflow_scalar", float(np.exp(np.log(0.0005) + (np.log(0.1) - np.log(0.0005))))) == 0.1
    with pytest.raises(ValueError, match="outside its bounds"):
        wide.check_value("baseflow_scalar", 0.1 * (1 + 1e-6))
    with pytest.raises(ValueError, match="from a store must be finite with lower < upper"):
        reg.with_bounds({"fff": (2.0, 1.0)}, "a store")
    with pytest.raises(ValueError, match=r"bounds from a store name \['fmax_typo'\], which are not free"):
        reg.with_bounds({"fmax_typo": (0.1, 0.9)}, "a store")
    with pytest.raises(ValueError, match="not free CTSM parameters"):  # a bound parameter follows its master
        reg.with_bounds({"precip_repartition_glc_all_rain_t": (0.0, 1.0)})


# -- validation of a broken table --------------------------------------------------------------------

def _table():
    from importlib import resources
    with resources.as_file(resources.files("lsegeo.data") / "ctsm_parameters.csv") as path:
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh))


def _write(tmp_path, rows, drop=(), rename=None):
    header = [c for c in rows[0] if c not in drop]
    if rename:
        header = [rename.get(c, c) for c in header]
    path = tmp_path / "table.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in rows:
            vals = [v for k, v in r.items() if k not in drop]
            w.writerow(vals)
    return path


def _row_line(rows, name):
    return 2 + [r["name"] for r in rows].index(name)


@pytest.mark.parametrize(("name", "column", "value", "message"), [
    ("fff", "where_5.3", "paramfile:fff", "unknown location kind 'paramfile'"),
    ("fff", "lower", "30", "lower 30.0 must be below upper 20.0"),
    ("e_ice", "default", "25", "default 25.0 is outside"),
    ("d_max", "scale", "logarithmic", "expected one of linear, log"),
    ("slopebeta", "scale", "log", "log scale needs positive bounds"),
    ("precip_repartition_glc_all_snow_t", "bound_to", "snow_master", "unknown parameter 'snow_master'"),
    ("precip_repartition_glc_all_snow_t", "bound_to", "fff", "must both be additive"),
    ("precip_repartition_glc_all_snow_t", "upper", "3", "shifted by the difference of the defaults"),
    ("kmax", "where_5.4", "param:kmax(segment,patch)", "dimensions must be some of"),
    ("medlynslope", "lower", "abc", "expected a number"),
    ("FMAX", "where_5.1", "param:FMAX", "needs a surfdata location"),
])
def test_bad_rows_are_named(tmp_path, name, column, value, message):
    rows = _table()
    line = _row_line(rows, name)
    rows[line - 2][column] = value
    with pytest.raises(InputFormatError, match=message) as err:
        read_registry(_write(tmp_path, rows))
    assert err.value.line == line
    if "column" in str(err.value):
        assert repr(column) in str(err.value)


def test_per_cell_default_may_lie_outside_the_bounds(tmp_path):
    rows = _table()
    zb = rows[_row_line(rows, "zbedrock") - 2]
    assert float(zb["default"]) > float(zb["upper"]) and zb["default_kind"] == "per_cell"
    assert read_registry(_write(tmp_path, rows))["zbedrock"].default == pytest.approx(10.63966906)
    zb["default_kind"] = "global"
    with pytest.raises(InputFormatError, match="only a 'per_cell' default"):
        read_registry(_write(tmp_path, rows))


def test_bad_header(tmp_path):
    rows = _table()
    with pytest.raises(InputFormatError, match="missing column.*perturbation"):
        read_registry(_write(tmp_path, rows, drop=("perturbation",)))
    with pytest.raises(InputFormatError, match="where_5.2: unknown CTSM layout"):
        read_registry(_write(tmp_path, rows, rename={"where_5.3": "where_5.2"}))
    with pytest.raises(InputFormatError, match="missing column.*where_5.4"):
        read_registry(_write(tmp_path, rows, drop=("where_5.4",)))
    rows[1]["name"] = rows[0]["name"]
    with pytest.raises(InputFormatError, match="repeats line 2"):
        read_registry(_write(tmp_path, rows))
