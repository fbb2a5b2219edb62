"""Parameter maps: a regionalized result written as a zarr store (the master) and as netCDF.

``write_parameter_maps(ds, out_dir, name, ...)`` writes ``<out_dir>/<name>.zarr`` (group
``parameters``; the store's root carries the global attributes and the W3C PROV-JSON record, a
``<name>.zarr.prov.json`` sidecar lies beside it) and ``<out_dir>/<name>.nc`` (NETCDF4, zlib,
the same variables and attributes, the PROV-JSON record in the global attribute
``lsegeo_prov_json`` and in ``<name>.nc.prov.json``). Both are built under temporary names and
renamed into place: the netCDF file is written first under a hidden name, the store is built and
moved into place, then the netCDF file is linked into place. A failure after the store is in place
(the netCDF file or its sidecar cannot be placed) removes the store, its sidecar and whatever of
the netCDF product was placed, each only while it is still the one this call wrote, so a failure
leaves neither product.

``out_dir`` may be a URL (``s3://bucket/products``, :mod:`lsegeo.io.urls`): the store is then
built locally and uploaded with its root metadata last, and the netCDF file is written locally
and uploaded as one object (``docs/object_storage.md``).

The one group of the store mirrors the netCDF file, so one product reads the same through
``xr.open_dataset(nc)`` and ``open_store(zarr, "parameters")``, and the catalog gets one reader
entry per file (``<name>_parameters`` and ``<name>_netcdf``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from lsegeo.design import ParameterSpace
from lsegeo.errors import ConfigError, InputFormatError, StoreError
from lsegeo.products.metadata import annotate, global_attrs
from lsegeo.provenance import history_line, prepend_history, prov_json

__all__ = ["GROUP", "FORMATS", "ParameterMaps", "check_product_name", "is_lsegeo_netcdf", "write_parameter_maps",
           "write_product_netcdf"]

log = logging.getLogger(__name__)

#: the group of the zarr store that holds the maps
GROUP = "parameters"
#: the formats a product can be written in
FORMATS = ("zarr", "netcdf")
#: global attributes that mark a file as written by lsegeo (any one of them), as for stores
_MARKS = ("lsegeo_store_kind", "lsegeo_prov_json")


@dataclass(frozen=True)
class ParameterMaps:
    """What :func:`write_parameter_maps` wrote.

    Parameters
    ----------
    zarr, netcdf : Path, str or None
        The store and the netCDF file (None for a format not asked for; URL text at a URL).
    sidecars : tuple of Path or str
        The PROV-JSON files beside them.
    catalog_entries : tuple of str
        The intake reader entries written (empty without a catalog).
    """

    zarr: Path | str | None
    netcdf: Path | str | None
    sidecars: tuple[Path | str, ...] = ()
    catalog_entries: tuple[str, ...] = field(default_factory=tuple)

    @property
    def paths(self) -> list[Path | str]:
        """Every file or store written, sidecars included."""
        return [p for p in (self.zarr, self.netcdf) if p is not None] + list(self.sidecars)


def check_product_name(name: str, out_dir: str | Path) -> str:
    """Return a product's base name after checking that it stays inside the output folder.

    Parameters
    ----------
    name : str
        One plain file name, optionally ending in ``.zarr`` or ``.nc`` (removed).
    out_dir : path-like
        The output folder.

    Raises
    ------
    InputFormatError
        An empty name, an absolute path, a name with a path separator, ``.`` or ``..``, or a
        hidden name (leading ``.``, the temporary names of lsegeo's writers); the message names
        the product path and the output folder.
    """
    from lsegeo.io.urls import is_url, join

    text = str(name)
    base = text.removesuffix(".zarr").removesuffix(".nc")
    where = out_dir if is_url(out_dir) else Path(out_dir).resolve()
    seps = {"/", "\\", os.sep} | ({os.altsep} if os.altsep else set())
    if (not base or os.path.isabs(text) or any(s in text for s in seps) or base in (".", "..")
            or base.startswith(".") or "\0" in text):
        raise InputFormatError(text, None, f"a product name must be one plain file name inside the output folder "
                               f"{where} (no path separators, '..', absolute paths or leading "
                               f"'.'); it would be written to {join(out_dir, text)}")
    return base


def is_lsegeo_netcdf(path: str | Path) -> bool:
    """Whether ``path`` (a file or URL) is a netCDF file lsegeo wrote (``lsegeo_store_kind``/``lsegeo_prov_json``)."""
    import netCDF4

    from lsegeo.io.urls import filesystem, is_url

    try:
        if is_url(path):  # netCDF4 opens files or memory: the object is read whole
            fs, key = filesystem(str(path))
            nc = netCDF4.Dataset("memory.nc", "r", memory=fs.cat_file(key))
        else:
            nc = netCDF4.Dataset(path, "r")
        with nc:
            return any(k in nc.ncattrs() for k in _MARKS)
    except (OSError, RuntimeError):
        return False


def _netcdf_encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """Compression (zlib) for every array, NaN ``_FillValue`` for floats, none for the rest; strings as char arrays."""
    enc: dict[str, dict[str, Any]] = {}
    for name, var in ds.variables.items():
        e: dict[str, Any] = {}
        if var.dtype.kind == "f" and name not in ds.coords:
            e["_FillValue"] = np.nan
        elif var.dtype.kind in "OUS":
            e.update(dtype="S1", char_dim_name=f"{name}_strlen")  # CF char arrays (section 2.2)
        else:
            e["_FillValue"] = None
        if var.ndim and var.dtype.kind not in "OUS":
            e.update(zlib=True, complevel=4)
        enc[str(name)] = e
    return enc


def _partial(path: Path | str) -> Path:
    """Where a netCDF file is built: a hidden sibling, or a temporary local folder for a URL."""
    from lsegeo.io.urls import basename, is_url

    if is_url(path):
        import tempfile

        return Path(tempfile.mkdtemp(prefix=".lsegeo-nc-", dir=os.environ.get("LSEGEO_STAGING_DIR"))) / basename(path)
    return path.with_name(f".{path.name}.partial-{uuid.uuid4().hex[:8]}")


def _drop(tmp: Path) -> None:
    """Remove a built netCDF file (and its temporary folder, for a URL product)."""
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)
    if tmp.parent.name.startswith(".lsegeo-nc-"):
        with contextlib.suppress(OSError):
            tmp.parent.rmdir()


def _write_json_beside(path: Path | str, text: str) -> Path | str:
    from lsegeo.io.atomic import sidecar_path
    from lsegeo.io.urls import write_text

    return write_text(sidecar_path(path), text)


def _check_target(path: Path | str, overwrite: bool, is_ours) -> None:
    from lsegeo.io.urls import exists

    if not exists(path):
        return
    if not overwrite:
        raise StoreError(f"{path} already exists; pass overwrite=True (--overwrite) to replace it")
    if not is_ours(path):
        raise StoreError(f"{path} exists and was not written by lsegeo (no {'/'.join(_MARKS)} global attribute); "
                         "overwrite replaces only products that lsegeo wrote: remove it yourself or choose another "
                         "name")


def _place(tmp: Path, path: Path | str, overwrite: bool) -> None:
    """Move a finished file into place: replace (overwrite) or create only if absent (a hard link).

    A URL target gets the file uploaded as one object (:func:`lsegeo.io.publish.publish_file`).
    """
    if not isinstance(path, Path):
        from lsegeo.io.publish import publish_file

        try:
            publish_file(tmp, path, overwrite=overwrite, is_ours=is_lsegeo_netcdf)
        finally:
            _drop(tmp)
        return
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise StoreError(f"{path} was created by another job while this one was writing it; that file is kept and "
                         "this job's result is discarded (pass overwrite=True to replace it)") from None
    finally:
        tmp.unlink(missing_ok=True)


def write_product_netcdf(ds: xr.Dataset, path: str | Path, *, inputs: Mapping[str, str], overwrite: bool = False,
                         fmt: str = "NETCDF4") -> Path | str:
    """Write an annotated product as one netCDF file, atomically, with its PROV-JSON record.

    Parameters
    ----------
    ds : xarray.Dataset
        Variables and global attributes as they must appear (from :func:`annotate` and
        :func:`global_attrs`).
    path : path-like or str
        The file; built as a hidden sibling and moved into place (at a URL: built locally and
        uploaded as one object).
    inputs : mapping of str to str
        Inputs of the product to their sha256 (for the PROV record).
    overwrite : bool
        Replace an existing file, but only one that lsegeo wrote (:func:`is_lsegeo_netcdf`).
    fmt : str
        netCDF format (``NETCDF4``: zlib compression needs it).

    Returns
    -------
    Path or str

    Raises
    ------
    StoreError
        ``path`` exists and ``overwrite`` is false, or it is not a file lsegeo wrote.
    """
    from lsegeo.io.urls import location

    path = location(path)
    _check_target(path, overwrite, is_lsegeo_netcdf)
    tmp = _build_netcdf(ds, path, inputs, fmt)
    _place(tmp, path, overwrite)
    _write_json_beside(path, ds.attrs.get("lsegeo_prov_json") or prov_json(ds.attrs, inputs, str(path)))
    return path


def _build_netcdf(ds: xr.Dataset, path: Path | str, inputs: Mapping[str, str], fmt: str) -> Path:
    out = ds.copy()
    out.attrs = {**ds.attrs, "lsegeo_prov_json": prov_json(ds.attrs, dict(inputs), str(path))}
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _partial(path)
    try:
        out.to_netcdf(tmp, format=fmt, engine="netcdf4", encoding=_netcdf_encoding(out))
    except BaseException:
        _drop(tmp)
        raise
    return tmp


def _store_record(zpath: Path | str) -> tuple[str, str | None]:
    """The identity of a store just written (its ``id``) and the PROV-JSON record of its sidecar."""
    from lsegeo.io.marks import PROV_ATTR, root_json

    attrs = root_json(zpath).get("attributes") or {}
    return str(attrs.get("id", "")), attrs.get(PROV_ATTR)


def _remove_if(path: Path | str, ours) -> None:
    """Remove a file, folder or URL prefix when ``ours(path)`` says this call wrote it; errors are only logged."""
    from lsegeo.io.urls import exists, filesystem

    try:
        if not exists(path) or not ours(path):
            return
        if isinstance(path, Path):
            if path.is_dir() and not path.is_symlink():
                import shutil

                shutil.rmtree(path)
            else:
                path.unlink()
        else:
            fs, key = filesystem(path)
            fs.rm(key, recursive=True)
    except Exception as err:  # the original failure is what the caller raises
        log.warning("could not remove %s after a failed write: %s", path, err)


def _same_text(text: str | None):
    """A test of whether a file (or object) holds exactly ``text``."""
    from lsegeo.io.urls import is_file, read_text

    return lambda p: text is not None and is_file(p) and read_text(p) == text


def _take_back(zpath: Path | str | None, npath: Path | str | None, written: Mapping[str, Any]) -> None:
    """Undo what a failed :func:`write_parameter_maps` placed, and only that, so that it leaves neither product.

    The store is removed only while its ``id`` is the one this call gave it, a sidecar only while
    it holds this call's PROV-JSON record, and the netCDF file only while it is the very file this
    call built (the same device and inode; at a URL, the same PROV-JSON record).
    """
    from lsegeo.io.atomic import sidecar_path
    from lsegeo.io.marks import store_id

    if "netcdf" in written and npath is not None:
        inode, record = written["netcdf"]
        if isinstance(npath, Path):
            def ours(p: Path) -> bool:
                return not p.is_symlink() and (p.stat().st_dev, p.stat().st_ino) == inode
        else:
            def ours(p: str) -> bool:
                return _netcdf_record(p) == record
        _remove_if(sidecar_path(npath), _same_text(record))
        _remove_if(npath, ours)
    if "zarr" in written and zpath is not None:
        ident, record = written["zarr"]
        _remove_if(sidecar_path(zpath), _same_text(record))
        _remove_if(zpath, lambda p: bool(ident) and store_id(p) == ident)


def _netcdf_record(path: str) -> str | None:
    """The PROV-JSON record of a netCDF object at a URL (None when it has none or cannot be read as netCDF)."""
    import netCDF4

    from lsegeo.io.urls import filesystem

    fs, key = filesystem(path)
    try:
        with netCDF4.Dataset("memory.nc", "r", memory=fs.cat_file(key)) as nc:
            return nc.getncattr("lsegeo_prov_json") if "lsegeo_prov_json" in nc.ncattrs() else None
    except (OSError, RuntimeError):
        return None


def _required_attrs(ds: xr.Dataset) -> dict[str, str]:
    need = ("lsegeo_method", "lsegeo_objective", "lsegeo_period", "lsegeo_model")
    missing = [k for k in need if not ds.attrs.get(k)]
    if missing:
        raise InputFormatError("<regionalized dataset>", None, f"lacks the attribute(s) {', '.join(missing)} that "
                               "say how the parameters were made (method, objective, period, model)")
    return {k: str(ds.attrs[k]) for k in need}


def _zarr_encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """One chunk per sample for the sampled sets (a map of one set reads one chunk)."""
    return {str(n): {"chunks": tuple(1 if d == "sample" else s for d, s in zip(v.dims, v.shape, strict=True))}
            for n, v in ds.data_vars.items() if "sample" in v.dims}


def write_parameter_maps(ds: xr.Dataset, out_dir: str | Path, name: str, *, space: ParameterSpace,
                         attrs: Mapping[str, Any], inputs: Mapping[str, str], formats: Iterable[str] = FORMATS,
                         overwrite: bool = False, catalog: str | Path | None = None,
                         time_coverage: tuple[str, str] | None = None) -> ParameterMaps:
    """Write a regionalized result as parameter maps: a zarr store (the master) and a netCDF file.

    Parameters
    ----------
    ds : xarray.Dataset
        The regionalized result in the product layout (``docs/products.md``), with the
        ``lsegeo_method``, ``lsegeo_objective``, ``lsegeo_period`` and ``lsegeo_model`` attributes.
    out_dir : path-like or str
        The output folder (created when absent), or a URL prefix (object storage).
    name : str
        The product's base name: ``<out_dir>/<name>.zarr`` and ``<out_dir>/<name>.nc``.
    space : ParameterSpace
        Units, long names and bounds of the parameters (:func:`~lsegeo.products.metadata.annotate`).
    attrs : mapping
        Global attributes from :func:`lsegeo.provenance.product_attrs`.
    inputs : mapping of str to str
        Input name -> sha256 (or store id).
    formats : iterable of {"zarr", "netcdf"}
        What to write.
    overwrite : bool
        Replace existing products (only ones that lsegeo wrote).
    catalog : path-like, optional
        An intake 2 catalog to register both in.
    time_coverage : (str, str), optional
        First and last day of the streamflow period (ACDD ``time_coverage_*``).

    Returns
    -------
    ParameterMaps

    Raises
    ------
    InputFormatError
        ``name`` would leave ``out_dir``; the Dataset lacks the attributes above, is in neither
        layout, or holds values outside the bounds (:func:`annotate`).
    ConfigError
        An unknown format or none.
    StoreError
        A product exists and ``overwrite`` is false, or it was not written by lsegeo; or the
        netCDF file could not be placed because something took its path meanwhile.
    OSError
        A file could not be written. Whatever the error, once the store is in place a failure
        while the products are written removes what this call placed (the store, the netCDF
        file, their sidecars) and re-raises; nothing this call did not write is removed, and no
        temporary file is left. A catalog that cannot be updated afterwards leaves both
        products, complete, in place (the error names the catalog).
    """
    from lsegeo.io.atomic import is_lsegeo_store, sidecar_path
    from lsegeo.io.stores import write_store
    from lsegeo.io.urls import join, location

    out_dir = location(out_dir)
    base = check_product_name(name, out_dir)
    formats = tuple(dict.fromkeys(formats))
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ConfigError(f"product formats {list(formats)}: expected one or more of {', '.join(FORMATS)}")
    how = _required_attrs(ds)
    annotated = annotate(ds, space, objective=how["lsegeo_objective"], period=how["lsegeo_period"],
                         model=how["lsegeo_model"])
    gattrs = global_attrs(annotated, attrs, inputs, time_coverage=time_coverage)
    gattrs = prepend_history(gattrs, history_line("products", f"write_parameter_maps {base} "
                                                  f"({', '.join(formats)}; method {how['lsegeo_method']})"))
    annotated.attrs = gattrs
    zpath = join(out_dir, f"{base}.zarr") if "zarr" in formats else None
    npath = join(out_dir, f"{base}.nc") if "netcdf" in formats else None
    if zpath is not None:
        _check_target(zpath, overwrite, is_lsegeo_store)
    if npath is not None:
        _check_target(npath, overwrite, is_lsegeo_netcdf)
    if isinstance(out_dir, Path):
        out_dir.mkdir(parents=True, exist_ok=True)
    tmp = _build_netcdf(annotated, npath, inputs, "NETCDF4") if npath is not None else None
    sidecars: list[Path | str] = []
    written: dict[str, Any] = {}  # what this call placed, to take back if a later step fails
    try:
        if zpath is not None:
            write_store(annotated, zpath, group=GROUP, attrs=gattrs, inputs=inputs, overwrite=overwrite,
                        encoding=_zarr_encoding(annotated))
            written["zarr"] = _store_record(zpath)
            sidecars.append(sidecar_path(zpath))
        if tmp is not None:
            import netCDF4

            with netCDF4.Dataset(tmp, "r") as nc:  # the record as written, read before the file moves
                record = nc.getncattr("lsegeo_prov_json")
            written["netcdf"] = ((tmp.stat().st_dev, tmp.stat().st_ino) if isinstance(npath, Path) else None, record)
            _place(tmp, npath, overwrite)
            sidecars.append(_write_json_beside(npath, record))
    except BaseException:
        _take_back(zpath, npath, written)
        raise
    finally:
        if tmp is not None:
            _drop(tmp)
    entries: list[str] = []
    if catalog is not None:
        from lsegeo.io.catalog import register_netcdf, register_store

        if zpath is not None:
            entries += register_store(zpath, catalog, name=base)
        if npath is not None:
            entries += register_netcdf(npath, catalog, name=base)
    log.info("parameter maps %s written to %s (%s)", base, out_dir, ", ".join(formats))
    return ParameterMaps(zpath, npath, tuple(sidecars), tuple(entries))
