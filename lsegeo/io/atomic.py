"""Atomic creation of stores: build beside the target, rename into place, clean up after killed builders.

A store is built under a temporary name beside its target and renamed into place only when
every part of it is written, so a failed or killed run never leaves a half-written store at the
target path. The rename is the "create only if absent" step: two jobs building one target
without ``overwrite`` cannot both succeed. ``overwrite`` replaces only a store that lsegeo wrote
(:func:`is_lsegeo_store`); leftovers of killed builders are removed by the next build of the
same target (:func:`clean_leftovers`). ``docs/stores.md`` says what each store guarantees.

A target that is a URL (object storage, :mod:`lsegeo.io.urls`) has no rename: it is built in a
staging folder or prefix and published with its root metadata last (:mod:`lsegeo.io.publish`,
``docs/object_storage.md``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lsegeo.errors import StoreError
from lsegeo.io.marks import (
    BUILDER_MARKER,
    PROV_ATTR,
    STORE_MARKS,
    builder_alive,
    is_lsegeo_store,
    process_start,
    root_json,
    store_id,
)
from lsegeo.io.urls import is_url, location

__all__ = ["PROV_ATTR", "BUILDER_MARKER", "sidecar_path", "atomic_store", "clean_leftovers", "is_lsegeo_store",
           "store_id", "root_json"]

logger = logging.getLogger(__name__)

def sidecar_path(store: str | Path) -> Path | str:
    """The PROV-JSON file written beside a store (``<store>.prov.json``; a URL for a store at a URL)."""
    store = location(store)
    if not isinstance(store, Path):
        return store + ".prov.json"
    return store.with_name(store.name + ".prov.json")


def _write_marker(folder: Path, target: Path, role: str) -> None:
    folder.mkdir()
    (folder / BUILDER_MARKER).write_text(json.dumps({
        "written_by": "lsegeo", "role": role, "target": str(target.resolve()), "host": socket.gethostname(),
        "pid": os.getpid(), "started_ticks": process_start(os.getpid()),
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}))


def _read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        marker = json.loads((folder / BUILDER_MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("written_by") == "lsegeo" else None


def clean_leftovers(target: str | Path) -> list[Path]:
    """Remove what killed builders of ``target`` left beside it, and only that.

    A builder (:func:`atomic_store`) works in ``.<name>.partial-<tag>/`` and, when it replaces a
    store, moves the old one to ``.<name>.old-<tag>/`` for a moment; both folders hold a marker
    file (:data:`BUILDER_MARKER`) with the builder's host, process id and process start time.
    A folder is removed only when its marker names this host and a process that no longer runs.
    An old store whose replacement never arrived (``target`` is absent) is moved back to
    ``target`` instead. Folders without the marker, of a builder that still runs, or of another
    host are kept.

    Parameters
    ----------
    target : path-like
        The store path.

    Returns
    -------
    list of pathlib.Path
        The leftover folders removed or moved back.
    """
    if is_url(target):
        from lsegeo.io.publish import clean_remote_leftovers

        return clean_remote_leftovers(str(target))
    target = Path(target)
    done = []
    if not target.parent.is_dir():
        return done
    for kind in ("old", "partial"):  # old first: it may have to go back into place
        for folder in sorted(target.parent.glob(f".{target.name}.{kind}-*")):
            marker = _read_marker(folder) if folder.is_dir() else None
            if marker is None or marker.get("role") != kind or builder_alive(marker) is not False:
                continue
            if kind == "old" and not target.exists() and (folder / target.name).is_dir():
                with contextlib.suppress(OSError):
                    os.rename(folder / target.name, target)
                    logger.warning("%s: a replacement was killed after moving the old store aside; the old store "
                                   "is back in place", target)
            shutil.rmtree(folder, ignore_errors=True)
            logger.info("removed %s, left by process %s on %s that no longer runs", folder, marker.get("pid"),
                        marker.get("host"))
            done.append(folder)
    return done


def _check_replaceable(target: Path) -> None:
    """Raise unless ``target`` is an empty folder or a store lsegeo wrote with nothing foreign in it."""
    if not target.is_dir() or target.is_symlink():
        raise StoreError(f"{target} is not a folder; --overwrite (overwrite=True) replaces only a store that "
                         "lsegeo wrote: remove it yourself or choose another store path")
    entries = list(target.iterdir())
    if not entries:
        return
    if not is_lsegeo_store(target):
        names = ", ".join(sorted(e.name for e in entries)[:5]) + (", ..." if len(entries) > 5 else "")
        raise StoreError(f"{target} exists and is not a store written by lsegeo (it holds {names}; no "
                         f"{'/'.join(STORE_MARKS)} root attribute); --overwrite (overwrite=True) replaces only "
                         "stores that lsegeo wrote and never deletes other files: remove it yourself or choose "
                         "another store path")
    listed = {k.split("/")[0] for k in ((root_json(target).get("consolidated_metadata") or {}).get("metadata") or {})}
    foreign = sorted(e.name for e in entries if e.name != "zarr.json"
                     and not (e.is_dir() and ((e / "zarr.json").is_file() or e.name in listed)))
    if foreign:
        raise StoreError(f"{target} is an lsegeo store but also holds {', '.join(foreign[:5])}, which lsegeo did not "
                         "write; --overwrite (overwrite=True) does not delete it: move those away first")


@contextlib.contextmanager
def atomic_store(target: str | Path, overwrite: bool = False, *, staging: str = "local") -> Iterator[Path | str]:
    """Yield a temporary path to build a store in; move it to ``target`` on success.

    Parameters
    ----------
    target : path-like
        Where the finished store must end up.
    overwrite : bool
        Replace an existing store at ``target``, but only one that lsegeo wrote
        (:func:`is_lsegeo_store`, with no other files at its top level) or an empty folder.
        Without it an existing target is an error, raised before any work is done.

    Raises
    ------
    StoreError
        ``target`` exists and ``overwrite`` is false (before the work, or at the end when another
        job created it meanwhile: the other job's store is kept and this one is discarded); or
        ``overwrite`` is true and ``target`` is not a store that lsegeo wrote.
    staging : {"local", "beside"}
        For a URL target only (:func:`lsegeo.io.publish.staged_store`): build the store in a
        temporary local folder (``"local"``) or in a hidden prefix beside the target
        (``"beside"``, for stores whose chunks dask tasks on other machines write); either is
        published with its root ``zarr.json`` last.

    Notes
    -----
    The store is built in ``<target>/../.<name>.partial-<tag>/<name>``; the ``partial`` folder
    holds a marker (:data:`BUILDER_MARKER`) with this process's host and id, so that the next
    build of the same target removes it if this process is killed (:func:`clean_leftovers`).
    The final step is one ``rename`` of the finished store onto ``target``, which fails when
    ``target`` is a non-empty folder: "create only if absent", with no check-then-act window.

    When the finished store has a PROV-JSON record in its root attributes, it is also written
    beside it as ``<target>.prov.json``.

    On an exception the temporary store is removed and the target is left as it was; so it is when
    the sidecar cannot be written after the rename (the new store is taken back out of place and
    the old one, if any, put back). The old
    store, when replaced, is first renamed aside (``.<name>.old-<tag>``), so there is no moment
    at which neither the old nor the new store is complete at ``target``'s parent; a builder
    killed between the two renames is undone by the next build (the old store goes back).

    A URL target (:func:`lsegeo.io.urls.is_url`) has no rename: the yielded place is a staging
    folder or prefix (``staging``), published when the block ends (``docs/object_storage.md``).
    """
    if is_url(target):
        from lsegeo.io.publish import staged_store

        with staged_store(str(target), overwrite=overwrite, staging=staging) as tmp:
            yield tmp
        return
    target = Path(target)
    clean_leftovers(target)  # first: an old store left aside by a killed replacement goes back to target
    if target.exists() and not overwrite:
        raise StoreError(f"{target} already exists; pass overwrite=True (--overwrite) to replace it")
    if overwrite and target.exists():
        _check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    work = target.parent / f".{target.name}.partial-{tag}"
    _write_marker(work, target, "partial")
    tmp = work / target.name
    try:
        yield tmp
        if not (tmp / "zarr.json").is_file():
            raise StoreError(f"nothing was written to the store {target} (no zarr.json in {tmp})")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    old = None
    if overwrite and target.exists():
        try:
            _check_replaceable(target)
        except StoreError:
            shutil.rmtree(work, ignore_errors=True)
            raise
        old = target.parent / f".{target.name}.old-{tag}"
        _write_marker(old, target, "old")
        try:
            os.rename(target, old / target.name)
        except FileNotFoundError:  # another job moved it meanwhile
            pass
    try:
        os.rename(tmp, target)
    except OSError as err:
        if old is not None and (old / target.name).exists():
            with contextlib.suppress(OSError):
                os.rename(old / target.name, target)  # put the old store back when the place is still free
        shutil.rmtree(work, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)  # only when another job's store took the place
        if err.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise StoreError(f"{target} was created by another job while this one was building it; that store is "
                             "kept and this job's result is discarded (pass overwrite=True, --overwrite, to "
                             "replace it)") from err
        raise StoreError(f"cannot move the finished store into place at {target}: {err}") from err
    if PROV_ATTR in (attrs := (root_json(target).get("attributes") or {})):
        sidecar = sidecar_path(target)
        part = sidecar.with_name(f".{sidecar.name}.{tag}.tmp")
        try:
            part.write_text(attrs[PROV_ATTR])
            part.replace(sidecar)
        except BaseException:  # no store without its sidecar: this store back out, the old one back in
            part.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                os.rename(target, tmp)
                if old is not None and (old / target.name).exists():
                    os.rename(old / target.name, target)
            shutil.rmtree(work, ignore_errors=True)
            if old is not None and not (old / target.name).exists():  # else the next build puts it back
                shutil.rmtree(old, ignore_errors=True)
            raise
    shutil.rmtree(work, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
