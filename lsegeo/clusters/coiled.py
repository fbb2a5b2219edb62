"""Cluster kind ``coiled``: a dask cluster of cloud machines managed by Coiled.

``coiled.Cluster`` starts machines in your own AWS, GCP or Azure account through coiled.io, with
your software environment (package sync of the local environment, or ``container``: an image
built from deploy/Dockerfile). :func:`coiled_options` checks ``cluster.options`` against the
keywords of ``coiled.Cluster`` (it has no ``**kwargs``) and adds ``n_workers`` and the thread
environment, contacting nothing; :func:`start_coiled` then creates the cluster.

``cluster.n_workers`` is the number of worker machines (default 1), each running one worker with
as many threads as the machine has cores (Coiled's choice), unless ``options.worker_options``
sets ``nthreads``; ``options.worker_cpu``/``worker_memory``/``worker_vm_types`` choose the
machines. The workers' environment (``environ``) gets ``OMP_WAIT_POLICY=PASSIVE``, and the
thread counts too when ``worker_options.nthreads`` fixes them; either way each worker's pools are
limited to its threads when it starts (:func:`lsegeo.parallel.dask_client`'s worker plugin).

This module imports coiled at the top: :data:`lsegeo.parallel.CLUSTER_KINDS` imports it only when
kind ``coiled`` is chosen (extra ``coiled``).
"""

from __future__ import annotations

from typing import Any

import coiled

from lsegeo.errors import ConfigError
from lsegeo.parallel import check_options, keywords_of
from lsegeo.runtime import thread_environment

__all__ = ["coiled_keywords", "coiled_options", "start_coiled"]

_RESERVED = {"n_workers": "the number of worker machines is cluster.n_workers",
             "asynchronous": "lsegeo uses the cluster synchronously", "cloud": "coiled sets up its own"}


def coiled_keywords() -> frozenset[str]:
    """Keywords of ``cluster.options`` for kind ``coiled``: those of ``coiled.Cluster``, less lsegeo's own."""
    return keywords_of(coiled.Cluster.__init__) - set(_RESERVED)


def coiled_options(settings) -> dict[str, Any]:
    """The keyword arguments of ``coiled.Cluster`` for ``settings`` (nothing is contacted).

    Parameters
    ----------
    settings : lsegeo.parallel.ClusterSettings
        Kind ``coiled``.

    Returns
    -------
    dict
        ``options`` with ``n_workers`` (``cluster.n_workers`` or 1) and ``environ`` (the thread
        environment of :func:`lsegeo.runtime.thread_environment`, then the configured
        ``environ``, which wins).

    Raises
    ------
    ConfigError
        A key that ``coiled.Cluster`` does not accept (named ``cluster.options.<key>``, with the
        accepted keywords), ``n_workers`` among the options, or ``worker_options.nthreads`` that is
        not a positive integer.
    """
    options = dict(settings.options)
    check_options(options, coiled_keywords(), "coiled.Cluster", reserved=_RESERVED)
    nthreads = (options.get("worker_options") or {}).get("nthreads")
    if nthreads is not None and (not isinstance(nthreads, int) or nthreads < 1):
        raise ConfigError(f"cluster.options.worker_options.nthreads must be a positive integer, got {nthreads!r}")
    environ = {**thread_environment(nthreads), **{k: str(v) for k, v in (options.pop("environ", None) or {}).items()}}
    return {**options, "n_workers": settings.n_workers or 1, "environ": environ}


def start_coiled(settings):
    """Create the Coiled cluster of ``settings`` (kind ``coiled``).

    Returns
    -------
    coiled.Cluster
        Started; shut down on exit of its context.

    Raises
    ------
    ConfigError
        See :func:`coiled_options`; raised before coiled.io is contacted.
    """
    return coiled.Cluster(**coiled_options(settings))
