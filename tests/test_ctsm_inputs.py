"""CTSM member inputs: edited parameter files and surface datasets, user_nl_clm lines, errors, atomicity."""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest

from lsegeo.design import latin_hypercube
from lsegeo.errors import InputFormatError
from lsegeo.io.ctsm_files import read_fields
from lsegeo.models.ctsm.inputs import fortran_real, member_edits, perturb_field, write_member_inputs
from lsegeo.models.ctsm.parameters import load_registry
from lsegeo.testing.ctsm import write_paramfile, write_surfdata


def _snapshot(path):
    """Format, dims, global attributes, and every variable's attributes and raw values."""
    with netCDF4.Dataset(path) as ds:
        ds.set_auto_maskandscale(False)
        return {"format": ds.data_model,
                "dims": {k: (len(d), d.isunlimited()) for k, d in ds.dimensions.items()},
                "attrs": {k: ds.getncattr(k) for k in ds.ncattrs()},
                "vars": {k: (v.dimensions, v.dtype.str, {a: v.getncattr(a) for a in v.ncattrs()}, np.array(v[...]))
                         for k, v in ds.variables.items()}}


def _same(a, b):
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def _assert_kept(old, new, changed):
    """Everything but the changed variables' values and the history attribute is identical."""
    assert new["format"] == old["format"] and new["dims"] == old["dims"]
    assert {k: v for k, v in new["attrs"].items() if k != "history"} == \
        {k: v for k, v in old["attrs"].items() if k != "history"}
    assert new["vars"].keys() == old["vars"].keys()
    for name, (dims, dtype, attrs, values) in old["vars"].items():
        ndims, ndtype, nattrs, nvalues = new["vars"][name]
        assert (ndims, ndtype) == (dims, dtype), name
        assert nattrs.keys() == attrs.keys() and all(_same(np.asarray(nattrs[k]), np.asarray(attrs[k]))
                                                     for k in attrs), name
        if name not in changed:
            assert _same(nvalues, values), name


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ctsm")
    return {"param": write_paramfile(d / "params.nc"), "surf": write_surfdata(d / "surf.nc", nlat=3, nlon=4),
            "surf1": write_surfdata(d / "surf1.nc", nlat=1, nlon=1, fmt="NETCDF4_CLASSIC", seed=3)}


# -- the real CLM5 parameter file --------------------------------------------------------------------

def test_real_clm5_paramfile_per_pft_fields(data_dir, tmp_path):
    base = data_dir / "ctsm" / "clm5_params.c171117.nc"
    values = {"medlynslope": 6.0, "kmax": 3e-8, "leafcn": 25.0}
    out = write_member_inputs(base, None, values, "5.1", tmp_path / "m")
    old, new = _snapshot(base), _snapshot(out.paramfile)
    assert new["format"] == "NETCDF3_CLASSIC" and len(new["vars"]) == len(old["vars"]) == 264
    _assert_kept(old, new, set(values))
    for name, target in values.items():
        o, n = old["vars"][name][3], new["vars"][name][3]
        assert n.mean() == pytest.approx(target, rel=1e-12)          # mean over all PFT entries
        nz = o != 0
        ratio = n[nz] / o[nz]
        assert np.allclose(ratio, target / o.mean(), rtol=1e-12)      # the pattern kept
        assert np.all(n[~nz] == 0)                                    # kmax of not_vegetated stays 0
    hist = new["attrs"]["history"]
    first = hist.splitlines()[0]
    assert "lsegeo" in first and "clm5_params.c171117.nc" in first and "medlynslope(pft) x" in first
    assert "kmax(segment,pft)" in first
    assert hist.endswith(old["attrs"]["history"])                     # prepended, the old history kept
    assert out.user_nl_clm[1:] == (f"paramfile = '{out.paramfile}'",)
    assert (tmp_path / "m" / "user_nl_clm").read_text().splitlines()[1] == f"paramfile = '{out.paramfile}'"


def test_real_clm5_paramfile_errors(data_dir, tmp_path):
    base = data_dir / "ctsm" / "clm5_params.c171117.nc"
    with pytest.raises(InputFormatError, match=r"clm5_params.c171117.nc: parameter file has no variable\(s\) fff"):
        write_member_inputs(base, None, {"fff": 1.0, "medlynslope": 5.0}, "5.1", tmp_path / "m")
    with pytest.raises(ValueError, match="outside its bounds"):
        write_member_inputs(base, None, {"medlynslope": 25.0}, "5.1", tmp_path / "m")
    assert not any(tmp_path.iterdir())                                # nothing half-written


def test_vegetated_pft_mean_leaves_pft0_out_of_the_mean(data_dir, tmp_path):
    base = data_dir / "ctsm" / "clm5_params.c171117.nc"
    out = write_member_inputs(base, None, {"medlynslope": 5.0}, "5.1", tmp_path / "m", pft_mean="vegetated")
    o = read_fields(base, ["medlynslope"])["medlynslope"].values
    n = read_fields(out.paramfile, ["medlynslope"])["medlynslope"].values
    assert n[1:].mean() == pytest.approx(5.0, rel=1e-12) and n.mean() != pytest.approx(5.0, rel=1e-6)
    assert np.allclose(n / o, 5.0 / o[1:].mean(), rtol=1e-12)        # index 0 scaled by the same factor


# -- the synthetic modern parameter file and surface dataset ------------------------------------------

def test_modern_paramfile_scalars_and_layouts(files, tmp_path):
    values = {"fff": 0.3, "baseflow_scalar": 0.02, "interception_fraction": 0.5,
              "precip_repartition_nonglc_all_rain_t": 3.5, "leafcn": 30.0}
    out51 = write_member_inputs(files["param"], None, values, "5.1", tmp_path / "v51")
    out54 = write_member_inputs(files["param"], None, values, "ctsm5.4.031", tmp_path / "v54")
    old = _snapshot(files["param"])
    n51, n54 = _snapshot(out51.paramfile), _snapshot(out54.paramfile)
    _assert_kept(old, n51, {"fff", "leafcn"})
    moved = {"fff", "leafcn", "baseflow_scalar", "interception_fraction", "precip_repartition_nonglc_all_rain_t",
             "precip_repartition_glc_all_rain_t", "precip_repartition_glc_all_snow_t",
             "precip_repartition_nonglc_all_snow_t"}
    _assert_kept(old, n54, moved)
    assert n51["format"] == n54["format"] == "NETCDF3_CLASSIC"
    assert n51["vars"]["fff"][3] == 0.3 and n51["vars"]["baseflow_scalar"][3] == 0.001   # 5.1: namelist
    assert n54["vars"]["baseflow_scalar"][3] == 0.02 and n54["vars"]["interception_fraction"][3] == 0.5
    # bound thresholds move by the master's shift (+1.5 from its default 2)
    assert n54["vars"]["precip_repartition_glc_all_snow_t"][3] == -0.5
    assert n54["vars"]["precip_repartition_nonglc_all_snow_t"][3] == 1.5
    assert out51.user_nl_clm == ("! lsegeo: CTSM 5.1 member inputs", f"paramfile = '{out51.paramfile}'",
                                 "interception_fraction = 0.5", "baseflow_scalar = 0.02",
                                 "precip_repartition_nonglc_all_rain_t = 3.5",
                                 "precip_repartition_glc_all_rain_t = 1.5",
                                 "precip_repartition_glc_all_snow_t = -0.5",
                                 "precip_repartition_nonglc_all_snow_t = 1.5")
    assert out54.user_nl_clm == ("! lsegeo: CTSM 5.4 member inputs", f"paramfile = '{out54.paramfile}'")
    leafcn_old, leafcn_new = old["vars"]["leafcn"][3], n51["vars"]["leafcn"][3]
    assert np.isnan(leafcn_new[0]) and np.nanmean(leafcn_new) == pytest.approx(30.0, rel=1e-12)
    assert np.allclose(leafcn_new[1:] / leafcn_old[1:], 30.0 / np.nanmean(leafcn_old), rtol=1e-12)
    assert n51["vars"]["leafcn"][2]["_FillValue"] != n51["vars"]["leafcn"][2]["_FillValue"]   # NaN fill kept


def test_surfdata_fields_scaled_on_land_cells(files, tmp_path):
    out = write_member_inputs(None, files["surf"], {"FMAX": 0.45, "zbedrock": 2.0}, "5.4", tmp_path / "m")
    old, new = _snapshot(files["surf"]), _snapshot(out.surfdata)
    assert new["format"] == "NETCDF3_64BIT_OFFSET" and new["dims"]["nlevsoi"] == (10, False)
    _assert_kept(old, new, {"FMAX", "zbedrock"})
    for name, target in (("FMAX", 0.45), ("zbedrock", 2.0)):
        o, n = old["vars"][name][3], new["vars"][name][3]
        assert n[0, 0] == o[0, 0]                                         # the ocean cell untouched
        land = np.ones(o.shape, bool)
        land[0, 0] = False
        assert n[land].mean() == pytest.approx(target, rel=1e-12)
        assert np.allclose(n[land] / o[land], target / o[land].mean(), rtol=1e-12)
    assert "History_Log" in new["attrs"] and new["attrs"]["history"].count("\n") == 0
    assert "surfdata:FMAX x" in new["attrs"]["history"]
    assert out.paramfile is None and out.user_nl_clm[1:] == (f"fsurdat = '{out.surfdata}'",)


def test_surfdata_cells_and_single_cell(files, tmp_path):
    cells = np.zeros((3, 4), bool)
    cells[2, 1:3] = True
    out = write_member_inputs(None, files["surf"], {"FMAX": 0.2}, "5.4", tmp_path / "sub", cells=cells)
    o = read_fields(files["surf"], ["FMAX"])["FMAX"].values
    n = read_fields(out.surfdata, ["FMAX"])["FMAX"].values
    assert n[cells].mean() == pytest.approx(0.2) and np.array_equal(n[~cells], o[~cells])
    one = write_member_inputs(None, files["surf1"], {"zbedrock": 3.7}, "5.4", tmp_path / "one")
    assert read_fields(one.surfdata, ["zbedrock"])["zbedrock"].values[0, 0] == 3.7   # exactly the value
    assert netCDF4.Dataset(one.surfdata).data_model == "NETCDF4_CLASSIC"


def test_surfdata_errors(tmp_path):
    no_grid = write_surfdata(tmp_path / "nogrid.nc", drop=("LATIXY",))
    no_fmax = write_surfdata(tmp_path / "nofmax.nc", drop=("FMAX",))
    with pytest.raises(InputFormatError, match="nogrid.nc: surface dataset has no LATIXY"):
        write_member_inputs(None, no_grid, {"FMAX": 0.3}, "5.4", tmp_path / "a")
    with pytest.raises(InputFormatError, match=r"nofmax.nc: surface dataset has no variable\(s\) FMAX"):
        write_member_inputs(None, no_fmax, {"FMAX": 0.3}, "5.4", tmp_path / "b")
    with pytest.raises(ValueError, match="no base surfdata file"):
        write_member_inputs(None, None, {"FMAX": 0.3}, "5.4", tmp_path / "c")
    with pytest.raises(ValueError, match=r"outside its bounds \[0.1, 0.9\]"):
        write_member_inputs(None, no_fmax, {"FMAX": 0.95}, "5.4", tmp_path / "d")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nofmax.nc", "nogrid.nc"]


def test_nothing_half_written_and_no_overwrite(files, tmp_path):
    no_fmax = write_surfdata(tmp_path / "nofmax.nc", drop=("FMAX",))
    # the parameter file is edited first; the surface dataset then fails: no member folder at all
    with pytest.raises(InputFormatError):
        write_member_inputs(files["param"], no_fmax, {"fff": 1.0, "FMAX": 0.3}, "5.4", tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nofmax.nc"]
    write_member_inputs(files["param"], None, {"fff": 1.0}, "5.4", tmp_path / "m")
    with pytest.raises(Exception, match="already exists"):
        write_member_inputs(files["param"], None, {"fff": 2.0}, "5.4", tmp_path / "m")
    again = write_member_inputs(files["param"], None, {"fff": 2.0}, "5.4", tmp_path / "m", overwrite=True)
    assert read_fields(again.paramfile, ["fff"])["fff"].values == 2.0
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["paramfile.nc", "user_nl_clm"]


def test_dims_that_disagree_with_the_registry(files, tmp_path):
    reg = load_registry()
    assert reg["kmax"].location("5.4").dims == ("segment", "pft")
    bad = tmp_path / "bad.nc"
    with netCDF4.Dataset(files["param"]) as src, netCDF4.Dataset(bad, "w", format="NETCDF3_CLASSIC") as dst:
        dst.createDimension("pft", 79)
        v = dst.createVariable("kmax", "f8", ("pft",))
        v[:] = src["kmax"][0]
    with pytest.raises(InputFormatError, match=r"kmax has dims \('pft',\); the registry expects \('segment', 'pft'\)"):
        write_member_inputs(bad, None, {"kmax": 1e-8}, "5.4", tmp_path / "m")


def test_helpers():
    new, mean, amount = perturb_field(np.array([1.0, 3.0, np.nan]), np.array([True, True, False]), 4.0,
                                      "additive")
    assert mean == 2.0 and amount == 2.0 and np.array_equal(new, [3.0, 5.0, np.nan], equal_nan=True)
    with pytest.raises(ValueError, match="mean is 0"):
        perturb_field(np.zeros(3), np.ones(3, bool), 1.0, "multiplicative")
    assert fortran_real(1e-5) == "1e-05" and fortran_real(2) == "2.0"
    with pytest.raises(ValueError):
        fortran_real(float("nan"))
    edits = member_edits({"precip_repartition_nonglc_all_rain_t": 1.0}, "5.1")
    assert {e.parameter: e.value for e in edits} == {
        "precip_repartition_nonglc_all_rain_t": 1.0, "precip_repartition_glc_all_rain_t": -1.0,
        "precip_repartition_glc_all_snow_t": -3.0, "precip_repartition_nonglc_all_snow_t": -1.0}
    with pytest.raises(KeyError):
        member_edits({"nope": 1.0}, "5.1")


def test_three_basin_five_member_design(tmp_path):
    """Item 2's "done": member inputs of a 3-basin, 5-member CTSM design, all passing the format checks."""
    reg = load_registry()
    space = reg.space(reg.final16, "5.4")
    design = latin_hypercube(space, 5, seed=7)                          # member 0 = the defaults
    param = write_paramfile(tmp_path / "params.nc")
    basins = {"01013500": write_surfdata(tmp_path / "s1.nc", nlat=1, nlon=1, seed=1),
              "01022500": write_surfdata(tmp_path / "s2.nc", nlat=2, nlon=2, seed=2),
              "01030500": write_surfdata(tmp_path / "s3.nc", nlat=2, nlon=3, seed=3, fmt="NETCDF4_CLASSIC")}
    old_param = _snapshot(param)
    for gauge, surf in basins.items():
        old_surf = _snapshot(surf)
        land = read_fields(surf, ["LANDFRAC_PFT"])["LANDFRAC_PFT"].values > 0
        for m, row in enumerate(design):
            values = dict(zip(space.names, row, strict=True))
            out = write_member_inputs(param, surf, values, "5.4", tmp_path / "members" / gauge / f"member{m:03d}")
            new_param, new_surf = _snapshot(out.paramfile), _snapshot(out.surfdata)
            param_vars = {reg[n].location("5.4").variable for n in values} | \
                {p.name for p in reg.bound("precip_repartition_nonglc_all_rain_t")}
            _assert_kept(old_param, new_param, param_vars)
            _assert_kept(old_surf, new_surf, {"FMAX", "zbedrock"})
            for name, value in values.items():
                loc = reg[name].location("5.4")
                if loc.kind == "param":
                    assert np.nanmean(new_param["vars"][loc.variable][3]) == pytest.approx(value, rel=1e-12)
                else:
                    assert new_surf["vars"][loc.variable][3][land].mean() == pytest.approx(value, rel=1e-12)
            assert out.user_nl_clm[1:] == (f"paramfile = '{out.paramfile}'", f"fsurdat = '{out.surfdata}'")
    assert len(list((tmp_path / "members").glob("*/member*/paramfile.nc"))) == 15
