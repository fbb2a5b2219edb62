"""Saving emulators in their libraries' own formats, and reading them back.

An emulator is saved as a directory holding only libraries' native formats: XGBoost boosters
(``Booster.save_model`` to ``.ubj``, or ``save_raw("ubj")`` bytes in an ``.npz``), torch
``state_dict`` files (``torch.save``, read back with ``weights_only=True``), numpy ``.npz``
archives (read with ``allow_pickle=False``) and JSON metadata (``emulator.json``, written by
:func:`write_meta` with a format tag and version). Nothing is pickled.

:func:`to_bytes` zips that directory (to ship an emulator to dask workers) and
:func:`load_bytes` reads it back; :func:`load` reads a directory of any kind, choosing the class
by the ``kind`` in its metadata through :data:`lsegeo.emulators.registry.EMULATORS`. Files that
others put beside the emulator's own (e.g. a skill report) are ignored.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lsegeo.emulators.protocol import Emulator
from lsegeo.emulators.registry import EMULATORS

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "META_FILE",
    "write_meta",
    "read_meta",
    "save_npz",
    "load_npz",
    "dir_to_bytes",
    "bytes_to_dir",
    "to_bytes",
    "load",
    "load_bytes",
]

FORMAT = "lsegeo-emulator"
FORMAT_VERSION = 1
META_FILE = "emulator.json"


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def write_meta(directory: str | Path, meta: Mapping[str, Any]) -> None:
    """Write ``emulator.json`` (with the format tag and version) into ``directory``.

    Parameters
    ----------
    directory : path-like
        An existing directory.
    meta : mapping
        JSON-serialisable metadata (numpy scalars and arrays are converted); must hold
        ``kind``.
    """
    from lsegeo import __version__

    full = {"format": FORMAT, "format_version": FORMAT_VERSION, "lsegeo_version": __version__, **meta}
    (Path(directory) / META_FILE).write_text(json.dumps(full, default=_json_default, indent=1))


def read_meta(directory: str | Path) -> dict[str, Any]:
    """Read and check ``emulator.json`` of a saved emulator.

    Raises
    ------
    FileNotFoundError
        ``directory`` has no ``emulator.json``.
    ValueError
        The file is not an lsegeo emulator's, or of a newer format version than this lsegeo reads.
    """
    path = Path(directory) / META_FILE
    if not path.exists():
        raise FileNotFoundError(f"{directory} is not a saved lsegeo emulator: it has no {META_FILE}")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r} is not {FORMAT!r}")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(f"{path}: format version {meta['format_version']} is newer than this lsegeo reads "
                         f"({FORMAT_VERSION})")
    return meta


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Write plain (non-object) arrays to a compressed ``.npz``.

    Raises
    ------
    TypeError
        An array has dtype object (it would need pickle).
    """
    for k, a in arrays.items():
        if np.asarray(a).dtype.kind == "O":
            raise TypeError(f"array {k!r} has dtype object, which would need pickle")
    np.savez_compressed(path, **arrays)


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Read an ``.npz`` with ``allow_pickle=False`` into memory."""
    with np.load(path, allow_pickle=False) as z:
        return {k: np.array(z[k]) for k in z.files}


def dir_to_bytes(directory: str | Path) -> bytes:
    """Zip the files of a directory (recursively, relative names) into bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for f in sorted(Path(directory).rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(directory).as_posix())
    return buf.getvalue()


def bytes_to_dir(blob: bytes, directory: str | Path) -> None:
    """Unzip ``blob`` (from :func:`dir_to_bytes`) into ``directory``.

    Raises
    ------
    ValueError
        A file name in the archive is absolute or climbs out with ``..``.
    """
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        for name in zf.namelist():
            p = Path(name)
            if p.is_absolute() or ".." in p.parts:
                raise ValueError(f"unsafe file name {name!r} in an emulator archive")
        zf.extractall(directory)


def to_bytes(emulator: Emulator) -> bytes:
    """Save ``emulator`` into a temporary directory and return that directory zipped."""
    with tempfile.TemporaryDirectory(prefix="lsegeo-emulator-") as tmp:
        emulator.save(Path(tmp) / "em")
        return dir_to_bytes(Path(tmp) / "em")


def load(directory: str | Path, n_jobs: int | None = None) -> Emulator:
    """Read a saved emulator of any kind.

    Parameters
    ----------
    directory : path-like
        A directory written by an emulator's ``save``.
    n_jobs : int, optional
        Threads for prediction; default the value it was saved with.

    Returns
    -------
    Emulator
        An instance of the class that :data:`~lsegeo.emulators.registry.EMULATORS` registers
        for the saved ``kind``.

    Raises
    ------
    FileNotFoundError, ValueError
        See :func:`read_meta`; also ValueError when the saved kind is not registered.
    """
    meta = read_meta(directory)
    kind = meta.get("kind")
    if kind not in EMULATORS:
        raise ValueError(f"{directory}: unknown emulator kind {kind!r}; known: {', '.join(EMULATORS.names())}")
    return EMULATORS.get(kind).load(directory, n_jobs=n_jobs)


def load_bytes(blob: bytes, n_jobs: int | None = 1) -> Emulator:
    """An emulator from the bytes of its ``to_bytes`` (e.g. on a dask worker).

    Parameters
    ----------
    blob : bytes
    n_jobs : int or None
        Threads for prediction: 1 by default (dask workers are already parallel with each
        other); None keeps the value the emulator was saved with.
    """
    with tempfile.TemporaryDirectory(prefix="lsegeo-emulator-") as tmp:
        bytes_to_dir(bytes(blob), Path(tmp))
        return load(tmp, n_jobs=n_jobs)
