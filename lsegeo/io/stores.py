"""Zarr stores on disk or at URLs: lazy opening, provenance, damage reports; atomic creation from :mod:`.atomic`.

A store is built under a temporary name beside its target and renamed into place only when
every part of it is written (:func:`lsegeo.io.atomic.atomic_store`, re-exported here), so a
failed or killed run never leaves a half-written store at the target path.

Reading a damaged store (a metadata file deleted, a chunk truncated) raises
:class:`~lsegeo.errors.StoreError` naming the store, the group and the variable, never a raw
zarr or codec error. ``docs/stores.md`` says what each store guarantees after a crash.

Every function takes a folder or a URL (:mod:`lsegeo.io.urls`); a store written to a URL is
built locally and published with its root metadata last (``docs/object_storage.md``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

from lsegeo.errors import StoreError
from lsegeo.io.atomic import (
    BUILDER_MARKER,
    PROV_ATTR,
    atomic_store,
    clean_leftovers,
    is_lsegeo_store,
    root_json,
    sidecar_path,
    store_id,
)
from lsegeo.io.urls import join, list_dir, location, read_text, read_texts

__all__ = ["PROV_ATTR", "BUILDER_MARKER", "sidecar_path", "atomic_store", "clean_leftovers", "is_lsegeo_store",
           "store_id", "check_group_metadata", "open_store", "store_groups", "consolidate",
           "read_provenance", "stamp_provenance", "write_store", "write_groups", "root_attrs"]


def consolidate(path: str | Path) -> None:
    """Consolidate the metadata of every group of a zarr v3 store (one read to open it)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata")
        root = zarr.open_group(str(path), mode="r+", zarr_format=3)
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

    root = zarr.open_group(str(store), mode="r+", zarr_format=3)
    root.attrs.update({**attrs, PROV_ATTR: prov_json(attrs, dict(inputs), product)})
    if groups:
        for _, group in root.groups():
            group.attrs.update({k: v for k, v in attrs.items() if k != "title"})
    consolidate(store)


def write_store(ds: xr.Dataset, path: str | Path, *, group: str, attrs: Mapping[str, Any],
                inputs: Mapping[str, str], overwrite: bool = False, encoding: dict | None = None) -> Path | str:
    """Write one Dataset as a group of a new zarr v3 store, atomically, with provenance.

    Parameters
    ----------
    ds : xarray.Dataset
        What to write (its own attributes are replaced by ``attrs``).
    path : path-like or str
        The store; built beside it and renamed into place (:func:`atomic_store`); at a URL,
        built in a local folder and uploaded, its root metadata last.
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

    path = location(path)
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
    """The root attributes of a store (its provenance, job hashes, kind).

    Raises
    ------
    StoreError
        ``path`` is not a zarr v3 store, or its root metadata cannot be read.
    """
    return dict(root_json(path).get("attributes") or {})


def store_groups(path: str | Path) -> list[str]:
    """Return the names of the groups of a zarr store.

    Raises
    ------
    StoreError
        ``path`` is not a zarr v3 store, or its metadata cannot be read.
    """
    path = location(path)
    root_json(path)
    try:
        root = zarr.open_group(str(path), mode="r", zarr_format=3)
        return sorted(name for name, _ in root.groups())
    except Exception as err:  # a damaged hierarchy: say which store
        raise StoreError(f"store {path}: its groups cannot be listed ({type(err).__name__}: {err}); the store is "
                         "damaged: rebuild it or restore it from a copy") from err


def _where(path: Path | str, group: str, name: str | None = None) -> str:
    return f"store {path}, group {group!r}" + (f", variable {name!r}" if name else "")


def _check_node(meta: Path | str, path: Path | str, group: str, name: str | None,
                text: str | BaseException | None = None) -> None:
    """Raise a StoreError naming the store, group and variable when a metadata file is absent or unreadable.

    ``text`` is the file's content (or the error reading it) when it was read already.
    """
    try:
        if isinstance(text, BaseException):
            raise text
        node = json.loads(read_text(meta) if text is None else text)
    except FileNotFoundError:
        raise StoreError(f"{_where(path, group, name)}: its metadata file {meta} is missing; the store is damaged: "
                         "rebuild it or restore it from a copy") from None
    except (OSError, ValueError) as err:
        raise StoreError(f"{_where(path, group, name)}: its metadata file {meta} cannot be read ({err}); the store "
                         "is damaged: rebuild it or restore it from a copy") from err
    if not isinstance(node, dict) or node.get("zarr_format") != 3:
        raise StoreError(f"{_where(path, group, name)}: {meta} is not zarr v3 metadata; the store is damaged")


def check_group_metadata(path: str | Path, group: str) -> None:
    """Check that a group and every array in it have a readable ``zarr.json``.

    The arrays are those in the folder and those the consolidated metadata lists, so a deleted
    metadata file or a deleted array is found even though the consolidated copy still opens.

    Raises
    ------
    StoreError
        Naming the store, the group and the variable whose metadata is missing or unreadable.
    """
    path = location(path)
    gdir = join(path, group)
    _check_node(join(gdir, "zarr.json"), path, group, None)
    listed = ((root_json(path).get("consolidated_metadata") or {}).get("metadata") or {})
    names = {k[len(group) + 1:] for k in listed if k.startswith(group + "/") and "/" not in k[len(group) + 1:]}
    names |= {n for n, is_dir in list_dir(gdir) if is_dir and not n.startswith(".")}
    metas = {name: join(gdir, name, "zarr.json") for name in sorted(names)}
    texts = {} if isinstance(path, Path) else read_texts([str(m) for m in metas.values()])  # one batch of requests
    for name, meta in metas.items():
        _check_node(meta, path, group, name, texts.get(str(meta)))


def _first_unreadable(path: Path | str, group: str) -> str | None:
    """The first small array of a group whose chunks cannot be read (to name it in an error), or None."""
    try:
        g = zarr.open_group(str(path), path=group, mode="r", use_consolidated=False, zarr_format=3)
        arrays = list(g.arrays())
    except Exception:
        return None
    for name, arr in arrays:
        if arr.ndim <= 1 and arr.size <= 10**6:
            try:
                np.asarray(arr[...])
            except Exception:
                return name
    return None


def _index_text(index: Any) -> str:
    """``index`` as numpy-style text, for messages (``[0:3, 5]``)."""
    def one(i: Any) -> str:
        if isinstance(i, slice):
            return f"{'' if i.start is None else i.start}:{'' if i.stop is None else i.stop}"
        return "..." if i is Ellipsis else str(i)

    items = index if isinstance(index, tuple) else (index,)
    return "[" + ", ".join(one(i) for i in items) + "]"


class _GuardedArray:
    """A lazily opened variable whose reads raise StoreError naming the store, group and variable."""

    def __init__(self, variable: xr.Variable, path: Path | str, group: str, name: str) -> None:
        self.variable, self.path, self.group, self.name = variable, path, group, name
        self.shape, self.dtype, self.ndim = variable.shape, variable.dtype, variable.ndim

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            return np.asarray(self.variable[key].values)
        except Exception as err:  # a truncated or garbled chunk: a codec error that names no file
            raise StoreError(f"{_where(self.path, self.group, self.name)}: cannot read the chunk(s) at "
                             f"{_index_text(key)} ({type(err).__name__}: {err}); the store is damaged: rebuild it "
                             "or restore it from a copy") from err


def _guarded(lazy: xr.Dataset, path: Path | str, group: str, chunks: Mapping[str, Any]) -> xr.Dataset:
    """``lazy`` with every non-index variable dask-backed through :class:`_GuardedArray`."""
    import dask.array as da

    out = lazy.copy()
    for name, var in lazy.variables.items():
        if name in lazy.indexes:
            continue  # in memory already
        preferred = var.encoding.get("preferred_chunks") or {}
        sizes = tuple(chunks.get(d, preferred.get(d, n)) or n for d, n in zip(var.dims, var.shape, strict=True))
        data = da.from_array(_GuardedArray(var, path, group, str(name)), chunks=sizes, lock=False,
                             name=f"open_dataset-{name}-{uuid.uuid4().hex}", meta=np.array((), dtype=var.dtype))
        new = var.copy(deep=False, data=data)
        if name in lazy.coords:
            out = out.assign_coords({name: new})
        else:
            out[name] = new
    return out


def open_store(path: str | Path, group: str, chunks: dict | None = None) -> xr.Dataset:
    """Open one group of an lsegeo store lazily (dask-backed).

    Parameters
    ----------
    path : path-like or str
        The store: a folder or a URL (:mod:`lsegeo.io.urls`).
    group : str
        The group, e.g. ``"attributes"``, ``"forcing"`` or ``"observed"`` in a basins store.
    chunks : dict, optional
        Dask chunks per dimension; by default (and for dimensions not named) the storage
        chunks, so reading one basin reads only its chunk.

    Returns
    -------
    xarray.Dataset
        Lazy dataset; its attributes carry the store's provenance.

    Raises
    ------
    StoreError
        ``path`` is not a zarr v3 store or has no such group; or the store is damaged: a
        metadata file is missing or unreadable (raised here), or a chunk cannot be decoded
        (raised when it is read). The message names the store, the group and the variable.
    """
    path = location(path)
    groups = store_groups(path)
    if group not in groups:
        raise StoreError(f"{path} has no group {group!r}; it has {', '.join(groups) or 'no groups'}")
    check_group_metadata(path, group)
    try:
        lazy = xr.open_dataset(str(path), group=group, engine="zarr", chunks=None, cache=False, zarr_format=3)
    except Exception as err:  # e.g. a truncated chunk of a coordinate, read at once
        raise StoreError(f"{_where(path, group, _first_unreadable(path, group))}: cannot be opened "
                         f"({type(err).__name__}: {err}); the store is damaged: rebuild it or restore it from a "
                         "copy") from err
    return _guarded(lazy, path, group, dict(chunks or {}))


def read_provenance(path: str | Path) -> dict:
    """Return a store's PROV-JSON record (kept in its root attributes and in a sidecar file)."""
    attrs = root_attrs(path)
    if PROV_ATTR not in attrs:
        raise StoreError(f"{path} has no provenance record (root attribute {PROV_ATTR})")
    return json.loads(attrs[PROV_ATTR])


def write_groups(datasets: Mapping[str, xr.Dataset], path: str | Path, *, attrs: Mapping[str, Any],
                 inputs: Mapping[str, str], overwrite: bool = False,
                 encoding: Mapping[str, dict] | None = None) -> Path | str:
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
    pathlib.Path or str
        ``path`` (the URL text for a URL: built locally and uploaded, root metadata last).

    Raises
    ------
    StoreError
        ``path`` exists and ``overwrite`` is false.
    """
    import warnings

    path = location(path)
    with atomic_store(path, overwrite=overwrite) as tmp:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*vlen-utf8.*")
            warnings.filterwarnings("ignore", category=FutureWarning)
            for i, (group, ds) in enumerate(datasets.items()):
                ds.to_zarr(tmp, group=group, mode="w" if i == 0 else "a", zarr_format=3, consolidated=False,
                           encoding=dict((encoding or {}).get(group, {})))
        stamp_provenance(tmp, attrs, inputs, str(path), groups=True)
    return path
