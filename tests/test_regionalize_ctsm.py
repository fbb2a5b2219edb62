"""Regionalizing the real CTSM ensemble (Tang, Wood & Swenson 2025) with lse-select, and the CTSM files it writes.

One job on the real store of ``lsegeo ingest ctsm-camels`` (201 trials x 627 basins, KGE' of 496):
the basins without a score, and a synthetic surface dataset's grid over the south shore of Lake
Erie; CTSM basin cases, a surface dataset copy and a distributed-parameter stream.
"""

from __future__ import annotations

import bz2
import csv
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

from lsegeo.workflows.ctsm import CTSM_CAMELS_PERIOD

#: the one gauge whose forcing the basins store holds (the ensemble store checks the study's window);
#: every gauge's attributes are ingested
GAUGE = "01013500"
#: the gauge of the otherwise empty streamflow table
OTHER = "01022500"
#: the layout of the synthetic (modern) parameter file; the distributed-parameter stream is a ctsm5.4 feature
VERSION = "5.4"
#: a small xgboost LSE that still ranks the sets (at the default learning rate 0.05, 20 trees barely leave
#: the mean and every target would get the first set)
SMALL_LSE = {"n_estimators": 20, "max_depth": 4, "learning_rate": 0.3}
#: the bound precipitation-repartition temperatures and their master
MASTER = "precip_repartition_nonglc_all_rain_t"


def _one_gauge_source(camels, root: Path) -> Path:
    """A CAMELS data directory with every attribute table, the forcing of :data:`GAUGE` and no streamflow.

    The gauge's streamflow is withheld by CAMELS anyway; a table over the study's days with one
    empty column (the layout needs a gauge) spares reading the whole compressed one.
    """
    import pandas as pd

    cu = root / "camels_us"
    (cu / "attributes").mkdir(parents=True)
    for f in camels.attributes_dir.glob("camels_*.txt"):
        (cu / "attributes" / f.name).symlink_to(f)
    forcing = cu / "forcing" / "daymet" / camels.forcing_path(GAUGE).name
    forcing.parent.mkdir(parents=True)
    forcing.symlink_to(camels.forcing_path(GAUGE))
    days = pd.date_range(CTSM_CAMELS_PERIOD.start, CTSM_CAMELS_PERIOD.end).strftime("%Y-%m-%d")
    (cu / "streamflow").mkdir()
    with bz2.open(cu / "streamflow" / camels.streamflow_table.name, "wt") as f:  # compressed, as CAMELS ships it
        f.write(f"date,{OTHER}\n" + "".join(f"{d},\n" for d in days))
    return root


@pytest.fixture(scope="module")
def ctsm_stores(data_dir, camels, client, tmp_path_factory):
    """(basins store, CTSM ensemble store) from the real data."""
    from lsegeo.ingest.camels import ingest_camels
    from lsegeo.workflows.ctsm import ingest_ctsm_camels

    out = tmp_path_factory.mktemp("ctsm_stores")
    source = _one_gauge_source(camels, out / "data")
    basins = ingest_camels(data_dir=source, store=out / "camels_basins.zarr", basins=[GAUGE],
                           start=CTSM_CAMELS_PERIOD.start, end=CTSM_CAMELS_PERIOD.end, chunk_basins=1,
                           client=client, progress=False)
    ens = ingest_ctsm_camels(data_dir=data_dir, basins_store=basins, out=out / "ensemble_ctsm_camels.zarr",
                             catalog=out / "catalog.yaml")
    return basins, ens.store


@pytest.fixture(scope="module")
def job(ctsm_stores, data_dir, client, tmp_path_factory):
    """``regionalize_job`` with lse-select on the CTSM store: an unscored-basins domain and a surfdata grid.

    The basin cases take a single-cell surface dataset per basin (``surfdata_{basin}.nc``, as the
    study's cases have); the grid's surface dataset copy is then made from the domain's own file.
    """
    from lsegeo.config import validate_config
    from lsegeo.regionalize.training import basin_frame
    from lsegeo.testing.ctsm import write_paramfile, write_surfdata
    from lsegeo.workflows.regionalize import regionalize_job

    basins, store = ctsm_stores
    tmp = tmp_path_factory.mktemp("ctsm_job")
    # 4 x 5 cells of 0.5 degree, 41-42.5 N, 80-78 W (0-360 degrees east, as CTSM writes them); cell (0, 0) ocean
    surfdata = write_surfdata(tmp / "surfdata_erie.nc", nlat=4, nlon=5, lat0=41.0, lon0=280.0, res=0.5, seed=3)
    single = write_surfdata(tmp / "surfdata_single_cell.nc", nlat=1, nlon=1, seed=5)
    (tmp / "basins").mkdir()
    for b in basin_frame(basins).index:
        (tmp / "basins" / f"surfdata_{b}.nc").symlink_to(single)
    paramfile = write_paramfile(tmp / "ctsm_params.nc")
    cfg = validate_config({
        "data_dir": str(data_dir), "work_dir": str(tmp / "work"),
        "regionalize": {
            "store": str(store), "basins_store": str(basins), "method": "lse-select", "objective": "kgeprime",
            "period": CTSM_CAMELS_PERIOD.name, "interval_scheme": None,
            "backend_options": SMALL_LSE, "figures": False, "output": str(tmp / "products"),
            "domains": [{"name": "ctsm_uncalibrated", "kind": "basins", "basins": "uncalibrated"},
                        {"name": "erie", "kind": "surfdata", "path": str(surfdata)}],
            "ctsm": {"paramfile": str(paramfile), "surfdata": str(tmp / "basins" / "surfdata_{basin}.nc"),
                     "version": VERSION, "distparams": True}}})
    report = regionalize_job(cfg, client=client, progress=False, call="pytest")
    return {"report": report, "out": tmp / "products", "surfdata": surfdata, "paramfile": paramfile,
            "store": store, "basins": basins}


@pytest.fixture(scope="module")
def ensemble(job):
    from lsegeo.ensembles.store import open_ensemble

    return open_ensemble(job["store"]).load()


@pytest.fixture(scope="module")
def basin_product(job):
    return xr.open_dataset(job["out"] / "ctsm_uncalibrated.nc").load()


@pytest.fixture(scope="module")
def grid_product(job):
    return xr.open_dataset(job["out"] / "erie.nc").load()


def test_the_real_ctsm_ensemble_is_registered_in_the_catalog(ctsm_stores):
    from lsegeo.io.catalog import catalog_entries, open_catalog

    _, store = ctsm_stores
    entries = catalog_entries(store.parent / "catalog.yaml")
    key = next(k for k in entries if k.startswith("ensemble_ctsm_camels"))
    assert "STALE" not in entries[key], entries
    ds = open_catalog(store.parent / "catalog.yaml")[key].read()
    assert ds.sizes["member"] == 201 and ds.attrs["lsegeo_model"] == "ctsm"


def test_targets_are_the_basins_without_a_score(job, ensemble, basin_product):
    from lsegeo.regionalize.training import basin_frame

    scored = {str(b) for b, s in zip(ensemble["basin"].values, ensemble["has_scores"].values, strict=True) if s}
    expected = [b for b in basin_frame(job["basins"]).index if b not in scored]
    withheld = {str(b) for b, s in zip(ensemble["basin"].values, ensemble["has_scores"].values, strict=True) if not s}
    assert len(scored) == 496 and len(withheld) == 131 and len(expected) == 671 - 496
    assert [str(b) for b in basin_product["basin"].values] == expected
    assert withheld <= set(expected)  # the study's 131 withheld basins are all regionalized
    assert job["report"].targets == {"ctsm_uncalibrated": len(expected), "erie": 19}
    for name in ("ctsm_uncalibrated", "erie"):
        assert (job["out"] / f"{name}.zarr").is_dir() and (job["out"] / f"{name}.nc").is_file()
    assert basin_product.attrs["lsegeo_model"] == "ctsm" and basin_product.attrs["lsegeo_method"] == "lse-select"
    assert basin_product.attrs["lsegeo_ctsm_version"] == "5.1"  # the version of the study's runs
    assert basin_product.attrs["lsegeo_period"] == "calibration"
    assert np.isfinite(basin_product["score_predicted"].values).all()
    assert np.isnan(basin_product["score_lower"].values).all()  # no intervals: the model runs elsewhere


def test_selected_members_carry_the_ensembles_parameters_exactly(ensemble, basin_product, grid_product):
    from lsegeo.ensembles.store import DONE

    names = [str(p) for p in ensemble["param"].values]
    params = ensemble["params"].transpose("basin", "member", "param").values
    assert (params == params[:1]).all()  # every basin ran the same 201 sets
    done = (ensemble["status"].values == DONE).all(axis=0)
    member = basin_product["selected_member"].values
    assert member.dtype.kind == "i" and (member >= 0).all() and done[member].all()  # never a failed trial
    assert len(np.unique(member)) >= 5  # the emulator tells the basins apart
    # the study's table rounds: a sampled kmax lies below the range it was sampled from by 1 part in 10^16;
    # the products carry the stored values, clipped into the store's bounds
    lower, upper = ensemble["param_lower"].values, ensemble["param_upper"].values
    assert (params[0, :, names.index("kmax")] < lower[names.index("kmax")]).any()
    chosen = params[0, member]
    expected = np.clip(chosen, lower, upper)
    np.testing.assert_allclose(expected, chosen, rtol=1e-15, atol=0)
    got = np.column_stack([basin_product[n].values for n in names])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(basin_product[f"{names[0]}_samples"].values[0], basin_product[names[0]].values)
    land = grid_product["land_mask"].values == 1
    cell_member = grid_product["selected_member"].values
    assert (cell_member[~land] == -1).all() and (cell_member[land] >= 0).all()
    grid = np.stack([grid_product[n].values[land] for n in names], axis=1)
    np.testing.assert_array_equal(grid, np.clip(params[0, cell_member[land]], lower, upper))
    assert np.isnan(grid_product[names[0]].values[~land]).all()


def test_basin_cases_one_folder_per_basin_with_the_products_values(job, basin_product):
    cases = job["out"] / "ctsm_uncalibrated_ctsm_cases"
    assert cases in job["report"].products["ctsm_uncalibrated"]
    with open(cases / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    basins = [str(b) for b in basin_product["basin"].values]
    assert [r["basin"] for r in rows] == basins  # no basin skipped: every one has a full set
    assert sorted(p.name for p in cases.iterdir() if p.is_dir()) == sorted(basins)
    for row in rows[:: max(1, len(rows) // 5)]:
        folder = Path(row["folder"])
        assert folder.parent == cases and {"paramfile.nc", "fsurdat.nc", "user_nl_clm"} <= {
            p.name for p in folder.iterdir()}
        i = basins.index(row["basin"])
        for name in ("fff", "baseflow_scalar"):
            assert float(row[name]) == basin_product[name].values[i]
        with netCDF4.Dataset(folder / "paramfile.nc") as nc:
            assert float(nc["fff"][...]) == basin_product["fff"].values[i]
        with netCDF4.Dataset(folder / "fsurdat.nc") as nc:  # one land cell: it gets the basin's value
            assert float(nc["FMAX"][0, 0]) == basin_product["FMAX"].values[i]
            assert float(nc["zbedrock"][0, 0]) == basin_product["zbedrock"].values[i]
        text = (folder / "user_nl_clm").read_text()
        assert f"paramfile = '{folder / 'paramfile.nc'}'" in text and f"fsurdat = '{folder / 'fsurdat.nc'}'" in text


def test_surfdata_copy_differs_from_the_base_exactly_in_the_regionalized_fields_on_land(job, grid_product):
    from lsegeo.models.ctsm.parameters import load_registry

    reg = load_registry()
    fields = {reg[n].location(VERSION).variable: n for n in grid_product.data_vars
              if n in reg and reg[n].location(VERSION).kind == "surfdata"}
    assert set(fields) == {"FMAX", "zbedrock"}
    copy = job["out"] / "erie_surfdata.nc"
    land = grid_product["land_mask"].values == 1
    with netCDF4.Dataset(job["surfdata"]) as base, netCDF4.Dataset(copy) as new:
        assert new.data_model == base.data_model and set(new.variables) == set(base.variables)
        for var in base.variables:
            old, now = base[var][...], new[var][...]
            if var in fields:
                expected = np.where(land, grid_product[fields[var]].values, old)
                np.testing.assert_array_equal(np.asarray(now), expected)
                assert (np.asarray(now)[land] != np.asarray(old)[land]).any()
            else:
                np.testing.assert_array_equal(np.asarray(now), np.asarray(old), err_msg=var)
        assert "ctsm surfdata" in new.getncattr("History_Log") or "ctsm surfdata" in getattr(new, "history", "")


def test_distparams_stream_holds_only_coordinates_and_finite_parameters(job, grid_product):
    from lsegeo.models.ctsm.parameters import load_registry
    from lsegeo.products.ctsm import DISTRIBUTABLE

    reg = load_registry()
    land = grid_product["land_mask"].values == 1
    with netCDF4.Dataset(job["out"] / "erie_distparams.nc") as nc, netCDF4.Dataset(job["paramfile"]) as pf:
        assert nc.file_format == "NETCDF3_64BIT_OFFSET" and nc.dimensions["time"].isunlimited()
        params = [v for v in nc.variables if v not in ("time", "lat", "lon")]
        assert params and set(params) <= DISTRIBUTABLE
        assert nc.getncattr("lsegeo_product_id") == grid_product.attrs["id"]
        np.testing.assert_allclose(nc["lon"][:], grid_product["lon"].values)
        for v in params:
            values = np.asarray(nc[v][...])
            assert nc[v].dimensions == ("time", "lat", "lon") and np.isfinite(values).all(), v
            assert "_FillValue" not in nc[v].ncattrs()
            np.testing.assert_array_equal(values[0][~land], float(pf[v][...]))  # off land: the file's default
        assert "fff" in params and "FMAX" not in params and "medlynslope" not in params
        np.testing.assert_array_equal(np.asarray(nc["fff"][0])[land], grid_product["fff"].values[land])
        master = np.asarray(nc[MASTER][0])[land]
        for p in reg.bound(MASTER):  # the tied repartition temperatures move with their master
            np.testing.assert_allclose(np.asarray(nc[p.name][0])[land], p.default + master - reg[MASTER].default)


def test_provenance_lists_the_ctsm_store(job):
    from click.testing import CliRunner

    from lsegeo.cli import main
    from lsegeo.io.marks import store_digest
    from lsegeo.products import lineage

    product = job["out"] / "erie.zarr"
    result = CliRunner().invoke(main, ["provenance", str(product)])
    assert result.exit_code == 0, result.output
    sid = store_digest(job["store"])
    assert sid.startswith("sha256:") and f"ensemble_ctsm_camels.zarr  {sid}" in result.output
    assert "lse-select" in result.output and "model          ctsm (CTSM 5.1)" in result.output
    info = lineage(product)
    assert info["inputs"]["ensemble_ctsm_camels.zarr"] == sid and info["domain"]["kind"] == "grid"
    assert "surfdata_erie.nc" in info["inputs"]
    # CTSM runs outside lsegeo: the skill on unseen basins comes from a grouped cross-validation of the LSE
    held = info["emulator_skill"]["held_out"]
    assert held["cv_scheme"] == "grouped" and held["cv_basins"] == info["emulator_skill"]["emulators"][0][
        "training_basins"]


def test_ctsm_files_carry_provenance_a_sidecar_and_a_catalog_entry(job):
    """The CTSM copies of a product say what made them: the product, its inputs, the base file's hash."""
    import hashlib
    import json

    import netCDF4
    import yaml

    made = sorted(p for p in job["out"].glob("erie_*.nc"))
    assert made, list(job["out"].iterdir())
    with xr.open_dataset(job["out"] / "erie.nc") as product:
        product_id = product.attrs["id"]
        skill, crossval = product.attrs["lsegeo_emulator_skill"], product.attrs["lsegeo_crossvalidation"]
    catalog = yaml.safe_load((job["out"].parent / "work" / "catalog.yaml").read_text())
    for path in made:
        with netCDF4.Dataset(path) as nc:
            attrs = {k: nc.getncattr(k) for k in nc.ncattrs()}
        assert attrs["lsegeo_product_id"] == product_id and attrs["lsegeo_store_kind"].startswith("ctsm_")
        assert len(attrs["lsegeo_inputs_sha256"]) == 64 and attrs["id"] != product_id
        # the product's CF/ACDD set, the method's skill and the whole history, the file's own step first
        assert attrs["Conventions"] == "CF-1.11, ACDD-1.3" and attrs["title"].startswith("CTSM ")
        assert attrs["lsegeo_method"] == "lse-select" and attrs["geospatial_lat_min"] == 41.0
        assert json.loads(attrs["lsegeo_emulator_skill"]) == json.loads(skill)
        assert json.loads(attrs["lsegeo_crossvalidation"]) == json.loads(crossval)
        history = attrs["history"].splitlines()
        assert history[0].split(" ", 3)[3].startswith(("ctsm surfdata", "ctsm distparams"))
        assert "regionalize: pytest" in history[1] and any("[ensemble_ctsm_camels.zarr]" in h for h in history)
        prov = json.loads(path.with_name(path.name + ".prov.json").read_text())
        entity = prov["entity"]["lsegeo:product"]
        assert entity["lsegeo:emulator_skill"] == attrs["lsegeo_emulator_skill"]
        assert entity["lsegeo:crossvalidation"] == attrs["lsegeo_crossvalidation"]
        hashes = json.dumps(prov)
        base = job["surfdata"] if "surfdata" in path.name else None
        if base is not None:
            assert hashlib.sha256(Path(base).read_bytes()).hexdigest() in hashes
        entry = catalog["data"][f"{path.name.removesuffix('.nc')}_file"]
        assert entry["metadata"]["lsegeo_store_id"] == attrs["id"]
    # the basin cases: a sidecar beside their manifest, with each basin's surface dataset hashed
    manifest = job["out"] / "ctsm_uncalibrated_ctsm_cases" / "manifest.csv"
    prov = (manifest.parent / "manifest.csv.prov.json").read_text()
    assert "ctsm_cases" in prov and hashlib.sha256(Path(job["paramfile"]).read_bytes()).hexdigest() in prov
    assert '"lsegeo:emulator_skill"' in prov
    with xr.open_dataset(job["out"] / "ctsm_uncalibrated.nc") as product:
        basin_id = product.attrs["id"]
    first = next(p for p in manifest.parent.iterdir() if p.is_dir())
    for name in ("paramfile.nc", "fsurdat.nc"):  # the per-basin copies carry the same set
        with netCDF4.Dataset(first / name) as nc:
            assert nc.Conventions == "CF-1.11, ACDD-1.3" and nc.lsegeo_product_id == basin_id
            assert nc.lsegeo_basin == first.name and json.loads(nc.lsegeo_emulator_skill)


def test_a_mean_response_grid_gets_ctsm_files_per_sample(job, data_dir, client, tmp_path):
    """donor-ensemble on the CTSM store: each sample of the gridded product becomes its own CTSM files."""
    from lsegeo.config import validate_config
    from lsegeo.workflows.regionalize import regionalize_job

    cfg = validate_config({
        "data_dir": str(data_dir), "work_dir": str(tmp_path / "work"),
        "regionalize": {
            "store": str(job["store"]), "basins_store": str(job["basins"]), "method": "donor-ensemble",
            "objective": "kgeprime", "period": CTSM_CAMELS_PERIOD.name, "interval_scheme": None,
            "backend_options": SMALL_LSE, "figures": False, "output": str(tmp_path / "products"),
            "donors": {"near": 1, "similar": 1},
            "domains": [{"name": "erie", "kind": "surfdata", "path": str(job["surfdata"])}],
            "ctsm": {"paramfile": str(job["paramfile"]), "version": VERSION, "distparams": True}}})
    regionalize_job(cfg, client=client, progress=False, call="pytest")
    out = tmp_path / "products"
    ds = xr.open_dataset(out / "erie.nc")
    assert ds.attrs["lsegeo_response"] == "mean" and ds.sizes["sample"] == 2
    assert not (out / "erie_surfdata.nc").exists()
    for k in range(2):
        with netCDF4.Dataset(out / f"erie_surfdata_sample{k}.nc") as sd:
            fmax = np.asarray(sd["FMAX"][:])
        want = ds["FMAX_samples"].isel(sample=k).values
        land = np.isfinite(want)
        np.testing.assert_allclose(fmax[land], want[land], rtol=1e-6)
        with netCDF4.Dataset(out / f"erie_distparams_sample{k}.nc") as dp:
            assert "baseflow_scalar" in dp.variables
            b = np.asarray(dp["baseflow_scalar"][0])
        want = ds["baseflow_scalar_samples"].isel(sample=k).values
        np.testing.assert_allclose(b[land], want[land], rtol=1e-6)
    first, second = (ds["FMAX_samples"].isel(sample=k).values[land] for k in (0, 1))
    assert not np.allclose(first, second)   # two donors, two maps


def test_base_files_of_ctsm_files_expand_basin_templates():
    """A per-basin template (parameter file or surface dataset) is hashed basin by basin."""
    from lsegeo.workflows.regionalize import _base_files

    got = _base_files({"paramfile": "params_{basin}.nc", "surfdata": "surfdata.nc", "none": None}, ["01", "02"])
    assert got == {"paramfile 01": "params_01.nc", "paramfile 02": "params_02.nc", "surfdata": "surfdata.nc"}
