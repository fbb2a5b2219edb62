"""Cluster kind ``gateway``: a dask cluster from a dask-gateway server.

A dask-gateway server (on Kubernetes, Hadoop/YARN or an HPC batch system, run by the site)
starts schedulers and workers on request, with the image, cores and memory that its own cluster
options allow. :func:`gateway_request` sorts ``cluster.options`` into the arguments of
``dask_gateway.Gateway`` (``address``, ``proxy_address``, ``public_address``, ``auth``), the
server's cluster options (everything else: ``worker_cores``, ``worker_memory``, ``image``, ...,
as the server names them) and how to scale; nothing is contacted. :func:`start_gateway` asks
the server for its cluster options, refuses those it does not have (before any cluster is
requested), requests the cluster and scales it to ``cluster.n_workers`` workers (default 1), or
lets the server scale it between ``options.adapt.minimum`` and ``maximum``.

The workers' threads are what the server's options give them (``worker_cores``); the thread
limits of each worker are set when it starts, by :func:`lsegeo.parallel.dask_client`'s worker
plugin.

This module imports dask-gateway at the top: :data:`lsegeo.parallel.CLUSTER_KINDS` imports it
only when kind ``gateway`` is chosen (extra ``gateway``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import dask_gateway

from lsegeo.errors import ConfigError
from lsegeo.parallel import check_options, keywords_of

__all__ = ["GATEWAY_KEYWORDS", "GatewayRequest", "gateway_request", "close_gateway", "start_gateway"]

#: options that go to ``dask_gateway.Gateway``; ``shutdown_on_close`` and ``adapt`` are lsegeo's
GATEWAY_KEYWORDS = keywords_of(dask_gateway.Gateway.__init__) - {"asynchronous", "loop"}
_RESERVED = {"n_workers": "the number of workers is cluster.n_workers", "cluster_options": "give them one by one"}


@dataclass(frozen=True)
class GatewayRequest:
    """What :func:`start_gateway` asks a dask-gateway server for.

    Attributes
    ----------
    gateway_kwargs : dict
        Keyword arguments of ``dask_gateway.Gateway`` (``address``, ``auth``, ...).
    cluster_options : dict
        The server's cluster options (checked against the server by :func:`start_gateway`).
    n_workers : int
        Workers to scale to, unless ``adapt`` is set.
    adapt : dict or None
        Keyword arguments of ``GatewayCluster.adapt`` (``minimum``, ``maximum``).
    shutdown_on_close : bool
        Shut the cluster down when lsegeo is done with it (default True).
    """

    gateway_kwargs: dict[str, Any]
    cluster_options: dict[str, Any] = field(default_factory=dict)
    n_workers: int = 1
    adapt: dict[str, Any] | None = None
    shutdown_on_close: bool = True

    def gateway(self) -> dask_gateway.Gateway:
        """A ``dask_gateway.Gateway`` client for the server (contacts nothing yet; ``close()`` it).

        Raises
        ------
        ConfigError
            No address (neither in the options nor in dask's ``gateway.address`` configuration),
            or an ``auth`` that dask-gateway cannot set up (e.g. ``jupyterhub`` without
            ``JUPYTERHUB_API_TOKEN`` in the environment).
        """
        try:
            return dask_gateway.Gateway(**self.gateway_kwargs)
        except (ValueError, TypeError, ImportError) as err:
            key = "address" if "address" in str(err) else "auth"
            raise ConfigError(f"cluster.options.{key}: dask_gateway.Gateway refuses it: {err}") from None


def close_gateway(gateway: Any) -> None:
    """Close a ``dask_gateway.Gateway`` client once and for all.

    dask-gateway's ``Gateway.__del__`` closes the client again when it is collected, which fails
    on the event loop that the first close stopped ("Accessing the loop property while the loop
    is not running"); after closing, the client's loop runner is dropped so that it does not.
    """
    if getattr(gateway, "_loop_runner", None) is None:
        return
    try:
        gateway.close()
    except RuntimeError:  # closed before: its loop is stopped
        pass
    gateway.__dict__.pop("_loop_runner", None)


def gateway_request(settings) -> GatewayRequest:
    """Sort ``settings.options`` into a :class:`GatewayRequest` (no server is contacted).

    Parameters
    ----------
    settings : lsegeo.parallel.ClusterSettings
        Kind ``gateway``; the server's address is ``options.address``, or ``cluster.address``.

    Raises
    ------
    ConfigError
        ``options`` sets ``n_workers`` or ``cluster_options``, or ``adapt`` is not a mapping of
        ``minimum``/``maximum``.
    """
    options = dict(settings.options)
    check_options(options, None, "dask_gateway.Gateway", reserved=_RESERVED)
    gateway_kwargs = {k: options.pop(k) for k in sorted(GATEWAY_KEYWORDS) if k in options}
    if "address" not in gateway_kwargs and settings.address:
        gateway_kwargs["address"] = settings.address
    adapt = options.pop("adapt", None)
    if adapt is not None:
        if not isinstance(adapt, dict):
            raise ConfigError(f"cluster.options.adapt must be a mapping like {{minimum: 0, maximum: 20}}, "
                              f"got {adapt!r}")
        check_options({f"adapt.{k}": v for k, v in adapt.items()}, {"adapt.minimum", "adapt.maximum"},
                      "GatewayCluster.adapt")
        adapt = dict(adapt)
    shutdown = bool(options.pop("shutdown_on_close", True))
    return GatewayRequest(gateway_kwargs, options, settings.n_workers or 1, adapt, shutdown)


@contextlib.contextmanager
def start_gateway(settings) -> Iterator[Any]:
    """Request the dask-gateway cluster of ``settings`` and scale it (kind ``gateway``).

    Yields
    ------
    dask_gateway.GatewayCluster
        Started and scaled; shut down on exit (unless ``options.shutdown_on_close`` is false).

    Raises
    ------
    ConfigError
        See :func:`gateway_request`; or a cluster option that the server does not offer (the
        message names ``cluster.options.<key>`` and the server's options), or a value that it
        refuses. Raised before a cluster is requested.
    """
    request = gateway_request(settings)
    gateway = request.gateway()
    try:
        offered = gateway.cluster_options()  # asks the server; starts nothing
        check_options(request.cluster_options, set(offered) | GATEWAY_KEYWORDS | {"adapt", "shutdown_on_close"},
                      f"the dask-gateway server at {gateway.address}")
        for key, value in request.cluster_options.items():
            try:
                offered[key] = value
            except (ValueError, TypeError) as err:
                raise ConfigError(f"cluster.options.{key}: the dask-gateway server refuses {value!r}: {err}") from None
        cluster = gateway.new_cluster(cluster_options=offered, shutdown_on_close=request.shutdown_on_close)
        try:
            with cluster:
                if request.adapt is not None:
                    cluster.adapt(**request.adapt)
                else:
                    cluster.scale(request.n_workers)
                yield cluster
        finally:
            close_gateway(cluster.gateway)
    finally:
        close_gateway(gateway)
