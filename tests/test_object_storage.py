"""Stores and products on object storage (fsspec URLs), against a real S3-compatible server.

moto's server mode (``python -m moto.server``, as s3fs tests itself) runs as a process of its own on a
free port of 127.0.0.1 for the module; the storage options that point s3fs at it are set the way a
job sets them (:func:`lsegeo.io.urls.configure_storage`), credentials come from the standard
AWS environment variables. Real CAMELS basins are ingested straight into ``s3://``, and a small
parameter-map product is written there; both are read back directly and through intake.
"""

from __future__ import annotations

import copy
import json
import logging
import os

import numpy as np
import pytest
import xarray as xr

from lsegeo.errors import StoreError
from lsegeo.io.atomic import is_lsegeo_store, sidecar_path, store_id
from lsegeo.io.urls import configure_storage, filesystem, list_dir
from lsegeo.provenance import product_attrs

BUCKET = "lsegeo-test"
INPUTS = {"input.csv": "a" * 64}
BASINS = ["01022500", "01030500", "01031500"]


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on a free local port, a bucket in it, and lsegeo's storage options pointing there."""
    import socket
    import subprocess
    import sys
    import time

    import fsspec.config

    with socket.socket() as sock:  # a free port of the loopback address
        sock.bind(("127.0.0.1", 0))
        host, port = sock.getsockname()
    # a process of its own (moto's server mode), so that its request handling does not share this
    # process's GIL with the jobs under test
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    saved = copy.deepcopy(fsspec.config.conf)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("FSSPEC_S3", "{}")  # restored after the module, with what configure_storage writes there
        # the credentials also travel in the options (FSSPEC_S3), as a job's storage_options may
        # carry them, so every worker process has them however it was started
        configure_storage({"s3": {"endpoint_url": f"http://{host}:{port}", "key": "testing", "secret": "testing"}})
        fs, _ = filesystem(f"s3://{BUCKET}")
        fs.mkdir(BUCKET)
        try:
            yield f"s3://{BUCKET}"
        finally:
            fsspec.config.conf.clear()
            fsspec.config.conf.update(saved)
            server.terminate()
            server.wait(timeout=30)


@pytest.fixture(scope="module")
def s3_basins(s3, data_dir):
    """The 3 basins of :data:`BASINS`, 1995-1997, ingested into S3 (shared by the ensemble and calibration tests)."""
    from lsegeo.config import validate_config
    from lsegeo.workflows.ingest import ingest_job

    url = f"{s3}/shared/camels_basins.zarr"
    cfg = validate_config({"data_dir": str(data_dir), "cluster": {"n_workers": 1},
                           "ingest": {"basins": BASINS, "start": "1995-01-01", "end": "1997-12-31",
                                      "chunk_basins": 2, "store": url}})
    ingest_job(cfg, register=False, progress=False)
    return url


def _attrs(kind: str = "test") -> dict:
    attrs = product_attrs(title="object storage test store", summary="A small store for the tests.",
                          step="test", call="pytest", config={}, inputs=INPUTS, references="none")
    return {**attrs, "lsegeo_store_kind": kind}


def _small(seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    return xr.Dataset({"v": (("basin", "member"), rng.normal(size=(4, 6)))},
                      coords={"basin": np.array(["a", "b", "c", "d"], dtype=object), "member": np.arange(6)})


def _objects(url: str) -> list[str]:
    fs, path = filesystem(url)
    return sorted(fs.find(path))


def test_write_store_round_trip_refusals_and_overwrite(s3):
    from lsegeo.io.stores import open_store, read_provenance, write_store

    url = f"{s3}/round/small.zarr"
    ds = _small()
    assert write_store(ds, url, group="g", attrs=_attrs(), inputs=INPUTS) == url
    got = open_store(url, "g").load()
    xr.testing.assert_equal(got[["v"]].drop_attrs(), ds.drop_attrs())
    assert is_lsegeo_store(url) and read_provenance(url)["entity"]
    fs, _ = filesystem(url)
    assert json.loads(fs.cat_file(sidecar_path(url).removeprefix("s3://"))) == read_provenance(url)
    assert sorted(n for n, _ in list_dir(f"{s3}/round")) == ["small.zarr", "small.zarr.prov.json"]  # no staging left
    first = store_id(url)
    with pytest.raises(StoreError, match="already exists"):
        write_store(_small(1), url, group="g", attrs=_attrs(), inputs=INPUTS)
    assert store_id(url) == first
    write_store(_small(1), url, group="g", attrs=_attrs(), inputs=INPUTS, overwrite=True)
    assert store_id(url) != first
    xr.testing.assert_equal(open_store(url, "g")[["v"]].load().drop_attrs(), _small(1).drop_attrs())
    # an object lsegeo did not write beside the groups: overwrite refuses and deletes nothing
    fs.pipe_file(f"{BUCKET}/round/small.zarr/notes.txt", b"mine")
    with pytest.raises(StoreError, match="notes.txt, which lsegeo did not write"):
        write_store(ds, url, group="g", attrs=_attrs(), inputs=INPUTS, overwrite=True)
    assert fs.cat_file(f"{BUCKET}/round/small.zarr/notes.txt") == b"mine" and store_id(url) != first
    # a prefix that is not an lsegeo store is never replaced
    fs.pipe_file(f"{BUCKET}/foreign.zarr/data.bin", b"x")
    with pytest.raises(StoreError, match="not a store written by lsegeo"):
        write_store(ds, f"{s3}/foreign.zarr", group="g", attrs=_attrs(), inputs=INPUTS, overwrite=True)
    assert _objects(f"{s3}/foreign.zarr") == [f"{BUCKET}/foreign.zarr/data.bin"]


def test_an_interrupted_upload_leaves_no_store(s3, tmp_path):
    """A file of the local store that cannot be read stops the upload: readers find no store, nothing is left."""
    from lsegeo.io.publish import publish_store
    from lsegeo.io.stores import open_store, write_store

    local = write_store(_small(), tmp_path / "local.zarr", group="g", attrs=_attrs(), inputs=INPUTS)
    os.symlink(tmp_path / "absent", local / "g" / "v" / "zz_unreadable")  # a dangling link: reading it fails
    url = f"{s3}/interrupted/local.zarr"
    with pytest.raises(StoreError, match="uploaded were removed, no store is at"):
        publish_store(local, url)
    assert _objects(url) == []
    assert not is_lsegeo_store(url)
    with pytest.raises(StoreError, match="not a zarr v3 store"):
        open_store(url, "g")
    (local / "g" / "v" / "zz_unreadable").unlink()
    publish_store(local, url)  # the same store, once readable, goes up whole
    xr.testing.assert_equal(open_store(url, "g")[["v"]].load().drop_attrs(), _small().drop_attrs())


def test_input_tables_are_read_from_urls(s3):
    from lsegeo.errors import DataNotFoundError
    from lsegeo.io.tables import read_gauges, read_parameter_table, read_score_table

    fs, _ = filesystem(s3)
    fs.pipe_file(f"{BUCKET}/tables/params.csv", b"parameter,default,lower,upper\nbeta,2,1,6\n")
    fs.pipe_file(f"{BUCKET}/tables/gauges.csv", b"gauge_id\n01022500\n01030500\n")
    fs.pipe_file(f"{BUCKET}/tables/scores.csv", b"trial,01022500,01030500\n0,0.5,\n1,0.7,0.1\n")
    assert read_parameter_table(f"{s3}/tables/params.csv").loc["beta", "upper"] == 6.0
    assert read_gauges(f"{s3}/tables/gauges.csv") == ["01022500", "01030500"]
    scores = read_score_table(f"{s3}/tables/scores.csv")
    assert list(scores.columns) == ["01022500", "01030500"] and np.isnan(scores.loc[0, "01030500"])
    with pytest.raises(DataNotFoundError, match="absent.csv does not exist"):
        read_gauges(f"{s3}/tables/absent.csv")


def _write_rows(url: str, start: int, stop: int) -> None:
    """A task of another process: write rows ``start:stop`` of the template's ``v`` (pickled by name)."""
    from lsegeo.io.groups import write_region

    rows = xr.Dataset({"v": (("basin", "member"), np.full((stop - start, 6), 5.0))})
    write_region(rows, url, "g", {"basin": slice(start, stop)})


def test_a_store_staged_beside_its_url_takes_chunks_from_other_processes(s3):
    """Stores filled by dask tasks on other machines are built in a prefix beside the URL, then published."""
    import multiprocessing
    import socket
    import subprocess
    from concurrent.futures import ProcessPoolExecutor

    from lsegeo.io.atomic import BUILDER_MARKER, atomic_store
    from lsegeo.io.groups import write_group
    from lsegeo.io.stores import open_store, stamp_provenance

    url = f"{s3}/beside/tasks.zarr"
    fs, _ = filesystem(url)
    dead = subprocess.Popen(["true"])
    dead.wait()
    marker = {"written_by": "lsegeo", "role": "partial", "host": socket.gethostname(), "pid": dead.pid}
    fs.pipe_file(f"{BUCKET}/beside/.tasks.zarr.partial-dead0000/{BUILDER_MARKER}", json.dumps(marker).encode())
    fs.pipe_file(f"{BUCKET}/beside/.tasks.zarr.partial-nomarker/x", b"kept: not known to be lsegeo's")
    with atomic_store(url, staging="beside") as tmp:
        assert isinstance(tmp, str) and tmp.startswith(f"{s3}/beside/.tasks.zarr.partial-")
        write_group(_small().chunk({"basin": 2}), tmp, "g", mode="w", compute=False)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(_write_rows, [tmp, tmp], [0, 2], [2, 4]))  # the child inherits the storage options
        stamp_provenance(tmp, _attrs(), INPUTS, url)
        assert _objects(url) == []  # nothing at the target before the block ends
    assert (open_store(url, "g")["v"].values == 5.0).all()
    assert sorted(n for n, _ in list_dir(f"{s3}/beside")) == [".tasks.zarr.partial-nomarker", "tasks.zarr",
                                                            "tasks.zarr.prov.json"]


def _publish(local: str, url: str) -> None:
    """Publish a local store from another process (pickled by name)."""
    from pathlib import Path

    from lsegeo.io.publish import publish_store

    publish_store(Path(local), url)


def test_the_root_metadata_goes_last_and_a_killed_upload_is_cleared_by_the_next(s3, tmp_path):
    """An upload stopped before its last object shows readers no store; the next upload removes its objects."""
    import multiprocessing
    import time

    from lsegeo.io.publish import publish_store
    from lsegeo.io.stores import open_store, write_store

    local = write_store(_small(), tmp_path / "k.zarr", group="g", attrs=_attrs(), inputs=INPUTS)
    n_files = sum(len(names) for _, _, names in os.walk(local))
    meta = (local / "zarr.json").read_bytes()
    (local / "zarr.json").unlink()
    os.mkfifo(local / "zarr.json")  # reading it blocks: the upload stops at the root metadata
    url = f"{s3}/killed/k.zarr"
    proc = multiprocessing.get_context("spawn").Process(target=_publish, args=(str(local), url))
    proc.start()
    try:
        deadline = time.monotonic() + 60
        while len(_objects(url)) < n_files and time.monotonic() < deadline:
            time.sleep(0.2)
        objects = _objects(url)
    finally:
        proc.kill()
        proc.join()
    # every file but the root metadata is up, with the uploader's marker: readers find no store
    assert len(objects) == n_files and f"{BUCKET}/killed/k.zarr/lsegeo-builder.json" in objects
    assert f"{BUCKET}/killed/k.zarr/zarr.json" not in objects
    assert not is_lsegeo_store(url)
    with pytest.raises(StoreError, match="not a zarr v3 store"):
        open_store(url, "g")
    (local / "zarr.json").unlink()
    (local / "zarr.json").write_bytes(meta)
    publish_store(local, url)  # the killed uploader no longer runs: its objects go, the store goes up whole
    xr.testing.assert_equal(open_store(url, "g")[["v"]].load().drop_attrs(), _small().drop_attrs())
    assert len(_objects(url)) == n_files and f"{BUCKET}/killed/k.zarr/lsegeo-builder.json" not in _objects(url)


def test_store_group_writes_chunks_in_place_on_a_url(s3):
    """What the ensemble runner does to its store: write regions, grow, check chunks, straight into S3."""
    from lsegeo.io.groups import StoreGroup
    from lsegeo.io.stores import consolidate, open_store, write_store

    url = f"{s3}/inplace/ens.zarr"
    write_store(_small(), url, group="g", attrs=_attrs(), inputs=INPUTS, encoding={"v": {"chunks": (1, 3)}})
    g = StoreGroup(url, "g", writable=True)
    g.write("v", (slice(0, 1), slice(None)), np.full((1, 6), 7.0))
    new = g.grow("v", 1, np.ones((4, 3)))
    g.grow("member", 0, np.arange(6, 9))
    consolidate(url)
    assert new == slice(6, 9) and g.shape("v") == (4, 9)
    v = StoreGroup(url, "g").read("v")
    assert (v[0, :6] == 7.0).all() and (v[:, 6:] == 1.0).all()
    chunks = [(b, m) for b in range(4) for m in range(3)]
    assert g.chunk_problems("v", chunks) == {}
    g.drop_chunk("v", (2, 1))
    assert g.chunk_problems("v", chunks) == {(2, 1): "missing"}
    assert np.isnan(open_store(url, "g")["v"].values[2, 3:6]).all()


def test_ingest_into_s3_read_back_directly_and_through_the_catalog(s3, data_dir, tmp_path):
    from lsegeo.config import validate_config
    from lsegeo.io.basin_inputs import load_basin_inputs
    from lsegeo.io.camels import CamelsLayout, read_forcing
    from lsegeo.io.catalog import open_catalog
    from lsegeo.io.stores import open_store
    from lsegeo.workflows.ingest import ingest_job

    url = f"{s3}/ingest/camels_basins.zarr"
    cfg = validate_config({"data_dir": str(data_dir), "work_dir": str(tmp_path), "cluster": {"n_workers": 1},
                           "ingest": {"basins": BASINS, "start": "1995-01-01", "end": "1996-12-31",
                                      "chunk_basins": 2}})
    cfg = cfg.model_copy(update={"ingest": cfg.ingest.model_copy(update={"store": url})})
    result = ingest_job(cfg, progress=False)
    assert result.store == url and result.summary
    assert sorted(n for n, _ in list_dir(f"{s3}/ingest")) == ["camels_basins.zarr", "camels_basins.zarr.prov.json"]
    source = read_forcing(CamelsLayout(data_dir / "camels_us").forcing_path("01030500"))
    window = open_store(url, "forcing").indexes["time"]
    forcing, obs = load_basin_inputs(url, ["01030500"], ["prcp", "pet"], window)
    want = source.data["prcp"].loc[window[0]:window[-1]].to_numpy()
    np.testing.assert_allclose(forcing["prcp"].sel(basin="01030500").values, want, rtol=1e-6)
    assert obs.sizes["time"] == len(window) == 731

    # the catalog entry carries the URL and the endpoint (no credentials): intake opens it with
    # fsspec's own s3 configuration emptied, the credentials coming from this process's
    # environment (read here, not on a cluster another test may have made the default)
    import dask
    import fsspec.config
    import intake

    text = result.catalog.read_text()
    assert url in text and "endpoint_url" in text and "testing" not in text
    with pytest.MonkeyPatch.context() as mp, dask.config.set(scheduler="synchronous"):
        mp.setitem(fsspec.config.conf, "s3", {})
        raw = intake.from_yaml_file(str(result.catalog))["camels_basins_forcing"].read()
        np.testing.assert_allclose(raw["prcp"].sel(basin="01030500").values, want, rtol=1e-6)
    with dask.config.set(scheduler="synchronous"):
        checked = open_catalog(result.catalog)["camels_basins_observed"].read()
        assert set(checked["basin"].values) == set(BASINS)


def test_parameter_maps_on_s3_through_the_catalog(s3, tmp_path):
    from lsegeo.io.catalog import open_catalog, stale_entries
    from lsegeo.models.hbv.adapter import HBVModel
    from lsegeo.products import write_parameter_maps

    space = HBVModel().space
    rng = np.random.default_rng(3)
    ds = xr.Dataset(coords={"basin": np.array(["01022500", "01030500"], dtype=object),
                            "lat": ("basin", [44.0, 45.0]), "lon": ("basin", [-68.0, -69.0])})
    for p in space.parameters:
        ds[p.name] = ("basin", p.from_unit(rng.uniform(0.1, 0.9, 2)))
    ds.attrs = {"lsegeo_method": "lse-optimise", "lsegeo_objective": "kgeprime", "lsegeo_period": "calibration",
                "lsegeo_domain_kind": "basins", "lsegeo_domain_name": "test", "lsegeo_model": "hbv"}
    cat = tmp_path / "catalog.yaml"
    out = f"{s3}/products"
    maps = write_parameter_maps(ds, out, "hbv_s3", space=space, attrs=_attrs("regionalized"), inputs=INPUTS,
                                catalog=cat)
    assert (maps.zarr, maps.netcdf) == (f"{out}/hbv_s3.zarr", f"{out}/hbv_s3.nc")
    assert sorted(n for n, _ in list_dir(out)) == ["hbv_s3.nc", "hbv_s3.nc.prov.json", "hbv_s3.zarr",
                                                   "hbv_s3.zarr.prov.json"]
    name = space.parameters[0].name
    opened = open_catalog(cat)
    np.testing.assert_allclose(opened["hbv_s3_parameters"].read()[name].values, ds[name].values)
    np.testing.assert_allclose(opened["hbv_s3_netcdf"].read()[name].values, ds[name].values)
    assert stale_entries(cat) == {}
    with pytest.raises(StoreError, match="already exists"):
        write_parameter_maps(ds, out, "hbv_s3", space=space, attrs=_attrs("regionalized"), inputs=INPUTS)
    write_parameter_maps(ds, out, "hbv_s3", space=space, attrs=_attrs("regionalized"), inputs=INPUTS,
                         overwrite=True)
    assert set(stale_entries(cat)) == {"hbv_s3_parameters", "hbv_s3_netcdf"}  # replaced: new ids


def test_ensemble_on_s3_equals_the_same_ensemble_on_disk(s3, s3_basins, tmp_path):
    """An ensemble whose basins store and ensemble store are both URLs: created, run (its tasks
    write their chunks to S3), resumed with nothing left to run; its members equal those of the
    same job on local paths."""
    from lsegeo.config import validate_config
    from lsegeo.ensembles.store import DONE, open_ensemble
    from lsegeo.testing import local_client
    from lsegeo.workflows.ensemble import ensemble_job

    job = {"work_dir": str(tmp_path),
           "ensemble": {"basins_store": s3_basins, "store": f"{s3}/ens/ensemble.zarr", "n_members": 12,
                        "chunk_basins": 2, "warmup_days": 365, "objectives": ["kgeprime", "nse"],
                        "periods": {"calibration": ["1996-01-01", "1997-12-31"]}}}
    local = {**job, "ensemble": {**job["ensemble"], "store": str(tmp_path / "ensemble.zarr")}}
    with local_client() as c:
        store, stats = ensemble_job(validate_config(job), client=c, progress=False)
        assert store == f"{s3}/ens/ensemble.zarr" and stats["done"] == 3 * 12 and not stats["resumed"]
        _, again = ensemble_job(validate_config(job), client=c, progress=False)
        assert again["resumed"] and again["ran"] == 0 and again["done"] == 36   # resumed: nothing left to run
        on_disk, _ = ensemble_job(validate_config(local), client=c, progress=False)
    a, b = open_ensemble(store).load(), open_ensemble(on_disk).load()
    assert (a["status"] == DONE).all() and np.isfinite(a["scores"].sel(period="calibration")).all()
    for v in ("params", "scores", "status"):
        np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=v)


def test_regionalize_writes_its_products_to_s3(s3, tmp_path):
    """``regionalize.output`` as a URL: the maps go to S3 (zarr and netCDF), the catalog entries
    point there, the figures stay local, and a second run refuses the existing products."""
    from lsegeo.config import validate_config
    from lsegeo.errors import ConfigError
    from lsegeo.io.catalog import catalog_entries, open_catalog
    from lsegeo.locations import catalog_path
    from lsegeo.testing import synthetic_basins, write_basins_store, write_ensemble_store
    from lsegeo.testing.ensembles import PERIODS, WARMUP_DAYS
    from lsegeo.workflows.regionalize import regionalize_job

    sb = synthetic_basins(12, seed=3, withheld=[10, 11])
    basins = write_basins_store(sb, tmp_path / "basins.zarr")
    ens = write_ensemble_store(tmp_path / "ensemble.zarr", basins, n_members=20, seed=2)
    out = f"{s3}/regional_products"
    raw = {"work_dir": str(tmp_path), "cluster": {"n_workers": 1},
           "ensemble": {"periods": {p.name: [str(p.start), str(p.end)] for p in PERIODS}, "warmup_days": WARMUP_DAYS},
           "regionalize": {"store": str(ens), "basins_store": str(basins), "method": "donor-similar",
                           "interval_scheme": None, "samples": 2, "donors": {"k": 2},
                           "backend_options": {"n_estimators": 20, "max_depth": 3}, "output": out,
                           "domains": [{"name": "ungauged", "kind": "basins", "basins": "uncalibrated"}]}}
    from lsegeo.testing import local_client

    with local_client() as c:
        report = regionalize_job(validate_config(raw), client=c, progress=False)
    assert sorted(n for n, _ in list_dir(out)) == ["ungauged.nc", "ungauged.nc.prov.json", "ungauged.zarr",
                                                   "ungauged.zarr.prov.json"]
    assert all((tmp_path / "figures").glob("ungauged*.png")) and report.figures["ungauged"]
    entries = catalog_entries(catalog_path(tmp_path))
    maps = [e for e in entries if "ungauged" in e]
    assert len(maps) >= 2 and f"{out}/ungauged.zarr" in catalog_path(tmp_path).read_text(), entries
    ds = open_catalog(catalog_path(tmp_path))["ungauged_parameters"].read()
    assert ds.sizes["basin"] == 2 and "BETA" in ds
    with pytest.raises(ConfigError, match="already exist"):
        regionalize_job(validate_config(raw), progress=False)


def test_calibration_on_s3_saves_its_emulators_there_and_resumes(s3, s3_basins, tmp_path, caplog):
    """A calibration whose basins store, iteration 0 and calibration store are URLs: iteration 0
    is run first, the emulator of iteration 1 is saved beside the store on S3 (marker object
    last) and reads back, a rerun has nothing to do. (That a job's members on S3 equal those on
    disk is shown by the ensemble test.)"""
    from lsegeo.calibration.store import MARKER, load_emulator, saved_iterations
    from lsegeo.config import validate_config
    from lsegeo.ensembles.store import DONE, open_ensemble
    from lsegeo.io.stores import root_attrs
    from lsegeo.testing import local_client
    from lsegeo.workflows.calibrate import calibrate_job, calibration_paths

    basins = s3_basins
    raw = {"work_dir": str(tmp_path)}
    job = {**raw, "ensemble": {"basins_store": basins, "store": f"{s3}/cal/iter0.zarr", "n_members": 12,
                               "chunk_basins": 2, "warmup_days": 365, "objectives": ["nkgeprime", "kgeprime"],
                               "periods": {"calibration": ["1996-01-01", "1997-12-31"]}},
           "calibrate": {"store": f"{s3}/cal/cal.zarr", "iterations": 1, "proposals": 3, "pop_size": 8,
                         "generations": 3, "restarts": 1, "cv_folds": 0,
                         "backend_options": {"n_estimators": 30, "max_depth": 3}}}
    cfg = validate_config(job)
    paths = calibration_paths(cfg)
    assert (paths.iteration0, paths.store, paths.emulator(1)) == (f"{s3}/cal/iter0.zarr", f"{s3}/cal/cal.zarr",
                                                                   f"{s3}/cal/cal.zarr.emulators/iteration_1")
    with local_client() as c:
        store = calibrate_job(cfg, client=c, progress=False)  # iteration 0 is absent: the ensemble runs first
        assert store == paths.store and root_attrs(store)["lsegeo_iteration0_store"] == paths.iteration0
        assert list(np.bincount(open_ensemble(paths.iteration0)["iteration"].values)) == [12]
        assert list(np.bincount(open_ensemble(store)["iteration"].values)) == [12, 3]
        assert saved_iterations(paths) == [1]
        assert {MARKER, "emulator.json", "calibration_skill.json"} <= {n for n, _ in list_dir(paths.emulator(1))}
        first, made = open_ensemble(store).load(), store_id(store)
        seconds = root_attrs(store)["lsegeo_iteration_seconds"]

        caplog.clear()
        with caplog.at_level(logging.INFO, logger="lsegeo"):  # resumed, nothing left: no fit, proposal or run
            assert calibrate_job(cfg, client=c, progress=False) == store
        lines = [r.getMessage() for r in caplog.records]
        assert any(line.startswith("resuming") for line in lines), lines
        assert not [line for line in lines if "fitted" in line or "proposals for" in line or "runs (" in line]
        assert store_id(store) == made and root_attrs(store)["lsegeo_iteration_seconds"] == seconds

    assert (first["status"] == DONE).all() and np.isfinite(first["scores"].sel(objective="nkgeprime")).all()
    remote = load_emulator(paths.emulator(1))                   # the archive reads back from S3 and predicts
    u = np.random.default_rng(0).uniform(size=(6, len(remote.param_names)))
    assert set(remote.basins) <= set(BASINS)
    assert np.isfinite(remote.predict(np.arange(6) % len(remote.basins), u)).all()
