"""A small ensemble store over synthetic basins, made and run by the library's own functions.

:func:`write_ensemble_store` draws a Latin hypercube of the model's parameters
(:func:`lsegeo.design.latin_hypercube`), creates the store with
:func:`lsegeo.ensembles.store.create_ensemble` and runs every member with
:func:`lsegeo.ensembles.runner.run_ensemble`, so the store is exactly what the pipeline writes.
The periods fit the default series of :func:`lsegeo.testing.basins.synthetic_basins`
(2000-2002): one year of warm-up, then a calibration and a test year.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path

from lsegeo.periods import Period

__all__ = ["PERIODS", "WARMUP_DAYS", "OBJECTIVES", "write_ensemble_store", "local_client"]

#: evaluation periods that fit the default synthetic series (2000-01-01 to 2002-12-31)
PERIODS = (Period("calibration", dt.date(2001, 1, 1), dt.date(2001, 12, 31)),
           Period("test", dt.date(2002, 1, 1), dt.date(2002, 12, 31)))
#: warm-up days before the earliest period (all of 2000)
WARMUP_DAYS = 366
#: objectives scored by default
OBJECTIVES = ("kgeprime", "nkgeprime", "nse", "mae")


@contextlib.contextmanager
def local_client() -> Iterator:
    """An in-process dask client (one worker thread): cheap to start, no worker processes.

    :func:`lsegeo.ensembles.runner.run_ensemble` submits its tasks to a ``distributed`` client;
    this one runs them in the calling process, as unit tests want.
    """
    from distributed import Client

    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as c:
        yield c


def write_ensemble_store(path: str | Path, basins_store: str | Path, *, basins: Sequence[str] | None = None,
                         model: str = "hbv", n_members: int = 20, seed: int = 0,
                         periods: Sequence[Period] = PERIODS, warmup_days: int = WARMUP_DAYS,
                         objectives: Sequence[str] = OBJECTIVES, chunk_basins: int = 2, run: bool = True,
                         client=None, overwrite: bool = False) -> Path:
    """Create (and run) an ensemble store of a Latin hypercube over a basins store.

    Parameters
    ----------
    path : path-like
        The ensemble store to create.
    basins_store : path-like
        A basins store, e.g. from :func:`lsegeo.testing.basins.write_basins_store`.
    basins : sequence of str, optional
        Gauge ids; default every basin of the store's ``forcing`` group.
    model : str
        Registered model adapter.
    n_members : int
        Members per basin: the default parameter set, then a Latin hypercube of ``n_members - 1``.
    seed : int
        Seed of the Latin hypercube.
    periods, warmup_days, objectives, chunk_basins
        As for :func:`lsegeo.ensembles.store.create_ensemble`.
    run : bool
        Run the members (otherwise they are left pending).
    client : distributed.Client, optional
        Client to run on; default an in-process one (:func:`local_client`).
    overwrite : bool
        Replace an existing store.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from lsegeo.design import latin_hypercube
    from lsegeo.ensembles.runner import run_ensemble
    from lsegeo.ensembles.store import create_ensemble
    from lsegeo.io.stores import open_store
    from lsegeo.models.registry import get_model

    space = get_model(model).space
    if basins is None:
        basins = [str(b) for b in open_store(basins_store, "forcing")["basin"].values]
    params = latin_hypercube(space, n_members, seed=seed)
    create_ensemble(path, basins_store=basins_store, basins=basins, model=model, space=space, params=params,
                    periods=periods, objectives=objectives, warmup_days=warmup_days, chunk_basins=chunk_basins,
                    overwrite=overwrite, call="lsegeo.testing.write_ensemble_store")
    if run:
        with contextlib.ExitStack() as stack:
            c = client if client is not None else stack.enter_context(local_client())
            run_ensemble(path, client=c, progress=False, call="lsegeo.testing.write_ensemble_store")
    return Path(path)
