"""intake 2 catalogs of the stores that lsegeo writes.

A catalog is a hand-readable intake 2 YAML file (``version: 2``). Each store gets one *data*
entry (the zarr store, its path relative to the catalog when it lies below the catalog's
parent directory, so the catalog and the work tree can move together) and one reader entry per
group, named ``<store name>_<group>``, that opens the group lazily with xarray::

    import intake
    cat = intake.from_yaml_file("catalogs/lsegeo.yaml")
    forcing = cat["camels_basins_forcing"].read()      # lazy, dask-backed xarray.Dataset
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from lsegeo.errors import StoreError
from lsegeo.io.groups import group_attrs
from lsegeo.io.stores import root_attrs, store_groups

__all__ = ["DEFAULT_CATALOG", "register_store", "open_catalog", "catalog_entries"]

DEFAULT_CATALOG = Path("catalogs") / "lsegeo.yaml"
_READER = "intake.readers.readers:XArrayDatasetReader"
_ZARR = "intake.readers.datatypes:Zarr"


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


def _url(store: Path, catalog: Path) -> str:
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
    store : path-like
        A zarr store written by lsegeo.
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
    store, catalog = Path(store), Path(catalog)
    groups = store_groups(store)
    attrs = root_attrs(store)
    name = name or store.name.removesuffix(".zarr")
    cat = _load(catalog)
    data_key = f"{name}_store"
    cat["data"][data_key] = {"datatype": _ZARR, "kwargs": {"url": _url(store, catalog)},
                             "metadata": {"lsegeo_store_kind": attrs.get("lsegeo_store_kind", "")},
                             "user_parameters": {}}
    written = []
    for group in groups:
        key = f"{name}_{group}"
        gattrs = group_attrs(store, group)
        meta = {"description": gattrs.get("title", f"group {group} of {store.name}"),
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


def open_catalog(catalog: str | Path = DEFAULT_CATALOG):
    """Open an intake 2 catalog file.

    Returns
    -------
    intake.readers.entry.Catalog
        The catalog; ``cat[entry].read()`` opens a group lazily.

    Raises
    ------
    StoreError
        The catalog file does not exist.
    """
    import intake

    catalog = Path(catalog)
    if not catalog.exists():
        raise StoreError(f"catalog {catalog} does not exist; create it with `lsegeo catalog add STORE`")
    return intake.from_yaml_file(str(catalog))


def catalog_entries(catalog: str | Path = DEFAULT_CATALOG) -> dict[str, str]:
    """Return the reader entries of a catalog with their descriptions (entry name -> description)."""
    cat = _load(Path(catalog))
    return {k: (v.get("metadata") or {}).get("description", "") for k, v in cat["entries"].items()}
