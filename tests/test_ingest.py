"""Ingest on a real LocalCluster into real zarr stores: content, laziness, atomicity, provenance."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from lsegeo.errors import InputFormatError, StoreError
from lsegeo.ingest.camels import CFS_TO_M3S, ingest_camels, ingest_report
from lsegeo.io.camels import CamelsLayout, read_attributes, read_forcing, read_streamflow
from lsegeo.io.stores import open_store, read_provenance, sidecar_path, store_groups
from lsegeo.io.summary import format_summary, summarize_basins
from lsegeo.provenance import portable_config, sha256_json
from tests.conftest import MINI_END, MINI_GAUGES, forcing_lines, write_forcing_lines


def test_store_layout(mini_store):
    assert store_groups(mini_store) == ["attributes", "forcing", "observed"]
    forcing = open_store(mini_store, "forcing")
    assert list(forcing.basin.values) == sorted(MINI_GAUGES)
    assert forcing.sizes["time"] == len(pd.date_range("1980-01-01", MINI_END))
    assert {"prcp", "tmax", "tmin", "srad", "vp", "dayl", "pet"} <= set(forcing.data_vars)
    assert forcing["prcp"].attrs["units"] == "mm day-1"
    assert forcing["prcp"].chunks == ((2, 2, 1), (forcing.sizes["time"],))  # by basin, whole time
    for c in ("lat", "lon", "area", "huc_02"):
        assert c in forcing.coords


def test_store_is_lazy_and_one_basin_reads_one_chunk(mini_store):
    import dask.array as da

    forcing = open_store(mini_store, "forcing")
    assert isinstance(forcing["prcp"].data, da.Array)
    one = forcing["prcp"].sel(basin=["01030500"]).data
    assert one.numblocks == (1, 1)
    # after culling, the graph loads a single storage chunk of the variable
    import dask

    (culled,) = dask.optimize(one)
    loads = {k[1:] for k in dict(culled.__dask_graph__()) if isinstance(k, tuple) and "open_dataset" in k[0]}
    assert loads == {(1, 0)}  # 01030500 is the third basin: second chunk of 2 basins


def test_values_match_source_files(mini_store, mini_source):
    layout = CamelsLayout(mini_source / "camels_us")
    forcing = open_store(mini_store, "forcing").load()
    f = read_forcing(layout.forcing_path("01022500"))
    np.testing.assert_allclose(forcing["prcp"].sel(basin="01022500").values, f.data["prcp"].values, rtol=1e-6)
    np.testing.assert_allclose(forcing["tmin"].sel(basin="01022500").values, f.data["tmin"].values, rtol=1e-6)
    assert forcing["forcing_area"].sel(basin="01022500").item() == f.area_m2
    assert (forcing["pet"] >= 0).all() and float(forcing["pet"].mean()) > 0.5


def test_observed_in_mm_per_day_and_withheld_kept(mini_store, mini_source):
    layout = CamelsLayout(mini_source / "camels_us")
    observed = open_store(mini_store, "observed").load()
    assert list(observed.basin.values) == sorted(MINI_GAUGES)
    assert observed["qobs"].attrs["units"] == "mm day-1"
    q = pd.read_csv(layout.streamflow_table, index_col="date")["01022500"]
    area = read_attributes(layout).loc["01022500", "area_gages2"] * 1e6  # the area of CAMELS' q_mean
    assert area == 573.6e6 and observed["area"].sel(basin="01022500").item() == 573.6
    expected = q.where(q >= 0).to_numpy() * CFS_TO_M3S * 86400 / area * 1000
    np.testing.assert_allclose(observed["qobs"].sel(basin="01022500").values, expected, rtol=1e-6)
    withheld = observed.sel(basin="01013500")
    assert not bool(withheld["has_observations"]) and withheld["qobs"].isnull().all()
    assert int(withheld["n_observed_days"]) == 0
    assert observed["has_observations"].sum() == len(MINI_GAUGES) - 1


def test_attributes_group(mini_store):
    attrs = open_store(mini_store, "attributes").load()
    assert attrs.sizes["basin"] == 671
    assert attrs["basin"].values[0] == "01013500"
    assert attrs["dom_land_cover"].sel(basin="01013500").item() == "Mixed Forests"
    assert attrs["elev_mean"].attrs["units"] == "m"
    assert attrs["area"].attrs["units"] == "km2"
    assert int(attrs["has_forcing"].sum()) == len(MINI_GAUGES)
    assert int(attrs["has_observations"].sum()) == len(MINI_GAUGES) - 1


def test_provenance(mini_store):
    forcing = open_store(mini_store, "forcing")
    assert forcing.attrs["Conventions"] == "CF-1.11 ACDD-1.3"
    assert "ingest camels" in forcing.attrs["history"]
    assert json.loads(forcing.attrs["lsegeo_software_versions"])["zarr"].startswith("3.")
    assert len(forcing.attrs["lsegeo_inputs_sha256"]) == 64
    assert forcing.attrs["lsegeo_n_inputs"] == 8 + len(MINI_GAUGES)
    prov = read_provenance(mini_store)
    assert len(prov["entity"]) == 8 + len(MINI_GAUGES) + 1
    assert json.loads(sidecar_path(mini_store).read_text()) == prov


def test_config_digest_is_path_independent(mini_store, mini_source, tmp_path):
    forcing = open_store(mini_store, "forcing")
    config = json.loads(forcing.attrs["lsegeo_config"])
    assert not [v for v in config.values() if isinstance(v, str) and os.path.isabs(v)], config
    assert config["store"] == "mini_basins.zarr" and config["data_dir"] == mini_source.name
    assert forcing.attrs["lsegeo_config_sha256"] == sha256_json(config)
    # a store is identified by its content, wherever it lies; other paths by their place in the work dir
    copy = tmp_path / "elsewhere" / "renamed.zarr"
    shutil.copytree(mini_store, copy)
    work = tmp_path / "work"
    job = {"basins_store": str(mini_store), "store": work / "runs" / "e.zarr", "data_dir": "/nowhere/data",
           "periods": {"calibration": ["1981-01-01", "1981-12-31"]}, "n_members": 3}
    here = portable_config(job, base=work)
    there = portable_config({**job, "basins_store": str(copy)}, base=work)
    assert here == there
    assert here["basins_store"].startswith("sha256:") and here["store"] == "runs/e.zarr"
    assert here["data_dir"] == "data" and here["periods"] == job["periods"] and here["n_members"] == 3
    assert portable_config({"basins_store": here["basins_store"]}) == {"basins_store": here["basins_store"]}
    assert sha256_json(here) == sha256_json(there)


def test_summary(mini_store):
    s = summarize_basins(mini_store)
    assert s["n_gauges"] == 671 and s["n_basins_forcing"] == 5 and s["n_basins_observed"] == 4
    # 667 gauges without observations: 1 of the 5 with forcing (all-NaN), 666 without forcing
    assert (s["n_gauges_without_observations"], s["n_basins_without_observations"]) == (667, 1)
    assert "667 gauges without (has_observations=False): 1 with forcing" in format_summary(s)
    assert "; 666 without forcing" in format_summary(s)
    assert s["period"] == ("1980-01-01", MINI_END)
    assert 0 <= s["missing_obs_share"] < 0.2
    assert s["n_attributes"] == 59


def test_three_areas_recorded_and_reported(mini_store, mini_source):
    """Every area estimate is in the store with its units; area_gages2 converts; the report lists disagreements."""
    layout = CamelsLayout(mini_source / "camels_us")
    topo = read_attributes(layout)
    observed = open_store(mini_store, "observed").load()
    assert observed["area"].attrs["units"] == "km2" and "converts qobs" in observed["area"].attrs["comment"]
    assert "area_gages2" in observed["qobs"].attrs["comment"]
    assert observed["area_geospa_fabric"].attrs["units"] == "km2"
    assert observed["forcing_area"].attrs["units"] == "m2"
    for g in MINI_GAUGES:
        assert observed["area"].sel(basin=g).item() == topo.loc[g, "area_gages2"]
        assert observed["area_geospa_fabric"].sel(basin=g).item() == topo.loc[g, "area_geospa_fabric"]
        assert observed["forcing_area"].sel(basin=g).item() == read_forcing(layout.forcing_path(g)).area_m2
    # 01022500: line 3 587.68 km2 and geospatial fabric 620.38 km2 against area_gages2 573.6 km2: 8.2% off
    rel = observed["area_rel_diff"].sel(basin="01022500").item()
    assert rel == pytest.approx(620.38 / 573.6 - 1, rel=1e-9)
    report = ingest_report(mini_store)
    assert report["area"]["converts_streamflow"] == "area_gages2" and report["area"]["tolerance"] == 0.05
    listed = {d["basin"]: d for d in report["area"]["disagree"]}
    expected = {g for g in MINI_GAUGES if observed["area_rel_diff"].sel(basin=g).item() > 0.05}
    assert set(listed) == expected and "01022500" in expected
    assert (listed["01022500"]["area_gages2_km2"], listed["01022500"]["area_forcing_km2"],
            listed["01022500"]["area_geospa_fabric_km2"]) == (573.6, 587.68, 620.38)
    assert all(r["count"] == 0 for r in report["rules"].values())  # the 1980-81 mini data need no rule
    summary = summarize_basins(mini_store)
    assert summary["ingest_checks"] == report
    text = format_summary(summary)
    assert "streamflow converted with area_gages2" in text and "01022500  573.6 / 587.68 / 620.38" in text


def _damaged_source(root, mini_source, camels, forcing_edits=None, flow_edit=None):
    """The mini tree with some forcing files (``{gauge: edit(lines)}``) and the streamflow table edited."""
    cu = root / "camels_us"
    cu.mkdir(parents=True)
    (cu / "attributes").symlink_to(mini_source / "camels_us" / "attributes")
    for g in MINI_GAUGES:
        lines = forcing_lines(camels, g, 731)
        (forcing_edits or {}).get(g, lambda L: None)(lines)
        write_forcing_lines(cu / "forcing" / "daymet" / camels.forcing_path(g).name, lines)
    table = mini_source / "camels_us" / "streamflow" / camels.streamflow_table.name
    (cu / "streamflow").mkdir()
    if flow_edit is None:
        (cu / "streamflow" / table.name).symlink_to(table)
    else:
        q = pd.read_csv(table, index_col="date", dtype=str, keep_default_na=False)
        flow_edit(q)
        q.to_csv(cu / "streamflow" / table.name)
    return root


def _cells(lines, i, **values):
    col = {"dayl": 4, "prcp": 5, "srad": 6, "tmax": 8, "tmin": 9, "vp": 10}
    cells = lines[i].split()
    for v, x in values.items():
        cells[col[v]] = x
    lines[i] = " ".join(cells)


def test_impossible_forcing_refused_by_ingest(mini_source, camels, client, tmp_path):
    """tmax = tmin = -999 on one day: refused, naming file, line, variable and value (PET would be 0 that day)."""
    src = _damaged_source(tmp_path / "data", mini_source, camels,
                          {"01030500": lambda L: _cells(L, 400, tmax="-999.00", tmin="-999.00")})
    target = tmp_path / "out" / "basins.zarr"
    with pytest.raises(InputFormatError) as info:
        ingest_camels(data_dir=src, store=target, end=MINI_END, chunk_basins=2, client=client, progress=False)
    assert info.value.path.endswith("01030500_lump_cida_forcing_leap.txt.bz2") and info.value.line == 401
    assert "tmax ('tmax(C)') = -999 degC on 1981-01-31 is not physically possible: -999 is a numeric " \
           "missing-value code" in str(info.value)
    assert not target.exists() and list((tmp_path / "out").iterdir()) == []


def test_tmin_above_tmax_repaired_and_streamflow_codes_counted(mini_source, mini_store, camels, client, tmp_path):
    """Masked and repaired values are counted per rule in the ingest report; PET is unchanged by the repair."""
    def swap(lines):
        for i in (30, 31, 200):
            c = lines[i].split()
            _cells(lines, i, tmax=c[9], tmin=c[8])  # the file's tmin above its tmax

    def flow(q):
        q.iloc[10, q.columns.get_loc("01022500")] = "-999.00"
        q.iloc[11, q.columns.get_loc("01022500")] = "-999.00"
        q.iloc[12, q.columns.get_loc("01047000")] = ""

    src = _damaged_source(tmp_path / "data", mini_source, camels, {"01047000": swap}, flow)
    store = ingest_camels(data_dir=src, store=tmp_path / "b.zarr", end=MINI_END, chunk_basins=2, client=client,
                          progress=False)
    rules = ingest_report(store)["rules"]
    assert {k: r["count"] for k, r in rules.items() if r["count"]} == {
        "forcing_tmin_gt_tmax": 3, "streamflow_missing_code": 2, "streamflow_empty_cell": 1}
    assert (rules["forcing_tmin_gt_tmax"]["action"], rules["streamflow_missing_code"]["action"]) == \
        ("repaired", "masked")
    assert ingest_report(store)["tmin_gt_tmax_basins"] == {"01047000": 3}
    forcing, ref = open_store(store, "forcing").load(), open_store(mini_store, "forcing").load()
    assert int(forcing["n_tmin_gt_tmax"].sel(basin="01047000")) == 3 and int(forcing["n_tmin_gt_tmax"].sum()) == 3
    assert bool((forcing["tmax"] >= forcing["tmin"]).all())
    for v in ("tmax", "tmin", "pet"):  # exchanged back: the stored values are those of the undamaged file
        np.testing.assert_array_equal(forcing[v].values, ref[v].values)
    observed = open_store(store, "observed").load()
    assert int(observed["n_observed_days"].sel(basin="01022500")) == 731 - 2
    assert int(observed["n_observed_days"].sel(basin="01047000")) == 731 - 1


@pytest.fixture
def broken_source(tmp_path, mini_source, camels):
    """The mini tree with one forcing file malformed on line 30."""
    root = tmp_path / "data"
    cu = root / "camels_us"
    for part in ("attributes", "streamflow"):
        (cu).mkdir(parents=True, exist_ok=True)
        (cu / part).symlink_to(mini_source / "camels_us" / part)
    for g in MINI_GAUGES:
        lines = forcing_lines(camels, g, 731)
        if g == "01031500":
            lines[29] = lines[29] + " 7"
        write_forcing_lines(cu / "forcing" / "daymet" / camels.forcing_path(g).name, lines)
    return root


def test_failed_ingest_leaves_nothing(broken_source, client, tmp_path):
    target = tmp_path / "out" / "basins.zarr"
    with pytest.raises(InputFormatError) as info:
        ingest_camels(data_dir=broken_source, store=target, end=MINI_END, chunk_basins=2, client=client,
                      progress=False)
    assert info.value.line == 30 and info.value.path.endswith("01031500_lump_cida_forcing_leap.txt.bz2")
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []  # no half-written temporary store either


def test_existing_store_kept_without_overwrite(mini_source, client, tmp_path):
    target = tmp_path / "basins.zarr"
    ingest_camels(data_dir=mini_source, store=target, basins=["01022500"], end="1980-01-31", client=client,
                  progress=False)
    with pytest.raises(StoreError, match="already exists"):
        ingest_camels(data_dir=mini_source, store=target, end="1980-01-31", client=client, progress=False)
    assert list(open_store(target, "forcing").basin.values) == ["01022500"]
    ingest_camels(data_dir=mini_source, store=target, basins=["01030500", "01047000"], end="1980-01-31",
                  client=client, progress=False, overwrite=True)
    assert list(open_store(target, "forcing").basin.values) == ["01030500", "01047000"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["basins.zarr", "basins.zarr.prov.json"]


@pytest.mark.slow
def test_full_camels_ingest(data_dir, client, tmp_path):
    """All 670 basins, 1980-2014: Daymet precipitation reproduces CAMELS p_mean exactly."""
    store = ingest_camels(data_dir=data_dir, store=tmp_path / "camels.zarr", client=client, progress=False)
    s = summarize_basins(store)
    assert (s["n_gauges"], s["n_basins_forcing"], s["n_basins_observed"]) == (671, 670, 535)
    # 136 gauges without observations: 135 withheld among those with forcing, 02464000 without forcing
    assert (s["n_gauges_without_observations"], s["n_basins_without_observations"]) == (136, 135)
    assert s["n_days"] == 12784
    forcing = open_store(store, "forcing")
    attrs = open_store(store, "attributes").load().sel(basin=forcing.basin.values)
    p = forcing["prcp"].sel(time=slice("1989-10-01", "2009-09-30")).astype("float64").mean("time").compute()
    assert float(abs(p - attrs["p_mean"]).max()) < 1e-5
    observed = open_store(store, "observed")
    q = observed["qobs"].sel(time=slice("1989-10-01", "2009-09-30")).astype("float64").mean("time").compute()
    ratio = (q / attrs["q_mean"]).values
    assert abs(np.nanmedian(ratio) - 1) < 0.01
    # converted with area_gages2, every basin's mean flow over CAMELS' window matches its q_mean within 1%
    both = np.isfinite(ratio)
    assert both.sum() == 535
    assert float(np.abs(ratio[both] - 1).max()) < 0.01, forcing.basin.values[both][np.abs(ratio[both] - 1) >= 0.01]
    report = ingest_report(store)
    disagree = {d["basin"]: d for d in report["area"]["disagree"]}
    assert {"06470800", "02381600"} <= set(disagree)
    # converted with the line-3 area, their flows were 4.06 and 0.40 times q_mean: area_gages2 / line-3 area
    assert disagree["06470800"]["area_gages2_km2"] / disagree["06470800"]["area_forcing_km2"] == \
        pytest.approx(4.06, abs=0.01)
    assert disagree["02381600"]["area_gages2_km2"] / disagree["02381600"]["area_forcing_km2"] == \
        pytest.approx(0.40, abs=0.01)
    assert report["area"]["n_basins"] == 670 and report["area"]["n_disagree"] == 152  # line 3 or geospa > 5%
    forcing_km2 = observed["forcing_area"].values / 1e6
    off = np.abs(forcing_km2 / observed["area"].values - 1) > 0.05
    assert int((off & observed["has_observations"].values).sum()) == 52  # the count: line 3 vs gages2
    rules = {k: r["count"] for k, r in report["rules"].items()}
    assert rules["forcing_tmin_gt_tmax"] == 3352 and len(report["tmin_gt_tmax_basins"]) == 98
    assert report["tmin_gt_tmax_basins"]["12048000"] == 741
    assert rules["streamflow_outside_table"] == 0 and rules["forcing_outside_file"] == 0
    flow, code = read_streamflow(CamelsLayout(data_dir / "camels_us"), with_codes=True)
    cols = [g for g in forcing.basin.values if g in flow.columns]
    assert rules["streamflow_missing_code"] == int(code[cols].to_numpy().sum()) > 0
    assert rules["streamflow_empty_cell"] == int(flow[cols].isna().to_numpy().sum()) - rules["streamflow_missing_code"]
    assert int(observed["n_observed_days"].sum()) == 535 * 12784 - rules["streamflow_missing_code"] - \
        rules["streamflow_empty_cell"]
