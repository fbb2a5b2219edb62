"""HPC clusters through dask-jobqueue (the optional extra ``hpc``): cluster kinds ``slurm`` and ``pbs``.

This module imports dask-jobqueue at the top on purpose: :data:`lsegeo.parallel.CLUSTER_KINDS`
imports it only when a ``slurm`` or ``pbs`` cluster is chosen, and a missing package then
becomes a :class:`~lsegeo.errors.MissingDependencyError` that says ``pip install 'lsegeo[hpc]'``.

``cluster.options`` go to the dask-jobqueue constructor (``cores``, ``memory``, ``processes``,
``account``, ``queue``, ``walltime``, ``job_script_prologue``, ...), checked first against the
keywords it accepts (:func:`jobqueue_keywords`); ``cluster.n_workers`` is the number of batch
jobs submitted, each running ``processes`` dask workers of ``cores // processes`` threads.
Every job script also exports the thread limits of :func:`lsegeo.runtime.thread_environment`
for those threads, after the configured prologue, before the workers start (PBS sets
``OMP_NUM_THREADS`` to the job's cores, which every worker would otherwise inherit).
"""

from __future__ import annotations

import re
from typing import Any

import dask
import dask_jobqueue
from dask_jobqueue.core import Job, nprocesses_nthreads

from lsegeo.parallel import check_options, keywords_of
from lsegeo.runtime import thread_environment

__all__ = ["JOBQUEUE_CLASSES", "jobqueue_keywords", "jobqueue_options", "jobqueue_cluster", "start_slurm",
           "start_pbs"]

#: cluster kind -> dask-jobqueue cluster class
JOBQUEUE_CLASSES: dict[str, type] = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster}

#: keywords set by lsegeo itself, not by ``cluster.options``
_RESERVED = {"n_workers": "the number of jobs is cluster.n_workers",
             "job_cls": "the job class is chosen by cluster.kind",
             "asynchronous": "lsegeo uses the cluster synchronously", "loop": "lsegeo starts the event loop"}


def jobqueue_keywords(kind: str) -> frozenset[str]:
    """Keywords of ``cluster.options`` that the dask-jobqueue cluster of ``kind`` accepts.

    Those of the cluster class (``JobQueueCluster``), of its job class (``SLURMJob``/``PBSJob``:
    ``queue``, ``account``, ``walltime``, ...) and of ``dask_jobqueue.core.Job`` (``cores``,
    ``memory``, ``processes``, ``job_script_prologue``, ...), less those lsegeo sets itself.
    """
    cls = JOBQUEUE_CLASSES[kind]
    return keywords_of(cls.__init__, cls.job_cls.__init__, Job.__init__) - set(_RESERVED) - {"scheduler"}


def _worker_threads(cls: type, options: dict[str, Any]) -> int | None:
    """Threads of each dask worker of a job: ``cores // processes`` as dask-jobqueue computes them."""
    config = options.get("config_name") or cls.job_cls.config_name
    cores = options.get("cores") or dask.config.get(f"jobqueue.{config}.cores", None)
    if not cores:
        return None
    processes = options.get("processes") or dask.config.get(f"jobqueue.{config}.processes", None)
    if not processes:
        processes, _ = nprocesses_nthreads(int(cores))
    return max(1, int(cores) // int(processes))


def jobqueue_options(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of the dask-jobqueue cluster of ``kind``: ``options`` checked, thread limits added.

    Parameters
    ----------
    kind : {"slurm", "pbs"}
    options : dict
        ``cluster.options``.

    Returns
    -------
    dict
        ``options`` with ``job_script_prologue`` extended by ``export NAME=value`` lines of
        :func:`lsegeo.runtime.thread_environment` for the workers' threads (``cores //
        processes``), each one unless the configured prologue (or dask's ``jobqueue``
        configuration, when ``options`` has none) exports that name itself.

    Raises
    ------
    ConfigError
        A key of ``options`` is not a keyword of the cluster (named ``cluster.options.<key>``,
        with the accepted keywords), or is set by lsegeo itself (``n_workers``).
    """
    cls = JOBQUEUE_CLASSES[kind]
    check_options(options, jobqueue_keywords(kind), f"dask_jobqueue.{cls.__name__}", reserved=_RESERVED)
    out = dict(options)
    config = out.get("config_name") or cls.job_cls.config_name
    prologue = out.pop("job_script_prologue", None) or out.pop("env_extra", None)
    if prologue is None:
        prologue = dask.config.get(f"jobqueue.{config}.job-script-prologue", None) or []
    prologue = [prologue] if isinstance(prologue, str) else list(prologue)
    exported = set(re.findall(r"\bexport\s+([A-Za-z_][A-Za-z0-9_]*)=", "\n".join(prologue)))
    env = thread_environment(_worker_threads(cls, out))
    out["job_script_prologue"] = prologue + [f"export {k}={v}" for k, v in env.items() if k not in exported]
    return out


def jobqueue_cluster(kind: str, options: dict[str, Any]):
    """Make the dask-jobqueue cluster of ``kind`` with ``options``, submitting no job yet.

    Its ``job_script()`` shows the batch script that each job will run.

    Parameters
    ----------
    kind : {"slurm", "pbs"}
    options : dict
        Keyword arguments of :class:`dask_jobqueue.SLURMCluster` / :class:`~dask_jobqueue.PBSCluster`
        (:func:`jobqueue_options` checks them and adds the thread limits).

    Raises
    ------
    ConfigError
        See :func:`jobqueue_options`.
    """
    return JOBQUEUE_CLASSES[kind](**jobqueue_options(kind, options))


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
