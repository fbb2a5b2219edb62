"""Locations of stores and products: local paths or fsspec URLs (object storage).

Every reader and writer of :mod:`lsegeo.io` takes a *location*: a local path, or a URL with a
scheme other than ``file://`` (``s3://bucket/prefix/basins.zarr``, ``gs://...``, ``memory://...``)
that fsspec opens (:func:`fsspec.core.url_to_fs`). :func:`location` turns either into what the
functions here take: a :class:`pathlib.Path` for a local path (``file://`` URLs included) and
the URL text for the rest, never ``Path(url)`` (which would collapse ``s3://`` into ``s3:/``).

Storage options (endpoint, credentials, region) are fsspec's own configuration, read by every
filesystem fsspec creates, in this process and in the dask workers it starts: the environment
variables ``FSSPEC_<PROTOCOL>`` (a JSON object) and ``FSSPEC_<PROTOCOL>_<OPTION>``, or a JSON
file in ``~/.config/fsspec/`` (fsspec documentation, "Configuration"); s3fs and botocore also
read ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL`` and ``AWS_PROFILE``.
:func:`configure_storage` sets options from a job's configuration the same way.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator

from lsegeo.errors import ConfigError

__all__ = ["is_url", "location", "filesystem", "join", "basename", "exists", "is_file", "read_text", "read_texts",
           "write_text", "list_dir", "configure_storage", "public_options", "protocol", "Location", "open_netcdf"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
#: option names (lower case, or parts of them) that hold credentials: never written to a catalog
_SECRET_PARTS = ("secret", "token", "password", "passwd", "credential", "access_key", "session")
_SECRET_NAMES = {"key", "username", "user", "profile", "auth"}


def is_url(x: Any) -> bool:
    """Whether ``x`` is a URL that fsspec opens: a string with a scheme other than ``file://``."""
    if not isinstance(x, str):
        return False
    match = _SCHEME.match(x)
    return bool(match) and match.group(1).lower() != "file"


def location(x: str | os.PathLike) -> str | Path:
    """A store or product location: the URL text (without a trailing ``/``) or a local :class:`~pathlib.Path`.

    Parameters
    ----------
    x : str or path-like
        A local path, a ``file://`` URL, or a URL of another scheme.
    """
    if is_url(x):
        text = str(x)
        return text.rstrip("/") if not text.endswith("://") else text
    if isinstance(x, str) and x.lower().startswith("file://"):
        return Path(x[len("file://"):])
    return Path(x)


#: the type of a configuration field that holds a store or product location (pydantic): a URL
#: stays text, anything else becomes a :class:`~pathlib.Path` (:func:`location`)
Location = Annotated[Path | str, BeforeValidator(location)]


def protocol(url: str) -> str:
    """The scheme of a URL, lower case (``s3`` for ``s3://bucket/key``)."""
    match = _SCHEME.match(url)
    if not match:
        raise ConfigError(f"{url!r} is not a URL (expected scheme://...)")
    return match.group(1).lower()


def filesystem(url: str, storage_options: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """The fsspec filesystem of a URL and the path within it.

    Parameters
    ----------
    url : str
        A URL (:func:`is_url`).
    storage_options : mapping, optional
        Options of the filesystem; they win over fsspec's configuration (:func:`configure_storage`).

    Returns
    -------
    (fsspec.AbstractFileSystem, str)

    Raises
    ------
    MissingDependencyError
        The protocol's fsspec implementation is not installed (s3fs for ``s3://``).
    """
    import fsspec

    from lsegeo.errors import MissingDependencyError

    try:
        fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    except ImportError as err:
        raise MissingDependencyError(f"opening {url} needs the fsspec implementation of its protocol ({err}); for "
                                     "s3:// install the extra: pip install 'lsegeo[cloud]'") from err
    fs.invalidate_cache()  # listings cached by this (shared) instance miss what zarr and dask workers wrote
    return fs, path


def join(base: str | Path, *parts: str) -> str | Path:
    """``base`` with path parts added: ``/``-joined text for a URL, :class:`~pathlib.Path` for a local path."""
    base = location(base)
    if isinstance(base, Path):
        return base.joinpath(*parts)
    return "/".join([base.rstrip("/"), *(str(p).strip("/") for p in parts)])


def basename(loc: str | Path) -> str:
    """The last part of a location (``basins.zarr`` for ``s3://bucket/x/basins.zarr``)."""
    loc = location(loc)
    return loc.name if isinstance(loc, Path) else loc.rstrip("/").rsplit("/", 1)[-1]


def exists(loc: str | Path) -> bool:
    """Whether anything is at a location (a file, a folder, or objects under a URL prefix)."""
    loc = location(loc)
    if isinstance(loc, Path):
        return loc.exists()
    fs, path = filesystem(loc)
    return bool(fs.exists(path))


def is_file(loc: str | Path) -> bool:
    """Whether a location is a file (an object, for a URL)."""
    loc = location(loc)
    if isinstance(loc, Path):
        return loc.is_file()
    fs, path = filesystem(loc)
    return bool(fs.isfile(path))


def read_text(loc: str | Path) -> str:
    """The text of a file or object.

    Raises
    ------
    FileNotFoundError
        Nothing is there.
    OSError
        It cannot be read.
    """
    loc = location(loc)
    if isinstance(loc, Path):
        return loc.read_text()
    fs, path = filesystem(loc)
    return fs.cat_file(path).decode()


def write_text(loc: str | Path, text: str) -> str | Path:
    """Write a text file (an object, for a URL) whole or not at all.

    A local file is written to a hidden sibling (``.NAME.partial-<random>``) and renamed over
    ``loc``, so a reader never sees half of it; an object is put in one request. The parent
    folder of a local file must exist.

    Returns
    -------
    pathlib.Path or str
        ``loc``.
    """
    loc = location(loc)
    if isinstance(loc, Path):
        tmp = loc.with_name(f".{loc.name}.partial-{uuid.uuid4().hex[:8]}")
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, loc)
        finally:
            tmp.unlink(missing_ok=True)
        return loc
    fs, path = filesystem(loc)
    fs.pipe_file(path, text.encode())
    return loc


def read_texts(urls: list[str]) -> dict[str, str | Exception]:
    """The texts of several objects of one filesystem, read in one batch of concurrent requests.

    Returns
    -------
    dict
        URL -> its text, or the error that reading it raised (``FileNotFoundError``, ...).
    """
    if not urls:
        return {}
    fs, _ = filesystem(urls[0])
    keys = {u: filesystem(u)[1] for u in urls}
    got = fs.cat(list(keys.values()), on_error="return")
    return {u: (v if isinstance(v, Exception) else v.decode()) for u, v in ((u, got[k]) for u, k in keys.items())}


def list_dir(loc: str | Path) -> list[tuple[str, bool]]:
    """The entries of a folder (or URL prefix) as ``(name, is_folder)``; empty when it does not exist."""
    loc = location(loc)
    if isinstance(loc, Path):
        return [(e.name, e.is_dir()) for e in loc.iterdir()] if loc.is_dir() else []
    fs, path = filesystem(loc)
    try:
        entries = fs.ls(path, detail=True, refresh=True)
    except FileNotFoundError:
        return []
    root = path.rstrip("/")
    return [(e["name"].rstrip("/").rsplit("/", 1)[-1], e["type"] == "directory") for e in entries
            if e["name"].rstrip("/") != root]


def configure_storage(options: Mapping[str, Mapping[str, Any]]) -> None:
    """Set fsspec storage options per protocol, for this process and the processes it starts later.

    The options go into fsspec's configuration (``fsspec.config.conf``), which every filesystem
    fsspec creates reads (zarr, xarray and intake included), and into the environment variable
    ``FSSPEC_<PROTOCOL>`` (a JSON object, fsspec's own convention), which dask worker processes
    started afterwards inherit and fsspec reads when it is imported there.

    Parameters
    ----------
    options : mapping of str to mapping
        Protocol -> options of its filesystem, e.g.
        ``{"s3": {"endpoint_url": "http://127.0.0.1:9000", "anon": False}}`` (the keyword
        arguments of :class:`s3fs.S3FileSystem`). Merged into what is configured already.

    Raises
    ------
    ConfigError
        A protocol name that is not a plain word, or options that are not a mapping or not JSON.
    """
    import fsspec.config

    for proto, opts in dict(options or {}).items():
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", str(proto)) or not isinstance(opts, Mapping):
            raise ConfigError(f"storage_options: expected protocol names (s3, gs, ...) mapping to options, got "
                              f"{proto!r}: {opts!r}")
        merged = {**fsspec.config.conf.get(proto.lower(), {}), **dict(opts)}
        try:
            text = json.dumps(merged)
        except TypeError as err:
            raise ConfigError(f"storage_options.{proto}: the options must be JSON values ({err})") from err
        fsspec.config.conf[proto.lower()] = merged
        os.environ[f"FSSPEC_{proto.upper()}"] = text


def _is_secret(name: str) -> bool:
    low = name.lower()
    return low in _SECRET_NAMES or any(p in low for p in _SECRET_PARTS)


def _public(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _public(v) for k, v in value.items() if not _is_secret(str(k))}
    return value


def public_options(url: str) -> dict[str, Any]:
    """The configured storage options of a URL's protocol without credentials, for catalogs.

    Keys that name credentials (``key``, ``secret``, ``token``, ``password``, ``profile``,
    ``*access_key*``, ``*session*``, ...) are left out, at any depth: a catalog written with
    them can be shared, and its reader brings its own credentials (environment or fsspec
    configuration).
    """
    import fsspec.config

    return _public(dict(fsspec.config.conf.get(protocol(url), {})))


def open_netcdf(path: str | Path):
    """Open a netCDF file at a path or a URL with xarray (a URL is downloaded once, fsspec's ``simplecache``).

    Returns
    -------
    xarray.Dataset
        Lazy; a context manager that closes the file.
    """
    import xarray as xr

    if is_url(path):
        import fsspec

        path = fsspec.open_local(f"simplecache::{path}")
    return xr.open_dataset(path)
