"""Putting finished stores and files on object storage (fsspec URLs), root metadata last.

Object stores have no rename, so a store for a URL is built elsewhere (*staged*) and then
*published*: every object is uploaded (or copied, from a staging prefix in the same bucket)
with the root ``zarr.json`` last. A zarr reader opens a store through its root ``zarr.json``,
so until the very last object is in place a reader finds no store at the URL, never a
half-written one; an upload that fails removes every object of the store it was uploading.
A file product (netCDF) is one object: an S3 PUT, multipart included, makes the object appear
only when it is complete.

:func:`staged_store` is what :func:`lsegeo.io.atomic.atomic_store` does for a URL target; its
``staging`` says where the store is built: ``"local"`` (a temporary folder on this machine,
under ``LSEGEO_STAGING_DIR`` when set, else the system's temporary folder) for a store written
by this process, ``"beside"`` (a hidden ``.<name>.partial-<tag>/`` prefix beside the target,
in the same bucket) for a store whose chunks are written by dask tasks on other machines.

What is not guaranteed on object storage (``docs/object_storage.md``): two jobs publishing to
the same URL at once are not kept apart (the local rename is; an object store has no
"create only if absent" for a whole prefix), and replacing a store (``overwrite``) first
removes the old one, so between the removal and the last upload no store is at the URL, and a
replacement that fails leaves none.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lsegeo.errors import ConfigError, StoreError
from lsegeo.io.urls import basename, filesystem, is_url, join, list_dir, location

__all__ = ["publish_store", "publish_file", "staged_store", "clean_remote_leftovers", "check_remote_target"]

logger = logging.getLogger(__name__)

#: where a store is built before it is published
STAGING = ("local", "beside")


def _url(url: Any, what: str) -> str:
    if not is_url(url):
        raise ConfigError(f"{what}: {url!r} is not a URL (scheme://...); local paths are written in place")
    return str(location(url))


def _files(source: str | Path) -> list[str]:
    """The files of a store, as ``/``-separated names relative to its root (sorted)."""
    if isinstance(source, Path):
        out = []
        for folder, _dirs, names in os.walk(source):
            rel = Path(folder).relative_to(source)
            out += [(rel / n).as_posix() for n in names]
        return sorted(out)
    fs, root = filesystem(source)
    root = root.rstrip("/")
    return sorted(p[len(root) + 1:] for p in fs.find(root))


def check_remote_target(url: str, overwrite: bool) -> bool:
    """Check what is at a store URL before it is written.

    Parameters
    ----------
    url : str
        The store URL.
    overwrite : bool
        Whether an lsegeo store there may be replaced.

    Returns
    -------
    bool
        Whether a store is there (to be replaced).

    Objects without a root ``zarr.json`` that a killed upload left (its marker names this host
    and a process that no longer runs) are removed first.

    Raises
    ------
    StoreError
        An upload to ``url`` still runs; something is there and ``overwrite`` is false; or it is
        an object rather than a store prefix, not a store lsegeo wrote
        (:func:`lsegeo.io.atomic.is_lsegeo_store`), or a store with other objects at its top
        level, which ``overwrite`` never deletes.
    """
    from lsegeo.io.marks import STORE_MARKS, is_lsegeo_store, root_json

    fs, path = filesystem(url)
    entries = list_dir(url)
    if entries and "zarr.json" not in {n for n, _ in entries} and _killed_upload(fs, url):
        entries = []
    if not entries:
        if fs.isfile(path):
            raise StoreError(f"{url} is an object, not a store; choose another store URL")
        return False
    if not overwrite:
        raise StoreError(f"{url} already exists; pass overwrite=True (--overwrite) to replace it")
    if not is_lsegeo_store(url):
        names = ", ".join(sorted(n for n, _ in entries)[:5])
        raise StoreError(f"{url} exists and is not a store written by lsegeo (it holds {names}; no "
                         f"{'/'.join(STORE_MARKS)} root attribute); --overwrite (overwrite=True) replaces only "
                         "stores that lsegeo wrote and never deletes other objects")
    listed = {k.split("/")[0] for k in ((root_json(url).get("consolidated_metadata") or {}).get("metadata") or {})}
    foreign = sorted(n for n, is_dir in entries if n != "zarr.json"
                     and not (is_dir and (n in listed or fs.isfile(f"{path.rstrip('/')}/{n}/zarr.json"))))
    if foreign:
        raise StoreError(f"{url} is an lsegeo store but also holds {', '.join(foreign[:5])}, which lsegeo did not "
                         "write; --overwrite (overwrite=True) does not delete it: move those away first")
    return True


def _killed_upload(fs: Any, url: str) -> bool:
    """Remove what a killed upload left at ``url`` (objects and its marker, no root ``zarr.json``).

    Returns True when it did; raises StoreError while the uploading process still runs; returns
    False when the objects are not known to be an upload of lsegeo's (no marker), which are kept.
    """
    from lsegeo.io.marks import BUILDER_MARKER, builder_alive

    root = filesystem(url)[1].rstrip("/")
    try:
        marker = json.loads(fs.cat_file(f"{root}/{BUILDER_MARKER}"))
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or marker.get("written_by") != "lsegeo":
        return False
    alive = builder_alive(marker)
    if alive is not False:
        raise StoreError(f"{url} is being uploaded by process {marker.get('pid')} on {marker.get('host')} (or was, "
                         f"by a process that cannot be checked from here); when no such upload runs, remove {url} "
                         "yourself")
    fs.rm(root, recursive=True)
    logger.warning("removed the objects that a killed upload (process %s on %s) left at %s", marker.get("pid"),
                   marker.get("host"), url)
    return True


def _remove(fs: Any, paths: list[str]) -> None:
    """Remove objects (one batch where the filesystem has one), ignoring the ones that are not there."""
    try:
        fs.rm(paths)
        return
    except (FileNotFoundError, OSError):
        pass
    for path in paths:
        with contextlib.suppress(FileNotFoundError, OSError):
            fs.rm_file(path)


def publish_store(source: str | Path, url: str, *, overwrite: bool = False) -> str:
    """Upload a finished store to a URL, its root ``zarr.json`` last, then its PROV-JSON sidecar.

    Parameters
    ----------
    source : path-like or str
        The finished store: a local folder, or a URL in the same filesystem as ``url`` (a
        staging prefix; its objects are copied there, server-side).
    url : str
        Where the store must be.
    overwrite : bool
        Replace a store there, only one that lsegeo wrote with nothing else at its top level
        (:func:`check_remote_target`): its root ``zarr.json`` is removed first (readers then
        find no store), then its other objects, then the new store is uploaded.

    Returns
    -------
    str
        ``url``.

    Raises
    ------
    StoreError
        ``source`` has no root ``zarr.json``; the target is refused (:func:`check_remote_target`);
        or an upload failed: every object this call uploaded is removed again, and the message
        says so.

    Notes
    -----
    While it uploads, a marker object ``lsegeo-builder.json`` in the store's prefix names this
    host and process. When the process is killed half-way, its objects stay (with no root
    ``zarr.json``: no store for readers) and the next publish to the same URL removes them,
    once the marker's process no longer runs (:func:`check_remote_target`).
    """
    from lsegeo.io.marks import PROV_ATTR, root_json

    url = _url(url, "publish_store")
    src = location(source)
    files = _files(src)
    if "zarr.json" not in files:
        raise StoreError(f"{source} is not a finished zarr v3 store (no root zarr.json); nothing was uploaded")
    fs, root = filesystem(url)
    root = root.rstrip("/")
    if check_remote_target(url, overwrite):
        _remove(fs, [f"{root}/zarr.json"])  # first: from here on a reader finds no store, never a mixed one
        fs.rm(root, recursive=True)
        _remove(fs, [f"{root}.prov.json"])  # its record goes with it
        logger.info("removed the lsegeo store at %s to replace it", url)
    from lsegeo.io.marks import BUILDER_MARKER

    rest = [f for f in files if f != "zarr.json"]
    dst = [f"{root}/{f}" for f in rest]
    marker = f"{root}/{BUILDER_MARKER}"  # says who uploads: a killed upload's objects are removed by the next one
    try:
        fs.pipe_file(marker, _marker(url, "upload"))
        if isinstance(src, Path):
            if rest:
                fs.put([str(src / f) for f in rest], dst)
            fs.put_file(str(src / "zarr.json"), f"{root}/zarr.json")  # last: the store appears whole
        else:
            _sfs, sroot = filesystem(src)
            sroot = sroot.rstrip("/")
            if rest:
                fs.copy([f"{sroot}/{f}" for f in rest], dst)
            fs.copy(f"{sroot}/zarr.json", f"{root}/zarr.json")
        _remove(fs, [marker])
    except BaseException as err:
        _remove(fs, [*dst, f"{root}/zarr.json", marker])
        if not isinstance(err, Exception):
            raise
        raise StoreError(f"uploading the store {source} to {url} failed ({type(err).__name__}: {err}); the "
                         f"objects this job uploaded were removed, no store is at {url}") from err
    attrs = root_json(url).get("attributes") or {}
    if PROV_ATTR in attrs:
        fs.pipe_file(f"{root}.prov.json", str(attrs[PROV_ATTR]).encode())
    logger.info("published %d objects of %s to %s", len(files), source, url)
    return url


def publish_file(local: str | Path, url: str, *, overwrite: bool = False,
                 is_ours: Callable[[str], bool] | None = None) -> str:
    """Upload one finished file (a netCDF product) to a URL as one object.

    Parameters
    ----------
    local : path-like
        The file.
    url : str
        Where it must be.
    overwrite : bool
        Replace an object there (with ``is_ours``: only one it accepts).
    is_ours : callable, optional
        ``is_ours(url)`` says whether an existing object is one lsegeo wrote.

    Returns
    -------
    str
        ``url``.

    Raises
    ------
    StoreError
        Something is at ``url`` and ``overwrite`` is false, or it is not a file lsegeo wrote;
        or the upload failed (an object store then keeps what was there before: a PUT takes
        effect only when complete).
    """
    url = _url(url, "publish_file")
    fs, path = filesystem(url)
    if fs.exists(path):
        if not overwrite:
            raise StoreError(f"{url} already exists; pass overwrite=True (--overwrite) to replace it")
        if not fs.isfile(path) or (is_ours is not None and not is_ours(url)):
            raise StoreError(f"{url} exists and was not written by lsegeo; overwrite replaces only products that "
                             "lsegeo wrote: remove it yourself or choose another name")
    try:
        fs.put_file(str(local), path)
    except Exception as err:
        raise StoreError(f"uploading {local} to {url} failed ({type(err).__name__}: {err})") from err
    return url


def _marker(target: str, role: str = "partial") -> bytes:
    from lsegeo.io.marks import process_start

    return json.dumps({"written_by": "lsegeo", "role": role, "target": target, "host": socket.gethostname(),
                       "pid": os.getpid(), "started_ticks": process_start(os.getpid()),
                       "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}).encode()


def clean_remote_leftovers(url: str) -> list[str]:
    """Remove the staging prefixes (``.<name>.partial-<tag>/``) that killed builders of ``url`` left.

    As :func:`lsegeo.io.atomic.clean_leftovers` for a local store: a prefix is removed only
    when its marker object names this host and a process that no longer runs.

    Returns
    -------
    list of str
        The prefixes removed.
    """
    from lsegeo.io.marks import BUILDER_MARKER, builder_alive

    url = _url(url, "clean_remote_leftovers")
    name = basename(url)
    parent = url.rsplit("/", 1)[0]
    fs, _ = filesystem(url)
    done = []
    for entry, is_dir in list_dir(parent):
        if not (is_dir and entry.startswith(f".{name}.partial-")):
            continue
        prefix = str(join(parent, entry))
        try:
            marker = json.loads(fs.cat_file(filesystem(str(join(prefix, BUILDER_MARKER)))[1]))
        except (OSError, ValueError):
            continue
        if not isinstance(marker, dict) or marker.get("written_by") != "lsegeo" or builder_alive(marker) is not False:
            continue
        fs.rm(filesystem(prefix)[1], recursive=True)
        logger.info("removed %s, left by process %s on %s that no longer runs", prefix, marker.get("pid"),
                    marker.get("host"))
        done.append(prefix)
    return done


@contextlib.contextmanager
def staged_store(url: str, overwrite: bool = False, staging: str = "local") -> Iterator[str | Path]:
    """Yield a place to build a store in; publish it to ``url`` on success (:func:`publish_store`).

    Parameters
    ----------
    url : str
        Where the finished store must be.
    overwrite : bool
        Replace a store there that lsegeo wrote (checked before the work and again at the end).
    staging : {"local", "beside"}
        ``"local"``: a temporary folder on this machine (under ``LSEGEO_STAGING_DIR`` when set),
        uploaded at the end; it must hold the whole store. ``"beside"``: a hidden prefix
        ``.<name>.partial-<tag>/`` beside the target in the same bucket, copied at the end;
        for stores whose chunks dask tasks write from other machines.

    Raises
    ------
    StoreError
        The target is refused (:func:`check_remote_target`), nothing was written, or the upload
        failed. The staging folder or prefix is removed in every case.
    """
    url = _url(url, "staged_store")
    if staging not in STAGING:
        raise ConfigError(f"staging {staging!r}: expected one of {', '.join(STAGING)}")
    clean_remote_leftovers(url)
    check_remote_target(url, overwrite)
    name = basename(url)
    if staging == "local":
        work: str | Path = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=os.environ.get("LSEGEO_STAGING_DIR")))
        tmp: str | Path = Path(work) / name
    else:
        from lsegeo.io.marks import BUILDER_MARKER

        work = f"{url.rsplit('/', 1)[0]}/.{name}.partial-{uuid.uuid4().hex[:8]}"
        fs, _ = filesystem(url)
        fs.pipe_file(filesystem(f"{work}/{BUILDER_MARKER}")[1], _marker(url))
        tmp = f"{work}/{name}"
    try:
        yield tmp
        if not _has_root(tmp):
            raise StoreError(f"nothing was written to the store {url} (no zarr.json in {tmp})")
        publish_store(tmp, url, overwrite=overwrite)
    finally:
        if isinstance(work, Path):
            shutil.rmtree(work, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                fs.rm(filesystem(work)[1], recursive=True)


def _has_root(store: str | Path) -> bool:
    if isinstance(store, Path):
        return (store / "zarr.json").is_file()
    fs, path = filesystem(store)
    return bool(fs.isfile(f"{path.rstrip('/')}/zarr.json"))
