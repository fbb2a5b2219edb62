"""Beyond one machine, with real processes: a ``dask scheduler`` and ``dask worker`` processes on loopback.

1. An ensemble, a short calibration and a regionalization pointed at the scheduler's address
   (``cluster.kind: address``) give bit for bit the results of a ``LocalCluster`` with the same seed
   (the calibration with a worker killed on the way, which it survives as well).
2. One worker process is killed (SIGKILL) in the middle of each: the run completes on the
   others, no finished member is lost or run twice, and the result equals the undisturbed run's.
3. The client process of a regionalization is killed in the middle of ``lse-optimise``: the same
   command resumes, loads the finished chunks and the fitted emulators instead of computing them
   again (counted), and writes the products of an undisturbed run. (The client kills of an
   ensemble and of a calibration are in ``test_ensemble.py`` and ``test_calibrate.py``.)
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from lsegeo.config import validate_config
from lsegeo.ensembles.store import DONE, ensemble_progress, open_ensemble
from lsegeo.io.stores import open_store
from tests.conftest import small_job_config

pytestmark = pytest.mark.slow

DASK = str(Path(sys.executable).with_name("dask"))
ENSEMBLE_VARS = ("params", "scores", "status", "run", "iteration")


class DaskProcesses:
    """A ``dask scheduler`` and ``dask worker`` processes (no nanny: a killed worker stays dead)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.workers: dict[str, subprocess.Popen] = {}
        file = root / "scheduler.json"
        self.scheduler = subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                           "--no-dashboard", "--scheduler-file", str(file)],
                                          stdout=subprocess.DEVNULL, stderr=(root / "scheduler.log").open("w"))
        deadline = time.time() + 60
        while not file.exists() and time.time() < deadline:
            time.sleep(0.1)
        self.address = json.loads(file.read_text())["address"]
        self.n = 0

    def start_worker(self) -> str:
        name = f"worker-{self.n}"
        self.n += 1
        self.workers[name] = subprocess.Popen(
            [DASK, "worker", self.address, "--nthreads", "1", "--nworkers", "1", "--no-nanny", "--no-dashboard",
             "--name", name, "--host", "127.0.0.1", "--local-directory", str(self.root / name)],
            stdout=subprocess.DEVNULL, stderr=(self.root / f"{name}.log").open("w"))
        return name

    def wait_for(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=60) as c:
            c.wait_for_workers(n, timeout=120)
            deadline = time.time() + 60
            while len(c.scheduler_info(n_workers=-1)["workers"]) != n and time.time() < deadline:
                time.sleep(0.1)

    def kill(self, name: str) -> None:
        proc = self.workers.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def close(self) -> None:
        for proc in [*self.workers.values(), self.scheduler]:
            proc.terminate()
        for proc in [*self.workers.values(), self.scheduler]:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def dask_processes(tmp_path_factory):
    procs = DaskProcesses(tmp_path_factory.mktemp("dask_processes"))
    try:
        for _ in range(2):
            procs.start_worker()
        procs.wait_for(2)
        yield procs
    finally:
        procs.close()


def _address(procs: DaskProcesses) -> dict:
    return {"kind": "address", "address": procs.address}


def _busy_worker(address: str, prefix: str, timeout: float = 240.0, until=None) -> str | None:
    """The name of a worker that holds a task whose key starts with ``prefix`` (None if none came)."""
    from distributed import Client

    with Client(address, timeout=60) as c:
        deadline = time.time() + timeout
        while time.time() < deadline and (until is None or not until()):
            names = {w: i.get("name") for w, i in c.scheduler_info(n_workers=-1)["workers"].items()}
            for w, keys in c.processing().items():
                if any(str(k).startswith(prefix) or prefix in str(k) for k in keys):
                    return names[w]
            time.sleep(0.02)
    return None


def _in_thread(fn, *args, **kwargs):
    box: dict = {}

    def target():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as err:  # re-raised in the test
            box["error"] = err

    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t, box


def _joined(t, box, timeout=600):
    t.join(timeout)
    assert not t.is_alive(), "the run did not finish"
    if "error" in box:
        raise box["error"]
    return box["value"]


def _assert_same_members(a: Path, b: Path) -> None:
    x, y = open_ensemble(a).load(), open_ensemble(b).load()
    for v in ENSEMBLE_VARS:
        np.testing.assert_array_equal(x[v].values, y[v].values, err_msg=v)


# -- ensemble ---------------------------------------------------------------------------------------

def _ensemble_cfg(basins_store, store, cluster=None):
    raw = small_job_config(basins_store, store, n_members=200, chunk_basins=1, objectives=("kgeprime", "nse"))
    if cluster:
        raw["cluster"] = cluster
    return validate_config(raw)


@pytest.fixture(scope="module")
def local_ensemble(small_basins_store, client, tmp_path_factory):
    from lsegeo.workflows.ensemble import ensemble_job

    store, _ = ensemble_job(_ensemble_cfg(small_basins_store, tmp_path_factory.mktemp("ens_local") / "e.zarr"),
                            client=client, progress=False)
    return store


def test_ensemble_on_scheduler_processes_equals_local(local_ensemble, small_basins_store, dask_processes, tmp_path):
    from lsegeo.workflows.ensemble import ensemble_job

    store, stats = ensemble_job(_ensemble_cfg(small_basins_store, tmp_path / "e.zarr", _address(dask_processes)),
                                progress=False)
    assert stats["done"] == 9 * 200
    _assert_same_members(store, local_ensemble)


def test_worker_killed_mid_ensemble(local_ensemble, small_basins_store, dask_processes, tmp_path):
    from lsegeo.workflows.ensemble import ensemble_job

    store = tmp_path / "e.zarr"
    t, box = _in_thread(ensemble_job, _ensemble_cfg(small_basins_store, store, _address(dask_processes)),
                        progress=False)
    victim = _busy_worker(dask_processes.address, "ensemble-", until=lambda: not t.is_alive())
    assert victim is not None, "the ensemble ended before a worker could be killed"
    done_before = ensemble_progress(store)["done"]
    dask_processes.kill(victim)
    _joined(t, box)
    after = open_ensemble(store).load()
    assert done_before < after.sizes["basin"] * after.sizes["member"]      # killed part-way
    assert (after["status"] == DONE).all()
    assert (after["run"] == 1).all()                                      # no member run twice (one launch)
    _assert_same_members(store, local_ensemble)
    dask_processes.start_worker()
    dask_processes.wait_for(2)


# -- calibration ------------------------------------------------------------------------------------

def _calibration_cfg(basins_store, root: Path, cluster=None):
    raw = small_job_config(basins_store, root / "iter0.zarr", n_members=30)
    raw["calibrate"] = {"store": str(root / "cal.zarr"), "iterations": 1, "proposals": 5, "pop_size": 16,
                        "generations": 20, "restarts": 1, "cv_folds": 0,
                        "backend_options": {"n_estimators": 60, "max_depth": 4}}
    if cluster:
        raw["cluster"] = cluster
    return validate_config(raw)


@pytest.fixture(scope="module")
def local_calibration(small_basins_store, client, tmp_path_factory):
    from lsegeo.workflows.calibrate import calibrate_job

    return calibrate_job(_calibration_cfg(small_basins_store, tmp_path_factory.mktemp("cal_local")), client=client,
                         progress=False)


def test_calibration_on_scheduler_processes_with_a_worker_killed_equals_local(local_calibration, small_basins_store,
                                                                              dask_processes, tmp_path):
    """A short calibration pointed at the scheduler's address, one worker killed while it optimises:
    every iteration's members equal those of the undisturbed LocalCluster run (a calibration is the
    costliest of the three, so one run shows both)."""
    from lsegeo.workflows.calibrate import calibrate_job

    t, box = _in_thread(calibrate_job, _calibration_cfg(small_basins_store, tmp_path, _address(dask_processes)),
                        progress=False)
    victim = _busy_worker(dask_processes.address, "_propose_task", until=lambda: not t.is_alive())
    assert victim is not None, "the calibration ended before a worker could be killed while optimising"
    dask_processes.kill(victim)
    store = _joined(t, box)
    ens = open_ensemble(store).load()
    assert list(np.bincount(ens["iteration"].values)) == [30, 5]      # nothing lost, nothing twice
    assert (ens["status"] == DONE).all()
    _assert_same_members(store, local_calibration)                      # the launch of every member included
    dask_processes.start_worker()
    dask_processes.wait_for(2)


# -- regionalization --------------------------------------------------------------------------------

BOUNDS, RES = (-100.0, 35.0, -97.0, 37.0), 0.25        # 8 x 12 cells
REGIONAL = {"samples": 3, "backend_options": {"n_estimators": 30, "max_depth": 4}, "chunk_targets": 12,
            "optimise": {"pop_size": 16, "generations": 15, "restarts": 1, "trust_donors": 0}}


@pytest.fixture(scope="module")
def regional_stores(tmp_path_factory):
    """(basins store, ensemble store, grid attributes file) of 24 synthetic basins (4 without flow)."""
    from lsegeo.regionalize.rasterize import regular_grid
    from lsegeo.testing import synthetic_basins, write_basins_store, write_ensemble_store
    from tests.test_regionalize_workflow import _attribute_rows

    root = tmp_path_factory.mktemp("regional")
    sb = synthetic_basins(24, seed=3, withheld=[20, 21, 22, 23])
    basins = write_basins_store(sb, root / "basins.zarr")
    ens = write_ensemble_store(root / "ensemble.zarr", basins, n_members=30, seed=2)
    lat, lon = regular_grid(BOUNDS, RES)
    rows = _attribute_rows(sb, np.arange(len(lat) * len(lon)) % 20)
    noise = np.random.default_rng(5).uniform(0.97, 1.03, size=len(rows))    # every cell's attributes differ
    for n in rows.columns:
        if rows[n].dtype.kind == "f":
            rows[n] = rows[n] * noise
    grid = xr.Dataset({n: (("lat", "lon"), rows[n].to_numpy().reshape(len(lat), len(lon))) for n in rows.columns},
                      coords={"lat": lat, "lon": lon})
    grid.to_netcdf(root / "grid_attributes.nc")
    return basins, ens, root / "grid_attributes.nc"


def _regional_raw(stores, work: Path, cluster: dict | None = None) -> dict:
    from lsegeo.testing.ensembles import PERIODS, WARMUP_DAYS

    return {"work_dir": str(work), "cluster": cluster or {"n_workers": 2},
            "ensemble": {"periods": {p.name: [str(p.start), str(p.end)] for p in PERIODS},
                         "warmup_days": WARMUP_DAYS},
            "regionalize": {"store": str(stores[1]), "basins_store": str(stores[0]), "method": "lse-optimise",
                            "interval_scheme": None, "figures": False, "formats": ["zarr"], **REGIONAL,
                            "domains": [{"name": "ungauged", "kind": "basins", "basins": "uncalibrated"},
                                        {"name": "grid", "kind": "grid", "bounds": list(BOUNDS), "resolution": RES,
                                         "attributes": str(stores[2])}]}}


def _product(work: Path, name: str) -> xr.Dataset:
    return open_store(work / "products" / f"{name}.zarr", "parameters").load()


@pytest.fixture(scope="module")
def local_regionalization(regional_stores, client, tmp_path_factory):
    from lsegeo.workflows.regionalize import regionalize_job

    work = tmp_path_factory.mktemp("reg_local")
    report = regionalize_job(validate_config(_regional_raw(regional_stores, work)), client=client, progress=False)
    assert report.checkpoints["lse-optimise"] == {"computed": 9, "resumed": 0}   # 4 basins + 8 chunks of 12 cells
    assert not (work / ".regionalize-checkpoints").exists()                      # cleared once written
    return work


def _assert_same_products(a: Path, b: Path) -> None:
    for name in ("ungauged", "grid"):
        x, y = _product(a, name), _product(b, name)
        assert sorted(x.data_vars) == sorted(y.data_vars) and "BETA_samples" in x
        for v in x.data_vars:
            np.testing.assert_array_equal(x[v].values, y[v].values, err_msg=f"{name}: {v}")


def test_regionalization_on_scheduler_processes_equals_local(local_regionalization, regional_stores,
                                                             dask_processes, tmp_path):
    from lsegeo.workflows.regionalize import regionalize_job

    regionalize_job(validate_config(_regional_raw(regional_stores, tmp_path, _address(dask_processes))),
                    progress=False)
    _assert_same_products(tmp_path, local_regionalization)


def test_worker_killed_mid_regionalization(local_regionalization, regional_stores, dask_processes, tmp_path):
    from lsegeo.workflows.regionalize import regionalize_job

    cfg = validate_config(_regional_raw(regional_stores, tmp_path, _address(dask_processes)))
    t, box = _in_thread(regionalize_job, cfg, progress=False)
    victim = _busy_worker(dask_processes.address, "_propose_task", until=lambda: not t.is_alive())
    assert victim is not None, "the regionalization ended before a worker could be killed while optimising"
    dask_processes.kill(victim)
    _joined(t, box)
    _assert_same_products(tmp_path, local_regionalization)
    dask_processes.start_worker()
    dask_processes.wait_for(2)


def test_killed_regionalize_command_resumes(local_regionalization, regional_stores, tmp_path):
    """SIGKILL ``lsegeo regionalize`` (and its LocalCluster) after some chunks; the rerun loads them."""
    cfg_path = tmp_path / "job.yaml"
    cfg_path.write_text(yaml.safe_dump(_regional_raw(regional_stores, tmp_path)))
    checkpoints = tmp_path / ".regionalize-checkpoints"
    cmd = [sys.executable, "-m", "lsegeo", "regionalize", str(cfg_path), "-q"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    done: list[Path] = []
    while time.time() < deadline and proc.poll() is None:
        done = list(checkpoints.glob("*/lse-optimise-*.npy"))
        if len(done) >= 2:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 2 <= len(done) < 9, f"killed after {len(done)} of 9 chunks"
    finished = len(list(checkpoints.glob("*/lse-optimise-*.npy")))
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    ungauged = "ungauged: written by an interrupted run of this job" in run.stdout   # its 1 chunk, then grid's 8
    resumed = re.search(r"resumed: (\d+) of (\d+) lse-optimise", run.stdout)
    assert resumed, run.stdout
    assert int(resumed.group(1)) == finished - ungauged >= 1, run.stdout   # finished chunks not optimised again
    assert int(resumed.group(2)) == 9 - ungauged, run.stdout
    assert re.search(r"resumed: 1 of 1 emulators", run.stdout), run.stdout  # nor the emulators fitted again
    assert not checkpoints.exists()
    _assert_same_products(tmp_path, local_regionalization)
