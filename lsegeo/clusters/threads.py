"""The thread limits of every worker of an lsegeo cluster: a dask worker plugin.

A dask worker runs ``nthreads`` tasks at a time. Inside a task, numpy's BLAS, XGBoost's OpenMP
and torch would each start one thread per core of the machine by default, so 64 one-thread
workers on a 128-core node would run thousands of threads, and spinning idle OpenMP threads
take cores from the others. :class:`ThreadLimits` runs
:func:`lsegeo.runtime.set_process_threads` with the worker's ``nthreads`` when the worker starts
(and on every worker that joins later): the pools already loaded are limited, the environment
variables of :func:`lsegeo.runtime.thread_environment` (``OMP_WAIT_POLICY=PASSIVE`` among them)
are set for the libraries loaded later, and :func:`lsegeo.runtime.worker_threads` returns the
worker's threads, which is what lsegeo gives XGBoost as ``n_jobs``.

This module imports distributed at the top: :func:`lsegeo.parallel.dask_client` imports it only
when it has a client.
"""

from __future__ import annotations

import os
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from lsegeo.runtime import set_process_threads

__all__ = ["ThreadLimits", "PLUGIN_NAME", "limit_worker_threads"]

#: the name the plugin is registered under (registering again replaces it)
PLUGIN_NAME = "lsegeo-thread-limits"


class ThreadLimits(WorkerPlugin):
    """Limit the native thread pools of each worker process to its threads.

    A worker that runs inside the process that registered the plugin (a ``LocalCluster`` with
    ``processes=False``) is left alone: the limits are process-wide and would cap the client's
    own work (fitting the emulators) too.

    Parameters
    ----------
    n_threads : int, optional
        Threads for every worker; default each worker's own ``nthreads``.
    """

    name = PLUGIN_NAME

    def __init__(self, n_threads: int | None = None) -> None:
        self.n_threads = None if n_threads is None else max(1, int(n_threads))
        self.client_pid = os.getpid()

    def setup(self, worker: Any) -> None:
        """Apply the limits in the worker's process (called by the worker)."""
        if os.getpid() == self.client_pid:
            return
        set_process_threads(self.n_threads or worker.state.nthreads)


def limit_worker_threads(client: Any, n_threads: int | None = None) -> dict[str, Any]:
    """Register :class:`ThreadLimits` on the cluster of ``client``: its workers, now and later.

    :func:`lsegeo.parallel.dask_client` calls this on every cluster it makes; call it yourself
    for a client of your own.

    Parameters
    ----------
    client : distributed.Client
    n_threads : int, optional
        Threads for every worker; default each worker's own ``nthreads``.

    Returns
    -------
    dict
        The answer of each current worker, by address (``"OK"``).
    """
    return client.register_plugin(ThreadLimits(n_threads), name=PLUGIN_NAME)
