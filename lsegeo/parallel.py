"""One factory for the dask cluster that runs lsegeo's parallel work.

The rest of the code takes a :class:`distributed.Client` and never knows which kind of cluster
is behind it: a local cluster of worker processes (the default), a running scheduler, or an
HPC cluster through dask-jobqueue, chosen by configuration only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from lsegeo.config import ClusterConfig
from lsegeo.errors import ConfigError

__all__ = ["make_cluster", "dask_client"]


def make_cluster(cfg: ClusterConfig):
    """Start the cluster that ``cfg`` describes and return it (not for ``kind='address'``)."""
    if cfg.kind == "local":
        import os

        from distributed import LocalCluster

        n = cfg.n_workers or max(1, min(os.cpu_count() or 1, 4))
        return LocalCluster(n_workers=n, threads_per_worker=cfg.threads_per_worker,
                            processes=True, memory_limit=cfg.memory_limit,
                            dashboard_address=":0", **cfg.options)
    if cfg.kind in ("slurm", "pbs"):
        try:
            import dask_jobqueue
        except ImportError as err:
            raise ConfigError(f"cluster.kind {cfg.kind!r} needs dask-jobqueue: pip install 'lsegeo[hpc]'") from err
        cls = dask_jobqueue.SLURMCluster if cfg.kind == "slurm" else dask_jobqueue.PBSCluster
        cluster = cls(**cfg.options)
        cluster.scale(jobs=cfg.n_workers or 1)
        return cluster
    raise ConfigError(f"cluster.kind {cfg.kind!r} does not start a cluster; it connects to cluster.address")


@contextlib.contextmanager
def dask_client(cfg: ClusterConfig | None = None, client=None) -> Iterator:
    """Yield a client: ``client`` itself when given, else one on a cluster made from ``cfg``.

    A cluster started here is closed on exit; a client passed in is left open.
    """
    if client is not None:
        yield client
        return
    from distributed import Client

    cfg = cfg or ClusterConfig()
    if cfg.kind == "address":
        with Client(cfg.address) as c:
            yield c
        return
    with make_cluster(cfg) as cluster, Client(cluster) as c:
        yield c
