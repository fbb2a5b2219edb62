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

__all__ = ["Field", "UDUNITS_SPELLINGS", "cf_units", "cf_unit_attrs", "netcdf_format", "read_fields",
           "surfdata_land_mask", "write_edited_copy", "annotate_copy", "write_netcdf", "atomic_directory"]

log = logging.getLogger(__name__)

#: CTSM's spellings of units that UDUNITS-2 (hence CF section 3.1) does not parse -> the UDUNITS spelling
#: (``"1"`` for a dimensionless quantity, CF section 3.1); seen in ``mksurfdata_esmf`` surface datasets
#: and CTSM parameter files
UDUNITS_SPELLINGS = {"unitless": "1", "fraction": "1", "index": "1", "flag": "1", "logical flag": "1",
                     "0 to 1": "1", "none": "1", "degrees east": "degrees_east", "degrees north": "degrees_north"}


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


def cf_units(text: str) -> tuple[str, str]:
    """The UDUNITS spelling of a CTSM ``units`` attribute, and the note it carried.

    Parameters
    ----------
    text : str
        The attribute as CTSM writes it, e.g. ``"unitless"``, ``"degrees east"`` or
        ``"kg/m3 (assumed carbon content 0.58 gC per gOM)"``.

    Returns
    -------
    (str, str)
        The units (a trailing parenthesised note removed, then :data:`UDUNITS_SPELLINGS` applied;
        any other text unchanged) and the note without its parentheses (``""`` when none).
    """
    units, note = str(text).strip(), ""
    if units.endswith(")") and " (" in units:
        units, note = units.split(" (", 1)
        units, note = units.strip(), note[:-1].strip()
    return UDUNITS_SPELLINGS.get(units.lower(), units), note


def cf_unit_attrs(attrs: Mapping[str, object], name: str) -> dict[str, str]:
    """The attributes that put a CTSM variable's ``units`` in CF spelling, keeping CTSM's.

    Parameters
    ----------
    attrs : mapping
        The variable's attributes (``units``, ``long_name``, ``comment`` are read).
    name : str
        The variable's name: CTSM's ``"unitless"`` percentages (``PCT_*``, or a long name that
        says percent) become ``percent``.

    Returns
    -------
    dict
        Empty when the units are already CF (or not text); else ``units`` (:func:`cf_units`),
        ``ctsm_units`` (as CTSM wrote them) and, when the units carried a note, ``comment`` with
        the note appended.
    """
    given = attrs.get("units")
    if not isinstance(given, str):
        return {}
    units, note = cf_units(given)
    if units == "1" and (name.startswith("PCT_") or "percent" in str(attrs.get("long_name") or "").lower()):
        units = "percent"
    if units == given:
        return {}
    out = {"units": units, "ctsm_units": given}
    if note:
        out["comment"] = "; ".join(str(c) for c in (attrs.get("comment"), note) if c)
    return out


def _attr_value(value: object) -> object:
    """A global attribute value netCDF (classic included) stores: str, float, int32 or the value's text."""
    if isinstance(value, (bool, np.bool_)):
        return np.int32(value)
    if isinstance(value, (int, np.integer)) and -2 ** 31 <= int(value) < 2 ** 31:
        return np.int32(value)
    if isinstance(value, (float, np.floating, str)):
        return value
    return str(value)


def _annotate(nc: netCDF4.Dataset, head: list[str], attrs: Mapping[str, object] | None,
              variables: Mapping[str, Mapping[str, object]] | None, normalise_units: bool,
              aux_coords: tuple[str, str] | None = None) -> None:
    """Set global and variable attributes of an open file; ``history`` = head, attrs' history, the rest."""
    attrs = dict(attrs or {})
    old = str(nc.getncattr("history")) if "history" in nc.ncattrs() else ""
    lines = [*head, *str(attrs.pop("history", "") or "").splitlines(), *old.splitlines()]
    nc.setncattr("history", "\n".join(line for line in lines if line.strip()))
    for key, value in attrs.items():
        nc.setncattr(key, _attr_value(value))
    for name, extra in (variables or {}).items():
        var = nc.variables[name]
        for key, value in extra.items():
            if key in ("valid_range", "valid_min", "valid_max"):
                value = np.asarray(value, dtype=var.dtype)
            var.setncattr(key, value)
    if normalise_units:
        for var in nc.variables.values():
            known = {k: var.getncattr(k) for k in ("units", "long_name", "comment") if k in var.ncattrs()}
            for key, value in cf_unit_attrs(known, var.name).items():
                var.setncattr(key, value)
    if aux_coords is not None and all(c in nc.variables for c in aux_coords):
        lon, lat = aux_coords
        nc.variables[lon].setncattr("standard_name", "longitude")
        nc.variables[lat].setncattr("standard_name", "latitude")
        grid = set(nc.variables[lon].dimensions)
        for name, var in nc.variables.items():
            if name not in aux_coords and grid <= set(var.dimensions):
                given = str(var.getncattr("coordinates")).split() if "coordinates" in var.ncattrs() else []
                var.setncattr("coordinates", " ".join(dict.fromkeys([*given, lon, lat])))


def write_edited_copy(src: str | Path, dst: str | Path, changes: Mapping[str, np.ndarray], history: str,
                      attrs: Mapping[str, object] | None = None, *,
                      variables: Mapping[str, Mapping[str, object]] | None = None,
                      normalise_units: bool = False, aux_coords: tuple[str, str] | None = None) -> str:
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
    attrs : mapping, optional
        More global attributes set on the copy (provenance: ``id``, digests, version, the CF/ACDD
        set); they replace the input's attributes of the same name and keep the others. Their
        ``history`` (the product's) goes between ``history`` and the input's own lines.
    variables : mapping of str to mapping, optional
        Attributes set on variables (``valid_range``, cast to the variable's dtype).
    normalise_units : bool
        Replace ``units`` that UDUNITS does not parse by their UDUNITS spelling (:func:`cf_units`),
        the original kept in ``ctsm_units`` and a parenthesised note moved to ``comment``. CTSM
        reads values only; the attributes are for CF readers.
    aux_coords : (str, str), optional
        The 2-D longitude and latitude variables of a surface dataset (``("LONGXY", "LATIXY")``):
        they get their CF ``standard_name`` and every variable on their grid names them in
        ``coordinates`` (CF section 5.2).

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
        for name in [*changes, *(variables or {})]:
            if name not in ds.variables:
                raise InputFormatError(str(src), None, f"has no variable {name}")
        for name, values in changes.items():
            var = ds.variables[name]
            values = np.asarray(values)
            if values.shape != var.shape:
                raise InputFormatError(str(src), None, f"variable {name} has shape {var.shape}, "
                                       f"the new values {values.shape}")
            var.set_auto_maskandscale(False)
            var[...] = values.astype(var.dtype)
        _annotate(ds, [history], attrs, variables, normalise_units, aux_coords)
    log.debug("wrote %s (%s) from %s: %s", dst, fmt, src, ", ".join(changes))
    return fmt


def annotate_copy(path: str | Path, attrs: Mapping[str, object], *, normalise_units: bool = True) -> None:
    """Set global attributes on an edited copy already written (:func:`write_edited_copy`), in place.

    Parameters
    ----------
    path : path-like
        The copy; its first ``history`` line (the step that wrote it) stays first.
    attrs : mapping
        Global attributes; their ``history`` goes after that first line, before the input's lines.
    normalise_units : bool
        As for :func:`write_edited_copy`.

    Raises
    ------
    DataNotFoundError
        ``path`` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"netCDF file {path} does not exist")
    with netCDF4.Dataset(path, "r+") as ds:
        old = str(ds.getncattr("history")).splitlines() if "history" in ds.ncattrs() else []
        ds.setncattr("history", "\n".join(old[1:]))
        _annotate(ds, old[:1], attrs, None, normalise_units)


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


