"""One factory for the dask cluster that runs lsegeo's parallel work.

The rest of the code takes a :class:`distributed.Client` and never knows which kind of cluster
is behind it: a local cluster of worker processes (the default), a running scheduler, or an
HPC cluster through dask-jobqueue, chosen by configuration only.

Each kind is an entry of :data:`CLUSTER_KINDS`, a :class:`~lsegeo.registry.Registry` of
*starters*: callables that take a :class:`ClusterSettings` and return a context manager that
yields what :class:`distributed.Client` connects to (a started cluster, closed on exit, or the
address of a running scheduler). The HPC starters live in :mod:`lsegeo.jobqueue`, imported only
when a ``slurm`` or ``pbs`` cluster is chosen; without dask-jobqueue that choice raises
:class:`~lsegeo.errors.MissingDependencyError` naming the extra ``hpc``. Another kind is one
``CLUSTER_KINDS.add("name", "module:starter")`` away.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from lsegeo.errors import ConfigError, LsegeoError
from lsegeo.registry import Registry
from lsegeo.runtime import available_cores

__all__ = ["ClusterSettings", "CLUSTER_KINDS", "make_cluster", "dask_client", "cancel_and_drain", "start_local",
           "connect_address", "local_workers", "submit_task", "task_result"]


@dataclass(frozen=True)
class ClusterSettings:
    """Where the parallel work runs; the one place that holds the defaults of the ``cluster`` section.

    Attributes
    ----------
    kind : str
        A name of :data:`CLUSTER_KINDS`: ``"local"`` (a :class:`distributed.LocalCluster` of
        worker processes), ``"address"`` (a running scheduler), ``"slurm"`` or ``"pbs"``
        (dask-jobqueue, extra ``hpc``).
    n_workers : int or None
        Worker processes of a local cluster (None: the number of cores, at most 4), or the
        number of jobs of an HPC cluster (None: 1).
    threads_per_worker : int
        Threads of each local worker process.
    memory_limit : str
        Memory limit of each local worker (``"auto"``: the machine's memory shared out).
    address : str or None
        Scheduler address for ``kind="address"``, e.g. ``tcp://scheduler:8786``.
    options : dict
        Extra keyword arguments of the cluster's constructor (``LocalCluster``,
        ``dask_jobqueue.SLURMCluster`` or ``PBSCluster``), passed unchanged.
    """

    kind: str = "local"
    n_workers: int | None = None
    threads_per_worker: int = 1
    memory_limit: str = "auto"
    address: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict."""
        return asdict(self)


class _ClusterLike(Protocol):  # ClusterSettings, or anything with its fields (a config section)
    kind: str
    n_workers: int | None
    threads_per_worker: int
    memory_limit: str
    address: str | None
    options: dict[str, Any]


def local_workers(n_workers: int | None) -> int:
    """Worker processes of a local cluster: ``n_workers``, or the number of cores, at most 4."""
    return n_workers or min(available_cores(), 4)


def start_local(settings: _ClusterLike):
    """Start a :class:`distributed.LocalCluster` of worker processes (kind ``local``).

    Returns
    -------
    distributed.LocalCluster
        Started; a context manager that closes it on exit.
    """
    from distributed import LocalCluster

    return LocalCluster(n_workers=local_workers(settings.n_workers), threads_per_worker=settings.threads_per_worker,
                        processes=True, memory_limit=settings.memory_limit, dashboard_address=":0",
                        **settings.options)


def connect_address(settings: _ClusterLike) -> contextlib.AbstractContextManager[str]:
    """The scheduler address of kind ``address`` (nothing is started here).

    Raises
    ------
    ConfigError
        ``settings.address`` is not set.
    """
    if not settings.address:
        raise ConfigError("cluster.kind 'address' needs cluster.address, e.g. tcp://scheduler:8786")
    return contextlib.nullcontext(settings.address)


#: cluster kinds: name -> starter (settings -> context manager yielding what a Client connects to)
CLUSTER_KINDS: Registry = Registry(
    "cluster kind",
    {"local": "lsegeo.parallel:start_local",
     "address": "lsegeo.parallel:connect_address",
     "slurm": "lsegeo.jobqueue:start_slurm",
     "pbs": "lsegeo.jobqueue:start_pbs"},
    extras={"slurm": "hpc", "pbs": "hpc"},
)


def make_cluster(settings: _ClusterLike | None = None):
    """Start what ``settings`` describes, through its entry in :data:`CLUSTER_KINDS`.

    Parameters
    ----------
    settings : ClusterSettings, optional
        Default: a local cluster with the default settings.

    Returns
    -------
    context manager
        Yields what :class:`distributed.Client` connects to: a started cluster (closed on
        exit) or a scheduler address.

    Raises
    ------
    UnknownNameError
        ``settings.kind`` is not a registered cluster kind.
    MissingDependencyError
        The kind needs a package that is not installed (dask-jobqueue for ``slurm``/``pbs``).
    """
    settings = settings or ClusterSettings()
    return CLUSTER_KINDS.create(settings.kind, settings)


@contextlib.contextmanager
def dask_client(settings: _ClusterLike | None = None, client=None) -> Iterator:
    """Yield a client: ``client`` itself when given, else one on a cluster made from ``settings``.

    A cluster started here is closed on exit; a client passed in is left open.
    """
    if client is not None:
        yield client
        return
    from distributed import Client

    with make_cluster(settings) as target, Client(target) as c:
        yield c


class _ReportedError:
    """An lsegeo error raised inside a task, carried back as the task's value (see :func:`submit_task`)."""

    def __init__(self, error: LsegeoError) -> None:
        self.error = error


class _ReturningLsegeoErrors:
    """A task function whose :class:`~lsegeo.errors.LsegeoError` is returned, not raised."""

    def __init__(self, fn) -> None:
        self.fn = fn

    def __call__(self, *args, **kwargs):
        try:
            return self.fn(*args, **kwargs)
        except LsegeoError as err:
            return _ReportedError(err)


def submit_task(client, fn, *args, key: str, **kwargs):
    """Submit ``fn(*args, **kwargs)`` as one task that reports lsegeo's own errors once.

    An :class:`~lsegeo.errors.LsegeoError` (a malformed input file, an unreadable store, ...)
    is deterministic: running the task again raises it again. So the task is never retried on
    an error (no ``retries``), and such an error travels back as the task's value, so that the
    worker does not log it as a failed computation as well; :func:`task_result` raises it in
    the caller, where the command line prints it once. A task whose worker dies is still run
    again elsewhere: the scheduler reschedules the tasks of a lost worker by itself (up to
    ``distributed.scheduler.allowed-failures`` times), independently of ``retries``. Any other
    exception is raised by the worker as usual (logged there, with its traceback).

    Parameters
    ----------
    client : distributed.Client
    fn : callable
        A module-level function (pickled by reference).
    *args, **kwargs
        Its arguments.
    key : str
        The task's key, unique to the run.

    Returns
    -------
    distributed.Future
        Pass it to :func:`task_result`.
    """
    return client.submit(_ReturningLsegeoErrors(fn), *args, key=key, pure=False, **kwargs)


def task_result(future):
    """The result of a task of :func:`submit_task`; its lsegeo error is raised here.

    Raises
    ------
    LsegeoError
        The error the task raised.
    """
    value = future.result()
    if isinstance(value, _ReportedError):
        raise value.error
    return value


def _executing(prefix: str, dask_worker=None) -> int:
    """On a worker: how many tasks whose key starts with ``prefix`` are still running."""
    return sum(1 for ts in dask_worker.state.executing if str(ts.key).startswith(prefix))


def cancel_and_drain(client, futures, prefix: str, timeout: float = 300.0) -> None:
    """Cancel ``futures`` and wait until no worker still runs a task of theirs.

    Cancelling a future releases it on the scheduler, but a task that is already running goes on
    in its worker thread. Where such tasks write into a store that is being built, they must be
    finished before the store is removed, or they would re-create parts of it.

    Parameters
    ----------
    client : distributed.Client
    futures : list of distributed.Future
    prefix : str
        The start of every key of ``futures`` (the tasks are found on the workers by it).
    timeout : float
        Seconds to wait at most; after that the function returns anyway.
    """
    import time

    client.cancel(futures)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not any(client.run(_executing, prefix).values()):
                return
        except Exception:  # a worker that is gone runs nothing
            return
        time.sleep(0.2)
