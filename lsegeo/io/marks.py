"""What marks a store as lsegeo's: its root metadata, its marks, and the markers of its builders.

The base of :mod:`lsegeo.io.atomic` (local stores) and :mod:`lsegeo.io.publish` (stores at
URLs): the root ``zarr.json`` of a store read without zarr (:func:`root_json`), whether lsegeo
wrote a store (:func:`is_lsegeo_store`), its identity (:func:`store_id`), and whether the
process that a builder marker names still runs (:func:`builder_alive`).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lsegeo.errors import StoreError
from lsegeo.io.urls import join, location, read_text

__all__ = ["PROV_ATTR", "BUILDER_MARKER", "STORE_MARKS", "root_json", "is_lsegeo_store", "store_id", "store_digest",
           "builder_alive", "process_start"]

#: root attribute of a store that holds its W3C PROV-JSON record
PROV_ATTR = "lsegeo_prov_json"
#: file in a ``.<name>.partial-*`` / ``.<name>.old-*`` folder that says which process made it
BUILDER_MARKER = "lsegeo-builder.json"
#: root attributes that mark a store as written by lsegeo (any one of them)
STORE_MARKS = ("lsegeo_store_kind", PROV_ATTR)


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux ``/proc``), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the command name may hold spaces


def builder_alive(marker: Mapping[str, Any]) -> bool | None:
    """Whether the process a builder marker names still runs: None when it cannot be told."""
    if marker.get("host") != socket.gethostname():
        return None
    try:
        pid = int(marker["pid"])
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it runs
    except (KeyError, TypeError, ValueError, OSError):
        return None
    started = marker.get("started_ticks")
    return started is None or process_start(pid) in (None, started)  # a reused pid is another process


def root_json(path: str | Path) -> dict[str, Any]:
    """The root ``zarr.json`` of a store (a folder or a URL), parsed (without zarr).

    Raises
    ------
    StoreError
        It is absent, unreadable or not a zarr v3 group.
    """
    path = location(path)
    meta = join(path, "zarr.json")
    if isinstance(meta, Path) and not meta.is_file():
        raise StoreError(f"{path} is not a zarr v3 store (no zarr.json found there)")
    try:
        out = json.loads(read_text(meta))
    except FileNotFoundError:
        raise StoreError(f"{path} is not a zarr v3 store (no zarr.json found there)") from None
    except (OSError, ValueError) as err:
        raise StoreError(f"store {path}: its root metadata file {meta} cannot be read ({err}); the store is "
                         "damaged: rebuild it or restore it from a copy") from err
    if not isinstance(out, dict) or out.get("node_type") != "group":
        raise StoreError(f"store {path}: {meta} is not the metadata of a zarr v3 group")
    return out


def is_lsegeo_store(path: str | Path) -> bool:
    """Whether ``path`` is a store that lsegeo wrote: its root attributes carry lsegeo's marks.

    The marks are ``lsegeo_store_kind`` or the provenance record ``lsegeo_prov_json``, which
    every store written through :func:`write_store`, :func:`write_groups` or
    :func:`stamp_provenance` has.
    """
    try:
        attrs = root_json(path).get("attributes") or {}
    except StoreError:
        return False
    return any(k in attrs for k in STORE_MARKS)


def store_digest(path: str | Path) -> str:
    """How a product records a store among its inputs: ``sha256:`` of what the store was made from.

    That is :func:`lsegeo.provenance.store_identity`: the sha256 over the store's own
    ``lsegeo_inputs_sha256`` (its input files, themselves hashed when the store was written)
    and ``lsegeo_config_sha256`` (its configuration), which the same inputs and configuration
    give on every machine. A store that records neither, or one at a URL, is named by
    ``id:`` and its ``id`` (:func:`store_id`).

    Raises
    ------
    StoreError
        ``path`` is not a zarr v3 store, or its root metadata cannot be read.
    """
    from lsegeo.io.urls import is_url
    from lsegeo.provenance import store_identity

    return (None if is_url(path) else store_identity(Path(path))) or f"id:{store_id(path)}"


def store_id(path: str | Path) -> str:
    """The identity of a store: its ``id`` root attribute (a UUID given when it was created).

    Raises
    ------
    StoreError
        ``path`` is not a zarr v3 store, or its root metadata cannot be read.
    """
    return str((root_json(path).get("attributes") or {}).get("id", ""))
