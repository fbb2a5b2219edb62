"""CTSM's netCDF input files: read fields of a parameter file or surface dataset, write edited copies.

An edited copy is the input file copied byte for byte, then opened in place with netCDF4 and only
the changed variables' values and the global ``history`` written, so the netCDF format (classic
stays classic: :func:`netcdf_format`), every other variable, every attribute, the dimension order
and the dtypes are those of the input. The history line is prepended, as CTSM's own
``set_paramfile`` does. Values are read and written raw (no masking or scaling); a ``_FillValue``
is left as it was.

Writes are atomic: a member's files are built in a hidden sibling folder
(:func:`atomic_directory`) that is renamed into place only when every file is complete, so a
failure leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import netCDF4
import numpy as np
import xarray as xr

from lsegeo.errors import DataNotFoundError, InputFormatError, StoreError

__all__ = ["Field", "netcdf_format", "read_fields", "surfdata_land_mask", "write_edited_copy",
           "write_netcdf", "atomic_directory"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Field:
    """One variable of a netCDF file, read raw.

    Parameters
    ----------
    dims : tuple of str
        Its dimensions, in the file's (C) order, e.g. ``("segment", "pft")``.
    values : numpy.ndarray
        Its raw values, shape of ``dims``, the file's dtype.
    valid : numpy.ndarray of bool
        Where the values are finite and differ from the variable's ``_FillValue`` (if any).
    """

    dims: tuple[str, ...]
    values: np.ndarray
    valid: np.ndarray


def _open(path: str | Path) -> netCDF4.Dataset:
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"netCDF file {path} does not exist")
    try:
        return netCDF4.Dataset(path, "r")
    except OSError as exc:
        raise InputFormatError(str(path), None, f"not a readable netCDF file ({exc})") from exc


def netcdf_format(path: str | Path) -> str:
    """The netCDF data model of a file (``"NETCDF3_CLASSIC"``, ``"NETCDF4_CLASSIC"``, ...)."""
    with _open(path) as ds:
        return ds.data_model


def read_fields(path: str | Path, names: Iterable[str], *, what: str = "file") -> dict[str, Field]:
    """Read variables of a netCDF file raw.

    Parameters
    ----------
    path : path-like
        The parameter file or surface dataset.
    names : iterable of str
        The variables.
    what : str
        What the file is, for the error message (``"parameter file"``).

    Returns
    -------
    dict of str to Field

    Raises
    ------
    InputFormatError
        Naming the file and every requested variable it lacks.
    """
    names = list(dict.fromkeys(names))
    with _open(path) as ds:
        missing = [n for n in names if n not in ds.variables]
        if missing:
            raise InputFormatError(str(path), None, f"{what} has no variable(s) {', '.join(missing)}")
        out = {}
        for name in names:
            var = ds.variables[name]
            var.set_auto_maskandscale(False)
            values = np.array(var[...])
            valid = np.ones(values.shape, bool)
            if values.dtype.kind == "f":
                valid &= np.isfinite(values)
            if "_FillValue" in var.ncattrs():
                valid &= values != var.getncattr("_FillValue")
            out[name] = Field(tuple(var.dimensions), values, valid)
    return out


def surfdata_land_mask(path: str | Path) -> np.ndarray:
    """The grid cells of a surface dataset that are land.

    Parameters
    ----------
    path : path-like
        A surface dataset (``surfdata_*.nc``) on an ``(lsmlat, lsmlon)`` or ``(gridcell)`` grid.

    Returns
    -------
    numpy.ndarray of bool
        Shape of ``LONGXY``: ``LANDFRAC_PFT > 0`` (ctsm >= 5.3 files), else ``PFTDATA_MASK == 1``
        (older files), else every cell.

    Raises
    ------
    InputFormatError
        If the file lacks ``LONGXY`` or ``LATIXY`` (it is then no surface dataset).
    """
    with _open(path) as ds:
        missing = [n for n in ("LONGXY", "LATIXY") if n not in ds.variables]
        if missing:
            raise InputFormatError(str(path), None, f"surface dataset has no {' or '.join(missing)} "
                                   "(the grid-cell coordinates every surfdata file carries)")
        shape = ds.variables["LONGXY"].shape
        if "LANDFRAC_PFT" in ds.variables:
            return np.asarray(ds.variables["LANDFRAC_PFT"][...].filled(0.0)) > 0
        if "PFTDATA_MASK" in ds.variables:
            return np.asarray(ds.variables["PFTDATA_MASK"][...].filled(0)) == 1
        return np.ones(shape, bool)


def write_edited_copy(src: str | Path, dst: str | Path, changes: Mapping[str, np.ndarray], history: str,
                      attrs: Mapping[str, str] | None = None) -> str:
    """Copy a netCDF file and overwrite some variables' values in the copy.

    Parameters
    ----------
    src : path-like
        The input file (left untouched).
    dst : path-like
        The copy; must not exist (build it inside :func:`atomic_directory`).
    changes : mapping of str to numpy.ndarray
        New raw values per variable, each the variable's shape; cast to the variable's dtype.
    history : str
        One line prepended to the global ``history`` attribute (created if absent).
    attrs : mapping of str to str, optional
        More global attributes set on the copy (provenance: ``id``, digests, version).

    Returns
    -------
    str
        The netCDF format of the copy, which is the input's.

    Raises
    ------
    InputFormatError
        A variable that is missing or a value array of the wrong shape.
    """
    src, dst = Path(src), Path(dst)
    if dst.exists():
        raise StoreError(f"{dst} already exists; an edited copy is never written over a file")
    fmt = netcdf_format(src)
    shutil.copyfile(src, dst)
    with netCDF4.Dataset(dst, "r+") as ds:
        for name, values in changes.items():
            if name not in ds.variables:
                raise InputFormatError(str(src), None, f"has no variable {name}")
            var = ds.variables[name]
            values = np.asarray(values)
            if values.shape != var.shape:
                raise InputFormatError(str(src), None, f"variable {name} has shape {var.shape}, "
                                       f"the new values {values.shape}")
            var.set_auto_maskandscale(False)
            var[...] = values.astype(var.dtype)
        old = ds.getncattr("history") if "history" in ds.ncattrs() else ""
        ds.setncattr("history", history + ("\n" + str(old) if old else ""))
        for key, value in (attrs or {}).items():
            ds.setncattr(key, str(value))
    log.debug("wrote %s (%s) from %s: %s", dst, fmt, src, ", ".join(changes))
    return fmt


def write_netcdf(ds: xr.Dataset, path: str | Path, fmt: str, *, fill: Iterable[str] = (),
                 char_dims: Mapping[str, str] | None = None, unlimited: Iterable[str] = ()) -> Path:
    """Write a Dataset as a new netCDF file in a given format, atomically.

    Parameters
    ----------
    ds : xarray.Dataset
        Variables and attributes as they must appear in the file.
    path : path-like
        The file; replaced if it exists.
    fmt : str
        ``NETCDF3_CLASSIC``, ``NETCDF3_64BIT_OFFSET``, ``NETCDF4_CLASSIC`` or ``NETCDF4``.
    fill : iterable of str
        Variables that get a ``_FillValue`` (NaN for floats); the others get none, as CTSM's
        input files mostly have.
    char_dims : mapping of str to str, optional
        Byte-string variables written as char arrays, with the name of their string dimension.
    unlimited : iterable of str
        Unlimited dimensions.

    Returns
    -------
    Path
    """
    path = Path(path)
    fill, char_dims = set(fill), dict(char_dims or {})
    encoding = {}
    for name in ds.variables:
        enc: dict = {} if name in fill else {"_FillValue": None}
        if name in char_dims:
            enc["char_dim_name"] = char_dims[name]
        encoding[name] = enc
    tmp = path.with_name(f".{path.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        ds.to_netcdf(tmp, format=fmt, engine="netcdf4", encoding=encoding, unlimited_dims=list(unlimited))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@contextlib.contextmanager
def atomic_directory(target: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder to write into; rename it to ``target`` when the block succeeds.

    Parameters
    ----------
    target : path-like
        The finished folder.
    overwrite : bool
        Replace an existing ``target``; without it an existing target is an error, raised before
        any work is done.

    Notes
    -----
    On an exception the temporary folder is removed and ``target`` is left as it was.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise StoreError(f"{target} already exists; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    tmp = target.parent / f".{target.name}.partial-{tag}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{tag}"
        target.rename(old)
    tmp.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


