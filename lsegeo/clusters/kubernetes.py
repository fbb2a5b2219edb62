"""Cluster kind ``kubernetes``: a dask cluster on Kubernetes through the dask-kubernetes operator.

The operator (installed once in the Kubernetes cluster, see docs/deployment.md) turns a
``DaskCluster`` resource into a scheduler pod and worker pods. :func:`kubernetes_cluster_spec`
builds that resource from the settings with the operator's own ``make_cluster_spec`` (no
contact with Kubernetes); :func:`start_kubernetes` hands it to
``dask_kubernetes.operator.KubeCluster(custom_cluster_spec=...)``, which creates it and deletes
it again on exit. The resource spec the test checks is the one that is submitted.

``cluster.n_workers`` is the number of worker pods (default 1), each running one
``dask worker`` of ``cluster.threads_per_worker`` threads and ``cluster.memory_limit``;
``cluster.options`` are, by name, the arguments of ``make_cluster_spec`` (``image``,
``resources``, ``env``, ``worker_command``, ``scheduler_service_type``, ``idle_timeout``,
``jupyter``), ``name``, a ``custom_cluster_spec`` (a ``DaskCluster`` manifest, path or mapping, for
what ``make_cluster_spec`` cannot say: volumes, node selectors, tolerations) or the other
arguments of ``KubeCluster`` (``namespace``, ``shutdown_on_close``, ``resource_timeout``, ...).

This module imports dask-kubernetes at the top: :data:`lsegeo.parallel.CLUSTER_KINDS` imports it
only when kind ``kubernetes`` is chosen (extra ``kubernetes``).
"""

from __future__ import annotations

import copy
import getpass
import uuid
from pathlib import Path
from typing import Any

import yaml
from dask_kubernetes.operator import KubeCluster, make_cluster_spec
from dask_kubernetes.operator.validation import validate_cluster_name
from distributed.deploy.cluster import Cluster

from lsegeo.errors import ConfigError
from lsegeo.parallel import check_options, keywords_of
from lsegeo.runtime import thread_environment

__all__ = ["SPEC_KEYWORDS", "kubernetes_keywords", "kubernetes_cluster_spec", "start_kubernetes"]

#: options that go into the resource spec (arguments of ``make_cluster_spec``)
SPEC_KEYWORDS = keywords_of(make_cluster_spec) - {"name", "n_workers"}
#: the name of the DaskCluster resource unless ``options.name`` sets it ({user}, {uuid} filled in)
DEFAULT_NAME = "lsegeo-{user}-{uuid}"
_RESERVED = {"n_workers": "the number of worker pods is cluster.n_workers",
             "asynchronous": "lsegeo uses the cluster synchronously", "loop": "lsegeo starts the event loop"}


def kubernetes_keywords() -> frozenset[str]:
    """Keywords of ``cluster.options`` for kind ``kubernetes``.

    Those of ``make_cluster_spec`` and ``KubeCluster``, and of ``distributed``'s ``Cluster``, to
    which ``KubeCluster`` passes its other keyword arguments.
    """
    return (keywords_of(make_cluster_spec, KubeCluster.__init__, Cluster.__init__) | {"name"}) - set(_RESERVED)


def _name(template: str) -> str:
    name = template.format(user=getpass.getuser(), uuid=str(uuid.uuid4())[:10]).lower().replace("_", "-")
    try:
        validate_cluster_name(name)
    except Exception as err:  # the operator's ValidationError
        raise ConfigError(f"cluster.options.name {template!r} gives the resource name {name!r}: {err}") from None
    return name


def _env_list(env: Any) -> list[dict[str, str]]:
    """A container's ``env`` as Kubernetes lists it, from a mapping or a list of ``{name, value}``."""
    if isinstance(env, dict):
        return [{"name": str(k), "value": str(v)} for k, v in env.items()]
    return [dict(e) for e in env or []]


def _with_threads(env: Any, threads_env: dict[str, str]) -> list[dict[str, str]]:
    """``env`` with the thread limits added in front, except the names that ``env`` sets itself."""
    env = _env_list(env)
    have = {e.get("name") for e in env}
    return [e for e in _env_list(threads_env) if e["name"] not in have] + env


def kubernetes_cluster_spec(settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``DaskCluster`` resource and the ``KubeCluster`` keyword arguments of ``settings``.

    Nothing is contacted. The workers' environment carries the thread limits of
    :func:`lsegeo.runtime.thread_environment` for ``threads_per_worker`` threads, before the
    configured ``env`` (which wins); the scheduler and workers are started as ``dask scheduler``
    and ``dask worker --nthreads <threads_per_worker> --memory-limit <memory_limit>`` (the
    commands of current ``distributed``) unless ``options.worker_command`` says otherwise.

    Parameters
    ----------
    settings : lsegeo.parallel.ClusterSettings
        Kind ``kubernetes``; ``options.image`` (a container image with lsegeo installed, as
        built from deploy/Dockerfile) is required unless ``options.custom_cluster_spec`` is given.

    Returns
    -------
    spec : dict
        The ``DaskCluster`` resource (``apiVersion``, ``kind``, ``metadata.name``,
        ``spec.worker.replicas`` = ``n_workers`` or 1, ``spec.worker.spec.containers``, ...).
    kwargs : dict
        The other keyword arguments of ``KubeCluster`` (``namespace``, ...).

    Raises
    ------
    ConfigError
        An option that ``KubeCluster`` does not accept, ``n_workers`` among the options, no
        image, ``custom_cluster_spec`` together with the arguments of ``make_cluster_spec``, or
        a resource name that Kubernetes refuses.
    """
    options = dict(settings.options)
    check_options(options, kubernetes_keywords(), "dask_kubernetes.operator.KubeCluster", reserved=_RESERVED)
    spec_args = {k: options.pop(k) for k in sorted(SPEC_KEYWORDS) if k in options}
    custom = options.pop("custom_cluster_spec", None)
    replicas = settings.n_workers or 1
    threads_env = thread_environment(settings.threads_per_worker)
    if custom is None:
        if not spec_args.get("image"):
            raise ConfigError("cluster.options.image is required for kind 'kubernetes': a container image with "
                              "lsegeo installed (built from deploy/Dockerfile)")
        env = _with_threads(spec_args.pop("env", None), threads_env)
        command = spec_args.pop("worker_command", None) or [
            "dask", "worker", "--nthreads", str(settings.threads_per_worker),
            "--memory-limit", str(settings.memory_limit)]
        spec = make_cluster_spec(name=_name(options.pop("name", DEFAULT_NAME)), n_workers=replicas, env=env,
                                 worker_command=command, **spec_args)
        scheduler = spec["spec"]["scheduler"]["spec"]["containers"][0]
        scheduler["args"] = ["dask", "scheduler", *scheduler["args"][1:]]  # no dask-scheduler script any more
    else:
        if spec_args or "name" in options:
            given = ", ".join(f"cluster.options.{k}" for k in sorted(spec_args) + sorted({"name"} & set(options)))
            raise ConfigError(f"{given}: give these inside cluster.options.custom_cluster_spec, not beside it")
        if isinstance(custom, (str, Path)):
            try:
                custom = yaml.safe_load(Path(custom).read_text())
            except OSError as err:
                raise ConfigError(f"cluster.options.custom_cluster_spec: cannot read {custom}: {err}") from None
        spec = copy.deepcopy(dict(custom))
        try:
            spec["metadata"]["name"] = _name(spec["metadata"]["name"])
            worker = spec["spec"]["worker"]
            containers = worker["spec"]["containers"]
        except (KeyError, TypeError):
            raise ConfigError("cluster.options.custom_cluster_spec is not a DaskCluster resource: it needs "
                              "metadata.name and spec.worker.spec.containers") from None
        worker["replicas"] = replicas
        for container in containers:
            container["env"] = _with_threads(container.get("env"), threads_env)
    return spec, options


def start_kubernetes(settings):
    """Create the dask cluster of ``settings`` on Kubernetes (kind ``kubernetes``).

    Returns
    -------
    dask_kubernetes.operator.KubeCluster
        Started (its ``n_workers`` pods requested); deleted on exit of its context.

    Raises
    ------
    ConfigError
        See :func:`kubernetes_cluster_spec`; raised before anything is created.
    """
    spec, kwargs = kubernetes_cluster_spec(settings)
    return KubeCluster(custom_cluster_spec=spec, **kwargs)
