"""Shared fixtures and the two test tiers.

Tiers
-----
``integration``
    Tests that use the real CAMELS data or a real ``distributed.LocalCluster``: every test that
    asks (directly or through another fixture) for one of :data:`INTEGRATION_FIXTURES`, and every
    test marked ``slow``. :func:`pytest_collection_modifyitems` marks them; ``make test`` runs them.
unit (everything else)
    Tests on seeded synthetic data (:mod:`lsegeo.testing`, fixtures ``synthetic``,
    ``synthetic_store``, ``synthetic_ensemble_store``), run on dask's synchronous scheduler;
    ``make test-fast`` (``pytest -m "not integration"``) runs them in a couple of minutes.

The small CAMELS-like trees of the integration tier are made by code from the real CAMELS files (a
few gauges, two years), in a temporary directory; nothing is copied into the repository.
"""

from __future__ import annotations

import bz2
import datetime as dt
import os
from pathlib import Path

import dask
import pandas as pd
import pytest

from lsegeo.io.camels import CamelsLayout
from lsegeo.locations import resolve_data_dir
from lsegeo.periods import Period

# coiled (an optional extra installed for the deploy tests) brings gilknocker, with which every dask
# scheduler and worker samples the GIL each millisecond; the tests' clusters, and the scheduler and
# worker processes they start (which inherit the environment), go without it
os.environ.setdefault("DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__GIL__ENABLED", "False")
dask.config.set({"distributed.admin.system-monitor.gil.enabled": False})

#: fixtures of real data or a real cluster: a test that needs one of them (even through another
#: fixture) is an integration test
INTEGRATION_FIXTURES = frozenset({"data_dir", "camels", "client", "mini_source", "mini_store"})


def pytest_collection_modifyitems(config, items):
    """Mark as ``integration`` every test on real data or a cluster, and every ``slow`` test."""
    for item in items:
        uses = INTEGRATION_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if uses or item.get_closest_marker("slow") is not None:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _unit_tests_run_synchronously(request):
    """Unit tests compute dask graphs on the synchronous scheduler (no threads, no cluster)."""
    if request.node.get_closest_marker("integration") is not None:
        yield
        return
    import dask

    with dask.config.set(scheduler="synchronous"):
        yield


# -- synthetic data (unit tier) ------------------------------------------------------------------

@pytest.fixture(scope="session")
def synthetic():
    """Five seeded synthetic basins, 2000-2002, the fifth withheld (:func:`lsegeo.testing.synthetic_basins`)."""
    from lsegeo.testing import synthetic_basins

    return synthetic_basins(5, seed=0, withheld=[4])


@pytest.fixture(scope="session")
def synthetic_store(synthetic, tmp_path_factory) -> Path:
    """:func:`synthetic` written as a basins store."""
    from lsegeo.testing import write_basins_store

    return write_basins_store(synthetic, tmp_path_factory.mktemp("synthetic") / "basins.zarr")


@pytest.fixture(scope="session")
def synthetic_ensemble_store(synthetic_store, tmp_path_factory) -> Path:
    """20 HBV members over the synthetic basins, run in-process (:func:`lsegeo.testing.write_ensemble_store`)."""
    from lsegeo.testing import write_ensemble_store

    return write_ensemble_store(tmp_path_factory.mktemp("synthetic_ens") / "ensemble.zarr", synthetic_store,
                                n_members=20, seed=1)

# 01013500 is a withheld gauge (forcing, no streamflow); the others have streamflow.
MINI_GAUGES = ("01013500", "01022500", "01030500", "01031500", "01047000")
MINI_END = "1981-12-31"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return resolve_data_dir(expect="camels_us")


@pytest.fixture(scope="session")
def camels(data_dir) -> CamelsLayout:
    return CamelsLayout(data_dir / "camels_us")


@pytest.fixture(scope="session")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as c:
        yield c


def write_forcing_lines(path: Path, lines: list[str]) -> Path:
    """Write forcing-file lines bz2-compressed, as CAMELS ships them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with bz2.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    return path


def forcing_lines(camels: CamelsLayout, gauge: str, n_days: int) -> list[str]:
    with bz2.open(camels.forcing_path(gauge), "rt") as f:
        return [next(f).rstrip("\n") for _ in range(4 + n_days)]


@pytest.fixture(scope="session")
def mini_source(camels, tmp_path_factory) -> Path:
    """A CAMELS-like data directory with 5 gauges and the years 1980-1981."""
    root = tmp_path_factory.mktemp("mini_data")
    cu = root / "camels_us"
    (cu / "attributes").mkdir(parents=True)
    for f in camels.attributes_dir.glob("camels_*.txt"):
        (cu / "attributes" / f.name).symlink_to(f)
    n_days = len(pd.date_range("1980-01-01", MINI_END))
    for g in MINI_GAUGES:
        write_forcing_lines(cu / "forcing" / "daymet" / camels.forcing_path(g).name, forcing_lines(camels, g, n_days))
    q = pd.read_csv(camels.streamflow_table, index_col="date", nrows=n_days)
    cols = [g for g in MINI_GAUGES if g in q.columns]
    (cu / "streamflow").mkdir()
    q[cols].to_csv(cu / "streamflow" / camels.streamflow_table.name, float_format="%.2f")
    return root


@pytest.fixture(scope="session")
def mini_store(mini_source, client, tmp_path_factory) -> Path:
    from lsegeo.ingest.camels import ingest_camels

    out = tmp_path_factory.mktemp("stores") / "mini_basins.zarr"
    return ingest_camels(data_dir=mini_source, store=out, end=MINI_END, chunk_basins=2, client=client,
                         progress=False)


# 12 real basins for ensemble and calibration tests; 01013500, 01052500 and 01078000 are withheld
SMALL_BASINS = ["01013500", "01022500", "01030500", "01031500", "01047000", "01052500", "01054200", "01055000",
                "01057000", "01073000", "01078000", "01118300"]
SMALL_WITHHELD = ["01013500", "01052500", "01078000"]
SMALL_PERIODS = [Period("calibration", dt.date(1997, 10, 1), dt.date(2000, 9, 30)),
                 Period("test", dt.date(1995, 10, 1), dt.date(1997, 9, 30))]


@pytest.fixture(scope="session")
def small_basins_store(data_dir, client, tmp_path_factory):
    """The 12 basins, 1994-2000, ingested from the real data."""
    from lsegeo.ingest.camels import ingest_camels

    out = tmp_path_factory.mktemp("small") / "basins.zarr"
    return ingest_camels(data_dir=data_dir, store=out, basins=SMALL_BASINS, start="1994-01-01", end="2000-12-31",
                         chunk_basins=4, client=client, progress=False)


def small_job_config(basins_store, store, objectives=("kgeprime", "nkgeprime", "nse", "mae"), **ensemble) -> dict:
    """A configuration mapping of a small ensemble over the small basins store."""
    return {"cluster": {"n_workers": 1},
            "ensemble": {"basins_store": str(basins_store), "store": str(store), "n_members": 30,
                         "objectives": list(objectives), "warmup_days": 365, "chunk_basins": 2,
                         "periods": {p.name: [str(p.start), str(p.end)] for p in SMALL_PERIODS}, **ensemble}}


@pytest.fixture(scope="session")
def small_ensemble_store(small_basins_store, client, tmp_path_factory):
    """Iteration 0 over the 9 small basins with streamflow: 100 HBV members, every objective."""
    from lsegeo.config import validate_config
    from lsegeo.workflows.ensemble import ensemble_job

    out = tmp_path_factory.mktemp("small_ens") / "ensemble.zarr"
    cfg = validate_config(small_job_config(small_basins_store, out, n_members=100,
                                           objectives=("kgeprime", "nkgeprime", "kge", "nse", "lognse", "mae",
                                                       "rmse", "monthly_mean_maxabs")))
    store, _ = ensemble_job(cfg, client=client, progress=False)
    return store


MEDIUM_WITHHELD = "01013500"  # attributes and forcing, no streamflow


@pytest.fixture(scope="session")
def medium_stores(data_dir, client, tmp_path_factory):
    """60 real basins with streamflow (every 9th) + one withheld gauge, 1994-2000, and iteration 0 of
    100 HBV members over the 60: (basins store, ensemble store)."""
    from lsegeo.config import validate_config
    from lsegeo.ingest.camels import ingest_camels
    from lsegeo.io.camels import read_streamflow
    from lsegeo.workflows.ensemble import ensemble_job

    layout = CamelsLayout(data_dir / "camels_us")
    with_flow = set(read_streamflow(layout).columns)
    observed = [g for g in layout.forcing_gauges if g in with_flow]
    basins = observed[::9][:60]
    out = tmp_path_factory.mktemp("medium")
    store = ingest_camels(data_dir=data_dir, store=out / "basins.zarr", basins=[MEDIUM_WITHHELD, *basins],
                          start="1994-01-01", end="2000-12-31", chunk_basins=16, client=client, progress=False)
    cfg = validate_config(small_job_config(store, out / "ensemble.zarr", n_members=100, chunk_basins=8,
                                           objectives=("kgeprime", "nkgeprime", "nse", "mae")))
    ens, _ = ensemble_job(cfg, client=client, progress=False)
    return store, ens
