"""One factory for the dask cluster that runs lsegeo's parallel work.

The rest of the code takes a :class:`distributed.Client` and never knows which kind of cluster
is behind it: a local cluster of worker processes (the default), a running scheduler, an HPC
cluster through dask-jobqueue, a Kubernetes cluster of the dask operator, a dask-gateway cluster
or a Coiled cluster, chosen by configuration only (docs/deployment.md).

Each kind is an entry of :data:`CLUSTER_KINDS`, a :class:`~lsegeo.registry.Registry` of
*starters*: callables that take a :class:`ClusterSettings` and return a context manager that
yields what :class:`distributed.Client` connects to (a started cluster, closed on exit, or the
address of a running scheduler). The HPC starters live in :mod:`lsegeo.jobqueue`, the cloud
ones in :mod:`lsegeo.clusters`, each imported only when its kind is chosen; without its package
that choice raises :class:`~lsegeo.errors.MissingDependencyError` naming the extra (``hpc``,
``kubernetes``, ``gateway``, ``coiled``). Every starter checks ``cluster.options`` against the
keywords its cluster class accepts before anything is started (:func:`check_options`). Another
kind is one ``CLUSTER_KINDS.add("name", "module:starter")`` away.

:func:`dask_client` registers :class:`lsegeo.clusters.threads.ThreadLimits` on every cluster it
makes, so that the native thread pools of each worker (BLAS, XGBoost's OpenMP, torch) stay
within the worker's threads and idle OpenMP threads do not spin.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from lsegeo.errors import ConfigError, LsegeoError
from lsegeo.registry import Registry
from lsegeo.runtime import available_cores, thread_environment

__all__ = ["ClusterSettings", "CLUSTER_KINDS", "make_cluster", "dask_client", "cancel_and_drain", "start_local",
           "connect_address", "local_workers", "local_cluster_kwargs", "keywords_of", "check_options",
           "submit_task", "task_result"]


@dataclass(frozen=True)
class ClusterSettings:
    """Where the parallel work runs; the one place that holds the defaults of the ``cluster`` section.

    Attributes
    ----------
    kind : str
        A name of :data:`CLUSTER_KINDS`: ``"local"`` (a :class:`distributed.LocalCluster` of
        worker processes), ``"address"`` (a running scheduler), ``"slurm"`` or ``"pbs"``
        (dask-jobqueue, extra ``hpc``), ``"kubernetes"`` (the dask-kubernetes operator's
        ``KubeCluster``, extra ``kubernetes``), ``"gateway"`` (a dask-gateway server, extra
        ``gateway``) or ``"coiled"`` (extra ``coiled``).
    n_workers : int or None
        What is started, by kind:

        * ``local``: worker processes (None: the number of cores, at most 4), each of
          ``threads_per_worker`` threads;
        * ``slurm``/``pbs``: batch jobs (None: 1); each job runs ``options.processes`` workers of
          ``options.cores // options.processes`` threads, so there are ``n_workers *
          processes`` workers in all;
        * ``kubernetes``: worker pods (None: 1), one worker of ``threads_per_worker`` threads each;
        * ``gateway``: workers (None: 1; ``options.adapt`` asks for adaptive scaling instead),
          whose cores the gateway server's options set (e.g. ``options.worker_cores``);
        * ``coiled``: worker machines (None: 1), one worker each, with as many threads as the
          machine has cores unless ``options.worker_options`` sets ``nthreads``;
        * ``address``: unused (the scheduler has its workers).
    threads_per_worker : int
        Threads of each worker process of a ``local`` cluster and of each ``kubernetes`` pod.
    memory_limit : str
        Memory limit of each ``local`` worker and ``kubernetes`` pod's worker (``"auto"``: the
        machine's memory shared out, or the pod's memory limit).
    address : str or None
        Scheduler address for ``kind="address"``, e.g. ``tcp://scheduler:8786``.
    options : dict
        Keyword arguments of the cluster's constructor, passed through after a check against
        the keywords it accepts: ``LocalCluster``, ``dask_jobqueue.SLURMCluster``/``PBSCluster``,
        ``KubeCluster`` and its resource spec, ``dask_gateway.Gateway`` and the server's cluster
        options, ``coiled.Cluster``. See the starter of each kind.
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


def keywords_of(*callables: Callable) -> frozenset[str]:
    """The keyword arguments that ``callables`` accept by name (``self`` and ``*args``/``**kwargs`` left out)."""
    names: set[str] = set()
    for fn in callables:
        for p in inspect.signature(fn).parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
                names.add(p.name)
    return frozenset(names)


def check_options(options: Mapping[str, Any], accepted: Iterable[str] | None, target: str, *,
                  reserved: Mapping[str, str] | None = None) -> None:
    """Refuse ``cluster.options`` keys that ``target`` does not accept, before anything starts.

    Parameters
    ----------
    options : mapping
        ``cluster.options``.
    accepted : iterable of str or None
        The keywords of the cluster's constructor (:func:`keywords_of`); None accepts any key
        (a constructor that takes ``**kwargs``).
    target : str
        What the options go to, for the message (``"dask_jobqueue.PBSCluster"``).
    reserved : mapping of str to str, optional
        Keys that lsegeo sets itself, each with the reason (``"n_workers": "use cluster.n_workers"``).

    Raises
    ------
    ConfigError
        Naming every bad key as ``cluster.options.<key>``, and the accepted keywords.
    """
    reserved = reserved or {}
    taken = sorted(k for k in options if k in reserved)
    if taken:
        raise ConfigError("; ".join(f"cluster.options.{k} is set by lsegeo ({reserved[k]})" for k in taken))
    if accepted is None:
        return
    accepted = set(accepted) - set(reserved)
    unknown = sorted(k for k in options if k not in accepted)
    if unknown:
        names = ", ".join(f"cluster.options.{k}" for k in unknown)
        raise ConfigError(f"{names}: not {'a keyword' if len(unknown) == 1 else 'keywords'} of {target}; "
                          f"it accepts: {', '.join(sorted(accepted))}")


_LOCAL_RESERVED = {"n_workers": "use cluster.n_workers", "threads_per_worker": "use cluster.threads_per_worker",
                   "memory_limit": "use cluster.memory_limit"}


def local_cluster_kwargs(settings: _ClusterLike) -> dict[str, Any]:
    """The keyword arguments of :class:`distributed.LocalCluster` for kind ``local``.

    Worker processes (``processes=True``), a dashboard on a free port, and in each worker's
    environment (``env``) the thread limits of :func:`lsegeo.runtime.thread_environment` for
    ``threads_per_worker`` threads; ``settings.options`` are added last (an ``env`` of theirs
    is merged into lsegeo's; with ``processes: false`` the workers are threads of this process
    and get no environment). ``LocalCluster`` takes any worker keyword (``**worker_kwargs``),
    so only the keys that are fields of the section are refused.

    Raises
    ------
    ConfigError
        ``options`` sets ``n_workers``, ``threads_per_worker`` or ``memory_limit``.
    """
    options = dict(settings.options)
    check_options(options, None, "distributed.LocalCluster", reserved=_LOCAL_RESERVED)
    kwargs = {"n_workers": local_workers(settings.n_workers), "threads_per_worker": settings.threads_per_worker,
              "processes": True, "memory_limit": settings.memory_limit, "dashboard_address": ":0", **options}
    if kwargs["processes"]:  # worker processes started by nannies, which take an environment
        kwargs["env"] = {**thread_environment(settings.threads_per_worker), **(options.get("env") or {})}
    return kwargs


def start_local(settings: _ClusterLike):
    """Start a :class:`distributed.LocalCluster` of worker processes (kind ``local``).

    Parameters
    ----------
    settings : ClusterSettings
        Keyword arguments from :func:`local_cluster_kwargs`.

    Returns
    -------
    distributed.LocalCluster
        Started; a context manager that closes it on exit.
    """
    from distributed import LocalCluster

    return LocalCluster(**local_cluster_kwargs(settings))


def connect_address(settings: _ClusterLike) -> contextlib.AbstractContextManager[str]:
    """The scheduler address of kind ``address`` (nothing is started here).

    Raises
    ------
    ConfigError
        ``settings.address`` is not set, or ``settings.options`` is not empty (nothing takes them).
    """
    if not settings.address:
        raise ConfigError("cluster.kind 'address' needs cluster.address, e.g. tcp://scheduler:8786")
    if settings.options:
        keys = ", ".join(f"cluster.options.{k}" for k in sorted(settings.options))
        raise ConfigError(f"{keys}: kind 'address' connects to a running scheduler and takes no options")
    return contextlib.nullcontext(settings.address)


#: cluster kinds: name -> starter (settings -> context manager yielding what a Client connects to)
CLUSTER_KINDS: Registry = Registry(
    "cluster kind",
    {"local": "lsegeo.parallel:start_local",
     "address": "lsegeo.parallel:connect_address",
     "slurm": "lsegeo.jobqueue:start_slurm",
     "pbs": "lsegeo.jobqueue:start_pbs",
     "kubernetes": "lsegeo.clusters.kubernetes:start_kubernetes",
     "gateway": "lsegeo.clusters.gateway:start_gateway",
     "coiled": "lsegeo.clusters.coiled:start_coiled"},
    extras={"slurm": "hpc", "pbs": "hpc", "kubernetes": "kubernetes", "gateway": "gateway", "coiled": "coiled"},
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
        The kind needs a package that is not installed (dask-jobqueue for ``slurm``/``pbs``,
        dask-kubernetes, dask-gateway, coiled).
    ConfigError
        ``settings.options`` holds a key that the kind's cluster class does not accept (checked
        before anything is started).
    """
    settings = settings or ClusterSettings()
    return CLUSTER_KINDS.create(settings.kind, settings)


@contextlib.contextmanager
def dask_client(settings: _ClusterLike | None = None, client=None) -> Iterator:
    """Yield a client: ``client`` itself when given, else one on a cluster made from ``settings``.

    A cluster started here is closed on exit, and its workers' native thread pools are kept
    within each worker's threads (:func:`lsegeo.clusters.threads.limit_worker_threads`); a
    client passed in is left open and as it is (call ``limit_worker_threads`` on it yourself).
    """
    if client is not None:
        yield client
        return
    from distributed import Client

    from lsegeo.clusters.threads import limit_worker_threads

    with make_cluster(settings) as target, Client(target) as c:
        limit_worker_threads(c)
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
