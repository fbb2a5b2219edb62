"""intake 2 catalogs of the stores that lsegeo writes.

A catalog is a hand-readable intake 2 YAML file (``version: 2``). Each store gets one *data*
entry (the zarr store, its path relative to the catalog when it lies below the catalog's
parent directory, so the catalog and the work tree can move together) and one reader entry per
group, named ``<store name>_<group>``, that opens the group lazily with xarray::

    import intake
    cat = intake.from_yaml_file("catalogs/lsegeo.yaml")
    forcing = cat["camels_basins_forcing"].read()      # lazy, dask-backed xarray.Dataset

A path is not an identity: each data entry records the store's ``id`` (a UUID given when the
store was created) as ``lsegeo_store_id``. :func:`open_catalog` and :func:`catalog_entries`
check every entry against the store found at its path: a missing store, or one whose ``id``
differs (it was replaced, e.g. by ``--overwrite``), is *stale*; :func:`catalog_entries` marks it
and opening it through :func:`open_catalog` raises :class:`~lsegeo.errors.StoreError` naming
the entry, the store, the recorded and the found id.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from lsegeo.errors import StoreError
from lsegeo.io.groups import group_attrs
from lsegeo.io.stores import root_attrs, store_groups, store_id
from lsegeo.io.urls import basename, exists, filesystem, is_file, is_url, location, public_options

__all__ = ["DEFAULT_CATALOG", "register_store", "register_netcdf", "open_catalog", "catalog_entries", "stale_entries",
           "CheckedCatalog"]

DEFAULT_CATALOG = Path("catalogs") / "lsegeo.yaml"
_READER = "intake.readers.readers:XArrayDatasetReader"
_ZARR = "intake.readers.datatypes:Zarr"
#: intake datatypes of netCDF files: NETCDF4 files are HDF5 files, the classic formats NetCDF3
_NETCDF = {"NETCDF4": "intake.readers.datatypes:HDF5", "NETCDF4_CLASSIC": "intake.readers.datatypes:HDF5"}
_NETCDF3 = "intake.readers.datatypes:NetCDF3"


def _skeleton() -> dict[str, Any]:
    return {"version": 2, "metadata": {"title": "lsegeo products",
                                       "description": "Stores written by lsegeo; (re)written by `lsegeo catalog add`."},
            "aliases": {}, "user_parameters": {}, "data": {}, "entries": {}}


def _load(path: Path) -> dict[str, Any]:
    if not path.exists():
        return _skeleton()
    raw = yaml.safe_load(path.read_text()) or {}
    if raw.get("version") != 2:
        raise StoreError(f"{path} is not an intake 2 catalog (expected 'version: 2' at the top)")
    base = _skeleton()
    base.update({k: v for k, v in raw.items() if v is not None})
    return base


#: the fsspec cache prefix of a netCDF file at a URL: the netCDF4 library reads local files only
_CACHE = "simplecache::"


def _url(store: Path | str, catalog: Path) -> str:
    if not isinstance(store, Path):
        return store  # a URL stays as it is
    store, cdir = store.resolve(), catalog.resolve().parent
    try:
        rel = os.path.relpath(store, cdir)
    except ValueError:  # another drive
        return str(store)
    if rel.startswith(os.pardir + os.sep + os.pardir):  # far away: keep it absolute
        return str(store)
    return "{CATALOG_DIR}/" + Path(rel).as_posix()


def register_store(store: str | Path, catalog: str | Path = DEFAULT_CATALOG, name: str | None = None) -> list[str]:
    """Add (or rewrite) the entries of a store in an intake 2 catalog.

    Parameters
    ----------
    store : path-like or str
        A zarr store written by lsegeo: a folder or a URL.
    catalog : path-like
        The catalog YAML file; created when absent.
    name : str, optional
        Entry prefix; default the store's file name without ``.zarr``.

    Returns
    -------
    list of str
        The reader entries written, one per group of the store.

    Raises
    ------
    StoreError
        ``store`` is not a zarr v3 store, or ``catalog`` is not an intake 2 catalog.
    """
    store, catalog = location(store), Path(catalog)
    groups = store_groups(store)
    attrs = root_attrs(store)
    name = name or basename(store).removesuffix(".zarr")
    cat = _load(catalog)
    data_key = f"{name}_store"
    kwargs: dict[str, Any] = {"url": _url(store, catalog)}
    if is_url(store) and (options := public_options(store)):
        kwargs["storage_options"] = options
    cat["data"][data_key] = {"datatype": _ZARR, "kwargs": kwargs,
                             "metadata": {"lsegeo_store_kind": attrs.get("lsegeo_store_kind", ""),
                                          "lsegeo_store_id": str(attrs.get("id", ""))},
                             "user_parameters": {}}
    written = []
    for group in groups:
        key = f"{name}_{group}"
        gattrs = group_attrs(store, group)
        meta = {"description": gattrs.get("title", f"group {group} of {basename(store)}"),
                "group": group,
                "lsegeo_version": attrs.get("lsegeo_version", ""),
                "lsegeo_inputs_sha256": attrs.get("lsegeo_inputs_sha256", ""),
                "lsegeo_config_sha256": attrs.get("lsegeo_config_sha256", "")}
        cat["entries"][key] = {"reader": _READER,
                               "kwargs": {"args": ["{data(" + data_key + ")}"], "engine": "zarr",
                                          "group": group, "chunks": {}},
                               "output_instance": "xarray:Dataset", "metadata": meta, "user_parameters": {}}
        written.append(key)
    catalog.parent.mkdir(parents=True, exist_ok=True)
    tmp = catalog.with_name(f".{catalog.name}.tmp")
    tmp.write_text("# intake 2 catalog of lsegeo products; entries are (re)written by `lsegeo catalog add`.\n"
                   + yaml.safe_dump(cat, sort_keys=False, default_flow_style=False))
    tmp.replace(catalog)
    return written


def _netcdf_attrs(path: Path | str) -> tuple[dict[str, Any], str]:
    """Global attributes and data model of a netCDF file, local or at a URL (StoreError when it cannot be read)."""
    import netCDF4

    try:
        if isinstance(path, Path):
            nc = netCDF4.Dataset(path, "r")
        else:  # the whole object is read: netCDF4 opens a file or memory
            fs, key = filesystem(path)
            nc = netCDF4.Dataset("memory.nc", "r", memory=fs.cat_file(key))
        with nc:
            return {k: nc.getncattr(k) for k in nc.ncattrs()}, nc.data_model
    except OSError as err:
        raise StoreError(f"{path} is not a readable netCDF file ({err})") from err


def register_netcdf(path: str | Path, catalog: str | Path = DEFAULT_CATALOG, name: str | None = None) -> list[str]:
    """Add (or rewrite) the entry of a netCDF product in an intake 2 catalog.

    The netCDF sibling of :func:`register_store`: one data entry ``<name>_file`` (datatype
    ``HDF5`` for NETCDF4 files, ``NetCDF3`` for the classic formats; its ``id`` recorded as
    ``lsegeo_store_id``, so that a replaced file shows as stale) and one reader entry
    ``<name>_netcdf`` that opens it lazily with xarray.

    Parameters
    ----------
    path : path-like or str
        A netCDF file written by lsegeo: a local file or a URL (the entry then reads it through
        fsspec's ``simplecache::``, which downloads it once per session).
    catalog : path-like
        The catalog YAML file; created when absent.
    name : str, optional
        Entry prefix; default the file name without ``.nc``.

    Returns
    -------
    list of str
        The reader entry written.

    Raises
    ------
    StoreError
        ``path`` is not a readable netCDF file, or ``catalog`` is not an intake 2 catalog.
    """
    path, catalog = location(path), Path(catalog)
    attrs, model = _netcdf_attrs(path)
    name = name or basename(path).removesuffix(".nc")
    cat = _load(catalog)
    data_key = f"{name}_file"
    kwargs: dict[str, Any] = {"url": _url(path, catalog)}
    if is_url(path):
        from lsegeo.io.urls import protocol

        kwargs = {"url": _CACHE + str(path), "storage_options": {protocol(str(path)): public_options(str(path))}}
    cat["data"][data_key] = {"datatype": _NETCDF.get(model, _NETCDF3), "kwargs": kwargs,
                             "metadata": {"lsegeo_store_kind": str(attrs.get("lsegeo_store_kind", "")),
                                          "lsegeo_store_id": str(attrs.get("id", ""))},
                             "user_parameters": {}}
    key = f"{name}_netcdf"
    meta = {"description": str(attrs.get("title", basename(path))) + " (netCDF)",
            "lsegeo_version": str(attrs.get("lsegeo_version", "")),
            "lsegeo_inputs_sha256": str(attrs.get("lsegeo_inputs_sha256", "")),
            "lsegeo_config_sha256": str(attrs.get("lsegeo_config_sha256", ""))}
    cat["entries"][key] = {"reader": _READER,
                           "kwargs": {"args": ["{data(" + data_key + ")}"], "engine": "netcdf4", "chunks": {},
                                      "open_local": True},
                           "output_instance": "xarray:Dataset", "metadata": meta, "user_parameters": {}}
    catalog.parent.mkdir(parents=True, exist_ok=True)
    tmp = catalog.with_name(f".{catalog.name}.tmp")
    tmp.write_text("# intake 2 catalog of lsegeo products; entries are (re)written by `lsegeo catalog add`.\n"
                   + yaml.safe_dump(cat, sort_keys=False, default_flow_style=False))
    tmp.replace(catalog)
    return [key]


def _store_of(url: str, catalog: Path) -> Path | str:
    """The store location of a data entry's ``url`` (``{CATALOG_DIR}`` is the catalog's folder)."""
    if url.startswith("{CATALOG_DIR}/"):
        return catalog.resolve().parent / url[len("{CATALOG_DIR}/"):]
    return location(url.removeprefix(_CACHE))


def _data_key(entry: dict[str, Any]) -> str | None:
    """The data entry a reader entry reads (``{data(<key>)}`` in its arguments)."""
    args = (entry.get("kwargs") or {}).get("args") or []
    match = re.fullmatch(r"\{data\((.+)\)\}", str(args[0])) if args else None
    return match.group(1) if match else None


def _store_problem(data: dict[str, Any], catalog: Path) -> str:
    """What is wrong with the store a data entry names ('' when it is the one registered)."""
    store = _store_of(str((data.get("kwargs") or {}).get("url", "")), catalog)
    recorded = str((data.get("metadata") or {}).get("lsegeo_store_id", ""))
    if not exists(store):
        return f"its store {store} is missing (recorded id {recorded or '(none)'})"
    try:
        found = str(_netcdf_attrs(store)[0].get("id", "")) if is_file(store) else store_id(store)
    except StoreError as err:
        return f"its store {store} cannot be read ({err})"
    if recorded and found != recorded:
        return (f"its store {store} is not the one registered: recorded id {recorded}, found id {found or '(none)'} "
                "(the store was replaced)")
    return ""


def stale_entries(catalog: str | Path = DEFAULT_CATALOG) -> dict[str, str]:
    """Check every reader entry of a catalog against the store at its path.

    Returns
    -------
    dict
        Entry name -> what is wrong (its store is missing, unreadable, or has another ``id``
        than the one recorded when the entry was written), only for stale entries. Entries
        written before ids were recorded are checked for their store's presence only.
    """
    catalog = Path(catalog)
    cat = _load(catalog)
    problems: dict[str, str] = {}
    out = {}
    for key, entry in cat["entries"].items():
        data_key = _data_key(entry or {})
        if data_key is None or data_key not in cat["data"]:
            out[key] = f"it reads data entry {data_key!r}, which the catalog does not have"
            continue
        if data_key not in problems:
            problems[data_key] = _store_problem(cat["data"][data_key] or {}, catalog)
        if problems[data_key]:
            out[key] = problems[data_key]
    return out


class CheckedCatalog:
    """An intake 2 catalog whose entries are checked against their stores when taken.

    ``cat[entry]`` (or ``cat.entry``) returns the intake reader, as the catalog does, after
    checking that the entry's store is there and is the one registered.

    Raises
    ------
    StoreError
        When a stale entry is taken: the message names the entry, the store, the recorded and
        the found id.
    """

    def __init__(self, cat: Any, path: Path) -> None:
        self._cat, self._path = cat, Path(path)
        self._raw = _load(self._path)

    def _check(self, key: str) -> None:
        entry = self._raw["entries"].get(key)
        data_key = _data_key(entry or {}) if entry is not None else None
        if data_key is None or data_key not in self._raw["data"]:
            return  # not an lsegeo reader entry: intake answers for it
        problem = _store_problem(self._raw["data"][data_key] or {}, self._path)
        if problem:
            raise StoreError(f"catalog {self._path}, entry {key!r}: {problem}; register the store again with "
                             "`lsegeo catalog add STORE` (or remove the entry)")

    def __getitem__(self, key: str) -> Any:
        self._check(key)
        return self._cat[key]

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_") and name in self._raw["entries"]:
            return self[name]
        return getattr(self._cat, name)

    def __contains__(self, key: object) -> bool:
        return key in self._cat

    def __iter__(self) -> Iterator[str]:
        return iter(self._cat)

    def __len__(self) -> int:
        return len(self._cat)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._raw["entries"]))


def open_catalog(catalog: str | Path = DEFAULT_CATALOG) -> CheckedCatalog:
    """Open an intake 2 catalog file.

    Returns
    -------
    CheckedCatalog
        The intake catalog (``intake.readers.entry.Catalog``), whose entries are checked against
        their stores when taken; ``cat[entry].read()`` opens a group lazily.

    Raises
    ------
    StoreError
        The catalog file does not exist; or, when an entry is taken, its store is missing or
        is not the one registered (see :func:`stale_entries`).
    """
    import intake

    catalog = Path(catalog)
    if not catalog.exists():
        raise StoreError(f"catalog {catalog} does not exist; create it with `lsegeo catalog add STORE`")
    return CheckedCatalog(intake.from_yaml_file(str(catalog)), catalog)


def catalog_entries(catalog: str | Path = DEFAULT_CATALOG) -> dict[str, str]:
    """Return the reader entries of a catalog with their descriptions (entry name -> description).

    A stale entry (:func:`stale_entries`: its store is missing or was replaced) has
    ``" [STALE: <what is wrong>]"`` after its description.
    """
    cat = _load(Path(catalog))
    stale = stale_entries(catalog)
    return {k: (v.get("metadata") or {}).get("description", "") + (f" [STALE: {stale[k]}]" if k in stale else "")
            for k, v in cat["entries"].items()}
