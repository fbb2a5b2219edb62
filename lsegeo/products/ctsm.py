"""CTSM inputs from a parameter product: per-basin case inputs, a surface dataset, a distributed-parameter stream.

Three ways to run CTSM with regionalized parameters (``docs/products.md``; the formats are those
of ``docs/ctsm.md`` and of CTSM itself):

* :func:`write_ctsm_basin_cases`: a basin-domain product -> one folder per basin with the edited
  parameter file, surface dataset and ``user_nl_clm`` lines
  (:func:`lsegeo.models.ctsm.inputs.write_member_inputs`: each value is the basin's new spatial
  mean, moved by the registry's perturbation rule), and a ``manifest.csv``;
* :func:`write_ctsm_surfdata`: a gridded product on a surface dataset's own grid -> a copy of the
  surface dataset with its spatially varying parameter fields (FMAX, zbedrock) set per land cell.
  On one cell the registry's rule (move the field so that its mean over the cells is the value,
  multiplicatively or additively) is a replacement: the cell gets the value;
* :func:`write_distparams_stream`: a gridded product -> the distributed-parameter stream file of
  CTSM's ``use_distributed_parameters`` (ESCOMP/CTSM pull request 3405, ``DistParamStreamMod.F90``,
  ``tools/contrib/create_2d_distparam_file.py``): NETCDF3_64BIT, one record of ``time``, 1-D
  ``lat``/``lon``, one double per parameter on ``(time, lat, lon)``, valid everywhere.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from lsegeo.errors import InputFormatError, StoreError
from lsegeo.io import ctsm_files
from lsegeo.io.urls import write_text
from lsegeo.models.ctsm.parameters import CtsmRegistry, layout_of, load_registry
from lsegeo.products.ctsm_provenance import (
    case_file_attrs,
    ctsm_file_attrs,
    ctsm_file_provenance,
    file_global_attrs,
    record_ctsm_file,
    widened_range,
)
from lsegeo.products.metadata import domain_kind, product_response
from lsegeo.provenance import history_line

__all__ = ["DISTRIBUTABLE", "MANIFEST", "CtsmCases", "DistParamsStream", "write_ctsm_basin_cases",
           "write_ctsm_surfdata", "write_distparams_stream", "check_surfdata_grid", "ctsm_file_provenance",
           "record_ctsm_file"]

log = logging.getLogger(__name__)

#: the parameters CTSM's distributed-parameter stream can vary per grid cell (``DistParamType.F90`` of
#: ESCOMP/CTSM pull request 3405); canopy parameters, om_frac_sf and zbedrock_sf are not among them, and
#: FMAX / zbedrock are surface-dataset fields (:func:`write_ctsm_surfdata`)
DISTRIBUTABLE = frozenset({
    "aq_sp_yield_min", "n_baseflow", "perched_baseflow_scalar", "e_ice", "baseflow_scalar", "fff", "slopebeta",
    "slopemax", "n_melt_coef", "accum_factor", "upplim_destruct_metamorph", "scvng_fct_mlt_sf", "xdrdt",
    "snw_rds_refrz", "fresh_snw_rds_max", "bsw_sf", "hksat_sf", "sucsat_sf", "watsat_sf", "d_max",
    "frac_sat_soil_dsl_init", "pc", "mu", "zlnd", "snw_rds_min", "precip_repartition_nonglc_all_rain_t",
    "precip_repartition_nonglc_all_snow_t", "precip_repartition_glc_all_rain_t",
    "precip_repartition_glc_all_snow_t"})
#: the list of basin folders written by :func:`write_ctsm_basin_cases`
MANIFEST = "manifest.csv"


@dataclass(frozen=True)
class CtsmCases:
    """What :func:`write_ctsm_basin_cases` wrote.

    Parameters
    ----------
    directory : Path
        The folder of the cases.
    manifest : Path
        ``manifest.csv``, a row per case: basin, sample (0 for a point product), folder,
        ``user_nl_clm``, paramfile, fsurdat and one column per parameter.
    folders : dict of str to Path
        Basin -> its folder (holding ``sample_<k>/`` cases for a mean-response product).
    skipped : dict of str to str
        Basins without a value for any parameter (off the domain) -> why.
    """

    directory: Path
    manifest: Path
    folders: dict[str, Path]
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DistParamsStream:
    """What :func:`write_distparams_stream` wrote.

    Parameters
    ----------
    path : Path
        The stream file.
    parameters : tuple of str
        The variables in it.
    left_out : dict of str to str
        Parameters of the product that the stream cannot carry -> why.
    """

    path: Path
    parameters: tuple[str, ...]
    left_out: dict[str, str] = field(default_factory=dict)


def _ctsm_parameters(ds: xr.Dataset, reg: CtsmRegistry) -> list[str]:
    names = [str(v) for v in ds.data_vars if str(v) in reg and reg[str(v)].bound_to is None]
    if not names:
        raise InputFormatError("<parameter product>", None, f"holds no CTSM parameter of the registry {reg.source} "
                               f"(its variables: {', '.join(map(str, ds.data_vars))})")
    return names


def _bounds(ds: xr.Dataset, name: str, reg: CtsmRegistry) -> tuple[float, float]:
    """The product's ``valid_range`` of a parameter (its space's bounds), else the registry's bounds."""
    if name in ds and "valid_range" in ds[name].attrs:
        lo, hi = ds[name].attrs["valid_range"]
        return float(lo), float(hi)
    return float(reg[name].lower), float(reg[name].upper)


def _check_range(ds: xr.Dataset, name: str, values: np.ndarray, reg: CtsmRegistry) -> None:
    """Values inside the product's ``valid_range`` (its space's bounds), else the registry's bounds."""
    lo, hi = _bounds(ds, name, reg)
    v = np.asarray(values, dtype=np.float64)
    bad = np.isfinite(v) & ((v < float(lo)) | (v > float(hi)))
    if bad.any():
        raise InputFormatError("<parameter product>", None, f"variable {name}: {int(bad.sum())} value(s) outside "
                               f"[{float(lo)}, {float(hi)}] (e.g. {float(v[bad].flat[0])!r})")


def _registry_for(ds: xr.Dataset, names: list[str], reg: CtsmRegistry) -> CtsmRegistry:
    """The registry with the product's bounds (its ``valid_range``), as the calibration store's bounds are used."""
    return reg.with_bounds({n: tuple(float(x) for x in ds[n].attrs["valid_range"]) for n in names
                            if "valid_range" in ds[n].attrs}, "the product")


def write_ctsm_basin_cases(ds: xr.Dataset, out_dir: str | Path, *, paramfile: str | Path | None,
                           surfdata: str | Path | None, version: str, overwrite: bool = False,
                           registry: CtsmRegistry | None = None, pft_mean: str = "all",
                           attrs: Mapping[str, object] | None = None,
                           inputs: Mapping[str, str] | None = None) -> CtsmCases:
    """Write CTSM case inputs for every basin of a basin-domain product.

    Parameters
    ----------
    ds : xarray.Dataset
        A product with a ``basin`` dimension and one variable per CTSM registry parameter
        (its spatial mean for the basin; NaN: keep the base file's value). A product that
        predicts with the mean flow of its samples (``lsegeo_response = "mean"``) gets one case per
        sample, from its ``<name>_samples`` variables.
    out_dir : path-like
        The folder of the cases: ``<out_dir>/<basin>/`` (``paramfile.nc``, ``fsurdat.nc``,
        ``user_nl_clm``), or ``<out_dir>/<basin>/sample_<k>/`` for a mean-response product, and
        ``<out_dir>/manifest.csv`` (one row per case, with its ``sample``). Built as a hidden
        sibling and renamed into place when every basin is written.
    paramfile, surfdata : path-like or str or None
        The base parameter file and surface dataset; ``{basin}`` in either is replaced by the
        basin id (one single-cell surface dataset per basin, as the study's cases have).
    version : str
        CTSM layout or tag (:func:`lsegeo.models.ctsm.parameters.layout_of`).
    overwrite : bool
        Replace an existing ``out_dir``.
    registry : CtsmRegistry, optional
        Default: the shipped registry; the bounds are the product's ``valid_range`` (its space's).
    pft_mean : {"all", "vegetated"}
        As for :func:`~lsegeo.models.ctsm.inputs.write_member_inputs`.
    attrs : mapping, optional
        Global attributes of the cases (:func:`~lsegeo.products.ctsm_provenance.ctsm_file_provenance`
        of kind ``ctsm_cases``); default derived from ``ds.attrs``
        (:func:`~lsegeo.products.ctsm_provenance.ctsm_file_attrs`). Every ``paramfile.nc`` and
        ``fsurdat.nc`` copy gets them with its own ``id``, title, basin, ``geospatial_*`` and
        inputs (:func:`~lsegeo.products.ctsm_provenance.case_file_attrs`), the product's
        ``history`` after the copy's own line, and UDUNITS spellings of CTSM's ``units``.
    inputs : mapping of str to str, optional
        The product's inputs (name -> sha256) for the copies' ``lsegeo_inputs``; default the
        product itself, by its ``lsegeo_inputs_sha256``.

    Returns
    -------
    CtsmCases

    Raises
    ------
    InputFormatError
        Not a basin product, no CTSM parameter in it, a value outside its bounds (naming the
        basin), a base file without the variable to set.
    StoreError
        ``out_dir`` exists and ``overwrite`` is false.
    """
    from lsegeo.models.ctsm.inputs import PARAMFILE_NAME, SURFDATA_NAME, USER_NL_NAME, write_member_inputs

    if domain_kind(ds) != "basins":
        raise InputFormatError("<parameter product>", None, "CTSM basin cases need a basin-domain product (a 'basin' "
                               "dimension); use write_ctsm_surfdata or write_distparams_stream for a grid")
    layout = layout_of(version)
    base_reg = registry or load_registry()
    names = _ctsm_parameters(ds, base_reg)
    reg = _registry_for(ds, names, base_reg)
    out_dir = Path(out_dir).absolute()
    basins = [str(b) for b in ds["basin"].values]
    by_sample = product_response(ds) == "mean"
    if by_sample:
        missing = [f"{n}_samples" for n in names if f"{n}_samples" not in ds]
        if missing:
            raise InputFormatError("<parameter product>", None, f"says lsegeo_response = 'mean' but lacks {missing}")
        values = {n: np.asarray(ds[f"{n}_samples"].transpose("basin", "sample").values, dtype=np.float64)
                  for n in names}
    else:
        values = {n: np.asarray(ds[n].values, dtype=np.float64)[:, None] for n in names}
    n_samples = next(iter(values.values())).shape[1]
    rows, folders, skipped = [], {}, {}
    case_attrs = dict(attrs) if attrs is not None else ctsm_file_attrs(ds.attrs, "ctsm_cases")
    hashes: dict[str, str] = {}
    with ctsm_files.atomic_directory(out_dir, overwrite=overwrite) as tmp:
        for i, basin in enumerate(basins):
            if not basin or any(s in basin for s in ("/", "\\", os.sep)) or basin in (".", ".."):
                raise InputFormatError("<parameter product>", None, f"basin id {basin!r} cannot name a folder")
            empty = [k for k in range(n_samples) if not any(np.isfinite(values[n][i, k]) for n in names)]
            if len(empty) == n_samples:
                skipped[basin] = "no finite value for any parameter"
                continue
            if empty:  # a mean response needs every sample: a case missing would change the average
                raise InputFormatError("<parameter product>", None, f"basin {basin}: sample(s) {empty} have no "
                                       f"finite value for any parameter, the others do; the mean response of "
                                       f"the {n_samples} samples cannot be run")
            for k in range(n_samples):
                member = {n: float(values[n][i, k]) for n in names if np.isfinite(values[n][i, k])}
                case = Path(basin) / f"sample_{k}" if by_sample else Path(basin)
                try:
                    written = write_member_inputs(
                        str(paramfile).format(basin=basin) if paramfile is not None else None,
                        str(surfdata).format(basin=basin) if surfdata is not None else None,
                        member, layout, tmp / case, registry=reg, pft_mean=pft_mean)  # type: ignore[arg-type]
                except ValueError as exc:
                    raise InputFormatError("<parameter product>", None, f"basin {basin}: {exc}") from exc
                for role, copy, base in (("paramfile", written.paramfile, paramfile),
                                         ("surfdata", written.surfdata, surfdata)):
                    if copy is not None:
                        ctsm_files.annotate_copy(copy, case_file_attrs(
                            ds.isel(basin=[i]), case_attrs, role, str(base).format(basin=basin), basin=basin,
                            sample=k if by_sample else None, inputs=inputs, hashes=hashes))
                final = out_dir / case
                lines = [line.replace(str(tmp), str(out_dir)) for line in written.user_nl_clm]
                write_text(tmp / case / USER_NL_NAME, "\n".join(lines) + "\n")
                folders[basin] = out_dir / basin
                rows.append({"basin": basin, "sample": k, "folder": str(final),
                             "user_nl_clm": str(final / USER_NL_NAME),
                             "paramfile": str(final / PARAMFILE_NAME) if written.paramfile else "",
                             "fsurdat": str(final / SURFDATA_NAME) if written.surfdata else "",
                             **{n: repr(member[n]) if n in member else "" for n in names}})
        if not rows:
            raise InputFormatError("<parameter product>", None, "no basin has a finite value for any parameter")
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text(tmp / MANIFEST, text.getvalue())
    log.info("CTSM %s case inputs: %d case(s) of %d basins in %s (%d skipped)", layout, len(rows), len(folders),
             out_dir, len(skipped))
    return CtsmCases(out_dir, out_dir / MANIFEST, folders, skipped)


def check_surfdata_grid(ds: xr.Dataset, surfdata: str | Path) -> np.ndarray:
    """Check that a gridded product lies on a surface dataset's grid; return the dataset's land mask.

    The product's ``lat`` must equal ``LATIXY[:, 0]`` and its ``lon`` ``LONGXY[0, :]`` (modulo
    360 degrees: CTSM's global files use 0-360 degrees east), to 1e-6 degrees.

    Raises
    ------
    InputFormatError
        Not a grid product, or the grids differ: the message names the file, the axis, the
        sizes or the first differing cell and both values.
    """
    if domain_kind(ds) != "grid":
        raise InputFormatError("<parameter product>", None, "a gridded product ('lat' and 'lon' dimensions) is "
                               "needed; a basin product goes to write_ctsm_basin_cases")
    f = ctsm_files.read_fields(surfdata, ["LATIXY", "LONGXY"], what="surface dataset")
    if len(f["LATIXY"].dims) != 2:
        raise InputFormatError(str(surfdata), None, f"LATIXY has dims {f['LATIXY'].dims}; only logically "
                               "rectangular (lsmlat, lsmlon) surface datasets are supported")
    axes = {"lat": (f["LATIXY"].values[:, 0], "LATIXY[:, 0]"), "lon": (f["LONGXY"].values[0, :], "LONGXY[0, :]")}
    for axis, (theirs, label) in axes.items():
        ours = np.asarray(ds[axis].values, dtype=np.float64)
        theirs = np.asarray(theirs, dtype=np.float64)
        if ours.shape != theirs.shape:
            raise InputFormatError(str(surfdata), None, f"the product's {axis} has {ours.size} values, the surface "
                                   f"dataset's {label} {theirs.size}: the product is not on this grid")
        diff = ours - theirs if axis == "lat" else (ours - theirs + 180.0) % 360.0 - 180.0
        bad = np.flatnonzero(np.abs(diff) > 1e-6)
        if bad.size:
            k = int(bad[0])
            raise InputFormatError(str(surfdata), None, f"the product's {axis}[{k}] = {float(ours[k])!r} differs "
                                   f"from the surface dataset's {label}[{k}] = {float(theirs[k])!r} ({bad.size} of "
                                   f"{ours.size} differ): the product is not on this grid")
    return ctsm_files.surfdata_land_mask(surfdata)


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise StoreError(f"{path} already exists; pass overwrite=True to replace it")


def write_ctsm_surfdata(ds: xr.Dataset, base_surfdata: str | Path, out: str | Path, *, version: str,
                        overwrite: bool = False, registry: CtsmRegistry | None = None,
                        attrs: Mapping[str, str] | None = None) -> Path:
    """Write a copy of a surface dataset with the product's spatially varying fields set per land cell.

    Parameters
    ----------
    ds : xarray.Dataset
        A gridded product on the surface dataset's grid (:func:`check_surfdata_grid`) holding
        at least one parameter the layout reads from the surface dataset (FMAX, zbedrock).
    base_surfdata : path-like
        The surface dataset (left untouched).
    out : path-like
        The copy (``fsurdat`` in ``user_nl_clm``); the input's netCDF format, dims, dtypes and
        attributes; one ``history`` line prepended.
    version : str
        CTSM layout or tag.
    overwrite : bool
        Replace an existing ``out``.
    registry : CtsmRegistry, optional
        Default: the shipped registry.
    attrs : mapping, optional
        Global attributes of the copy (:func:`~lsegeo.products.ctsm_provenance.ctsm_file_provenance`;
        default derived from ``ds.attrs``), completed with ``geospatial_*`` and the ACDD set
        (:func:`~lsegeo.products.ctsm_provenance.file_global_attrs`). They replace the base
        file's attributes of the same name (``Conventions``, ``title``, ...) and keep the others;
        ``history`` is the copy's line, the product's history, then the base file's. CTSM reads none.

    Returns
    -------
    Path

    Notes
    -----
    A land cell (``LANDFRAC_PFT > 0``) with a finite product value gets that value (one cell:
    the registry's move of the field to the value is a replacement); other cells keep theirs.
    Each field set gets ``valid_range`` (the parameter's bounds, widened to the values the base
    file keeps: :func:`~lsegeo.products.ctsm_provenance.widened_range`) and ``lsegeo_parameter``;
    ``units`` that UDUNITS does not parse (CTSM's ``unitless``, ``degrees east``, ...) get their
    UDUNITS spelling, the original kept in ``ctsm_units``, and ``LONGXY``/``LATIXY`` become the
    CF auxiliary coordinates of the grid's variables (:func:`lsegeo.io.ctsm_files.write_edited_copy`).

    Raises
    ------
    InputFormatError
        Grid mismatch, no surface-dataset parameter in the product, a value outside its bounds.
    StoreError
        ``out`` exists and ``overwrite`` is false.
    """
    out = Path(out)
    _refuse_existing(out, overwrite)
    land = check_surfdata_grid(ds, base_surfdata)
    reg = registry or load_registry()
    layout = layout_of(version)
    names = [n for n in _ctsm_parameters(ds, reg) if reg[n].location(layout).kind == "surfdata"]
    if not names:
        raise InputFormatError("<parameter product>", None, f"holds no parameter that CTSM {layout} reads from the "
                               "surface dataset (FMAX, zbedrock)")
    fields = ctsm_files.read_fields(base_surfdata, [reg[n].location(layout).variable for n in names],
                                    what="surface dataset")
    changes, said, variables = {}, [], {}
    for n in names:
        var = reg[n].location(layout).variable
        old = fields[var]
        if old.values.shape != land.shape:
            raise InputFormatError(str(base_surfdata), None, f"{var} has dims {old.dims}, not the grid of LONGXY")
        new_values = np.asarray(ds[n].transpose("lat", "lon").values, dtype=np.float64)
        _check_range(ds, n, new_values, reg)
        cells = land & np.isfinite(new_values)
        new = np.where(cells, new_values, old.values.astype(np.float64))
        changes[var] = new
        kept = cells | np.asarray(old.valid, dtype=bool)  # a _FillValue cell stays outside the range
        variables[var] = {"valid_range": widened_range(*_bounds(ds, n, reg), new[kept]), "lsegeo_parameter": n,
                          "coverage_content_type": "modelResult"}
        said.append(f"{var} set on {int(cells.sum())} of {int(land.sum())} land cells")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial-{uuid.uuid4().hex[:8]}")
    try:
        line = history_line("ctsm surfdata", f"from {Path(base_surfdata).name} (CTSM {layout}): {'; '.join(said)}")
        given = attrs if attrs is not None else ctsm_file_attrs(ds.attrs, "ctsm_surfdata",
                                                                base=Path(base_surfdata).name)
        ctsm_files.write_edited_copy(base_surfdata, tmp, changes, line, attrs=file_global_attrs(ds, given),
                                     variables=variables, normalise_units=True, aux_coords=("LONGXY", "LATIXY"))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("surface dataset %s: %s", out, "; ".join(said))
    return out


def _paramfile_scalars(paramfile: str | Path, names: list[str]) -> dict[str, tuple[float, dict]]:
    """0-d variables of a parameter file: name -> (value, attributes without _FillValue)."""
    import netCDF4

    if not Path(paramfile).is_file():
        from lsegeo.errors import DataNotFoundError

        raise DataNotFoundError(f"parameter file {paramfile} does not exist")
    out = {}
    with netCDF4.Dataset(paramfile, "r") as nc:
        for n in names:
            if n in nc.variables and nc.variables[n].ndim == 0:
                var = nc.variables[n]
                var.set_auto_maskandscale(False)
                attrs = {k: var.getncattr(k) for k in var.ncattrs() if k not in ("_FillValue", "missing_value")}
                out[n] = (float(np.asarray(var[...])), attrs)
    return out


def _stream_attrs(given: dict, name: str, reg: CtsmRegistry, bounds: tuple[float, float],
                  values: np.ndarray) -> dict:
    """Attributes of a stream variable: the parameter file's, completed and in CF spelling (units, valid_range)."""
    out = dict(given)
    out.setdefault("long_name", reg[name].long_name or name)
    out["units"] = str(out.get("units") or reg[name].units or "1")
    out.update(ctsm_files.cf_unit_attrs(out, name))
    out["valid_range"] = widened_range(*bounds, values)
    out.update(lsegeo_parameter=name, coverage_content_type="modelResult")
    return out


def write_distparams_stream(ds: xr.Dataset, out: str | Path, *, paramfile: str | Path, version: str,
                            surfdata: str | Path | None = None, overwrite: bool = False,
                            registry: CtsmRegistry | None = None,
                            attrs: Mapping[str, str] | None = None) -> DistParamsStream:
    """Write CTSM's distributed-parameter stream file from a gridded product.

    Parameters
    ----------
    ds : xarray.Dataset
        A gridded product (1-D ascending ``lat``/``lon``).
    out : path-like
        The stream file (``stream_fldfilename_distparams``).
    paramfile : path-like
        The case's parameter file: each variable's default (written where the product has no
        value: off land, NaN) and attributes come from its 0-d variable of the same name.
    version : str
        CTSM layout or tag (to find where each parameter lives).
    surfdata : path-like, optional
        When given, the product must lie on its grid (:func:`check_surfdata_grid`; the stream
        must match the model's resolution unless a mesh of the stream grid is supplied).
    overwrite : bool
        Replace an existing ``out``.
    registry : CtsmRegistry, optional
        Default: the shipped registry.
    attrs : mapping, optional
        Global attributes of the stream (:func:`~lsegeo.products.ctsm_provenance.ctsm_file_provenance`;
        default derived from ``ds.attrs``), completed with ``geospatial_*`` and the ACDD set;
        ``history`` is the stream's line then the product's. CTSM reads global attributes of no
        kind (only the variables but ``time``, ``lat`` and ``lon`` are parameters).

    Returns
    -------
    DistParamsStream
        The parameters written and those left out with the reason (not distributable by the
        stream, a surface-dataset or per-PFT field, no 0-d variable in the parameter file);
        each one left out is also logged.

    Notes
    -----
    The format is that of ``create_2d_distparam_file.py`` (ESCOMP/CTSM pull request 3405):
    ``NETCDF3_64BIT_OFFSET``; ``time`` UNLIMITED with one record 0.5 ``days since 2000-01-01
    00:00``, ``calendar = "noleap"``; ``lat`` (degrees_north) and ``lon`` (degrees_east) 1-D;
    one ``double (time, lat, lon)`` per parameter named as in the parameter file, with its
    attributes (``units`` and ``long_name`` from the registry where it has none, ``units`` in
    their UDUNITS spelling, ``valid_range`` the parameter's bounds widened to the defaults
    written), no ``_FillValue`` and a valid value in every cell; no other variable (the
    stream reader takes every variable but ``time``, ``lat`` and ``lon`` as a parameter).
    A parameter bound to one of the product's (registry column ``bound_to``: the glacier and
    snow repartition temperatures follow ``precip_repartition_nonglc_all_rain_t``) is written too,
    shifted additively with it as in the basin cases (:func:`lsegeo.models.ctsm.inputs.member_edits`).

    Raises
    ------
    InputFormatError
        Not a grid product, a grid mismatch with ``surfdata``, no parameter the stream can carry.
    DataNotFoundError
        ``paramfile`` does not exist.
    StoreError
        ``out`` exists and ``overwrite`` is false.
    """
    out = Path(out)
    _refuse_existing(out, overwrite)
    if surfdata is not None:
        check_surfdata_grid(ds, surfdata)
    elif domain_kind(ds) != "grid":
        raise InputFormatError("<parameter product>", None, "a distributed-parameter stream needs a gridded product")
    reg = registry or load_registry()
    layout = layout_of(version)
    names = _ctsm_parameters(ds, reg)
    left_out: dict[str, str] = {}
    candidates = []
    for n in names:
        loc = reg[n].location(layout)
        if loc.kind == "surfdata":
            left_out[n] = f"a surface-dataset field ({loc.variable}): write it with write_ctsm_surfdata"
        elif loc.kind == "param" and loc.dims:
            left_out[n] = f"a per-{','.join(loc.dims)} parameter-file field; the stream carries scalars only"
        elif loc.variable not in DISTRIBUTABLE:
            left_out[n] = "not distributable by CTSM's stream (DistParamType.F90 of ESCOMP/CTSM#3405)"
        else:
            candidates.append((n, n))
    for n, _ in list(candidates):  # bound parameters move with their master, as in the basin cases
        for b in reg.bound(n):
            loc = b.location(layout)
            if loc.dims or loc.kind == "surfdata" or loc.variable not in DISTRIBUTABLE:
                left_out[b.name] = f"bound to {n} but not distributable by CTSM's stream"
            else:
                candidates.append((b.name, n))
    scalars = _paramfile_scalars(paramfile, [reg[n].location(layout).variable for n, _ in candidates])
    maps: dict[str, xr.Variable] = {}
    for n, master in candidates:
        var = reg[n].location(layout).variable
        if var not in scalars:
            left_out[n] = f"the parameter file {Path(paramfile).name} has no 0-d variable {var} for its default"
            continue
        default, var_attrs = scalars[var]
        grid = np.asarray(ds[master].transpose("lat", "lon").values, dtype=np.float64)
        _check_range(ds, master, grid, reg)
        if n != master:  # the additive shift of write_member_inputs: default + (master - master's default)
            grid = reg[n].default + (grid - reg[master].default)
        filled = np.where(np.isfinite(grid), grid, default)
        maps[var] = xr.Variable(("time", "lat", "lon"), filled[None].astype("f8"),
                                _stream_attrs(var_attrs, n, reg, _bounds(ds, n, reg), filled))
    for n, why in left_out.items():
        log.info("distributed-parameter stream %s: %s left out: %s", out.name, n, why)
    if not maps:
        raise InputFormatError("<parameter product>", None, "no parameter of the product can go into a "
                               f"distributed-parameter stream: {'; '.join(f'{k}: {v}' for k, v in left_out.items())}")
    stream = xr.Dataset(maps, coords={
        "time": ("time", np.array([0.5]), {"units": "days since 2000-01-01 00:00", "calendar": "noleap",
                                           "long_name": "time", "standard_name": "time", "axis": "T"}),
        "lat": ("lat", np.asarray(ds["lat"].values, dtype="f8"), {"units": "degrees_north", "long_name": "latitude",
                                                                  "standard_name": "latitude", "axis": "Y"}),
        "lon": ("lon", np.asarray(ds["lon"].values, dtype="f8"), {"units": "degrees_east", "long_name": "longitude",
                                                                  "standard_name": "longitude", "axis": "X"}),
    })
    given = attrs if attrs is not None else ctsm_file_attrs(ds.attrs, "ctsm_distparams", base=Path(paramfile).name)
    gattrs = file_global_attrs(ds, given)
    line = history_line("ctsm distparams", f"{len(maps)} parameters, defaults from {Path(paramfile).name} "
                        f"(CTSM {layout})")
    stream.attrs = {**gattrs, "history": "\n".join(h for h in (line, str(gattrs.get("history", ""))) if h),
                    "lsegeo_product_id": str(gattrs.get("lsegeo_product_id") or ds.attrs.get("id", "")),
                    "paramfile": Path(paramfile).name}
    out.parent.mkdir(parents=True, exist_ok=True)
    ctsm_files.write_netcdf(stream, out, "NETCDF3_64BIT_OFFSET", unlimited=["time"])
    return DistParamsStream(out, tuple(maps), left_out)
