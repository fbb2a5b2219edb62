"""HPC clusters through dask-jobqueue (the optional extra ``hpc``): cluster kinds ``slurm`` and ``pbs``.

This module imports dask-jobqueue at the top on purpose: :data:`lsegeo.parallel.CLUSTER_KINDS`
imports it only when a ``slurm`` or ``pbs`` cluster is chosen, and a missing package then
becomes a :class:`~lsegeo.errors.MissingDependencyError` that says ``pip install 'lsegeo[hpc]'``.

``cluster.options`` go to the dask-jobqueue constructor unchanged (``cores``, ``memory``,
``account``, ``queue``, ``walltime``, ``job_script_prologue``, ...); ``cluster.n_workers`` is
the number of batch jobs submitted.
"""

from __future__ import annotations

from typing import Any

import dask_jobqueue

__all__ = ["JOBQUEUE_CLASSES", "jobqueue_cluster", "start_slurm", "start_pbs"]

#: cluster kind -> dask-jobqueue cluster class
JOBQUEUE_CLASSES: dict[str, type] = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster}


def jobqueue_cluster(kind: str, options: dict[str, Any]):
    """Make the dask-jobqueue cluster of ``kind`` with ``options``, submitting no job yet.

    Its ``job_script()`` shows the batch script that each job will run.

    Parameters
    ----------
    kind : {"slurm", "pbs"}
    options : dict
        Keyword arguments of :class:`dask_jobqueue.SLURMCluster` / :class:`~dask_jobqueue.PBSCluster`.
    """
    return JOBQUEUE_CLASSES[kind](**options)


def _start(kind: str, settings):
    cluster = jobqueue_cluster(kind, dict(settings.options))
    cluster.scale(jobs=settings.n_workers or 1)
    return cluster


def start_slurm(settings):
    """Start a Slurm cluster of ``settings.n_workers`` jobs (default 1); closed on exit of its context."""
    return _start("slurm", settings)


def start_pbs(settings):
    """Start a PBS cluster of ``settings.n_workers`` jobs (default 1); closed on exit of its context."""
    return _start("pbs", settings)
