"""The ingest workflow (``lsegeo ingest camels``): configuration -> basins store -> catalog entries.

It turns the ``ingest`` and ``cluster`` sections of a validated :class:`~lsegeo.config.Config`
into the keyword arguments of :func:`lsegeo.ingest.camels.ingest_camels`, then registers the
store in the intake catalog of the work directory and reads back its key figures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsegeo.config import Config
from lsegeo.errors import ConfigError
from lsegeo.ingest.camels import ingest_camels
from lsegeo.io.catalog import register_store
from lsegeo.io.summary import summarize_basins
from lsegeo.io.urls import location
from lsegeo.locations import catalog_path, work_dir

__all__ = ["BASINS_STORE_NAME", "IngestResult", "basins_store_path", "ingest_job"]

logger = logging.getLogger(__name__)

#: file name of the basins store in the work directory
BASINS_STORE_NAME = "camels_basins.zarr"


@dataclass(frozen=True)
class IngestResult:
    """What an ingest made.

    Attributes
    ----------
    store : pathlib.Path or str
        The basins store (the URL text for a store at a URL).
    summary : dict
        Its key figures (:func:`lsegeo.io.summary.summarize_basins`).
    catalog : pathlib.Path or None
        The intake catalog the store was registered in (None: not registered).
    entries : list of str
        The catalog entries written.
    """

    store: Path | str
    summary: dict[str, Any]
    catalog: Path | None = None
    entries: list[str] = field(default_factory=list)


def basins_store_path(cfg: Config) -> Path | str:
    """The basins store of a configuration: ``ingest.store`` (path or URL), else ``<work dir>/camels_basins.zarr``."""
    return location(cfg.ingest.store) if cfg.ingest.store else (cfg.work_dir or work_dir()) / BASINS_STORE_NAME


def ingest_job(cfg: Config, *, catalog: str | Path | None = None, register: bool = True, client=None,
               progress: bool = True, call: str = "") -> IngestResult:
    """Ingest CAMELS-US as ``cfg`` says and register the store in an intake catalog.

    Parameters
    ----------
    cfg : Config
        Sections ``ingest`` (basins, period, chunking, store, overwrite) and ``cluster``, and the
        keys ``data_dir`` and ``work_dir``.
    catalog : path-like, optional
        The catalog file to register the store in; default ``<work dir>/catalog.yaml``. The
        empty string ``""`` (``--catalog ''``) registers nothing, like ``register=False``.
    register : bool
        Register the store in the catalog at all.
    client : distributed.Client, optional
        Run on this client instead of starting the cluster of ``cfg.cluster``.
    progress : bool
        Show a progress bar on standard error.
    call : str
        The command line, for the store's ``history``.

    Returns
    -------
    IngestResult

    Raises
    ------
    ConfigError
        ``catalog`` is a directory (checked before anything is read or written).
    DataNotFoundError, InputFormatError, UnknownBasinError, StoreError
        As :func:`lsegeo.ingest.camels.ingest_camels` raises them.
    """
    ic = cfg.ingest
    target = basins_store_path(cfg)
    register = register and not (isinstance(catalog, str) and catalog == "")
    cat = None
    if register:
        cat = Path(catalog) if catalog is not None else catalog_path(cfg.work_dir)
        if cat.is_dir():
            raise ConfigError(f"catalog {cat} is a directory; give the catalog file (e.g. {cat / 'catalog.yaml'}), "
                              "or '' to skip registering the store")
    logger.info("ingesting CAMELS-US into %s", target)
    store = ingest_camels(data_dir=cfg.data_dir, store=target, basins=ic.basins, start=ic.start, end=ic.end,
                          chunk_basins=ic.chunk_basins, area_tolerance=ic.area_tolerance,
                          overwrite=ic.overwrite, cluster=cfg.cluster.settings(),
                          client=client, progress=progress, call=call or None)
    summary = summarize_basins(store)
    if cat is None:
        logger.info("not registering %s in a catalog", store)
        return IngestResult(location(store), summary)
    entries = register_store(store, cat)
    logger.info("registered %s in %s", store, cat)
    return IngestResult(location(store), summary, cat, entries)
