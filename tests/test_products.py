"""Parameter products: CF/ACDD metadata, zarr + netCDF maps, CTSM files, lineage (lsegeo.products).

Small synthetic products in the regionalized layout (a 4-basin domain and a 3 x 4 grid, K = 3
sets) are written to real files and read back; the IOOS compliance-checker runs its CF-1.11 and
ACDD-1.3 checks on the netCDF files; the CTSM files are written from the synthetic parameter file
and surface datasets of :mod:`lsegeo.testing.ctsm`.
"""

from __future__ import annotations

import csv
import json

import netCDF4
import numpy as np
import pytest
import xarray as xr

from lsegeo.errors import InputFormatError, StoreError
from lsegeo.models.ctsm.parameters import load_registry
from lsegeo.models.hbv.adapter import HBVModel
from lsegeo.products import (
    annotate,
    format_lineage,
    lineage,
    write_ctsm_basin_cases,
    write_ctsm_surfdata,
    write_distparams_stream,
    write_parameter_maps,
)
from lsegeo.products.ctsm import ctsm_file_provenance, record_ctsm_file
from lsegeo.provenance import append_upstream_history, product_attrs
from lsegeo.testing.ctsm import write_paramfile, write_surfdata

K = 3
INPUTS = {"basins_627.gpkg": "a" * 64, "ensemble.zarr": "b" * 64}
CTSM_NAMES = ["fff", "baseflow_scalar", "FMAX", "zbedrock", "interception_fraction", "medlynslope", "om_frac_sf"]
#: variables for which the CF standard name table has no name (ACDD's per-variable standard_name
#: recommendation cannot be met for them; docs/products.md)
NO_STANDARD_NAME = ("score_predicted", "score_lower", "score_upper", "applicability")


def _product(space, kind: str, seed: int = 0, *, lat0: float = 40.0, lon0: float = -100.0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    if kind == "basins":
        n = 4
        shape, dims = (n,), ("basin",)
        coords = {"basin": np.array([f"0{i + 1}0{i}3000" for i in range(n)], dtype=object),
                  "lat": ("basin", rng.uniform(30, 45, n)), "lon": ("basin", rng.uniform(-120, -70, n))}
        land = np.ones(shape, bool)
    else:
        shape, dims = (3, 4), ("lat", "lon")
        coords = {"lat": lat0 + 0.125 * np.arange(3), "lon": lon0 + 0.125 * np.arange(4)}
        land = np.ones(shape, bool)
        land[0, 0] = False
    ds = xr.Dataset(coords={**coords, "sample": np.arange(K)})
    for p in space.parameters:
        sets = p.from_unit(rng.uniform(0.05, 0.95, (K, *shape)))
        sets[:, ~land] = np.nan
        ds[p.name] = (dims, sets[0])
        ds[p.name + "_samples"] = (("sample", *dims), sets)
    for name in NO_STANDARD_NAME:
        ds[name] = (dims, np.where(land, rng.uniform(0.2, 0.8, shape), np.nan))
    ds["extrapolates"] = (dims, (rng.uniform(size=shape) > 0.7).astype(np.int8))
    if kind == "grid":
        ds["land_mask"] = (dims, land.astype(np.int8))
        ds["attribute_source"] = (dims, np.where(land, 2, 0).astype(np.int8))
    ds.attrs = {"lsegeo_method": "lse-optimise", "lsegeo_objective": "kgeprime", "lsegeo_period": "calibration",
                "lsegeo_domain_kind": kind, "lsegeo_domain_name": f"test_{kind}",
                "lsegeo_emulator_skill": json.dumps({"median_r2": 0.81}),
                "lsegeo_crossvalidation": json.dumps({"pub": {"median_kgeprime": 0.66}}), "lsegeo_model": "hbv"}
    return ds


def _attrs():
    return product_attrs(title="Regionalized HBV parameters (test)", summary="Synthetic product for the tests.",
                         step="regionalize", call="lsegeo regionalize test.yaml", config={"method": "lse-optimise"},
                         inputs=INPUTS, references="doi:10.1029/2024WR039525")


@pytest.fixture(scope="module")
def hbv_space():
    return HBVModel().space


@pytest.fixture(scope="module")
def ctsm_space():
    return load_registry().space(CTSM_NAMES, "5.4")


@pytest.fixture(scope="module", params=["basins", "grid"])
def written(request, hbv_space, tmp_path_factory):
    """Both formats of one product per domain kind, registered in a catalog."""
    out = tmp_path_factory.mktemp(f"maps_{request.param}")
    ds = _product(hbv_space, request.param)
    maps = write_parameter_maps(ds, out, f"hbv_{request.param}", space=hbv_space, attrs=_attrs(), inputs=INPUTS,
                                catalog=out / "catalog.yaml", time_coverage=("1999-10-01", "2008-09-30"))
    return request.param, ds, maps, out


def test_annotate_sets_cf_and_acdd_variable_metadata(hbv_space):
    grid = annotate(_product(hbv_space, "grid"), hbv_space, objective="kgeprime", period="calibration", model="hbv")
    fc = grid["FC"].attrs
    assert fc["units"] == "mm" and fc["long_name"] == hbv_space["FC"].description
    assert fc["valid_range"].dtype == np.float64 and fc["valid_range"].tolist() == [50.0, 700.0]
    assert fc["coverage_content_type"] == "modelResult" and fc["grid_mapping"] == "crs"
    assert grid["LP"].attrs["units"] == "1"
    assert "sample" in grid["FC_samples"].attrs["long_name"]
    assert grid["score_predicted"].attrs["long_name"] == ("predicted KGE' of the point estimate, calibration "
                                                         "period")
    assert grid["applicability"].attrs["coverage_content_type"] == "qualityInformation"
    assert grid["extrapolates"].attrs["flag_values"].tolist() == [0, 1]
    assert grid["attribute_source"].attrs["flag_meanings"].split() == ["none", "basin_attributes",
                                                                       "inverse_distance_weighted"]
    assert grid["crs"].attrs["grid_mapping_name"] == "latitude_longitude"
    assert grid["crs"].attrs["semi_major_axis"] == 6378137.0
    assert grid["lat"].attrs == {"standard_name": "latitude", "units": "degrees_north", "axis": "Y",
                                 "long_name": "cell-centre latitude"}
    assert grid["lon"].attrs["axis"] == "X"
    basins = annotate(_product(hbv_space, "basins"), hbv_space, objective="nse", period="test", model="hbv")
    assert basins["basin"].attrs["cf_role"] == "timeseries_id"
    assert basins["FC"].attrs["coordinates"] == "lat lon" and basins["FC"].attrs["grid_mapping"] == "crs"
    assert "axis" not in basins["lat"].attrs
    assert basins["score_upper"].attrs["long_name"].endswith("NSE of the point estimate, test period")
    assert "90% conformal interval" in basins["score_upper"].attrs["long_name"]
    assert "comment" not in basins["FC"].attrs
    # the interval's level is the product's own
    raw80 = _product(hbv_space, "basins")
    raw80.attrs["lsegeo_interval_confidence"] = 0.8
    assert "the 80% conformal" in annotate(raw80, hbv_space, objective="nse", period="test",
                                           model="hbv")["score_lower"].attrs["long_name"]
    # a mean-response product says that the scores are those of the mean flow of its samples
    raw = _product(hbv_space, "basins")
    raw.attrs["lsegeo_response"] = "mean"
    mean = annotate(raw, hbv_space, objective="kgeprime", period="calibration", model="hbv")
    assert mean["score_predicted"].attrs["long_name"] == ("predicted KGE' of the mean simulated flow of the K "
                                                         "samples, calibration period")
    assert "mean of the simulated flows of all K samples" in mean["FC"].attrs["comment"]
    raw.attrs["lsegeo_response"] = "median"
    with pytest.raises(InputFormatError, match="global attribute lsegeo_response 'median' is not one of"):
        annotate(raw, hbv_space, objective="kgeprime", period="calibration", model="hbv")


def test_annotate_refuses_values_outside_the_bounds_and_unknown_variables(hbv_space):
    ds = _product(hbv_space, "basins")
    ds["FC"][1] = 900.0
    with pytest.raises(InputFormatError, match=r"FC: 1 value\(s\) outside the parameter's bounds \[50.0, 700.0\]"):
        annotate(ds, hbv_space, objective="kgeprime", period="calibration", model="hbv")
    ds = _product(hbv_space, "basins")
    ds["mystery"] = ("basin", np.zeros(4))
    with pytest.raises(InputFormatError, match="mystery"):
        annotate(ds, hbv_space, objective="kgeprime", period="calibration", model="hbv")


def test_parameter_maps_read_back_from_zarr_netcdf_and_catalog(written):
    from lsegeo.io.catalog import open_catalog
    from lsegeo.io.stores import open_store, read_provenance

    kind, ds, maps, out = written
    assert maps.zarr == out / f"hbv_{kind}.zarr" and maps.netcdf == out / f"hbv_{kind}.nc"
    nc = xr.open_dataset(maps.netcdf)
    zr = open_store(maps.zarr, "parameters").load()
    for got in (nc, zr):
        np.testing.assert_array_equal(got["FC"].values, ds["FC"].values)
        np.testing.assert_array_equal(got["K2_samples"].values, ds["K2_samples"].values)
        assert got["FC"].attrs["units"] == "mm" and list(got["FC"].attrs["valid_range"]) == [50.0, 700.0]
        assert got.attrs["lsegeo_method"] == "lse-optimise"
        assert json.loads(got.attrs["lsegeo_inputs"]) == INPUTS
        assert got.attrs["geospatial_bounds_crs"] == "EPSG:4326"
        assert got.attrs["cdm_data_type"] == ("Grid" if kind == "grid" else "Point")
        assert got.attrs["history"].splitlines()[0].split(": ")[-1].startswith(f"write_parameter_maps hbv_{kind}")
    if kind == "basins":
        assert nc["basin"].values.tolist() == ds["basin"].values.tolist()
        assert netCDF4.Dataset(maps.netcdf).variables["basin"].dtype == np.dtype("S1")  # CF char array
    else:
        assert nc.attrs["geospatial_lat_resolution"] == "0.125 degrees"
        assert nc.attrs["geospatial_bounds"] == "POLYGON ((40 -100, 40 -99.625, 40.25 -99.625, 40.25 -100, 40 -100))"
        assert np.isnan(nc["FC"].values[0, 0]) and nc["land_mask"].dtype == np.int8
    assert nc.attrs["geospatial_lat_min"] == pytest.approx(float(ds["lat"].min()))
    assert read_provenance(maps.zarr)["entity"]
    assert {p.name for p in maps.sidecars} == {f"hbv_{kind}.zarr.prov.json", f"hbv_{kind}.nc.prov.json"}
    for sidecar in maps.sidecars:
        labels = {e.get("prov:label") for e in json.loads(sidecar.read_text())["entity"].values()}
        assert set(INPUTS) <= labels
    cat = open_catalog(out / "catalog.yaml")
    assert set(maps.catalog_entries) == {f"hbv_{kind}_parameters", f"hbv_{kind}_netcdf"}
    np.testing.assert_array_equal(cat[f"hbv_{kind}_netcdf"].read()["FC"].values, ds["FC"].values)
    np.testing.assert_array_equal(cat[f"hbv_{kind}_parameters"].read()["TT"].values, ds["TT"].values)


def _checker_failures(path, checker):
    from compliance_checker.runner import CheckSuite

    suite = CheckSuite()
    suite.load_all_available_checkers()
    nc = suite.load_dataset(str(path))
    try:
        groups, errors = suite.run_all(nc, [checker], skip_checks=[])[checker]
    finally:
        nc.close()
    result = suite.build_structure(checker, groups, str(path), 1)
    failed = {w: [(r.name, r.msgs) for r in result[f"{w}_priorities"] if r.value[0] < r.value[1]]
              for w in ("high", "medium")}
    return failed, errors


@pytest.mark.parametrize("kind", ["basins", "grid"])
def test_netcdf_passes_cf_and_acdd_checks_without_high_priority_failures(kind, hbv_space, tmp_path):
    # three parameters: the checker's time grows with the square of the number of variables
    space = hbv_space.subset(["TT", "FC", "K2"])
    ds = _product(space, kind)
    dims = ds["TT"].dims
    ids = np.array([f"0{i % 9 + 1}0{i % 7}3000" for i in range(ds["TT"].size)], dtype=object).reshape(ds["TT"].shape)
    if kind == "grid":
        ids[0, 0] = ""  # off land
    # the layers of the donor methods and lse-select: strings per target and per sample, an int64 member
    ds["donor_basin"] = (dims, ids)
    ds["donor_basin_samples"] = (("sample", *dims), np.stack([ids] * K))
    ds["selected_member"] = (dims, np.arange(ds["TT"].size, dtype=np.int64).reshape(ds["TT"].shape) - 1)
    maps = write_parameter_maps(ds, tmp_path, f"small_{kind}", space=space, attrs=_attrs(),
                                inputs=INPUTS, formats=["netcdf"], time_coverage=("1999-10-01", "2008-09-30"))
    cf, cf_errors = _checker_failures(maps.netcdf, "cf:1.11")
    assert not cf_errors, f"CF checks that crashed: {list(cf_errors)}"
    assert cf["high"] == [], f"CF-1.11 high: {cf['high']}; medium: {cf['medium']}"
    assert cf["medium"] == [], f"CF-1.11 medium: {cf['medium']}"
    acdd, acdd_errors = _checker_failures(maps.netcdf, "acdd:1.3")
    assert not acdd_errors
    # the only high-priority ACDD finding: no CF standard name exists for a model parameter, its
    # samples, a predicted score or the applicability distance (CF's checker rejects invented ones)
    no_name = {*space.names, *(n + "_samples" for n in space.names), *NO_STANDARD_NAME, "donor_basin",
               "donor_basin_samples", "selected_member"}
    other = [(name, msgs) for name, msgs in acdd["high"]
             if msgs != ["standard_name"] or name.split('"')[1] not in no_name]
    assert other == [], f"ACDD-1.3 high: {other}; medium: {acdd['medium']}"
    flagged = {name.split('"')[1] for name, _ in acdd["high"]}
    assert flagged >= no_name - {"donor_basin", "donor_basin_samples"}, no_name - flagged  # strings: not checked
    medium_names = {name for name, _ in acdd["medium"]}
    assert medium_names <= {"Global Attributes", "time_coverage_extents_match"}, acdd["medium"]
    missing = [m for name, msgs in acdd["medium"] if name == "Global Attributes" for m in msgs]
    assert all(m.split()[0].startswith(("creator_", "institution", "publisher_", "geospatial_vertical",
                                        "geospatial_bounds_vertical")) for m in missing), missing


@pytest.mark.parametrize("name", ["../escape", "/tmp/abs", "sub/dir", "..", ".hidden", ""])
def test_product_name_must_stay_in_the_output_folder(name, hbv_space, tmp_path):
    with pytest.raises(InputFormatError, match="inside the output folder") as err:
        write_parameter_maps(_product(hbv_space, "basins"), tmp_path / "out", name, space=hbv_space,
                             attrs=_attrs(), inputs=INPUTS)
    assert str(tmp_path / "out") in str(err.value)
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape.nc").exists()


def test_existing_product_refused_and_overwrite_replaces_only_lsegeo_files(hbv_space, tmp_path):
    ds = _product(hbv_space, "grid")
    first = write_parameter_maps(ds, tmp_path, "p", space=hbv_space, attrs=_attrs(), inputs=INPUTS)
    with pytest.raises(StoreError, match=r"p\.zarr already exists"):
        write_parameter_maps(ds, tmp_path, "p", space=hbv_space, attrs=_attrs(), inputs=INPUTS)
    with pytest.raises(StoreError, match=r"p\.nc already exists"):
        write_parameter_maps(ds, tmp_path, "p", space=hbv_space, attrs=_attrs(), inputs=INPUTS, formats=["netcdf"])
    old_id = xr.open_dataset(first.netcdf).attrs["id"]
    again = write_parameter_maps(ds, tmp_path, "p", space=hbv_space, attrs=_attrs(), inputs=INPUTS, overwrite=True)
    assert xr.open_dataset(again.netcdf).attrs["id"] != old_id
    foreign = write_paramfile(tmp_path / "q.nc")  # a netCDF file lsegeo's products did not write
    before = foreign.read_bytes()
    with pytest.raises(StoreError, match=r"q\.nc exists and was not written by lsegeo"):
        write_parameter_maps(ds, tmp_path, "q", space=hbv_space, attrs=_attrs(), inputs=INPUTS, overwrite=True)
    assert foreign.read_bytes() == before and not (tmp_path / "q.zarr").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers



def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_failure_after_the_store_is_in_place_leaves_neither_product(hbv_space, tmp_path):
    """Real failures in placing the netCDF product, after the store was renamed into place, take the store back."""
    ds = _product(hbv_space, "basins")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("kept")  # unrelated files in the folder stay as they are
    # 1. a dangling link stands at the netCDF path: absent to the up-front check, but linking the
    #    finished file there fails (as when another job creates the file meanwhile)
    (out / "p.nc").symlink_to(out / "nowhere.nc")
    before = _listing(out)
    with pytest.raises(StoreError, match=r"p\.nc was created by another job"):
        write_parameter_maps(ds, out, "p", space=hbv_space, attrs=_attrs(), inputs=INPUTS)
    assert _listing(out) == before  # no store, no sidecar, no hidden leftover; the link is not ours: kept
    assert (out / "p.nc").is_symlink() and (out / "notes.txt").read_text() == "kept"
    # 2. a folder stands at the netCDF file's sidecar path: the file is placed, its sidecar cannot be
    (out / "p.nc").unlink()
    (out / "p.nc.prov.json").mkdir()
    (out / "p.nc.prov.json" / "mine.txt").write_text("a user's file")
    before = _listing(out)
    with pytest.raises(IsADirectoryError):
        write_parameter_maps(ds, out, "p", space=hbv_space, attrs=_attrs(), inputs=INPUTS)
    assert _listing(out) == before  # neither p.zarr, p.zarr.prov.json nor p.nc
    assert (out / "p.nc.prov.json" / "mine.txt").read_text() == "a user's file"
    # with overwrite the same: the store that replaced nothing is taken back
    with pytest.raises(IsADirectoryError):
        write_parameter_maps(ds, out, "p", space=hbv_space, attrs=_attrs(), inputs=INPUTS, overwrite=True)
    assert _listing(out) == before
    # the same call succeeds once the path is free
    (out / "p.nc.prov.json" / "mine.txt").unlink()
    (out / "p.nc.prov.json").rmdir()
    maps = write_parameter_maps(ds, out, "p", space=hbv_space, attrs=_attrs(), inputs=INPUTS)
    assert maps.zarr.is_dir() and maps.netcdf.is_file() and all(p.is_file() for p in maps.sidecars)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]

def _ctsm_product(space, kind, **grid):
    ds = _product(space, kind, seed=3, **grid)
    ds.attrs.update(lsegeo_model="ctsm", lsegeo_ctsm_version="ctsm5.4.031")
    return annotate(ds, space, objective="kgeprime", period="calibration", model="ctsm")


def test_ctsm_basin_cases_one_folder_per_basin_with_manifest(ctsm_space, tmp_path):
    ds = _ctsm_product(ctsm_space, "basins")
    ds["fff"][2] = np.nan  # keeps the base file's value for that basin
    paramfile = write_paramfile(tmp_path / "params.nc")
    for i, b in enumerate(ds["basin"].values):
        write_surfdata(tmp_path / f"surfdata_{b}.nc", nlat=1, nlon=1, seed=i)
    cases = write_ctsm_basin_cases(ds, tmp_path / "cases", paramfile=paramfile,
                                   surfdata=str(tmp_path / "surfdata_{basin}.nc"), version="5.4")
    with open(cases.manifest) as fh:
        rows = list(csv.DictReader(fh))
    assert [r["basin"] for r in rows] == list(ds["basin"].values)
    for i, row in enumerate(rows):
        folder = cases.folders[row["basin"]]
        lines = (folder / "user_nl_clm").read_text().splitlines()
        assert f"paramfile = '{folder / 'paramfile.nc'}'" in lines and f"fsurdat = '{folder / 'fsurdat.nc'}'" in lines
        with netCDF4.Dataset(folder / "paramfile.nc") as nc:
            expected = 0.5 if i == 2 else float(ds["fff"][i])  # the registry default of the test paramfile
            assert float(nc["fff"][...]) == pytest.approx(expected)
            assert float(nc["baseflow_scalar"][...]) == pytest.approx(float(ds["baseflow_scalar"][i]))
        with netCDF4.Dataset(folder / "fsurdat.nc") as nc:
            assert float(nc["FMAX"][0, 0]) == pytest.approx(float(ds["FMAX"][i]))
        assert float(row["FMAX"]) == float(ds["FMAX"][i])
    assert rows[2]["fff"] == ""
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    for i, basin in enumerate(ds["basin"].values):  # each copy is described as a file of its own
        for name, role in (("paramfile.nc", "paramfile"), ("fsurdat.nc", "surfdata")):
            with netCDF4.Dataset(cases.folders[basin] / name) as nc:
                a = {k: nc.getncattr(k) for k in nc.ncattrs()}
            assert a["Conventions"] == "CF-1.11, ACDD-1.3" and a["lsegeo_store_kind"] == "ctsm_cases"
            assert a["lsegeo_basin"] == basin and a["lsegeo_case_file"] == role and basin in a["title"]
            assert json.loads(a["lsegeo_emulator_skill"]) == {"median_r2": 0.81}
            assert a["geospatial_lat_min"] == a["geospatial_lat_max"] == pytest.approx(float(ds["lat"][i]))
            assert a["geospatial_bounds"].startswith("POINT (") and a["cdm_data_type"] == "Point"
            assert a["history"].splitlines()[0].split(" ", 3)[3].startswith("ctsm member inputs")
            assert len(a["lsegeo_inputs_sha256"]) == 64 and f"{role}:" in a["lsegeo_inputs"]
    with pytest.raises(StoreError, match="already exists"):
        write_ctsm_basin_cases(ds, tmp_path / "cases", paramfile=paramfile,
                               surfdata=str(tmp_path / "surfdata_{basin}.nc"), version="5.4")


def test_ctsm_surfdata_sets_fields_on_land_cells_and_keeps_the_rest(ctsm_space, tmp_path):
    base = write_surfdata(tmp_path / "surfdata.nc", nlat=3, nlon=4, lon0=260.0, lat0=40.0)
    ds = _ctsm_product(ctsm_space, "grid", lat0=40.0, lon0=-100.0)  # -100 degrees east = 260 in the file
    ds["zbedrock"][1, 1] = np.nan
    out = write_ctsm_surfdata(ds, base, tmp_path / "fsurdat_lsegeo.nc", version="ctsm5.4.031")
    old, new = xr.open_dataset(base, mask_and_scale=False), xr.open_dataset(out, mask_and_scale=False)
    land = old["LANDFRAC_PFT"].values > 0
    np.testing.assert_allclose(new["FMAX"].values[land], ds["FMAX"].values[land])
    assert new["FMAX"].values[0, 0] == old["FMAX"].values[0, 0]  # ocean cell kept
    assert new["zbedrock"].values[1, 1] == old["zbedrock"].values[1, 1]  # no value: kept
    for name in ("PCT_SAND", "SLOPE", "LONGXY", "PCT_NAT_PFT"):
        np.testing.assert_array_equal(new[name].values, old[name].values)
        assert new[name].dtype == old[name].dtype
        cf = {"units", "ctsm_units", "coordinates", "standard_name"}  # CF spellings; CTSM's kept in ctsm_units
        assert {k: v for k, v in new[name].attrs.items() if k not in cf} == {
            k: v for k, v in old[name].attrs.items() if k != "units"}
        assert new[name].attrs.get("ctsm_units", new[name].attrs["units"]) == old[name].attrs["units"]
    assert new["PCT_SAND"].attrs["units"] == "percent" and new["LONGXY"].attrs["units"] == "degrees_east"
    with netCDF4.Dataset(out) as nc, netCDF4.Dataset(base) as nb:
        assert nc.data_model == nb.data_model
        assert "FMAX set on 11 of 11 land cells" in nc.getncattr("history").splitlines()[0]
    shifted = _ctsm_product(ctsm_space, "grid", lat0=40.5, lon0=-100.0)
    with pytest.raises(InputFormatError, match=r"lat\[0\] = 40.5 differs from the surface dataset's "
                                               r"LATIXY\[:, 0\]\[0\] = 40.0"):
        write_ctsm_surfdata(shifted, base, tmp_path / "other.nc", version="5.4")
    with pytest.raises(StoreError, match="already exists"):
        write_ctsm_surfdata(ds, base, out, version="5.4")


def test_distparams_stream_has_exactly_the_stream_format(ctsm_space, tmp_path):
    paramfile = write_paramfile(tmp_path / "params.nc")
    surfdata = write_surfdata(tmp_path / "surfdata.nc", nlat=3, nlon=4, lon0=260.0)
    ds = _ctsm_product(ctsm_space, "grid")
    stream = write_distparams_stream(ds, tmp_path / "distparams.nc", paramfile=paramfile, version="5.4",
                                     surfdata=surfdata)
    assert stream.parameters == ("fff", "baseflow_scalar")
    assert set(stream.left_out) == {"FMAX", "zbedrock", "interception_fraction", "medlynslope", "om_frac_sf"}
    assert "surface-dataset" in stream.left_out["FMAX"] and "not distributable" in stream.left_out["om_frac_sf"]
    with netCDF4.Dataset(stream.path) as nc, netCDF4.Dataset(paramfile) as pf:
        assert nc.data_model == "NETCDF3_64BIT_OFFSET"
        assert set(nc.variables) == {"time", "lat", "lon", "fff", "baseflow_scalar"}
        assert nc.dimensions["time"].isunlimited() and len(nc.dimensions["time"]) == 1
        assert nc["time"][:].tolist() == [0.5] and nc["time"].units == "days since 2000-01-01 00:00"
        assert nc["time"].calendar == "noleap"
        assert nc["lat"].dimensions == ("lat",) and nc["lon"][:].tolist() == ds["lon"].values.tolist()
        for name in stream.parameters:
            var = nc[name]
            var.set_auto_maskandscale(False)
            assert var.dimensions == ("time", "lat", "lon") and var.dtype == np.float64
            assert "_FillValue" not in var.ncattrs()
            assert var.long_name == pf[name].long_name and var.units == pf[name].units
            values = var[0]
            assert np.isfinite(values).all()
            assert values[0, 0] == float(pf[name][...])  # off land: the parameter file's default
            np.testing.assert_allclose(values[1:, :], ds[name].values[1:, :])


def _ctsm_product_with_provenance(space):
    """A gridded CTSM product with the global attributes ``lsegeo regionalize`` gives it."""
    ds = _ctsm_product(space, "grid", lat0=40.0, lon0=-100.0)
    ds.attrs.update(append_upstream_history(_attrs(), {"ensemble.zarr": "2026-01-01T00:00:00Z lsegeo 0.1 ensemble"}))
    return ds


def test_ctsm_files_carry_cf_acdd_provenance_and_pass_the_cf_check(ctsm_space, tmp_path):
    """The surface dataset copy and the stream: the product's CF/ACDD set, skill, history, bounds; CF-1.11 clean."""
    ds = _ctsm_product_with_provenance(ctsm_space)
    base = write_surfdata(tmp_path / "surfdata.nc", nlat=3, nlon=4, lon0=260.0, lat0=40.0)
    paramfile = write_paramfile(tmp_path / "params.nc")
    catalog, hashes = tmp_path / "catalog.yaml", {}
    attrs, ins = ctsm_file_provenance(ds.attrs, INPUTS, {"surfdata": base}, "ctsm_surfdata", hashes=hashes)
    surf = write_ctsm_surfdata(ds, base, tmp_path / "fsurdat_lsegeo.nc", version="5.4", attrs=attrs)
    record_ctsm_file(surf, ds.attrs, attrs, ins, catalog)
    attrs, ins = ctsm_file_provenance(ds.attrs, INPUTS, {"paramfile": paramfile}, "ctsm_distparams", hashes=hashes)
    stream = write_distparams_stream(ds, tmp_path / "distparams.nc", paramfile=paramfile, version="5.4",
                                     attrs=attrs).path
    record_ctsm_file(stream, ds.attrs, attrs, ins, catalog)
    for path, kind, step in ((surf, "ctsm_surfdata", "ctsm surfdata"), (stream, "ctsm_distparams", "ctsm distparams")):
        with netCDF4.Dataset(path) as nc:
            a = {k: nc.getncattr(k) for k in nc.ncattrs()}
        assert a["Conventions"] == "CF-1.11, ACDD-1.3" and a["lsegeo_store_kind"] == kind
        assert a["id"] != ds.attrs["id"] and a["lsegeo_product_id"] == ds.attrs["id"]
        assert a["title"].startswith("CTSM ") and ds.attrs["title"] in a["title"] and "CTSM" in a["summary"]
        for key in ("naming_authority", "source", "license", "keywords", "date_created", "references",
                    "processing_level", "standard_name_vocabulary", "lsegeo_version", "lsegeo_config_sha256",
                    "lsegeo_software_versions"):
            assert a[key], key
        assert a["geospatial_lat_min"] == 40.0 and a["geospatial_lon_max"] == pytest.approx(-99.625)
        assert a["geospatial_bounds"].startswith("POLYGON") and a["cdm_data_type"] == "Grid"
        assert json.loads(a["lsegeo_emulator_skill"]) == {"median_r2": 0.81}
        assert json.loads(a["lsegeo_crossvalidation"]) == {"pub": {"median_kgeprime": 0.66}}
        assert (a["lsegeo_method"], a["lsegeo_objective"], a["lsegeo_period"]) == ("lse-optimise", "kgeprime",
                                                                                  "calibration")
        lines = a["history"].splitlines()  # own step, the product's, the upstream store's (then the base's)
        assert step in lines[0] and lines[1] == ds.attrs["history"].splitlines()[0]
        assert lines[2] == "2026-01-01T00:00:00Z lsegeo 0.1 ensemble [ensemble.zarr]"
        inputs = json.loads(a["lsegeo_inputs"])
        assert set(INPUTS) < set(inputs) and a["lsegeo_n_inputs"] == len(inputs) == 3
        prov = json.loads(path.with_name(path.name + ".prov.json").read_text())
        entity = prov["entity"]["lsegeo:product"]
        assert json.loads(entity["lsegeo:emulator_skill"]) == {"median_r2": 0.81}
        assert json.loads(entity["lsegeo:crossvalidation"]) == {"pub": {"median_kgeprime": 0.66}}
        assert entity["lsegeo:method"] == "lse-optimise" and entity["lsegeo:inputs_sha256"] == a["lsegeo_inputs_sha256"]
        assert any(step in v.get("lsegeo:call", "") for v in prov["activity"].values())
    catalog_text = catalog.read_text()
    assert "fsurdat_lsegeo_netcdf" in catalog_text and "distparams_netcdf" in catalog_text
    with netCDF4.Dataset(surf) as nc, netCDF4.Dataset(base) as nb:
        for var in ("FMAX", "zbedrock"):  # the bounds, widened to the base file's values kept (ocean: 0)
            lo, hi = ds[var].attrs["valid_range"]
            values = nc[var][...]
            assert nc[var].valid_range.tolist() == [min(lo, values.min()), max(hi, values.max())]
            assert not np.ma.is_masked(values)  # nothing the file holds reads as missing
        assert nc["FMAX"].units == "1" and nc["FMAX"].ctsm_units == "unitless"
        assert nc["SLOPE"].coordinates == "LONGXY LATIXY" and nc["LATIXY"].standard_name == "latitude"
        assert nc.Source == nb.Source and nc.History_Log == nb.History_Log  # CTSM's own attributes kept
        assert set(nc.variables) == set(nb.variables)
    with netCDF4.Dataset(stream) as nc:
        for name in ("fff", "baseflow_scalar"):
            assert nc[name].valid_range.tolist() == list(ds[name].attrs["valid_range"])
            assert nc[name].long_name and nc[name].units
        assert set(nc.variables) == {"time", "lat", "lon", "fff", "baseflow_scalar"}
    for path in (surf, stream):
        cf, errors = _checker_failures(path, "cf:1.11")
        assert not errors and cf["high"] == [], f"{path.name} CF-1.11 high: {cf['high']}"
    acdd, errors = _checker_failures(stream, "acdd:1.3")
    assert not errors
    assert {(n, tuple(m)) for n, m in acdd["high"]} == {(f'variable "{v}" missing the following attributes:',
                                                        ("standard_name",)) for v in ("fff", "baseflow_scalar")}


def test_lineage_reports_inputs_configuration_code_and_steps(written):
    kind, _, maps, _ = written
    for product in (maps.zarr, maps.netcdf):
        info = lineage(product)
        assert info["inputs"] == INPUTS and info["method"] == "lse-optimise"
        assert info["config"] == {"method": "lse-optimise"} and len(info["config_sha256"]) == 64
        assert info["emulator_skill"] == {"median_r2": 0.81}
        assert info["crossvalidation"]["pub"]["median_kgeprime"] == 0.66
        assert info["code_version"] and "numpy" in info["software_versions"]
        assert len(info["history"]) == 2 and "regionalize" in info["history"][1]
        assert info["domain"]["kind"] == kind
        text = format_lineage(info)
        for needle in ("basins_627.gpkg", "a" * 64, info["config_sha256"], "median_r2", "write_parameter_maps"):
            assert needle in text


def test_lineage_refuses_what_is_not_a_product(tmp_path):
    plain = write_paramfile(tmp_path / "params.nc")
    with pytest.raises(InputFormatError, match=r"params\.nc: is not an lsegeo product"):
        lineage(plain)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InputFormatError, match=r"notes\.txt: is not an lsegeo product"):
        lineage(text)


def test_ctsm_basin_cases_of_a_mean_response_product_one_case_per_sample(ctsm_space, tmp_path):
    ds = _ctsm_product(ctsm_space, "basins")
    ds.attrs["lsegeo_response"] = "mean"
    paramfile = write_paramfile(tmp_path / "params.nc")
    surfdata = write_surfdata(tmp_path / "surfdata.nc", nlat=1, nlon=1)
    cases = write_ctsm_basin_cases(ds, tmp_path / "cases", paramfile=paramfile, surfdata=surfdata, version="5.4")
    with open(cases.manifest) as fh:
        rows = list(csv.DictReader(fh))
    k = ds.sizes["sample"]
    assert k > 1 and len(rows) == ds.sizes["basin"] * k
    for row in rows:
        b, s = row["basin"], int(row["sample"])
        folder = cases.folders[b] / f"sample_{s}"
        assert row["folder"] == str(folder)
        with netCDF4.Dataset(folder / "paramfile.nc") as nc:
            want = float(ds["baseflow_scalar_samples"].sel(basin=b).isel(sample=s))
            assert float(nc["baseflow_scalar"][...]) == pytest.approx(want)
        with netCDF4.Dataset(folder / "fsurdat.nc") as nc:
            assert float(nc["FMAX"][0, 0]) == pytest.approx(float(ds["FMAX_samples"].sel(basin=b).isel(sample=s)))
    assert len({r["baseflow_scalar"] for r in rows if r["basin"] == rows[0]["basin"]}) == k   # the samples differ
    holey = ds.copy(deep=True)
    b = str(holey["basin"].values[1])
    for v in [v for v in holey.data_vars if str(v).endswith("_samples")]:
        holey[v].loc[{"basin": b, "sample": 1}] = np.nan
    with pytest.raises(InputFormatError, match=f"basin {b}: sample\\(s\\) \\[1\\] have no finite value"):
        write_ctsm_basin_cases(holey, tmp_path / "cases3", paramfile=paramfile, surfdata=surfdata, version="5.4")
    assert not (tmp_path / "cases3").exists()
    del ds["fff_samples"]
    with pytest.raises(InputFormatError, match="lacks \\['fff_samples'\\]"):
        write_ctsm_basin_cases(ds, tmp_path / "cases2", paramfile=paramfile, surfdata=surfdata, version="5.4")


def test_lineage_printout_shortens_long_lists_but_lineage_keeps_them():
    from lsegeo.products.lineage_report import _block

    line = _block({"scores": list(range(535)), "n": 3})[0]
    assert line.startswith("  scores: [0, 1, 2, ") and "... (535 values)" in line and len(line) < 60
    assert _block({"groups": {"a": [1, 2]}})[0] == '  groups: {"a": [1, 2]}'
