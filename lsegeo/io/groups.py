"""Groups of a zarr store read and written in place: templates, regions, arrays and attributes.

Stores that are filled piece by piece (the basins store by the ingest tasks, the ensemble store
by the runner's tasks) are laid out first as a lazy *template* (:func:`write_group` with ``compute=False``:
metadata and coordinates only), then each dask task writes its own *region* (:func:`write_region`, or the
numpy-level :class:`StoreGroup` when a task updates a few arrays in place). Tasks own disjoint
chunks, so they never write the same zarr chunk.

Writing attributes drops the store's consolidated metadata; every function here that writes
attributes consolidates the store again before it returns, so a reader opening the store in
one read never sees stale metadata.

Errors of a damaged store (a missing metadata file, a truncated chunk) are raised as
:class:`~lsegeo.errors.StoreError` naming the store, the group and the variable.
:class:`StoreGroup` writes every chunk it is given, even one that holds only fill values, so a
chunk file is present for every region written and a missing one means damage
(:meth:`StoreGroup.chunk_problems`).

This module and :mod:`lsegeo.io.stores` are the only places that touch zarr directly.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

from lsegeo.errors import LsegeoError, StoreError
from lsegeo.io.stores import _index_text, check_group_metadata, consolidate, store_groups
from lsegeo.io.urls import filesystem, is_file, join, location

__all__ = ["StoreGroup", "group_attrs", "update_attrs", "add_history", "write_group", "write_region"]


def _where(path: str | Path, group: str | None, name: str | None = None) -> str:
    return f"store {path}, group {group or '/'!r}" + (f", variable {name!r}" if name else "")


def _damaged(err: Exception, path: str | Path, group: str | None, name: str | None, what: str) -> StoreError:
    """A StoreError naming the store, group and variable for a raw zarr/codec error ``err``."""
    if isinstance(err, LsegeoError):
        return err
    return StoreError(f"{_where(path, group, name)}: cannot {what} ({type(err).__name__}: {err}); the store is "
                      "damaged: rebuild it or restore it from a copy")


def _open(path: str | Path, group: str | None, mode: str):
    if group:
        check_group_metadata(path, group)
    try:
        return zarr.open_group(str(path), path=group or "", mode=mode, use_consolidated=False, zarr_format=3)
    except Exception as err:
        raise _damaged(err, path, group, None, "open the group") from err


def group_attrs(path: str | Path, group: str | None = None) -> dict[str, Any]:
    """Return the attributes of one group of a store (``group=None``: the root).

    Raises
    ------
    StoreError
        ``path`` is not a zarr v3 store, or it has no such group.
    """
    groups = store_groups(path)
    if group and group not in groups:
        raise StoreError(f"{path} has no group {group!r}; it has {', '.join(groups) or 'no groups'}")
    return dict(_open(path, group, "r").attrs)


def update_attrs(path: str | Path, attrs: Mapping[str, Any], group: str | None = None) -> None:
    """Merge ``attrs`` into the attributes of a group (``None``: the root) and consolidate the store."""
    _open(path, group, "r+").attrs.update(dict(attrs))
    consolidate(path)


def add_history(path: str | Path, line: str, groups: Iterable[str | None] = (None,)) -> None:
    """Put ``line`` first in the ``history`` attribute of the root and/or groups of a store.

    Parameters
    ----------
    path : path-like
        The store.
    line : str
        A line from :func:`lsegeo.provenance.history_line`.
    groups : iterable of str or None
        The groups to update; ``None`` is the root.
    """
    from lsegeo.provenance import prepend_history

    for group in groups:
        g = _open(path, group, "r+")
        g.attrs.update(prepend_history(dict(g.attrs), line))
    consolidate(path)


def write_group(ds: xr.Dataset, path: str | Path, group: str, *, mode: str = "a", compute: bool = True,
                encoding: Mapping[str, Any] | None = None) -> None:
    """Write a Dataset as a group of a store; with ``compute=False``, only its layout.

    Parameters
    ----------
    ds : xarray.Dataset
        What to write. With ``compute=False`` its data variables are dask-backed and are not
        computed: the group gets their metadata and the coordinates (a *template* whose regions
        are written later by :func:`write_region`).
    path : path-like
        The store (usually the temporary path of :func:`lsegeo.io.stores.atomic_store`).
    group : str
        The group to create.
    mode : {"a", "w"}
        ``"w"`` replaces the whole store, ``"a"`` adds the group to it.
    compute : bool
        Write the data too.
    encoding : mapping, optional
        Zarr encoding per variable (chunks, ...).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*vlen-utf8.*")
        ds.to_zarr(str(path), group=group, mode=mode, compute=compute, zarr_format=3, consolidated=False,
                   encoding=dict(encoding or {}))


def write_region(ds: xr.Dataset, path: str | Path, group: str, region: Mapping[str, slice]) -> None:
    """Write the values of ``ds`` into a region of an existing group.

    Parameters
    ----------
    ds : xarray.Dataset
        In-memory data variables, each spanning the region along the dimensions of ``region``
        and the whole group along the others; no coordinates.
    path : path-like
        The store.
    group : str
        The group laid out earlier by :func:`write_group` (``compute=False``).
    region : mapping of str to slice
        Index range per dimension, e.g. ``{"basin": slice(64, 128)}``.
    """
    ds.to_zarr(str(path), group=group, region=dict(region), mode="r+", zarr_format=3, consolidated=False)


class StoreGroup:
    """The arrays of one group of a store, as numpy arrays read and written by index.

    Parameters
    ----------
    path : path-like or str
        The store: a folder or a URL (:mod:`lsegeo.io.urls`); each process that opens it
        writes its chunks straight there.
    group : str
        The group.
    writable : bool
        Open for writing (regions and resizing).

    Notes
    -----
    Reads and writes go straight to the chunks, without consolidated metadata; call
    :func:`lsegeo.io.stores.consolidate` after resizing arrays.
    """

    def __init__(self, path: str | Path, group: str, *, writable: bool = False) -> None:
        if group not in store_groups(path):
            raise StoreError(f"{path} has no group {group!r}")
        self.path = location(path)
        self.group = group
        self._g = _open(path, group, "r+" if writable else "r")

    def _array(self, name: str):
        """Array ``name``, writing every chunk it is given (even one of fill values only)."""
        try:
            return self._g[name].with_config({"write_empty_chunks": True})
        except KeyError:
            raise StoreError(f"{_where(self.path, self.group)} has no variable {name!r}") from None
        except Exception as err:
            raise _damaged(err, self.path, self.group, name, "open the array") from err

    def __contains__(self, name: str) -> bool:
        return name in self._g

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape of array ``name``."""
        return tuple(self._array(name).shape)

    def read(self, name: str, index: Any = ...) -> np.ndarray:
        """Read ``name[index]`` (numpy basic indexing: slices and integers).

        Raises
        ------
        StoreError
            A chunk cannot be read or decoded; the message names the store, group and variable.
        """
        arr = self._array(name)
        try:
            return np.asarray(arr[index])
        except Exception as err:
            raise _damaged(err, self.path, self.group, name, f"read {_index_text(index)}") from err

    def write(self, name: str, index: Any, values: Any) -> None:
        """Write ``values`` into ``name[index]``; every chunk written gets a file."""
        arr = self._array(name)
        try:
            arr[index] = values
        except Exception as err:
            raise _damaged(err, self.path, self.group, name, f"write {_index_text(index)}") from err

    def chunk_shape(self, name: str) -> tuple[int, ...]:
        """The shape of one storage chunk of array ``name``."""
        return tuple(self._array(name).chunks)

    def chunk_problems(self, name: str, chunks: Iterable[tuple[int, ...]], *, decode: bool = True) -> dict:
        """Which of some chunks of array ``name`` are missing or cannot be decoded.

        Parameters
        ----------
        name : str
            The array.
        chunks : iterable of tuple of int
            Chunk grid coordinates, e.g. ``(0, 1, 0, 0)``.
        decode : bool
            Also read each present chunk (otherwise only its file is looked for).

        Returns
        -------
        dict
            Chunk coordinates -> ``"missing"`` (no chunk file: a reader would see fill values) or
            ``"unreadable: <why>"``, only for chunks with a problem.
        """
        arr = self._array(name)
        out = {}
        for coords in chunks:
            coords = tuple(int(c) for c in coords)
            if not is_file(self._chunk_file(arr, name, coords)):
                out[coords] = "missing"
                continue
            if decode:
                try:
                    arr.get_block_selection(coords)
                except Exception as err:
                    out[coords] = f"unreadable: {type(err).__name__}: {err}"
        return out

    def drop_chunk(self, name: str, coords: tuple[int, ...]) -> None:
        """Delete the file of one chunk (a damaged one): it then reads as the fill value."""
        chunk = self._chunk_file(self._array(name), name, tuple(int(c) for c in coords))
        if isinstance(chunk, Path):
            chunk.unlink(missing_ok=True)
            return
        fs, key = filesystem(chunk)
        if fs.exists(key):
            fs.rm_file(key)

    def _chunk_file(self, arr, name: str, coords: tuple[int, ...]) -> Path | str:
        """The file (or object URL) of one chunk."""
        return join(self.path, self.group, name, *arr.metadata.encode_chunk_key(coords).split("/"))

    def resize(self, name: str, axis: int, length: int) -> None:
        """Set the length of array ``name`` along ``axis`` (cutting or adding at the end).

        Added elements hold the array's fill value until written.
        """
        arr = self._array(name)
        shape = list(arr.shape)
        shape[axis] = int(length)
        try:
            arr.resize(tuple(shape))
        except Exception as err:
            raise _damaged(err, self.path, self.group, name, "resize the array") from err

    def grow(self, name: str, axis: int, values: np.ndarray | None = None, n: int | None = None) -> slice:
        """Lengthen array ``name`` along ``axis`` and fill the new part.

        Parameters
        ----------
        name : str
            The array.
        axis : int
            The axis to grow.
        values : numpy.ndarray, optional
            The new part (its length along ``axis`` is the growth); omitted, the new part keeps
            the array's fill value.
        n : int, optional
            The growth when ``values`` is omitted.

        Returns
        -------
        slice
            The new indices along ``axis``.
        """
        arr = self._array(name)
        k = int(np.shape(values)[axis]) if values is not None else int(n or 0)
        old = arr.shape[axis]
        self.resize(name, axis, old + k)
        if values is not None:
            index = tuple(slice(old, old + k) if i == axis else slice(None) for i in range(arr.ndim))
            self.write(name, index, values)  # the resized array
        return slice(old, old + k)

