"""Forcing and observations of a few basins at a time, read many times over by the same process.

An ensemble is run as one dask task per group of basins (8 by default), and every task needs the
forcing and the observed flow of its basins over the simulation window. Opening the basins store
with xarray for each task (consolidated metadata of several hundred kB, the coordinates, a dask
graph) costs several times more than the reads themselves, and every task decodes again the
storage chunk of 64 basins that its neighbours decoded just before.

:func:`load_basin_inputs` therefore keeps, per process:

* the opened store: its zarr arrays, the row of every basin and the decoded time axis of each
  group, opened once through :func:`lsegeo.io.stores.open_store` (with its metadata checks) and
  reused for as long as the store's root ``zarr.json`` is the same file (same size, modification
  time and inode; for a URL, the same ETag or modification time), so a store rebuilt at the same
  path is opened afresh;
* the most recently read blocks: for one variable, the rows of one storage chunk over one window,
  as read from the store, within :data:`CACHE_BYTES` in all (least recently used first out).

What it returns is what ``open_store(store, group)[variables].sel(basin=basins, time=window)``
returns, read as the store holds it (float32 where the store is float32), and a chunk that cannot
be decoded raises :class:`~lsegeo.errors.StoreError` naming the store, the group and the variable.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from lsegeo.errors import StoreError
from lsegeo.io.stores import _where, open_store
from lsegeo.io.urls import filesystem, join, location

__all__ = ["CACHE_BYTES", "load_basin_inputs", "clear_cache"]

#: bytes of decoded blocks kept per process (each block: one variable, the rows of one chunk, one window)
CACHE_BYTES = 256 * 2**20

_LOCK = threading.RLock()
_OPENED: dict[str, tuple[tuple, _Group]] = {}
_BLOCKS: OrderedDict[tuple, np.ndarray] = OrderedDict()
_HELD = [0]


@dataclass(frozen=True)
class _Group:
    """One opened group: its arrays, basin rows, time axis and the rows of a storage chunk."""

    store: Path | str
    name: str
    arrays: dict[str, Any]
    rows: dict[str, int]
    time: pd.DatetimeIndex
    chunk_rows: int


def _version(store: Path | str) -> tuple:
    """What identifies the store's current content: its root ``zarr.json`` as a file or an object."""
    meta = join(store, "zarr.json")
    try:
        if isinstance(meta, Path):
            st = os.stat(meta)
            return st.st_size, st.st_mtime_ns, st.st_ino
        fs, key = filesystem(str(meta))
        info = fs.info(key)
    except (OSError, FileNotFoundError) as err:
        raise StoreError(f"{store} is not a zarr v3 store (no readable zarr.json: {err})") from err
    return tuple(str(info.get(k)) for k in ("ETag", "LastModified", "mtime", "size"))


def _open_group(store: Path | str, group: str) -> _Group:
    import zarr

    lazy = open_store(store, group)  # checks the group's metadata; names what is missing
    root = zarr.open_group(str(store), path=group, mode="r", zarr_format=3)
    arrays = {str(name): arr for name, arr in root.arrays()
              if tuple(arr.metadata.dimension_names or ()) in (("basin",), ("basin", "time"))}
    chunk_rows = min((int(a.chunks[0]) for a in arrays.values() if a.ndim == 2), default=1)
    basins = [str(b) for b in lazy["basin"].values]
    return _Group(store, group, arrays, {b: i for i, b in enumerate(basins)},
                  pd.DatetimeIndex(lazy["time"].values), max(1, chunk_rows))


def _opened(store: Path | str, group: str) -> tuple[tuple, _Group]:
    """The store's current version and its opened group (opened again when the version changed)."""
    key = f"{store}::{group}"
    version = _version(store)
    with _LOCK:
        got = _OPENED.get(key)
        if got is not None and got[0] == version:
            return got
    opened = _open_group(store, group)
    with _LOCK:
        _OPENED[key] = (version, opened)
        for k in [k for k in _BLOCKS if k[0] == key and k[1] != version]:  # blocks of an older version
            _HELD[0] -= _BLOCKS.pop(k).nbytes
    return version, opened


def _block(g: _Group, version: tuple, name: str, chunk: int, t0: int, t1: int) -> np.ndarray:
    """Rows of storage chunk ``chunk`` of variable ``name`` over time steps ``t0:t1``, cached.

    A variable of the basins alone, ``(basin,)``, is read whole (``chunk`` and the window unused).
    """
    arr = g.arrays[name]
    if arr.ndim == 1:
        chunk, t0, t1 = 0, 0, 0
    key = (f"{g.store}::{g.name}", version, name, chunk, t0, t1)
    with _LOCK:
        if key in _BLOCKS:
            _BLOCKS.move_to_end(key)
            return _BLOCKS[key]
    r0 = chunk * g.chunk_rows
    r1 = arr.shape[0] if arr.ndim == 1 else min(r0 + g.chunk_rows, arr.shape[0])
    try:
        block = np.asarray(arr[r0:r1] if arr.ndim == 1 else arr[r0:r1, t0:t1])
    except Exception as err:  # a truncated or garbled chunk: a codec error that names no file
        raise StoreError(f"{_where(g.store, g.name, name)}: cannot read the chunk(s) at [{r0}:{r1}, {t0}:{t1}] "
                         f"({type(err).__name__}: {err}); the store is damaged: rebuild it or restore it from a "
                         "copy") from err
    with _LOCK:
        _BLOCKS[key] = block
        _HELD[0] += block.nbytes
        while _HELD[0] > CACHE_BYTES and len(_BLOCKS) > 1:
            _HELD[0] -= _BLOCKS.popitem(last=False)[1].nbytes
    return block


def _read_group(store: Path | str, group: str, basins: Sequence[str], variables: Sequence[str],
                window: pd.DatetimeIndex) -> xr.Dataset:
    version, g = _opened(store, group)
    missing = [v for v in variables if v not in g.arrays or v in ("basin", "time")]
    if missing:
        raise StoreError(f"{store}, group {group!r} has no variable {missing[0]!r}; it has "
                         f"{', '.join(sorted(set(g.arrays) - {'basin', 'time'}))}")
    unknown = [b for b in basins if b not in g.rows]
    if unknown:
        raise StoreError(f"{store}, group {group!r} has no basin {unknown[:3]}")
    t0 = g.time.searchsorted(window[0])
    t1 = t0 + len(window)
    if t1 > len(g.time) or not g.time[t0:t1].equals(pd.DatetimeIndex(window)):
        raise StoreError(f"{store} does not cover the simulation window {window[0].date()} to {window[-1].date()} "
                         f"(group {group!r} holds {g.time[0].date()} to {g.time[-1].date()}, one value a day)")
    rows = np.array([g.rows[b] for b in basins], dtype=np.int64)
    chunks = rows // g.chunk_rows
    data = {}
    for name in variables:
        if g.arrays[name].ndim == 1:
            data[name] = (("basin",), _block(g, version, name, 0, 0, 0)[rows])
            continue
        out = np.empty((len(rows), len(window)), dtype=g.arrays[name].dtype)
        for c in np.unique(chunks):
            at = np.flatnonzero(chunks == c)
            out[at] = _block(g, version, name, int(c), int(t0), int(t1))[rows[at] - c * g.chunk_rows]
        data[name] = (("basin", "time"), out)
    return xr.Dataset(data, coords={"basin": np.asarray(basins, dtype=object), "time": window})


def load_basin_inputs(store: str | Path, basins: Sequence[str], variables: Sequence[str], window: pd.DatetimeIndex,
                      observed: Sequence[str] = ("qobs",)) -> tuple[xr.Dataset, xr.Dataset]:
    """Forcing and observations of some basins over a simulation window, in memory, in this thread.

    Meant for dask tasks: the reads never start a computation on the cluster the task runs on,
    and the process keeps the opened store and the blocks it read for its next task.

    Parameters
    ----------
    store : path-like or str
        A basins store (a folder or a URL).
    basins : sequence of str
        Gauge ids, in the order wanted.
    variables : sequence of str
        Variables of the ``forcing`` group.
    window : pandas.DatetimeIndex
        The consecutive days to load; they must all be in the store.
    observed : sequence of str
        Variables of the ``observed`` group.

    Returns
    -------
    (xarray.Dataset, xarray.Dataset)
        ``forcing`` and ``observed``: each variable ``(basin, time)`` (or ``(basin,)``, e.g.
        ``has_observations``) in the store's dtype.

    Raises
    ------
    StoreError
        The store is not a zarr v3 store, lacks a group, variable or basin, does not cover the
        window, or is damaged (the message names the store, the group and the variable).
    ValueError
        The window has no days.
    """
    store = location(store)
    window = pd.DatetimeIndex(window)
    if len(window) == 0:
        raise ValueError("the simulation window has no days")
    basins = [str(b) for b in basins]
    return (_read_group(store, "forcing", basins, list(variables), window),
            _read_group(store, "observed", basins, list(observed), window))


def clear_cache() -> None:
    """Forget every opened store and cached block of this process."""
    with _LOCK:
        _OPENED.clear()
        _BLOCKS.clear()
        _HELD[0] = 0
