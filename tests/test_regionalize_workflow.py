"""Regionalization workflows and commands: ``regionalize_job``, ``lsegeo regionalize``, ``evaluate``, ``provenance``.

24 synthetic basins (4 without observed streamflow) and a 30-member HBV ensemble over them stand
for a calibration store. One job regionalizes four domains with a small ``lse-optimise``: the
uncalibrated basins, 4 calibrated basins by id, a table of sites (CSV) and a 4 x 4 grid whose
attributes come from a netCDF file (3 cells off land). Further tests run ``lsegeo regionalize``
with score intervals from a real cross-validation, and ``lsegeo evaluate`` against observations
given as a basins store and as a CAMELS-layout table.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from click.testing import CliRunner

from lsegeo.config import validate_config
from lsegeo.emulators.features import STUDY_ATTRIBUTES
from lsegeo.errors import ConfigError, InputFormatError
from lsegeo.testing import local_client
from lsegeo.testing.ensembles import PERIODS, WARMUP_DAYS

BOUNDS, RES = (-100.0, 35.0, -98.0, 37.0), 0.5       # a 4 x 4 grid
OFF_LAND = [(0, 0), (1, 2), (3, 3)]
OBSERVED = ["90000002", "90000005", "90000011", "90000017"]  # calibrated basins with observations
SMALL = {"samples": 3, "backend_options": {"n_estimators": 30, "max_depth": 4}, "donors": {"k": 3},
         "optimise": {"pop_size": 16, "generations": 8, "restarts": 1, "trust_donors": 0}}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """(basins store, ensemble store, synthetic basins): 24 basins, 30 HBV members run in-process."""
    from lsegeo.testing import synthetic_basins, write_basins_store, write_ensemble_store

    root = tmp_path_factory.mktemp("regionalize_workflow")
    sb = synthetic_basins(24, seed=3, withheld=[20, 21, 22, 23])
    basins = write_basins_store(sb, root / "basins.zarr")
    ens = write_ensemble_store(root / "ensemble.zarr", basins, n_members=30, seed=2)
    return basins, ens, sb


def _attribute_rows(sb, rows):
    """Raw attributes of synthetic basins ``rows`` (the 27 of the study; ``area`` as ``area_gages2``)."""
    a = sb.attributes.isel(basin=list(rows))
    out = {n: a["area" if n == "area_gages2" else n].values for n in STUDY_ATTRIBUTES}
    return pd.DataFrame(out)


def _write_table(sb, path, drop=()):
    table = _attribute_rows(sb, range(5)).drop(columns=list(drop))
    table.insert(0, "site", ["0101", "0102", "0103", "0104", "0105"])   # leading zeros: ids are text
    table["lat"] = np.linspace(36.0, 37.0, 5)
    table["lon"] = np.linspace(-99.0, -98.0, 5)
    table.to_csv(path, index=False)
    return path


def _grid_axes():
    from lsegeo.regionalize.rasterize import regular_grid

    return regular_grid(BOUNDS, RES)


def _write_grid(sb, path, land=True):
    """One variable per attribute on (lat, lon); cell k has the attributes of basin k % 5, none off land."""
    lat, lon = _grid_axes()
    ny, nx = len(lat), len(lon)
    mask = np.full((ny, nx), bool(land))
    for i, j in OFF_LAND:
        mask[i, j] = False
    rows = _attribute_rows(sb, np.arange(ny * nx) % 5)
    data = {}
    for n in rows.columns:
        v = rows[n].to_numpy().reshape(ny, nx)
        data[n] = (("lat", "lon"), np.where(mask, v, "") if v.dtype == object else np.where(mask, v, np.nan))
    xr.Dataset(data, coords={"lat": lat, "lon": lon}).to_netcdf(path)
    return path, mask


def _raw_config(stores, work, domains, **regionalize):
    return {"work_dir": str(work), "cluster": {"n_workers": 1},
            "ensemble": {"periods": {p.name: [str(p.start), str(p.end)] for p in PERIODS},
                         "warmup_days": WARMUP_DAYS},
            "regionalize": {"store": str(stores[1]), "basins_store": str(stores[0]), "method": "lse-optimise",
                            "interval_scheme": None, "figures": False, **SMALL, **regionalize,
                            **({"domains": domains} if domains else {})}}


@pytest.fixture(scope="module")
def job(stores, tmp_path_factory):
    """One regionalize_job over four domains, on an in-process dask client: (work dir, report, grid land mask)."""
    from lsegeo.workflows.regionalize import regionalize_job

    work = tmp_path_factory.mktemp("regionalize_job")
    table = _write_table(stores[2], work / "sites.csv")
    grid, mask = _write_grid(stores[2], work / "grid_attributes.nc")
    domains = [{"name": "ungauged", "kind": "basins", "basins": "uncalibrated"},
               {"name": "observed.v1", "kind": "basins", "basins": OBSERVED},
               {"name": "sites", "kind": "table", "path": str(table)},
               {"name": "grid_0.5deg", "kind": "grid", "bounds": list(BOUNDS), "resolution": RES,
                "attributes": str(grid)}]
    cfg = validate_config(_raw_config(stores, work, domains))
    with local_client() as c:
        report = regionalize_job(cfg, client=c, progress=False, call="lsegeo regionalize test.yaml")
    return work, report, mask


def test_every_domain_gets_products_and_catalog_entries(job):
    from lsegeo.io.catalog import catalog_entries
    from lsegeo.locations import catalog_path

    work, report, mask = job
    assert report.targets == {"ungauged": 4, "observed.v1": 4, "sites": 5, "grid_0.5deg": 16 - len(OFF_LAND)}
    entries = catalog_entries(catalog_path(work))
    for name in report.targets:
        zarr, nc = work / "products" / f"{name}.zarr", work / "products" / f"{name}.nc"
        assert zarr.is_dir() and nc.is_file()
        for sidecar in (zarr.with_name(zarr.name + ".prov.json"), nc.with_name(nc.name + ".prov.json")):
            assert json.loads(sidecar.read_text())["entity"], sidecar
        assert {zarr, nc} <= set(report.products[name])
        assert f"{name}_parameters" in entries and f"{name}_netcdf" in entries
        assert "STALE" not in entries[f"{name}_netcdf"]
    # the history names every step back to the stores' own: newest first, each upstream line tagged
    with xr.open_dataset(work / "products" / "ungauged.nc") as nc:
        lines = nc.attrs["history"].splitlines()
    assert "write_parameter_maps ungauged" in lines[0] and " regionalize: " in lines[1]
    # no cross-validation runs (interval_scheme null): a grouped cross-validation of the emulator
    with xr.open_zarr(work / "products" / "ungauged.zarr") as z:
        skill = json.loads(z.attrs["lsegeo_emulator_skill"])
    held = skill["held_out"]
    assert held["source"].startswith("grouped") and held["cv_scheme"] == "grouped" and held["cv_folds"] == 5
    assert held["cv_basins"] == skill["emulators"][0]["training_basins"]
    (target,) = held["cv_targets"].values()
    assert np.isfinite(target["overall_corr"]) and -1 <= target["overall_corr"] <= 1
    assert any(line.endswith("[ensemble.zarr]") and " ensemble create" in line for line in lines)
    assert all(line.endswith(("[ensemble.zarr]", "[basins.zarr]")) for line in lines[2:])


def test_basin_and_table_products_hold_sets_inside_the_bounds(job, stores):
    from lsegeo.io.stores import open_store
    from lsegeo.models.registry import get_model

    work, _, _ = job
    space = get_model("hbv").space
    for name, ids in (("ungauged", ["90000021", "90000022", "90000023", "90000024"]),
                      ("sites", ["0101", "0102", "0103", "0104", "0105"])):
        with xr.open_dataset(work / "products" / f"{name}.nc") as nc:
            ds = nc.load()
        assert [str(b) for b in ds["basin"].values] == ids
        assert ds.sizes["sample"] == 3
        for j, p in enumerate(space.names):
            v = ds[f"{p}_samples"].values
            assert np.all((v >= space.lower[j]) & (v <= space.upper[j])), p
            np.testing.assert_array_equal(ds[p].values, v[0])
        assert np.isfinite(ds["score_predicted"]).all() and np.isnan(ds["score_lower"]).all()
        assert set(np.unique(ds["extrapolates"].values)) <= {0, 1}
        assert ds.attrs["lsegeo_method"] == "lse-optimise" and ds.attrs["lsegeo_model"] == "hbv"
        master = open_store(work / "products" / f"{name}.zarr", "parameters").load()
        for p in space.names:
            np.testing.assert_array_equal(master[p].values, ds[p].values)
    with xr.open_dataset(work / "products" / "sites.nc") as nc:
        np.testing.assert_allclose(nc["lat"].values, np.linspace(36.0, 37.0, 5))


def test_grid_product_is_nan_off_land_and_bounded_on_land(job):
    from lsegeo.models.registry import get_model

    work, _, mask = job
    space = get_model("hbv").space
    with xr.open_dataset(work / "products" / "grid_0.5deg.nc") as nc:
        ds = nc.load()
    lat, lon = _grid_axes()
    np.testing.assert_allclose(ds["lat"].values, lat)
    np.testing.assert_allclose(ds["lon"].values, lon)
    np.testing.assert_array_equal(ds["land_mask"].values, mask.astype(np.int8))
    for j, p in enumerate(space.names):
        v = ds[p].values
        assert np.isnan(v[~mask]).all() and np.isfinite(v[mask]).all(), p
        assert np.all((v[mask] >= space.lower[j]) & (v[mask] <= space.upper[j])), p
        assert np.isnan(ds[f"{p}_samples"].values[:, ~mask]).all()
    assert np.isnan(ds["score_predicted"].values[~mask]).all() and np.isfinite(ds["score_predicted"].values[mask]).all()
    assert (ds["extrapolates"].values[~mask] == 0).all()
    # searching the whole cube (optimise.trust_donors: 0), cells with the same attributes (basin k % 5) got the
    # same sets: one optimisation per distinct row
    assert json.loads(ds.attrs["lsegeo_method_info"])["trust_donors"] == 0
    src = (np.arange(mask.size) % 5).reshape(mask.shape)
    tt = ds[space.names[0]].values
    for k in range(5):
        cells = tt[(src == k) & mask]
        assert np.all(cells == cells[0])


def test_provenance_command_prints_the_inputs_with_their_hashes(job, stores):
    from lsegeo.cli import main
    from lsegeo.io.stores import root_attrs
    from lsegeo.provenance import sha256_json

    work, _, _ = job
    out = CliRunner().invoke(main, ["provenance", str(work / "products" / "sites.nc")])
    assert out.exit_code == 0, out.output
    digest = hashlib.sha256((work / "sites.csv").read_bytes()).hexdigest()
    assert f"sites.csv  {digest}" in out.output
    # a store: the sha256 over the digests of what it was made from (its input files, its configuration) ...
    attrs = root_attrs(stores[1])
    made_from = sha256_json({"inputs": attrs["lsegeo_inputs_sha256"], "config": attrs["lsegeo_config_sha256"]})
    assert f"ensemble.zarr  sha256:{made_from}" in out.output
    # ... or, made from no file (the synthetic basins), its id
    assert not root_attrs(stores[0]).get("lsegeo_inputs_sha256")
    assert f"basins.zarr  id:{root_attrs(stores[0])['id']}" in out.output
    # ... and what the methods learned from it: the calibrated sets of its basins
    from lsegeo.regionalize.training import load_training

    sets = load_training(stores[1], stores[0], with_rows=False).calibration_sha256()
    assert f"ensemble.zarr (calibrated sets)  sha256:{sets}" in out.output
    assert "lse-optimise" in out.output and "inputs         4" in out.output


def test_the_recorded_configuration_names_the_paths_the_job_used(job, stores):
    """Paths left to their defaults are recorded as run: the output and cross-validation folders, the stores."""
    import netCDF4

    from lsegeo.io.marks import store_digest

    work = job[0]
    with netCDF4.Dataset(work / "products" / "sites.nc") as nc:
        recorded = json.loads(nc.getncattr("lsegeo_config"))
    assert recorded["output"] == "products" and recorded["crossval_dir"] == "crossval"  # relative to the work dir
    assert recorded["store"] == store_digest(stores[1]) and recorded["basins_store"] == store_digest(stores[0])


def test_default_folders_are_recorded_relative_to_a_relative_work_dir(stores, tmp_path, monkeypatch):
    from lsegeo.provenance import portable_config
    from lsegeo.workflows.regionalize import _as_run, regionalize_paths

    monkeypatch.chdir(tmp_path)
    section = {"store": str(stores[1]), "basins_store": str(stores[0])}
    cfg = validate_config({"work_dir": "work", "regionalize": section})
    paths = regionalize_paths(cfg)
    recorded = portable_config(_as_run(cfg.regionalize, paths), base=paths["work"])
    assert recorded["output"] == "products" and recorded["crossval_dir"] == "crossval"


def test_domain_names_that_leave_the_output_folder_are_refused(stores, tmp_path):
    for name in ("../escape", "/tmp/abs", "sub/dir", ".hidden"):
        with pytest.raises(ConfigError, match="domains.0.name"):
            validate_config(_raw_config(stores, tmp_path, [{"name": name, "kind": "basins", "basins": OBSERVED}]))


def test_a_domain_without_an_attribute_the_emulator_needs_is_refused(stores, tmp_path):
    from lsegeo.workflows.regionalize import regionalize_job

    table = _write_table(stores[2], tmp_path / "thin.csv", drop=["slope_mean", "frac_snow"])
    cfg = validate_config(_raw_config(stores, tmp_path, [{"name": "thin", "kind": "table", "path": str(table)}],
                                      method="default"))
    with local_client() as c, pytest.raises(InputFormatError, match=r"slope_mean.*frac_snow"):
        regionalize_job(cfg, client=c, progress=False)
    assert not (tmp_path / "products" / "thin.nc").exists()


def test_an_attribute_file_that_is_no_dataset_is_one_error_naming_it(stores, tmp_path):
    from lsegeo.workflows.regionalize import regionalize_job

    bad = tmp_path / "attrs.nc"
    bad.write_text("a,b\n1,2\n")
    cfg = validate_config(_raw_config(stores, tmp_path, [{"name": "g", "kind": "grid", "bounds": list(BOUNDS),
                                                          "resolution": RES, "attributes": str(bad)}],
                                      method="default"))
    with local_client() as c, pytest.raises(ConfigError, match=r"\(g\)\.attributes: .*attrs\.nc cannot be read as a "
                                                               r"netCDF file or zarr store"):
        regionalize_job(cfg, client=c, progress=False)
    assert not (tmp_path / "products").exists() or not any((tmp_path / "products").iterdir())


def test_an_existing_product_is_refused_before_any_work(job, stores):
    """A second run into the same output without --overwrite is refused, naming the product; nothing changes."""
    from lsegeo.workflows.regionalize import regionalize_job

    work, _, _ = job
    before = (work / "products" / "ungauged.nc").stat().st_mtime_ns
    cfg = validate_config(_raw_config(stores, work, [{"name": "ungauged", "kind": "basins", "basins": OBSERVED}]))
    with pytest.raises(ConfigError, match=r"ungauged\.zarr.*already exist.*--overwrite"):
        regionalize_job(cfg, progress=False)
    assert (work / "products" / "ungauged.nc").stat().st_mtime_ns == before


def test_a_grid_without_land_cells_is_refused(stores, tmp_path):
    from lsegeo.config.regionalize import DomainConfig
    from lsegeo.workflows.regionalize import build_domain

    path, _ = _write_grid(stores[2], tmp_path / "sea.nc", land=False)
    dc = DomainConfig(name="sea", kind="grid", bounds=BOUNDS, resolution=RES, attributes=str(path))
    with pytest.raises(InputFormatError, match="no land cells"):
        build_domain(dc, stores[0], [])
    missing = DomainConfig(name="nowhere", kind="grid", bounds=BOUNDS, resolution=RES,
                           attributes=str(tmp_path / "absent.nc"))
    with pytest.raises(ConfigError, match="absent.nc does not exist"):
        build_domain(missing, stores[0], [])


def test_evaluate_refuses_a_grid_product(job, stores):
    from lsegeo.workflows.crossval import evaluate_job

    work, _, _ = job
    cfg = validate_config(_raw_config(stores, work, []))
    with pytest.raises(InputFormatError, match="not a basin product"):
        evaluate_job(cfg, work / "products" / "grid_0.5deg.nc", stores[0])


def test_help_of_the_commands():
    from lsegeo.cli import main

    for command, words in (("regionalize", "interval_scheme"), ("crossval", "held-out"),
                           ("evaluate", "--observed"), ("provenance", "PRODUCT")):
        out = CliRunner().invoke(main, [command, "--help"])
        assert out.exit_code == 0 and words in out.output, (command, out.output)


def _yaml(path, raw):
    path.write_text(yaml.safe_dump(raw))
    return path


#: missing cells of the CAMELS-layout table inside the scored periods: gauge -> (kind, first day, last day)
MISSING_CELLS = {OBSERVED[0]: [("-999", "2001-03-01", "2001-03-12")],
                 OBSERVED[1]: [("empty", "2001-06-01", "2001-06-05"), ("-999", "2002-07-01", "2002-07-04")],
                 OBSERVED[2]: [("empty", "2002-02-10", "2002-02-20"), ("-999", "2002-09-05", "2002-09-05")]}


def _missing_days(dates, kind=None):
    """``(gauge, day)`` bool over ``OBSERVED`` and ``dates``: the table's missing cells (of one ``kind``)."""
    out = np.zeros((len(OBSERVED), len(dates)), dtype=bool)
    for i, b in enumerate(OBSERVED):
        for k, first, last in MISSING_CELLS.get(b, []):
            if kind in (None, k):
                out[i] |= (dates >= pd.Timestamp(first)) & (dates <= pd.Timestamp(last))
    return out


def _camels_table(sb, basins_store, path):
    """The synthetic observations of ``OBSERVED`` in the CAMELS layout: cfs, -999 and empty cells missing.

    Two rows of -999 before the simulated window, and :data:`MISSING_CELLS` inside the scored periods.
    """
    from lsegeo.ingest.camels import CFS_TO_M3S
    from lsegeo.io.stores import open_store

    area = open_store(basins_store, "attributes")["area"].sel(basin=OBSERVED).values
    q = sb.observed["qobs"].sel(basin=OBSERVED).values.astype(np.float64)           # mm day-1
    cfs = q * area[:, None] * 1e6 / 1000.0 / 86400.0 / CFS_TO_M3S
    dates = pd.DatetimeIndex(sb.observed["time"].values)
    cfs[_missing_days(dates, "-999")] = -999.0
    cfs[_missing_days(dates, "empty")] = np.nan                                    # written as empty cells
    frame = pd.DataFrame(cfs.T, index=dates.strftime("%Y-%m-%d"), columns=OBSERVED)
    frame["01013500"] = 12.5                       # a gauge the product does not have
    early = pd.DataFrame(-999.0, index=["1999-12-30", "1999-12-31"], columns=frame.columns)
    pd.concat([early, frame]).rename_axis("date").to_csv(path, float_format="%.10g", na_rep="")
    return path


def _store_with_gaps(sb, path):
    """A basins store of ``sb`` whose observations are NaN on the table's missing days."""
    import dataclasses

    from lsegeo.testing import write_basins_store

    obs = sb.observed.copy(deep=True)
    dates = pd.DatetimeIndex(obs["time"].values)
    q = obs["qobs"].sel(basin=OBSERVED).values
    q[_missing_days(dates)] = np.nan
    obs["qobs"].loc[{"basin": OBSERVED}] = q
    obs["n_observed_days"] = obs["qobs"].notnull().sum("time").astype(obs["n_observed_days"].dtype)
    return write_basins_store(dataclasses.replace(sb, observed=obs), path)


def test_evaluate_scores_agree_for_a_table_and_a_basins_store(job, stores, client, tmp_path):
    """-999 and empty cells inside the scored periods are missing days, as NaN in a basins store."""
    from lsegeo.cli import main
    from lsegeo.ensembles.store import open_ensemble
    from lsegeo.ingest.camels import CFS_TO_M3S
    from lsegeo.io.stores import open_store
    from lsegeo.metrics.kernels import kgeprime_np
    from lsegeo.periods import period_slices, simulation_window

    work, _, _ = job
    raw = _raw_config(stores, work, [])
    raw["cluster"] = {"kind": "address", "address": client.scheduler.address}
    cfg = _yaml(tmp_path / "evaluate.yaml", raw)
    table = _camels_table(stores[2], stores[0], tmp_path / "streamflow.csv")
    gaps = _store_with_gaps(stores[2], tmp_path / "basins_with_gaps.zarr")
    product = work / "products" / "observed.v1.nc"
    results = {}
    for label, observed in (("table", table), ("gaps", gaps), ("store", stores[0])):
        out = tmp_path / f"{label}.txt"
        res = CliRunner().invoke(main, ["evaluate", str(product), "--observed", str(observed), "--config", str(cfg),
                                        "--out", str(out), "-q"])
        assert res.exit_code == 0, res.output
        assert "median KGE'" in res.output and out.is_file()
        results[label] = pd.read_csv(out.with_suffix(".csv"), dtype={"basin": str}).set_index(["basin", "period"])
    a, g, full = results["table"], results["gaps"], results["store"]
    assert sorted(set(a.index.get_level_values("basin"))) == sorted(OBSERVED) and len(a) == len(OBSERVED) * len(PERIODS)
    assert np.isfinite(a[["product", "default"]].to_numpy()).all()
    g, full = g.loc[a.index], full.loc[a.index]
    np.testing.assert_allclose(a[["product", "default"]].to_numpy(), g[["product", "default"]].to_numpy(),
                               rtol=1e-5, atol=1e-6)
    assert (work / "evaluations" / "observed.v1.zarr").is_dir()  # named after the product
    # the missing cells lie in the scored periods: exactly the (gauge, period) pairs that have them score otherwise
    window = simulation_window(PERIODS, WARMUP_DAYS)
    slices = period_slices(window, PERIODS)
    gap, code = _missing_days(window), _missing_days(window, "-999")
    touched = np.array([[gap[OBSERVED.index(b), slices[p]].any() for b, p in a.index]]).ravel()
    assert touched.sum() == 4   # three gauges, one of them in both periods
    diff = np.abs(a["product"].to_numpy() - full["product"].to_numpy())
    assert np.all(diff[touched] > 1e-6) and np.all(diff[~touched] <= 1e-5 * np.abs(full["product"].to_numpy()[~touched])
                                                    + 1e-6)
    # by hand from the runs' series: NaN on the missing days gives lsegeo's scores; -999 cfs taken as a flow does not
    runs = open_ensemble(work / "evaluations" / "observed.v1.zarr")
    qsim = runs["qsim"].transpose("basin", "member", "time")
    area = open_store(stores[0], "attributes")["area"].sel(basin=OBSERVED).values
    obs = open_store(stores[0], "observed")["qobs"].sel(basin=OBSERVED).reindex(time=window).values.astype(float)
    as_number = np.where(code, -999.0 * CFS_TO_M3S * 86400.0 / (area[:, None] * 1e6) * 1000.0, obs)
    with_nan = np.where(gap, np.nan, obs)
    for (b, p), row in a.iterrows():
        i, days = OBSERVED.index(b), slices[p]
        q = qsim.sel(basin=b).values[0, days].astype(np.float64)[None]
        assert row["product"] == pytest.approx(kgeprime_np(q, with_nan[i, days][None])[0], rel=1e-5)
        if code[i, days].any():
            assert abs(row["product"] - kgeprime_np(q, as_number[i, days][None])[0]) > 1e-3, (b, p)


def test_regionalize_command_with_cross_validated_intervals(stores, client, tmp_path):
    from lsegeo.cli import main

    raw = _raw_config(stores, tmp_path, [{"name": "ungauged", "kind": "basins", "basins": "uncalibrated"}],
                      method="donor-similar", interval_scheme="study", confidence=0.8, figures=True)
    raw["cluster"] = {"kind": "address", "address": client.scheduler.address}
    res = CliRunner().invoke(main, ["regionalize", str(_yaml(tmp_path / "regionalize.yaml", raw)), "-q"])
    assert res.exit_code == 0, res.output
    assert "cross-validation (study folds, donor-similar), calibration: median kgeprime" in res.output
    assert sorted(p.name for p in (tmp_path / "crossval" / "study").glob("fold_*.npz")) == \
        [f"fold_{k}.npz" for k in range(5)]
    with xr.open_dataset(tmp_path / "products" / "ungauged.nc") as nc:
        ds = nc.load()
    pred, lo, hi = (ds[v].values for v in ("score_predicted", "score_lower", "score_upper"))
    assert np.isfinite(lo).all() and np.all(lo <= pred) and np.all(pred <= hi) and np.all(hi <= 1.0)
    cv = json.loads(ds.attrs["lsegeo_crossvalidation"])
    assert cv["scheme"] == "study" and cv["method"] == "donor-similar" and cv["periods"]["calibration"]["n"] == 20
    # Mondrian intervals (interval_groups: pur, the default): thresholds per PUR region of the 20 basins
    assert sum(cv["intervals"]["group_sizes"].values()) == 20
    assert all(k.startswith("HUC ") for k in cv["intervals"]["group_thresholds"])
    assert set(ds["donor_basin"].values) <= {f"{90000001 + i:08d}" for i in range(20)}
    # the emulator's skill where the product uses it: predicted against achieved on the held-out basins
    skill = json.loads(ds.attrs["lsegeo_emulator_skill"])
    held = skill["held_out"]
    assert held["source"].startswith("crossvalidation runs") and held == {**cv["predicted_score_skill"],
                                                                           "source": held["source"]}
    assert held["n"] == 20 and -1 <= held["pearson_r"] <= 1 and held["rmse"] > 0
    assert skill["emulators"][0]["training_basins"] == 20
    for png in ("ungauged_parameters.png", "ungauged_score.png"):
        assert (tmp_path / "products" / "figures" / png).stat().st_size > 0


def test_a_mean_response_product_is_evaluated_by_the_mean_flow_of_its_samples(stores, client, tmp_path):
    """donor-ensemble: the product says so, and ``lsegeo evaluate`` runs every sample and scores their mean flow."""
    from lsegeo.ensembles.store import open_ensemble
    from lsegeo.io.stores import open_store
    from lsegeo.metrics.kernels import kgeprime_np
    from lsegeo.periods import period_slices, simulation_window
    from lsegeo.workflows.crossval import evaluate_job
    from lsegeo.workflows.regionalize import regionalize_job

    raw = _raw_config(stores, tmp_path, [{"name": "observed", "kind": "basins", "basins": OBSERVED}],
                      method="donor-ensemble", donors={"near": 2, "similar": 2})
    cfg = validate_config(raw)
    regionalize_job(cfg, client=client, progress=False)
    product = tmp_path / "products" / "observed.nc"
    with xr.open_dataset(product) as raw:
        nc = raw.load()
        assert nc.attrs["lsegeo_response"] == "mean" and nc.sizes["sample"] == 4
        assert json.loads(nc.attrs["lsegeo_method_info"])["near"] == 2
        donors = nc["donor_basin_samples"].transpose("basin", "sample").values
        assert donors.shape == (4, 4) and list(donors[:, 0]) == list(nc["donor_basin"].values)
        assert all(len(set(row)) == 4 for row in donors)   # four distinct donors per basin
        assert "mean simulated flow" in nc["FC_samples"].attrs["long_name"]
    ev, report = evaluate_job(cfg, product, stores[0], client=client, progress=False)
    assert "mean flow of 4 samples" in report.read_text()
    runs = open_ensemble(tmp_path / "evaluations" / "observed.zarr")
    assert runs.sizes["member"] == 4 + 1          # the samples and the default set
    window = simulation_window(PERIODS, WARMUP_DAYS)
    days = period_slices(window, PERIODS)["calibration"]
    obs = open_store(stores[0], "observed")["qobs"].sel(basin=OBSERVED).reindex(time=window).values
    q = runs["qsim"].transpose("basin", "member", "time").values.astype(np.float64)
    for i, b in enumerate(OBSERVED):
        by_hand = kgeprime_np(q[i, :4].mean(axis=0)[days][None], obs[i, days][None])[0]
        assert ev.scores["product"].sel(basin=b, period="calibration").item() == pytest.approx(by_hand, rel=1e-6)
        alone = kgeprime_np(q[i, 4][days][None], obs[i, days][None])[0]
        assert ev.scores["default"].sel(basin=b, period="calibration").item() == pytest.approx(alone, rel=1e-6)


def test_mean_response_of_identical_samples_is_the_point_response(stores, client, tmp_path):
    from lsegeo.models.registry import get_model
    from lsegeo.regionalize.evaluate import evaluate_parameters
    from lsegeo.regionalize.training import load_training

    tr = load_training(stores[1], stores[0], with_rows=False, basins=OBSERVED)
    space = get_model("hbv").space
    common = dict(basins_store=stores[0], model="hbv", space=space, periods=PERIODS, warmup_days=WARMUP_DAYS,
                  client=client, progress=False)
    point = evaluate_parameters(tr.calibrated, OBSERVED, stores[0], runs=tmp_path / "point.zarr", **common)
    same = evaluate_parameters(np.repeat(tr.calibrated[:, None], 3, axis=1), OBSERVED, stores[0], response="mean",
                               runs=tmp_path / "same.zarr", **common)
    np.testing.assert_allclose(same.scores["product"].values, point.scores["product"].values, rtol=1e-6)
    assert np.isfinite(point.scores["product"].values).all()
    with pytest.raises(ValueError, match="response must be"):
        evaluate_parameters(tr.calibrated, OBSERVED, stores[0], response="median", runs=tmp_path / "x.zarr", **common)
