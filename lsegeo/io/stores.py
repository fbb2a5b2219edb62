"""Zarr stores on disk: atomic creation, lazy opening, provenance sidecars.

A store is built under a temporary name beside its target and renamed into place only when
every part of it is written, so a failed or killed run never leaves a half-written store at the
target path.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import xarray as xr
import zarr

from lsegeo.errors import StoreError

__all__ = ["PROV_ATTR", "sidecar_path", "atomic_store", "load_basin_inputs", "open_store", "store_groups",
           "consolidate", "read_provenance", "stamp_provenance", "write_store", "write_groups", "root_attrs"]

#: root attribute of a store that holds its W3C PROV-JSON record
PROV_ATTR = "lsegeo_prov_json"


def sidecar_path(store: str | Path) -> Path:
    """The PROV-JSON file written beside a store (``<store>.prov.json``)."""
    store = Path(store)
    return store.with_name(store.name + ".prov.json")


@contextlib.contextmanager
def atomic_store(target: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path to build a store in; move it to ``target`` on success.

    Parameters
    ----------
    target : path-like
        Where the finished store must end up.
    overwrite : bool
        Replace an existing store at ``target``. Without it an existing target is an error,
        raised before any work is done.

    Notes
    -----
    When the finished store has a PROV-JSON record in its root attributes, it is also written
    beside it as ``<target>.prov.json``.

    On an exception the temporary store is removed and the target is left as it was. The old
    store, when replaced, is first renamed aside, so there is no moment at which neither the old
    nor the new store is complete at ``target``'s parent.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise StoreError(f"{target} already exists; pass overwrite=True (--overwrite) to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    tmp = target.parent / f".{target.name}.partial-{tag}"
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{tag}"
        target.rename(old)
    tmp.rename(target)
    if PROV_ATTR in (attrs := zarr.open_group(str(target), mode="r").attrs):
        sidecar = sidecar_path(target)
        sidecar.with_name(sidecar.name + ".tmp").write_text(attrs[PROV_ATTR])
        sidecar.with_name(sidecar.name + ".tmp").replace(sidecar)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def consolidate(path: str | Path) -> None:
    """Consolidate the metadata of every group of a zarr v3 store (one read to open it)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata")
        root = zarr.open_group(str(path), mode="r+")
        for name, _ in root.groups():
            zarr.consolidate_metadata(str(path), path=name)
        zarr.consolidate_metadata(str(path))


def stamp_provenance(store: str | Path, attrs: Mapping[str, Any], inputs: Mapping[str, str], product: str,
                     *, groups: bool = False) -> None:
    """Write a product's global attributes and its PROV-JSON record into a store being built.

    This is the one place where lsegeo stamps provenance on what it writes: the CF/ACDD
    attributes of :func:`lsegeo.provenance.product_attrs` and the W3C PROV-JSON record of
    :func:`lsegeo.provenance.prov_json` go into the root attributes (the record is copied
    beside the store as ``<store>.prov.json`` when :func:`atomic_store` moves it into place),
    and the metadata is consolidated.

    Parameters
    ----------
    store : path-like
        The store, usually the temporary path yielded by :func:`atomic_store`.
    attrs : mapping
        Global attributes (from :func:`lsegeo.provenance.product_attrs`).
    inputs : mapping of str to str
        Inputs of the product to their sha256 (or store id).
    product : str
        The product's final path or name, recorded in the PROV record.
    groups : bool
        Also copy the attributes (all but ``title``) to every group, so that each group opened
        alone carries the provenance.
    """
    from lsegeo.provenance import prov_json

    root = zarr.open_group(str(store), mode="r+")
    root.attrs.update({**attrs, PROV_ATTR: prov_json(attrs, dict(inputs), product)})
    if groups:
        for _, group in root.groups():
            group.attrs.update({k: v for k, v in attrs.items() if k != "title"})
    consolidate(store)


def write_store(ds: xr.Dataset, path: str | Path, *, group: str, attrs: Mapping[str, Any],
                inputs: Mapping[str, str], overwrite: bool = False, encoding: dict | None = None) -> Path:
    """Write one Dataset as a group of a new zarr v3 store, atomically, with provenance.

    Parameters
    ----------
    ds : xarray.Dataset
        What to write (its own attributes are replaced by ``attrs``).
    path : path-like
        The store; built beside it and renamed into place (:func:`atomic_store`).
    group : str
        The group to write ``ds`` to.
    attrs, inputs
        As for :func:`stamp_provenance`.
    overwrite : bool
        Replace an existing store at ``path``.
    encoding : dict, optional
        Zarr encoding per variable (chunks, ...).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import warnings

    path = Path(path)
    out = ds.copy()
    out.attrs = dict(attrs)
    with atomic_store(path, overwrite=overwrite) as tmp:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*vlen-utf8.*")
            warnings.filterwarnings("ignore", category=FutureWarning)
            out.to_zarr(tmp, group=group, mode="w", zarr_format=3, consolidated=False, encoding=encoding or {})
        stamp_provenance(tmp, attrs, inputs, str(path))
    return path


def root_attrs(path: str | Path) -> dict[str, Any]:
    """The root attributes of a store (its provenance, job hashes, kind)."""
    store_groups(path)
    return dict(zarr.open_group(str(path), mode="r").attrs)


def store_groups(path: str | Path) -> list[str]:
    """Return the names of the groups of a zarr store."""
    path = Path(path)
    if not (path / "zarr.json").exists():
        raise StoreError(f"{path} is not a zarr v3 store (no zarr.json found there)")
    root = zarr.open_group(str(path), mode="r")
    return sorted(name for name, _ in root.groups())


def open_store(path: str | Path, group: str, chunks: dict | None = None) -> xr.Dataset:
    """Open one group of an lsegeo store lazily (dask-backed).

    Parameters
    ----------
    path : path-like
        The store.
    group : str
        The group, e.g. ``"attributes"``, ``"forcing"`` or ``"observed"`` in a basins store.
    chunks : dict, optional
        Dask chunks; by default the storage chunks, so reading one basin reads only its chunk.

    Returns
    -------
    xarray.Dataset
        Lazy dataset; its attributes carry the store's provenance.
    """
    groups = store_groups(path)
    if group not in groups:
        raise StoreError(f"{path} has no group {group!r}; it has {', '.join(groups) or 'no groups'}")
    return xr.open_dataset(str(path), group=group, engine="zarr", chunks={} if chunks is None else chunks)


def read_provenance(path: str | Path) -> dict:
    """Return a store's PROV-JSON record (kept in its root attributes and in a sidecar file)."""
    store_groups(path)
    attrs = zarr.open_group(str(path), mode="r").attrs
    if PROV_ATTR not in attrs:
        raise StoreError(f"{path} has no provenance record (root attribute {PROV_ATTR})")
    return json.loads(attrs[PROV_ATTR])


def load_basin_inputs(store: str | Path, basins: list[str], variables: list[str] | tuple[str, ...], window,
                      observed: tuple[str, ...] = ("qobs",)) -> tuple[xr.Dataset, xr.Dataset]:
    """Load forcing and observations of some basins over a simulation window, in this thread.

    Meant for dask tasks: the reads run on the synchronous scheduler, never as a nested
    computation on the cluster the task runs on.

    Parameters
    ----------
    store : path-like
        A basins store.
    basins : list of str
        Gauge ids.
    variables : sequence of str
        Variables of the ``forcing`` group.
    window : pandas.DatetimeIndex
        The days to load; they must all be in the store.
    observed : tuple of str
        Variables of the ``observed`` group.

    Returns
    -------
    (xarray.Dataset, xarray.Dataset)
        Forcing and observations, in memory.
    """
    import dask

    tsel = slice(window[0], window[-1])
    with dask.config.set(scheduler="synchronous"):
        forcing = open_store(store, "forcing")[list(variables)].sel(basin=basins, time=tsel).load()
        obs = open_store(store, "observed")[list(observed)].sel(basin=basins, time=tsel).load()
    if forcing.sizes["time"] != len(window) or obs.sizes["time"] != len(window):
        raise StoreError(f"{store} does not cover the simulation window {window[0].date()} to {window[-1].date()}")
    return forcing, obs


def write_groups(datasets: Mapping[str, xr.Dataset], path: str | Path, *, attrs: Mapping[str, Any],
                 inputs: Mapping[str, str], overwrite: bool = False,
                 encoding: Mapping[str, dict] | None = None) -> Path:
    """Write several Datasets as the groups of one new zarr v3 store, atomically, with provenance.

    The multi-group sibling of :func:`write_store`: each Dataset keeps its own attributes (e.g.
    its ``title``), the store's provenance (``attrs`` and the PROV-JSON record) goes into the
    root and is copied to every group (:func:`stamp_provenance` with ``groups=True``), as a
    basins store carries it.

    Parameters
    ----------
    datasets : mapping of str to xarray.Dataset
        Group name -> what to write there, in memory or dask-backed.
    path : path-like
        The store; built beside it and renamed into place (:func:`atomic_store`).
    attrs, inputs
        As for :func:`stamp_provenance`.
    overwrite : bool
        Replace an existing store at ``path``.
    encoding : mapping of str to dict, optional
        Group name -> zarr encoding per variable (chunks, ...).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    StoreError
        ``path`` exists and ``overwrite`` is false.
    """
    import warnings

    path = Path(path)
    with atomic_store(path, overwrite=overwrite) as tmp:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*vlen-utf8.*")
            warnings.filterwarnings("ignore", category=FutureWarning)
            for i, (group, ds) in enumerate(datasets.items()):
                ds.to_zarr(tmp, group=group, mode="w" if i == 0 else "a", zarr_format=3, consolidated=False,
                           encoding=dict((encoding or {}).get(group, {})))
        stamp_provenance(tmp, attrs, inputs, str(path), groups=True)
    return path
